"""A small IoU tracker: stable ids per face across frames.

Greedy matching by IoU is enough to follow a handful of faces in front of a webcam;
a track survives ``max_missed`` frames without a detection so a blink or a
missed detection does not give someone a new id. Overlap alone cannot tell
who is there, though: a video's cut to another person at the same place (20
aligned UTKFace people, 3 frames each, had made one track of 59 frames) kept
the id. Given the frame, a face must also look like its track's last frame
(``look_change``), or it starts a new track. What other faces' boxes cover of
it is left out of that compare: a neighbour moving over a face does not make it
someone else (two rows of faces crossing had given 12 people 244 ids). Boxes
are the detections as found, not smoothed: the crop that is measured and
filtered is cut at the box, and a box averaged with the last frame's lagged a
moving face by half its motion (30 px a frame moved ITA by 11° and P(female) by
0.05 for one face).
"""
from __future__ import annotations

import math
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
# A face partly behind a neighbour is compared over the thumbnail pixels that no other face's box, in either frame,
# covers (widened by COVER_MARGIN of that box's side, for the hair, neck and background a box leaves out), nor the
# frame's outside: those are not its pixels, and a neighbour sliding over a chin had changed a face's whole-box look
# past MAX_LOOK_CHANGE (two rows crossing: 12 people, 244 ids; faces half out of the frame, its edge repeated, split
# too). Where less than MIN_SEEN of the face is seen in both with the boxes' middles together, its look cannot be
# told, and the search takes only the offsets where as much is. Measured as above on 400 UTKFace faces at the same
# sizes under the same changes, another face (0.9-1.1 times the size) pasted over 20-45 % of the box from a side and
# sliding by up to 16 px, the boxes found by the Haar detector. Where the neighbour was found in both frames, one
# person's change was above MAX_LOOK_CHANGE in 3 of 2,492 pairs (p99 0.067, p99.9 0.123, at most 0.32; 9 more could
# not be told), against 506 of 2,501 compared over the whole box; another person at the same place behind the same
# neighbour was below it in 17 of 1,218 (min 0.069, p1 0.114, p5 0.18, median 0.45), against 22 over the whole box.
# With less of a face to go by, 1.4 % of different people stay one track, against 0.3 % of faces uncovered. A
# COVER_MARGIN of 0 put 1.1 % of one person's changes above (the neighbour's hair and neck left in the face; 0.6 % of
# different people below), 0.15 put 0.2 % above and 2.5 % of different people below or untold. Where a frame's
# neighbour goes unfound, nothing can be left out: 76 of 904 such pairs of one person were above (118 whole).
COVER_MARGIN = 0.1
MIN_SEEN = 0.3
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
    # like grey: 1 where the pixel is the face's or its surroundings', 0 where another face found in its frame lies
    # or the frame ends (``_seen``); None where nothing does. Kept with the look, so that a neighbour's pixels never
    # count as the face's in the frame after
    seen: np.ndarray | None = None

    def face(self) -> np.ndarray:
        """The box's own square at this step, as ``_thumbnail`` samples it (blurred with what lies around it where
        a thumbnail of its own repeats its edges)."""
        m = LOOK_SEARCH_PX
        return self.grey[m:-m, m:-m]

    def face_seen(self) -> np.ndarray | None:
        """``seen`` of ``face``."""
        m = LOOK_SEARCH_PX
        return None if self.seen is None else self.seen[m:-m, m:-m]


def _step(side: float) -> int:
    """Frame pixels a thumbnail pixel for a box of ``side``: a whole number, so that a look's middle is sampled at
    the very points a face's own thumbnail at that step is (``Look.face`` stands in for cutting it again)."""
    return max(1, int(round(side / LOOK_PX)))


def _thumbnail(frame: np.ndarray, centre: tuple[float, float], step: int, px: int) -> np.ndarray | None:
    """The frame's square of ``step``·``px`` around ``centre`` as a grey ``px``² float thumbnail, the frame's edges
    repeated beyond it (a face at the border); None where the square misses the frame or holds one grey only."""
    h, w = frame.shape[:2]
    side = step * px
    x0, y0 = _corner(centre, step, px)
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


def _corner(centre: tuple[float, float], step: int, px: int) -> tuple[int, int]:
    """The frame pixel at the top left of a thumbnail's square."""
    side = step * px
    return int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))


def _seen(frame_shape: tuple[int, ...], centre: tuple[float, float], step: int, px: int,
          others: np.ndarray | list) -> np.ndarray | None:
    """Which pixels of the thumbnail ``_thumbnail`` cuts show the face and what is around it: 1, and 0 where the
    box of another face found in the frame (``others``, M×4) lies, widened by COVER_MARGIN of its side and a
    thumbnail pixel, about as far as the blur carries a neighbour's pixels, or where the frame ends (its edge
    repeated is no more the face's on one frame than on the next: faces half out of the frame changed past the
    threshold as they moved). None where all do. Which of two faces is in front is not known, so each gives up
    what the other's box covers."""
    x0, y0 = _corner(centre, step, px)
    h, w = frame_shape[:2]
    if not len(others) and x0 >= 0 and y0 >= 0 and x0 + step * px <= w and y0 + step * px <= h:
        return None
    far = float(1 << 30)
    # x, y, x end, y end of each cover: the boxes widened, then the frame's outside on each side. In Python, not
    # arrays: a face has a few near it, and the dozen small array calls had taken 60 µs a face
    covers = [(x - d, y - d, x + bw + d, y + bh + d)
              for x, y, bw, bh in np.asarray(others, float).reshape(-1, 4).tolist()
              for d in (step + COVER_MARGIN * max(bw, bh),)]
    covers += [(-far, -far, 0, far), (w, -far, far, far), (-far, -far, far, 0), (-far, h, far, far)]
    seen = None
    for cx0, cy0, cx1, cy1 in covers:
        # the thumbnail pixels (columns, rows) whose span of the frame the cover meets
        c0, r0 = max(0, math.floor((cx0 - x0) / step)), max(0, math.floor((cy0 - y0) / step))
        c1, r1 = min(px, math.ceil((cx1 - x0) / step)), min(px, math.ceil((cy1 - y0) / step))
        if c0 < c1 and r0 < r1:
            if seen is None:
                seen = np.ones((px, px), np.float32)
            seen[r0:r1, c0:c1] = 0.0
    return seen


def _flat(grey: np.ndarray) -> bool:
    return float(cv2.meanStdDev(grey)[1][0, 0]) < _FLAT  # OpenCV's: a tenth of NumPy's std's time on a thumbnail


def _centre_side(box: np.ndarray | tuple[float, ...]) -> tuple[tuple[float, float], float]:
    x, y, w, h = (float(v) for v in box)
    return (x + w / 2, y + h / 2), max(w, h)


def look_of(frame: np.ndarray, box: np.ndarray | tuple[float, ...], others: np.ndarray | list = ()) -> Look | None:
    """The look of the face at ``box`` in ``frame``, where the boxes ``others`` (the frame's other faces) cover
    none of it or not all; None where there is nothing to compare."""
    centre, side = _centre_side(box)
    step = _step(side)
    px = LOOK_PX + 2 * LOOK_SEARCH_PX
    grey = _thumbnail(frame, centre, step, px)
    return None if grey is None else Look(grey, step, _seen(frame.shape, centre, step, px, others))


def look_change(look: Look, frame: np.ndarray, box: np.ndarray | tuple[float, ...],
                seen: Look | None = None, others: np.ndarray | list = ()) -> float | None:
    """1 − the best correlation of the face at ``box`` in ``frame`` with ``look`` (a track's, from the frame before):
    about 0 for the same face, 1 for an unrelated one; None where either holds too little to say. The face is cut
    at the track's step, not its box's own; ``seen``, its ``look_of`` (given ``others``), is used where the two
    steps agree. Only the pixels that neither ``others``, the frame's other faces' boxes, nor those of the look's
    frame cover are compared."""
    if seen is not None and seen.step == look.step:
        face: np.ndarray | None = seen.face()
        face_seen = seen.face_seen()
    else:
        centre = _centre_side(box)[0]
        face = _thumbnail(frame, centre, look.step, LOOK_PX)
        face_seen = _seen(frame.shape, centre, look.step, LOOK_PX, others)
    if face is None or _flat(face):
        return None
    look_face_seen = look.face_seen()
    if (face_seen is None or face_seen.all()) and (look_face_seen is None or look_face_seen.all()):
        # a neighbour only about the face, where the search reaches, as the threshold was measured with
        best: float | None = float(cv2.matchTemplate(look.grey, face, cv2.TM_CCOEFF_NORMED).max())
    else:
        best = _best_seen_correlation(look.grey, look.seen, face, face_seen)
    return None if best is None else 1.0 - min(1.0, best)


def _best_seen_correlation(image: np.ndarray, image_seen: np.ndarray | None, face: np.ndarray,
                           face_seen: np.ndarray | None) -> float | None:
    """What TM_CCOEFF_NORMED's best is, with each offset's correlation taken over the pixels both ``*_seen`` show
    (all where None), at the offsets where those are MIN_SEEN of the face or more and neither side is flat; None
    where the middle offset is not one. From sums over the seen pixels, one TM_CCORR each, all offsets at once."""
    image_seen = np.ones_like(image) if image_seen is None else image_seen
    face_seen = np.ones_like(face) if face_seen is None else face_seen
    units = []
    for grey, shown in ((image, image_seen), (face, face_seen)):
        values = grey[shown > 0]
        if values.size == 0:
            return None
        spread = max(float(values.std()), 1e-6)
        # about 0 and of spread 1 over what is seen: float32 sums of a thousand products, less what cancels, keep
        # their digits
        units.append(((grey - float(values.mean())) / spread * shown, spread))
    (i, spread_i), (f, spread_f) = units

    def summed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return cv2.matchTemplate(a, b, cv2.TM_CCORR).astype(np.float64)

    n = summed(image_seen, face_seen)
    count = np.maximum(n, 1.0)
    si, sf = summed(i, face_seen), summed(image_seen, f)
    var_i = summed(i * i, face_seen) - si * si / count
    var_f = summed(image_seen, f * f) - sf * sf / count
    cov = summed(i, f) - si * sf / count
    judged = ((n >= MIN_SEEN * face.size) & (var_i >= count * (_FLAT / spread_i) ** 2)
              & (var_f >= count * (_FLAT / spread_f) ** 2))
    # Unless the face is judged where the boxes' middles meet, it is not judged at all: where a neighbour left a
    # strip of it, the strip slid over the look's own surroundings, shown in full, was seen enough only out of
    # place, and a face half behind a neighbour was told from itself (and paired with the neighbour's track)
    if not judged[LOOK_SEARCH_PX, LOOK_SEARCH_PX]:
        return None
    return float((cov[judged] / np.sqrt(var_i[judged] * var_f[judged])).max())


def _neighbours(boxes: np.ndarray) -> list[np.ndarray]:
    """For each box (N×4), the others near enough to cover some of its look's square, or of a track's look cut at
    another step: within one and a half of its side and one of theirs, middle to middle, either way. The rest are
    left out in one array expression, so that ``_seen`` goes through a face's few, most often none."""
    middle, side = boxes[:, :2] + boxes[:, 2:] / 2, boxes[:, 2:].max(axis=1)
    reach = 1.5 * side[:, None] + side[None, :]
    close = (np.abs(middle[:, None, :] - middle[None, :, :]) < reach[..., None]).all(axis=2)
    np.fill_diagonal(close, False)
    return [boxes[row] for row in close]


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

    def _forget_other_looks(self, scores: np.ndarray, boxes: np.ndarray, frame: np.ndarray,
                            looks: list[Look | None], near: list[np.ndarray]) -> None:
        """Sets to 0 the overlap of each pair whose face changed more than one person's does from one frame to the
        next: someone else at the track's place. Only pairs that overlap enough are compared (a face or two each).

        A look that cannot be told leaves the overlap to decide, whether for want of a face (a covered lens) or
        because others' boxes cover too much of it. The neighbour covering it is then right there, but it is
        compared with this track on its own, and its own track's box overlaps it more. Keeping such a track only
        where no other face's box overlaps it as much as the pairing's IoU threshold was tried: it split both faces
        of a pair covering each other by 60 % or more in nearly every frame (boxes that cover each other by half
        overlap by an IoU of a third), the very fault it was to mend, to guard against a cut to another person
        behind a neighbour, which a camera's frames hardly show."""
        for ti, di in zip(*np.nonzero(scores >= self.iou_threshold)):
            t = self.tracks[ti]
            if t.look is None:
                continue
            change = look_change(t.look, frame, boxes[di], looks[di], near[di])
            if change is not None and change > self.max_look_change:
                scores[ti, di] = 0.0

    def update(self, detections: list[Detection],
               frame: np.ndarray | None = None) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(track id, box) for each detection, in the detections' order: the box is the detection's. With
        ``frame`` (the one the detections were found in), a face that does not look like its track's last frame
        starts a new track; without, overlap alone decides."""
        boxes = np.array([d.box for d in detections], float).reshape(-1, 4)
        scores = iou_matrix(np.array([t.box for t in self.tracks]).reshape(-1, 4), boxes)
        # with the other faces' boxes: the parts of a face they cover are left out of it, in this frame's compare
        # and in the look its track keeps for the next
        near = _neighbours(boxes) if frame is not None else []
        looks = [None if frame is None else look_of(frame, b, near[di]) for di, b in enumerate(boxes)]
        if frame is not None:
            self._forget_other_looks(scores, boxes, frame, looks, near)
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
