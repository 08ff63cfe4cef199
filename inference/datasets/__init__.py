"""Readers for labelled face datasets. Pure Python: the audit and training share them."""
from __future__ import annotations

from pathlib import Path

from ..errors import BiasMirrorError
from ..user_dirs import default_cache_dir
from .celeba import read_celeba
from .copies import merge_copies
from .fairface import read_fairface
from .folder import read_folder
from .framing import framing_warning, warn_if_loosely_framed
from .sample import AGE_BANDS, GENDERS, DatasetRead, Sample, age_band
from .splits import SPLITS, select, split_of
from .utkface import read_utkface

READERS = {"utkface": read_utkface, "celeba": read_celeba, "fairface": read_fairface, "folder": read_folder}

# The rules by which a dataset's faces are listed (which files, labels and splits the readers and the copy detection
# give): raised whenever a change lists a dataset otherwise, so that a training run resumed on a newer version that
# lists its faces otherwise is told the reading changed, not that the user's files did. 1: 2026-12-07 (a folder's
# look-alike photos each kept, its labels CSV read with spaces after the commas, a TIFF's first photo page). 2:
# 2026-12-07 (a CSV's label values read in Unicode NFC: one race or group typed in two spellings is one).
LISTING_VERSION = 2


def kind_and_path(text: str) -> tuple[str, str]:
    """(KIND, PATH) of a dataset's ``KIND:PATH``, or ("", ``text``) for a bare path: a kind is a reader's name, so a
    Windows drive (D:\\faces) is a path, not a kind "D"."""
    kind, sep, path = text.partition(":")
    return (kind, path) if sep and kind in READERS else ("", text)


def read_spec(spec: str) -> DatasetRead:
    """Every file ``KIND:PATH`` lists, copies and all: for joining more labels on before ``merge_copies``."""
    kind, sep, path = spec.partition(":")
    if not sep or kind not in READERS:
        raise BiasMirrorError(
            f"dataset spec {spec!r} should be KIND:PATH with KIND one of {', '.join(READERS)}"
        )
    if not path.strip():  # Path("") is the current folder, which would be read as the dataset
        raise BiasMirrorError(f"dataset spec {spec!r} has no path after {kind}: (an unset shell variable?); "
                              f"give {kind}:PATH")
    return READERS[kind](_checked_path(path))


def _checked_path(path: str) -> Path:
    """The dataset's path with ``~`` expanded (``user_path``: a ``~user`` of no user known here is named, where it
    had been a traceback). A path that is (or passes through) a link loop is refused naming the link, as the commands
    that check their outputs against it say it: a loop neither exists nor is a folder to pathlib, and the readers had
    called it "the folder does not exist" or "no FairFace label files"."""
    from ..arg_checks import resolved, user_path  # here: arg_checks imports sources, which imports this package

    resolved(path)
    return user_path(path)


class _UserCache:
    """``open_dataset``'s default cache folder: the user's (``default_cache_dir``), found as the dataset is opened.
    A sentinel, since None is a choice of its own: keep nothing (``--no-dataset-cache``)."""

    def __repr__(self) -> str:
        return "USER_CACHE"


USER_CACHE = _UserCache()
DatasetCache = Path | None | _UserCache  # where the copy detection keeps what it computes; None: nowhere


def cache_folder(cache_dir: DatasetCache) -> Path | None:
    """The folder ``cache_dir`` names: the user's cache folder for ``USER_CACHE``, None for none."""
    return default_cache_dir() if cache_dir is USER_CACHE else cache_dir  # type: ignore[return-value]


def open_dataset(spec: str, cache_dir: DatasetCache = USER_CACHE) -> DatasetRead:
    """Read ``KIND:PATH`` (e.g. ``utkface:../shared/datasets/utkface``), each image once (``copies``): file
    digests and thumbnails are kept under ``cache_dir`` (default: the user's cache folder; None: nowhere, computed
    again each time)."""
    return merge_copies(read_spec(spec), cache_folder(cache_dir))


__all__ = [
    "AGE_BANDS", "GENDERS", "kind_and_path", "LISTING_VERSION", "READERS", "SPLITS", "USER_CACHE", "DatasetCache", "DatasetRead", "Sample", "age_band",
    "cache_folder", "framing_warning", "open_dataset", "warn_if_loosely_framed",
    "merge_copies", "read_celeba", "read_spec", "read_fairface", "read_folder", "read_utkface", "select", "split_of",
]
