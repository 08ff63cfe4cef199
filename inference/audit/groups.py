"""How faces are grouped in every table: labels the dataset gives, or groups the user gives; never guessed."""
from __future__ import annotations

from typing import Sequence

from ..metrics import SMALL_GROUP, group_order
from ..skin import NOT_MEASURABLE


def groupings(rows: Sequence[dict], labelled: bool) -> dict[str, list[str]]:
    """Grouping name → one group label per row. Labelled: gender × race and age band; else the CSV's groups, and
    the skin tone measured on each original face (its ITA category): without it an unlabelled audit compared no
    groups at all, and its gate passed a filter that lightened dark skin and darkened light skin by 20° each."""
    out: dict[str, list[str]] = {}
    if labelled:
        out["gender_race"] = [f"{r['gender'] or 'unknown'}/{r['race'] or 'unknown'}" for r in rows]
        out["age_band"] = [r["age_band"] or "unknown" for r in rows]
    elif rows and any(r.get("race") for r in rows):  # races given without genders had been read, then not compared
        out["race"] = [r["race"] or "unknown" for r in rows]
    if not labelled and rows and any(r.get("age_band") for r in rows):
        out["age_band"] = [r["age_band"] or "unknown" for r in rows]
    if any(r["group"] for r in rows):
        out["group"] = [r["group"] or "(no group)" for r in rows]
    if not labelled and rows and all("skin" in r for r in rows):  # faces, not the images of the detection table
        out["skin_tone"] = [r["skin"].get("category") or NOT_MEASURABLE for r in rows]
    return out


def primary(groups: dict[str, list[str]]) -> str | None:
    """The grouping the figures and the focus tests use: gender × race, else the user's groups, else skin tone."""
    for name in ("gender_race", "group", "skin_tone"):
        if name in groups:
            return name
    return None


def split(rows: Sequence[dict], labels: Sequence[str]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r, g in zip(rows, labels):
        out.setdefault(g, []).append(r)
    return dict(sorted(out.items(), key=lambda item: group_order(item[0])))  # age bands by their lower bound


def is_small(n: int) -> bool:
    return n < SMALL_GROUP
