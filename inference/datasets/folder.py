"""A plain folder of images, optionally with a CSV of labels or user-chosen groups.

The CSV (``labels.csv`` in the folder, or any path given) has a ``file``
column (relative to the folder) and any of ``gender``, ``race``, ``age``,
``split``, ``group``. Without a CSV every image is a sample with no labels:
the unlabelled audit never invents any.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from ..errors import PERMISSION_DENIED, BiasMirrorError, in_words
from .csv_file import read_rows_by_file
from .sample import IMAGE_EXTENSIONS, NOT_IN_FOLDER, DatasetRead, Sample, nfc, one_spelling
from .splits import SPLITS

log = logging.getLogger(__name__)
LAYOUT = "a folder of images (.jpg/.png/...), optionally with labels.csv (columns: file, gender, race, age, split, group)"


def list_images(root: Path) -> list[Path]:
    """The images in ``root`` and its subfolders but hidden ones, by path. A folder that cannot be listed is
    named: Path.rglob passed over it silently, so an unreadable folder read as one with no images."""
    try:
        with os.scandir(root):
            pass
    except PermissionError:
        raise BiasMirrorError(f"{PERMISSION_DENIED} (this folder cannot be listed)", root) from None

    def unlisted(exc: OSError) -> None:
        log.warning("%s: %s; the images in it are skipped", exc.filename, in_words(exc))

    found = []
    for folder, subfolders, files in os.walk(root, onerror=unlisted):
        # hidden folders (.git, .cache, a tool's .gpudata) hold no one's photos: opening a checkout found
        # thousands of images in them
        subfolders[:] = [d for d in subfolders if not d.startswith(".")]
        found += [Path(folder, f) for f in files if Path(f).suffix.lower() in IMAGE_EXTENSIONS]
    return sorted(p for p in found if _kept(p))


def _kept(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # not even its type can be read: kept, so that reading it names the problem
        return True


def _odd_labels(rel: str, row: dict[str, str]) -> list[str]:
    """The values of ``row`` that read_folder cannot use, as "file: column 'value' (expected …)"."""
    expected = {"gender": ("male or female", lambda v: v.lower() in ("male", "female")),
                "age": ("whole years", str.isdecimal),  # isdigit takes "²", which int() refuses
                "split": ("train, val or test", lambda v: v.lower() in SPLITS)}
    out = []
    for column, (wanted, ok) in expected.items():
        value = (row.get(column) or "").strip()
        if value and not ok(value):
            out.append(f"{rel}: {column} {value!r} (expected {wanted})")
    return out


def _by_nfc_name(rows: dict[str, dict[str, str]], csv_path: Path) -> dict[str, dict[str, str]]:
    """``rows`` keyed by their file names in NFC (``nfc``), refusing a file named twice in two Unicode spellings."""
    out: dict[str, dict[str, str]] = {}
    for name, row in rows.items():
        if nfc(name) in out:
            raise BiasMirrorError(f"the labels CSV lists {nfc(name)!r} twice, in two Unicode spellings of its name; "
                                  "keep one row per file", csv_path)
        out[nfc(name)] = row
    return out


def read_folder(path: str | os.PathLike, labels_csv: str | os.PathLike | None = None) -> DatasetRead:
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise BiasMirrorError(f"is a file, not a folder; expected {LAYOUT}", root)
    if not root.is_dir():
        raise BiasMirrorError(f"the folder does not exist; expected {LAYOUT}", root)
    images = list_images(root)
    if not images:
        raise BiasMirrorError(f"no images found; expected {LAYOUT}", root)
    csv_path = Path(labels_csv) if labels_csv else root / "labels.csv"
    rows: dict[str, dict[str, str]] = {}
    if csv_path.exists():
        columns, rows = read_rows_by_file(csv_path, "the labels CSV")
        if "file" not in columns:
            raise BiasMirrorError("the labels CSV has no 'file' column", csv_path)
    elif labels_csv:
        raise BiasMirrorError("the labels CSV does not exist", csv_path)
    rows = _by_nfc_name(rows, csv_path)
    rel_names = {p.relative_to(root).as_posix(): p for p in images}
    unknown = sorted(set(rows) - {nfc(rel) for rel in rel_names})
    skipped = [(name, NOT_IN_FOLDER) for name in unknown]
    if rows:
        missing = sorted(rel for rel in rel_names if nfc(rel) not in rows)
        if missing:
            log.warning("%s: %d image(s) not in the CSV, kept without labels (but where a copy of the same photograph "
                        "has them), e.g. %s", csv_path, len(missing), missing[:3])
    samples, odd = [], []
    races = one_spelling(((r.get("race") or "").strip() for r in rows.values()), csv_path)
    for rel, p in rel_names.items():
        r = rows.get(nfc(rel), {})
        odd += _odd_labels(rel, r)
        gender = (r.get("gender") or "").strip().lower() or None
        age = (r.get("age") or "").strip()
        split = (r.get("split") or "").strip().lower()
        samples.append(
            Sample(
                path=str(p),
                gender=gender if gender in ("male", "female") else None,
                race=races.get((r.get("race") or "").strip()),
                age=int(age) if age.isdecimal() else None,
                partition=split if split in SPLITS else None,
                group=(r.get("group") or "").strip() or None,
                attrs={k: v for k, v in r.items() if k != "file"},
            )
        )
    if odd:  # kept, without the label: the image is still audited, it just cannot be grouped by it
        log.warning("%s: %d label(s) not understood and ignored, e.g. %s", csv_path, len(odd), "; ".join(odd[:3]))
    read = DatasetRead("folder", str(root), samples, skipped)
    read.warn_skipped()
    return read
