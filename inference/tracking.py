"""A small IoU tracker: stable ids per face across frames.

Greedy matching by IoU is enough to follow a handful of faces in front of a webcam;
a track survives ``max_missed`` frames without a detection so a blink or a
missed detection does not give someone a new id. Overlap alone cannot tell
who is there, though: a video's cut to another person at the same place (20
aligned UTKFace people, 3 frames each, had made one track of 59 frames) kept
the id. Given the frame, a face must also look like its track's last frame
(``look_change``), or it starts a new track. Boxes are the detections as
found, not smoothed: the crop that is measured and filtered is cut at the box,
and a box averaged with the last frame's lagged a moving face by half its
motion (30 px a frame moved ITA by 11° and P(female) by 0.05 for one face).
"""
from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, replace

import cv2
import numpy as np

from .faces import Detection

# A face's look is the grey thumbnail of its box, LOOK_PX a side, lightly blurred, and it is compared with its
# track's by the best normalised correlation within LOOK_SEARCH_PX thumbnail pixels (a quarter of the box) either
# way. Correlation ignores brightness and contrast; the search takes up where the box lands on the face from frame
# to frame; the track's scale is cut from both frames, so the box's size, which wanders by a tenth and more between
# two renderings of one still face, does not enter; the blur keeps the pixel steps of the search from counting as
# change. Measured (1 − correlation) on 300 UTKFace faces at 80, 120, 200 and 300 px in
# a 640×480 frame, each found again by the Haar detector after a webcam's frame-to-frame changes (shifts of 4 and
# 30 px, brightness ±15 % and a ±15 % side light, blur σ 1 and 2.5, noise σ 4, JPEG 70, 3° turns with 3 % zoom, all
# at once): one person's change was at most 0.079 (p99.9 0.056; 12,154 pairs, one more at 0.41 where the cascade had
# first boxed a mouth, a box the overlap never pairs with the face's); different people at the same place at least
# 0.093, for 99 % above 0.17 (p5 0.26, median 0.59; 1,044 pairs). MAX_LOOK_CHANGE lies between, 0.04 above the
# first and 0.05 below the second's 1 %: 3 of the 1,044 stayed one track. (At 24 px, searched 6, blurred 0.7, one
# person's change reached 0.107 with different people as close.)
LOOK_PX = 32
LOOK_SEARCH_PX = 8
LOOK_BLUR = 1.0
MAX_LOOK_CHANGE = 0.12
_FLAT = 1.0  # grey levels of spread below which a thumbnail holds no face to compare (a covered lens)


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


@dataclass(frozen=True)
class Look:
    """A face's look: the grey thumbnail of its box's square with LOOK_SEARCH_PX thumbnail pixels around it."""
    grey: np.ndarray  # (LOOK_PX + 2·LOOK_SEARCH_PX)² float32, blurred
    step: int  # frame pixels a thumbnail pixel

    def face(self) -> np.ndarray:
        """The box's own square at this step, as ``_thumbnail`` samples it (blurred with what lies around it where
        a thumbnail of its own repeats its edges)."""
        m = LOOK_SEARCH_PX
        return self.grey[m:-m, m:-m]


def _step(side: float) -> int:
    """Frame pixels a thumbnail pixel for a box of ``side``: a whole number, so that a look's middle is sampled at
    the very points a face's own thumbnail at that step is (``Look.face`` stands in for cutting it again)."""
    return max(1, int(round(side / LOOK_PX)))


def _thumbnail(frame: np.ndarray, centre: tuple[float, float], step: int, px: int) -> np.ndarray | None:
    """The frame's square of ``step``·``px`` around ``centre`` as a grey ``px``² float thumbnail, the frame's edges
    repeated beyond it (a face at the border); None where the square misses the frame or holds one grey only."""
    h, w = frame.shape[:2]
    side = step * px
    x0, y0 = int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))
    x1, y1 = x0 + side, y0 + side
    if x1 <= 0 or y1 <= 0 or x0 >= w or y0 >= h:
        return None
    crop = frame[max(0, y0):min(h, y1), max(0, x0):min(w, x1)]
    pads = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
    if any(pads):
        crop = cv2.copyMakeBorder(crop, *pads, cv2.BORDER_REPLICATE)
    # sampled at twice the thumbnail's resolution, then averaged 2×2: a cost that does not grow with the face (an
    # area average of the whole square took 0.24 ms for a 200 px face, 0.73 ms for 400); the grey after, on a few pixels
    sampled = cv2.resize(crop, (2 * px, 2 * px), interpolation=cv2.INTER_LINEAR)
    small = cv2.resize(sampled, (px, px), interpolation=cv2.INTER_AREA)
    if small.ndim == 3:
        small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY if small.shape[2] == 3 else cv2.COLOR_BGRA2GRAY)
    grey = cv2.GaussianBlur(small.astype(np.float32), (0, 0), LOOK_BLUR)
    return None if _flat(grey) else grey


def _flat(grey: np.ndarray) -> bool:
    return float(cv2.meanStdDev(grey)[1][0, 0]) < _FLAT  # OpenCV's: a tenth of NumPy's std's time on a thumbnail


def _centre_side(box: np.ndarray | tuple[float, ...]) -> tuple[tuple[float, float], float]:
    x, y, w, h = (float(v) for v in box)
    return (x + w / 2, y + h / 2), max(w, h)


def look_of(frame: np.ndarray, box: np.ndarray | tuple[float, ...]) -> Look | None:
    """The look of the face at ``box`` in ``frame``; None where there is nothing to compare."""
    centre, side = _centre_side(box)
    step = _step(side)
    grey = _thumbnail(frame, centre, step, LOOK_PX + 2 * LOOK_SEARCH_PX)
    return None if grey is None else Look(grey, step)


def look_change(look: Look, frame: np.ndarray, box: np.ndarray | tuple[float, ...],
                seen: Look | None = None) -> float | None:
    """1 − the best correlation of the face at ``box`` in ``frame`` with ``look`` (a track's, from the frame before):
    about 0 for the same face, 1 for an unrelated one; None where either holds too little to say. The face is cut
    at the track's step, not its box's own; ``seen``, its ``look_of``, is used where the two steps agree."""
    if seen is not None and seen.step == look.step:
        face: np.ndarray | None = seen.face()
    else:
        face = _thumbnail(frame, _centre_side(box)[0], look.step, LOOK_PX)
    if face is None or _flat(face):
        return None
    best = float(cv2.matchTemplate(look.grey, face, cv2.TM_CCOEFF_NORMED).max())
    return 1.0 - min(1.0, best)


@dataclass
class Track:
    track_id: int
    box: np.ndarray  # x, y, w, h of its last detection
    missed: int = 0
    look: Look | None = None  # its last detection's, where the frame was given


class IoUTracker:
    # photos whose tracks are kept for when they are shown again: a few small objects each, so a looped folder
    # of tens of thousands of photos holds a few MB, and beyond this the least recently shown are let go
    MAX_SCENES = 20_000

    def __init__(self, iou_threshold: float = 0.3, max_missed: int = 10, max_look_change: float = MAX_LOOK_CHANGE):
        self.iou_threshold, self.max_missed, self.max_look_change = iou_threshold, max_missed, max_look_change
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
        """The photo on show keeps a copy of its tracks for when it is shown again: without their looks (9 kB a face,
        some 50 times the rest, over tens of thousands of photos), which a photo shown again does not need."""
        if self._scene is None:
            return
        self._scenes[self._scene] = [replace(t, box=t.box.copy(), look=None) for t in self.tracks]
        self._scenes.move_to_end(self._scene)
        while len(self._scenes) > self.MAX_SCENES:
            self._scenes.popitem(last=False)

    def _forget_other_looks(self, scores: np.ndarray, detections: list[Detection], frame: np.ndarray,
                            looks: list[Look | None]) -> None:
        """Sets to 0 the overlap of each pair whose face changed more than one person's does from one frame to the
        next: someone else at the track's place. Only pairs that overlap enough are compared (a face or two each)."""
        for ti, di in zip(*np.nonzero(scores >= self.iou_threshold)):
            t = self.tracks[ti]
            if t.look is None:
                continue
            change = look_change(t.look, frame, detections[di].box, looks[di])
            if change is not None and change > self.max_look_change:
                scores[ti, di] = 0.0

    def update(self, detections: list[Detection],
               frame: np.ndarray | None = None) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(track id, box) for each detection, in the detections' order: the box is the detection's. With
        ``frame`` (the one the detections were found in), a face that does not look like its track's last frame
        starts a new track; without, overlap alone decides."""
        scores = iou_matrix(np.array([t.box for t in self.tracks]).reshape(-1, 4),
                            np.array([d.box for d in detections], float).reshape(-1, 4))
        looks = [None if frame is None else look_of(frame, d.box) for d in detections]
        if frame is not None:
            self._forget_other_looks(scores, detections, frame, looks)
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
            # from the frame before this one's, not its first: a face turns and lights change slowly, frame by frame
            t.look = looks[di]
            out.append((t.track_id, tuple(float(v) for v in t.box)))
        for i, t in enumerate(self.tracks):
            if i not in used_tracks:
                t.missed += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return out  # type: ignore[return-value]
