"""CelebA: ``img_align_celeba/`` + ``list_attr_celeba.txt`` + ``list_eval_partition.txt``.

Gender comes from ``Male``; the only skin information is the ``Pale_Skin``
attribute, used as a coarse skin proxy (pale / not_pale); ``Young`` stands in
for age, which CelebA does not give.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import BiasMirrorError
from .csv_file import keyed_by_file
from .sample import NOT_IN_FOLDER, DatasetRead, Sample

LAYOUT = "img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt in one folder"
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
NEEDED_ATTRIBUTES = ("Male", "Pale_Skin")  # without them every face had read as female, or as not pale
BINARY = {"1": True, "-1": False}  # CelebA's only attribute values


def _odd_value(values: dict[str, str]) -> str | None:
    """Why a row's Male or Pale_Skin cannot be read, naming the column and value; None where both are 1 or -1. Any
    value but "1" had read as female (or not pale): a "0" or a typo mislabelled the face instead of skipping it."""
    for column in NEEDED_ATTRIBUTES:
        if values[column] not in BINARY:
            return f"{column} {values[column]!r} (expected 1 or -1)"
    return None


def _lines(path: Path) -> list[str]:
    """The file's lines; utf-8-sig, as a BOM left the first image's name unmatched and its partition dropped."""
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        raise BiasMirrorError(f"not a CelebA text list (byte {exc.start} is not UTF-8 text)", path) from exc
    except IsADirectoryError as exc:
        raise BiasMirrorError("is a folder, where CelebA has a text list", path) from exc


def _partitions(part_file: Path) -> dict[str, str | None]:
    """Each image's partition; one listed twice with two partitions is refused, as the folder reader refuses it."""
    rows = [(number, {"file": bits[0], "partition": bits[1]})
            for number, bits in enumerate((line.split() for line in _lines(part_file)), 1) if len(bits) == 2]
    listed = keyed_by_file(rows, ["file", "partition"], part_file, "the partition list")
    return {name: PARTITIONS.get(row["partition"]) for name, row in listed.items()}


def read_celeba(path: str | os.PathLike) -> DatasetRead:
    root = Path(path)
    images = root / "img_align_celeba"
    attr_file = root / "list_attr_celeba.txt"
    part_file = root / "list_eval_partition.txt"
    for needed in (images, attr_file, part_file):
        if not needed.exists():
            raise BiasMirrorError(f"missing {needed.name}; expected {LAYOUT}", root)
    partition = _partitions(part_file)
    lines = _lines(attr_file)
    if len(lines) < 3:
        raise BiasMirrorError("the attribute file is empty", attr_file)
    header = lines[1].split()
    absent = [a for a in NEEDED_ATTRIBUTES if a not in header]
    if absent:
        raise BiasMirrorError(f"the attribute file has no {' or '.join(absent)} column (its second line names the "
                              f"attributes): give CelebA's own list_attr_celeba.txt", attr_file)
    rows, skipped = [], []
    for number, line in enumerate(lines[2:], 3):
        bits = line.split()
        if not bits:  # a blank line (at the end, or a CRLF leftover) lists no image: it had been a skipped "?"
            continue
        if len(bits) != len(header) + 1:
            skipped.append((bits[0], f"expected {len(header)} attributes"))
            continue
        rows.append((number, {"file": bits[0], **dict(zip(header, bits[1:]))}))
    samples = []
    for name, values in keyed_by_file(rows, ["file", *header], attr_file, "the attribute file").items():
        if not (images / name).exists():
            skipped.append((name, NOT_IN_FOLDER))
            continue
        values = {k: v for k, v in values.items() if k != "file"}
        odd = _odd_value(values)
        if odd:
            skipped.append((name, odd))
            continue
        samples.append(
            Sample(
                path=str(images / name),
                gender="male" if BINARY[values["Male"]] else "female",
                race="pale" if BINARY[values["Pale_Skin"]] else "not_pale",
                age=None,
                partition=partition.get(name),
                attrs=values,
            )
        )
    if not samples:
        raise BiasMirrorError(f"no labelled images; expected {LAYOUT}", root)
    read = DatasetRead("celeba", str(root), samples, skipped)
    read.warn_skipped()
    return read
