"""Face detection, cropping with a kept transform, and feathered paste-back.

Crops are framed like the UTKFace aligned crops the default models were
trained on. Measured with the detector as it runs (edge-padded, so boxes as
large as the image can be found) over 1,500 UTKFace training images: the image
side is 0.97× the Haar box (IQR 0.93-1.02) and its centre lies 8% of the box
below the box centre (IQR 7-10%). A crop is therefore 0.97× the box, shifted
down by 8%. The framing matters: the default classifier's accuracy on
detector-framed test faces is 96.0% at this framing, 93.7% at 1.1× and 88.8%
at 1.2× (an earlier calibration measured without padding, which can only find
boxes smaller than the image). ``tests/test_framing.py`` re-measures both.
That calibration used the "default" cascade. The "alt2" cascade's boxes are a
little smaller and higher (median side ratio 0.995, shift 9.4 % on 1,500
training adults, against 0.985 and 8.5 % for "default" measured the same way);
moving the framing by that difference did not change accuracy measurably
(`audit --split test --min-age 18 --detect`: 95.1 / 95.6 / 96.2 % against
94.9 / 96.2 / 96.2 % at this framing, 1,693 faces), so one framing serves all.
"""
from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from .errors import BiasMirrorError
from .haar_cascade import cascade_text, opencv_classifier
from .frame_depth import as_bgr_uint8
from .images import centre_square, opencv_can_name, opencv_path, opening_problem
from .runtime import RuntimeConfig

CROP_SCALE = 0.97
CROP_SHIFT_Y = 0.08


@dataclass(frozen=True)
class Detection:
    box: tuple[int, int, int, int]  # x, y, w, h in frame pixels
    score: float = 1.0


class FaceDetector(Protocol):
    """Safe to call from several threads at once: the app and ``inference.detect_ahead`` find the faces of
    frames ahead on helper threads while the pipeline may detect on its own."""

    name: str  # which detector, as results and caches record it (e.g. "haar-alt2")

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]: ...


@dataclass(frozen=True)
class Detected:
    """A frame's faces as found ahead of its analysis (on another thread), and what finding them took."""
    detections: tuple[Detection, ...]
    ms: float


def detect_faces(detector: FaceDetector, frame: np.ndarray) -> Detected:
    """The faces a detector finds in a frame (any format a source gives), timed; stateless, so it may run
    on another thread than the pipeline's."""
    t = time.perf_counter()
    dets = tuple(detector.detect(as_bgr_uint8(frame)))
    return Detected(dets, (time.perf_counter() - t) * 1000)


def reading_order(found: list[Detection]) -> list[Detection]:
    """Top to bottom, then left to right: OpenCV's detectors list faces in the order its worker threads
    finished them, so the same frame could give its faces (and a run's CSV rows) in another order."""
    return sorted(found, key=lambda d: (d.box[1], d.box[0], d.box[2], d.box[3]))


def _downscale(frame: np.ndarray, width: int) -> tuple[np.ndarray, float]:
    h, w = frame.shape[:2]
    if w <= width:
        return frame, 1.0
    s = width / w
    return cv2.resize(frame, (width, max(1, round(h * s))), interpolation=cv2.INTER_AREA), s


# OpenCV's frontal-face cascades, all shipped in the opencv-python wheel. "alt2" is the default: on 3,000 UTKFace
# adults pasted into 640×480 frames (`main.py bench detect --per-group 600`) it found more faces than "default" in
# every race group, Black faces most of all (94.8 % against 90.2 %), which halved the gap between the best- and
# worst-served group (4.5 points against 8.5), in less time (8.1 against 9.0 ms a frame).
HAAR_CASCADES = {"alt2": "haarcascade_frontalface_alt2.xml", "default": "haarcascade_frontalface_default.xml",
                 "alt": "haarcascade_frontalface_alt.xml"}
DEFAULT_CASCADE = "alt2"


class HaarDetector:
    """One of OpenCV's frontal-face Haar cascades (``HAAR_CASCADES``), shipped inside the opencv-python wheel.

    Frames are downscaled to ``detect_width`` for speed, but never so far that a face ``always_found`` px across
    (in the frame) shrinks below the cascade's window: the downscale alone had set the smallest face found at
    20·width/256 px, 150 px in a 1080p frame and 300 in 4K, and a group photo's faces went unfound without a word.
    A camera's 640×480 frame is scanned at 256 px as before. They are padded (edges
    replicated), because the cascade needs context around a face: by ``pad``
    for small images (at most ``pad_below`` px a side, like an aligned dataset
    crop where the face fills the image), by a thin ``edge_pad`` for camera
    frames, enough for a face at the border and cheap (~13 ms on 2 cores).

    Each thread gets its own cascade: one ``cv2.CascadeClassifier`` shared by four threads returned wrong
    boxes for 171-178 of 180 frames (its scratch buffers are per object). Loading one takes ~10 ms.
    """

    def __init__(self, cascade: str = DEFAULT_CASCADE, min_face: int = 48, detect_width: int = 256, pad: float = 0.25,
                 pad_below: int = 320, edge_pad: float = 0.08, scale_factor: float = 1.1, min_neighbors: int = 5,
                 always_found: int = 64):
        if cascade not in HAAR_CASCADES:
            raise BiasMirrorError(f"no Haar cascade named {cascade!r}; choose one of {', '.join(HAAR_CASCADES)}")
        if not hasattr(cv2, "CascadeClassifier"):  # OpenCV 5 moved the cascade out of the main module
            raise BiasMirrorError(f"OpenCV {cv2.__version__} has no Haar cascade detector (5.x dropped it): "
                                  "install opencv-python<5, or give a YuNet model (--yunet)", Path(cv2.__file__ or "cv2"))
        self.name = f"haar-{cascade}"
        path = Path(cv2.data.haarcascades) / HAAR_CASCADES[cascade]
        if not path.is_file():
            raise BiasMirrorError("OpenCV's Haar cascade is missing (opencv-python 5.x ships none; install opencv-python<5)", path)
        # loaded from its text, not by name: OpenCV cannot open a path beyond ASCII on Windows (C:\Users\José\…)
        self.path, self._xml = path, cascade_text(path)
        loaded = opencv_classifier(self._xml, path)
        self._local = threading.local()
        self._local.cascade = loaded
        self.min_face, self.detect_width, self.always_found = min_face, detect_width, always_found
        self.window = max(loaded.getOriginalWindowSize())  # the cascade's smallest face, in the pixels it scans
        self.pad, self.pad_below, self.edge_pad = pad, pad_below, edge_pad
        self.scale_factor, self.min_neighbors = scale_factor, min_neighbors

    def _cascade(self) -> cv2.CascadeClassifier:
        cascade = getattr(self._local, "cascade", None)
        if cascade is None:
            cascade = self._local.cascade = opencv_classifier(self._xml, self.path)
        return cascade

    def prepare(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, int, float, int] | None:
        """What the cascade scans: the grey, downscaled, padded frame, with the padding, the scale and the
        smallest window side; None when the frame is too small to hold one."""
        width = max(self.detect_width, math.ceil(frame_bgr.shape[1] * self.window / self.always_found))
        small, s = _downscale(frame_bgr, width)
        gray = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        small_image = max(frame_bgr.shape[:2]) <= self.pad_below
        p = int(round((self.pad if small_image else self.edge_pad) * max(gray.shape)))
        min_face = min(self.min_face, max(frame_bgr.shape[:2]) // 4) if small_image else self.min_face
        gray = cv2.copyMakeBorder(gray, p, p, p, p, cv2.BORDER_REPLICATE)
        min_side = max(8, int(min_face * s))
        return None if min(gray.shape) < min_side else (gray, p, s, min_side)

    @staticmethod
    def in_frame(boxes, p: int, s: float) -> list[Detection]:
        return reading_order([Detection((int((x - p) / s), int((y - p) / s), int(w / s), int(h / s)))
                              for x, y, w, h in (boxes if len(boxes) else [])])

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        scan = self.prepare(frame_bgr)
        if scan is None:
            return []
        gray, p, s, min_side = scan
        boxes = self._cascade().detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(min_side, min_side))
        return self.in_frame(boxes, p, s)


def _yunet_from_bytes() -> bool:
    """Whether this OpenCV creates YuNet from a model's bytes (an overload of FaceDetectorYN.create that earlier 4.x
    lack): where it cannot, a name it cannot be given is refused, naming the problem (opencv_path)."""
    create = getattr(getattr(cv2, "FaceDetectorYN", None), "create", None)
    return create is not None and "bufferModel" in (create.__doc__ or "")


YUNET_FROM_BYTES = _yunet_from_bytes()


class YuNetDetector:
    """OpenCV's YuNet (``cv2.FaceDetectorYN``) from a model file the user gives; never downloaded.

    One network per thread, like the Haar cascade: ``setInputSize`` then ``detect`` on a shared one would
    let another thread's frame size slip in between."""

    def __init__(self, model_path: str | Path, score_threshold: float = 0.7, detect_width: int = 640):
        model_path = Path(model_path)
        if not model_path.exists():
            raise BiasMirrorError("YuNet model file not found (give the path to face_detection_yunet_*.onnx)", model_path)
        self.model_path, self.score_threshold = model_path, score_threshold
        self.name = f"yunet ({model_path.name})"
        self._local = threading.local()
        if model_path.is_dir():
            raise BiasMirrorError("is a folder; give the YuNet model file (face_detection_yunet_*.onnx)", model_path)
        try:
            # Any ONNX file loads; only running it shows whether it is YuNet (another model fails on the image
            # inside OpenCV), so one blank frame is tried here rather than in the middle of a session.
            level = cv2.utils.logging.getLogLevel()
            cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)  # its layer dump would bury our message
            try:
                net = self._net()
                net.setInputSize((64, 64))
                net.detect(np.zeros((64, 64, 3), np.uint8))
            finally:
                cv2.utils.logging.setLogLevel(level)
        except cv2.error as exc:
            raise BiasMirrorError("not a YuNet face detector OpenCV can run (give face_detection_yunet_*.onnx); "
                                  f"OpenCV said: {(exc.err or str(exc)).strip()}", model_path) from exc
        self.detect_width = detect_width

    def _net(self) -> cv2.FaceDetectorYN:
        net = getattr(self._local, "net", None)
        if net is None:
            net = self._local.net = self._created()
        return net

    def _created(self) -> cv2.FaceDetectorYN:
        """The network, from the model's name where OpenCV can be given it, else from its bytes: a Latin-1 name
        crashes OpenCV, and on Windows a path beyond ASCII (C:\\Users\\José\\…) opens nothing."""
        if opencv_can_name(self.model_path) or not YUNET_FROM_BYTES:
            return cv2.FaceDetectorYN.create(opencv_path(self.model_path, "this YuNet model"), "", (320, 320),
                                             self.score_threshold)
        try:
            model = np.fromfile(str(self.model_path), np.uint8)
        except OSError as exc:
            raise BiasMirrorError(opening_problem(exc), self.model_path) from exc
        return cv2.FaceDetectorYN.create("onnx", model, np.empty(0, np.uint8), (320, 320), self.score_threshold)

    def detect(self, frame_bgr: np.ndarray) -> list[Detection]:
        small, s = _downscale(frame_bgr, self.detect_width)
        net = self._net()
        net.setInputSize((small.shape[1], small.shape[0]))
        _, faces = net.detect(small)
        if faces is None:
            return []
        return reading_order([Detection(tuple(int(v / s) for v in f[:4]), float(f[-1])) for f in faces])  # type: ignore[arg-type]


HAAR_RUNTIMES = ("opencv", "onnxruntime")


def make_detector(yunet_model: str | Path | None = None, cascade: str = DEFAULT_CASCADE,
                  haar_runtime: str = "opencv", runtime: RuntimeConfig | None = None) -> FaceDetector:
    """YuNet from a file, or a Haar cascade run by OpenCV or, as the same arrays, by ONNX Runtime on ``runtime``'s
    provider (``inference.haar_device``: the same faces, on the GPU where the models run). An empty ``yunet_model``
    is refused (the commands name their option first): a truth test had quietly run the Haar cascade for it."""
    if yunet_model is not None and str(yunet_model) == "":
        raise BiasMirrorError("the YuNet model path is empty")
    if yunet_model is not None:
        return YuNetDetector(yunet_model)
    if haar_runtime == "onnxruntime":
        from .haar_device import HaarOnnxDetector  # builds an ONNX graph: only when asked for
        return HaarOnnxDetector(cascade, runtime or RuntimeConfig())
    if haar_runtime != "opencv":
        raise BiasMirrorError(f"no Haar runtime named {haar_runtime!r}; choose one of {', '.join(HAAR_RUNTIMES)}")
    return HaarDetector(cascade)


def centre_aligned(sx: float, sy: float, x0: float, y0: float) -> np.ndarray:
    """The 2×3 affine from frame to crop pixels for a crop whose top-left corner is frame point (x0, y0) (a pixel's
    outer corner: pixel X spans X … X + 1), scaled by (sx, sy), with pixel centres aligned as ``cv2.resize`` aligns
    them: c + ½ = s·(X + ½ − x0). Corners aligned instead (c = s·(X − x0)), as crops had been, put every crop pixel
    half a crop pixel up and to the left of its place: 7 frame pixels for a face of 970 px cropped to 64."""
    return np.array([[sx, 0, sx * (0.5 - x0) - 0.5], [0, sy, sy * (0.5 - y0) - 0.5]], np.float64)


def crop_square(frame_rgb: np.ndarray, box: tuple[float, float, float, float], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The face crop (size×size) and the 2×3 affine that maps crop pixels back to the frame.

    The crop is its square of the frame resized as training resizes its aligned faces (``images.resize_batch``:
    area-averaged shrinking, linear enlarging, pixel centres aligned), where the square lies inside the frame:
    within 1 grey level shrunk, 2 enlarged (warpAffine samples at 1/32 pixel, in fixed point); beyond the frame its
    edge is repeated. Cropped half a crop pixel up-left, as it had been, a face's P(female) was 0.009 off its
    square's on average (at most 0.07; 40 faces of 800 px cropped to 112)."""
    x, y, w, h = box
    side = max(w, h) * CROP_SCALE
    cx, cy = x + w / 2, y + h / 2 + CROP_SHIFT_Y * h
    s = size / side
    to_crop = centre_aligned(s, s, cx - side / 2, cy - side / 2)
    if s < 1:
        crop = _shrunk_by_area(frame_rgb, to_crop, size)
    else:
        crop = cv2.warpAffine(frame_rgb, to_crop, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return crop, cv2.invertAffineTransform(to_crop)


def _shrunk_by_area(frame: np.ndarray, to_crop: np.ndarray, size: int) -> np.ndarray:
    """The crop of a face larger than it: warped at k times the crop's size (a scale of 1 or more, where linear
    sampling loses nothing), then area-averaged k:1. warpAffine has no INTER_AREA (it samples linearly, whatever
    the flag), so a face of a full-resolution photo was point-sampled: P(female) was 0.017 off on average (at most
    0.19) over 30 faces of 784 px against their squares area-resized, which this crop now equals within a grey
    level (with ``to_crop`` centre-aligned, as ``crop_square`` makes it)."""
    k = int(np.ceil(1 / to_crop[0, 0]))
    big_to = to_crop * k
    big_to[:, 2] += (k - 1) / 2  # crop pixel c, the mean of big pixels kc…kc+k−1, is centred where to_crop puts c
    big = cv2.warpAffine(frame, big_to, (size * k, size * k), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return cv2.resize(big, (size, size), interpolation=cv2.INTER_AREA)


def whole_image_crop(frame_rgb: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """For pre-aligned datasets: the image is the face crop, its centred square where it is not square (as training
    reads it, ``images.centre_square``), never squashed."""
    x0, y0, side = centre_square(*frame_rgb.shape[:2])
    square = frame_rgb[y0:y0 + side, x0:x0 + side]
    to_crop = centre_aligned(size / side, size / side, x0, y0)  # cv2.resize's own mapping, which paste_back inverts
    crop = cv2.resize(square, (size, size), interpolation=cv2.INTER_AREA if side > size else cv2.INTER_LINEAR)
    return crop, cv2.invertAffineTransform(to_crop)


def feather_mask(size: int, feather: float = 0.12) -> np.ndarray:
    """An elliptical mask with soft edges, in crop coordinates (float 0..1)."""
    m = np.zeros((size, size), np.float32)
    c = size / 2
    cv2.ellipse(m, (int(c), int(c)), (int(size * 0.40), int(size * 0.46)), 0, 0, 360, 1.0, -1)
    k = max(3, int(size * feather) | 1)
    return cv2.GaussianBlur(m, (k, k), 0)


def blend_into_frame(frame: np.ndarray, layer: np.ndarray, alpha: np.ndarray, crop_to_frame: np.ndarray) -> np.ndarray:
    """Blend a crop-space ``layer`` (with per-pixel ``alpha`` 0..1) into a copy of ``frame``.

    Only the face's bounding box in the frame is warped and blended: a
    full-frame warp per face costs ten times more and dominated painting.
    """
    h, w = frame.shape[:2]
    ch, cw = layer.shape[:2]
    # the crop's pixels cover −½ … size − ½ around their centres (``centre_aligned``): its square in the frame
    left, top, right, bottom = -0.5, -0.5, cw - 0.5, ch - 0.5
    corners = np.array([[left, top, 1], [right, top, 1], [left, bottom, 1], [right, bottom, 1]]) @ crop_to_frame.T
    x0, y0 = np.floor(corners.min(0)).astype(int)
    x1, y1 = np.ceil(corners.max(0)).astype(int)
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    out = frame.copy()
    if x1 <= x0 or y1 <= y0:
        return out
    to_roi = crop_to_frame.copy()
    to_roi[:, 2] -= (x0, y0)
    size = (x1 - x0, y1 - y0)
    warped = cv2.warpAffine(layer, to_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = cv2.warpAffine(alpha.astype(np.float32), to_roi, size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    a = a.reshape(a.shape[0], a.shape[1], *([1] if frame.ndim == 3 else []))
    roi = out[y0:y1, x0:x1].astype(np.float32)
    out[y0:y1, x0:x1] = (roi * (1 - a) + warped.astype(np.float32) * a).round().astype(np.uint8)
    return out


def paste_back(frame: np.ndarray, crop: np.ndarray, crop_to_frame: np.ndarray, feather: float = 0.12) -> np.ndarray:
    """Blend ``crop`` (same channel order as ``frame``) into ``frame`` through a feathered ellipse."""
    return blend_into_frame(frame, crop, feather_mask(crop.shape[0], feather), crop_to_frame)


def face_region_mask(size: int) -> np.ndarray:
    """The face ellipse in crop coordinates: where CAM mass counts as 'on the face'."""
    m = np.zeros((size, size), np.uint8)
    cv2.ellipse(m, (size // 2, int(size * 0.47)), (int(size * 0.34), int(size * 0.44)), 0, 0, 360, 1, -1)
    return m.astype(bool)
