"""The app end to end (offscreen, no webcam): tiny random-weight models and a few real UTKFace images."""
from __future__ import annotations

import argparse
import csv
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from tests.conftest import REPO, make_classifier, utk_images  # noqa: E402

from gui import model_panel  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.painter import VIEW_MODES, face_lines, render  # noqa: E402
from inference.models import load_model  # noqa: E402

WAIT = 20000  # ms; the machine may be busy


@pytest.fixture(scope="module")
def models(tiny_models):
    return {k: load_model(v) for k, v in tiny_models.items()}


@pytest.fixture
def make_window(qtbot, tmp_path, monkeypatch, models):
    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))
    made = []

    def make(source, classifiers=("classifier", "classifier2"), filters=("darken", "identity"), fps=20.0, **kw):
        w = MainWindow(source, [models[c] for c in classifiers], [models[f] for f in filters], [],
                       slideshow_fps=fps, **kw)
        w.recording.output_dir = tmp_path / "out"
        qtbot.addWidget(w)
        w.show()
        made.append(w)
        qtbot.waitUntil(lambda: w.opening is None, timeout=WAIT)  # the source given is opened (or refused)
        return w

    yield make
    for w in made:
        w.shutdown()
        assert not w.inference.isRunning()


def _open(qtbot, w: MainWindow, spec) -> bool:
    """Opens ``spec`` as the user does and waits until the window has taken it up (True) or refused it (False)."""
    with qtbot.waitSignal(w.source_opened, timeout=WAIT) as opened:
        w.open_source(spec)
    return opened.args[0]


def _has_faces(w: MainWindow) -> bool:
    return w.last_result is not None and len(w.last_result.faces) > 0


def test_window_processes_an_image_folder(qtbot, make_window, faces_dir):
    w = make_window(str(faces_dir), fps=4.0)
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    face = w.last_result.faces[0]
    assert set(face.original.classifiers) == {"tiny-a", "tiny-b"} and face.filtered is not None
    text = " ".join(t for line in face_lines(face) for t, _ in line)
    assert "P(female)" in text and "→" in text and ("ITA" in text or "not measurable" in text)
    qtbot.waitUntil(lambda: w.view.renders > 0 and w.plots.updates > 0, timeout=WAIT)
    # one allocator of colours and shapes for the boxes and the curves: each had its own, and a face's curve could
    # be drawn in another face's box colour
    assert w.plots.face_styles is w.display.face_styles and w.plots._visible_tracks()
    # the window's slow ticks, counted as they call the plots: a tick with nothing new draws nothing (updates stays)
    ticks, refresh = [], w.plots.refresh
    w.plots.refresh = lambda *args: ticks.append(1) or refresh(*args)
    w.plots_dock.raise_()
    w.summary.table.setRowCount(0)
    seen = len(ticks)
    qtbot.waitUntil(lambda: len(ticks) >= seen + 2, timeout=WAIT)
    assert w.summary.table.rowCount() == 0  # behind the plots tab: not kept up to date
    w.summary_dock.raise_()
    qtbot.waitUntil(lambda: w.summary.table.rowCount() > 0, timeout=WAIT)
    qtbot.waitUntil(lambda: w.view.composed_ahead > 0, timeout=WAIT)  # frames composed by the inference thread
    assert "fps" in w.status.fps.text()
    n_models = len(w.models.active_classifiers()) + (w.models.active_filter() is not None)
    assert w.status.providers.text() == f"CPU: {n_models} model(s)"
    # the tooltip is the names as written, one a line: escaped only where Qt would read them as HTML (plain_tip)
    assert "tiny-a: CPU" in w.status.providers.toolTip().splitlines()
    if face.original.classifiers["tiny-a"].cam_focus is not None:  # #12: CAM focus shown live
        assert "CAM on face" in text

    def drawn(last_key: str) -> bool:
        return any(c.getData()[0] is not None and len(c.getData()[0]) for k, c in w.plots._curves.items()
                   if k[-1] == last_key)

    w.plots_dock.raise_()
    w.plots.setCurrentWidget(w.plots.ita_plot)
    qtbot.waitUntil(lambda: drawn("o"), timeout=WAIT)
    seen = len(ticks)
    qtbot.waitUntil(lambda: len(ticks) >= seen + 2, timeout=WAIT)
    assert not drawn("focus") and not any(k[0] == "hist" for k in w.plots._curves)  # tabs not on screen: not drawn
    w.plots.setCurrentWidget(w.plots.focus_widget)  # raising a tab draws it at once
    assert drawn("focus")
    w.plots.setCurrentWidget(w.plots.hist_widget)
    assert any(k[0] == "hist" for k in w.plots._curves)


def test_switching_classifier_filter_view_and_cam_rerenders(qtbot, make_window, faces_dir, models):
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    assert w.paused
    # view modes and CAM are display-only: each one re-renders
    for mode in VIEW_MODES:
        before = w.view.renders
        w.display_controls.set_view_mode(mode)
        w.view.repaint()
        assert w.view.renders > before
        for cam in (True, False):
            w.display_controls.cam_check.setChecked(cam)
            img = render(w.last_result, w.display, 900, 600)
            assert not img.isNull()
    w.display_controls.cycle_view()
    w.display_controls.set_cam_model("tiny-b")
    assert w.display.cam_model == "tiny-b"
    # pipeline settings re-run the last frame at once, even while paused
    w.models.set_enabled("tiny-b", False)
    qtbot.waitUntil(lambda: set(w.last_result.faces[0].original.classifiers) == {"tiny-a"}, timeout=WAIT)
    w.models.set_filter(models["identity"])
    qtbot.waitUntil(lambda: w.last_result.filter_name == "identity", timeout=WAIT)
    w.display_controls.filter_check.setChecked(False)
    qtbot.waitUntil(lambda: w.last_result.filter_name is None and w.last_result.faces[0].filtered is None, timeout=WAIT)
    w.display_controls.filter_check.setChecked(True)
    w.display_controls.cam_class_combo.setCurrentText("male")
    qtbot.waitUntil(lambda: w.last_result.filter_name == "identity"
                    and w.last_result.faces[0].original.classifiers["tiny-a"].cam_class == "male", timeout=WAIT)
    for mode in VIEW_MODES:
        w.display_controls.set_view_mode(mode)
        w.view.repaint()
    png, js = w.snapshot().result(timeout=WAIT / 1000)
    assert png.stat().st_size > 0 and '"faces"' in js.read_text()


def test_recording_writes_rows_and_survives_the_source_ending(qtbot, make_window, faces_dir):
    w = make_window(None, fps=10.0)
    w.toggle_record()
    assert w.recorder.active
    path = w.recorder.path
    assert _open(qtbot, w, str(faces_dir))
    qtbot.waitUntil(lambda: not w.recorder.active, timeout=WAIT)  # the folder ended: recording stopped, file closed
    assert "end of" in w.view.note and "recording saved" in w.view.note
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) > 0 and "delta_ita" in rows[0] and "p_female[tiny-a]" in rows[0]
    assert len(rows) == sum(w.stats.frames.values())  # every face of every processed frame, the last one included
    assert w.inference.isRunning()  # the app carries on


def test_a_disk_that_refuses_writes_stops_the_recording_once_with_the_file_and_reason(
        qtbot, make_window, faces_dir, tmp_path, monkeypatch, caplog):
    import logging

    import gui.recording_controls as recording_controls

    monkeypatch.setattr(recording_controls, "stamp", lambda: "full")
    # the link below, taken
    monkeypatch.setattr(recording_controls, "new_file", lambda folder, name, suffix: folder / f"{name}{suffix}")
    out = tmp_path / "out"
    out.mkdir()
    (out / "rows-full.csv").symlink_to("/dev/full")  # every write fails: no space left on device
    w = make_window(str(faces_dir), loop=True)
    caplog.set_level(logging.WARNING)
    w.toggle_record()
    qtbot.waitUntil(lambda: not w.recorder.active, timeout=WAIT)
    qtbot.waitUntil(lambda: "rows-full.csv" in w.status.warn.text(), timeout=WAIT)
    assert "no space left on device; 0 rows saved" in w.status.warn.text()
    assert not w.act_record.isChecked() and w.status.rec.text() == ""
    n = w.inference.frames_done
    qtbot.waitUntil(lambda: w.inference.frames_done > n + 2, timeout=WAIT)  # the app carries on, without a word more
    problems = [r for r in caplog.records if r.levelno >= logging.WARNING and "record" in r.getMessage()]
    assert len(problems) == 1 and problems[0].exc_info is None and "rows-full.csv" in problems[0].getMessage()
    w.close()  # settings are saved on the way out
    assert w.qs.value("geometry") is not None


def test_every_skipped_file_is_logged_and_counted_not_only_the_last_five(qtbot, make_window, tmp_path, caplog):
    import logging

    folder = tmp_path / "manybad"
    folder.mkdir()
    bad = [folder / f"bad{i}.jpg" for i in range(1, 10)]
    for p in bad:
        p.write_bytes(b"")
    shutil.copy(utk_images(1)[0], folder / "z_good.jpg")
    caplog.set_level(logging.WARNING)
    w = make_window(str(folder), fps=50.0)
    qtbot.waitUntil(lambda: "end of" in w.view.note, timeout=WAIT)
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert all(str(p) in logged for p in bad)
    assert "9 unreadable image(s) or frame(s) skipped" in w.view.note
    w._update_providers()
    assert "bad9.jpg" in w.status.warn.text() and "(+8)" in w.status.warn.text()
    assert "4 earlier warning(s), each in the log" in w.status.warn.toolTip()


def test_missing_camera_is_a_message_and_the_app_stays_alive(qtbot, make_window, faces_dir):
    w = make_window("9")
    assert w.stack.currentWidget() is w.message_page
    assert "No camera found at index 9" in w.message.text()
    assert w.inference.isRunning()
    assert _open(qtbot, w, str(faces_dir))  # the user opens a folder instead
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)


def test_bad_model_file_keeps_the_previous_model(qtbot, make_window, faces_dir, tmp_path, monkeypatch):
    shown = []
    monkeypatch.setattr(model_panel, "tell_plainly", lambda parent, title, text, *icon: shown.append(text))
    w = make_window(str(faces_dir), loop=True)
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    before = w.models.active_filter()
    bad = tmp_path / "x.onnx"
    bad.write_bytes(b"\x00garbage, not a model\xff" * 10)
    assert not w.models.load_filter_file(bad)  # the code path of "From file…"
    assert len(shown) == 1 and "x.onnx" in shown[0] and "Traceback" not in shown[0]
    assert w.models.active_filter() is before
    assert w.models.filter_combo.currentText() == before.name
    assert not w.models.load_classifier_file(bad)
    assert len(shown) == 2 and [c.name for c in w.models.classifiers] == ["tiny-a", "tiny-b"]
    smile = make_classifier(tmp_path / "smile.onnx", name="smile", labels=("smile", "neutral"))
    assert not w.models.load_classifier_file(smile)  # its P(female) plots would stay empty
    assert len(shown) == 3 and "its labels are smile, neutral" in shown[2]
    assert [c.name for c in w.models.classifiers] == ["tiny-a", "tiny-b"]
    n = w.inference.frames_done
    qtbot.waitUntil(lambda: w.inference.frames_done > n and w.last_result.filter_name == before.name, timeout=WAIT)


def test_a_classifier_added_under_a_name_in_use_is_numbered_not_swapped_in(qtbot, make_window, faces_dir, tmp_path,
                                                                            tiny_models):
    copy = tmp_path / "copy_of_a.onnx"  # the same card name, "tiny-a"
    shutil.copy(tiny_models["classifier"], copy)
    w = make_window(str(faces_dir), loop=True)
    assert w.models.load_classifier_file(copy)
    assert [(c.name, c.path) for c in w.models.classifiers] == [
        ("tiny-a", tiny_models["classifier"]), ("tiny-b", tiny_models["classifier2"]), ("tiny-a#2", copy)]
    qtbot.waitUntil(lambda: _has_faces(w) and set(w.last_result.faces[0].original.classifiers)
                    == {"tiny-a", "tiny-b", "tiny-a#2"}, timeout=WAIT)
    # the same files again add nothing: a file already loaded is that model, under whatever name it has
    before = (list(w.models.classifiers), list(w.models.filters))
    assert w.models.load_classifier_file(copy) and w.models.load_filter_file(tiny_models["darken"])
    assert (list(w.models.classifiers), list(w.models.filters)) == before


def test_the_default_filter_given_with_filter_is_that_filter_not_a_second_copy(monkeypatch):
    from gui import app_cli
    from inference.defaults import MODELS_DIR

    monkeypatch.setattr("sys.argv", ["main.py"])
    args = argparse.Namespace(filter=str(MODELS_DIR / "engineer_filter.onnx"), no_filter=False, classifier=None,
                              provider="cpu", threads=1)
    classifiers, filters, errors, chosen = app_cli.load_models(args)
    assert chosen in filters and [f.name for f in filters].count(chosen.name) == 1 and "#" not in chosen.name


def test_no_models_says_so_and_still_measures(qtbot, make_window, faces_dir):
    w = make_window(str(faces_dir), classifiers=(), filters=())
    assert "No classifier loaded" in w.models.banner.text()
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    assert w.last_result.faces[0].original.classifiers == {}
    w.view.repaint()


def test_settings_persist(qtbot, make_window, faces_dir):
    w = make_window(None)
    w.display_controls.set_view_mode("split")
    w.display_controls.cam_check.setChecked(False)
    w.shutdown()
    w2 = make_window(None)
    assert w2.display.view == "split" and w2.display.show_cam is False


def test_the_command_line_wins_over_the_last_sessions_classifiers(qtbot, make_window):
    w = make_window(None)
    w.models.set_enabled("tiny-b", False)  # the user unchecks it; saved
    w.shutdown()
    w2 = make_window(None, classifiers=("classifier2",), classifiers_chosen=True)  # `app --classifier c2.onnx`
    assert w2.models.enabled_names() == ["tiny-b"] and w2.models.banner.isHidden()


def test_a_filter_opened_from_a_file_comes_back_and_a_gone_one_is_named(qtbot, make_window, tmp_path, tiny_models):
    own = tmp_path / "my_filter.onnx"  # a filter from outside the models folder ("From file…")
    shutil.copy(tiny_models["identity"], own)
    w = make_window(None, filters=("darken",))
    assert w.models.load_filter_file(own)
    w.shutdown()
    w2 = make_window(None, filters=("darken",))  # a plain launch: the same filter, opened from its file again
    assert w2.models.active_filter().name == "identity" and w2.models.active_filter().path == own
    assert w2.pipeline.filter is w2.models.active_filter()
    w2.shutdown()
    own.unlink()
    w3 = make_window(None, filters=("darken",))  # the file is gone: the default filter runs, and the panel says why
    assert w3.models.active_filter().name == "darken"
    assert any(str(own) in line and "model file not found" in line for line in w3.models.warning_lines())
    assert not w3.models.warnings.isHidden()


class _FlakyCamera:
    """A live source that delivers frames, then loses the camera until the test lets it come back.

    The test, not a frame count, decides when the camera returns: on a loaded CI machine the GUI thread can
    otherwise see "lost" and "back" in one event-loop turn and never observe the lost state.
    """

    live = True
    name = "camera 7"

    def __init__(self, images):
        import threading

        import cv2

        self.images = [cv2.imread(str(p)) for p in images]
        self.n, self.reopens, self.closed = 0, 0, False
        self.back = threading.Event()

    def read(self):
        import time

        from inference.sources import Frame

        time.sleep(0.02)
        self.n += 1
        if self.n >= 10 and not self.back.is_set():
            return Frame(None, self.n, time.monotonic(), self.name, "the camera stopped delivering frames")
        return Frame(self.images[self.n % len(self.images)], self.n, time.monotonic(), self.name)

    def reopen(self):
        self.reopens += 1
        return self.back.is_set()

    def close(self):
        self.closed = True


def test_camera_lost_mid_session_retries_and_pauses_recording(qtbot, make_window, monkeypatch):
    import gui.source_player as source_player

    cam = _FlakyCamera(utk_images(3))
    monkeypatch.setattr(source_player, "open_source", lambda spec, loop=False: cam)
    w = make_window(None)
    w.toggle_record()
    assert _open(qtbot, w, "7")
    w.capture.retry_every = 0.2
    qtbot.waitUntil(lambda: w.camera_lost, timeout=WAIT)
    assert w.recorder.paused_reason == "camera lost" and "lost" in w.view.note and "recording paused" in w.view.note
    qtbot.waitUntil(lambda: cam.reopens >= 2, timeout=WAIT)  # it keeps retrying while lost
    assert w.camera_lost
    rows_while_lost = w.recorder.rows
    cam.back.set()
    qtbot.waitUntil(lambda: not w.camera_lost, timeout=WAIT)
    qtbot.waitUntil(lambda: w.recorder.rows > rows_while_lost, timeout=WAIT)  # recording resumed, nothing lost
    assert w.recorder.paused_reason is None and w.view.note == ""
    path, rows = w.recorder.stop()
    assert rows > rows_while_lost > 0
    w.shutdown()
    assert cam.closed


def test_mailbox_keeps_only_the_newest():
    from gui.workers import Mailbox

    box = Mailbox()
    for i in range(5):
        box.put(i)
    assert box.take() == 4 and box.take() is None and box.dropped == 4


def test_cam_overlay_is_normalised_per_face_and_only_where_positive():
    import numpy as np

    from gui.painter import cam_overlay, normalise_cam

    cam = np.full((8, 8), -3.0, np.float32)
    cam[2:4, 2:4] = 0.002  # raw CAMs are tiny: normalising makes them visible
    norm = normalise_cam(cam)
    assert norm.max() == 1.0 and norm.min() == 0.0
    assert not normalise_cam(np.full((4, 4), -1.0)).any()  # nothing positive: nothing shown
    frame = np.full((16, 16, 3), 128, np.uint8)
    to_frame = np.array([[2.0, 0, 0], [0, 2.0, 0]])
    out = cam_overlay(frame, cam, to_frame, 0.5)
    assert (out[4:8, 4:8] != 128).any() and (out[12:, 12:] == 128).all()


def test_keyboard_shortcuts(qtbot, make_window):
    from PySide6.QtCore import Qt

    w = make_window(None)
    with qtbot.waitActive(w):
        w.activateWindow()
    w.view.setFocus()
    start = w.display.view
    qtbot.keyClick(w.view, Qt.Key.Key_V)
    assert w.display.view != start
    qtbot.keyClick(w.view, Qt.Key.Key_Space)
    assert w.paused
    cam = w.display.show_cam
    qtbot.keyClick(w.view, Qt.Key.Key_C)
    assert w.display.show_cam is not cam
    qtbot.keyClick(w.view, Qt.Key.Key_H)
    assert w.help.isVisible()
    qtbot.keyClick(w.view, Qt.Key.Key_F1)
    assert not w.help.isVisible()


def test_main_without_a_command_opens_the_app():
    import main

    assert main._default_to_app([]) == ["app"]
    assert main._default_to_app(["--source", "faces/"]) == ["app", "--source", "faces/"]
    assert main._default_to_app(["-v", "--source", "0"]) == ["-v", "app", "--source", "0"]
    assert main._default_to_app(["run", "--source", "x"]) == ["run", "--source", "x"]
    assert main._default_to_app(["-h"]) == ["-h"]


def test_health_monitor_sees_a_blocked_gui_thread(qtbot, tmp_path):
    import json
    import time

    from PySide6.QtCore import QObject, QTimer

    from gui.health import HealthMonitor, write_report

    owner = QObject()
    monitor = HealthMonitor(tick_ms=10, rss_every_s=0.1, parent=owner)
    monitor.start()
    QTimer.singleShot(150, lambda: time.sleep(0.3))  # the GUI thread is busy for 300 ms
    qtbot.wait(700)
    report = monitor.report(frames_processed=5, results_shown=4)
    assert report.lateness_ms_max >= 250 and report.stalls_over_100ms == 1
    assert report.lateness_ms_p50 < 50  # the other ticks came on time
    assert len(report.rss_mb) >= 3 and all(mb > 0 for _, mb in report.rss_mb)
    write_report(report, tmp_path / "health.json")
    saved = json.loads((tmp_path / "health.json").read_text())
    assert saved["frames_processed"] == 5 and saved["stalls_over_100ms"] == 1
    assert "1 stall(s) > 100 ms" in report.line()


def test_a_frame_composed_by_the_worker_renders_like_one_composed_while_painting(qtbot, make_window, faces_dir):
    from gui.painter import Composed, DisplaySettings

    w = make_window(str(faces_dir), fps=4.0)
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    result, settings = w.last_result, DisplaySettings(view="side by side", show_cam=True)
    ready = Composed.of(result, settings, (900, 400))
    settings.cam_opacity = 0.9  # changed after composing: the composed frame no longer fits
    assert not ready.fits(result, settings, (900, 400))
    settings.cam_opacity = ready.settings.cam_opacity
    here, ahead = render(result, settings, 900, 400), render(result, settings, 900, 400, ready=ready)
    assert ahead == here


def test_detection_runs_one_frame_ahead_in_lockstep(qtbot):
    # The detection thread finds the next frame's faces while inference works on this one, but only one
    # frame ahead: frames that arrive meanwhile replace each other and are never detected for nothing.
    import threading

    import numpy as np

    from gui.workers import DetectThread, Mailbox
    from inference.faces import Detection
    from inference.sources import Frame

    calls = []

    class Counting:
        def detect(self, bgr):
            calls.append(int(bgr[0, 0, 0]))
            return [Detection((1, 2, 3, 4))]

    captured, detected = Mailbox(), Mailbox()
    t = DetectThread(Counting(), captured, detected)
    t.start()
    try:
        frame = lambda i: Frame(np.full((8, 8, 3), i, np.uint8), i, float(i), f"f{i}")  # noqa: E731
        captured.put(frame(1))
        qtbot.waitUntil(detected.pending, timeout=WAIT)
        captured.put(frame(2))
        captured.put(frame(3))  # replaces 2 while frame 1 waits to be taken
        threading.Event().wait(0.3)
        assert calls == [1] and captured.pending()  # nothing detected ahead of an untaken frame
        first = detected.take()
        assert first.index == 1 and first.detected.detections == (Detection((1, 2, 3, 4)),) and first.detected.ms >= 0
        qtbot.waitUntil(detected.pending, timeout=WAIT)
        assert detected.take().index == 3 and calls == [1, 3]
        assert t.idle()
    finally:
        t.stop()
        t.wait(5000)


def test_a_frame_detected_ahead_gives_the_same_result(models):
    from inference.faces import HaarDetector
    from inference.pipeline import FramePipeline, detect_faces

    from tests.test_pipeline import _scene

    frame = _scene(2)
    here = FramePipeline([models["classifier"]], models["darken"], HaarDetector())
    ahead = FramePipeline([models["classifier"]], models["darken"], HaarDetector())
    found = detect_faces(ahead.detector, frame)
    a, b = here.process(frame), ahead.process(frame, detected=found)
    assert len(a.faces) == len(b.faces) == 2
    assert [f.box for f in a.faces] == [f.box for f in b.faces]
    assert [f.delta_p_female for f in a.faces] == [f.delta_p_female for f in b.faces]
    assert b.timings_ms["detect"] == found.ms and b.timings_ms["total"] >= found.ms


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the display check is for Linux's X11/Wayland")
def test_no_display_is_one_line_not_a_qt_abort(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM")}
    out = subprocess.run([sys.executable, "main.py", "app", "--source", str(tmp_path), "--max-seconds", "1"], cwd=REPO,
                         env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2, out.stderr
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no display") and "QT_QPA_PLATFORM=offscreen" in last and "xcb" not in out.stderr


def _app(args: list[str], tmp_path, tiny_models) -> tuple[list[str], dict]:
    """`main.py app` in a process of its own on the tiny models, settings kept in tmp_path."""
    import os
    import sys

    from tests.conftest import REPO

    # its log in tmp_path, not the user's; and stdout a pipe as a script sees it, whatever this shell has set
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", BIASMIRROR_SETTINGS=str(tmp_path / "app-settings.ini"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    env.pop("PYTHONUNBUFFERED", None)
    return [sys.executable, str(REPO / "main.py"), "app", "--threads", "1", "--classifier", str(tiny_models["classifier"]),
            "--filter", str(tiny_models["darken"]), *args], env


def test_health_and_screenshot_go_into_folders_made_for_them_and_a_lost_report_is_an_error(tmp_path, faces_dir,
                                                                                           tiny_models):
    import subprocess

    from tests.conftest import REPO

    health, shot = tmp_path / "no" / "dir" / "h.json", tmp_path / "nodir2" / "s.png"
    cmd, env = _app(["--source", str(faces_dir), "--max-seconds", "3", "--health", str(health),
                     "--screenshot", str(shot), "--screenshot-after", "1"], tmp_path, tiny_models)
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    assert '"frames_processed"' in health.read_text() and shot.stat().st_size > 0
    # the folder checked at start turns into a file before the session ends: the report is lost, and says so
    late = tmp_path / "late"
    cmd, env = _app(["--source", str(faces_dir), "--max-seconds", "3", "--health", str(late / "h.json"),
                     "--screenshot", str(tmp_path / "s2.png"), "--screenshot-after", "1"], tmp_path, tiny_models)
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "screenshot saved" in line:
                late.write_text("")
                break
        out, err = proc.communicate(timeout=240)
    finally:
        proc.kill()
    assert proc.returncode == 2 and f"error: {late}" in err and "Traceback" not in err, err


def test_a_video_cut_short_ends_with_its_warning_kept_and_no_frame_counted_as_skipped(qtbot, make_window, tmp_path):
    from tests.test_sources import _cut

    w = make_window(str(_cut(tmp_path)))
    qtbot.waitUntil(lambda: "ended after" in w.view.note, timeout=WAIT)
    ended = w.view.note.split(" — ")[0]
    assert ended.startswith("cut.avi ended after") and ended.endswith("numbered early"), w.view.note
    assert "skipped" not in w.view.note and list(w._warnings) == [ended]


def test_the_app_keeps_a_log_file_that_its_messages_name(tmp_path, faces_dir, tiny_models):
    import subprocess

    from gui.log_file import IN_THE_LOG, log_file, where_details_are
    from tests.conftest import REPO

    (faces_dir / "0_bad.jpg").write_bytes(b"not an image")  # first in the folder
    cmd, env = _app(["--source", str(faces_dir), "--max-seconds", "3"], tmp_path, tiny_models)
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    logged = (tmp_path / "data" / "BiasMirror" / "BiasMirror" / "bias-mirror.log").read_text()
    assert f"{faces_dir / '0_bad.jpg'}: cannot be read" in logged  # a desktop launch has no terminal to read it in
    chosen = tmp_path / "logs" / "app.log"
    done = subprocess.run([*cmd, "--log", str(chosen)], env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0 and "0_bad.jpg: cannot be read" in chosen.read_text()
    assert where_details_are(f"processing failed {IN_THE_LOG}", chosen) == f"processing failed (details in {chosen})"
    with log_file(tmp_path / "logs" / "app.log" / "under-a-file.log") as kept:
        assert kept is None  # the app runs on without it
    handlers = list(logging.getLogger().handlers)
    with log_file(tmp_path / "again.log") as kept:
        logging.getLogger("x").warning("kept")
    assert kept.read_text().endswith("WARNING x: kept\n") and logging.getLogger().handlers == handlers


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM"])
def test_ctrl_c_and_sigterm_close_the_window_cleanly(signame, tmp_path, faces_dir, tiny_models):
    # Ctrl-C used to print a KeyboardInterrupt traceback and leave the app running; SIGTERM killed it without
    # writing --health or the settings.
    import signal
    import subprocess

    from tests.conftest import REPO

    health = tmp_path / "h.json"
    cmd, env = _app(["--source", str(faces_dir), "--loop", "--max-seconds", "120", "--health", str(health),
                     "--screenshot", str(tmp_path / "s.png"), "--screenshot-after", "0.5"], tmp_path, tiny_models)
    # started as from a terminal: a suite run in the background hands its children SIGINT ignored, which the
    # app rightly keeps
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        for line in proc.stdout:
            if "screenshot saved" in line:  # the window is up and running
                proc.send_signal(getattr(signal, signame))
                break
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + getattr(signal, signame) and "Traceback" not in err, err
    assert "written to" in out and '"frames_processed"' in health.read_text()
    assert "geometry" in (tmp_path / "app-settings.ini").read_text()  # the settings were saved on the way out


def test_a_source_that_cannot_open_leaves_the_playing_one_and_a_new_one_clears_the_old_frame(
        qtbot, make_window, faces_dir, tmp_path, monkeypatch):
    """The playing source was stopped before the new one was tried, and paused, the old source's last frame
    stayed on show under the new source's name."""
    from gui import main_window

    told = []
    monkeypatch.setattr(main_window, "tell_plainly", lambda parent, title, text, *icon: told.append(text))
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    playing = w.capture
    garbage = tmp_path / "garbage.avi"
    garbage.write_bytes(b"not a video")
    assert not _open(qtbot, w, str(garbage))
    assert w.capture is playing and playing.isRunning() and w.stack.currentWidget() is w.view
    assert told and str(garbage) in told[0] and f"{faces_dir.name} goes on" in told[0]
    w.toggle_pause()
    other = tmp_path / "other"
    shutil.copytree(faces_dir, other)
    assert _open(qtbot, w, str(other))
    assert w.last_result is None and w.view.result is None and w.view.note == f"paused: press Space to play {other}"
    w.toggle_pause()
    assert w.view.note == ""
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.source in {p.name for p in other.iterdir()}, timeout=WAIT)


def test_a_snapshot_of_a_long_strip_stays_a_sensible_size(qtbot, make_window, tmp_path):
    """Its size followed the frame's height alone: a 4000×50 frame made a PNG 115,720 px wide."""
    import cv2
    import numpy as np

    strip = tmp_path / "strip"
    strip.mkdir()
    cv2.imwrite(str(strip / "strip.png"), np.full((50, 4000, 3), 120, np.uint8))
    w = make_window(str(strip))
    qtbot.waitUntil(lambda: w.last_result is not None, timeout=WAIT)
    png, _ = w.snapshot().result(timeout=WAIT / 1000)
    h, width = cv2.imread(str(png)).shape[:2]
    assert width <= 4096 + 520 and h <= 800


def test_a_big_frame_is_composed_at_the_size_it_is_shown(qtbot, make_window, faces_dir):
    """A 12-megapixel photo was composed at full size on every settings change (0.3 s of GUI thread, 4.8 s for
    8,000 px): it is shrunk to the view first, boxes and CAM placement with it, and looks as the small one does."""
    from dataclasses import replace

    import cv2
    import numpy as np

    from gui.painter import DisplaySettings, for_display

    w = make_window(str(faces_dir), fps=4.0)
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.faces[0].filtered is not None, timeout=WAIT)
    small = w.last_result
    k = 8
    big = replace(small, frame=cv2.resize(small.frame, None, fx=k, fy=k, interpolation=cv2.INTER_NEAREST),
                  faces=tuple(replace(f, box=tuple(v * k for v in f.box), crop_to_frame=f.crop_to_frame * k)
                              for f in small.faces))
    settings = DisplaySettings(view="side by side", show_cam=True)
    shown = for_display(big, settings, 900, 380)
    assert shown.frame.shape[1] * 2 <= 900 and shown.faces[0].box[2] == pytest.approx(small.faces[0].box[2] * k *
                                                                                       shown.frame.shape[1] /
                                                                                       big.frame.shape[1], abs=1)
    to_array = lambda img: np.frombuffer(img.constBits(), np.uint8).reshape(img.height(), img.bytesPerLine())  # noqa: E731
    a, b = to_array(render(small, settings, 900, 400)), to_array(render(big, settings, 900, 400))
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 6  # the same picture, up to resampling


def test_a_passing_message_gets_the_room_of_the_standing_labels(qtbot, make_window, faces_dir):
    """With four models the provider list and the warning took the status bar, and a passing message (an error,
    where a recording went) was cut to a few letters or not shown."""
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    assert w.status.providers.isVisible()
    w.statusBar().showMessage("recording saved to /a/long/path/rows-20261206-063000.csv (405 rows)")
    assert not w.status.providers.isVisible() and not w.status.warn.isVisible()
    w.statusBar().clearMessage()
    assert w.status.providers.isVisible()


def test_labels_in_a_crowded_frame_cover_no_face_title_or_other_label(qtbot, make_window, faces_dir):
    """Twenty faces' labels were clamped over one another and over the filtered faces they describe; now each
    goes where it covers nothing but its own original face, shrinks to one line when it must, and those left out
    are counted."""
    from dataclasses import replace

    import numpy as np

    from gui.painter import DisplaySettings

    w = make_window(str(faces_dir), fps=4.0)
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.faces[0].filtered is not None, timeout=WAIT)
    one = w.last_result
    face = one.faces[0]
    x, y, bw, bh = face.box
    side = max(bw, bh) + 8
    tiles = []
    for i in range(20):  # a 4×5 grid of the same face, each its own track
        ox, oy = (i % 5) * side - x, (i // 5) * side - y
        tiles.append(replace(face, track_id=i + 1, box=(x + ox, y + oy, bw, bh),
                             crop_to_frame=face.crop_to_frame + np.array([[0, 0, ox], [0, 0, oy]])))
    crowd = replace(one, frame=np.full((4 * side, 5 * side, 3), 80, np.uint8), faces=tuple(tiles))
    for size in ((1400, 900), (700, 420)):
        geometry: dict = {}
        render(crowd, DisplaySettings(view="side by side"), *size, geometry=geometry)
        placed, clear = geometry["labels"], geometry["kept_clear"]
        labels = [rect for rect, _ in placed]
        assert len(labels) + geometry["labels_hidden"] == 20 and labels
        assert not any(a.intersects(b) for i, a in enumerate(labels) for b in labels[i + 1:])
        # nothing but its own face in the original panel (a face filling the frame leaves no room beside it)
        assert not any(rect.intersects(b) for rect, own in placed for b in clear if b != own)
    assert geometry["labels_hidden"] > 0  # in the small view some did not fit, and the view says how many


def test_a_recording_without_rows_leaves_no_empty_file(tmp_path):
    from gui.recording import Recorder

    rec = Recorder()
    path = rec.start(tmp_path / "rows.csv")
    said = rec.finish()
    assert not path.exists() and "no face was analysed while it ran, so rows.csv had no rows" in said


def test_the_provider_line_counts_the_common_provider_and_names_the_models_off_it():
    from gui.status_line import providers_line

    assert providers_line([]) == "no models"
    assert providers_line([("a", "CUDA"), ("b", "CUDA"), ("f", "CPU")]) == "CUDA: 2 model(s) · CPU: f"
    assert providers_line([("a", "TensorRT"), ("b", "CUDA"), ("c", "CUDA"), ("f", "CPU"), ("g", "CPU"), ("h", "CPU")]) \
        == "CPU: 3 model(s) · TensorRT: a · CUDA: b, c"


# --- found by a review of the app (2026-12-06) ----------------------------------------------------------------------

def test_a_recording_restarted_or_a_second_snapshot_within_a_second_keeps_the_first(qtbot, make_window, faces_dir,
                                                                                    monkeypatch):
    """Names were stamped to the second: the restart emptied the first recording (which had been reported saved),
    then deleted it as empty; a second snapshot replaced the first."""
    import gui.recording_controls as recording_controls

    monkeypatch.setattr(recording_controls, "stamp", lambda: "same-second")
    w = make_window(str(faces_dir), loop=True)
    w.toggle_record()
    qtbot.waitUntil(lambda: w.recorder.rows > 0, timeout=WAIT)
    w.toggle_record()
    first = w.recording.output_dir / "rows-same-second.csv"
    saved = first.read_text()
    assert saved.count("\n") > 1
    w.toggle_record()
    w.toggle_record()  # stopped at once: no rows, so not kept
    assert first.read_text() == saved and not (w.recording.output_dir / "rows-same-second-2.csv").exists()
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)  # shown: a snapshot is of the frame on show
    shots = [f.result(timeout=WAIT / 1000) for f in (w.snapshot(), w.snapshot())]
    assert shots[0][0] != shots[1][0] and all(png.exists() and js.exists() for png, js in shots)


def test_quitting_while_recording_without_rows_leaves_no_empty_file(qtbot, make_window, tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    cv2.imwrite(str(empty / "grey.png"), np.full((240, 320, 3), 128, np.uint8))  # no face to make a row
    w = make_window(str(empty), loop=True)
    w.toggle_record()
    qtbot.waitUntil(lambda: w.inference.frames_done > 2, timeout=WAIT)
    w.shutdown()
    assert list(w.recording.output_dir.glob("rows-*.csv")) == []


def test_a_saved_choice_of_classifiers_naming_none_loaded_leaves_them_all_on(qtbot, make_window, faces_dir, tmp_path):
    """A stale settings file (or a session run with --classifier) had left every default unchecked."""
    w = make_window(str(faces_dir))
    w.qs.setValue("classifiers", ["does-not-exist"])
    w.shutdown()
    again = make_window(str(faces_dir))
    assert [c.name for c in again.models.active_classifiers()] == ["tiny-a", "tiny-b"]
    again.shutdown()
    chosen = make_window(str(faces_dir), classifiers=("classifier",), classifiers_chosen=True)
    chosen.models.set_enabled("tiny-a", True)
    chosen._models_changed()
    chosen.shutdown()
    assert chosen.qs.value("classifiers") == ["does-not-exist"]  # a command line's set is not kept as a preference


def _clip_of_faces(tmp_path, faces_dir) -> Path:
    """A 4-frame MJPG video at 5 fps, one face a frame."""
    clip = tmp_path / "clip.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for face in sorted(faces_dir.iterdir())[:4]:
        writer.write(cv2.resize(cv2.imread(str(face)), (320, 240)))
    writer.release()
    return clip


def test_a_recording_of_a_video_gives_each_frame_its_position_in_it(qtbot, make_window, faces_dir, tmp_path):
    clip = _clip_of_faces(tmp_path, faces_dir)
    w = make_window(None)
    w.toggle_record()  # from the video's first frame, so the recording's frame numbers are the video's
    assert _open(qtbot, w, str(clip))
    qtbot.waitUntil(lambda: not w.recorder.active, timeout=WAIT)  # stopped at the video's end
    rows = list(csv.DictReader(open(next(w.recording.output_dir.glob("rows-*.csv")))))
    assert rows and all(float(r["video_s"]) == pytest.approx(int(r["frame"]) / 5) for r in rows)


def test_the_label_says_what_its_delta_p_is_measured_from(qtbot, make_window, faces_dir):
    """Δ is filtered − the face resized to the filter's size and back; the label showed original → filtered only,
    so its Δ was often not the difference of its two numbers."""
    from dataclasses import replace

    from inference.results import Prediction

    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    face = w.last_result.faces[0]
    out = face.original.classifiers["tiny-a"]
    p_ref = 0.25 if out.p_female > 0.5 else 0.75
    resized = replace(face, reference={**face.reference, "tiny-a": Prediction(
        "tiny-a", out.labels, np.array([1 - p_ref, p_ref] if out.labels[1] == "female" else [p_ref, 1 - p_ref]))})

    def line_of_a(f) -> str:  # the other classifier's own reference may differ from what it saw: not this test's
        return next(" ".join(t for t, _ in line) for line in face_lines(f) if line[0][0].startswith("tiny-a "))

    assert f"from {p_ref:.2f} resized" in line_of_a(resized)
    same = replace(face, reference={**face.reference, "tiny-a": out})
    assert "resized" not in line_of_a(same)


def test_the_plots_get_every_measured_frame_not_only_the_ones_shown(qtbot, make_window, faces_dir):
    """The display takes the newest result; a frame it skipped (a large photo followed at once by a small one)
    was in the summary and the recording but never plotted."""
    from dataclasses import replace

    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    base = w.last_result
    skipped, shown = (replace(base, faces=tuple(replace(f, track_id=tid) for f in base.faces[:1])) for tid in (901, 902))
    w._on_result_worker(skipped, False)
    w._on_result_worker(shown, False)
    w.results.put((shown, False))  # what the display takes: the newest only
    w._tick()
    assert {901, 902} <= set(w.plots.last_seen)
    # ... and a frame captured before the session was reset (still in the pipeline when another source opened)
    # is neither counted nor plotted in the new one
    w._on_result_worker(replace(skipped, faces=tuple(replace(f, track_id=777) for f in skipped.faces)), False)
    w.reset_session()
    w._on_result_worker(replace(skipped, faces=tuple(replace(f, track_id=778) for f in skipped.faces)), False)
    w._tick()
    assert not {777, 778} & set(w.plots.last_seen) and not {777, 778} & set(w.stats.frames)


# --- found by a third review of the app (2026-12-06) ----------------------------------------------------------------

class _ScriptedCamera:
    """A live source: ``frames`` frames, then what ``after`` does (raise, or block in the read); with "end", frames
    until ``release`` is set, then the end."""

    live = True
    name = "camera 7"
    end_warning = None

    def __init__(self, frames: int, after: str, block_s: float = 4.0):
        import threading

        self.image = cv2.imread(str(utk_images(1)[0]))
        self.frames, self.after, self.block_s = frames, after, block_s
        self.n = 0
        self.stuck, self.release, self.returned = threading.Event(), threading.Event(), threading.Event()
        self.released_in_time = False

    def read(self):
        import time

        from inference.sources import Frame

        time.sleep(0.02)
        self.n += 1
        if self.after == "end" and self.release.is_set():
            return None
        if self.n > self.frames and self.after != "end":
            if self.after == "raise":
                raise OSError(5, "Input/output error", "/dev/video7")
            self.stuck.set()  # "block": as a V4L2 read can for seconds after an unplug
            self.released_in_time = self.release.wait(self.block_s)
            self.returned.set()
        return Frame(self.image, self.n, time.monotonic(), self.name)

    def reopen(self):
        return False

    def close(self):
        pass


def _fake_camera(monkeypatch, cam: _ScriptedCamera) -> None:
    import gui.source_player as source_player

    real = source_player.open_source
    monkeypatch.setattr(source_player, "open_source",
                        lambda spec, loop=False: cam if spec == "7" else real(spec, loop=loop))


def test_an_old_sources_end_never_stops_the_new_sources_recording(qtbot, make_window, faces_dir, monkeypatch):
    """The end waited for its last frame on a timer tied to no source: a source opened meanwhile had its recording
    stopped and the old source's "end of" shown over it."""
    import threading

    cam = _ScriptedCamera(0, "end")
    _fake_camera(monkeypatch, cam)
    w = make_window(None, loop=True)
    w.toggle_record()
    busy = threading.Event()
    busy.set()
    monkeypatch.setattr(w.inference, "idle", lambda: not busy.is_set())  # the camera's last frame still in analysis
    assert _open(qtbot, w, "7")
    with qtbot.waitSignal(w.capture.ended, timeout=WAIT):  # reaches the window first, which waits for the last frame
        cam.release.set()
    assert _open(qtbot, w, str(faces_dir))  # the user opens another source meanwhile
    busy.clear()
    names = {p.name for p in faces_dir.iterdir()}
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.source in names, timeout=WAIT)
    qtbot.wait(300)  # the old wait's timer has long fired by now
    assert w.recorder.active and "end of" not in w.view.note and w.source_name == str(faces_dir)


def test_a_source_stuck_in_a_read_is_left_behind_not_waited_for_and_its_late_frame_dropped(
        qtbot, make_window, faces_dir, monkeypatch):
    """Switching waited 5 s for the read, then dropped the QThread still running: the app aborted."""
    cam = _ScriptedCamera(3, "block")
    _fake_camera(monkeypatch, cam)
    w = make_window(None)
    assert _open(qtbot, w, "7")
    qtbot.waitUntil(cam.stuck.is_set, timeout=WAIT)
    old = w.capture
    put, delivered = w.captured.put, []
    monkeypatch.setattr(w.captured, "put", lambda frame: (delivered.append(frame.name), put(frame)))
    assert _open(qtbot, w, str(faces_dir))
    assert old.isRunning() and not cam.returned.is_set()  # not waited for: still in its read
    cam.release.set()
    qtbot.waitUntil(lambda: not old.isRunning(), timeout=WAIT)
    assert cam.released_in_time
    qtbot.waitUntil(lambda: not w.player.stopping, timeout=WAIT)  # kept until it ended, then let go
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    assert delivered and cam.name not in delivered  # what it read after the switch reached no one


def test_quitting_with_a_source_stuck_in_a_read_neither_waits_for_it_nor_aborts(tmp_path):
    script = """
import sys, threading, time
import numpy as np
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
import gui.main_window as mw
import gui.source_player as source_player
from inference.sources import Frame
stuck = threading.Event()
class Stuck:
    live, name, end_warning = True, "camera 7", None
    def read(self):
        stuck.set()
        threading.Event().wait()  # never returns, as a dead camera's read may not
    def close(self):
        pass
source_player.open_source = lambda spec, loop=False: Stuck()
w = mw.MainWindow("7", [], [], [])
while not stuck.is_set():
    app.processEvents()
    time.sleep(0.01)
w.close()
print("closed", flush=True)
"""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", BIASMIRROR_SETTINGS=str(tmp_path / "s.ini"))
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "closed" in done.stdout, done.stderr
    assert "Destroyed while thread" not in done.stderr and "left to finish in the background" in done.stderr


def test_a_corrupt_number_in_the_settings_falls_back_to_its_default(qtbot, make_window, tmp_path):
    """cam_opacity=nan kept the app from starting (int(nan * 100)); 1e400 and 1e20 overflowed."""
    from PySide6.QtCore import QSettings

    from gui import settings as st

    (tmp_path / "settings.ini").write_text("[General]\ncam_opacity=nan\nsplit=1e400\n")
    w = make_window(None)
    assert (w.display.cam_opacity, w.display.split, w.display_controls.opacity.value()) == (0.45, 0.5, 45)
    qs = QSettings(str(tmp_path / "other.ini"), QSettings.Format.IniFormat)
    for text in ("1e20", "-3", "inf", "nan"):
        qs.setValue("x", text)
        assert st.get(qs, "x", 0.45, float, within=(0.0, 1.0)) == 0.45
    qs.setValue("x", "1e400")
    assert st.get(qs, "x", 7, int) == 7
    qs.setValue("x", "0.3")
    assert st.get(qs, "x", 0.45, float, within=(0.0, 1.0)) == 0.3


def test_settings_that_cannot_be_saved_are_said_so_with_the_file(qtbot, make_window, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    where = tmp_path / "a_file" / "settings.ini"
    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(where))
    w = make_window(None)
    w._update_providers()
    assert f"settings cannot be saved to {where}" in w.status.warn.text()


def test_a_frame_the_pipeline_refuses_is_named_counted_and_kept(qtbot, make_window, faces_dir, monkeypatch, caplog):
    """The message ("frames of int16 pixels are not supported") did not say which file, and the frame was not
    counted with the skipped ones."""
    from inference.errors import BiasMirrorError

    shutil.copy(next(faces_dir.iterdir()), faces_dir / "0_refused.tif")
    caplog.set_level(logging.WARNING)
    w = make_window(None, fps=50.0)
    process = w.pipeline.process

    def refusing(image, *args, **kw):
        if args[1] == "0_refused.tif":
            raise BiasMirrorError("frames of type int16 are not supported")
        return process(image, *args, **kw)

    monkeypatch.setattr(w.pipeline, "process", refusing)
    assert _open(qtbot, w, str(faces_dir))
    qtbot.waitUntil(lambda: "end of" in w.view.note, timeout=WAIT)
    said = "0_refused.tif: frames of type int16 are not supported"
    assert "1 unreadable image(s) or frame(s) skipped" in w.view.note and said in w._warnings
    assert any(said in r.getMessage() for r in caplog.records)


def test_a_recording_split_by_a_new_source_says_so_and_adds_no_column(qtbot, make_window, faces_dir, tmp_path):
    """A video's video_s column, added when the user switched to it, was put down to "the models changed". Every row
    has video_s now (empty for a photo), so a new source's part adds no column, and its message names none."""
    clip = _clip_of_faces(tmp_path, faces_dir)
    w = make_window(str(faces_dir), loop=True)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    w.toggle_record()
    qtbot.waitUntil(lambda: w.recorder.rows > 0, timeout=WAIT)
    assert _open(qtbot, w, str(clip))
    qtbot.waitUntil(lambda: any("continues in" in t for t in said), timeout=WAIT)
    text = next(t for t in said if "continues in" in t)
    assert "for the new source" in text and "video_s" not in text and "models" not in text


def test_a_source_that_fails_mid_session_is_named_with_its_error_and_the_log(qtbot, make_window, monkeypatch,
                                                                            tmp_path):
    """It said "reading the source failed (details in the log)": no source, no error, no log file, not kept."""
    _fake_camera(monkeypatch, _ScriptedCamera(8, "raise"))
    log_path = tmp_path / "app.log"
    w = make_window(None, log_path=log_path)
    w.toggle_record()
    assert _open(qtbot, w, "7")
    qtbot.waitUntil(lambda: not w.recorder.active, timeout=WAIT)
    said = f"reading camera 7 failed: OSError: [Errno 5] Input/output error: '/dev/video7' (details in {log_path})"
    assert w.view.note.startswith(said) and "recording saved" in w.view.note and said in w._warnings


# --- found by a ninth review of the app ---------------------------------------------------------------------------

def _analyse(qtbot, w: MainWindow, image: np.ndarray, name: str) -> None:
    """One frame through detection and inference, as the capture would put it; returns once it is analysed."""
    import time

    from inference.sources import Frame

    done = w.inference.frames_done
    w.captured.put(Frame(image, 0, time.monotonic(), name))
    qtbot.waitUntil(lambda: w.inference.frames_done > done, timeout=WAIT)


def test_a_recordings_frame_column_counts_its_own_frames_from_0_and_no_rerun(qtbot, make_window, faces_dir):
    """Each settings change's re-run took a frame number that no row had, and a second recording went on from the
    pipeline's count instead of starting at 0 as `run` does."""
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.detect.idle() and w.inference.idle(), timeout=WAIT)
    image = cv2.imread(str(sorted(faces_dir.iterdir())[0]))
    w.toggle_record()
    _analyse(qtbot, w, image, "a.jpg")
    for cam_class in ("male", "female"):  # each re-runs the last frame, which is not recorded
        done = w.inference.frames_done
        w.inference.set_config(cam_class=cam_class)
        qtbot.waitUntil(lambda: w.inference.frames_done > done, timeout=WAIT)
    _analyse(qtbot, w, image, "b.jpg")
    w.toggle_record()
    rows = list(csv.DictReader(open(w.recorder.path)))
    assert {(r["source"], r["frame"]) for r in rows} == {("a.jpg", "0"), ("b.jpg", "1")}
    w.toggle_record()
    _analyse(qtbot, w, image, "c.jpg")
    w.toggle_record()
    assert {r["frame"] for r in csv.DictReader(open(w.recorder.path))} == {"0"}


def test_the_session_histograms_show_only_the_sessions_data(qtbot):
    """After the session restarted for another filter, the ΔP(female) histogram of a classifier the new session had
    not seen (and the ΔITA one, with no value yet) kept showing the last session's values."""
    from gui.plots import PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.show()
    panel.setCurrentWidget(panel.hist_widget)
    panel.t0 = 0.0
    values = np.array([-0.1, 0.0, 0.2])
    panel.refresh(np.array([1.0, -2.0]), {"tiny-a": values, "tiny-b": values})
    assert {k for k in panel._curves if k[0] == "hist"} == {("hist", "ita"), ("hist", "p", "tiny-a"),
                                                             ("hist", "p", "tiny-b")}
    panel.refresh(np.array([]), {"tiny-b": values[:1]})
    assert {k for k in panel._curves if k[0] == "hist"} == {("hist", "p", "tiny-b")}
    drawn = [item for item in panel.hist_p.listDataItems() if item.getData()[1] is not None]
    assert [int(item.getData()[1].sum()) for item in drawn] == [1]
    assert not [item for item in panel.hist_ita.listDataItems() if item.getData()[1] is not None]


def test_the_summary_gives_each_mean_its_own_n(qtbot, make_window):
    """One n, the larger of ΔITA's and ΔP's, stood beside a ΔP(female) mean of fewer values (the classifier was
    switched off for a while)."""
    from array import array

    w = make_window(None)
    w.stats.frames[1] = 4
    w.stats.delta_ita[1] = array("d", [1.0, 2.0, 3.0, 4.0])
    w.stats.delta_p[1]["tiny-a"] = array("d", [0.1, 0.2])
    w.summary_dock.raise_()
    qtbot.waitUntil(lambda: w.summary.table.rowCount() == 1, timeout=WAIT)
    t = w.summary.table
    header = [t.horizontalHeaderItem(j).text() for j in range(t.columnCount())]
    cells = dict(zip(range(t.columnCount()), (t.item(0, j).text() for j in range(t.columnCount()))))
    ita, p = header.index("mean ΔITA° [95% CI]"), header.index("mean ΔP(female) [95% CI]")
    assert header[ita + 1] == "n" and cells[ita + 1] == "4"
    assert header[p + 1] == "n" and cells[p + 1] == "2"


def test_the_p_plots_gap_is_the_delta_p_the_app_reports(qtbot, make_window, faces_dir):
    """The solid line was the sharp crop's P(female), but ΔP(female) is measured from the face through the filter's
    resampling alone: the gap between the lines could have the opposite sign to the ΔP reported."""
    from dataclasses import replace

    from gui.plots import PlotsPanel
    from inference.results import Prediction

    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.faces[0].filtered is not None, timeout=WAIT)
    result = w.last_result
    face = result.faces[0]
    out, after = face.original.classifiers["tiny-a"], face.filtered.classifiers["tiny-a"]
    p_ref = 0.25 if out.p_female > 0.5 else 0.75
    ref = Prediction("tiny-a", out.labels, np.array([1 - p_ref, p_ref] if out.labels[1] == "female" else [p_ref, 1 - p_ref]))
    resized = replace(face, reference={**face.reference, "tiny-a": ref},
                      delta_p_female={**face.delta_p_female, "tiny-a": after.p_female - p_ref})
    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.add_result(replace(result, faces=(resized,)), 0.0, 0.0, 0.0)
    r = panel.p_tracks[(face.track_id, "tiny-a")]
    assert r.cols["p_f"][-1] - r.cols["p"][-1] == pytest.approx(resized.delta_p_female["tiny-a"])
    assert "what ΔP(female) is measured from" in panel.p_widget.getItem(0, 0).text  # the solid line says so


def test_the_compact_label_names_the_skin_shift_and_the_classifier_of_its_delta_p(qtbot, make_window, faces_dir):
    """A crowded frame's one-line label read "#4 ITA +7.2°" for a face whose ITA was −4.0° (+7.2° was ΔITA), and
    its ΔP(female) did not say which classifier's it was."""
    from dataclasses import replace

    from gui.painter import compact_lines
    from inference.results import SkinShift

    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.faces[0].filtered is not None, timeout=WAIT)
    face = replace(w.last_result.faces[0], skin_shift=SkinShift(7.2, 3.0, 1),
                   delta_p_female={"tiny-a": 0.1, "tiny-b": -0.2})
    text = "".join(t for line in compact_lines(face, "tiny-b") for t, _ in line)
    assert "ΔITA +7.2°" in text and "ITA +7.2" not in text.replace("ΔITA", "")
    assert "ΔP(f) −0.20" in text and "tiny-b" in text and "tiny-a" not in text


def test_a_frame_of_the_old_source_is_never_shown_or_snapshotted_under_the_new_one(qtbot, make_window, faces_dir,
                                                                                   tmp_path):
    """Paused, a frame still in the pipeline when another source opened (or its re-run) reached the screen and the
    snapshots under the new source's name."""
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    old = w.last_result
    other = tmp_path / "other"
    shutil.copytree(faces_dir, other)
    assert _open(qtbot, w, str(other))
    for rerun in (False, True):  # what the inference thread finished after the switch
        w.results.put((old, rerun))
        w._tick()
        assert w.last_result is None and w.view.result is None and w.snapshot() is None


def test_the_settings_keep_no_path_of_the_users_photos(qtbot, make_window, faces_dir):
    """The source last opened was saved as last_source, which nothing read: a path to the user's photos kept for
    no use."""
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.qs.sync()
    saved = Path(w.qs.fileName())
    assert not saved.exists() or str(faces_dir) not in saved.read_text(errors="replace")


def test_a_restart_runs_the_condition_and_cam_model_showing_at_close_not_the_last_picked(qtbot, make_window):
    """Falling back (another filter, a classifier unchecked) changed the condition and CAM model unsaved."""
    w = make_window(None, filters=("darken", "conditional"))
    combo = w.models.filter_combo
    combo.activated.emit(combo.findText("tiny-conditional"))
    w.display_controls.condition_combo.setCurrentText("lighter")
    combo.activated.emit(combo.findText("darken"))
    combo.activated.emit(combo.findText("tiny-conditional"))  # back: it runs its first condition
    w.display_controls.set_cam_model("tiny-b")
    w.models.set_enabled("tiny-b", False)  # CAM falls back to tiny-a, and stays there when tiny-b is back
    w.models.set_enabled("tiny-b", True)
    shown = (w.display_controls.condition_combo.currentText(), w.display_controls.cam_model_combo.currentText())
    assert shown == ("darker", "tiny-a")
    w.shutdown()
    w2 = make_window(None, filters=("darken", "conditional"))
    c2 = w2.display_controls
    assert (c2.condition_combo.currentText(), c2.cam_model_combo.currentText()) == shown
    assert w2.pipeline.config.filter_condition in (None, "darker") and w2.display.cam_model == "tiny-a"


@pytest.mark.parametrize("override", [None, "identity"])
def test_a_command_line_filter_is_never_saved_whichever_control_changes(qtbot, make_window, models, override):
    """A --filter or --no-filter was saved once an unrelated control (a classifier checkbox) was touched."""
    w = make_window(None, filter_override=models[override] if override else None)
    w.models.set_enabled("tiny-b", False)
    w.models.set_enabled("tiny-b", True)
    w.shutdown()
    w2 = make_window(None)  # a plain start: the saved (here the default) filter, as after an untouched session
    assert w2.models.active_filter().name == "darken"


def test_a_classifier_added_from_a_file_comes_back_and_a_gone_one_is_named(qtbot, make_window, tmp_path,
                                                                            tiny_models):
    """It was gone after a restart, with no word why, while a filter from a file came back."""
    own = tmp_path / "my_classifier.onnx"
    shutil.copy(tiny_models["classifier"], own)
    w = make_window(None)
    assert w.models.load_classifier_file(own)
    w.models.set_enabled("tiny-a", False)
    w.shutdown()
    w2 = make_window(None)
    assert [(c.name, c.path) for c in w2.models.classifiers][2:] == [("tiny-a#2", own)]
    assert w2.models.enabled_names() == ["tiny-b", "tiny-a#2"]
    assert [c.name for c in w2.pipeline.classifiers] == ["tiny-b", "tiny-a#2"]
    w2.shutdown()
    own.unlink()
    w3 = make_window(None)
    assert [c.name for c in w3.models.classifiers] == ["tiny-a", "tiny-b"]
    assert any(str(own) in line and "model file not found" in line for line in w3.models.warning_lines())
    assert not w3.models.warnings.isHidden()


def test_every_classifier_unchecked_stays_so_after_a_restart(qtbot, make_window):
    """An empty saved list read back as "no preference": every classifier was on again."""
    w = make_window(None)
    w.models.set_enabled("tiny-a", False)
    w.models.set_enabled("tiny-b", False)
    w.shutdown()
    w2 = make_window(None)
    assert w2.models.enabled_names() == [] and "All classifiers are unchecked" in w2.models.banner.text()


def test_open_says_it_opens_a_video_or_image_the_file_dialog_it_shows(qtbot, make_window, monkeypatch):
    """It was labelled "Open file/folder…" but its dialog picks only files."""
    from PySide6.QtGui import QKeySequence
    from PySide6.QtWidgets import QPushButton

    from gui import main_window

    asked = []
    monkeypatch.setattr(main_window.QFileDialog, "getOpenFileName",
                        staticmethod(lambda *a, **k: asked.append(a) or ("", "")))
    w = make_window(None)
    act_open = next(a for a in w.actions() if a.shortcut() == QKeySequence("Ctrl+O"))
    act_open.trigger()
    assert asked and act_open.text() == "Open video or image…"
    page = [b.text() for b in w.message_page.findChildren(QPushButton)]
    assert "Open video or image…" in page and not any("file/folder" in t for t in page)


def test_a_command_line_condition_is_this_sessions_and_an_unusable_saved_file_is_named(qtbot, make_window, tmp_path,
                                                                                        tiny_models):
    """--condition was saved once an unrelated control changed; a saved classifier file the system refused (a
    folder it may not read, a mount gone) stopped every start with an OSError; an added classifier unchecked
    came back at every start, with nothing to drop it."""
    w = make_window(None, filters=("conditional",), filter_condition="lighter")
    assert w.display_controls.filter_condition == "lighter"
    w.models.set_enabled("tiny-a", False)
    w._models_changed()
    own = tmp_path / "mine.onnx"
    shutil.copy(tiny_models["classifier"], own)
    assert w.models.load_classifier_file(own)
    w.shutdown()
    w.qs.setValue("classifier_files", [str(own), str(tmp_path / ("x" * 300 + ".onnx"))])  # a name too long
    w.qs.sync()
    w2 = make_window(None, filters=("conditional",))
    # the filter's first (None), not the last session's command line
    assert w2.display_controls.filter_condition != "lighter"
    assert any("x" * 300 in line and "was not loaded" in line for line in w2.models.warning_lines())
    assert [c.path for c in w2.models.classifiers][-1] == own
    w2.models.set_enabled(w2.models.classifiers[-1].name, False)
    w2._models_changed()
    w2.shutdown()
    w3 = make_window(None, filters=("conditional",))
    assert own not in [c.path for c in w3.models.classifiers]  # unchecked: let go


@pytest.mark.parametrize("kind", ["garbage image", "folder of corrupt images", "missing camera"])
def test_a_timed_session_on_a_source_that_cannot_play_exits_2_naming_it(kind, tmp_path, tiny_models):
    """`app --max-seconds` waited out its time on the window's error and exited 0, where `run` refuses the same
    source with 2: a script could not tell the session showed nothing."""
    garbage = tmp_path / "x.jpg"
    garbage.write_bytes(b"\x00 not an image \xff" * 20)
    folder = tmp_path / "corrupt"
    folder.mkdir()
    for name in ("a.jpg", "b.png"):
        (folder / name).write_bytes(b"not an image")
    source = {"garbage image": str(garbage), "folder of corrupt images": str(folder), "missing camera": "9"}[kind]
    cmd, env = _app(["--source", source, "--max-seconds", "2"], tmp_path, tiny_models)
    done = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=240)
    errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    named = "camera 9" if kind == "missing camera" else source
    assert len(errors) == 1 and named in errors[0], done.stderr


def test_only_a_scripted_session_is_told_the_source_gave_nothing(qtbot, make_window, faces_dir, tmp_path):
    """A source that opens but gives no frame is the window's problem to report; one that gave frames, ended or
    not, is none; and a session someone sits at keeps its status (they read the error in the window)."""
    from gui.app_cli import source_problem

    (faces_dir / "0_bad.jpg").write_bytes(b"not an image")  # skipped among good ones: still a source that played
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: "end of" in w.view.note, timeout=WAIT)
    assert w.source_problem is None
    corrupt = tmp_path / "corrupt"
    corrupt.mkdir()
    (corrupt / "a.jpg").write_bytes(b"not an image")
    assert _open(qtbot, w, str(corrupt))  # it opens: the folder is there, with an image in it
    qtbot.waitUntil(lambda: w.source_problem is not None, timeout=WAIT)
    assert w.source_problem.startswith(f"{corrupt}: no frame could be read") and "could not be read" in w.source_problem
    timed = argparse.Namespace(max_seconds=5.0, screenshot=None, health=None)
    at_the_window = argparse.Namespace(max_seconds=None, screenshot=None, health=None)
    assert source_problem(w, timed) == w.source_problem and source_problem(w, at_the_window) is None
    assert _open(qtbot, w, str(faces_dir))  # a source that plays clears it
    assert w.source_problem is None


def _on_by_file(w: MainWindow) -> dict[Path, bool]:
    active = w.models.active_classifiers()
    return {Path(c.path): any(c is a for a in active) for c in w.models.classifiers}


def test_a_classifier_added_from_a_file_keeps_its_own_state_when_the_one_it_was_numbered_after_is_gone(
        qtbot, make_window, tmp_path, tiny_models):
    """Saved by name, a file's state went to whichever file had its name next time: with the default "tiny-a"
    unchecked and gone, the added copy ("tiny-a#2", checked, the one the CAM showed) came back as "tiny-a",
    unchecked, and the CAM of another classifier showed."""
    copy = tmp_path / "copy_of_a.onnx"  # the same card name, "tiny-a"
    shutil.copy(tiny_models["classifier"], copy)
    w = make_window(None)
    assert w.models.load_classifier_file(copy)
    w.models.set_enabled("tiny-a", False)
    w.display_controls.set_cam_model("tiny-a#2")
    assert _on_by_file(w)[copy] and w.display.cam_model == "tiny-a#2"
    w.shutdown()
    w2 = make_window(None, classifiers=("classifier2",))  # the default tiny-a has left the models folder
    assert [(c.name, c.path) for c in w2.models.classifiers] == [("tiny-b", tiny_models["classifier2"]), ("tiny-a", copy)]
    assert _on_by_file(w2) == {tiny_models["classifier2"]: True, copy: True}
    assert w2.display.cam_model == "tiny-a" and w2.display_controls.cam_model_combo.currentText() == "tiny-a"


@pytest.mark.parametrize("unchecked", [0, 1])
def test_two_classifiers_of_one_card_name_keep_their_own_state_when_the_first_is_gone(
        unchecked, qtbot, tmp_path, monkeypatch, tiny_models):
    """Two files of one card name are "tiny-a" and "tiny-a#2" by load order: the first gone, the second took its
    name and with it the first's saved on/off."""
    from inference.models import name_uniquely

    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))
    files = [tmp_path / "a1.onnx", tmp_path / "a2.onnx"]
    for f in files:
        shutil.copy(tiny_models["classifier"], f)

    def window(paths: list[Path]) -> MainWindow:
        w = MainWindow(None, list(name_uniquely([load_model(p) for p in paths])), [], [])
        qtbot.addWidget(w)
        return w

    w = window([*files, tiny_models["classifier2"]])
    try:
        assert [c.name for c in w.models.classifiers] == ["tiny-a", "tiny-a#2", "tiny-b"]
        w.models.set_enabled(w.models.classifiers[unchecked].name, False)
        before = _on_by_file(w)
    finally:
        w.shutdown()
    files[0].unlink()
    w2 = window([files[1], tiny_models["classifier2"]])
    try:
        assert [c.name for c in w2.models.classifiers] == ["tiny-a", "tiny-b"]
        assert _on_by_file(w2) == {p: on for p, on in before.items() if p != files[0]}
    finally:
        w2.shutdown()


def test_a_settings_file_that_saved_classifiers_by_name_is_still_read_then_saved_by_file(
        qtbot, make_window, tmp_path, tiny_models):
    """Settings from before the on/off state was kept by file: their names still apply once, and the next save
    keeps the state by file and drops the names; a saved list that is not one is ignored, not fatal."""
    w = make_window(None)
    w.qs.setValue("classifiers", ["tiny-a"])
    w.qs.setValue("classifiers_off", ["tiny-b"])
    w.qs.setValue("cam_model", "tiny-a")
    w.shutdown()
    w2 = make_window(None)
    assert _on_by_file(w2) == {tiny_models["classifier"]: True, tiny_models["classifier2"]: False}
    assert w2.display.cam_model == "tiny-a"
    w2.models.set_enabled("tiny-b", True)
    w2.models.set_enabled("tiny-a", False)
    w2.shutdown()
    assert w2.qs.value("classifiers") is None and w2.qs.value("classifiers_off") is None
    w3 = make_window(None)
    assert _on_by_file(w3) == {tiny_models["classifier"]: False, tiny_models["classifier2"]: True}
    w3.shutdown()
    for key in ("checked_classifier_files", "unchecked_classifier_files", "cam_model_file"):
        w3.qs.setValue(key, "not a file loaded")
    w3.qs.sync()
    w4 = make_window(None)
    assert set(_on_by_file(w4).values()) == {True} and w4.display.cam_model == "tiny-a"  # the first's CAM


def test_the_label_of_a_classifier_without_finite_outputs_says_so_not_nan():
    """A model trained to NaN read "predicts   CAM on face nan% → nan%" over the face."""
    from inference.results import ClassifierOutput, FaceResult, FaceView, SkinTone

    nan = float("nan")
    out = ClassifierOutput("diverged", ("male", "female"), np.array([nan, nan]), np.zeros((4, 4), np.float32),
                           "female", cam_focus=nan)
    skin = SkinTone(measurable=False, n_pixels=0, L=None, a=None, b=None, ita=None, ita_category=None, mst=None)
    view = FaceView(np.zeros((8, 8, 3), np.uint8), {"diverged": out}, skin)
    face = FaceResult(1, (0, 0, 8, 8), np.eye(2, 3), view, view)
    text = " ".join(t for line in face_lines(face) for t, _ in line)
    assert "no finite prediction" in text and "nan" not in text.lower(), text


# --- session summary and plots over a long session (2026-12: performance review) ------------------------------------


def _stats_face(tid: int, ita: float | None, ps: dict[str, float | None]):
    from inference.results import FaceResult, FaceView, SkinShift, SkinTone

    view = FaceView(np.zeros((1, 1, 3), np.uint8), {}, SkinTone(measurable=False, n_pixels=0))
    shift = None if ita is None else SkinShift(ita, 0.0, 0)
    return FaceResult(tid, (0, 0, 1, 1), np.eye(2, 3), view, view, shift, ps)


def _stats_frame(faces, filter_name: str | None = "f"):
    from inference.results import FrameResult

    return FrameResult(0, 0.0, np.zeros((1, 1, 3), np.uint8), tuple(faces), {}, {}, filter_name)


def _plain_summary(stats) -> list[dict]:
    """What SessionStats.summary() computed before it kept rows: every track's intervals from all its values."""
    from gui.recording import DELTA_ITA_RANGE, DELTA_P_RANGE
    from inference.metrics import series_mean_ci

    rows = []
    for tid in sorted(stats.frames):
        ita = series_mean_ci(stats.delta_ita.get(tid, []), bounds=DELTA_ITA_RANGE)
        for name in sorted(stats.delta_p.get(tid, {})) or [""]:
            p = series_mean_ci(stats.delta_p[tid][name], bounds=DELTA_P_RANGE) if name else series_mean_ci([])
            rows.append({"track_id": tid, "frames": stats.frames[tid], "delta_ita": ita, "classifier": name,
                         "delta_p_female": p})
    return rows


def _same(a, b) -> bool:
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float) and np.isnan(a) and np.isnan(b):
        return True
    return a == b and type(a) is type(b)


def test_the_session_summary_keeps_its_numbers_while_computing_only_what_changed():
    """The summary keeps each track's rows between calls: its numbers (mean, t interval, n) must stay those of all
    the track's values, through faces seen again, NaN and missing values, a classifier switched off, one value,
    constant values, and a restart for another filter."""
    from gui.recording import SessionStats

    rng = np.random.default_rng(7)
    stats = SessionStats()
    names = ("tiny-a", "tiny-b", "tiny-c")

    def random_face(tid):
        ita = None if rng.random() < 0.1 else (float("nan") if rng.random() < 0.05 else float(rng.normal(1, 3)))
        ps = {n: (float("nan") if rng.random() < 0.05 else float(rng.normal(0.02, 0.05)))
              for n in names if rng.random() < 0.8}
        return _stats_face(tid, ita, ps)

    for round_ in range(12):
        for _ in range(int(rng.integers(1, 30))):
            tids = rng.choice(np.arange(1, 40 + 4 * round_), size=int(rng.integers(0, 4)), replace=False)
            stats.add(_stats_frame([random_face(int(t)) for t in tids]))
        if round_ == 3:
            stats.add(_stats_frame([_stats_face(500, 2.5, {"tiny-a": 0.1}) for _ in range(1)]))  # one value
            for _ in range(3):
                stats.add(_stats_frame([_stats_face(501, 2.5, {"tiny-a": 0.1})]))  # constant values
        if round_ == 7:
            stats.add(_stats_frame([random_face(1)], filter_name="another"))  # restarts the session's figures
        rows = stats.summary()
        assert _same(rows, _plain_summary(stats)), round_
        assert len(rows) >= len(stats.frames)
    stats.reset()
    assert stats.summary() == []
    stats.add(_stats_frame([random_face(3)]))
    assert _same(stats.summary(), _plain_summary(stats))


def test_the_session_summary_recomputes_only_the_face_that_changed_and_never_under_the_stats_lock(monkeypatch):
    """Every tick computed every face's intervals again, holding the lock the inference thread needs for each frame:
    2 s a tick after an hour of video (1,350 faces). One face seen again among 500 is that face's intervals alone,
    computed with the lock free."""
    import gui.recording as recording

    stats = recording.SessionStats()
    for tid in range(1, 501):
        stats.add(_stats_frame([_stats_face(tid, float(tid % 7), {"tiny-a": 0.01 * (tid % 5), "tiny-b": 0.02})]))
        stats.add(_stats_frame([_stats_face(tid, float(tid % 3), {"tiny-a": 0.03, "tiny-b": -0.01 * (tid % 4)})]))
    real, calls = recording.series_mean_ci, []

    def counted(values, *args, **kwargs):
        calls.append(stats._lock.locked())
        return real(values, *args, **kwargs)

    monkeypatch.setattr(recording, "series_mean_ci", counted)
    first = stats.summary()
    assert len(first) == 1000 and calls and not any(calls)  # never with the lock held
    calls.clear()
    stats.add(_stats_frame([_stats_face(250, 9.0, {"tiny-a": 0.5, "tiny-b": 0.25})]))
    rows = stats.summary()
    assert len(calls) == 3 and not any(calls)  # ΔITA and two classifiers' ΔP of face #250, nothing else
    monkeypatch.setattr(recording, "series_mean_ci", real)
    assert _same(rows, _plain_summary(stats))
    changed = [r for r in rows if r["track_id"] == 250]
    assert [r["frames"] for r in changed] == [3, 3] and changed[0]["delta_ita"]["n"] == 3
    calls.clear()
    monkeypatch.setattr(recording, "series_mean_ci", counted)
    assert stats.summary() == rows and not calls  # nothing new: nothing computed


def test_a_faces_session_interval_stands_on_runs_of_frames_not_on_frames():
    """Each frame of a face had counted as a new sample: on a camera, frames a moment apart show nearly the same face,
    and the interval narrowed with the seconds recorded. Ten seconds of a slowly drifting shift at 30 frames/s."""
    import gui.recording as recording
    from inference.metrics import mean_ci

    drift = np.cumsum(np.random.default_rng(0).normal(0, 0.2, 300))
    stats = recording.SessionStats()
    for value in drift:
        stats.add(_stats_frame([_stats_face(1, float(value), {"tiny-a": float(value) / 100})]))
    [row] = stats.summary()
    plain = mean_ci(drift)
    assert row["delta_ita"]["n"] == 300 and row["delta_ita"]["batches"] == 7
    assert row["delta_ita"]["value"] == pytest.approx(plain["value"])
    assert row["delta_ita"]["hi"] - row["delta_ita"]["lo"] > 3 * (plain["hi"] - plain["lo"])
    assert row["delta_p_female"]["batches"] == 7


def test_the_summary_table_redraws_only_the_rows_of_faces_that_changed(qtbot, make_window, monkeypatch):
    """The table shows the same cells as a full redraw, and a face seen again reformats its rows alone."""
    import gui.session_summary as session_summary

    w = make_window(None)
    for tid in range(1, 201):
        w.stats.add(_stats_frame([_stats_face(tid, float(tid % 7), {"tiny-a": 0.01 * (tid % 5)})]))
        w.stats.add(_stats_frame([_stats_face(tid, float(tid % 3), {"tiny-a": 0.03})]))
    w.summary_dock.raise_()
    qtbot.waitUntil(lambda: w.summary.table.rowCount() == 200, timeout=WAIT)
    real, calls = session_summary._ci, []
    monkeypatch.setattr(session_summary, "_ci", lambda m, digits: calls.append(m) or real(m, digits))
    w.stats.add(_stats_frame([_stats_face(77, 5.0, {"tiny-a": 0.4})]))
    w.summary.refresh(w.stats)
    assert len(calls) == 2  # face #77's ΔITA and ΔP cells
    t = w.summary.table
    cells = [[t.item(i, j).text() for j in range(t.columnCount())] for i in range(t.rowCount())]
    expected = [[f"#{r['track_id']}", str(r["frames"]), real(r["delta_ita"], 1), str(r["delta_ita"]["n"]),
                 r["classifier"] or "—", real(r["delta_p_female"], 3), str(r["delta_p_female"]["n"])]
                for r in _plain_summary(w.stats)]
    assert cells == expected
    assert cells[76][1] == "3"
    header = t.horizontalHeader()  # still sized to the contents (measured once for the changed cells)
    assert {header.sectionResizeMode(j) for j in range(t.columnCount())} == {header.ResizeMode.ResizeToContents}


def test_the_plots_keep_only_what_they_can_show_over_a_long_session(qtbot):
    """Every face ever seen kept its points and its (hidden) curves until a reset: 0.1 MB a face, and each refresh
    went through all of them. After 2,000 faces the plots hold the last minute of the few most recent faces, and
    the curves of the faces that left are off the plots, not empty on them."""
    from dataclasses import replace

    from gui import plots
    from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone

    panel = plots.PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 300)
    panel.show()
    names = ("tiny-a", "tiny-b")
    skin = SkinTone(True, 100, 60.0, 10.0, 15.0, 30.0, "x", 3)
    cls = {n: ClassifierOutput(n, ("female", "male"), np.array([0.6, 0.4]), np.zeros((2, 2), np.float32), "female",
                               0.5) for n in names}
    view = FaceView(np.zeros((1, 1, 3), np.uint8), cls, skin)
    face = FaceResult(0, (0, 0, 10, 10), np.eye(2, 3), view, view, SkinShift(1.0, 1.0, 0), {n: 0.05 for n in names})
    fps, staying = 15, 100_000  # a face on screen all along, beside pairs of faces that come and go
    frame = 0
    for pair in range(1000):  # 2,000 faces
        for _ in range(3):
            t = frame / fps
            faces = (replace(face, track_id=staying), replace(face, track_id=2 * pair + 1),
                     replace(face, track_id=2 * pair + 2))
            panel.add_result(FrameResult(frame, t, np.zeros((1, 1, 3), np.uint8), faces, {"total": 5.0}, {}),
                             10.0, 15.0, 15.0)
            frame += 1
            if frame % 8 == 0:
                panel.setCurrentIndex((frame // 8) % 3)  # the skin tone, P(female) and CAM focus tabs in turn
                panel.refresh()
    panel.setCurrentWidget(panel.ita_plot)
    panel.refresh()
    assert panel.now > 3 * plots.WINDOW_S
    assert all(panel.now - s <= plots.WINDOW_S for s in panel.last_seen.values())  # only faces of the last minute
    limit = 2 * plots.WINDOW_S * fps // 3 + 3  # two faces every three frames, and the one staying
    assert len(panel.tracks) <= limit and len(panel.last_seen) <= limit
    assert len(panel.p_tracks) <= limit * len(names)
    window_points = plots.WINDOW_S * fps + 1
    for r in [*panel.tracks.values(), *panel.p_tracks.values()]:
        assert len(r.t) <= window_points and all(len(c) == len(r.t) for c in r.cols.values())
    track_curves = [k for k in panel._curves if k[0] in ("ita", "p")]
    assert len(track_curves) <= plots.MAX_TRACKS * (2 + 4 * len(names))
    items = [*panel.ita_plot.getPlotItem().listDataItems(), *(p for pl in panel.p_plots.values()
                                                              for p in pl.listDataItems()),
             *(p for pl in panel.focus_plots.values() for p in pl.listDataItems())]
    assert len(items) == len(track_curves)  # no curve left on a plot once its face left
    # what is shown is as before: the most recent faces, over the last minute
    assert set(panel._visible_tracks()) >= {staying, 1999, 2000}
    x, _ = panel._curves[("ita", staying, "o")].getData()
    assert list(x) == [f / fps for f in range(frame) if f / fps >= panel.now - plots.WINDOW_S]
    assert len(panel.ita_plot.getPlotItem().listDataItems()) == 2 * len(panel._visible_tracks())
    panel.reset()
    assert not panel.tracks and not panel.p_tracks and not [k for k in panel._curves if k[0] in ("ita", "p")]


def test_a_looped_folder_of_many_faces_keeps_each_shown_faces_last_minute(qtbot):
    """A looped folder gives each photo's face its id back every round: with more than a dozen faces, one was
    dropped as not among the dozen most recent before its photo came round, and its curve came back as one dot."""
    from dataclasses import replace

    from gui import plots
    from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone

    panel = plots.PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(900, 300)
    panel.show()
    skin = SkinTone(True, 100, 60.0, 10.0, 15.0, 30.0, "x", 3)
    cls = {"tiny-a": ClassifierOutput("tiny-a", ("female", "male"), np.array([0.6, 0.4]), np.zeros((2, 2), np.float32),
                                      "female", 0.5)}
    view = FaceView(np.zeros((1, 1, 3), np.uint8), cls, skin)
    face = FaceResult(0, (0, 0, 10, 10), np.eye(2, 3), view, view, SkinShift(1.0, 1.0, 0), {"tiny-a": 0.05})
    photos, every = 20, 0.5  # 20 one-face photos at 2 a second, looped: each face comes round every 10 s
    seen: dict[int, list[float]] = {}
    for i in range(400):
        t, tid = i * every, i % photos + 1
        seen.setdefault(tid, []).append(t)
        panel.add_result(FrameResult(i, t, np.zeros((1, 1, 3), np.uint8), (replace(face, track_id=tid),),
                                     {"total": 5.0}, {}), 10.0, 15.0, 15.0)
    panel.setCurrentWidget(panel.ita_plot)
    panel.refresh()
    for tid in panel._visible_tracks():
        x, _ = panel._curves[("ita", tid, "o")].getData()
        assert list(x) == [t for t in seen[tid] if t >= panel.now - plots.WINDOW_S], tid


# --- found by a review of the app driven offscreen --------------------------------------------------------------------

def test_open_camera_opens_the_camera_not_a_folder_of_its_number_in_the_working_folder(qtbot, make_window, faces_dir,
                                                                                       tmp_path, monkeypatch):
    """The dialog's number went in as its digits, which name a path where one is there: 0 played ./0, a folder of
    photos, as a slideshow; 1, with an empty ./1, said "1: no images found"."""
    import inference.sources as sources
    from gui import main_window

    monkeypatch.chdir(tmp_path)
    shutil.copytree(faces_dir, tmp_path / "0")
    (tmp_path / "1").mkdir()
    cameras, told = [], []

    def camera(index: int):
        cameras.append(index)
        cam = _ScriptedCamera(10_000, "end")
        cam.name = f"camera {index}"
        return cam

    monkeypatch.setattr(sources, "CameraSource", camera)
    monkeypatch.setattr(main_window, "tell_plainly", lambda parent, title, text, *icon: told.append(text))
    w = make_window(None)
    for index in (0, 1):
        monkeypatch.setattr(main_window.QInputDialog, "getInt", staticmethod(lambda *a, **k: (index, True)))
        shown = w.status.source.text()
        w.ask_camera()  # the user types the number in "Open camera…"
        qtbot.waitUntil(lambda: told or w.status.source.text() != shown, timeout=WAIT)
        assert not told and w.status.source.text() == f"source: camera {index}" and cameras[-1] == index


def test_a_source_is_opened_off_the_gui_thread_and_the_newest_request_wins(qtbot, make_window, faces_dir, tmp_path,
                                                                           monkeypatch):
    """Opening a 24 MP photo (decoded whole to check it) or listing a folder of 21,000 files held the GUI thread
    0.3 to 0.5 s: it is opened on a thread of its own, the window saying so meanwhile; a source asked for later is
    the one played, and the one opened in between is let go."""
    import threading

    import gui.source_player as source_player

    real, gui_thread = source_player.open_source, threading.get_ident()
    release, closed, where = threading.Event(), threading.Event(), []

    def opening(spec, loop=False):
        where.append((spec, threading.get_ident()))
        if spec != "slow":
            return real(spec, loop=loop)
        release.wait(5)  # as a huge folder or photo takes its time
        source = real(str(faces_dir), loop=loop)
        close = source.close
        source.close = lambda: (closed.set(), close())
        return source

    monkeypatch.setattr(source_player, "open_source", opening)
    w = make_window(None)
    w.open_source("slow")
    qtbot.waitUntil(lambda: bool(where), timeout=WAIT)
    assert where[0][0] == "slow" and where[0][1] != gui_thread and not release.is_set()
    assert w.statusBar().currentMessage() == "opening slow…" and w.message.text() == "Opening slow…"
    other = tmp_path / "other"
    shutil.copytree(faces_dir, other)
    assert _open(qtbot, w, str(other))  # asked for while the first is still opening
    assert w.source_name == str(other) and w.statusBar().currentMessage() == ""
    release.set()
    qtbot.waitUntil(closed.is_set, timeout=WAIT)  # the first, opened late, is closed, not played
    assert w.source_name == str(other) and w.capture.source.name == str(other) and w.opening is None
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)


def test_a_snapshot_is_drawn_and_written_off_the_gui_thread_and_said_once_written(qtbot, make_window, faces_dir,
                                                                                   monkeypatch):
    """A snapshot of a 24 MP photo drew and encoded a 4616 px PNG on the GUI thread: 1.4 s of a frozen window."""
    import threading

    import gui.recording_controls as recording_controls
    from gui.recording_controls import shown_folder

    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    gui_thread, release, where = threading.get_ident(), threading.Event(), {}
    real_render, real_save = recording_controls.render, recording_controls.save_snapshot

    def render(*args, **kw):
        where["render"] = threading.get_ident()
        return real_render(*args, **kw)

    def save(*args, **kw):
        where["save"] = threading.get_ident()
        release.wait(5)  # as a big PNG takes its time to encode
        return real_save(*args, **kw)

    monkeypatch.setattr(recording_controls, "render", render)
    monkeypatch.setattr(recording_controls, "save_snapshot", save)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    pending = w.snapshot()
    qtbot.waitUntil(lambda: "save" in where, timeout=WAIT)
    assert where["render"] != gui_thread and where["save"] != gui_thread and not release.is_set()
    assert not any("saved in" in t for t in said)  # said once written, not before
    release.set()
    png, js = pending.result(timeout=WAIT / 1000)
    qtbot.waitUntil(lambda: f"saved in {shown_folder(png.parent)}: {png.name} and .json" in said, timeout=WAIT)
    assert cv2.imread(str(png)) is not None and '"faces"' in js.read_text()


def test_switching_sources_waits_neither_for_the_old_capture_nor_its_frame_in_detection(qtbot, make_window, faces_dir,
                                                                                         tmp_path, monkeypatch):
    """The switch joined the old capture's thread (up to 0.3 s) and spun until the old source's frame in detection
    was through (up to 1 s), on the GUI thread. Not waited for, that frame is dropped once detected: neither
    analysed nor recorded under the new source."""
    import threading
    import time

    import gui.workers as workers
    from gui.workers import CaptureThread
    from inference.sources import Frame

    w = make_window(str(faces_dir), loop=True)
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    qtbot.waitUntil(lambda: w.detect.idle() and w.inference.idle(), timeout=WAIT)
    gui_thread, detecting, release = threading.get_ident(), threading.Event(), threading.Event()
    waited: list[int] = []
    real_detect, real_wait, process = workers.detect_or_none, CaptureThread.wait, w.pipeline.process

    def detect_slowly(detector, image, name):
        if name == "old.jpg":
            detecting.set()
            release.wait(5)
        return real_detect(detector, image, name)

    analysed: list[str] = []

    def analysing(image, *args, **kw):
        analysed.append(args[1])
        return process(image, *args, **kw)

    monkeypatch.setattr(workers, "detect_or_none", detect_slowly)
    monkeypatch.setattr(CaptureThread, "wait",
                        lambda cap, ms: waited.append(threading.get_ident()) or real_wait(cap, ms))
    monkeypatch.setattr(w.pipeline, "process", analysing)
    w.toggle_record()
    w.captured.put(Frame(cv2.imread(str(sorted(faces_dir.iterdir())[0])), 0, time.monotonic(), "old.jpg"))
    qtbot.waitUntil(detecting.is_set, timeout=WAIT)
    other = tmp_path / "other"
    shutil.copytree(faces_dir, other)
    w.open_source(str(other))
    qtbot.waitUntil(lambda: w.source_name == str(other), timeout=WAIT)
    assert gui_thread not in waited and not w.detect.idle()  # switched with the old frame still in detection
    release.set()
    w.toggle_pause()
    qtbot.waitUntil(lambda: len(analysed) >= 2, timeout=WAIT)
    assert "old.jpg" not in analysed and w.recorder.rows > 0
    w.toggle_record()
    rows = list(csv.DictReader(open(w.recorder.path, newline="")))
    assert rows and all(r["source"] != "old.jpg" for r in rows)


def test_a_new_source_clears_the_old_sources_end_from_the_status_bar(qtbot, make_window, faces_dir, tmp_path):
    """"end of clip.avi" stayed in the status bar for 15 s over the source opened after it."""
    clip = _clip_of_faces(tmp_path, faces_dir)
    w = make_window(None)
    w.open_source(str(clip))
    qtbot.waitUntil(lambda: "end of clip.avi" in w.statusBar().currentMessage(), timeout=WAIT)
    w.open_source(str(faces_dir))
    # the new source as the status line shows it: a path past its width elided in the middle (a worker's tmp_path
    # under pytest-xdist, one folder deeper, is), as StatusLine.show_source elides it
    from PySide6.QtCore import Qt

    from gui.status_line import SOURCE_WIDTH

    shown = w.status.source.fontMetrics().elidedText(f"source: {faces_dir}", Qt.TextElideMode.ElideMiddle,
                                                     SOURCE_WIDTH)
    qtbot.waitUntil(lambda: w.status.source.text() == shown, timeout=WAIT)
    assert "end of" not in w.statusBar().currentMessage()


def test_an_output_folder_that_is_a_file_is_said_to_be_one(qtbot, make_window, faces_dir, tmp_path, monkeypatch):
    """Recording said "Cannot record: '…/notadir: File exists'" (and a snapshot "…: File exists")."""
    import gui.recording_controls as recording_controls

    told: list[tuple[str, str]] = []
    monkeypatch.setattr(recording_controls, "tell_plainly", lambda parent, title, text: told.append((title, text)))
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    notadir = tmp_path / "notadir"
    notadir.write_text("")
    w.recording.output_dir = notadir
    w.toggle_record()
    assert not w.recorder.active and not w.act_record.isChecked()
    w.snapshot()
    qtbot.waitUntil(lambda: len(told) == 2, timeout=WAIT)
    assert [title for title, _ in told] == ["Cannot record", "Cannot save snapshot"]
    for _, text in told:
        assert text.startswith(f"{notadir}: this is a file, not a folder") and "File exists" not in text


def test_a_saved_cam_class_no_classifier_has_is_not_run_behind_the_one_shown(qtbot, make_window, tmp_path):
    """A saved cam_class=man with male/female classifiers: the combo showed "male" while the pipeline and the
    snapshots ran "man", and picking "male" changed nothing."""
    (tmp_path / "settings.ini").write_text("[General]\ncam_class=man\n")
    w = make_window(None)
    shown = w.display_controls.cam_class_combo.currentText()
    assert shown in ("predicted", "male", "female") and w.display_controls.cam_class == shown
    qtbot.waitUntil(lambda: w.pipeline.config.cam_class == shown, timeout=WAIT)
    other = "female" if shown != "female" else "male"
    w.display_controls.cam_class_combo.setCurrentText(other)
    qtbot.waitUntil(lambda: w.pipeline.config.cam_class == other, timeout=WAIT)


# --- small and HiDPI screens ------------------------------------------------------------
LONG_FILTER = "a-filter-with-a-fifty-one-character-name-from-a-lab"  # 51 characters, one word


def _grown_by_long_names_and_rows(qtbot, w: MainWindow, tmp_path) -> None:
    """What had grown the window during a session: a classifier of a long name (a row more), the session summary
    raised under a filter of a long name."""
    long_name = "a-classifier-with-a-name-much-longer-than-any-row-of-the-side-panel"
    assert w.models.load_classifier_file(make_classifier(tmp_path / "long.onnx", name=long_name))
    w.stats.filter_label = LONG_FILTER
    w.summary_dock.raise_()
    qtbot.waitUntil(lambda: not w.summary.table.visibleRegion().isEmpty(), timeout=WAIT)
    w.summary.refresh(w.stats)


def test_a_first_start_fits_the_screen_and_the_windows_minimum_a_1080p_screen_at_200_percent(qtbot, make_window,
                                                                                             tmp_path):
    """A first start opened at 1500×950 on any screen, and the window could not be made smaller than 1053×720: the
    side panel (not scrolled) and the session note (one line) set its minimum, above 1080p at 150 % (1280×720)."""
    from PySide6.QtCore import QRect, QSize

    from gui.window_size import first_start_size

    assert first_start_size(QRect(0, 0, 1920, 1040)) == QSize(1500, 950)  # where it fits, as before
    for room in (QRect(0, 0, 1366, 768), QRect(0, 0, 1280, 720), QRect(0, 0, 960, 540)):
        size = first_start_size(room)
        assert size.width() <= room.width() and size.height() <= room.height()
    w = make_window(None, filters=("conditional", "darken"))  # a conditional filter: the condition row shows
    room = w.screen().availableGeometry()
    assert w.width() <= room.width() and w.height() <= room.height()
    _grown_by_long_names_and_rows(qtbot, w, tmp_path)
    hint = w.minimumSizeHint()  # 960×540 less a window frame's room
    assert hint.width() <= 960 - 40 and hint.height() <= 540 - 40, hint


def test_no_long_name_or_added_row_grows_the_window(qtbot, make_window, tmp_path):
    """Raising the session summary under a filter of a long name widened the window (1053 → 1419 px), and each
    classifier row, the filter condition row, a long classifier name made it taller or wider, past the screen.
    Long names are elided, whole in their tooltips; added rows scroll."""
    from PySide6.QtWidgets import QCheckBox

    w = make_window(None, filters=("darken", "conditional"))
    before = w.minimumSizeHint()
    _grown_by_long_names_and_rows(qtbot, w, tmp_path)
    w.models.set_filter(w.models.filters[1])  # a conditional filter: the condition row shows
    assert w.display_controls.condition_combo.isVisible()
    after = w.minimumSizeHint()
    assert after.width() <= before.width() and after.height() <= before.height(), (before, after)
    assert LONG_FILTER in w.summary.note.toolTip() and LONG_FILTER not in w.summary.note.text()
    row = [b for b in w.models.cls_box.findChildren(QCheckBox) if "much-longer" in b.toolTip()]
    assert row and all(len(box.text()) <= model_panel.NAME_CHARS for box in row)  # rows rebuilt, not yet deleted too


@pytest.mark.parametrize("size, tabs", [((1280, 720), 3), ((960, 540), 1)])
def test_the_plots_keep_a_usable_height_in_a_window_the_size_of_a_small_screen(qtbot, make_window, size, tabs):
    """At 1280×720 the side panel's height (its minimum, 476 px) took the plots' room: plot areas of 0 to 30 px.
    At 960×540 (1080p at 200 %) the view's minimum height of 240 px left the skin tone plot 85 px."""
    w = make_window(None)
    w.resize(*size)  # as the window manager maximises it
    w.plots_dock.raise_()
    for tab, plot in ((w.plots.ita_plot, w.plots.ita_plot.getPlotItem()), (w.plots.hist_widget, w.plots.hist_p),
                      (w.plots.speed_widget, w.plots.stage_plot))[:tabs]:
        w.plots.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: plot.vb.height() >= 120, timeout=WAIT)


def test_no_legend_covers_the_data_of_its_plot(qtbot):
    """The ΔP(female) and speed legends were anchored inside their plots, over the bars near 0 and the curves."""
    from gui.plots import STAGES, PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(940, 260)  # 1080p at 200 %: beside their plots, the legends pushed the last plot out of sight
    panel.show()
    panel.t0 = 0.0
    for t in range(5):
        panel.speed.add(float(t), fps=2.0, fps_shown=2.0, latency=50.0, **{s: 10.0 for s in STAGES})
    panel.now = 4.0
    values = np.array([-0.1, 0.0, 0.2])
    panel.refresh(np.array([1.0, -2.0]), {"tiny-a": values, "tiny-b": values})
    for tab, plot, entries in ((panel.hist_widget, panel.hist_p, 2), (panel.speed_widget, panel.fps_plot, 2),
                               (panel.speed_widget, panel.stage_plot, len(STAGES))):
        panel.setCurrentWidget(tab)
        legend = plot.legend
        qtbot.waitUntil(lambda: len(legend.items) == entries and legend.sceneBoundingRect().width() > 0
                        and plot.vb.sceneBoundingRect().height() > 0, timeout=WAIT)
        assert legend.isVisible()
        assert not legend.sceneBoundingRect().intersects(plot.vb.sceneBoundingRect()), plot.titleLabel.text
        assert max(item.sceneBoundingRect().right() for item in (legend, *tab.ci.items)) <= tab.width()


def test_a_card_shows_its_text_as_written_and_per_group_figures_as_a_table(models):
    """The card showed "gender\\u00d7race" and the per-group shifts as one run of JSON under "Other"."""
    from dataclasses import replace
    from types import SimpleNamespace

    filt = models["darken"]
    card = replace(filt.card, training={"name": "adults balanced over gender×race", "by": ["gender", "race"]},
                   metrics={"by_gender_race": {"female|Asian": {"mean_delta_ita": 0.1461, "n": 32},
                                               "male|Black": {"mean_delta_ita": -0.393, "n": 51}}})
    text = model_panel.card_html(SimpleNamespace(card=card, path=filt.path, provider="CPU", info=filt.info))
    assert "gender×race" in text and "\\u00d7" not in text and "gender, race" in text
    assert "{" not in text and "&quot;" not in text  # no JSON
    assert "<td>female|Asian</td><td>0.1461</td><td>32</td>" in text


def test_on_a_hidpi_screen_the_frame_keeps_its_device_pixels(qtbot):
    """The view was drawn at its logical size and scaled up by Qt: at 150-200 % the frame and the labels over it were
    blurred. It is drawn at the screen's device pixels, in the same logical geometry."""
    import numpy as np

    from gui.painter import Composed, DisplaySettings
    from inference.results import FrameResult

    checks = np.indices((800, 1800)).sum(axis=0) % 2 * 255  # one-pixel detail: any resampling greys it
    frame = np.repeat(checks.astype(np.uint8)[..., None], 3, axis=2)
    result = FrameResult(0, 0.0, frame, (), {}, {})
    settings = DisplaySettings(view="original")
    plain, sharp = {}, {}
    low, high = render(result, settings, 900, 440, geometry=plain), render(result, settings, 900, 440, geometry=sharp,
                                                                               dpr=2.0)
    assert (low.width(), low.height(), high.width(), high.height()) == (900, 440, 1800, 880)
    assert high.devicePixelRatio() == 2.0 and sharp["image_rect"] == plain["image_rect"]  # logical, as the mouse is
    pixels = np.frombuffer(high.constBits(), np.uint8).reshape(880, high.bytesPerLine() // 4, 4)[..., :3]
    rect = sharp["image_rect"]
    middle = pixels[int(rect.center().y() * 2) - 50:int(rect.center().y() * 2) + 50,
                    int(rect.center().x() * 2) - 50:int(rect.center().x() * 2) + 50].astype(int)
    assert np.abs(np.diff(middle, axis=1)).mean() > 200  # the checks, pixel for pixel
    ahead = Composed.of(result, settings, (900, 440), 2.0)
    assert ahead.fits(result, settings, (900, 440), 2.0) and not ahead.fits(result, settings, (900, 440))
    assert render(result, settings, 900, 440, ready=ahead, dpr=2.0) == high


def test_a_frame_read_as_play_was_paused_waits_for_play_to_resume():
    """A folder's image read while Pause was pressed was delivered after the pause: the view moved on, and a
    recording started while paused took that frame as its first."""
    import threading

    import numpy as np

    from gui.workers import CaptureThread, Mailbox
    from inference.sources import Frame

    class PausedDuringRead:
        name, live, fps = "folder", False, None
        end_warning = None

        def __init__(self):
            self.capture: CaptureThread | None = None
            self.reads = 0

        def read(self):
            self.reads += 1
            if self.reads > 1:
                threading.Event().wait(0.05)
                return None
            self.capture.set_paused(True)  # Pause pressed while this read was under way
            return Frame(np.zeros((8, 8, 3), np.uint8), 0, 0.0, "a.jpg")

    source, mailbox = PausedDuringRead(), Mailbox()
    capture = CaptureThread(source, mailbox, slideshow_fps=20)
    source.capture = capture
    capture.start()
    threading.Event().wait(0.4)
    assert not mailbox.pending()  # nothing arrives while paused
    capture.set_paused(False)
    assert mailbox.wait(2.0) and mailbox.take().name == "a.jpg"
    capture.stop()
    assert capture.wait(2000)


def test_a_switched_away_capture_is_destroyed_on_the_gui_thread(qtbot, make_window, faces_dir, tmp_path, monkeypatch):
    """A capture's `finished` came while its thread still held it; the window let go of it on that signal, so the
    thread, ending a moment later, could drop the last reference and destroy the Qt object off the GUI thread."""
    import threading
    import time

    from gui.workers import CaptureThread

    real_run = CaptureThread._run_and_finish

    def ends_late(cap):
        real_run(cap)  # `finished` is emitted here
        time.sleep(0.3)  # the thread, descheduled before it lets go of the capture

    destroyed_on: list[int] = []
    monkeypatch.setattr(CaptureThread, "_run_and_finish", ends_late)
    monkeypatch.setattr(CaptureThread, "__del__", lambda cap: destroyed_on.append(threading.get_ident()),
                        raising=False)
    w = make_window(str(faces_dir), loop=True)
    qtbot.waitUntil(lambda: w.capture is not None and w.capture.isRunning(), timeout=WAIT)
    other = tmp_path / "other"
    shutil.copytree(faces_dir, other)
    assert _open(qtbot, w, str(other))
    qtbot.waitUntil(lambda: destroyed_on != [], timeout=WAIT)
    assert destroyed_on == [threading.get_ident()]
