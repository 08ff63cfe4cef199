"""UTKFace: labels live in the file name ``[age]_[gender]_[race]_[datetime].jpg.chip.jpg``."""
from __future__ import annotations

import os
from pathlib import Path

from ..errors import BiasMirrorError
from .sample import IMAGE_EXTENSIONS, DatasetRead, Sample

RACES = ("White", "Black", "Asian", "Indian", "Others")
MAX_AGE = 116  # the dataset's README: ages run from 0 to 116
LAYOUT = "a folder of UTKFace images named [age]_[gender]_[race]_[date&time].jpg.chip.jpg (or its parent holding UTKFace/)"


def _find_root(path: Path) -> Path:
    if not path.exists():
        raise BiasMirrorError(f"the UTKFace folder does not exist; expected {LAYOUT}", path)
    if not path.is_dir():
        raise BiasMirrorError(f"is a file, not a folder; expected {LAYOUT}", path)
    if (path / "UTKFace").is_dir():
        return path / "UTKFace"
    return path


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


def read_utkface(path: str | os.PathLike) -> DatasetRead:
    root = _find_root(Path(path))
    # hidden files are no one's photos, as the folder reader has it: macOS's "._20_1_0_….jpg.chip.jpg" beside each
    # image on a FAT, exFAT or SMB drive had been reported as bad names
    names = sorted(n for n in os.listdir(root) if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith("."))
    if not names:
        raise BiasMirrorError(f"no images found; expected {LAYOUT}", root)
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
