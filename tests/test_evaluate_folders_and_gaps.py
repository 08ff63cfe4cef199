"""`train evaluate` on a folder of one's own photos, the groups it names, the faces a model trained on under other
names, and the gaps a card records.

Found by a review: the README's `train evaluate --model … --dataset folder:my_photos`, on 20 photos labelled
`file,gender`, stopped for want of ages, then evaluated the 1 photo a hash of its name put in "test" (5 photos: "no
labelled faces in split 'test' (min age None)", no word of --split all); a missing race was the group "female|None"
where the audit says "unknown"; a model trained on utkface:utk_sub scored 70.6 % on a folder's "test" faces, 101 of
its 126 faces byte-for-byte those it trained on, without a word; and a card's gaps named a "best" of 4 faces alone
where three other groups were at 100 % too, a "worst" of one face with no word of its size, and no group with no test
face at all.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from inference.card import classifier_card
from inference.card_fields import CardNotes
from inference.datasets import Sample, open_dataset, select, split_of
from inference.metrics import SMALL_GROUP, disaggregate
from tests.conftest import REPO, labelled_folder, run_main
from tests.test_cyclegan import write_utk
from tests.test_evaluate_faces_and_ties import photos_of_faces

MODEL = REPO / "resources" / "models" / "resnet10_balanced.onnx"


def labelled_by_gender_only(folder: Path, n: int) -> list[str]:
    """``n`` photos of faces per gender (``photos_of_faces``) with a labels.csv as the README's `file,gender` (no
    race, age nor split): the photos named."""
    photos_of_faces(folder, n)
    rows = [line.split(",") for line in (folder / "labels.csv").read_text().splitlines()[1:]]
    (folder / "labels.csv").write_text("file,gender\n" + "".join(f"{r[0]},{r[1]}\n" for r in rows))
    return [r[0] for r in rows]


def evaluated(argv: list[str], out: Path, capsys) -> tuple[int, str, str, dict]:
    code, stdout, err = run_main(["train", "evaluate", *argv, "--json", str(out)], capsys)
    return code, stdout, err, json.loads(out.read_text()) if code == 0 else {}


# --- 1. the README's line, on a folder labelled file,gender ---------------------------------------------------------

def test_the_readmes_folder_line_evaluates_every_labelled_photo_of_a_folder_labelled_file_gender(tmp_path, capsys):
    folder = tmp_path / "my_photos"
    names = labelled_by_gender_only(folder, 6)
    code, out, err, got = evaluated(["--model", str(MODEL), "--dataset", f"folder:{folder}"], tmp_path / "e.json",
                                    capsys)
    assert code == 0, err
    assert "note: the dataset gives no ages, so its faces are evaluated whatever their age" in out
    assert f"note: the labels of {folder} give no split, so every labelled face is evaluated" in out
    assert f"evaluating every split (--split all) of folder at {folder}: {len(names)} labelled photo(s) of all ages" \
        in out
    assert (got["evaluated"]["split"], got["evaluated"]["min_age"]) == ("all", None)
    [overall] = [m["overall"] for m in got["models"].values()]
    assert overall["n"] == len(names) - len(got["evaluated"]["no_face"])
    # an explicit age bar without ages is still refused; an explicit split still applies
    code, _, err = run_main(["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{folder}",
                             "--min-age", "18"], capsys)
    assert code == 2 and "needs ages, and this dataset has none" in err
    in_test = [n for n in names if split_of(Sample(path=n)) == "test"]
    code, out, err = run_main(["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{folder}",
                               "--split", "test"], capsys)
    assert (f"evaluating split 'test' of folder at {folder}: {len(in_test)} labelled" in out) if in_test \
        else "--split all evaluates every one" in err


def test_no_labelled_faces_in_the_split_asked_for_names_split_all(tmp_path, capsys):
    folder = tmp_path / "five"
    names = labelled_by_gender_only(folder, 8)
    kept = [n for n in names if split_of(Sample(path=n)) != "test"]
    for n in set(names) - set(kept):  # none left in the hash's test split
        (folder / n).unlink()
    (folder / "labels.csv").write_text("file,gender\n" + "".join(f"{n},female\n" for n in kept))
    code, _, err = run_main(["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{folder}",
                             "--split", "test"], capsys)
    assert code == 2
    assert f"no labelled faces in split 'test' (the dataset has {len(kept)} labelled face(s) in other splits; " \
           "--split all evaluates every one)" in err
    assert "min age None" not in err


def test_a_folder_a_model_was_trained_on_keeps_its_held_out_split_by_default(tmp_path, capsys):
    folder = tmp_path / "mine"
    names = labelled_by_gender_only(folder, 8)
    in_test = [n for n in names if split_of(Sample(path=n)) == "test"]
    model = card_model(tmp_path, "here", trained_on("folder", folder, None))
    code, out, err = evaluate_aligned(model, folder, capsys)
    assert f"note: the labels of {folder} give no split, and here (here.onnx) was trained on this folder: " \
           "evaluating split 'test'" in out
    assert (code == 0 and f"evaluating split 'test' of folder at {folder}: {len(in_test)} labelled" in out) \
        if in_test else (code == 2 and "--split all evaluates every one" in err)


# --- 2. a missing race is "unknown", as in the audit ---------------------------------------------------------------

def test_a_missing_race_is_the_group_unknown_as_the_audit_names_it(tmp_path, capsys):
    from training.evaluate import _groups, grouped

    faces = [Sample(path="a.jpg", gender="female"), Sample(path="b.jpg", gender="male", race="Asian")]
    assert _groups(faces)["gender×race"] == ["female|unknown", "male|Asian"]
    metrics = grouped(np.array([0.9, 0.1]), np.array([True, True]), faces)
    assert set(metrics.by["gender×race"]) == {"female|unknown", "male|Asian"}
    folder = tmp_path / "photos"
    labelled_by_gender_only(folder, 3)
    code, _, err, got = evaluated(["--model", str(MODEL), "--dataset", f"folder:{folder}", "--aligned"],
                                  tmp_path / "e.json", capsys)
    assert code == 0, err
    [by] = [m["by"]["gender×race"] for m in got["models"].values()]
    assert by and all(g.endswith("|unknown") for g in by)


# --- 3. faces a model trained on, evaluated under other names or as another kind of dataset -----------------------

def card_model(tmp_path: Path, name: str, training: dict) -> Path:
    """A tiny untrained classifier whose card holds ``training``, as the trainer's cards do."""
    from training.nets.cam_classifier import CamClassifier, ClassifierConfig
    from training.tasks.classifier_report import export_classifier

    net = CamClassifier(ClassifierConfig(size=32, width=8)).eval()
    path = tmp_path / f"{name}.onnx"
    export_classifier(net, 32, path, classifier_card(name, 32, ["male", "female"], net.cam_grid(), "m", training, {}))
    return path


def trained_on(kind: str, root: Path, min_age: int | None) -> dict:
    """A card's training block as the trainer writes it for a hashed train split of ``kind`` at ``root``."""
    return {"dataset": kind, "dataset_root": str(root), "split": "train (a stable hash of file name, 80/10/10)",
            "filters": {"min_age": min_age}}


def evaluate_aligned(model: Path, folder: Path, capsys) -> tuple[int, str, str]:
    return run_main(["train", "evaluate", "--model", str(model), "--dataset", f"folder:{folder}", "--aligned"], capsys)


def utk_as_folder(utk: Path, folder: Path) -> list[str]:
    """The UTKFace-style faces of ``utk`` saved as a folder's imgs/NNNN.jpg, labelled in labels.csv (no split): their
    original names, in the order of the copies'."""
    (folder / "imgs").mkdir(parents=True)
    originals, rows = sorted(p.name for p in utk.iterdir()), ["file,gender,race,age"]
    for i, name in enumerate(originals):
        age, gender, race = name.split("_")[:3]
        shutil.copy(utk / name, folder / "imgs" / f"{i:04d}.jpg")
        rows.append(f"imgs/{i:04d}.jpg,{('male', 'female')[int(gender)]},"
                    f"{('White', 'Black', 'Asian', 'Indian', 'Others')[int(race)]},{age}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return originals


def test_faces_a_model_trained_on_are_found_by_their_bytes_in_a_folder_of_other_names(tmp_path, capsys):
    utk = write_utk(tmp_path / "utk" / "UTKFace", per_cell=6, ages=(30,))
    model = card_model(tmp_path, "utk", trained_on("utkface", utk, 18))
    folder = tmp_path / "folder_ds"
    originals = utk_as_folder(utk, folder)
    trained = {Path(s.path).name for s in select(open_dataset(f"utkface:{utk}").samples, labelled=True)
               if split_of(s) == "train"}
    copies = select(open_dataset(f"folder:{folder}").samples, labelled=True)
    for split in ("test", "all"):
        evaluated_here = copies if split == "all" else [s for s in copies if split_of(s) == "test"]
        k = sum(originals[int(Path(s.path).stem)] in trained for s in evaluated_here)
        assert 0 < k, "the hash puts no trained face among the copies evaluated: the test shows nothing"
        code, out, err, got = evaluated(["--model", str(model), "--dataset", f"folder:{folder}", "--aligned",
                                         "--split", split], tmp_path / "e.json", capsys)
        assert code == 0, err
        assert f"WARNING: {k} of the {len(evaluated_here)} faces evaluated are byte-for-byte copies of faces utk " \
               f"(utk.onnx) was trained on (its card: the train split of utkface at {utk})" in out
        assert f"on faces it was trained on ({k} of {len(evaluated_here)}): overstated" in out
        assert got["evaluated"]["faces_trained_on"] == {"utk (utk.onnx)": {"n": k, "upper_bound": False}}


def test_where_the_cards_dataset_is_not_here_the_note_says_it_cannot_be_checked(tmp_path, capsys):
    utk = write_utk(tmp_path / "utk" / "UTKFace", per_cell=2, ages=(30,))
    folder = tmp_path / "folder_ds"
    utk_as_folder(utk, folder)
    gone = tmp_path / "gone" / "UTKFace"
    model = card_model(tmp_path, "away", trained_on("utkface", gone, 18))
    code, out, err = evaluate_aligned(model, folder, capsys)
    assert code == 0, err
    assert f"note: away (away.onnx) was trained on the train split of utkface at {gone}, which is not here to " \
           f"compare with, not on folder at {folder}: whether any of the faces evaluated are copies of faces it " \
           "was trained on cannot be checked" in out
    # a folder of other faces, beside the card's dataset: nothing to say
    others = tmp_path / "others"
    photos_of_faces(others, 2)
    here = card_model(tmp_path, "here", trained_on("utkface", utk, 18))
    code, out, err = evaluate_aligned(here, others, capsys)
    assert code == 0, err
    assert "trained on" not in out and "WARNING" not in out


# --- 3b. a folder a model was trained on, moved, copied, or named by a relative root -------------------------------

FOLDER_TRAINING = {"dataset": "folder", "split": "train (a stable hash of file name, 80/10/10)",
                   "filters": {"min_age": None}}


def held_out(folder: Path) -> list[str]:
    """The labelled photos of ``folder`` (labels.csv, no split column) that a hash of their names puts in 'test'."""
    rows = (folder / "labels.csv").read_text().splitlines()[1:]
    in_test = [r.split(",")[0] for r in rows if split_of(Sample(path=r.split(",")[0])) == "test"]
    assert in_test, "the hash holds out none of the folder's photos: the test shows nothing"
    return in_test


def test_a_folder_a_model_was_trained_on_keeps_its_held_out_split_once_moved_or_named_relative(tmp_path, capsys):
    """Only the very folder a card names had kept split 'test': the same folder moved was evaluated on every face,
    its training faces included, with a note that no copy could be checked and "faces_trained_on": {}; and a card
    naming its folder by a relative path was said to name no place at all."""
    folder = labelled_folder(tmp_path / "faces", 30, 30)
    in_test = held_out(folder)
    away = card_model(tmp_path, "away", {**FOLDER_TRAINING, "dataset_root": str(folder)})
    moved = folder.rename(tmp_path / "moved")
    code, out, err, got = evaluated(["--model", str(away), "--dataset", f"folder:{moved}", "--aligned"],
                                    tmp_path / "e.json", capsys)
    assert code == 0, err
    assert f"note: the labels of {moved} give no split, and away (away.onnx) was trained on the folder {folder}, " \
           "which is not here: this folder may be it, moved or copied: evaluating split 'test'" in out
    assert f"evaluating split 'test' of folder at {moved}: {len(in_test)} labelled face(s)" in out
    assert got["evaluated"]["split"] == "test"
    assert got["evaluated"]["faces_trained_on"] == {"away (away.onnx)": {
        "n": len(in_test), "upper_bound": True, "unchecked": f"folder at {folder}, which is not here to compare with"}}

    relative = card_model(tmp_path, "relative", {**FOLDER_TRAINING, "dataset_root": folder.name})
    code, out, err, got = evaluated(["--model", str(relative), "--dataset", f"folder:{moved}", "--aligned"],
                                    tmp_path / "e.json", capsys)
    assert code == 0, err
    assert f"relative (relative.onnx) was trained on the folder {folder.name}, a path relative to where it was " \
           "trained, which its card does not say: this folder may be it: evaluating split 'test'" in out
    assert f"was trained on the train split of folder at {folder.name}, relative to where it was trained (its card " \
           f"does not say where), not on folder at {moved}" in out
    assert got["evaluated"]["split"] == "test" and got["evaluated"]["faces_trained_on"]["relative (relative.onnx)"][
        "unchecked"].startswith(f"folder at {folder.name}, relative to where it was trained")


def test_a_copy_of_the_folder_a_model_was_trained_on_keeps_its_held_out_split(tmp_path, capsys):
    """A copy beside the original was warned to be byte for byte the faces it trained on, and evaluated whole all
    the same; a folder of other photos beside the card's is still evaluated on every labelled face."""
    folder = labelled_folder(tmp_path / "faces", 30, 30)
    in_test = held_out(folder)
    copy = Path(shutil.copytree(folder, tmp_path / "copy"))
    model = card_model(tmp_path, "here", {**FOLDER_TRAINING, "dataset_root": str(folder)})
    code, out, err, got = evaluated(["--model", str(model), "--dataset", f"folder:{copy}", "--aligned"],
                                    tmp_path / "e.json", capsys)
    assert code == 0, err
    n = len((copy / "labels.csv").read_text().splitlines()) - 1  # every labelled photo, each a copy
    assert f"note: the labels of {copy} give no split, and {n} of its {n} labelled faces are byte-for-byte copies " \
           f"of files in {folder}, the folder here (here.onnx) was trained on: evaluating split 'test'" in out
    assert f"evaluating split 'test' of folder at {copy}: {len(in_test)} labelled face(s)" in out
    assert "WARNING" not in out and got["evaluated"]["faces_trained_on"] == {}  # held out of its training

    others = tmp_path / "others"
    labelled_by_gender_only(others, 3)
    code, out, err, got = evaluated(["--model", str(model), "--dataset", f"folder:{others}", "--aligned"],
                                    tmp_path / "e.json", capsys)
    assert code == 0, err
    assert f"note: the labels of {others} give no split, so every labelled face is evaluated" in out
    assert got["evaluated"]["split"] == "all" and got["evaluated"]["faces_trained_on"] == {}


def test_faces_trained_on_through_a_linked_subfolder_are_found_by_their_bytes(tmp_path, capsys):
    """The folder reader follows a link to a subfolder kept elsewhere, and the model trained on the faces there;
    the copy check walked without following links and found none of them, without a word."""
    store = labelled_folder(tmp_path / "store", 30, 30)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "imgs").symlink_to(store, target_is_directory=True)
    rows = (store / "labels.csv").read_text().splitlines()
    (linked / "labels.csv").write_text("\n".join([rows[0], *(f"imgs/{r}" for r in rows[1:])]) + "\n")
    trained = [s for s in select(open_dataset(f"folder:{linked}").samples, labelled=True) if split_of(s) == "train"]
    assert trained and all("imgs" in Path(s.path).parts for s in trained)
    renamed = tmp_path / "renamed"  # the same photos under other names
    renamed.mkdir()
    names = [r.split(",")[0] for r in rows[1:]]
    for i, name in enumerate(names):
        shutil.copy(store / name, renamed / f"photo_{i}.png")
    (renamed / "labels.csv").write_text("\n".join([rows[0], *(f"photo_{i}.png,{r.split(',', 1)[1]}"
                                                              for i, r in enumerate(rows[1:]))]) + "\n")
    model = card_model(tmp_path, "link", {**FOLDER_TRAINING, "dataset_root": str(linked)})
    code, out, err, got = evaluated(["--model", str(model), "--dataset", f"folder:{renamed}", "--aligned",
                                     "--split", "all"], tmp_path / "e.json", capsys)
    assert code == 0, err
    assert f"WARNING: {len(trained)} of the {len(names)} faces evaluated are byte-for-byte copies of faces link " \
           f"(link.onnx) was trained on (its card: the train split of folder at {linked})" in out
    assert got["evaluated"]["faces_trained_on"] == {"link (link.onnx)": {"n": len(trained), "upper_bound": False}}


# --- 4. the gaps: ties, sizes, and groups with no face --------------------------------------------------------------

def metrics_of(groups: dict[str, tuple[int, int]], every: list[str] | None = None):
    """GroupedMetrics where each gender×race group has (right, of n) faces right; ``every``: the groups known."""
    y, pred, labels = [], [], []
    for g, (right, n) in groups.items():
        y += [False] * n
        pred += [False] * right + [True] * (n - right)
        labels += [g] * n
    return disaggregate(np.array(y), np.array(pred), np.array(pred, float), {"gender×race": labels},
                        None if every is None else {"gender×race": every})


def test_the_gaps_record_ties_each_named_groups_size_and_the_groups_with_no_face():
    big = SMALL_GROUP + 10
    gm = metrics_of({"female|Black": (big, big), "female|White": (big - 4, big), "male|Asian": (4, 4),
                     "male|Black": (9, 9), "male|White": (0, 1)},
                    every=["female|Black", "female|White", "male|Asian", "male|Black", "male|White", "male|Indian"])
    gap = gm.to_dict()["gaps"]["gender×race"]
    assert gap["best"] in {"female|Black", "male|Asian", "male|Black"}
    assert gap["best_tied"] == ["female|Black", "male|Asian", "male|Black"]
    assert (gap["best_n"], gap["best_small"]) == (gm.by["gender×race"][gap["best"]]["n"],
                                                  gm.by["gender×race"][gap["best"]]["n"] < SMALL_GROUP)
    assert (gap["worst"], gap["worst_n"], gap["worst_small"]) == ("male|White", 1, True)
    assert "worst_tied" not in gap  # alone at the bottom
    assert gap["no_faces"] == ["male|Indian"]
    # the figures as before, and what the audit's report keeps (``gap``) unchanged
    assert gap["difference"] == 1.0 and set(gm.gap("gender×race")) == {"best", "worst", "difference",
                                                                         "ratio_worst_best"}
    assert "no_faces" not in metrics_of({"a": (1, 1)}).to_dict()["gaps"]["gender×race"]  # none known: none said


def test_evaluate_names_a_group_the_dataset_holds_with_no_face_evaluated(tmp_path, capsys):
    folder = tmp_path / "photos"
    photos_of_faces(folder, 8)
    rows = (folder / "labels.csv").read_text().splitlines()
    names = [r.split(",")[0] for r in rows[1:]]
    # one photo of a race none of the others is, put in train: the test split holds none of its group
    lone = names[0]
    rows = [rows[0]] + [(f"{lone},female,Martian,30,train" if r.startswith(f"{lone},") else r) for r in rows[1:]]
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    code, out, err, got = evaluated(["--model", str(MODEL), "--dataset", f"folder:{folder}", "--aligned"],
                                    tmp_path / "e.json", capsys)
    assert code == 0, err
    assert "note: no face evaluated is of gender×race group(s) female|Martian, which the dataset holds" in out
    [gaps] = [m["gaps"]["gender×race"] for m in got["models"].values()]
    assert gaps["no_faces"] == ["female|Martian"]
    assert {"best_n", "best_small", "worst_n", "worst_small"} <= set(gaps)


def test_the_card_dialog_shows_the_new_gap_fields_and_still_an_old_cards():
    from gui.model_panel import _group_metrics_html

    gm = metrics_of({"male|Asian": (4, 4), "male|White": (4, 4), "female|White": (3, 5)}, every=["male|Indian"])
    new = _group_metrics_html(gm.to_dict(), CardNotes())
    assert "best_tied" in new and "male|Asian, male|White" in new and "male|Indian" in new
    old = gm.to_dict()
    old["gaps"] = {g: gm.gap(g) for g in old["by"]}  # as cards written before these fields keep them
    shown = _group_metrics_html(old, CardNotes())
    assert "gap: best male|Asian" in shown and "best_tied" not in shown


def test_a_trained_classifiers_card_names_the_groups_its_test_split_has_no_face_of(tmp_path):
    """The card's gaps had passed over a group the training data held and the test split lacked."""
    import cv2

    import main
    from inference.models import read_card

    folder = tmp_path / "faces"
    folder.mkdir()
    rows = ["file,gender,race,split"]
    cells = [(g, "White", sp) for sp, n in (("train", 24), ("val", 8), ("test", 8)) for g in ("female", "male")
             for _ in range(n // 2)] + [("female", "Black", "train")] * 4  # female/Black: in training alone
    rng = np.random.default_rng(0)
    for i, (gender, race, split) in enumerate(cells):  # each its own photo: copies would be merged
        face = rng.integers(0, 60, (32, 32, 3), dtype=np.uint8) + (40 if gender == "male" else 150)
        cv2.imwrite(str(folder / f"f{i}.png"), face)
        rows.append(f"f{i}.png,{gender},{race},{split}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    assert main.main(["train", "classifier", "--dataset", f"folder:{folder}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "8", "--min-age", "-1", "--cache", "",
                      "--out", str(tmp_path / "run"), "--threads", "1"]) == 0
    gaps = read_card(tmp_path / "run" / "model.onnx").metrics["gaps"]
    assert gaps["gender×race"]["no_faces"] == ["female|Black"]
