"""A TIFF's pages decoded: its photo, read from the first page that is one of its own (inference.tiff_pages tells
them apart), or any page by its number, by OpenCV or, where its decoder refuses the page, by tifffile as OpenCV reads
a page; each with the page's ICC profile."""
from __future__ import annotations

import importlib.util
import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import tifffile

from .frame_depth import as_bgr_uint8, frame_problem
from .tiff_pages import TIFFFILE_ERRORS, first_photo_page, quiet_tifffile


@dataclass(frozen=True)
class TiffPageRead:
    """A TIFF page decoded: its pixels (None where they cannot be read), the ICC profile its page carries, and why it
    cannot be read where that is known beyond "corrupt" (a compression tifffile decodes only with imagecodecs)."""
    image: np.ndarray | None
    icc: bytes | None
    problem: str | None = None


def tiff_photo(path: Path, data: np.ndarray, flags: int) -> TiffPageRead:
    """A TIFF's photo: its first page that is one, not a thumbnail or mask first in the file, which OpenCV reads as
    the image (a face measured in a 160-pixel preview in place of the photo it previews). ``data``: the file's
    bytes."""
    return tiff_page(path, first_photo_page(path), flags, data)


def tiff_page(path: Path, page: int, flags: int, data: np.ndarray | None = None) -> TiffPageRead:
    """A TIFF's page by its number in the file, read as a file of that page alone is read (``tiff_photo``), with the
    ICC profile it carries. ``data``: the file's bytes, where OpenCV cannot be given its name; None to have OpenCV
    read the page from the file (a file of many pages is not read whole for each).

    A page of samples OpenCV's decoder refuses (float16, uint32) is read by tifffile: OpenCV had printed a block of
    errors and called it corrupt. A later page OpenCV's multi-page reader gives none of is decoded by OpenCV from the
    file made one of that page alone (``_as_a_file_of_its_page``): the reader refuses the pages after one it cannot
    read (a TIFF of a float16 page then an 8-bit one had given one page), and raises for the pages before it (an 8-bit
    page then a float16 one had given none). tifffile had read them instead, and it reads no palette, CMYK or
    min-is-white page, nor one compressed by LZW without imagecodecs: a sound file "ended after 1 of 3 pages
    (truncated or damaged?)", and an 8-bit LZW page was said to need imagecodecs. Its first page is read as a one-page
    file is, whatever the pages after it."""
    layout = _tiff_page_layout(path, page)
    icc = layout.icc if layout is not None else None
    if layout is not None and layout.dtype is not None and layout.dtype not in _OPENCV_TIFF_SAMPLES:
        return _tiff_by_tifffile(path, page, layout, flags)
    image = _tiff_by_opencv(path, page, flags, data)
    if image is not None or page == 0 or layout is None:
        return TiffPageRead(image, icc)  # None: a damaged page, as unreadable as a damaged file, said so by the caller
    alone = _as_a_file_of_its_page(path, layout, data)
    if alone is None:  # no such file can be made of it (an NDPI's offsets): tifffile's reading, as before
        return _tiff_by_tifffile(path, page, layout, flags)
    image = _tiff_by_opencv(path, 0, flags, alone)
    # a page OpenCV cannot decode even alone, whose tags are read all the same: its own reason, for a source to skip
    # it and read the pages after it, not end the file as cut off
    return TiffPageRead(image, icc, None if image is not None else PAGE_NOT_DECODED)


# why a TIFF's later page is not read, where its tags are and OpenCV decodes no pixels of it even as a file of its own
PAGE_NOT_DECODED = "cannot be decoded (a damaged page, or a kind of TIFF page OpenCV cannot read)"


def _as_a_file_of_its_page(path: Path, layout: _TiffPage, data: np.ndarray | None) -> np.ndarray | None:
    """A TIFF's bytes made a file of one page, ``layout``'s, read by OpenCV as the page saved alone is: the header's
    first IFD made that page's, and the page's next IFD none. The file's bytes stay where they are, so every offset
    the page's tags hold stays true: patched in a private copy of the file (``_private_bytes``: of ``data``, its
    bytes where the caller holds them, which stay as they were, else read from the file), not a copy-on-write
    map, whose pages left unpatched are the file's own (another program cutting the file short as OpenCV read them
    had killed the app with SIGBUS). None where the file cannot be read now, its IFD runs past its end (a file cut
    short since its tags were read), its header is not a classic TIFF's or a BigTIFF's, or it is too large for
    cv2.imdecode (2 GiB or more: it raised, and a page tifffile had read was called one that cannot be decoded)."""
    ifd = layout.ifd
    data = _private_bytes(path, data) if ifd is not None else None
    if data is None:  # too large, or unreadable now: tifffile's reading, as before
        return None
    next_ifd_at = ifd.offset + ifd.count_size + ifd.entry_size * _entries(data, ifd)
    size = struct.calcsize(ifd.offset_format)
    if max(next_ifd_at, ifd.first_offset_at) + size > len(data):
        return None
    struct.pack_into(ifd.offset_format, data, ifd.first_offset_at, ifd.offset)
    struct.pack_into(ifd.offset_format, data, next_ifd_at, 0)
    return data


def _entries(data: np.ndarray, ifd: _Ifd) -> int:
    """How many tags a TIFF's IFD holds, by the count its first bytes give (tifffile's tags leave out those it cannot
    read: counted, the next IFD's offset would be sought among them)."""
    if ifd.offset + ifd.count_size > len(data):
        return 0
    return struct.unpack_from(ifd.count_format, data, ifd.offset)[0]


def _tiff_by_opencv(path: Path, page: int, flags: int, data: np.ndarray | None) -> np.ndarray | None:
    """A TIFF's page as OpenCV decodes it: its first as a one-page file is (imdecode), the others by its multi-page
    reader; None where it gives none (it raises for some damaged files)."""
    try:
        if page == 0:
            return cv2.imdecode(data, flags) if data is not None else _first_page_by_name(path, flags)
        if data is None:
            pages = cv2.imreadmulti(str(path), page, 1, flags=flags)[1]
        else:
            pages = cv2.imdecodemulti(data, flags, range=(page, page + 1))[1]
    except cv2.error:
        return None
    return pages[0] if pages else None


def _first_page_by_name(path: Path, flags: int) -> np.ndarray | None:
    """A TIFF's first page read from its file as a one-page file is: decoded from a private copy of the file's bytes
    (cv2.imread gave none of a page whose orientation swaps its width and height, 5 to 8, in OpenCV 4.14, with an
    "Internal imread issue" on stderr: a rotated photo's album had "ended after 0 of 2 pages"), or, where the file is
    too large for imdecode, by the multi-page reader, which turns it upright too (at full size, whatever the flags)
    and reads the file by calls that fail where it was cut short, not by a map."""
    data = _private_bytes(path)
    if data is not None:
        return cv2.imdecode(data, flags)
    pages = cv2.imreadmulti(str(path), 0, 1, flags=flags)[1]
    return pages[0] if pages else None


def _private_bytes(path: Path, data: np.ndarray | None = None) -> np.ndarray | None:
    """A file's bytes read whole into memory of the app's own, as inference.images reads every photo; None where it
    cannot be read now, is empty, or is too large for cv2.imdecode (not read: 2 GiB or more). Not a map of the file:
    decoding a map of a file another program cuts short meanwhile (an editor saving over an album being played)
    reads pages that are no longer there, and Linux kills the process with SIGBUS, which Python cannot catch.
    ``data``: the file's bytes where the caller holds them (as a row, or one of its shape), copied as one dimension,
    not read from the file again (an album played from its bytes had had the whole file read for each later page
    OpenCV refuses)."""
    if data is not None:
        return data.reshape(-1).copy() if 0 < data.size <= _MOST_IMDECODE_BYTES else None
    try:
        if path.stat().st_size > _MOST_IMDECODE_BYTES:
            return None
        data = np.fromfile(str(path), np.uint8)
    except OSError:
        return None
    # checked again: the file may have grown, or been emptied, since its size was asked
    return data if 0 < len(data) <= _MOST_IMDECODE_BYTES else None


# the most bytes cv2.imdecode takes (a C int's): it raises for a larger buffer, whatever it holds
_MOST_IMDECODE_BYTES = np.iinfo(np.int32).max


@dataclass(frozen=True)
class _Ifd:
    """Where a TIFF page's IFD lies and how the file writes one: its offset, the offset's format and where the header
    holds the first IFD's (a classic TIFF's 4 bytes at 4, a BigTIFF's 8 at 8), its count of tags' format and size,
    and each tag's size."""
    offset: int
    offset_format: str
    first_offset_at: int
    count_format: str
    count_size: int
    entry_size: int

    @classmethod
    def of(cls, page: tifffile.TiffPage) -> _Ifd | None:
        """A page's IFD; None in a file of neither layout (an NDPI: a classic header, and offsets of 8 bytes)."""
        form = page.parent.tiff
        first_offset_at = {(42, 4): 4, (43, 8): 8}.get((form.version, form.offsetsize))
        if first_offset_at is None:
            return None
        return cls(int(page.offset), form.offsetformat, first_offset_at, form.tagnoformat, form.tagnosize,
                   form.tagsize)


class _TiffPage:
    """What is read of a TIFF page's tags before its pixels: its samples' type, bits and layout, its orientation, its
    ICC profile, and where its IFD lies."""

    def __init__(self, page: tifffile.TiffPage):
        self.dtype = np.dtype(page.dtype) if page.dtype is not None else None
        self.bits = int(page.bitspersample)
        self.photometric = int(page.photometric)
        self.planar = page.axes.startswith("S")  # samples stored plane by plane: (S, Y, X), not (Y, X, S)
        self.orientation = int(page.tags.valueof(274, 1))
        icc = page.tags.valueof(34675)
        self.icc = bytes(icc) if icc is not None else None
        self.compression = int(page.compression)
        self.predictor = int(page.predictor)
        self.ifd = _Ifd.of(page)


# the samples OpenCV's TIFF decoder reads (1 to 16 bits unsigned or signed, 32 signed or float, 64 float; grfmt_tiff)
_OPENCV_TIFF_SAMPLES = frozenset(map(np.dtype, (bool, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32,
                                                np.float64)))
# what tifffile raises for a TIFF it cannot read (as inference.tiff_pages finds), then left to OpenCV


def _tiff_page_layout(path: Path, page: int) -> _TiffPage | None:
    """The tags of a TIFF's page that say how it is read; None where tifffile cannot read them."""
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tiff:  # a damaged file's tags: said by the reader that fails
            return _TiffPage(tiff.pages[page])
    except TIFFFILE_ERRORS:
        return None


_MINISBLACK, _RGB = 1, 2  # TIFF PhotometricInterpretation: grey, and RGB


def _tiff_by_tifffile(path: Path, page: int, layout: _TiffPage, flags: int) -> TiffPageRead:
    """A TIFF page OpenCV's decoder refuses, read by tifffile; no image for a layout it has no reading for (CMYK, Lab,
    a palette)."""
    if layout.photometric not in (_MINISBLACK, _RGB):
        return TiffPageRead(None, layout.icc)
    problem = _needs_imagecodecs(layout)
    if problem:
        return TiffPageRead(None, layout.icc, problem)
    try:
        with quiet_tifffile(), tifffile.TiffFile(path) as tiff:
            img = tiff.pages[page].asarray()
    except Exception:  # noqa: BLE001 - tifffile's, and its decoders' own (zlib.error for damaged deflated samples)
        return TiffPageRead(None, layout.icc)  # as unreadable as a damaged file, said so by the caller
    return TiffPageRead(_as_opencv_reads(img, layout, flags), layout.icc)


def _needs_imagecodecs(layout: _TiffPage) -> str | None:
    """Why tifffile cannot decode a page's samples here, where the imagecodecs package (not installed) would: their
    compression (LZW, as Photoshop, GIMP and ImageMagick save a TIFF by default) or predictor. tifffile decodes only
    a few compressions without it, and its error had been taken for a corrupt file. None where it can."""
    if importlib.util.find_spec("imagecodecs") is not None:  # installed: tifffile decodes with it, or says why not
        return None
    if layout.compression not in tifffile.TIFF.DECOMPRESSORS:
        how = f"compressed by {_tiff_name(tifffile.COMPRESSION, layout.compression)}"
    elif layout.predictor not in tifffile.TIFF.UNPREDICTORS:
        how = f"stored with the {_tiff_name(tifffile.PREDICTOR, layout.predictor)} predictor"
    else:
        return None
    return (f"is a TIFF of {layout.dtype} samples {how}, which can be read only with the imagecodecs package "
            "installed (pip install imagecodecs)")


def _tiff_name(kind: type, value: int) -> str:
    """A TIFF tag value's name as tifffile's enum gives it (LZW, FLOATINGPOINT), or its number where it has none."""
    try:
        return kind(value).name
    except ValueError:
        return str(value)


def _as_opencv_reads(img: np.ndarray, layout: _TiffPage, flags: int) -> np.ndarray:
    """A page's samples as tifffile gives them, as OpenCV gives what it reads: BGR (BGRA) or grey, turned by its
    orientation tag (OpenCV's TIFF decoder turns a page by it, whatever the flags), float16 made float32 and wider
    unsigned integers 16-bit (their high 16 bits, as a 16-bit frame keeps its high 8), for as_bgr_uint8 to make 8-bit
    as it makes any float or 16-bit frame."""
    if layout.planar:
        img = np.moveaxis(img, 0, -1)
    if img.dtype == np.float16:
        img = img.astype(np.float32)
    elif img.dtype.kind == "u" and img.dtype.itemsize > 2:
        img = (img >> max(0, layout.bits - 16)).astype(np.uint16)
    if img.ndim == 3 and img.shape[2] >= 3 and layout.photometric == _RGB:
        img = img[..., [2, 1, 0, *range(3, img.shape[2])]]  # RGB(A…) as OpenCV's BGR(A…)
    img = np.ascontiguousarray(_upright(img, layout.orientation))
    if flags < 0:  # IMREAD_UNCHANGED: as stored
        return img
    if img.ndim == 3 and img.shape[2] > 3:  # OpenCV's other flags read no alpha
        img = np.ascontiguousarray(img[..., :3])
    # 8-bit BGR where the flags ask for no other depth (IMREAD_COLOR), as OpenCV gives any other photo
    return img if flags & cv2.IMREAD_ANYDEPTH or frame_problem(img) else as_bgr_uint8(img)


def _upright(img: np.ndarray, orientation: int) -> np.ndarray:
    """A page stored under a TIFF (EXIF) orientation, shown upright: row 0 and column 0 put where the tag says."""
    turns = {2: lambda a: a[:, ::-1], 3: lambda a: a[::-1, ::-1], 4: lambda a: a[::-1],
             5: lambda a: a.swapaxes(0, 1), 6: lambda a: np.rot90(a, -1), 7: lambda a: a.swapaxes(0, 1)[::-1, ::-1],
             8: lambda a: np.rot90(a, 1)}
    return turns[orientation](img) if orientation in turns else img
