"""The ship gate judges the faces a filter made unmeasurable, and says what a ΔITA is made of.

A filter that crushed the darker faces to black passed `--max-delta-ita 2`: a face of black skin has b* ≈ 0, so its skin
is not measurable after the filter, it has no ΔITA, and the gate judged ΔITA on the faces the filter spared ("did not
detectably change skin tone overall: mean ΔITA 0.00"). Real UTKFace faces, a blackout filter made here.
"""
from __future__ import annotations

import csv
import html as html_module
import json
import shutil
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest import run_main, utk_images  # noqa: E402

BLACK = -0.97  # the blackout's output in the filter's [-1, 1]: near-black, b* ≈ 0


def make_blackout(path: Path, threshold: float, size: int = 32) -> Path:
    """A filter that blacks out every face whose mean brightness (in [-1, 1]) is below ``threshold`` and leaves the
    others exactly as they are."""
    import torch

    from inference.card import filter_card
    from training.export import ImageToImageGraph, export

    class Blackout(torch.nn.Module):
        def forward(self, x):  # x in [-1, 1]
            dark = x.mean(dim=(1, 2, 3), keepdim=True) < threshold
            return torch.where(dark, torch.full_like(x, BLACK), x)

    card = filter_card("blackout", size, "A->B", "darker faces to black (test)", {"dataset": "none"}, {})
    export(ImageToImageGraph(Blackout()), [torch.zeros(1, size, size, 3, dtype=torch.uint8)], ["image"], ["filtered"],
           path, card)
    return path


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> Path:
    """Real adult faces of darker and lighter skin (UTKFace race 1 and 0), in a folder of no labels."""
    folder = tmp_path_factory.mktemp("unlabelled") / "faces"
    folder.mkdir()
    for i, p in enumerate(utk_images(10, race="1") + utk_images(10, race="0")):
        shutil.copy(p, folder / f"{i:04d}.jpg")  # renamed: a UTKFace name is no label in a folder dataset
    return folder


@pytest.fixture(scope="module")
def blackout(faces, tmp_path_factory) -> Path:
    """Blacks out the darker half of ``faces``: below their median brightness."""
    brightness = [cv2.imread(str(p)).mean() / 127.5 - 1 for p in sorted(faces.iterdir())]
    return make_blackout(tmp_path_factory.mktemp("models") / "blackout.onnx", float(np.median(brightness)))


def audit(capsys, faces: Path, out: Path, classifier: Path, filt: Path, *more: str,
          kind: str = "folder") -> tuple[int, dict, str, str]:
    code, stdout, err = run_main(["audit", "--dataset", f"{kind}:{faces}", "--classifier", str(classifier),
                                  "--filter", str(filt), "--out", str(out), "--no-progress", "--threads", "1", *more],
                                 capsys)
    report = out / "report.json"
    return code, json.loads(report.read_text(encoding="utf-8")) if report.exists() else {}, stdout, err


def measurability_from_csv(out: Path) -> tuple[int, int, int]:
    """From faces.csv: (measurable before, of them not after, measurable neither before nor after)."""
    with open(out / "faces.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    before = [r for r in rows if r["measurable"] == "1"]
    return (len(before), sum(r["ita_filtered"] == "" for r in before),
            sum(r["measurable"] == "0" and r["ita_filtered"] == "" for r in rows))


def test_a_filter_that_blacks_out_darker_faces_fails_the_gate_on_the_share_it_made_unmeasurable(
        faces, blackout, tiny_models, tmp_path, capsys):
    from scipy import stats

    out = tmp_path / "o"
    code, r, stdout, _ = audit(capsys, faces, out, tiny_models["classifier"], blackout, "--aligned",
                               "--max-delta-ita", "2")
    n_before, lost, never = measurability_from_csv(out)
    assert lost > 0, "the blackout filter was meant to make some faces' skin unmeasurable"
    gate, o = r["gate"], r["filter"]["overall"]
    # ΔITA alone is blind to it: the faces the filter spared are unchanged, the ones it blacked out have no ΔITA
    assert not any(row["measure"] == "delta_ita" and row["verdict"] == "beyond" for row in gate["rows"])
    assert code == 1 and gate["passed"] is False, "a filter that blacked out darker faces passed the skin gate"
    from inference.audit.gate import DEFAULT_MAX_UNMEASURABLE_SHARE, MADE_UNMEASURABLE

    assert (o["n_measurable_before"], o["n_made_unmeasurable"], o["n_never_measurable"]) == (n_before, lost, never)
    assert gate["max_unmeasurable_share"] == DEFAULT_MAX_UNMEASURABLE_SHARE
    row = next(f for f in gate["failing"] if f["measure"] == MADE_UNMEASURABLE and f["grouping"] == "overall")
    # scipy's exact binomial interval (Clopper–Pearson)
    exact = stats.binomtest(lost, n_before).proportion_ci(method="exact")
    assert (row["n"], row["verdict"]) == (n_before, "beyond") and row["mean"] == pytest.approx(lost / n_before)
    assert (row["lo"], row["hi"]) == pytest.approx((exact.low, exact.high)) and row["lo"] > row["tolerance"]
    assert f"share made unmeasurable by the filter, all faces: {lost} of {n_before} face(s) measurable before" in stdout
    # the summary counts them apart from the faces never measurable, and the skin sentence says whose shift it is
    said = next(line for line in r["summary"] if "made unmeasurable by the filter (" in line)
    assert said.startswith(f"{lost} of the {n_before} face(s) whose skin was measurable before the filter were made "
                           "unmeasurable by the filter")
    assert not any("had skin that could not be measured before or after" in line for line in r["summary"])
    assert any(line.startswith("The filter did not detectably change skin tone on the "
                               f"{o['n_measurable']} face(s) it left measurable") for line in r["summary"])
    assert not any("change skin tone overall" in line for line in r["summary"])
    per_group = r["filter"]["by"]["skin_tone"]
    assert sum(g["n_made_unmeasurable"] for g in per_group.values()) == lost
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "made unmeasurable by the filter" in html and "<h2>Ship gate</h2>" in html
    # a looser tolerance is the user's to give (the same --out: the cache is reused)
    code, r, _, _ = audit(capsys, faces, out, tiny_models["classifier"], blackout, "--aligned", "--no-html",
                          "--max-delta-ita", "2", "--max-unmeasurable-share", "0.99")
    assert code == 0 and r["gate"]["passed"] is True and r["gate"]["max_unmeasurable_share"] == 0.99


def test_an_identity_filter_passes_the_skin_gate_with_no_face_made_unmeasurable(faces, tiny_models, tmp_path, capsys):
    out = tmp_path / "o"
    code, r, _, _ = audit(capsys, faces, out, tiny_models["classifier"], tiny_models["identity"], "--aligned",
                          "--no-html", "--max-delta-ita", "2")
    gate = r["gate"]
    assert code == 0 and gate["passed"] is True and gate["counts"]["beyond"] == 0
    shares = [row for row in gate["rows"] if row["measure"] == "made_unmeasurable"]
    assert shares and all(row["mean"] == 0 and row["verdict"] in ("within", "unsettled") for row in shares)
    assert {(row["grouping"], row["group"]) for row in shares} == {
        (row["grouping"], row["group"]) for row in gate["rows"] if row["measure"] == "delta_ita"}
    assert r["filter"]["overall"]["n_made_unmeasurable"] == 0
    assert not any("made unmeasurable by the filter" in line for line in r["summary"])


def test_the_unmeasurable_share_is_a_tolerance_of_the_skin_gate(faces, tiny_models, tmp_path, capsys):
    code, _, _, err = audit(capsys, faces, tmp_path / "o", tiny_models["classifier"], tiny_models["identity"],
                            "--aligned", "--no-html", "--max-delta-p", "0.02", "--max-unmeasurable-share", "0.1")
    assert code == 2 and "--max-unmeasurable-share is a tolerance of the skin gate" in err and "--max-delta-ita" in err
    code, _, err = run_main(["audit", "--dataset", f"folder:{faces}", "--out", str(tmp_path / "p"),
                             "--max-delta-ita", "2", "--max-unmeasurable-share", "1.5"], capsys)
    assert code == 2 and "--max-unmeasurable-share: must be below 1" in err


def _cell(ita: tuple, l_star: tuple, lost: int, before: int) -> dict:
    from inference.audit.stats import exact_share

    ci = lambda lo, hi, n: {"value": (lo + hi) / 2, "lo": lo, "hi": hi, "n": n}  # noqa: E731
    return {"delta_ita": {"mean": ci(*ita, before - lost)}, "delta_l": {"mean": ci(*l_star, before - lost)},
            "delta_b": {"mean": ci(-1.0, 1.0, before - lost)}, "classifiers": {},
            "share_made_unmeasurable": exact_share([True] * lost + [False] * (before - lost))}


def test_a_share_is_judged_on_its_one_side_and_a_delta_ita_row_says_its_delta_l():
    from inference.audit.gate import MADE_UNMEASURABLE, filter_gate, gate_lines, share_verdict

    assert [share_verdict(lo, hi, 0.02) for lo, hi in [(0.0, 0.01), (0.03, 0.2), (0.0, 0.3), (None, None)]] == [
        "within", "beyond", "unsettled", "too few"]
    report = {"overall": _cell((-0.5, 0.5), (-0.2, 0.2), 0, 400),
              "by": {"skin_tone": {"brown": _cell((-1.0, 1.0), (-0.5, 0.5), 24, 40),  # ΔITA within, half blacked out
                                   "dark": _cell((2.5, 30.0), (-5.0, 10.0), 0, 3),  # beyond on a swing of ITA
                                   "light": _cell((-4.0, 6.0), (-3.0, 1.0), 0, 30),  # unsettled
                                   "tan": _cell((-1.0, 1.0), (-0.5, 0.5), 1, 3)}}}  # one face lost: not shown
    gate = filter_gate(report, 2, None)
    assert gate["passed"] is False
    failing = {(f["measure"], f["group"]) for f in gate["failing"]}
    assert failing == {(MADE_UNMEASURABLE, "brown"), ("delta_ita", "dark")}
    # Wilson's interval put 1 of 3 "beyond" 2 % (from 6.1 %); one borderline face cannot show a group's share
    tan = next(row for row in gate["rows"] if row["measure"] == MADE_UNMEASURABLE and row["group"] == "tan")
    assert tan["verdict"] == "unsettled"
    lines = gate_lines(gate)
    dark = next(line for line in lines if "ΔITA, skin_tone dark" in line)
    assert "beyond; ΔL* " in dark and "Δb* " in dark and "lightness not shown to move" in dark
    light = next(line for line in lines if "ΔITA, skin_tone light" in line)
    assert light.startswith("  Unsettled, passes without --strict") and "ΔL* " in light
    assert any("share made unmeasurable by the filter, skin_tone brown: 24 of 40" in line for line in lines)
    assert filter_gate(report, None, 0.02)["rows"] == [], "the share is judged with the skin gate only"


def test_skin_tone_groups_carry_their_caveat_and_unlabelled_detection_says_why_it_has_no_groups(
        faces, tiny_models, tmp_path, capsys):
    few = tmp_path / "few"
    few.mkdir()
    for p in sorted(faces.iterdir())[:4]:
        shutil.copy(p, few / p.name)
    out = tmp_path / "o"
    code, r, stdout, _ = audit(capsys, few, out, tiny_models["classifier"], tiny_models["identity"])  # detected
    assert code == 0 and "skin_tone" in r["groups"]["groupings"] and r["detection"]["by"] == {}
    caveat = next((line for line in r["summary"] if line.startswith("Skin-tone groups are")), "")
    assert "extreme tone" in caveat and "low b*" in caveat and "ΔL*" in caveat and caveat in stdout
    html = (out / "report.html").read_text(encoding="utf-8")
    assert "cannot be binned by skin tone" in html
    assert html.count(html_module.escape(caveat)) == 2  # in the summary and above the skin-tone ΔITA table
    labelled = tmp_path / "utk"
    labelled.mkdir()
    for p in utk_images(4):
        shutil.copy(p, labelled / p.name)
    code, r, _, _ = audit(capsys, labelled, tmp_path / "l", tiny_models["classifier"], tiny_models["identity"],
                          "--no-html", kind="utkface")
    assert code == 0 and "skin_tone" not in r["groups"]["groupings"]
    assert not any(line.startswith("Skin-tone groups are") for line in r["summary"])


def test_only_a_labelled_audit_leaves_the_faces_no_label_names_ungated():
    """The same groups, gated by a labelled audit and by one without labels: "unknown" is the detector's other faces
    in a labelled photo there, and a group of the labels given here."""
    from inference.audit.gate import NOT_GATED, filter_gate, gate_lines

    within, too_few = _cell((-0.5, 0.5), (-0.2, 0.2), 0, 400), _cell((-0.5, 0.5), (-0.2, 0.2), 0, 2)
    too_few["delta_ita"]["mean"].update(lo=None, hi=None)
    too_few["n_faces"] = 2
    report = {"overall": within, "by": {grouping: {"known": within, group: too_few} for grouping, group in NOT_GATED}}
    unlabelled = filter_gate(report, 2, None, strict=True, max_unmeasurable_share=0.99)
    assert unlabelled["passed"] is False and unlabelled["not_gated"] == []
    assert {(f["grouping"], f["group"]) for f in unlabelled["failing"]} == NOT_GATED
    labelled = filter_gate(report, 2, None, strict=True, max_unmeasurable_share=0.99, labelled=True)
    assert labelled["passed"] is True and labelled["failing"] == []
    assert {(g["grouping"], g["group"], g["n"]) for g in labelled["not_gated"]} == {(*key, 2) for key in NOT_GATED}
    assert not {(row["grouping"], row["group"]) for row in labelled["rows"]} & NOT_GATED
    said = [line for line in gate_lines(labelled) if "not gated" in line]
    assert len(said) == 1 and all(f"{grouping} {group} (n=2)" in said[0] for grouping, group in NOT_GATED)
