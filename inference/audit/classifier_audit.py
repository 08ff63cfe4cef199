"""Labelled audit of classifiers: accuracy, FPR, FNR and mean P(female) per group, with Wilson CIs.

Uses ``inference.metrics.disaggregate`` rather than fairlearn's ``MetricFrame``:
the same idea (metrics overall and per group, several groupings), but without
pandas/scikit-learn in the runtime, and with Wilson score intervals for
proportions, which behave on the small groups (n < 30) where normal or
percentile-bootstrap intervals collapse or leave [0, 1]. The positive class is
``female``, the dataset's binary annotation, not anyone's identity.
"""
from __future__ import annotations

from typing import Sequence

from ..metrics import disaggregate
from .stats import bootstrap_ci, share

BINS = [round(i * 0.05, 2) for i in range(21)]


def labelled_rows(rows: Sequence[dict]) -> list[dict]:
    """Faces a label can be attached to: the image's largest (first) face, and only images with a gender."""
    return [r for r in rows if r["face"] == 0 and r["gender"] in ("male", "female")]


def classifier_metrics(rows: Sequence[dict], groupings: dict[str, list[str]], names: Sequence[str]) -> dict:
    """Per classifier: ``disaggregate(...).to_dict()`` (overall, by grouping → group, gaps)."""
    keep = [i for i, r in enumerate(rows) if r["face"] == 0 and r["gender"] in ("male", "female")]
    out = {}
    for n in names:
        idx = [i for i in keep if rows[i]["clf"][n]["p"] is not None]
        y_true = [int(rows[i]["gender"] == "female") for i in idx]
        y_pred = [int(rows[i]["clf"][n]["pred"] == "female") for i in idx]
        p = [rows[i]["clf"][n]["p"] for i in idx]
        gm = disaggregate(y_true, y_pred, p, {g: [labels[i] for i in idx] for g, labels in groupings.items()
                                              if g != "group"})
        d = gm.to_dict()
        for grouping in list(d["gaps"]):
            d["gaps"][grouping] = {m: gm.gap(grouping, m) for m in ("accuracy",)}
            d["gaps"][grouping].update(_error_gaps(gm.by[grouping]))
        out[n] = d
    return out


def _error_gaps(by: dict) -> dict:
    """Largest gap in FPR / FNR (higher is worse) with the ratio worst/best."""
    out = {}
    for m in ("fpr", "fnr"):
        vals = {g: v[m]["value"] for g, v in by.items() if v[m]["n"] > 0}
        if not vals:
            continue
        worst, best = max(vals, key=vals.get), min(vals, key=vals.get)
        out[m] = {"best": best, "worst": worst, "difference": vals[worst] - vals[best],
                  "ratio_worst_best": vals[worst] / vals[best] if vals[best] else None}
    return out


def p_female_distribution(ps: Sequence[float]) -> dict:
    """P(female) distribution: mean and median with bootstrap CIs, shares above/below 0.5, confident calls, histogram."""
    ps = [p for p in ps if p is not None]
    counts = [0] * (len(BINS) - 1)
    for p in ps:
        counts[min(int(p / 0.05), len(counts) - 1)] += 1
    return {
        "n": len(ps),
        "mean": bootstrap_ci(ps, "mean"),
        "median": bootstrap_ci(ps, "median"),
        "share_above_0_5": share([p > 0.5 for p in ps]),
        "share_below_0_5": share([p < 0.5 for p in ps]),
        "share_confident": share([p > 0.9 or p < 0.1 for p in ps]),
        "histogram": {"bins": BINS, "counts": counts},
    }
