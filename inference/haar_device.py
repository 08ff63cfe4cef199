"""OpenCV's Haar cascade run by ONNX Runtime, on the provider the models use (the GPU, where there is one).

Same framing as ``faces.HaarDetector`` (downscale, pad, smallest face), same pyramid, windows, arithmetic and
grouping as OpenCV (``haar_cascade``), so the same faces: ``bench detect`` counts the frames where the two
agree box for box. Only the stages run elsewhere (``haar_graph``). On a CPU OpenCV's own loop, which stops at a
window's first failed stage, is many times faster than this dense form: the point is a GPU, where the cascade
no longer waits for a host core.

Per frame size the pyramid's layout and window list are worked out once; the window list is kept on the
device, so a frame sends only its packed pyramid (a few hundred kB) and gets back the windows that passed.
"""
from __future__ import annotations

import threading

import numpy as np
import onnxruntime as ort

from .errors import BiasMirrorError
from .faces import DEFAULT_CASCADE, Detection, HaarDetector
from .haar_cascade import Pyramid, candidates, group_and_clip, pack, pyramid, read_cascade, scan_skips
from .haar_graph import cascade_model
from .runtime import CPU, RuntimeConfig, create_session

# the integral image is int32: a canvas of more pixels than this could overflow it (255 × pixels < 2³¹)
MAX_CANVAS_PIXELS = (2**31 - 1) // 255


class HaarOnnxDetector:
    def __init__(self, cascade: str = DEFAULT_CASCADE, runtime: RuntimeConfig = RuntimeConfig(),
                 phases: tuple[int, ...] | None = None, **framing):
        self.framing = HaarDetector(cascade, **framing)
        self.cascade = read_cascade(self.framing.path)
        self.session_info = create_session(cascade_model(self.cascade, phases), runtime)
        self.provider = self.session_info.provider
        self.name = f"{self.framing.name}-ort"
        self._device = "cpu" if self.provider == CPU else "cuda"
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
                                          f"(its pyramid would overflow an int32 integral image)")
                windows = ort.OrtValue.ortvalue_from_numpy(pyr.window_index, self._device, 0)
                found = self._layouts[key] = (pyr, windows)
        return found

    def raw_windows(self, gray: np.ndarray, min_side: int) -> np.ndarray:
        """Every window that passes the cascade (x, y, w, h in ``gray``), as ``detectMultiScale`` with
        ``minNeighbors=0`` lists them."""
        pyr, windows = self._layout((gray.shape[1], gray.shape[0]), min_side)
        if not pyr.n_windows:
            return np.zeros((0, 4), np.int64)
        binding = self.session_info.session.io_binding()
        binding.bind_cpu_input("canvas", pack(gray, pyr))
        binding.bind_ortvalue_input("windows", windows)
        binding.bind_output("passed", "cpu")
        binding.bind_output("failed_first", "cpu")
        self.session_info.session.run_with_iobinding(binding)
        passed, failed_first = binding.copy_outputs_to_cpu()
        passed = passed[passed >= 0]
        passed = passed[~scan_skips(pyr, failed_first, passed)]
        return candidates(pyr, passed)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        scan = self.framing.prepare(frame_bgr)
        if scan is None:
            return []
        gray, p, s, min_side = scan
        boxes = group_and_clip(self.raw_windows(gray, min_side), (gray.shape[1], gray.shape[0]),
                               self.framing.min_neighbors)
        return self.framing.in_frame(boxes, p, s)
