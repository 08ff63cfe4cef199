"""A face without a label in a composed training mix, the card's commit run from another folder, and the cache a
plain --resume decodes into."""
import subprocess
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

import main
from inference.datasets import Sample
from inference.errors import BiasMirrorError
from inference.models import read_card
from training.data.compose import NO_LABEL, compose
from training.provenance import git_commit
from tests.test_classifier_training import _train

PROJECT = Path(__file__).resolve().parents[1]
LABELLED = {("male", "W"): 6, ("female", "W"): 4, ("male", "B"): 5, ("female", "B"): 3}


def _samples(spec, group=None):
    return [Sample(f"{g}{r}{i}.jpg", g, r, 30, group=group) for (g, r), n in spec.items() for i in range(n)]


def _with_one_face_without_race():
    return _samples(LABELLED) + [Sample("no_race.jpg", "female", None, 30)]


def test_a_face_without_a_label_is_left_out_of_a_balanced_mix_not_made_a_cell_of_its_own():
    """One face with no race had become the cell female|None, and the mix was balanced to its one face a cell."""
    samples = _with_one_face_without_race()
    idx, comp = compose(samples, ["gender", "race"], "balanced")
    smallest = min(LABELLED.values())
    assert Counter(s.race is None for s in (samples[i] for i in idx)) == {False: smallest * len(LABELLED)}
    assert comp.left_out_no_label == 1 and comp.to_dict()["left_out_no_label"] == 1  # the card's composition
    cell = f"female|{NO_LABEL}"
    assert comp.available[cell] == 1 and comp.achieved[cell] == 0
    table = comp.table()
    assert cell in table and "None" not in table
    assert ("warning: 1 training face(s) left out of the balanced mix for want of a label (1 without a race label)"
            in table)


def test_a_face_without_a_group_does_not_cut_a_mix_balanced_by_group():
    """A blank in a labels.csv's group column had left one face a group, and the mix of three faces was refused as
    'of one gender only'."""
    indoor, outdoor = _samples(LABELLED, "indoor"), _samples({("male", "W"): 2, ("female", "W"): 3}, "outdoor")
    samples = indoor + outdoor + [Sample("no_group.jpg", "male", "W", 30)]
    idx, comp = compose(samples, ["group"], "balanced")
    assert len(idx) == 2 * min(len(indoor), len(outdoor)) and comp.left_out_no_label == 1
    assert "1 without a group label" in comp.table()


def test_a_target_mix_leaves_a_face_without_a_label_out_and_says_so():
    samples = _with_one_face_without_race()
    idx, comp = compose(samples, ["gender", "race"], "target", {"male|W": 0.5, "female|W": 0.5})
    assert all(samples[i].race is not None for i in idx)
    assert comp.left_out_no_label == 1 and "left out of the target mix for want of a label" in comp.table()
    with pytest.raises(BiasMirrorError, match="no label"):  # faces left out of every mix cannot be aimed at
        compose(samples, ["gender", "race"], "target", {f"female|{NO_LABEL}": 1.0})


def test_the_natural_mix_keeps_a_face_without_a_label_and_names_its_cell_no_label():
    """--compose none trains on the data as it is: nothing is left out, so nothing is warned of."""
    samples = _with_one_face_without_race()
    idx, comp = compose(samples, ["gender", "race"], "none")
    assert len(idx) == len(samples) and comp.left_out_no_label == 0 and comp.warning() is None
    assert comp.achieved[f"female|{NO_LABEL}"] == 1 and "None" not in comp.table()


def _folder_with_one_face_without_race(folder):
    """LABELLED's faces and one female without a race in the train split, and a face of each gender to test on."""
    folder.mkdir()
    rows = ["file,gender,race,age,split"]
    faces = [(g, r, "train") for (g, r), n in LABELLED.items() for _ in range(n)] + [("female", "", "train")]
    for i, (gender, race, split) in enumerate(faces + [("male", "W", "test"), ("female", "B", "test")]):
        cv2.imwrite(str(folder / f"f{i}.png"), np.full((40, 40, 3), 40 + 4 * i, np.uint8))
        rows.append(f"f{i}.png,{gender},{race},30,{split}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_the_card_of_a_balanced_run_counts_the_faces_left_out_for_want_of_a_label(tmp_path, capsys):
    folder = _folder_with_one_face_without_race(tmp_path / "faces")
    code = main.main(["train", "classifier", "--dataset", f"folder:{folder}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "4", "--min-age", "-1", "--compose", "balanced",
                      "--by", "gender,race", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"),
                      "--threads", "1"])
    out = capsys.readouterr().out
    assert code == 0
    composition = read_card(tmp_path / "run" / "model.onnx").training["composition"]
    assert composition["left_out_no_label"] == 1 and composition["achieved"][f"female|{NO_LABEL}"] == 0
    trained = sum(composition["achieved"].values())
    assert set(v for v in composition["achieved"].values() if v) == {trained // len(LABELLED)}
    assert f"training on {trained} faces" in out and "left out of the balanced mix for want of a label" in out
    # and where the card is read: docs/models.md and doctor --cards, and the app's card dialog
    from inference.card_markdown import card_markdown

    card = read_card(tmp_path / "run" / "model.onnx")
    assert "; 1 face(s) left out for want of a label" in card_markdown(card, "model.onnx", 0.1)
    from gui.model_panel import _composition_html

    assert "1 face(s) left out of the mix for want of a label" in _composition_html(composition)


def test_the_cards_commit_is_the_projects_whatever_folder_the_command_runs_in(tmp_path, monkeypatch):
    """git ran in the current folder: started in another repository the card named its HEAD, outside any
    repository "unknown"."""
    def git(*args, cwd=PROJECT):
        return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)

    project = git("rev-parse", "--short", "HEAD")
    if project.returncode != 0:
        pytest.skip("the project is not a git checkout here")
    dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip()
    expected = project.stdout.strip() + ("+dirty" if dirty else "")
    other = tmp_path / "other"
    other.mkdir()
    git("init", "-q", cwd=other)
    git("-c", "user.name=t", "-c", "user.email=t@example.org", "commit", "-q", "--allow-empty", "-m", "other",
        cwd=other)
    assert git("rev-parse", "--short", "HEAD", cwd=other).stdout.strip() != project.stdout.strip()
    monkeypatch.chdir(other)
    assert git_commit() == expected
    plain = tmp_path / "plain"
    plain.mkdir()
    monkeypatch.chdir(plain)
    assert git_commit() == expected


def test_a_plain_resume_decodes_into_the_cache_the_run_was_started_with(tmp_path, tiny_utk, monkeypatch, capsys):
    """A run started with --cache X and resumed with --resume alone decoded every face again into the default
    cache; like --export-to, the run's --cache is kept unless given again."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "default"))  # this test's own, to see what is decoded there
    cache, run, default_faces = tmp_path / "cache", tmp_path / "run", tmp_path / "default" / "bias-mirror" / "faces"
    assert _train(tmp_path, tiny_utk, "--max-steps", "1") == 0
    decoded = sorted(p.name for p in cache.iterdir())
    capsys.readouterr()
    resume = ["train", "classifier", "--out", str(run), "--resume", "--threads", "1"]
    assert main.main(resume) == 0
    assert not default_faces.exists() and sorted(p.name for p in cache.iterdir()) == decoded
    assert f"as the run last ran: --cache {cache.resolve()}" in capsys.readouterr().out
    elsewhere = tmp_path / "elsewhere"
    assert main.main([*resume, "--cache", str(elsewhere)]) == 0
    assert "as the run last ran" not in capsys.readouterr().out and any(elsewhere.iterdir())
