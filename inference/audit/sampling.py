"""Which images an audit looks at: the split/age filter and the deterministic stratified ``--limit``."""
from __future__ import annotations

from collections import defaultdict
from typing import Sequence

from ..datasets import Sample
from ..datasets.splits import hash_fraction


def stratum(s: Sample) -> str:
    """The gender × race cell of a sample ("unlabelled" parts stay explicit, never guessed), and its group from a
    groups CSV: an unlabelled folder was one stratum, so --limit could leave out a group the report compares."""
    cell = f"{s.gender or 'unlabelled'}/{s.race or 'unlabelled'}"
    return f"{cell}/{s.group}" if s.group else cell


def stratified_limit(samples: Sequence[Sample], limit: int | None) -> list[Sample]:
    """At most ``limit`` samples, proportional over gender × race and group (largest remainder).

    Deterministic: within a cell, samples are taken in the order of a stable
    hash of their file name, so the same limit always picks the same faces and
    a larger limit picks a superset-in-spirit of a smaller one. Every
    non-empty cell keeps at least one face while the limit allows it.
    """
    samples = list(samples)
    if limit is None or limit >= len(samples):
        return sorted(samples, key=lambda s: s.path)
    cells: dict[str, list[Sample]] = defaultdict(list)
    for s in samples:
        cells[stratum(s)].append(s)
    for c in cells.values():
        c.sort(key=lambda s: (hash_fraction(s.path), s.path))
    total = len(samples)
    names = sorted(cells)
    exact = {c: limit * len(cells[c]) / total for c in names}
    take = {c: min(len(cells[c]), int(exact[c])) for c in names}
    if limit >= len(names):
        for c in names:
            take[c] = max(take[c], 1)
    left = limit - sum(take.values())
    for c in sorted(names, key=lambda c: (-(exact[c] - int(exact[c])), c)):
        if left <= 0:
            break
        if take[c] < len(cells[c]):
            take[c] += 1
            left -= 1
    while left < 0:  # the minimum of one per cell overshot: trim the largest cells
        c = max(names, key=lambda c: (take[c], c))
        take[c] -= 1
        left += 1
    return sorted((s for c in names for s in cells[c][: take[c]]), key=lambda s: s.path)
