"""A Haar cascade as one ONNX graph, so ONNX Runtime can run OpenCV's face detector on a GPU.

On the H100 every model of a frame takes about a millisecond while OpenCV's cascade took 12–21 ms on the host
(docs/performance.md): the detector set the frame rate. The graph evaluates the cascade over every window of
the packed pyramid (``inference.haar_cascade``) in a few *phases*: each phase computes its stages' features
for the windows still alive, by gathering rectangle corners from the integral images, and keeps only the
windows that pass them. Early phases are wide and shallow, late ones narrow and deep, which is the cascade's
own economy in dense form.

Inputs: ``canvas`` (uint8, rows × columns, see ``haar_cascade.pack``) and ``windows`` (int64, the flat index
of each window's top-left integral corner; at least one). Outputs: ``passed`` (int64, which windows passed
every stage, with −1 for placeholders to drop) and ``failed_first`` (bool per window, for OpenCV's scan
shortcut, ``haar_cascade.scan_skips``).

Integers stay integers: rectangle sums in int32, or in int64 for a canvas whose sum could pass 2³¹ (255 × its
area: a 4K frame's pyramid, ``wide_integral``), squared sums in int64, the variance factor in doubles, the stage
sums in doubles; the features are float32 exactly as OpenCV computes them. The int32 graph is kept for the
canvases it holds: its widest phase gathers half the bytes, and a 640×480 frame's cascade took 131 ms on two CPU
cores where the int64 graph's took 157 (medians of 60).

No reduction runs over integers, and none over float32 terms whose order matters: ONNX Runtime's CUDA provider
reduces int32 and int64 tensors by casting them to float32 (``cuda/reduction/reduction_ops.cc``), which
would round integral-image corners of hundreds of millions, and its float reductions need not add in
OpenCV's order. Rectangle corners and feature terms are split and added one by one instead; the reductions
left are over 0/1 values (exact in any type, any order) and over the stage's leaf values in doubles (floats
summed in doubles exactly, whatever the order, at these magnitudes).
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .haar_cascade import Cascade

# the largest canvas whose int32 integral image cannot overflow (255 × pixels < 2³¹); a larger one needs the int64
# graph, and one past the int32 gather indices (2³¹ pixels, a frame of some 10 gigapixels) cannot be run at all
MAX_INT32_CANVAS_PIXELS = (2**31 - 1) // 255
MAX_CANVAS_PIXELS = 2**31 - 1


def default_phases(n_stages: int) -> tuple[int, ...]:
    """Stage boundaries of the phases: narrow at first, where the most windows are alive."""
    return tuple(b for b in (1, 3, 6, 10) if b < n_stages) + (n_stages,)


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, value: np.ndarray, hint: str = "c") -> str:
        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.asarray(value), n))
        return n

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.name(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def last_axis_terms(self, x: str, n: int, hint: str) -> list[str]:
        """The ``n`` slices of ``x`` along its last axis (each keeping that axis, of length 1): one Split."""
        parts = [self.name(hint) for _ in range(n)]
        self.nodes.append(helper.make_node("Split", [x], parts, name=self.name("split"), axis=-1))
        return parts

    def drop_last_axis(self, x: str, hint: str) -> str:
        return self.op("Squeeze", [x, self.const(np.array([-1], np.int64))], hint)


def _corner_offsets(b: _Builder, stride: str, rects: np.ndarray) -> str:
    """Flat offsets of every rectangle corner from a window's top-left: rects (..., 4) → (..., 4 corners)."""
    x, y, w, h = (rects[..., k] for k in range(4))
    dx = np.stack([x, x + w, x, x + w], axis=-1).astype(np.int32)
    dy = np.stack([y, y, y + h, y + h], axis=-1).astype(np.int32)
    return b.op("Add", [b.op("Mul", [b.const(dy, "dy"), stride]), b.const(dx, "dx")], "offsets")


def _rect_sums(b: _Builder, integral: str, windows: str, offsets: str, extra_axes: int) -> str:
    """Σ over each rectangle for each window: gather its four corners, then top-left − top-right − bottom-left
    + bottom-right in the integral's own integer type (never a reduction: see the module's docstring)."""
    idx = b.op("Add", [b.op("Unsqueeze", [windows, b.const(np.arange(1, 1 + extra_axes, dtype=np.int64))]), offsets])
    corners = b.op("Gather", [integral, idx], "corners")
    tl, tr, bl, br = b.last_axis_terms(corners, 4, "corner")
    return b.drop_last_axis(b.op("Add", [b.op("Sub", [b.op("Sub", [tl, tr]), bl]), br]), "sums")


def _phase(b: _Builder, cascade: Cascade, stages: range, integral: str, stride: str, windows: str, norm: str
           ) -> tuple[str, str]:
    """Whether the windows given pass the stages: (all of them: bool [n], each: bool [n, stages])."""
    trees = range(int(cascade.stage_first_tree[stages.start]), int(cascade.stage_first_tree[stages.stop]))
    nodes = np.arange(int(cascade.tree_first_node[trees.start]), int(cascade.tree_first_node[trees.stop]))
    feats = cascade.node_feature[nodes]
    offsets = _corner_offsets(b, stride, cascade.rects[feats])                          # nodes × 3 × 4
    sums = _rect_sums(b, integral, windows, offsets, 3)                       # n × nodes × 3 (the integral's type)
    weighted = b.op("Mul", [b.op("Cast", [sums], to=TensorProto.FLOAT), b.const(cascade.weights[feats], "w")])
    # OpenCV's order, w₀s₀ + w₁s₁, then + w₂s₂ (zero for a two-rectangle feature, which adds nothing)
    first, second, third = b.last_axis_terms(weighted, 3, "term")
    raw = b.drop_last_axis(b.op("Add", [b.op("Add", [first, second]), third]), "feature")
    value = b.op("Mul", [raw, b.op("Unsqueeze", [norm, b.const(np.array([1], np.int64))])])
    left = b.op("Cast", [b.op("Less", [value, b.const(cascade.node_threshold[nodes], "thr")])], to=TensorProto.FLOAT)
    # column k: went left at node k; column nodes + k: went right
    either = b.op("Concat", [left, b.op("Sub", [b.const(np.float32(1)), left])], axis=1)

    # every leaf as the product of its path's decisions (a short path padded with a repeat of its first step:
    # x·x = x for 0/1), then each stage's leaves, padded with zero-weighted repeats, summed in doubles
    first_node = int(nodes[0])
    paths, leaf_ids = [], []
    for t in trees:
        for leaf, path in cascade.leaf_paths(t):
            leaf_ids.append(leaf)
            paths.append([(n - first_node) + (0 if went_left else len(nodes)) for n, went_left in path])
    depth = max(len(p) for p in paths)
    path_idx = np.array([p + [p[0]] * (depth - len(p)) for p in paths], np.int64)
    on_path = b.op("ReduceProd", [b.op("Gather", [either, b.const(path_idx, "paths")], axis=1)], axes=[2], keepdims=0)
    leaf_values = cascade.leaves[np.array(leaf_ids)].astype(np.float64)
    valued = b.op("Mul", [b.op("Cast", [on_path], to=TensorProto.DOUBLE), b.const(leaf_values, "leaves")])
    position = {leaf: i for i, leaf in enumerate(leaf_ids)}
    per_stage = []
    for s in stages:
        ids = range(int(cascade.tree_first_leaf[cascade.stage_first_tree[s]]),
                    int(cascade.tree_first_leaf[cascade.stage_first_tree[s + 1]]))
        per_stage.append([position[i] for i in ids])
    width = max(len(p) for p in per_stage)
    stage_idx = np.array([p + [p[0]] * (width - len(p)) for p in per_stage], np.int64)
    stage_mask = np.array([[1.0] * len(p) + [0.0] * (width - len(p)) for p in per_stage], np.float64)
    gathered = b.op("Mul", [b.op("Gather", [valued, b.const(stage_idx, "stage_leaves")], axis=1),
                            b.const(stage_mask, "stage_mask")])
    stage_sum = b.op("ReduceSum", [gathered, b.const(np.array([-1], np.int64))], "stage_sum", keepdims=0)
    ok = b.op("Not", [b.op("Less", [stage_sum, b.const(cascade.stage_threshold[list(stages)].astype(np.float64), "sthr")])])
    all_ok = b.op("Cast", [b.op("ReduceMin", [b.op("Cast", [ok], to=TensorProto.FLOAT)], axes=[1], keepdims=0)],
                  to=TensorProto.BOOL)
    return all_ok, ok


def leaf_sum_bits(cascade: Cascade) -> int:
    """Bits a double needs to hold any sum of the cascade's (float32) leaf values exactly: from the lowest bit
    set in any leaf to the magnitude of all of them together. Up to 53, a stage's sum is the same in any order,
    so a GPU's reduction gives OpenCV's sequential sum (alt2 41, alt 45, default 50)."""
    leaves = cascade.leaves.astype(np.float32)
    leaves = leaves[leaves != 0].astype(np.float64)
    if len(leaves) == 0:
        return 0
    fraction, exponent = np.frexp(np.abs(leaves))
    mantissa = (fraction * 2**24).astype(np.int64)  # a float32's 24 significant bits, as an integer
    lowest = int(np.min(np.log2(mantissa & -mantissa).astype(np.int64) + exponent - 24))
    return int(np.floor(np.log2(np.abs(leaves).sum()))) + 1 - lowest  # bit positions, highest to lowest


def cascade_model(cascade: Cascade, phases: tuple[int, ...] | None = None, wide_integral: bool = False) -> bytes:
    """The serialised ONNX model of ``cascade`` (see the module's docstring for its inputs and outputs); its integral
    image is int64 with ``wide_integral``, for a canvas of more than ``MAX_INT32_CANVAS_PIXELS``, else int32."""
    bits = leaf_sum_bits(cascade)
    if bits > 53:
        raise ValueError(f"the cascade's leaf values span {bits} bits: their sums in doubles would "
                         "depend on the order of addition, and a GPU's order is not OpenCV's")
    phases = phases or default_phases(cascade.n_stages)
    if list(phases) != sorted(set(phases)) or phases[0] < 1 or phases[-1] != cascade.n_stages:
        raise ValueError(f"phases must rise from ≥ 1 to the cascade's {cascade.n_stages} stages, got {phases}")
    b = _Builder()
    # indices in int32 (half the memory of int64 in the widest phase): a canvas is far below 2³¹ pixels
    stride = b.op("Cast", [b.op("Gather", [b.op("Shape", ["canvas"]), b.const(np.array(1, np.int64))])],
                  "stride", to=TensorProto.INT32)
    flat = b.const(np.array([-1], np.int64))
    as64 = b.op("Cast", ["canvas"], to=TensorProto.INT64)
    as_integral = as64 if wide_integral else b.op("Cast", ["canvas"], to=TensorProto.INT32)
    zero, one = b.const(np.array(0, np.int64)), b.const(np.array(1, np.int64))
    integral = b.op("Reshape", [b.op("CumSum", [b.op("CumSum", [as_integral, zero]), one]), flat], "integral")
    squares = b.op("Reshape", [b.op("CumSum", [b.op("CumSum", [b.op("Mul", [as64, as64]), zero]), one]), flat], "squares")

    # OpenCV's variance factor over the window's inner area, in doubles as it computes it
    ww, wh = cascade.window
    inner = np.array([1, 1, ww - 2, wh - 2])
    area = float((ww - 2) * (wh - 2))
    norm_offsets = _corner_offsets(b, stride, inner)
    windows = b.op("Cast", ["windows"], "windows32", to=TensorProto.INT32)
    total = b.op("Cast", [_rect_sums(b, integral, windows, norm_offsets, 1)], to=TensorProto.DOUBLE)
    total_sq = b.op("Cast", [_rect_sums(b, squares, windows, norm_offsets, 1)], to=TensorProto.DOUBLE)
    nf = b.op("Sub", [b.op("Mul", [b.const(np.float64(area)), total_sq]), b.op("Mul", [total, total])])
    positive = b.op("Greater", [nf, b.const(np.float64(0))])
    safe = b.op("Where", [positive, nf, b.const(np.float64(1))])
    norm = b.op("Cast", [b.op("Div", [b.const(np.float64(1)), b.op("Sqrt", [safe])])], to=TensorProto.FLOAT, )
    contrast = b.op("Less", [b.op("Mul", [b.const(np.float64(area)), b.op("Cast", [norm], to=TensorProto.DOUBLE)]),
                             b.const(np.float64(0.1))])
    valid = b.op("And", [positive, contrast])

    # ONNX Runtime's reductions mishandle empty tensors, so a phase never gets none: one placeholder window (the
    # first, with order −1) rides along from phase to phase, and the caller drops the −1s from ``passed``
    first = [b.const(np.array([0], np.int64)), b.const(np.array([1], np.int64))]
    spare_window, spare_norm = b.op("Slice", [windows, *first]), b.op("Slice", [norm, *first])
    spare_order = b.const(np.array([-1], np.int64), "placeholder")
    order, start = None, 0
    failed_first = None
    for stop in phases:
        passed, each = _phase(b, cascade, range(start, stop), integral, stride, windows, norm)
        if failed_first is None:
            passed = b.op("And", [passed, valid])
            first_ok = b.op("Squeeze", [b.op("Slice", [each, *first, b.const(np.array([1], np.int64))]),
                                        b.const(np.array([1], np.int64))])
            failed_first = b.op("And", [valid, b.op("Not", [first_ok])], "failed")
        keep = b.op("Reshape", [b.op("NonZero", [passed]), flat], "keep")
        order = keep if order is None else b.op("Gather", [order, keep], "alive_order")
        if stop < phases[-1]:
            windows = b.op("Concat", [b.op("Gather", [windows, keep]), spare_window], "alive", axis=0)
            norm = b.op("Concat", [b.op("Gather", [norm, keep]), spare_norm], "alive_norm", axis=0)
            order = b.op("Concat", [order, spare_order], axis=0)
        start = stop
    b.nodes.append(helper.make_node("Identity", [order], ["passed"]))
    b.nodes.append(helper.make_node("Identity", [failed_first], ["failed_first"]))
    graph = helper.make_graph(
        b.nodes, "haar_cascade",
        [helper.make_tensor_value_info("canvas", TensorProto.UINT8, ["rows", "columns"]),
         helper.make_tensor_value_info("windows", TensorProto.INT64, ["n"])],
        [helper.make_tensor_value_info("passed", TensorProto.INT64, ["m"]),
         helper.make_tensor_value_info("failed_first", TensorProto.BOOL, ["n"])],
        initializer=b.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    return model.SerializeToString()
