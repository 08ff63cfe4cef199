"""FairFace: images + ``fairface_label_train.csv`` / ``fairface_label_val.csv``.

FairFace gives age as a band ("20-29"); the band's lower bound is kept as the
age so that filters such as ``age >= 18`` work, and the band itself as the
sample's ``age_bin``: per-age tables show FairFace's own bands (a "40-49" face
had been counted in the project's "30-44").
FairFace's ``val`` is its held-out set, so it is used as our test partition;
our val is a stable share of its train, chosen by a hash of file name.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath
from typing import Callable

from ..errors import BiasMirrorError
from .csv_file import read_rows_by_file
from .folder import FileNames, FolderBases, folder_bases, named_within, path_within
from .sample import (NOT_IN_FOLDER, NOT_RELATIVE, DatasetRead, Sample, band_bounds, one_spelling, skipped_in_words,
                     unlisted_images, warn_unlisted)
from .splits import hash_fraction

log = logging.getLogger(__name__)
LAYOUT = "fairface_label_train.csv and fairface_label_val.csv next to the image folders they name"
LABELS = ("age", "gender", "race")  # the columns read; two rows of one file must agree on them
# a row whose name leads out of the folder ("../x.jpg", an absolute path elsewhere): its image is no part of the dataset
OUTSIDE = f"{NOT_RELATIVE}: it leads outside the dataset folder, whose images alone are read"
VAL_SHARE = 0.1  # of train, carved out as val: FairFace has no validation partition
# how the partitions are made, for a card: "the dataset's own split labels" had called the hashed val FairFace's own
SPLIT = (f"FairFace's own train and val partitions, its val as test and a stable {VAL_SHARE:.0%} of its train, by a "
         "hash of file name, as val")


def _age_lower(band: str) -> int | None:
    bounds = band_bounds(band)
    return None if bounds is None else bounds[0]


def _listing(root: Path) -> set[str]:
    """The files under ``root`` (hidden folders and files aside), as paths relative to it with "/": listed once, a
    look-up per row is a set's, and the listing is what finds the images no label file names."""
    out = set()
    for folder, subfolders, files in os.walk(root):
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        within = PurePosixPath(Path(folder).relative_to(root).as_posix())
        out.update((within / f).as_posix() for f in files if not f.startswith("."))
    return out


def _in_folder(root: Path, bases: FolderBases, on_disk: set[str]) -> Callable[[str], str | None]:
    """A row's file name → the path within the folder of the file it names, or None, read as the folder reader reads
    a labels CSV's (``path_within``: backslashes separate folders as slashes do, "train\\1.jpg", a CSV written on
    Windows, had been "not in the folder"); a name the listing lacks (one through a link) is looked up on disk, if
    it is a path within the folder (``named_within``): "../x.jpg" had read an image outside the dataset. ``bases``:
    ``folder_bases(root)``."""
    names = FileNames(on_disk)

    def find(name: str) -> str | None:
        return path_within(name, bases, names) or _linked_file(root, named_within(name, bases))

    return find


def _linked_file(root: Path, within: str | None) -> str | None:
    """``within`` where it is a file of ``root`` that its listing lacks (reached through a link to a folder)."""
    return within if within is not None and (root / within).is_file() else None


def _not_found(bases: FolderBases, name: str) -> str:
    """Why a row naming no file of the folder (of ``bases``, ``folder_bases``'s) is skipped: a path out of it is said
    so, not "not in the folder"."""
    return NOT_IN_FOLDER if named_within(name, bases) is not None else OUTSIDE


def _rows(files: dict[str, Path], unnamed: list[str],
          find: Callable[[str], str | None]) -> dict[str, tuple[str, dict[str, str], str]]:
    """(partition, row, "label file:line" of the row) by file name, each file once: a repeat within a label file is
    kept once or refused (``read_rows_by_file``), and a file in both label files stays in train, or is refused where they disagree; it
    had been counted twice, and tested on as well as trained on. A name is the path within the folder of the file
    it names (``find``) where there is one, so that one file named two ways is one file. Rows naming no file go to
    ``unnamed``, each as "label file:line"."""
    out: dict[str, tuple[str, dict[str, str], str]] = {}
    spelled: dict[str, str] = {}  # the name each file was first listed by
    both = []
    for partition, csv_path in files.items():
        if not csv_path.exists():
            continue
        nameless: list[int] = []
        lines: dict[str, int] = {}
        listed = read_rows_by_file(csv_path, "the FairFace label file", compared=LABELS, nameless=nameless,
                                   lines=lines)[1]
        unnamed += [f"{csv_path.name}:{n}" for n in nameless]
        for given, row in listed.items():
            name = find(given) or given
            if name in out:
                kept_partition, kept, _ = out[name]
                differ = [c for c in LABELS if (kept.get(c) or "").strip() != (row.get(c) or "").strip()]
                if differ and kept_partition == partition:
                    raise BiasMirrorError(f"the FairFace label file lists {name!r} twice, as {spelled[name]!r} and "
                                          f"{given!r}, with different {', '.join(differ)}; keep one row per file",
                                          csv_path)
                if differ:
                    raise BiasMirrorError(f"{name!r} is in both {files['train'].name} and {csv_path.name}, with "
                                          f"different {', '.join(differ)}; keep it in one of them", csv_path)
                if kept_partition != partition:
                    both.append(name)
                continue
            out[name], spelled[name] = (partition, row, f"{csv_path.name}:{lines[given]}"), given
    if both:
        log.warning("%s: %d file(s) are in both label files, each kept in train only (it may not be tested on once "
                    "trained on), e.g. %s", files["test"], len(both), both[:3])
    return out


def _odd_age(name: str, band: str, where: str) -> list[str]:
    """Why a row's age band cannot be read, as the folder reader's "file: age 'value' (expected …)" with the row's
    "label file:line" after the file; none where it reads or is empty: an "unknown" had left the face without an
    age, and out of every age filter, without a word."""
    if not band or _age_lower(band) is not None:
        return []
    return [f"{name} ({where}): age {band!r} (expected a band such as 20-29)"]


def _elsewhere(root: Path, on_disk: set[str], name: str) -> str:
    """"; did you mean SUB/train/1.jpg? …" where the file a row names is one folder (or more) below the label files
    or one above them: every row had been "not in the folder", and the folder that holds the images went unnamed."""
    posix = name.replace("\\", "/")
    deeper = sorted((p for p in on_disk if p.endswith("/" + posix)), key=lambda p: (p.count("/"), p))
    if deeper:
        folder = deeper[0][: -len(posix) - 1]
        return (f"; did you mean {deeper[0]}? the label files name paths from their own folder: move them into "
                f"{folder}/, next to the folders they name")
    if (root.parent / posix).is_file():
        return (f"; did you mean ../{posix}? the label files name paths from their own folder: move them up into "
                f"{root.parent}, next to the folders they name")
    return ""


def read_fairface(path: str | os.PathLike) -> DatasetRead:
    root = Path(path)
    files = {"train": root / "fairface_label_train.csv", "test": root / "fairface_label_val.csv"}
    if not any(f.exists() for f in files.values()):
        raise BiasMirrorError(f"no FairFace label files; expected {LAYOUT}", root)
    unnamed: list[str] = []
    on_disk, bases = _listing(root), folder_bases(root)
    find = _in_folder(root, bases, on_disk)
    rows = _rows(files, unnamed, find)
    races = one_spelling(((r.get("race") or "").strip() for _, r, _ in rows.values()), root)
    samples, skipped, odd = [], [(line, "the row names no file") for line in unnamed], []
    for name, (partition, row, where) in rows.items():
        given = (row.get("gender") or "").strip()
        if given.lower() not in ("male", "female"):  # the value named, as the folder reader names it, and the row
            skipped.append((name, f"{where}: gender {given!r} (expected Male or Female)"))
            continue
        if find(name) is None:  # a row's name is the file's path within the folder where it names one (_rows)
            skipped.append((name, _not_found(bases, name)))
            continue
        part = "val" if partition == "train" and hash_fraction(name) < VAL_SHARE else partition
        band = (row.get("age") or "").strip()
        age = _age_lower(band)
        odd += _odd_age(name, band, where)
        samples.append(
            Sample(
                path=str(root / name),
                gender=given.lower(),
                race=races.get((row.get("race") or "").strip()),
                age=age,
                partition=part,
                attrs={"age_band": band},
                age_bin=band if age is not None else None,  # a band with no readable bound is no age
                split_made=SPLIT,
            )
        )
    if not samples:  # the reasons said here: the warning of what was skipped would never come
        missing = next((n for n, why in skipped if why == NOT_IN_FOLDER), None)
        hint = _elsewhere(root, on_disk, missing) if missing else ""
        said = f": skipped {skipped_in_words(skipped)}{hint}" if skipped else ""
        raise BiasMirrorError(f"the label files list no usable faces{said}; expected {LAYOUT}", root)
    warn_unlisted(root, unlisted_images(on_disk, rows), " and ".join(f.name for f in files.values() if f.exists()))
    if odd:  # kept, without the label, as the folder reader keeps them: the face is still audited, just not by age
        log.warning("%s: %d label(s) not understood and ignored, e.g. %s", root, len(odd), "; ".join(odd[:3]))
    read = DatasetRead("fairface", str(root), samples, skipped)
    read.warn_skipped()
    return read
