"""Filter audit: paired before/after shifts of skin tone and P(female), per group.

For each group: mean and median ΔITA (t and order-statistic CIs), a Wilcoxon signed-rank
test of ΔITA against 0 with the matched-pairs rank-biserial correlation, Holm
across the groups of a grouping that can reach significance (``stats.holm_family``), the share made lighter (or darker) by at
least one Monk tone, and per classifier the same for ΔP(female) plus the
gender-flip rate. A Kruskal–Wallis test asks whether the shift differs between
groups. Faces whose skin is not measurable (before or after) are counted, per
group, and left out of the skin statistics only; those measurable before and not after are counted apart
(``n_made_unmeasurable``, ``share_made_unmeasurable``), since the filter did that: a filter that crushes darker faces
to black leaves only the faces it spared in ΔITA, which then reads "no change" (the ship gate judges that share).
Faces the filter moved (``n_moved``, ``share_moved``: a whole pixel or more, ``skin.aligned_onto``) are counted too:
their skin was measured where the filter put it, so their ΔITA is the colour's, not the move's.
Sign convention (inference.results): Δ = filtered − original; positive ΔITA =
a higher ITA (lighter only where L* bears it out: summary.lightness_bears_out), positive ΔP(female) = looks more
female to that classifier.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..card_fields import CardNotes, card_number, card_object
from ..skin import ita_degrees
from .groups import is_small, split
from .stats import (ITA_RANGE, L_RANGE, UNIT_RANGE, mean_or_median_ci, difference_range, exact_share, holm_family,
                    kruskal_test, share, wilcoxon_least_p, wilcoxon_test)

ITA_CATEGORIES = ("very light", "light", "intermediate", "tan", "brown", "dark")


ITA_BINS = [float(v) for v in range(-30, 32, 2)]  # degrees; values beyond go to the end bins
P_BINS = [round(-1 + 0.1 * i, 1) for i in range(21)]


def histogram(values: Sequence[float], bins: Sequence[float]) -> dict:
    """Counts per bin (values outside the range are clipped into the first/last bin)."""
    counts = [0] * (len(bins) - 1)
    for v in values:
        i = int(np.searchsorted(bins, v, side="right")) - 1
        counts[min(max(i, 0), len(counts) - 1)] += 1
    return {"bins": list(bins), "counts": counts}


def _shift_stats(values: Sequence[float], bins: Sequence[float], bounds: tuple[float, float]) -> dict:
    """``bounds``: the range a shift cannot leave, which a t interval over a few faces had reached past."""
    return {"mean": mean_or_median_ci(values, "mean", bounds=bounds), "median": mean_or_median_ci(values, "median"),
            "wilcoxon": wilcoxon_test(values), "histogram": histogram(values, bins)}


def _measurable(skin: dict | None) -> bool:
    return bool(skin and skin.get("measurable"))


def _delta_b(row: dict) -> float | None:
    """Δb* (filtered − original yellowness) of a face measurable before and after; None where either lacks b*."""
    before, after = (row.get("skin") or {}).get("b"), (row.get("filtered_skin") or {}).get("b")
    return None if before is None or after is None else after - before


def _ita_from_b(row: dict) -> float | None:
    """The part of a face's ΔITA its Δb* alone makes: ITA at the original's L* and the filtered b*, less the
    original's. Its sign depends on the face, not on Δb* alone: more yellow lowers ITA where L* > 50 and raises it
    where L* < 50 (dark skin), so a group's Δb* beside its ΔITA says nothing of which moved ITA."""
    before, after = row.get("skin") or {}, row.get("filtered_skin") or {}
    if before.get("L") is None or before.get("b") is None or after.get("b") is None:
        return None
    return ita_degrees(before["L"], after["b"]) - ita_degrees(before["L"], before["b"])


def measurability(rows: Sequence[dict]) -> dict:
    """Whose skin the filter left measurable. ``n_made_unmeasurable``: measurable before, not after: the filter's
    doing (crushed to black or grey, b* below skin.MIN_B), counted apart from faces never measurable (a grey photo)
    and given as a share of the faces measurable before, with the exact binomial CI the ship gate judges it by."""
    before = [_measurable(r["skin"]) for r in rows]
    after = [_measurable(r.get("filtered_skin")) for r in rows]
    lost = [b and not a for b, a in zip(before, after)]
    return {"n_measurable_before": sum(before), "n_made_unmeasurable": sum(lost),
            "n_made_measurable": sum(a and not b for b, a in zip(before, after)),
            "n_never_measurable": sum(not b and not a for b, a in zip(before, after)),
            "share_made_unmeasurable": exact_share([gone for gone, b in zip(lost, before) if b])}


def moved_faces(rows: Sequence[dict]) -> dict:
    """How many faces the filter moved by a whole pixel or more (``moved_px``), of those it was looked for on (every
    filtered face; an audit cached before the move was recorded has none), with the share's modified Wilson CI."""
    looked = [r["moved_px"] for r in rows if r.get("moved_px") is not None]
    return {"n_moved": sum(m >= 1 for m in looked), "share_moved": share([m >= 1 for m in looked])}


def group_shift(rows: Sequence[dict], names: Sequence[str]) -> dict:
    measured = [r for r in rows if r["d_ita"] is not None]
    out: dict[str, Any] = {
        "n_faces": len(rows), "n_measurable": len(measured), "n_not_measurable": len(rows) - len(measured),
        **measurability(rows), **moved_faces(rows),
        "small": is_small(len(rows)),
        "delta_ita": _shift_stats([r["d_ita"] for r in measured], ITA_BINS, difference_range(ITA_RANGE)),
        "delta_l": {"mean": mean_or_median_ci([r["d_l"] for r in measured], "mean", bounds=difference_range(L_RANGE))},
        # beside ΔL*: where ITA moved and lightness did not, yellowness did (a low-b* face's ITA swings with it)
        "delta_b": {"mean": mean_or_median_ci([_delta_b(r) for r in measured], "mean")},
        "delta_ita_from_b": {"mean": mean_or_median_ci([_ita_from_b(r) for r in measured], "mean")},
        "share_lighter_1_monk": share([r["d_mst"] >= 1 for r in measured]),
        "share_darker_1_monk": share([r["d_mst"] <= -1 for r in measured]),
        "classifiers": {},
    }
    for n in names:
        dps = [r["clf"][n]["dp"] for r in rows if r["clf"][n].get("dp") is not None]
        out["classifiers"][n] = {"delta_p_female": _shift_stats(dps, P_BINS, difference_range(UNIT_RANGE)),
                                 "flip_rate": share([r["clf"][n]["flip"] for r in rows
                                                     if r["clf"][n].get("flip") is not None])}
    return out


def _add_holm(by: dict, names: Sequence[str]) -> None:
    """Holm across a grouping's groups, one family per measure, of the groups' tests that can reach significance
    (``stats.holm_family``: a group of 5 or fewer faces that moved cannot)."""
    _holm_across([s["delta_ita"]["wilcoxon"] for s in by.values()])
    for n in names:
        _holm_across([s["classifiers"][n]["delta_p_female"]["wilcoxon"] for s in by.values()])


def _holm_across(tests: Sequence[dict]) -> None:
    for test, fam in zip(tests, holm_family([t["p"] for t in tests], [wilcoxon_least_p(t) for t in tests])):
        test.update(fam)


def filter_audit(rows: Sequence[dict], groupings: dict[str, list[str]], names: Sequence[str], card_training: dict,
                 notes: CardNotes | None = None) -> dict:
    """``notes``: the audit's reading of the filter's card (``CardNotes`` of its file), which says where its target
    is of no type this reads; a fresh one, naming no file, where not given."""
    out: dict[str, Any] = {"overall": group_shift(rows, names), "by": {}, "kruskal": {}}
    overall = out["overall"]  # one test each: Holm leaves its p as it is (the schema promises p_holm on every test)
    for test in (overall["delta_ita"]["wilcoxon"], *(overall["classifiers"][n]["delta_p_female"]["wilcoxon"]
                                                      for n in names)):
        test["p_holm"] = test["p"]
    for grouping, labels in groupings.items():
        parts = split(rows, labels)
        by = {g: group_shift(rs, names) for g, rs in parts.items()}
        _add_holm(by, names)
        out["by"][grouping] = by
        k = {"delta_ita": kruskal_test({g: [r["d_ita"] for r in rs if r["d_ita"] is not None] for g, rs in parts.items()})}
        for n in names:
            k[f"delta_p_female:{n}"] = kruskal_test(
                {g: [r["clf"][n].get("dp") for r in rs if r["clf"][n].get("dp") is not None] for g, rs in parts.items()})
        out["kruskal"][grouping] = k
    out["composition"] = composition(rows, names, card_training, notes)
    return out


def _target_at(value: Any, field: str) -> tuple[str, dict] | None:
    """The first gender/race target mix below ``value`` (``field`` its name in the card) with the name of the field
    that holds it ("training.domain_b.marginals")."""
    if isinstance(value, dict):
        for key in ("marginals", "target_marginals"):
            v = value.get(key)
            if isinstance(v, dict) and ("gender" in v or "race" in v):
                return f"{field}.{key}", v
        for key in sorted(value, key=str):
            found = _target_at(value[key], f"{field}.{key}")
            if found is not None:
                return found
    elif isinstance(value, list):
        for i, v in enumerate(value):
            found = _target_at(v, f"{field}[{i}]")
            if found is not None:
                return found
    return None


def find_target(training: Any) -> dict | None:
    """A gender/race target mix the filter was trained towards, wherever the card keeps one (``marginals``)."""
    found = _target_at(training, "training")
    return None if found is None else found[1]


def target_female_share(training: Any, notes: CardNotes) -> float | None:
    """The share of women in the card's target mix: a number from 0 to 1 ("0.33" reads 0.33). Any other (a word, a
    list, 5) is warned of in ``notes``, naming the file and the field, and the target's share left unknown: "0.33"
    had crashed the audit comparing it with the shares of women the classifiers saw."""
    found = _target_at(training, "training")
    if found is None:
        return None
    field, target = found
    gender = card_object(notes, f"{field}.gender", target.get("gender"))
    if gender is None:
        return None
    return card_number(notes, f"{field}.gender.female", gender.get("female"), within=(0.0, 1.0))


def composition(rows: Sequence[dict], names: Sequence[str], card_training: dict,
                notes: CardNotes | None = None) -> dict:
    """Inputs vs filtered outputs: share predicted female per classifier, share per ITA category. ``notes``: as
    ``filter_audit``'s."""
    both = [r for r in rows if r["d_ita"] is not None]
    cats = {}
    for c in ITA_CATEGORIES:
        cats[c] = {"input": share([r["skin"]["category"] == c for r in both]),
                   "output": share([r["filtered_skin"]["category"] == c for r in both])}
    pred = {}
    target = find_target(card_training)
    t_female = target_female_share(card_training, CardNotes() if notes is None else notes)
    for n in names:
        # faces predicted both ways: one whose prediction is not finite (None) had counted as not female
        rs = [r for r in rows if r["clf"][n].get("pred_f") is not None and r["clf"][n].get("pred_ref") is not None]
        inp = share([r["clf"][n]["pred_ref"] == "female" for r in rs])  # the input as the filter's resampling leaves it
        outp = share([r["clf"][n]["pred_f"] == "female" for r in rs])
        entry = {"input": inp, "output": outp, "crossed_target": None, "moved_toward_target": None}
        if t_female is not None and inp["n"]:
            # Pushed beyond the target: the output's share lies on the other side of it than the input's.
            entry["crossed_target"] = bool((inp["value"] - t_female) * (outp["value"] - t_female) < 0)
            entry["moved_toward_target"] = bool(abs(outp["value"] - t_female) < abs(inp["value"] - t_female))
        pred[n] = entry
    return {"n_faces": len(rows), "n_measurable_both": len(both), "ita_category": cats, "predicted_female": pred,
            "target": target, "target_female_share": t_female,
            "target_note": "target from the filter's card" if target else "no target in the card"}
