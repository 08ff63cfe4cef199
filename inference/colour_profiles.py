"""Colour management: the ICC profile a photo carries, and its pixels converted to sRGB from the colour space the
profile describes."""
from __future__ import annotations

import functools
import io
import struct
from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
from PIL import Image, ImageCms, JpegImagePlugin, PngImagePlugin, WebPImagePlugin

from .avif_read import is_avif
from .frame_depth import as_bgr_uint8

try:  # Pillow reads AVIF from 11.3, where it was built with libavif (its reader refuses the file otherwise)
    from PIL.AvifImagePlugin import AvifImageFile
except ImportError:
    AvifImageFile = None

# Pillow's readers of the formats OpenCV decodes whose ICC profile they hold: made directly, not by Image.open, which
# checks a file's size for a decompression bomb and warns of a large photo on stderr, though no pixel is decoded here
# (an AVIF's reader parses its boxes, and decodes its pixels only when asked for them). Without Pillow's AVIF reader an
# AVIF is read as untagged, as it had been.
_PROFILE_READERS = ((lambda head: head[:2] == b"\xff\xd8", JpegImagePlugin.JpegImageFile),
                    (lambda head: head[:8] == b"\x89PNG\r\n\x1a\n", PngImagePlugin.PngImageFile),
                    (lambda head: head[:4] == b"RIFF" and head[8:12] == b"WEBP", WebPImagePlugin.WebPImageFile))
if AvifImageFile is not None:
    _PROFILE_READERS += ((is_avif, AvifImageFile),)
# what Pillow raises for a file it cannot open or a header it cannot parse (a struct.error or SyntaxError from a
# damaged one; a RuntimeError from its AVIF reader, whose libavif parses the boxes as it opens the file: a damaged AVIF
# had stopped `run` and the audit with a traceback, where OpenCV calls it unreadable); each caller adds its own
PILLOW_ERRORS = (OSError, SyntaxError, ValueError, EOFError, RuntimeError, struct.error)
_PILLOW_ERRORS = PILLOW_ERRORS + (IndexError, TypeError)
# and for a file opened whole: Pillow refuses one of too many pixels (over 2 × MAX_IMAGE_PIXELS, ~179 MP) with an
# error of no OSError kind, which OpenCV (up to 2^30 pixels) reads
PILLOW_OPEN_ERRORS = PILLOW_ERRORS + (Image.DecompressionBombError,)


def embedded_profile(file: str | Path | BinaryIO, data: np.ndarray) -> bytes | None:
    """The ICC profile a JPEG, PNG, WebP or AVIF carries, read from its header by Pillow (no pixel decoded); None where
    it has none or its header cannot be read (OpenCV, which decodes it, says what is wrong with it). ``file``: its
    path, or its bytes already read as a file object (io.BytesIO), which Pillow's readers read as they read the file
    (an AVIF's reads it whole); ``data``: its bytes, or its first ones at least, by which its format is told."""
    head = bytes(data[:256])  # an AVIF's ftyp box, whose brands name it (avif_read.is_avif)
    for is_format, reader in _PROFILE_READERS:
        if is_format(head):
            try:
                with reader(file) as im:
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
