"""`python main.py audit`: run classifiers (and a filter) over a dataset and write a report.

    python main.py audit --dataset utkface:PATH --split test --min-age 18 \\
        --classifier A.onnx --classifier B.onnx --filter F.onnx --out runs/audit

Writes OUT/report.json (schema: docs/audit_schema.md), OUT/report.html,
OUT/faces.csv (one row per face), OUT/run.json (date, timings, machine) and
OUT/cache/ (per-image results; an interrupted audit resumes from it).

Exit status: 0 the audit measured faces (and the ship gate, if given, passed); 1 the ship gate failed (with
--strict, also where a classifier's card seems to list its labels in reverse: gate.py); 2 an error
(report.html among them: one that cannot be drawn is left out, the other files written, whatever the gate said),
or nothing was measured (no image in the folder, none readable, or no face found; or the ship gate could judge
no group of a shift it was given, e.g. a classifier whose P(female) is never finite: the report is written all the
same); 130 interrupted (Ctrl-C or SIGTERM).
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import datetime as _dt
import logging
import math
import os
import platform
import re
import sys
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence, TextIO

from ..arg_checks import check_output_dir, data_folders, float_at_least, positive_int, refuse_empty
from ..card_fields import CardNotes
from ..cli_common import (add_dataset_cache_argument, add_face_choice_arguments, add_model_arguments, aligned_why,
                          checked_cam_class, checked_condition, dataset_cache_dir, detector_from_args, detects_faces,
                          runtime_from_args)
from ..datasets import (USER_CACHE, DatasetCache, DatasetRead, Sample, cache_folder, merge_copies, read_folder,
                        read_spec, select)
from ..writing import Staged, one_writer, writing
from ..datasets.csv_file import file_name_readings, read_csv_rows, read_rows_by_file
from ..datasets.framing import warn_if_loosely_framed
from ..datasets.folder import (NOT_IN_FOLDER, FileNames, folder_bases, labels_csv_of, list_folder, named_within,
                               path_within)
from ..datasets.sample import IMAGE_EXTENSIONS, nfc
from ..datasets.sample import listed_not_found as listed_not_found_why
from ..datasets.splits import say_bands_cut
from ..defaults import load_selection
from ..errors import BiasMirrorError
from ..file_identity import file_hash
from ..rows import printable, text_cell
from ..sources import frame_count
from ..untrusted_text import terminal_safe
from .cache import Cache
from .collect import MAX_FACES, Collector, ModelSet, relative, resolve
from .gate import (DEFAULT_MAX_UNMEASURABLE_SHARE, fewest_faces_shown_within, filter_gate, gate_lines, not_judged_reason,
                   reversed_classifiers, reversed_why)
from .groups import groupings
from .report import build_report, write_json
from .sampling import stratified_limit
from .summary import (first_frame_only_advice, faces_not_analysed_words, first_frame_only_words, folders_not_read_words,
                      photos_not_read_words)

log = logging.getLogger(__name__)


EXIT_STATUSES = ("exit status: 0 faces were measured (and the ship gate, if given, passed); 1 the ship gate failed "
                 "(with --strict, on a classifier whose card seems to list its labels in reverse too); "
                 "2 an error, or nothing was measured (no images, none readable, or no face found; or a --groups CSV "
                 "grouped none of the images audited; or the ship gate "
                 "could not be judged: a shift it was given could be judged in no group; the report is still written), "
                 "or report.html could not be drawn (the other files are written, whatever the gate said); "
                 "130 interrupted (Ctrl-C or SIGTERM)")
NOTHING_MEASURED = 2  # an error's status: the gate's 1 told a CI job "the filter failed" of an audit that measured nothing
HTML_NOT_DRAWN = 2  # an error's status too: a group name matplotlib could not draw had ended the audit with 1


MAX_DELTA_ITA = 180.0  # ITA lies within ±90°: no shift reaches it


def tolerance(limit: float, why: str):
    """A gate's tolerance: above 0 and below ``limit``, which no mean shift can reach (``why``), so that a tolerance
    there passes every filter: `--max-delta-p 1.5` could never fail."""
    return float_at_least(0, above=True, most=limit, below=True, why=f"{why}, so no filter could fail it")


def _faces_to_show_the_share_within() -> str:
    """What the share row asks of a group's size at the default tolerance, for --strict's help and the share's: a
    perfect filter failed `--strict --max-delta-ita` on every group too small to show its share within, which only
    the schema had said."""
    n = fewest_faces_shown_within(DEFAULT_MAX_UNMEASURABLE_SHARE)
    return f"shown within only from {n} faces with none lost"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.epilog = EXIT_STATUSES
    share_needs = _faces_to_show_the_share_within()
    p.add_argument("--dataset", required=True, help="KIND:PATH with KIND utkface, celeba, fairface or folder")
    p.add_argument("--split", choices=["train", "val", "test", "all"],
                   help="only this split; all: every image, as without --split (default: every image)")
    p.add_argument("--min-age", type=int, help="only faces at least this old (labelled datasets; default: any age)")
    p.add_argument("--limit", type=positive_int,
                   help="at most N images, a deterministic sample stratified over gender × race and --groups (default: all)")
    p.add_argument("--groups", help="CSV with columns file, group: compare these groups (any names)")
    p.add_argument("--out", required=True, help="output folder (report.json, report.html, faces.csv, run.json, cache/)")
    add_face_choice_arguments(p)
    p.add_argument("--max-faces", type=positive_int, default=MAX_FACES,
                   help="faces analysed in an image where the detector finds them, the largest first (default "
                        "%(default)s); an image with more is said at the end, and listed in report.json")
    p.add_argument("--batch", type=positive_int, default=32, help="images per batched model call (default %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-html", action="store_true", help="leave out report.html (the one file with face crops)")
    add_dataset_cache_argument(p)
    gate = p.add_argument_group("ship gate (a filter): exit status 1 when a group's mean shift, or its share of faces "
                                "made unmeasurable, is shown beyond tolerance, 2 when a shift it is given can be judged "
                                "in no group")
    gate.add_argument("--max-delta-ita", type=tolerance(MAX_DELTA_ITA, "ITA lies within ±90°"), metavar="DEG",
                      help=f"tolerated mean skin-tone shift per group, ± degrees ITA (below {MAX_DELTA_ITA:g}); judges "
                           "the share of faces made unmeasurable too (--max-unmeasurable-share)")
    gate.add_argument("--max-unmeasurable-share", metavar="SHARE",
                      type=float_at_least(0, most=1, below=True, why="a share lies within 0 to 1"),
                      help="with --max-delta-ita: tolerated share per group of the faces whose skin was measurable "
                           "before the filter and not after it (crushed to black or grey: they have no ΔITA, so a "
                           "filter that blacks out darker faces would pass ΔITA on the faces it spared); fails where "
                           f"the share's 95%% CI lies wholly above it (default {DEFAULT_MAX_UNMEASURABLE_SHARE:g}: an "
                           "identity filter loses no face, the shipped filter about 1%%); at the default, a group's "
                           f"share made unmeasurable is {share_needs}: under --strict, raise it for smaller groups")
    gate.add_argument("--max-delta-p", type=tolerance(1.0, "P(female) lies within 0 to 1"), metavar="P",
                      help="tolerated mean ΔP(female) per group and classifier, ± (e.g. 0.02; below 1)")
    gate.add_argument("--strict", action="store_true",
                      help="fail unless every group is shown within tolerance (needs enough faces per group; with "
                           "--max-delta-ita, its share of faces made unmeasurable too, which at the default "
                           f"--max-unmeasurable-share {DEFAULT_MAX_UNMEASURABLE_SHARE:g} is {share_needs}: "
                           "raise that tolerance for smaller groups); on labelled faces, fail too where a "
                           "classifier's card seems to list its labels in the reverse of its outputs (accuracy "
                           "shown below chance)")
    add_model_arguments(p)


def read_dataset(spec: str, groups_csv: str | None, cache_dir: DatasetCache = USER_CACHE,
                 progress: bool = True) -> tuple[DatasetRead, dict]:
    """The dataset, with the user's groups joined on; ``notes`` lists CSV files not found / images not listed. The
    copy detection keeps what it computes in ``cache_dir`` (``open_dataset``'s)."""
    kind, _, path = spec.partition(":")
    notes: dict = {}
    if groups_csv:  # checked on an empty folder too, which was audited with a CSV that did not exist
        _groups_columns(groups_csv)
    # a folder is listed once: listing it again to read it had doubled every warning of the listing
    folder = Path(path).expanduser() if kind == "folder" and path.strip() else None
    listing = list_folder(folder) if folder is not None and folder.is_dir() else None
    images = listing.images if listing is not None else None
    if listing is not None and listing.not_read:  # named in the report, not in a warning alone: they were not audited
        notes["photos_not_read"] = [{"file": p.relative_to(folder).as_posix(), "type": kind}
                                    for p, kind in listing.not_read]
    if listing is not None and listing.folders_not_read:  # as above: their images were not audited either
        notes["folders_not_read"] = [{"folder": p.relative_to(folder).as_posix(), "why": why}
                                     for p, why in listing.folders_not_read]
    if images == []:
        return DatasetRead("folder", str(folder), [], []), {"empty_folder": True, **notes}
    columns = _groups_columns(groups_csv) if groups_csv else set()
    if folder is not None and columns & LABEL_COLUMNS:
        own = labels_csv_of(folder)  # Labels.csv too, which read_folder reads as the folder's labels
        if own.exists() and not own.samefile(groups_csv):
            # one would silently replace the other: the folder's labels were dropped, and a labelled audit became
            # an unlabelled one without a word
            raise BiasMirrorError(f"the groups CSV has label column(s) {', '.join(sorted(columns & LABEL_COLUMNS))} and "
                                  f"the folder has its own {own.name}: give the groups in a CSV of columns file and group "
                                  "only (they join the folder's labels), or all labels in one of the two files", groups_csv)
        # a folder's groups CSV that carries labels too is read as its labels CSV: its rows naming no image are
        # those its reader skipped so (a bare name too: "did you mean sub/a.jpg?")
        read = read_folder(folder, groups_csv, images)
        listed_not_found = [n for n, why in read.skipped if listed_not_found_why(why)]
        read = dataclasses.replace(read, skipped=[(n, why.replace(NOT_IN_FOLDER, GROUPS_NOT_FOUND, 1))
                                                  for n, why in read.skipped])
    else:  # a plain groups CSV joins the dataset's own labels (a folder's labels.csv was once dropped for it)
        read = read_folder(folder, images=images) if images else read_spec(spec)
        if groups_csv:
            before = len(read.skipped)
            read = _join_groups(read, groups_csv)
            # its own rows only: a folder labels.csv's bare name had been reported as the groups CSV's
            listed_not_found = [n for n, _ in read.skipped[before:]]
    # after the groups are joined, so that copies the CSV puts in different groups are caught as a conflict
    read = merge_copies(read, cache_folder(cache_dir), progress)  # --no-progress: a first look unshown too
    if groups_csv:  # "not_listed" is added once the images to audit are chosen: of those, not of the whole folder
        notes["groups_csv"] = {
            "file": Path(groups_csv).name,
            "listed_not_found": sorted(shareable_name(n, read.root) for n in listed_not_found),
        }
    return read, notes


def shareable_name(name: str, root: str) -> str:
    """A CSV row's file name as the report keeps it: an absolute path, or one that steps up (".."), relative to the
    dataset where the readers place it (``named_within``: the folder as given or with links followed; given relative,
    "folder:faces", its rows had lost their subfolders), else by its last part ("…/x.jpg"). The report is the file people share, and a row naming a photo missing from
    the folder had put a path of the user's home (/home/frank/secret_project/…) in report.json and on the page; the
    terminal's warning keeps the whole path."""
    posix = name.replace("\\", "/")
    absolute = posix.startswith("/") or re.match(r"[A-Za-z]:/", posix) is not None
    if not absolute and ".." not in posix.split("/"):
        return name
    # where the readers place it (links followed, as the OS reads ".."), or outside ("../../private/x.jpg" too)
    return named_within(name, folder_bases(Path(root))) or "…/" + posix.rstrip("/").rsplit("/", 1)[-1]


GROUPS_NOT_FOUND = "listed in the groups CSV but not in the folder"
LABEL_COLUMNS = {"gender", "race", "age", "split"}


def _groups_columns(groups_csv: str) -> set[str]:
    """The groups CSV's columns, once it is known to have 'file' and 'group' (for every kind of dataset)."""
    if not Path(groups_csv).exists():
        raise BiasMirrorError("the groups CSV does not exist", groups_csv)
    columns = set(read_csv_rows(groups_csv, "the groups CSV")[0])
    if not {"file", "group"} <= columns:
        raise BiasMirrorError("the groups CSV needs columns 'file' and 'group'", groups_csv)
    return columns


def _join_groups(read: DatasetRead, groups_csv: str) -> DatasetRead:
    """Each image takes the group of its row: the one naming its path in the folder (``_rows_by_path``), else its
    bare file name. A row that names no image is reported; an empty group cell is an image listed without a group.
    (A row with an empty cell had been reported "not in the folder", and its image took another row's group by bare
    name.) A bare name that would group two images is refused (``_refuse_shared_names``)."""
    _, listed = read_rows_by_file(groups_csv, "the groups CSV", compared=["group"])
    # names compared in NFC: a CSV typed on one system names the files another stored decomposed (macOS)
    groups = {nfc(name): (r.get("group") or "").strip() for name, r in listed.items()}
    rels = {s.path: nfc(relative(s.path, read.root)) for s in read.samples}
    row_naming = _rows_by_path(groups, read.root, set(rels.values()), groups_csv)
    by_bare_name = _rows_by_bare_name(groups, {nfc(Path(s.path).name) for s in read.samples})
    row_of: dict[str, str | None] = {}
    for s in read.samples:
        row_of[s.path] = row_naming.get(rels[s.path]) or by_bare_name.get(nfc(Path(s.path).name))
    _refuse_shared_names(read, row_of, groups_csv)
    samples = [Sample(**{**s.__dict__, "group": None if row_of[s.path] is None else groups[row_of[s.path]] or None})
               for s in read.samples]
    skipped = [(n, GROUPS_NOT_FOUND) for n in sorted(set(groups) - set(row_of.values()))]
    return dataclasses.replace(read, samples=samples, skipped=read.skipped + skipped)


def _rows_by_bare_name(names: Iterable[str], images: set[str]) -> dict[str, str]:
    """Each file name a groups CSV row may name by its bare name, to that row: its own spelling, and where no row
    is so spelt, the readings of a row whose own spelling names no image (``images``, the folder's bare names) less
    faces.csv's formula mark or a spreadsheet's padding (``file_name_readings``) that no other row also reads as. " p1.jpg" (a CSV written with a space after each comma) had named no image in a
    subfolder, and the audit had lost its grouping with a warning only."""
    names = list(names)
    rows = {name: name for name in names}
    read_as: dict[str, set[str]] = {}
    for name in names:
        if name in images:  # named as written: the readers' rule (a " p1.jpg" that exists is not "p1.jpg")
            continue
        for reading in file_name_readings(name):
            read_as.setdefault(reading, set()).add(name)
    for reading, named_by in read_as.items():
        if reading not in rows and len(named_by) == 1:
            rows[reading] = next(iter(named_by))
    return rows


def _rows_by_path(names: Iterable[str], root: str, in_folder: set[str], groups_csv: str) -> dict[str, str]:
    """The path within the folder (one of ``in_folder``) of each image a groups CSV row names, to that row's name;
    read as the dataset readers read their label files' names (``path_within``): "val\\1.jpg", a CSV written on
    Windows, had been "not in the folder" though FairFace's label files and a folder's labels.csv take it. Two rows
    naming one image in two ways are refused, as the folder reader refuses them."""
    bases = folder_bases(Path(root))
    out: dict[str, str] = {}
    in_folder = FileNames(in_folder)
    for name in names:
        rel = path_within(name, bases, in_folder)
        if rel is None:
            continue
        if rel in out:
            raise BiasMirrorError(f"the groups CSV lists {rel!r} twice, as {out[rel]!r} and {name!r}; keep one row per "
                                  "file", groups_csv)
        out[rel] = name
    return out


def _refuse_shared_names(read: DatasetRead, row_of: dict[str, str | None], groups_csv: str) -> None:
    """Refuse, before anything is measured, a row that groups more than one image: a bare name ("1.jpg") that
    FairFace's train/1.jpg and val/1.jpg both bear had put both in its group without a word, where the user may
    have meant either. An image with a row of its own path takes that row, not the bare name's."""
    images: dict[str, list[str]] = {}
    for path, row in row_of.items():
        if row is not None:
            images.setdefault(row, []).append(relative(path, read.root))
    shared = {row: sorted(paths) for row, paths in images.items() if len(paths) > 1}
    if not shared:
        return
    row, paths = min(shared.items())
    others = sorted(shared)[1:]
    more = f", and {len(others)} more such name(s) ({_first(map(repr, others), 3)})" if others else ""
    raise BiasMirrorError(f"the groups CSV names {row!r}, the file name of {len(paths)} images of the dataset "
                          f"({_first(paths, 5)}){more}: a bare name must match "
                          f"one image; give each image's path relative to the dataset folder (e.g. {paths[0]!r})",
                          groups_csv)


def _first(names, n: int) -> str:
    names = list(names)
    return ", ".join(names[:n]) + (" …" if len(names) > n else "")


def choose_samples(read: DatasetRead, args) -> list[Sample]:
    if args.min_age is not None and read.samples and not any(s.age is not None for s in read.samples):
        # as train classifier and train evaluate say it: "no images left after --min-age 18" had not said why
        raise BiasMirrorError(f"--min-age {args.min_age} needs ages, and this dataset has none: leave out --min-age "
                              "to audit every image", read.root)
    in_split = select(read.samples, args.split)
    say_bands_cut(in_split, args.min_age)
    samples = select(in_split, min_age=args.min_age)
    if not samples and read.samples:
        raise BiasMirrorError(
            f"no images left after --split {args.split or 'any'} --min-age {args.min_age}"
            f" (the dataset has {len(read.samples)} image(s))", read.root)
    return stratified_limit(samples, args.limit)


def groups_compare_nothing_words(read: DatasetRead, samples: list[Sample], gc: dict) -> str:
    """Why a groups CSV puts none of the images audited in a group, in words: its rows name no image of the dataset
    (the first few of them and their count), name images without a group, or name none of those chosen."""
    missing = gc["listed_not_found"]
    eg = f" (e.g. {', '.join(missing[:3])})" if missing else ""
    grouped = sum(1 for s in read.samples if s.group)
    if not grouped and missing:
        why = f"none of its rows names an image of the dataset with a group: {len(missing)} name(s) are not in it{eg}"
    elif not grouped:
        why = "none of the images its rows name has a group (its 'group' cells are empty)"
    else:
        return (f"none of the {len(samples)} image(s) audited is among the {grouped} its rows put in a group (--split, "
                "--min-age or --limit left those out): --groups has no group to compare")
    return f"{why}: --groups has no group to compare; name the images by their path in {read.root} or file name"


def first_frame_only(samples: list[Sample], root: str) -> list[dict]:
    """The images of several frames (an animated GIF or WebP, a multi-page TIFF) among those audited, of which the
    first frame alone is read, as a photo, in either mode: counted here, when the images are listed, so that a rerun
    from the cache says so too (only the detector's reader had said it, in a log line, and never from the cache)."""
    listed = [{"file": relative(s.path, root), "frames": frame_count(Path(s.path))} for s in samples]
    return sorted((f for f in listed if f["frames"] > 1), key=lambda f: f["file"])


def load_models(args) -> ModelSet:
    runtime = runtime_from_args(args)
    try:
        classifiers, filt = load_selection(args.classifier, args.filter, args.no_filter, runtime)
    except BiasMirrorError as exc:
        role = "--classifier" if "classifier was expected" in str(exc) else "--filter" if "filter was expected" in str(exc) else None
        if role:
            raise BiasMirrorError(f"{exc} (given with {role}: its model card does not match that role)") from exc
        raise
    return ModelSet.build(classifiers, filt)


def _model_info(models: ModelSet) -> dict:
    cls = [{"name": n, "file": Path(m.path).name, "sha256": models.hashes[n], "labels": list(m.labels),
            "input_size": list(m.size), "card": m.card.summary(CardNotes(m.path)),
            "cam": {"grid": list(m.card.cam.get("grid", [])), "formula": m.card.cam.get("formula", "")}}
           for n, m in models.classifiers.items()]
    f = models.filter
    filt = None if f is None else {"name": f.name, "file": Path(f.path).name, "sha256": models.hashes["__filter__"],
                                   "input_size": list(f.size), "direction": f.card.direction, "method": f.card.method,
                                   "card": f.card.summary(CardNotes(f.path)), "conditions": list(f.condition_labels)}
    return {"classifiers": cls, "filter": filt, "crop_size": models.crop_size}


# The groupings report.json may group faces by that no label column of faces.csv carries. Each is a column of its
# own, after the labels; report.json's `race` and `group` groupings are the label columns of those names.
GROUPING_COLUMNS = ("gender_race", "age_band", "skin_tone")


def group_cells(rows: Sequence[dict], groups: Mapping[str, Sequence[str]]) -> dict[str, Sequence[str | None]]:
    """The cells of the `race` and `group` columns and of ``GROUPING_COLUMNS``, one per row: each face's group as
    report.json spells it wherever report.json groups by that column, so that faces.csv grouped by it gives
    report.json's sizes. Its groups `(no group)`, `unknown/unknown` and `not measurable` had been empty cells, which
    pandas read back as NaN, a group `NA` too (and `01` as the number 1). A `race` or `group` that report.json does
    not group by is the label as given (empty: none given); a grouping it does not use is an empty column."""
    given = {"race": [r["race"] for r in rows], "group": [r["group"] for r in rows]}
    nothing = [None] * len(rows)
    return {c: groups.get(c, given.get(c, nothing)) for c in ("race", "group", *GROUPING_COLUMNS)}


def write_faces_csv(path: Path, rows: list[dict], names: list[str],
                    groups: Mapping[str, Sequence[str]] | None = None) -> None:
    """faces.csv: one row per face. ``groups``: report.json's groupings (``groups.groupings``: grouping → each row's
    group), whose names fill the grouping columns; without them those columns are empty."""
    cols = ["file", "face", "box", "gender", "race", "age", "group", *GROUPING_COLUMNS, "measurable", "ita", "L", "mst",
            "ita_category", "ita_filtered", "L_filtered", "mst_filtered", "delta_ita", "delta_l", "delta_mst",
            "moved_px"]
    for n in names:
        cols += [f"{n}:p_female", f"{n}:predicted", f"{n}:cam_focus", f"{n}:p_female_reference", f"{n}:predicted_reference",
                 f"{n}:p_female_filtered", f"{n}:predicted_filtered", f"{n}:delta_p_female"]
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow([text_cell(c) for c in cols])  # a classifier's name is its card's, "=…:p_female" a formula
        cells = group_cells(rows, groups or {})
        for i, r in enumerate(rows):
            s, fs = r["skin"], r["filtered_skin"] or {}
            # None alone is an empty cell: `or ""` wrote age 0 as one, though report.json counts that face in 0-17
            line = [r["file"], r["face"], tuple(r["box"]), r["gender"], cells["race"][i], r["age"], cells["group"][i],
                    *(cells[c][i] for c in GROUPING_COLUMNS), int(s["measurable"]), s.get("ita", ""), s.get("L", ""),
                    s.get("mst", ""), s.get("category", ""),
                    fs.get("ita", ""), fs.get("L", ""), fs.get("mst", ""), r["d_ita"], r["d_l"], r["d_mst"],
                    r.get("moved_px")]
            for n in names:
                c = r["clf"][n]
                line += [c["p"], c["pred"], c["focus"], c.get("p_ref", ""), c.get("pred_ref", ""), c.get("p_f", ""),
                         c.get("pred_f", ""), c.get("dp", "")]
            w.writerow([faces_csv_cell(v) for v in line])


def faces_csv_cell(v: object) -> object:
    """A value as faces.csv writes it: not measured (None, or a NaN or infinity) as an empty cell, as `run` writes
    one: a diverged classifier's NaN CAM focus had been a literal "nan". (The rows keep the NaN, which report.json
    tells apart from a CAM of no positive mass, None.) Text is a ``text_cell``: a file name not UTF-8 shown escaped
    (written as it was, it had stopped the audit with a traceback), and a file name, label or group that a
    spreadsheet would run as a formula marked as text. A box, a tuple of our own numbers, is written "x y w h" as
    it is: a leading ' would break a script that splits it."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return ""
    if isinstance(v, tuple):
        return " ".join(map(str, v))
    return text_cell(v) if isinstance(v, str) else v


LOCK = ".lock"  # in --out, held while an audit writes there (inference.writing.one_writer)


def run_audit(args) -> tuple[dict, dict]:
    refuse_empty(args.groups, "--groups", "a CSV of columns file, group")  # tested for truth, '' had been ignored
    if args.split == "all":  # as train evaluate says every split: the same audit as no --split, reported so
        args.split = None
    # it had overwritten the dataset's own files; "~/aud" is the home folder's, as checked (it had been "./~/aud")
    args.out = str(check_output_dir(args.out, "--out", tuple(data_folders(args))))
    # held until the audit ends: two audits into one --out had each put the other's report files in place
    with one_writer(args.out, Path(args.out) / LOCK, "audit"):
        return _run_audit(args)


def _run_audit(args) -> tuple[dict, dict]:
    t0 = time.perf_counter()
    kind = args.dataset.partition(":")[0]
    read, notes = read_dataset(args.dataset, args.groups, dataset_cache_dir(args), progress=not args.no_progress)
    if kind != "folder" and not read.samples:
        why = "; ".join(f"{n} ({w})" for n, w in read.skipped[:3])
        raise BiasMirrorError(f"no usable labelled images in this {kind} dataset (unknown layout?)"
                              + (f"; e.g. {why}" if why else ""), read.root)
    samples = choose_samples(read, args) if read.samples else []
    if args.groups and samples and not any(s.group for s in samples):
        # before anything is measured: an audit "comparing" no group had exited 0, a warning its one word of it
        raise BiasMirrorError(groups_compare_nothing_words(read, samples, notes["groups_csv"]), args.groups)
    if "groups_csv" in notes:  # with --limit 60, the 20,762 images not audited had been counted "not listed"
        notes["groups_csv"]["not_listed"] = sorted(relative(s.path, read.root) for s in samples if not s.group)
    labelled = any(s.gender for s in samples)
    detect = detects_faces(args, kind)
    if not detect:  # FairFace's padding-1.25 release, read whole, had been measured on faces a third its size
        warn_if_loosely_framed(read)
    if "max_faces" in (getattr(args, "_given", ()) or ()) and not detect:  # as a detector option: it would change nothing
        raise BiasMirrorError(f"--max-faces caps the faces the detector finds in an image, and {aligned_why(args, kind)} "
                              "take the whole image as its one face: add --detect, or leave --max-faces out")
    models = load_models(args)
    gating = args.max_delta_ita is not None or args.max_delta_p is not None
    if args.max_unmeasurable_share is not None and args.max_delta_ita is None:  # it would judge nothing, unsaid
        raise BiasMirrorError("--max-unmeasurable-share is a tolerance of the skin gate, judged beside ΔITA: give "
                              "--max-delta-ita too")
    if args.strict and not gating:
        raise BiasMirrorError("--strict is a setting of the ship gate: give --max-delta-ita and/or --max-delta-p")
    if gating and models.filter is None:
        raise BiasMirrorError("--max-delta-ita and --max-delta-p gate a filter's shifts: give --filter (without --no-filter)")
    cam_class = checked_cam_class(args, list(models.classifiers.values()))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    detector = detector_from_args(args) if detect else None
    # the cache key: faces found by another detector (or cascade) are not reused
    mode = "aligned" if not detect else ("yunet-" + file_hash(args.yunet)[:12] if args.yunet else detector.name)
    cache = Cache(out / "cache")
    # a conditional filter's condition, named even where it is its first: one cache entry whichever way it was asked
    condition = checked_condition(args, models.filter)
    if models.filter is not None:
        condition = models.filter.chosen_condition(condition)
    collector = Collector(models, cache, detector, mode, cam_class, args.batch, progress=not args.no_progress,
                          filter_condition=condition, max_faces=args.max_faces)
    paths = [resolve(s.path) for s in samples]
    t1 = time.perf_counter()
    try:
        collector.run(paths)
    finally:
        cache.close()
    t2 = time.perf_counter()
    rows, images = collector.rows(samples, read.root)
    names = list(models.classifiers)
    # the folder's own name: "folder:." had been named "folder:" (links not followed, as the user named it)
    named = Path(os.path.normpath(os.path.abspath(read.root))).name
    audit = {"dataset": args.dataset.partition(":")[0] + ":" + named, "kind": kind, "split": args.split,
             "min_age": args.min_age, "limit": args.limit, "detect": detect, "detector": mode,
             "max_faces": args.max_faces if detect else None,
             "groups_csv": Path(args.groups).name if args.groups else None, "cam_class": cam_class,
             "filter_condition": condition}
    extra = {"reader_skipped": [{"file": shareable_name(n, read.root), "why": why} for n, why in read.skipped],
             "copies_counted_once": [{"file": n, "same_bytes_as": kept} for n, kept in read.copies],
             "near_identical": read.near_identical, "label_conflicts": read.conflicts,
             "first_frame_only": first_frame_only(samples, read.root), **notes}
    if args.min_age is not None:  # an image with no age cannot pass --min-age: say how many that left out
        extra["no_age_left_out"] = sum(s.age is None for s in select(read.samples, args.split))
    report = build_report(audit=audit, models=_model_info(models), images=images, rows=rows, labelled=labelled,
                          names=names, has_filter=models.filter is not None,
                          filter_training=models.filter.card.training if models.filter else {}, extra_images=extra)
    if gating:
        report["gate"] = filter_gate(report["filter"], args.max_delta_ita, args.max_delta_p, args.strict,
                                     args.max_unmeasurable_share, labelled=labelled,
                                     labels_look_reversed=reversed_classifiers(report))
        report["summary"] += gate_lines(report["gate"])
    staged = Staged()
    try:
        # a write the disk refuses names the file (a full disk had given a traceback naming none); the folder's
        # earlier report is left as it was, since nothing is put in place before every file is written
        kept = "the report's files are put in place only once all are written: an earlier report there is kept"
        with writing(out / "report.json", "the report", kept):
            write_json(staged.path(out / "report.json"), report)
        with writing(out / "faces.csv", "the faces' table", kept):
            # with report.json's groupings, which the same rows make: faces.csv joins report.json's groups
            write_faces_csv(staged.path(out / "faces.csv"), rows, names, groupings(rows, labelled))
        t3 = time.perf_counter()
        date, argv = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), sys.argv[1:]
        html_not_drawn = None
        if not args.no_html:
            html_not_drawn = _write_html(staged, out / "report.html", kept, report, collector, rows,
                                         {"date": date, "argv": argv})
        t4 = time.perf_counter()
        run = {"date": date, "argv": argv,
               "dataset_root": str(Path(read.root).resolve()), "images": len(paths),
               "images_computed": collector.computed, "images_from_cache": len(paths) - collector.computed,
               "seconds": {"load": round(t1 - t0, 2), "models": round(t2 - t1, 2), "statistics": round(t3 - t2, 2),
                           "html": round(t4 - t3, 2), "total": round(t4 - t0, 2)},
               "providers": {n: m.provider for n, m in models.classifiers.items()}
               | ({models.filter.name: models.filter.provider} if models.filter else {}),
               "python": platform.python_version(), "machine": platform.machine()}
        if html_not_drawn:
            run["html_not_drawn"] = html_not_drawn
        with writing(out / "run.json", "the run's record", kept):
            write_json(staged.path(out / "run.json"), run)
        # a report.html of an earlier audit beside this one's report.json would contradict it
        staged.put_in_place(stale=(out / "report.html",) if args.no_html or html_not_drawn else ())
    finally:
        staged.discard()
    return report, run


def _write_html(staged: Staged, place: Path, kept: str, report: dict, collector, rows: list[dict],
                run: dict) -> str | None:
    """report.html staged for ``place``, its header given the ``run``'s date and command line; None, or why it could
    not be drawn, where it is then left out of what is put in place: report.json and faces.csv are the audit, and a
    group name matplotlib could not draw had lost them all. A write the disk refused stops the audit as every other
    file's does."""
    from .html import NotDrawn, write_html

    path = staged.path(place)
    try:
        with writing(place, "the HTML report", kept):
            write_html(path, {**report, "run": run}, collector,
                       {printable(r["file"]): r["path"] for r in rows})  # as the report names them
    except NotDrawn as exc:
        log.debug("report.html not drawn", exc_info=True)
        staged.files = [(s, p) for s, p in staged.files if s != path]
        path.unlink(missing_ok=True)
        return str(exc)
    return None


def html_not_drawn_words(report: dict, out: Path, why: str) -> str:
    """The error line of an audit whose report.html could not be drawn: what is written all the same, and the
    gate's verdict, which the exit status 2 no longer tells."""
    gate = report.get("gate")
    verdict = ("" if not gate else "; the ship gate could not be judged" if gate["passed"] is None
               else f"; the ship gate {'passed' if gate['passed'] else 'failed'}")
    return (f"{out / 'report.html'}: could not draw the HTML report ({why}); report.json, faces.csv and run.json are "
            f"written{verdict}; --no-html leaves the page out, --verbose shows where the drawing failed")


def say(text: str, file: TextIO | None = None) -> None:
    """A line of the audit's output: it quotes file names, labels, groups and card names, anyone's text, whose
    escape sequences had reached the terminal ("Small groups in group …" had cleared the screen)."""
    print(terminal_safe(text), file=file)


def groups_csv_gaps_words(gc: dict) -> str:
    """What a groups CSV and the folder do not share, in words: only the parts that are not empty ("0 listed file(s)
    not in the folder []" had stood before the images it did not list)."""
    parts = []
    if gc["listed_not_found"]:
        parts.append(f"{len(gc['listed_not_found'])} listed file(s) not in the folder {gc['listed_not_found'][:10]}")
    if gc["not_listed"]:
        parts.append(f"{len(gc['not_listed'])} image(s) not listed {gc['not_listed'][:10]}")
    return "; ".join(parts)


def main(args: argparse.Namespace) -> int:
    report, run = run_audit(args)
    im = report["images"]
    gc = im.get("groups_csv")
    if gc and (gc["listed_not_found"] or gc["not_listed"]):
        say(f"warning: {gc['file']}: {groups_csv_gaps_words(gc)}", file=sys.stderr)
    if im.get("faces_not_analysed"):  # as `run` says it: the faces past --max-faces have no rows
        say(f"warning: {faces_not_analysed_words(im['faces_not_analysed'], report['audit']['max_faces'])}; "
            "report.json lists them under images.faces_not_analysed; --max-faces analyses more", file=sys.stderr)
    if im.get("first_frame_only"):  # the summary says it too, but the log line of a detected audit had been all
        say(f"warning: {first_frame_only_words(im['first_frame_only'])}; report.json lists them under "
            f"images.first_frame_only; {first_frame_only_advice()}", file=sys.stderr)
    if im.get("no_age_left_out"):
        say(f"warning: --min-age {report['audit']['min_age']} left out {im['no_age_left_out']} image(s) with no age "
            "(without --min-age they are kept)", file=sys.stderr)
    from .summary import is_detail

    say("\n".join(line for line in report["summary"] if not is_detail(line)))
    say("(per-group tables, tests and caveats: " + ("report.json; leave out --no-html for report.html)" if args.no_html
                                                    else "report.html)"))
    drawn = not args.no_html and not run.get("html_not_drawn")
    say(f"\nwrote {Path(args.out) / 'report.json'}" + (f" and {Path(args.out) / 'report.html'}" if drawn else "")
        + f" ({run['images_computed']} image(s) computed, {run['images_from_cache']} from the cache, "
          f"{run['seconds']['total']} s)")
    if run.get("html_not_drawn"):
        say(f"error: {html_not_drawn_words(report, Path(args.out), run['html_not_drawn'])}", file=sys.stderr)
    nothing = nothing_measured(report, args.dataset.partition(":")[2], Path(args.out) / "report.json")
    if nothing:  # before the gate: a gate over no faces neither passed nor failed
        say(f"error: {nothing}", file=sys.stderr)
        return NOTHING_MEASURED
    gate = report.get("gate")
    if gate and gate["passed"] is None:  # a gate that judged nothing neither passed nor failed, as above
        say(f"error: the ship gate could not be judged: {not_judged_reason(gate)}; {Path(args.out) / 'report.json'} "
            "lists every row under 'gate'", file=sys.stderr)
        return NOTHING_MEASURED
    if run.get("html_not_drawn"):  # an error's status: 1 would tell a CI job "the gate failed"
        return HTML_NOT_DRAWN
    if gate and not gate["passed"]:
        if gate["strict"]:  # as the path was given: the report names the file alone
            given = {Path(p).name: p for p in args.classifier or ()}
            for c in gate.get("labels_look_reversed") or []:
                say(f"error: {given.get(c['file'], c['file'])}: {reversed_why(c)}; "
                    "--strict fails the audit on it", file=sys.stderr)
        return 1
    return 0


def nothing_measured(report: dict, root: str, written: Path) -> str | None:
    """Why an audit measured no face at all, naming the dataset's folder and what was in it; None if it measured."""
    im = report["images"]
    if im["n_faces"]:
        return None
    n, unreadable, skipped = im["n_images"], im.get("unreadable") or [], im.get("reader_skipped") or []
    if im.get("empty_folder"):
        what = f"the folder holds no images ({'/'.join(IMAGE_EXTENSIONS)}, in it or its subfolders)"
        if im.get("photos_not_read"):
            what += f", only {photos_not_read_words(im['photos_not_read'])}"
        if im.get("folders_not_read"):  # which may be where its images are
            what += f"; {folders_not_read_words(im['folders_not_read'])}"
    elif not n:
        what = "no image was left to audit" + (f" ({len(skipped)} skipped when the dataset was read, e.g. "
                                               f"{skipped[0]['file']}: {skipped[0]['why']})" if skipped else "")
    elif len(unreadable) == n:
        what = (f"none of its {n} image(s) could be read (e.g. {unreadable[0]['file']}: "
                f"{unreadable[0].get('error') or 'unreadable'})")
    else:
        detector = report["audit"].get("detector")
        what = (f"no face was found in any of its {n - len(unreadable)} readable image(s)"
                + (f" by the detector ({detector})" if detector and detector != "aligned" else "")
                + (f"; {len(unreadable)} more could not be read" if unreadable else ""))
    return f"{root}: {what}: nothing was measured; {written} {'lists the images' if n else 'says so'}"
