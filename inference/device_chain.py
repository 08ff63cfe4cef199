"""Filter → classifiers without a trip through host memory (ONNX Runtime I/O binding).

On a GPU the filter's output stays on the device: a small resize graph (built
here, run by the same provider) brings it to each classifier's input size,
and the classifiers read it there. Only what the rest of the pipeline needs
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
from .models import Classifier, Filter, explained_failures
from .runtime import RuntimeConfig, create_session, device_of

def resize_weights(src: int, dst: int) -> np.ndarray:
    """The src×dst matrix W with row·W = OpenCV's 1-D resize of a row (area shrinking, linear growing).

    Read off OpenCV itself (resizing an identity image) rather than re-derived, so the device path
    resamples exactly as ``images.resize_batch`` does on the host, up to uint8 rounding.
    """
    interp = cv2.INTER_AREA if src > dst else cv2.INTER_LINEAR
    return cv2.resize(np.eye(src, dtype=np.float32), (dst, src), interpolation=interp)


def resize_model(src: int, dst: int) -> bytes:
    """An ONNX graph: N×src×src×3 uint8 → N×dst×dst×3 uint8, two matrix products (rows, then columns)."""
    w = resize_weights(src, dst)
    nodes = [
        helper.make_node("Cast", ["image"], ["f"], to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["f"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("MatMul", ["nchw", "w_cols"], ["cols"]),  # N×3×src×dst
        helper.make_node("MatMul", ["w_rows", "cols"], ["both"]),  # N×3×dst×dst
        helper.make_node("Round", ["both"], ["rounded"]),
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
                     numpy_helper.from_array(np.array(255, np.float32), "hi")],
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

    def _on_device(self, session: ort.InferenceSession, feeds: dict[str, ort.OrtValue], output: str) -> ort.OrtValue:
        binding = session.io_binding()
        for name, value in feeds.items():
            binding.bind_ortvalue_input(name, value)
        binding.bind_output(output, self.device, self.device_id)
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0]

    def run(self, faces: np.ndarray, on_filtered: Callable[[np.ndarray], None] | None = None,
            condition: np.ndarray | None = None) -> ChainOutput:
        """faces: N×F×F×3 RGB uint8 at the filter's size; ``condition``: a conditional filter's N×K rows (default:
        its first condition). ``on_filtered`` gets the filtered faces on the host as soon as they are back, before
        the classifiers run on them (so work on them can overlap those runs)."""
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
        out = ChainOutput(filtered.numpy()[:n])  # the one copy back of the faces: skin tone and display need it
        self.filter.run_ms += (time.perf_counter() - t) * 1000  # as OnnxModel._run counts it, copies included
        if on_filtered is not None:
            on_filtered(out.filtered)
        for model in self.classifiers:
            t = time.perf_counter()
            with explained_failures(model, n):
                x = filtered
                if model.size[0] != size:
                    x = self._on_device(self._resizer(size, model.size[0]), {"image": filtered}, "resized")
                session = model.session_for(n)[0]
                binding = session.io_binding()
                binding.bind_ortvalue_input(model.image_name, x)
                binding.bind_output("probs")  # small results come back to the host
                binding.bind_output(model.card.cam["output"])  # type: ignore[index]
                session.run_with_iobinding(binding)
                probs, cams = binding.copy_outputs_to_cpu()
            model.run_ms += (time.perf_counter() - t) * 1000
            out.predictions[model.name] = (probs[:n], cams[:n])
        return out
