"""The record every dataset reader yields, and the result of one read."""
from __future__ import annotations

import logging
import math
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Iterable, Mapping

log = logging.getLogger(__name__)

# The one list of image types: folders, single files, datasets and the app's Open dialog all use it, so a
# type one of them opens is never skipped by another. All are formats OpenCV's imdecode reads, under each name they
# go by: a browser on Windows saves a JPEG as .jfif, and a folder had dropped those without a word where `run`
# read one given alone. The common ones first, as messages list them.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".gif", ".avif",
                    ".jfif", ".jpe", ".jif",  # JPEG
                    ".jp2", ".j2k",  # JPEG 2000, as a file and as a bare codestream
                    ".ppm", ".pgm", ".pbm", ".pnm", ".pam")  # Netpbm
# Photo types a folder passes over, by extension, with their names: none is read right here (OpenCV has no HEIC or RAW
# decoder). They are named when skipped: an iPhone's export of JPEGs and HEICs had lost its HEICs without a word.
# Files that are no photos (labels.csv, .xmp, .aae) pass unremarked.
PASSED_OVER_PHOTOS = {".heic": "HEIC", ".heif": "HEIF", ".hif": "HEIF", ".dng": "RAW", ".cr2": "RAW",
                      ".cr3": "RAW", ".nef": "RAW", ".arw": "RAW", ".orf": "RAW", ".rw2": "RAW", ".raf": "RAW"}
GENDERS = ("male", "female")
# Age bands used by every per-group table; children are kept apart because
# binary gender labels and classifiers behave very differently on them. A dataset
# that gives ages as bins of its own (FairFace) is grouped by those (Sample.age_bin).
AGE_BANDS = ((0, 17, "0-17"), (18, 29, "18-29"), (30, 44, "30-44"), (45, 59, "45-59"), (60, 200, "60+"))
# Race labels as the datasets spell them (UTKFace's, then FairFace's others): a labels CSV's "white" is "White".
KNOWN_RACES = ("White", "Black", "Asian", "Indian", "Others", "East Asian", "Southeast Asian", "Middle Eastern",
               "Latino_Hispanic")
NOT_IN_FOLDER = "listed in the labels but not in the folder"  # a label row naming a file the dataset's folder lacks
# a label row naming a file by another path than its one within the folder (a bare name, a path elsewhere)
NOT_RELATIVE = "not a path relative to the folder"


def listed_not_found(why: str) -> bool:
    """``why`` (a reader's skip reason) says a label row names no file of the folder, as given or at all: it may
    go on to name the file meant ("; did you mean male/1.jpg?")."""
    return why.startswith((NOT_IN_FOLDER, NOT_RELATIVE))


def nfc(name: str) -> str:
    """``name`` in Unicode NFC: macOS stores "é" decomposed (NFD), a spreadsheet types it composed, and the two
    spellings of one file name had matched no label and hashed to different splits."""
    return unicodedata.normalize("NFC", name)


def one_spelling(labels: Iterable[str | None], where: object) -> dict[str, str]:
    """Each label to the one spelling of its case variants: a known race's own, else the commonest (on a tie the
    first in sorted order). "white" and "White" had been two groups in every table and balanced mix."""
    known = {r.casefold(): r for r in KNOWN_RACES}
    seen: dict[str, Counter] = defaultdict(Counter)
    for label in labels:
        if label:
            seen[label.casefold()][label] += 1
    out, merged = {}, []
    for folded, spellings in seen.items():
        chosen = known.get(folded) or min(spellings, key=lambda v: (-spellings[v], v))
        out.update(dict.fromkeys(spellings, chosen))
        if len(spellings) > 1:
            merged.append(f"{' and '.join(map(repr, sorted(spellings)))} as {chosen!r}")
    if merged:
        log.warning("%s: labels that differ only in case are read as one, e.g. %s", where, "; ".join(merged[:3]))
    return out


def age_band(age: int | None) -> str | None:
    if age is None:
        return None
    for lo, hi, name in AGE_BANDS:
        if lo <= age <= hi:
            return name
    return None


def band_bounds(band: str) -> tuple[int, float] | None:
    """A dataset's age bin's youngest and oldest ages: "30-39" → (30, 39), "more than 70" → (70, inf); None where
    it names no age. One reading for the reader that ages a face by its bin's lower bound and for a recipe that
    needs the whole bin within its ages."""
    if any(c.isdigit() and not c.isascii() for c in band):
        return None  # "²0-29" is no band: int() refused the "²" that isdigit takes (a traceback)
    digits = "".join(c if c.isdigit() else " " for c in band).split()
    if not digits:
        return None
    return int(digits[0]), (int(digits[1]) if len(digits) > 1 else math.inf)


@dataclass(frozen=True)
class Sample:
    """One face image on disk with its labels (``None`` where the dataset has none).

    ``gender`` is the dataset's binary annotation, not anyone's identity.
    ``race`` holds the dataset's race label or its skin proxy (CelebA: pale / not pale).
    ``age_bin`` is the dataset's own age bin where it gives ages as bins (FairFace's "40-49", whose lower bound is
    ``age``): ``age_band`` is then that bin, not one of AGE_BANDS it straddles.
    ``partition`` is the dataset's own split where it has one, or for an image stored more than once the
    earliest split any copy was in (``copies``).
    ``split_made`` says, for a card, how a reader made partitions that are not all the dataset's own (FairFace's
    val is hashed out of its train): "the dataset's own split labels" had said otherwise.
    """

    path: str
    gender: str | None = None
    race: str | None = None
    age: int | None = None
    partition: str | None = None
    group: str | None = None  # a user-chosen group (unlabelled audits)
    attrs: Mapping[str, str] = field(default_factory=dict)
    age_bin: str | None = None
    split_made: str | None = None

    @property
    def age_band(self) -> str | None:
        """The dataset's own age bin, else the AGE_BANDS band of ``age``: FairFace's 40–49-year-olds, aged 40 by
        the bin's lower bound, had been counted in every "30-44" table."""
        return self.age_bin or age_band(self.age)


@dataclass
class DatasetRead:
    """What a reader found: the samples, what it skipped with why, and the copies it counted once."""

    name: str
    root: str
    samples: list[Sample]
    skipped: list[tuple[str, str]] = field(default_factory=list)
    copies: list[tuple[str, str]] = field(default_factory=list)  # (a file left out, the byte-identical one kept)
    near_identical: list[list[str]] = field(default_factory=list)  # images of one photograph, put in one split
    conflicts: list[list[str]] = field(default_factory=list)  # images of one photograph under other labels, left out

    def warn_skipped(self) -> None:
        if self.skipped:
            log.warning("%s: skipped %s", self.root, skipped_in_words(self.skipped))


def skipped_in_words(skipped: list[tuple[str, str]]) -> str:
    """"N file(s) with unusable labels, e.g. a (why); b (why); c (why)": the warning of what a reader skipped, and
    the reason a reader that skipped every row gives in its error, where the warning would come too late."""
    examples = "; ".join(f"{n} ({why})" for n, why in skipped[:3])
    return f"{len(skipped)} file(s) with unusable labels, e.g. {examples}"


def unlisted_images(on_disk: Iterable[str], listed: Iterable[str]) -> list[str]:
    """The images (by ``IMAGE_EXTENSIONS``, hidden files aside) of ``on_disk`` that no label row names, sorted: a
    dataset folder's unlisted images had been passed over without a word, where the folder reader names them."""
    named = set(listed)
    return sorted(n for n in on_disk if n not in named and n.lower().endswith(IMAGE_EXTENSIONS)
                  and not n.rsplit("/", 1)[-1].startswith("."))


def warn_unlisted(where: object, unlisted: list[str], lists: str) -> None:
    if unlisted:
        log.warning("%s: %d image(s) in the folder are not in %s, skipped (no labels), e.g. %s", where,
                    len(unlisted), lists, ", ".join(unlisted[:3]))
