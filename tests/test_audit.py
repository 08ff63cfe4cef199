"""`main.py audit`: planted errors are found exactly, filter shifts are measured right, reports are stable.

All data is synthetic and written at test time (UTKFace-style names, 40×40),
except one real UTKFace face pasted on a canvas for the detector test.
"""
from __future__ import annotations

import argparse
import csv
import csv as csv_module
import json
import re
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for conftest, as in test_skin.py

from conftest import make_diverged_classifier, own_pattern, utk_images  # noqa: E402
from inference.audit import cli as audit_cli  # noqa: E402
from inference.audit.report import TOP_LEVEL_KEYS  # noqa: E402
from inference.audit.stats import holm  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.faces import face_region_mask  # noqa: E402
from inference.pipeline import cam_focus  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
RACE_RGB = {0: (225, 190, 170), 1: (110, 75, 55), 2: (215, 180, 150), 3: (170, 125, 95)}
PLANTED_GROUP, PLANTED_WRONG, PER_GROUP = "female/Asian", 4, 10


def make_planted_classifier(path: Path, size: int = 32) -> Path:
    """Calls 'female' when the top-left corner is bright: the truth is in the picture, not learnt."""
    import torch

    from inference.card import classifier_card
    from training.export import export

    class Corner(torch.nn.Module):
        def forward(self, image):
            x = image.float() / 255.0
            m = x[:, :4, :4, :].mean(dim=(1, 2, 3))
            logit = 40.0 * (m - 0.5)
            probs = torch.softmax(torch.stack([-logit, logit], dim=1), dim=1)
            grey = x.mean(dim=3, keepdim=True).permute(0, 3, 1, 2)
            cam = torch.nn.functional.adaptive_avg_pool2d(grey, 4)
            return probs, torch.cat([1 - cam, cam], dim=1)

    card = classifier_card("planted", size, ["male", "female"], (4, 4), "corner brightness (test)", {"dataset": "none"}, {})
    export(Corner(), [torch.zeros(2, size, size, 3, dtype=torch.uint8)], ["image"], ["probs", "cam"], path, card)
    return path


def write_utk(folder: Path) -> Path:
    """80 faces: 2 genders × 4 races × 10; the corner encodes the annotated gender except for planted errors."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    i = 0
    for gender in (0, 1):
        for race, rgb in RACE_RGB.items():
            for k in range(PER_GROUP):
                img = np.clip(np.array(rgb, float) * rng.uniform(0.9, 1.1) + rng.normal(0, 6, (40, 40, 3))
                              + own_pattern(rng, 40), 0, 255).astype(np.uint8)
                female_corner = gender == 1
                if f"{'female' if gender else 'male'}/{['White', 'Black', 'Asian', 'Indian'][race]}" == PLANTED_GROUP and k < PLANTED_WRONG:
                    female_corner = not female_corner
                img[:8, :8] = 255 if female_corner else 0
                cv2.imwrite(str(folder / f"{30 + k}_{gender}_{race}_2017010100000{i:04d}.jpg.chip.jpg"),
                            cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 100])
                i += 1
    return folder


def audit(*argv: str) -> tuple[int, dict, dict]:
    parser = argparse.ArgumentParser()
    audit_cli.add_arguments(parser)
    args = parser.parse_args([*argv, "--no-progress", "--threads", "1"])
    rc = audit_cli.main(args)
    out = Path(args.out)
    return rc, json.loads((out / "report.json").read_text()), json.loads((out / "run.json").read_text())


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_models):
    d = tmp_path_factory.mktemp("audit")
    data = write_utk(d / "utk")
    planted = make_planted_classifier(d / "planted.onnx")
    out = d / "full"
    rc, report, run = audit("--dataset", f"utkface:{data}", "--classifier", str(planted), "--classifier",
                            str(tiny_models["classifier"]), "--filter", str(tiny_models["darken"]), "--out", str(out))
    assert rc == 0
    return {"dir": d, "data": data, "planted": planted, "out": out, "report": report, "run": run, **tiny_models}


def test_planted_errors_give_exact_group_accuracy(world):
    by = world["report"]["classifiers"]["planted"]["metrics"]["by"]["gender_race"]
    assert by[PLANTED_GROUP]["accuracy"]["value"] == pytest.approx(1 - PLANTED_WRONG / PER_GROUP)
    assert by[PLANTED_GROUP]["fnr"]["value"] == pytest.approx(PLANTED_WRONG / PER_GROUP)
    for g, m in by.items():
        assert m["n"] == PER_GROUP and m["small"]
        if g != PLANTED_GROUP:
            assert m["accuracy"]["value"] == 1.0
    gaps = world["report"]["classifiers"]["planted"]["metrics"]["gaps"]["gender_race"]["accuracy"]
    assert gaps["worst"] == PLANTED_GROUP and gaps["difference"] == pytest.approx(0.4)
    assert set(world["report"]["classifiers"]) == {"planted", "tiny-a"}  # side by side


def test_darken_filter_shift_matches_direct_measurement(world):
    from inference.faces import whole_image_crop
    from inference.images import read_rgb
    from inference.models import load_model
    from inference.images import resize_batch
    from inference.skin import compare_skin, measure_skin_tone

    f = world["report"]["filter"]
    overall = f["overall"]["delta_ita"]
    assert overall["mean"]["value"] < -1 and overall["mean"]["hi"] < 0
    assert overall["wilcoxon"]["p"] < 1e-6 and overall["wilcoxon"]["rank_biserial"] == pytest.approx(-1)
    filt = load_model(world["darken"], "filter")
    deltas = []
    for p in sorted(world["data"].iterdir()):
        crop = whole_image_crop(read_rgb(str(p)), 112)[0]
        small = resize_batch(crop[None], filt.size)
        out = resize_batch(filt.apply(small), (112, 112))[0]
        before = resize_batch(small, (112, 112))[0]  # the pipeline measures "before" through the same resampling
        deltas.append(compare_skin(measure_skin_tone(before), measure_skin_tone(out)).delta_ita)
    assert overall["mean"]["value"] == pytest.approx(np.mean(deltas), abs=1e-3)
    for g, s in f["by"]["gender_race"].items():
        assert s["delta_ita"]["wilcoxon"]["p_holm"] < 0.05, g
    assert f["composition"]["target_note"] == "no target in the card"
    assert f["overall"]["classifiers"]["planted"]["flip_rate"]["value"] == 0.0
    test = f["overall"]["classifiers"]["planted"]["delta_p_female"]["wilcoxon"]  # every test has p_holm (schema)
    assert test["p_holm"] == test["p"]
    html = (world["out"] / "report.html").read_text()
    assert "data:image/png;base64," in html and "median ΔITA" in html
    ex = world["report"]["examples"]["faces"]
    assert set(ex) == set(world["report"]["groups"]["sizes"]["gender_race"])


def test_identity_filter_no_shift(world, tmp_path):
    rc, r, _ = audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]),
                     "--classifier", str(world["classifier"]),
                     "--filter", str(world["identity"]), "--out", str(tmp_path / "id"), "--no-html")
    o = r["filter"]["overall"]
    assert abs(o["delta_ita"]["mean"]["value"]) < 0.05
    assert o["delta_ita"]["wilcoxon"]["p"] is None or o["delta_ita"]["wilcoxon"]["p"] > 0.05
    # the filter works at 32 px on 112 px crops: its resampling alone moves the tiny classifier's P(female),
    # which is not the filter's doing, so ΔP is measured against the crop's round trip and reads zero
    shift = o["classifiers"]["tiny-a"]
    assert shift["delta_p_female"]["mean"]["value"] == pytest.approx(0, abs=1e-6)
    assert shift["flip_rate"]["value"] == 0.0
    with open(tmp_path / "id" / "faces.csv", newline="") as fh:
        faces = list(csv.DictReader(fh))
    # 1 or 0, as documented and as run's CSV writes it: "True"/"False" had matched no script's == "1"
    assert {f["measurable"] for f in faces} == {"1"} and o["n_measurable"] == len(faces)
    assert faces and all(float(f["tiny-a:delta_p_female"]) == pytest.approx(
        float(f["tiny-a:p_female_filtered"]) - float(f["tiny-a:p_female_reference"]), abs=2e-6) for f in faces)
    # (the random tiny classifier hardly moves: up to 1e-4 here, far above the 1e-6 the figures are kept to)
    assert any(abs(float(f["tiny-a:p_female_reference"]) - float(f["tiny-a:p_female"])) > 3e-5 for f in faces)


def test_schema_round_trip(world):
    r = json.loads((world["out"] / "report.json").read_text())
    assert tuple(r) == TOP_LEVEL_KEYS and r["schema_version"] == 19  # no "gate" key unless asked for
    assert r["detection"] is None  # aligned faces: the whole image is the face, nothing was looked for
    doc = (REPO / "docs" / "audit_schema.md").read_text()
    for key in TOP_LEVEL_KEYS:
        assert f"`{key}`" in doc, key
    assert "date" not in json.dumps(r["audit"]) and "date" in world["run"]


def test_rerun_identical_and_resume(world, tmp_path):
    args = ["--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]), "--classifier",
            str(world["classifier"]), "--filter", str(world["darken"]), "--no-html"]
    full = (world["out"] / "report.json").read_bytes()
    # Re-run in the same folder (a copy: --no-html takes the other tests' report.html away): everything from the
    # cache, identical report.
    shutil.copytree(world["out"], tmp_path / "again")
    rc, _, run = audit(*args, "--out", str(tmp_path / "again"))
    assert run["images_computed"] == 0 and (tmp_path / "again" / "report.json").read_bytes() == full
    # Interrupted run: a limited run, then a torn cache, then the full run.
    out = tmp_path / "resume"
    audit(*args, "--out", str(out), "--limit", "30")
    for f in (out / "cache").glob("clf-*.jsonl"):
        text = f.read_text()
        f.write_text(text[: len(text) * 2 // 3])  # cut mid-line
    rc, _, run = audit(*args, "--out", str(out))
    assert 0 < run["images_computed"] < 80 and run["images_from_cache"] > 0
    assert (out / "report.json").read_bytes() == full
    # Another classifier reuses the skin and filter numbers and the first classifier's outputs.
    base_lines = len((out / "cache").glob("base-*.jsonl").__next__().read_text().splitlines())
    rc, r, run = audit(*args, "--classifier", str(world["classifier2"]), "--out", str(out))
    assert set(r["classifiers"]) == {"planted", "tiny-a", "tiny-b"}
    assert len(next((out / "cache").glob("base-*.jsonl")).read_text().splitlines()) == base_lines


def test_limit_is_stratified_and_deterministic(world, tmp_path):
    _, r, _ = audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]), "--no-filter",
                    "--out", str(tmp_path / "lim"), "--limit", "16", "--no-html")
    assert r["groups"]["sizes"]["gender_race"] == {g: 2 for g in r["groups"]["sizes"]["gender_race"]}
    assert len(r["groups"]["sizes"]["gender_race"]) == 8 and r["filter"] is None


@pytest.mark.parametrize("share", [1.0, 0.0, 0.5])
def test_cam_focus_synthetic(share):
    size = 64
    region = face_region_mask(size)
    cam = np.zeros((size, size), np.float32)
    inside, outside = np.argwhere(region), np.argwhere(~region)
    if share > 0:
        cam[tuple(inside[:100].T)] = share
    if share < 1:
        cam[tuple(outside[:100].T)] = 1 - share
    cam[tuple(outside[-50:].T)] -= 5.0  # negative evidence never counts
    assert cam_focus(cam, region) == pytest.approx(share)
    assert cam_focus(-np.ones((size, size)), region) is None


def test_holm_step_down():
    assert holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])


def _folder(tmp_path: Path, world, n: int = 12) -> Path:
    folder = tmp_path / "folder"
    folder.mkdir()
    for p in sorted(world["data"].iterdir())[::80 // n][:n]:
        shutil.copy(p, folder / f"img_{p.name.split('_')[3][:-13]}.jpg")
    return folder


def test_the_focus_grids_rows_are_named_lowest_and_highest_and_each_face_by_its_maps_class(world, tmp_path, monkeypatch):
    """The class a face's map is of had taken the row's name: both rows read "female" where they were the lowest and
    the highest focus."""
    from inference.audit import figures

    grids, real = [], figures.face_grid
    monkeypatch.setattr(figures, "face_grid", lambda rows, title: grids.append((title, rows)) or real(rows, title))
    folder = _folder(tmp_path, world, n=6)
    audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]), "--no-filter",
          "--out", str(tmp_path / "o"))
    [(_, rows)] = [(t, r) for t, r in grids if "CAM focus" in t]
    assert [label for label, _ in rows] == ["lowest focus", "highest focus"]
    assert all(re.fullmatch(r"focus \d+% \((female|male) CAM\)", caption) for _, panels in rows for caption, _ in panels)


def test_unlabelled_folder_with_and_without_groups(world, tmp_path):
    folder = _folder(tmp_path, world)
    files = sorted(p.name for p in folder.iterdir())
    csv = tmp_path / "groups.csv"
    csv.write_text("file,group\n" + "".join(f"{f},{'team a' if i % 2 else 'team b'}\n" for i, f in enumerate(files[:-1]))
                   + "ghost.jpg,team a\n")
    base = ["--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
            "--filter", str(world["darken"]), "--no-html"]
    rc, r, _ = audit(*base, "--out", str(tmp_path / "plain"))
    assert rc == 0 and not r["audit"]["labelled"] and r["classifiers"]["tiny-a"]["metrics"] is None
    assert r["classifiers"]["tiny-a"]["p_female"]["overall"]["n"] == len(files)
    assert "gender" not in (tmp_path / "plain" / "faces.csv").read_text().split("\n")[1]
    # no labels, no groups: faces are compared by the skin tone measured on each original face (none had been)
    tones = {row["ita_category"] or "not measurable" for row in csv_module.DictReader(open(tmp_path / "plain" / "faces.csv"))}
    assert r["groups"]["groupings"] == ["skin_tone"] and set(r["filter"]["by"]["skin_tone"]) == tones
    rc, r, _ = audit(*base, "--groups", str(csv), "--out", str(tmp_path / "grouped"))
    gc = r["images"]["groups_csv"]
    assert gc["listed_not_found"] == ["ghost.jpg"] and gc["not_listed"] == [files[-1]]
    assert set(r["filter"]["by"]["group"]) == {"team a", "team b", "(no group)"}
    assert set(r["focus"]["tiny-a"]["by"]["group"]) == {"team a", "team b", "(no group)"}


def test_images_with_no_age_that_min_age_leaves_out_are_counted(world, tmp_path, capsys):
    folder = _folder(tmp_path, world)
    files = sorted(p.name for p in folder.iterdir())
    # four with no age: --min-age 18 cannot judge them, so they are left out, and the report says how many
    (folder / "labels.csv").write_text("file,gender,race,age\n" + "".join(
        f"{f},female,White,{'' if i < 4 else 20 + i}\n" for i, f in enumerate(files)))
    base = ["--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]), "--no-filter"]
    # (with the HTML: one gender only, so some ratios and rates are not measured, which the page must say)
    rc, r, _ = audit(*base, "--min-age", "18", "--out", str(tmp_path / "adults"))
    assert rc == 0 and r["images"]["n_images"] == len(files) - 4 and r["images"]["no_age_left_out"] == 4
    assert "--min-age 18 left out 4 image(s) with no age" in capsys.readouterr().err
    rc, r, _ = audit(*base, "--out", str(tmp_path / "all"), "--no-html")
    assert r["images"]["n_images"] == len(files) and "no_age_left_out" not in r["images"]


def test_unlabelled_matches_labelled_p_female(world, tmp_path):
    rc, r, _ = audit("--dataset", f"folder:{world['data']}", "--aligned", "--classifier", str(world["planted"]),
                     "--classifier", str(world["classifier"]), "--filter", str(world["darken"]), "--out", str(tmp_path / "u"),
                     "--no-html")
    for n in ("planted", "tiny-a"):
        assert r["classifiers"][n]["p_female"]["overall"] == world["report"]["classifiers"][n]["p_female"]["overall"]
    assert r["filter"]["overall"]["delta_ita"] == world["report"]["filter"]["overall"]["delta_ita"]


def test_detection_lists_images_without_faces(world, tmp_path):
    folder = tmp_path / "photos"
    folder.mkdir()
    face = cv2.imread(str(utk_images(1)[0]))
    canvas = np.full((400, 400, 3), 128, np.uint8)
    canvas[100:300, 100:300] = face
    cv2.imwrite(str(folder / "person.jpg"), canvas)
    cv2.imwrite(str(folder / "wall.jpg"), np.full((200, 200, 3), 90, np.uint8))
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--out", str(tmp_path / "det"))
    assert r["audit"]["detect"] and r["images"]["no_face"] == ["wall.jpg"]
    assert r["images"]["n_faces"] >= 1 and any("no detectable face" in s for s in r["summary"])
    assert r["audit"]["detector"] == "haar-alt2"  # the default cascade, named: it keys the cache too
    rc, again, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--no-filter",
                         "--out", str(tmp_path / "det"), "--haar-cascade", "default")
    assert rc == 0 and again["audit"]["detector"] == "haar-default"
    # faces found by one cascade are never reused for another: each has its own cache file
    bases = sorted(f.name.split("-")[1:3] for f in (tmp_path / "det" / "cache").glob("base-*.jsonl"))
    assert bases == [["haar", "alt2"], ["haar", "default"]]
    assert "wall.jpg" in (tmp_path / "det" / "report.html").read_text()
    empty = tmp_path / "empty"
    empty.mkdir()
    cv2.imwrite(str(empty / "wall.png"), np.full((100, 100, 3), 90, np.uint8))
    rc, r, _ = audit("--dataset", f"folder:{empty}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--out", str(tmp_path / "none"), "--no-html")
    assert rc == 2 and r["images"]["n_faces"] == 0 and "No faces were found" in " ".join(r["summary"])


def test_only_the_largest_face_carries_the_images_labels(world, tmp_path):
    """An image of two people annotated with one person's labels: the second face is somebody the annotation
    does not describe, so it is grouped as unknown everywhere, not as the annotated person's gender and race."""
    big, small = (cv2.imread(str(p)) for p in utk_images(2))
    folder = tmp_path / "pairs"
    folder.mkdir()
    with open(folder / "labels.csv", "w") as fh:
        fh.write("file,gender,race,age\n")
        for k in range(3):
            canvas = np.full((400, 640, 3), 128 + k, np.uint8)  # three images, not one stored three times
            canvas[60:320, 30:290] = cv2.resize(big, (260, 260))
            canvas[120:300, 400:580] = cv2.resize(small, (180, 180))
            cv2.imwrite(str(folder / f"pair{k}.jpg"), canvas)
            fh.write(f"pair{k}.jpg,female,Indian,30\n")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--out", str(tmp_path / "out"), "--no-html")
    assert rc == 0 and r["images"]["n_faces"] == 6, "both faces of each image should be found"
    sizes = r["groups"]["sizes"]["gender_race"]
    assert sizes == {"female/Indian": 3, "unknown/unknown": 3}
    assert r["classifiers"]["tiny-a"]["metrics"]["by"]["gender_race"]["female/Indian"]["n"] == 3
    with open(tmp_path / "out" / "faces.csv", newline="") as fh:
        faces = list(csv.DictReader(fh))
    assert sorted((f["face"], f["gender"], f["race"]) for f in faces) == [("0", "female", "Indian")] * 3 + [("1", "", "")] * 3
    first = [f for f in faces if f["face"] == "0"]
    assert all(int(f["box"].split()[2]) > 200 for f in first), "face 0 is the larger face"


def _photos_with_a_second_face(folder: Path, labels: list[str], pairs: int, header: str = "gender,race,age") -> Path:
    """One real face pasted in each photo, its labels ``labels[k]`` (CSV cells after the file's name), and in the
    first ``pairs`` photos a second, smaller face that no label names."""
    big, small = (cv2.imread(str(p)) for p in utk_images(2))
    folder.mkdir()
    rows = [f"file,{header}"]
    for k, cells in enumerate(labels):
        canvas = np.full((400, 640, 3), 100 + k, np.uint8)  # photos of their own, not one stored again
        canvas[60:320, 30:290] = cv2.resize(big, (260, 260))
        if k < pairs:
            canvas[120:300, 400:580] = cv2.resize(small, (180, 180))
        cv2.imwrite(str(folder / f"photo{k}.jpg"), canvas)
        rows.append(f"photo{k}.jpg,{cells}")
    (folder / "labels.csv").write_text("\n".join(rows) + "\n")
    return folder


# The identity filter moves no face's P(female), but a mean of values in [-1, 1] over 4 faces is shown no nearer than
# ±0.74 (the betting interval, inference.bounded_mean, whatever the values): a strict gate on so few needs that much
STRICT_GATE = ("--max-delta-ita", "2", "--max-delta-p", "0.9", "--max-unmeasurable-share", "0.99", "--strict")


def test_a_strict_gate_on_labelled_photos_leaves_out_the_faces_no_label_names(world, tmp_path, capsys):
    """A labelled photo's other faces are "unknown" in every grouping: two of them were a gender × race group and an
    age band of their own, "too few faces to tell", and failed `--strict` whatever the tolerance."""
    pairs, labelled = 2, "female,Indian,30"
    folder = _photos_with_a_second_face(tmp_path / "photos", [labelled] * (pairs + 2), pairs)
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--filter",
                     str(world["identity"]), "--out", str(tmp_path / "out"), "--no-html", *STRICT_GATE)
    gate, sizes = r["gate"], r["groups"]["sizes"]
    assert sizes["gender_race"] == {"female/Indian": pairs + 2, "unknown/unknown": pairs}, "a face was not found"
    assert rc == 0 and gate["passed"] is True, gate["failing"]
    assert {(g["grouping"], g["group"], g["n"]) for g in gate["not_gated"]} == {
        ("gender_race", "unknown/unknown", pairs), ("age_band", "unknown", pairs)}
    assert not any(row["group"].startswith("unknown") for row in gate["rows"])
    overall = [row for row in gate["rows"] if row["grouping"] == "overall" and row["measure"] != "made_unmeasurable"]
    assert overall and all(row["n"] == r["images"]["n_faces"] for row in overall), "overall holds every face"
    said = next(line for line in capsys.readouterr().out.splitlines() if "not gated" in line)
    assert said.startswith(f"  gender_race unknown/unknown (n={pairs}), age_band unknown (n={pairs}): faces no label "
                           "names (the detector's other faces in labelled photos")


def test_a_strict_gate_on_labelled_photos_still_fails_a_labelled_group_too_small_to_tell(world, tmp_path):
    pairs = 2
    labels = ["female,Indian,30"] * (pairs + 2) + ["male,Black,30"] * 2  # two faces: no interval
    folder = _photos_with_a_second_face(tmp_path / "photos", labels, pairs)
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--filter",
                     str(world["identity"]), "--out", str(tmp_path / "out"), "--no-html", *STRICT_GATE)
    gate = r["gate"]
    assert rc == 1 and gate["passed"] is False
    assert {(f["grouping"], f["group"], f["verdict"]) for f in gate["failing"]} == {("gender_race", "male/Black", "too few")}


def test_a_strict_gate_without_labels_still_gates_the_faces_of_no_group(world, tmp_path):
    """Without labels (here races alone, no gender) the groups given are all the audit has: its "unknown" is gated."""
    pairs = 2
    folder = _photos_with_a_second_face(tmp_path / "photos", ["Indian"] * (pairs + 2), pairs, header="race")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--filter",
                     str(world["identity"]), "--out", str(tmp_path / "out"), "--no-html", *STRICT_GATE)
    gate = r["gate"]
    assert not r["audit"]["labelled"] and gate["not_gated"] == []
    assert rc == 1 and ("race", "unknown", "too few") in {(f["grouping"], f["group"], f["verdict"])
                                                          for f in gate["failing"]}


def test_found_shares_and_test_per_group():
    from scipy import stats

    from inference.audit.detection import detection_audit, found_test

    # 100 images a group: A's face found in 98, B's in 80; and two unreadable images, which count nowhere
    images = ([{"error": None, "n_faces": int(i < 98)} for i in range(100)]
              + [{"error": None, "n_faces": 2 if i < 40 else int(i < 80)} for i in range(100)]
              + [{"error": "cannot be read", "n_faces": 0}] * 2)
    labels = ["A"] * 100 + ["B"] * 100 + ["A", "B"]
    d = detection_audit(images, {"g": labels}, "haar-test")
    a, b = d["by"]["g"]["A"], d["by"]["g"]["B"]
    assert (d["n_images"], d["n_found"]) == (200, 178)
    assert (a["n_images"], a["n_found"], b["n_images"], b["n_found"]) == (100, 98, 100, 80)
    assert a["share"]["value"] == 0.98 and b["share"]["lo"] < 0.8 < b["share"]["hi"]
    assert d["gaps"]["g"] == {"best": "A", "worst": "B", "difference": pytest.approx(0.18)}
    t = d["tests"]["g"]
    expected = stats.chi2_contingency([[98, 2], [80, 20]], correction=False)
    assert t["method"] == "asymptotic" and t["statistic"] == pytest.approx(expected.statistic)
    assert t["p"] == pytest.approx(expected.pvalue) and t["p"] < 0.001 and t["dof"] == 1
    # the same shares in small groups: expected misses below 5, so the p-value comes from permutations
    small = found_test({"A": (10, 10), "B": (10, 8), "C": (10, 9)})
    assert small["method"].startswith("permutation") and 0.1 < small["p"] <= 1 and small["dof"] == 2
    assert found_test({"A": (10, 10), "B": (5, 5)})["p"] == 1.0  # nothing missed: nothing to test
    assert found_test({"A": (10, 7)})["p"] is None


def test_detected_audit_reports_faces_found_per_group(world, tmp_path):
    """Real detection on UTKFace-named images: per group, exactly the images whose face is on the canvas."""
    faces_ = [cv2.imread(str(p)) for p in utk_images(5)]  # five people: one face pasted twice is one photograph
    folder = tmp_path / "utk"
    folder.mkdir()
    for k in range(6):  # race 0: four faces, two bare walls; race 1: one face, five walls
        for race, faces in ((0, 4), (1, 1)):
            canvas = np.full((400, 400, 3), 120 + k + 10 * race, np.uint8)  # no two files alike
            if k < faces:
                canvas[100:300, 100:300] = cv2.resize(faces_[k + 4 * race], (200, 200))
            cv2.imwrite(str(folder / f"{30 + k}_0_{race}_2017010100000{race}{k:03d}.jpg.chip.jpg"), canvas)
    rc, r, _ = audit("--dataset", f"utkface:{folder}", "--detect", "--classifier", str(world["classifier"]),
                     "--no-filter", "--out", str(tmp_path / "out"))
    d = r["detection"]
    by = d["by"]["gender_race"]
    assert rc == 0 and d["detector"] == "haar-alt2" and (d["n_images"], d["n_found"]) == (12, 5)
    assert (by["male/White"]["n_found"], by["male/Black"]["n_found"]) == (4, 1)
    assert d["gaps"]["gender_race"]["worst"] == "male/Black" and d["tests"]["gender_race"]["method"].startswith("permutation")
    line = next(s for s in r["summary"] if s.startswith("The detector (haar-alt2) found a face in 5 of 12"))
    assert "lowest for male/Black (16.7%" in line and "highest for male/White (66.7%" in line
    assert "Faces found, per group" in (tmp_path / "out" / "report.html").read_text()


def test_bad_input(world, tmp_path):
    with pytest.raises(BiasMirrorError, match="--classifier"):
        audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["darken"]), "--out", str(tmp_path / "x"))
    with pytest.raises(BiasMirrorError, match="no images left"):
        audit("--dataset", f"utkface:{world['data']}", "--min-age", "90", "--classifier", str(world["planted"]),
              "--out", str(tmp_path / "x"))
    with pytest.raises(BiasMirrorError, match="KIND:PATH"):
        audit("--dataset", f"imagenet:{world['data']}", "--classifier", str(world["planted"]), "--out", str(tmp_path / "x"))
    odd = tmp_path / "odd"
    odd.mkdir()
    cv2.imwrite(str(odd / "holiday.jpg"), np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(BiasMirrorError, match="unknown layout"):
        audit("--dataset", f"utkface:{odd}", "--classifier", str(world["planted"]), "--out", str(tmp_path / "x"))
    empty = tmp_path / "nothing"
    empty.mkdir()
    rc, r, _ = audit("--dataset", f"folder:{empty}", "--classifier", str(world["planted"]), "--no-filter",
                     "--out", str(tmp_path / "y"), "--no-html")
    assert rc == 2 and r["images"]["empty_folder"] and r["images"]["n_images"] == 0


def test_html_and_summary_say_what_report_json_says_never_nan(world):
    html = (world["out"] / "report.html").read_text()
    # the planted classifier's female groups have no negatives, so no FPR: null in the JSON, a dash on the page
    fpr = world["report"]["classifiers"]["planted"]["metrics"]["by"]["gender_race"]["female/White"]["fpr"]
    assert fpr["value"] is None
    text = re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)
    assert not re.search(r"\bnan\b", text, re.IGNORECASE) and not re.search(r"\bNone\b", text)
    assert "limit none" in text
    assert not any("nan" in line for line in world["report"]["summary"])


def test_a_p_value_of_exactly_zero_is_significant_in_the_summary_and_kept_in_the_json(world, tmp_path):
    import copy

    from inference.audit.report import write_json
    from inference.audit.summary import summary_lines

    r = copy.deepcopy(world["report"])
    by = r["filter"]["by"]["gender_race"]
    for g in by:  # SciPy's normal approximation returns exactly 0.0 for a large group that all moved one way
        by[g]["classifiers"]["planted"]["delta_p_female"]["wilcoxon"].update(p=0.0, p_holm=0.0)
    line = next(x for x in summary_lines(r) if x.startswith("planted: ΔP(female) is significant after Holm"))
    assert all(g in line for g in by)
    r["filter"]["overall"]["delta_ita"]["wilcoxon"]["p"] = 3.2e-12
    write_json(tmp_path / "r.json", r)
    assert json.loads((tmp_path / "r.json").read_text())["filter"]["overall"]["delta_ita"]["wilcoxon"]["p"] == 3.2e-12


def test_a_bootstrap_interval_needs_three_values_even_when_they_are_equal():
    """One face used to get a zero-width interval, so the ship gate failed on a group of one."""
    from inference.audit.stats import mean_or_median_ci

    assert mean_or_median_ci([1.0, 2.0]) == {"value": 1.5, "lo": None, "hi": None, "n": 2}
    assert mean_or_median_ci([0.0312]) == {"value": 0.0312, "lo": None, "hi": None, "n": 1}
    assert mean_or_median_ci([2.0, 2.0]) == {"value": 2.0, "lo": None, "hi": None, "n": 2}
    assert mean_or_median_ci([2.0, 2.0, 2.0]) == {"value": 2.0, "lo": 2.0, "hi": 2.0, "n": 3}
    three = mean_or_median_ci([1.0, 2.0, 4.0])
    assert three["lo"] < three["value"] < three["hi"]


def test_a_mean_probability_has_an_interval_inside_0_and_1():
    from inference.metrics import binary_metrics

    p = np.array([0.99, 0.97, 1.0, 0.6, 0.999, 0.98])  # the t interval alone reaches past 1
    m = binary_metrics(np.ones(6), p > 0.5, p)["mean_p_female"]
    assert m["hi"] == 1.0 and 0 < m["lo"] < m["value"] < 1


def test_summary_direction_follows_the_paired_test_not_a_skewed_mean():
    from inference.audit.summary import _effect

    assert _effect(0.01, 0.02, "lighter", "darker", "none", rank=-0.05).startswith("darker for the typical face")
    assert _effect(0.01, -0.5, "lighter", "darker", "none", rank=-0.3) == "darker"
    assert _effect(0.2, -0.5, "lighter", "darker", "none", rank=-0.3) == "none"
    # the typical face unmoved while a tail moved far: said, not left as "none" beside an interval clear of 0
    tail = _effect(0.74, -0.015, "lighter", "darker", "none", rank=-0.01, mean={"lo": -0.022, "hi": -0.010},
                   median={"lo": -0.004, "hi": 0.003})
    assert tail.startswith("none for the typical face") and "the mean is below 0" in tail
    # …only where the median's interval (which includes 0) says so: under 6 faces it has none
    no_median = _effect(0.74, -0.015, "lighter", "darker", "none", rank=-0.01, mean={"lo": -0.022, "hi": -0.010})
    assert no_median == "none by the Wilcoxon test, though the mean's 95% CI lies below 0"
    assert _effect(0.74, -0.015, "lighter", "darker", "none", rank=-0.01, mean={"lo": -0.03, "hi": 0.002}) == "none"
    assert _effect(0.74, 0.01, "l", "d", "none", mean={"lo": None, "hi": None}) == "none"
    # the test short of 0.05 while the median's interval is clear of 0 (the unlabelled folder's p = 0.054, median
    # [0.25, 3.49]): borderline, not "the typical face did not move" beside a median shown to move
    both = _effect(0.054, 2.63, "l", "d", "none", rank=0.2, mean={"lo": 0.56, "hi": 4.94}, median={"lo": 0.25, "hi": 3.49})
    assert both == "none by the Wilcoxon test, though the mean's and the median's 95% CIs lie above 0 (borderline)"
    median = _effect(0.08, 0.54, "l", "d", "none", rank=0.1, mean={"lo": -0.13, "hi": 1.23}, median={"lo": 0.03, "hi": 1.23})
    assert median == "none by the Wilcoxon test, though the median's 95% CI lies above 0 (borderline)"
    # the median's interval above 0 and the mean's below it (the README's audit of the default filter, ΔP(female)
    # median +0.0008 [0.0002, 0.0015], mean -0.0076 [-0.0121, -0.0039]) had read only "the median's … above 0"
    apart = _effect(0.07, -0.0076, "l", "d", "none", rank=0.02, mean={"lo": -0.0121, "hi": -0.0039},
                    median={"lo": 0.0002, "hi": 0.0015})
    assert apart == ("none by the Wilcoxon test; the median's 95% CI lies above 0 and the mean's below it: the "
                     "typical face moved slightly one way, a minority of faces far the other")
    assert _effect(0.74, -0.015, "l", "d", "none", mean={"lo": -0.022, "hi": -0.010},
                   median={"lo": -0.02, "hi": 0.01}).startswith("none for the typical face")


def test_the_label_check_counts_only_faces_every_classifier_gave_a_p_female():
    """A face one classifier gave no finite P(female) cannot be checked, but it had counted as "not contradicted":
    "0 of 40 labelled faces (0.0% [0.0%, 8.8%])" beside "A vs B: no face was classified by both"."""
    from inference.audit.label_check import contradicted_labels
    from inference.audit.summary import labels_checked_words

    def row(i, p_a, p_b):
        return {"file": f"{i}.jpg", "face": 0, "gender": "male", "race": "White", "age": 30,
                "clf": {"A": {"p": p_a, "pred": None if p_a is None else "female" if p_a > 0.5 else "male"},
                        "B": {"p": p_b, "pred": None if p_b is None else "female" if p_b > 0.5 else "male"}}}

    rows = [row(i, 0.95 if i < 2 else 0.1, None if i >= 4 else 0.97) for i in range(10)]
    lab = contradicted_labels(rows, {"gender_race": ["male/White"] * 10}, ["A", "B"])
    assert (lab["n_labelled"], lab["n_checked"], lab["share"]["n"], len(lab["faces"])) == (10, 4, 4, 2)
    assert lab["share"]["value"] == pytest.approx(0.5) and lab["by"]["gender_race"]["male/White"] == {"n": 4, "contradicted": 2}
    assert labels_checked_words(lab).startswith("4 labelled faces every classifier gave a finite P(female) (of 10")
    none = contradicted_labels([row(i, 0.95, None) for i in range(10)], {"gender_race": ["male/White"] * 10}, ["A", "B"])
    assert none["n_checked"] == 0 and none["share"]["n"] == 0 and none["faces"] == []


def test_labels_every_classifier_contradicts_are_listed_with_accuracy_without_them(world, tmp_path):
    rc, r, _run = audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]),
                        "--out", str(tmp_path / "one"))
    assert rc == 0
    lab = r["labels"]
    assert lab["n_labelled"] == 80 and lab["share"]["value"] == pytest.approx(PLANTED_WRONG / 80)
    by = lab["by"]["gender_race"]
    assert by[PLANTED_GROUP] == {"n": PER_GROUP, "contradicted": PLANTED_WRONG}
    assert all(c["contradicted"] == 0 for g, c in by.items() if g != PLANTED_GROUP)
    assert sum(c["contradicted"] for c in lab["by"]["age_band"].values()) == PLANTED_WRONG
    # the planted faces are the only errors: without them every group is right
    without = lab["accuracy_without"]["planted"]
    assert without["by"]["gender_race"][PLANTED_GROUP] == {**without["by"]["gender_race"][PLANTED_GROUP], "value": 1.0,
                                                            "n": PER_GROUP - PLANTED_WRONG}
    assert without["overall"]["value"] == 1.0
    # ...and they stay in the headline numbers
    assert r["classifiers"]["planted"]["metrics"]["overall"]["accuracy"]["value"] == pytest.approx(1 - PLANTED_WRONG / 80)
    assert len(lab["faces"]) == PLANTED_WRONG and all(f["gender"] == "female" and f["race"] == "Asian" for f in lab["faces"])
    assert any(line.startswith(f"{PLANTED_WRONG} of 80 labelled faces") and "female/Asian 60.0% → 100.0%" in line
               for line in r["summary"])
    html = (tmp_path / "one" / "report.html").read_text()
    assert "Labels every classifier contradicts" in html and "contradicted labels" in html


def test_paired_accuracy_is_an_exact_mcnemar_per_group_with_holm():
    from inference.audit.classifier_audit import paired_accuracy
    from inference.audit.summary import comparison_line
    # group X: a right on all 20, b wrong on 12 of them; group Y: both right on the same 15 of 20
    a = [True] * 20 + [True] * 15 + [False] * 5
    b = [True] * 8 + [False] * 12 + [True] * 15 + [False] * 5
    groups = {"g": ["X"] * 20 + ["Y"] * 20}
    [c] = paired_accuracy({"a": a, "b": b}, groups)
    x, y = c["by"]["g"]["X"], c["by"]["g"]["Y"]
    assert (x["only_a"], x["only_b"], x["n"]) == (12, 0, 20) and x["p"] == pytest.approx(2 * 0.5 ** 12)
    assert x["difference"] == pytest.approx(12 / 20) and x["small"]
    assert (y["only_a"], y["only_b"], y["p"], y["difference"]) == (0, 0, 1.0, 0.0)
    # Y has no discordant face, so no data could reject it (least p 1): since schema 18 it is left out of Holm's
    # family, and X, alone in it, keeps its p, where the two groups had doubled it
    assert y["holm_family"] is False and y["p_holm"] is None and y["least_p"] == 1.0
    assert x["holm_family"] is True and x["holm_family_size"] == 1 and x["p_holm"] == pytest.approx(x["p"])
    assert c["overall"]["only_a"] == 12 and c["overall"]["p"] == pytest.approx(2 * 0.5 ** 12)
    line = comparison_line(c, "g")
    assert "a is more accurate" in line and "X +60.0 points" in line and "Y" not in line.split("after Holm")[1]
    # swapping the two mirrors every count and sign
    [rev] = paired_accuracy({"b": b, "a": a}, groups)
    assert rev["by"]["g"]["X"]["only_b"] == 12 and rev["by"]["g"]["X"]["difference"] == pytest.approx(-0.6)
    assert "a is more accurate" in comparison_line(rev, "g")
    # the same errors: nothing to tell them apart
    [same] = paired_accuracy({"a": a, "b": list(a)}, groups)
    assert same["overall"]["p"] == 1.0 and "no detectable difference" in comparison_line(same, "g")


def test_report_compares_each_pair_of_classifiers_on_the_same_faces(world):
    import csv
    r = world["report"]
    [c] = r["comparisons"]
    assert (c["a"], c["b"]) == ("planted", "tiny-a")
    with open(world["out"] / "faces.csv", encoding="utf-8") as fh:
        faces = [row for row in csv.DictReader(fh) if row["face"] == "0" and row["gender"]]
    right = {n: np.array([row[f"{n}:predicted"] == row["gender"] for row in faces]) for n in ("planted", "tiny-a")}
    assert c["overall"]["n"] == len(faces) == 80
    assert c["overall"]["only_a"] == int((right["planted"] & ~right["tiny-a"]).sum())
    assert c["overall"]["only_b"] == int((~right["planted"] & right["tiny-a"]).sum())
    for g, v in c["by"]["gender_race"].items():
        m = r["classifiers"]["planted"]["metrics"]["by"]["gender_race"][g]
        assert v["accuracy_a"] == pytest.approx(m["accuracy"]["value"]) and v["n"] == m["n"]
    assert any(line.startswith("planted vs tiny-a on the same 80 faces") for line in r["summary"])
    html = (world["out"] / "report.html").read_text(encoding="utf-8")
    assert "Paired: planted vs tiny-a" in html


def test_an_image_stored_twice_is_audited_once_and_one_under_two_labels_not_at_all(world, tmp_path):
    folder = tmp_path / "copies"
    folder.mkdir()
    faces = utk_images(3)
    shutil.copyfile(faces[0], folder / "a.jpg")
    shutil.copyfile(faces[0], folder / "a_again.jpg")
    shutil.copyfile(faces[1], folder / "b.jpg")
    shutil.copyfile(faces[1], folder / "b_as_a_man.jpg")
    shutil.copyfile(faces[2], folder / "c.jpg")
    (folder / "labels.csv").write_text("file,gender,race\na.jpg,female,Black\na_again.jpg,female,Black\n"
                                       "b.jpg,female,Asian\nb_as_a_man.jpg,male,Asian\nc.jpg,male,White\n")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--out", str(tmp_path / "out"), "--no-html")
    assert rc == 0 and r["images"]["n_images"] == 2
    assert r["images"]["copies_counted_once"] == [{"file": "a_again.jpg", "same_bytes_as": "a.jpg"}]
    assert sorted(s["file"] for s in r["images"]["reader_skipped"]) == ["b.jpg", "b_as_a_man.jpg"]
    assert r["images"]["label_conflicts"] == [["b.jpg", "b_as_a_man.jpg"]]
    assert ("The dataset stores some photographs more than once: 1 byte-identical copy was left out, so each image "
            "counts once; 2 file(s) of 1 photograph(s) stored under other labels were left out. Each photograph is in the earliest "
            "split any copy of it was in; all are listed in the report.") in r["summary"]


def test_copies_a_groups_csv_puts_in_two_groups_are_left_out_on_a_labelled_dataset(world, tmp_path):
    """The groups CSV is joined before copies are merged: on UTKFace as in a folder, one image under two groups
    cannot count for either."""
    root = tmp_path / "utk"
    root.mkdir()
    faces = utk_images(2)
    shutil.copyfile(faces[0], root / faces[0].name)
    age, gender, race, _ = faces[0].name.split("_")
    again = f"{age}_{gender}_{race}_20000101000000000.jpg.chip.jpg"  # same bytes and labels, another time stamp
    shutil.copyfile(faces[0], root / again)
    shutil.copyfile(faces[1], root / faces[1].name)
    groups = tmp_path / "groups.csv"
    groups.write_text(f"file,group\n{faces[0].name},day\n{again},night\n{faces[1].name},day\n")
    rc, r, _ = audit("--dataset", f"utkface:{root}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--groups", str(groups), "--out", str(tmp_path / "out"), "--no-html")
    assert rc == 0 and r["images"]["n_images"] == 1 and r["images"]["copies_counted_once"] == []
    why = {s["file"]: s["why"] for s in r["images"]["reader_skipped"]}
    assert set(why) == {faces[0].name, again}
    assert all("other labels" in w and "night" in w for w in why.values())
    assert r["images"]["label_conflicts"] == [sorted([faces[0].name, again])]


def test_the_ship_gate_fails_a_filter_shown_beyond_tolerance_and_passes_one_shown_within(world, tmp_path, capsys):
    rc, r, _ = audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]), "--filter",
                     str(world["darken"]), "--out", str(tmp_path / "dark"), "--no-html", "--max-delta-ita", "1")
    overall = r["filter"]["overall"]["delta_ita"]["mean"]
    assert overall["hi"] < -1  # the darkening filter is shown to move skin by more than 1°
    gate = r["gate"]
    assert rc == 1 and not gate["passed"]
    row = next(f for f in gate["failing"] if f["grouping"] == "overall")
    assert (row["verdict"], row["lo"], row["hi"], row["n"]) == ("beyond", overall["lo"], overall["hi"], overall["n"])
    assert "Ship gate" in capsys.readouterr().out and any("FAILED" in s for s in r["summary"])
    # a group of 10 faces, ΔP(female) 0 on each, is shown within ±0.34 (a bounded mean's betting interval)
    rc, r, _ = audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]), "--filter",
                     str(world["identity"]), "--out", str(tmp_path / "id"), "--no-html", "--max-delta-ita", "2",
                     "--max-delta-p", "0.5", "--strict", "--max-unmeasurable-share", "0.35")  # 0 of 10: ≤ 30.8 %
    assert rc == 0 and r["gate"]["passed"] and r["gate"]["counts"]["beyond"] == 0, r["gate"]["failing"]
    assert {x["measure"] for x in r["gate"]["rows"]} == {"delta_ita", "delta_p_female:planted", "made_unmeasurable"}


def test_the_gate_tells_shown_within_from_unsettled_and_strict_fails_the_unsettled():
    from inference.audit.gate import filter_gate, verdict

    assert [verdict(lo, hi, 2) for lo, hi in [(-1, 1.5), (2.5, 4), (-6, -3), (1, 3), (None, None)]] == [
        "within", "beyond", "beyond", "unsettled", "too few"]
    cell = lambda lo, hi, n: {"delta_ita": {"mean": {"value": (lo + hi) / 2 if lo is not None else 1.0, "lo": lo,
                                                      "hi": hi, "n": n}}, "classifiers": {}}  # noqa: E731
    report = {"overall": cell(-0.5, 0.5, 90), "by": {"gender_race": {"female/Black": cell(0.5, 3.0, 12),
                                                                     "male/Others": cell(None, None, 2)}}}
    lenient, strict = filter_gate(report, 2, None), filter_gate(report, 2, None, strict=True)
    assert lenient["passed"] and lenient["counts"] == {"within": 1, "beyond": 0, "unsettled": 1, "too few": 1}
    assert not strict["passed"] and {f["group"] for f in strict["failing"]} == {"female/Black", "male/Others"}


def test_the_gate_needs_a_filter_and_a_tolerance(world, tmp_path):
    base = ["--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]), "--no-html"]
    with pytest.raises(BiasMirrorError, match="give --filter"):
        audit(*base, "--no-filter", "--max-delta-p", "0.02", "--out", str(tmp_path / "a"))
    with pytest.raises(BiasMirrorError, match="--strict is a setting of the ship gate"):
        audit(*base, "--filter", str(world["darken"]), "--strict", "--out", str(tmp_path / "b"))


def test_the_report_says_which_map_each_classifier_has_and_warns_where_grids_differ(world):
    import copy

    from inference.audit.summary import summary_lines
    from inference.models import load_model

    r = world["report"]
    for c, path in zip(r["models"]["classifiers"], (world["planted"], world["classifier"])):
        card = load_model(path, "classifier").card
        assert c["cam"] == {"grid": list(card.cam["grid"]), "formula": card.cam["formula"]}
    same, apart = copy.deepcopy(r), copy.deepcopy(r)
    for c in same["models"]["classifiers"]:
        c["cam"]["grid"] = [4, 4]
    apart["models"]["classifiers"][0]["cam"] = {"grid": [3, 3], "formula": "sum_c dy[k]/dpool[c] * F[c] (Grad-CAM, …)"}
    apart["models"]["classifiers"][1]["cam"]["grid"] = [7, 7]
    assert not any("different grids" in line for line in summary_lines(same))
    assert any(line.startswith("planted (CAM, 4×4 map): on average") for line in summary_lines(same))
    lines = summary_lines(apart)
    assert any(line.startswith("planted (Grad-CAM, 3×3 map): on average") for line in lines)
    assert any(line.startswith("The classifiers' maps have different grids (planted: Grad-CAM, 3×3 map; tiny-a: CAM, "
                               "7×7 map)") for line in lines)


def test_the_mean_of_a_handful_of_shifts_gets_a_t_interval_and_the_gate_does_not_judge_it():
    """A bootstrap over three values cannot reach past them: [-0.185, -0.0695] for -0.185, -0.064, -0.080 made the
    ship gate call the group 'beyond' ±0.02; Student's t gives [-0.273, +0.053], which cannot tell."""
    from scipy import stats

    from inference.audit.gate import verdict
    from inference.audit.stats import mean_or_median_ci

    three = [-0.185, -0.064, -0.080]
    got = mean_or_median_ci(three)
    lo, hi = stats.t.interval(0.95, 2, loc=np.mean(three), scale=stats.sem(three))
    assert (got["lo"], got["hi"]) == pytest.approx((lo, hi)) and got["lo"] == pytest.approx(-0.273, abs=1e-3)
    assert verdict(got["lo"], got["hi"], 0.02) == "unsettled"
    # a probability's t interval read 1.012; a bounded mean's (the betting interval) stays within [0, 1] by itself
    near_one = mean_or_median_ci([0.99, 0.95, 0.999, 0.97], "mean", (0.0, 1.0))
    assert near_one["hi"] == 1.0 and 0.0 <= near_one["lo"] < near_one["value"]
    from inference.audit.classifier_audit import p_female_distribution
    assert p_female_distribution([0.99, 0.95, 0.999, 0.97])["mean"]["hi"] == 1.0
    many = np.random.default_rng(0).normal(0.1, 1, 40)  # and t still from 30 values on, where BCa had been
    lo, hi = stats.t.interval(0.95, len(many) - 1, loc=np.mean(many), scale=stats.sem(many))
    assert (mean_or_median_ci(many)["lo"], mean_or_median_ci(many)["hi"]) == pytest.approx((lo, hi))
    assert mean_or_median_ci(many, "median")["lo"] is not None


def test_one_probability_has_no_interval():
    from inference.metrics import mean_ci

    one = mean_ci(np.array([0.957]))
    assert one["value"] == 0.957 and np.isnan(one["lo"]) and np.isnan(one["hi"])


def test_the_summary_names_tied_groups_and_an_unmoved_share_as_such():
    from inference.audit.summary import _toward, named_with_ties

    by = {g: {"fnr": {"value": v, "n": 5}} for g, v in (("a", 0.0), ("b", 0.0), ("c", 0.2))}
    assert named_with_ties(by, "fnr", "c") == "c" and named_with_ties(by, "fnr", "a") == "a and b (tied)"
    assert named_with_ties({g: {"fnr": {"value": 0.0, "n": 5}} for g in "xyz"}, "fnr", "x") == "every group alike"
    six = {g: {"fnr": {"value": 0.0 if g < "f" else 0.5, "n": 5}} for g in "abcdefg"}
    assert named_with_ties(six, "fnr", "a") == "a, b, c and 2 more (tied)"
    same = {"input": {"value": 0.545}, "output": {"value": 0.545}, "moved_toward_target": False}
    assert _toward(same) == "unchanged, as far from the target as the input"
    assert _toward({**same, "output": {"value": 0.4}, "moved_toward_target": True}) == \
        "closer to the target than the input"


# --- found by a review of the audit (2026-12-06) --------------------------------------------------------------------

def test_a_groups_row_is_matched_by_its_path_first_and_one_naming_nothing_is_reported(world, tmp_path):
    """An empty group cell was reported 'not in the folder' and its image took another row's group by bare name;
    a bare-name row that matched nothing vanished."""
    folder = _folder(tmp_path, world, n=4)
    a, b, c, d = sorted(folder.iterdir())
    for sub, p in (("x", c), ("y", d)):
        (folder / sub).mkdir()
        p.rename(folder / sub / "p.jpg")
    csv_path = tmp_path / "groups.csv"
    csv_path.write_text(f"file,group\n{a.name},A\n{b.name},\nx/p.jpg,A\ny/p.jpg,\np.jpg,B\n")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--groups", str(csv_path), "--out", str(tmp_path / "o"))
    gc = r["images"]["groups_csv"]
    assert gc["listed_not_found"] == ["p.jpg"]
    assert gc["not_listed"] == sorted([b.name, "y/p.jpg"])
    groups = {row["file"]: row["group"] for row in csv.DictReader(open(tmp_path / "o" / "faces.csv"))}
    # as report.json names the group of faces the CSV does not group (schema 16; an empty cell until 15)
    assert groups == {a.name: "A", b.name: "(no group)", "x/p.jpg": "A", "y/p.jpg": "(no group)"}


def test_not_listed_counts_only_the_images_audited_and_a_missing_csv_is_refused_on_an_empty_folder(world, tmp_path):
    folder = _folder(tmp_path, world)
    listed = sorted(p.name for p in folder.iterdir())
    csv_path = tmp_path / "groups.csv"
    csv_path.write_text("file,group\n" + "".join(f"{f},g\n" for f in listed))
    (folder / "extra").mkdir()
    # none a copy of a listed image, whose group a copy takes
    for i, p in enumerate([p for k, p in enumerate(sorted(world["data"].iterdir())) if k % 6][:20]):
        shutil.copy(p, folder / "extra" / f"more_{i}.jpg")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--groups", str(csv_path), "--limit", "6", "--out", str(tmp_path / "o"))
    audited = {row["file"] for row in csv.DictReader(open(tmp_path / "o" / "faces.csv"))}
    assert set(r["images"]["groups_csv"]["not_listed"]) == {f for f in audited if f.startswith("extra/")}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BiasMirrorError, match="the groups CSV does not exist"):
        audit("--dataset", f"folder:{empty}", "--classifier", str(world["classifier"]), "--groups",
              str(tmp_path / "nowhere.csv"), "--out", str(tmp_path / "e"))


@pytest.mark.parametrize("own", ["labels.csv", "Labels.csv"])
def test_a_groups_csv_with_labels_beside_the_folders_labels_csv_is_refused(world, tmp_path, own):
    """The folder's labels were dropped for the groups CSV's, and a labelled audit became an unlabelled one (a
    Labels.csv, which the folder reader reads as its labels too, had been passed over by this check)."""
    folder = _folder(tmp_path, world, n=4)
    names = sorted(p.name for p in folder.iterdir())
    (folder / own).write_text("file,gender\n" + "".join(f"{n},female\n" for n in names))
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group,age\n" + "".join(f"{n},A,30\n" for n in names))
    with pytest.raises(BiasMirrorError, match=r"the groups CSV has label column\(s\) age and the folder has its own "
                                              + own):
        audit("--dataset", f"folder:{folder}", "--classifier", str(world["classifier"]), "--groups", str(groups),
              "--out", str(tmp_path / "o"))


def test_a_photo_replaced_under_its_name_is_measured_again(world, tmp_path):
    """The cache was keyed on the path alone: the old photo's numbers came back for the new one."""
    folder = _folder(tmp_path, world, n=3)
    base = ["--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]), "--no-filter",
            "--no-html", "--out", str(tmp_path / "o")]
    _, first, _ = audit(*base)
    target = sorted(folder.iterdir())[0]
    img = cv2.imread(str(target))
    cv2.imwrite(str(target), 255 - img)  # another photo, the same name
    _, again, run = audit(*base)
    assert run["images_computed"] == 1
    _, fresh, _ = audit(*base[:-1], str(tmp_path / "fresh"))
    assert again["classifiers"] == fresh["classifiers"] and again["classifiers"] != first["classifiers"]


def test_the_report_files_are_one_audits_and_no_html_removes_an_earlier_one(world, tmp_path, monkeypatch):
    folder = _folder(tmp_path, world, n=4)
    base = ["--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]), "--no-filter",
            "--out", str(tmp_path / "o")]
    audit(*base)
    before = {n: (tmp_path / "o" / n).read_bytes() for n in ("report.json", "report.html", "run.json", "faces.csv")}

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as m:  # interrupted while writing the HTML, after report.json had been replaced
        m.setattr("inference.audit.html.write_html", interrupted)
        with pytest.raises(KeyboardInterrupt):
            audit(*base, "--limit", "2")
    assert {n: (tmp_path / "o" / n).read_bytes() for n in before} == before
    assert not list((tmp_path / "o").glob(".*.new"))
    audit(*base, "--no-html", "--limit", "2")
    assert not (tmp_path / "o" / "report.html").exists()


def test_detector_options_with_aligned_faces_are_refused(world, tmp_path):
    with pytest.raises(BiasMirrorError, match="--yunet choose\\(s\\) how faces are found, and --aligned take the whole"):
        args = argparse.ArgumentParser()
        audit_cli.add_arguments(args)
        ns = args.parse_args(["--dataset", f"utkface:{world['data']}", "--aligned", "--yunet", "x.onnx",
                              "--classifier", str(world["classifier"]), "--out", str(tmp_path / "o")])
        ns._given = {"yunet"}
        audit_cli.run_audit(ns)


def test_the_detection_line_names_tied_groups_as_the_accuracy_lines_do():
    from inference.audit.detection import detection_audit
    from inference.audit.summary import detection_line

    images = [{"error": None, "n_faces": int(i % 10 != 0)} for i in range(10)] + \
             [{"error": None, "n_faces": 1} for _ in range(30)]
    labels = ["A"] * 10 + ["B"] * 10 + ["C"] * 10 + ["D"] * 10
    line = detection_line(detection_audit(images, {"g": labels}, "haar-test"), "g")
    assert "highest for B (n=10), C (n=10) and D (n=10), tied at 100.0%" in line and "lowest for A (" in line
    alike = detection_line(detection_audit([{"error": None, "n_faces": 1}] * 20, {"g": ["A"] * 10 + ["B"] * 10},
                                           "haar-test"), "g")
    assert "By g: every group alike" in alike and "gap" not in alike


# --- found by a review of the audit's summary, figures and CSV --------------------------------------------------------

def test_tied_groups_are_each_given_their_own_n_never_one_groups_interval(world):
    """Tied groups were all given the named group's CI and n: '… and male/Black (tied) (100.0% [95% CI 83.9%,
    100.0%], n=20)' where the three had n 20, 12 and 27; 'every group alike (0.0% [95% CI 0.0%, 79.3%])' over
    groups of one and two images."""
    import copy

    from inference.audit.detection import detection_audit
    from inference.audit.summary import detection_line, summary_lines

    r = copy.deepcopy(world["report"])
    by = r["classifiers"]["planted"]["metrics"]["by"]["gender_race"]
    by["male/White"].update(n=5, accuracy={"value": 0.6, "lo": 0.23, "hi": 0.88, "n": 5})  # tied with female/Asian
    [line] = [s for s in summary_lines(r) if s.startswith("planted by gender_race")]
    lowest = line.split("lowest accuracy for ")[1].split(", highest for")[0]
    assert lowest == "female/Asian (n=10, small group) and male/White (n=5, small group), tied at 60.0%"
    found = lambda k: {"error": None, "n_faces": k}  # noqa: E731
    line = detection_line(detection_audit([found(0)] * 3 + [found(1)] * 10, {"g": ["A", "B", "B"] + ["C"] * 10},
                                          "haar-test"), "g")
    assert "lowest for A (n=1, small group) and B (n=2, small group), tied at 0.0%, highest for C (100.0% [95% CI" in line
    alike = detection_line(detection_audit([found(0)] * 3, {"g": ["A", "B", "B"]}, "haar-test"), "g")
    assert "By g: every group alike (0.0% in each)" in alike and "CI" not in alike.split("By g")[1]


def test_a_groups_csv_on_a_labelled_dataset_compares_the_classifiers_by_those_groups(world, tmp_path):
    """classifiers.*.metrics.by, comparisons[*].by and the HTML had gender_race and age_band only: --groups
    compared the classifiers by none of the user's groups."""
    from inference.audit.html import build_html

    files = sorted(p.name for p in world["data"].iterdir())
    groups = tmp_path / "groups.csv"  # the planted errors are all in "planted"
    groups.write_text("file,group\n" + "".join(f"{f},{'planted' if '_1_2_' in f else 'rest'}\n" for f in files))
    rc, r, _ = audit("--dataset", f"utkface:{world['data']}", "--classifier", str(world["planted"]), "--classifier",
                     str(world["classifier"]), "--no-filter", "--no-html", "--groups", str(groups),
                     "--out", str(tmp_path / "o"))
    by = r["classifiers"]["planted"]["metrics"]["by"]["group"]
    assert by["planted"]["accuracy"]["value"] == pytest.approx(1 - PLANTED_WRONG / PER_GROUP)
    assert by["rest"]["n"] == 70 and by["rest"]["accuracy"]["value"] == 1.0
    assert set(r["comparisons"][0]["by"]["group"]) == {"planted", "rest"}
    assert any(s.startswith("planted by group: lowest accuracy for planted") for s in r["summary"])
    assert "<h3>By group</h3>" in build_html(r)


def _captured_figures(monkeypatch) -> list:
    """Every figure the report draws, kept (closed, so as not to pile up in pyplot) instead of saved."""
    import matplotlib.pyplot as plt

    from inference.audit import figures

    figs = []
    monkeypatch.setattr(figures, "_png", lambda fig: figs.append(fig) or plt.close(fig) or b"png")
    return figs


def test_bars_without_an_interval_are_hatched_without_a_whisker_and_each_bar_gives_its_own_n(world, monkeypatch):
    """Groups of one or two (no CI) were drawn with zero-width whiskers, as if the most precise; the ΔITA chart
    said 'bootstrap CI' over t intervals; and the x-labels gave the group's faces, not the n behind the bar (an
    FPR counts the males only)."""
    from matplotlib.collections import LineCollection

    from inference.audit import figures
    from inference.audit.html import build_html

    figs = _captured_figures(monkeypatch)
    figures.grouped_bars({"s": {"one": {"value": 0.5, "lo": None, "hi": None, "n": 2},
                                "many": {"value": 0.4, "lo": 0.3, "hi": 0.5, "n": 40}}}, "t", "y")
    ax = figs[0].axes[0]
    many, one = ax.patches[:2]  # groups in sorted order
    assert one.get_hatch() and not many.get_hatch()
    whisker_x = {round(x, 6) for c in ax.collections if isinstance(c, LineCollection)
                 for seg in c.get_segments() for x in seg[:, 0]}
    assert whisker_x == {round(many.get_x() + many.get_width() / 2, 6)}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["many\n(n=40)", "one\n(n=2)"]
    figs.clear()
    build_html(world["report"])
    titles = {f.axes[0].get_title(): f.axes[0] for f in figs}
    assert not any("bootstrap" in t for t in titles)
    fpr = titles["FPR (annotated male called female) by gender_race (95% modified Wilson CI)"]
    ticks = {t.get_text().split("\n")[0]: t.get_text() for t in fpr.get_xticklabels()}
    assert ticks["female/Asian"] == "female/Asian\n(n=0)" and ticks["male/Asian"] == "male/Asian\n(n=10)"


def test_an_age_of_0_is_written_as_0_in_faces_csv(world, tmp_path):
    """`r["age"] or ""` wrote age 0 as an empty cell, while report.json counted the face in 0-17."""
    folder = _folder(tmp_path, world, n=2)
    a, b = sorted(p.name for p in folder.iterdir())
    (folder / "labels.csv").write_text(f"file,gender,race,age\n{a},female,White,0\n{b},male,White,30\n")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--out", str(tmp_path / "o"))
    assert r["groups"]["sizes"]["age_band"]["0-17"] == 1
    ages = {row["file"]: row["age"] for row in csv.DictReader(open(tmp_path / "o" / "faces.csv"))}
    assert ages == {a: "0", b: "30"}


def test_the_html_classifier_table_gives_the_n_its_accuracy_counts(tmp_path):
    """It gave the group's face count: a face without a gender label was counted in the n beside an accuracy
    measured without it."""
    data = tmp_path / "f"
    data.mkdir()
    for i, p in enumerate(utk_images(4)):
        shutil.copy(p, data / f"{i}.jpg")
    (data / "labels.csv").write_text("file,gender,race,age\n0.jpg,male,White,30\n1.jpg,female,White,31\n"
                                     "2.jpg,male,White,32\n3.jpg,,White,33\n")
    rc, report, _ = audit("--dataset", f"folder:{data}", "--aligned", "--no-filter", "--classifier",
                          str(REPO / "resources" / "models" / "resnet10_unbalanced.onnx"),
                          "--out", str(tmp_path / "out"))
    assert rc == 0 and report["groups"]["sizes"]["age_band"]["30-44"] == 4
    html = (tmp_path / "out" / "report.html").read_text()
    assert re.findall(r"<tr><td>30-44</td><td>(\d+)</td>", html)[0] == "3"


def test_a_groups_csv_names_files_stored_decomposed_as_it_types_them(world, tmp_path):
    """A file stored as "José.jpg" in NFD (macOS) took no group from a CSV row typing it in NFC."""
    import unicodedata

    folder = _folder(tmp_path, world, n=2)
    a, b = sorted(folder.iterdir())
    a.rename(folder / unicodedata.normalize("NFD", "José.jpg"))
    csv_path = tmp_path / "groups.csv"
    csv_path.write_text(f"file,group\n{unicodedata.normalize('NFC', 'José.jpg')},A\n{b.name},B\n", encoding="utf-8")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--groups", str(csv_path), "--out", str(tmp_path / "o"))
    assert rc == 0 and r["images"]["groups_csv"]["listed_not_found"] == []
    groups = sorted(row["group"] for row in csv.DictReader(open(tmp_path / "o" / "faces.csv")))
    assert groups == ["A", "B"]


def test_an_interrupted_audit_says_its_work_is_cached_and_the_rerun_goes_on_from_it(world, tmp_path, monkeypatch,
                                                                                     capsys):
    """Ctrl-C printed only "interrupted", though what was computed is kept and the same command resumes from it."""
    from inference.pipeline import FramePipeline

    folder = _folder(tmp_path, world, n=4)
    base = ["--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]), "--no-filter",
            "--batch", "1", "--out", str(tmp_path / "o")]
    real = FramePipeline.process_images

    def two_then_ctrl_c(self, paths, batch=32):
        for k, item in enumerate(real(self, paths, batch)):
            if k == 2:
                raise KeyboardInterrupt
            yield item

    with monkeypatch.context() as m:
        m.setattr(FramePipeline, "process_images", two_then_ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            audit(*base)
    assert "interrupted: the 2 image(s) computed so far are cached; the same command goes on from them" in \
        capsys.readouterr().err
    _, _, run = audit(*base)
    assert run["images_computed"] == 2


def test_races_given_without_genders_are_compared(world, tmp_path):
    """A labels CSV of file,race was read (faces.csv showed the races) and then compared in no table nor gate."""
    folder = _folder(tmp_path, world, n=4)
    files = sorted(p.name for p in folder.iterdir())
    (folder / "labels.csv").write_text("file,race\n" + "".join(f"{f},{'Black' if i % 2 else 'White'}\n"
                                                               for i, f in enumerate(files)))
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--filter", str(world["darken"]), "--no-html", "--out", str(tmp_path / "o"))
    assert rc == 0 and not r["audit"]["labelled"]
    assert "race" in r["groups"]["groupings"] and set(r["filter"]["by"]["race"]) == {"Black", "White"}


def test_limit_keeps_every_group_of_a_groups_csv(world, tmp_path):
    """An unlabelled folder was one stratum: --limit 3 of 12 could leave out the one rare group the report compares."""
    folder = _folder(tmp_path, world)
    files = sorted(p.name for p in folder.iterdir())
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n" + "".join(f"{f},{'rare' if i == len(files) - 1 else 'common'}\n"
                                               for i, f in enumerate(files)))
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--groups", str(groups), "--limit", "3", "--out", str(tmp_path / "o"))
    assert rc == 0 and r["groups"]["sizes"]["group"] == {"common": 2, "rare": 1}


def test_the_html_filter_section_gives_the_all_faces_figures(world, tmp_path):
    """The overall ΔITA and ΔP(female) were only sentences of the summary: no row, no histogram."""
    folder = _folder(tmp_path, world, n=6)
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--filter", str(world["darken"]), "--out", str(tmp_path / "o"))
    html = (tmp_path / "o" / "report.html").read_text()
    assert rc == 0 and 'alt="delta ITA histogram, all faces"' in html
    n = r["filter"]["overall"]["n_faces"]
    assert html.count(f"<tr><td>(all faces)</td><td>{n}</td>") == len(r["filter"]["by"])
    assert html.count("<tr><td>(all faces)</td>") == len(r["filter"]["by"]) * (1 + len(r["classifiers"]))


def test_faces_of_no_measured_tone_are_gated_on_p_female_not_on_ita(world, tmp_path):
    """Their ΔITA never has an interval, so --strict failed every unlabelled audit holding one grey photo; their
    ΔP(female) is measured, but the whole group had been left out of the gate, and a filter that moved P(female) on
    grey photos alone passed --strict, which promises every group shown within."""
    folder = _folder(tmp_path, world, n=6)
    for i, path in enumerate(sorted(folder.iterdir())[:3]):
        grey = cv2.cvtColor(cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
        cv2.imwrite(str(folder / f"grey{i}.png"), grey)

    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--filter", str(world["darken"]), "--no-html", "--out", str(tmp_path / "o"),
                     "--max-delta-ita", "90", "--max-delta-p", "0.99")
    assert "not measurable" in r["filter"]["by"]["skin_tone"]  # still a row of the tables
    rows = [row for row in r["gate"]["rows"] if row["group"] == "not measurable"]
    # judged on its interval (three faces' mean ΔP(female) is shown no nearer than about ±1, so not "within" ±0.99)
    assert [(row["measure"], row["n"], row["verdict"]) for row in rows] == [("delta_p_female:tiny-a", 3, "unsettled")]
    assert rows[0]["lo"] is not None and rows[0]["hi"] is not None


def test_a_classifier_trained_to_nan_gets_a_report_saying_not_measured_not_a_traceback(tmp_path):
    """A model whose training diverged gives NaN P(female) and a NaN CAM: its NaN focus was counted in n and ranked
    among the lowest and highest faces, and report.html crashed on 100 * None (report.json's null for it)."""
    model = make_diverged_classifier(tmp_path / "diverged.onnx")
    data = write_utk(tmp_path / "utk")
    out = tmp_path / "o"
    rc, r, _ = audit("--dataset", f"utkface:{data}", "--limit", "16", "--classifier", str(model), "--no-filter",
                     "--out", str(out))
    assert rc == 0 and r["images"]["n_faces"] == 16
    focus = r["focus"]["diverged"]
    assert focus["overall"]["n"] == 0 and focus["lowest"] == [] and focus["highest"] == []
    html = (out / "report.html").read_text()
    assert "CAM focus not measured:</b> of 16 face(s), 0 had a CAM with no positive mass and 16 a CAM that is " \
           "not finite" in html
    assert "Not measured for diverged:</b> none of the 16 face(s) got a finite P(female)" in html
    assert "None" not in re.sub(r'src="data:[^"]*"', "", html)


def test_a_classifier_trained_to_nan_counts_no_face_as_predicted_male_through_a_filter(tmp_path, tiny_models):
    """NaN probabilities' argmax named the first label: every face counted as predicted "male" before and after the
    filter, so the summary said 0 % predicted female both ways and a 0 % flip rate, measured on nothing."""
    import csv as csv_module

    from inference.results import Prediction

    assert Prediction("m", ("male", "female"), np.array([np.nan, np.nan])).predicted == ""

    model = make_diverged_classifier(tmp_path / "diverged.onnx")
    data = write_utk(tmp_path / "utk")
    out = tmp_path / "o"
    rc, r, _ = audit("--dataset", f"utkface:{data}", "--limit", "16", "--classifier", str(model), "--filter",
                     str(tiny_models["darken"]), "--out", str(out), "--no-html")
    assert rc == 0
    shares = r["filter"]["composition"]["predicted_female"]["diverged"]
    assert shares["input"]["n"] == 0 and shares["output"]["n"] == 0
    assert r["filter"]["overall"]["classifiers"]["diverged"]["flip_rate"]["n"] == 0
    with open(out / "faces.csv", newline="") as f:
        rows = list(csv_module.DictReader(f))
    assert rows and not any("male" in v for row in rows for k, v in row.items() if "diverged" in k), rows[0]


def _fairface_from(world, root: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    """A FairFace layout of ``rows`` (file, age, gender, race), each a different face of the world's dataset."""
    for (name, *_), p in zip(rows, sorted(world["data"].iterdir())[::7]):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, root / name)
    for part, prefix in (("train", "train/"), ("val", "val/")):
        with open(root / f"fairface_label_{part}.csv", "w", newline="") as fh:
            csv.writer(fh).writerows([["file", "age", "gender", "race"],
                                      *[r for r in rows if r[0].startswith(prefix)]])
    return root


FAIRFACE_ROWS = [("train/1.jpg", "40-49", "Male", "White"), ("train/2.jpg", "40-49", "Female", "Black"),
                 ("val/1.jpg", "20-29", "Female", "White"), ("val/3.jpg", "3-9", "Male", "Black")]


def test_a_groups_csv_bare_name_of_two_images_is_refused_before_anything_is_measured(world, tmp_path):
    """"1.jpg" put FairFace's train/1.jpg and val/1.jpg both in its group without a word."""
    data = _fairface_from(world, tmp_path / "ff", FAIRFACE_ROWS)
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\n1.jpg,A\n2.jpg,B\n")
    base = ["--dataset", f"fairface:{data}", "--classifier", str(world["classifier"]), "--no-filter", "--no-html",
            "--groups", str(groups)]
    with pytest.raises(BiasMirrorError) as err:
        audit(*base, "--out", str(tmp_path / "o"))
    text = str(err.value)
    assert text.startswith(f"{groups}: ") and "'1.jpg'" in text and "train/1.jpg, val/1.jpg" in text
    assert "path relative to the dataset folder" in text
    assert not (tmp_path / "o" / "report.json").exists()
    groups.write_text("file,group\ntrain/1.jpg,A\nval/1.jpg,B\n2.jpg,B\n")  # paths, and a bare name of one image
    rc, r, _ = audit(*base, "--out", str(tmp_path / "o"))
    assert rc == 0 and r["images"]["groups_csv"]["listed_not_found"] == []
    found = {row["file"]: row["group"] for row in csv.DictReader(open(tmp_path / "o" / "faces.csv"))}
    assert found == {"train/1.jpg": "A", "val/1.jpg": "B", "train/2.jpg": "B", "val/3.jpg": "(no group)"}


def test_a_fairface_audit_groups_ages_by_fairface_bins(world, tmp_path):
    """Its 40–49-year-olds had been counted in the project's "30-44" band, in a table labelled so."""
    data = _fairface_from(world, tmp_path / "ff", FAIRFACE_ROWS)
    rc, r, _ = audit("--dataset", f"fairface:{data}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--no-html", "--out", str(tmp_path / "o"))
    assert rc == 0 and r["groups"]["sizes"]["age_band"] == {"40-49": 2, "20-29": 1, "3-9": 1}
    rc, r, _ = audit("--dataset", f"fairface:{data}", "--classifier", str(world["classifier"]), "--no-filter",
                     "--no-html", "--min-age", "30", "--out", str(tmp_path / "adults"))
    assert r["groups"]["sizes"]["age_band"] == {"40-49": 2}


def test_the_race_caveat_names_the_dataset_read(world, tmp_path):
    """Every report said "Race labels (UTKFace) …", a CelebA audit's (whose race is a pale / not_pale skin proxy)
    and a FairFace audit's too."""
    data = _fairface_from(world, tmp_path / "ff", FAIRFACE_ROWS)
    base = ["--classifier", str(world["classifier"]), "--no-filter", "--no-html"]
    _, fairface, _ = audit("--dataset", f"fairface:{data}", *base, "--out", str(tmp_path / "o1"))
    celeba = tmp_path / "celeba"
    (celeba / "img_align_celeba").mkdir(parents=True)
    for i, p in enumerate(sorted(world["data"].iterdir())[:2], 1):
        shutil.copy(p, celeba / "img_align_celeba" / f"{i:06d}.jpg")
    (celeba / "list_attr_celeba.txt").write_text("2\nMale Pale_Skin\n000001.jpg 1 -1\n000002.jpg -1 1\n")
    (celeba / "list_eval_partition.txt").write_text("000001.jpg 2\n000002.jpg 2\n")
    _, cel, _ = audit("--dataset", f"celeba:{celeba}", *base, "--out", str(tmp_path / "o2"))
    assert "Race labels (FairFace) are annotations made by others from a photo, not self-identification." \
        in fairface["caveats"]
    assert any("Pale_Skin" in c and "not race" in c for c in cel["caveats"])
    assert not any("UTKFace" in c for c in fairface["caveats"] + cel["caveats"])
    assert "Race labels (UTKFace) are annotations made by others from a photo, not self-identification." \
        in world["report"]["caveats"]


def test_a_full_disk_while_caching_or_writing_the_report_names_the_file_in_one_line(world, tmp_path, monkeypatch,
                                                                                   capsys):
    """A write refused mid-file names no file: a full disk gave four chained tracebacks of "[Errno 28] No space
    left on device" from the cache's close, and one from report.html, saying neither which file nor what was kept."""
    import errno

    import main
    from inference.audit import html
    from inference.audit.cache import Component

    class FullDisk:
        def write(self, _):
            raise OSError(errno.ENOSPC, "No space left on device")

        flush = close = lambda self: None

    comp = Component(tmp_path, "base-x")
    comp.put("a", 1)
    comp._fh = FullDisk()
    with pytest.raises(BiasMirrorError, match=r"could not write the audit's cache of measured faces \(No space left on "
                                              r"device\): the disk holding .* MB free.*; what was cached before is kept") as err:
        comp.put("b", 2)
    assert err.value.path == str(tmp_path / "base-x.jsonl")

    def full(path, *a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(html, "write_html", full)
    out = tmp_path / "aud"
    code = main.main(["audit", "--dataset", f"utkface:{world['data']}", "--classifier", str(world["classifier"]),
                      "--no-filter", "--out", str(out), "--no-progress", "--threads", "1"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    assert f"error: {out / 'report.html'}: could not write the HTML report (No space left on device)" in err
    assert "the report's files are put in place only once all are written" in err
    assert not (out / "report.json").exists()  # nothing of a half-written report put in place


def test_the_html_gaps_table_names_every_group_tied_for_best_or_worst(world):
    """Of five groups at 100 % the first by name was the "best group" of report.html's table, as the summary on the
    same page had been corrected not to say."""
    import copy

    from inference.audit.html import build_html

    r = copy.deepcopy(world["report"])
    by = r["classifiers"]["planted"]["metrics"]["by"]["gender_race"]
    groups = sorted(g for g, m in by.items() if m["accuracy"]["n"] > 0)
    assert len(groups) >= 3, groups
    for i, g in enumerate(groups):
        by[g]["accuracy"]["value"] = 1.0 if i < 2 else 0.5
    r["classifiers"]["planted"]["metrics"]["gaps"]["gender_race"]["accuracy"].update(best=groups[0], worst=groups[2])
    row = next(line for line in build_html(r).split("<tr>") if line.startswith("<td>planted</td>") and "pts" in line
               and groups[0] in line)
    assert f"{groups[0]} and {groups[1]} (tied)" in row, row


def test_images_through_links_to_folders_outside_are_named_by_their_path_in_the_dataset(world, tmp_path):
    """Two sessions linked in as s1/ and s2/, each with its 001.jpg: both were "001.jpg" in faces.csv (one thumbnail
    for both in report.html), and a groups CSV naming s1/001.jpg matched nothing."""
    sources = sorted(world["data"].iterdir())
    linked = tmp_path / "linked"
    linked.mkdir()
    for k, session in enumerate(("s1", "s2")):
        real = tmp_path / f"session{k}"
        real.mkdir()
        shutil.copy(sources[k * 7], real / "001.jpg")
        (linked / session).symlink_to(real, target_is_directory=True)
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\ns1/001.jpg,A\ns2/001.jpg,B\n")
    rc, r, _ = audit("--dataset", f"folder:{linked}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--groups", str(groups), "--out", str(tmp_path / "o"))
    assert rc == 0 and r["groups"]["sizes"]["group"] == {"A": 1, "B": 1}
    rows = list(csv_module.DictReader(open(tmp_path / "o" / "faces.csv")))
    assert sorted(row["file"] for row in rows) == ["s1/001.jpg", "s2/001.jpg"]


def test_a_folder_labels_row_naming_no_image_is_not_reported_as_the_groups_csvs(world, tmp_path):
    """A bare name in the folder's own labels.csv ("1.jpg" for male/1.jpg) was listed in report.json as a groups CSV
    row that names no image, though the groups CSV never named it."""
    folder = tmp_path / "ds"
    sources = sorted(world["data"].iterdir())
    for i, rel in enumerate(("male/1.jpg", "male/2.jpg", "female/3.jpg")):
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(sources[i * 5], folder / rel)
    (folder / "labels.csv").write_text("file,gender\n1.jpg,male\nmale/2.jpg,male\nfemale/3.jpg,female\n")
    groups = tmp_path / "groups.csv"
    groups.write_text("file,group\nmale/1.jpg,A\nmale/2.jpg,A\nfemale/3.jpg,B\nghost.jpg,B\n")
    rc, r, _ = audit("--dataset", f"folder:{folder}", "--aligned", "--classifier", str(world["classifier"]),
                     "--no-filter", "--no-html", "--groups", str(groups), "--out", str(tmp_path / "o"))
    assert rc == 0 and r["images"]["groups_csv"]["listed_not_found"] == ["ghost.jpg"]
