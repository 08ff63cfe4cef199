"""Readers for labelled face datasets. Pure Python: the audit and training share them."""
from __future__ import annotations

from pathlib import Path

from ..errors import BiasMirrorError
from .celeba import read_celeba
from .fairface import read_fairface
from .folder import read_folder
from .sample import AGE_BANDS, GENDERS, DatasetRead, Sample, age_band
from .splits import SPLITS, select, split_of
from .utkface import read_utkface

READERS = {"utkface": read_utkface, "celeba": read_celeba, "fairface": read_fairface, "folder": read_folder}


def open_dataset(spec: str) -> DatasetRead:
    """Read ``KIND:PATH`` (e.g. ``utkface:../shared/datasets/utkface``)."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in READERS:
        raise BiasMirrorError(
            f"dataset spec {spec!r} should be KIND:PATH with KIND one of {', '.join(READERS)}"
        )
    return READERS[kind](Path(path).expanduser())


__all__ = [
    "AGE_BANDS", "GENDERS", "READERS", "SPLITS", "DatasetRead", "Sample", "age_band", "open_dataset",
    "read_celeba", "read_fairface", "read_folder", "read_utkface", "select", "split_of",
]
