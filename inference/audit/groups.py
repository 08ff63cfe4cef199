"""How faces are grouped in every table: labels the dataset gives, or groups the user gives; never guessed."""
from __future__ import annotations

from typing import Sequence

from ..metrics import SMALL_GROUP


def groupings(rows: Sequence[dict], labelled: bool) -> dict[str, list[str]]:
    """Grouping name → one group label per row. Labelled: gender × race and age band; else the CSV's groups."""
    out: dict[str, list[str]] = {}
    if labelled:
        out["gender_race"] = [f"{r['gender'] or 'unknown'}/{r['race'] or 'unknown'}" for r in rows]
        out["age_band"] = [r["age_band"] or "unknown" for r in rows]
    if any(r["group"] for r in rows):
        out["group"] = [r["group"] or "(no group)" for r in rows]
    return out


def primary(groups: dict[str, list[str]]) -> str | None:
    """The grouping the figures and the focus tests use: gender × race, else the user's groups."""
    for name in ("gender_race", "group"):
        if name in groups:
            return name
    return None


def split(rows: Sequence[dict], labels: Sequence[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r, g in zip(rows, labels):
        out.setdefault(g, []).append(r)
    return dict(sorted(out.items()))


def is_small(n: int) -> bool:
    return n < SMALL_GROUP
