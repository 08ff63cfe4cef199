"""Reading and normalising images: one place, so training, the audit and the app decode alike."""
from __future__ import annotations

import io
import re
import sys
from pathlib import Path

import cv2
import numpy as np

from .avif_read import decoded_avif, is_avif
from .colour_profiles import embedded_profile, in_srgb
from .errors import PERMISSION_DENIED, BiasMirrorError, in_words
from .frame_depth import as_bgr_uint8, frame_problem
from .jpeg_damage import DAMAGED_JPEG, damaged_jpeg
from .tiff_pages import is_tiff
from .tiff_read import tiff_photo

UNREADABLE = "cannot be read as an image (corrupt, truncated or another format)"
NOT_AN_IMAGE = "cannot be read as an image"  # the offline batch API's error (an audit's report) for UNREADABLE


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
    if is_tiff(bytes(data[:4])):
        tiff = tiff_photo(Path(path), data, flags)
        if tiff.problem:  # why, where it is known beyond "unreadable" (a compression read only with imagecodecs)
            return None, tiff.problem
        img, profile = tiff.image, tiff.icc
    else:
        img = decoded_avif(data, flags) if is_avif(data) else cv2.imdecode(data, flags)
        profile = embedded_profile(io.BytesIO(data), data)  # read from the bytes held, not the file again
    if img is None or img.size == 0:
        return None, UNREADABLE
    # decoded, but as pixels no frame can be made of (a signed-integer TIFF under FRAME_FLAGS): as unreadable as a
    # corrupt file, and said why, here where the file is named (as_bgr_uint8 had stopped a whole run without its name)
    problem = frame_problem(img)
    return (None, problem) if problem else (in_srgb(img, profile), None)


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
# converted to sRGB, a JPEG damaged inside is unreadable, a float16 or 32-bit TIFF read. 5: a float image rounded to
# its nearest level (a float16 TIFF's had been truncated, half its pixels a level dark), an AVIF's profile converted
# to sRGB, a JPEG damaged after a harmless warning unreadable. 6: a JPEG damaged after padding before a marker that
# occurs more than once (its second DQT) unreadable, a TIFF's page after a float16 one read as the page alone is (a
# palette, CMYK or min-is-white page had been lost), and the copy detection's thumbnails read as a frame is (a float32
# TIFF's, a grey photo's converted by its grey profile, a TIFF's under 4 px: none, unconverted and none before).
READER_VERSION = 6


# Bump when an aligned face is framed otherwise, so that faces decoded and kept (training's face caches) are framed
# again. 1: a face image that is not square is centre-cropped to its shorter side (``centre_square``), where it had been
# squashed to a square (CelebA's 178×218 faces made 22 % wider).
ALIGNED_FRAMING_VERSION = 1


def centre_square(height: int, width: int) -> tuple[int, int, int]:
    """(x0, y0, side) of the image's centred square, as aligned faces are framed for the models: CelebA's 178×218
    faces had been squashed to a square, 22 % wider than the faces the models learnt (UTKFace's are square), and
    scored 89 % where their centred 178×178 squares score 94 %. Square images (UTKFace, FairFace) are whole."""
    side = min(height, width)
    return (width - side) // 2, (height - side) // 2, side


def aligned_face(image: np.ndarray, size: int) -> np.ndarray:
    """An aligned face image (H×W×C) as the size×size face the models take: its centred square, resized."""
    x0, y0, side = centre_square(*image.shape[:2])
    return resize_batch(image[None, y0:y0 + side, x0:x0 + side], (size, size))[0]


def read_rgb(path: str, size: int | None = None) -> np.ndarray | None:
    """An RGB uint8 image (as the size×size aligned face, ``aligned_face``, if ``size`` is given), or None if it cannot
    be read."""
    return read_rgb_checked(path, size)[0]


def read_rgb_checked(path: str, size: int | None = None) -> tuple[np.ndarray | None, str | None]:
    """``read_rgb``, and when it gives None, why, in words for the user (as ``read_image_checked``)."""
    img, problem = read_bgr_checked(path)
    if img is None:
        return None, problem
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return (aligned_face(img, size) if size else img), None


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
