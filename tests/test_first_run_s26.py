"""A first run, with UTKFace where the README says, somewhere else, or not at all.

- A copy unpacked one level too deep (UTKFace/UTKFace/*.jpg) passed the tests' check of the shared copy, which then
  failed with "ValueError: need at least one array to stack", naming neither the folder nor the cause; the UTKFace
  reader said "no images found" of the outer folder.
- `doctor` said nothing of the dataset.
- `bench detect` and `bench train` without --data said "/x/shared/datasets/utkface: the UTKFace folder does not
  exist" of a path the user never gave (built from where Bias Mirror is installed), and nothing of --data.
- `bench --source` of a path that does not exist said "give --source: a folder of face images (e.g.
  ../shared/datasets/utkface/UTKFace) or a video", suggesting the kind of path typed.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import pytest

import inference.bench_detect
import inference.defaults
import inference.doctor
from inference.bench_frames import make_frames
from inference.datasets.sample import IMAGE_EXTENSIONS
from inference.datasets.utkface import read_utkface
from inference.errors import BiasMirrorError
from tests import conftest
from tests.conftest import UTK_ROOT, run_main

NAMES = ("25_0_1_20170113132417184.jpg.chip.jpg", "31_1_0_20170117093017435.jpg.chip.jpg")


def utkface_names_in(folder: Path) -> Path:
    """``folder`` holding files named as UTKFace's images (empty: only names are read here)."""
    folder.mkdir(parents=True)
    for name in NAMES:
        (folder / name).write_bytes(b"")
    return folder


@pytest.fixture
def nested(tmp_path) -> Path:
    """A dataset folder whose UTKFace/ was unpacked into a folder already named UTKFace: utkface/UTKFace/UTKFace/."""
    utkface_names_in(tmp_path / "utkface" / "UTKFace" / "UTKFace")
    return tmp_path / "utkface"


# --- 2. the tests' check of the shared copy, and the UTKFace reader ---------------------------------------------------

def test_the_tests_check_names_a_copy_unpacked_one_level_too_deep(nested, monkeypatch):
    outer = nested / "UTKFace"
    monkeypatch.setattr(conftest, "UTK_ROOT", outer)
    with pytest.raises(pytest.fail.Exception) as failed:
        conftest.require_utk()
    said = str(failed.value)
    assert f"{outer} holds no UTKFace image, but {outer / 'UTKFace'} does" in said, said
    assert "one level too deep" in said and f"move its images up into {outer}" in said, said


def test_the_tests_check_refuses_a_folder_of_no_utkface_image(tmp_path, monkeypatch):
    (tmp_path / "UTKFace").mkdir()
    (tmp_path / "UTKFace" / "holiday.jpg").write_bytes(b"")  # an image, but not named as UTKFace names them
    monkeypatch.setattr(conftest, "UTK_ROOT", tmp_path / "UTKFace")
    with pytest.raises(pytest.fail.Exception, match=r"holds no UTKFace image; expected a folder of UTKFace images "
                                                    r".*susanqq\.github\.io/UTKFace"):
        conftest.require_utk()


def test_the_tests_check_passes_the_shared_copy():
    assert conftest.require_utk() == UTK_ROOT


def test_the_utkface_reader_points_out_the_nesting(nested):
    outer, inner = nested / "UTKFace", nested / "UTKFace" / "UTKFace"
    with pytest.raises(BiasMirrorError) as refused:
        read_utkface(nested)
    said = str(refused.value)
    assert said.startswith(f"{outer}: no images found, but {inner} does: UTKFace.tar.gz was unpacked one level too "
                           f"deep (UTKFace/UTKFace/); move its images up into {outer}, or give utkface:{inner}"), said
    assert sorted(Path(s.path).name for s in read_utkface(f"{inner}").samples) == sorted(NAMES)  # as it advises


def test_the_utkface_reader_still_says_the_layout_of_an_empty_folder(tmp_path):
    with pytest.raises(BiasMirrorError, match=r"no images found; expected a folder of UTKFace images named"):
        read_utkface(tmp_path)


# --- 3. doctor says where the shared copy is ------------------------------------------------------------------------

DOCTOR = ["doctor", "--cameras", "0", "--no-gpu-probe"]


def test_doctor_says_where_the_shared_copy_is_and_how_many_images_it_holds(capsys):
    images = sum(n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".") for n in os.listdir(UTK_ROOT))
    code, out, _ = run_main(DOCTOR, capsys)
    assert code == 0 and f"UTKFace (the tests' faces; bench detect and bench train read it where --data is not " \
                          f"given): {inference.doctor.DEFAULT_DATASET_DIR / 'UTKFace'}, {images} image(s)" in out, out
    # as the path was built, not resolved (UTK_ROOT is): a ../shared that is a link had failed the test


def test_doctor_without_the_shared_copy_says_so_and_still_passes(tmp_path, monkeypatch, capsys):
    nowhere = tmp_path / "utkface"
    monkeypatch.setattr(inference.doctor, "DEFAULT_DATASET_DIR", nowhere, raising=False)
    code, out, _ = run_main(DOCTOR, capsys)
    assert code == 0, out  # an app user has no dataset: nothing to fail
    assert f"not found at {nowhere}; the app, run and audit need no dataset (to get it: " \
           f"https://susanqq.github.io/UTKFace/" in out, out


def test_doctor_names_a_shared_copy_unpacked_one_level_too_deep(nested, monkeypatch, capsys):
    monkeypatch.setattr(inference.doctor, "DEFAULT_DATASET_DIR", nested, raising=False)
    code, out, _ = run_main(DOCTOR, capsys)
    assert code == 0 and f"{nested / 'UTKFace'} holds no image, but {nested / 'UTKFace' / 'UTKFace'} does" in out, out


# --- 4. bench detect and bench train without --data -----------------------------------------------------------------

def point_the_default_at(folder: Path, monkeypatch) -> None:
    """--data's default, the shared UTKFace copy, moved to ``folder``; and so is the benches' own name for it, which
    their --data took as its argparse default before (so that, there, they fail on ``folder`` too, not run on the
    real copy)."""
    monkeypatch.setattr(inference.defaults, "DEFAULT_DATASET_DIR", folder, raising=False)
    monkeypatch.setattr(inference.bench_detect, "DEFAULT_DATASET", f"utkface:{folder}")
    if importlib.util.find_spec("torch") is not None:
        from training import bench_train

        monkeypatch.setattr(bench_train, "DEFAULT_DATASET", f"utkface:{folder}", raising=False)


@pytest.fixture(params=[["bench", "detect", "--detectors", "haar-default"],
                        ["bench", "train", "--device", "cpu", "--trainers", "classifier"]],
                ids=["bench detect", "bench train"])
def bench(request) -> list[str]:
    if request.param[1] == "train":
        pytest.importorskip("torch")
    return request.param


def test_a_bench_whose_default_data_is_missing_says_it_was_the_default_and_names_data(bench, tmp_path, monkeypatch,
                                                                                         capsys):
    nowhere = tmp_path / "shared" / "datasets" / "utkface"
    point_the_default_at(nowhere, monkeypatch)
    code, _, err = run_main(bench, capsys)
    assert code == 2 and (f"error: --data was not given, and its default, the shared UTKFace copy at {nowhere}, "
                          "does not exist; give --data KIND:PATH (e.g. --data utkface:DIR of UTKFace from "
                          "https://susanqq.github.io/UTKFace/") in err, err


def test_a_bench_whose_default_data_is_nested_says_why_it_cannot_be_read(bench, nested, monkeypatch, capsys):
    point_the_default_at(nested, monkeypatch)
    code, _, err = run_main(bench, capsys)
    assert code == 2 and (f"--data was not given, and its default, the shared UTKFace copy at {nested / 'UTKFace'}, "
                          f"cannot be read (no images found, but {nested / 'UTKFace' / 'UTKFace'} does") in err, err


def test_a_bench_given_data_that_is_missing_names_it_alone(bench, tmp_path, capsys):
    missing = tmp_path / "mine"
    code, _, err = run_main([*bench, "--data", f"utkface:{missing}"], capsys)
    assert code == 2 and f"error: {missing}: the UTKFace folder does not exist" in err, err
    assert "was not given" not in err, err


# --- 5. bench --source that does not exist --------------------------------------------------------------------------

def test_bench_says_a_missing_source_does_not_exist(tmp_path):
    missing = tmp_path / "faces"
    with pytest.raises(BiasMirrorError) as refused:
        make_frames(str(missing), 1, (64, 48), 1)
    assert str(refused.value) == (f"{missing}: the source does not exist (give a folder of face images, an image or "
                                  "a video)")


def test_bench_on_the_command_line_says_a_missing_source_does_not_exist(tmp_path, capsys):
    missing = tmp_path / "faces"
    code, _, err = run_main(["bench", "--source", str(missing), "--no-baseline", "--frames", "1", "--warmup", "0",
                             "--providers", "cpu", "--no-filter"], capsys)
    assert code == 2 and f"error: {missing}: the source does not exist" in err and "e.g." not in err, err


def test_bench_still_says_what_to_give_for_a_source_of_another_kind(tmp_path):
    fifo = tmp_path / "pipe"
    if not hasattr(os, "mkfifo"):
        pytest.skip("no named pipes here")
    os.mkfifo(fifo)  # there, but neither a folder, an image nor a video
    with pytest.raises(BiasMirrorError, match="give --source: a folder of face images"):
        make_frames(str(fifo), 1, (64, 48), 1)
