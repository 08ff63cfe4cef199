"""A dataset moved, beyond the classifier's resume (tests/test_resume_moved_dataset.py): a CycleGAN run whose dataset
or domain folders were moved resumes from the new place where it holds the faces the run began with, says and
records the move, and a plain --resume or --export-only whose folder is gone says to give its new place; a teacher
trained on a folder moved since is taken where a record shows the same faces; a card's Markdown gives the move."""
from __future__ import annotations

import shlex
import shutil
import zlib
from pathlib import Path

import pytest

import main
from inference.card import classifier_card
from inference.card_markdown import card_markdown
from inference.errors import BiasMirrorError
from inference.models import read_card
from training.checkpoints import load_checkpoint
from inference.runtime import RuntimeConfig
from training.data.teachers import open_teachers
from training.nets.cam_classifier import CamClassifier, ClassifierConfig
from training.tasks.classifier_report import export_classifier

from .conftest import labelled_folder
from .test_cyclegan import train, train_folders, two_folders, write_utk


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


def again(run: Path, *extra: str) -> int:
    """The run in ``run`` resumed (or, with --export-only, exported), decoding into its own cache."""
    how = () if "--export-only" in extra else ("--resume",)
    return main.main(["train", "cyclegan", "--out", str(run), *how, "--cache", str(run.parent / "cache"), *extra])


def a_face_of(run: Path) -> str:
    """A face the run's checkpoint records, as its path below its folder."""
    record = load_checkpoint(run)["data_faces"]
    return zlib.decompress(record["faces"]).decode("utf-8").split("\n")[0].split("\t")[0]


def test_a_run_whose_domain_folders_moved_goes_on_at_their_new_places(tmp_path, utk, capsys):
    """Moving the folders of a --domain-a/--domain-b run made it impossible to resume: the plain --resume failed on
    the old folders, and the new places were refused as changed settings, though the checkpoint's record of the
    faces keeps their paths below their folders."""
    a, b = two_folders(tmp_path / "data", utk)
    run = tmp_path / "run"
    assert train_folders(run, a, b, "--n-epochs", "3", "--max-steps", "1") == 0
    moved = (tmp_path / "data").rename(tmp_path / "moved")
    new_a, new_b = moved / a.name, moved / b.name
    capsys.readouterr()
    assert again(run) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {a}: domain A's folder ({a}) and domain B's folder ({b}) this run began on are no "
                          "longer there"), err
    assert "as in --resume --domain-a NEW_PLACE --domain-b NEW_PLACE" in err
    assert load_checkpoint(run)["step"] == 1  # nothing trained

    assert again(run, "--domain-a", str(new_a), "--domain-b", str(new_b), "--max-steps", "1") == 0
    out = capsys.readouterr().out
    assert (f"domain A's folder moved: this run began on {a} and goes on with {new_a}; domain B's folder moved: this "
            f"run began on {b} and goes on with {new_b} (the same ") in out, out
    state = load_checkpoint(run)
    assert state["step"] == 2
    assert [(m["option"], m["from"], m["to"]) for m in state["config"]["dataset_moves"]] == [
        ("--domain-a", str(a), str(new_a)), ("--domain-b", str(b), str(new_b))]
    assert again(run) == 0  # the new places are the run's from now on: a plain --resume finishes it there
    card = read_card(run / "filter_A2B.onnx").training
    assert card["dataset_root"] == f"{new_a} | {new_b}"
    assert [m["to"] for m in card["dataset_moves"]] == [str(new_a), str(new_b)]  # as the note said it would


def test_a_moved_dataset_goes_on_only_with_its_faces_and_its_other_settings(tmp_path, capsys):
    """Accepting a new place must not accept other data: faces gone are named, and another setting given with the
    new place is still refused (the place alone said to be free to change)."""
    began = write_utk(tmp_path / "UTKFace", per_cell=14)
    run = tmp_path / "run"
    assert train(run, began, "--n-epochs", "3", "--max-steps", "1") == 0
    moved = began.rename(tmp_path / "moved")
    capsys.readouterr()
    for how in ("--resume", "--export-only"):
        assert again(run, *(["--export-only"] if how == "--export-only" else [])) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"error: {began}: the dataset this run began on is no longer there"), err
        assert f"give its new place, as in {how} --dataset utkface:NEW_PLACE" in err

    assert again(run, "--dataset", f"utkface:{moved}", "--lr", "1e-3") == 2
    err = capsys.readouterr().err
    assert "--lr 0.001 differs from the checkpoint's 0.0002" in err
    assert "--dataset alone may name another place" in err

    short = tmp_path / "short"
    shutil.copytree(moved, short)
    gone = a_face_of(run)
    (short / gone).unlink()
    assert again(run, "--dataset", f"utkface:{short}") == 2
    err = capsys.readouterr().err
    # the recipe composes its domains again from what it finds: one face gone changes more of the mix than itself
    assert (f"--dataset utkface:{short} does not hold the faces this run began on at utkface:{began}" in err
            and " gone (e.g. " in err), err
    assert load_checkpoint(run)["step"] == 1  # nothing trained

    assert again(run, "--dataset", f"utkface:{moved}", "--max-steps", "1") == 0
    assert f"the dataset moved: this run began on utkface:{began} and goes on with utkface:{moved}" in \
        capsys.readouterr().out
    assert load_checkpoint(run)["config"]["dataset"] == f"utkface:{moved}"


def classifier(tmp_path: Path, folder: Path, out: str, *extra: str) -> int:
    return main.main(["train", "classifier", "--dataset", f"folder:{folder}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "8", "--cache", str(tmp_path / "cache"), "--threads", "1",
                      "--out", str(tmp_path / out), *extra])


def test_a_teacher_trained_before_its_folder_moved_is_taken_where_a_record_shows_the_same_faces(tmp_path, capsys):
    """Its card's dataset_root was compared with the student's folder alone: a student begun with the teacher could
    not resume once the folder moved, and a new student there was refused as trained on "another folder" without a
    word of the way on. The student's own record of the move, or the teacher's card once its run has gone on at
    the new place, shows the same faces."""
    began = labelled_folder(tmp_path / "photos", 80, 0)
    assert classifier(tmp_path, began, "teacher") == 0
    teacher = tmp_path / "teacher" / "model.onnx"
    assert classifier(tmp_path, began, "student", "--distill-from", str(teacher), "--max-steps", "1") == 0
    moved = began.rename(tmp_path / "moved")
    assert main.main(["train", "classifier", "--out", str(tmp_path / "student"), "--resume", "--dataset",
                      f"folder:{moved}", "--max-steps", "1"]) == 0
    assert load_checkpoint(tmp_path / "student")["step"] == 2

    capsys.readouterr()
    assert classifier(tmp_path, moved, "another", "--distill-from", str(teacher)) == 2
    err = capsys.readouterr().err
    assert f"teacher was trained on the folder {began}, not on {moved}" in err
    assert f"If {moved} is that folder moved since" in err
    way = f"train classifier --out TEACHER_RUN --resume --dataset folder:{moved}"
    assert way in err
    assert main.main(shlex.split(way.replace("TEACHER_RUN", shlex.quote(str(tmp_path / "teacher"))))) == 0
    assert read_card(teacher).training["dataset_moves"][0]["to"] == f"folder:{moved}"
    assert classifier(tmp_path, moved, "another", "--distill-from", str(teacher), "--max-steps", "1") == 0


def test_a_teachers_card_recording_a_move_from_this_folder_is_taken_and_no_other(tmp_path):
    """The places a card's dataset_moves names held the teacher's faces, checked by its run's checkpoint: a folder
    moved back to where the teacher began is the teacher's still."""
    a, b, c = (str(tmp_path / name) for name in "abc")
    net, teacher = CamClassifier(ClassifierConfig(size=32, width=8)).eval(), tmp_path / "teacher.onnx"
    moves = [{"option": "--dataset", "from": f"folder:{a}", "to": f"folder:{b}", "at_step": 1}]
    export_classifier(net, 32, teacher, classifier_card("teacher", 32, ["male", "female"], net.cam_grid(), "m", {
        "dataset": "folder", "dataset_root": b, "dataset_moves": moves}, {}))
    cpu = RuntimeConfig(provider="cpu")
    for root in (a, b):
        assert len(open_teachers([str(teacher)], "folder", root, cpu)) == 1
    with pytest.raises(BiasMirrorError, match=f"teacher was trained on the folder {b}, not on {c}"):
        open_teachers([str(teacher)], "folder", c, cpu)


def test_the_cards_markdown_gives_how_its_faces_were_taken_and_where_its_dataset_moved(tmp_path):
    """doctor --cards and the app's Card dialog showed neither the training block's "faces" nor its "dataset_moves":
    the Markdown's command named the first place of a dataset moved since, and said nothing of the faces being
    taken whole, which `train evaluate --aligned` measures alike."""
    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    faces = "each image whole, as an aligned face"
    a, b, c = (f"folder:{tmp_path / name}" for name in "abc")
    moves = [{"option": "--dataset", "from": a, "to": b, "at_step": 2},
             {"option": "--dataset", "from": b, "to": c, "at_step": 5}]
    card = classifier_card("moved", 32, ["male", "female"], net.cam_grid(), "m",
                           {"dataset": "folder", "faces": faces, "dataset_moves": moves}, {})
    lines = card_markdown(card, "moved.onnx", 0.1).splitlines()
    assert f"- faces: {faces}" in lines
    assert "- dataset moved: " + "; ".join(f"`{m['from']}` → `{m['to']}` at step {m['at_step']}"
                                                       for m in moves) in lines
    card.training["dataset_moves"] = "elsewhere"  # of no type it is read as: warned under the card, not a stop
    assert "- WARNING: its card's training.dataset_moves is 'elsewhere', not a list: ignored" in \
        card_markdown(card, "moved.onnx", 0.1)
