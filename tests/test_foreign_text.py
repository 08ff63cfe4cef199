"""Text from other systems and datasets, read as its user meant it.

- `train adopt --labels Female,Male` (as FairFace writes them) had skipped the label-order check and written a model
  every command then refused; labels without female and male made a model no command can host.
- A label typed in two Unicode spellings (decomposed on macOS, composed on Windows: "Ärzte") had been two groups
  that print alike, every table and gate computed on halves of one.
- `run --out` with a legal name near the file system's limit had failed on its hidden lock file, a name its user
  never gave ("File name too long").
"""
from __future__ import annotations

import logging
import os
import shutil
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.errors import BiasMirrorError
from tests.conftest import run_main, utk_images

torch = pytest.importorskip("torch")

from inference.models import load_model  # noqa: E402
from tests.test_adopt import BrightnessNet, export, quiet  # noqa: E402
from training.adopt import adopt  # noqa: E402

COMPOSED, DECOMPOSED = (unicodedata.normalize(form, "Ärzte") for form in ("NFC", "NFD"))
RACE_COMPOSED, RACE_DECOMPOSED = (unicodedata.normalize(form, "Métis") for form in ("NFC", "NFD"))


# --- adopt: --labels in another case, or without female and male --------------------------------------------------

@pytest.fixture
def brightness_classifier(tmp_path) -> Path:
    return export(BrightnessNet(), tmp_path / "classifier.onnx")  # outputs female, male


def _adopt(src: Path, out: Path, labels: list[str], dataset: Path, echo=quiet) -> Path:
    return adopt(src, out, "classifier", labels=labels, value_range="unit", dataset=f"utkface:{dataset}", n=40,
                 echo=echo)


def test_labels_female_and_male_in_another_case_are_checked_and_written_in_lower_case(tmp_path, tiny_utk,
                                                                                      brightness_classifier):
    # in the wrong order, as FairFace spells them: the order is checked, and refused as in lower case
    with pytest.raises(BiasMirrorError, match="right on 0.0% of 40 labelled faces.*other order"):
        _adopt(brightness_classifier, tmp_path / "swapped.onnx", ["Male", "Female"], tiny_utk.parent)
    assert not (tmp_path / "swapped.onnx").exists()
    said: list[str] = []
    out = _adopt(brightness_classifier, tmp_path / "adopted.onnx", ["Female", "Male"], tiny_utk.parent, said.append)
    model = load_model(out)
    assert model.labels == ("female", "male")
    assert model.card.training["adopted"]["checks"]["labels"]["order"] == "confirmed"
    model.require_gender("--classifier")  # what every command asks of it
    assert sum("--labels Female,Male read as female,male" in line for line in said) == 1, said


@pytest.mark.parametrize("labels,refused", [
    (["smile", "neutral"], "has no 'female' and 'male'"),
    (["female", "other"], "has no 'male'"),
    (["female", "Female"], "--labels female,Female names a label twice"),
])
def test_labels_no_command_can_host_are_refused_at_adopt(tmp_path, tiny_utk, brightness_classifier, labels, refused):
    """A classifier of smile,neutral was written, and every command (app, run, audit, evaluate) refused it after."""
    out = tmp_path / "adopted.onnx"
    with pytest.raises(BiasMirrorError, match=refused) as err:
        _adopt(brightness_classifier, out, labels, tiny_utk.parent)
    assert str(brightness_classifier) in str(err.value) and not out.exists()


# --- a label in two Unicode spellings ------------------------------------------------------------------------------

def _images(folder: Path, n: int) -> list[str]:
    folder.mkdir()
    rng = np.random.default_rng(0)
    names = [f"{i}.png" for i in range(n)]
    for name in names:
        cv2.imwrite(str(folder / name), rng.integers(0, 255, (24, 24, 3), dtype=np.uint8))
    return names


def _in_two_spellings(names: list[str], spellings: tuple[str, str]) -> list[str]:
    return [spellings[i % 2] for i in range(len(names))]


def test_a_label_typed_in_two_unicode_spellings_is_one_label_and_said(tmp_path, caplog):
    from inference.datasets import read_folder

    folder = tmp_path / "faces"
    names = _images(folder, 6)
    races = _in_two_spellings(names, (RACE_COMPOSED, RACE_DECOMPOSED))
    groups = _in_two_spellings(names, (COMPOSED, DECOMPOSED))
    (folder / "labels.csv").write_text("file,gender,race,group\n" + "".join(
        f"{name},female,{race},{group}\n" for name, race, group in zip(names, races, groups)), encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        read = read_folder(folder)
    assert {s.race for s in read.samples} == {RACE_COMPOSED} and {s.group for s in read.samples} == {COMPOSED}
    said = [r.getMessage() for r in caplog.records if "two Unicode spellings" in r.getMessage()]
    assert len(said) == 1 and f"race {RACE_COMPOSED!r}" in said[0] and f"group {COMPOSED!r}" in said[0], said


def test_a_groups_csv_group_typed_in_two_unicode_spellings_is_one_group(tmp_path, caplog):
    """`audit --groups`: the reviewer's "Ärzte", 12 faces and 12 faces, two groups in every table."""
    from inference.audit.cli import read_dataset

    folder = tmp_path / "faces"
    names = _images(folder, 6)
    groups_csv = tmp_path / "groups.csv"
    groups_csv.write_text("file,group\n" + "".join(
        f"{name},{group}\n" for name, group in zip(names, _in_two_spellings(names, (COMPOSED, DECOMPOSED)))),
        encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        read, _ = read_dataset(f"folder:{folder}", str(groups_csv), cache_dir=None)
    assert [s.group for s in read.samples] == [COMPOSED] * len(names)
    assert "two Unicode spellings" in caplog.text and str(groups_csv) in caplog.text


# --- an output name near the file system's limit -------------------------------------------------------------------

def _longest_name(folder: Path, ending: str, fill: str = "実験") -> str:
    """A name of exactly as many bytes as the file system holding ``folder`` takes, ending in ``ending``."""
    limit = os.pathconf(folder, "PC_NAME_MAX")
    room = limit - len(os.fsencode(ending))
    stem = fill * (room // len(os.fsencode(fill)))
    return stem + "x" * (room - len(os.fsencode(stem))) + ending


def test_run_writes_an_out_whose_legal_name_is_as_long_as_the_file_system_takes(tmp_path, tiny_models, capsys):
    source = tmp_path / "faces"
    source.mkdir()
    shutil.copy(utk_images(1)[0], source / "face.jpg")
    out = tmp_path / _longest_name(tmp_path, ".csv")
    out.touch()  # the file system takes the name
    out.unlink()
    code, _, err = run_main(["run", "--source", str(source), "--out", str(out), "--no-filter",
                             "--classifier", str(tiny_models["classifier"]), "--threads", "1"], capsys)
    assert code == 0, err
    assert out.read_text(encoding="utf-8").startswith("frame") and set(os.listdir(tmp_path)) == {"faces", out.name}


def test_hidden_names_of_long_outputs_fit_and_stay_each_outputs_own(tmp_path):
    from inference.run_cli import _lock_for

    limit = os.pathconf(tmp_path, "PC_NAME_MAX")
    first, second = _longest_name(tmp_path, ".a.csv"), _longest_name(tmp_path, ".b.csv")
    locks = [_lock_for(tmp_path / name) for name in (first, second)]
    assert all(len(os.fsencode(lock.name)) <= limit and lock.name.startswith(".") for lock in locks)
    assert locks[0] != locks[1] and _lock_for(tmp_path / first) == locks[0]  # two runs on one CSV find one lock
    assert _lock_for(tmp_path / "rows.csv").name == ".rows.csv.lock"  # a short name's as it was


def test_a_long_output_is_written_whole_under_a_name_that_fits(tmp_path):
    from inference.writing import written_whole

    out = tmp_path / _longest_name(tmp_path, ".onnx")
    with written_whole(out) as part:
        part.write_bytes(b"model")
    assert out.read_bytes() == b"model" and os.listdir(tmp_path) == [out.name]


def test_a_long_output_is_staged_under_a_name_that_fits(tmp_path):
    from inference.writing import Staged

    out = tmp_path / _longest_name(tmp_path, ".json")
    staged = Staged()
    staged.path(out).write_bytes(b"metrics")
    staged.put_in_place()
    assert out.read_bytes() == b"metrics" and os.listdir(tmp_path) == [out.name]
