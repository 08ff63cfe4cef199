"""Races a review reproduced, each forced here in one order (Events, stand-ins), not waited for: a device-chain run
no stop reached, a stop that landed before its run registered, a worker that outlived the close's wait and aborted
the process, a switched-away capture's queued signals, an old source's frame opening a recording, the view iterating
a deque the worker appends to, and the close's own stop reported as a frame's failure."""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from inference.card import METADATA_KEY, filter_card
from inference.errors import BiasMirrorError

from .test_hostile_models import FOR_DAYS, REPO, STOP_WITHIN_S, _cpu, _stopped_within, hostile_classifier

pytest.importorskip("pytestqt")


def looping_filter(path: Path, size: int = 8, trips: int = FOR_DAYS) -> Path:
    """A filter of size×size faces that gives them back unchanged after a Loop of ``trips`` iterations."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []),
         helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_in", TensorProto.UINT8, None)],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.UINT8, None)])
    graph = helper.make_graph(
        [helper.make_node("Loop", ["trips", "go", "image"], ["filtered"], body=body)], "looping",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", size, size, 3])],
        [helper.make_tensor_value_info("filtered", TensorProto.UINT8, ["N", size, size, 3])],
        [numpy_helper.from_array(np.array(trips, np.int64), "trips"), numpy_helper.from_array(np.array(True), "go")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    card = filter_card("looping", size, "A->B", "made to hurt", {"dataset": "none"}, {})
    helper.set_model_props(model, {METADATA_KEY: card.to_json()})
    onnx.save(model, str(path))
    return path


def _chain_models(tmp_path: Path, looping: str):
    """(filter, classifier) on the CPU, ``looping`` the one whose run takes days."""
    flt = _cpu(looping_filter(tmp_path / "filter.onnx", trips=FOR_DAYS if looping == "filter" else 0))
    clf = _cpu(hostile_classifier(tmp_path / "classifier.onnx", trips=FOR_DAYS if looping == "classifier" else None))
    return flt, clf


def _until(condition, within: float = STOP_WITHIN_S) -> bool:
    """Whether ``condition()`` came true within ``within`` seconds (a hang guard, not a race's timing)."""
    deadline = time.monotonic() + within
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


# --- 1. the device chain's runs are registered and stoppable ---------------------------------------------------------

@pytest.mark.parametrize("looping", ["filter", "classifier"])
def test_a_device_chain_run_is_ended_by_stop_runs(tmp_path, looping):
    """The chain ran its models through run_with_iobinding with no RunOptions: the app's close (stop_runs) could not
    end a looping filter's run on the GPU path, and the inference thread outlived the window."""
    from inference.pipeline import FramePipeline, PipelineConfig

    flt, clf = _chain_models(tmp_path, looping)
    pipeline = FramePipeline([clf], flt, None, PipelineConfig(device_chain="on"))
    chain = pipeline.device_chain()
    assert chain is not None
    failed: list[BaseException] = []

    def run() -> None:
        try:
            chain.run(np.zeros((1, 8, 8, 3), np.uint8))
        except BaseException as exc:  # noqa: BLE001 - kept for the test to look at
            failed.append(exc)

    worker = threading.Thread(target=run, daemon=True)  # daemon: where the stop fails, it runs on for days
    worker.start()
    looper = flt if looping == "filter" else clf
    assert _until(lambda: looper._running or not worker.is_alive()), "the chain's run was never registered"
    pipeline.stop_runs()
    worker.join(STOP_WITHIN_S)
    assert not worker.is_alive(), "still running after stop_runs"
    assert len(failed) == 1 and isinstance(failed[0], BiasMirrorError) and "terminate" in str(failed[0]), failed
    assert not flt._running and not clf._running


_CHAIN_ON_THE_MAIN_THREAD = """
import sys, threading, time
import numpy as np
from inference.device_chain import DeviceChain
from inference.models import load_model
from inference.runtime import RuntimeConfig
from inference.stopping import terminate_as_interrupt

cpu = RuntimeConfig(provider="cpu", threads=1)
chain = DeviceChain(load_model(sys.argv[1], runtime=cpu), [load_model(sys.argv[2], runtime=cpu)])

def in_the_run(frame):
    return frame is not None and frame.f_code.co_name == "run_with_iobinding"

def say_when_running():
    # twice, 50 ms apart: the run's Python wrapper takes microseconds, so then it is in ONNX Runtime's loop
    seen = 0
    while seen < 2:
        seen = seen + 1 if any(in_the_run(f) for f in sys._current_frames().values()) else 0
        time.sleep(0.05)
    print("running", flush=True)

threading.Thread(target=say_when_running, daemon=True).start()
try:
    with terminate_as_interrupt():
        chain.run(np.zeros((1, 8, 8, 3), np.uint8))
except KeyboardInterrupt:
    sys.exit(130)
"""


def test_a_device_chain_run_on_the_main_thread_stops_at_ctrl_c(tmp_path):
    """`run`, `audit` and `bench` run the chain on the main thread: its run held Python's signal handlers, and
    Ctrl-C (or SIGTERM) left it running."""
    import signal

    flt, clf = _chain_models(tmp_path, "filter")

    def once_running(proc):
        assert proc.stdout.readline().strip() == "running", proc.communicate()[0]

    code, out = _stopped_within([sys.executable, "-c", _CHAIN_ON_THE_MAIN_THREAD, str(flt.path), str(clf.path)],
                                once_running, signal.SIGINT)
    assert code == 130 and "Traceback" not in out, out


# --- 2. a stop before the run registers; a worker outliving the close's wait ----------------------------------------

def _predict_in_a_thread(model, stop: threading.Event | None) -> tuple[bool, list[BaseException]]:
    """(whether it still ran after STOP_WITHIN_S, what it raised): one prediction of ``model`` in a thread of its own,
    under the thread stop ``stop`` (None: none)."""
    import contextlib

    from inference.models import runs_end_when

    failed: list[BaseException] = []

    def predict() -> None:
        try:
            with runs_end_when(stop) if stop is not None else contextlib.nullcontext():
                model.predict(np.zeros((1, *model.size, 3), np.uint8))
        except BaseException as exc:  # noqa: BLE001 - kept for the test to look at
            failed.append(exc)

    worker = threading.Thread(target=predict, daemon=True)
    worker.start()
    worker.join(STOP_WITHIN_S)
    ran_on = worker.is_alive()
    if ran_on:  # so that the failing run does not outlive the test
        model.stop_runs()
    return ran_on, failed


def test_a_run_that_registers_after_its_threads_stop_is_ended(tmp_path):
    """stop_runs flagged the runs under way only: one that registered a moment later (the stop landed between two
    runs of a frame, or before its first) started clean and ran for days."""
    model = _cpu(hostile_classifier(tmp_path / "loops.onnx", trips=FOR_DAYS))
    stop = threading.Event()
    stop.set()
    assert model.stop_runs() == 0  # nothing under way yet
    ran_on, failed = _predict_in_a_thread(model, stop)
    assert not ran_on, "a run registered after its thread's stop ran on"
    assert len(failed) == 1 and "terminate" in str(failed[0]), failed


def test_another_threads_stop_leaves_this_threads_runs_alone(tiny_models):
    """The stop is the stopped thread's, not the model's: windows share loaded models (the tests' do), and one
    closing must not end another's runs, nor this model's later ones."""
    from inference.models import load_model

    model = load_model(tiny_models["classifier"])
    stopped = threading.Event()
    stopped.set()
    assert _predict_in_a_thread(model, stopped)[1]  # that thread's run is ended
    model.stop_runs()
    for stop in (None, threading.Event()):
        ran_on, failed = _predict_in_a_thread(model, stop)
        assert not ran_on and failed == []


def test_the_inference_thread_stopped_before_its_run_registers_ends(tmp_path, qtbot):
    """The stop came while the frame was still being cropped (before its first model run registered): the run
    started clean, looped on, and the app hung 10 s at close, then aborted."""
    from gui.workers import InferenceThread, Mailbox
    from inference.pipeline import FramePipeline
    from inference.sources import Frame

    model = _cpu(hostile_classifier(tmp_path / "loops.onnx", trips=FOR_DAYS))
    pipeline = FramePipeline([model])
    taken, stopped = threading.Event(), threading.Event()
    real = pipeline.process

    def process_once_stopped(*args, **kwargs):
        taken.set()
        stopped.wait(STOP_WITHIN_S)  # the stop lands here, before any run of the frame has registered
        return real(*args, **kwargs)

    pipeline.process = process_once_stopped
    thread = InferenceThread(pipeline, Mailbox(), Mailbox())
    thread.start()
    thread.frames.put(Frame(np.zeros((8, 8, 3), np.uint8), 0, time.monotonic(), "f"))
    assert taken.wait(STOP_WITHIN_S)
    thread.stop()
    assert not model._running  # the stop found nothing under way
    stopped.set()
    ended = thread.wait(int(STOP_WITHIN_S * 1000))
    if not ended:  # so that the failing thread does not outlive the test
        _until(lambda: model.stop_runs() > 0)
        thread.wait(int(STOP_WITHIN_S * 1000))
    assert ended, "the inference thread ran on: its run registered after the stop"


_WORKERS_OUTLIVING_THE_CLOSE = """
import threading, time
import numpy as np
from PySide6.QtWidgets import QApplication
app = QApplication([])
from gui.workers import DetectThread, InferenceThread, Mailbox
from inference.sources import Frame

never = threading.Event()
in_work = threading.Barrier(3)

class Stuck:  # a TensorRT engine being built, one long kernel: longer than the close waits
    def stop_runs(self):
        pass
    def prepare(self):
        in_work.wait()
        never.wait()
    def detect(self, bgr):
        in_work.wait()
        never.wait()

inference = InferenceThread(Stuck(), Mailbox(), Mailbox())
captured = Mailbox()
detect = DetectThread(Stuck(), captured, Mailbox())
inference.start()
detect.start()
captured.put(Frame(np.zeros((8, 8, 3), np.uint8), 0, time.monotonic(), "f"))
in_work.wait()
for worker in (detect, inference):
    worker.stop()
    print("ended:", worker.wait(100), flush=True)
print("closing", flush=True)
"""


def test_a_worker_outliving_the_close_wait_does_not_abort_the_process(tmp_path):
    """A QThread still running when Python let it go aborted the process at exit ("QThread: Destroyed while
    thread is still running", exit 134 and a core dump) after the close had waited for it in vain."""
    proc = subprocess.run([sys.executable, "-c", _WORKERS_OUTLIVING_THE_CLOSE], cwd=REPO, capture_output=True,
                          text=True, timeout=STOP_WITHIN_S * 3)
    out = proc.stdout + proc.stderr
    assert out.count("ended: False") == 2 and "closing" in out, out  # both outlived the wait
    assert proc.returncode == 0 and "Destroyed while thread" not in out, (proc.returncode, out)


# --- 3. a switched-away capture's queued signals ------------------------------------------------------------------

class _Blocked:
    """A live source whose reads wait until the test ends: the capture thread says nothing by itself."""

    name, live, passes, warnings, end_warning = "camera 0", True, 0, (), None

    def __init__(self) -> None:
        self.release = threading.Event()

    def read(self):
        self.release.wait(STOP_WITHIN_S)
        return None

    def reopen(self) -> bool:
        return False

    def close(self) -> None:
        self.release.set()


def _player_heard():
    """A source player, and what it passes on of its captures' status, warnings and "lost", as (signal, value)."""
    from gui.source_player import SourcePlayer
    from gui.workers import Mailbox

    player = SourcePlayer(Mailbox())
    got: list[tuple[str, object]] = []
    for name in ("status", "warning", "lost_changed"):
        getattr(player, name).connect(lambda value, name=name: got.append((name, value)))
    return player, got


def test_a_stopped_captures_queued_signals_are_not_passed_on(qtbot):
    """The old camera's "lost", posted before the switch and delivered after it, called the new source lost and
    paused its recording for good (a folder never says it is back)."""
    player, got = _player_heard()
    source = _Blocked()
    capture = player.play(source, 0, 2.0, False)
    try:
        def from_the_capture_thread() -> None:  # as its loop says them: queued to the GUI thread
            capture.lost_changed.emit(True)
            capture.status.emit("camera 0: retrying every second…")
            capture.warning.emit("an unreadable frame, skipped")

        emitter = threading.Thread(target=from_the_capture_thread)
        emitter.start()
        emitter.join()
        assert got == []  # queued, not yet delivered
        player.stop()  # another source is taken up
        qtbot.wait(50)  # the event loop delivers what was queued
        assert got == []
    finally:
        source.release.set()
        capture.wait(int(STOP_WITHIN_S * 1000))


def test_the_current_captures_signals_are_passed_on(qtbot):
    player, got = _player_heard()
    source = _Blocked()
    capture = player.play(source, 0, 2.0, False)
    try:
        capture.lost_changed.emit(True)
        capture.status.emit("lost")
        capture.warning.emit("skipped")
        assert got == [("lost_changed", True), ("status", "lost"), ("warning", "skipped")]
    finally:
        player.stop()
        source.release.set()
        capture.wait(int(STOP_WITHIN_S * 1000))


# --- 4. a frame of the previous source opening a recording ------------------------------------------------------------

def test_a_recording_started_after_a_switch_skips_the_old_sources_frames(tmp_path):
    """Record pressed just after another source was opened: the old source's frame still in analysis was the
    recording's first row, in a file that names the new source alone."""
    from tests.test_app_recording_sources import _frame, _rows

    from gui.recording import Recorder

    recorder = Recorder()
    recorder.new_source("a", since=1.0)
    recorder.new_source("b", since=3.0)  # taken up with nothing recording
    recorder.start(tmp_path / "rows.csv", "b")
    recorder.write(_frame(2.0, "a.jpg"))  # captured before b was taken up
    recorder.write(_frame(4.0, "b.jpg"))
    assert recorder.paths == [tmp_path / "rows.csv"]
    text = recorder.finish()
    assert [r["source"] for r in _rows(tmp_path / "rows.csv")] == ["b.jpg"]
    assert [r["frame"] for r in _rows(tmp_path / "rows.csv")] == ["0"]
    assert "(1 rows)" in text


# --- 5. the view iterating the deque the worker appends to --------------------------------------------------------

def test_painting_while_the_worker_offers_a_frame_draws_it(qtbot, monkeypatch):
    """paintEvent iterated the composed frames while the inference thread appended to them: "deque mutated during
    iteration", the frame not drawn and an error in the status bar (a crash under grab())."""
    from PySide6.QtGui import QImage

    import gui.frame_view as frame_view
    from gui.frame_view import FrameView
    from gui.painter import DisplaySettings

    drawn = []

    def render(result, settings, w, h, note, geometry, ready, dpr, steady=None):  # steady: the view's label forms
        drawn.append(ready)
        return QImage(max(1, w), max(1, h), QImage.Format.Format_RGB32)

    class Painter:  # the paint is called directly (an error raised in Qt's own call of it crashed shiboken)
        def __init__(self, device) -> None:
            pass

        def __getattr__(self, name):
            return lambda *args: None

    monkeypatch.setattr(frame_view, "render", render)
    monkeypatch.setattr(frame_view, "QPainter", Painter)
    view = FrameView(DisplaySettings())
    qtbot.addWidget(view)

    class Offered:
        def __init__(self, fits: bool, then_offer: "Offered | None" = None) -> None:
            self._fits, self._then_offer = fits, then_offer

        def fits(self, result, settings, size, dpr) -> bool:
            if self._then_offer is not None:  # the worker offers its next frame between two steps of the paint
                view.offer(self._then_offer)
            return self._fits

    older = Offered(fits=True)
    view.offer(older)
    view.offer(Offered(fits=False, then_offer=Offered(fits=False)))
    view.result = object()  # any result: the stand-ins decide what fits
    view.paintEvent(None)
    assert drawn == [older] and view.composed_ahead == 1


# --- 6. the close's own stop is no frame failure ------------------------------------------------------------------

def test_a_run_ended_by_the_close_is_not_reported_as_a_failure(tmp_path, qtbot):
    """The run the close ended raised, and the frame was reported skipped: every close during a run logged
    "classifier … failed … terminate flag" and counted a skipped frame."""
    from PySide6.QtCore import Qt

    from gui.workers import InferenceThread, Mailbox
    from inference.pipeline import FramePipeline
    from inference.sources import Frame

    model = _cpu(hostile_classifier(tmp_path / "loops.onnx", trips=FOR_DAYS))
    thread = InferenceThread(FramePipeline([model]), Mailbox(), Mailbox())
    said: list[tuple[str, str]] = []
    thread.skipped.connect(lambda text: said.append(("skipped", text)), Qt.ConnectionType.DirectConnection)
    thread.error.connect(lambda text: said.append(("error", text)), Qt.ConnectionType.DirectConnection)
    thread.start()
    thread.frames.put(Frame(np.zeros((8, 8, 3), np.uint8), 0, time.monotonic(), "clip.mp4#27"))
    assert _until(lambda: bool(model._running)), "the frame's run never started"
    thread.stop()
    assert thread.wait(int(STOP_WITHIN_S * 1000))
    assert said == []
