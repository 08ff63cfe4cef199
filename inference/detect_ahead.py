"""Faces found one frame ahead: detection of the next frame runs on a helper thread while the current
frame is analysed. OpenCV's detector and ONNX Runtime both release the GIL, so the two overlap (on 2 cores,
one face: 39.6 → 47.2 frames/s, docs/performance.md). The app does the same with ``gui.workers.DetectThread``.

The tracker is not involved: it runs in ``FramePipeline.process``, in frame order.
"""
from __future__ import annotations

import logging
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np

from .faces import Detected, FaceDetector
from .pipeline import FramePipeline, detect_faces
from .sources import Frame

log = logging.getLogger(__name__)


def detect_or_none(detector: FaceDetector, image: np.ndarray, name: str = "") -> Detected | None:
    """``detect_faces``, or None when it fails: the pipeline then detects again on its own thread and
    reports the failure in the frame's own terms."""
    try:
        return detect_faces(detector, image)
    except Exception:  # noqa: BLE001
        log.debug("detecting ahead failed for %s", name or "a frame", exc_info=True)
        return None


def detecting_ahead(frames: Iterable[Frame], detector: FaceDetector | None) -> Iterator[Frame]:
    """The frames in order, each with ``detected`` set, found while the caller worked on the frame before.

    One frame is read ahead. Frames without an image, or with no detector, pass through unchanged.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="detect-ahead") as pool:
        held: tuple[Frame, Future | None] | None = None
        for frame in frames:
            job = (pool.submit(detect_or_none, detector, frame.image, frame.name)
                   if detector is not None and frame.image is not None else None)
            if held is not None:
                yield _attach(*held)
            held = (frame, job)
        if held is not None:
            yield _attach(*held)


def _attach(frame: Frame, job: Future | None) -> Frame:
    return frame if job is None else replace(frame, detected=job.result())


class DetectingAhead:
    """The bench's form: called once per frame of a known list (``bench.measure`` calls it), it analyses
    the frame while the next one's faces are found. Its per-call time is the interval between frames;
    a frame's latency (``total``) still counts its detection."""

    def __init__(self, pipe: FramePipeline, frames: list[np.ndarray]):
        self.pipe = pipe
        # measure() passes the frames in order, but may cut the warm-up short and jump ahead
        self._next = {id(f): nxt for f, nxt in zip(frames, frames[1:])}
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="detect-ahead")
        self.pending: tuple[np.ndarray, Future] | None = None  # the frame being detected, and its job

    def __call__(self, frame: np.ndarray) -> tuple[dict[str, float], int]:
        if self.pending is not None and self.pending[0] is frame:
            found = self.pending[1].result()
        else:
            found = detect_faces(self.pipe.detector, frame)  # type: ignore[arg-type]
        nxt = self._next.get(id(frame))
        self.pending = (nxt, self.pool.submit(detect_faces, self.pipe.detector, nxt)) if nxt is not None else None
        r = self.pipe.process(frame, detected=found)
        return dict(r.timings_ms), len(r.faces)

    def close(self) -> None:
        self.pool.shutdown(wait=True)
