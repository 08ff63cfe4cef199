"""A filter's ship gate: does any group's mean shift lie beyond what the user will tolerate?

    python main.py audit … --filter F.onnx --max-delta-ita 2 --max-delta-p 0.02 [--max-unmeasurable-share S] [--strict]

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

Which CI: ΔITA's is Student's t; ΔP(female)'s the betting interval (``stats.mean_or_median_ci``), whose coverage
holds whatever the shifts' distribution in [−1, 1], below 100 faces or where fewer than 10 shifts differ from the
most common one, else Student's t. Most faces' ΔP(female) lie near 0 and a few flip far, and a
small group mostly misses the few: t had called a group whose true mean lay on +0.02 "beyond" 16-27 % of the time at
3 to 10 faces and 5-6 % at 100 to 200 (groups drawn from the shipped filter's real shifts; 2.5 % is the most a 95 %
CI should), and three shifts of exactly 0.0 "within" any tolerance; the betting interval called such a group beyond
in none of 2,000 draws at any of those sizes. Its price is width on few faces: ΔP(female) rows of fewer than 100
faces stay unsettled at ±0.02 however small their shifts (so they fail ``--strict``); on 100 faces or more it had shown
a group whose mean lies at −0.05 beyond 1-3 % of the time (t: 91-97 %), so t is back there, where its own false
"beyond" is 5-6 %.

With ``--max-delta-ita``, each group's share of faces the filter made unmeasurable (skin measurable before, not
after: crushed to black, or to a grey of b* below skin.MIN_B) is held against ``--max-unmeasurable-share`` (default
``DEFAULT_MAX_UNMEASURABLE_SHARE``), its exact binomial (Clopper–Pearson) 95 % CI read the same way on one side:
``within`` where the CI lies at or below it, ``beyond`` where wholly above. ΔITA is measured on the faces left
measurable only, so a filter that blacked out the darker faces had passed ±2° with a mean ΔITA of 0.00 on the faces
it spared.

Nor does a gate that could judge nothing it was given (``passed`` null, exit 2): where no row got a verdict (every
one "too few", as for a classifier whose P(female) is never finite), or where no row of one of its measures did
and none failed (``--max-delta-ita`` judged, but one classifier's ΔP(female) measured on no face). It had passed
with "0 within, 0 beyond, 10 too few". Some rows too few beside judged rows of the same measure (a small group) is
the ordinary case: they pass without ``--strict`` and fail with it.

``--strict`` fails too on a classifier whose card's label order is probably the reverse of its outputs (a two-label
gender classifier whose accuracy's 95 % CI lies wholly below 0.5, ``classifier_audit.labels_look_reversed``),
naming its file: its every P(female) reads the other way round, and such an audit had exited 0. Without ``--strict``
the gate lists it (``labels_look_reversed``) and fails nothing on it.

In an audit of labelled faces, the groups no label names (``NOT_GATED``: gender × race "unknown/unknown", age band
"unknown") are not gated: they hold the detector's other faces in a labelled photo, whose labels describe its largest
face alone, and photos the dataset leaves without the label. They are no group of people, and two such faces had
failed ``--strict`` with "too few faces to tell" whatever the tolerance. ``not_gated`` names them; the overall row
still holds every face. An audit without labels gates its "unknown" and "(no group)" faces as any group: there the
labels a folder gives, or a groups CSV, are all the groups it has.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Iterator, Sequence

from .. import strict_json
from ..skin import JUST_NOTICEABLE_L, NOT_MEASURABLE
from .report import in_order
from .stats import CONFIDENCE, exact_share
from .summary import (ITA_DIGITS, lightness_bears_out, lightness_direction, lightness_moved_words, printed_direction,
                      reversed_labels_why)

FAILING = {False: ("beyond",), True: ("beyond", "unsettled", "too few")}
MADE_UNMEASURABLE = "made_unmeasurable"  # the gate's measure of the share of faces the filter made unmeasurable
# The share a skin gate tolerates by default. A filter that leaves skin alone makes no face unmeasurable (an identity
# filter: 0 of 186 UTKFace adults, CI up to 1.96 %: within); the shipped filter made 2 of those 186 so (1.1 %
# [0.13 %, 3.8 %], faces near the b* bound: unsettled, it passes). A group fails only where its whole 95 % CI lies
# above: 4 of 36 faces lost does (CI from 3.1 %); one face lost of a group of 2 or more never does.
DEFAULT_MAX_UNMEASURABLE_SHARE = 0.02
# In a labelled audit, the group of each labelled grouping that holds the faces no label names (groups.groupings):
# not gated, and said so with NOT_GATED_WHY
NOT_GATED = {("gender_race", "unknown/unknown"), ("age_band", "unknown")}
NOT_GATED_WHY = ("faces no label names (the detector's other faces in labelled photos, whose labels describe the "
                 "largest face, and photos the dataset leaves without that label)")


def fewest_faces_shown_within(tolerance: float) -> int | None:
    """The smallest group whose share made unmeasurable can be shown within ``tolerance``, with no face lost: below
    it every share row is unsettled, which fails ``--strict`` on a filter that loses nothing. None where no group
    can be (a tolerance of 0). Read off the exact interval the gate uses, not written down, so that it follows the
    tolerance and the confidence: the closed form 1 − (α/2)^(1/n) for 0 of n gives the start, scipy settles the
    rounding."""
    if tolerance <= 0:
        return None
    n = max(1, math.ceil(math.log((1 - CONFIDENCE) / 2) / math.log1p(-tolerance)))
    while exact_share([False] * n)["hi"] > tolerance:
        n += 1
    while n > 1 and exact_share([False] * (n - 1))["hi"] <= tolerance:
        n -= 1
    return n


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
    # a ΔITA row's ΔL* and Δb* (interval objects): whether lightness moved, or only yellowness, where ITA swings
    delta_l: dict | None = None
    delta_b: dict | None = None
    # and the part of its ΔITA Δb* alone makes (filter…delta_ita_from_b.mean), which lightness_words reads as the
    # summary does
    delta_ita_from_b: dict | None = None


def verdict(lo: float | None, hi: float | None, tolerance: float) -> str:
    if not (strict_json.measured(lo) and strict_json.measured(hi)):
        return "too few"
    if lo > tolerance or hi < -tolerance:  # type: ignore[operator]
        return "beyond"
    if lo >= -tolerance and hi <= tolerance:  # type: ignore[operator]
        return "within"
    return "unsettled"


def share_verdict(lo: float | None, hi: float | None, tolerance: float) -> str:
    """``verdict`` for a share, which has one bound: at most ``tolerance``."""
    if not (strict_json.measured(lo) and strict_json.measured(hi)):
        return "too few"
    if lo > tolerance:  # type: ignore[operator]
        return "beyond"
    return "within" if hi <= tolerance else "unsettled"  # type: ignore[operator]


def _cells(filter_report: dict) -> Iterator[tuple[str, str, dict]]:
    yield "overall", "all faces", filter_report["overall"]
    for grouping, groups in filter_report.get("by", {}).items():
        for group, cell in in_order(grouping, groups):
            yield grouping, group, cell


def _row(measure: str, grouping: str, group: str, m: dict, tolerance: float, **context) -> GateRow:
    judge = share_verdict if measure == MADE_UNMEASURABLE else verdict
    return GateRow(measure, grouping, group, int(m.get("n") or 0), m.get("value"), m.get("lo"), m.get("hi"), tolerance,
                   judge(m.get("lo"), m.get("hi"), tolerance), **context)


def is_gated(grouping: str, group: str, labelled: bool) -> bool:
    """Whether the gate judges this group: every group but, in a labelled audit, those of faces no label names."""
    return not (labelled and (grouping, group) in NOT_GATED)


def not_gated(filter_report: dict, labelled: bool) -> list[dict]:
    """The groups the gate leaves out, each with its number of faces and why."""
    return [{"grouping": grouping, "group": group, "n": int(cell.get("n_faces") or 0), "why": NOT_GATED_WHY}
            for grouping, group, cell in _cells(filter_report) if not is_gated(grouping, group, labelled)]


def gate_rows(filter_report: dict, max_delta_ita: float | None, max_delta_p: float | None,
              max_unmeasurable_share: float | None = None, labelled: bool = False) -> list[GateRow]:
    rows = []
    for grouping, group, cell in _cells(filter_report):
        if not is_gated(grouping, group, labelled):
            continue
        # faces of no measured tone have no ΔITA, which never has a CI there (--strict had failed on it), and none of
        # them was measurable before the filter; their ΔP(female) is measured, and a filter that moved it on grey or
        # colour-cast photos alone had passed the gate
        if max_delta_ita is not None and (grouping, group) != ("skin_tone", NOT_MEASURABLE):
            rows.append(_row("delta_ita", grouping, group, cell.get("delta_ita", {}).get("mean", {}), max_delta_ita,
                             delta_l=cell.get("delta_l", {}).get("mean"), delta_b=cell.get("delta_b", {}).get("mean"),
                             delta_ita_from_b=(cell.get("delta_ita_from_b") or {}).get("mean")))
            if "share_made_unmeasurable" in cell:  # judged with ΔITA, which leaves out the faces counted here
                rows.append(_row(MADE_UNMEASURABLE, grouping, group, cell["share_made_unmeasurable"],
                                 DEFAULT_MAX_UNMEASURABLE_SHARE if max_unmeasurable_share is None
                                 else max_unmeasurable_share))
        if max_delta_p is not None:
            for name, c in sorted(cell.get("classifiers", {}).items()):
                rows.append(_row(f"delta_p_female:{name}", grouping, group, c.get("delta_p_female", {}).get("mean", {}),
                                 max_delta_p))
    return rows


def measure_name(measure: str) -> str:
    """'ΔITA', 'share made unmeasurable' or 'ΔP(female) of <classifier>'."""
    if measure == MADE_UNMEASURABLE:
        return "share made unmeasurable"
    return "ΔITA" if measure == "delta_ita" else f"ΔP(female) of {measure.partition(':')[2]}"


def _why_not_judged(measure: str, overall: GateRow | None) -> str:
    n = overall.n if overall else 0
    if n == 0 and measure == "delta_ita":
        return "no face's skin could be measured both before and after the filter"
    if n == 0 and measure == MADE_UNMEASURABLE:
        return "no face's skin could be measured before the filter"
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


def reversed_classifiers(report: dict) -> list[dict]:
    """``{name, file, accuracy}`` of each classifier of ``report`` whose card's labels look reversed
    (``classifiers…labels_look_reversed``), the file as ``models.classifiers`` names it."""
    files = {c["name"]: c.get("file") for c in report["models"]["classifiers"]}
    return [{"name": n, "file": files.get(n), "accuracy": c["metrics"]["overall"]["accuracy"]}
            for n, c in report["classifiers"].items() if c.get("labels_look_reversed")]


def filter_gate(filter_report: dict, max_delta_ita: float | None, max_delta_p: float | None,
                strict: bool = False, max_unmeasurable_share: float | None = None, labelled: bool = False,
                labels_look_reversed: Sequence[dict] = ()) -> dict:
    """The gate's verdict and its rows, as report.json keeps them. ``passed`` is true, false, or None where the gate
    could not be judged: no row got a verdict, or none of one measure's rows did and no row failed (``not_judged``
    lists those measures and why). With ``max_delta_ita`` the share of faces made unmeasurable is judged too, against
    ``max_unmeasurable_share`` (``DEFAULT_MAX_UNMEASURABLE_SHARE`` where None). ``labelled`` (the audit's dataset
    has labels) leaves the groups of faces no label names ungated, listed under ``not_gated``.

    ``labels_look_reversed`` (``reversed_classifiers``): classifiers whose card's label order is probably the reverse
    of their outputs. A strict gate fails on any, whatever its rows: every P(female) of such a classifier, and the
    ΔP(female) the gate judges, reads the other way round, and the audit had exited 0 blaming the dataset's labels.
    Without ``strict`` they are listed and fail nothing, as unsettled rows."""
    if max_delta_ita is not None and max_unmeasurable_share is None:
        max_unmeasurable_share = DEFAULT_MAX_UNMEASURABLE_SHARE
    rows = gate_rows(filter_report, max_delta_ita, max_delta_p, max_unmeasurable_share, labelled)
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
    if strict and labels_look_reversed:  # measured on the labels, not the rows: a failure beside anything not judged
        passed = False
    return {"passed": passed, "strict": strict, "max_delta_ita": max_delta_ita, "max_delta_p": max_delta_p,
            "max_unmeasurable_share": max_unmeasurable_share if max_delta_ita is not None else None,
            "confidence": CONFIDENCE, "counts": counts, "not_judged": unjudged,
            "not_gated": not_gated(filter_report, labelled), "failing": [asdict(r) for r in failing],
            "labels_look_reversed": [dict(c) for c in labels_look_reversed], "rows": [asdict(r) for r in rows]}


def reversed_why(c: dict) -> str:
    """'its card's label order is probably the reverse of its outputs (accuracy …: below chance)'."""
    return reversed_labels_why(c["accuracy"])


def reversed_words(c: dict) -> str:
    """'F.onnx (name): ' and ``reversed_why``."""
    return f"{c['file'] or c['name']} ({c['name']}): {reversed_why(c)}"


def reversed_lines(gate: dict) -> list[str]:
    """A line per classifier whose labels look reversed: failing a strict gate, passing another."""
    verdict = ("fails --strict" if gate["strict"] else
               "passes without --strict, which fails on it")
    return [f"  {reversed_words(c)}: {verdict}." for c in gate.get("labels_look_reversed") or []]


def not_judged_reason(gate: dict) -> str:
    """Why a gate could not be judged, one clause per measure it could not judge."""
    return ("; ".join(f"{measure_name(m['measure'])}: {m['why']}" for m in gate.get("not_judged") or [])
            or "it was given no row to judge")


def _where(row: dict) -> str:
    return row["group"] if row["grouping"] == "overall" else f"{row['grouping']} {row['group']}"


def _shown_share(row: dict) -> str:
    pct = lambda v: f"{100 * v:.1f}%" if strict_json.measured(v) else "–"  # noqa: E731
    ci = f"[{pct(row['lo'])}, {pct(row['hi'])}]" if strict_json.measured(row["lo"]) else "no CI"
    lost = round(row["mean"] * row["n"]) if strict_json.measured(row["mean"]) else 0
    return (f"share made unmeasurable by the filter, {_where(row)}: {lost} of {row['n']} face(s) measurable before, "
            f"{pct(row['mean'])} {ci}, tolerance ≤{100 * row['tolerance']:g}%: {row['verdict']}")


def _shift(name: str, m: dict | None) -> str | None:
    """'ΔL* +2.98 [-4.96, +10.90]', to the summary's digits, which lightness_words reads them by; None where not
    measured."""
    if not m or not strict_json.measured(m.get("value")):
        return None
    shown = lambda v: f"{strict_json.as_printed(v, ITA_DIGITS):+.{ITA_DIGITS}f}"  # noqa: E731
    ci = f" [{shown(m['lo'])}, {shown(m['hi'])}]" if strict_json.measured(m.get("lo")) else ""
    return f"{name} {shown(m['value'])}{ci}"


def lightness_words(row: dict) -> str:
    """A ΔITA row's ΔL* and Δb*, and what they say of its ΔITA: ITA = atan((L* − 50)/b*) moves with b* too (a yellow
    tint lowers a light face's ITA while L* rises; where b* is small it swings), so a ΔITA alone does not say the
    filter made skin lighter or darker. '' where neither was measured."""
    said = [s for s in (_shift("ΔL*", row.get("delta_l")), _shift("Δb*", row.get("delta_b"))) if s]
    return f"; {', '.join(said)}: {lightness_verdict(row)}" if said else ""


def lightness_verdict(row: dict) -> str:
    """'lightness moved (lighter)' where L* bears out the row's ΔITA, by the rule the summary's words follow
    (``summary.lightness_bears_out``): by the CI test alone a yellow tint's male/Black row (ΔITA +2.61°, ΔL* +0.49
    [+0.38, +0.61], Δb* +6.96) had read "lightness moved (lighter)" where the summary said "higher ITA". Else
    'higher ITA, not lighter: ' and what L* did; with no ΔITA as printed, what L* did alone."""
    delta_l, direction = row.get("delta_l"), printed_direction(row.get("mean"))
    moved = lightness_moved_words(delta_l, not_shown="lightness not shown to move",
                                  too_few="too few faces to tell whether lightness moved")
    if not direction:
        return moved
    lighter = "lighter" if direction > 0 else "darker"
    if lightness_bears_out(direction, delta_l, row.get("mean"), row.get("delta_ita_from_b")):
        return f"lightness moved ({lighter})"
    if lightness_direction(delta_l) == direction:  # L* moved ITA's way, too little to have made the move
        moved += f" by under {JUST_NOTICEABLE_L:g} unit, and b* made more of the move"
    return f"{'higher' if direction > 0 else 'lower'} ITA, not {lighter}: {moved}"


def _shown(row: dict) -> str:
    if row["measure"] == MADE_UNMEASURABLE:
        return _shown_share(row)
    unit = "°" if row["measure"] == "delta_ita" else ""
    what = "ΔITA" if row["measure"] == "delta_ita" else f"ΔP(female) {row['measure'].partition(':')[2]}"
    ci = (f"[{row['lo']:+.3g}, {row['hi']:+.3g}]{unit}" if strict_json.measured(row["lo"]) else "no CI")
    mean = f"{row['mean']:+.3g}{unit}" if strict_json.measured(row["mean"]) else "–"
    shown = (f"{what}, {_where(row)} (n={row['n']}): mean {mean} {ci}, tolerance ±{row['tolerance']:g}{unit}: "
             f"{row['verdict']}")
    return shown + (lightness_words(row) if row["measure"] == "delta_ita" else "")


def not_gated_lines(gate: dict) -> list[str]:
    """'  gender_race unknown/unknown (n=2), age_band unknown (n=2): faces no label names (…): not gated; …', or none."""
    left_out = gate.get("not_gated") or []
    if not left_out:
        return []
    groups = ", ".join(f"{_where(g)} (n={g['n']})" for g in left_out)
    whys = "; ".join(dict.fromkeys(g["why"] for g in left_out))
    return [f"  {groups}: {whys}: not gated; the overall row includes them."]


def gate_lines(gate: dict) -> list[str]:
    c = gate["counts"]
    state = ("NOT JUDGED, neither passed nor failed: " + not_judged_reason(gate) if gate["passed"] is None
             else "PASSED" if gate["passed"] else "FAILED")
    head = (f"Ship gate ({'strict: every group shown within' if gate['strict'] else 'fails where a group is shown beyond'}"
            f" tolerance, {CONFIDENCE:.0%} CI): {state}; {c['within']} within, {c['beyond']} "
            f"beyond, {c['unsettled']} unsettled, {c['too few']} too few faces to tell.")
    lines = [head] + reversed_lines(gate) + [f"  {_shown(r)}" for r in gate["failing"]] + not_gated_lines(gate)
    if gate["passed"] is None:
        return lines
    # a ΔITA that cannot tell is shown with its ΔL* too: a low-b* group's ITA swings where lightness did not move
    lines += [f"  Unsettled, passes without --strict: {_shown(r)}" for r in gate["rows"]
              if r["measure"] == "delta_ita" and r["verdict"] == "unsettled" and r not in gate["failing"]]
    if gate.get("not_judged"):  # beside a failure: what it says nothing about
        lines.append(f"  Not judged: {not_judged_reason(gate)}.")
    if not gate["strict"] and c["unsettled"] + c["too few"]:
        lines.append(f"  {c['unsettled'] + c['too few']} row(s) not shown either way pass without --strict; "
                     "report.json lists every row under 'gate'.")
    return lines
