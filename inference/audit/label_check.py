"""Labels that every audited classifier confidently contradicts: candidates for annotation errors.

A small group's accuracy can hinge on a handful of faces, and public face
datasets carry wrong labels (UTKFace's are in its file names). When all the
classifiers call a face the other gender with P ≥ ``threshold``, the label is a
suspect as much as the models. The audit lists those faces for a person to look
at and reports accuracy with and without them; it never drops them from the
headline numbers, and never decides which side is right.
"""
from __future__ import annotations

from typing import Sequence

from .classifier_audit import classifier_metrics, labelled_rows
from .stats import share

THRESHOLD = 0.9


def _contradiction(row: dict, names: Sequence[str], threshold: float) -> float | None:
    """The weakest of the classifiers' confidences against the label, if all reach ``threshold``."""
    against = []
    for n in names:
        p = row["clf"][n]["p"]
        if p is None:
            return None
        against.append(1.0 - p if row["gender"] == "female" else p)
    weakest = min(against)
    return weakest if weakest >= threshold else None


def contradicted_labels(rows: Sequence[dict], groupings: dict[str, list[str]], names: Sequence[str],
                        threshold: float = THRESHOLD, left_out: Sequence[str] = ()) -> dict | None:
    """Null without classifiers or labels; otherwise counts per group, the faces, and accuracy without them.

    ``left_out``: classifiers whose card's label order looks reversed (``classifier_audit.labels_look_reversed``).
    They judge no face: a reversed classifier calls nearly every face confidently the other gender, and had made 34
    of 36 correctly labelled faces "check those labels" alone, or beside a right classifier's doubt. Their P(female)
    is still listed, and their accuracy without the faces given. Null where only such classifiers are left."""
    labelled = labelled_rows(rows)
    judges = [n for n in names if n not in left_out]
    if not judges or not labelled:
        return None
    # only faces every judging classifier gave a P(female) can be checked: the rest had counted as "not
    # contradicted", a share of 0 % where a classifier gave none at all
    checked = [r for r in labelled if all(r["clf"][n]["p"] is not None for n in judges)]
    strength = {id(r): _contradiction(r, judges, threshold) for r in checked}
    flagged = {k for k, v in strength.items() if v is not None}
    by: dict[str, dict] = {}
    for grouping, labels in groupings.items():
        counts: dict[str, dict] = {}
        for r, g in zip(rows, labels):
            if id(r) in strength:
                c = counts.setdefault(g, {"n": 0, "contradicted": 0})
                c["n"] += 1
                c["contradicted"] += id(r) in flagged
        by[grouping] = counts
    keep = [i for i, r in enumerate(rows) if id(r) not in flagged]
    without = classifier_metrics([rows[i] for i in keep], {g: [labels[i] for i in keep] for g, labels in groupings.items()},
                                 names)
    faces = sorted((r for r in checked if id(r) in flagged), key=lambda r: (-strength[id(r)], r["file"]))
    return {
        "threshold": threshold,
        "rule": "every classifier not left out (left_out) gives the other gender P ≥ threshold",
        "left_out": [n for n in names if n in left_out],
        "n_labelled": len(labelled),
        "n_checked": len(checked),
        "share": share([id(r) in flagged for r in checked]),
        "by": by,
        "accuracy_without": {n: {"overall": m["overall"]["accuracy"],
                                 "by": {g: {k: v["accuracy"] for k, v in gm.items()} for g, gm in m["by"].items()}}
                             for n, m in without.items()},
        "faces": [{"file": r["file"], "face": r["face"], "gender": r["gender"], "race": r["race"], "age": r["age"],
                   "p_female": {n: r["clf"][n]["p"] for n in names}} for r in faces],
    }
