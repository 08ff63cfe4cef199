"""CelebA: ``img_align_celeba/`` + ``list_attr_celeba.txt`` + ``list_eval_partition.txt``.

Found as each copy keeps them (``find_layout``): in one folder, in the official download's ``Img/``, ``Anno/`` and
``Eval/``, in ``celeba/`` below the folder given (torchvision's root), and as Kaggle's copy has them (the lists as
``.csv`` with a header ``image_id,…``, the images in ``img_align_celeba/img_align_celeba/``).

Gender comes from ``Male``; the only skin information is the ``Pale_Skin``
attribute, used as a coarse skin proxy (pale / not_pale). CelebA gives no age:
every face's age is None (``Young`` is never read as an age), so age filters and
age tables have none to go by. No other attribute is kept: read nowhere, CelebA's
40 a face had held about 460 MB of strings in every process that read it.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Iterator

from ..errors import BiasMirrorError, in_words
from .csv_file import csv_lines, keyed_by_file
from .sample import NOT_IN_FOLDER, DatasetRead, Sample, skipped_in_words, unlisted_images, warn_unlisted

log = logging.getLogger(__name__)

LAYOUT = ("img_align_celeba/, list_attr_celeba.txt and list_eval_partition.txt in one folder, or in its Img/, Anno/ "
          "and Eval/ as the official download has them (Kaggle's .csv lists and img_align_celeba/img_align_celeba/ "
          "too)")
IMAGES, ATTRIBUTES, PARTITION_LIST = "img_align_celeba", "list_attr_celeba", "list_eval_partition"
# where a copy keeps its parts below its folder: all in it, or as the official Google Drive download has them
SUBFOLDERS = ("", "Img", "Anno", "Eval")
TORCHVISION = "celeba"  # torchvision's CelebA(root) keeps its copy in root/celeba/
PARTITIONS = {"0": "train", "1": "val", "2": "test"}
NEEDED_ATTRIBUTES = ("Male", "Pale_Skin")  # without them every face had read as female, or as not pale
BINARY = {"1": True, "-1": False}  # CelebA's only attribute values
PARTITION_LINE = "NAME 0|1|2"  # a line of list_eval_partition.txt: 0 train, 1 val, 2 test
PARTITION_ROW = "NAME,0|1|2"  # a row of Kaggle's list_eval_partition.csv, after its header "image_id,partition"


@dataclass(frozen=True)
class Layout:
    """Where a copy of CelebA keeps its parts (``find_layout``)."""

    root: Path  # the folder holding them: the one given, or its celeba/
    images: Path
    attr_file: Path
    part_file: Path

    @property
    def from_csv(self) -> bool:
        """Kaggle's copy: the lists are CSVs with a header."""
        return self.attr_file.suffix.lower() == ".csv"


def _first(base: Path, name: str) -> Path | None:
    """``name`` in ``base`` or the first of its ``SUBFOLDERS`` that has it."""
    return next((base / sub / name for sub in SUBFOLDERS if (base / sub / name).exists()), None)


def _list_file(base: Path, stem: str) -> Path | None:
    """CelebA's list ``stem``.txt where ``base`` has it, else Kaggle's ``stem``.csv."""
    return _first(base, stem + ".txt") or _first(base, stem + ".csv")


def _image_folder(base: Path) -> Path | None:
    """The image folder, or the one inside it where it holds no files but one of its own name (Kaggle's copy)."""
    folder = _first(base, IMAGES)
    if folder is None:
        return None
    nested = False
    try:
        with os.scandir(folder) as entries:
            for entry in entries:  # up to the first file: a folder of 202,599 images is listed once, by _listing
                if entry.is_file() and not entry.name.startswith("."):  # macOS's .DS_Store is no image
                    return folder
                nested = nested or (entry.name == IMAGES and entry.is_dir())
    except OSError:  # a file, or a folder that cannot be listed: said by _listing, naming it
        return folder
    return folder / IMAGES if nested else folder


def _parts(base: Path) -> tuple[Path | None, Path | None, Path | None]:
    return _image_folder(base), _list_file(base, ATTRIBUTES), _list_file(base, PARTITION_LIST)


def find_layout(root: Path) -> Layout:
    """Where the copy at ``root`` keeps its images and lists (``SUBFOLDERS``, ``TORCHVISION``); refused naming what
    is missing and every place looked in, and where ``root`` is the download's Img/, Anno/ or Eval/, the folder to
    give instead: CelebA's own layout had been refused for "missing img_align_celeba", as had torchvision's."""
    if not root.is_dir():
        raise BiasMirrorError(f"{'is a file, not a folder' if root.exists() else 'the CelebA folder does not exist'}; "
                              f"expected {LAYOUT}", root)
    looked = [(base, _parts(base)) for base in (root, root / TORCHVISION)]
    for base, (images, attr_file, part_file) in looked:
        if images and attr_file and part_file:
            return Layout(base, images, attr_file, part_file)
    parent = root.parent
    if root.name in SUBFOLDERS[1:] and all(_parts(parent)):
        raise BiasMirrorError(f"this is the CelebA download's {root.name}/ folder: give the folder that holds it, "
                              f"{parent}", root)
    _, found = max(looked, key=lambda seen: sum(map(bool, seen[1])))  # the copy nearer complete; the root's on a tie
    missing = [what for what, at in zip((f"{IMAGES}/", f"{ATTRIBUTES}.txt (or .csv)",
                                         f"{PARTITION_LIST}.txt (or .csv)"), found) if at is None]
    places = [f"{PurePosixPath(base, sub)}/" for base in ("", TORCHVISION) for sub in SUBFOLDERS if base or sub]
    missing = [", ".join(missing[:-1]), missing[-1]] if len(missing) > 2 else missing
    raise BiasMirrorError(f"missing {' and '.join(missing)}: looked in the folder itself and in its "
                          f"{', '.join(places[:-1])} and {places[-1]}; expected {LAYOUT}", root)


def _at(path: Path, line: int, why: str) -> str:
    """``why`` a row is skipped, naming the list and the line: the image alone had left the row to be searched for."""
    return f"{path.name}:{line}: {why}"


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


def _partition_rows(part_file: Path) -> Iterator[tuple[int, str, list[str]]]:
    """(line, the line as written, its fields) of each line that names anything: CelebA's "NAME 0|1|2" lines, or
    the rows of Kaggle's list_eval_partition.csv after its header "image_id,partition"."""
    if part_file.suffix.lower() == ".csv":
        rows = csv_lines(part_file, "the partition list")
        next(rows, None)  # the header
        for number, cells in rows:
            if any(c.strip() for c in cells):
                yield number, ",".join(cells), [c.strip() for c in cells]
        return
    for number, line in enumerate(_lines(part_file), 1):
        if line.split():  # a blank line names no image
            yield number, line.strip(), line.split()


def _partitions(part_file: Path) -> dict[str, str]:
    """Each image's partition, from the lines "NAME 0|1|2" (Kaggle's rows "NAME,0|1|2"). Other lines are counted
    and named in a warning: a "3", a third field or a comma had sent their images to the file-name hash split
    without a word. A list none of whose lines reads (Kaggle's "image_id,partition" CSV renamed .txt) is refused.
    An image listed twice with two partitions is refused, as the folder reader refuses it."""
    rows, odd = [], []
    form = PARTITION_ROW if part_file.suffix.lower() == ".csv" else PARTITION_LINE
    for number, text, bits in _partition_rows(part_file):
        if len(bits) == 2 and bits[1] in PARTITIONS:
            rows.append((number, {"file": bits[0], "partition": bits[1]}))
        else:
            odd.append(f"line {number} {text!r}")
    if not rows:
        example = f" (e.g. {odd[0]})" if odd else " (it lists nothing)"
        comma = (": a comma-separated list, such as Kaggle's list_eval_partition.csv, is read under its own name "
                 "(.csv), not as CelebA's .txt, whose lines give the name and partition apart by a space, with no "
                 "header" if form == PARTITION_LINE and odd and "," in odd[0] else "")
        raise BiasMirrorError(f"no line of the partition list is of the form {form!r}{example}{comma}; "
                              "give CelebA's own list_eval_partition.txt", part_file)
    if odd:
        log.warning("%s: %d line(s) not of the form %r are not read (their images are split by a hash of the file "
                    "name), e.g. %s", part_file, len(odd), form, "; ".join(odd[:3]))
    listed = keyed_by_file(rows, ["file", "partition"], part_file, "the partition list")
    return {name: PARTITIONS[row["partition"]] for name, row in listed.items()}


def _attribute_rows(attr_file: Path) -> tuple[list[str], Iterator[tuple[int, list[str]]]]:
    """(the attribute names, (line, [image, value, …]) of each row) of CelebA's list (a count line, a line of the
    names, then a line an image) or of Kaggle's CSV of it (a header "image_id,5_o_Clock_Shadow,…", then a row an
    image). The rows are read as they are used: held at once, CelebA's 202,599 of 41 strings were hundreds of MB."""
    if attr_file.suffix.lower() == ".csv":
        rows = csv_lines(attr_file, "the attribute file")
        header = next(rows, None)
        if header is None:
            raise BiasMirrorError("the attribute file is empty", attr_file)
        return [c.strip() for c in header[1][1:]], ((n, [c.strip() for c in cells]) for n, cells in rows)
    lines = _lines(attr_file)
    if len(lines) < 3:
        raise BiasMirrorError("the attribute file is empty", attr_file)
    return lines[1].split(), ((n, line.split()) for n, line in enumerate(lines[2:], 3))


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
    if name in on_disk:  # as CelebA's own lists name them: 405,198 names made paths had taken 6 s
        return name
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
            folder = images.relative_to(root).as_posix() if images.is_relative_to(root) else images.name
            return (f"; did you mean {where}? the images the attribute file lists are there, where CelebA has them in "
                    f"{folder}/ itself: move them into {folder}/")
    return ""


def _header_hint(header: list[str], skipped: list[tuple[str, str]]) -> str:
    """Where every row has one value fewer than the second line has names, that line may name the image column
    too (a header "image_id 5_o_Clock_Shadow …" typed on, as Kaggle's CSV has): say so, else ""."""
    one_short = f": expected {len(header)} attributes, found {len(header) - 1}"
    if skipped and all(why.endswith(one_short) for _, why in skipped):
        return (f"; the second line names {header[0]!r} first, where CelebA's names the attributes only: take "
                f"{header[0]!r} out of it")
    return ""


def _no_partition(samples: list[Sample], part_file: Path) -> None:
    """Warn of the listed images the partition list gives no partition: they had gone to the hash split unsaid."""
    names = [Path(s.path).name for s in samples if s.partition is None]
    if names:
        log.warning("%s: %d image(s) of the attribute file have no partition here (no line, or one not read), "
                    "split by a hash of the file name instead, e.g. %s", part_file, len(names), ", ".join(names[:3]))


def _needed_values(attr_file: Path, header: list[str], rows: Iterator[tuple[int, list[str]]], images: Path,
                   on_disk: set[str], skipped: list[tuple[str, str]],
                   listed: set[str]) -> list[tuple[int, dict[str, str]]]:
    """(line, {"file", "Male", "Pale_Skin"}) of each row with as many values as ``header`` names; the others go to
    ``skipped``, with their line, and every image named to ``listed``. Only the attributes read are kept."""
    at = [header.index(a) + 1 for a in NEEDED_ATTRIBUTES]
    out = []
    for number, bits in rows:
        if not bits or not bits[0]:  # a blank line (at the end, a CRLF leftover) lists no image: it had been a "?"
            continue
        name = _in_image_folder(bits[0], images.name, on_disk)
        listed.add(name)
        if len(bits) != len(header) + 1:
            skipped.append((name, _at(attr_file, number, f"expected {len(header)} attributes, found {len(bits) - 1}")))
            continue
        out.append((number, {"file": name, **{a: bits[i] for a, i in zip(NEEDED_ATTRIBUTES, at)}}))
    return out


def read_celeba(path: str | os.PathLike) -> DatasetRead:
    layout = find_layout(Path(path))
    root, images, attr_file, part_file = layout.root, layout.images, layout.attr_file, layout.part_file
    partition = _partitions(part_file)
    header, attribute_rows = _attribute_rows(attr_file)
    absent = [a for a in NEEDED_ATTRIBUTES if a not in header]
    if absent:
        where = "its header" if layout.from_csv else "its second line"
        raise BiasMirrorError(f"the attribute file has no {' or '.join(absent)} column ({where} names the "
                              f"attributes): give CelebA's own {attr_file.name}", attr_file)
    on_disk = _listing(images)
    partition = {_in_image_folder(name, images.name, on_disk): split for name, split in partition.items()}
    skipped: list[tuple[str, str]] = []
    listed: set[str] = set()
    rows = _needed_values(attr_file, header, attribute_rows, images, on_disk, skipped, listed)
    lines: dict[str, int] = {}
    samples, folder = [], str(images)
    for name, values in keyed_by_file(rows, ["file", *NEEDED_ATTRIBUTES], attr_file, "the attribute file",
                                      lines=lines).items():
        if name not in on_disk:
            skipped.append((name, NOT_IN_FOLDER))
            continue
        odd = _odd_value(values)
        if odd:
            skipped.append((name, _at(attr_file, lines[name], odd)))
            continue
        samples.append(
            Sample(
                path=os.path.join(folder, name),  # a name of the folder's listing: 202,599 Paths had taken 2 s
                gender="male" if BINARY[values["Male"]] else "female",
                race="pale" if BINARY[values["Pale_Skin"]] else "not_pale",
                age=None,
                partition=partition.get(name),
            )
        )
    if not samples:  # the reasons said here: the warning of what was skipped would never come
        missing = next((n for n, why in skipped if why == NOT_IN_FOLDER), None)
        hint = _deeper(root, images, missing) if missing else "" if layout.from_csv else _header_hint(header, skipped)
        said = f": skipped {skipped_in_words(skipped)}{hint}" if skipped else ""
        raise BiasMirrorError(f"no labelled images{said}; expected {LAYOUT}", root)
    warn_unlisted(images, unlisted_images(on_disk, listed), attr_file.name)
    _no_partition(samples, part_file)
    read = DatasetRead("celeba", str(root), samples, skipped)
    read.warn_skipped()
    return read
