"""The science pinned to values derived independently: by hand (worked in the comments), from the formula, or from
SciPy / scikit-image called here. Each test kills a mutant that hand-made mutation testing left alive (rates,
Holm, words of the summary, composition against a target, effect sizes, Monk shares, CIEDE2000, the skin mask's
geometry, the tracker's missed-frame count, the batch-means interval, P(female) read by the card's label)."""
from __future__ import annotations

import math
import statistics
from statistics import NormalDist

import cv2
import numpy as np
import pytest
from scipy import stats
from skimage.color import deltaE_cie76, deltaE_ciede2000, rgb2lab

from inference.audit.classifier_audit import _error_gaps, p_female_distribution
from inference.audit.filter_audit import _delta_b, composition, filter_audit, group_shift
from inference.audit.stats import kruskal_test, pairwise_mannwhitney, rank_biserial
from inference.audit.summary import ci, comparison_line, summary_lines
from inference.faces import Detection
from inference.metrics import binary_metrics, disaggregate, series_mean_ci
from inference.results import Prediction, SkinTone
from inference.skin import compare_skin, face_skin_mask, nearest_monk, nearest_monks
from inference.tracking import IoUTracker

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054


def wilson_by_hand(k: int, n: int) -> tuple[float, float]:
    """Wilson score interval from its formula: (p + z²/2n ± z·√(p(1−p)/n + z²/4n²)) / (1 + z²/n)."""
    p, z2 = k / n, Z95 ** 2
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / (1 + z2 / n)
    return centre - half, centre + half


# The modified Wilson interval's bound next to a count of one (success, or failure) is the Poisson one: the λ at which
# one event or more has probability 0.05, 1 − e^(−λ) = 0.05, so λ = −ln 0.95, over n
ONE_EVENT = -math.log(0.95)


def holm_by_hand(ps: list[float]) -> list[float]:
    """Holm step-down written out: the k-th smallest (k = 0..m−1) times (m − k), a running maximum, capped at 1."""
    m = len(ps)
    order = sorted(range(m), key=lambda i: ps[i])
    out, running = [0.0] * m, 0.0
    for k, i in enumerate(order):
        running = max(running, (m - k) * ps[i])
        out[i] = min(running, 1.0)
    return out


# --- 1. FPR / FNR with modified Wilson intervals; the error gaps name the highest rate worst ---------------------------------

def test_fpr_and_fnr_are_the_shares_of_negatives_called_positive_and_positives_called_negative():
    # 4 faces annotated male (0), one called female: FPR 1/4; 2 annotated female (1), one called male: FNR 1/2
    y_true = [0, 0, 0, 0, 1, 1]
    y_pred = [1, 0, 0, 0, 0, 1]
    m = binary_metrics(np.array(y_true), np.array(y_pred), np.full(6, 0.5))
    assert (m["fpr"]["value"], m["fpr"]["n"]) == (0.25, 4)
    assert (m["fnr"]["value"], m["fnr"]["n"]) == (0.5, 2)
    assert m["accuracy"]["value"] == pytest.approx(4 / 6)
    # 1 of 4: one success, so the lower bound is Poisson's (≈ 0.0128); 3 failures, past x* = 2, so Wilson's upper
    lo, hi = ONE_EVENT / 4, wilson_by_hand(1, 4)[1]  # ≈ 0.6994
    assert (m["fpr"]["lo"], m["fpr"]["hi"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    lo, hi = ONE_EVENT / 2, 1 - ONE_EVENT / 2  # 1 of 2: one success and one failure, both bounds Poisson's
    assert (m["fnr"]["lo"], m["fnr"]["hi"]) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))


def _two_groups() -> tuple[list[int], list[int], list[str]]:
    """Group A: 4 male faces, 2 called female (FPR 0.5); 4 female, none called male (FNR 0); accuracy 6/8 = 0.75.
    Group B: 4 male, 1 called female (FPR 0.25); 4 female, 2 called male (FNR 0.5); accuracy 5/8 = 0.625."""
    y_true = [0, 0, 0, 0, 1, 1, 1, 1] * 2
    y_pred = [1, 1, 0, 0, 1, 1, 1, 1] + [1, 0, 0, 0, 1, 1, 0, 0]
    return y_true, y_pred, ["A"] * 8 + ["B"] * 8


def test_the_error_gaps_name_the_group_of_the_highest_rate_worst_with_difference_and_ratio():
    y_true, y_pred, groups = _two_groups()
    gm = disaggregate(y_true, y_pred, [0.5] * 16, {"g": groups})
    gaps = _error_gaps(gm.by["g"])
    # FPR: A 0.5 is the highest (worst), B 0.25 the lowest; difference 0.25, ratio 0.5 / 0.25 = 2
    assert (gaps["fpr"]["worst"], gaps["fpr"]["best"]) == ("A", "B")
    assert gaps["fpr"]["difference"] == pytest.approx(0.25) and gaps["fpr"]["ratio_worst_best"] == pytest.approx(2.0)
    # FNR: B 0.5 worst, A 0 best; difference 0.5, and no ratio over a best of 0
    assert (gaps["fnr"]["worst"], gaps["fnr"]["best"]) == ("B", "A")
    assert gaps["fnr"]["difference"] == pytest.approx(0.5) and gaps["fnr"]["ratio_worst_best"] is None


# --- 5. the accuracy gap's ratio is worst / best -------------------------------------------------------------------

def test_the_accuracy_gap_ratio_is_worst_over_best():
    y_true, y_pred, groups = _two_groups()
    gap = disaggregate(y_true, y_pred, [0.5] * 16, {"g": groups}).gap("g")
    # accuracy A 0.75 (best), B 0.625 (worst): difference 0.125, ratio 0.625 / 0.75 = 5/6
    assert (gap["best"], gap["worst"]) == ("A", "B")
    assert gap["difference"] == pytest.approx(0.125)
    assert gap["ratio_worst_best"] == pytest.approx(5 / 6)


# --- 2. per-group words, Holm per group, "after Holm" in the comparison line ----------------------------------------

def _skin(b: float = 10.0, category: str = "tan", L: float = 65.0) -> dict:
    return {"measurable": True, "b": b, "L": L, "category": category}


def _row(d_ita: float, d_mst: int = 0, clf: dict | None = None, b=(10.0, 10.0)) -> dict:
    return {"d_ita": d_ita, "d_l": d_ita / 10, "d_mst": d_mst, "skin": _skin(b[0]), "filtered_skin": _skin(b[1]),
            "clf": clf or {}}


def _report(fl: dict) -> dict:
    """The least of a report.json summary_lines reads, around a filter section."""
    return {"audit": {"dataset": "folder:x", "labelled": False},
            "images": {"n_images": 20, "n_faces": 20, "n_with_faces": 20, "no_face": [], "unreadable": []},
            "groups": {"primary": "g", "small": {}, "groupings": ["g"]}, "classifiers": {}, "comparisons": [],
            "models": {"classifiers": []}, "focus": {}, "filter": fl, "caveats": ["none"]}


def test_each_groups_skin_shift_is_worded_by_its_sign_and_holm_adjusted_across_the_groups():
    # A: six faces all darker, ranks 1..6 all negative: exact two-sided Wilcoxon p = 2/2⁶ = 0.03125
    # B: five faces all lighter: p = 2/2⁵ = 0.0625; C: mixed, larger p
    d = {"A": [-1.0, -2.0, -3.0, -4.0, -5.0, -6.0], "B": [1.0, 2.0, 3.0, 4.0, 5.0], "C": [1.0, -2.0, 3.0, -4.0, 5.0, 6.5]}
    rows, labels = [], []
    for g, values in d.items():
        rows += [_row(v) for v in values]
        labels += [g] * len(values)
    fl = filter_audit(rows, {"g": labels}, [], {})
    by = fl["by"]["g"]
    raw = [by[g]["delta_ita"]["wilcoxon"]["p"] for g in d]
    for g, p in zip(d, raw):  # the raw p is SciPy's own exact signed-rank test
        assert p == pytest.approx(stats.wilcoxon(d[g], method="exact").pvalue)
    assert raw[:2] == [pytest.approx(2 / 64), pytest.approx(2 / 32)]
    # B's five faces cannot give a p below 2/2⁵ = 0.0625 ≥ α: since schema 18 it is left out of Holm's family, which
    # holds A and C (six faces each, least p 2/2⁶ = 0.031)
    b = by["B"]["delta_ita"]["wilcoxon"]
    assert b["holm_family"] is False and b["p_holm"] is None and b["least_p"] == pytest.approx(2 / 32)
    expected = holm_by_hand([raw[0], raw[2]])  # A: 2 × 0.03125 = 0.0625; C: max(0.0625, p_C)
    for g, e in zip("AC", expected):
        assert by[g]["delta_ita"]["wilcoxon"]["p_holm"] == pytest.approx(e)
        assert by[g]["delta_ita"]["wilcoxon"]["holm_family_size"] == 2
    assert by["A"]["delta_ita"]["wilcoxon"]["p_holm"] > raw[0]
    assert expected[0] == pytest.approx(0.0625)

    [line] = [x for x in summary_lines(_report(fl)) if x.startswith("ΔITA by g: ")]
    parts = dict(part.split(": ", 1) for part in line[len("ΔITA by g: "):].rstrip(".").split("; "))
    # A moved down (mean −3.5): darker, and its Holm p 0.0625 (raw 0.031) is not significant; B up: lighter. Neither
    # could be: six faces all one way give Holm p 2 × 2/2⁶ at the least here, five 2/2⁵ before any Holm
    assert "(darker, Holm p = 0.062, too few faces to reach significance" in parts["A"], line
    assert "(lighter, p = 0.062, too few faces to reach significance (the least p possible with 5 faces is 0.062, so it " \
           "is left out of Holm's family)" in parts["B"], line


def _tinted(d_itas: list[float], d_ls: list[float], b_shift: float, L: float = 65.0) -> dict:
    """A filter section over faces of one group ("x" of grouping "g"), each face's ΔITA and ΔL* given and its b*
    moved by ``b_shift`` give or take a little (the bootstrap needs values that differ), from 15 at lightness ``L``."""
    rows = [{**_row(d_ita), "skin": _skin(15.0, L=L), "filtered_skin": _skin(15.0 + b_shift + 0.1 * (i % 3), L=L),
             "d_l": d_l} for i, (d_ita, d_l) in enumerate(zip(d_itas, d_ls))]
    return filter_audit(rows, {"g": ["x"] * len(rows)}, [], {})


def _skin_lines(fl: dict) -> tuple[str, str]:
    """The overall skin-shift sentence and the group "x"'s part of "ΔITA by g"."""
    lines = summary_lines(_report(fl))
    [overall] = [x for x in lines if x.startswith("The filter ") and "ΔITA" in x]
    [by_g] = [x for x in lines if x.startswith("ΔITA by g: ")]
    return overall, by_g


DOWN = [-4.0 - 0.3 * i for i in range(12)]  # twelve faces, every one lower: Wilcoxon p = 2/2¹² (significant)


def test_a_yellow_tint_that_lowers_ita_while_lightness_rises_is_not_called_darker():
    # ITA = atan((L* − 50)/b*) falls as b* rises: R, G ×1.02 and B ×0.85 gave ΔITA -6.3 [-7.5, -5.2] with ΔL*
    # +0.59 [+0.54, +0.63] and Δb* +10.1, and the summary had said "The filter made skin darker"
    fl = _tinted(DOWN, [0.5 + 0.02 * i for i in range(12)], b_shift=10.0)
    o = fl["overall"]
    assert o["delta_ita"]["wilcoxon"]["p"] < 0.05 and o["delta_l"]["mean"]["lo"] > 0 and o["delta_b"]["mean"]["lo"] > 0
    overall, by_g = _skin_lines(fl)
    assert "darker" not in overall.partition(": mean ΔITA")[0], overall
    assert overall.startswith(f"The filter lowered skin's ITA overall (yellower: Δb* {ci(o['delta_b']['mean'])}, "
                              f"while L* rose: ΔL* {ci(o['delta_l']['mean'])}): mean ΔITA "), overall
    assert "(lower ITA, yellower: Δb* " in by_g and "while L* rose" in by_g and "darker" not in by_g, by_g


def test_itas_rise_beside_a_lightness_shown_to_fall_is_not_called_lighter():
    # the converse: a darkening filter that took yellow out raised ITA while L* fell, and read "made skin lighter"
    fl = _tinted([-d for d in DOWN], [-1.0 - 0.05 * i for i in range(12)], b_shift=-3.0)
    overall, by_g = _skin_lines(fl)
    assert overall.startswith("The filter raised skin's ITA overall (less yellow: Δb* "), overall
    assert "while L* fell: ΔL* " in overall and "lighter" not in overall.partition(": mean ΔITA")[0], overall
    assert "(higher ITA, less yellow: Δb* " in by_g and "lighter" not in by_g, by_g


def test_yellowness_carries_an_ita_shift_only_where_lightness_was_not_shown_to_move_and_b_moved_more():
    flat = [0.2 * (-1) ** i * (1 + i // 2) for i in range(12)]  # ΔL* ±0.2, ±0.4, …: mean 0, its CI across it
    carried = _tinted(DOWN, flat, b_shift=5.0)
    assert _skin_lines(carried)[0].startswith("The filter lowered skin's ITA overall (yellower: Δb* ")
    assert "while L* was not shown to move: ΔL* " in _skin_lines(carried)[0]
    # a Δb* shown to move but by less than ΔL* carries nothing (a mirror filter's group: Δb* -0.03 [-0.14, -0.00]
    # beside ΔL* -0.08 [-0.39, 0.00]): named after ΔL*, with no word of its own; and with L* not shown to move, the
    # fall of ITA is not "darker" either
    small = _tinted(DOWN, [d - 0.3 for d in flat], b_shift=0.03)
    dl, db = small["overall"]["delta_l"]["mean"], small["overall"]["delta_b"]["mean"]
    assert dl["lo"] < 0 < dl["hi"] and db["lo"] > 0 and abs(db["value"]) < abs(dl["value"])
    assert _skin_lines(small)[0].startswith(f"The filter lowered skin's ITA overall (L* was not shown to move: ΔL* "
                                            f"{ci(dl)}, Δb* {ci(db)}): ")


@pytest.mark.parametrize("L", [65.0, 35.0])
def test_yellowness_is_said_to_carry_an_ita_shift_only_where_its_change_moved_ita_that_way(L):
    """Compared as sizes, a Δb* had been said to carry any ΔITA it outweighed: the default filter's female/Black faces
    (L* 56, Δb* -2.49, ΔL* -0.35 not shown to move, ΔITA -0.35) read "lower ITA, less yellow", though less yellow
    raises ITA where L* > 50. Where L* < 50 (very dark skin) it lowers it, and there it is said."""
    flat = [0.2 * (-1) ** i * (1 + i // 2) for i in range(12)]
    overall, by_g = _skin_lines(_tinted(DOWN, flat, b_shift=-2.5, L=L))
    if L > 50:  # less yellow raised ITA: its fall is not yellowness's, nor lightness's (L* not shown to move)
        assert overall.startswith("The filter lowered skin's ITA overall (L* was not shown to move: ΔL* "), overall
        assert "(lower ITA, L* was not shown to move: ΔL* " in by_g and "less yellow" not in by_g, by_g
    else:
        assert overall.startswith("The filter lowered skin's ITA overall (less yellow: Δb* "), overall
        assert "(lower ITA, less yellow: Δb* " in by_g, by_g


@pytest.mark.parametrize("sign, word", [(1, "lighter"), (-1, "darker")])
def test_an_ita_shift_that_lightness_bears_out_keeps_its_lighter_or_darker(sign, word):
    # _row's ΔL* is ΔITA/10: lightness moved the way ITA did, b* did not move
    fl = filter_audit([_row(-sign * d) for d in DOWN], {"g": ["x"] * len(DOWN)}, [], {})
    overall, by_g = _skin_lines(fl)
    assert overall.startswith(f"The filter made skin {word} overall: mean ΔITA "), overall
    assert f"({word}, Holm " in by_g and "ITA, " not in by_g, by_g


def test_no_group_differs_after_holm_where_only_the_raw_ps_are_below_0_05():
    # raw p 0.03 and 0.04 over two groups: Holm 2 × 0.03 = 0.06 and max(0.06, 1 × 0.04) = 0.06, both ≥ 0.05
    ps = [0.03, 0.04]
    adjusted = holm_by_hand(ps)
    assert adjusted == [pytest.approx(0.06), pytest.approx(0.06)]
    group = {"n": 20, "difference": 0.15, "only_a": 4, "only_b": 1, "accuracy_a": 0.9, "accuracy_b": 0.75}
    c = {"a": "m1", "b": "m2",
         "overall": {"n": 40, "difference": 0.1, "p": 0.2, "accuracy_a": 0.9, "accuracy_b": 0.8, "only_a": 6,
                     "only_b": 2, "p_holm": 0.2},
         "by": {"g": {"X": {**group, "p": ps[0], "p_holm": adjusted[0]}, "Y": {**group, "p": ps[1], "p_holm": adjusted[1]}}}}
    line = comparison_line(c, "g")
    assert line.endswith(" No g group differs detectably after Holm."), line
    # and a group whose Holm p is below 0.05 is named with it
    c["by"]["g"]["X"]["p_holm"] = 0.02
    assert "By g, after Holm: X +15.0 points (p = 0.020)." in comparison_line(c, "g")


# --- 3. the predicted-female share against the card's target -------------------------------------------------------

def _composition_rows(n_ref_female: int, n_filtered_female: int) -> list[dict]:
    rows = []
    for i in range(10):
        ref, out = ("female" if i < n_ref_female else "male"), ("female" if i < n_filtered_female else "male")
        rows.append(_row(float(i % 3 - 1) + 0.1 * i, clf={"m": {"pred_ref": ref, "pred_f": out, "dp": 0.01 * i - 0.03,
                                                               "flip": ref != out}}))
    return rows


def _composition_line(fl: dict) -> str:
    [line] = [x for x in summary_lines(_report(fl)) if x.startswith("m: share predicted female")]
    return line


TARGET = {"marginals": {"gender": {"female": 0.5, "male": 0.5}}}


def test_a_filter_that_pushes_the_female_share_past_the_target_crosses_it_and_moves_further_from_it():
    # the reference crops: 7 of 10 called female (0.7); the filtered ones: 2 of 10 (0.2); target 0.5
    # crossed: (0.7 − 0.5)(0.2 − 0.5) = −0.06 < 0; toward: |0.2 − 0.5| = 0.3 is not below |0.7 − 0.5| = 0.2
    rows = _composition_rows(7, 2)
    e = composition(rows, ["m"], TARGET)["predicted_female"]["m"]
    assert (e["input"]["value"], e["input"]["n"]) == (pytest.approx(0.7), 10)
    assert (e["output"]["value"], e["output"]["n"]) == (pytest.approx(0.2), 10)
    assert e["crossed_target"] is True and e["moved_toward_target"] is False
    line = _composition_line(filter_audit(rows, {"g": ["x"] * 10}, ["m"], TARGET))
    assert line.startswith("m: share predicted female 70.0% [95% CI ") and " on inputs vs 20.0% [95% CI " in line
    assert line.endswith("; the card's target is 50.0% female, and the output crosses it (further from the target "
                         "than the input)."), line


def test_an_output_share_exactly_at_the_target_does_not_cross_it():
    # "crossed: the output's share lies on the other side of the target than the input's" (filter_audit, the schema):
    # an output of 5 of 10 = 0.5 lies on it, on neither side: (0.7 − 0.5)(0.5 − 0.5) = 0, not crossed; it moved closer
    rows = _composition_rows(7, 5)
    e = composition(rows, ["m"], TARGET)["predicted_female"]["m"]
    assert e["output"]["value"] == pytest.approx(0.5)
    assert e["crossed_target"] is False and e["moved_toward_target"] is True
    line = _composition_line(filter_audit(rows, {"g": ["x"] * 10}, ["m"], TARGET))
    assert line.endswith("and the output does not cross it (closer to the target than the input)."), line
    # from below the target to above it crosses too: 3 of 10 → 8 of 10, (0.3 − 0.5)(0.8 − 0.5) < 0, not closer
    e = composition(_composition_rows(3, 8), ["m"], TARGET)["predicted_female"]["m"]
    assert e["crossed_target"] is True and e["moved_toward_target"] is False


# --- 4. effect sizes and tests of stats.py -------------------------------------------------------------------------

def test_the_matched_pairs_rank_biserial_weighs_ranks_not_counts():
    # |d| 1, 2, 3 ranked 1, 2, 3: W+ = 1 + 2 = 3, W− = 3: (3 − 3)/6 = 0 (counts would give (2 − 1)/3)
    assert rank_biserial(np.array([1.0, 2.0, -3.0])) == 0.0
    # |d| 0.5, 1, 2, 3 ranked 1..4: W+ = 2 + 3 + 4 = 9, W− = 1: 8/10 (counts: (3 − 1)/4 = 0.5)
    assert rank_biserial(np.array([1.0, 2.0, 3.0, -0.5])) == pytest.approx(0.8)
    assert rank_biserial(np.array([-1.0, -2.0])) == -1.0 and rank_biserial(np.array([0.0])) is None


def test_pairwise_mann_whitney_is_two_sided_symmetric_and_its_rank_biserial_is_positive_when_a_is_higher():
    low, high = [1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0, 9.0]
    two_sided = stats.mannwhitneyu(low, high, alternative="two-sided").pvalue
    [below] = pairwise_mannwhitney({"a": low, "b": high})
    [above] = pairwise_mannwhitney({"a": high, "b": low})
    assert below["p"] == pytest.approx(two_sided) and above["p"] == pytest.approx(two_sided)
    assert below["p_holm"] == pytest.approx(two_sided)  # one pair: Holm leaves it
    # docs/audit_schema.md: "rank-biserial > 0 when `a` tends higher": a wholly below b is −1, wholly above +1
    assert below["rank_biserial"] == -1.0 and above["rank_biserial"] == 1.0
    # interleaved: a = 1 3 5 7 beats b = 2 4 6 8 10 in 0 + 1 + 2 + 3 = 6 of the 20 pairs: 2·6/20 − 1 = −0.4
    [mixed] = pairwise_mannwhitney({"a": [1.0, 3.0, 5.0, 7.0], "b": [2.0, 4.0, 6.0, 8.0, 10.0]})
    assert mixed["rank_biserial"] == pytest.approx(-0.4) and mixed["U"] == 6.0


def test_kruskal_epsilon_squared_is_h_over_n_minus_1():
    groups = {"x": [1.0, 2.5, 3.0, 4.0], "y": [2.0, 5.0, 6.0, 7.5, 8.0], "z": [9.0, 10.0, 4.5]}
    h = stats.kruskal(*groups.values()).statistic
    k = kruskal_test(groups)
    assert k["statistic"] == pytest.approx(h) and k["p"] == pytest.approx(stats.kruskal(*groups.values()).pvalue)
    assert k["epsilon_squared"] == pytest.approx(h / (12 - 1))  # n = 4 + 5 + 3


# --- 6. Monk shares (Δ MST = original − filtered, positive = lighter) and confident calls --------------------------

def test_monk_shares_count_one_step_or_more_each_way():
    # the sign convention at its source: original MST 6, filtered 4 (MST 1 is lightest) is 2 steps lighter: +2
    shift = compare_skin(SkinTone(True, 500, 60.0, 10.0, 15.0, 30.0, "tan", 6),
                         SkinTone(True, 500, 70.0, 8.0, 14.0, 50.0, "light", 4))
    assert shift.delta_mst == 2
    out = group_shift([_row(1.0, d_mst=m) for m in (1, 0, -1, 2)], [])
    # 1 and 2 are at least one step lighter: 2 of 4; −1 is one darker: 1 of 4
    assert (out["share_lighter_1_monk"]["value"], out["share_lighter_1_monk"]["n"]) == (0.5, 4)
    assert (out["share_darker_1_monk"]["value"], out["share_darker_1_monk"]["n"]) == (0.25, 4)


def test_a_confident_call_is_p_above_0_9_or_below_0_1():
    d = p_female_distribution([0.05, 0.5, 0.95, 0.6])
    assert d["share_confident"]["value"] == 0.5  # 0.05 and 0.95
    assert d["share_above_0_5"]["value"] == 0.5 and d["share_below_0_5"]["value"] == 0.25
    # strictly beyond, as the summary and the schema say it ("P > 0.9 or < 0.1")
    assert p_female_distribution([0.1, 0.9, 0.3])["share_confident"]["value"] == 0.0


# --- 7. the Monk tone is the nearest swatch by CIEDE2000 -----------------------------------------------------------

# The Monk Skin Tone scale's ten swatches (Monk 2019, skintone.google), lightest first
MONK_SCALE = ("f6ede4", "f3e7db", "f7ead0", "eadaba", "d7bd96", "a07e56", "825c43", "604134", "3a312a", "292420")


def test_the_monk_tone_is_the_nearest_swatch_by_ciede2000_where_cie76_picks_another():
    swatches = rgb2lab(np.array([[[int(h[i:i + 2], 16) / 255 for i in (0, 2, 4)] for h in MONK_SCALE]]))[0]
    L, a, b = np.meshgrid(np.arange(15.0, 96.0, 5.0), np.arange(-2.0, 31.0, 4.0), np.arange(0.0, 41.0, 4.0), indexing="ij")
    grid = np.stack([L.ravel(), a.ravel(), b.ravel()], axis=1)
    de2000 = deltaE_ciede2000(grid[:, None, :], swatches[None])
    two = np.sort(de2000, axis=1)[:, :2]
    clear = grid[two[:, 1] - two[:, 0] > 0.05]  # no near tie for nearest
    expected = np.argmin(deltaE_ciede2000(clear[:, None, :], swatches[None]), axis=1) + 1
    by_cie76 = np.argmin(deltaE_cie76(clear[:, None, :], swatches[None]), axis=1) + 1
    assert (expected != by_cie76).sum() >= 20  # the two metrics disagree on many colours (on some by several tones)
    assert np.array_equal(nearest_monks(clear), expected)
    apart = clear[expected != by_cie76]
    for lab, tone in zip(apart[:10], expected[expected != by_cie76][:10]):
        assert nearest_monk(lab) == tone
    # the swatches themselves are their own tones
    assert nearest_monks(swatches).tolist() == list(range(1, 11))


# --- 8. Δb* is filtered − original ---------------------------------------------------------------------------------

def test_delta_b_is_filtered_minus_original():
    assert _delta_b({"skin": _skin(10.0), "filtered_skin": _skin(14.0)}) == pytest.approx(4.0)
    assert _delta_b({"skin": _skin(10.0), "filtered_skin": {"measurable": False}}) is None
    # three faces: 10 → 14, 20 → 22, 5 → 3: +4, +2, −2, mean 4/3
    out = group_shift([_row(1.0, b=(10.0, 14.0)), _row(2.0, b=(20.0, 22.0)), _row(-1.0, b=(5.0, 3.0))], [])
    assert out["delta_b"]["mean"]["value"] == pytest.approx(4 / 3)


# --- 9. the skin mask's documented geometry ------------------------------------------------------------------------

def documented_mask(h: int, w: int) -> np.ndarray:
    """skin.py's geometry, in fractions of the crop at pixel centres: the face ellipse centred (0.5, 0.47) with radii
    (0.25, 0.33), less the eye band 0.21..0.45 of the height outside the nose bridge (|x − 0.5| ≤ 0.06) and the mouth
    box 0.63..0.82 of the height, |x − 0.5| < 0.17."""
    out = np.zeros((h, w), bool)
    for row in range(h):
        v = (row + 0.5) / h
        for col in range(w):
            u = (col + 0.5) / w
            inside = ((u - 0.5) / 0.25) ** 2 + ((v - 0.47) / 0.33) ** 2 <= 1.0
            eye_band = 0.21 <= v <= 0.45 and abs(u - 0.5) > 0.06
            mouth = 0.63 <= v <= 0.82 and abs(u - 0.5) < 0.17
            out[row, col] = inside and not eye_band and not mouth
    return out


@pytest.mark.parametrize("shape", [(112, 112), (128, 128), (96, 128)])
def test_the_skin_mask_is_the_documented_ellipse_less_the_eye_band_and_mouth_box(shape):
    h, w = shape
    mask = face_skin_mask(shape)
    assert mask.shape == shape and mask.dtype == bool
    assert np.array_equal(mask, documented_mask(h, w))
    v, u = (np.mgrid[0:h, 0:w] + 0.5) / np.array([h, w])[:, None, None]
    ellipse = ((u - 0.5) / 0.25) ** 2 + ((v - 0.47) / 0.33) ** 2 <= 1.0
    assert mask.any() and not (mask & ~ellipse).any()  # no mask pixel outside the ellipse
    assert np.array_equal(mask, mask[:, ::-1])  # symmetric about the vertical centre line


# --- 10. the tracker's missed frames; the batch-means interval ------------------------------------------------------

BOX = (100, 100, 80, 80)


def test_a_match_resets_a_tracks_missed_frames():
    t = IoUTracker(max_missed=10)
    ids = []
    for _ in range(15):  # 15 empty frames in all, never more than one in a row
        ids.append(t.update([Detection(BOX)])[0][0])
        t.update([])
    assert ids == [1] * 15


def test_a_track_survives_exactly_max_missed_empty_frames():
    # "a track survives max_missed frames without a detection"
    kept = IoUTracker(max_missed=10)
    assert kept.update([Detection(BOX)])[0][0] == 1
    for _ in range(10):
        kept.update([])
    assert kept.update([Detection(BOX)])[0][0] == 1
    lost = IoUTracker(max_missed=10)
    lost.update([Detection(BOX)])
    for _ in range(11):
        lost.update([])
    assert lost.update([Detection(BOX)])[0][0] == 2


def test_series_mean_ci_is_the_t_interval_of_the_batch_means():
    values = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2, 3, 8, 4, 6, 2, 6, 4, 3, 3, 8], float)
    # 27 frames: ∛27 = 3 runs of 9; their means 36/9, 49/9, 44/9 (3+1+4+1+5+9+2+6+5, 3+5+8+9+7+9+3+2+3, 8+4+6+2+6+4+3+3+8)
    means = [values[0:9].mean(), values[9:18].mean(), values[18:27].mean()]
    assert means == [pytest.approx(36 / 9), pytest.approx(49 / 9), pytest.approx(44 / 9)]
    sd = statistics.stdev(means)  # sample standard deviation (n − 1)
    lo, hi = stats.t.interval(0.95, 2, loc=values.mean(), scale=sd / math.sqrt(3))
    got = series_mean_ci(values)
    assert got["batches"] == 3 and got["n"] == 27 and got["value"] == pytest.approx(values.mean())
    assert (got["lo"], got["hi"]) == (pytest.approx(lo), pytest.approx(hi))


# --- 11. P(female) is read at the card's "female" label, whatever its place ----------------------------------------

def test_p_female_is_the_probability_at_the_female_label():
    assert Prediction("m", ("female", "male"), np.array([1.0, 0.0])).p_female == 1.0
    assert Prediction("m", ("male", "female"), np.array([1.0, 0.0])).p_female == 0.0
    # read at the "female" label wherever it is (Classifier.require_gender lets the measures host female and male alone)
    assert Prediction("m", ("male", "other", "female"), np.array([0.1, 0.2, 0.7])).p_female == 0.7
    assert np.isnan(Prediction("m", ("smile", "neutral"), np.array([0.4, 0.6])).p_female)


def test_p_female_follows_the_cards_label_order_through_an_onnx_classifier(tmp_path):
    import torch

    from inference.card import classifier_card
    from inference.models import load_model
    from inference.pipeline import FramePipeline, PipelineConfig
    from training.export import export

    class FemaleFirstSure(torch.nn.Module):  # probabilities [1, 0] for every face: all on the first label
        def forward(self, image):
            zero = image.float().mean(dim=(1, 2, 3)) * 0
            return torch.stack([zero + 1, zero], dim=1), zero[:, None, None, None].expand(-1, 2, 4, 4) + 1

    card = classifier_card("female-first", 32, ["female", "male"], (4, 4), "constant (test)", {"dataset": "none"}, {})
    path = tmp_path / "female_first.onnx"
    export(FemaleFirstSure(), [torch.zeros(2, 32, 32, 3, dtype=torch.uint8)], ["image"], ["probs", "cam"], path, card)
    model = load_model(path)
    assert model.labels == ("female", "male")
    image = tmp_path / "face.png"
    cv2.imwrite(str(image), np.full((40, 40, 3), 120, np.uint8))
    [(_, result, error)] = list(FramePipeline([model], None, None, PipelineConfig(track=False)).process_images([image]))
    assert error is None
    out = result.faces[0].original.classifiers[model.name]
    assert out.p_female == 1.0 and out.predicted == "female"
