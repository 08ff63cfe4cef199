"""A filter's ship gate: does any group's mean shift lie beyond what the user will tolerate?

    python main.py audit … --filter F.onnx --max-delta-ita 2 --max-delta-p 0.02 [--strict]

For overall and every group of every grouping in the report, the 95 % CI of the mean shift (ΔITA°, and ΔP(female)
per classifier) is held against ±tolerance:

- ``within``: the whole CI inside: shown to stay within tolerance;
- ``beyond``: the whole CI outside: shown to exceed it, and the gate fails;
- ``unsettled``: the CI straddles a bound: these faces cannot tell; the gate fails on it only with ``--strict``;
- ``too few``: no CI (too few measurable faces): as unsettled.

A mean that merely lies past the tolerance on a handful of faces fails nothing: an engineer's pipeline stopped by
noise learns to ignore the gate. ``--strict`` asks instead that every group be shown within, which needs enough
faces per group. The audit exits with status 1 when the gate fails, and with 2 (an error's status) when it
measured no face at all: a gate over nothing neither passes nor fails.

Nor does a gate that could judge nothing it was given (``passed`` null, exit 2): where no row got a verdict (every
one "too few", as for a classifier whose P(female) is never finite), or where no row of one of its measures did
and none failed (``--max-delta-ita`` judged, but one classifier's ΔP(female) measured on no face). It had passed
with "0 within, 0 beyond, 10 too few". Some rows too few beside judged rows of the same measure (a small group) is
the ordinary case: they pass without ``--strict`` and fail with it.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterator

from .. import strict_json
from ..skin import NOT_MEASURABLE
from .stats import CONFIDENCE

FAILING = {False: ("beyond",), True: ("beyond", "unsettled", "too few")}


@dataclass(frozen=True)
class GateRow:
    measure: str  # "delta_ita" or "delta_p_female:<classifier>"
    grouping: str  # "overall", or a grouping of the report ("gender_race", "age_band", "group")
    group: str
    n: int
    mean: float | None
    lo: float | None
    hi: float | None
    tolerance: float
    verdict: str


def verdict(lo: float | None, hi: float | None, tolerance: float) -> str:
    if not (strict_json.measured(lo) and strict_json.measured(hi)):
        return "too few"
    if lo > tolerance or hi < -tolerance:  # type: ignore[operator]
        return "beyond"
    if lo >= -tolerance and hi <= tolerance:  # type: ignore[operator]
        return "within"
    return "unsettled"


def _cells(filter_report: dict) -> Iterator[tuple[str, str, dict]]:
    yield "overall", "all faces", filter_report["overall"]
    for grouping, groups in filter_report.get("by", {}).items():
        for group, cell in sorted(groups.items()):
            yield grouping, group, cell


def gate_rows(filter_report: dict, max_delta_ita: float | None, max_delta_p: float | None) -> list[GateRow]:
    rows = []
    for grouping, group, cell in _cells(filter_report):
        measures = []
        # faces of no measured tone have no ΔITA, which never has a CI there (--strict had failed on it); their
        # ΔP(female) is measured, and a filter that moved it on grey or colour-cast photos alone had passed the gate
        if max_delta_ita is not None and (grouping, group) != ("skin_tone", NOT_MEASURABLE):
            measures.append(("delta_ita", cell.get("delta_ita", {}).get("mean", {}), max_delta_ita))
        if max_delta_p is not None:
            for name, c in sorted(cell.get("classifiers", {}).items()):
                measures.append((f"delta_p_female:{name}", c.get("delta_p_female", {}).get("mean", {}), max_delta_p))
        for measure, m, tol in measures:
            rows.append(GateRow(measure, grouping, group, int(m.get("n") or 0), m.get("value"), m.get("lo"), m.get("hi"),
                                tol, verdict(m.get("lo"), m.get("hi"), tol)))
    return rows


def measure_name(measure: str) -> str:
    """'ΔITA' or 'ΔP(female) of <classifier>'."""
    return "ΔITA" if measure == "delta_ita" else f"ΔP(female) of {measure.partition(':')[2]}"


def _why_not_judged(measure: str, overall: GateRow | None) -> str:
    n = overall.n if overall else 0
    if n == 0 and measure == "delta_ita":
        return "no face's skin could be measured both before and after the filter"
    if n == 0:
        return f"no face got a finite P(female) from {measure.partition(':')[2]} both before and after the filter"
    return f"no group, overall included, got a {CONFIDENCE:.0%} CI: too few faces to tell (n={n} overall)"


def not_judged(rows: list[GateRow]) -> list[dict]:
    """The measures none of whose rows got a verdict (every one "too few"), each with why."""
    out = []
    for measure in dict.fromkeys(r.measure for r in rows):
        own = [r for r in rows if r.measure == measure]
        if all(r.verdict == "too few" for r in own):
            overall = next((r for r in own if r.grouping == "overall"), None)
            out.append({"measure": measure, "n": overall.n if overall else 0, "why": _why_not_judged(measure, overall)})
    return out


def filter_gate(filter_report: dict, max_delta_ita: float | None, max_delta_p: float | None,
                strict: bool = False) -> dict:
    """The gate's verdict and its rows, as report.json keeps them. ``passed`` is true, false, or None where the gate
    could not be judged: no row got a verdict, or none of one measure's rows did and no row failed (``not_judged``
    lists those measures and why)."""
    rows = gate_rows(filter_report, max_delta_ita, max_delta_p)
    counts = {v: sum(r.verdict == v for r in rows) for v in ("within", "beyond", "unsettled", "too few")}
    unjudged = not_judged(rows)
    # a measure none of whose rows was judged fails nothing, --strict or not: its "too few" rows had failed a strict
    # gate as soon as another measure was judged
    unmeasured = {u["measure"] for u in unjudged}
    failing = [r for r in rows if r.verdict in FAILING[strict] and r.measure not in unmeasured]
    if all(r.verdict == "too few" for r in rows):  # nothing measured fails nothing, --strict or not
        passed, failing = None, []
    elif failing:
        passed = False
    else:
        passed = None if unjudged else True
    return {"passed": passed, "strict": strict, "max_delta_ita": max_delta_ita, "max_delta_p": max_delta_p,
            "confidence": CONFIDENCE, "counts": counts, "not_judged": unjudged, "failing": [asdict(r) for r in failing],
            "rows": [asdict(r) for r in rows]}


def not_judged_reason(gate: dict) -> str:
    """Why a gate could not be judged, one clause per measure it could not judge."""
    return ("; ".join(f"{measure_name(m['measure'])}: {m['why']}" for m in gate.get("not_judged") or [])
            or "it was given no row to judge")


def _shown(row: dict) -> str:
    unit = "°" if row["measure"] == "delta_ita" else ""
    what = "ΔITA" if row["measure"] == "delta_ita" else f"ΔP(female) {row['measure'].partition(':')[2]}"
    ci = (f"[{row['lo']:+.3g}, {row['hi']:+.3g}]{unit}" if strict_json.measured(row["lo"]) else "no CI")
    mean = f"{row['mean']:+.3g}{unit}" if strict_json.measured(row["mean"]) else "–"
    where = row["group"] if row["grouping"] == "overall" else f"{row['grouping']} {row['group']}"
    return f"{what}, {where} (n={row['n']}): mean {mean} {ci}, tolerance ±{row['tolerance']:g}{unit}: {row['verdict']}"


def gate_lines(gate: dict) -> list[str]:
    c = gate["counts"]
    state = ("NOT JUDGED, neither passed nor failed: " + not_judged_reason(gate) if gate["passed"] is None
             else "PASSED" if gate["passed"] else "FAILED")
    head = (f"Ship gate ({'strict: every group shown within' if gate['strict'] else 'fails where a group is shown beyond'}"
            f" ±tolerance, {CONFIDENCE:.0%} CI): {state}; {c['within']} within, {c['beyond']} "
            f"beyond, {c['unsettled']} unsettled, {c['too few']} too few faces to tell.")
    lines = [head] + [f"  {_shown(r)}" for r in gate["failing"]]
    if gate["passed"] is None:
        return lines
    if gate.get("not_judged"):  # beside a failure: what it says nothing about
        lines.append(f"  Not judged: {not_judged_reason(gate)}.")
    if not gate["strict"] and c["unsettled"] + c["too few"]:
        lines.append(f"  {c['unsettled'] + c['too few']} row(s) not shown either way pass without --strict; "
                     "report.json lists every row under 'gate'.")
    return lines
