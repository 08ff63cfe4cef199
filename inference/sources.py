"""Frame sources behind one interface: webcam index, video file, image folder (slideshow), single image.

A source yields ``Frame``s. Reading never raises for a bad frame: an
unreadable image in a folder is reported through ``Frame.warning`` and
skipped, and a camera that stops delivering reports ``lost`` so the caller
can retry with ``reopen()``.
"""
from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from .datasets.folder import list_images
from .errors import BiasMirrorError
from .faces import Detected
from .images import read_image

log = logging.getLogger(__name__)
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@contextmanager
def quiet_opencv() -> Iterator[None]:
    """A missing camera is an answer we report ourselves, not an error for OpenCV to print."""
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_SILENT)
    try:
        yield
    finally:
        cv2.utils.logging.setLogLevel(level)


@dataclass(frozen=True)
class Frame:
    image: np.ndarray | None  # BGR (any depth/channels; the pipeline normalises), None with a warning
    index: int
    timestamp: float
    name: str
    warning: str | None = None
    detected: Detected | None = None  # its faces, when found ahead of its analysis (gui.workers.DetectThread)


class Source:
    name: str = ""
    live: bool = False  # a camera: frames come at their own pace and can be lost

    def read(self) -> Frame | None:
        """The next frame, or None at the end."""
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __iter__(self) -> Iterator[Frame]:
        while (f := self.read()) is not None:
            yield f


class CameraSource(Source):
    live = True

    def __init__(self, index: int, width: int = 640, height: int = 480):
        self.index, self.size = index, (width, height)
        self.name = f"camera {index}"
        self._cap: cv2.VideoCapture | None = None
        self._n = 0
        self.lost = False
        if not self.reopen():
            raise BiasMirrorError(f"no camera could be opened at index {index}; check it is connected and not in use, "
                                  "or open a video file or image folder instead", self.name)

    def reopen(self) -> bool:
        if self._cap is not None:
            self._cap.release()
        with quiet_opencv():
            cap = cv2.VideoCapture(self.index)
        if not cap.isOpened():
            self._cap = None
            return False
        cap.set(cv2.CAP_PROP_FRAME_WIDTH, self.size[0])
        cap.set(cv2.CAP_PROP_FRAME_HEIGHT, self.size[1])
        self._cap, self.lost = cap, False
        return True

    def read(self) -> Frame | None:
        if self._cap is None:
            self.lost = True
            return Frame(None, self._n, time.monotonic(), self.name, "the camera is not available")
        ok, img = self._cap.read()
        if not ok or img is None:
            self.lost = True
            return Frame(None, self._n, time.monotonic(), self.name, "the camera stopped delivering frames")
        self._n += 1
        return Frame(img, self._n - 1, time.monotonic(), self.name)

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class VideoSource(Source):
    def __init__(self, path: Path):
        self.path, self.name = path, path.name
        self._cap = cv2.VideoCapture(str(path))
        if not self._cap.isOpened():
            raise BiasMirrorError("OpenCV cannot open this video (missing, corrupt or an unsupported codec)", path)
        self.fps = self._cap.get(cv2.CAP_PROP_FPS) or 0.0
        self._n = 0

    def read(self) -> Frame | None:
        ok, img = self._cap.read()
        if not ok:
            return None
        self._n += 1
        return Frame(img, self._n - 1, time.monotonic(), f"{self.name}#{self._n - 1}")

    def close(self) -> None:
        self._cap.release()


class ImageListSource(Source):
    """A folder (or one image) shown as a slideshow; ``loop`` repeats it."""

    def __init__(self, paths: list[Path], name: str, loop: bool = False):
        if not paths:
            raise BiasMirrorError("no images found (.jpg, .png, ...)", name)
        self.paths, self.name, self.loop = paths, name, loop
        self._i = 0

    def read(self) -> Frame | None:
        if self._i >= len(self.paths):
            if not self.loop:
                return None
            self._i = 0
        p = self.paths[self._i]
        self._i += 1
        img = read_image(p, cv2.IMREAD_UNCHANGED)
        if img is None:
            return Frame(None, self._i - 1, time.monotonic(), p.name,
                         f"{p}: cannot be read as an image (corrupt, truncated or another format); skipped")
        return Frame(img, self._i - 1, time.monotonic(), p.name)


def open_source(spec: str | int, loop: bool = False) -> Source:
    """``0`` (camera index), a video file, an image folder or a single image."""
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        return CameraSource(int(spec))
    path = Path(spec).expanduser()
    if path.is_dir():
        return ImageListSource(list_images(path), str(path), loop)
    if not path.exists():
        raise BiasMirrorError("the source does not exist (give a camera index, a video file, an image folder or an image)", path)
    if path.suffix.lower() in VIDEO_EXTENSIONS:
        return VideoSource(path)
    # Refused here rather than skipped as a bad frame: a lone file that is neither (a model, a stray download) would
    # otherwise give a run with nothing in it that still succeeds, and `run` would have emptied its CSV for it.
    if read_image(path, cv2.IMREAD_UNCHANGED) is None:
        if _has_a_video_frame(path):  # a video under an extension we do not list
            return VideoSource(path)
        raise BiasMirrorError("cannot be read as an image or a video (corrupt, truncated or another kind of file)", path)
    return ImageListSource([path], str(path), loop)


def _has_a_video_frame(path: Path) -> bool:
    with quiet_opencv():
        cap = cv2.VideoCapture(str(path))
        try:
            return cap.isOpened() and cap.read()[0]
        finally:
            cap.release()


def list_cameras(max_index: int = 5) -> list[int]:
    """Indices OpenCV can open (probing is slow on some systems; keep max_index small)."""
    found = []
    with quiet_opencv():
        for i in range(max_index):
            cap = cv2.VideoCapture(i)
            if cap.isOpened():
                found.append(i)
            cap.release()
    return found
