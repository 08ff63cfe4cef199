"""Faces found ahead: detection of the next frame runs on a helper thread while the current frame is
analysed. OpenCV's detector and ONNX Runtime both release the GIL, so the two overlap (on 2 cores, one face:
39.6 → 47.2 frames/s, docs/performance.md). The app does the same with ``gui.workers.DetectThread``.

``depth`` frames can be in detection at once, each on a thread of its own (the detectors are safe to share,
``inference.faces``): where the models take less time than finding a frame's faces (a GPU with cores to
spare), the detector then keeps up. A camera's frames come no faster than it films, so the app stays at one.

The tracker is not involved: it runs in ``FramePipeline.process``, in frame order.
"""
from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import TYPE_CHECKING, Iterable, Iterator

import numpy as np

from .errors import BiasMirrorError
from .faces import Detected, FaceDetector, detect_faces
from .sources import Frame

if TYPE_CHECKING:  # the pipeline finds its images' faces ahead with this module
    from .pipeline import FramePipeline

log = logging.getLogger(__name__)


def detect_or_none(detector: FaceDetector, image: np.ndarray, name: str = "") -> Detected | None:
    """``detect_faces``, or None when it fails: the pipeline then detects again on its own thread and
    reports the failure in the frame's own terms."""
    try:
        return detect_faces(detector, image)
    except Exception:  # noqa: BLE001
        log.debug("detecting ahead failed for %s", name or "a frame", exc_info=True)
        return None


def detecting_ahead(frames: Iterable[Frame], detector: FaceDetector | None, depth: int = 1) -> Iterator[Frame]:
    """The frames in order, each with ``detected`` set, found while the caller worked on the frames before.

    ``depth`` frames are read ahead and found at once. Frames without an image, or with no detector, pass
    through unchanged.
    """
    depth = check_depth(depth)
    with ThreadPoolExecutor(depth, thread_name_prefix="detect-ahead") as pool:
        held: deque[tuple[Frame, Future | None]] = deque()
        for frame in frames:
            held.append((frame, pool.submit(detect_or_none, detector, frame.image, frame.name)
                         if detector is not None and frame.image is not None else None))
            if len(held) > depth:
                yield _attach(*held.popleft())
        while held:
            yield _attach(*held.popleft())


MAX_DEPTH = 16


def check_depth(depth: int) -> int:
    if not 1 <= depth <= MAX_DEPTH:
        raise BiasMirrorError(f"--detect-depth (frames whose faces are found ahead at once) must be 1 to {MAX_DEPTH}, "
                              f"not {depth}")
    return depth


def _attach(frame: Frame, job: Future | None) -> Frame:
    return frame if job is None else replace(frame, detected=job.result())


class DetectingAhead:
    """The bench's form: called once per frame of a known list (``bench_measure.measure`` calls it), it analyses
    the frame while the faces of the next ``depth`` are found. Its per-call time is the interval between
    frames; a frame's latency (``total``) still counts its detection."""

    def __init__(self, pipe: FramePipeline, frames: list[np.ndarray], depth: int = 1):
        self.pipe, self.frames, self.depth = pipe, frames, check_depth(depth)
        # measure() passes the frames in order, but may cut the warm-up short and jump ahead
        self._position = {id(f): i for i, f in enumerate(frames)}
        self.pool = ThreadPoolExecutor(self.depth, thread_name_prefix="detect-ahead")
        self.pending: dict[int, Future] = {}  # frame position → its detection, at most ``depth`` of them

    def __call__(self, frame: np.ndarray) -> tuple[dict[str, float], int]:
        i = self._position.get(id(frame), -1)
        job = self.pending.pop(i, None)
        found = job.result() if job is not None else detect_faces(self.pipe.detector, frame)  # type: ignore[arg-type]
        for skipped in [k for k in self.pending if k < i]:  # jumped over: never wanted now
            self.pending.pop(skipped).cancel()
        if i >= 0:
            for k in range(i + 1, min(i + 1 + self.depth, len(self.frames))):
                if k not in self.pending:
                    self.pending[k] = self.pool.submit(detect_faces, self.pipe.detector, self.frames[k])
        r = self.pipe.process(frame, detected=found)
        return dict(r.timings_ms), len(r.faces)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
