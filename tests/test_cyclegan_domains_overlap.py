"""CycleGAN trainer, found by a review (2026-12-08): photographs in both domains, log.csv's drift after a resume, and
which held-out faces the card's figures were measured on. Across two domain folders only the same bytes are one
photograph (left out of both); near-identical images are a paired dataset's before and after (said, counted, kept)."""
from __future__ import annotations

import csv
import logging
import math
import os
import shutil
from collections import Counter
from pathlib import Path

import cv2
import pytest
import torch

from inference.datasets import open_dataset
from inference.errors import BiasMirrorError
from inference.models import read_card
from training.data.domains import _salted_half, engineer_domains, folder_domains
from training.checkpoints import CHECKPOINT, load_checkpoint
from training.tasks.cyclegan import LAST_DRIFT, fixed_val

from .conftest import utk_images
from .test_cyclegan import train, train_folders, two_folders, utk, write_utk  # noqa: F401  (utk: a fixture)

RESAVE_QUALITY = 60  # a JPEG saved again at another quality: other bytes, the same photograph
BRIGHTER = 6  # grey levels added to every pixel: a small deliberate edit, as a paired dataset's B is A's


def resave(src: Path, dst: Path) -> Path:
    """``src`` decoded and saved again as ``dst``: the same photograph under another name, in other bytes."""
    assert cv2.imwrite(str(dst), cv2.imread(str(src)), [cv2.IMWRITE_JPEG_QUALITY, RESAVE_QUALITY])
    return dst


# --- photographs in both domains ------------------------------------------------------------------------------------

def test_a_domain_folder_whose_images_are_all_copies_of_the_others_is_refused_naming_both(tmp_path, utk):
    """B = copies of A's images trained without a word ("domain ov: 46 training faces", exit 0)."""
    a, _ = two_folders(tmp_path, utk)
    copies = tmp_path / "copies"
    copies.mkdir()
    for p in sorted(a.glob("*.jpg")):
        shutil.copy(p, copies / p.name)
    with pytest.raises(BiasMirrorError) as exc:
        folder_domains(str(a), str(copies), 0, 1)
    said = str(exc.value)
    assert f"every image of domain A ({a}) is also in domain B ({copies})" in said


def test_a_link_inside_one_domain_folder_to_the_other_is_refused(tmp_path, utk):
    """A link in B to A's folder gave B all of A's images, past the check for folders inside one another."""
    a, b = two_folders(tmp_path, utk)
    (b / "linkA").symlink_to(a, target_is_directory=True)
    with pytest.raises(BiasMirrorError, match=r"every image of domain A .* is also in domain B .*linkA/"):
        folder_domains(str(a), str(b), 0, 1)


def test_copies_in_the_other_folder_train_in_neither_said_and_on_the_card(tmp_path, utk, caplog):
    a, b = two_folders(tmp_path, utk)
    originals = sorted(a.glob("*.jpg"))[:3]
    twins = [Path(shutil.copy(p, b / f"copy-{i}.jpg")) for i, p in enumerate(originals[:-1])]
    twins.append(b / "link-0.jpg")
    twins[-1].symlink_to(originals[-1])  # a link to the same file: its bytes too
    caplog.set_level(logging.WARNING)
    d = folder_domains(str(a), str(b), 0, 1)
    trained = {s.path for s in (*d.a.train, *d.b.train)}
    assert not trained & {str(p) for p in (*twins, *originals)}
    assert d.overlap["images_in_both_domains"] == {"A": len(twins), "B": len(twins)}
    said = [r.getMessage() for r in caplog.records if "one photograph in both domains" in r.getMessage()]
    assert said and f"{len(twins)} image(s) of domain A" in said[0] and "copy-0.jpg" in said[0]

    run = tmp_path / "run"
    assert train_folders(run, a, b) == 0
    record = read_card(run / "filter_A2B.onnx").training["domain_overlap"]
    assert record["images_in_both_domains"] == {"A": len(twins), "B": len(twins)}
    assert record["left_out_of_training"] == d.overlap["left_out_of_training"]
    assert any("copy-" in e for e in record["examples"])
    from inference.card_markdown import card_markdown  # as docs/models.md and doctor --cards show the card

    assert (f"- {len(twins)} image(s) of domain A and {len(twins)} of domain B are one photograph in both folders: "
            "left out of training") in card_markdown(read_card(run / "filter_A2B.onnx"), "filter_A2B.onnx", 0.1)


def _every_image_split(d, a: Path, b: Path) -> None:
    """Nothing left out: each folder's images are all in its domain's train, val or test split."""
    for domain, folder in ((d.a, a), (d.b, b)):
        assert len(domain.train) + len(domain.val) + len(domain.test) == len(list(folder.glob("*.jpg")))


def test_photographs_saved_again_in_the_other_folder_are_kept_said_and_counted_on_the_card(tmp_path, utk, caplog):
    """A near-identical image in both folders had been left out as "one photograph": across two domains that is a
    paired dataset's before and after, and only the same bytes are one photograph."""
    a, b = two_folders(tmp_path, utk)
    twins = [resave(p, b / f"saved-again-{i}.jpg") for i, p in enumerate(sorted(a.glob("*.jpg"))[:3])]
    caplog.set_level(logging.WARNING)
    d = folder_domains(str(a), str(b), 0, 1)
    _every_image_split(d, a, b)
    assert d.overlap["images_in_both_domains"] == {"A": 0, "B": 0}
    assert d.overlap["left_out_of_training"] == {"A": 0, "B": 0}
    assert d.overlap["near_identical"]["images"] == {"A": len(twins), "B": len(twins)}
    said = [r.getMessage() for r in caplog.records if "near-identical across the domains" in r.getMessage()]
    assert said and f"{len(twins)} image(s) of domain A" in said[0] and "saved-again-0.jpg" in said[0]
    assert "kept in training" in said[0]

    run = tmp_path / "run"
    assert train_folders(run, a, b) == 0
    record = read_card(run / "filter_A2B.onnx").training["domain_overlap"]
    assert record["near_identical"]["images"] == {"A": len(twins), "B": len(twins)}
    assert any("saved-again-" in e for e in record["near_identical"]["examples"])
    from inference.card_markdown import card_markdown

    assert (f"- {len(twins)} image(s) of domain A and {len(twins)} of domain B are near-identical across the folders "
            "(an edit or a re-save), kept in both domains' training") in card_markdown(
        read_card(run / "filter_A2B.onnx"), "filter_A2B.onnx", 0.1)
    assert record["left_out_of_training"] == {"A": 0, "B": 0}


def test_an_edited_copy_of_domain_a_as_domain_b_is_trained_with_nothing_left_out(tmp_path, utk):
    """B = A brightened by a few grey levels (a paired dataset: a filter's before and after) had been refused:
    "every image of domain A is also in domain B"."""
    a, _ = two_folders(tmp_path, utk)
    b = tmp_path / "brighter"
    b.mkdir()
    for p in sorted(a.glob("*.jpg")):
        assert cv2.imwrite(str(b / p.name), cv2.add(cv2.imread(str(p)), BRIGHTER))
    d = folder_domains(str(a), str(b), 0, 1)
    _every_image_split(d, a, b)
    n = len(list(a.glob("*.jpg")))
    assert d.overlap["near_identical"]["images"] == {"A": n, "B": n}  # found, said, and kept
    assert d.overlap["left_out_of_training"] == {"A": 0, "B": 0}


def test_the_same_bytes_check_needs_no_root_common_to_both_folders(tmp_path, utk, monkeypatch):
    """On Windows two domain folders on two drives have no common path: os.path.commonpath had raised ValueError."""
    a, b = two_folders(tmp_path, utk)
    twin = Path(shutil.copy(sorted(a.glob("*.jpg"))[0], b / "copy.jpg"))
    common, relative = os.path.commonpath, os.path.relpath

    def on_two_drives(*paths: str) -> bool:  # as ntpath takes C:\faces\A and D:\faces\B
        return {f for p in paths for f in (a, b) if Path(os.path.abspath(p)).is_relative_to(f)} == {a, b}

    def commonpath(paths):
        paths = list(paths)
        if on_two_drives(*paths):
            raise ValueError("Paths don't have the same drive")
        return common(paths)

    def relpath(path, start=os.curdir):
        if on_two_drives(path, start):
            raise ValueError("path is on mount 'D:', start on mount 'C:'")
        return relative(path, start)

    monkeypatch.setattr(os.path, "commonpath", commonpath)
    monkeypatch.setattr(os.path, "relpath", relpath)
    d = folder_domains(str(a), str(b), 0, 1)
    assert d.overlap["images_in_both_domains"] == {"A": 1, "B": 1}
    assert str(twin) not in {s.path for s in d.b.train}


def test_folders_without_a_shared_photograph_keep_every_training_image(tmp_path, utk):
    a, b = two_folders(tmp_path, utk)
    d = folder_domains(str(a), str(b), 0, 1)
    assert d.overlap["images_in_both_domains"] == {"A": 0, "B": 0}
    assert d.overlap["near_identical"]["images"] == {"A": 0, "B": 0}
    _every_image_split(d, a, b)


@pytest.fixture(scope="module")
def engineer_overlap(tmp_path_factory) -> tuple[Path, Path]:
    """A UTKFace-style dataset in which every other face is saved again under a new name (a photograph on both
    sides where the names' halves differ), and a one-step engineer run on it."""
    root = tmp_path_factory.mktemp("eng")
    data = write_utk(root / "UTKFace", per_cell=14)
    for i, p in enumerate(sorted(data.iterdir())[::2]):
        age, g, r, _ = p.name.split("_", 3)
        resave(p, data / f"{age}_{g}_{r}_20180101{i:09d}.jpg.chip.jpg")
    run = root / "run"
    assert train(run, data, "--n-epochs", "1") == 0
    return data, run


def test_the_engineer_recipe_counts_photographs_on_both_sides_on_its_card_and_keeps_its_split(engineer_overlap):
    data, run = engineer_overlap
    read = open_dataset(f"utkface:{data}")
    d = engineer_domains(f"utkface:{data}", 0, 4)
    sides = [{Path(s.path).name for s in train} for train in (d.a.train, d.b.train)]
    both = [g for g in read.near_identical if sides[0] & set(g) and sides[1] & set(g)]
    assert both  # the dataset makes some, else this tests nothing
    # the split stays the recipe's: each side's faces are those of its half of the names
    assert {_salted_half(s) for s in d.a.train} == {0} and {_salted_half(s) for s in d.b.train} == {1}
    assert d.overlap["photographs_in_both_domains_training"] == len(both)
    record = read_card(run / "filter_A2B.onnx").training["domain_overlap"]
    assert record["photographs_in_both_domains_training"] == len(both)
    assert record["examples"] and "≈" in record["examples"][0]
    from inference.card_markdown import card_markdown

    assert (f"- {len(both)} photograph(s) trained on in both domains (near-identical images under two names), kept as "
            "the recipe's split") in card_markdown(read_card(run / "filter_A2B.onnx"), "filter_A2B.onnx", 0.1)


# --- the card's held-out faces ---------------------------------------------------------------------------------------

def test_the_card_says_which_held_out_faces_its_figures_were_measured_on(engineer_overlap):
    """fixed_val(test, n, seed + 1) chose them, and the card did not say so: its figures could not be measured
    again on the same faces."""
    data, run = engineer_overlap
    card = read_card(run / "filter_A2B.onnx")
    chosen = card.metrics["evaluated_faces"]
    assert "fixed_val" in chosen["rule"] and "test" in chosen["rule"]
    d = engineer_domains(f"utkface:{data}", card.training["seed"], 4)
    assert chosen["test_faces"] == len(d.a.test)
    again = fixed_val(d.a.test, chosen["n"], chosen["seed"])  # the record alone picks the same faces
    assert len(again) == card.metrics["n_faces"]
    assert Counter(s.race for s in again) == {race: row["n"] for race, row in card.metrics["by_race"].items()}


# --- log.csv's drift after a resume ------------------------------------------------------------------------------

# 40 steps in one epoch, a drift point every 15 and a log row every 20 (the loop's): the row at step 40 repeats the
# drift of step 30, where the interrupted run stopped.
LONG_EPOCH = ("--n-epochs", "1", "--iters-per-epoch", "40", "--sample-every", "15")
STOP_AT = 30
REAL_FACES = 24


def _log_rows(run: Path) -> list[dict[str, str]]:
    with open(run / "log.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _same_rows(resumed: list[dict[str, str]], straight: list[dict[str, str]]) -> None:
    assert [r["step"] for r in resumed] == [r["step"] for r in straight]
    for got, want in zip(resumed, straight):
        for k, v in want.items():
            if k == "delta_ita" and math.isnan(float(v)):
                assert math.isnan(float(got[k])), (got["step"], k)
            else:
                assert float(got[k]) == pytest.approx(float(v), rel=1e-6, abs=1e-9), (got["step"], k, got[k], v)


@pytest.fixture(scope="module")
def real_faces(tmp_path_factory) -> tuple[Path, Path]:
    """Two folders of real adult faces (UTKFace): the skin of the synthetic ones is not measurable, and their drift
    is NaN at every sample point."""
    root = tmp_path_factory.mktemp("real")
    faces = utk_images(2 * REAL_FACES)
    folders = root / "A", root / "B"
    for folder, some in zip(folders, (faces[:REAL_FACES], faces[REAL_FACES:])):
        folder.mkdir()
        for p in some:
            shutil.copy(p, folder / p.name)
    return folders


@pytest.fixture(scope="module")
def straight_run(tmp_path_factory, real_faces) -> Path:
    run = tmp_path_factory.mktemp("straight") / "run"
    assert train_folders(run, *real_faces, *LONG_EPOCH) == 0
    return run


def test_a_resumed_run_logs_the_drift_of_its_last_sample_point_as_the_uninterrupted_one(tmp_path, real_faces,
                                                                                        straight_run):
    """delta_ita had been NaN after a resume until the next sample point."""
    run = tmp_path / "run"
    assert train_folders(run, *real_faces, *LONG_EPOCH, "--max-steps", str(STOP_AT)) == 0
    kept = load_checkpoint(run)["config"].get(LAST_DRIFT)
    assert train_folders(run, *real_faces, *LONG_EPOCH, "--resume") == 0
    rows = _log_rows(straight_run)
    assert any(int(r["step"]) > STOP_AT and not math.isnan(float(r["delta_ita"])) for r in rows)
    _same_rows(_log_rows(run), rows)
    assert kept is not None and not math.isnan(kept)  # from the checkpoint, not from drift.csv


def test_a_checkpoint_from_before_it_kept_the_drift_takes_it_from_drift_csv(tmp_path, real_faces, straight_run):
    run = tmp_path / "run"
    assert train_folders(run, *real_faces, *LONG_EPOCH, "--max-steps", str(STOP_AT)) == 0
    state = load_checkpoint(run)
    state["config"].pop(LAST_DRIFT, None)
    torch.save(state, run / CHECKPOINT)
    with open(run / "drift.csv", newline="", encoding="utf-8") as fh:
        fields = csv.DictReader(fh).fieldnames
    # a row past the checkpoint, as a kill after a sample point and before its checkpoint leaves
    with open(run / "drift.csv", "a", newline="", encoding="utf-8") as fh:
        csv.DictWriter(fh, fieldnames=fields).writerow({k: (STOP_AT + 5 if k == "step" else -99.0) for k in fields})
    assert train_folders(run, *real_faces, *LONG_EPOCH, "--resume") == 0
    _same_rows(_log_rows(run), _log_rows(straight_run))
