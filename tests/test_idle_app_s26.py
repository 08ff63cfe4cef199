"""An idle app (review 2026-12, "idle"): paused, a video over, a folder done, minimised, it had kept a core busy.

1. The plots were drawn again twice a second with nothing new (every curve's data set again, then a 21 ms repaint).
2. A minimised window's plots were drawn too: Qt counts a minimised window, and its region, as visible.
3. The Session Δ histograms copied every value of the session and ran np.histogram over them all at every tick:
   their cost grew with the session (209 ms a tick after 8 hours at 10 frames/s), paused or not.
4. A paused capture spun (its 50 ms sleep returned at once while paused), and the detection and inference threads
   woke 10 times a second to find nothing.

Work is counted (calls, values), never timed. Synthetic FrameResults, no model.
"""
from __future__ import annotations

import math
import threading
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtWidgets import QMainWindow  # noqa: E402

from gui.painter import PAIRS  # noqa: E402
from gui.plots import PlotsPanel  # noqa: E402
from gui.recording import SessionStats  # noqa: E402
from gui.workers import CaptureThread, DetectThread, InferenceThread, Mailbox  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402
from inference.sources import Frame  # noqa: E402

WAIT = 10_000
P_BIN_WIDTH = 0.02  # ΔP(female)'s bins (ΔITA's are 1° wide)
NAMES = ("cls-a", "cls-b")


# --- synthetic results ------------------------------------------------------------------------------------------------
def _face(track_id: int, d_ita: float = -5.0, d_p: float = 0.05) -> FaceResult:
    outputs = {n: ClassifierOutput(n, ("female", "male"), np.array([0.6, 0.4]), np.zeros((2, 2), np.float32),
                                   "female", cam_focus=0.5) for n in NAMES}
    view = FaceView(np.zeros((4, 4, 3), np.uint8), outputs, SkinTone(True, 100, 60.0, 10.0, 15.0, 30.0, "x", 3))
    return FaceResult(track_id, (0, 0, 10, 10), np.eye(2, 3), view, view, SkinShift(d_ita, 1.0, 0),
                      {n: d_p for n in NAMES})


def _result(t: float, faces: tuple[FaceResult, ...]) -> FrameResult:
    return FrameResult(0, t, np.zeros((4, 4, 3), np.uint8), faces, {"total": 5.0}, {}, filter_name="f")


def _play(panel: PlotsPanel, frames: int, start: float = 0.0) -> None:
    for k in range(frames):
        panel.add_result(_result(start + k / 10, (_face(1), _face(2))), 10.0, 10.0, 10.0)


@pytest.fixture
def set_data(monkeypatch) -> list:
    """Each curve's setData, as it is called: what costs the GUI thread and a repaint of its plot."""
    calls: list = []
    real = pg.PlotDataItem.setData

    def counting(item, *args, **kwargs):
        calls.append(item)
        return real(item, *args, **kwargs)

    monkeypatch.setattr(pg.PlotDataItem, "setData", counting)
    return calls


@pytest.fixture
def panel(qtbot) -> PlotsPanel:
    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 300)
    panel.show()
    qtbot.waitExposed(panel)
    return panel


# --- 1. nothing new: nothing drawn ------------------------------------------------------------------------------------
@pytest.mark.parametrize("tab", ["ita_plot", "p_widget", "focus_widget", "speed_widget", "hist_widget"])
def test_a_tick_with_nothing_new_sets_no_curves_data(panel, set_data, tab):
    stats = SessionStats()
    for k in range(20):
        result = _result(k / 10, (_face(1, -5.0 + k / 7), _face(2)))
        stats.add(result)
        panel.add_result(result, 10.0, 10.0, 10.0)
    panel.setCurrentWidget(getattr(panel, tab))  # raising a tab draws it
    panel.refresh(*stats.histograms_data())
    assert set_data, "the tab was not drawn"
    drawn = panel.updates
    set_data.clear()
    for _ in range(4):  # two seconds of ticks, paused
        panel.refresh(*stats.histograms_data())
    assert set_data == [] and panel.updates == drawn
    result = _result(2.0, (_face(1, 3.0), _face(2)))
    stats.add(result)
    panel.add_result(result, 10.0, 10.0, 10.0)
    panel.refresh(*stats.histograms_data())
    assert set_data and panel.updates == drawn + 1  # something new: drawn at the next tick


def test_a_tab_raised_or_a_reset_draws_though_no_result_came(panel, set_data):
    _play(panel, 10)
    panel.setCurrentWidget(panel.ita_plot)
    panel.refresh()
    panel.setCurrentWidget(panel.speed_widget)  # raised: drawn at once
    assert panel._curves[("speed", "latency")].getData()[0] is not None
    set_data.clear()
    panel.setCurrentWidget(panel.ita_plot)  # back: drawn again, its curves may be of another moment
    assert set_data
    panel.reset()
    _play(panel, 3)
    set_data.clear()
    panel.refresh()
    assert set_data and len(panel._curves[("ita", 1, "o")].getData()[0]) == 3


def test_a_face_given_another_colour_is_drawn_again(panel):
    """The colours and shapes are the view's allocator's too: a change there is drawn though no result came."""
    _play(panel, 5)
    panel.setCurrentWidget(panel.ita_plot)
    panel.refresh()
    panel.face_styles._pairs[1] = (panel.face_styles._pairs[1] + 1) % PAIRS
    panel.refresh()
    assert panel._curves[("ita", 1, "o")].style == panel.face_styles.style(1)


def test_the_session_delta_tab_is_drawn_again_only_where_its_counts_changed(panel, set_data):
    """Results with no Δ (the filter off) change nothing on the Δ tab: it is not drawn again for them."""
    stats = SessionStats()
    for k in range(5):
        result = _result(k / 10, (_face(1, -5.0 + k),))
        stats.add(result)
        panel.add_result(result, 10.0, 10.0, 10.0)
    panel.setCurrentWidget(panel.hist_widget)
    panel.refresh(*stats.histograms_data())
    unfiltered = _face(1)
    unfiltered = FaceResult(1, unfiltered.box, unfiltered.crop_to_frame, unfiltered.original, None, None, {})
    set_data.clear()
    for k in range(5):
        result = _result(1 + k / 10, (unfiltered,))
        stats.add(result)
        panel.add_result(result, 10.0, 10.0, 10.0)
        panel.refresh(*stats.histograms_data())
    assert set_data == []


# --- 2. minimised -----------------------------------------------------------------------------------------------------
def test_a_minimised_window_draws_no_plot_and_draws_what_came_once_restored(qtbot, set_data):
    window = QMainWindow()
    panel = PlotsPanel()
    window.setCentralWidget(panel)
    qtbot.addWidget(window)
    window.resize(900, 400)
    window.show()
    qtbot.waitExposed(window)
    panel.setCurrentWidget(panel.ita_plot)
    _play(panel, 5)
    panel.refresh()
    window.showMinimized()
    qtbot.waitUntil(window.isMinimized, timeout=WAIT)
    _play(panel, 5, start=0.5)  # a video playing on, minimised
    set_data.clear()
    for _ in range(3):
        panel.refresh()
    assert set_data == []
    window.showNormal()
    qtbot.waitUntil(lambda: not window.isMinimized(), timeout=WAIT)
    panel.refresh()  # the first tick after: what came meanwhile is drawn, though nothing came since
    x, _ = panel._curves[("ita", 1, "o")].getData()
    assert set_data and len(x) == 10


# --- 3. the session histograms ----------------------------------------------------------------------------------------
def _as_drawn_before(values, width: float):
    """The histogram plots._histogram drew before the counts were kept: np.histogram over every finite value."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    lo, hi = math.floor(v.min() / width) * width, math.ceil(v.max() / width) * width
    if hi <= lo:
        hi = lo + width
    edges = np.arange(lo, hi + width * 1.001, width)
    if len(edges) > 200:
        edges = np.linspace(lo, hi, 201)
    counts, edges = np.histogram(v, edges)
    return edges, counts


def _awkward_values(rng, width: float, spread: float, n: int) -> np.ndarray:
    """Values about 0, some ``spread`` widths across, and those a histogram is likely to get wrong: on its edges (0,
    whole widths, whole 1/200ths), NaN, infinities, and far out."""
    normal = rng.normal(rng.normal(0, spread * width / 4), spread * width / 4, n)
    whole = np.round(normal[:20] / width) * width
    whole_fine = np.round(normal[20:40] / width * 200) * width / 200
    on_edges = np.concatenate([whole, whole_fine, np.zeros(5), np.full(3, -0.0)])
    odd = [np.nan, np.nan, np.inf, -np.inf]
    far = [1234.56 * width, -3000.5 * width] if rng.random() < 0.3 else []
    values = np.concatenate([normal, on_edges, odd, far])
    rng.shuffle(values)
    return values


@pytest.mark.parametrize("width", [1.0, P_BIN_WIDTH])
@pytest.mark.parametrize("spread", [0.3, 5, 60, 250])  # under a bin, a few bins, a wide session, past 200 bins
def test_the_histograms_counted_as_values_come_are_np_histograms_of_the_values(width, spread):
    from gui.recording import P_BIN_WIDTH as P_BINS, SeriesBins

    assert P_BINS == P_BIN_WIDTH
    rng = np.random.default_rng(int(spread * 1000 + width * 10))
    equal_bins = 0  # histograms cut into 200 equal bins, their span being past 200 widths
    for _ in range(25):
        values = _awkward_values(rng, width, spread, int(rng.integers(0, 400)))
        bins = SeriesBins(width)
        for part in np.array_split(values, 3):  # read part way through, as ticks do
            for v in part:
                bins.add(float(v))
            bins.histogram().bins()
        got, want = bins.histogram().bins(), _as_drawn_before(values, width)
        if want is None:
            assert got is None
            continue
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1]) and got[1].dtype == want[1].dtype
        equal_bins += len(got[0]) == 201
    if spread > 200:
        assert equal_bins, "no histogram of 200 equal bins was checked"


def test_the_session_delta_tab_draws_what_it_drew_from_all_the_values(panel, set_data):
    rng = np.random.default_rng(7)
    stats = SessionStats()
    ita = _awkward_values(rng, 1.0, 40, 300)
    p = _awkward_values(rng, P_BIN_WIDTH, 30, 300)
    for k, (d_ita, d_p) in enumerate(zip(ita, p)):
        stats.add(_result(k / 10, (_face(1, float(d_ita), float(d_p)),)))
    panel.t0 = 0.0
    panel.setCurrentWidget(panel.hist_widget)
    panel.refresh(*stats.histograms_data())
    for key, values, width in ((("hist", "ita"), ita, 1.0), (("hist", "p", "cls-a"), p, P_BIN_WIDTH)):
        x, y = panel._curves[key].getData()
        want = _as_drawn_before(values[~np.isnan(values)], width)
        assert np.array_equal(x, want[0]) and np.array_equal(y, want[1]), key


def test_a_tick_of_a_long_session_neither_copies_nor_reads_its_values(panel, set_data, monkeypatch):
    """The histograms' work is their bins', whatever the session's length; paused, none at all."""
    stats = SessionStats()
    rng = np.random.default_rng(1)
    for k, (d_ita, d_p) in enumerate(zip(rng.normal(0, 6, 20_000), rng.normal(0, 0.05, 20_000))):
        stats.add(_result(k / 10, (_face(1, float(d_ita), float(d_p)),)))
    read = []
    real = np.histogram
    monkeypatch.setattr(np, "histogram", lambda a, *args, **kw: read.append(np.size(a)) or real(a, *args, **kw))
    panel.t0 = 0.0
    panel.setCurrentWidget(panel.hist_widget)
    first = stats.histograms_data()
    panel.refresh(*first)
    assert sum(read) < 100, f"the draw read {sum(read)} values of the session's 60,000"
    set_data.clear()
    again = stats.histograms_data()  # paused: the same histograms, not copies
    assert again[0] is first[0] and all(again[1][name] is first[1][name] for name in NAMES)
    panel.refresh(*again)
    assert set_data == []


# --- 4. the workers' waits --------------------------------------------------------------------------------------------
class _CountingEvent(threading.Event):
    """An Event counting how often it is looked at or waited on: a thread that polls it does so again and again."""

    def __init__(self) -> None:
        super().__init__()
        self.looks = 0

    def is_set(self) -> bool:
        self.looks += 1
        return super().is_set()

    def wait(self, timeout=None) -> bool:
        self.looks += 1
        return super().wait(timeout)


def _photos() -> SimpleNamespace:
    """A folder of photos that never ends, one read at a time."""
    reads = []

    def read():
        reads.append(1)
        return Frame(np.zeros((4, 4, 3), np.uint8), len(reads), 0.0, f"p{len(reads)}")

    return SimpleNamespace(name="photos", live=False, fps=None, read=read, close=lambda: None, end_warning=None,
                           reads=reads)


@pytest.mark.parametrize("paused_at", ["start", "between photos"])
def test_a_paused_capture_sleeps_until_play_or_stop(qtbot, paused_at):
    source, box = _photos(), Mailbox()
    capture = CaptureThread(source, box, slideshow_fps=0.05)  # 20 s between photos: a pause lands in the wait
    capture._paused = paused = _CountingEvent()
    capture.set_paused(paused_at == "start")
    capture.start()
    try:
        if paused_at == "between photos":
            qtbot.waitUntil(box.pending, timeout=WAIT)
            box.take()
            capture.set_paused(True)
        looks = paused.looks
        threading.Event().wait(0.3)
        assert paused.looks - looks < 20, f"a paused capture looked {paused.looks - looks} times in its pause"
        reads = len(source.reads)
        capture.set_paused(False)  # play: the next photo comes
        qtbot.waitUntil(lambda: len(source.reads) > reads and box.pending(), timeout=WAIT)
        capture.set_paused(True)
    finally:
        capture.stop()
        assert capture.wait(WAIT), "a paused capture did not end at its stop"


def test_the_detection_thread_sleeps_until_a_frame_or_its_stop(qtbot):
    captured, detected = Mailbox(), Mailbox()
    captured._event = event = _CountingEvent()
    detector = SimpleNamespace(detect=lambda bgr: [])
    thread = DetectThread(detector, captured, detected)
    thread.start()
    try:
        threading.Event().wait(0.6)
        assert event.looks <= 2, f"idle, the detection thread looked {event.looks} times for a frame"
        captured.put(Frame(np.zeros((4, 4, 3), np.uint8), 1, 0.0, "f"))
        qtbot.waitUntil(detected.pending, timeout=WAIT)
    finally:
        thread.stop()
        assert thread.wait(WAIT), "the detection thread did not end at its stop"


class _Pipeline:
    """What the inference thread asks of a FramePipeline, recording what it was asked."""

    def __init__(self) -> None:
        self.processed: list[tuple[str, bool]] = []
        self.settings: list[str] = []

    def prepare(self) -> None:
        pass

    def stop_runs(self) -> int:
        return 0

    def process(self, image, timestamp, name, detected=None, still=False, video_s=None, again=False):
        self.processed.append((name, again))
        return SimpleNamespace(name=name)


def test_the_inference_thread_sleeps_until_a_frame_a_setting_or_its_stop(qtbot):
    frames, results, pipeline = Mailbox(), Mailbox(), _Pipeline()
    frames._event = event = _CountingEvent()
    thread = InferenceThread(pipeline, frames, results)
    thread.start()
    try:
        threading.Event().wait(0.6)
        assert event.looks <= 2, f"idle, the inference thread looked {event.looks} times for a frame"
        frames.put(Frame(np.zeros((4, 4, 3), np.uint8), 1, 0.0, "f"))
        qtbot.waitUntil(lambda: pipeline.processed == [("f", False)], timeout=WAIT)
        thread.submit(lambda p: p.settings.append("view"))  # a setting changed while paused: the frame again
        qtbot.waitUntil(lambda: pipeline.processed == [("f", False), ("f", True)], timeout=WAIT)
        assert pipeline.settings == ["view"]
    finally:
        thread.stop()
        assert thread.wait(WAIT), "the inference thread did not end at its stop"


def test_a_setting_submitted_as_a_frame_is_taken_is_applied_without_another_wake(qtbot):
    """``take`` clears the wake of a command submitted just before it: the commands are taken after the frame, so that
    such a command is applied in that turn, not left until the next frame comes (none comes while paused)."""
    frames, results, pipeline = Mailbox(), Mailbox(), _Pipeline()
    thread = InferenceThread(pipeline, frames, results)
    real_take = frames.take
    submitted = []

    def take():
        if not submitted:  # the first turn: a setting lands as the frame is taken
            submitted.append(1)
            thread.submit(lambda p: p.settings.append("cam"))
        return real_take()

    frames.take = take
    thread.start()
    try:
        frames.put(Frame(np.zeros((4, 4, 3), np.uint8), 1, 0.0, "f"))
        qtbot.waitUntil(lambda: pipeline.settings == ["cam"], timeout=WAIT)
    finally:
        thread.stop()
        assert thread.wait(WAIT)


def test_a_faces_session_intervals_stay_within_what_its_shifts_can_be():
    """A face seen in two frames with ΔP(female) −1.0 and −0.2 had read [−5.68, 4.48] in the Session summary (last
    read): the batch-means interval is cut to [−1, 1] for ΔP(female) and [−180°, 180°] for ΔITA."""
    from gui.recording import DELTA_ITA_RANGE, DELTA_P_RANGE
    from inference.metrics import series_mean_ci

    for values in ([-1.0, -0.2], [-1.0, -1.0, -0.2], [-1.0] * 18 + [-0.8] * 9):
        got = series_mean_ci(values, bounds=DELTA_P_RANGE)
        assert -1.0 <= got["lo"] <= got["value"] <= got["hi"] <= 1.0, (values, got)
    got = series_mean_ci([-170.0, 175.0, -179.0], bounds=DELTA_ITA_RANGE)
    assert -180.0 <= got["lo"] and got["hi"] <= 180.0


def test_a_setting_submitted_while_busy_is_applied_though_the_frames_are_dropped(qtbot):
    """A setting submitted while the inference thread works on a frame, then the frames dropped (SourcePlayer.stop at
    a failed open) before it waits again: take() had cleared the setting's wake, and the blocking wait left it
    unapplied (last read). Dropping the frames keeps the wake."""
    frames, results, pipeline = Mailbox(), Mailbox(), _Pipeline()
    busy, go_on = threading.Event(), threading.Event()
    plain = pipeline.process

    def slow(*args, **kwargs):
        busy.set()
        go_on.wait(WAIT / 1000)
        return plain(*args, **kwargs)

    pipeline.process = slow
    thread = InferenceThread(pipeline, frames, results)
    thread.start()
    try:
        frames.put(Frame(np.zeros((4, 4, 3), np.uint8), 1, 0.0, "f"))
        assert busy.wait(WAIT / 1000)
        thread.submit(lambda p: p.settings.append("cam_class"))
        frames.discard()  # as SourcePlayer.stop drops them
        go_on.set()
        qtbot.waitUntil(lambda: pipeline.settings == ["cam_class"], timeout=WAIT)
    finally:
        go_on.set()
        thread.stop()
        assert thread.wait(WAIT)
