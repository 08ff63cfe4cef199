"""A JPEG damaged inside its compressed data (bytes flipped or lost, its end marker intact), found by decoding it
again strictly with simplejpeg: OpenCV decodes on past such a break into garbled pixels, with a warning on stderr."""
from __future__ import annotations

import re
from collections.abc import Iterator
from itertools import chain

import numpy as np
import simplejpeg

DAMAGED_JPEG = "corrupt JPEG data, damaged inside the file"  # damaged_jpeg's reason: not cut off, broken within


def damaged_jpeg(data: np.ndarray) -> bool:
    """A JPEG whose compressed data is broken inside the file (bytes flipped or lost, its end marker intact): OpenCV
    decodes on past the break into garbled pixels, and libjpeg only prints "Corrupt JPEG data: premature end of data
    segment", naming no file; the garbled face was measured (L* 85 for the photo's 72). libjpeg-turbo is asked again
    through simplejpeg, strictly (its warnings raised), and its pixels thrown away: OpenCV's stay the ones measured.
    Decoded grey at an eighth of the size, for speed: every byte of the compressed data is read and checked all the
    same. Only libjpeg's words for broken data make a file damaged: a header simplejpeg cannot read (a warning of its
    own, a kind of JPEG its libjpeg lacks) or a feature it lacks leaves the file to OpenCV, as before. A break that
    leaves the coded data in step (a flipped bit in a coefficient) no decoder sees: JPEG holds no checksum.

    Strict decoding stops at libjpeg's first warning, so a harmless one (padding before a marker, a misnumbered ICC
    chunk) had hidden damage later in the file: a copy with its cause removed is checked again, and the file is
    damaged only where no such copy decodes whole and one decodes into broken data (a copy cut wrong, whose own header
    breaks, tells nothing)."""
    buf = memoryview(np.ascontiguousarray(data, np.uint8)).cast("B")  # read in place, as images.truncated_jpeg reads
    if len(buf) < 2 or buf[0] != 0xFF or buf[1] != 0xD8:
        return False
    return bool(_damaged(buf, iter(range(_MOST_CHECKS)), is_copy=False))


def _damaged(jpeg: bytes | memoryview, checks: Iterator[int], is_copy: bool) -> bool | None:
    """``damaged_jpeg`` of a JPEG (or, ``is_copy``, of a copy of one with a harmless cause removed), one of ``checks``
    drawn for each strict decode. None where it is not told: when the checks run out (the file is left to OpenCV, as
    a first harmless warning had been, unless another copy of it decoded broken: counted as sound, a copy that ran out
    had passed photos whose first copy had found the damage), or for a copy whose own header cannot be read: not the
    file with its cause removed but one cut wrong, which tells nothing of the file."""
    if next(checks, None) is None:  # unknown: a copy found broken still counts, and alone the file is left to OpenCV
        return None
    complaint = _strict_complaint(jpeg)
    if complaint is None:
        return False
    in_header, said = complaint
    copies = _without_harmless_cause(jpeg, said)
    if copies is not None:
        return _damaged_however_put_right(copies, checks)
    if in_header:  # a header it cannot read is left to OpenCV, or, in a copy, tells nothing
        return None if is_copy else False
    return bool(_BROKEN_DATA.match(said))  # a warning it cannot judge is left to OpenCV


def _damaged_however_put_right(copies: Iterator[bytes], checks: Iterator[int]) -> bool | None:
    """Whether a JPEG is damaged, judged by its ``copies`` with a harmless cause removed: not where one of them
    decodes whole (or is left to OpenCV), damaged where the others that tell are; None where none tells (a copy cut
    wrong, or the checks run out before it is told)."""
    damaged = None
    for copy in copies:
        verdict = _damaged(copy, checks, is_copy=True)
        if verdict is False:
            return False
        damaged = damaged or verdict
    return damaged


# strict decodes of one file, its copies with harmless causes removed included: one for a file without a warning
# (every UTKFace photo), one more for each harmless cause (padding between header segments, of whatever markers, is
# one), and the copies tried where padding after compressed data may lie before more than one marker of the kind
_MOST_CHECKS = 8


def _strict_complaint(jpeg: bytes | memoryview) -> tuple[bool, str] | None:
    """libjpeg's first warning or error on the JPEG decoded strictly, and whether it came reading its header; None
    where it decodes without one, or is of a colour space not checked."""
    try:
        colourspace = simplejpeg.decode_jpeg_header(jpeg, strict=True)[2]
    except ValueError as exc:
        return True, str(exc)
    if colourspace not in _CHECKED_AS:
        return None
    try:
        # as small as libjpeg scales (an eighth: min_factor alone had decoded a 108-megapixel photo whole)
        simplejpeg.decode_jpeg(jpeg, colorspace=_CHECKED_AS[colourspace], min_height=1, min_width=1, strict=True)
    except ValueError as exc:
        return False, str(exc)
    return None


def _without_harmless_cause(jpeg: bytes | memoryview, said: str) -> Iterator[bytes] | None:
    """Copies of the JPEG without the cause of libjpeg's warning ``said``, where it leaves the pixels whole; None
    where it is not such a warning. Padding may lie before more than one marker of the kind named: one copy each."""
    if said == _BAD_ICC:
        icc_dropped = _icc_dropped(bytes(jpeg))
        return None if icc_dropped is None else iter([icc_dropped])
    match = _EXTRANEOUS.fullmatch(said)
    if match is None:
        return None
    return _padding_stripped(bytes(jpeg), int(match.group(1)), int(match.group(2), 16))


_BAD_ICC = "Corrupt JPEG data: bad ICC marker"  # an ICC chunk misnumbered: the profile lost, not the pixels
_EXTRANEOUS = re.compile(r"Corrupt JPEG data: (\d+) extraneous bytes before marker 0x([0-9a-f]{2})")


def _padding_stripped(jpeg: bytes, count: int, marker: int) -> Iterator[bytes] | None:
    """Copies of the JPEG without padding (fill bytes, 0x00 or 0xFF) libjpeg warned of, ``count`` bytes before a
    ``marker``: photos through some tools hold it between segments or after a scan, and their pixels are the unpadded
    file's. libjpeg's words are the same of compressed data it lost step with (of bytes of every value, in 1 of 5
    damaged copies), of which no copy is made. None where no such padding lies before a marker of the kind.

    Padding between header segments is known to the byte (the bytes between one segment's end and the next marker,
    which libjpeg skips): where the marker warned of has some before it, one copy without all of it, before markers
    of every kind. A copy for each place padded, found place by place, had spent the checks on copies still padded
    elsewhere (zeros before each of a phone photo's 6 APP segments: none of 20 damaged copies found).

    Padding after a scan's compressed data is not known so: its last bytes may be zeros too, and which were the ones
    libjpeg skipped only checking a copy tells. First a copy without ``count`` such bytes before every marker of the
    kind that follows compressed data, then, should it decode broken (a zero of a scan's own stripped), one copy for
    each place. Padding before a restart marker that libjpeg's decoder had read ahead is counted at a later marker:
    it is not looked for before the markers since, where a stripped zero byte of the scan's own had put damaged copies
    of a photo back in step (3 of 177 flipped-bit copies that said so passed, one garbled): such a file is refused,
    as it was before."""
    between = _padding_between_segments(jpeg)
    if any(jpeg[end + 1] == marker for _, end in between):
        return iter([_cut(jpeg, between)])
    after_data = [(start - count, start) for start, after in _after_compressed_data(jpeg, marker)
                  if start - count >= after and set(jpeg[start - count:start]) <= _FILL]
    if not after_data:
        return None
    each = (_cut(jpeg, between + [place]) for place in after_data) if len(after_data) > 1 else iter(())
    return chain([_cut(jpeg, between + after_data)], each)


_FILL = {0x00, 0xFF}  # the bytes padding is made of


def _cut(jpeg: bytes, spans: list[tuple[int, int]]) -> bytes:
    """The JPEG without the bytes of ``spans`` ((start, end), none overlapping)."""
    kept, at = [], 0
    for start, end in sorted(spans):
        kept.append(jpeg[at:start])
        at = end
    return b"".join(kept) + jpeg[at:]


def _padding_between_segments(jpeg: bytes) -> list[tuple[int, int]]:
    """(start, end) of the fill bytes between a marker segment's end and the next marker, where no compressed data
    lies between them, as libjpeg steps over them (fill bytes 0xFF right before the marker included): ``end`` is
    where the next marker's 0xFF lies."""
    return [(after, at) for at, _, after, after_data in _marker_places(jpeg)
            if not after_data and at > after and set(jpeg[after:at]) <= _FILL]


def _after_compressed_data(jpeg: bytes, marker: int) -> Iterator[tuple[int, int]]:
    """(start, after) of each ``marker`` that follows a scan's compressed data, its start with the fill bytes (0xFF)
    before it, which libjpeg does not count as extraneous, and ``after`` where that data begins."""
    for at, found, after, after_data in _marker_places(jpeg):
        if found == marker and after_data:
            while at > after and jpeg[at - 1] == 0xFF:
                at -= 1
            yield at, after


def _marker_places(jpeg: bytes) -> Iterator[tuple[int, int, int, bool]]:
    """(start, marker, after, after_data) of each marker ``_segments`` finds: ``after`` where the segment or marker
    before it ends (the start marker's end for the first), and whether compressed data lies between (after a scan's
    header or a restart marker)."""
    after, before = 2, 0xD8
    for at, found, end in _segments(jpeg):
        yield at, found, after, before == 0xDA or 0xD0 <= before <= 0xD7
        after, before = end, found


def _segments(jpeg: bytes) -> Iterator[tuple[int, int, int]]:
    """(start, marker, end) of each marker segment of the JPEG after its start marker, in file order, and of each
    restart marker in its compressed data, as libjpeg reads them; bytes between them that are no marker are stepped
    over, as libjpeg steps over them (with its warning of extraneous bytes)."""
    at = 2
    while at + 1 < len(jpeg):
        found = jpeg[at + 1]
        if jpeg[at] != 0xFF or found in (0x00, 0xFF):  # no marker here (or a fill byte before one)
            at += 1
            continue
        end = at + 2 if found == 0x01 or 0xD0 <= found <= 0xD7 else at + 2 + int.from_bytes(jpeg[at + 2:at + 4], "big")
        yield at, found, end
        if found == 0xD9:
            return
        at = end
        if found == 0xDA:  # a scan's compressed data follows, up to a marker other than a restart
            for restart in _RESTART_OR_END.finditer(jpeg, at):
                if not 0xD0 <= jpeg[restart.start() + 1] <= 0xD7:
                    at = restart.start()
                    break
                yield restart.start(), jpeg[restart.start() + 1], restart.end()
            else:
                return


_RESTART_OR_END = re.compile(rb"\xff[^\x00\xff]")  # in compressed data: a marker (0xFF 0x00 is a byte 0xFF)


def _icc_dropped(jpeg: bytes) -> bytes | None:
    """The JPEG without the APP2 segments that hold its ICC profile, which libjpeg reads only to hand the profile on;
    None where its header has none."""
    icc = [(start, end) for start, found, end in _header_segments(jpeg)
           if found == 0xE2 and jpeg[start + 4:start + 4 + len(_ICC_SIGNATURE)] == _ICC_SIGNATURE]
    return _cut(jpeg, icc) if icc else None


_ICC_SIGNATURE = b"ICC_PROFILE\x00"


def _header_segments(jpeg: bytes) -> Iterator[tuple[int, int, int]]:
    """``_segments`` up to the first scan."""
    for segment in _segments(jpeg):
        if segment[1] == 0xDA:
            return
        yield segment


# the pixels a JPEG is checked in, by its colour space: grey is the cheapest, and a CMYK or YCCK JPEG converts to
# no other (a JPEG of another number of components is not checked)
_CHECKED_AS = {"Gray": "GRAY", "YCbCr": "GRAY", "RGB": "GRAY", "CMYK": "CMYK", "YCCK": "CMYK"}
# libjpeg's messages for data that breaks the format, each found in damaged copies of photos that OpenCV decoded;
# "Unsupported marker type" is a byte pair no JPEG holds (a flipped byte in the compressed data), unlike
# "Unsupported JPEG process"/"data precision", which are kinds of JPEG a libjpeg may lack. A bad ICC marker leaves
# the pixels whole (and so does padding before a marker), but what follows it is checked (_without_harmless_cause).
_BROKEN_DATA = re.compile(r"Corrupt JPEG data(?!: bad ICC marker)"
                          r"|Premature end of JPEG file|Unsupported marker type"
                          r"|Bogus |Invalid JPEG file structure|Inconsistent progression sequence")
