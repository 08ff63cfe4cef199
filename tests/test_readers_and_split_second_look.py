"""A second look at the readers and the training split: an age bar that empties the training split is named, FairFace
rows written as absolute paths are read through a link to their folder, CelebA lists written "./img_align_celeba/…"
are read, a link loop given as a dataset is called one by every command, and a training run with an unreadable face
still sends its spawned workers the faces' file name, not a copy of the faces."""
import csv
import logging
import os
import pickle
import re

import cv2
import numpy as np
import pytest

from inference.arg_checks import LINK_LOOP
from inference.datasets import READERS, open_dataset, read_celeba, read_fairface
from inference.errors import BiasMirrorError
from inference.images import read_rgb
from tests.conftest import make_classifier, run_main
from training.epoch_batches import _Batches
from training.evaluate import DEFAULT_MIN_AGE
from training.nets.cam_classifier import ClassifierConfig
from training.tasks.classifier import ClassifierTask, build_data, list_faces

SIZE = 32  # the decoding size the other training tests use


def _img(path, value=128):
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), np.full((24, 24, 3), value, np.uint8))


# 1. an age bar that leaves the training split empty is named, not the split


def _aged_folder(root, train_ages, test_ages):
    """A folder of faces with a labels.csv: one row split train for each of ``train_ages``, one split test for each
    of ``test_ages`` (None: no age given), genders alternating."""
    rows = [["file", "gender", "age", "split"]]
    for i, (age, split) in enumerate([*((a, "train") for a in train_ages), *((a, "test") for a in test_ages)]):
        _img(root / f"f{i}.png", 20 + 5 * i)
        rows.append([f"f{i}.png", "female" if i % 2 else "male", "" if age is None else age, split])
    with open(root / "labels.csv", "w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return root


def test_training_rows_without_an_age_are_said_to_be_left_out_by_the_age_bar_not_missing_a_split(tmp_path, capsys):
    """Every split-train row without an age, the test rows aged: the default bar left out the training faces, and
    the error had advised giving some rows split train, which they had."""
    adult = DEFAULT_MIN_AGE + 12
    data = _aged_folder(tmp_path / "faces", [None] * 8, [adult] * 4)
    code, _, err = run_main(["train", "classifier", "--dataset", f"folder:{data}", "--out", str(tmp_path / "run"),
                             "--epochs", "1", "--cache", str(tmp_path / "cache")], capsys)
    assert code == 2
    assert f"--min-age {DEFAULT_MIN_AGE} (the default)" in err and "8 have no age" in err
    assert "--min-age -1" in err and "split train" not in err
    assert list_faces(f"folder:{data}", None, say=False).samples  # --min-age -1, which the error names, keeps them


def test_training_faces_younger_than_the_bar_are_counted_as_such(tmp_path):
    young, adult = DEFAULT_MIN_AGE - 8, DEFAULT_MIN_AGE + 12
    data = _aged_folder(tmp_path / "faces", [young] * 3 + [None] * 2, [adult] * 4)
    with pytest.raises(BiasMirrorError) as err:
        list_faces(f"folder:{data}", DEFAULT_MIN_AGE, say=False)
    said = str(err.value)
    assert "2 have no age" in said and f"3 are younger than {DEFAULT_MIN_AGE}" in said
    assert "give a lower --min-age" in said and "split train" not in said


def test_a_training_split_empty_of_itself_is_still_said_so(tmp_path):
    adult = DEFAULT_MIN_AGE + 12
    data = _aged_folder(tmp_path / "faces", [], [adult] * 4)
    with pytest.raises(BiasMirrorError, match="the training split is empty.*give some rows of its labels CSV split"):
        list_faces(f"folder:{data}", DEFAULT_MIN_AGE, say=False)


# 2. FairFace rows written as absolute paths, read through a link to the folder


def test_fairface_rows_naming_absolute_paths_are_read_through_a_link_to_the_folder(tmp_path):
    """The label files written with the real folder's absolute paths (and, mixed in, relative ones): opened through
    a link, every absolute row had been "leads outside the dataset folder", and the mixed rows lost without a
    word."""
    real = tmp_path / "fairface"
    names = [f"{part}/{i}.jpg" for i, part in enumerate(["train"] * 4 + ["val"] * 2)]
    for i, name in enumerate(names):
        _img(real / name, 20 + 30 * i)
    for part, label_file in (("train", "fairface_label_train.csv"), ("val", "fairface_label_val.csv")):
        rows = [["file", "age", "gender", "race"]]
        for i, name in enumerate(n for n in names if n.startswith(part)):
            written = (real / name).as_posix() if i % 2 == 0 else name  # every other row absolute
            rows.append([written, "20-29", "Male" if i % 2 else "Female", "White"])
        with open(real / label_file, "w", newline="") as fh:
            csv.writer(fh).writerows(rows)
    link = tmp_path / "ff_link"
    link.symlink_to(real, target_is_directory=True)
    direct, linked = read_fairface(real), read_fairface(link)
    assert len(direct.samples) == len(names) and not direct.skipped
    assert len(linked.samples) == len(names) and not linked.skipped
    assert sorted(os.path.relpath(s.path, link) for s in linked.samples) == sorted(names)


# 3. a training run with an unreadable face keeps its faces mapped for spawned workers


def test_an_unreadable_face_still_sends_spawned_workers_the_file_mapping_not_the_faces(tmp_path, tiny_utk):
    """tiny_utk holds one corrupt JPEG: the faces left after it had been copied out of the memory-mapped cache, and
    every spawned worker pickled the whole copy."""
    data = build_data(f"utkface:{tiny_utk}", SIZE, None, "none", ["gender"], None, 0, tmp_path / "cache")
    faces = np.asarray(data.images)
    assert len(faces) == len(data.samples) < len(list(tiny_utk.iterdir()))  # the unreadable one left out
    task = ClassifierTask(data, ClassifierConfig(size=SIZE, width=8), {"epochs": 1, "batch_size": 16, "lr": 1e-3})
    state = _Batches(task).__getstate__()
    assert len(state) < faces.nbytes / 4  # the file's name, the samples and the transforms: no copy of the faces
    in_worker = pickle.loads(state)  # the task as a spawned worker unpickles it
    assert isinstance(in_worker.data.images.faces, np.memmap)
    assert np.array_equal(np.asarray(in_worker.data.images), faces)
    for i, sample in enumerate(data.samples):  # each sample's own face, the unreadable one's row skipped
        assert np.array_equal(data.images[i], read_rgb(sample.path, SIZE))
    x, y = in_worker.batch(np.arange(len(data.samples)), "cpu")
    assert len(x) == len(y) == len(data.samples)


# 4. CelebA lists written "./img_align_celeba/NAME", as `find .` prints them


@pytest.mark.parametrize("prefix", ["./img_align_celeba/", "./", "img_align_celeba/"])
def test_celeba_lists_naming_the_images_from_the_dataset_folder_with_a_dot_are_read(tmp_path, prefix, caplog):
    """"./img_align_celeba/NAME" had been "not in the folder"; "./NAME" read, but its images also warned of as "not
    in list_attr_celeba.txt", which named them."""
    names = ["000001.jpg", "000002.jpg", "000003.jpg"]
    for i, name in enumerate(names):
        _img(tmp_path / "img_align_celeba" / name, 40 + 50 * i)
    (tmp_path / "list_attr_celeba.txt").write_text(
        f"{len(names)}\nMale Pale_Skin\n" + "".join(f"{prefix}{n} {1 if i % 2 else -1} -1\n" for i, n in enumerate(names)))
    (tmp_path / "list_eval_partition.txt").write_text("".join(f"{prefix}{n} 0\n" for n in names))
    with caplog.at_level(logging.WARNING):
        read = read_celeba(tmp_path)
    assert sorted(os.path.basename(s.path) for s in read.samples) == names and not read.skipped
    assert all(s.partition == "train" for s in read.samples)
    assert not [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]  # every image is listed


# 5. a link loop given as a dataset is called one, by every command that opens a dataset


@pytest.fixture
def loop(tmp_path):
    link = tmp_path / "loop"
    link.symlink_to(link)
    return link


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_dataset_that_is_a_link_loop_is_named_as_one(loop, kind):
    with pytest.raises(BiasMirrorError, match=re.escape(LINK_LOOP)) as err:
        open_dataset(f"{kind}:{loop}", None)
    assert str(loop) in str(err.value)


@pytest.mark.parametrize("kind", sorted(READERS))
def test_a_dataset_below_a_link_loop_is_named_as_one(loop, kind):
    with pytest.raises(BiasMirrorError, match=re.escape(LINK_LOOP)):
        open_dataset(f"{kind}:{loop / 'faces'}", None)


def test_train_evaluate_and_bench_detect_call_a_link_loop_one(tmp_path, loop, capsys):
    """They had said "the folder does not exist" (or "no FairFace label files"), as pathlib sees a loop."""
    model = make_classifier(tmp_path / "c.onnx")
    code, _, err = run_main(["train", "evaluate", "--model", str(model), "--dataset", f"fairface:{loop}",
                             "--no-dataset-cache"], capsys)
    assert code == 2 and LINK_LOOP in err and str(loop) in err
    code, _, err = run_main(["bench", "detect", "--data", f"utkface:{loop}", "--no-dataset-cache"], capsys)
    assert code == 2 and LINK_LOOP in err and str(loop) in err
