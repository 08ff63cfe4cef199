"""A classifier whose model card lists its labels in the reverse of its outputs is named, not blamed on the labels.

Such a card (female, male over outputs in the order male, female) made the audit report 0 % accuracy, FPR and FNR
100 %, and then "34 of 36 labelled faces … are called the other gender by every classifier with P ≥ 0.9: check
those labels", blaming the dataset, with exit status 0. A two-label gender classifier whose accuracy's 95 % CI lies
wholly below 0.5 is now flagged (``classifiers…labels_look_reversed``), said in the summary, left out of the label
check, and fails ``--strict``. The reversed copies are built here in tmp_path from resources/models with ``onnx``;
the figures compared are the report's own.
"""
from __future__ import annotations

import html as html_module
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import run_main, utk_images  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
REAL = REPO / "resources" / "models" / "resnet10_balanced.onnx"
FILTER = REPO / "resources" / "models" / "engineer_filter.onnx"
REVERSED_WORDS = "label order is probably the reverse of its outputs"
HINT = "check those labels"


def reversed_copy(dst: Path) -> Path:
    """resources/models' classifier with its card's labels listed the other way round, nothing else changed."""
    import onnx

    model = onnx.load(str(REAL))
    for prop in model.metadata_props:
        if prop.key == "model_card":
            card = json.loads(prop.value)
            card["labels"] = list(reversed(card["labels"]))
            prop.value = json.dumps(card)
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    """30 UTKFace adults, symlinked (the first 30 by name, as the other audit tests pick them)."""
    d = tmp_path_factory.mktemp("utk")
    for p in utk_images(30):
        (d / p.name).symlink_to(p)
    return d


@pytest.fixture(scope="module")
def swapped(tmp_path_factory) -> Path:
    return reversed_copy(tmp_path_factory.mktemp("models") / "swapped.onnx")


def audit(capsys, utk: Path, out: Path, *argv: str, html: bool = False) -> tuple[int, str, str, dict]:
    code, stdout, stderr = run_main(["audit", "--dataset", f"utkface:{utk}", "--out", str(out), "--no-progress",
                                     *([] if html else ["--no-html"]), "--threads", "1", *argv], capsys)
    return code, stdout, stderr, json.loads((out / "report.json").read_text(encoding="utf-8"))


# --- end to end ------------------------------------------------------------------------------------------------------

def test_a_reversed_card_alone_is_named_and_no_label_is_blamed_on_it(capsys, tmp_path, utk, swapped):
    code, out, err, r = audit(capsys, utk, tmp_path / "a", "--classifier", str(swapped), "--no-filter")
    assert code == 0, err
    # its confident wrong calls had made nearly every face "check those labels"
    assert HINT not in out and not any(HINT in line for line in r["summary"]), out
    assert r["labels"] is None
    (name, c), = r["classifiers"].items()
    acc = c["metrics"]["overall"]["accuracy"]
    assert acc["hi"] < 0.5  # the report's own CI: below chance
    said = [line for line in r["summary"] if REVERSED_WORDS in line]
    assert len(said) == 1 and "swapped.onnx" in said[0] and f"on {acc['n']} labelled faces: below chance" in said[0]
    assert REVERSED_WORDS in out
    assert c.get("labels_look_reversed") is True
    assert any("swapped.onnx" in cav and "reverse" in cav for cav in r["caveats"])


def test_beside_a_real_classifier_only_the_reversed_one_is_flagged_and_left_out_of_the_label_check(
        capsys, tmp_path, utk, swapped):
    code, out, err, r = audit(capsys, utk, tmp_path / "b", "--classifier", str(swapped), "--classifier", str(REAL),
                              "--no-filter", html=True)
    assert code == 0, err
    files = {m["name"]: m["file"] for m in r["models"]["classifiers"]}
    bad = next(n for n in files if files[n] == "swapped.onnx")
    good = next(n for n in files if files[n] == REAL.name)
    said = [line for line in r["summary"] if REVERSED_WORDS in line]
    assert len(said) == 1 and said[0].startswith(f"{bad} (swapped.onnx)"), r["summary"]
    lab = r["labels"]
    hint = next(line for line in r["summary"] if HINT in line)
    assert f"every classifier but {bad}" in hint  # the swapped one judged no face
    assert lab.get("left_out") == [bad]
    # every face the check names is one the real classifier contradicts with P ≥ threshold on its own
    for f in lab["faces"]:
        p = f["p_female"][good]
        assert (1 - p if f["gender"] == "female" else p) >= lab["threshold"]
    flags = {files[n]: c.get("labels_look_reversed") for n, c in r["classifiers"].items()}
    assert flags == {"swapped.onnx": True, REAL.name: False}
    page = html_module.unescape((tmp_path / "b" / "report.html").read_text(encoding="utf-8"))
    assert "Label order probably reversed" in page and f"every classifier but {bad}" in page


def test_strict_fails_the_audit_on_a_reversed_card_naming_its_file(capsys, tmp_path, utk, swapped):
    """--strict is a setting of the ship gate (cli refuses it without one), so the gate is given tolerances no filter
    shift reaches; the real classifier under the same gate says nothing of label order."""
    gate = ["--filter", str(FILTER), "--max-delta-ita", "179", "--max-delta-p", "0.99",
            "--max-unmeasurable-share", "0.99", "--strict"]
    code, out, err, r = audit(capsys, utk, tmp_path / "s", "--classifier", str(swapped), *gate)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert any(str(swapped) in line and REVERSED_WORDS in line and "--strict" in line for line in errors), err
    assert code == 1
    assert r["gate"]["passed"] is False
    assert any("swapped.onnx" in line and "fails --strict" in line for line in r["summary"])
    assert [c["file"] for c in r["gate"]["labels_look_reversed"]] == ["swapped.onnx"]

    code, out, err, r = audit(capsys, utk, tmp_path / "t", "--classifier", str(REAL), *gate)
    assert r["gate"]["labels_look_reversed"] == []
    assert REVERSED_WORDS not in out + err


# --- the report's own functions, on synthetic rows -------------------------------------------------------------------

def _skin() -> dict:
    return {"measurable": True, "L": 65.0, "b": 15.0, "ita": 20.0, "category": "tan", "mst": 5}


def _row(i: int, gender: str, p_female: dict[str, float]) -> dict:
    clf = {n: {"p": p, "pred": "female" if p > 0.5 else "male", "focus": 0.5 + 0.01 * (i % 7)}
           for n, p in p_female.items()}
    return {"file": f"{i}.jpg", "path": f"/x/{i}.jpg", "face": 0, "box": None, "gender": gender,
            "race": ("White", "Black")[i % 2], "age": 30, "age_band": "30-44", "group": None, "skin": _skin(),
            "filtered_skin": None, "d_ita": None, "d_l": None, "d_mst": None, "moved_px": None, "clf": clf}


def _report(rows: list[dict], labels: dict[str, list[str]]) -> dict:
    from inference.audit.report import build_report

    audit = {"dataset": "folder:x", "kind": "folder", "split": None, "min_age": None, "limit": None, "detect": False,
             "detector": "aligned", "max_faces": None, "groups_csv": None, "cam_class": "predicted",
             "filter_condition": None}
    models = {"classifiers": [{"name": n, "file": f"{n}.onnx", "sha256": "0" * 64, "card": {}, "labels": lab,
                               "input_size": [32, 32], "cam": {"grid": [4, 4], "formula": ""}}
                              for n, lab in labels.items()], "crop_size": 112, "filter": None}
    images = [{"file": r["file"], "error": None, "n_faces": 1, "gender": r["gender"], "race": r["race"],
               "age_band": r["age_band"], "group": None} for r in rows]
    return build_report(audit=audit, models=models, images=images, rows=rows, labelled=True, names=list(labels),
                        has_filter=False, filter_training={}, extra_images={})


def _faces(n: int, right: int, confident: float = 0.95) -> list[tuple[str, float]]:
    """(label, P(female)) of ``n`` faces, half each gender, the first ``right`` called right, the rest wrong, all
    with the confidence given."""
    out = []
    for i in range(n):
        gender = ("female", "male")[i % 2]
        truth = confident if gender == "female" else 1 - confident
        out.append((gender, truth if i < right else 1 - truth))
    return out


def test_a_real_classifiers_suspect_labels_survive_beside_a_reversed_one():
    """The reversed copy agrees with every label the real classifier confidently contradicts: under "every
    classifier" those faces had left the check, and the hint with them."""
    faces = _faces(40, right=37)  # the real one confidently wrong on 3
    rows = [_row(i, g, {"real": p, "swapped": 1 - p}) for i, (g, p) in enumerate(faces)]
    r = _report(rows, {"real": ["male", "female"], "swapped": ["female", "male"]})
    lab = r["labels"]
    wrong = {f"{i}.jpg" for i, (g, p) in enumerate(faces) if (p > 0.5) != (g == "female")}
    assert {f["file"] for f in lab["faces"]} == wrong and len(wrong) == 3
    assert any(HINT in line and line.startswith(f"{len(wrong)} of ") for line in r["summary"])
    assert sum(REVERSED_WORDS in line and "swapped.onnx" in line for line in r["summary"]) == 1
    assert lab.get("left_out") == ["swapped"]
    assert r["classifiers"]["real"].get("labels_look_reversed") is False
    assert r["classifiers"]["swapped"].get("labels_look_reversed") is True


def test_a_merely_poor_classifier_is_not_flagged():
    """Accuracy near 0.5, its CI across 0.5: poor, not reversed. The same card far below chance is flagged."""
    poor = _report([_row(i, g, {"poor": p}) for i, (g, p) in enumerate(_faces(40, right=18))],
                   {"poor": ["female", "male"]})
    overall = poor["classifiers"]["poor"]["metrics"]["overall"]
    assert overall["accuracy"]["lo"] < 0.5 < overall["accuracy"]["hi"]
    assert overall["fpr"]["value"] > 0.5 and overall["fnr"]["value"] > 0.5  # wrong on most of each, as reversed
    assert poor["classifiers"]["poor"].get("labels_look_reversed") is False
    assert poor["labels"].get("left_out") == []
    assert not any(REVERSED_WORDS in line for line in poor["summary"] + poor["caveats"])

    below = _report([_row(i, g, {"poor": p}) for i, (g, p) in enumerate(_faces(40, right=5))],
                    {"poor": ["female", "male"]})
    assert below["classifiers"]["poor"]["metrics"]["overall"]["accuracy"]["hi"] < 0.5
    assert below["classifiers"]["poor"].get("labels_look_reversed") is True


def test_a_classifier_that_calls_every_face_female_on_a_dataset_of_men_is_not_flagged():
    """Below chance, but right on the women: biased, not reversed. Its confident calls still count in the label
    check, as they did."""
    faces = [("male", 0.95)] * 36 + [("female", 0.95)] * 4
    r = _report([_row(i, g, {"f": p}) for i, (g, p) in enumerate(faces)], {"f": ["male", "female"]})
    overall = r["classifiers"]["f"]["metrics"]["overall"]
    assert overall["accuracy"]["hi"] < 0.5 and overall["fnr"]["value"] == 0
    assert r["classifiers"]["f"].get("labels_look_reversed") is False
    assert r["labels"]["left_out"] == [] and len(r["labels"]["faces"]) == 36
    assert not any(REVERSED_WORDS in line for line in r["summary"])


def test_only_two_label_gender_classifiers_of_both_genders_are_judged():
    from inference.audit.classifier_audit import labels_look_reversed

    def overall(hi: float, fpr: float, fnr: float, n_female: int = 20) -> dict:
        return {"accuracy": {"value": hi / 2, "lo": 0.0, "hi": hi, "n": 40},
                "fpr": {"value": fpr, "lo": 0.0, "hi": 1.0, "n": 40 - n_female},
                "fnr": {"value": fnr, "lo": 0.0, "hi": 1.0, "n": n_female}}

    assert labels_look_reversed(["female", "male"], overall(0.2, 0.9, 0.9)) is True
    assert labels_look_reversed(["female", "male"], overall(0.6, 0.5, 0.5)) is False
    assert labels_look_reversed(["female", "male"], overall(0.2, 0.9, 0.1)) is False
    assert labels_look_reversed(["cat", "dog"], overall(0.2, 0.9, 0.9)) is None
    assert labels_look_reversed(["male", "female", "other"], overall(0.2, 0.9, 0.9)) is None
    assert labels_look_reversed(["male", "female"], None) is None
    assert labels_look_reversed(["male", "female"], overall(0.2, 0.9, 0.9, n_female=0)) is None  # men only
    no_ci = overall(0.2, 0.9, 0.9)
    no_ci["accuracy"]["hi"] = None
    assert labels_look_reversed(["male", "female"], no_ci) is None


def test_the_gate_fails_on_a_reversed_card_only_when_strict():
    from inference.audit.gate import filter_gate, gate_lines

    cell = {"delta_ita": {"mean": {"value": 0.0, "lo": -0.5, "hi": 0.5, "n": 90}}, "classifiers": {}}
    report = {"overall": cell, "by": {}}
    flagged = [{"name": "m", "file": "m.onnx", "accuracy": {"value": 0.0, "lo": 0.0, "hi": 0.1, "n": 36}}]
    assert filter_gate(report, 2, None, strict=True)["passed"] is True  # every row within
    strict = filter_gate(report, 2, None, strict=True, labels_look_reversed=flagged)
    assert strict["passed"] is False and strict["labels_look_reversed"] == flagged
    assert any("m.onnx" in line and REVERSED_WORDS in line and "fails --strict" in line for line in gate_lines(strict))
    lenient = filter_gate(report, 2, None, labels_look_reversed=flagged)
    assert lenient["passed"] is True
    assert any("m.onnx" in line and "passes without --strict" in line for line in gate_lines(lenient))
