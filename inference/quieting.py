"""A process-wide log level (OpenCV's, a library's logger) quieted while any thread needs it quiet.

The level is the process's, and threads quiet it at once (the app's capture, its detection, a source opened):
each had saved the level it found and put it back, so the one that left last could restore "quiet" for the rest
of the process. Here the level the first thread found is put back when the last one leaves."""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import cv2


class QuietWhileHeld:
    """``with quiet():`` quiets the level ``get``/``put`` read and set to ``quiet_level``, for as long as any thread
    is inside such a block."""

    def __init__(self, get: Callable[[], int], put: Callable[[int], object], quiet_level: int) -> None:
        self._get, self._put, self._quiet_level = get, put, quiet_level
        self._lock = threading.Lock()
        self._holders = 0
        self._level: int | None = None

    @contextmanager
    def __call__(self) -> Iterator[None]:
        with self._lock:
            if self._holders == 0:
                self._level = self._get()
                self._put(self._quiet_level)
            self._holders += 1
        try:
            yield
        finally:
            with self._lock:
                self._holders -= 1
                if self._holders == 0:
                    self._put(self._level)


# A missing camera, a damaged frame, an unreadable thumbnail are answers the commands report themselves, naming the
# file, not errors for OpenCV to print; one object for the process, as the level it quiets is the process's.
quiet_opencv = QuietWhileHeld(cv2.utils.logging.getLogLevel, cv2.utils.logging.setLogLevel,
                              cv2.utils.logging.LOG_LEVEL_SILENT)
