"""Statistics for paired shifts and group comparisons. Deterministic: no interval resamples, and the permutation
tests either enumerate every permutation or use a fixed seed.

Why our own helpers instead of fairlearn's ``MetricFrame``: the audit runs in
the light runtime (no pandas or scikit-learn), and proportions get modified Wilson
score intervals (``inference.metrics``), which stay sensible for the small
groups an audit cares most about. Means of values in [0, 1] or [−1, 1] (P(female), ΔP(female), CAM focus) get the
betting interval (``inference.bounded_mean``), whose coverage holds whatever their distribution; means of ITA, L*
and their shifts Student's t at every n; medians the distribution-free order-statistic interval.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from ..metrics import BOUNDED_MEAN_INTERVAL, PROPORTION_INTERVAL, bounded_mean_ci, mean_ci

SEED = 20240601
CONFIDENCE = 0.95
# The audit's significance level: every significance word of the summary, and which tests a Holm family holds
# (``holm_family``), read against this one level. It had lived in summary.py; it is here so that stats, which summary
# imports, does not import summary back.
ALPHA = 0.05
# The ranges a quantity cannot leave, for ``mean_or_median_ci``'s ``bounds``: a t interval knows nothing of them (the
# mean ITA of three faces read [-192.9, 250.3]). ITA° = arctan((L* − 50) / b*) with b* > 0 (inference/skin.py).
ITA_RANGE = (-90.0, 90.0)
L_RANGE = (0.0, 100.0)
UNIT_RANGE = (0.0, 1.0)  # P(female), CAM focus shares

# From this many faces a ΔP(female) mean with spread gets Student's t again: the betting interval's guarantee costs
# the gate its power there (a group of 100 faces whose mean ΔP(female) is −0.05 was shown beyond ±0.02 1-3 % of the
# time, t 91-97 %), while t's own error has shrunk (a group whose mean lies on +0.02 called beyond 5-6 % of the time
# at 100-200 faces, against 16-27 % at 3-10). P(female) and CAM focus, described and not gated, keep the betting
# interval at every n; equal values keep it too (no spread is no evidence of a narrow mean).
DELTA_P_T_FROM = 100
DELTA_P_T_MIN_APART = 10  # and where at least this many faces' shifts differ from the most common one
# Each kind of interval object's method, as report.json's audit.statistics.intervals names it: an interval object
# carries none of its own, and a reader of the file alone could not tell a modified Wilson interval from an exact one.
INTERVAL_METHODS = {
    "proportions": PROPORTION_INTERVAL,
    "share_made_unmeasurable": "95% Clopper-Pearson, the exact binomial interval (scipy.stats.binomtest)",
    "means": "95% Student's t, cut to the range the values cannot leave: means of ITA, L* and their shifts (ΔITA, "
             f"ΔL*, Δb*), and of ΔP(female) over {DELTA_P_T_FROM} faces or more, {DELTA_P_T_MIN_APART} of them or more apart from "
             "the most common shift; none below 3 "
             "values",
    "bounded_means": BOUNDED_MEAN_INTERVAL + ": means of P(female) and CAM focus, and of ΔP(female) over fewer than "
                     f"{DELTA_P_T_FROM} faces or fewer than {DELTA_P_T_MIN_APART} apart from the most common shift; none below 3 "
                     "values (2 for metrics' mean_p_female)",
    "medians": "95% distribution-free interval between two order statistics (scipy.stats.quantile_test); none below "
               "6 values",
}
# The ``method`` of each test object: which variant of the test gave its p. "none" where no test was run (no non-zero
# shift, fewer than two groups with data, values all identical), its p then 1 or null as the object says.
NO_TEST = "none"
WILCOXON_EXACT = "Wilcoxon signed-rank, exact"
WILCOXON_NORMAL = "Wilcoxon signed-rank, normal approximation (tie-corrected)"
MANN_WHITNEY = {"exact": "Mann–Whitney U, exact",
                "permutation": "Mann–Whitney U, exact permutation (ties kept)",
                "asymptotic": "Mann–Whitney U, normal approximation (tie- and continuity-corrected)"}
KRUSKAL = "Kruskal–Wallis H, chi-squared approximation (tie-corrected)"
MCNEMAR = "McNemar, exact (binomial on the discordant faces)"


def difference_range(bounds: tuple[float, float]) -> tuple[float, float]:
    """The range of after − before for two values each within ``bounds`` (ΔITA: ±180°, ΔL*: ±100, ΔP: ±1)."""
    lo, hi = bounds
    return lo - hi, hi - lo


# The ranges whose means get the betting interval (``mean_or_median_ci``): probabilities and shares (P(female), CAM
# focus) and their differences (ΔP(female)), whose values spread over the range, a few faces at its far ends. ITA, L*
# and their shifts keep Student's t, which covers them (ΔITA: 0.95-0.96 from 3 to 100 faces of the shipped filter's
# shifts): a face may lie anywhere in ±180°, and an interval that must allow for it was 3.0-5.1 times t's width on
# 100 to 30 faces' ΔITA, ΔL* 4.6-7.2 (1.4 and 1.6 times on all 1,538).
BETTING_RANGES = (UNIT_RANGE, difference_range(UNIT_RANGE))


def _gets_betting_interval(v: np.ndarray, bounds: tuple[float, float]) -> bool:
    """Whether a mean of ``v`` in ``bounds`` gets the betting interval (``BETTING_RANGES``, ``DELTA_P_T_FROM``)."""
    if bounds not in BETTING_RANGES:
        return False
    if bounds == UNIT_RANGE or len(v) < DELTA_P_T_FROM:
        return True
    # few faces apart from the rest: the rare far flips t misses. Judged on exact equality alone, 150 shifts of 0.0
    # were unsettled at ±0.02 while 149 of 0.0 and one of −0.3 had t's [−0.006, 0.002], within (a last read)
    _, counts = np.unique(v, return_counts=True)
    return len(v) - int(counts.max()) < DELTA_P_T_MIN_APART


def _clean(values) -> np.ndarray:
    v = np.asarray([x for x in values if x is not None], float)
    return v[np.isfinite(v)]


def mean_or_median_ci(values, statistic: str = "mean", bounds: tuple[float, float] | None = None) -> dict:
    """Point value and 95% CI of the mean or median. A mean of values in one of ``BETTING_RANGES``: the betting
    interval (``metrics.bounded_mean_ci``), but for ΔP(female) over ``DELTA_P_T_FROM`` faces or more of which at least
    ``DELTA_P_T_MIN_APART`` differ from the most common shift (``_gets_betting_interval``);
    any other mean: Student's t, cut to ``bounds`` where the values cannot leave them. A median: the order-statistic
    interval (``median_ci``).

    Why the betting interval for ΔP(female): most faces' shifts sit near 0 and a few fall far (a flip), so a small
    group's faces usually miss the rare far ones and their t interval lies above the true mean, and narrow. Holding
    groups drawn from the shipped filter's real per-face shifts (1,630 UTKFace test adults; 2,000 draws a cell) to the
    gate at ±0.02 with their true mean on a bound, t called them "beyond" where the mean lay on +0.02 16-27 % of the
    time at 3-10 faces, 10-14 % at 30-50 and 5-6 % at 100-200 (the gender-balanced classifier 11-16 %, 8-11 %, 5-7 %),
    and where it lay on −0.02 0-1.3 %; on a mixture of 90 % N(0, 0.01) and 10 % N(−0.2, 0.1) 34-55 % at 3-10 faces, 13 %
    at 30 and 6 % at 100 (−0.02: at most 0.9 %). It covered the mean ΔP(female) 0.73-0.89 of the time at 3-30 faces, and
    three equal shifts (ΔP = 0.0 where a float32 sigmoid saturates at 1.0 before and after) had an interval of one
    point, "within" any tolerance. The betting interval called "beyond" in none of those draws, on either side, and
    covered the mean 0.99-1.00 of the time from 3 to 100 faces; the price is width where faces are few: on the real
    shifts 2.7 times t's at 100 faces, 4.6 at 30, 1.45 on all 1,630 ([−0.0196, −0.0076] for t's [−0.0174, −0.0091]), and
    no group of fewer than 211 faces can be shown within ±0.02 by it, even with every shift 0 (none of fewer than 149
    could by any interval whose 95 % holds for every distribution of shifts in [−1, 1]: 0.98^148 > 0.05). So from
    ``DELTA_P_T_FROM`` faces with enough spread t is back, which shows a −0.05 shift on 100 faces beyond 91-97 % of the
    time (the betting interval 1-3 %). ΔITA keeps t: "beyond"
    1.5-3.4 % of the time with its mean on ±2° (3-200 faces, either side), its coverage 0.95-0.96 from 3 to 100.

    Why not a bootstrap: on the audit's heavy-tailed shifts BCa covered the mean less than it said, the more so the
    fewer the faces (the mean ΔITA 0.916 of the time at 30 faces, t 0.965; the mean ΔP(female) 0.802 at 30), and a
    bootstrap over a handful of values cannot reach past their extremes (it covered the mean 74 % of the time at
    n = 3). A 30th face equal to a group's mean had turned PASSED into FAILED where the interval switched from t to
    BCa at 30 values."""
    v = _clean(values)
    n = len(v)
    if n == 0:
        return {"value": None, "lo": None, "hi": None, "n": 0}
    point = float(np.mean(v) if statistic == "mean" else np.median(v))
    if n < 3:  # one or two values say nothing about where the mean lies, even if they are equal
        return {"value": point, "lo": None, "hi": None, "n": n}
    if statistic == "mean" and bounds is not None and _gets_betting_interval(v, tuple(bounds)):
        # equal values too: three ΔP(female) of 0.0 say little of a mean that one far face in ten would move
        return bounded_mean_ci(v, bounds, CONFIDENCE)
    if np.all(v == v[0]):  # no spread: the identity filter's zero shifts
        return {"value": point, "lo": point, "hi": point, "n": n}
    if statistic == "median":
        return median_ci(v)
    return mean_ci(v, CONFIDENCE, bounds)


def median_ci(v: np.ndarray) -> dict:
    """The median with its distribution-free 95% interval between two order statistics (``stats.quantile_test``):
    its coverage is at least 95 % whatever the values' distribution, ties included. No interval between order
    statistics reaches 95 % from fewer than 6 values (min..max covers 1 − 2·0.5^n: 75 % at n = 3), so there lo/hi
    are None. The bootstrap it replaces covered the median 75 % of the time at n = 3 and 91-95 % from 6 to 100
    values; this one 95-99 %, about 10 % wider (normal, log-normal and t₃ values, 1,000 draws each)."""
    point = float(np.median(v))
    ci = stats.quantile_test(v, q=point, p=0.5).confidence_interval(CONFIDENCE)
    lo, hi = float(ci.low), float(ci.high)
    if not (np.isfinite(lo) and np.isfinite(hi)):  # SciPy's nan: too few values for any such interval
        return {"value": point, "lo": None, "hi": None, "n": len(v)}
    return {"value": point, "lo": lo, "hi": hi, "n": len(v)}


def rank_biserial(d: np.ndarray) -> float | None:
    """Matched-pairs rank-biserial correlation: (W+ − W−)/(W+ + W−) over non-zero differences.

    +1: every face moved up (lighter / more female), −1: every face moved down, 0: balanced.
    """
    d = d[d != 0]
    if len(d) == 0:
        return None
    ranks = stats.rankdata(np.abs(d))
    wp, wm = ranks[d > 0].sum(), ranks[d < 0].sum()
    return float((wp - wm) / (wp + wm))


# Up to this many non-zero shifts, tied or not, the p-value is counted from the exact null of the signed-rank
# statistic (``sign_flip_p``: some 30 ms at 500, its cost growing as n³), which rejects at most 5 % of true nulls at
# α = 0.05 (every magnitude equal, n = 14 to 50: 1.3-4.9 %). SciPy's tie-corrected normal approximation, which tied
# shifts from 14 on had been given, rejected 5.7-7.8 % there (n = 14 to 31), and gave 4 identical shifts p = 0.0455,
# though no sign-flip test can go below 2/2^4 = 0.125. It stays above 500 shifts, where its worst case (every
# magnitude equal: a sign test) rejects at most 5.5 % of true nulls (n = 527), less the more shifts.
EXACT_UP_TO = 500


def wilcoxon_test(diffs) -> dict:
    """Paired Wilcoxon signed-rank test of differences (filtered − original) against 0, two-sided. Zeros are dropped
    (``zero_method="wilcox"``); ``statistic`` is the smaller of the positive and negative rank sums."""
    d = _clean(diffs)
    out = {"n": int(len(d)), "n_nonzero": int((d != 0).sum()), "statistic": None, "p": None, "method": NO_TEST,
           "rank_biserial": rank_biserial(d) if len(d) else None}
    if out["n_nonzero"] < 1:
        out["p"] = 1.0 if len(d) else None
        return out
    nz = d[d != 0]
    ranks = stats.rankdata(np.abs(nz))
    out["statistic"] = float(min(ranks[nz > 0].sum(), ranks[nz < 0].sum()))
    if len(nz) <= EXACT_UP_TO:
        out["p"], out["method"] = sign_flip_p(nz), WILCOXON_EXACT
    else:
        out["p"] = float(stats.wilcoxon(nz, alternative="two-sided", method="asymptotic").pvalue)
        out["method"] = WILCOXON_NORMAL
    return out


def sign_flip_p(nonzero: np.ndarray) -> float:
    """Two-sided p of the signed-rank statistic W+ (ranks of |x|, tied magnitudes sharing their mean rank, summed over
    the positive values) under its exact null, every assignment of signs to the magnitudes equally likely: twice the
    nearer tail, at most 1, as ``scipy.stats.permutation_test`` gives it enumerating all 2^n. Exact with ties;
    deterministic, no resampling."""
    doubled = np.rint(2 * stats.rankdata(np.abs(nonzero))).astype(np.int64)  # mean ranks are whole or halves
    observed = int(doubled[nonzero > 0].sum())
    nearer = min(observed, int(doubled.sum()) - observed)  # a symmetric null: P(2W+ ≥ w) = P(2W+ ≤ total − w)
    return min(1.0, 2 * float(doubled_rank_sum_null(doubled, nearer).sum()))


def doubled_rank_sum_null(doubled: np.ndarray, up_to: int) -> np.ndarray:
    """P(2W+ = s) for s = 0..``up_to`` when each doubled rank of ``doubled`` counts with probability 1/2, by dynamic
    programming: over one rank more, the distribution is the one without it, plus itself shifted by that rank,
    halved. Sums beyond ``up_to`` are never kept: only the lower tail is asked for."""
    dist = np.zeros(up_to + 1)
    dist[0] = 1.0
    reach = 0  # the largest sum the ranks so far can make, up to ``up_to``
    for r in doubled:
        reach = min(up_to, reach + int(r))
        if r <= reach:
            dist[r:reach + 1] = dist[r:reach + 1] + dist[:reach + 1 - r]
        dist[:reach + 1] *= 0.5
    return dist


def holm(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjustment (controls the family-wise error rate); None stays None.

    Sort the m p-values ascending; the k-th smallest (k = 0..m−1) is multiplied by
    (m − k); a running maximum keeps the adjusted values monotone; cap at 1.
    SciPy has Benjamini–Hochberg (``false_discovery_control``) but not Holm.
    """
    idx = [i for i, p in enumerate(pvalues) if p is not None and np.isfinite(p)]
    out: list[float | None] = [None] * len(pvalues)
    if not idx:
        return out
    p = np.array([pvalues[i] for i in idx], float)
    order = np.argsort(p, kind="stable")
    m = len(p)
    adj = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adj = np.minimum(adj, 1.0)
    for rank, j in enumerate(order):
        out[idx[j]] = float(adj[rank])
    return out


def exact_least_p(n_informative: int) -> float:
    """The least two-sided p a sign-flip test can give over ``n_informative`` pairs (the Wilcoxon signed-rank test's
    non-zero shifts, McNemar's discordant faces): 2/2ⁿ, every one of them the same way (tied magnitudes or not: only
    that pattern makes the smallest rank sum, or the binomial's extreme count), 1 where none."""
    return min(1.0, 2.0 ** (1 - n_informative)) if n_informative > 0 else 1.0


def wilcoxon_least_p(test: dict) -> float:
    """``exact_least_p`` of a ``wilcoxon_test``'s non-zero shifts. Past ``EXACT_UP_TO`` the p is the normal
    approximation's, whose least (|z| ≥ √n > 22, every magnitude tied) lies as far below α as 2/2ⁿ does: either way
    such a test can be rejected, which is all a Holm family asks of it."""
    return exact_least_p(test["n_nonzero"])


def holm_family(pvalues: Sequence[float | None], least: Sequence[float]) -> list[dict]:
    """Holm across the tests that can reach significance at ``ALPHA``: a test whose least attainable p (``least``,
    from what its null conditions on: the number of faces that moved, or of discordant faces) is not below ALPHA is
    left out of the family. Per test: ``p_holm`` (null where left out, as where there is no p), ``least_p``,
    ``holm_family`` (whether it is in) and ``holm_family_size`` (the m Holm multiplies by).

    Why the family-wise error stays at ALPHA (Tarone 1990's argument, its simplest form): a left-out test's p is at
    least its least p, so at least ALPHA, and it is never rejected at ALPHA whatever the family; and the family is
    chosen on what each null conditions on and not on the p's (under H0 the signs of a group's shifts are fair coins
    whatever their magnitudes, so how many moved says nothing of which way), so Holm over it keeps its own guarantee,
    given every group's magnitudes, and so without them. Tests that can never be rejected had counted in m all the
    same: 3 tiny groups of 8 held a real one to α/8 instead of α/5.

    Why not Tarone's full step (the smallest K with #{least p ≤ α/K} ≤ K), with Holm as Hommel & Krummenauer (1998)
    combine them: Tarone's K would also leave out tests whose least p lies in [α/K, α), which Holm's step-down can
    still reject once the smaller p's are, and Hommel & Krummenauer's closed test that keeps them tests every subset
    of the groups (2^m: a grouping of FairFace's age bins × a groups CSV has dozens). This rule keeps every test that
    could be rejected alone, and is the rule the summary's "too few faces to reach significance" words read."""
    inside = [p is not None and bool(np.isfinite(p)) and lo < ALPHA for p, lo in zip(pvalues, least)]
    adjusted = holm([p if keep else None for p, keep in zip(pvalues, inside)])
    size = sum(inside)
    return [{"p_holm": adj, "least_p": float(lo), "holm_family": keep, "holm_family_size": size}
            for adj, lo, keep in zip(adjusted, least, inside)]


def kruskal_test(groups: Mapping[str, Sequence[float]], min_n: int = 2) -> dict:
    """Kruskal–Wallis H test across groups (each with at least ``min_n`` values)."""
    data = {g: _clean(v) for g, v in groups.items()}
    data = {g: v for g, v in data.items() if len(v) >= min_n}
    out = {"groups": sorted(data), "statistic": None, "p": None, "method": NO_TEST, "epsilon_squared": None}
    if len(data) < 2:
        out["note"] = "fewer than two groups with data"
        return out
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.kruskal(*[data[g] for g in sorted(data)])
        if not np.isfinite(res.pvalue):
            raise ValueError("all values identical")
    except ValueError:
        out["note"] = "all values identical"
        out["p"] = 1.0
        return out
    n = sum(len(v) for v in data.values())
    out["statistic"], out["p"], out["method"] = float(res.statistic), float(res.pvalue), KRUSKAL
    out["epsilon_squared"] = float(res.statistic / (n - 1)) if n > 1 else None  # H/(n−1): effect size
    return out


# Tied values get the exact permutation null of U (``mann_whitney_permutation_p``) while the smaller group's count
# times the pooled count is at most this: the count's work grows as its square (some 20-30 ms at 5,000: 50 against 50,
# 8 against 617, 3 against 1,664). SciPy's normal approximation, which every tie had been given, read [0, 0, 0] against
# [1, 1, 1] p = 0.047, below the 2/C(6, 3) = 0.1 of the most extreme of its 20 equally likely splits; given the pooled
# values, it rejected a true null 10 % of the time there, 7.7-11.2 % with two values in groups of 6 to 30 against as
# many, 17.6 % where 3 faces meet 30 and two of the 33 hold the rarer value, and up to 8.6 % with four levels (the exact
# null: never above 5 %). Past the bound it stays: with the ties CAM focus has (a pair tied, ten shares of 1.0) it
# rejects 4.8-5.0 % of true nulls from 50 against 50 to 100 against 100 and 5 against 1,000; only values nearly all
# tied, 3 or 4 faces apart from the rest, take it to 12-14 % (50 against 50 to 20 against 400).
PERMUTATION_UP_TO = 5_000


def mann_whitney_method(a: np.ndarray, b: np.ndarray) -> str:
    """Which null gives the pair's p: without ties, SciPy's own choice for ``mannwhitneyu(method="auto")`` (SciPy
    1.17), the exact null where a group holds at most 8 values, else the normal approximation; with ties, which
    SciPy's exact null does not allow for, the exact permutation null counted here up to ``PERMUTATION_UP_TO``, the
    normal approximation past it. Chosen here so that the report can name it, and the name stays true whichever SciPy
    runs (its rule has changed between versions)."""
    n_small, n = min(len(a), len(b)), len(a) + len(b)
    if len(np.unique(np.concatenate([a, b]))) < n:
        return "permutation" if n_small * n <= PERMUTATION_UP_TO else "asymptotic"
    return "asymptotic" if n_small > 8 else "exact"


def mann_whitney_p(a: np.ndarray, b: np.ndarray, method: str) -> float:
    """Two-sided p of ``a`` against ``b`` under ``method`` (``mann_whitney_method``'s name). SciPy's ValueError (a
    group without values) is left to the caller."""
    if method == "permutation":
        return mann_whitney_permutation_p(a, b)
    return float(stats.mannwhitneyu(a, b, alternative="two-sided", method=method).pvalue)


def mann_whitney_permutation_p(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sided p of the rank sum (so of U) under its exact permutation null, every split of the pooled values into
    groups of these sizes equally likely, tied values sharing their mean rank: twice the nearer tail, at most 1, as
    ``scipy.stats.permutation_test`` gives it enumerating every split, and as ``sign_flip_p`` reads its own null.
    Without ties this is SciPy's exact p (whose null is symmetric, so that the nearer tail is the one it doubles); with
    them the null need not be symmetric, and doubling the nearer tail still rejects at most α of true nulls."""
    small, large = (a, b) if len(a) <= len(b) else (b, a)  # one group's rank sum fixes the other's: count the smaller
    doubled = np.rint(2 * stats.rankdata(np.concatenate([small, large]))).astype(np.int64)  # whole or halves
    observed = int(doubled[:len(small)].sum())
    null = split_rank_sum_null(doubled, len(small))
    return min(1.0, 2 * float(min(null[:observed + 1].sum(), null[observed:].sum())))


def split_rank_sum_null(doubled: np.ndarray, k: int) -> np.ndarray:
    """P(the doubled ranks of k values drawn without replacement from ``doubled`` sum to s), s = 0 up to the sum of
    the k largest, by dynamic programming: ``ways[j, s]`` counts the sets of j of the values so far summing to s, and
    one value more, of doubled rank r, adds to each j-set's count the (j − 1)-sets' at s − r. Counts, not
    probabilities, so that every step is one addition; divided by C(n, k) at the end (at most C(100, 50) ≈ 10²⁹ within
    ``PERMUTATION_UP_TO``, far inside a float's range)."""
    top = int(np.sort(doubled)[::-1][:k].sum())
    ways = np.zeros((k + 1, top + 1))
    ways[0, 0] = 1.0
    for r in doubled:
        # NumPy buffers the overlapping read, so each j-set's count is the one before this value came
        ways[1:, r:] += ways[:-1, :top + 1 - r]
    return ways[k] / math.comb(len(doubled), k)


def pairwise_mannwhitney(groups: Mapping[str, Sequence[float]], min_n: int = 2) -> list[dict]:
    """Two-sided Mann–Whitney U for every pair of groups, Holm-adjusted across the pairs."""
    data = {g: _clean(v) for g, v in groups.items()}
    names = sorted(g for g, v in data.items() if len(v) >= min_n)
    rows, least = [], []
    for a, b in itertools.combinations(names, 2):
        method = mann_whitney_method(data[a], data[b])
        try:
            # U is the same under every null; SciPy gives it, and refuses a group without values, at no count's cost
            u = float(stats.mannwhitneyu(data[a], data[b], alternative="two-sided", method="asymptotic").statistic)
            p, used = mann_whitney_p(data[a], data[b], method), MANN_WHITNEY[method]
            rbc = 1 - 2 * u / (len(data[a]) * len(data[b]))  # rank-biserial for independent samples
        except ValueError:
            u, p, used, rbc = None, None, NO_TEST, None
        rows.append({"a": a, "b": b, "n_a": int(len(data[a])), "n_b": int(len(data[b])), "U": u, "p": p,
                     "method": used, "rank_biserial": None if rbc is None else float(-rbc)})
        least.append(mann_whitney_least_p(data[a], data[b], method) if p is not None else 1.0)
    for row, fam in zip(rows, holm_family([r["p"] for r in rows], least)):
        row.update(fam)
    return rows


def mann_whitney_least_p(a: np.ndarray, b: np.ndarray, method: str) -> float:
    """The least two-sided p ``pairwise_mannwhitney``'s test (``method``) can give on these two groups' pooled
    values, which its null conditions on (any split of them equally likely): the p of the most extreme split, one
    group holding the smallest values, or the largest (ties kept as they are), by ``mann_whitney_p``, so of the very
    null that gives the pair's p. Every null here reads a rank sum by its tails (doubled, or |z|), and no split's
    nearer tail is thinner than the extreme sum's. 2 against 2 values cannot go below 1/3, so such a pair can never
    be rejected (``holm_family``)."""
    pooled = np.sort(np.concatenate([a, b]))
    splits = [(pooled[:len(a)], pooled[len(a):]), (pooled[len(pooled) - len(a):], pooled[:len(pooled) - len(a)])]
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            least = min(mann_whitney_p(x, y, method) for x, y in splits)
    except ValueError:
        return 1.0
    return least if np.isfinite(least) else 1.0  # every value tied: no split differs from another


def mcnemar_exact(a_correct: Sequence[bool], b_correct: Sequence[bool]) -> dict:
    """Exact McNemar test of two classifiers' accuracy on the same faces (two-sided).

    Only the faces exactly one of them gets right carry information: under equal
    accuracy each such face is equally likely to favour either, so ``only_a`` is
    Binomial(only_a + only_b, 1/2). Comparing two Wilson intervals instead would
    ignore that the faces are shared and miss most real differences.
    """
    a, b = np.asarray(a_correct, bool), np.asarray(b_correct, bool)
    only_a, only_b = int((a & ~b).sum()), int((~a & b).sum())
    n = len(a)
    acc_a, acc_b = (float(a.mean()), float(b.mean())) if n else (None, None)
    p = float(stats.binomtest(only_a, only_a + only_b, 0.5).pvalue) if only_a + only_b else 1.0
    return {"n": n, "accuracy_a": acc_a, "accuracy_b": acc_b,
            "difference": None if not n else acc_a - acc_b, "only_a": only_a, "only_b": only_b, "p": p,
            "method": MCNEMAR}


def share(flags: Sequence[bool]) -> dict:
    """Share of True with its modified Wilson 95% CI (``inference.metrics.modified_wilson``)."""
    from ..metrics import proportion

    f = [bool(x) for x in flags]
    return proportion(sum(f), len(f))


def exact_share(flags: Sequence[bool]) -> dict:
    """Share of True with its Clopper–Pearson (exact binomial, ``scipy.stats.binomtest``) 95% CI, for a share the
    ship gate fails on: its coverage is at least 95 % at every n and share, where the modified Wilson's of the other
    shares (``share``) dips to 0.909, and its lower bound at a count of one is the lower (1 of 3: 0.8 %, the modified
    Wilson 1.7 %; Wilson's own 6.1 % had called a group "shown beyond" 2 % on one face)."""
    f = [bool(x) for x in flags]
    k, n = sum(f), len(f)
    if not n:
        return {"value": None, "lo": None, "hi": None, "n": 0}
    ci = stats.binomtest(k, n).proportion_ci(confidence_level=CONFIDENCE, method="exact")
    return {"value": k / n, "lo": float(ci.low), "hi": float(ci.high), "n": n}
