"""`main.py audit`: the faces past --max-faces are said and listed, never dropped silently, and an example face's
before → after makes the ΔP(female) reported for it.

The crowd is a grid of real UTKFace faces, found by the default (Haar) detector; the models are the tiny
random-weight ones of conftest (a classifier, and a filter at 32 px, so the reference is resampled).
"""
from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_audit.py

from conftest import run_main, utk_images  # noqa: E402

GRID = (2, 3)  # rows × columns of faces in the crowd


@pytest.fixture(scope="module")
def crowd(tmp_path_factory) -> Path:
    """A folder holding one image: rows × columns real faces side by side."""
    folder = tmp_path_factory.mktemp("crowd") / "in"
    folder.mkdir()
    rows, cols = GRID
    faces = [cv2.imread(str(p)) for p in utk_images(rows * cols)]
    cv2.imwrite(str(folder / "crowd.png"), np.vstack([np.hstack(faces[r * cols:(r + 1) * cols]) for r in range(rows)]))
    return folder


def audit(capsys, folder: Path, out: Path, models: dict, *extra: str) -> tuple[int, str, dict, dict]:
    """The audit's exit status, stderr, report.json and run.json."""
    code, _, err = run_main(["audit", "--dataset", f"folder:{folder}", "--out", str(out),
                             "--classifier", str(models["classifier"]), "--filter", str(models["darken"]),
                             "--threads", "1", "--no-progress", *extra], capsys)
    if code != 0:
        return code, err, {}, {}
    return code, err, json.loads((out / "report.json").read_text()), json.loads((out / "run.json").read_text())


def test_faces_past_max_faces_are_warned_of_listed_and_max_faces_keys_the_cache(crowd, tmp_path, tiny_models, capsys):
    """25 faces found, the 20 largest audited: the audit said nothing, exited 0 with n_faces 20, had no --max-faces,
    and a cache made at one cap would have served another."""
    out = tmp_path / "audit"
    cap = (GRID[0] * GRID[1]) // 2
    code, err, capped, run = audit(capsys, crowd, out, tiny_models, "--max-faces", str(cap))
    assert code == 0, err
    [left] = capped["images"]["faces_not_analysed"]
    found = left["n_found"]
    assert found > cap  # the detector found more faces than the cap: what this test is about
    assert left == {"file": "crowd.png", "n_found": found, "n_analysed": cap}
    assert capped["audit"]["max_faces"] == cap and capped["images"]["n_faces"] == cap
    assert f"warning: 1 image(s) had more faces than are analysed (the {cap} largest of each): {found - cap} face(s)" \
           in err and "--max-faces analyses more" in err
    assert any("more faces than are analysed" in line for line in capped["summary"])
    assert "More faces than analysed" in (out / "report.html").read_text()
    assert run["images_computed"] == 1

    # another cap, same --out: measured again, not the cached faces of the first
    code, err, every, run = audit(capsys, crowd, out, tiny_models, "--max-faces", str(found), "--no-html")
    assert code == 0, err
    assert run["images_computed"] == 1 and run["images_from_cache"] == 0
    assert every["images"]["n_faces"] == found and every["images"]["faces_not_analysed"] == []
    assert "more faces than" not in err

    # the first cap again: its own cache serves it, and the report is the first one
    code, err, again, run = audit(capsys, crowd, out, tiny_models, "--max-faces", str(cap))
    assert code == 0, err
    assert run["images_from_cache"] == 1 and run["images_computed"] == 0
    assert again == capped


def test_max_faces_with_aligned_faces_is_refused(crowd, tmp_path, tiny_models, capsys):
    """The whole image is one face: a cap on the faces found would change nothing, so it is not taken silently."""
    code, err, _, _ = audit(capsys, crowd, tmp_path / "aligned", tiny_models, "--aligned", "--max-faces", "3")
    assert code == 2 and "--max-faces caps the faces the detector finds" in err and "--aligned" in err


def test_an_example_faces_before_and_after_make_its_delta_p(crowd, tmp_path, tiny_models, capsys):
    """The example showed the sharp crop's P(female) as its before (0.940 → 0.931) beside a ΔP of −0.0068, which is
    measured from the crop through the filter's resampling (the reference)."""
    from inference.audit.html import example_captions

    out = tmp_path / "audit"
    code, err, r, _ = audit(capsys, crowd, out, tiny_models, "--no-html")
    assert code == 0, err
    with open(out / "faces.csv", newline="", encoding="utf-8") as fh:
        rows = {(row["file"], int(row["face"])): row for row in csv.DictReader(fh)}
    examples = r["examples"]["faces"]
    assert examples
    names = list(r["classifiers"])
    resampled = False
    for group, e in examples.items():
        row = rows[(e["file"], e["face"])]
        for n in names:
            p = e["p_female"][n]
            before, after = p["reference"], p["filtered"]
            assert after - before == pytest.approx(p["delta"], abs=1e-6), (group, n)
            assert p["delta"] == pytest.approx(float(row[f"{n}:delta_p_female"]), abs=1e-6), (group, n)
            assert before == pytest.approx(float(row[f"{n}:p_female_reference"]), abs=1e-6)
            assert p["original"] == pytest.approx(float(row[f"{n}:p_female"]), abs=1e-6)  # the sharp crop's, kept
            resampled |= f"{p['original']:.3f}" != f"{before:.3f}"
            # report.html's captions: the before is the reference, and the after names the same ΔP
            shown_before, shown_after = example_captions(p)
            assert shown_before.startswith(f"P(f) {before:.3f}")
            assert shown_after == f"P(f) {after:.3f} (Δ {p['delta']:+.3f})"
    # the filter's 32 px resampling moves some P(female): otherwise the sharp and the reference could not be told apart
    assert resampled
