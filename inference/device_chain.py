"""Filter → classifiers without a trip through host memory (ONNX Runtime I/O binding).

On a GPU the filter's output stays on the device: small resize graphs (built
here, run by the same provider) bring it to each classifier's input size the
way the host does (to the crop size first, then to the classifier's), and the
classifiers read it there. Only what the rest of the pipeline needs
comes back: the filtered faces once (skin tone and display need them), the
probabilities and the CAMs.

The same code runs on the CPU provider (binding to host memory), which is how
the tests check it against the plain path.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from .batching import pad_batch
from .fixed_binding import bound_run
from .models import Classifier, Filter, OnnxModel, explained_failures, stoppable_run
from .runtime import RuntimeConfig, create_session, device_of

def resize_weights(src: int, dst: int) -> np.ndarray:
    """The src×dst matrix W with row·W = OpenCV's 1-D resize of a row (area shrinking, linear growing).

    Read off OpenCV itself (resizing an identity image) rather than re-derived, so the device path
    resamples exactly as ``images.resize_batch`` does on the host, up to uint8 rounding.
    """
    interp = cv2.INTER_AREA if src > dst else cv2.INTER_LINEAR
    return cv2.resize(np.eye(src, dtype=np.float32), (dst, src), interpolation=interp)


def _whole_factor(src: int, dst: int) -> int:
    """k where src shrinks to dst by a whole factor k (OpenCV then takes its fast area path), else 0."""
    return src // dst if src > dst and src % dst == 0 else 0


def _rounding(src: int, dst: int) -> tuple[np.ndarray, list[onnx.NodeProto], dict[str, np.ndarray]]:
    """The resize weights, and the nodes (with their constants) that take their products ``both`` to
    ``rounded`` as OpenCV rounds this resize on the host.

    A whole-factor shrink is averaged in integers there: by 2 as (a+b+c+d+2)>>2, ties up; by k as the integer
    sum × float(1/k²), ties to even. Weights of 1/k and Round had taken 2×'s ties to even (a 224 px crop for a
    112 px classifier): one pixel in eight a grey level darker than the host's, ΔP(female) up to 0.03 from the
    plain path's. So there the weights are ones (exact integer sums) and the last step is the host's."""
    w, k = resize_weights(src, dst), _whole_factor(src, dst)
    if not k:
        return w, [helper.make_node("Round", ["both"], ["rounded"])], {}
    ones = np.rint(w * k)  # each output the exact integer sum of its k×k block
    if k == 2:
        # (sum + ½) / 4 ends in .125, .375, .625 or .875, never on a tie, so Round gives (sum + 2) >> 2:
        # the graph keeps to operators tests/test_cuda_kernels.py has checked on CUDA (a Floor is not among them)
        nodes = [helper.make_node("Add", ["both", "off_tie"], ["shifted"]),
                 helper.make_node("Mul", ["shifted", "per_area"], ["mean"]),
                 helper.make_node("Round", ["mean"], ["rounded"])]
        return ones, nodes, {"off_tie": np.array(0.5, np.float32), "per_area": np.array(0.25, np.float32)}
    nodes = [helper.make_node("Mul", ["both", "per_area"], ["mean"]), helper.make_node("Round", ["mean"], ["rounded"])]
    return ones, nodes, {"per_area": np.array(1 / (k * k), np.float32)}


def resize_model(src: int, dst: int) -> bytes:
    """An ONNX graph: N×src×src×3 uint8 → N×dst×dst×3 uint8, two matrix products (rows, then columns)."""
    w, rounding, constants = _rounding(src, dst)
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("MatMul", ["nchw", "w_cols"], ["cols"]),  # N×3×src×dst
        helper.make_node("MatMul", ["w_rows", "cols"], ["both"]),  # N×3×dst×dst
        *rounding,
        helper.make_node("Clip", ["rounded", "lo", "hi"], ["clipped"]),
        helper.make_node("Transpose", ["clipped"], ["nhwc"], perm=[0, 2, 3, 1]),
        helper.make_node("Cast", ["nhwc"], ["resized"], to=TensorProto.UINT8),
    ]
    graph = helper.make_graph(
        nodes, f"resize_{src}_to_{dst}",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", src, src, 3])],
        [helper.make_tensor_value_info("resized", TensorProto.UINT8, ["N", dst, dst, 3])],
        initializer=[numpy_helper.from_array(w, "w_cols"), numpy_helper.from_array(np.ascontiguousarray(w.T), "w_rows"),
                     numpy_helper.from_array(np.array(0, np.float32), "lo"),
                     numpy_helper.from_array(np.array(255, np.float32), "hi"),
                     *(numpy_helper.from_array(v, name) for name, v in constants.items())],
    )
    # IR 9 / opset 17: what our exporter writes, readable by every onnxruntime we support
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    onnx.checker.check_model(model)
    return model.SerializeToString()


@dataclass
class ChainOutput:
    filtered: np.ndarray  # N×F×F×3 uint8 at the filter's size, on the host
    predictions: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # name → (probs, cams)


class DeviceChain:
    """Runs a filter and then classifiers on its output, the hand-over kept on one device."""

    def __init__(self, filter: Filter, classifiers: list[Classifier], device_id: int = 0):
        self.filter, self.classifiers = filter, list(classifiers)
        self.device = device_of(filter.info.provider)
        self.device_id = device_id
        self._resizers: dict[tuple[int, int], ort.InferenceSession] = {}

    @staticmethod
    def usable(filter: Filter | None, classifiers: list[Classifier]) -> bool:
        """Only when every model runs on the same kind of device and none replays CUDA graphs."""
        if filter is None or not classifiers:
            return False
        if any(m.info.cuda_graph for m in [filter, *classifiers]):
            return False  # the chain binds buffers of its own each run; a CUDA graph needs them fixed
        devices = {device_of(m.info.provider) for m in [filter, *classifiers]}
        return len(devices) == 1

    def _resizer(self, src: int, dst: int) -> ort.InferenceSession:
        key = (src, dst)
        if key not in self._resizers:
            # Full float32 products: in TF32 (the CUDA provider's default) the resize weights keep 10 bits, enough
            # to move pixels a grey level from the host's resize_batch.
            capture = getattr(self.filter, "runtime", RuntimeConfig()).capture_ort_output  # as its models were made
            self._resizers[key] = create_session(resize_model(src, dst), RuntimeConfig(
                provider=self.device, tf32=False, capture_ort_output=capture)).session
        return self._resizers[key]

    @staticmethod
    def _run(model: OnnxModel, session: ort.InferenceSession, binding: ort.IOBinding) -> None:
        """Runs ``session`` (``model``'s, or a resize of the filter's output) as ``model``'s own runs go: one its
        ``stop_runs`` ends, and on the main thread one Ctrl-C and SIGTERM end. A run given no RunOptions had been out
        of reach of both: closing the app left a looping filter running, and `run` ignored Ctrl-C."""
        with model.registered_run() as options:
            stoppable_run(lambda o: bound_run(session, binding, o), options)

    def _on_device(self, session: ort.InferenceSession, feeds: dict[str, ort.OrtValue], output: str) -> ort.OrtValue:
        """The filter's run, or a resize of its output: run as the filter's, so that stopping it stops them."""
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(output, self.device, self.device_id)
        self._run(self.filter, session, binding)
        return binding.get_outputs()[0]

    def _resampled(self, filtered: ort.OrtValue, size: int, crop_size: int, dst: int,
                   made: dict[int, ort.OrtValue]) -> ort.OrtValue:
        """The filter's output (``size`` px) at ``dst`` px as the host makes it: resized to the crop size (the
        pipeline's filtered crop), and that to ``dst`` (its resize for the classifier). Straight from the filter's
        size to a classifier's had given other pixels than the two steps, and ΔP(female) up to 0.05 apart from
        the plain path's with a classifier not at the crop's size. ``made``: the sizes already made this run,
        each made once; a size that matches is no resize at all, as on the host."""
        if crop_size not in made:
            made[crop_size] = filtered if crop_size == size else self._on_device(
                self._resizer(size, crop_size), {"image": filtered}, "resized")
        if dst not in made:
            made[dst] = self._on_device(self._resizer(crop_size, dst), {"image": made[crop_size]}, "resized")
        return made[dst]

    def run(self, faces: np.ndarray, on_filtered: Callable[[np.ndarray], None] | None = None,
            condition: np.ndarray | None = None, crop_size: int | None = None) -> ChainOutput:
        """faces: N×F×F×3 RGB uint8 at the filter's size; ``condition``: a conditional filter's N×K rows (default:
        its first condition). ``on_filtered`` gets the filtered faces on the host as soon as they are back, before
        the classifiers run on them (so work on them can overlap those runs). ``crop_size``: the size the host
        brings the filtered faces to before each classifier's resize (the pipeline's crops); default the filter's,
        each classifier's input then resized straight from its output."""
        faces = np.ascontiguousarray(faces, np.uint8)
        if len(faces) == 0:
            if on_filtered is not None:
                on_filtered(faces.copy())
            return ChainOutput(faces.copy(), {m.name: m.predict(np.zeros((0, *m.size, 3), np.uint8))
                                              for m in self.classifiers})
        n = len(faces)
        # Padded once here, the whole chain sees one of a few batch shapes (inference.batching).
        session, batch = self.filter.session_for(n)
        padded = pad_batch(faces, batch)
        t = time.perf_counter()
        # the inputs and outputs by the names the cards give (a card's "pixels" input failed mid-run here)
        feeds = {self.filter.image_name: ort.OrtValue.ortvalue_from_numpy(padded, self.device, self.device_id)}
        if self.filter.condition is not None:
            rows = self.filter.condition_rows(None, n) if condition is None else np.asarray(condition, np.float32)
            feeds[self.filter.condition.name] = ort.OrtValue.ortvalue_from_numpy(pad_batch(rows, batch), self.device, self.device_id)
        with explained_failures(self.filter, n):
            filtered = self._on_device(session, feeds, "filtered")
        size = faces.shape[1]
        # the one copy back of the faces (skin tone and display need it), checked as Filter.apply checks its own
        out = ChainOutput(self.filter.checked(filtered.numpy()[:n], n))
        self.filter.run_ms += (time.perf_counter() - t) * 1000  # as OnnxModel._run counts it, copies included
        if on_filtered is not None:
            on_filtered(out.filtered)
        made: dict[int, ort.OrtValue] = {}  # the filtered faces at the crop's and the classifiers' sizes
        for model in self.classifiers:
            t = time.perf_counter()
            with explained_failures(model, n):
                x = self._resampled(filtered, size, crop_size or size, model.size[0], made)
                session = model.session_for(n)[0]
                binding = session.io_binding()
                binding.bind_ortvalue_input(model.image_name, x)
                binding.bind_output("probs")  # small results come back to the host
                binding.bind_output(model.card.cam["output"])  # type: ignore[index]
                self._run(model, session, binding)
                probs, cams = binding.copy_outputs_to_cpu()
            model.run_ms += (time.perf_counter() - t) * 1000
            out.predictions[model.name] = model.checked(probs[:n], cams[:n], n)  # as Classifier.predict checks
        return out
