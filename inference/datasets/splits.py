"""Deterministic splits and label filters.

A dataset with its own partition keeps it. Otherwise a file's split is a
stable hash of its file name, so adding files never moves an existing file
between train and test.
"""
from __future__ import annotations

import hashlib
import os
from typing import Collection, Iterable

from .sample import Sample, nfc

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
    """Samples of one split, filtered by age; ``labelled`` keeps only those with gender."""
    out = []
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
