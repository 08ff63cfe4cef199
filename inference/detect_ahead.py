"""Faces found one frame ahead: detection of the next frame runs on a helper thread while the current
frame is analysed. OpenCV's detector and ONNX Runtime both release the GIL, so the two overlap (on 2 cores,
one face: 39.6 → 47.2 frames/s, docs/performance.md). The app does the same with ``gui.workers.DetectThread``.

The tracker is not involved: it runs in ``FramePipeline.process``, in frame order.
"""
from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from typing import Iterable, Iterator

import numpy as np

from .faces import Detected, FaceDetector
from .pipeline import FramePipeline, detect_faces
from .sources import Frame


def detecting_ahead(frames: Iterable[Frame], detector: FaceDetector | None) -> Iterator[Frame]:
    """The frames in order, each with ``detected`` set, found while the caller worked on the frame before.

    One frame is read ahead. Frames without an image, or with no detector, pass through unchanged.
    """
    with ThreadPoolExecutor(1, thread_name_prefix="detect-ahead") as pool:
        held: tuple[Frame, Future | None] | None = None
        for frame in frames:
            job = (pool.submit(detect_faces, detector, frame.image)
                   if detector is not None and frame.image is not None else None)
            if held is not None:
                yield _attach(*held)
            held = (frame, job)
        if held is not None:
            yield _attach(*held)


def _attach(frame: Frame, job: Future | None) -> Frame:
    if job is None:
        return frame
    try:
        found: Detected | None = job.result()
    except Exception:  # noqa: BLE001  (the pipeline detects again and reports it in the frame's own terms)
        found = None
    return replace(frame, detected=found)


class DetectingAhead:
    """The bench's form: called once per frame of a known list (``bench.measure`` calls it), it analyses
    the frame while the next one's faces are found. Its per-call time is the interval between frames;
    a frame's latency (``total``) still counts its detection."""

    def __init__(self, pipe: FramePipeline, frames: list[np.ndarray]):
        self.pipe, self.frames = pipe, frames
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="detect-ahead")
        self.pending: tuple[int, Future] | None = None
        self.pos = -1

    def _position(self, frame: np.ndarray) -> int:
        # measure() passes the frames in order, but may cut the warm-up short and jump ahead
        order = [*range(self.pos + 1, len(self.frames)), *range(0, self.pos + 1)]
        self.pos = next((k for k in order if self.frames[k] is frame), -1)
        return self.pos

    def __call__(self, frame: np.ndarray) -> tuple[dict[str, float], int]:
        i = self._position(frame)
        if self.pending is not None and self.pending[0] == i and i >= 0:
            found = self.pending[1].result()
        else:
            found = detect_faces(self.pipe.detector, frame)  # type: ignore[arg-type]
        nxt = i + 1
        self.pending = ((nxt, self.pool.submit(detect_faces, self.pipe.detector, self.frames[nxt]))
                        if 0 < nxt < len(self.frames) else None)
        r = self.pipe.process(frame, detected=found)
        return dict(r.timings_ms), len(r.faces)

    def close(self) -> None:
        self.pool.shutdown(wait=True)


