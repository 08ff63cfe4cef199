"""CAM focus: the share of a classifier's positive CAM mass inside the face ellipse, per group.

Low focus means the decision leaned on hair, background or clothing. Per
classifier and group: mean and median with t and order-statistic CIs; Kruskal–Wallis
across the groups, then Holm-adjusted pairwise Mann–Whitney tests; and the
faces with the lowest and highest focus for the grid figure.
"""
from __future__ import annotations

import math
from typing import Sequence

from ..strict_json import measured
from .groups import is_small, split
from .stats import mean_or_median_ci, kruskal_test, pairwise_mannwhitney

N_EXTREMES = 4


def focus_audit(rows: Sequence[dict], groupings: dict[str, list[str]], primary: str | None, names: Sequence[str]) -> dict:
    out = {}
    for n in names:
        vals = [r["clf"][n]["focus"] for r in rows]
        entry = {"overall": _stats(vals), "by": {}, "kruskal": None, "pairwise": [], "no_positive_cam": sum(v is None for v in vals)}
        for grouping, labels in groupings.items():
            parts = split(rows, labels)
            entry["by"][grouping] = {g: _stats([r["clf"][n]["focus"] for r in rs]) for g, rs in parts.items()}
            if grouping == primary:
                data = {g: [r["clf"][n]["focus"] for r in rs] for g, rs in parts.items()}
                entry["kruskal"] = {"grouping": grouping, **kruskal_test(data)}
                entry["pairwise"] = pairwise_mannwhitney(data)
        # A NaN focus (a classifier whose CAM is NaN, its training having diverged) is not measured: it had been
        # counted in n and ranked among the lowest and highest faces, where report.json's null for it broke the
        # HTML's grid (100 * None).
        ranked = sorted((r for r in rows if _finite(r["clf"][n]["focus"])),
                        key=lambda r: (r["clf"][n]["focus"], r["file"], r["face"]))
        pick = lambda rs: [{"file": r["file"], "face": r["face"], "focus": r["clf"][n]["focus"]} for r in rs]  # noqa: E731
        entry["lowest"] = pick(ranked[:N_EXTREMES])
        entry["highest"] = pick(ranked[::-1][:N_EXTREMES]) if len(ranked) > N_EXTREMES else pick(ranked[::-1])
        out[n] = entry
    return out


def _finite(x) -> bool:
    return measured(x) and math.isfinite(x)


def _stats(values) -> dict:
    v = [x for x in values if _finite(x)]
    return {"n": len(v), "small": is_small(len(v)), "mean": mean_or_median_ci(v, "mean", (0.0, 1.0)), "median": mean_or_median_ci(v, "median")}
