"""Disaggregated classification metrics with confidence intervals.

In the spirit of fairlearn's ``MetricFrame``: one set of metrics overall and
per group, for any number of grouping columns. Written here rather than
depending on fairlearn because the runtime stays light (no pandas or
scikit-learn in the app) and because proportions get modified Wilson score
intervals (``modified_wilson``), which behave well for the small groups these
audits care most about, where a percentile bootstrap collapses to a point, and
where a group expects less than one error (Wilson's own covered 84 % there).

The positive class is ``female`` (an annotation, not an identity): FPR is the
share of faces annotated male that are called female, FNR the reverse.
"""
from __future__ import annotations

import math
import re
import textwrap
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import numpy as np
from scipy import stats

from .bounded_mean import SHUFFLES, betting_interval

SMALL_GROUP = 30  # groups below this are flagged: their intervals are wide
UNKNOWN = "unknown"  # the group of a face the dataset gives no such label, in every table (as the audit names it)
# an age band's label, its lower bound captured: "3-9", "60+", "25", FairFace's "more than 70"
AGE_BAND_LABEL = re.compile(r"(?:more than )?(\d+)(?:\s*-\s*\d+|\+)?")


def group_order(label: str) -> tuple:
    """A group's place in every table (the sort key): age bands by their lower bound, then other labels as text.
    Sorted as text, FairFace's bands ran "0-2", "10-19", "20-29", "3-9", … with "more than 70" among them."""
    band = AGE_BAND_LABEL.fullmatch(label)
    return (0, int(band.group(1)), label) if band else (1, label)


def poisson_end_count(n: int) -> int:
    """Up to this many successes (or failures) in ``n`` trials the modified Wilson interval takes that side's bound
    from the Poisson approximation: Brown, Cai & DasGupta's x* (2001, "Interval estimation for a binomial
    proportion", §4.1.1), 2 up to 50 trials and 3 above."""
    return 2 if n <= 50 else 3


def modified_wilson(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """A proportion's interval: Wilson's score interval (``scipy.stats.binomtest``), except that the bound next to a
    count of successes (or failures) of 1 to ``poisson_end_count(n)`` is the one-sided Poisson bound (Brown, Cai &
    DasGupta's modified Wilson). Exactly 0 at no successes and 1 at n.

    Wilson's lower bound runs high where a group expects less than one error, and there its coverage fell to 84 %:
    0.838 at n = 43 and accuracy 0.996, as at n = 84 (0.998) and n = 164 (0.999), where the audit's groups sit
    (96-99 % accurate, 40-400 faces; FPR and FNR near 0 likewise). Exact binomial coverage of the 95 % interval over
    p in (0, 1), at every n from 10 to 500 (minimum just outside each interval's ends, average over a grid of p):
    this one's minimum 0.909 (n = 13, p = 0.77: a dip of Wilson's own between the ends), 0.916 from 40 trials and
    0.926 from 51 on, its average 0.950-0.959; Wilson's minimum 0.835-0.838 at every n; Jeffreys' 0.868-0.896 (the
    same dip); Clopper–Pearson's 0.950, but its average 0.957-0.984 (0.958-0.971 over 40-400 trials): wider than
    it needs to be. Below 10 trials this one's minimum is 0.875-0.949, Wilson's 0.793-0.835.
    """
    if n == 0:
        return float("nan"), float("nan")
    ci = stats.binomtest(successes, n).proportion_ci(confidence_level=confidence, method="wilson")
    # exactly 0 / 1 at the ends, as cards print them: computed, Wilson's bound had come out as 5.55e-17 (or 1 − 1e-16)
    lo = 0.0 if successes == 0 else float(ci.low)
    hi = 1.0 if successes == n else float(ci.high)
    ends = poisson_end_count(n)
    if 1 <= successes <= ends:
        lo = _poisson_lower(successes, 1 - confidence) / n
    if 1 <= n - successes <= ends:
        hi = 1 - _poisson_lower(n - successes, 1 - confidence) / n
    return lo, hi


def _poisson_lower(count: int, alpha: float) -> float:
    """The one-sided lower 1 − alpha bound of a Poisson mean of which ``count`` events were seen:
    ½ χ²(alpha; 2·count)."""
    return float(stats.chi2.ppf(alpha, 2 * count)) / 2


# what a card's metrics say of their proportions' intervals (metrics.proportion_interval): the cards shipped before
# 2026-12-07 held Wilson's plain interval without a word, and were amended (training/recard_intervals.py)
PROPORTION_INTERVAL = ("95% modified Wilson (Brown, Cai & DasGupta 2001): Wilson's score interval, its bound next to "
                       "1 to 2 successes or failures (3 above 50 cases) the one-sided Poisson bound "
                       "(inference.metrics.proportion)")


def proportion(successes: int, n: int) -> dict:
    lo, hi = modified_wilson(successes, n)
    return {"value": successes / n if n else float("nan"), "lo": lo, "hi": hi, "n": int(n)}


def mean_ci(values: np.ndarray, confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """Mean with a t interval, cut to ``bounds`` where the values cannot leave them (a mean ITA of three faces had
    read [-192.9, 250.3]). Probabilities and their differences get ``bounded_mean_ci`` instead."""
    values = np.asarray(values, float)
    n = len(values)
    if n == 0:
        return {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    m = float(values.mean())
    if n < 2:  # one value has no interval (it read [0.957, 0.957])
        return {"value": m, "lo": float("nan"), "hi": float("nan"), "n": n}
    if values.std() == 0:
        return {"value": m, "lo": m, "hi": m, "n": n}
    lo, hi = stats.t.interval(confidence, n - 1, loc=m, scale=stats.sem(values))
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"value": m, "lo": float(lo), "hi": float(hi), "n": n}


# what report.json says of ``bounded_mean_ci``'s intervals (audit.stats.INTERVAL_METHODS)
BOUNDED_MEAN_INTERVAL = ("95% betting interval (Waudby-Smith & Ramdas 2023: hedged capital, plug-in bets for a fixed "
                         f"n, averaged over {SHUFFLES} fixed shuffles; inference.bounded_mean), whose coverage holds "
                         "for any distribution within the range")


def bounded_mean_ci(values, bounds: tuple[float, float], confidence: float = 0.95) -> dict:
    """Mean of values that cannot leave ``bounds`` (P(female): [0, 1]), with the betting interval
    (``inference.bounded_mean``): its coverage holds whatever their distribution within ``bounds``, at every n. The t
    interval (``mean_ci``) it replaces for P(female) covered the mean of one gender's 2 to 30 faces 51-82 % of the
    time, 0.89-0.90 at 100 (the shipped classifier's UTKFace test adults: their values pile up at 0 or 1 with a few far
    off, which a handful of faces mostly misses), and gave equal values (two or three saturated P = 1.0) an interval
    of one point; this one covered it 0.999-1.000 of the time, 1.45-1.52 times t's width on one gender's 754 to 876
    faces. None below 2 values, as ``mean_ci``."""
    values = np.asarray(values, float)
    n = len(values)
    if n == 0:
        return {"value": float("nan"), "lo": float("nan"), "hi": float("nan"), "n": 0}
    m = float(values.mean())
    if n < 2 or not np.isfinite(m):  # one value has no interval; a value not finite has no mean
        return {"value": m, "lo": float("nan"), "hi": float("nan"), "n": n}
    lo, hi = betting_interval(values, bounds, confidence)
    return {"value": m, "lo": lo, "hi": hi, "n": n}


def series_mean_ci(values: np.ndarray, confidence: float = 0.95, bounds: tuple[float, float] | None = None) -> dict:
    """Mean of one face's values over consecutive frames, with a batch-means t interval: the series is cut into
    ∛n runs of consecutive frames (runs of n^⅔ frames) and the interval is the t interval of the runs' means,
    centred on the mean of all values. A camera's frames a moment apart show nearly the same face: a t interval
    that counts each frame as a new sample narrows with the frame rate and the seconds recorded, not with the
    evidence (on a stationary series correlated 0.95 frame to frame it covered the true mean a quarter of the time;
    these runs 72 %, 84 % and 95 % at 30, 300 and 3,000 frames, and 94-95 % on independent values).
    ``n`` is the frames; ``batches`` the runs the interval stands on. The interval is cut to ``bounds`` where the
    values cannot leave them (a face's ΔP(female) over two frames, −1.0 and −0.2, had read [−5.68, 4.48])."""
    values = np.asarray(values, float)
    n = len(values)
    if n < 3:  # too few values to cut: the plain interval (none for one value)
        return {**mean_ci(values, confidence, bounds), "batches": n}
    means = np.array([b.mean() for b in np.array_split(values, max(2, round(n ** (1 / 3))))])
    m = float(values.mean())
    spread = float(means.std(ddof=1))
    if spread == 0:
        return {"value": m, "lo": m, "hi": m, "n": n, "batches": len(means)}
    lo, hi = stats.t.interval(confidence, len(means) - 1, loc=m, scale=spread / math.sqrt(len(means)))
    if bounds is not None:
        lo, hi = max(lo, bounds[0]), min(hi, bounds[1])
    return {"value": m, "lo": float(lo), "hi": float(hi), "n": n, "batches": len(means)}


def binary_metrics(y_true: np.ndarray, y_pred: np.ndarray, p_pos: np.ndarray) -> dict:
    """accuracy, FPR, FNR (with modified Wilson CIs) and mean P(positive) (with the betting interval) for 0/1
    arrays."""
    y_true, y_pred = np.asarray(y_true, bool), np.asarray(y_pred, bool)
    neg, pos = ~y_true, y_true
    return {
        "n": int(len(y_true)),
        "accuracy": proportion(int((y_true == y_pred).sum()), len(y_true)),
        "fpr": proportion(int((y_pred & neg).sum()), int(neg.sum())),
        "fnr": proportion(int((~y_pred & pos).sum()), int(pos.sum())),
        "mean_p_female": bounded_mean_ci(p_pos, (0.0, 1.0)),
        "small": bool(len(y_true) < SMALL_GROUP),
    }


def tied_groups(by: dict, metric: str, chosen: str) -> tuple[list[str], int]:
    """The groups whose ``metric`` equals ``chosen``'s (in the tables' order, ``chosen`` among them), and how many
    groups have it measured: a card's gaps and the audit's summary name ties alike."""
    shown = {g: c[metric]["value"] for g, c in by.items() if c[metric]["n"] > 0}
    return sorted((g for g, v in shown.items() if v == shown[chosen]), key=group_order), len(shown)


@dataclass
class GroupedMetrics:
    """Metrics overall and per group for each grouping (e.g. gender×race, age band). ``no_faces``: per grouping,
    the groups known to exist (``disaggregate``'s ``every_group``) that have no face here, and so no row."""

    overall: dict
    by: dict[str, dict[str, dict]]
    no_faces: dict[str, list[str]] = field(default_factory=dict)

    def worst(self, grouping: str, metric: str = "accuracy") -> tuple[str, dict] | None:
        groups = {g: m for g, m in self.by.get(grouping, {}).items() if m["n"] > 0}
        if not groups:
            return None
        g = min(groups, key=lambda k: groups[k][metric]["value"])
        return g, groups[g]

    def _values(self, grouping: str, metric: str) -> dict[str, float]:
        return {g: m[metric]["value"] for g, m in self.by.get(grouping, {}).items() if m["n"] > 0}

    def gap(self, grouping: str, metric: str = "accuracy") -> dict:
        """Best and worst group by the point values, their difference and ratio. Chosen after looking, the gap is
        the largest of many chance differences and is never 0: ten groups of one true accuracy (96.5 %, at the UTKFace
        test adults' gender × race sizes) gave a median gap of 5.3 points. The audit tests it
        (``inference.audit.classifier_audit.accuracy_test``). Of groups tied, the first in the tables' order is
        named (``gap_record`` says which others tie with it)."""
        vals = self._values(grouping, metric)
        if not vals:
            return {}
        best, worst = max(vals, key=vals.get), min(vals, key=vals.get)
        ratio = vals[worst] / vals[best] if vals[best] else float("nan")
        return {"best": best, "worst": worst, "difference": vals[best] - vals[worst], "ratio_worst_best": ratio}

    def gap_record(self, grouping: str, metric: str = "accuracy") -> dict:
        """``gap`` as a card, metrics.json and `train evaluate --json` keep it, with what its two names leave out:
        each one's ``_n`` and ``_small`` (n < SMALL_GROUP), the groups tied with it (``_tied``: every group at its
        value, itself among them, where others are), and ``no_faces``, the groups known to exist that have no face
        here, where they are known. A "best" of 4 faces had been named alone where three other groups were at 100 %
        too, a "worst" of one face given no word of its size, and a group with no test face was in no line at all."""
        record = self.gap(grouping, metric)
        by = self.by.get(grouping, {})
        for end in ("best", "worst") if record else ():
            chosen = by[record[end]]
            record[f"{end}_n"], record[f"{end}_small"] = chosen[metric]["n"], chosen["small"]
            if len(ties := tied_groups(by, metric, record[end])[0]) > 1:
                record[f"{end}_tied"] = ties
        if grouping in self.no_faces:
            record["no_faces"] = self.no_faces[grouping]
        return record

    def to_dict(self) -> dict:
        out = {"overall": self.overall, "by": self.by, "gaps": {}}
        for grouping in self.by:
            out["gaps"][grouping] = self.gap_record(grouping)
        return out


def group_labels(labels: Iterable[str | None]) -> list[str]:
    """Each face's group as the tables name it: a face of no such label is in ``UNKNOWN``."""
    return [str(v) if v is not None else UNKNOWN for v in labels]


def disaggregate(
    y_true: Sequence[int], y_pred: Sequence[int], p_pos: Sequence[float], groupings: Mapping[str, Sequence[str | None]],
    every_group: Mapping[str, Iterable[str | None]] | None = None,
) -> GroupedMetrics:
    """Metrics overall and per group of each grouping. ``every_group``: per grouping, the groups known to exist (those
    of the whole dataset): those without a face here are recorded as ``no_faces``, not passed over unsaid."""
    y_true, y_pred, p_pos = np.asarray(y_true), np.asarray(y_pred), np.asarray(p_pos, float)
    by: dict[str, dict[str, dict]] = {}
    no_faces: dict[str, list[str]] = {}
    for name, labels in groupings.items():
        labels = np.asarray(group_labels(labels))
        by[name] = {}
        for g in sorted(set(labels.tolist()), key=group_order):
            m = labels == g
            by[name][g] = binary_metrics(y_true[m], y_pred[m], p_pos[m])
        if every_group is not None and name in every_group:
            no_faces[name] = sorted(set(group_labels(every_group[name])) - set(by[name]), key=group_order)
    return GroupedMetrics(binary_metrics(y_true, y_pred, p_pos), by, no_faces)


COLUMN = 34  # characters per model column of format_table
RATES_MEANING = ("FPR: share of faces annotated male called female; FNR: share annotated female called male "
                 "(female is the positive class; -: the group has no such faces)")


def wrap_name(name: str, width: int = COLUMN) -> list[str]:
    """``name`` over as many lines of at most ``width`` as it needs: broken at spaces, else after - _ . /, cut
    only where a run of characters has none. A column header had been cut to its first 30 characters."""
    lines = []
    for line in textwrap.wrap(name, width, break_long_words=False, break_on_hyphens=False) or [""]:
        while len(line) > width:
            cut = max((i + 1 for i, c in enumerate(line[:width]) if c in "-_./"), default=width)
            lines.append(line[:cut])
            line = line[cut:]
        lines.append(line)
    return lines


def format_table(results: Mapping[str, GroupedMetrics], grouping: str) -> str:
    """Models side by side: accuracy [95% CI] per group, n, and FPR/FNR (said under the table)."""
    names = list(results)
    groups = sorted({g for r in results.values() for g in r.by.get(grouping, {})}, key=group_order)
    headers = [wrap_name(n) for n in names]
    depth = max((len(h) for h in headers), default=1)
    headers = [[""] * (depth - len(h)) + h for h in headers]  # names end on the line above the column titles
    lines = [(f"{grouping:24s} {'n':>6s} " if i == depth - 1 else " " * 32)
             + " ".join(f"{h[i]:>{COLUMN}s}" for h in headers) for i in range(depth)]
    lines = [line.rstrip() for line in lines]
    lines.append(" " * 32 + " ".join(f"{'acc [95% CI]   FPR   FNR':>{COLUMN}s}" for _ in names))

    def rate(r: dict) -> str:  # "-" where the group has no negatives (FPR) or no positives (FNR)
        return "  -  " if r["n"] == 0 else f"{r['value']:.3f}"

    def cell(m: dict) -> str:
        a = m["accuracy"]
        return f"{a['value']:.3f} [{a['lo']:.3f},{a['hi']:.3f}] {rate(m['fpr'])} {rate(m['fnr'])}"

    for g in groups + ["(overall)"]:
        ms = [r.overall if g == "(overall)" else r.by[grouping].get(g) for r in results.values()]
        n = next((m["n"] for m in ms if m), 0)
        flag = "*" if n < SMALL_GROUP else " "
        lines.append(f"{g:24s} {n:6d}{flag}" + " ".join(f"{cell(m) if m else '-':>{COLUMN}s}" for m in ms))
    lines.append(RATES_MEANING)
    lines.append("* small group (n < %d): wide interval" % SMALL_GROUP)
    return "\n".join(lines)
