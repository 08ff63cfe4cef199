"""report.json: one document every number in report.html and the terminal summary comes from.

The schema is documented in docs/audit_schema.md; bump SCHEMA_VERSION when a
key changes meaning. The document holds no timestamps or absolute paths, so
running the same audit twice writes byte-identical files (run metadata goes to run.json).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from .. import strict_json
from ..card_fields import CardNotes
from ..metrics import SMALL_GROUP, group_order
from ..provenance import software
from ..rows import printable
from ..skin import NOT_MEASURABLE
from .classifier_audit import classifier_comparisons, classifier_metrics, labels_look_reversed, p_female_distribution
from .detection import detection_audit
from .filter_audit import ITA_CATEGORIES, filter_audit
from .focus import focus_audit
from .groups import groupings as make_groupings
from .groups import is_small, primary, split
from .label_check import contradicted_labels
from .stats import CONFIDENCE, INTERVAL_METHODS, ITA_RANGE, L_RANGE, SEED, mean_or_median_ci

SCHEMA_VERSION = 19  # 2: `detection`, the share of images with a face found, per group; 3: `gate` (optional); 4: `gate.not_judged`, `gate.passed` null;
# 5: `labels.n_checked` (and `labels.share` of those), `images.photos_not_read`, `models.classifiers[].cam`, `audit.filter_condition`, `models.filter.conditions`;
# 6: `audit.max_faces`, `images.faces_not_analysed`, `examples.faces[].p_female[].reference` and `.delta`;
# 7: `filter…n_measurable_before`, `n_made_unmeasurable`, `n_made_measurable`, `n_never_measurable`,
# `share_made_unmeasurable`, `delta_b`; `gate.max_unmeasurable_share`, gate rows of measure `made_unmeasurable`, and
# `gate.rows[].delta_l` / `.delta_b`; 8: `images.first_frame_only`; 9: `labels.faces[].age` a dataset's age bin as text;
# 10: `gate.not_gated`; 11: `images.folders_not_read`; 12: `filter…delta_ita_from_b`; 13: `classifiers…metrics.tests`,
# `gate.rows[].delta_ita_from_b`, a mean's CI Student's t at every n (BCa from 30 values had been), a proportion's the modified Wilson;
# 14: `software`; 15: `filter…n_moved`, `share_moved` (and faces.csv's `moved_px`); 16: `audit.statistics.intervals`
# and every test object's `method` (neither named an interval's method or a test's variant), and faces.csv's grouping
# columns `gender_race`, `age_band`, `skin_tone`, its `race` and `group` spelt as report.json's groups; 17: means of
# P(female), CAM focus and (under 100 faces, or < 10 apart) ΔP(female) get the betting interval, `intervals.bounded_means`
# 18: a grouping's Holm family holds only the tests that can reach significance: `least_p`, `holm_family`,
# `holm_family_size` on every grouped Wilcoxon, McNemar and focus pairwise test, `p_holm` null on those left out;
# 19: `classifiers…labels_look_reversed`, `labels.left_out` (and `labels` null where every classifier is left out),
# `gate.labels_look_reversed`
# What a classifier whose card lists its labels in the reverse of its outputs gets wrong (``labels_look_reversed``)
REVERSED_WHAT = ("its card probably lists its labels in the reverse of its outputs, so its P(female), ΔP(female), "
                 "CAM focus and share predicted female all read the other way round; the label check leaves it out")
TOP_LEVEL_KEYS = ("schema_version", "audit", "software", "models", "images", "detection", "groups", "skin", "classifiers", "comparisons",
                  "labels", "focus", "filter", "examples", "summary", "caveats")

# What the "race" of each kind of dataset is: every report had said "(UTKFace)", CelebA's pale/not-pale proxy too
RACE_CAVEATS = {
    "utkface": "Race labels (UTKFace) are annotations made by others from a photo, not self-identification.",
    "fairface": "Race labels (FairFace) are annotations made by others from a photo, not self-identification.",
    "celeba": "CelebA has no race labels: its \"race\" groups (pale / not_pale) are its Pale_Skin attribute, a skin "
              "proxy annotated by others from a photo, not race or ethnicity.",
    "folder": "Race labels from a labels CSV, where given, are its author's annotations, not self-identification "
              "unless the people pictured gave them.",
}
CAVEATS = [  # with the race sentence of the dataset read second (``caveats``)
    "Gender labels are the dataset's binary annotations (or a classifier's output), not anyone's gender identity.",
    "ITA° and Monk tone measure the picture, not the person: they depend on lighting, exposure and white balance.",
    f"Small groups (n < {SMALL_GROUP}) have wide intervals; differences involving them are uncertain.",
    # faces of one person share their lighting, skin and look, so they move together: over 3 people × 20 photos, true
    # mean shift 0, the Wilcoxon test was significant 66 % of the time, not 5 % (docs/architecture.md)
    "Every test and interval takes each face as independent of the others. Photos of one person, faces of one group "
    "photo and frames of one video are not: where a dataset repeats people, significance is overstated and intervals "
    "are too narrow.",
    "Monk tones are approximated by the nearest swatch in colour; the scale is meant for human annotation.",
]


SKIN_TONE = "skin_tone"  # the grouping of faces by their ITA category (groups.groupings)
SKIN_TONE_ORDER = (*ITA_CATEGORIES, NOT_MEASURABLE)  # down the ITA scale, very light to dark; unmeasured last


def group_key(grouping: str | None) -> Callable[[str], tuple]:
    """The sort key of a grouping's groups in every table, figure and gate row: skin tones down the ITA scale, "not
    measurable" last (by name they had run brown, dark, intermediate, light, not measurable, tan, very light); any
    other grouping's by ``metrics.group_order`` (age bands by their lower bound, then names)."""
    if grouping != SKIN_TONE:
        return group_order
    return lambda g: (SKIN_TONE_ORDER.index(g), g) if g in SKIN_TONE_ORDER else (len(SKIN_TONE_ORDER), g)


def in_order(grouping: str | None, by: dict) -> list[tuple[str, Any]]:
    """A grouping's groups and their entries in the order of every table and figure (``group_key``: skin
    tones down the ITA scale, which by name had run brown, dark, intermediate, light, not measurable, tan, very
    light)."""
    return sorted(by.items(), key=lambda item: group_key(grouping)(item[0]))


def caveats(kind: str) -> list[str]:
    """CAVEATS, with the race sentence of the dataset ``kind`` (utkface, celeba, fairface or folder) read."""
    return [CAVEATS[0], RACE_CAVEATS[kind], *CAVEATS[1:]]


def skin_summary(rows: Sequence[dict], key: str) -> dict:
    measured = [r[key] for r in rows if r[key] and r[key]["measurable"]]
    mst = [0] * 10
    for s in measured:
        mst[s["mst"] - 1] += 1
    cats = {c: sum(s["category"] == c for s in measured) for c in ITA_CATEGORIES}
    return {"n_faces": len(rows), "n_measurable": len(measured), "n_not_measurable": len(rows) - len(measured),
            "ita": {"mean": mean_or_median_ci([s["ita"] for s in measured], "mean", ITA_RANGE),
                    "median": mean_or_median_ci([s["ita"] for s in measured], "median")},
            "L": {"mean": mean_or_median_ci([s["L"] for s in measured], "mean", L_RANGE)},
            "mst_counts": mst, "ita_category_counts": cats}


def _skin_section(rows, groups, has_filter) -> dict:
    out = {}
    for key in ("skin", "filtered_skin") if has_filter else ("skin",):
        name = "original" if key == "skin" else "filtered"
        out[name] = {"overall": skin_summary(rows, key),
                     "by": {g: {k: skin_summary(rs, key) for k, rs in split(rows, labels).items()}
                            for g, labels in groups.items()}}
    return out


def _examples(rows, groups, prim, names) -> dict:
    """Per group of the primary grouping: the face with the MEDIAN ΔITA (lower median), not the most dramatic."""
    out = {}
    if prim is None:
        parts = {"all": list(rows)}
    else:
        parts = split(rows, groups[prim])
    for g, rs in parts.items():
        ms = sorted((r for r in rs if r["d_ita"] is not None), key=lambda r: (r["d_ita"], r["file"], r["face"]))
        if not ms:
            continue
        r = ms[(len(ms) - 1) // 2]
        out[g] = {"file": r["file"], "face": r["face"], "d_ita": r["d_ita"], "ita_original": r["skin"]["ita"],
                  "ita_filtered": r["filtered_skin"]["ita"], "mst_original": r["skin"]["mst"],
                  "mst_filtered": r["filtered_skin"]["mst"],
                  "p_female": {n: _example_p_female(r["clf"][n]) for n in names}}
    return {"grouping": prim or "all", "rule": "median ΔITA face of each group", "faces": out}


def _example_p_female(c: dict) -> dict:
    """An example face's P(female) before and after the filter. The "before" is the reference, the crop through the
    filter's resampling alone, which ΔP(female) and flips are measured from (faces.csv's p_female_reference), so
    that filtered − reference is the face's ΔP; the sharp crop's P(female) is kept as "original". The example had
    shown original → filtered beside a ΔP that the two did not make (0.940 → 0.931 with a ΔP of −0.0068)."""
    return {"reference": c.get("p_ref"), "filtered": c.get("p_f"), "delta": c.get("dp"), "original": c["p"]}


def faces_not_analysed(images: Sequence[dict]) -> list[dict]:
    """The images in which the detector found more faces than --max-faces lets be analysed (the largest are): the
    others have no row and are in no number of the report, so they are named, never dropped silently."""
    return [{"file": i["file"], "n_found": i["n_found"], "n_analysed": i["n_faces"]}
            for i in images if i.get("n_found", i["n_faces"]) > i["n_faces"]]


def _filter_notes(models: dict) -> CardNotes:
    """The audit's reading of the filter's card, naming its file (as report.json's models.filter names it): a
    target share of no type read had been warned of as "a model card's …", naming none."""
    return CardNotes((models.get("filter") or {}).get("file"))


def reversed_labels(models: dict, metrics: dict) -> dict[str, bool | None]:
    """Classifier → ``labels_look_reversed`` of its card's labels and its overall accuracy (None unlabelled)."""
    labels = {c["name"]: c.get("labels") for c in models.get("classifiers") or []}
    return {n: labels_look_reversed(labels.get(n), (m or {}).get("overall")) for n, m in metrics.items()}


def reversed_labels_caveats(models: dict, reversed_: dict[str, bool | None]) -> list[str]:
    """A caveat for each classifier whose labels look reversed: every number of it reads the other way round."""
    files = {c["name"]: c.get("file") for c in models.get("classifiers") or []}
    return [f"{n} ({files.get(n) or 'its file'}): {REVERSED_WHAT}" for n, v in reversed_.items() if v]


def build_report(*, audit: dict, models: dict, images: list[dict], rows: list[dict], labelled: bool,
                 names: Sequence[str], has_filter: bool, filter_training: dict, extra_images: dict) -> dict:
    groups = make_groupings(rows, labelled)
    prim = primary(groups)
    group_sizes = {g: {k: len(v) for k, v in split(rows, labels).items()} for g, labels in groups.items()}
    classifiers: dict[str, Any] = {}
    metrics = classifier_metrics(rows, groups, names) if labelled else {}
    reversed_ = reversed_labels(models, metrics)
    for n in names:
        entry: dict[str, Any] = {"metrics": metrics.get(n), "labels_look_reversed": reversed_.get(n)}
        dist = {"overall": p_female_distribution([r["clf"][n]["p"] for r in rows]), "by": {}}
        for g, labels in groups.items():
            dist["by"][g] = {k: p_female_distribution([r["clf"][n]["p"] for r in rs]) for k, rs in split(rows, labels).items()}
        entry["p_female"] = dist
        if has_filter:
            entry["p_female_filtered"] = {"overall": p_female_distribution([r["clf"][n].get("p_f") for r in rows])}
        classifiers[n] = entry
    no_face = [i["file"] for i in images if i["error"] is None and i["n_faces"] == 0]
    unreadable = [{"file": i["file"], "error": i["error"]} for i in images if i["error"] is not None]
    report = {
        "schema_version": SCHEMA_VERSION,
        "audit": {**audit, "labelled": labelled,
                  "statistics": {"confidence": CONFIDENCE, "permutation_seed": SEED,
                                 "small_group": SMALL_GROUP, "intervals": dict(INTERVAL_METHODS)}},
        "software": software(),
        "models": models,
        "images": {"n_images": len(images), "n_faces": len(rows),
                   "n_with_faces": sum(i["n_faces"] > 0 for i in images),
                   "n_several_faces": sum(i["n_faces"] > 1 for i in images),
                   "no_face": no_face, "unreadable": unreadable, "faces_not_analysed": faces_not_analysed(images),
                   **extra_images},
        "detection": detection_audit(images, make_groupings(images, labelled), audit["detector"]) if audit["detect"] else None,
        "groups": {"groupings": list(groups), "primary": prim, "sizes": group_sizes,
                   "small": {g: sorted((k for k, n in s.items() if is_small(n)), key=group_order)
                             for g, s in group_sizes.items()}},
        "skin": _skin_section(rows, groups, has_filter),
        "classifiers": classifiers,
        "comparisons": classifier_comparisons(rows, groups, names) if labelled and len(names) > 1 else None,
        "labels": contradicted_labels(rows, {g: v for g, v in groups.items() if g != "group"}, names,
                                      left_out=[n for n, v in reversed_.items() if v]) if labelled else None,
        "focus": focus_audit(rows, groups, prim, names),
        "filter": filter_audit(rows, groups, names, filter_training, _filter_notes(models)) if has_filter else None,
        "examples": _examples(rows, groups, prim, names) if has_filter else None,
        "caveats": caveats(audit["kind"]) + reversed_labels_caveats(models, reversed_),
    }
    from .summary import summary_lines

    # The summary and the HTML read what report.json says: a NaN (an FPR for a group with no negatives) is
    # null there, and "not measured" to them, never "nan%" or a comparison that NaN quietly fails. So are file
    # names: one not UTF-8 is shown escaped (``printable``) in every file, as faces.csv shows it.
    report = printable_doc(strict_json.finite(report))
    report["summary"] = summary_lines(report)
    return {k: report[k] for k in TOP_LEVEL_KEYS}


def printable_doc(x: Any) -> Any:
    """``x`` with every string, keys too, ``printable``: a file name's bytes that are not UTF-8 shown escaped, as
    faces.csv shows them (``json.dumps`` left them as lone surrogates, which no UTF-8 file can hold)."""
    if isinstance(x, str):
        return printable(x)
    if isinstance(x, dict):
        return {printable_doc(k): printable_doc(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [printable_doc(v) for v in x]
    return x


def write_json(path: Path, doc: dict) -> None:
    path.write_text(strict_json.dumps(printable_doc(doc), significant=10, indent=1, ensure_ascii=False) + "\n",
                    encoding="utf-8")
