"""A run whose dataset folder was moved resumes from the new place where it holds the faces the run began with, and
says and records the move; a folder dataset's run says that its images are used whole, as aligned faces."""
import json

import main
from inference.datasets import Sample, split_of
from inference.models import read_card
from training.checkpoints import load_checkpoint
from tests.conftest import labelled_folder


def _train(tmp_path, dataset: str, *extra: str) -> int:
    return main.main(["train", "classifier", "--dataset", dataset, "--size", "32", "--width", "8", "--epochs", "1",
                      "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
                      "--threads", "1", *extra])


def _resume(tmp_path, *extra: str) -> int:
    return main.main(["train", "classifier", "--out", str(tmp_path / "run"), "--resume", *extra])


def test_a_run_whose_dataset_moved_goes_on_at_its_new_place_and_its_card_records_the_move(tmp_path, tiny_utk, capsys):
    """Moving the dataset folder made a run impossible to resume: the plain --resume failed on the old folder, and
    --dataset with the new place was refused as a changed setting, though the checkpoint's record of the faces keeps
    their paths below the dataset's root."""
    assert _train(tmp_path, f"utkface:{tiny_utk}", "--max-steps", "2") == 0
    moved = tiny_utk.rename(tmp_path / "moved")
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tiny_utk}: the dataset this run began on is no longer there"), err
    assert "give its new place, as in --resume --dataset utkface:NEW_PLACE" in err
    assert load_checkpoint(tmp_path / "run")["step"] == 2  # nothing trained

    assert _resume(tmp_path, "--dataset", f"utkface:{moved}", "--max-steps", "1") == 0
    out = capsys.readouterr().out
    assert f"the dataset moved: this run began on utkface:{tiny_utk} and goes on with utkface:{moved}" in out
    assert load_checkpoint(tmp_path / "run")["step"] == 3
    assert _resume(tmp_path) == 0  # the new place is the run's from now on: a plain --resume finishes it there
    training = read_card(tmp_path / "run" / "model.onnx").training
    assert training["dataset_root"] == str(moved)
    assert training["dataset_moves"] == [{"option": "--dataset", "from": f"utkface:{tiny_utk}",
                                          "to": f"utkface:{moved}", "at_step": 2}]


def test_a_moved_dataset_is_refused_where_its_faces_are_not_the_checkpoints_naming_what_differs(tmp_path, tiny_utk,
                                                                                                capsys):
    """Accepting a new place must not accept other data: a face gone is named, another setting given with the new
    place is still refused (with the place alone said to be free to change), and so is a dataset of another kind."""
    assert _train(tmp_path, f"utkface:{tiny_utk}", "--max-steps", "2") == 0
    moved = tiny_utk.rename(tmp_path / "moved")
    trained = next(p for p in sorted(moved.glob("2*.jpg")) if split_of(Sample(str(p))) == "train")
    trained.unlink()
    capsys.readouterr()
    assert _resume(tmp_path, "--dataset", f"utkface:{moved}") == 2
    err = capsys.readouterr().err
    assert (f"--dataset utkface:{moved} does not hold the faces this run began on at utkface:{tiny_utk}" in err
            and f"1 file gone (e.g. {trained.name})" in err and "give --dataset the folder that holds them" in err), err

    assert _resume(tmp_path, "--dataset", f"utkface:{moved}", "--size", "64") == 2
    err = capsys.readouterr().err
    assert "--size 64 differs from the checkpoint's 32" in err
    assert f"--dataset utkface:{moved} differs from the checkpoint's utkface:{tiny_utk}" in err
    assert "--dataset alone may name another place" in err

    assert _resume(tmp_path, "--dataset", f"folder:{moved}") == 2
    assert f"--dataset folder:{moved} differs from the checkpoint's utkface:{tiny_utk}" in capsys.readouterr().err
    assert load_checkpoint(tmp_path / "run")["step"] == 2  # nothing trained


def test_compare_goes_on_with_a_dataset_moved_since_its_first_variant_stopped(tmp_path, tiny_utk, capsys):
    """train compare checks a variant found in --out as a resume does: the moved dataset had been refused there too."""
    args = ["train", "compare", "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "16", "--cache",
            str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1"]
    assert main.main([*args, "--dataset", f"utkface:{tiny_utk}", "--max-steps", "2"]) == 0
    moved = tiny_utk.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main.main([*args, "--dataset", f"utkface:{moved}"]) == 0
    assert "the dataset moved" in capsys.readouterr().out
    assert set(json.loads((tmp_path / "cmp" / "comparison.json").read_text())["models"]) == {"unbalanced",
                                                                                           "gender-balanced"}
    for variant in ("unbalanced", "balanced"):
        assert read_card(tmp_path / "cmp" / variant / "model.onnx").training["dataset_root"] == str(moved)


def test_a_plain_resume_where_the_old_folder_no_longer_holds_the_data_says_to_give_its_new_place(tmp_path, capsys):
    """The folder still there, its contents moved into a subfolder (or nothing left in it, as an unmounted mount
    point): the plain --resume had said the reader's "no image has a gender label…", without the way on that a
    folder gone is given."""
    folder = labelled_folder(tmp_path / "photos", 80, 0)
    assert _train(tmp_path, f"folder:{folder}", "--batch-size", "8", "--max-steps", "2") == 0
    n = load_checkpoint(tmp_path / "run")["data_faces"]["n"]
    inner = folder / "inner"
    inner.mkdir()
    for entry in [e for e in folder.iterdir() if e != inner]:
        entry.rename(inner / entry.name)
    capsys.readouterr()
    assert _resume(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder}: the dataset this run began on is no longer there ({folder} is there, "
                          f"but holds none of the {n} faces its checkpoint records): if it was moved, give its new "
                          "place, as in --resume --dataset folder:NEW_PLACE"), err

    moved = inner.rename(tmp_path / "moved")  # nothing left in the old folder
    assert _resume(tmp_path) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {folder}: the dataset this run began on is no longer there ({folder} is there, "
                          "but no images found"), err
    assert "give its new place, as in --resume --dataset folder:NEW_PLACE" in err
    assert load_checkpoint(tmp_path / "run")["step"] == 2  # nothing trained

    assert _resume(tmp_path, "--dataset", f"folder:{moved}", "--max-steps", "1") == 0
    assert load_checkpoint(tmp_path / "run")["step"] == 3


def test_compare_reusing_a_finished_variant_on_a_moved_dataset_says_its_card_still_names_the_old_place(
        tmp_path, tiny_utk, capsys):
    """A finished variant is reused as it was exported, not exported again: compare had said "the card it exports
    records the move" of it, and its card named the old place."""
    args = ["train", "compare", "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "16", "--cache",
            str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1"]
    assert main.main([*args, "--dataset", f"utkface:{tiny_utk}"]) == 0
    moved = tiny_utk.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main.main([*args, "--dataset", f"utkface:{moved}"]) == 0
    out = capsys.readouterr().out
    assert f"the dataset moved: this run was trained on utkface:{tiny_utk} and is reused with utkface:{moved}" in out
    assert f"its card still names the old place: utkface:{tiny_utk} (it is reused as it was exported" in out
    assert "the card it exports records the move" not in out
    for variant in ("unbalanced", "balanced"):  # as said
        assert read_card(tmp_path / "cmp" / variant / "model.onnx").training["dataset_root"] == str(tiny_utk)


def test_a_folder_run_says_its_images_are_used_whole_and_evaluate_aligned_measures_the_same(tmp_path, capsys):
    """A folder's photos were trained on whole without a word, while `train evaluate` finds faces in them by default:
    the card's test figure and evaluate's default one were measured on other inputs. The card and the console say
    so, and `train evaluate --aligned` gives the card's figure."""
    folder = labelled_folder(tmp_path / "photos", 80, 0)
    assert _train(tmp_path, f"folder:{folder}", "--batch-size", "8") == 0
    out = capsys.readouterr().out
    assert "each image whole, resized to 32×32 px, as an aligned face" in out
    assert "`train evaluate` finds the largest face in each photo unless given --aligned" in out
    card = read_card(tmp_path / "run" / "model.onnx")
    assert "as an aligned face" in card.training["faces"] and "--aligned" in card.training["faces"]
    said = tmp_path / "evaluated.json"
    assert main.main(["train", "evaluate", "--model", str(tmp_path / "run" / "model.onnx"), "--dataset",
                      f"folder:{folder}", "--aligned", "--json", str(said)]) == 0
    evaluated = json.loads(said.read_text())
    assert card.metrics["evaluated_on"]["detector"] == evaluated["evaluated"]["detector"]
    (figures,) = evaluated["models"].values()
    assert figures["overall"]["accuracy"] == card.metrics["overall"]["accuracy"]


def test_compare_with_a_teacher_goes_on_after_its_variant_went_on_at_the_folders_new_place(tmp_path, capsys):
    """A comparison with a teacher, its folder moved after the first variant stopped: the check that the variant
    still to train learns from the same teachers opened them at the new place without the record of the move, and
    refused the teacher (trained at the old place) as trained on another folder: the comparison could not go on."""
    began = labelled_folder(tmp_path / "photos", 80, 0)
    common = ["--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "8", "--cache", str(tmp_path / "cache"),
              "--threads", "1"]
    assert main.main(["train", "classifier", "--dataset", f"folder:{began}", *common,
                      "--out", str(tmp_path / "teacher")]) == 0
    teacher = str(tmp_path / "teacher" / "model.onnx")
    args = ["train", "compare", *common, "--out", str(tmp_path / "cmp"), "--distill-from", teacher]
    assert main.main([*args, "--dataset", f"folder:{began}", "--max-steps", "1"]) == 0
    moved = began.rename(tmp_path / "moved")
    capsys.readouterr()
    assert main.main([*args, "--dataset", f"folder:{moved}", "--max-steps", "1"]) == 0, capsys.readouterr().err
    assert main.main([*args, "--dataset", f"folder:{moved}"]) == 0, capsys.readouterr().err
    assert set(json.loads((tmp_path / "cmp" / "comparison.json").read_text())["models"]) == {"unbalanced",
                                                                                           "gender-balanced"}
    move = {"option": "--dataset", "from": f"folder:{began}", "to": f"folder:{moved}"}
    assert read_card(tmp_path / "cmp" / "unbalanced" / "model.onnx").training["dataset_moves"] == [
        {**move, "at_step": 1}]
    assert read_card(tmp_path / "cmp" / "balanced" / "model.onnx").training["dataset_moves"] == [
        {**move, "at_step": 0}]  # begun at the new place: the comparison's move, before its first step
