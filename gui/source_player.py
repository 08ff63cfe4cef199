"""The source playing: opened on a thread of its own, read by its capture thread, stopped without being waited for;
what the window calls it (``source_label``: "camera 0" or the path), and the "no frame could be read" texts for a
source that played nothing.

Sources are opened off the GUI thread (listing a folder of 21,000 files, decoding a 24 MP photo to check it, a camera
slow to answer had held it); of several requests the newest is the one taken up. A capture switched away from is
told to stop and kept until its thread ends, never waited for: a read can take seconds (a camera unplugged, a huge
image), and waiting, then dropping the thread still running, had frozen the window and aborted the app.
"""
from __future__ import annotations

import logging
import threading
import time

from PySide6.QtCore import QObject, QTimer, Signal

from inference.errors import BiasMirrorError
from inference.sources import Frame, Source, camera_index, open_source

from .workers import CaptureThread, Mailbox

log = logging.getLogger(__name__)


def source_label(spec: str | int) -> str:
    """The source as the window names it: "camera 0" for a camera, given as a number (the camera dialog) or as
    its digits (--source 0, which had been named "0"), else the path given."""
    index = camera_index(spec)
    return f"camera {index}" if index is not None else str(spec)


def no_first_frame(name: str) -> str:
    """What is said of a camera that opened but has given no frame at all: another program holding it (a video call)
    lets it open and delivers nothing, and "lost" or "stopped delivering frames" had sent no one to look for that
    program."""
    return (f"{name[:1].upper()}{name[1:]} opened but has given no picture: another program (a video call, for "
            "instance) may be using it. Close that program, then choose \"Try a camera…\" again.")


class _CountingMailbox(Mailbox[Frame]):
    """The capture's mailbox, counting the frames put in it: only a frame that was read is put, so a source that
    ends with none put (a folder of corrupt images) played nothing, though it opened."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0

    def put(self, item: Frame) -> None:
        self.delivered += 1
        super().put(item)


class SourcePlayer(QObject):
    """Opens sources and plays them into ``captured``; ``frames`` (detection → inference) is emptied at a switch.

    The current capture's signals are passed on; those of a capture stopped since are not."""
    # the newest request to open a source is settled: (spec, the Source or None, the exception or None)
    opened = Signal(object, object, object)
    status = Signal(str)
    warning = Signal(str)
    lost_changed = Signal(bool)
    ended = Signal(object, str)  # the current capture, and its end's text
    failed = Signal(object, str)  # the current capture, and why reading it failed
    # from the thread that opened a source: (request number, spec, the Source or None, the exception or None)
    _ready = Signal(int, object, object, object)

    def __init__(self, frames: Mailbox[Frame], parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.captured = _CountingMailbox()  # capture → detection
        self.frames = frames
        self.capture: CaptureThread | None = None
        self.stopping: set[CaptureThread] = set()  # stopped, still in a read: kept until they end (see ``stop``)
        self._spec = ""  # the playing source as given to open_source, as a string: what a timed run's error names
        self._request = 0
        self.opening: str | int | None = None  # what the newest request opens, until it is settled
        self._closed = False  # once closed, a source opened late is closed, not taken up
        self._ready.connect(self._settled)

    # --- opening ----------------------------------------------------------------------------
    def start_opening(self, spec: str | int, loop: bool) -> None:
        """Opens ``spec`` on a thread of its own; ``opened`` says how, unless another was asked for meanwhile."""
        self._request += 1
        request, self.opening = self._request, spec
        what = source_label(spec)

        def work() -> None:
            source, error = None, None
            try:
                source = open_source(spec, loop=loop)
            except Exception as exc:  # noqa: BLE001 — said in the window, as on the GUI thread it had been
                if not isinstance(exc, BiasMirrorError):
                    log.exception("opening %s failed", what)
                error = exc
            try:
                self._ready.emit(request, spec, source, error)
            except RuntimeError:  # the window is gone
                if source is not None:
                    source.close()

        threading.Thread(target=work, name=f"open {what}", daemon=True).start()

    def _settled(self, request: int, spec: str | int, source: Source | None, error: Exception | None) -> None:
        if request != self._request or self._closed:  # another source was asked for meanwhile
            if source is not None:
                threading.Thread(target=source.close, name=f"close {source.name}", daemon=True).start()
            return
        self.opening = None
        self.opened.emit(spec, source, error)

    # --- playing ----------------------------------------------------------------------------
    def play(self, source: Source, spec: str | int, slideshow_fps: float, paused: bool) -> CaptureThread:
        """Starts reading ``source`` (opened from ``spec``); the one playing before must have been stopped."""
        self._spec = str(spec)
        self.captured.delivered = 0  # the old capture, stopped, puts nothing more
        cap = self.capture = CaptureThread(source, self.captured, slideshow_fps)
        cap.set_paused(paused)
        cap.status.connect(self._status)
        cap.warning.connect(self._warning)
        cap.ended.connect(self._ended)
        cap.failed.connect(self._failed)
        cap.finished.connect(self._capture_finished)
        cap.lost_changed.connect(self._lost_changed)
        cap.start()
        return cap

    def set_paused(self, paused: bool) -> None:
        if self.capture is not None:
            self.capture.set_paused(paused)

    # Each passed on only from the current capture: a call queued before ``stop`` disconnected the old one is still
    # delivered after it, and the old camera's "lost" had called the new source lost and paused its recording for good.
    def _status(self, text: str) -> None:
        if self._current_sender() is not None:
            self.status.emit(text)

    def _warning(self, text: str) -> None:
        if self._current_sender() is not None:
            self.warning.emit(text)

    def _lost_changed(self, lost: bool) -> None:
        if self._current_sender() is not None:
            self.lost_changed.emit(lost)

    def _ended(self, text: str) -> None:
        if (cap := self._current_sender()) is not None:  # not one queued before another source opened
            self.ended.emit(cap, text)

    def _failed(self, text: str) -> None:
        if (cap := self._current_sender()) is not None:
            self.failed.emit(cap, text)

    def _current_sender(self) -> CaptureThread | None:
        cap = self.sender()
        return cap if isinstance(cap, CaptureThread) and cap is self.capture else None

    # --- what was read ----------------------------------------------------------------------
    def never_delivered(self) -> bool:
        """Whether the source playing is a camera that opened but has not given one frame yet."""
        return self.capture is not None and self.capture.source.live and not self.captured.delivered

    def nothing_played(self, why: str | None) -> str | None:
        """The source is over (``why``: its warning or error; None for a plain end): the problem to note where not
        one frame of it was read, since it failed as surely as one that would not open (`run` refuses it with 2)."""
        if self.captured.delivered:
            return None
        return f"{source_label(self._spec)}: no frame could be read" + (f" ({why})" if why else "")

    def nothing_came(self) -> str | None:
        """At quitting: the problem to note where the source playing has given no frame yet, though it never ended
        (a camera that opens but delivers none is retried until the app quits); else None."""
        if self.capture is None or self.captured.delivered:
            return None
        why = "the camera delivered none" if self.capture.source.live else "none had been read when the app closed"
        return f"{source_label(self._spec)}: no frame could be read ({why})"

    # --- stopping ---------------------------------------------------------------------------
    def stop(self) -> None:
        """The capture is told to stop and left to end by itself, never waited for here. It is kept until it ends;
        once stopped, nothing it reads is delivered, and a frame of it still in detection is dropped by the inference
        thread (``InferenceThread.reset_tracks(since=…)``)."""
        if self.capture is not None:
            cap, self.capture = self.capture, None
            for sig in (cap.status, cap.warning, cap.ended, cap.failed, cap.lost_changed):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass
            cap.stop()
            if cap.isRunning():
                self.stopping.add(cap)  # its `finished`, queued to this thread, comes after this and lets it go
            self.captured.discard()
            self.frames.discard()

    def _capture_finished(self) -> None:
        if isinstance(cap := self.sender(), CaptureThread):
            self._let_go(cap)

    def _let_go(self, cap: CaptureThread) -> None:
        """Drops ``cap`` once its thread has ended, polled rather than waited for (the GUI thread only paints): its
        `finished` comes while the thread still holds it, and had the thread then dropped the last reference, the
        Qt object would have been destroyed there (1 switch in 12), as a worker's garbage collection had done when
        the app froze (gui_thread_gc)."""
        if cap.isRunning():
            QTimer.singleShot(5, self, lambda: self._let_go(cap))
            return
        self.stopping.discard(cap)

    def close(self, wait_ms: int) -> None:
        """At quitting: stops the capture, and gives those still in a read ``wait_ms`` in all to end."""
        self._closed = True
        self.stop()
        deadline = time.monotonic() + wait_ms / 1000
        for cap in list(self.stopping):
            if not cap.wait(max(0, int((deadline - time.monotonic()) * 1000))):
                log.warning("reading %s has not returned yet; it is left to finish in the background", cap.source.name)
