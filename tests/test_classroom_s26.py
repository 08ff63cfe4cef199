"""The app as a classroom's projector met it (review of 2026-12-07, /tmp/s26/classroom): full screen, what Record
records, a camera another program holds, the camera remembered, a setting saved but never read, the filter picked
again, and status messages cut mid-word. Offscreen, on the tiny models of tests/test_app.py."""
from __future__ import annotations

import argparse
import threading
import time
from pathlib import Path

import cv2
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings, Qt  # noqa: E402
from PySide6.QtGui import QFont, QFontMetrics  # noqa: E402
from PySide6.QtWidgets import QApplication, QPushButton  # noqa: E402

from gui import settings as st  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402
from inference.sources import Frame  # noqa: E402
from tests.conftest import utk_images  # noqa: E402
from tests.test_app import WAIT, _has_faces, _open, make_window, models  # noqa: E402,F401  (fixtures: used by name)


class _Camera:
    """A live camera at ``index`` that delivers frames once ``frames`` is set (set from the start unless
    ``held``): held, it opens and gives none, as one another program (a video call) holds."""

    live = True
    end_warning = None

    def __init__(self, index: int, held: bool = False):
        self.name = f"camera {index}"
        self.image = cv2.imread(str(utk_images(1)[0]))
        self.frames = threading.Event()
        if not held:
            self.frames.set()
        self.n = 0

    def read(self):
        time.sleep(0.02)
        if not self.frames.is_set():
            return Frame(None, self.n, time.monotonic(), self.name, "the camera stopped delivering frames")
        self.n += 1
        return Frame(self.image, self.n, time.monotonic(), self.name)

    def reopen(self):
        return True

    def close(self):
        pass


def _cameras(monkeypatch, plugged: dict[int, _Camera]) -> list:
    """``open_source`` opens the cameras ``plugged`` (by index) and refuses any other, as a missing camera is;
    returns the list of what was asked for, in order."""
    import gui.source_player as source_player
    from inference.sources import camera_index

    asked = []

    def open_source(spec, loop=False):
        index = camera_index(spec)
        asked.append(index)
        if index not in plugged:
            raise BiasMirrorError(f"no camera could be opened at index {index}; check it is connected and not in "
                                  "use, or open a video file or image folder instead", f"camera {index}")
        return plugged[index]

    monkeypatch.setattr(source_player, "open_source", open_source)
    return asked


def _active(qtbot, w):
    """``w`` as the active window, its view focused: keys go where the user's would."""
    with qtbot.waitActive(w):
        w.activateWindow()
    w.view.setFocus()
    return w


def _full_screen_action(w):
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text() == "&View")
    return next(a for a in view_menu.actions() if a.text() == "Full screen")


def _press(qtbot, key: Qt.Key) -> None:
    qtbot.keyClick(QApplication.focusWidget(), key)


def _settled(qtbot, w) -> None:
    """Waits until what the window was asked to open (and any camera it fell back to) is taken up or refused."""
    qtbot.waitUntil(lambda: w.opening is None, timeout=WAIT)


# --- 1. full screen ----------------------------------------------------------------------------------------------

def test_f11_puts_the_window_on_the_whole_screen_and_f11_or_esc_takes_it_back(qtbot, make_window, tmp_path):
    """On a 1024×768 projector the picture was a fifth of the window, and F11 did nothing."""
    w = _active(qtbot, make_window(None))
    full = _full_screen_action(w)
    assert full.shortcut().toString() == "F11" and full.isCheckable()
    _press(qtbot, Qt.Key.Key_F11)
    assert w.isFullScreen() and full.isChecked()
    _press(qtbot, Qt.Key.Key_F11)
    assert not w.isFullScreen() and not full.isChecked()
    full.trigger()  # from the View menu
    assert w.isFullScreen() and full.isChecked()
    _press(qtbot, Qt.Key.Key_F1)
    assert w.help.isVisible()
    _press(qtbot, Qt.Key.Key_Escape)  # closes the help first, as it did
    assert not w.help.isVisible() and w.isFullScreen()
    _press(qtbot, Qt.Key.Key_Escape)
    assert not w.isFullScreen() and not full.isChecked()
    _press(qtbot, Qt.Key.Key_Escape)  # and does nothing out of full screen
    assert not w.isFullScreen()


def test_the_help_lists_full_screen_and_quit(qtbot, make_window):
    """Ctrl+Q quit the app, but the help named it nowhere; F11 is new."""
    w = make_window(None)
    text = w.help.toPlainText()
    assert "F11" in text and "full screen" in text and "Ctrl+Q" in text and "quit" in text, text
    assert text.index("F11") > text.index("Space")  # in the table of keys, with the others


def test_a_window_closed_in_full_screen_opens_again_with_f11_working(qtbot, make_window):
    """The settings round trip: the window saved in full screen (the projector's, the next lesson) comes back in full
    screen, its action ticked; F11 then gives it back its size from before."""
    w = _active(qtbot, make_window(None))
    normal = w.geometry()
    _press(qtbot, Qt.Key.Key_F11)
    assert w.isFullScreen()
    w.shutdown()
    again = _active(qtbot, make_window(None))
    full = _full_screen_action(again)
    assert again.isFullScreen() and full.isChecked()
    _press(qtbot, Qt.Key.Key_F11)
    assert not again.isFullScreen() and not full.isChecked()
    qtbot.waitUntil(lambda: again.size() == normal.size(), timeout=WAIT)


# --- 2. what Record records --------------------------------------------------------------------------------------

def test_record_says_it_records_csv_rows_not_a_video_and_where(qtbot, make_window, faces_dir, tmp_path, monkeypatch):
    """A teacher who "recorded the demo" found a CSV: Record's tooltip was "● Record"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    w = make_window(str(faces_dir))
    tip = w.act_record.toolTip()
    assert "CSV" in tip and "one CSV row per face per frame" in tip and "no video" in tip, tip
    assert "~/out" in tip and "(R)" in tip, tip  # the folder, as a snapshot's message says it
    w.recording.output_dir = tmp_path / "elsewhere"
    assert "~/elsewhere" in w.act_record.toolTip()
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    w.toggle_record()
    path = w.recorder.path
    assert said[-1] == f"recording one CSV row per face per frame (no video) in ~/elsewhere: {path.name}", said


# --- 3. a camera that opens but never gives a frame ----------------------------------------------------------------

def test_a_camera_held_by_another_program_says_so_and_offers_try_a_camera(qtbot, make_window, monkeypatch):
    """It was "camera 0 lost — retrying every second" and "the camera stopped delivering frames": it never started,
    and nothing said another program (a video call) may hold it."""
    held = _Camera(0, held=True)
    _cameras(monkeypatch, {0: held})
    w = make_window(None)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    assert _open(qtbot, w, 0)
    w.capture.retry_every = 0.05
    qtbot.waitUntil(lambda: w.camera_lost, timeout=WAIT)
    text = w.message.text()
    assert w.stack.currentWidget() is w.message_page, w.view.note
    assert "another program" in text and "video call" in text and "Try a camera…" in text, text
    assert "Try a camera…" in [b.text() for b in w.message_page.findChildren(QPushButton)]  # the button it names
    qtbot.waitUntil(lambda: any("another program" in m for m in said), timeout=WAIT)
    assert not any("stopped delivering frames" in m or "reconnected" in m for m in said), said
    held.frames.set()  # the other program let it go
    qtbot.waitUntil(lambda: not w.camera_lost and _has_faces(w), timeout=WAIT)
    assert w.stack.currentWidget() is w.view


def test_a_camera_lost_after_its_frames_is_still_called_lost(qtbot, make_window, monkeypatch):
    """Only a camera that never gave a frame is sent to the other program: one unplugged mid-lesson is lost."""
    cam = _Camera(0)
    _cameras(monkeypatch, {0: cam})
    w = make_window(None)
    assert _open(qtbot, w, 0)
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.capture.retry_every = 0.05
    cam.frames.clear()
    qtbot.waitUntil(lambda: w.camera_lost, timeout=WAIT)
    assert w.stack.currentWidget() is w.view and "camera 0 lost — retrying every second" in w.view.note


# --- 4. the camera remembered ----------------------------------------------------------------------------------

def test_the_camera_last_opened_is_opened_at_the_next_start(qtbot, make_window, monkeypatch, tmp_path):
    """Every start opened camera 0: an external USB camera at 1 had to be chosen again every day."""
    asked = _cameras(monkeypatch, {0: _Camera(0), 1: _Camera(1)})
    w = make_window(None)
    assert _open(qtbot, w, 1)  # "Try a camera…" 1
    w.shutdown()  # closed, and opened again on the same settings file
    assert QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat).value("last_camera") in (1, "1")
    again = make_window(None)
    asked.clear()
    again.open_last_camera()
    _settled(qtbot, again)
    assert asked == [1] and again.source_name == "camera 1"
    assert again.stack.currentWidget() is again.view


def test_the_camera_last_opened_that_is_gone_falls_back_to_camera_0_with_a_note(qtbot, make_window, monkeypatch):
    asked = _cameras(monkeypatch, {0: _Camera(0)})
    w = make_window(None)
    st.put(w.qs, st.LAST_CAMERA, 1)  # the USB camera of yesterday, unplugged
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    w.open_last_camera()
    _settled(qtbot, w)
    assert asked == [1, 0] and w.source_name == "camera 0" and w.stack.currentWidget() is w.view
    note = "camera 1, opened last time, is not there: camera 0 opened instead"
    assert note in w._warnings and said[-1] == note, said
    assert st.last_camera(w.qs) == 1  # fallen back to, not chosen: the USB camera is looked for again next time


def test_without_any_camera_the_start_page_is_shown_as_before(qtbot, make_window, monkeypatch):
    asked = _cameras(monkeypatch, {})
    w = make_window(None)
    st.put(w.qs, st.LAST_CAMERA, 2)
    with qtbot.waitSignal(w.source_opened, timeout=WAIT) as opened:
        w.open_last_camera()
    assert opened.args == [False] and asked == [2, 0]
    assert w.stack.currentWidget() is w.message_page
    assert w.message.text().startswith("No camera found at index 0"), w.message.text()
    assert "camera 2, opened last time, is not there" in w._warnings  # and not that camera 0 opened
    assert st.last_camera(w.qs) == 2  # nothing opened: the camera to look for next time stays


def test_the_app_without_source_opens_the_camera_last_opened(qtbot, monkeypatch, tmp_path, tiny_models, capsys):
    """`python main.py` (no --source) opens the remembered camera; the camera dialog offers it first."""
    import main
    from gui import app_cli

    asked = _cameras(monkeypatch, {0: _Camera(0), 3: _Camera(3)})
    settings = tmp_path / "settings.ini"
    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(settings))
    QSettings(str(settings), QSettings.Format.IniFormat).setValue("last_camera", 3)
    parser = argparse.ArgumentParser()
    app_cli.add_arguments(parser)
    assert parser.parse_args([]).source is None
    code = main.main(["app", "--max-seconds", "3", "--classifier", str(tiny_models["classifier"]), "--no-filter",
                      "--log", str(tmp_path / "app.log")])
    assert code == 0, capsys.readouterr().err
    assert asked == [3]


def test_the_camera_dialog_offers_the_camera_last_opened(qtbot, make_window, monkeypatch):
    from PySide6.QtWidgets import QInputDialog

    offered = []
    monkeypatch.setattr(QInputDialog, "getInt", lambda *a: offered.append(a[3]) or (0, False))
    w = make_window(None)
    st.put(w.qs, st.LAST_CAMERA, 2)
    w.ask_camera()
    assert offered == [2]


# --- 5. a setting saved but never read ----------------------------------------------------------------------------

def test_slideshow_fps_is_no_longer_saved_and_an_old_saved_one_is_let_go(qtbot, make_window, tmp_path):
    """It was saved at every quit and read nowhere: only --slideshow-fps sets it."""
    ini = tmp_path / "settings.ini"
    QSettings(str(ini), QSettings.Format.IniFormat).setValue("slideshow_fps", 0.5)  # an earlier version's
    w = make_window(None, fps=7.0)
    w.shutdown()
    assert QSettings(str(ini), QSettings.Format.IniFormat).value("slideshow_fps") is None
    assert "slideshow_fps" not in ini.read_text()


# --- 6. the filter picked again ------------------------------------------------------------------------------------

def test_picking_a_filter_in_the_list_switches_the_filter_on(qtbot, make_window, faces_dir):
    """With the filter switched off by F, picking it again in the list left it off, under "no filter active"."""
    w = _active(qtbot, make_window(str(faces_dir)))
    _press(qtbot, Qt.Key.Key_F)
    check, combo = w.display_controls.filter_check, w.models.filter_combo
    assert not check.isChecked()
    combo.activated.emit(0)  # "none": the switch is left as it is
    assert not check.isChecked()
    combo.activated.emit(combo.findText("identity"))
    assert check.isChecked() and w.models.active_filter().name == "identity"
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.faces[0].filtered is not None, timeout=WAIT)
    assert st.get(w.qs, "apply_filter", False, bool)  # and saved so


# --- 7. status messages --------------------------------------------------------------------------------------------

def test_eliding_keeps_whole_words(qapp):
    from gui.status_line import elide_at_words

    metrics = QFontMetrics(QFont())
    text = "camera 0: the camera stopped delivering frames; retrying every second…"
    assert elide_at_words(text, metrics, 10_000) == text
    for width in range(metrics.horizontalAdvance("camera…") + 3, metrics.horizontalAdvance(text), 7):
        shown = elide_at_words(text, metrics, width)
        assert shown.endswith("…") and metrics.horizontalAdvance(shown) <= width, (width, shown)
        kept = shown[:-1]
        assert text.startswith(kept) and text[len(kept)] in " ,;:", (width, shown)  # ends where a word ends
    assert elide_at_words("unbreakable", metrics, metrics.horizontalAdvance("unbr…")).endswith("…")  # one word: cut


def test_a_long_passing_message_is_cut_at_a_word_and_drawn_so(qtbot, make_window, faces_dir):
    """"…retrying every s|source: camera 0": the message was cut mid-word at the first standing label."""
    w = make_window(str(faces_dir))
    w.resize(1008, 728)
    qtbot.waitUntil(lambda: w.width() == 1008, timeout=WAIT)
    bar = w.statusBar()
    message = ("camera 0: the camera stopped delivering frames; retrying every second… and this message goes on "
               "past what a projector's status bar can hold, word after word after word")
    bar.showMessage(message)
    qtbot.wait(50)
    shown = bar.shown_message()
    assert bar.currentMessage() == message  # whole for anyone who reads it
    assert shown != message and shown.endswith("…") and message[len(shown) - 1] == " ", shown
    # drawn as shown: past its words, only the bar's background
    image = bar.grab().toImage()
    dpr = image.devicePixelRatio()
    room = bar._message_room()
    start = room.left() + bar.fontMetrics().horizontalAdvance(shown) + 2
    background = image.pixelColor(int((room.right() - 1) * dpr), int(2 * dpr))
    inked = [x for x in range(int(start * dpr), int(room.right() * dpr))
             for y in range(int(room.top() * dpr) + 1, int(room.bottom() * dpr) - 1)
             if image.pixelColor(x, y) != background]
    assert not inked, inked[:10]


def test_a_recordings_messages_say_the_folder_first_as_a_snapshots_do(qtbot, make_window, faces_dir, tmp_path,
                                                                      monkeypatch):
    """It said "recording saved to /…/rows-…0.c": the whole path, said last, was cut. Snapshots say "saved in ~/…:
    name"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    w = make_window(str(faces_dir), fps=10.0, loop=True)
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    w.toggle_record()
    qtbot.waitUntil(lambda: w.recorder.rows > 0, timeout=WAIT)
    path = w.recorder.path
    w.toggle_record()
    assert said[-1].startswith(f"recording saved in ~/out: {path.name} ("), said[-1]
    w = make_window(str(faces_dir), fps=4.0)  # a second one, ended by its source's end
    w.toggle_record()
    qtbot.waitUntil(lambda: w.recorder.rows > 0, timeout=WAIT)
    second = w.recorder.path
    qtbot.waitUntil(lambda: "end of" in w.view.note, timeout=WAIT)
    assert f"recording saved in ~/out: {second.name}" in w.view.note and str(second) not in w.view.note, w.view.note


def test_said_shortly_leaves_a_line_without_the_path_as_it_is(tmp_path, monkeypatch):
    from gui.recording_controls import said_shortly

    monkeypatch.setenv("HOME", str(tmp_path))
    path = tmp_path / "out" / "rows-1.csv"
    assert said_shortly("recording stopped: no face was analysed while it ran, so rows-1.csv had no rows", path) \
        == "recording stopped: no face was analysed while it ran, so rows-1.csv had no rows"
    assert said_shortly(f"recording stopped: {path}: No space left on device", path) \
        == f"recording stopped: {Path('~', 'out', 'rows-1.csv')}: No space left on device"
    assert said_shortly("anything", None) == "anything"
