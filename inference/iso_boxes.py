"""The boxes of an ISO base media file (ISO/IEC 14496-12: MP4, MOV, HEIF, AVIF), found in its bytes by their sizes
alone: one walker for the photo reader (an AVIF's orientation) and the video reader (an MP4's colour tags)."""
from __future__ import annotations

from typing import BinaryIO, Iterator

MOST_BOXES = 4096  # looked at in one box (or a file): a file of millions of empty boxes is not read for seconds
_HEADER = 8  # a box's 32-bit size and its type


class Malformed(Exception):
    """Sizes or counts in a container's boxes (or a Matroska file's elements) that do not add up, or a box a format
    requires that is missing: what they hold is not read."""


def boxes(buf: memoryview, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, end) of each box laid end to end in ``buf[start:end]``. Fewer bytes than a box's header
    after the last box are padding, not a box (QuickTime closes a sample entry's boxes with 4 zero bytes); a box that
    runs past ``end``, or more than MOST_BOXES of them, is Malformed."""
    at, seen = start, 0
    while at + _HEADER <= end:
        seen = _counted(seen)
        kind, payload, stop = _box(buf[at:at + 16], at, end)
        if stop > end:
            raise Malformed
        yield kind, payload, stop
        at = stop


def file_boxes(f: BinaryIO, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """``boxes`` of a file's top level, read by their headers alone (a video's media data is never read): a box
    running past the file's end is a file cut short, whose last box ends with it (its moov may still be whole)."""
    at, seen = start, 0
    while at + _HEADER <= end:
        seen = _counted(seen)
        f.seek(at)
        kind, payload, stop = _box(f.read(16), at, end)
        yield kind, payload, min(stop, end)
        at = stop


def _counted(seen: int) -> int:
    if seen >= MOST_BOXES:  # a photo's boxes hold a few, a grid's some hundreds: what has more is not one
        raise Malformed
    return seen + 1


def _box(head: bytes | memoryview, at: int, end: int) -> tuple[bytes, int, int]:
    """(type, payload start, end) of the box whose header ``head`` (its first 16 bytes, fewer at the end) is at
    ``at``; a size of 0 runs to ``end``."""
    size, kind, payload = int.from_bytes(head[:4], "big"), bytes(head[4:8]), at + _HEADER
    if size == 1:  # a 64-bit size follows the type
        if len(head) < 16:
            raise Malformed
        size, payload = int.from_bytes(head[8:16], "big"), at + 16
    elif size == 0:  # up to the end of what holds it
        size = end - at
    if size < payload - at:
        raise Malformed
    return kind, payload, at + size
