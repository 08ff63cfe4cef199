"""A small IoU tracker: stable ids per face across frames.

Greedy matching by IoU is enough for a handful of faces in front of a webcam;
a track survives ``max_missed`` frames without a detection so a blink or a
missed detection does not give someone a new id. Boxes are the detections as
found, not smoothed: the crop that is measured and filtered is cut at the box,
and a box averaged with the last frame's lagged a moving face by half its
motion (30 px a frame moved ITA by 11° and P(female) by 0.05 for one face).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import numpy as np

from .faces import Detection


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every x, y, w, h box in ``a`` (M×4) with every one in ``b`` (N×4): M×N, 0 where the union is empty.

    One array expression rather than M×N Python calls: at 16 faces and 16 tracks the pairs took
    about 1 ms of a frame's host work."""
    a, b = np.asarray(a, float).reshape(-1, 1, 4), np.asarray(b, float).reshape(1, -1, 4)
    ix = np.maximum(0.0, np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2]) - np.maximum(a[..., 0], b[..., 0]))
    iy = np.maximum(0.0, np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3]) - np.maximum(a[..., 1], b[..., 1]))
    inter = ix * iy
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    return float(iou_matrix(np.asarray([a]), np.asarray([b]))[0, 0])


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # x, y, w, h of its last detection
    missed: int = 0


class IoUTracker:
    # photos whose tracks are kept for when they are shown again: a few small objects each, so a looped folder
    # of tens of thousands of photos holds a few MB, and beyond this the least recently shown are let go
    MAX_SCENES = 20_000

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10):
        self.iou_threshold, self.max_missed = iou_threshold, max_missed
        self.tracks: list[Track] = []
        self._next_id = 1
        self._scene: str | None = None
        self._scenes: OrderedDict[str, list[Track]] = OrderedDict()

    def reset(self) -> None:
        self.tracks, self._next_id = [], 1
        self._scene, self._scenes = None, OrderedDict()

    def enter_scene(self, scene: str) -> None:
        """The frames from now on show photo ``scene`` (a folder's file). Another photo's faces are other
        people, though they sit where the last one's did (one track had run through a whole folder), so its
        tracks are put away; a photo shown before (a looped folder, a rerun) gets back the ids its faces had."""
        if scene == self._scene:
            return
        self._put_away()
        self.tracks = [replace(t, box=t.box.copy()) for t in self._scenes.get(scene, [])]
        self._scene = scene

    def leave_scene(self) -> None:
        """Frames that are not a photo (a video, a camera) follow; their tracks carry on from the frames before."""
        self._put_away()
        self._scene = None

    def _put_away(self) -> None:
        """The photo on show keeps a copy of its tracks for when it is shown again."""
        if self._scene is None:
            return
        self._scenes[self._scene] = [replace(t, box=t.box.copy()) for t in self.tracks]
        self._scenes.move_to_end(self._scene)
        while len(self._scenes) > self.MAX_SCENES:
            self._scenes.popitem(last=False)

    def update(self, detections: list[Detection]) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(track id, box) for each detection, in the detections' order: the box is the detection's."""
        scores = iou_matrix(np.array([t.box for t in self.tracks]).reshape(-1, 4),
                            np.array([d.box for d in detections], float).reshape(-1, 4))
        # Greedy, best pair first; among equal IoUs the later track, then the later detection, as a sort
        # of (iou, track, detection) tuples from the highest would take them.
        tis, dis = np.nonzero(scores >= self.iou_threshold)
        order = np.lexsort((dis, tis, scores[tis, dis]))[::-1]
        assigned: dict[int, int] = {}
        used_tracks: set[int] = set()
        for ti, di in zip(tis[order].tolist(), dis[order].tolist()):
            if ti in used_tracks or di in assigned:
                continue
            assigned[di] = ti
            used_tracks.add(ti)
        out = []
        for di, d in enumerate(detections):
            if di in assigned:
                t = self.tracks[assigned[di]]
                t.box = np.asarray(d.box, float)
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
