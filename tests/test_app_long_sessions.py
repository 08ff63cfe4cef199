"""What a long-session soak review found: a looped folder's unreadable files logged again on every pass (the log
rotated away its start-up lines and any real error), OpenCV's lines for a damaged PNG on every pass, --health's
list of every tick growing the RSS it reports, and the Speed tab's "last minute" holding 24 s at 25 frames/s."""
from __future__ import annotations

import logging
import math
import shutil
import tracemalloc

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from tests.conftest import utk_images  # noqa: E402
from tests.test_app import WAIT, _open, make_window, models  # noqa: E402,F401 — the window's fixtures

from gui import plots  # noqa: E402
from gui.health import HealthMonitor, Lateness  # noqa: E402
from gui.log_file import SkipLines  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402
from inference.sources import ImageListSource  # noqa: E402

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _bad_files(folder) -> list:
    """Unreadable files as a real folder has them: empty, text under .jpg, a PNG whose header is damaged (OpenCV
    prints of it), a JPEG cut off."""
    good = utk_images(1)[0].read_bytes()
    bad = {"zz_empty.jpg": b"", "zz_text.jpg": b"not an image\n", "zz_bad.png": PNG_SIGNATURE + b"junkjunk",
           "zz_trunc.jpg": good[: len(good) // 3]}
    for name, data in bad.items():
        (folder / name).write_bytes(data)
    return [folder / name for name in bad]


def _skip_records(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING and "skipped" in r.getMessage()]


# --- a looped source's unreadable files ---------------------------------------------------------------------------

def test_a_looped_folder_names_each_unreadable_file_once_and_sums_up_its_later_passes(qtbot, make_window, tmp_path,
                                                                                      caplog):
    """Each of 4 bad files in a looped 20-image folder was logged on every pass (121 times in 300 s). Now: once per
    source opened, then a line for the passes after, ever more rarely; the window shows its warnings as before, and
    a source opened again names them again."""
    folder = tmp_path / "looped"
    folder.mkdir()
    shutil.copy(utk_images(1)[0], folder / "a_good.jpg")
    bad = _bad_files(folder)
    caplog.set_level(logging.WARNING)
    w = make_window(str(folder), fps=50.0, loop=True)
    passes = 6
    qtbot.waitUntil(lambda: w._skipped >= passes * len(bad), timeout=4 * WAIT)
    logged = _skip_records(caplog)
    assert all(sum(str(p) in line for line in logged) == 1 for p in bad), logged
    summed = [line for line in logged if "skipped again" in line]
    assert summed and all(w.source_name in line for line in summed)
    assert len(summed) <= math.log2(w._skipped / len(bad))  # a line up to each power of two of the passes over
    assert all(f"{len(bad)} unreadable image(s) or frame(s) skipped again" in line for line in summed)
    w._update_providers()  # the window's own warnings are as they were: the latest in the status bar
    assert any(p.name in w.status.warn.text() for p in bad) and "(+" in w.status.warn.text()

    caplog.clear()
    assert _open(qtbot, w, str(folder))  # a source opened anew starts afresh
    qtbot.waitUntil(lambda: w._skipped >= len(bad), timeout=WAIT)
    qtbot.waitUntil(lambda: all(any(str(p) in line for line in _skip_records(caplog)) for p in bad), timeout=WAIT)


def test_skip_lines_name_each_warning_once_and_sum_up_passes_up_to_each_power_of_two():
    lines = SkipLines("faces/")
    bad = [f"faces/{i}.jpg: cannot be read; skipped" for i in range(3)]
    said = [line for text in bad for line in lines.lines(text)]
    assert said == bad  # the first pass: each named
    passes = 20
    for _ in range(2, passes + 1):
        said += [line for text in bad for line in lines.lines(text)]
    said += lines.finish()
    summed = said[len(bad):]
    assert all(f"{len(bad)} unreadable image(s) or frame(s) skipped again" in line for line in summed)
    # up to each power of two, and the passes after the last one at the end: every pass once
    firsts_lasts = [line.split(": ")[1].removeprefix("pass ").removeprefix("passes ").split("–") for line in summed]
    covered = [p for fl in firsts_lasts for p in range(int(fl[0]), int(fl[-1]) + 1)]
    assert covered == list(range(2, passes + 1))
    assert len(summed) == math.floor(math.log2(passes)) + (passes & (passes - 1) != 0)


def _one_pass(lines: SkipLines, texts: list[str]) -> list[str]:
    return [line for text in texts for line in lines.lines(text)]


def test_skip_lines_say_a_change_in_the_count_when_it_comes_and_name_a_new_file():
    frame = "v.mp4: frame {} could not be decoded; skipped".format
    lines = SkipLines("v.mp4")
    assert _one_pass(lines, [frame(3)]) == [frame(3)]
    assert _one_pass(lines, [frame(3), frame(9)]) == [frame(9)]  # pass 2: a new one named, the other counted
    said = _one_pass(lines, [frame(3), frame(9)])  # pass 3 starts: pass 2, a power of two, summed up
    assert len(said) == 1 and ": pass 2: 1 unreadable" in said[0]
    assert _one_pass(lines, [frame(3), frame(9)]) == []  # pass 4 starts: pass 3 waits for 4, a power of two
    said = _one_pass(lines, [frame(3)])  # pass 5 starts
    assert len(said) == 1 and ": passes 3–4: 2 unreadable" in said[0] and " on each" in said[0]
    assert _one_pass(lines, [frame(3)]) == []  # pass 6 starts: pass 5 skipped fewer again, said with those alike
    assert _one_pass(lines, [frame(3), frame(9)]) == []  # pass 7 starts: pass 6 skipped as many as pass 5
    said = _one_pass(lines, [frame(3)])  # pass 8 starts: pass 7 skipped more, so passes 5–6 are said
    assert len(said) == 1 and ": passes 5–6: 1 unreadable" in said[0]
    said = lines.finish()  # pass 8 under way, cut short
    assert len(said) == 2 and ": pass 7: 2 unreadable" in said[0] and ": pass 8: 1 unreadable" in said[1]
    assert lines.finish() == []  # said once


def test_a_damaged_png_in_a_folder_is_said_by_the_app_not_printed_by_opencv(tmp_path, capfd):
    """OpenCV printed 2 lines to stderr for the damaged PNG on every pass of a looped folder."""
    bad = tmp_path / "bad.png"
    bad.write_bytes(PNG_SIGNATURE + b"junkjunk")
    level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_WARNING)  # as it is in the app
    try:
        capfd.readouterr()
        frame = ImageListSource([bad], str(tmp_path)).read()
        assert cv2.utils.logging.getLogLevel() == cv2.utils.logging.LOG_LEVEL_WARNING  # put back after the read
    finally:
        cv2.utils.logging.setLogLevel(level)
    assert frame.image is None and str(bad) in frame.warning
    assert "grfmt_png" not in capfd.readouterr().err


# --- --health ---------------------------------------------------------------------------------------------------

def test_health_percentiles_stay_within_their_bins_of_every_ticks_own():
    """The percentiles come from counts, not from a list of every tick: as numpy's over every tick, to within the
    bins' width (and the count, the maximum and the stalls exactly)."""
    rng = np.random.default_rng(0)
    # ticks mostly on time or a fraction of a millisecond late, some late by tens of ms, a few stalls
    late = np.concatenate([np.zeros(500), rng.exponential(0.3, 20_000), rng.lognormal(3, 1, 2_000),
                           rng.uniform(100, 400, 30)])
    rng.shuffle(late)
    stats = Lateness()
    for ms in late:
        stats.add(float(ms))
    assert stats.n == late.size and stats.max == late.max() and stats.stalls == int((late > Lateness.STALL_MS).sum())
    within = math.sqrt(Lateness.GROWTH) - 1
    for q in (1, 10, 50, 90, 99, 99.9, 100):
        exact = float(np.percentile(late, q))
        assert abs(stats.percentile(q) - exact) <= max(within * exact, Lateness.FLOOR_MS / 2), q


def test_health_keeps_no_list_of_every_tick(qtbot):
    """Every 20 ms tick's lateness was appended to a list: 4–5 MB an hour, in the RSS --health reports."""
    monitor = HealthMonitor(tick_ms=20, rss_every_s=1e9)
    monitor.start()
    monitor._timer.stop()  # ticked by hand below
    ticks = 20_000
    for _ in range(ticks // 10):  # warm-up: whatever is made once
        monitor._tick()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(ticks):
            monitor._tick()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert grown < ticks  # less than a byte a tick: a list had held a float for each (32 bytes)
    report = monitor.report()
    assert report.ticks == ticks + ticks // 10 and isinstance(report.stalls_over_100ms, int)


# --- the plots' minute ------------------------------------------------------------------------------------------

@pytest.fixture
def panel(qtbot):
    p = plots.PlotsPanel()
    qtbot.addWidget(p)
    p.resize(900, 300)
    p.show()
    return p


def _face(track_id: int) -> FaceResult:
    skin = SkinTone(True, 100, 60.0, 10.0, 15.0, 30.0, "x", 3)
    cls = {"tiny-a": ClassifierOutput("tiny-a", ("female", "male"), np.array([0.6, 0.4]), np.zeros((2, 2), np.float32),
                                      "female", 0.5)}
    view = FaceView(np.zeros((1, 1, 3), np.uint8), cls, skin)
    return FaceResult(track_id, (0, 0, 10, 10), np.eye(2, 3), view, view, SkinShift(1.0, 1.0, 0), {"tiny-a": 0.05})


def _play(panel, fps: float, seconds: float, faces: tuple[FaceResult, ...] = ()) -> None:
    for i in range(int(fps * seconds)):
        timings = {s: 5.0 for s in plots.STAGES}
        panel.add_result(FrameResult(i, i / fps, np.zeros((1, 1, 3), np.uint8), faces, timings, {}), 20.0, fps, fps)


def _span(curve) -> float:
    x, _ = curve.getOriginalDataset()
    return float(x[-1] - x[0])


@pytest.mark.parametrize("fps", [25, 60])
def test_the_speed_tab_and_a_faces_curves_show_the_last_minute(qtbot, panel, fps):
    """The Speed tab kept 600 points (24 s at 25 frames/s) and a face's curves 2,000 (33 s at 60) under a caption of
    the last minute."""
    _play(panel, fps, 2 * plots.WINDOW_S, (_face(1),))
    panel.setCurrentWidget(panel.speed_widget)
    panel.refresh()
    period = 1 / fps
    for key in (("speed", "latency"), ("speed", "fps"), ("stage", "total")):
        assert _span(panel._curves[key]) == pytest.approx(plots.WINDOW_S, abs=period), key
    panel.setCurrentWidget(panel.ita_plot)
    panel.refresh()
    assert _span(panel._curves[("ita", 1, "o")]) == pytest.approx(plots.WINDOW_S, abs=period)
    assert len(panel.speed.t) <= plots.WINDOW_S * fps + 1  # and no more than the minute


def test_a_frame_rate_past_a_cameras_keeps_a_bounded_number_of_points(qtbot, panel):
    """Trimmed by time alone, the points of a pathological frame rate would grow without end: capped, the span
    shrinks instead."""
    fps = 2 * plots.MOST_POINTS_PER_S
    _play(panel, fps, plots.WINDOW_S, (_face(1),))
    assert len(panel.speed.t) == plots.MOST_POINTS and len(panel.tracks[1].t) == plots.MOST_POINTS
    assert all(len(c) == plots.MOST_POINTS for c in [*panel.speed.cols.values(), *panel.tracks[1].cols.values()])
