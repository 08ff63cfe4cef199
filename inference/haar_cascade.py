"""OpenCV's Haar cascades as arrays, and the scan OpenCV makes with them, so that the cascade can be
evaluated somewhere else (inside ONNX Runtime, on a GPU: ``inference.haar_graph``) and still find exactly
the windows ``cv2.CascadeClassifier.detectMultiScale`` finds.

Exactness rests on OpenCV's own arithmetic, which this module and the graph repeat step for step
(OpenCV 4.x, ``modules/objdetect/src/cascadedetect.cpp``):

- the image pyramid: factors 1, f, f², … kept while the rounded window fits the image and skipped while it
  is under ``minSize``; each level resized to round(size / factor) with ``cv2.INTER_LINEAR_EXACT`` (OpenCV 4
  resizes its levels bit-exactly; plain linear interpolation moved whole windows across stage thresholds);
- windows at every second pixel on levels below factor 2, every pixel from 2 up, down to the last row of the
  stripes OpenCV splits each level into (``scan_rows``: at some levels it leaves out the last row); and the row
  scan's one shortcut: a window rejected by the first stage makes the scan jump over the next one (``scan_skips``);
- a window's variance factor from the integral images of its inner (w−2)×(h−2) area, in doubles; windows
  with almost no contrast are rejected before any stage;
- every feature is a weighted sum of rectangle sums (integers, weights −1/2/3 in OpenCV's frontal-face
  cascades, so exact in float32) times that factor, in float32; each stage's threshold lowered by 1e-5.

The test of all this is OpenCV itself: ``detectMultiScale`` with ``minNeighbors=0`` returns the raw windows,
and ours must be the same list (``tests/test_haar_graph.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from .errors import BiasMirrorError
from .images import opening_problem

THRESHOLD_EPS = np.float32(1e-5)  # OpenCV lowers every stage threshold by this when it reads a cascade
GROUP_EPS = 0.2                   # and groups its windows with this tolerance


@dataclass(frozen=True)
class Cascade:
    """A boosted Haar cascade of decision trees, in OpenCV's encoding: a node's ``left``/``right`` is another
    node of the same tree (> 0, counted from the tree's root) or a leaf (≤ 0, leaf −value of the tree)."""
    path: str
    window: tuple[int, int]          # width, height
    rects: np.ndarray                # features × 3 × (x, y, w, h), int64; an unused third rect is all zeros
    weights: np.ndarray              # features × 3, float32 (0 for an unused rect)
    node_feature: np.ndarray         # nodes, int64
    node_threshold: np.ndarray       # nodes, float32
    node_left: np.ndarray            # nodes, int64
    node_right: np.ndarray           # nodes, int64
    tree_first_node: np.ndarray      # trees + 1, int64 (tree t has nodes [t], [t+1])
    tree_first_leaf: np.ndarray      # trees + 1, int64 (tree t has leaves [t], [t+1])
    leaves: np.ndarray               # leaves, float32
    stage_first_tree: np.ndarray     # stages + 1, int64 (stage s has trees [s], [s+1])
    stage_threshold: np.ndarray      # stages, float32, already lowered by THRESHOLD_EPS

    @property
    def n_stages(self) -> int:
        return len(self.stage_threshold)

    def leaf_paths(self, tree: int) -> list[tuple[int, list[tuple[int, bool]]]]:
        """Each leaf of a tree (global leaf index) with the path to it: (global node, went left)."""
        out: list[tuple[int, list[tuple[int, bool]]]] = []
        root, first_leaf = int(self.tree_first_node[tree]), int(self.tree_first_leaf[tree])

        def walk(node: int, path: list[tuple[int, bool]]) -> None:
            for went_left, nxt in ((True, self.node_left[root + node]), (False, self.node_right[root + node])):
                step = path + [(root + node, went_left)]
                if nxt > 0:
                    walk(int(nxt), step)
                else:
                    out.append((first_leaf - int(nxt), step))
        walk(0, [])
        return sorted(out)


def _numbers(node: cv2.FileNode) -> list[float]:
    return [node.at(i).real() for i in range(node.size())]


def cascade_text(path: Path) -> str:
    """A cascade file's XML, read by Python: OpenCV's file functions cannot open a path beyond ASCII on Windows
    (``images.opencv_name_problem``), where pip puts OpenCV's own cascades under C:\\Users\\José\\…"""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BiasMirrorError(opening_problem(exc), path) from exc
    except UnicodeDecodeError:
        raise BiasMirrorError("not a cascade OpenCV can read: it is not UTF-8 text", path) from None


def cascade_storage(text: str, path: Path) -> cv2.FileStorage:
    """OpenCV's own reader over a cascade's XML (``cascade_text``), in memory; its top-level node is the cascade.
    Keep the storage while its nodes are used: they point into it."""
    fs = cv2.FileStorage()
    try:  # opened, not constructed, from the text: the constructor's error came out of the binding as a SystemError
        opened = fs.open(text, cv2.FILE_STORAGE_READ | cv2.FILE_STORAGE_MEMORY)
    except cv2.error as exc:
        raise BiasMirrorError("not a cascade OpenCV can read (damaged or cut off?); OpenCV said: "
                              f"{(exc.err or str(exc)).strip()}", path) from exc
    if not opened:
        raise BiasMirrorError("not a cascade OpenCV can read: it holds no XML, YAML or JSON", path)
    return fs


def opencv_classifier(text: str, path: Path) -> cv2.CascadeClassifier:
    """A ``cv2.CascadeClassifier`` of a cascade's XML (``cascade_text``), loaded from memory, not by file name."""
    fs = cascade_storage(text, path)
    classifier = cv2.CascadeClassifier()
    try:
        loaded = classifier.read(fs.getFirstTopLevelNode())
    except cv2.error as exc:
        raise BiasMirrorError(f"OpenCV cannot load this Haar cascade: {(exc.err or str(exc)).strip()}", path) from exc
    if not loaded or classifier.empty():
        raise BiasMirrorError("OpenCV cannot load this Haar cascade (damaged, or not in the format OpenCV's "
                              "traincascade writes)", path)
    return classifier


def read_cascade(path: str | Path) -> Cascade:
    """A cascade in OpenCV's (post-2.4) XML format, read with OpenCV's own file reader."""
    path = Path(path)
    if not path.is_file():
        raise BiasMirrorError("Haar cascade file not found", path)
    fs = cascade_storage(cascade_text(path), path)
    root = fs.getFirstTopLevelNode()
    if root is None or not root.isMap() or root.getNode("stageType").string() != "BOOST" \
            or root.getNode("featureType").string() != "HAAR":
        raise BiasMirrorError("not a boosted Haar cascade in OpenCV's format (stageType BOOST, featureType HAAR)", path)
    try:
        return _read(root, path)
    except (cv2.error, IndexError, ValueError) as exc:
        raise BiasMirrorError(f"a damaged Haar cascade ({type(exc).__name__}: {exc})", path) from exc


def _read(root: cv2.FileNode, path: Path) -> Cascade:
    window = (int(root.getNode("width").real()), int(root.getNode("height").real()))

    rects, weights = [], []
    features = root.getNode("features")
    for i in range(features.size()):
        f = features.at(i)
        tilted = f.getNode("tilted")
        if not tilted.empty() and tilted.real() != 0:
            raise BiasMirrorError("has tilted Haar features, which the array cascade does not evaluate", path)
        rs = f.getNode("rects")
        r = np.zeros((3, 4), np.int64)
        w = np.zeros(3, np.float32)
        for k in range(rs.size()):
            vals = _numbers(rs.at(k))
            r[k], w[k] = vals[:4], vals[4]
        rects.append(r)
        weights.append(w)

    node_feature, node_threshold, node_left, node_right = [], [], [], []
    tree_first_node, tree_first_leaf, leaves, stage_first_tree, stage_threshold = [], [], [], [0], []
    stages = root.getNode("stages")
    for s in range(stages.size()):
        stage = stages.at(s)
        stage_threshold.append(np.float32(stage.getNode("stageThreshold").real()) - THRESHOLD_EPS)
        weak = stage.getNode("weakClassifiers")
        for t in range(weak.size()):
            tree = weak.at(t)
            internal = _numbers(tree.getNode("internalNodes"))
            if len(internal) % 4:
                raise BiasMirrorError("has categorical (LBP) nodes; only Haar cascades are evaluated", path)
            tree_first_node.append(len(node_feature))
            tree_first_leaf.append(len(leaves))
            for k in range(0, len(internal), 4):
                node_left.append(int(internal[k]))
                node_right.append(int(internal[k + 1]))
                node_feature.append(int(internal[k + 2]))
                node_threshold.append(internal[k + 3])
            leaves.extend(_numbers(tree.getNode("leafValues")))
        stage_first_tree.append(len(tree_first_node))
    if not stage_threshold:
        raise BiasMirrorError("has no stages", path)
    tree_first_node.append(len(node_feature))  # where the tree after the last would start: every range ends
    tree_first_leaf.append(len(leaves))
    return Cascade(str(path), window, np.array(rects), np.array(weights), np.array(node_feature, np.int64),
                   np.array(node_threshold, np.float32), np.array(node_left, np.int64), np.array(node_right, np.int64),
                   np.array(tree_first_node, np.int64), np.array(tree_first_leaf, np.int64),
                   np.array(leaves, np.float32), np.array(stage_first_tree, np.int64),
                   np.array(stage_threshold, np.float32))


@dataclass(frozen=True)
class Pyramid:
    """Where each level of an image's pyramid lies in one packed canvas, and every window the scan visits.

    The canvas has a zero first row and column, so its 2-D cumulative sum is the integral image of every level
    at once; a window's index is that of its top-left corner in the flattened canvas."""
    image_size: tuple[int, int]      # width, height of the image scanned
    window: tuple[int, int]
    scales: np.ndarray               # levels, float32 (as OpenCV keeps them)
    sizes: np.ndarray                # levels × (width, height)
    origins: np.ndarray              # levels × (x, y) of each level in the canvas
    canvas_shape: tuple[int, int]    # rows, columns
    window_level: np.ndarray         # windows, int64
    window_x: np.ndarray             # windows, int64 (in the level's pixels)
    window_y: np.ndarray
    window_index: np.ndarray         # windows, int64
    row_first: np.ndarray            # windows, int64: the first window of its scan row
    row_length: np.ndarray           # windows, int64: how many windows its row has

    @property
    def n_windows(self) -> int:
        return len(self.window_index)


def pyramid(image_size: tuple[int, int], window: tuple[int, int], scale_factor: float,
            min_size: tuple[int, int] = (0, 0)) -> Pyramid:
    w, h = image_size
    win_w, win_h = window
    scales: list[np.float32] = []
    factor = 1.0
    while True:
        ww, wh = int(np.rint(win_w * factor)), int(np.rint(win_h * factor))
        if ww > w or wh > h:
            break
        if ww >= min_size[0] and wh >= min_size[1]:
            scales.append(np.float32(factor))
        factor *= scale_factor
    sizes = np.array([(int(np.rint(np.float32(w) / s)), int(np.rint(np.float32(h) / s))) for s in scales],
                     np.int64).reshape(-1, 2)
    # shelf packing, one pixel apart (the zero column/row that starts each level's integral)
    width = int(sizes[0, 0]) + 1 if len(sizes) else 1
    origins, x, y, shelf = [], 1, 1, 0
    for sw, sh in sizes:
        if x + sw > width:
            x, y, shelf = 1, y + shelf + 1, 0
        origins.append((x, y))
        x, shelf = x + int(sw) + 1, max(shelf, int(sh))
    canvas_shape = (y + shelf, width)
    stride = canvas_shape[1]
    # OpenCV's parallel stripes, one per 32 window columns of the first level scanned: they set each level's rows
    stripes = -(-(int(sizes[0, 0]) + 1 - win_w) // 32) if len(sizes) else 1
    levels, xs, ys, firsts, lengths, done = [], [], [], [], [], 0
    for i, (s, (sw, sh)) in enumerate(zip(scales, sizes)):
        step = 1 if s >= 2 else 2
        gx, gy = np.arange(0, sw - win_w + 1, step), scan_rows(int(sh) + 1 - win_h, step, stripes)
        if not len(gx) or not len(gy):
            continue
        yy, xx = np.meshgrid(gy, gx, indexing="ij")
        levels.append(np.full(xx.size, i))
        xs.append(xx.ravel())
        ys.append(yy.ravel())
        firsts.append(np.repeat(done + np.arange(len(gy)) * len(gx), len(gx)))
        lengths.append(np.full(xx.size, len(gx)))
        done += xx.size
    cat = (lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt))
    level, wx, wy = cat(levels, np.int64), cat(xs, np.int64), cat(ys, np.int64)
    origins_a = np.array(origins, np.int64).reshape(-1, 2)
    # integral-image corner (x, y) of a level sits at canvas (origin − 1 + x, origin − 1 + y)
    index = ((origins_a[level, 1] - 1 + wy) * stride + origins_a[level, 0] - 1 + wx) if len(level) else level
    return Pyramid((w, h), window, np.array(scales, np.float32), sizes, origins_a, canvas_shape,
                   level, wx, wy, index.astype(np.int64), cat(firsts, np.int64), cat(lengths, np.int64))


def scan_rows(positions: int, step: int, stripes: int) -> np.ndarray:
    """The window rows OpenCV scans on a level with ``positions`` rows a window fits in (its "working size").

    It splits them into ``stripes`` (one per 32 window columns of the first level, whatever this one's width) of
    (positions // step) / stripes steps each, rounded up, and scans only the rows above stripes × that: where
    stripes divides positions // step and positions is odd at a step of 2 (levels below factor 2), the last row is
    never scanned. The graph had scanned it, and on images of 24-44 px found windows there that OpenCV never
    looks at: a face one pixel larger, or one more."""
    stripe = max((max(positions, 0) // step + stripes - 1) // stripes, 1) * step
    return np.arange(0, min(stripes * stripe, positions), step)


def pack(gray: np.ndarray, pyr: Pyramid) -> np.ndarray:
    """The canvas: every level of ``gray`` (uint8, resized as OpenCV resizes it) in its place."""
    canvas = np.zeros(pyr.canvas_shape, np.uint8)
    for (sw, sh), (ox, oy) in zip(pyr.sizes, pyr.origins):
        level = canvas[oy:oy + sh, ox:ox + sw]
        if (sw, sh) == (gray.shape[1], gray.shape[0]):
            level[...] = gray
        else:
            cv2.resize(gray, (int(sw), int(sh)), dst=level, interpolation=cv2.INTER_LINEAR_EXACT)
    return canvas


def scan_skips(pyr: Pyramid, failed_first: np.ndarray, windows: np.ndarray) -> np.ndarray:
    """Which of ``windows`` OpenCV's row scan never evaluates (bool for each).

    After a window fails the first stage the scan steps over the next one. Inside a row, a run of such
    windows therefore has its first, third, … evaluated, and the window after the run is skipped exactly
    when the run's length is odd; a window that passes or is rejected for low contrast ends a run. Only the
    rows of ``windows`` are looked at (a frame's passing windows lie in a few dozen of its thousands of rows)."""
    if not len(windows):
        return np.zeros(0, bool)
    starts, row_of = np.unique(pyr.row_first[windows], return_inverse=True)
    lengths = pyr.row_length[starts]
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    idx = np.repeat(starts - offsets, lengths) + np.arange(int(lengths.sum()))  # those rows, end to end
    failed, at = failed_first[idx], np.arange(len(idx))
    row_start = np.zeros(len(idx), bool)
    row_start[offsets] = True
    # the last position, at or before each, that ends a run: a window not failing, or the place before a row
    last = np.maximum.accumulate(np.where(~failed, at, np.where(row_start, at - 1, -1)))
    run_to_here = at - last
    before = np.where(row_start, 0, np.concatenate([[0], run_to_here[:-1]]))
    return (before % 2 == 1)[offsets[row_of] + windows - starts[row_of]]


def candidates(pyr: Pyramid, passed: np.ndarray) -> np.ndarray:
    """Image rectangles (x, y, w, h) of the windows that passed every stage, as OpenCV reports them."""
    s = pyr.scales[pyr.window_level[passed]]
    x = np.rint(pyr.window_x[passed].astype(np.float32) * s)
    y = np.rint(pyr.window_y[passed].astype(np.float32) * s)
    w = np.rint(np.float32(pyr.window[0]) * s)
    h = np.rint(np.float32(pyr.window[1]) * s)
    return np.stack([x, y, w, h], axis=1).astype(np.int64).reshape(-1, 4)


def group_and_clip(rects: np.ndarray, image_size: tuple[int, int], min_neighbors: int) -> list[tuple[int, int, int, int]]:
    """OpenCV's grouping of raw windows into faces (its own function), then its clipping to the image."""
    found = rects.tolist()
    if min_neighbors > 0 and found:
        grouped, _ = cv2.groupRectangles(found, min_neighbors, GROUP_EPS)
        found = [list(map(int, r)) for r in grouped]
    out = []
    w, h = image_size
    for x, y, rw, rh in found:
        x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + rw, w), min(y + rh, h)
        if x1 > x0 and y1 > y0:
            out.append((x0, y0, x1 - x0, y1 - y0))
    return out
