"""report.html: self-contained (figures as base64 PNG), every number taken from report.json."""
from __future__ import annotations

import base64
import html as _html
import logging
import shlex
from pathlib import Path, PureWindowsPath

import numpy as np

from ..datasets import kind_and_path
from ..program_name import program
from ..rows import printable
from ..strict_json import measured
from . import figures as F
from .gate import MADE_UNMEASURABLE, measure_name
from .report import SKIN_TONE, group_key, in_order
from .summary import (ALPHA, first_frame_only_advice, ITA_DIGITS, P_DIGITS, SKIN_TONE_GROUPS_CAVEAT, accuracy_test_words,
                      ci, in_holm_family, label_judges_words, labels_checked_words, map_description, median_ci, named_with_ties, num, pval,
                      reversed_labels_line)

log = logging.getLogger(__name__)


def holm_cell(test: dict) -> str:
    """A "Holm p" cell: the test's Holm p, or, where it is left out of Holm's family (its least p is not below ALPHA:
    too few faces), that and its least p, not the "p n/a" of a test that was never run."""
    if in_holm_family(test) or not measured(test.get("p")):
        return pval(test.get("p_holm"))
    least = test.get("least_p")
    return "not in Holm's family" + (f" (least p {least:.3f})" if measured(least) else "")


def esc(x) -> str:
    return _html.escape(str(x))


def img(png: bytes | None, alt: str) -> str:
    if not png:
        return ""
    return f'<figure><img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}"></figure>'


def _num(v, nd: int = 2) -> str:
    return "n/a" if v is None else f"{v:.{nd}f}"


def table(head: list[str], body: list[list]) -> str:
    h = "".join(f"<th>{esc(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>" for row in body)
    return f"<table><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>"


class Renderer:
    """Re-runs the full pipeline on the few images a face grid shows (crops and CAMs are not cached)."""

    def __init__(self, collector, paths: dict[str, str]):
        m = collector.models
        self.pipe = collector.pipeline(list(m.classifiers.values()), m.filter, collector.detector)
        self.paths, self.memo = paths, {}
        self.models = m

    def __call__(self, file: str, face: int):
        if file not in self.memo:
            res = next(iter(self.pipe.process_images([self.paths[file]], batch=1)))[1] if file in self.paths else None
            self.memo[file] = res
        res = self.memo[file]
        return res.faces[face] if res is not None and face < len(res.faces) else None

    def focus_map(self, face, display_name: str) -> tuple[str, np.ndarray] | None:
        """The class and CAM one classifier's focus was measured on (its predicted class's) on the original crop."""
        out = face.original.classifiers.get(self.models.classifiers[display_name].name)
        return None if out is None else out.focus_map


def _or(v, missing: str):
    return missing if v is None else v


def _pct(v) -> str:
    return f"{100 * v:.1f}%" if measured(v) else "-"


NO_DETECTION_GROUPS = ("Not given per group: the images have no labels (gender, race) nor groups (--groups, or a "
                       "labels.csv group column). The skin-tone groups of the rest of this report are measured on the "
                       "faces found, so an image whose face was never found cannot be binned by skin tone: whose faces "
                       "the detector misses can be told only from labels.")


def _detection_section(d: dict, parts: list[str]) -> None:
    parts.append(f"<p>A face the detector ({esc(d['detector'])}) misses is never classified or measured. It found a face "
                 f"in {d['n_found']} of {d['n_images']} readable image(s): {esc(ci(d['overall'], pct=True))}.</p>")
    if not d["by"]:  # an empty section had said nothing of why
        parts.append(f"<p>{esc(NO_DETECTION_GROUPS)}</p>")
    for grouping, by in d["by"].items():
        t = d["tests"][grouping]
        body = [[g, v["n_images"], v["n_found"], v["n_images"] - v["n_found"], ci(v["share"], pct=True),
                 "small" if v["small"] else ""] for g, v in in_order(grouping, by)]
        test = (f"χ² {t['statistic']:.2f}, dof {t['dof']}, {pval(t['p'])} ({t['method']}); Cramér's V {num(t['cramers_v'], '.3f')}"
                if t["p"] is not None else t.get("note", "not testable"))
        parts.append(f"<h3>By {esc(grouping)}</h3>" + table(["group", "images", "face found", "missed", "share found", "small"], body)
                     + f"<p class='small'>Independence of group and found: {esc(test)}"
                     + (f"; {esc(t['note'])}" if t.get("note") and t["p"] is not None else "") + ".</p>")


def _not_measured_note(r: dict, names: list[str]) -> str:
    """A sentence naming the classifiers none of whose predictions could be counted, or ''."""
    n_faces = r["images"]["n_faces"]
    none = [n for n in names if not r["classifiers"][n]["p_female"]["overall"]["n"]]
    if not none or not n_faces:
        return ""
    return (f"<p><b>Not measured for {esc(', '.join(none))}:</b> none of the {n_faces} face(s) got a finite P(female) "
            "(outputs NaN or infinite, as from a training that diverged, or no 'female' label), so its accuracy, "
            "error rates and P(female) figures below are not measured (shown as - or n/a).</p>")


def _reversed_note(r: dict, names: list[str]) -> str:
    """The summary's sentence on each classifier whose card's labels look reversed, above the tables it makes read
    backwards, or ''."""
    flagged = [n for n in names if r["classifiers"][n].get("labels_look_reversed")]
    files = {c["name"]: c.get("file") for c in (r.get("models") or {}).get("classifiers") or []}
    said = [reversed_labels_line(n, r["classifiers"][n]["metrics"]["overall"]["accuracy"], files.get(n))
            for n in flagged]
    return "".join(f"<p><b>Label order probably reversed:</b> {esc(s)}</p>" for s in said)


def _classifier_section(r: dict, parts: list[str]) -> None:
    names = list(r["classifiers"])
    sizes = r["groups"]["sizes"]
    parts.append(_not_measured_note(r, names))
    parts.append(_reversed_note(r, names))
    for grouping in r["groups"]["groupings"]:
        if not any(r["classifiers"][n]["metrics"] for n in names):
            continue
        parts.append(f"<h3>By {esc(grouping)}</h3>")
        for metric, label in (("accuracy", "accuracy"), ("fpr", "FPR (annotated male called female)"),
                              ("fnr", "FNR (annotated female called male)")):
            series = {n: {g: m[metric] for g, m in r["classifiers"][n]["metrics"]["by"][grouping].items()} for n in names}
            parts.append(img(F.grouped_bars(series, f"{label} by {grouping} (95% modified Wilson CI)", label, 100,
                                            order=group_key(grouping)), f"{metric} by {grouping}"))
        body = []
        for g in sorted(sizes[grouping], key=group_key(grouping)):
            # n: the faces the accuracy counts (each photo's largest, labelled), the same for every classifier; the
            # group's face count had been given, too large where photos hold several faces or some lack a label
            counted = next((by[g] for n in names for by in [r["classifiers"][n]["metrics"]["by"][grouping]] if g in by),
                           None)
            row = [g, counted["n"] if counted else 0, "yes" if counted and counted["small"] else ""]
            for n in names:
                m = r["classifiers"][n]["metrics"]["by"][grouping].get(g)
                row += [ci(m["accuracy"], pct=True), ci(m["fpr"], pct=True), ci(m["fnr"], pct=True), ci(m["mean_p_female"], 3)] if m else ["-"] * 4
            body.append(row)
        head = [grouping, "n", "small"] + [f"{n}: {c}" for n in names for c in ("accuracy", "FPR", "FNR", "mean P(female)")]
        parts.append(table(head, body))
        def extreme(n: str, which: str) -> str:
            # every group tied with the one report.json names: of five groups at 100 % the first by name had been
            # called the best, as the summary on the same page no longer does
            chosen = r["classifiers"][n]["metrics"]["gaps"].get(grouping, {}).get("accuracy", {}).get(which)
            return named_with_ties(r["classifiers"][n]["metrics"]["by"][grouping], "accuracy", chosen) if chosen else "-"

        gaps = [[n, extreme(n, "worst"), extreme(n, "best"),
                 f"{100 * gap['accuracy']['difference']:.1f} pts" if gap.get("accuracy") else "-",
                 num(gap['accuracy']['ratio_worst_best'], '.3f') if gap.get("accuracy") else "-",
                 accuracy_test_words(r["classifiers"][n]["metrics"]["tests"][grouping]["accuracy"])]
                for n in names for gap in [r["classifiers"][n]["metrics"]["gaps"].get(grouping, {})]]
        parts.append(table(["classifier", "worst group", "best group", "accuracy gap", "ratio worst/best",
                            "test of equal accuracy in every group (χ²)"], gaps))
        for c in r.get("comparisons") or []:
            by = c["by"].get(grouping, {})
            body = [[g, v["n"], "yes" if v["small"] else "", _pct(v["accuracy_a"]), _pct(v["accuracy_b"]),
                     "-" if v["difference"] is None else f"{100 * v['difference']:+.1f} pts", v["only_a"], v["only_b"],
                     pval(v["p"]), holm_cell(v)]
                    for g, v in [*in_order(grouping, by), ("(overall)", c["overall"])]]
            parts.append(f"<h4>Paired: {esc(c['a'])} vs {esc(c['b'])} on the same faces (exact McNemar; Holm across "
                         f"{esc(grouping)} groups)</h4>")
            parts.append(table([grouping, "n", "small", f"{c['a']}: accuracy", f"{c['b']}: accuracy", "difference",
                                f"right only by {c['a']}", f"right only by {c['b']}", "p", "p (Holm)"], body))


def _labels_section(r: dict, parts: list[str], render, max_faces: int = 12) -> None:
    lab = r["labels"]
    names = [n for n in r["classifiers"] if n not in (lab.get("left_out") or ())]  # it judged no face
    k = len(lab["faces"])
    if not lab["share"]["n"]:
        parts.append(f"<p>Not checked: none of the {lab['n_labelled']} labelled faces got a finite P(female) from "
                     f"{esc(label_judges_words(lab))}.</p>")
        return
    parts.append(f"<p>{k} of {esc(labels_checked_words(lab))} ({ci(lab['share'], pct=True)}) are called the other "
                 f"gender by {esc(label_judges_words(lab))} with P ≥ {lab['threshold']}. They stay in every number above; this shows "
                 "how much of each group's error they make up. A person has to look at them: the label, the models "
                 "or both may be wrong.</p>")
    if not k:
        return
    prim = r["groups"]["primary"]
    by = lab["by"].get(prim, {})
    body = []
    for g in sorted(by, key=group_key(prim)):
        row = [g, by[g]["n"], by[g]["contradicted"]]
        for n in names:
            before = r["classifiers"][n]["metrics"]["by"][prim].get(g, {}).get("accuracy")
            after = lab["accuracy_without"][n]["by"].get(prim, {}).get(g)
            row += [ci(before, pct=True), ci(after, pct=True)]
        body.append(row)
    head = [prim, "n", "contradicted"] + [f"{n}: {c}" for n in names for c in ("accuracy", "without them")]
    parts.append(table(head, body))
    if render is not None:
        panels = []
        for f in lab["faces"][:max_faces]:
            face = render(f["file"], f["face"])
            if face is not None:
                panels.append((contradicted_caption(f), face.original.crop))
        rows = [(f"{i + 1}–{i + len(panels[i:i + 6])}", panels[i:i + 6]) for i in range(0, len(panels), 6)]
        parts.append(img(F.face_grid(rows, f"The {len(panels)} most confidently contradicted labels"), "contradicted labels"))


def contradicted_caption(face: dict) -> str:
    """A contradicted face's label and each classifier's P(female), named: "P(f) 0.95 0.92 0.92" had not said
    which classifier gave which."""
    return "\n".join([f"labelled {face['gender']}, P(female):",
                      *(f"{n} {num(p, '.2f')}" for n, p in face["p_female"].items())])


def _distribution_section(r: dict, parts: list[str]) -> None:
    if not any(c["metrics"] for c in r["classifiers"].values()):  # the classifier section has not said it
        parts.append(_not_measured_note(r, list(r["classifiers"])))
    for n, c in r["classifiers"].items():
        hists = {"all faces": c["p_female"]["overall"]["histogram"]}
        for grouping, by in c["p_female"]["by"].items():
            if grouping in ("gender_race", "group"):
                hists.update({g: d["histogram"] for g, d in in_order(grouping, by)})
        # the heading first: a screen reader's heading navigation had put each classifier's figure under the one before
        parts.append(f"<h3>{esc(n)}</h3>")
        parts.append(img(F.histograms(hists, f"{n}: P(female) per face", "P(female)"), f"P(female) histogram {n}"))
        body = []
        rows = [("all faces", c["p_female"]["overall"])] + [
            (f"{grouping}: {g}", d) for grouping, by in c["p_female"]["by"].items() for g, d in in_order(grouping, by)]
        for label, d in rows:
            body.append([label, d["n"], ci(d["mean"], 3), ci(d["median"], 3), ci(d["share_above_0_5"], pct=True),
                         ci(d["share_below_0_5"], pct=True), ci(d["share_confident"], pct=True)])
        parts.append(table(["faces", "n", "mean P(female)", "median P(female)", "P > 0.5", "P < 0.5",
                                                    "confident (P > 0.9 or < 0.1)"], body))


def _skin_section(r: dict, parts: list[str]) -> None:
    for side, s in r["skin"].items():
        body = []
        for label, d in [("all faces", s["overall"])] + [(f"{gp}: {g}", d) for gp, by in s["by"].items()
                                                         for g, d in in_order(gp, by)]:
            body.append([label, d["n_faces"], d["n_not_measurable"], ci(d["ita"]["mean"], 1), ci(d["ita"]["median"], 1),
                         ci(d["L"]["mean"], 1), " ".join(str(c) for c in d["mst_counts"])])
        parts.append(f"<h3>{esc(side)} faces</h3>" + table(
            ["faces", "n", "not measurable", "mean ITA°", "median ITA°", "mean L*", "Monk 1..10 counts"], body))


def _filter_section(r: dict, parts: list[str], render) -> None:
    fl = r["filter"]
    names = list(r["classifiers"])
    # the overall figures, drawn and in every table's last row: they had been only sentences of the summary (a
    # filter pushing light and dark skin apart shows as two humps here, and as a small mean there)
    overall = ("(all faces)", fl["overall"])
    parts.append("<h3>All faces</h3>")
    parts.append(img(F.histograms({"all faces": fl["overall"]["delta_ita"]["histogram"]}, "ΔITA° per face, all faces",
                                  "ΔITA° (clipped to ±30)"), "delta ITA histogram, all faces"))
    for grouping, by in list(fl["by"].items()) or [("faces", {})]:  # no grouping: the all-faces rows alone
        order = group_key(grouping)
        by = dict(in_order(grouping, by))
        if by:
            parts.append(f"<h3>By {esc(grouping)}</h3>")
        parts.append(img(F.grouped_bars({"mean ΔITA°": {g: s["delta_ita"]["mean"] for g, s in by.items()},
                                         "median ΔITA°": {g: s["delta_ita"]["median"] for g, s in by.items()}},
                                        f"ΔITA° by {grouping} (filtered − original; + = higher ITA; 95% CI)", "ΔITA°",
                                        hline=0, order=order), "delta ITA bars"))
        parts.append(img(F.histograms({g: s["delta_ita"]["histogram"] for g, s in by.items()},
                                      f"ΔITA° per face by {grouping}", "ΔITA° (clipped to ±30)"), "delta ITA histograms"))
        if grouping == "skin_tone":
            parts.append(f"<p class='small'>{esc(SKIN_TONE_GROUPS_CAVEAT)}</p>")
        body = [[g, s["n_faces"], _made_unmeasurable(s), s["n_not_measurable"] - s.get("n_made_unmeasurable", 0),
                 ci(s["delta_ita"]["mean"]), median_ci(s["delta_ita"]["median"], ITA_DIGITS),
                 pval(s["delta_ita"]["wilcoxon"]["p"]), holm_cell(s["delta_ita"]["wilcoxon"]),
                 "n/a" if s["delta_ita"]["wilcoxon"]["rank_biserial"] is None else f"{s['delta_ita']['wilcoxon']['rank_biserial']:+.2f}",
                 ci(s["delta_l"]["mean"]), ci((s.get("delta_b") or {}).get("mean")),
                 ci(s["share_lighter_1_monk"], pct=True), ci(s["share_darker_1_monk"], pct=True)]
                for g, s in [*by.items(), overall]]
        parts.append(table([grouping, "n", "made unmeasurable by the filter", "not measurable otherwise", "mean ΔITA°",
                            "median ΔITA°", "Wilcoxon p", "Holm p", "rank-biserial", "mean ΔL*", "mean Δb*",
                            "≥1 Monk lighter", "≥1 Monk darker"], body))
        k = fl["kruskal"].get(grouping)
        if k:
            parts.append("<p>Kruskal–Wallis across groups: " + "; ".join(
                f"{esc(what)}: H = {_num(t['statistic'])}, {pval(t['p'])}"
                for what, t in k.items()) + "</p>")
        for n in names:
            shifts = {g: s["classifiers"][n] for g, s in by.items()}
            parts.append(f"<h4>{esc(n)}</h4>")  # before its figures, which heading navigation had put under the last
            parts.append(img(F.grouped_bars({"mean ΔP(female)": {g: c["delta_p_female"]["mean"] for g, c in shifts.items()},
                                             FLIP_RATE_SERIES: {g: c["flip_rate"] for g, c in shifts.items()}},
                                            f"{n}: ΔP(female) and flip rate by {grouping} (95% CI)", DELTA_P_AXIS,
                                            hline=0, order=order), f"{n}: ΔP(female) and flip rate by {grouping}"))
            parts.append(img(F.histograms({g: s["classifiers"][n]["delta_p_female"]["histogram"] for g, s in by.items()},
                                          f"{n}: ΔP(female) per face by {grouping}", "ΔP(female)"), f"{n}: ΔP(female) histograms by {grouping}"))
            # a median with the digits the summary reads it by (median_ci): rounded to 3, a CI clear of 0 read 0.000
            body = [[g, ci(s["classifiers"][n]["delta_p_female"]["mean"], P_DIGITS),
                     median_ci(s["classifiers"][n]["delta_p_female"]["median"], P_DIGITS),
                     pval(s["classifiers"][n]["delta_p_female"]["wilcoxon"]["p"]),
                     holm_cell(s["classifiers"][n]["delta_p_female"]["wilcoxon"]),
                     ci(s["classifiers"][n]["flip_rate"], pct=True)] for g, s in [*by.items(), overall]]
            parts.append(table([grouping, "mean ΔP(female)", "median ΔP(female)", "Wilcoxon p", "Holm p",
                                                       "gender-flip rate"], body))
    comp = fl["composition"]
    parts.append("<h3>Composition: inputs vs filtered outputs</h3>")
    parts.append(f"<p>{esc(comp['target_note'])}"
                 + (f": target {100 * comp['target_female_share']:.1f}% female" if comp["target_female_share"] is not None else "") + "</p>")
    parts.append(img(F.grouped_bars({"input": {c: v["input"] for c, v in comp["ita_category"].items()},
                                     "output": {c: v["output"] for c, v in comp["ita_category"].items()}},
                                    "Share per ITA category (faces measurable before and after)", "%", 100,
                                    order=group_key(SKIN_TONE)), "ITA composition"))
    body = [[n, ci(e["input"], pct=True), ci(e["output"], pct=True),
             "-" if e["crossed_target"] is None else ("yes" if e["crossed_target"] else "no")]
            for n, e in comp["predicted_female"].items()]
    parts.append(table(["classifier", "predicted female (inputs)", "predicted female (outputs)", "crossed the card's target"], body))
    ex = r["examples"]
    if ex and ex["faces"] and render is not None:
        rows = []
        first = names[0] if names else None
        for g, e in in_order(ex["grouping"], ex["faces"]):
            face = render(e["file"], e["face"])
            if face is None or face.filtered is None:
                continue
            caption, cam = example_map(render, face, first)
            before, after = example_captions(e["p_female"][first]) if first else ("", "")
            rows.append((g, [(f"original ITA {e['ita_original']:.1f}°\n{before}", face.original.crop),
                             (f"filtered ΔITA {e['d_ita']:+.1f}°" + (f"\n{after}" if after else ""), face.filtered.crop),
                             (caption, F.overlay(face.original.crop, cam))]))
        parts.append("<h3>Examples: the median-ΔITA face of each group</h3>")
        parts.append(img(F.face_grid(rows, "Before / after / the CAM of the class the classifier predicts (median ΔITA "
                                           "face of each group, not the most dramatic)"), "examples"))


# the ΔP(female) chart's axis and flip-rate series: ΔP is in P's units, the flip rate a share drawn as a fraction
# beside it, where every other share of the page is in % (its table's column too)
DELTA_P_AXIS = "ΔP(female); flip rate as a share (0–1)"
FLIP_RATE_SERIES = "gender-flip rate (share, 0–1)"


def example_map(render, face, classifier: str | None) -> tuple[str, np.ndarray | None]:
    """An example face's map panel: the CAM of the class ``classifier`` predicts on it, as the focus grid shows, and
    a caption naming that class. The --cam-class map had been shown (the female class's on every face, by default),
    captioned "CAM <classifier>" without a class."""
    mapped = render.focus_map(face, classifier) if classifier else None
    if mapped is None:
        return (f"{classifier}: no CAM" if classifier else "no CAM"), None
    of_class, cam = mapped
    return f"{classifier}: {of_class} CAM", cam


def _made_unmeasurable(s: dict) -> str:
    """'24 of 40 (60.0% [95% CI …])': the faces measurable before the filter and not after, of those measurable before."""
    if "n_made_unmeasurable" not in s:
        return "-"
    return (f"{s['n_made_unmeasurable']} of {s['n_measurable_before']}"
            + (f" ({ci(s['share_made_unmeasurable'], pct=True)})" if s["n_measurable_before"] else ""))


def _gate_section(gate: dict, parts: list[str]) -> None:
    """Every row of the ship gate; a ΔITA row with its ΔL* and Δb*, so that a shift of ITA alone (a low-b* group's
    swing) is told from a change of lightness."""
    def interval(row: dict) -> str:
        pct, nd = row["measure"] == MADE_UNMEASURABLE, 2 if row["measure"] == "delta_ita" else 3
        return ci({"value": row["mean"], "lo": row["lo"], "hi": row["hi"]}, nd=nd, pct=pct)

    def tolerance(row: dict) -> str:
        return f"≤{100 * row['tolerance']:g}%" if row["measure"] == MADE_UNMEASURABLE else f"±{row['tolerance']:g}"

    body = [[measure_name(row["measure"]), row["grouping"], row["group"], row["n"], interval(row), tolerance(row),
             row["verdict"], ci(row.get("delta_l")) if row["measure"] == "delta_ita" else "",
             ci(row.get("delta_b")) if row["measure"] == "delta_ita" else ""] for row in gate["rows"]]
    parts.append("<p>Each row's 95% CI held against its tolerance: within (the whole CI inside), beyond (wholly "
                 "outside: the gate fails), unsettled (it straddles the bound: fails only with --strict), too few (no CI). "
                 "The share made unmeasurable counts the faces whose skin was measurable before the filter and not "
                 "after, which no ΔITA includes. A ΔITA row gives its ΔL* and Δb*: where lightness did not move, the "
                 "ITA moved with yellowness (b*), as it swings on faces of little yellow.</p>")
    parts.append(table(["measure", "grouping", "group", "n", "value [95% CI]", "tolerance", "verdict", "ΔL*", "Δb*"],
                       body))


def example_captions(p: dict) -> tuple[str, str]:
    """An example face's P(female) under its before and after panels. The before is the reference (the crop through
    the filter's resampling), as ΔP is measured from it, so that before → after makes the ΔP shown; the sharp crop's
    own P(female) is named beside it where it reads differently, as the app's label says "from X resized"."""
    ref, orig = p.get("reference"), p.get("original")
    before = f"P(f) {num(ref, '.3f')}"
    if num(orig, ".3f") != num(ref, ".3f"):  # equal where the filter works at the crop's size: nothing resized
        before += f" resized\n({num(orig, '.3f')} unresized)"
    delta = f" (Δ {num(p.get('delta'), '+.3f')})" if measured(p.get("delta")) else ""
    return before, f"P(f) {num(p.get('filtered'), '.3f')}{delta}"


def _focus_section(r: dict, parts: list[str], render) -> None:
    prim = r["groups"]["primary"]
    maps = {c["name"]: map_description(c) for c in r["models"]["classifiers"]}
    for n, f in r["focus"].items():
        parts.append(f"<h3>{esc(n)}{' (' + esc(maps[n]) + ')' if maps.get(n) else ''}</h3>")
        if not f["overall"]["n"]:
            # every focus null (a NaN model's CAM): a chart of empty bars and a grid of no faces say nothing
            no_mass = f.get("no_positive_cam", 0)
            parts.append(f"<p><b>CAM focus not measured:</b> of {r['images']['n_faces']} face(s), {no_mass} had a CAM "
                         f"with no positive mass and {r['images']['n_faces'] - no_mass} a CAM that is not finite "
                         "(NaN or infinite, as from a training that diverged).</p>")
            continue
        if prim:
            parts.append(img(F.grouped_bars({"mean focus": {g: d["mean"] for g, d in f["by"][prim].items()}},
                                            f"{n}: CAM focus by {prim} (share of positive CAM mass on the face; 95% CI)",
                                            "%", 100, order=group_key(prim)), "focus"))
        body = [["all faces", f["overall"]["n"], ci(f["overall"]["mean"], pct=True), ci(f["overall"]["median"], pct=True)]]
        for grouping, by in f["by"].items():
            body += [[f"{grouping}: {g}", d["n"], ci(d["mean"], pct=True), ci(d["median"], pct=True)]
                     for g, d in in_order(grouping, by)]
        parts.append(table(["faces", "n", "mean focus", "median focus"], body))
        k = f.get("kruskal")
        if k and k.get("p") is not None:
            sig = [p for p in f["pairwise"] if p["p_holm"] is not None and p["p_holm"] < ALPHA]
            out = sum(measured(p["p"]) and not in_holm_family(p) for p in f["pairwise"])
            parts.append(f"<p>Kruskal–Wallis across {esc(k['grouping'])}: {pval(k['p'])}. "
                         f"Significant pairs after Holm: {len(sig)} of {len(f['pairwise'])}"
                         + (f" ({out} pair(s) too small for the test to reach significance, left out of Holm's family)"
                            if out else "") + ".</p>")
            if sig:
                parts.append(table(["group a", "group b", "Mann–Whitney p", "Holm p", "rank-biserial"],
                                   [[p["a"], p["b"], pval(p["p"]), pval(p["p_holm"]), num(p['rank_biserial'], '+.2f')] for p in sig]))
        if render is not None:
            rows = []
            for label, items in (("lowest focus", f["lowest"]), ("highest focus", f["highest"])):
                panels = []
                for it in items:
                    if not measured(it.get("focus")):
                        continue
                    face = render(it["file"], it["face"])
                    mapped = render.focus_map(face, n) if face is not None else None
                    if mapped is not None:
                        of_class, cam = mapped
                        panels.append((f"focus {100 * it['focus']:.0f}% ({of_class} CAM)",
                                       F.overlay(face.original.crop, cam)))
                rows.append((label, panels))
            parts.append(img(F.face_grid(rows, f"{n}: faces with the lowest and highest CAM focus"), "focus grid"))


CSS = """body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:12px;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f3f3f3}figure{margin:.5em 0}img{max-width:100%}
li{margin:.3em 0}.small{color:#666;font-size:12px}"""


def software_words(sw: dict | None) -> str:
    """'Bias Mirror 0.1.0 (git c15ab0a…, with changes not committed), measures version 15; Python 3.11.7,
    onnxruntime 1.31.1, …': what made the numbers, from report.json's ``software``; '' for a report without one."""
    if not sw:
        return ""
    git = ""
    if sw.get("git_commit"):
        git = f" (git {sw['git_commit']}" + (", with changes not committed" if sw.get("git_modified") else "") + ")"
    libraries = ", ".join(f"{name} {sw[key]}" for key, name in (("python", "Python"), ("onnxruntime", "onnxruntime"),
                                                                 ("opencv", "OpenCV"), ("numpy", "NumPy"),
                                                                 ("scipy", "SciPy")) if sw.get(key))
    return (f"Bias Mirror {_or(sw.get('bias_mirror'), 'version unknown (not installed)')}{git}, measures version "
            f"{sw.get('measures_version')}; {libraries}")


def run_words(run: dict | None) -> str:
    """'run 2026-12-07T10:00:00+00:00: python main.py audit --dataset utkface:utkface …', from what run.json records;
    '' without it. Each path by its last part, as report.json names the dataset: the page is the file people forward,
    and it had shown the folders of the user's home; run.json keeps the command whole."""
    if not run:
        return ""
    # the program as this audit was started, which writes the page: an installed user has no main.py to run again
    command = f"{program()} {shlex.join(map(_shareable, run['argv']))}".rstrip() if run.get("argv") is not None else ""
    return f"run {run.get('date', '')}" + (f": {command}" if command else "")


def _shareable(arg: str) -> str:
    """A command-line argument as the page shows it: written as UTF-8 can hold it (a Latin-1 byte of a folder's name
    had stopped the page's write and lost the whole audit), a path by its last part (a dataset spec keeps its KIND:,
    an --option=value its option: "--dataset=folder:/home/x" had shown as "x")."""
    option, equals, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
    if option and not equals:  # an option's name alone
        return printable(arg)
    kind, path = kind_and_path(value)
    sep = ":" if kind else ""
    if "/" in path or "\\" in path:
        path = PureWindowsPath(path.rstrip("/\\")).name or path  # a Windows path splits at either slash
    return printable(f"{option}{equals}{kind}{sep}{path}")  # after the split: its escapes hold backslashes


def _models_table(models: dict) -> str:
    """Every model with its file's full sha256: the 16 hex digits shown had matched no hash a checker computes."""
    rows = [["classifier", c["name"], c["file"], c["sha256"], c["card"]] for c in models["classifiers"]]
    if models["filter"]:
        f = models["filter"]
        rows.append(["filter", f["name"], f["file"], f["sha256"], f["card"]])
    return table(["role", "name", "file", "sha256", "card"], rows)


def build_html(r: dict, render=None) -> str:
    """The page of report ``r``: report.json's document, with under "run" the run's date and command line
    (``argv``) as run.json keeps them, for the header (report.json holds no date, so that reruns are byte-identical;
    without "run" the header leaves them out)."""
    a, im = r["audit"], r["images"]
    said = [w for w in (run_words(r.get("run")), software_words(r.get("software"))) if w]
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Bias Mirror audit</title><style>{CSS}</style></head><body>",
             "<h1>Bias Mirror audit</h1>",
             f"<p class='small'>dataset {esc(a['dataset'])}; split {esc(a['split'] or 'all')}; min age {esc(_or(a['min_age'], 'none'))}; "
             f"limit {esc(_or(a['limit'], 'none'))}; faces {'detected (' + esc(a['detector']) + ')' if a['detect'] else 'aligned (whole image)'}; "
             f"report schema {r['schema_version']}</p>",
             *(f"<p class='small'>{esc(w)}</p>" for w in said),
             "<h2>Summary</h2><ul>" + "".join(f"<li>{esc(s)}</li>" for s in r["summary"]) + "</ul>",
             "<h2>Models</h2>" + _models_table(r["models"]),
             f"<h2>Images</h2><p>{im['n_images']} image(s), {im['n_with_faces']} with a face, {im['n_faces']} face(s); "
             f"{im['n_several_faces']} image(s) with several faces (each face counted with its box).</p>"]
    if im.get("empty_folder"):
        parts.append("<p><b>The folder holds no images.</b></p>")
    if im.get("photos_not_read"):
        parts.append(f"<p><b>Not audited, of a type that cannot be read here ({len(im['photos_not_read'])}; convert "
                     "them, e.g. to JPEG, to include them):</b> "
                     + esc(", ".join(f"{p['file']} ({p['type']})" for p in im["photos_not_read"])) + "</p>")
    if im.get("first_frame_only"):
        parts.append(f"<p><b>Only the first frame audited ({len(im['first_frame_only'])}; "
                     f"{esc(first_frame_only_advice())}):</b> " + esc(", ".join(f"{f['file']} ({f['frames']} frames)" for f in im["first_frame_only"]))
                     + "</p>")
    if im["no_face"]:
        parts.append(f"<p><b>No face found in {len(im['no_face'])} image(s):</b> " + esc(", ".join(im["no_face"])) + "</p>")
    if im.get("faces_not_analysed"):  # their faces beyond --max-faces are in no figure below
        parts.append(f"<p><b>More faces than analysed (the {esc(a.get('max_faces'))} largest of each image; "
                     "--max-faces analyses more):</b> "
                     + esc(", ".join(f"{i['file']} ({i['n_analysed']} of {i['n_found']})" for i in im["faces_not_analysed"]))
                     + "</p>")
    if r.get("detection"):
        parts.append("<h2>Faces found, per group</h2>")
        _detection_section(r["detection"], parts)
    if im["unreadable"]:
        parts.append("<p><b>Unreadable:</b> " + esc(", ".join(u["file"] for u in im["unreadable"])) + "</p>")
    gc = im.get("groups_csv")
    if gc:
        parts.append(f"<p>Groups from {esc(gc['file'])}. Listed but not found: {esc(', '.join(gc['listed_not_found']) or 'none')}. "
                     f"Images not listed: {esc(', '.join(gc['not_listed']) or 'none')}.</p>")
    if im["n_faces"]:
        if any(c["metrics"] for c in r["classifiers"].values()):
            parts.append("<h2>Classifier audit (labelled)</h2>")
            _classifier_section(r, parts)
            if r.get("labels"):
                parts.append("<h3>Labels every classifier contradicts</h3>")
                _labels_section(r, parts, render)
        parts.append("<h2>P(female) distributions</h2>")
        _distribution_section(r, parts)
        parts.append("<h2>Skin tone (ITA°, Monk)</h2>")
        _skin_section(r, parts)
        if r["filter"]:
            parts.append("<h2>Filter audit</h2>")
            _filter_section(r, parts, render)
        if r.get("gate"):
            parts.append("<h2>Ship gate</h2>")
            _gate_section(r["gate"], parts)
        parts.append("<h2>CAM focus</h2>")
        _focus_section(r, parts, render)
    parts.append("<h2>Caveats</h2><ul>" + "".join(f"<li>{esc(c)}</li>" for c in r["caveats"]) + "</ul></body></html>")
    return "\n".join(parts)


class NotDrawn(Exception):
    """report.html could not be drawn (a figure, a face re-rendered); the reason is the exception it comes from."""


def write_html(path: Path, report: dict, collector, paths: dict[str, str]) -> None:
    """Draws the page of ``report`` (with its "run", as ``build_html`` reads it), then writes it to ``path``. A
    failure to draw it is raised as NotDrawn, apart from a write the disk refused, so that the audit can keep
    report.json and faces.csv: a group name matplotlib could not draw had lost every file of a finished audit."""
    try:
        render = Renderer(collector, paths) if report["images"]["n_faces"] else None
        page = build_html(report, render)
    except Exception as exc:  # noqa: BLE001 - whatever stopped the drawing, the report's numbers stand
        raise NotDrawn(f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}") from exc  # matplotlib's span lines
    missing = F.glyphs_missing(_names(report))
    if missing:
        # not named by ``path``: the page is written under a staged name, then moved into place
        log.warning("report.html: no font installed here draws %s (in group or model names): its figures show boxes "
                    "for them, its tables and report.json are right; install a font that has them (e.g. Noto Sans "
                    "CJK) and run the audit again for figures that name them", missing[:40])
    # a lone surrogate (a name's byte not UTF-8) anywhere on the page escaped, not an audit lost at its last write
    path.write_text(page, encoding="utf-8", errors="backslashreplace")


def _names(report) -> set[str]:
    """Every dict key of ``report``: its group, grouping and model names among them, as the figures draw them."""
    names: set[str] = set()
    stack = [report]
    while stack:
        part = stack.pop()
        if isinstance(part, dict):
            names.update(k for k in part if isinstance(k, str))
            stack.extend(part.values())
        elif isinstance(part, list):
            stack.extend(part)
    return names
