"""UTKFace: labels live in the file name ``[age]_[gender]_[race]_[datetime].jpg.chip.jpg``."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

from ..errors import BiasMirrorError
from .sample import IMAGE_EXTENSIONS, DatasetRead, Sample

RACES = ("White", "Black", "Asian", "Indian", "Others")
MAX_AGE = 116  # the dataset's README: ages run from 0 to 116
LAYOUT = "a folder of UTKFace images named [age]_[gender]_[race]_[date&time].jpg.chip.jpg (or its parent holding UTKFace/)"
# where a user gets it: its project page's "Aligned&Cropped Faces" archive unpacks to UTKFace/ holding the images
SOURCE = "https://susanqq.github.io/UTKFace/ (\"Aligned&Cropped Faces\", UTKFace.tar.gz)"


def _find_root(path: Path) -> Path:
    if not path.exists():
        raise BiasMirrorError(f"the UTKFace folder does not exist; expected {LAYOUT}", path)
    if not path.is_dir():
        raise BiasMirrorError(f"is a file, not a folder; expected {LAYOUT}", path)
    if (path / "UTKFace").is_dir():
        return path / "UTKFace"
    return path


def image_names(folder: Path) -> Iterator[str]:
    """The names of ``folder``'s image files, unsorted, no file opened. Hidden files are no one's photos, as the folder
    reader has it: macOS's "._20_1_0_….jpg.chip.jpg" beside each image on a FAT, exFAT or SMB drive had been reported
    as bad names."""
    return (n for n in os.listdir(folder) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))


def holds_utkface_images(folder: Path) -> bool:
    """Whether ``folder`` holds at least one image named as UTKFace names them; it stops at the first."""
    return any(not isinstance(parse_name(n), str) for n in image_names(folder))


def nested_copy(folder: Path) -> Path | None:
    """``folder``/UTKFace where it holds the UTKFace images ``folder`` lacks: UTKFace.tar.gz unpacked into a folder
    already named UTKFace (UTKFace/UTKFace/*.jpg), which the tests had taken for a copy and then failed on with
    "need at least one array to stack"."""
    inner = folder / "UTKFace"
    return inner if inner.is_dir() and holds_utkface_images(inner) else None


def nesting_note(folder: Path, inner: Path) -> str:
    """What to do about a copy unpacked one level too deep (``nested_copy``), to follow "``folder`` holds no image"."""
    return (f"but {inner} does: UTKFace.tar.gz was unpacked one level too deep (UTKFace/UTKFace/); move its images "
            f"up into {folder}")


def layout_problem(folder: Path) -> str | None:
    """Why ``folder`` is no folder of UTKFace images, said with what to do; None where it holds at least one."""
    if not folder.exists():
        return f"{folder} does not exist; expected {LAYOUT}, as unpacked from {SOURCE}"
    if not folder.is_dir():
        return f"{folder} is a file, not a folder; expected {LAYOUT}"
    if holds_utkface_images(folder):
        return None
    inner = nested_copy(folder)
    if inner is not None:
        return f"{folder} holds no UTKFace image, {nesting_note(folder, inner)}"
    return f"{folder} holds no UTKFace image; expected {LAYOUT}, as unpacked from {SOURCE}"


def parse_name(name: str) -> Sample | str:
    """A Sample from a UTKFace file name, or the reason it cannot be read."""
    parts = name.split("_")
    if len(parts) != 4:
        return f"expected 4 underscore-separated fields, found {len(parts)}"
    age_s, gender_s, race_s, _stamp = parts
    # isdigit takes "²", which int() refuses: such a name crashed the reader instead of being skipped
    if not (age_s.isdecimal() and gender_s in ("0", "1") and race_s.isdecimal() and int(race_s) < len(RACES)):
        return "age, gender or race field is not a valid code"
    if int(age_s) > MAX_AGE:
        return f"age {int(age_s)} is beyond UTKFace's 0–{MAX_AGE}"
    return Sample(
        path=name,
        gender="male" if gender_s == "0" else "female",
        race=RACES[int(race_s)],
        age=int(age_s),
        attrs={"age": age_s, "gender": gender_s, "race": race_s},
    )


def no_images_message(root: Path) -> str:
    """Why a UTKFace folder of no images cannot be read: a copy nested one level too deep is named as such."""
    inner = nested_copy(root)
    if inner is not None:
        return f"no images found, {nesting_note(root, inner)}, or give utkface:{inner}"
    return f"no images found; expected {LAYOUT}"


def read_utkface(path: str | os.PathLike) -> DatasetRead:
    root = _find_root(Path(path))
    names = sorted(image_names(root))
    if not names:
        raise BiasMirrorError(no_images_message(root), root)
    samples, skipped = [], []
    for name in names:
        parsed = parse_name(name)
        if isinstance(parsed, str):
            skipped.append((name, parsed))
            continue
        samples.append(Sample(**{**parsed.__dict__, "path": str(root / name)}))
    read = DatasetRead("utkface", str(root), samples, skipped)
    read.warn_skipped()
    return read
