"""Deterministic splits and label filters.

A dataset with its own partition keeps it. Otherwise a file's split is a
stable hash of its file name, so adding files never moves an existing file
between train and test.
"""
from __future__ import annotations

import hashlib
import logging
import os
from collections import Counter
from typing import Collection, Iterable

from .sample import Sample, band_bounds, nfc

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


def hash_fraction(name: str) -> float:
    """The file name's place in [0, 1), the same for its NFC and NFD spellings (``nfc``)."""
    # by the name's bytes where they are not UTF-8 (a Latin-1 "caf\xe9.jpg" had stopped audit --split)
    digest = hashlib.sha1(nfc(os.path.basename(name)).encode("utf-8", "surrogateescape")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def split_of(sample: Sample, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    if sample.partition in SPLITS:
        return sample.partition
    u = hash_fraction(sample.path)
    if u < fractions[0]:
        return "train"
    if u < fractions[0] + fractions[1]:
        return "val"
    return "test"


def split_rule(samples: Iterable[Sample], with_copies: Collection[str] = frozenset()) -> str:
    """How ``split_of`` splits ``samples``, in words for a card. Each file counts once (a CycleGAN card counted a
    face listed in two domains twice), and the files at ``with_copies`` (paths), whose split is their copies'
    (``copies.merge_copies``), are said as such: UTKFace's were called "the dataset's own split labels", which it
    has none of."""
    unique = list({s.path: s for s in samples}.values())
    n = len(unique)
    copied = sum(s.path in with_copies for s in unique)
    with_own = [s for s in unique if s.partition in SPLITS and s.path not in with_copies]
    own, labels = len(with_own), _own_split(with_own)
    hashed = "a stable hash of file name, 80/10/10"
    if own == 0:
        rule = hashed
    elif own + copied == n:
        rule = labels
    else:
        rule = f"{labels} for {own} of {n} images, {hashed} for the rest"
    if copied:
        rule += (f", except {copied} of {n} images of a photograph stored more than once, each kept in one split with its copies "
                 "(the earliest any copy was in)")
    return rule


def _own_split(samples: Iterable[Sample]) -> str:
    """How the partitions of ``samples`` were made: as their reader says (``Sample.split_made``), else the
    dataset's own."""
    made = sorted({s.split_made for s in samples if s.split_made})
    return "; ".join(made) or "the dataset's own split labels"


def select(
    samples: Iterable[Sample],
    split: str | None = None,
    min_age: int | None = None,
    max_age: int | None = None,
    labelled: bool = False,
) -> list[Sample]:
    """Samples of one split, filtered by age; ``labelled`` keeps only those with gender. A face aged by its band
    (FairFace's) is as old as the band's youngest: a band the bar cuts through is left out whole, which the command
    says (``say_bands_cut``), not each select it makes."""
    out: list[Sample] = []
    for s in samples:
        if split is not None and split_of(s) != split:
            continue
        if min_age is not None and (s.age is None or s.age < min_age):
            continue
        if max_age is not None and (s.age is None or s.age > max_age):
            continue
        if labelled and s.gender is None:
            continue
        out.append(s)
    return out


def _cut_through(band: str | None, min_age: int) -> bool:
    """Whether ``band`` (a dataset's age bin) holds ages on both sides of the bar ``min_age``."""
    bounds = band_bounds(band) if band else None
    return bounds is not None and bounds[0] < min_age <= bounds[1]


def say_bands_cut(samples: Iterable[Sample], min_age: int | None) -> None:
    """A note that the age bar leaves out whole the age bands of ``samples`` (the faces of the split and labels a
    command takes, before the bar) it cuts through, and the bar it makes in effect: --min-age 18 drops FairFace's
    whole "10-19" band, its 18- and 19-year-olds with it, and had said nothing of it. Each command that bars by age
    calls it once: said by ``select`` and kept from repeats by a set for the whole process, it had been said to the
    first command of a process alone."""
    if min_age is None:
        return
    cut = Counter(s.age_bin for s in samples
                  if s.age is not None and s.age < min_age and _cut_through(s.age_bin, min_age))
    if not cut:
        return
    bands = sorted(cut, key=lambda b: band_bounds(b) or (0, 0))
    oldest = max(band_bounds(b)[1] for b in bands)  # type: ignore[index]
    if oldest == float("inf"):
        within, effect = f"{min_age} and over", "none of it passes"
    else:
        within, effect = f"{min_age} to {int(oldest)}", f"the bar is {int(oldest) + 1} in effect"
    log.info("note: this dataset gives ages as bands, and a face counts as its band's youngest age: the age bar of "
             "%d leaves out the whole %s band%s (%d face(s)), its faces of %s with it: %s", min_age,
             " and ".join(bands), "s" if len(bands) > 1 else "", sum(cut.values()), within, effect)
