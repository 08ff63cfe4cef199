"""A decoded image's pixels as a frame: which depths and layouts have one meaning as brightness, and any of them as
the 3-channel 8-bit BGR every measure reads. Used by the decoders (images, colour_profiles, tiff_read) and the
sources alike."""
from __future__ import annotations

import cv2
import numpy as np

from .errors import BiasMirrorError


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
        # rounded to the nearest level, not truncated: a float16 TIFF stores x/255 a hair below it for half the
        # levels, and truncating had read those pixels a level dark, a face's ITA up to 3° off its PNG copy's
        f = np.rint(np.clip(np.nan_to_num(f) * scale, 0, 255)).astype(np.uint8)
    if f.ndim == 2 or f.shape[2] == 1:
        return cv2.cvtColor(f.reshape(f.shape[0], f.shape[1]), cv2.COLOR_GRAY2BGR)
    if f.shape[2] == 4:
        return cv2.cvtColor(f, cv2.COLOR_BGRA2BGR)
    return np.ascontiguousarray(f)
