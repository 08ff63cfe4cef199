"""A small IoU tracker: stable ids per face across frames, and smoothed boxes.

Greedy matching by IoU is enough for a handful of faces in front of a webcam;
a track survives ``max_missed`` frames without a detection so a blink or a
missed detection does not give someone a new id.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .faces import Detection


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    ix = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    iy = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = ix * iy
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # smoothed x, y, w, h
    missed: int = 0


class IoUTracker:
    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, smoothing: float = 0.5):
        self.iou_threshold, self.max_missed, self.smoothing = iou_threshold, max_missed, smoothing
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        self.tracks, self._next_id = [], 1

    def update(self, detections: list[Detection]) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(track id, smoothed box) for each detection, in the detections' order."""
        pairs = sorted(
            ((iou(tuple(t.box), d.box), ti, di) for ti, t in enumerate(self.tracks) for di, d in enumerate(detections)),
            reverse=True,
        )
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for score, ti, di in pairs:
            if score < self.iou_threshold:
                break
            if ti in used_tracks or di in assigned:
                continue
            assigned[di] = ti
            used_tracks.add(ti)
        out = []
        for di, d in enumerate(detections):
            if di in assigned:
                t = self.tracks[assigned[di]]
                t.box = self.smoothing * t.box + (1 - self.smoothing) * np.asarray(d.box, float)
                t.missed = 0
            else:
                t = Track(self._next_id, np.asarray(d.box, float))
                self._next_id += 1
                self.tracks.append(t)
                used_tracks.add(len(self.tracks) - 1)
            out.append((t.track_id, tuple(float(v) for v in t.box)))
        for i, t in enumerate(self.tracks):
            if i not in used_tracks:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out  # type: ignore[return-value]
