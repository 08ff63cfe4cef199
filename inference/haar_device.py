"""OpenCV's Haar cascade run by ONNX Runtime, on the provider the models use (the GPU, where there is one).

Same framing as ``faces.HaarDetector`` (downscale, pad, smallest face), same pyramid, windows, arithmetic and
grouping as OpenCV (``haar_cascade``), so the same faces: ``bench detect`` counts the frames where the two
agree box for box. Only the stages run elsewhere (``haar_graph``). On a CPU OpenCV's own loop, which stops at a
window's first failed stage, is many times faster than this dense form: the point is a GPU, where the cascade
no longer waits for a host core.

Per frame size the pyramid's layout and window list are worked out once; the window list is kept on the
device, so a frame sends only its packed pyramid (a few hundred kB) and gets back the windows that passed.
A frame whose packed pyramid could sum past an int32 (from 4K up) runs a second graph with an int64 integral
image, made when the first such frame comes: the int32 one had refused those frames, and stays for the rest.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import Counter

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from .errors import BiasMirrorError
from .faces import DEFAULT_CASCADE, Detection, HaarDetector
from .haar_cascade import Pyramid, candidates, group_and_clip, pack, pyramid, read_cascade, scan_skips
from .haar_graph import MAX_CANVAS_PIXELS, MAX_INT32_CANVAS_PIXELS, cascade_model
from .runtime import CPU, RuntimeConfig, create_session, device_of

log = logging.getLogger(__name__)


class HaarOnnxDetector:
    def __init__(self, cascade: str = DEFAULT_CASCADE, runtime: RuntimeConfig = RuntimeConfig(),
                 phases: tuple[int, ...] | None = None, **framing):
        self.framing = HaarDetector(cascade, **framing)
        self.cascade = read_cascade(self.framing.path)
        self.phases, self.runtime = phases, runtime
        self.model = cascade_model(self.cascade, phases)
        self.session_info = create_session(self.model, runtime)
        self._wide_session: ort.InferenceSession | None = None  # the int64-integral graph, for large canvases
        self.provider = self.session_info.provider
        self.name = f"{self.framing.name}-ort"
        if self.provider == CPU:
            log.warning("the ONNX Haar cascade runs on the CPU here, where OpenCV's own (--haar-runtime opencv) finds "
                        "the same faces some 30 times faster; it is meant for a GPU")
        self._device = device_of(self.provider)
        self._layouts: dict[tuple[int, int, int], tuple[Pyramid, ort.OrtValue]] = {}
        self._lock = threading.Lock()

    def _layout(self, size: tuple[int, int], min_side: int) -> tuple[Pyramid, ort.OrtValue]:
        key = (*size, min_side)
        with self._lock:
            found = self._layouts.get(key)
            if found is None:
                pyr = pyramid(size, self.cascade.window, self.framing.scale_factor, (min_side, min_side))
                if pyr.canvas_shape[0] * pyr.canvas_shape[1] > MAX_CANVAS_PIXELS:
                    raise BiasMirrorError(f"a {size[0]}×{size[1]} image is too large for the ONNX Haar cascade "
                                          f"(its pyramid has more pixels than the graph's int32 indices reach)")
                windows = ort.OrtValue.ortvalue_from_numpy(pyr.window_index, self._device, 0)
                found = self._layouts[key] = (pyr, windows)
        return found

    def _session_for(self, pyr: Pyramid, canvas: np.ndarray) -> ort.InferenceSession:
        """The graph whose integral image holds this canvas's sums: the int32 one where they stay under 2³¹ (its
        largest value is the canvas's sum, every pixel being at least 0), the int64 one (made on first need) beyond.
        Judged by the pixel count alone (all 255), every 4K frame had taken the int64 graph, at twice the memory
        and up to 2.6 times the time, though its sum is under half the bound."""
        if pyr.canvas_shape[0] * pyr.canvas_shape[1] <= MAX_INT32_CANVAS_PIXELS or \
                int(canvas.sum(dtype=np.int64)) < 2**31:
            return self.session_info.session
        with self._lock:
            if self._wide_session is None:
                wide = cascade_model(self.cascade, self.phases, wide_integral=True)
                self._wide_session = create_session(wide, self.runtime, name="the Haar cascade (int64 integral)").session
        return self._wide_session

    def raw_windows(self, gray: np.ndarray, min_side: int) -> np.ndarray:
        """Every window that passes the cascade (x, y, w, h in ``gray``), as ``detectMultiScale`` with
        ``minNeighbors=0`` lists them."""
        pyr, windows = self._layout((gray.shape[1], gray.shape[0]), min_side)
        if not pyr.n_windows:
            return np.zeros((0, 4), np.int64)
        canvas = pack(gray, pyr)
        session = self._session_for(pyr, canvas)
        binding = session.io_binding()
        binding.bind_cpu_input("canvas", canvas)
        binding.bind_ortvalue_input("windows", windows)
        binding.bind_output("passed", "cpu")
        binding.bind_output("failed_first", "cpu")
        session.run_with_iobinding(binding)
        passed, failed_first = binding.copy_outputs_to_cpu()
        passed = passed[passed >= 0]
        passed = passed[~scan_skips(pyr, failed_first, passed)]
        return candidates(pyr, passed)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        scan = self.framing.prepare(frame_bgr)
        if scan is None:
            return []
        gray, p, s, min_side = scan
        try:
            windows = self.raw_windows(gray, min_side)
        except (ort_state.RuntimeException, ort_state.Fail, RuntimeError, MemoryError) as exc:
            if not _out_of_memory(exc):
                raise
            # OpenCV's cascade finds the same faces: a frame the graph's memory cannot hold (a 12 MP photo on a
            # 16 GB machine asked for one 5.3 GB buffer) had stopped the run with ONNX Runtime's traceback
            log.warning("a %d×%d frame needs more memory for the ONNX Haar cascade than %s could give: its faces are "
                        "found by OpenCV's cascade, the same faces", frame_bgr.shape[1], frame_bgr.shape[0],
                        self.provider)
            return self.framing.detect(frame_bgr)
        boxes = group_and_clip(windows, (gray.shape[1], gray.shape[0]), self.framing.min_neighbors)
        return self.framing.in_frame(boxes, p, s)

    def placement(self) -> Counter:
        """How many of the graph's kernels each provider ran on one frame (read from ONNX Runtime's profile): a
        kernel the GPU provider lacks runs on the CPU, with copies each way, and this is where that shows."""
        session = self.session_info.session
        so = ort.SessionOptions()
        so.log_severity_level = 3
        so.enable_profiling = True
        with tempfile.TemporaryDirectory() as tmp:
            so.profile_file_prefix = os.path.join(tmp, "haar")
            profiled = ort.InferenceSession(self.model, so, providers=session.get_providers(),
                                            provider_options=[session.get_provider_options()[p]
                                                              for p in session.get_providers()])
            gray = np.full((64, 64), 128, np.uint8)
            pyr = pyramid((64, 64), self.cascade.window, self.framing.scale_factor, (20, 20))
            profiled.run(None, {"canvas": pack(gray, pyr), "windows": pyr.window_index})
            events = json.loads(open(profiled.end_profiling(), encoding="utf-8").read())
        return Counter((e["args"]["provider"], e["args"].get("op_name", "?")) for e in events
                       if e.get("cat") == "Node" and e["name"].endswith("_kernel_time") and "provider" in e.get("args", {}))


def _out_of_memory(exc: BaseException) -> bool:
    """ONNX Runtime's failure to allocate (its arena's "Failed to allocate memory", a bad_alloc), or Python's."""
    text = str(exc).lower()
    return isinstance(exc, MemoryError) or "failed to allocate" in text or "bad_alloc" in text or "out of memory" in text


def placement_line(counts: Counter) -> str:
    """"226 kernels: 210 on CUDAExecutionProvider, 16 on CPUExecutionProvider (Shape 1, NonZero 5, …)"."""
    by_provider = Counter()
    for (provider, _), n in counts.items():
        by_provider[provider] += n
    parts = []
    for provider, n in by_provider.most_common():
        ops = ", ".join(f"{op} {k}" for (p, op), k in sorted(counts.items()) if p == provider)
        parts.append(f"{n} on {provider}" + (f" ({ops})" if provider == CPU and len(by_provider) > 1 else ""))
    return f"{sum(by_provider.values())} kernels: " + ", ".join(parts)
