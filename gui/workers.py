"""Threads: capture → one-slot mailbox → detection → one-slot mailbox → inference → one-slot mailbox → the GUI's
display.

* ``CaptureThread`` reads the ``Source`` and puts each frame in a one-slot
  ``Mailbox`` (the newest frame wins; nothing queues up, so a slow model
  drops a camera's or a video's frames instead of falling behind). A folder's
  photos are never dropped: each waits until the one before is taken. A lost
  camera is retried every second with ``reopen()``.
* ``InferenceThread`` owns the ``FramePipeline`` (not thread-safe: nobody
  else touches it). It takes the newest frame, processes it and puts the
  ``FrameResult`` into a second one-slot mailbox. Model and config changes
  arrive as commands and are applied between frames; after a change the last
  frame is processed again at once, so a paused view updates.
* ``DetectThread`` sits between them: it finds the faces of the next frame
  while the inference thread analyses the one before (OpenCV and ONNX
  Runtime both release the GIL, so the two run at once: ×1.22 frames/s at one
  face on 2 cores). It works in lockstep, one frame ahead: it takes a new
  frame only once the inference thread has taken the last, so no detection
  is wasted on a frame that would be dropped.
* The GUI thread only paints: the inference thread's ``processed`` schedules
  one paint there, which takes the newest result (nothing polls the mailbox).

Stopping sets a flag; nothing is ever terminated. A capture is not waited for when the source is switched (only,
briefly, at quit): one stuck in a read (a camera unplugged, a huge image decoding) is left to finish in the
background, nothing it reads after being stopped reaches the pipeline, and a frame of it still in detection is
dropped by the inference thread. Each runs on a daemon Python thread (``DaemonWorker``), so that one still busy when
the app quits is left behind rather than taking the process down.
"""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Callable, Generic, TypeVar

import shiboken6
from PySide6.QtCore import QObject, Signal, SignalInstance

from inference.detect_ahead import detect_or_none
from inference.errors import BiasMirrorError
from inference.faces import FaceDetector
from inference.models import runs_end_when
from inference.pipeline import FramePipeline
from inference.results import FrameResult
from inference.sources import Frame, Source

from .log_file import IN_THE_LOG

log = logging.getLogger(__name__)
T = TypeVar("T")


def _error_text(exc: BaseException) -> str:
    """The error's type and the first line of its message, short enough for the status bar."""
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0][:200]}" if lines else type(exc).__name__


class Mailbox(Generic[T]):
    """One slot: ``put`` replaces what is there, ``take`` empties it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: T | None = None
        self._event = threading.Event()
        self._empty = threading.Event()
        self._empty.set()
        self.dropped = 0  # items replaced before anyone took them

    def put(self, item: T) -> None:
        with self._lock:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._empty.clear()
            self._event.set()

    def take(self) -> T | None:
        with self._lock:
            item, self._item = self._item, None
            self._event.clear()
            self._empty.set()
            return item

    def wait_empty(self, timeout: float) -> bool:
        """Until the item is taken (or ``timeout`` seconds); True when the slot is empty."""
        return self._empty.wait(timeout)

    def pending(self) -> bool:
        with self._lock:
            return self._item is not None

    def wait(self, timeout: float | None = None) -> bool:
        """Until an item is put or ``wake`` is called (or ``timeout`` seconds); ``take`` clears it."""
        return self._event.wait(timeout)

    def wake(self) -> None:
        self._event.set()

    def discard(self) -> None:
        """Drops what waits here, leaving a wake as it is: ``take`` clears it, and a setting submitted to the inference
        thread while it was busy (its wake set) had been left unapplied where the GUI emptied the mailbox."""
        with self._lock:
            self._item = None
            self._empty.set()


MIN_SLIDESHOW_FPS = 0.05  # one image every 20 s, the slowest a slideshow is paced: the app refuses a slower one


class DaemonWorker(QObject):
    """Work on a daemon Python thread, started, polled and waited for as a QThread is (``start``, ``isRunning``,
    ``wait``). Not a QThread: a QThread still running when its last reference went aborted the whole process
    ("QThread: Destroyed while thread is still running", exit 134 and a core dump), and work can outlast any wait:
    a read blocks for seconds (a V4L2 read after an unplug, a huge PNG), a model's run in one long kernel or a
    TensorRT engine's build for minutes. A daemon thread still busy is left to finish in the background; the
    process exits without it."""

    def __init__(self, name: str, parent=None) -> None:
        super().__init__(parent)
        self._thread = threading.Thread(target=self._thread_main, name=name, daemon=True)

    def run(self) -> None:
        raise NotImplementedError

    def _thread_main(self) -> None:
        self.run()

    def start(self) -> None:
        self._thread.start()

    def isRunning(self) -> bool:  # noqa: N802 — QThread's name, which callers and tests use
        return self._thread.is_alive()

    def wait(self, ms: int) -> bool:
        """Up to ``ms`` milliseconds for the thread to end; True when it has (or never started)."""
        if self._thread.ident is not None:
            self._thread.join(ms / 1000)
        return not self._thread.is_alive()

    def _emit(self, signal: SignalInstance, *args) -> None:
        """Emits ``signal`` while this QObject is there: work still under way when the app quits is left to finish,
        and at the interpreter's exit PySide deletes every QObject Python owns, this one too, while its thread goes
        on; its last emits then raised "Signal source has been deleted" from the thread."""
        if not shiboken6.isValid(self):
            return
        try:
            signal.emit(*args)
        except RuntimeError:
            if shiboken6.isValid(self):  # not its deletion (which can come between the check and the emit)
                raise


class CaptureThread(DaemonWorker):
    """Reads a source at its own pace (camera), its frame rate (video) or ``slideshow_fps`` (images)."""

    status = Signal(str)  # plain-language state changes: lost, retrying, back
    warning = Signal(str)  # an unreadable image, skipped
    ended = Signal(str)  # the source has no more frames
    failed = Signal(str)  # reading the source raised: the source, the error and "(details in the log)"
    lost_changed = Signal(bool)
    finished = Signal()  # the thread has ended (a stopped capture's last word)

    def __init__(self, source: Source, mailbox: Mailbox[Frame], slideshow_fps: float = 2.0, parent=None):
        super().__init__(f"capture {source.name}", parent)
        self.source, self.mailbox = source, mailbox
        self.slideshow_fps = max(MIN_SLIDESHOW_FPS, float(slideshow_fps))
        self._stop = threading.Event()
        self._paused = threading.Event()
        # notified at a stop, a pause and a resume: the waits on them block until one comes. A paused capture had
        # polled (its loop's 50 ms sleep returned at once while paused, and spun: 770,000 turns a second)
        self._changed = threading.Condition()
        self._deliver_lock = threading.Lock()  # a frame is put only while not stopped: see ``stop``
        self._clock: tuple[float, float] | None = None  # (wall time, video time) a video's frames are paced from
        self._last_video_s: float | None = None
        # a change: the source started its file again (--loop); getattr: a test's stand-in for a source may not count
        self._passes = getattr(source, "passes", 0)
        self.retry_every = 1.0

    def stop(self) -> None:
        """Once this returns, no frame of this capture reaches the mailbox, even one whose read was still under
        way: a stuck read's late frame would otherwise land in the next source's pipeline."""
        with self._deliver_lock:
            self._stop.set()
        self._notify()

    def set_paused(self, paused: bool) -> None:
        (self._paused.set if paused else self._paused.clear)()
        self._notify()

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _deliver(self, frame: Frame) -> None:
        with self._deliver_lock:
            if not self._stop.is_set():
                self.mailbox.put(frame)

    def _interval(self) -> float:
        if self.source.live:
            return 0.0
        fps = getattr(self.source, "fps", None)
        if fps:  # a video plays at its own rate
            return 1.0 / fps
        return 1.0 / self.slideshow_fps

    def _sleep(self, seconds: float) -> None:
        """Up to ``seconds``, cut short by a stop or a pause (a paused video's next frame is not delivered)."""
        with self._changed:
            self._changed.wait_for(lambda: self._stop.is_set() or self._paused.is_set(), seconds)

    def _wait_while_paused(self) -> None:
        """Until play resumes, or the capture is stopped (a source switch, the window's close)."""
        with self._changed:
            self._changed.wait_for(lambda: self._stop.is_set() or not self._paused.is_set())

    def _thread_main(self) -> None:
        self._run_and_finish()

    def _run_and_finish(self) -> None:
        try:
            self.run()
        finally:
            self._emit(self.finished)

    def run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # noqa: BLE001 — a thread must not die silently
            log.exception("reading %s failed", self.source.name)
            if not self._stop.is_set():
                self._emit(self.failed, f"reading {self.source.name} failed: {_error_text(exc)} {IN_THE_LOG}")
        finally:
            try:
                self.source.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the source failed")

    def _wait_for_its_time(self, video_s: float, looped: bool = False) -> None:
        """Hold a video's frame until its time in the file comes round: frames were paced at 1 / the file's
        average rate, so a phone's variable-rate video played 2.3× slow in one stretch and 2× fast in the next.
        After a pause, a stall of over a second, a gap in the file's times of over 2 s (waited 2 s) or a loop (the
        source ``looped``, or a time that does not move on: the last frame is first shown for one frame's time), the
        clock starts again from this frame. A 1-frame video's every frame is at 0.0, which never went back: looped,
        it had played 8× its rate, its file opened again for each frame."""
        if self._clock is not None and self._last_video_s is not None:
            if looped or video_s <= self._last_video_s:
                self._sleep(self._frame_time())
            else:
                wait = self._clock[0] + (video_s - self._clock[1]) - time.monotonic()
                if -1.0 <= wait <= 2.0:
                    self._sleep(wait)
                    self._last_video_s = video_s
                    return
                if wait > 2.0:
                    self._sleep(2.0)  # a gap in the file's times: waited a while, not the whole of it
        self._clock, self._last_video_s = (time.monotonic(), video_s), video_s

    def _wait_for_the_last_to_be_taken(self) -> None:
        """A photo of a folder waits until the analysis has taken the one before: put in the mailbox, it replaced
        the photo still waiting there whenever one took longer than 1/--slideshow-fps to analyse, and 4 of 12
        photos were missing from the recording without a word. A camera's and a video's frames are not held: they
        come at their own pace, and the newest wins."""
        while not self._stop.is_set() and not self.mailbox.wait_empty(0.05):
            pass

    def _started_again(self) -> bool:
        """Whether the source started its file again since the frame before (a loop, which it counts)."""
        passes = getattr(self.source, "passes", 0)
        started, self._passes = passes != self._passes, passes
        return started

    def _frame_time(self) -> float:
        fps = getattr(self.source, "fps", None)
        return 1.0 / fps if fps else 0.1

    def _loop(self) -> None:
        lost = False
        while not self._stop.is_set():
            if self._paused.is_set():
                self._clock = None  # a paused video takes up its time where it stopped
                self._wait_while_paused()
                continue
            started = time.monotonic()
            frame = self.source.read()
            if self._stop.is_set():  # stopped while the read was under way: what it read belongs to no one
                return
            if frame is None:
                # a short video's warning is its end note; the window keeps it among its warnings (warning
                # is for frames skipped, which the window counts)
                self._emit(self.ended, self.source.end_warning or f"end of {self.source.name}")
                return
            if frame.image is None:
                if self.source.live:
                    if not lost:
                        lost = True
                        self._emit(self.lost_changed, True)
                    self._emit(self.status, f"{self.source.name}: {frame.warning}; retrying every second…")
                    self._sleep(self.retry_every)
                    if not self._stop.is_set() and self.source.reopen():  # type: ignore[attr-defined]
                        self._emit(self.status, f"{self.source.name}: reconnected")
                    continue
                self._emit(self.warning, frame.warning or "an unreadable frame was skipped")
                continue
            if lost:
                lost = False
                self._emit(self.lost_changed, False)
                self._emit(self.status, f"{self.source.name}: receiving frames again")
            if frame.video_s is not None:
                self._wait_for_its_time(frame.video_s, looped=self._started_again())
                if self._paused.is_set():  # paused while it waited its turn: shown when play resumes, on time
                    self._wait_while_paused()
                    self._clock, self._last_video_s = (time.monotonic(), frame.video_s), frame.video_s
                # captured now, when it is let go: stamped at its read, the wait for its turn (and a pause) had
                # counted as the frame's latency and moved its recorded time
                self._deliver(replace(frame, timestamp=time.monotonic()))
                continue
            if not self.source.live:
                self._wait_for_the_last_to_be_taken()
            if self._paused.is_set():  # paused during the read: held until play resumes, as a video's frame is (it
                # had arrived after the pause, and a recording started while paused took it as its first frame)
                self._wait_while_paused()
            if self._stop.is_set():
                return
            self._deliver(frame)
            wait = self._interval() - (time.monotonic() - started)
            if wait > 0:
                self._sleep(wait)


class DetectThread(DaemonWorker):
    """Finds each frame's faces one frame ahead of the inference thread (lockstep; see the module docstring)."""

    def __init__(self, detector: FaceDetector, frames: Mailbox[Frame], detected: Mailbox[Frame], parent=None):
        super().__init__("detection", parent)
        self.detector, self.frames, self.detected = detector, frames, detected
        self._stop = threading.Event()
        self._busy = False

    def stop(self) -> None:
        self._stop.set()
        self.frames.wake()

    def idle(self) -> bool:
        return not self._busy and not self.frames.pending()

    def run(self) -> None:
        while not self._stop.is_set():
            if not self.detected.wait_empty(0.05):  # the inference thread has not taken the last one yet
                continue
            # until a frame comes or the stop wakes it (nothing else is waited for): idle, it had woken 10 times a
            # second. A stop between this and the take is seen at the loop's top.
            self.frames.wait()
            self._busy = True
            try:
                frame = self.frames.take()
                if frame is None:
                    continue
                found = None if frame.image is None else detect_or_none(self.detector, frame.image, frame.name)
                self.detected.put(replace(frame, detected=found))
            finally:
                self._busy = False


@dataclass
class _Command:
    apply: Callable[[FramePipeline], None]
    rerun: bool = True


class InferenceThread(DaemonWorker):
    """Owns the pipeline; processes the newest frame; publishes the newest result."""

    error = Signal(str)  # a short message for the status bar
    skipped = Signal(str)  # a frame the pipeline refused (its type, its size), named: counted like unreadable ones
    processed = Signal()  # a new (result, is_rerun) is in the mailbox: the window's display waits for this, never polls

    def __init__(self, pipeline: FramePipeline, frames: Mailbox[Frame], results: Mailbox[tuple[FrameResult, bool]],
                 on_result: Callable[[FrameResult, bool], None] | None = None, parent=None):
        super().__init__("inference", parent)
        self.pipeline, self.frames, self.results = pipeline, frames, results
        self.on_result = on_result  # called in this thread: (result, is_rerun) — the recorder hooks in here
        self._stop = threading.Event()
        self._commands: list[_Command] = []
        self._lock = threading.Lock()
        self._last: Frame | None = None
        self._since = float("-inf")  # frames captured before it belong to a source no longer shown: dropped
        self._busy = False
        self.frames_done = 0

    # --- called from the GUI thread ------------------------------------------
    def stop(self) -> None:
        self._stop.set()  # first: a run that registers after stop_runs has looked sees it (``runs_end_when``)
        self.frames.wake()
        self.pipeline.stop_runs()  # a run under way ends too, not only the loop after it

    def idle(self) -> bool:
        """Nothing waiting and nothing being processed (e.g. the last frame of a source is done)."""
        return not self._busy and not self.frames.pending()

    def submit(self, apply: Callable[[FramePipeline], None], rerun: bool = True) -> None:
        """Run ``apply(pipeline)`` in this thread between frames; then process the last frame again."""
        with self._lock:
            self._commands.append(_Command(apply, rerun))
        self.frames.wake()

    def set_models(self, classifiers, filter, **config_changes) -> None:
        """Swap the models, with the settings that depend on them (a conditional filter's condition), in one
        step: no frame runs the new filter with the old one's condition."""
        def apply(p: FramePipeline) -> None:
            p.classifiers, p.filter = list(classifiers), filter
            if config_changes:
                p.config = replace(p.config, **config_changes)
        self.submit(apply)

    def set_config(self, **changes) -> None:
        self.submit(lambda p: setattr(p, "config", replace(p.config, **changes)))

    def reset_tracks(self, since: float | None = None) -> None:
        """Faces are tracked afresh; with ``since`` (another source opened), a frame captured before it that is
        still on its way (in detection when the source was switched) is dropped, not analysed."""
        if since is not None:
            self._since = since  # at once, not between frames as the commands: the next frame taken may be one
        def apply(p: FramePipeline) -> None:
            p.tracker.reset()
            self._last = None
        self.submit(apply, rerun=False)

    # --- the thread -------------------------------------------------------------
    def run(self) -> None:
        with runs_end_when(self._stop):  # a stop landing between two model runs of a frame ends the later one too
            self._run()

    def _run(self) -> None:
        try:  # here, not in the GUI thread: on a GPU this makes a session per batch bucket
            self.pipeline.prepare()
        except Exception:  # noqa: BLE001  (the first frames then make them as they come)
            if not self._stop.is_set():  # else the close ended its runs ("terminate flag"): no failure
                log.exception("preparing the GPU batch sessions failed")
        while not self._stop.is_set():
            # until a frame comes, or a command (``submit``) or the stop wakes it: idle, it had woken 10 times a second
            self.frames.wait()
            self._busy = True  # before the take: the frame is in hand, not waiting, and not yet idle (``idle``)
            try:
                # the frame first, the commands after: ``take`` clears the wake of a command submitted before it,
                # which the commands taken after it then hold; one submitted after them wakes the next wait
                frame = self.frames.take()
                self._step(frame, self._apply_commands())
            finally:
                self._busy = False

    def _apply_commands(self) -> bool:
        """Applies the commands submitted since the last call; True where one asks for the last frame again."""
        with self._lock:
            commands, self._commands = self._commands, []
        rerun = False
        for c in commands:
            try:
                c.apply(self.pipeline)
                rerun |= c.rerun
            except Exception:  # noqa: BLE001
                log.exception("applying a setting failed")
                self._emit(self.error, "a setting could not be applied (details in the log)")
        return rerun

    def _step(self, frame: Frame | None, rerun: bool) -> None:
        if frame is not None and frame.timestamp < self._since:
            frame = None  # the old source's, detected after the switch
        if frame is None and rerun and self._last is not None:
            self._process(self._last, rerun=True)
        elif frame is not None:
            self._last = frame
            self._process(frame, rerun=False)

    def _process(self, frame: Frame, rerun: bool) -> None:
        try:
            result = self.pipeline.process(frame.image, frame.timestamp, frame.name,  # type: ignore[arg-type]
                                           detected=frame.detected, still=frame.still, video_s=frame.video_s,
                                           again=rerun)
        except BiasMirrorError as exc:
            if self._stop.is_set():
                return  # the stop ended its run ("terminate flag"): no failure of the frame, nor a skipped one
            # the message said what was wrong but not with which file (a signed 16-bit TIFF in a folder)
            text = str(exc) if frame.name in str(exc) else f"{frame.name}: {exc}"
            self._emit(self.error if rerun else self.skipped, text)  # a frame shown again is not skipped again
            return
        except Exception as exc:  # noqa: BLE001
            log.exception("processing %s failed", frame.name)
            self._emit(self.error, f"processing {frame.name} failed: {type(exc).__name__} (details in the log)")
            return
        if self.on_result is not None:
            try:
                self.on_result(result, rerun)
            except Exception:  # noqa: BLE001
                log.exception("recording a result failed")
                self._emit(self.error, "recording failed (details in the log)")
        self.frames_done += 1  # counted once recorded: a recording stopped on this count had lost the frame's rows
        self.results.put((result, rerun))
        self._emit(self.processed)
