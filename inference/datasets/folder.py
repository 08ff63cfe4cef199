"""A plain folder of images, optionally with a CSV of labels or user-chosen groups.

The CSV (``labels.csv`` in the folder, or any path given) has a ``file``
column (the image's path relative to the folder, ``male/1.jpg``; ``male\\1.jpg``
as a CSV written on Windows has it, and an absolute path inside the folder,
name the same file; on Windows and macOS, whose file systems take a name in
any case, so does the path in another case) and any of ``gender``, ``race``,
``age``, ``split``, ``group``. A bare file name names a file at the top of the
folder only: a row "1.jpg" for male/1.jpg is skipped, its reason naming the
file it may mean. Without a CSV every image is a sample with no labels: the
unlabelled audit never invents any.
"""
from __future__ import annotations

import logging
import os
import posixpath
import re
import sys
import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Collection, Iterable, Iterator

from ..errors import PERMISSION_DENIED, BiasMirrorError, in_words
from .csv_file import KNOWN_COLUMNS, file_name_readings, read_csv_rows, read_rows_by_file
from .sample import (IMAGE_EXTENSIONS, NOT_IN_FOLDER, NOT_RELATIVE, PASSED_OVER_PHOTOS, DatasetRead, Sample, nfc,
                     one_spelling)
from .splits import SPLITS

log = logging.getLogger(__name__)
LAYOUT = "a folder of images (.jpg/.png/...), optionally with labels.csv (columns: file, gender, race, age, split, group)"
# Windows' and macOS's file systems (by default) take a file's name in any case: there a CSV row "women/img_001.jpg"
# names Women/IMG_001.JPG, which had been "not in the folder". Linux's may hold both, and a row names its own. Tests
# set it to read a CSV as each system does.
NAMES_IGNORE_CASE = sys.platform in ("win32", "darwin")
# "C:/Users/ana/faces/1.jpg" (backslashes turned into slashes) is an absolute path, whatever the system reading it
_DRIVE = re.compile(r"[A-Za-z]:/")


@dataclass(frozen=True)
class FolderListing:
    """A folder's images, its photos of a type that cannot be read here (``PASSED_OVER_PHOTOS``) with the type's
    name, and its subfolders that could not be listed with why, all by path: a report names the latter two, which a
    warning alone had left out of it."""

    images: list[Path]
    not_read: list[tuple[Path, str]] = field(default_factory=list)
    folders_not_read: list[tuple[Path, str]] = field(default_factory=list)
    # what the listing said of them (and of links that lead nowhere), as logged: kept for the app's window, which a
    # log line alone did not reach (a folder of HEIC photos showed "end of heic" and no warning)
    warnings: tuple[str, ...] = ()
    # st_mtime_ns of each folder walked, by path (None where one could not be listed), and when the listing began: a
    # looped slideshow lists the folder again only where one of them has changed since
    folder_times: dict[str, int] | None = None
    listed_at_ns: int = 0


def list_images(root: Path) -> list[Path]:
    """The images in ``root`` and its subfolders (``list_folder``)."""
    return list_folder(root).images


def list_folder(root: Path, say: bool = True) -> FolderListing:
    """The images in ``root`` and its subfolders but hidden ones, by path, through links to folders outside it (each
    folder once), and the photos it passes over for their type. A folder that cannot be listed is named, and kept in
    ``folders_not_read`` for the report: Path.rglob passed over it silently, so an unreadable folder read as one with
    no images; so is a link that leads nowhere. What is passed over is said in ``warnings``, and logged unless
    ``say`` is False (a looped slideshow lists its folder again at each pass, and says only what is new)."""
    try:
        with os.scandir(root):
            pass
    except PermissionError:
        raise BiasMirrorError(f"{PERMISSION_DENIED} (this folder cannot be listed)", root) from None

    unlistable: list[tuple[Path, str]] = []
    said: list[str] = []
    listed_at = time.time_ns()
    times: dict[str, int] | None = {}

    def unlisted(exc: OSError) -> None:
        said.append(f"{exc.filename}: {in_words(exc)}; the images in it are skipped")
        unlistable.append((Path(exc.filename or root), in_words(exc)))

    found, passed, walked, inside = [], [], set(), os.path.realpath(root)
    # a folder assembled from links to others (one per session, say) had lost their images without a word. A link
    # to a folder of this one ("current" -> session_02) is not followed: the images are read once, under their own
    # path, which a labels CSV names; a link back up the tree (sub/loop -> ..) is such a link too
    for folder, subfolders, files in os.walk(root, onerror=unlisted, followlinks=True):
        real = os.path.realpath(folder)
        if real in walked:  # reached again through links from outside (two links to one session)
            subfolders[:] = []
            continue
        walked.add(real)
        try:
            if times is not None:
                times[folder] = os.stat(folder).st_mtime_ns
        except OSError:  # gone since it was listed: no time to compare with, so listed again next time
            times = None
        # hidden folders (.git, .cache, a tool's .gpudata) hold no one's photos: opening a checkout found thousands
        # of images in them; hidden files are no one's photos either (macOS's "._photo.jpg" beside each photo on a
        # shared drive had read as unreadable images)
        subfolders[:] = sorted(d for d in subfolders if not d.startswith(".")
                               and not _links_within(os.path.join(folder, d), inside))
        found += _of_types(folder, files, IMAGE_EXTENSIONS)
        passed += _of_types(folder, files, PASSED_OVER_PHOTOS)
    kept, dropped = [], []
    for p in found:
        (kept if _kept(p) else dropped).append(p)
    # only among those dropped: a kept file is no broken link, and exists() raises where is_file() is kept (_kept)
    broken = sorted(p for p in dropped if p.is_symlink() and not os.path.exists(p))
    if broken:
        said.append(f"{root}: {len(broken)} link(s) to images that do not exist, skipped, e.g. "
                    + ", ".join(str(p.relative_to(root)) for p in broken[:3]))
    if passed:
        passed.sort()
        said.append(f"{root}: {len(passed)} photo(s) of a type that cannot be read here, skipped, e.g. "
                    + ", ".join(f"{p.relative_to(root)} ({PASSED_OVER_PHOTOS[p.suffix.lower()]})" for p in passed[:3])
                    + "; convert them (e.g. to JPEG) to include them")
    if say:
        for text in said:
            log.warning("%s", text)
    return FolderListing(sorted(kept), [(p, PASSED_OVER_PHOTOS[p.suffix.lower()]) for p in passed], sorted(unlistable),
                         tuple(said), None if unlistable else times, listed_at)


def _of_types(folder: str, files: list[str], extensions: Iterable[str]) -> list[Path]:
    """The files of ``folder`` with one of ``extensions`` but hidden ones."""
    return [Path(folder, f) for f in files if Path(f).suffix.lower() in extensions and not f.startswith(".")]


def _links_within(path: str, root_real: str) -> bool:
    """Whether ``path`` is a link to a folder the listing of the one whose real path is ``root_real`` walks anyway:
    inside it, and in no hidden folder of it (a link to .store/v2 is how its images are reached: skipped, they had
    been read under neither path, and the audit had called the folder empty)."""
    if not os.path.islink(path):
        return False
    real = os.path.realpath(path)
    if real == root_real:
        return True
    if not real.startswith(root_real.rstrip(os.sep) + os.sep):
        return False
    return not any(part.startswith(".") for part in Path(os.path.relpath(real, root_real)).parts)


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


class FolderBases(tuple):
    """A folder's ``bases`` (``folder_bases``), with the real path of each folder a row's absolute path ran through
    (``_real_spelling``), found once for all the rows of that folder."""

    real_folders: dict[str, str | None]

    def __new__(cls, bases: tuple[str, ...]) -> "FolderBases":
        made = super().__new__(cls, bases)
        made.real_folders = {}
        return made


def folder_bases(root: Path) -> FolderBases:
    """``path_within``'s and ``named_within``'s ``bases`` for the folder ``root``: its absolute path as given and with
    links followed, in NFC, so that a row's absolute path names its file whether it was written through a link to
    the folder or to the folder the link leads to."""
    return FolderBases(tuple(nfc(base.as_posix()) for base in (root.absolute(), root.resolve())))


def path_within(name: str, bases: tuple[str, ...], in_folder: Collection[str]) -> str | None:
    """The path within the folder (one of ``in_folder``) of the file a CSV row names, or None. Backslashes separate
    folders as slashes do (a CSV written on Windows: "female\\3.jpg"), and an absolute path inside the folder names
    the file it leads to: both had been "not in the folder", and the audit run without their labels. Where file
    names ignore case (``NAMES_IGNORE_CASE``), a name matching no file as spelled names the one file it matches in
    another case. ``bases``: the folder's absolute path as given and through any link to it, in NFC. A name that
    names no file so is read as a CSV's cell may mean it (``file_name_readings``: faces.csv's "'-5.jpg" names
    "-5.jpg", a spreadsheet's " b.jpg" names "b.jpg"), where those readings name one file only."""
    found = _path_as_spelled(name, bases, in_folder)
    if found is not None:
        return found
    meant = _paths_read(name, bases, in_folder)
    return meant[0] if len(meant) == 1 else None


def _path_as_spelled(name: str, bases: tuple[str, ...], in_folder: Collection[str]) -> str | None:
    """``path_within``'s rule for ``name`` as it is spelled (its slashes, its case aside)."""
    spellings = list(_spellings(name, bases))
    for spelling in spellings:  # as given first: a file whose name holds a backslash is named by it
        if spelling in in_folder:
            return spelling
    matches = _in_another_case(spellings, in_folder)
    return matches[0] if len(matches) == 1 else None


def _paths_read(name: str, bases: tuple[str, ...], in_folder: Collection[str]) -> list[str]:
    """The files of ``in_folder`` that ``name``'s readings (``file_name_readings``) name, sorted."""
    return sorted({path for reading in file_name_readings(name)
                   if (path := _path_as_spelled(reading, bases, in_folder)) is not None})


def named_within(name: str, bases: tuple[str, ...]) -> str | None:
    """The path within the folder that a CSV row's file name spells, by its words alone (a file through a link is
    in no listing, so a reader looks it up on disk), or None where it leads out of the folder: "../x.jpg", an
    absolute path elsewhere. Such a row is skipped, as ``path_within`` skips it: a FairFace row "../x.jpg" had
    audited an image outside the dataset. ``bases``: as ``path_within``'s."""
    posix = PurePosixPath(name.replace("\\", "/")).as_posix()
    if _is_absolute(posix):
        return next(_within_bases(posix, bases), None)
    if _has_parent_step(posix) and bases:  # as the OS reads it from the folder: "sub/.." may leave it through a link
        return next(_within_bases(posixpath.join(bases[0], posix), bases), None)
    normal = posixpath.normpath(posix)
    return None if normal == ".." or normal.startswith("../") else normal


def _spellings(name: str, bases: tuple[str, ...]) -> Iterator[str]:
    """The paths within the folder a CSV row's file name may be: as given, with backslashes as slashes, and, an
    absolute path, relative to each of ``bases``. Read alike on every system: Windows' os.path had turned the
    slashes back into backslashes, and no absolute path (C:\\Users\\ana\\faces\\male\\1.jpg) matched there. A relative
    path that steps up ("sub/../2.jpg") is read from the folder as ``named_within`` reads it: it had matched no file
    and its row was skipped."""
    yield name
    posix = PurePosixPath(name.replace("\\", "/")).as_posix()
    yield posix
    if _is_absolute(posix):
        yield from _within_bases(posix, bases)
    elif _has_parent_step(posix) and bases:  # "sub/../2.jpg", read from the folder as the OS reads it (links first)
        yield from _within_bases(posixpath.join(bases[0], posix), bases)


def _within_bases(posix: str, bases: tuple[str, ...]) -> Iterator[str]:
    """The absolute path ``posix`` relative to each of ``bases`` it lies in, as written; where it lies in none, as
    its folder's real path places it (``_real_spelling``): rows written through a link to the folder had been
    "outside the dataset folder" when the folder was given by its real path. A path with ".." is read as the OS reads
    it, links followed before ".." steps back: normalised by its words, real/sub/../2.jpg (sub a link to deep/x)
    had labelled real/2.jpg, not the real/deep/2.jpg it opens."""
    if _has_parent_step(posix) and (real := _real_spelling(posix, bases)) is not None:
        yield from _relative_to_bases(posixpath.normpath(real), bases)
        return
    written = _relative_to_bases(posixpath.normpath(posix), bases)
    if written:
        yield from written
        return
    real = _real_spelling(posix, bases)
    yield from _relative_to_bases(real, bases) if real else []


def _has_parent_step(posix: str) -> bool:
    """Whether the path ``posix`` (with slashes) steps up a folder ("..") anywhere."""
    return ".." in posix.split("/")


def _relative_to_bases(path: str, bases: tuple[str, ...]) -> list[str]:
    """``path`` (normalised, with slashes) relative to each of ``bases`` it lies in."""
    return [within for base in bases if (within := _relative_to(path, posixpath.normpath(base.replace("\\", "/"))))]


def _real_spelling(posix: str, bases: tuple[str, ...]) -> str | None:
    """The absolute path ``posix`` with its folder's links followed, in NFC; None where this system cannot follow it
    (a Windows path read on Linux). Each folder is resolved once per ``bases`` that keeps them (``FolderBases``): a
    CSV of many rows names few folders."""
    if not os.path.isabs(posix):
        return None
    folder, name = posixpath.split(posix)
    cache = getattr(bases, "real_folders", {})
    if folder not in cache:
        try:
            # with slashes, by the reading system's separator (os.path), as the rows and bases are compared
            cache[folder] = nfc(os.path.realpath(folder).replace(os.path.sep, "/"))
        except (OSError, ValueError):  # a name no path can have: no folder of the dataset
            cache[folder] = None
    real = cache[folder]
    return None if real is None else posixpath.join(real, name)


def _is_absolute(posix: str) -> bool:
    """Whether ``posix`` (a path with slashes) is absolute on POSIX or on Windows (a drive's, or a share's)."""
    return posix.startswith("/") or _DRIVE.match(posix) is not None


def _relative_to(path: str, base: str) -> str | None:
    """``path`` relative to ``base`` (both normalised, with slashes), or None where it is not inside it; by name in
    any case where file names ignore case (C:/users/Ana/faces is the folder C:/Users/ana/faces)."""
    parts, base_parts = path.split("/"), base.rstrip("/").split("/")
    if len(parts) <= len(base_parts):
        return None
    same = (lambda a, b: a.casefold() == b.casefold()) if NAMES_IGNORE_CASE else str.__eq__
    if not all(same(a, b) for a, b in zip(parts, base_parts)):
        return None
    return "/".join(parts[len(base_parts):])


def _in_another_case(spellings: list[str], in_folder: Collection[str]) -> list[str]:
    """The files of ``in_folder`` that the first of ``spellings`` to match any names in another case than its own,
    sorted, where file names ignore case; none where they do not."""
    if not NAMES_IGNORE_CASE:
        return []
    by_casefold = _by_casefold(in_folder)
    for spelling in spellings:
        matches = by_casefold.get(spelling.casefold())
        if matches:
            return matches
    return []


class FileNames(frozenset):
    """A folder's files (paths within it) for ``path_within``, with their index by casefolded name made once, on the
    first row naming none as spelled: made anew for each such row, a CSV all in another case took a time growing as
    rows × files."""

    @cached_property
    def by_casefold(self) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for rel in sorted(self):
            index.setdefault(rel.casefold(), []).append(rel)
        return index


def _by_casefold(in_folder: Collection[str]) -> dict[str, list[str]]:
    """The files of ``in_folder`` by their casefolded names, each list sorted."""
    return (in_folder if isinstance(in_folder, FileNames) else FileNames(in_folder)).by_casefold


def _named_in_case(name: str, bases: tuple[str, ...], in_folder: Collection[str]) -> str | None:
    """Why a row naming several files in other cases than its own is skipped, or None: which it means cannot be told
    where file names ignore case (Women/IMG_1.JPG and women/IMG_1.JPG, on a share of a Linux machine's)."""
    matches = _in_another_case(list(_spellings(name, bases)), in_folder)
    if len(matches) < 2:
        return None
    return (f"{NOT_IN_FOLDER} as spelled, and {len(matches)} files differ from it in case only: "
            f"{', '.join(matches[:3])}{' …' if len(matches) > 3 else ''}; name the one meant as the folder spells it")


def _read_as_several(name: str, bases: tuple[str, ...], in_folder: Collection[str]) -> str | None:
    """Why a row whose name, read less a formula mark or padding (``file_name_readings``), names several files is
    skipped, or None: " '-x.jpg" may be "'-x.jpg" padded, or that padded faces.csv's mark of "-x.jpg", and guessing
    would put one file's labels on another."""
    matches = _paths_read(name, bases, in_folder)
    if len(matches) < 2:
        return None
    return (f"{NOT_IN_FOLDER} as written, and read less its leading ' (a spreadsheet's mark of text) or its spaces "
            f"it may be any of {len(matches)} files: {', '.join(map(repr, matches[:3]))}"
            f"{' …' if len(matches) > 3 else ''}; name the one meant as the folder spells it")


def _of_a_type_not_read(name: str, root: Path) -> str | None:
    """Why a row naming a file of the folder that its listing passes over for its type is skipped, or None: such a
    row (an iPhone's IMG_0001.HEIC, a .tga) had been "not in the folder", sending its user to look for a file that is
    there."""
    posix = name.replace("\\", "/")
    suffix = PurePosixPath(posix).suffix.lower()
    # a file of a type read that the listing lacks is hidden, or not there: "not in the folder" stands; padded
    # (" IMG_1.HEIC", "male, IMG_1.HEIC"), the name is read past its spaces as path_within reads it
    candidates = {name, posix, posix.strip()}
    if suffix in IMAGE_EXTENSIONS or not any(_file_within(root / candidate, root) for candidate in candidates):
        return None
    kind = PASSED_OVER_PHOTOS.get(suffix)
    if kind is not None:
        return f"in the folder, but a {kind} photo, a type that cannot be read here; convert it (e.g. to JPEG)"
    files = f"{suffix} files" if suffix else "files without an extension"
    return f"in the folder, but {files} are not read as images; convert it (e.g. to JPEG)"


def _file_within(path: Path, root: Path) -> bool:
    """Whether ``path`` (an absolute one as it is) is a file inside ``root``, through links too."""
    try:
        return path.is_file() and path.resolve().is_relative_to(root.resolve())
    except OSError:  # a name no file can have (too long): not a file of it
        return False


def _not_found(name: str, by_base: dict[str, list[str]]) -> str:
    """Why a row naming no file of the folder is skipped, with the files of its base name where there are any: a
    CSV of bare names ("1.jpg" for male/1.jpg) had been "not in the folder", though its files were there."""
    posix = name.replace("\\", "/")
    base = posix.rsplit("/", 1)[-1]
    matches = by_base.get(base) or by_base.get(base.strip(), [])  # " 1.jpg", padded, as path_within reads it
    why = NOT_RELATIVE if "/" not in posix or _is_absolute(posix) else NOT_IN_FOLDER
    if len(matches) == 1:
        return f"{why}; did you mean {matches[0]}?"
    if matches:
        return f"{why}; {len(matches)} files are named {base!r}: {', '.join(matches[:3])}{' …' if len(matches) > 3 else ''}"
    return NOT_IN_FOLDER


def _within_folder(rows: dict[str, dict[str, str]], root: Path, in_folder: FileNames,
                   csv_path: Path) -> tuple[dict[str, dict[str, str]], list[tuple[str, str]]]:
    """``rows`` keyed by the path within the folder of the file each names (``path_within``), and the rows that
    name none, with why. Two rows naming one file in two ways ("a/b.jpg" and "a\\b.jpg") are refused, as two
    Unicode spellings are."""
    bases = folder_bases(root)
    by_base: dict[str, list[str]] = {}  # the folder's files by base name, made for the first row naming none

    def files_named() -> dict[str, list[str]]:
        if not by_base:
            for rel in sorted(in_folder):
                by_base.setdefault(rel.rsplit("/", 1)[-1], []).append(rel)
        return by_base

    out: dict[str, dict[str, str]] = {}
    named_as: dict[str, str] = {}
    skipped = []
    for name, row in rows.items():
        rel = path_within(name, bases, in_folder)
        if rel is None:
            skipped.append((name, _of_a_type_not_read(name, root) or _named_in_case(name, bases, in_folder)
                            or _read_as_several(name, bases, in_folder) or _not_found(name, files_named())))
        elif rel in out:
            raise BiasMirrorError(f"the labels CSV lists {rel!r} twice, as {named_as[rel]!r} and {name!r}; keep one "
                                  "row per file", csv_path)
        else:
            out[rel], named_as[rel] = row, name
    return out, sorted(skipped)


def labels_csv_of(root: Path) -> Path:
    """The folder's labels CSV: labels.csv, else the one file named so in another case (Labels.csv, with a warning),
    which on Linux had been passed over without a word and the audit run unlabelled, where Windows and macOS read
    it. Two such files are refused: which holds the labels cannot be told."""
    own = root / "labels.csv"
    if own.exists():
        return own
    try:
        others = sorted(n for n in os.listdir(root) if n.casefold() == own.name and (root / n).is_file())
    except OSError:  # the folder's own listing (list_folder) names such a problem
        return own
    if len(others) > 1:
        raise BiasMirrorError(f"{' and '.join(others)} are each labels.csv in another case, and which holds the "
                              "labels cannot be told: name the one to read labels.csv", root)
    if not others:
        return own
    log.warning("%s: no labels.csv, read as the folder's labels CSV (its name in another case)", root / others[0])
    return root / others[0]


# Names other datasets' CSVs give the columns the reader knows by (CelebA's "Male" is a 1/-1 attribute, not ours)
_ALSO_CALLED = {"sex": "gender", "ethnicity": "race", "race_ethnicity": "race", "skin": "race", "age_years": "age",
                "subset": "split", "partition": "split", "fold": "split"}


def _renamings(unread: list[str]) -> str:
    """"; sex → gender, ethnicity → race" for the unread columns that look like known ones, else ""."""
    pairs = [f"{c} → {_ALSO_CALLED[c.lower()]}" for c in unread if c.lower() in _ALSO_CALLED]
    return f" (perhaps {', '.join(pairs)})" if pairs else ""


def _warn_unread_columns(columns: list[str], csv_path: Path) -> None:
    """Warn of the CSV's columns the reader does not know. With none it knows besides 'file' ("sex", "ethnicity",
    "age_years") every image had been read unlabelled, and the audit run unlabelled with exit 0, without a word;
    with "age" known beside them, the labels named otherwise had been dropped as silently, and training then asked
    for a gender column the file had under another name."""
    unread = [c for c in columns if c and c not in KNOWN_COLUMNS]  # a trailing comma's empty name is no column
    if not set(columns) & set(KNOWN_COLUMNS[1:]):
        log.warning("%s: no column but 'file' is one the labels CSV is read by (its columns: %s; known: %s): every "
                    "image is read without labels; rename the columns to the known ones%s", csv_path,
                    ", ".join(columns), ", ".join(KNOWN_COLUMNS), _renamings(unread))
    elif unread:
        log.warning("%s: column(s) %s not read (known: %s)%s", csv_path, ", ".join(unread), ", ".join(KNOWN_COLUMNS),
                    _renamings(unread))


def _refuse_no_rows(csv_path: Path) -> None:
    """Refuse a labels CSV that names no file: one with a header only had given an audit "(unlabelled)" with exit 0,
    where its user had asked for labels. Without the CSV the folder is read unlabelled, as meant."""
    _, rows = read_csv_rows(csv_path, "the labels CSV")
    what = (f"no rows naming a file ({len(rows)} row(s), each with an empty 'file' cell)" if rows else "no rows")
    raise BiasMirrorError(f"the labels CSV has a header but {what}: every image would be read without labels; add a "
                          "row per image (its path in the folder, then its labels), or remove the CSV to read the "
                          "folder unlabelled", csv_path)


def read_folder(path: str | os.PathLike, labels_csv: str | os.PathLike | None = None,
                images: list[Path] | None = None) -> DatasetRead:
    """The folder's images with their labels; ``images``: its ``list_images``, where the caller has listed it."""
    root = Path(path)
    if root.exists() and not root.is_dir():
        raise BiasMirrorError(f"is a file, not a folder; expected {LAYOUT}", root)
    if not root.is_dir():
        raise BiasMirrorError(f"the folder does not exist; expected {LAYOUT}", root)
    images = list_images(root) if images is None else images
    if not images:
        raise BiasMirrorError(f"no images found; expected {LAYOUT}", root)
    csv_path = Path(labels_csv) if labels_csv else labels_csv_of(root)
    rows: dict[str, dict[str, str]] = {}
    if csv_path.exists():
        columns, rows = read_rows_by_file(csv_path, "the labels CSV")
        if "file" not in columns:
            raise BiasMirrorError("the labels CSV has no 'file' column", csv_path)
        _warn_unread_columns(columns, csv_path)
        if not rows:
            _refuse_no_rows(csv_path)
    elif labels_csv:
        raise BiasMirrorError("the labels CSV does not exist", csv_path)
    rel_names = {p.relative_to(root).as_posix(): p for p in images}
    rows, skipped = _within_folder(_by_nfc_name(rows, csv_path), root, FileNames(nfc(rel) for rel in rel_names),
                                   csv_path)
    if skipped and not rows:  # a CSV of names of another folder had given an audit "(unlabelled)" with exit 0
        name, why = skipped[0]
        raise BiasMirrorError(f"none of its {len(skipped)} row(s) names an image of the folder {root}, e.g. {name!r}: "
                              f"{why}", csv_path)
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
