"""Whose faces the detector finds: the share of images with a face found, per group, and whether it differs.

A face the detector misses is never classified, filtered or measured, so a detector that misses one group's
faces more than another's skews every per-face figure of the audit before any model has run (OpenCV's Haar
cascades miss Black faces most; docs/performance.md, "Face detectors"). The unit is the image: each image of a
labelled dataset shows one annotated person, and a groups CSV labels images, not faces.
"""
from __future__ import annotations

import itertools
import math
import warnings
from typing import Mapping, Sequence

import numpy as np
from scipy import stats

from .groups import is_small, split
from .stats import SEED, share

# Pearson's χ² p-value is an approximation that fails with small expected counts; below this the p-value
# comes from permuting the group labels instead (exact in distribution). The permuted tables are drawn directly
# (``null_tables``), not by shuffling one label per image: SciPy's PermutationMethod had held all 1999 shuffles of
# 21,336 images at once (1.7 GB and 31 s for one small group; a MemoryError under a 2 GB limit).
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
    if small:
        statistic, p = permutation_chi2(table)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = stats.chi2_contingency(table, correction=False)
        statistic, p = float(res.statistic), float(res.pvalue)
    out.update(statistic=statistic, dof=len(names) - 1, p=p,
               method=f"permutation ({PERMUTATIONS} resamples)" if small else "asymptotic",
               cramers_v=float(stats.contingency.association(table, method="cramer")))
    return out


def permutation_chi2(table: np.ndarray, resamples: int = PERMUTATIONS) -> tuple[float, float]:
    """Pearson's χ² of ``table`` (groups × outcomes) and its p-value from permuting the group labels, as SciPy's
    ``chi2_contingency(method=PermutationMethod(n_resamples=resamples, rng=default_rng(SEED)))`` defines it:
    (k + 1) / (resamples + 1), k of the permuted tables reaching the observed χ² and the observed table counted as
    one more; where the n images have no more orderings than ``resamples`` (n! ≤ resamples), k / n! over every
    ordering. The draws are not SciPy's, so a p-value differs from its within Monte-Carlo error."""
    table = np.asarray(table, np.int64)
    expected = stats.contingency.expected_freq(table)
    observed = _chi2(table, expected)
    n = int(table.sum())
    # n! of 200,000 images had taken 1.2 s to compute, for an answer that n > 12 gives at once
    exact = n <= 12 and math.factorial(n) <= resamples
    null = _chi2(_all_orderings(table) if exact else null_tables(table, resamples), expected)
    # SciPy's tolerance: a permuted χ² equal to the observed up to rounding counts as reaching it
    reached = int(np.count_nonzero(null >= observed - abs(observed) * np.finfo(float).eps * 100))
    p = reached / len(null) if exact else (reached + 1) / (resamples + 1)
    return observed, min(p, 1.0)


def null_tables(table: np.ndarray, resamples: int) -> np.ndarray:
    """``resamples`` tables with ``table``'s row and column sums, drawn as permuting the group labels of its images
    draws them (the multivariate hypergeometric law), seeded for a reproducible audit."""
    drawn = stats.random_table(table.sum(axis=1), table.sum(axis=0), seed=np.random.default_rng(SEED))
    return drawn.rvs(resamples)


def _all_orderings(table: np.ndarray) -> np.ndarray:
    """The table of every ordering of ``table``'s group labels against its outcomes (a few images only: n! of
    them), as SciPy's exact permutation test enumerates them."""
    rows = np.repeat(np.arange(table.shape[0]), table.sum(axis=1))
    cols = np.repeat(np.arange(table.shape[1]), table.sum(axis=0))
    out = np.zeros((math.factorial(len(rows)), *table.shape), np.int64)
    for k, order in enumerate(itertools.permutations(rows)):
        np.add.at(out[k], (np.array(order, np.int64), cols), 1)
    return out


def _chi2(tables: np.ndarray, expected: np.ndarray) -> np.ndarray | float:
    """Pearson's χ² of one table, or of each of a stack of them, against ``expected``."""
    terms = (tables - expected) ** 2 / expected
    return terms.sum(axis=(-2, -1)) if tables.ndim == 3 else float(terms.sum())


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
