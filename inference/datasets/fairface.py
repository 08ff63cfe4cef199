"""FairFace: images + ``fairface_label_train.csv`` / ``fairface_label_val.csv``.

FairFace gives age as a band ("20-29"); the band's lower bound is kept as the
age so that filters such as ``age >= 18`` work, and the band itself as the
sample's ``age_bin``: per-age tables show FairFace's own bands (a "40-49" face
had been counted in the project's "30-44").
FairFace's ``val`` is its held-out set, so it is used as our test partition.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import BiasMirrorError
from .csv_file import read_rows_by_file
from .sample import NOT_IN_FOLDER, DatasetRead, Sample, one_spelling
from .splits import hash_fraction

log = logging.getLogger(__name__)
LAYOUT = "fairface_label_train.csv and fairface_label_val.csv next to the image folders they name"
LABELS = ("age", "gender", "race")  # the columns read; two rows of one file must agree on them


def _age_lower(band: str) -> int | None:
    if any(c.isdigit() and not c.isascii() for c in band):
        return None  # "²0-29" is no band: int() refused the "²" that isdigit takes (a traceback)
    digits = "".join(c if c.isdigit() else " " for c in band).split()
    return int(digits[0]) if digits else None


def _rows(files: dict[str, Path], unnamed: list[str]) -> dict[str, tuple[str, dict[str, str]]]:
    """(partition, row) by file name, each file once: a repeat within a label file is kept once or refused
    (``read_rows_by_file``), and a file in both label files stays in train, or is refused where they disagree; it
    had been counted twice, and tested on as well as trained on. Rows naming no file go to ``unnamed``, each as
    "label file:line"."""
    out: dict[str, tuple[str, dict[str, str]]] = {}
    both = []
    for partition, csv_path in files.items():
        if not csv_path.exists():
            continue
        lines: list[int] = []
        listed = read_rows_by_file(csv_path, "the FairFace label file", compared=LABELS, nameless=lines)[1]
        unnamed += [f"{csv_path.name}:{n}" for n in lines]
        for name, row in listed.items():
            if name in out:
                kept = out[name][1]
                differ = [c for c in LABELS if (kept.get(c) or "").strip() != (row.get(c) or "").strip()]
                if differ:
                    raise BiasMirrorError(f"{name!r} is in both {files['train'].name} and {csv_path.name}, with "
                                          f"different {', '.join(differ)}; keep it in one of them", csv_path)
                both.append(name)
                continue
            out[name] = (partition, row)
    if both:
        log.warning("%s: %d file(s) are in both label files, each kept in train only (it may not be tested on once "
                    "trained on), e.g. %s", files["test"], len(both), both[:3])
    return out


def read_fairface(path: str | os.PathLike) -> DatasetRead:
    root = Path(path)
    files = {"train": root / "fairface_label_train.csv", "test": root / "fairface_label_val.csv"}
    if not any(f.exists() for f in files.values()):
        raise BiasMirrorError(f"no FairFace label files; expected {LAYOUT}", root)
    unnamed: list[str] = []
    rows = _rows(files, unnamed)
    races = one_spelling(((r.get("race") or "").strip() for _, r in rows.values()), root)
    samples, skipped = [], [(line, "the row names no file") for line in unnamed]
    for name, (partition, row) in rows.items():
        given = (row.get("gender") or "").strip()
        if given.lower() not in ("male", "female"):  # the value named, as the folder reader names it
            skipped.append((name, f"gender {given!r} (expected Male or Female)"))
            continue
        if not (root / name).exists():
            skipped.append((name, NOT_IN_FOLDER))
            continue
        # FairFace has no validation partition: carve a stable 10% of train.
        part = "val" if partition == "train" and hash_fraction(name) < 0.1 else partition
        band = (row.get("age") or "").strip()
        age = _age_lower(band)
        samples.append(
            Sample(
                path=str(root / name),
                gender=given.lower(),
                race=races.get((row.get("race") or "").strip()),
                age=age,
                partition=part,
                attrs={"age_band": band},
                age_bin=band if age is not None else None,  # a band with no readable bound is no age
            )
        )
    if not samples:
        raise BiasMirrorError(f"the label files list no usable faces; expected {LAYOUT}", root)
    read = DatasetRead("fairface", str(root), samples, skipped)
    read.warn_skipped()
    return read
