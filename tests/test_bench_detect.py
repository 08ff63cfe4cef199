"""`main.py bench detect`: who each face detector misses, on real faces (a few per group: seconds)."""
import json

import numpy as np
import pytest

import main
from inference.bench_detect import choose, found_in, parse_detectors, pasted
from inference.datasets import Sample
from inference.errors import BiasMirrorError
from inference.faces import Detection
from tests.conftest import require_utk


def test_a_face_is_found_only_by_a_box_centred_on_it():
    face = (100, 50, 200, 200)
    assert found_in([Detection((120, 60, 160, 170))], face)
    assert found_in([Detection((0, 0, 10, 10)), Detection((90, 40, 220, 230))], face)
    assert not found_in([Detection((0, 0, 150, 150))], face)  # overlaps, but centred elsewhere
    assert not found_in([], face)


def test_the_face_is_pasted_whole_in_the_centre():
    img = np.full((200, 200, 3), 7, np.uint8)
    frame, (x, y, w, h) = pasted(img, (640, 480), 176)
    assert frame.shape == (480, 640, 3) and (x, y, w, h) == (232, 152, 176, 176)
    assert (frame[y : y + h, x : x + w] == 7).all() and (frame == 7).sum() == 176 * 176 * 3


def test_faces_are_taken_across_each_group_not_from_its_start():
    samples = [Sample(f"{age:03d}_x.jpg", race="A" if age % 2 else "B", age=age) for age in range(100)]
    chosen = choose(samples, "race", 5, 18)
    assert list(chosen) == ["A", "B"]
    ages = [s.age for s in chosen["A"]]
    assert len(ages) == 5 and min(ages) == 19 and max(ages) == 99  # spans the ages, oldest included
    assert all(s.age >= 18 for group in chosen.values() for s in group)


def test_bench_detect_reports_each_group_for_each_detector(tmp_path, capsys):
    root = require_utk().parent
    out = tmp_path / "detect.json"
    code = main.main(["bench", "detect", "--data", f"utkface:{root}", "--per-group", "4",
                      "--detectors", "haar-alt2,haar-default", "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert [r["name"] for r in data["results"]] == ["haar-alt2", "haar-default"] and data["complete"] is True
    for r in data["results"]:
        assert [g["group"] for g in r["groups"]] == ["Asian", "Black", "Indian", "Others", "White"]
        for g in r["groups"]:
            assert g["n"] == 4 and 0 <= g["found"] <= 4 and g["ci"][0] <= g["share"] <= g["ci"][1]
        assert r["overall"]["n"] == 20 and r["overall"]["found"] == sum(g["found"] for g in r["groups"])
        assert r["overall"]["found"] >= 14 and r["p50_ms"] > 0  # real, aligned, frontal faces: most are found
        assert r["gap"] == pytest.approx(max(g["share"] for g in r["groups"]) - min(g["share"] for g in r["groups"]))
    printed = capsys.readouterr().out
    for r in data["results"]:  # a gap is named only where there is one
        shares = {g["share"] for g in r["groups"]}
        assert (f"{r['name']}: every group's faces found alike" in printed) == (len(shares) == 1)
        assert (f"{r['name']}: " in printed and "a gap of" in printed) or len(shares) == 1


@pytest.mark.parametrize("spec", ["haar-nope", "dlib", ",", "haar-alt2@3/20", "haar-alt2-ort@", "haar-alt2-ort@3/x",
                                  "haar-alt2-ort@3/19", "haar-alt2-ort@6/3/20", "haar-alt2-ort@0/20"])
def test_an_unknown_detector_is_named(spec):
    with pytest.raises(BiasMirrorError, match="--detectors"):
        parse_detectors(spec)


# --- found by a review of bench detect and train evaluate (2026-12-06) ----------------------------------------------

def test_a_detector_named_twice_and_an_absurd_resolution_are_refused(tmp_path, capsys):
    """Named twice, each face was counted twice and every interval came out too narrow; 100000x100000 asked NumPy
    for 28 GiB and died with a traceback."""
    with pytest.raises(BiasMirrorError, match="--detectors names haar-alt2 more than once"):
        parse_detectors("haar-alt2,haar-default,haar-alt2")
    root = require_utk().parent
    assert main.main(["bench", "detect", "--data", f"utkface:{root}", "--resolution", "100000x100000"]) == 2
    assert "--resolution 100000x100000 is too large" in capsys.readouterr().err


def test_an_age_bar_keeps_no_face_of_unknown_age_and_says_so_when_it_leaves_none(capsys):
    samples = [Sample("a.jpg", race="A", age=40), Sample("b.jpg", race="A"), Sample("c.jpg", race="B", age=10)]
    assert {g: [s.path for s in m] for g, m in choose(samples, "race", 5, 18).items()} == {"A": ["a.jpg"]}
    assert {g: len(m) for g, m in choose(samples, "race", 5, -1).items()} == {"A": 2, "B": 1}
    root = require_utk().parent
    assert main.main(["bench", "detect", "--data", f"utkface:{root}", "--per-group", "2", "--min-age", "200"]) == 2
    assert "no face with a race label is 200 or older" in capsys.readouterr().err  # it said: no race labels


def test_a_ctrl_c_between_two_detectors_keeps_them_on_the_same_faces(tmp_path, monkeypatch):
    from inference.faces import HaarDetector

    calls = {"n": 0}
    real = HaarDetector.detect

    def interrupted_on_the_8th_call(self, frame):
        calls["n"] += 1
        if calls["n"] == 8:  # the second detector of the fourth face
            raise KeyboardInterrupt
        return real(self, frame)

    monkeypatch.setattr(HaarDetector, "detect", interrupted_on_the_8th_call)
    out = tmp_path / "d.json"
    root = require_utk().parent
    assert main.main(["bench", "detect", "--data", f"utkface:{root}", "--per-group", "2", "--detectors",
                      "haar-alt2,haar-default", "--json", str(out)]) == 130
    frames = [r["frames"] for r in json.loads(out.read_text())["results"]]
    assert frames == [3, 3]


def test_groups_tied_as_found_least_or_most_are_all_named():
    """Of four groups at 100 % one was named "most" alone, as if the others trailed it."""
    from types import SimpleNamespace

    from inference.bench_detect import tied

    groups = [SimpleNamespace(group=g, share=s) for g, s in (("Asian", 1.0), ("Black", 1.0), ("Indian", 0.8),
                                                             ("White", 1.0))]
    assert tied(groups, 1.0) == "Asian, Black and White" and tied(groups, 0.8) == "Indian"
