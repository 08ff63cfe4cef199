"""The audit's statistics hold the coverage and error rates they claim where the audit's data sit.

A statistician's simulations found four faults: a mean's BCa bootstrap interval (from 30 values up) covered the mean
of heavy-tailed shifts 80-93 % of the time, and a 30th face equal to a group's mean turned the ship gate from PASSED
to FAILED; the accuracy gap between groups came with no test, though ten equally accurate groups give one of some 5
points; Wilson's interval covered 84 % where a group expects less than one error (40-400 faces at 96-99 %); and the
Wilcoxon p of four identical shifts was 0.0455, below the 0.125 that any sign-flip test can reach.
"""
from __future__ import annotations

import itertools

import numpy as np
import pytest
from scipy import stats

CONFIDENCE = 0.95
# The least exact coverage the proportion interval may have: the floor its choice was made by (the modified Wilson
# interval stays above it from 14 trials on; Wilson's fell to 0.84 where a group expects less than one error).
COVERAGE_FLOOR = 0.92


# --- proportions: exact binomial coverage where a group expects less than one error ---------------------------------

def exact_coverage(n: int, ps: np.ndarray) -> np.ndarray:
    """P(the interval of k successes in n holds p), summed exactly over k ~ Binomial(n, p), for each p of ``ps``."""
    from inference.metrics import proportion

    ks = np.arange(n + 1)
    bounds = np.array([(ci["lo"], ci["hi"]) for ci in (proportion(int(k), n) for k in ks)])
    inside = (bounds[None, :, 0] <= ps[:, None]) & (ps[:, None] <= bounds[None, :, 1])
    return (stats.binom.pmf(ks[None, :], n, ps[:, None]) * inside).sum(axis=1)


def less_than_one_error_expected(n: int) -> np.ndarray:
    """Accuracies at which n faces expect under one error: a grid, and every interval end just outside, where the
    coverage, which jumps at each end, is lowest."""
    from inference.metrics import proportion

    ends = np.array([(ci["lo"], ci["hi"]) for ci in (proportion(int(k), n) for k in range(n + 1))]).ravel()
    ps = np.concatenate([1 - np.linspace(0.001, 1, 400) / n, ends - 1e-10, ends + 1e-10])
    return ps[(ps > 1 - 1 / n) & (ps < 1)]


@pytest.mark.parametrize("n", [43, 84, 164])  # the audit's group sizes at which Wilson's coverage fell to 0.84
def test_a_groups_accuracy_interval_covers_where_it_expects_less_than_one_error(n):
    ps = less_than_one_error_expected(n)
    worst = exact_coverage(n, ps).min()
    assert worst >= COVERAGE_FLOOR, f"n = {n}: coverage {worst:.3f} at worst"
    # and an error rate near 0 (FPR, FNR) alike: the interval is symmetric in successes and failures
    assert exact_coverage(n, 1 - ps).min() == pytest.approx(worst)


def test_the_proportion_interval_is_wilsons_with_poisson_bounds_at_the_first_counts():
    """Brown, Cai & DasGupta's modified Wilson: Wilson's score interval from its formula, except next to 1 to x*
    successes (or failures), where the bound is the Poisson one: at 1 event, P(X ≥ 1) = 1 − e^(−λ) = α gives
    λ = −ln(1 − α)."""
    from inference.metrics import modified_wilson, poisson_end_count

    def wilson_by_formula(k: int, n: int) -> tuple[float, float]:
        z, p = stats.norm.ppf(0.5 + CONFIDENCE / 2), k / n
        centre, half = p + z * z / (2 * n), z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
        return (centre - half) / (1 + z * z / n), (centre + half) / (1 + z * z / n)

    one_event = -np.log(CONFIDENCE)
    for n in (7, 43, 84):
        x_star = poisson_end_count(n)
        assert modified_wilson(0, n)[0] == 0.0 and modified_wilson(n, n)[1] == 1.0
        assert modified_wilson(1, n)[0] == pytest.approx(one_event / n)
        assert modified_wilson(n - 1, n)[1] == pytest.approx(1 - one_event / n)
        k = x_star + 1  # past the Poisson counts on both sides: Wilson's own
        assert modified_wilson(k, n) == pytest.approx(wilson_by_formula(k, n))
        assert modified_wilson(1, n)[1] == pytest.approx(wilson_by_formula(1, n)[1])


# --- means: one kind of interval at every n (t for ΔITA, the betting interval for ΔP(female)): no jump at 30 faces --

# ΔP(female) of 29 faces of one group, drawn from the shipped filter's real per-face shifts (heavy-tailed: most
# near 0, a few near −0.4)
SHIFTS_29 = [0.0023, -0.0063, -0.0045, -0.3683, 0.0118, 0.0082, 0.0102, -0.0142, -0.0034, -0.0042, -0.0075, -0.0187,
             -0.0363, -0.0034, 0.0164, 0.0107, -0.2634, -0.044, -0.0013, -0.0021, 0.0082, 0.0099, -0.411, -0.0128,
             -0.0094, 0.0019, -0.0496, -0.3508, -0.0187]
TOLERANCE = 0.02


def shift_rows(shifts: list[float]) -> list[dict]:
    """Audit rows of faces whose skin did not move and whose P(female) moved by ``shifts``."""
    skin = {"measurable": True, "category": "tan", "L": 60.0, "b": 18.0}
    return [{"skin": skin, "filtered_skin": skin, "d_ita": 0.0, "d_l": 0.0, "d_mst": 0,
             "clf": {"clf": {"dp": d, "flip": False, "pred_f": "female", "pred_ref": "female"}}} for d in shifts]


def gate_passed(shifts: list[float]) -> bool | None:
    from inference.audit.filter_audit import filter_audit
    from inference.audit.gate import filter_gate

    rows = shift_rows(shifts)
    report = filter_audit(rows, {"gender_race": ["female/Others"] * len(rows)}, ["clf"], {})
    return filter_gate(report, None, TOLERANCE, labelled=True)["passed"]


def test_a_thirtieth_face_at_the_groups_mean_does_not_turn_the_gate_from_passed_to_failed():
    """BCa from 30 values had narrowed the interval past −0.02 where the t interval of 29 straddled it."""
    assert gate_passed(SHIFTS_29) is True
    assert gate_passed(SHIFTS_29 + [float(np.mean(SHIFTS_29))]) is True


@pytest.mark.parametrize("n", [29, 30, 100])
def test_a_mean_shift_has_one_kind_of_interval_whatever_the_number_of_faces(n):
    """ΔITA: Student's t; ΔP(female), which cannot leave [-1, 1]: the betting interval (inference.bounded_mean),
    whose coverage holds whatever the shifts' distribution (t's did not on their skew), below DELTA_P_T_FROM faces,
    and t from there (where the betting interval had cost the gate its power)."""
    from inference.audit.filter_audit import group_shift
    from inference.audit.stats import DELTA_P_T_FROM
    from inference.metrics import bounded_mean_ci

    shifts = list(np.random.default_rng(n).standard_t(3, n) / 20)  # heavy tails, as the real shifts have
    rows = [{**row, "d_ita": 40 * d} for row, d in zip(shift_rows(shifts), shifts)]
    out = group_shift(rows, ["clf"])
    got = out["classifiers"]["clf"]["delta_p_female"]["mean"]
    clipped = np.clip(shifts, -1, 1)
    if n < DELTA_P_T_FROM:
        want = bounded_mean_ci(clipped, (-1.0, 1.0), CONFIDENCE)
        want = want["lo"], want["hi"]
    else:
        want = stats.t.interval(CONFIDENCE, n - 1, loc=np.mean(clipped), scale=stats.sem(clipped))
    assert (got["lo"], got["hi"]) == (pytest.approx(want[0]), pytest.approx(want[1]))
    d_ita = 40 * np.array(shifts)
    lo, hi = stats.t.interval(CONFIDENCE, n - 1, loc=np.mean(d_ita), scale=stats.sem(d_ita))
    assert (out["delta_ita"]["mean"]["lo"], out["delta_ita"]["mean"]["hi"]) == (pytest.approx(lo), pytest.approx(hi))


# --- Wilcoxon: the exact sign-flip null where magnitudes tie --------------------------------------------------------

def sign_flip_p_by_enumeration(d: list[float]) -> float:
    """Two-sided p of W+ (ranks of |d|, ties averaged, summed over positives) over all 2^n sign assignments."""
    ranks = stats.rankdata(np.abs(d))
    observed = ranks[np.asarray(d) > 0].sum()
    null = np.array([ranks[np.array(signs)].sum() for signs in itertools.product([False, True], repeat=len(d))])
    return min(1.0, 2 * min(np.mean(null >= observed - 1e-9), np.mean(null <= observed + 1e-9)))


@pytest.mark.parametrize("n", [3, 4, 5, 6, 7])
def test_identical_shifts_get_no_smaller_p_than_a_sign_flip_test_can_give(n):
    from inference.audit.stats import wilcoxon_test

    smallest = 2 / 2 ** n  # all n signs alike, either way
    assert wilcoxon_test([0.5] * n)["p"] == pytest.approx(smallest)


def test_shifts_with_tied_magnitudes_get_the_exact_sign_flip_p_and_zeros_are_dropped():
    from inference.audit.stats import wilcoxon_test

    tied = [0.5, -0.5, 1.0, 1.0, 1.0, 0.5, 2.0, 0.5]
    got = wilcoxon_test(tied + [0.0, 0.0])
    assert got["p"] == pytest.approx(sign_flip_p_by_enumeration(tied))
    assert (got["n"], got["n_nonzero"]) == (len(tied) + 2, len(tied))
    assert got["statistic"] == stats.wilcoxon(tied, method="asymptotic").statistic  # the smaller rank sum, as before


def alike_magnitudes(n: int, up: int) -> list[float]:
    """n shifts of one magnitude, ``up`` of them positive: the signed-rank test of them is a sign test."""
    return [1.0] * up + [-1.0] * (n - up)


@pytest.mark.parametrize("n, up", [(14, 10), (16, 12), (21, 15), (31, 22)])
def test_shifts_of_one_magnitude_get_the_sign_tests_p_at_any_number(n, up):
    """From 14 tied shifts on, SciPy's normal approximation had given 12 of 16 up p = 0.0455, where the exact null
    gives 0.0768; with every magnitude equal, the exact null is the sign test's, Binomial(n, 1/2)."""
    from inference.audit.stats import wilcoxon_test

    assert wilcoxon_test(alike_magnitudes(n, up))["p"] == pytest.approx(stats.binomtest(up, n).pvalue)


def test_tied_shifts_past_thirteen_get_the_p_of_every_sign_pattern():
    from inference.audit.stats import wilcoxon_test

    rng = np.random.default_rng(14)
    for n in (14, 15, 16):
        tied = list(rng.integers(1, 4, n) * rng.choice([-0.5, 0.5], n))  # three magnitudes, either sign
        assert wilcoxon_test(tied)["p"] == pytest.approx(sign_flip_p_by_enumeration(tied)), tied


def test_tied_shifts_reject_a_true_null_no_more_often_than_alpha():
    """Every magnitude equal, each sign a fair coin: the approximation had rejected 5.7-7.8 % at 0.05 (n = 14-31)."""
    from inference.audit.stats import wilcoxon_test
    from inference.audit.summary import ALPHA

    for n in range(14, 51):
        rejected = [up for up in range(n + 1) if wilcoxon_test(alike_magnitudes(n, up))["p"] < ALPHA]
        assert stats.binom.pmf(rejected, n, 0.5).sum() <= ALPHA, n


def test_past_the_exact_count_the_normal_approximation_stands():
    from inference.audit.stats import EXACT_UP_TO, wilcoxon_test

    shifts = np.round(np.random.default_rng(1).normal(0.1, 1, 2 * EXACT_UP_TO), 1)
    tied = list(shifts[shifts != 0][:EXACT_UP_TO + 1])  # one non-zero shift more than the exact null is counted for
    assert wilcoxon_test(tied)["p"] == pytest.approx(stats.wilcoxon(tied, method="asymptotic").pvalue)


# --- the accuracy gap's test: do the groups differ at all? ----------------------------------------------------------

def accuracy_by_group(correct_of: dict[str, tuple[int, int]]) -> dict:
    """``binary_metrics`` per group of faces all annotated female, ``correct_of``: group → (faces, correct)."""
    from inference.metrics import disaggregate

    y_pred, groups = [], []
    for g, (n, k) in correct_of.items():
        y_pred += [1] * k + [0] * (n - k)
        groups += [g] * n
    return disaggregate([1] * len(y_pred), y_pred, [0.5] * len(y_pred), {"g": groups}).by["g"]


def test_accuracies_that_truly_differ_get_a_small_p_equal_ones_a_large_one():
    from inference.audit.classifier_audit import accuracy_test

    apart = {"A": (100, 50), "B": (100, 95)}
    got = accuracy_test(accuracy_by_group(apart))
    table = [[k, n - k] for n, k in apart.values()]
    expected = stats.chi2_contingency(table, correction=False)
    assert got["p"] == pytest.approx(expected.pvalue) and got["p"] < 0.001 and got["method"] == "asymptotic"
    assert got["dof"] == 1 and "χ²" in got["test"] and "correct, wrong" in got["test"]

    alike = accuracy_test(accuracy_by_group({"A": (50, 48), "B": (50, 48), "C": (50, 48)}))
    assert alike["statistic"] == 0.0 and alike["p"] == 1.0 and alike["dof"] == 2


def test_a_difference_among_few_errors_is_tested_by_permutation():
    """An expected count of errors below 5 (the audit's 96-99 % accurate groups) leaves χ²'s p-value to chance."""
    from inference.audit.classifier_audit import accuracy_test

    counts = {"A": (60, 60), "B": (60, 51)}  # 9 errors: 4.5 expected in each group
    got = accuracy_test(accuracy_by_group(counts))
    assert got["method"].startswith("permutation") and got["p"] < 0.01
    assert got == accuracy_test(accuracy_by_group(counts))  # a fixed seed: the same p every run


def test_an_accuracy_that_cannot_differ_says_why():
    from inference.audit.classifier_audit import accuracy_test

    perfect = accuracy_test(accuracy_by_group({"A": (10, 10), "B": (20, 20)}))
    assert perfect["p"] == 1.0 and perfect["note"] == "every face classified correctly"
    alone = accuracy_test(accuracy_by_group({"A": (10, 7)}))
    assert alone["p"] is None and alone["note"] == "fewer than two groups with faces"


def test_the_report_gives_each_classifiers_accuracy_test_beside_its_gap():
    from inference.audit import html, summary
    from inference.audit.classifier_audit import classifier_metrics

    def face(gender: str, right: bool) -> dict:
        called = gender if right else {"female": "male", "male": "female"}[gender]
        return {"face": 0, "gender": gender, "clf": {"m": {"p": 0.9 if called == "female" else 0.1, "pred": called}}}

    rows = [face("female", i % 4 > 0) for i in range(40)] + [face("male", True) for _ in range(40)]
    groups = {"g": ["a"] * 40 + ["b"] * 40}  # a: 30 of 40 right; b: 40 of 40
    metrics = classifier_metrics(rows, groups, ["m"])["m"]
    test = metrics["tests"]["g"]["accuracy"]
    assert test["groups"] == ["a", "b"] and test["p"] < 0.01

    report = {"classifiers": {"m": {"metrics": metrics, "p_female": {"overall": {"n": 80}}}},
              "groups": {"groupings": ["g"], "sizes": {"g": {"a": 40, "b": 40}}}, "images": {"n_faces": 80},
              "comparisons": None}
    parts: list[str] = []
    html._classifier_section(report, parts)
    gap_table = next(p for p in parts if "accuracy gap" in p)
    assert "test of equal accuracy in every group (χ²)" in gap_table
    assert html.esc(summary.accuracy_test_words(test)) in gap_table and "χ²" in summary.accuracy_test_words(test)


def test_the_summary_says_whether_accuracy_differs_beside_the_gap_it_picked():
    """The accuracy gap between the extreme groups is picked after looking and never 0: beside it the summary says
    whether the groups differ at all, and where they do not, that chance alone makes a gap."""
    from inference.audit.classifier_audit import classifier_metrics
    from inference.audit.summary import accuracy_differs_words

    def face(gender: str, right: bool) -> dict:
        called = gender if right else {"female": "male", "male": "female"}[gender]
        return {"face": 0, "gender": gender, "clf": {"m": {"p": 0.9 if called == "female" else 0.1, "pred": called}}}

    def words(wrong_a: int, wrong_b: int) -> str:
        rows = ([face("female", i >= wrong_a) for i in range(60)] + [face("male", i >= wrong_b) for i in range(60)])
        metrics = classifier_metrics(rows, {"g": ["a"] * 60 + ["b"] * 60}, ["m"])["m"]
        return accuracy_differs_words(metrics["tests"]["g"]["accuracy"])

    assert words(15, 0).startswith(" Accuracy differs between these groups (χ² p")
    alike = words(3, 2)  # 57 and 58 of 60: a gap of 1.7 points that chance makes
    assert alike.startswith(" Accuracy does not differ detectably") and "chance alone" in alike
    assert accuracy_differs_words(None) == "" and accuracy_differs_words({"p": None, "method": "none"}) == ""


def test_two_groups_accuracy_gap_is_not_called_the_largest_of_many():
    """Two groups have one difference: "the largest of many differences, picked after looking" is said of more."""
    from inference.audit.summary import accuracy_differs_words

    test = {"p": 0.5, "method": "asymptotic", "cramers_v": 0.01}
    two = accuracy_differs_words({**test, "groups": ["a", "b"]})
    many = accuracy_differs_words({**test, "groups": ["a", "b", "c"]})
    assert "chance alone makes a gap" in two and "largest of many" not in two and "picked after looking" not in two
    assert "the gap is the largest of many differences, picked after looking" in many


@pytest.mark.parametrize("side", [-1, 1])
def test_a_p_beside_alpha_is_printed_on_its_side_of_alpha(side):
    """0.0496 and 0.0504 had both printed "p = 0.050", beside "differs" and "does not differ detectably"."""
    from inference.audit.summary import ALPHA, accuracy_differs_words, pval, signif

    usual = len(pval(0.5).partition(".")[2])  # the digits of a p far from ALPHA
    p = ALPHA + side * 0.4 * 10 ** -usual  # rounds to ALPHA at the usual digits
    printed = float(pval(p).removeprefix("p = "))
    assert printed != ALPHA and (printed < ALPHA) == (p < ALPHA) == (signif(p) == "significant"), pval(p)
    words = accuracy_differs_words({"p": p, "method": "asymptotic", "cramers_v": 0.01, "groups": ["a", "b"]})
    assert pval(p) in words and words.startswith(" Accuracy differs" if p < ALPHA else " Accuracy does not differ")
    assert pval(ALPHA) == f"p = {ALPHA:.{usual}f}" and signif(ALPHA) == "not significant"


# --- the versions and the documentation the statistics rest on ------------------------------------------------------

def test_the_declared_scipy_has_the_permutation_test_the_accuracy_and_detection_tests_call():
    """detection.found_test passes chi2_contingency(method=PermutationMethod(rng=...)): SciPy's own docs say when each
    came (1.14 has no method there and names rng random_state), and pyproject.toml had allowed scipy>=1.11."""
    import inspect
    import re
    from pathlib import Path

    def version(text: str) -> tuple[int, ...]:
        return tuple(int(x) for x in text.split(".")[:2])

    doc = inspect.getdoc(stats.chi2_contingency)
    method_since = re.search(r"versionadded::\s*([\d.]+)", doc[doc.index("method : "):]).group(1)
    rng_since = re.search(r"versionchanged::\s*([\d.]+)\s.*?from\s+`random_state`\s+to\s+`rng`",
                          inspect.getdoc(stats.PermutationMethod), re.S).group(1)
    pyproject = (Path(__file__).resolve().parents[1] / "pyproject.toml").read_text(encoding="utf-8")
    floor = re.search(r'"scipy>=([\d.]+)', pyproject).group(1)
    assert version(floor) >= max(version(method_since), version(rng_since)), (floor, method_since, rng_since)


def test_the_schema_gives_the_gate_share_interval_s_reason_by_the_intervals_it_has():
    """docs/audit_schema.md had compared Clopper–Pearson with plain Wilson (6.1 % for 1 face of 3); the shares' own
    interval is the modified Wilson now."""
    import re
    from pathlib import Path

    from inference.audit.stats import exact_share
    from inference.metrics import proportion

    schema = (Path(__file__).resolve().parents[1] / "docs" / "audit_schema.md").read_text(encoding="utf-8")
    said = re.search(r"1 face of 3: ([\d.]+) %, the modified Wilson ([\d.]+) %", schema)
    assert said, "docs/audit_schema.md: share_made_unmeasurable's reason names no modified Wilson bound for 1 of 3"
    one_of_three = [True, False, False]
    assert float(said.group(1)) == round(100 * exact_share(one_of_three)["lo"], 1)
    assert float(said.group(2)) == round(100 * proportion(1, 3)["lo"], 1)
