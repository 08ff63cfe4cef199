"""The frames a bench run times: face images tiled on a grey canvas, or a video's frames fitted into it.

Every configuration sees the same frames. At most ``FRAME_BUDGET`` bytes of
them are different; beyond that they are cycled, each repeat a view of its own.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from .datasets.folder import list_images
from .datasets.sample import IMAGE_EXTENSIONS
from .errors import BiasMirrorError
from .frame_depth import as_bgr_uint8
from .images import read_bgr, read_bgr_checked
from .sources import VideoSource


def letterboxed(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` scaled to fit ``size`` (w, h) whole, its aspect kept, on the bench's grey."""
    w, h = size
    s = min(w / img.shape[1], h / img.shape[0])
    fw, fh = max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))
    out = np.full((h, w, 3), 110, np.uint8)
    y, x = (h - fh) // 2, (w - fw) // 2
    out[y:y + fh, x:x + fw] = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return out


def make_frames(source: str | None, n_faces: int, size: tuple[int, int], count: int,
                distinct: int | None = None) -> list[np.ndarray]:
    """``count`` frames of ``size`` with ``n_faces`` face images tiled on a grey canvas, or a video's frames fitted
    into it; at most ``distinct`` of them different, cycled (``distinct_frames``: 60 frames of 8192×8192 asked for
    12.5 GB a face count)."""
    w, h = size
    distinct = min(count, distinct or count)
    faces: list[np.ndarray] = []
    unreadable = 0
    # said before its kind: one message for both had suggested, for a path mistyped, the very kind of path typed
    if source and not Path(source).exists():
        raise BiasMirrorError("the source does not exist (give a folder of face images, an image or a video)", source)
    if source and Path(source).is_file() and Path(source).suffix.lower() in IMAGE_EXTENSIONS:
        img, problem = read_bgr_checked(source)  # one face, tiled like a folder's, read as `run` reads it
        if img is None:
            raise BiasMirrorError(problem, source)
        faces.append(img)
    elif is_video(source):
        # read as `run` and the app read it: undecodable frames skipped, not the end (a damaged first frame had
        # refused the video); each frame fitted into the bench's size, not stretched (a portrait phone video,
        # squeezed into 640×480, showed no face and timed empty frames at twice the speed)
        video = VideoSource(Path(source))
        frames = []
        try:
            while len(frames) < distinct and (frame := video.read()) is not None:
                if frame.image is not None:
                    frames.append(letterboxed(as_bgr_uint8(frame.image), (w, h)))
        finally:
            video.close()
        if not frames:
            raise BiasMirrorError("no frames could be read from this video", source)
        return cycled(frames, count)  # a short clip is looped to the frames asked for
    elif not source or not Path(source).is_dir():
        raise BiasMirrorError("give --source: a folder of face images (e.g. ../shared/datasets/utkface/UTKFace) or a video",
                              source)
    else:
        faces, unreadable = readable_faces(list_images(Path(source)), distinct + n_faces)
    if not faces:
        raise BiasMirrorError("no readable images in the folder"
                              + (f" ({unreadable} image file(s) could not be read)" if unreadable else ""), source)
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    side = min(int(min(w / cols, h / rows) * 0.8), 220)
    frames = []
    for i in range(distinct):
        frame = np.full((h, w, 3), 110, np.uint8)
        for k in range(n_faces):
            face = cv2.resize(faces[(i + k) % len(faces)], (side, side))
            r, c = divmod(k, cols)
            y = int((r + 0.5) * h / rows - side / 2)
            x = int((c + 0.5) * w / cols - side / 2)
            frame[y : y + side, x : x + side] = face
        frames.append(frame)
    return cycled(frames, count)


def readable_faces(paths: list[Path], wanted: int) -> tuple[list[np.ndarray], int]:
    """Up to ``wanted`` images read from ``paths`` in order, and how many files were passed over unreadable. It
    reads on until enough are found: a folder whose readable images came after as many unreadable ones as it was
    asked for had been called one of "no readable images"."""
    faces, unreadable = [], 0
    for p in paths:
        img = read_bgr(p)  # as `run` reads it: a float TIFF had been passed over unreadable
        if img is None:
            unreadable += 1
            continue
        faces.append(img)
        if len(faces) >= wanted:
            break
    return faces, unreadable


def cycled(frames: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` frames cycling through ``frames``, each repeat a view of its own: ``DetectingAhead`` finds a frame's
    place in the list by its identity, and a repeated object had put every repeat at its last place."""
    return [frames[i] if i < len(frames) else frames[i % len(frames)].view() for i in range(count)]


FRAME_BUDGET = 1 << 30  # bytes of distinct frames held at once, all face counts together


def distinct_frames(size: tuple[int, int], count: int, face_counts: int) -> int:
    """How many different frames each face count holds: all ``count`` where they fit in ``FRAME_BUDGET``, else as
    many as fit, cycled (every frame was held at once, and --resolution 8192x8192 ended in a MemoryError). The
    frames stay real frames of that size, so the work a frame takes is unchanged; only fewer faces vary."""
    w, h = size
    fit = FRAME_BUDGET // (w * h * 3 * face_counts)
    if fit < 1:
        need = w * h * 3 * face_counts / 2**30
        raise BiasMirrorError(f"--resolution {w}x{h} with {face_counts} face counts (--faces) holds {need:.1f} GiB of "
                              f"frames at once, more than the bench's {FRAME_BUDGET / 2**30:g} GiB: give fewer --faces "
                              "or a smaller --resolution")
    return min(count, fit)


def cycling_note(distinct: int, count: int) -> str:
    """What the run's first line adds where each face count's ``count`` frames cycle through ``distinct`` ones."""
    return (f", cycling through {distinct} different ones (at most {FRAME_BUDGET / 2**30:g} GiB of frames is held)"
            if distinct < count else "")


def is_video(source: str | None) -> bool:
    return bool(source) and Path(source).is_file() and Path(source).suffix.lower() not in IMAGE_EXTENSIONS
