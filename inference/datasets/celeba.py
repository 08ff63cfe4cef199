"""CelebA: ``img_align_celeba/`` + ``list_attr_celeba.txt`` + ``list_eval_partition.txt``.

Gender comes from ``Male``; the only skin information is the ``Pale_Skin``
attribute, used as a coarse skin proxy (pale / not_pale); ``Young`` stands in
for age, which CelebA does not give.
"""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import BiasMirrorError
from .sample import DatasetRead, Sample

LAYOUT = "img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt in one folder"
PARTITIONS = {"0": "train", "1": "val", "2": "test"}


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise BiasMirrorError(f"not a CelebA text list (byte {exc.start} is not UTF-8 text)", path) from exc
    except IsADirectoryError as exc:
        raise BiasMirrorError("is a folder, where CelebA has a text list", path) from exc


def read_celeba(path: str | os.PathLike) -> DatasetRead:
    root = Path(path)
    images = root / "img_align_celeba"
    attr_file = root / "list_attr_celeba.txt"
    part_file = root / "list_eval_partition.txt"
    for needed in (images, attr_file, part_file):
        if not needed.exists():
            raise BiasMirrorError(f"missing {needed.name}; expected {LAYOUT}", root)
    partition = {}
    for line in _lines(part_file):
        bits = line.split()
        if len(bits) == 2:
            partition[bits[0]] = PARTITIONS.get(bits[1])
    lines = _lines(attr_file)
    if len(lines) < 3:
        raise BiasMirrorError("the attribute file is empty", attr_file)
    header = lines[1].split()
    samples, skipped = [], []
    for line in lines[2:]:
        bits = line.split()
        if len(bits) != len(header) + 1:
            skipped.append((bits[0] if bits else "?", f"expected {len(header)} attributes"))
            continue
        name, values = bits[0], dict(zip(header, bits[1:]))
        samples.append(
            Sample(
                path=str(images / name),
                gender="male" if values.get("Male") == "1" else "female",
                race="pale" if values.get("Pale_Skin") == "1" else "not_pale",
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
