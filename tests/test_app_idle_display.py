"""The display is woken by results, not polled: a 30 ms display timer had woken the GUI thread 33 times a second with
nothing to show (no source, a paused folder, a source ended), ~1 % of a core at idle. Now the inference thread's
"processed" schedules one paint, a burst is coalesced into a few paints of the newest, and a steady stream is shown.

Work is counted (calls of the display slot, results shown), never timed."""
from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

pytest.importorskip("pytestqt")

from tests import test_app  # noqa: E402

from gui.main_window import DISPLAY_MS, MainWindow  # noqa: E402

# the window's fixtures (pytest finds them here by their own names) and helpers, as tests.test_app makes them
make_window, models, WAIT, _has_faces = test_app.make_window, test_app.models, test_app.WAIT, test_app._has_faces

IDLE_MS = 1000  # of event-loop time with nothing arriving: the old timer ran its slot ~33 times in it
AT_MOST_IDLE = 3  # a result still on its way as counting starts may be shown; nothing more


@pytest.fixture
def display_calls(monkeypatch) -> list[float]:
    """Each call of the window's display slot, counted as it happens (patched on the class before the window is made:
    the window connects its timer to the bound method)."""
    calls: list[float] = []
    real = MainWindow._tick

    def counting(self) -> None:
        calls.append(time.monotonic())
        real(self)

    monkeypatch.setattr(MainWindow, "_tick", counting)
    return calls


def _paused_folder(qtbot, make_window, faces_dir) -> MainWindow:
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.detect.idle() and w.inference.idle() and not w.results.pending(), timeout=WAIT)
    qtbot.wait(3 * DISPLAY_MS)  # the last result's paint, if one was scheduled
    return w


def _post(w: MainWindow, results: list, spacing_s: float = 0.0) -> threading.Thread:
    """Puts ``results`` in the window's mailbox from another thread and says so, as the inference thread does."""
    def run() -> None:
        for r in results:
            w._on_result_worker(r, False)
            w.results.put((r, False))
            w.inference.processed.emit()
            if spacing_s:
                time.sleep(spacing_s)

    thread = threading.Thread(target=run, name="test results")
    thread.start()
    return thread


def _fresh(w: MainWindow, n: int) -> list:
    """``n`` results of the frame on show, each captured now (so of the source playing), numbered."""
    base = w.last_result
    return [replace(base, index=10_000 + k, timestamp=time.monotonic()) for k in range(n)]


def test_with_no_source_the_display_slot_does_not_run(qtbot, make_window, display_calls):
    w = make_window(None)
    qtbot.wait(200)  # settled
    before = len(display_calls)
    qtbot.wait(IDLE_MS)
    assert len(display_calls) - before <= AT_MOST_IDLE, f"{len(display_calls) - before} display calls in {IDLE_MS} ms"
    assert w.results_shown == 0


def test_a_paused_folder_does_not_poll_the_display(qtbot, make_window, faces_dir, display_calls):
    w = _paused_folder(qtbot, make_window, faces_dir)
    before, shown, renders = len(display_calls), w.results_shown, w.view.renders
    qtbot.wait(IDLE_MS)
    assert len(display_calls) - before <= AT_MOST_IDLE, f"{len(display_calls) - before} display calls in {IDLE_MS} ms"
    assert w.results_shown == shown and w.view.renders == renders  # nothing new: nothing painted


def test_a_burst_of_results_is_shown_newest_first_in_far_fewer_paints(qtbot, make_window, faces_dir, display_calls):
    w = _paused_folder(qtbot, make_window, faces_dir)
    burst = _fresh(w, 50)
    shown, calls = w.results_shown, len(display_calls)
    _post(w, burst).join()
    qtbot.waitUntil(lambda: w.last_result is burst[-1], timeout=WAIT)
    qtbot.wait(3 * DISPLAY_MS)  # any paint still scheduled
    assert w.last_result is burst[-1] and w.view.result is burst[-1]  # the newest wins
    assert 1 <= w.results_shown - shown < 10
    assert len(display_calls) - calls < 10
    assert not w.results.pending() and not w._to_plot  # nothing left waiting: the plots had every one


def test_a_steady_stream_of_results_keeps_being_shown(qtbot, make_window, faces_dir, display_calls):
    """No stall after the first: each result schedules its own paint, however the one before went."""
    w = _paused_folder(qtbot, make_window, faces_dir)
    stream = _fresh(w, 20)
    shown = w.results_shown
    thread = _post(w, stream, spacing_s=0.04)
    qtbot.waitUntil(lambda: not thread.is_alive(), timeout=WAIT)
    qtbot.waitUntil(lambda: w.last_result is stream[-1], timeout=WAIT)
    assert w.view.result is stream[-1]
    assert w.results_shown - shown > 1  # shown as they came, not only the last once the stream stopped


def test_a_result_soon_after_a_paint_waits_out_the_display_interval(qtbot, make_window, monkeypatch):
    """The GUI thread paints once per DISPLAY_MS at most: a result coming sooner is painted when the interval is up,
    one coming later at once. On a clock the test sets, so nothing here depends on how busy the machine is."""
    from types import SimpleNamespace

    import gui.main_window as main_window

    w = make_window(None)
    now = [1000.0]
    monkeypatch.setattr(main_window, "time", SimpleNamespace(monotonic=lambda: now[0]))
    w._tick()  # a paint at 1000.0
    now[0] += 0.010
    w._result_ready()
    assert w.display_timer.isActive() and w.display_timer.interval() == DISPLAY_MS - 10
    w._result_ready()  # a second result before that paint: the same paint shows it (the newest wins)
    assert w.display_timer.interval() == DISPLAY_MS - 10
    w.display_timer.stop()
    now[0] += 1.0
    w._result_ready()
    assert w.display_timer.isActive() and w.display_timer.interval() == 0
