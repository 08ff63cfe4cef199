"""Reading and normalising images: one place, so training, the audit and the app decode alike."""
from __future__ import annotations

import functools
import io
import re
import struct
import sys
from pathlib import Path

import cv2
import numpy as np
import simplejpeg
import tifffile
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from .errors import PERMISSION_DENIED, BiasMirrorError, in_words
from .tiff_pages import first_photo_page, is_tiff

UNREADABLE = "cannot be read as an image (corrupt, truncated or another format)"
NOT_AN_IMAGE = "cannot be read as an image"  # the offline batch API's error (an audit's report) for UNREADABLE
DAMAGED_JPEG = "corrupt JPEG data, damaged inside the file"  # damaged_jpeg's reason: not cut off, broken within


def resize_batch(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """N×H×W×C images resized to ``size`` (h, w); area when both sides shrink, linear otherwise."""
    if images.shape[1:3] == tuple(size):
        return images
    if len(images) == 0:
        return np.zeros((0, *size, *images.shape[3:]), images.dtype)
    if images.shape[1] > size[0] and images.shape[2] > size[1]:
        return np.stack([cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_AREA) for im in images])
    # Growing is interpolated in float and rounded, not in OpenCV's fixed-point uint8
    # arithmetic: the GPU path (device_chain) does the same sums and must give the same faces.
    grown = [cv2.resize(im.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for im in images]
    return np.clip(np.rint(np.stack(grown)), 0, 255).astype(images.dtype)


def truncated_jpeg(data: np.ndarray) -> bool:
    """A JPEG whose end-of-image marker is missing: OpenCV decodes what is there and greys the rest (libjpeg
    only prints "Premature end of JPEG file"), which would be measured as a face. Compressed data cannot
    hold the marker (an 0xFF there is followed by 0x00 or a restart code), so its absence after the image's
    first scan means the file was cut off. Looked for anywhere after it, not only near the end: a phone's
    "motion photo" keeps a video after the marker, and such photos had been refused as unreadable. The
    header's segments are stepped over by their lengths, since an EXIF thumbnail holds a marker of its own.
    Read in place, never copied: a file of hundreds of megabytes had been copied whole to look at two bytes."""
    b = memoryview(np.ascontiguousarray(data, np.uint8)).cast("B")  # the same buffer, indexed as bytes
    if len(b) < 2 or b[0] != 0xFF or b[1] != 0xD8:
        return False
    i = 2
    while i + 4 <= len(b):
        if b[i] != 0xFF:
            return False  # not a header the way JPEG lays it out: the decoder judges it
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
        elif marker == 0xDA:  # start of scan: the compressed image follows
            return _END_OF_IMAGE.search(b, i) is None
        elif marker == 0x01 or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
        else:
            i += 2 + (b[i + 2] << 8 | b[i + 3])
    return True  # cut off in its header


_END_OF_IMAGE = re.compile(rb"\xff\xd9")  # searched in the buffer itself (bytes.find needs a copy)


def damaged_jpeg(data: np.ndarray) -> bool:
    """A JPEG whose compressed data is broken inside the file (bytes flipped or lost, its end marker intact): OpenCV
    decodes on past the break into garbled pixels, and libjpeg only prints "Corrupt JPEG data: premature end of data
    segment", naming no file; the garbled face was measured (L* 85 for the photo's 72). libjpeg-turbo is asked again
    through simplejpeg, strictly (its warnings raised), and its pixels thrown away: OpenCV's stay the ones measured.
    Decoded grey at an eighth of the size, for speed: every byte of the compressed data is read and checked all the
    same. Only libjpeg's words for broken data make a file damaged: a header simplejpeg cannot read (a warning of its
    own, a kind of JPEG its libjpeg lacks) or a feature it lacks leaves the file to OpenCV, as before. A break that
    leaves the coded data in step (a flipped bit in a coefficient) no decoder sees: JPEG holds no checksum."""
    buf = memoryview(np.ascontiguousarray(data, np.uint8)).cast("B")  # read in place, as truncated_jpeg reads
    if len(buf) < 2 or buf[0] != 0xFF or buf[1] != 0xD8:
        return False
    try:
        colourspace = simplejpeg.decode_jpeg_header(buf, strict=True)[2]
    except ValueError:
        return False
    if colourspace not in _CHECKED_AS:
        return False
    try:
        # as small as libjpeg scales (an eighth: min_factor alone had decoded a 108-megapixel photo whole)
        simplejpeg.decode_jpeg(buf, colorspace=_CHECKED_AS[colourspace], min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        return bool(_BROKEN_DATA.match(str(exc))) and not _padding_only(buf, str(exc))
    return False


_EXTRANEOUS = re.compile(r"Corrupt JPEG data: (\d+) extraneous bytes before marker 0x([0-9a-f]{2})")


def _padding_only(buf: memoryview, said: str) -> bool:
    """Whether libjpeg's "N extraneous bytes before marker 0xM" is of padding (fill bytes, 0x00 or 0xFF, before a
    marker between segments: photos through some tools hold it, and their pixels are the unpadded file's), not of
    compressed data the decoder lost step with (the same words, of bytes of every value, in 1 of 5 damaged copies)."""
    match = _EXTRANEOUS.fullmatch(said)
    if match is None:
        return False
    count, marker = int(match.group(1)), bytes([0xFF, int(match.group(2), 16)])
    data = bytes(buf)
    at = data.find(marker, count)
    while at != -1:
        if set(data[at - count:at]) <= {0x00, 0xFF}:
            return True
        at = data.find(marker, at + 1)
    return False


# the pixels a JPEG is checked in, by its colour space: grey is the cheapest, and a CMYK or YCCK JPEG converts to
# no other (a JPEG of another number of components is not checked)
_CHECKED_AS = {"Gray": "GRAY", "YCbCr": "GRAY", "RGB": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}
# libjpeg's messages for data that breaks the format, each found in damaged copies of photos that OpenCV decoded;
# "Unsupported marker type" is a byte pair no JPEG holds (a flipped byte in the compressed data), unlike
# "Unsupported JPEG process"/"data precision", which are kinds of JPEG a libjpeg may lack. A bad ICC marker leaves
# the pixels whole (and so does padding before a marker: _padding_only).
_BROKEN_DATA = re.compile(r"Corrupt JPEG data(?!: bad ICC marker)"
                          r"|Premature end of JPEG file|Unsupported marker type"
                          r"|Bogus |Invalid JPEG file structure|Inconsistent progression sequence")


# How a source reads a photograph as a frame (and training and the aligned audit a face, read_rgb): grey and 16-bit
# kept for as_bgr_uint8, and the EXIF orientation applied, as every viewer (and IMREAD_COLOR) applies it.
# IMREAD_UNCHANGED ignores it: a phone's portrait photo came in on its side, and no face was found in it. Only the
# alpha channel is not read, which as_bgr_uint8 would drop.
FRAME_FLAGS = cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR


def read_image(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> np.ndarray | None:
    """``cv2.imread``, except that a truncated JPEG (or an empty file) is unreadable (None), not half grey."""
    return read_image_checked(path, flags)[0]


def read_image_checked(path: str | Path, flags: int = cv2.IMREAD_COLOR) -> tuple[np.ndarray | None, str | None]:
    """``read_image``, and when it gives None, why, in words for the user."""
    try:
        data = np.fromfile(str(path), np.uint8)
    except OSError as exc:
        return None, opening_problem(exc)
    if data.size == 0 or truncated_jpeg(data):
        return None, UNREADABLE
    if damaged_jpeg(data):
        return None, DAMAGED_JPEG
    profile = None
    if _avif(data):
        img = _decoded_avif(data, flags)
    elif is_tiff(bytes(data[:4])):
        img, profile = _decoded_tiff(Path(path), data, flags)
    else:
        img = cv2.imdecode(data, flags)
        profile = embedded_profile(path, data)
    if img is None or img.size == 0:
        return None, UNREADABLE
    # decoded, but as pixels no frame can be made of (a signed-integer TIFF under FRAME_FLAGS): as unreadable as a
    # corrupt file, and said why, here where the file is named (as_bgr_uint8 had stopped a whole run without its name)
    problem = frame_problem(img)
    return (None, problem) if problem else (in_srgb(img, profile), None)


def _decoded_tiff(path: Path, data: np.ndarray, flags: int) -> tuple[np.ndarray | None, bytes | None]:
    """A TIFF's photo, and the ICC profile its page carries: its first page that is one, not a thumbnail or mask
    first in the file, which OpenCV reads as the image (a face measured in a 160-pixel preview in place of the photo
    it previews). A page of samples OpenCV's decoder refuses (float16, uint32) is read by tifffile: OpenCV had printed
    a block of errors and called it corrupt."""
    page = first_photo_page(path)
    layout = _tiff_page_layout(path, page)
    if layout is not None and layout.dtype is not None and layout.dtype not in _OPENCV_TIFF_SAMPLES:
        return _tiff_by_tifffile(path, page, layout, flags), layout.icc
    icc = layout.icc if layout is not None else None
    if page == 0:
        return cv2.imdecode(data, flags), icc
    try:
        pages = cv2.imdecodemulti(data, flags, range=(page, page + 1))[1]
    except cv2.error:  # a damaged page: as unreadable as a damaged file, said so by the caller
        return None, icc
    return (pages[0] if pages else None), icc


class _TiffPage:
    """What is read of a TIFF page's tags before its pixels: its samples' type, bits and layout, its orientation and
    its ICC profile."""

    def __init__(self, page: tifffile.TiffPage):
        self.dtype = np.dtype(page.dtype) if page.dtype is not None else None
        self.bits = int(page.bitspersample)
        self.photometric = int(page.photometric)
        self.planar = page.axes.startswith("S")  # samples stored plane by plane: (S, Y, X), not (Y, X, S)
        self.orientation = int(page.tags.valueof(274, 1))
        icc = page.tags.valueof(34675)
        self.icc = bytes(icc) if icc is not None else None


# the samples OpenCV's TIFF decoder reads (1 to 16 bits unsigned or signed, 32 signed or float, 64 float; grfmt_tiff)
_OPENCV_TIFF_SAMPLES = frozenset(map(np.dtype, (bool, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.float32,
                                                np.float64)))
# what tifffile raises for a TIFF it cannot read (as inference.tiff_pages finds), then left to OpenCV
_TIFFFILE_ERRORS = (OSError, ValueError, EOFError, IndexError, KeyError, TypeError, OverflowError, struct.error)


def _tiff_page_layout(path: Path, page: int) -> _TiffPage | None:
    """The tags of a TIFF's page that say how it is read; None where tifffile cannot read them."""
    try:
        with tifffile.TiffFile(path) as tiff:
            return _TiffPage(tiff.pages[page])
    except _TIFFFILE_ERRORS:
        return None


_MINISBLACK, _RGB = 1, 2  # TIFF PhotometricInterpretation: grey, and RGB


def _tiff_by_tifffile(path: Path, page: int, layout: _TiffPage, flags: int) -> np.ndarray | None:
    """A TIFF page OpenCV's decoder refuses, read by tifffile as OpenCV reads what it can: BGR (BGRA) or grey, turned
    by its orientation tag (OpenCV's TIFF decoder turns a page by it, whatever the flags), float16 made float32 and
    wider unsigned integers 16-bit (their high 16 bits, as a 16-bit frame keeps its high 8), for as_bgr_uint8 to make
    8-bit as it makes any float or 16-bit frame. None for a layout it has no reading for (CMYK, Lab, a palette)."""
    if layout.photometric not in (_MINISBLACK, _RGB):
        return None
    try:
        with tifffile.TiffFile(path) as tiff:
            img = tiff.pages[page].asarray()
    except _TIFFFILE_ERRORS:
        return None
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


# Pillow's readers of the formats OpenCV decodes whose ICC profile they hold: made directly, not by Image.open, which
# checks a file's size for a decompression bomb and warns of a large photo on stderr, though no pixel is decoded here
_PROFILE_READERS = ((lambda head: head[:2] == b"\xff\xd8", JpegImagePlugin.JpegImageFile),
                    (lambda head: head[:8] == b"\x89PNG\r\n\x1a\n", PngImagePlugin.PngImageFile),
                    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", WebPImagePlugin.WebPImageFile))
# what Pillow raises for a header it cannot parse (a struct.error or SyntaxError from a damaged one)
_PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, struct.error)


def embedded_profile(path: str | Path, data: np.ndarray) -> bytes | None:
    """The ICC profile a JPEG, PNG or WebP carries, read from its header by Pillow (no pixel decoded); None where it
    has none or its header cannot be read (OpenCV, which decodes it, says what is wrong with it)."""
    head = bytes(data[:12])
    for is_format, reader in _PROFILE_READERS:
        if is_format(head):
            try:
                with reader(path) as im:
                    return im.info.get("icc_profile") or None
            except _PILLOW_ERRORS:
                return None
    return None


def in_srgb(img: np.ndarray, profile: bytes | None) -> np.ndarray:
    """A decoded image in sRGB, which every measure of skin assumes (inference.skin): its pixels converted from the
    colour space its ICC profile describes, as a colour-managed viewer shows them. A phone's Display P3 photo had
    read 3° of ITA lighter, another Monk shade, than its sRGB copy. Left as decoded where it has no profile, one
    that changes no colour (sRGB's own: the pixels of an untagged file, to the byte), one of another kind than its
    pixels (a CMYK profile, which OpenCV's CMYK to BGR did not follow) or one that cannot be read. Pixels of another
    depth than 8 bits are made 8-bit BGR first (as_bgr_uint8), which Pillow's colour management converts."""
    if profile is None or not (img.ndim == 2 or img.shape[2] in (1, 3, 4)):
        return img
    grey = img.ndim == 2 or img.shape[2] == 1
    transform = _to_srgb(profile, "L" if grey else "RGB")
    if transform is None:
        return img
    if img.dtype != np.uint8:
        img = as_bgr_uint8(img)[..., 0] if grey else as_bgr_uint8(img)
    if grey:
        pixels = img.reshape(img.shape[:2])  # Pillow's L
    else:
        pixels = cv2.cvtColor(img, cv2.COLOR_BGRA2RGB if img.shape[2] == 4 else cv2.COLOR_BGR2RGB)
    bgr = cv2.cvtColor(np.asarray(transform.apply(Image.fromarray(pixels))), cv2.COLOR_RGB2BGR)
    return np.dstack([bgr, img[..., 3:]]) if not grey and img.shape[2] == 4 else bgr  # an alpha kept as it was


@functools.lru_cache(maxsize=32)
def _to_srgb(profile: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """The transform from an ICC profile's colour space to sRGB for pixels of Pillow's ``mode`` (relative
    colorimetric), made once a profile; None where it changes no colour by more than rounding does (sRGB's own
    profile, however it is named and written), or it cannot be made (a damaged profile, or one of another kind)."""
    try:
        transform = ImageCms.buildTransform(ImageCms.ImageCmsProfile(io.BytesIO(profile)), _SRGB, mode, "RGB",
                                            renderingIntent=ImageCms.Intent.RELATIVE_COLORIMETRIC)
        moved = np.asarray(transform.apply(_PROBES[mode]), np.int16) - _PROBES_IN_RGB[mode]
    except (ImageCms.PyCMSError, OSError, ValueError, TypeError):
        return None
    return transform if np.abs(moved).max() > 1 else None


_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
# colours a profile's transform is tried on: a grid through the RGB cube, and every grey level
_GRID = np.stack(np.meshgrid(*[np.r_[0:256:17]] * 3, indexing="ij"), -1).reshape(1, -1, 3).astype(np.uint8)
_GREYS = np.arange(256, dtype=np.uint8).reshape(1, -1)
_PROBES = {"RGB": Image.fromarray(_GRID), "L": Image.fromarray(_GREYS)}
_PROBES_IN_RGB = {"RGB": _GRID.astype(np.int16), "L": np.repeat(_GREYS[..., None], 3, -1).astype(np.int16)}


AVIF_BRANDS = frozenset({b"avif", b"avis"})


def ftyp_brands(head: bytes) -> set[bytes]:
    """The brands an ISO-BMFF file (HEIF, AVIF, MP4) names in its opening ``ftyp`` box: its major brand and the
    compatible ones; empty for any other file."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return set()
    box = head[8:max(16, int.from_bytes(head[:4], "big"))]  # major brand, minor version, compatible brands
    return {box[:4], *(box[i:i + 4] for i in range(8, len(box) - 3, 4))}


def _avif(data: np.ndarray) -> bool:
    """Whether the bytes are an AVIF image, by its ``ftyp`` brands: an encoder may name mif1 as the major brand and
    avif among the compatible ones (such a 10-bit file had still come out near black)."""
    return bool(ftyp_brands(bytes(data[:256])) & AVIF_BRANDS)


def _decoded_avif(data: np.ndarray, flags: int) -> np.ndarray | None:
    """An AVIF decoded as it is shown: turned and mirrored by its ``irot`` and ``imir`` boxes, which OpenCV's decoder
    ignores (a phone's portrait photo came in on its side, and no face was found in it). HEIF makes those boxes the
    orientation and an Exif orientation only informative, as viewers treat it: OpenCV is told to leave one alone,
    so that a later version that read it would not turn the photo a second time."""
    if flags >= 0:  # IMREAD_UNCHANGED (-1) ignores it already, and is no set of bits to add to
        flags |= cv2.IMREAD_IGNORE_ORIENTATION
    img = cv2.imdecode(data, flags)
    if img is not None and img.dtype == np.uint16:
        # OpenCV gives a 10- or 12-bit AVIF its own range (0..1023), not 16-bit's: shifted down to 8 bits as a
        # 16-bit PNG is, a phone's HDR photo was a near-black frame. Its decoder scales it to 8 bits rightly.
        eight_bits = (cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if flags & cv2.IMREAD_ANYCOLOR else (
            flags & ~cv2.IMREAD_ANYDEPTH)
        img = cv2.imdecode(data, eight_bits)
    if img is None or img.size == 0:
        return img
    for kind, value in heif_transforms(data):
        # imir's axis 0 exchanges top and bottom, 1 left and right (ISO/IEC 23008-12:2022 6.5.12, as libavif and
        # libheif read it): cv2.flip's codes 0 and 1
        img = cv2.rotate(img, _ANTICLOCKWISE[value]) if kind == b"irot" else cv2.flip(img, value)
    return img


_ANTICLOCKWISE = {1: cv2.ROTATE_90_COUNTERCLOCKWISE, 2: cv2.ROTATE_180, 3: cv2.ROTATE_90_CLOCKWISE}  # irot's quarters
_TRANSFORM_BITS = {b"irot": 0b11, b"imir": 0b1}  # the bits of their one byte that say which; those above are reserved


_MOST_BOXES = 4096  # looked at in one box (or the file): a file of millions of empty boxes is not read for seconds


class _Malformed(Exception):
    """A box whose sizes or counts run past the box that holds it, or one that HEIF requires and is missing."""


class _Reader:
    """Big-endian unsigned integers read from ``buf[at:end]``, never past ``end``."""

    def __init__(self, buf: memoryview, at: int, end: int):
        self.buf, self.at, self.end = buf, at, end

    def uint(self, size: int) -> int:
        if self.at + size > self.end:
            raise _Malformed
        self.at += size
        return int.from_bytes(self.buf[self.at - size:self.at], "big")


def _boxes(buf: memoryview, start: int, end: int):
    """(type, payload start, end) of each ISO-BMFF box laid end to end in ``buf[start:end]``."""
    at, seen = start, 0
    while at < end:
        seen += 1
        if seen > _MOST_BOXES:  # a photo's boxes hold a few, a grid's some hundreds: what has more is not one
            raise _Malformed
        head = _Reader(buf, at, end)
        size, kind = head.uint(4), head.uint(4).to_bytes(4, "big")
        if size == 1:  # a 64-bit size follows the type
            size = head.uint(8)
        elif size == 0:  # up to the end of what holds it
            size = end - at
        if size < head.at - at or at + size > end:
            raise _Malformed
        yield kind, head.at, at + size
        at += size


def _children(buf: memoryview, start: int, end: int) -> dict[bytes, list[tuple[int, int]]]:
    """The boxes in ``buf[start:end]``, by type: (payload start, end) of each, in the order they come."""
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, at, stop in _boxes(buf, start, end):
        found.setdefault(kind, []).append((at, stop))
    return found


def _first(boxes: dict[bytes, list[tuple[int, int]]], kind: bytes) -> tuple[int, int]:
    if kind not in boxes:
        raise _Malformed
    return boxes[kind][0]


def heif_transforms(data: np.ndarray) -> tuple[tuple[bytes, int], ...]:
    """The ``irot`` (angle, in quarter turns anticlockwise) and ``imir`` (axis) properties of an AVIF's primary image,
    as (b"irot", 1..3) and (b"imir", 0 or 1), in the order they are to be applied: the order its ``ipma`` box lists
    them in. Empty for a file without them, for an image sequence (libavif decodes its track, whose orientation is
    the track's own) and for one whose boxes do not add up, which is then shown as it is stored, never refused for
    it. A ``clap`` crop, listed before them, is not applied (OpenCV did not apply it either)."""
    buf = memoryview(np.ascontiguousarray(data, np.uint8)).cast("B")  # read in place, as truncated_jpeg reads
    top: dict[bytes, list[tuple[int, int]]] = {}
    try:
        for kind, at, stop in _boxes(buf, 0, len(buf)):
            top.setdefault(kind, []).append((at, stop))
    except _Malformed:  # a file cut short, or bytes appended after its boxes: the boxes before still count
        pass
    if b"moov" in top or b"meta" not in top:
        return ()
    try:
        return _primary_transforms(buf, *top[b"meta"][0])
    except _Malformed:
        return ()


def _primary_transforms(buf: memoryview, start: int, end: int) -> tuple[tuple[bytes, int], ...]:
    """``heif_transforms`` of the ``meta`` box in ``buf[start:end]``: pitm names the primary item, ipma the properties
    (in iprp's ipco) that apply to it."""
    meta = _children(buf, start + 4, end)  # a full box: version and flags come first
    pitm = _Reader(buf, *_first(meta, b"pitm"))
    primary = pitm.uint(2 if pitm.uint(4) >> 24 == 0 else 4)  # version 0 numbers items in 16 bits
    iprp = _children(buf, *_first(meta, b"iprp"))
    properties = list(_boxes(buf, *_first(iprp, b"ipco")))
    transforms = []
    for ipma in iprp.get(b"ipma", []):
        for index in _associated(buf, *ipma, primary):
            if index > len(properties):
                raise _Malformed
            kind, at, stop = properties[index - 1] if index else (b"", 0, 0)  # index 0 names no property
            if kind in _TRANSFORM_BITS and at < stop:
                value = buf[at] & _TRANSFORM_BITS[kind]
                if value or kind == b"imir":  # a turn by 0° is none
                    transforms.append((kind, value))
    return tuple(transforms)


def _associated(buf: memoryview, start: int, end: int, item: int) -> list[int]:
    """The indices (from 1, into ``ipco``) of the properties an ``ipma`` box associates with ``item``, in its order."""
    ipma = _Reader(buf, start, end)
    version_and_flags = ipma.uint(4)
    item_size = 2 if version_and_flags >> 24 == 0 else 4
    index_size = 2 if version_and_flags & 1 else 1
    for _ in range(ipma.uint(4)):  # a count past the box's end stops at its end (_Malformed)
        item_id, count = ipma.uint(item_size), ipma.uint(1)
        indices = [ipma.uint(index_size) & (0x7FFF if index_size == 2 else 0x7F) for _ in range(count)]
        if item_id == item:  # the high bit says whether the property is essential, not which it is
            return indices
    return []


CANNOT_BE_READ = "cannot be read"  # opening_problem's words for an OSError other than a permission refused


def opening_problem(exc: OSError) -> str:
    """Why a file could not be opened or read, in words for the user: "permission denied", "cannot be read (…)"."""
    return PERMISSION_DENIED if isinstance(exc, PermissionError) else f"{CANNOT_BE_READ} ({in_words(exc)})"


def opening_failed(problem: str | None) -> bool:
    """Whether ``read_image_checked``'s reason is that the file could not be opened or read (permission denied, an I/O
    error), which says nothing of what it holds and may be put right without changing it, unlike a decoder's."""
    return problem is not None and (problem == PERMISSION_DENIED or problem.startswith(CANNOT_BE_READ + " ("))


# Bump when a file decodes to other pixels than before, so that what was decoded and kept (training's face caches)
# is decoded again. 2: an AVIF is turned by its irot/imir boxes, a float TIFF read, a 16-bit colour TIFF shifted as a
# frame's is (a cache filled before kept them sideways, unreadable and rounded otherwise). 3: a TIFF whose first page
# is a thumbnail or mask is read from its first photo page. 4: a photo with a colour profile other than sRGB's is
# converted to sRGB, a JPEG damaged inside is unreadable, a float16 or 32-bit TIFF read.
READER_VERSION = 4


def read_rgb(path: str, size: int | None = None) -> np.ndarray | None:
    """An RGB uint8 image (resized to size×size if given), or None if it cannot be read."""
    return read_rgb_checked(path, size)[0]


def read_rgb_checked(path: str, size: int | None = None) -> tuple[np.ndarray | None, str | None]:
    """``read_rgb``, and when it gives None, why, in words for the user (as ``read_image_checked``)."""
    img, problem = read_bgr_checked(path)
    if img is None:
        return None, problem
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return (resize_batch(img[None], (size, size))[0] if size else img), None


def read_bgr(path: str | Path) -> np.ndarray | None:
    """A photo as 8-bit BGR, read as every command reads one (``read_bgr_checked``), or None if it cannot be read."""
    return read_bgr_checked(path)[0]


def read_bgr_checked(path: str | Path) -> tuple[np.ndarray | None, str | None]:
    """A photo as 8-bit BGR, and when it cannot be read, why, in words for the user (as ``read_image_checked``).

    Read as a source reads a frame, then made 8-bit BGR as the pipeline makes one: OpenCV's TIFF decoder cannot give a
    float TIFF as 8 bits (IMREAD_COLOR), and the aligned audit, training and the benches had called one `run` reads
    corrupt. Every other photo comes out as IMREAD_COLOR gave it (in sRGB: in_srgb) but a 16-bit colour TIFF, which
    that divided by 257 and `run` shifts down 8 bits (as every other 16-bit image): at most one level apart, and now
    `run`'s."""
    img, problem = read_image_checked(path, FRAME_FLAGS)
    return (None, problem) if img is None else (as_bgr_uint8(img), None)


def _zero_to_one(f: np.ndarray) -> bool:
    """Whether a float frame's scale is 0–1 rather than 0–255: its brightest pixel at most 1, or a little above
    with the bulk of the pixels within 1 (a highlight over white: one pixel at 1.02 had made a 0–1 frame read as
    0–255, all black). The percentile is taken only then: a dark 0–255 frame whose faces are under 1 % of it
    would read as 0–1, and it costs 40 times the maximum."""
    top = np.nanmax(f)
    return bool(top <= 1.0 or (top <= 1.5 and np.nanpercentile(f, 99) <= 1.0))


FRAME_DTYPES = (np.uint8, np.uint16, np.float32, np.float64)  # the pixels as_bgr_uint8 has one meaning for


def frame_problem(frame: np.ndarray) -> str | None:
    """Why ``as_bgr_uint8`` cannot make a frame of this image, in words for the user, or None where it can. Signed
    integers (a TIFF of int8/16/32, as scientific cameras and depth sensors save) have no one mapping to brightness,
    so they are refused with the reason, not guessed at."""
    if frame.dtype not in FRAME_DTYPES:
        return f"its pixels are {frame.dtype}: only 8- or 16-bit unsigned and float32/64 pixels can be analysed"
    if not (frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] in (1, 3, 4))):
        return f"its pixels, laid out as {'×'.join(map(str, frame.shape))}, are not images (grey, BGR or BGRA ones are)"
    return None


def as_bgr_uint8(frame: np.ndarray) -> np.ndarray:
    """Any frame a source may give (grey, BGRA, 16-bit, float) as 3-channel BGR uint8."""
    if frame is None or not isinstance(frame, np.ndarray) or frame.size == 0:
        raise BiasMirrorError("the frame is empty")
    problem = frame_problem(frame)
    if problem:
        raise BiasMirrorError(f"the frame cannot be analysed: {problem}")
    f = frame
    if f.dtype == np.uint16:
        f = (f >> 8).astype(np.uint8)
    elif f.dtype in (np.float32, np.float64):
        scale = 255.0 if _zero_to_one(f) else 1.0
        f = np.clip(np.nan_to_num(f) * scale, 0, 255).astype(np.uint8)
    if f.ndim == 2 or f.shape[2] == 1:
        return cv2.cvtColor(f.reshape(f.shape[0], f.shape[1]), cv2.COLOR_GRAY2BGR)
    if f.shape[2] == 4:
        return cv2.cvtColor(f, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(f)


def opencv_name_problem(path: str | Path, platform: str | None = None) -> str | None:
    """Why OpenCV's functions that take a file name cannot be given this one, with what to do about it, in words for
    the user; None where they can. ``platform``: the ``sys.platform`` to answer for (this one's where None).

    A name whose bytes are not UTF-8 (a Latin-1 "caf\\xe9.avi" from an old camera or a Windows share) crashes the
    whole process in OpenCV's Python binding (a segmentation fault, which nothing can catch). On Windows OpenCV opens
    files with the narrow fopen, which takes the UTF-8 name it is given in the ANSI code page (opencv/opencv#4292,
    #4242): any letter beyond ASCII in the path (C:\\Users\\José\\…, where pip puts cv2's own data) names another file,
    and OpenCV finds nothing. Images are read from their bytes instead."""
    name = str(path)
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return "its name is not UTF-8 (a Latin-1 name?); rename it"
    if (platform or sys.platform) == "win32" and not name.isascii():
        return ("its path has letters beyond ASCII, which OpenCV cannot open on Windows; "
                "move it to a folder whose path is plain ASCII, or rename it")
    return None


def opencv_can_name(path: str | Path, platform: str | None = None) -> bool:
    """Whether OpenCV's functions that take a file name can be given this one (``opencv_name_problem``)."""
    return opencv_name_problem(path, platform) is None


def opencv_path(path: str | Path, what: str = "this file") -> str:
    """``path`` as OpenCV's file functions take it; refused, naming it, where they cannot (``opencv_name_problem``)."""
    problem = opencv_name_problem(path)
    if problem:
        raise BiasMirrorError(f"OpenCV cannot open {what}: {problem}", path)
    return str(path)
