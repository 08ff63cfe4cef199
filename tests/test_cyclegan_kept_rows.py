"""Faces left after an unreadable one stay the decoded-face cache's file mapping (KeptRows) in the CycleGAN trainer
and in `bench train`: both had copied them out of it (``np.asarray(faces)[readable]``). Pickled by the workers'
pickler, a mapping goes as its file's name and a copy whole, so the pickled size, measured against the faces' own
bytes, tells which the faces are."""
from __future__ import annotations

import csv
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.datasets import Sample, open_dataset, split_of
from inference.images import read_rgb
from inference.models import read_card
from training.bench_train import classifier_task, real_faces
from training.data.domains import folder_domains
from training.epoch_batches import _Batches, _WorkerPickler
from training.nets.cyclegan import PRESETS
from training.tasks.classifier import LABELS
from training.tasks.cyclegan import VAL_FACES, CycleGANTask, DomainImages, build_images, fixed_val

from .test_cyclegan import train_folders, two_folders, write_utk

SMOKE = PRESETS["smoke"]
CLASSIFIER_SIZE = 32  # the decoding size the other classifier training tests use
BATCH = 16


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


def unreadable_file(folder: Path, split: str) -> Path:
    """An unreadable image in ``folder`` whose name the hash split puts in ``split``; bytes of its own, as two copies
    of one file are one image, kept in one split."""
    name = next(f"zz_broken{i}.jpg" for i in range(1000) if split_of(Sample(f"zz_broken{i}.jpg")) == split)
    (folder / name).write_bytes(f"not an image ({split})".encode())
    return folder / name


def pickled_size(obj: object) -> int:
    """Bytes of ``obj`` as the DataLoader workers' pickler sends it: a read-only file mapping as its file's name."""
    return len(_WorkerPickler.dumps(obj, pickle.HIGHEST_PROTOCOL))


def decoded(samples: list[Sample], size: int) -> np.ndarray:
    return np.stack([read_rgb(s.path, size) for s in samples])


# 1. the CycleGAN trainer's domains


@pytest.fixture
def broken_domains(tmp_path, utk):
    """Domain folders A and B, A with an unreadable face in its training split and one in its validation split."""
    a, b = two_folders(tmp_path, utk)
    broken = [unreadable_file(a, split) for split in ("train", "val")]
    return a, b, broken


def test_a_domain_with_an_unreadable_face_keeps_its_faces_mapped(tmp_path, broken_domains):
    """The faces read had been a copy, private to every process that trains (each of torchrun's)."""
    a, b, broken = broken_domains
    domains = folder_domains(str(a), str(b), 0, 1, None)
    images, _ = build_images(domains, SMOKE.size, 0, tmp_path / "cache")
    assert len(images.train) == len(images.samples) == len(domains.a.train) - 1  # the unreadable one left out
    assert not {str(p) for p in broken} & {s.path for s in images.samples}
    faces = np.asarray(images.train)
    assert np.array_equal(faces, decoded(images.samples, SMOKE.size))  # each face its own sample's, in order
    assert pickled_size(images.train) < faces.nbytes / 4
    assert np.array_equal(np.asarray(pickle.loads(_WorkerPickler.dumps(images.train))), faces)


def test_the_step_draws_the_faces_it_drew_from_a_copy(tmp_path, broken_domains):
    """Drawn through KeptRows, a batch is the one the copy of the faces read gave."""
    a, b, _ = broken_domains
    domains = folder_domains(str(a), str(b), 0, 1, None)
    kept_a, kept_b = build_images(domains, SMOKE.size, 0, tmp_path / "cache")
    copied_a, copied_b = (DomainImages(np.asarray(d.train), np.asarray(d.val), d.samples) for d in (kept_a, kept_b))
    run_cfg = {"seed": 0, "batch_size": 2, "iters_per_epoch": 1, "sample_every": 0, "lr": 2e-4, "n_epochs": 1,
               "n_epochs_decay": 0}
    kept = CycleGANTask(kept_a, kept_b, SMOKE, run_cfg, tmp_path / "kept")
    copied = CycleGANTask(copied_a, copied_b, SMOKE, run_cfg, tmp_path / "copied")
    cpu = torch.device("cpu")
    for first in range(0, 2 * len(kept_a.train), run_cfg["batch_size"]):  # past a pass over A, into the next
        for drawn, expected in zip(kept.draw(first, cpu), copied.draw(first, cpu)):
            assert torch.equal(drawn, expected)


def test_a_run_over_domains_with_unreadable_faces_trains_samples_and_exports(tmp_path, broken_domains):
    a, b, broken = broken_domains
    domains = folder_domains(str(a), str(b), 0, 1, None)
    assert str(broken[1]) in {s.path for s in fixed_val(domains.a.val, VAL_FACES, 0)}  # the sample grid's faces
    run = tmp_path / "run"
    assert train_folders(run, a, b, "--sample-every", "1") == 0
    with open(run / "drift.csv", newline="", encoding="utf-8") as fh:
        assert list(csv.DictReader(fh))  # the sample point drew on the validation faces left
    card = read_card(run / "filter_A2B.onnx").training
    assert card["domain_a"]["n_train"] == len(domains.a.train) - 1


# 2. `bench train`


@pytest.mark.parametrize("unreadable", [True, False], ids=["one face unreadable", "every face read"])
def test_bench_train_sends_its_classifier_workers_the_faces_file_not_the_faces(tmp_path, tiny_utk, unreadable):
    """tiny_utk holds one corrupt JPEG. The faces had been copied out of the cache even with every one read, and
    each spawned worker sent the copy."""
    if not unreadable:
        for corrupt in [p for p in tiny_utk.iterdir() if read_rgb(str(p), CLASSIFIER_SIZE) is None]:
            corrupt.unlink()
    spec = f"utkface:{tiny_utk}"
    labelled = [s for s in open_dataset(spec, None).samples if s.gender in LABELS]
    readable = [s for s in labelled if read_rgb(s.path, CLASSIFIER_SIZE) is not None]
    assert (len(readable) < len(labelled)) == unreadable
    faces, labels = real_faces(spec, len(labelled), CLASSIFIER_SIZE, tmp_path / "cache", None)
    copy = np.asarray(faces)
    assert np.array_equal(copy, decoded(readable, CLASSIFIER_SIZE))
    assert list(labels) == [LABELS.index(s.gender) for s in readable]
    task = classifier_task(faces, labels, CLASSIFIER_SIZE, BATCH)
    state = _Batches(task).__getstate__()
    assert len(state) < copy.nbytes / 4  # the file's name, the labels and the transforms: no copy of the faces
    in_worker = pickle.loads(state)  # the task as a spawned worker unpickles it
    assert np.array_equal(np.asarray(in_worker.data.images), copy)
    x, y = in_worker.batch(np.arange(BATCH), torch.device("cpu"))
    assert len(x) == len(y) == BATCH
