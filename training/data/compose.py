"""Composition control: shape a training mix over groups and report what was achieved.

Modes:
- ``none``: the data as it is;
- ``balanced``: undersample every cell of ``by`` to the smallest cell (the
  research's "balanced" classifier is ``by=("gender",)``);
- ``target``: a mix over the cells (shares summing to 1); the largest sample
  that honours every share without oversampling is drawn.

A face without a value for an attribute of ``by`` is in no cell that can be balanced or aimed at: ``balanced`` and
``target`` leave it out of the mix, and the report counts it (its cell is shown as "no label"); ``none`` keeps it,
as it keeps every face.
"""
from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from inference.datasets import Sample
from inference.errors import BiasMirrorError


NO_LABEL = "no label"  # a cell's part for an attribute a face has no value of (it had read "None")


def cell_of(sample: Sample, by: Sequence[str], missing: str = NO_LABEL) -> str:
    """The face's cell over ``by`` ("female|Asian"), ``missing`` for an attribute it has no value of."""
    return "|".join(missing if getattr(sample, attr) is None else str(getattr(sample, attr)) for attr in by)


def has_every_label(sample: Sample, by: Sequence[str]) -> bool:
    return all(getattr(sample, attr) is not None for attr in by)


@dataclass
class Composition:
    by: list[str]
    mode: str
    available: dict[str, int]
    achieved: dict[str, int]
    target: dict[str, float] | None = None
    achieved_share: dict[str, float] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)  # cells of ``by`` with no sample, which a balanced mix lacks
    # Faces without a value for some attribute of ``by``, left out of a balanced or target mix: as a cell of their
    # own, one face with no race had cut a mix balanced over gender×race to one face a cell.
    left_out_no_label: int = 0

    def warning(self) -> str | None:
        """What the mix could not hold: faces without a label, and for a balanced mix the cells it lacks."""
        lines = [w for w in (self._no_label_warning(), self._empty_warning()) if w]
        return "\n".join(lines) or None

    def _empty_warning(self) -> str | None:
        """What an empty cell means for a balanced mix: it was balanced over the other cells only."""
        if self.mode != "balanced" or not self.empty:
            return None
        others = sum(NO_LABEL not in c.split("|") for c in self.achieved) - len(self.empty)
        return (f"warning: no training faces in {', '.join(self.empty)}: the mix cannot be balanced in "
                f"{'it' if len(self.empty) == 1 else 'them'}, only over the other {others} cell(s) of {'×'.join(self.by)}")

    def _no_label_warning(self) -> str | None:
        if not self.left_out_no_label:
            return None
        lacking = ", ".join(f"{n} without a {attr} label" for attr, n in self.no_label_counts().items())
        return (f"warning: {self.left_out_no_label} training face(s) left out of the {self.mode} mix for want of a "
                f"label ({lacking}): a mix over {'×'.join(self.by)} holds only faces labelled with each; label them, "
                "or compose over fewer attributes")

    def no_label_counts(self) -> dict[str, int]:
        """Faces available without a value, per attribute of ``by`` (a face lacking two counts in both)."""
        out: dict[str, int] = {}
        for cell, n in self.available.items():
            for attr, part in zip(self.by, cell.split("|")):
                if part == NO_LABEL and n:
                    out[attr] = out.get(attr, 0) + n
        return out

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        rows = [f"{'cell':28s} {'available':>9s} {'used':>7s} {'share':>7s} {'target':>7s}"]
        for cell in sorted(self.available):
            tgt = "" if not self.target else f"{self.target.get(cell, 0):7.3f}"
            rows.append(
                f"{cell:28s} {self.available[cell]:9d} {self.achieved.get(cell, 0):7d}"
                f" {self.achieved_share.get(cell, 0):7.3f} {tgt}"
            )
        return "\n".join(rows + [w for w in [self.warning()] if w])


def compose(
    samples: Sequence[Sample],
    by: Sequence[str] = ("gender",),
    mode: str = "none",
    target: dict[str, float] | None = None,
    seed: int = 0,
    min_per_cell: int = 1,
    values_from: Sequence[Sample] | None = None,
) -> tuple[list[int], Composition]:
    """Indices into ``samples`` forming the requested mix, and the composition report. ``values_from``: the samples
    whose labelled values make the cells (``samples`` where not given); given the whole dataset, a value no
    training face has is an empty cell too (race Others in the test split alone had gone unmentioned)."""
    if mode != "none":
        for attr in by:  # one "None" cell: a card saying "balanced by race" of a mix that nothing balanced
            if samples and all(getattr(s, attr) is None for s in samples):
                raise BiasMirrorError(f"cannot compose over {attr}: none of the {len(samples)} sample(s) has a "
                                      f"{attr} label; compose over what the dataset labels, or give it {attr} labels")
    cells: dict[str, list[int]] = {}
    for i, s in enumerate(samples):
        cells.setdefault(cell_of(s, by), []).append(i)
    available = {c: len(ix) for c, ix in cells.items()}
    # the cells a balanced or target mix is drawn from: faces with no value of an attribute are in none of them
    labelled = {c: len(ix) for c, ix in cells.items() if mode == "none" or has_every_label(samples[ix[0]], by)}
    unlabelled = [c for c in available if c not in labelled]
    if mode != "none" and samples and not labelled:
        raise BiasMirrorError(f"cannot compose over {'×'.join(by)}: none of the {len(samples)} sample(s) has a label "
                              f"for each; counts per cell: {available}")
    empty = empty_cells(samples, by, values_from) if mode == "balanced" else []
    rng = np.random.default_rng(seed)

    if mode == "none":
        chosen = {c: list(ix) for c, ix in cells.items()}
    elif mode == "balanced":
        n = min(labelled.values()) if labelled else 0
        if n < min_per_cell:
            raise BiasMirrorError(f"cannot balance over {'×'.join(by)}: a cell has {n} sample(s); counts per cell: {available}")
        chosen = {c: sorted(rng.choice(cells[c], n, replace=False).tolist()) for c in labelled}
    elif mode == "target":
        if not target:
            raise BiasMirrorError("a target composition needs shares per cell")
        total = sum(target.values())
        shares = {c: v / total for c, v in target.items() if v > 0}
        aimed = [c for c in shares if NO_LABEL in c.split("|")]
        if aimed:
            raise BiasMirrorError(f"target cell(s) {', '.join(aimed)} hold faces without a label, which a mix leaves "
                                  "out: aim at labelled cells")
        short = {c: labelled.get(c, 0) for c in shares if labelled.get(c, 0) < min_per_cell}
        if short:
            raise BiasMirrorError(
                f"target cells with too few samples (need ≥ {min_per_cell}): {short}; counts per cell: {labelled}"
            )
        n_total = int(min(labelled[c] / s for c, s in shares.items()))
        chosen = {}
        for c, s in shares.items():
            k = max(min_per_cell, min(available[c], int(round(s * n_total))))
            chosen[c] = sorted(rng.choice(cells[c], k, replace=False).tolist())
    else:
        raise BiasMirrorError(f"unknown composition mode {mode!r} (none, balanced, target)")

    indices = sorted(i for ix in chosen.values() for i in ix)
    achieved = {c: len(ix) for c, ix in chosen.items()}
    n = max(1, len(indices))
    zero = dict.fromkeys([*empty, *unlabelled], 0)  # in the table and the card, as cells the mix holds none of
    comp = Composition(
        by=list(by), mode=mode, available={**available, **dict.fromkeys(empty, 0)}, achieved={**achieved, **zero},
        target=None if mode != "target" else {c: v / sum(target.values()) for c, v in target.items()},
        achieved_share={**{c: k / n for c, k in achieved.items()}, **dict.fromkeys(zero, 0.0)}, empty=empty,
        left_out_no_label=sum(available[c] for c in unlabelled),
    )
    return indices, comp


def empty_cells(samples: Sequence[Sample], by: Sequence[str], values_from: Sequence[Sample] | None = None) -> list[str]:
    """The cells of ``by``'s labelled values (each seen in some sample of ``values_from``, default ``samples``) that
    no sample is in: with no female/Others face a mix "balanced by gender,race" balanced nine cells and named none
    missing."""
    seen = samples if values_from is None else values_from
    values = [sorted({getattr(s, attr) for s in seen} - {None}, key=str) for attr in by]
    present = {cell_of(s, by) for s in samples}
    return [c for c in ("|".join(map(str, combo)) for combo in itertools.product(*values)) if c not in present]


def product_target(marginals: dict[str, dict[str, float]]) -> dict[str, float]:
    """A joint target over cells from independent marginals, e.g. gender and race shares."""
    joint: dict[str, float] = {"": 1.0}
    for _attr, shares in marginals.items():
        total = sum(shares.values())
        joint = {
            (f"{k}|{v}" if k else v): p * q / total for k, p in joint.items() for v, q in shares.items()
        }
    return joint


def counts(samples: Sequence[Sample], by: Sequence[str]) -> dict[str, int]:
    return dict(Counter(cell_of(s, by) for s in samples))
