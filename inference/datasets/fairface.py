"""FairFace: images + ``fairface_label_train.csv`` / ``fairface_label_val.csv``.

FairFace gives age as a band ("20-29"); the band's lower bound is kept as the
age so that filters such as ``age >= 18`` work, and the band itself in attrs.
FairFace's ``val`` is its held-out set, so it is used as our test partition.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import BiasMirrorError
from .csv_file import read_csv_rows
from .sample import DatasetRead, Sample
from .splits import hash_fraction

LAYOUT = "fairface_label_train.csv and fairface_label_val.csv next to the image folders they name"


def _age_lower(band: str) -> int | None:
    digits = "".join(c if c.isdigit() else " " for c in band).split()
    return int(digits[0]) if digits else None


def read_fairface(path: str | os.PathLike) -> DatasetRead:
    root = Path(path)
    files = {"train": root / "fairface_label_train.csv", "test": root / "fairface_label_val.csv"}
    if not any(f.exists() for f in files.values()):
        raise BiasMirrorError(f"no FairFace label files; expected {LAYOUT}", root)
    samples, skipped = [], []
    for partition, csv_path in files.items():
        if not csv_path.exists():
            continue
        for row in read_csv_rows(csv_path, "the FairFace label file")[1]:
            gender = (row.get("gender") or "").strip().lower()
            if gender not in ("male", "female") or not row.get("file"):
                skipped.append((row.get("file", "?"), "missing file or gender"))
                continue
            # FairFace has no validation partition: carve a stable 10% of train.
            part = "val" if partition == "train" and hash_fraction(row["file"]) < 0.1 else partition
            samples.append(
                Sample(
                    path=str(root / row["file"]),
                    gender=gender,
                    race=(row.get("race") or "").strip() or None,
                    age=_age_lower(row.get("age", "")),
                    partition=part,
                    attrs={"age_band": row.get("age", "")},
                )
            )
    if not samples:
        raise BiasMirrorError(f"the label files list no usable faces; expected {LAYOUT}", root)
    read = DatasetRead("fairface", str(root), samples, skipped)
    read.warn_skipped()
    return read
