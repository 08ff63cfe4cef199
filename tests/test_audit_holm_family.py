"""Holm's family holds only the tests that can reach significance.

An exact test over n faces that moved (Wilcoxon signed-rank) or n discordant faces (McNemar) cannot give a p below
2/2ⁿ, so a group of 5 or fewer such faces can never be rejected at α = 0.05. It had still counted in Holm's family,
so with 8 groups of which 3 were tiny a real group was held to α/8 instead of α/5. Such tests are left out of the
family now (``stats.holm_family``): ``p_holm`` null, ``holm_family`` false, ``least_p`` saying why.

The simulations here draw from numpy's generator with a fixed seed; the bounds they are held to are computed from
their own draws (a binomial margin), never typed in.
"""
from __future__ import annotations

import json

import numpy as np
import pytest

from inference.audit.filter_audit import filter_audit
from inference.audit.stats import ALPHA, holm, holm_family, wilcoxon_least_p, wilcoxon_test

TINY = {"t1": [4.0, 5.0, 6.0], "t2": [-3.0, 2.5], "t3": [1.0, 2.0, 3.0, 4.0, 5.0]}  # least p 0.25, 0.5, 0.0625


def _skin(ita: float = 20.0) -> dict:
    return {"measurable": True, "L": 65.0, "b": 15.0, "ita": ita, "category": "tan", "mst": 5}


def _face(d_ita: float, dp: float) -> dict:
    """One face of a filter section: its ΔITA (ΔL* a tenth of it) and its ΔP(female) from classifier "m"."""
    clf = {"m": {"dp": dp, "pred_ref": "male", "pred_f": "male", "flip": False}}
    return {"d_ita": d_ita, "d_l": d_ita / 10, "d_mst": 0, "skin": _skin(), "filtered_skin": _skin(), "clf": clf}


def _section(groups: dict[str, list[float]]) -> dict:
    """A filter section of grouping "g": each group's ΔITA as given, its ΔP(female) a hundredth of it."""
    faces = [_face(v, v / 100) for vs in groups.values() for v in vs]
    return filter_audit(faces, {"g": [g for g, vs in groups.items() for _ in vs]}, ["m"], {})


def _real_groups(rng: np.random.Generator, shift: float) -> dict[str, list[float]]:
    return {f"r{i}": list(rng.normal(shift, 1.0, 12).round(3)) for i in range(5)}


# --- (a) tiny groups no longer take a real group's power --------------------------------------------------------------

def test_tiny_groups_are_left_out_of_the_family_and_a_real_groups_holm_p_falls():
    rng = np.random.default_rng(1)
    groups = {**TINY, **_real_groups(rng, 0.8)}
    by = _section(groups)["by"]["g"]
    for test_of in (lambda s: s["delta_ita"]["wilcoxon"], lambda s: s["classifiers"]["m"]["delta_p_female"]["wilcoxon"]):
        tests = {g: test_of(s) for g, s in by.items()}
        for g in TINY:  # every one of their faces moved, yet none can be rejected: out of the family, and said so
            assert tests[g]["least_p"] == 2 / 2 ** len(TINY[g]) >= ALPHA
            assert tests[g]["holm_family"] is False and tests[g]["p_holm"] is None, g
            assert tests[g]["p"] >= tests[g]["least_p"]
        real = [g for g in groups if g not in TINY]
        assert all(tests[g]["holm_family"] is True and tests[g]["holm_family_size"] == 5 for g in real)
        new = dict(zip(real, holm([tests[g]["p"] for g in real])))  # Holm over the 5 that can be rejected
        old = dict(zip(groups, holm([tests[g]["p"] for g in groups])))  # the family of 8 the audit had used
        for g in real:
            assert tests[g]["p_holm"] == pytest.approx(new[g])
        smallest = min(real, key=lambda g: tests[g]["p"])
        assert tests[smallest]["p_holm"] < old[smallest]  # m = 5 multiplies its p, where m = 8 had


def test_a_group_whose_faces_did_not_move_is_out_of_the_family_too():
    """No face moved: its p is 1 whatever, so it can no more be rejected than a group of 3."""
    by = _section({"still": [0.0] * 8, "a": [1.0 + 0.1 * i for i in range(8)], "b": [-1.0 - 0.1 * i for i in range(8)]})["by"]["g"]
    still = by["still"]["delta_ita"]["wilcoxon"]
    assert still["p"] == 1.0 and still["least_p"] == 1.0 and still["holm_family"] is False and still["p_holm"] is None
    a = by["a"]["delta_ita"]["wilcoxon"]
    assert a["holm_family_size"] == 2 and a["p_holm"] == pytest.approx(holm([a["p"], by["b"]["delta_ita"]["wilcoxon"]["p"]])[0])


def test_a_group_of_six_faces_that_all_moved_stays_in_the_family():
    """2/2⁶ = 0.031 < α: six faces can be rejected, so they stay (and the boundary is α itself)."""
    six = [1.0 + 0.2 * i for i in range(6)]
    assert wilcoxon_least_p(wilcoxon_test(six)) == 2 / 64 < ALPHA
    assert wilcoxon_least_p(wilcoxon_test(six[:5])) == 2 / 32 >= ALPHA
    [fam] = holm_family([2 / 64], [2 / 64])
    assert fam["holm_family"] and fam["p_holm"] == pytest.approx(2 / 64)
    [at_alpha] = holm_family([ALPHA], [ALPHA])  # a least p of exactly α is not below it: out
    assert not at_alpha["holm_family"] and at_alpha["p_holm"] is None


def test_a_focus_pair_too_small_for_mann_whitney_is_out_of_the_family():
    """2 against 2 values: the exact Mann–Whitney test cannot go below 2/C(4, 2) = 1/3, whatever the values."""
    from inference.audit.stats import pairwise_mannwhitney

    groups = {"tiny": [0.1, 0.2], "also": [0.9, 0.95], "big": [0.3 + 0.01 * i for i in range(20)],
              "bigger": [0.6 + 0.01 * i for i in range(20)]}
    rows = {(r["a"], r["b"]): r for r in pairwise_mannwhitney(groups)}
    small = rows[("also", "tiny")]
    assert small["least_p"] == pytest.approx(1 / 3) and small["p"] == pytest.approx(1 / 3)  # the extreme split itself
    assert small["holm_family"] is False and small["p_holm"] is None
    real = rows[("big", "bigger")]
    assert real["holm_family"] is True and real["least_p"] < ALPHA
    family = [r for r in rows.values() if r["holm_family"]]
    assert all(r["holm_family_size"] == len(family) for r in rows.values()) and len(family) < len(rows)
    assert real["p_holm"] == pytest.approx(holm([r["p"] for r in family])[family.index(real)])


# --- (b) under the null the family-wise error stays at α ---------------------------------------------------------------

SIZES = (2, 3, 4, 5, 7, 9, 12, 20)  # four groups no test can reject, four that can
DRAWS = 2000


def _null_pvalues(rng: np.random.Generator) -> list[tuple[list[float], list[float]]]:
    """Per draw: each group's p and least p, its shifts drawn symmetric about 0 (H0 true in every group)."""
    out = []
    for _ in range(DRAWS):
        tests = [wilcoxon_test(rng.normal(0.0, 1.0, n)) for n in SIZES]
        out.append(([t["p"] for t in tests], [wilcoxon_least_p(t) for t in tests]))
    return out


def _family_wise(draws, adjust) -> float:
    return float(np.mean([any(p is not None and p < ALPHA for p in adjust(ps, least)) for ps, least in draws]))


def test_the_family_wise_error_under_the_null_stays_at_alpha():
    draws = _null_pvalues(np.random.default_rng(20240601))
    margin = 3 * np.sqrt(ALPHA * (1 - ALPHA) / DRAWS)  # three binomial SDs of a rate of α over DRAWS draws
    rate = _family_wise(draws, lambda ps, least: [f["p_holm"] for f in holm_family(ps, least)])
    assert rate <= ALPHA + margin, rate
    # the check can fail: a family chosen on the p-values themselves (Holm over those below α) is caught by it
    cheat = _family_wise(draws, lambda ps, least: holm([p if p < ALPHA else None for p in ps]))
    assert cheat > ALPHA + margin, cheat


# --- (c) and a real shift is found more often than with the tiny groups in the family --------------------------------

def test_a_real_shift_beside_tiny_groups_is_found_more_often():
    rng = np.random.default_rng(7)
    found_new = found_old = 0
    for _ in range(400):
        shifted = wilcoxon_test(rng.normal(0.7, 1.0, 12))  # a real move, in one group of 12
        others = [wilcoxon_test(rng.normal(0.0, 1.0, n)) for n in (2, 3, 4, 5, 15, 20)]  # four tiny, two not
        tests = [shifted, *others]
        ps = [t["p"] for t in tests]
        new = holm_family(ps, [wilcoxon_least_p(t) for t in tests])[0]["p_holm"]
        old = holm(ps)[0]
        assert new <= old  # a smaller family never raises a Holm p
        found_new += new < ALPHA
        found_old += old < ALPHA
    assert found_new > found_old, (found_new, found_old)


# --- (d) report.json carries the family and the schema says so --------------------------------------------------------

def _row(i: int, gender: str, race: str, d_ita: float, right: bool) -> dict:
    """A labelled face through a filter, two classifiers "a" and "b" ("b" wrong where ``right`` is False)."""
    def clf(pred: str) -> dict:
        p = 0.9 if pred == "female" else 0.1
        return {"p": p, "pred": pred, "focus": 0.5 + 0.01 * (i % 7), "p_ref": p, "pred_ref": pred,
                "p_f": p + d_ita / 1000, "pred_f": pred, "focus_f": 0.5, "dp": round(d_ita / 1000, 6), "flip": False}
    other = "male" if gender == "female" else "female"
    return {"file": f"{i}.jpg", "path": f"/x/{i}.jpg", "face": 0, "box": None, "gender": gender, "race": race,
            "age": 30, "age_band": "30-44", "group": None, "skin": _skin(), "filtered_skin": _skin(20.0 + d_ita),
            "d_ita": d_ita, "d_l": d_ita / 10, "d_mst": 0, "moved_px": 0,
            "clf": {"a": clf(gender), "b": clf(gender if right else other)}}


def test_report_json_carries_the_family_and_the_new_schema_version(tmp_path):
    from inference.audit.report import SCHEMA_VERSION, build_report, write_json

    rng = np.random.default_rng(3)
    rows, i = [], 0
    for gender, race, n, shift in (("female", "White", 14, -1.0), ("male", "White", 14, -1.0),
                                   ("female", "Black", 3, -1.0), ("male", "Black", 2, -1.0)):
        for k in range(n):
            rows.append(_row(i, gender, race, float(rng.normal(shift, 0.5)), right=k >= 3 or n < 5))
            i += 1
    audit = {"dataset": "folder:x", "kind": "folder", "split": None, "min_age": None, "limit": None, "detect": False,
             "detector": "aligned", "max_faces": None, "groups_csv": None, "cam_class": "predicted",
             "filter_condition": None}
    model = {"file": "m.onnx", "sha256": "0" * 64, "card": {}, "labels": ["male", "female"], "input_size": [32, 32]}
    models = {"classifiers": [{**model, "name": n} for n in ("a", "b")], "crop_size": 112,
              "filter": {**model, "name": "f", "file": "f.onnx", "direction": "", "method": "", "conditions": []}}
    report = build_report(audit=audit, models=models, images=[
        {"file": r["file"], "error": None, "n_faces": 1, "gender": r["gender"], "race": r["race"],
         "age_band": r["age_band"], "group": None} for r in rows], rows=rows, labelled=True, names=["a", "b"],
        has_filter=True, filter_training={}, extra_images={})
    write_json(tmp_path / "report.json", report)
    r = json.loads((tmp_path / "report.json").read_text(encoding="utf-8"))
    assert r["schema_version"] == SCHEMA_VERSION == 19
    by = r["filter"]["by"]["gender_race"]
    for g, s in by.items():
        w = s["delta_ita"]["wilcoxon"]
        assert {"p_holm", "least_p", "holm_family", "holm_family_size"} <= set(w), g
        assert w["holm_family_size"] == 2
        assert w["holm_family"] is (w["least_p"] < ALPHA)
        assert (w["p_holm"] is None) is (not w["holm_family"])
    assert by["female/Black"]["delta_ita"]["wilcoxon"]["holm_family"] is False
    assert by["female/White"]["delta_ita"]["wilcoxon"]["holm_family"] is True
    # McNemar: "b" is wrong on 3 faces of each large group (least p 2/2³ = 0.25 ≥ α): none can be rejected
    mcnemar = r["comparisons"][0]["by"]["gender_race"]
    assert all(v["holm_family"] is False and v["p_holm"] is None and v["least_p"] >= ALPHA for v in mcnemar.values())
    assert r["comparisons"][0]["overall"]["p_holm"] == r["comparisons"][0]["overall"]["p"]  # overall: a family of one
    # the summary reads the family as report.json gives it, and still says why a tiny group cannot be significant
    [line] = [x for x in r["summary"] if x.startswith("ΔITA by gender_race: ")]
    assert "too few faces to reach significance" in line and "left out of Holm's family" in line, line
    [mc_line] = [x for x in r["summary"] if x.startswith("a vs b on the same")]
    # an empty family: no group was weighed "after Holm"
    assert "No gender_race group differs detectably." in mc_line and "left out of Holm's family" in mc_line, mc_line
    # report.html's Holm column says a left-out test is out of the family, with its least p, not "p n/a"
    from inference.audit.html import build_html

    page = build_html(r)
    assert "not in Holm&#x27;s family (least p 0.250)" in page or "not in Holm's family (least p 0.250)" in page
