"""Labelled audit of classifiers: accuracy, FPR, FNR and mean P(female) per group, with modified Wilson CIs, and
a test of whether accuracy differs between the groups at all.

Uses ``inference.metrics.disaggregate`` rather than fairlearn's ``MetricFrame``:
the same idea (metrics overall and per group, several groupings), but without
pandas/scikit-learn in the runtime, and with modified Wilson score intervals for
proportions, which behave on the small groups (n < 30) where normal or
percentile-bootstrap intervals collapse or leave [0, 1]. The positive class is
``female``, the dataset's binary annotation, not anyone's identity.
"""
from __future__ import annotations

import itertools
from typing import Mapping, Sequence

import numpy as np

from ..metrics import SMALL_GROUP, disaggregate, group_order
from .detection import found_test
from .stats import exact_least_p, holm_family, mcnemar_exact, mean_or_median_ci, share

BINS = [round(i * 0.05, 2) for i in range(21)]


def labelled_rows(rows: Sequence[dict]) -> list[dict]:
    """Faces a label can be attached to: the image's largest (first) face, and only images with a gender."""
    return [r for r in rows if r["face"] == 0 and r["gender"] in ("male", "female")]


def classifier_metrics(rows: Sequence[dict], groupings: dict[str, list[str]], names: Sequence[str]) -> dict:
    """Per classifier: ``disaggregate(...).to_dict()`` (overall, by grouping → group, gaps), for every grouping: the
    user's ``group`` had been left out, so ``--groups`` on a labelled dataset compared no classifier by those groups.
    ``tests``: grouping → ``{"accuracy": accuracy_test(...)}``, whether the gap could be chance."""
    keep = [i for i, r in enumerate(rows) if r["face"] == 0 and r["gender"] in ("male", "female")]
    out = {}
    for n in names:
        idx = [i for i in keep if rows[i]["clf"][n]["p"] is not None]
        y_true = [int(rows[i]["gender"] == "female") for i in idx]
        y_pred = [int(rows[i]["clf"][n]["pred"] == "female") for i in idx]
        p = [rows[i]["clf"][n]["p"] for i in idx]
        gm = disaggregate(y_true, y_pred, p, {g: [labels[i] for i in idx] for g, labels in groupings.items()})
        d = gm.to_dict()
        d["tests"] = {}
        for grouping in list(d["gaps"]):
            d["gaps"][grouping] = {m: gm.gap(grouping, m) for m in ("accuracy",)}
            d["gaps"][grouping].update(_error_gaps(gm.by[grouping]))
            d["tests"][grouping] = {"accuracy": accuracy_test(gm.by[grouping])}
        out[n] = d
    return out


GENDER_LABELS = frozenset({"male", "female"})


def labels_look_reversed(labels: Sequence[str] | None, overall: Mapping | None) -> bool | None:
    """Does a classifier's card probably list its labels in the reverse of its outputs? ``overall``: its
    ``metrics.overall`` (accuracy, FPR, FNR with their CIs).

    True where it is a two-label gender classifier (``labels`` male and female, in either order) whose overall
    accuracy's 95 % CI lies wholly below 0.5, below chance, which no classifier that learnt anything does, and which
    calls most faces of each annotated gender the other (FPR and FNR above 0.5): a card listing female, male over
    outputs in the order male, female does both (0 of 36 UTKFace faces right). Every P(female) it gives is then
    1 − its own, and its confident calls had been blamed on the dataset's labels. A merely poor classifier's CI
    reaches 0.5; one that calls every face female is below chance on a dataset of men, yet right on its women, so
    its FNR is low: neither is flagged. False where judged and not so; None where it cannot be judged: another kind
    of classifier, no CI, or labelled faces of one gender only (there a reversed card and a classifier that calls
    every face the other gender look the same)."""
    if labels is None or len(labels) != 2 or set(labels) != GENDER_LABELS or not overall:
        return None
    acc, fpr, fnr = (overall.get(k) or {} for k in ("accuracy", "fpr", "fnr"))
    values = [acc.get("hi"), fpr.get("value"), fnr.get("value")]
    if not (fpr.get("n") and fnr.get("n")) or not all(v is not None and np.isfinite(v) for v in values):
        return None
    return bool(acc["hi"] < 0.5 and fpr["value"] > 0.5 and fnr["value"] > 0.5)


ACCURACY_TEST = "Pearson's χ² test of homogeneity of accuracy: groups × {correct, wrong}"
# found_test's notes in the words of faces classified (its own speak of images with a face found)
ACCURACY_NOTES = ("fewer than two groups with faces", "every face classified correctly", "no face classified correctly")


def accuracy_test(by: Mapping[str, dict]) -> dict:
    """Do the groups' accuracies differ by more than chance? ``by``: group → ``binary_metrics``. The accuracy gap
    (best − worst group) is chosen after looking, so it is never 0: ten groups of one true accuracy (96.5 %, at the
    sizes of the UTKFace test adults' gender × race groups) gave a median gap of 5.3 points. This is the test the
    detection audit runs on found/missed (``found_test``: Pearson's χ², its p by permuting the group labels where an
    expected count is below 5, with Cramér's V), run on the groups × {correct, wrong} table; ``test`` names it."""
    counts = {g: (m["n"], round(m["accuracy"]["value"] * m["n"])) for g, m in by.items() if m["n"] > 0}  # k/n → k
    return {"test": ACCURACY_TEST, **found_test(counts, ACCURACY_NOTES)}


def paired_accuracy(correct: Mapping[str, Sequence[bool]], groupings: Mapping[str, Sequence[str]]) -> list[dict]:
    """Every pair of classifiers judged on the same faces: exact McNemar overall and per group.

    ``correct`` maps a classifier to whether it got each face right (one order of
    faces for all); ``groupings`` gives each face's group. Holm adjusts the p-values
    across the groups of one grouping, as everywhere in the audit.
    """
    names = list(correct)
    out = []
    for a, b in itertools.combinations(names, 2):
        ca, cb = np.asarray(correct[a], bool), np.asarray(correct[b], bool)
        entry = {"a": a, "b": b, "overall": {**mcnemar_exact(ca, cb), "small": len(ca) < SMALL_GROUP}, "by": {}}
        for grouping, labels in groupings.items():
            labels = np.asarray(labels, object)
            parts = {}
            for g in sorted(set(labels), key=group_order):
                idx = labels == g
                parts[g] = {**mcnemar_exact(ca[idx], cb[idx]), "small": int(idx.sum()) < SMALL_GROUP}
            # McNemar's exact test conditions on the discordant faces: 5 or fewer can never be rejected, and stay
            # out of the family (stats.holm_family)
            least = [exact_least_p(v["only_a"] + v["only_b"]) for v in parts.values()]
            for part, fam in zip(parts.values(), holm_family([v["p"] for v in parts.values()], least)):
                part.update(fam)
            entry["by"][grouping] = parts
        entry["overall"]["p_holm"] = entry["overall"]["p"]
        out.append(entry)
    return out


def classifier_comparisons(rows: Sequence[dict], groupings: dict[str, list[str]], names: Sequence[str]) -> list[dict]:
    """``paired_accuracy`` over the labelled faces every classifier gave a P(female) for."""
    keep = [i for i, r in enumerate(rows) if r["face"] == 0 and r["gender"] in ("male", "female")
            and all(r["clf"][n]["p"] is not None for n in names)]
    correct = {n: [rows[i]["clf"][n]["pred"] == rows[i]["gender"] for i in keep] for n in names}
    return paired_accuracy(correct, {g: [labels[i] for i in keep] for g, labels in groupings.items()})


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
    """P(female) distribution: mean and median with CIs, shares above/below 0.5, confident calls, histogram."""
    ps = [p for p in ps if p is not None]
    counts = [0] * (len(BINS) - 1)
    for p in ps:
        counts[min(int(p / 0.05), len(counts) - 1)] += 1
    return {
        "n": len(ps),
        "mean": mean_or_median_ci(ps, "mean", (0.0, 1.0)),
        "median": mean_or_median_ci(ps, "median"),
        "share_above_0_5": share([p > 0.5 for p in ps]),
        "share_below_0_5": share([p < 0.5 for p in ps]),
        "share_confident": share([p > 0.9 or p < 0.1 for p in ps]),
        "histogram": {"bins": BINS, "counts": counts},
    }
