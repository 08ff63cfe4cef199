"""An AVIF (HEIF's AV1 photo) decoded as it is shown: told apart by its ``ftyp`` brands, read at 8 bits, and turned
and mirrored by the ``irot`` and ``imir`` boxes of its primary image, which OpenCV's decoder ignores."""
from __future__ import annotations

import cv2
import numpy as np

from inference.iso_boxes import Malformed, boxes

AVIF_BRANDS = frozenset({b"avif", b"avis"})


def ftyp_brands(head: bytes) -> set[bytes]:
    """The brands an ISO-BMFF file (HEIF, AVIF, MP4) names in its opening ``ftyp`` box: its major brand and the
    compatible ones; empty for any other file."""
    if len(head) < 16 or head[4:8] != b"ftyp":
        return set()
    box = head[8:max(16, int.from_bytes(head[:4], "big"))]  # major brand, minor version, compatible brands
    return {box[:4], *(box[i:i + 4] for i in range(8, len(box) - 3, 4))}


def is_avif(data: np.ndarray) -> bool:
    """Whether the bytes are an AVIF image, by its ``ftyp`` brands: an encoder may name mif1 as the major brand and
    avif among the compatible ones (such a 10-bit file had still come out near black)."""
    return bool(ftyp_brands(bytes(data[:256])) & AVIF_BRANDS)


def decoded_avif(data: np.ndarray, flags: int) -> np.ndarray | None:
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


class _Reader:
    """Big-endian unsigned integers read from ``buf[at:end]``, never past ``end``."""

    def __init__(self, buf: memoryview, at: int, end: int):
        self.buf, self.at, self.end = buf, at, end

    def uint(self, size: int) -> int:
        if self.at + size > self.end:
            raise Malformed
        self.at += size
        return int.from_bytes(self.buf[self.at - size:self.at], "big")


def _children(buf: memoryview, start: int, end: int) -> dict[bytes, list[tuple[int, int]]]:
    """The boxes in ``buf[start:end]``, by type: (payload start, end) of each, in the order they come."""
    found: dict[bytes, list[tuple[int, int]]] = {}
    for kind, at, stop in boxes(buf, start, end):
        found.setdefault(kind, []).append((at, stop))
    return found


def _first(boxes: dict[bytes, list[tuple[int, int]]], kind: bytes) -> tuple[int, int]:
    if kind not in boxes:
        raise Malformed
    return boxes[kind][0]


def heif_transforms(data: np.ndarray) -> tuple[tuple[bytes, int], ...]:
    """The ``irot`` (angle, in quarter turns anticlockwise) and ``imir`` (axis) properties of an AVIF's primary image,
    as (b"irot", 1..3) and (b"imir", 0 or 1), in the order they are to be applied: the order its ``ipma`` box lists
    them in. Empty for a file without them, for an image sequence (libavif decodes its track, whose orientation is
    the track's own) and for one whose boxes do not add up, which is then shown as it is stored, never refused for
    it. A ``clap`` crop, listed before them, is not applied (OpenCV did not apply it either)."""
    buf = memoryview(np.ascontiguousarray(data, np.uint8)).cast("B")  # read in place, not copied
    top: dict[bytes, list[tuple[int, int]]] = {}
    try:
        for kind, at, stop in boxes(buf, 0, len(buf)):
            top.setdefault(kind, []).append((at, stop))
    except Malformed:  # a file cut short, or bytes appended after its boxes: the boxes before still count
        pass
    if b"moov" in top or b"meta" not in top:
        return ()
    try:
        return _primary_transforms(buf, *top[b"meta"][0])
    except Malformed:
        return ()


def _primary_transforms(buf: memoryview, start: int, end: int) -> tuple[tuple[bytes, int], ...]:
    """``heif_transforms`` of the ``meta`` box in ``buf[start:end]``: pitm names the primary item, ipma the properties
    (in iprp's ipco) that apply to it."""
    meta = _children(buf, start + 4, end)  # a full box: version and flags come first
    pitm = _Reader(buf, *_first(meta, b"pitm"))
    primary = pitm.uint(2 if pitm.uint(4) >> 24 == 0 else 4)  # version 0 numbers items in 16 bits
    iprp = _children(buf, *_first(meta, b"iprp"))
    properties = list(boxes(buf, *_first(iprp, b"ipco")))
    transforms = []
    for ipma in iprp.get(b"ipma", []):
        for index in _associated(buf, *ipma, primary):
            if index > len(properties):
                raise Malformed
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
    for _ in range(ipma.uint(4)):  # a count past the box's end stops at its end (Malformed)
        item_id, count = ipma.uint(item_size), ipma.uint(1)
        indices = [ipma.uint(index_size) & (0x7FFF if index_size == 2 else 0x7F) for _ in range(count)]
        if item_id == item:  # the high bit says whether the property is essential, not which it is
            return indices
    return []
