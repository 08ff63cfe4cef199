"""A TIFF's pages told apart by their NewSubfileType: the photos of their own, and the thumbnails, previews and
transparency masks that belong to another page. OpenCV numbers a TIFF's pages in the order of their IFDs, all kinds
alike, and reads the first as "the image": a thumbnail first in its file had been analysed in place of the photo."""
from __future__ import annotations

import logging
import struct
from itertools import islice
from pathlib import Path

import tifffile

from .quieting import QuietWhileHeld

HEADERS = (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")  # little- and big-endian, classic and BigTIFF

# NewSubfileType (TIFF 6.0, tag 254): the bits that make a page part of another rather than a picture of its own
REDUCED_RESOLUTION = 0b001  # a thumbnail or preview of another page
TRANSPARENCY_MASK = 0b100
NOT_A_PHOTO = REDUCED_RESOLUTION | TRANSPARENCY_MASK
# a TIFF's pages whose tags are read: a file of a loop of IFDs, or millions, is not read for seconds
MOST_PAGES = 65536
# what tifffile raises for a TIFF it cannot read (TiffFileError is a ValueError), as its malformed IFDs were found to
TIFFFILE_ERRORS = (OSError, ValueError, EOFError, IndexError, KeyError, TypeError, OverflowError, struct.error)


def is_tiff(head: bytes) -> bool:
    """Whether a file's first bytes are a TIFF's header."""
    return head[:4] in HEADERS


def subfile_types(path: Path) -> list[int]:
    """Each page's NewSubfileType (0 where it has none), in the order of the file's IFDs, as far as tifffile reads
    them; a file whose first IFD cannot be read is one full page (OpenCV says whether it can read it). Read by
    tifffile rather than Pillow: Pillow opens no big-endian BigTIFF, nor a TIFF of float pages."""
    return _kinds(path, up_to_a_photo=False) or [0]


def first_photo_page(path: Path) -> int:
    """The first page that is a photo of its own, by its number in the file: the page a TIFF read as one picture is
    read from; 0 where none is, or its tags cannot be read (OpenCV's first page, as before)."""
    kinds = _kinds(path, up_to_a_photo=True)
    return len(kinds) - 1 if kinds and not kinds[-1] & NOT_A_PHOTO else 0


def _kinds(path: Path, up_to_a_photo: bool) -> list[int]:
    kinds: list[int] = []
    with quiet_tifffile():
        try:
            with tifffile.TiffFile(path) as tiff:
                tiff.pages.cache = False  # a page's tags are read once: 65,536 of them are not held
                read = set()
                for page in islice(tiff.pages, MOST_PAGES):
                    if page.offset in read:  # IFDs that loop back (tifffile walks them again): read once
                        break
                    read.add(page.offset)
                    kinds.append(int(page.subfiletype))
                    if up_to_a_photo and not kinds[-1] & NOT_A_PHOTO:
                        break
        except TIFFFILE_ERRORS:  # a damaged IFD: the pages read before it
            pass
    return kinds


# tifffile logs what is wrong with a damaged TIFF's tags; the pages it reads are the answer, and the reader that fails
# says what is wrong with the file (quieted here and by inference.tiff_read). Its logger is the process's: two threads
# reading TIFFs at once (the app's capture and detection) had each kept the level the other had set.
quiet_tifffile = QuietWhileHeld(lambda: logging.getLogger("tifffile").level,
                                logging.getLogger("tifffile").setLevel, logging.CRITICAL + 1)
