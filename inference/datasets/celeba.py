"""CelebA: ``img_align_celeba/`` + ``list_attr_celeba.txt`` + ``list_eval_partition.txt``.

Gender comes from ``Male``; the only skin information is the ``Pale_Skin``
attribute, used as a coarse skin proxy (pale / not_pale). CelebA gives no age:
every face's age is None (``Young`` is kept with the other attributes, never
read as an age), so age filters and age tables have none to go by.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path, PurePosixPath

from ..errors import BiasMirrorError, in_words
from .csv_file import keyed_by_file
from .sample import NOT_IN_FOLDER, DatasetRead, Sample, skipped_in_words, unlisted_images, warn_unlisted

log = logging.getLogger(__name__)

LAYOUT = "img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt in one folder"
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
NEEDED_ATTRIBUTES = ("Male", "Pale_Skin")  # without them every face had read as female, or as not pale
BINARY = {"1": True, "-1": False}  # CelebA's only attribute values
PARTITION_LINE = "NAME 0|1|2"  # a line of list_eval_partition.txt: 0 train, 1 val, 2 test


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


def _partitions(part_file: Path) -> dict[str, str]:
    """Each image's partition, from the lines "NAME 0|1|2". Other lines are counted and named in a warning: a "3",
    a third field or a comma had sent their images to the file-name hash split without a word. A list none of whose
    lines reads (Kaggle's "image_id,partition" CSV renamed .txt) is refused. An image listed twice with two
    partitions is refused, as the folder reader refuses it."""
    rows, odd = [], []
    for number, line in enumerate(_lines(part_file), 1):
        bits = line.split()
        if not bits:  # a blank line names no image
            continue
        if len(bits) == 2 and bits[1] in PARTITIONS:
            rows.append((number, {"file": bits[0], "partition": bits[1]}))
        else:
            odd.append(f"line {number} {line.strip()!r}")
    if not rows:
        example = f" (e.g. {odd[0]})" if odd else " (it lists nothing)"
        comma = (": a comma-separated list, such as Kaggle's list_eval_partition.csv, is not CelebA's, whose lines "
                 "give the name and partition apart by a space, with no header" if odd and "," in odd[0] else "")
        raise BiasMirrorError(f"no line of the partition list is of the form {PARTITION_LINE!r}{example}{comma}; "
                              "give CelebA's own list_eval_partition.txt", part_file)
    if odd:
        log.warning("%s: %d line(s) not of the form %r are not read (their images are split by a hash of the file "
                    "name), e.g. %s", part_file, len(odd), PARTITION_LINE, "; ".join(odd[:3]))
    listed = keyed_by_file(rows, ["file", "partition"], part_file, "the partition list")
    return {name: PARTITIONS[row["partition"]] for name, row in listed.items()}


def _listing(images: Path) -> set[str]:
    """The names of the files in the image folder, listed once: a look-up per listed image had been 200,000 of
    them for CelebA, and a listing is what finds the images no row names."""
    try:
        with os.scandir(images) as entries:
            return {e.name for e in entries if e.is_file()}
    except NotADirectoryError:
        raise BiasMirrorError(f"is a file, where CelebA has its image folder; expected {LAYOUT}", images) from None
    except OSError as exc:
        raise BiasMirrorError(f"the image folder cannot be listed ({in_words(exc)})", images) from None


def _in_image_folder(name: str, images: str, on_disk: set[str]) -> str:
    """``name`` less a leading "img_align_celeba/" (``images``) where that names a file of the image folder: a list
    written with the folder's name before each image's names the images where CelebA keeps them, and had been "not
    in the folder", with advice to move them where they already were. The name is read as a path, so "./" before
    either form ("./img_align_celeba/000001.jpg", as `find .` prints it) had been "not in the folder" too."""
    posix, prefix = PurePosixPath(name.replace("\\", "/")).as_posix(), images + "/"
    within = posix[len(prefix):] if posix.startswith(prefix) else posix
    if name not in on_disk and within in on_disk:
        return within
    return name


def _deeper(root: Path, images: Path, name: str) -> str:
    """"; did you mean img_align_celeba/img_align_celeba/?" where the listed image ``name`` is in a subfolder of the
    image folder (Kaggle's copy nests them so) or beside it, else "": every row had been "not in the folder"."""
    try:
        places = sorted(e.path for e in os.scandir(images) if e.is_dir() and not e.name.startswith("."))
    except OSError:
        places = []
    for place in (*map(Path, places), root):
        if (place / name).is_file():
            where = f"{place.relative_to(root).as_posix()}/" if place != root else "the dataset folder itself"
            return (f"; did you mean {where}? the images the attribute file lists are there, where CelebA has them in "
                    f"{images.name}/ itself: move them into {images.name}/")
    return ""


def _header_hint(header: list[str], skipped: list[tuple[str, str]]) -> str:
    """Where every row has one value fewer than the second line has names, that line may name the image column
    too (a header "image_id 5_o_Clock_Shadow …" typed on, as Kaggle's CSV has): say so, else ""."""
    one_short = f"expected {len(header)} attributes, found {len(header) - 1}"
    if skipped and all(why == one_short for _, why in skipped):
        return (f"; the second line names {header[0]!r} first, where CelebA's names the attributes only: take "
                f"{header[0]!r} out of it")
    return ""


def _no_partition(samples: list[Sample], part_file: Path) -> None:
    """Warn of the listed images the partition list gives no partition: they had gone to the hash split unsaid."""
    names = [Path(s.path).name for s in samples if s.partition is None]
    if names:
        log.warning("%s: %d image(s) of the attribute file have no partition here (no line, or one not read), "
                    "split by a hash of the file name instead, e.g. %s", part_file, len(names), ", ".join(names[:3]))


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
    on_disk = _listing(images)
    partition = {_in_image_folder(name, images.name, on_disk): split for name, split in partition.items()}
    rows, skipped, listed = [], [], set()
    for number, line in enumerate(lines[2:], 3):
        bits = line.split()
        if not bits:  # a blank line (at the end, or a CRLF leftover) lists no image: it had been a skipped "?"
            continue
        name = _in_image_folder(bits[0], images.name, on_disk)
        listed.add(name)
        if len(bits) != len(header) + 1:
            skipped.append((name, f"expected {len(header)} attributes, found {len(bits) - 1}"))
            continue
        rows.append((number, {"file": name, **dict(zip(header, bits[1:]))}))
    samples = []
    for name, values in keyed_by_file(rows, ["file", *header], attr_file, "the attribute file").items():
        if name not in on_disk:
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
    if not samples:  # the reasons said here: the warning of what was skipped would never come
        missing = next((n for n, why in skipped if why == NOT_IN_FOLDER), None)
        hint = _deeper(root, images, missing) if missing else _header_hint(header, skipped)
        said = f": skipped {skipped_in_words(skipped)}{hint}" if skipped else ""
        raise BiasMirrorError(f"no labelled images{said}; expected {LAYOUT}", root)
    warn_unlisted(images, unlisted_images(on_disk, listed), attr_file.name)
    _no_partition(samples, part_file)
    read = DatasetRead("celeba", str(root), samples, skipped)
    read.warn_skipped()
    return read
