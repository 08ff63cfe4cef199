"""A JPEG damaged inside its compressed data (bytes flipped or lost, its end marker intact), found by decoding it
again strictly with simplejpeg: OpenCV decodes on past such a break into garbled pixels, with a warning on stderr."""
from __future__ import annotations

import re

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
    leaves the coded data in step (a flipped bit in a coefficient) no decoder sees: JPEG holds no checksum."""
    buf = memoryview(np.ascontiguousarray(data, np.uint8)).cast("B")  # read in place, as images.truncated_jpeg reads
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
