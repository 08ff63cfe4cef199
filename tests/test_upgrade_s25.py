"""Runs begun by older versions, continued by this one (an upgrade review, 2026-12): a checkpoint without a record of
its data (before 2026-11-25), or whose faces this version reads or frames otherwise, is refused by a resume, an
export and compare's reuse alike; a schedule not the length the run's data makes is refused by name, not by
PyTorch's error at the run's end; a CycleGAN --export-only renumbers logs that counted epochs from 0. Each old
checkpoint is made here as old versions wrote it: this version's, with what they did not keep taken out."""
from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import main
from inference.images import ALIGNED_FRAMING_VERSION, READER_VERSION
from inference.models import read_card
from training.checkpoints import CHECKPOINT, load_checkpoint
from training.csv_log import CsvLog

KEEP = ("a resume goes on only with the faces it began with, so start a new --out, or finish this run with the "
        "version that began it")


def _faces(root: Path, shape: tuple[int, int], n: int = 160) -> Path:
    """A UTKFace-style folder of ``n`` faces of ``shape`` (height, width), the gender visible in their brightness."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for i in range(n):
        gender, race = i % 2, (i // 2) % 5
        img = rng.integers(0, 60, (*shape, 3), dtype=np.uint8) + (120 if gender else 40)
        cv2.imwrite(str(root / f"{20 + i % 40}_{gender}_{race}_2017010100{i:07d}.jpg.chip.jpg"), img)
    return root


@pytest.fixture
def square(tmp_path) -> Path:
    return _faces(tmp_path / "square" / "UTKFace", (40, 40))


@pytest.fixture
def portrait(tmp_path) -> Path:
    return _faces(tmp_path / "portrait" / "UTKFace", (50, 40))


def _train(tmp_path: Path, data: Path, *extra: str) -> int:
    return main.main(["train", "classifier", "--dataset", f"utkface:{data}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                      "--out", str(tmp_path / "run"), "--threads", "1", *extra])


def _resume(tmp_path: Path, *extra: str) -> int:
    return main.main(["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache",
                      str(tmp_path / "cache"), "--threads", "1", *extra])


def _as_written_before(checkpoint: Path, *keys: str, faces: tuple[str, ...] = ()) -> None:
    """``checkpoint`` as an older version wrote it: without ``keys``, and its record of faces without ``faces``."""
    state = torch.load(checkpoint, weights_only=False)
    for key in keys:
        del state[key]
    for key in faces:
        del state["data_faces"][key]
    torch.save(state, checkpoint)


def _last_error(capsys) -> str:
    return capsys.readouterr().err.strip().splitlines()[-1]


def _add_faces(data: Path, n: int = 12) -> None:
    rng = np.random.default_rng(1)
    for i in range(n):
        cv2.imwrite(str(data / f"30_{i % 2}_{i % 5}_2017010200{i:07d}.jpg.chip.jpg"),
                    rng.integers(0, 60, (40, 40, 3), dtype=np.uint8) + (120 if i % 2 else 40))


UNRECORDED = ("this run began with a version of Bias Mirror from before 2026-11-25, which kept no record of the "
              "faces it trained on, so whether this version lists the same ones cannot be told")


# --- 1. a checkpoint without a record of its data ------------------------------------------------------------------

def test_a_resume_of_a_checkpoint_without_a_record_of_its_data_is_refused_as_a_listing_changed_is(
        tmp_path, square, capsys):
    """It had trained on the faces this version lists (other ones: near-identical photographs moved, groups whose
    labels disagree dropped) without a word, then crashed near its end on the schedule sized for the old count."""
    assert _train(tmp_path, square, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    _as_written_before(checkpoint, "data", "data_faces")
    _add_faces(square)
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    assert _last_error(capsys) == f"error: {checkpoint}: {UNRECORDED}: {KEEP}"
    assert load_checkpoint(checkpoint)["step"] == 2


def test_a_finished_run_without_a_record_of_its_data_is_not_exported_again_with_todays_counts(
        tmp_path, square, capsys):
    """Its --resume only exports: the card had been rewritten with today's n_train and composition for weights
    trained on other faces."""
    assert _train(tmp_path, square) == 0
    run = tmp_path / "run"
    card = (run / "model.onnx").read_bytes()
    _as_written_before(run / CHECKPOINT, "data", "data_faces")
    _add_faces(square)
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    assert _last_error(capsys) == f"error: {run / CHECKPOINT}: {UNRECORDED}: {KEEP}"
    assert (run / "model.onnx").read_bytes() == card


def test_compare_does_not_reuse_a_variant_without_a_record_of_its_data_nor_say_its_faces_are_the_datasets(
        tmp_path, square, capsys):
    cmp = tmp_path / "cmp"
    base = ["train", "compare", "--dataset", f"utkface:{square}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(cmp), "--threads", "1"]
    assert main.main([*base, "--max-steps", "1"]) == 0
    assert main.main(["train", "classifier", "--resume", "--out", str(cmp / "unbalanced"), "--cache",
                      str(tmp_path / "cache"), "--threads", "1"]) == 0  # the first variant finished
    _as_written_before(cmp / "unbalanced" / CHECKPOINT, "data", "data_faces")
    capsys.readouterr()
    assert main.main(base) == 2
    out, err = capsys.readouterr()
    assert err.strip().splitlines()[-1] == (f"error: {cmp / 'unbalanced' / CHECKPOINT}: the unbalanced variant "
                                            f"finished here is not reused: {UNRECORDED}: {KEEP}")
    assert "reusing" not in out and "its faces are the dataset's now" not in out
    assert not (cmp / "balanced").exists()


def test_a_resume_whose_schedule_is_not_the_length_its_data_makes_is_refused_naming_both(tmp_path, square, capsys):
    """A backstop for any other drift: the one-cycle schedule restored from the checkpoint, sized for another
    number of steps, had stopped the run near its end with PyTorch's "Tried to step 31 times", said as an error in
    Bias Mirror itself, and every later --resume stopped there again."""
    assert _train(tmp_path, square, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    state = torch.load(checkpoint, weights_only=False)
    now = state["schedulers"]["net"]["total_steps"]
    state["schedulers"]["net"]["total_steps"] = now - 1
    torch.save(state, checkpoint)
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    err = _last_error(capsys)
    assert err.startswith(f"error: {checkpoint}: the learning-rate schedule this run began with is {now - 1} steps "
                          f"long, and this version makes it {now} (1 epoch × {now} steps)"), err
    assert "unexpected" not in err
    assert load_checkpoint(checkpoint)["step"] == 2


# --- 2. faces read or framed by another version ----------------------------------------------------------------

def test_the_record_of_a_runs_faces_keeps_the_versions_that_read_and_framed_them(tmp_path, square):
    assert _train(tmp_path, square, "--max-steps", "1") == 0
    record = load_checkpoint(tmp_path / "run")["data_faces"]
    assert (record["reader"], record["framing"]) == (READER_VERSION, ALIGNED_FRAMING_VERSION)


@pytest.mark.parametrize("key, said", [
    ("reader", f"reads images by other rules (reader version {READER_VERSION}, where this run began with "
               f"{READER_VERSION - 1})"),
    ("framing", f"frames faces otherwise (framing version {ALIGNED_FRAMING_VERSION}, where this run began with "
                f"{ALIGNED_FRAMING_VERSION - 1})")])
def test_a_resume_whose_faces_this_version_reads_or_frames_otherwise_is_refused(tmp_path, square, capsys, key,
                                                                                 said):
    assert _train(tmp_path, square, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    state = torch.load(checkpoint, weights_only=False)
    state["data_faces"][key] -= 1
    torch.save(state, checkpoint)
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    assert _last_error(capsys) == (f"error: {checkpoint}: this version of Bias Mirror {said} than the one this run "
                                   f"began with, so the faces it would train on are not the ones it began with: "
                                   f"{KEEP}")


def _as_old(checkpoint, old: str) -> None:
    """``checkpoint`` as an older version wrote it: a record of its faces without the reader and framing versions, or
    (before that record) the counts alone."""
    if old == "counts alone":
        _as_written_before(checkpoint, "data_faces")
    else:
        _as_written_before(checkpoint, faces=("reader", "framing"))


@pytest.mark.parametrize("old", ["record without versions", "counts alone"])
def test_an_old_checkpoint_on_images_that_are_not_square_is_refused(tmp_path, portrait, capsys, old):
    """Up to 2026-12-07 a face image that is not square was squashed to a square, where this version takes its
    centred square: a run begun then on such images (CelebA's, a folder of portraits) went on with faces framed
    otherwise without a word, and its card's test figures were measured on the new framing."""
    assert _train(tmp_path, portrait, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    _as_old(checkpoint, old)
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    err = _last_error(capsys)
    assert err.startswith(f"error: {checkpoint}: this run's checkpoint does not record how its version framed "
                          "faces, and versions up to 2026-12-07 squashed a face image that is not square to a "
                          "square, where this version takes its centred square; this run's data holds 160 such "
                          "images (e.g. 20_0_0_20170101000000000.jpg.chip.jpg, 40×50 px)"), err
    assert err.endswith(KEEP)
    assert load_checkpoint(checkpoint)["step"] == 2


@pytest.mark.parametrize("old", ["record without versions", "counts alone"])
def test_an_old_checkpoint_on_square_images_resumes(tmp_path, square, old):
    """Square faces were framed alike before and after: nothing to refuse."""
    assert _train(tmp_path, square, "--max-steps", "2") == 0
    checkpoint = tmp_path / "run" / CHECKPOINT
    _as_old(checkpoint, old)
    assert _resume(tmp_path, "--max-steps", "1") == 0
    record = load_checkpoint(checkpoint)["data_faces"]
    assert (record["reader"], record["framing"]) == (READER_VERSION, ALIGNED_FRAMING_VERSION)


# --- the CycleGAN's checkpoints, and 4. its --export-only's logs ---------------------------------------------------

def _train_gan(out: Path, a: Path, b: Path, *extra: str) -> int:
    return main.main(["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset", "smoke",
                      "--min-domain-size", "4", "--iters-per-epoch", "1", "--n-epochs", "2", "--n-epochs-decay", "0",
                      "--sample-every", "0", "--eval-faces", "12", "--threads", "1",
                      "--cache", str(out.parent / "cache"), "--out", str(out), *extra])


def _export_gan(out: Path) -> int:
    return main.main(["train", "cyclegan", "--out", str(out), "--export-only", "--threads", "1",
                      "--cache", str(out.parent / "cache")])


def _domains(root: Path, shape: tuple[int, int]) -> tuple[Path, Path]:
    faces = _faces(root / "all", shape, n=60)
    a, b = root / "A", root / "B"
    for folder, some in ((a, sorted(faces.iterdir())[:30]), (b, sorted(faces.iterdir())[30:])):
        folder.mkdir()
        for p in some:
            shutil.copy(p, folder / p.name)
    return a, b


def _epochs(path: Path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as fh:
        return [r["epoch"] for r in csv.DictReader(fh)]


def test_a_cyclegan_export_only_renumbers_logs_that_counted_epochs_from_0(tmp_path):
    """A plain --resume renumbered them, an --export-only did not: the exported run's epochs.csv said 0 where the
    console and a later resume say 1."""
    a, b = _domains(tmp_path / "data", (40, 40))
    run = tmp_path / "run"
    assert _train_gan(run, a, b) == 0
    fresh = _epochs(run / "epochs.csv")
    assert fresh == ["1", "2"]
    CsvLog(run / "epochs.csv").renumber("epoch", lambda r: int(r["epoch"]) - 1)  # as the logs were written then
    state = torch.load(run / CHECKPOINT, weights_only=False)
    state["extra"] = {}  # without the mark that its logs count from 1
    torch.save(state, run / CHECKPOINT)
    assert _export_gan(run) == 0
    assert _epochs(run / "epochs.csv") == fresh
    assert _export_gan(run) == 0  # again: not renumbered twice
    assert _epochs(run / "epochs.csv") == fresh


def test_a_cyclegan_export_only_refuses_a_checkpoint_without_a_record_and_old_framing_of_portraits(tmp_path,
                                                                                                   capsys):
    a, b = _domains(tmp_path / "data", (50, 40))
    run = tmp_path / "run"
    assert _train_gan(run, a, b, "--max-steps", "1") == 0
    checkpoint = run / CHECKPOINT
    saved = checkpoint.read_bytes()
    _as_written_before(checkpoint, faces=("reader", "framing"))
    capsys.readouterr()
    assert _export_gan(run) == 2
    err = _last_error(capsys)
    assert "this run's checkpoint does not record how its version framed faces" in err and err.endswith(KEEP), err
    assert "60 such images" in err
    checkpoint.write_bytes(saved)
    _as_written_before(checkpoint, "data", "data_faces")
    assert _export_gan(run) == 2
    assert _last_error(capsys) == f"error: {checkpoint}: {UNRECORDED}: {KEEP}"
    assert not (run / "filter_A2B.onnx").exists()


def test_the_refusals_name_no_change_for_a_checkpoint_of_this_version(tmp_path, square):
    """What the checks leave alone: a checkpoint of this version, on its own faces, resumes and exports."""
    assert _train(tmp_path, square, "--max-steps", "2") == 0
    assert _resume(tmp_path) == 0
    assert read_card(tmp_path / "run" / "model.onnx").training["n_train"] > 0


def test_an_image_of_too_many_pixels_for_pillow_is_measured_as_training_read_it(tmp_path, monkeypatch):
    """Pillow refuses a file over 2 × MAX_IMAGE_PIXELS (~179 MP) with an error of no OSError kind, which OpenCV reads
    (training did): the resume's check of which images are square had stopped with a traceback on it."""
    from PIL import Image

    from training.same_data import image_sides

    path = tmp_path / "big.jpg"
    cv2.imwrite(str(path), np.full((50, 40, 3), 128, np.uint8))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # 2,000 pixels: past twice the bar, as 182 MP is past 179
    assert image_sides(str(path)) == (40, 50)
