"""Whose faces the detector finds: the share of images with a face found, per group, and whether it differs.

A face the detector misses is never classified, filtered or measured, so a detector that misses one group's
faces more than another's skews every per-face figure of the audit before any model has run (OpenCV's Haar
cascades miss Black faces most; docs/performance.md, "Face detectors"). The unit is the image: each image of a
labelled dataset shows one annotated person, and a groups CSV labels images, not faces.
"""
from __future__ import annotations

import warnings
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from .groups import is_small, split
from .stats import SEED, share

# Pearson's χ² p-value is an approximation that fails with small expected counts; below this the p-value
# comes from permuting the group labels instead (exact in distribution, slower: its cost grows with n).
MIN_EXPECTED = 5
PERMUTATIONS = 1999
# Why there is nothing to test: fewer than two groups; every image a face found; none
FOUND_NOTES = ("fewer than two groups with images", "every image had a face found", "no image had a face found")


def found_test(counts: Mapping[str, tuple[int, int]], notes: tuple[str, str, str] = FOUND_NOTES) -> dict:
    """Is "a face was found" independent of the group? ``counts``: group → (images, images with a face).

    Pearson's χ² test of the groups × {found, missed} table over groups with at least one image, with
    Cramér's V as its effect size (0: the same share everywhere; 1: the group decides). ``notes``: what the
    result's note says where there is nothing to test (``FOUND_NOTES``: fewer than two groups, all found, none).
    """
    fewer_groups, all_found, none_found = notes
    names = sorted(g for g, (n, _) in counts.items() if n > 0)
    out: dict = {"groups": names, "statistic": None, "dof": None, "p": None, "method": None, "cramers_v": None}
    if len(names) < 2:
        out["note"] = fewer_groups
        return out
    table = np.array([[counts[g][1], counts[g][0] - counts[g][1]] for g in names])
    if (table.sum(axis=0) == 0).any():  # nothing missed anywhere (or nothing found): no difference to test
        out.update(statistic=0.0, dof=len(names) - 1, p=1.0, method="none", cramers_v=0.0,
                   note=all_found if table[:, 1].sum() == 0 else none_found)
        return out
    expected = stats.contingency.expected_freq(table)
    small = bool((expected < MIN_EXPECTED).any())
    method = stats.PermutationMethod(n_resamples=PERMUTATIONS, rng=np.random.default_rng(SEED)) if small else None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.chi2_contingency(table, correction=False, method=method)
    out.update(statistic=float(res.statistic), dof=len(names) - 1, p=float(res.pvalue),
               method=f"permutation ({PERMUTATIONS} resamples)" if small else "asymptotic",
               cramers_v=float(stats.contingency.association(table, method="cramer")))
    return out


def detection_audit(images: Sequence[dict], groups: Mapping[str, Sequence[str]], detector: str) -> dict:
    """``images``: one record per image (``error``, ``n_faces``); ``groups``: grouping → one label per image.
    Unreadable images are left out: nothing was looked for in them."""
    keep = [i for i, im in enumerate(images) if im["error"] is None]
    readable = [images[i] for i in keep]
    out: dict = {"detector": detector, "n_images": len(readable), "n_found": sum(im["n_faces"] > 0 for im in readable),
                 "overall": share([im["n_faces"] > 0 for im in readable]), "by": {}, "tests": {}, "gaps": {}}
    for grouping, labels in groups.items():
        parts = split(readable, [labels[i] for i in keep])
        by = {}
        for g, ims in parts.items():
            found = [im["n_faces"] > 0 for im in ims]
            by[g] = {"n_images": len(ims), "n_found": sum(found), "share": share(found), "small": is_small(len(ims))}
        out["by"][grouping] = by
        out["tests"][grouping] = found_test({g: (d["n_images"], d["n_found"]) for g, d in by.items()})
        if len(by) > 1:
            out["gaps"][grouping] = share_gap({g: d["share"]["value"] for g, d in by.items()})
    return out


def share_gap(shares: Mapping[str, float]) -> dict:
    """The best and worst group of ``shares`` (in the groups' order) and the difference. Of groups tied, the first
    is named, as a classifier's accuracy gap names it (the summary names every group tied): the best had been the
    last by name, the worst the first."""
    best, worst = max(shares, key=shares.get), min(shares, key=shares.get)
    return {"best": best, "worst": worst, "difference": shares[best] - shares[worst]}
