"""The window on small screens and after a move to one, its docks, its status bar's source and frame rates
(offscreen, no webcam)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

import pytest

pytest.importorskip("pytestqt")

from tests.conftest import REPO, utk_images  # noqa: E402

from gui.main_window import MainWindow  # noqa: E402
from gui.window_size import PLOTS_HEIGHT, first_start_size  # noqa: E402
from tests.test_app import WAIT, make_window, models  # noqa: E402,F401  (fixtures: used by name)

SMALL_SCREENS = [(1366, 768), (1280, 720)]  # a common laptop, and 1080p at 150 %
BIG_SCREEN = (1920, 1080)
# at a first start the view keeps at least this share of a small screen's height (it had 42 % of 1366×768, 38 % of
# 1280×720), while the plots keep plot areas of 120 px (tests/test_app.py: the plots at a small screen's size)
VIEW_SHARE = 0.45

# A first start (or a restart) on the screens of QT_QPA_PLATFORM's config file: the window's layout as JSON, then
# closed as the user closes it (its geometry and docks saved to BIASMIRROR_SETTINGS). Given a JSON [x, y, width,
# height, plots height] first, the user moves and resizes the window there and its plots dock to that height.
LAYOUT_SCRIPT = """
import json, sys
from PySide6.QtCore import QEventLoop, QTimer, Qt
from PySide6.QtWidgets import QApplication
app = QApplication(sys.argv[:1])
from gui.main_window import MainWindow

def laid_out():
    loop = QEventLoop()
    QTimer.singleShot(300, loop.quit)
    loop.exec()

w = MainWindow(None, [], [], [])
w.show()
laid_out()
if len(sys.argv) > 1:
    x, y, width, height, plots = json.loads(sys.argv[1])
    w.resize(width, height)
    w.move(x, y)
    laid_out()
    w.resizeDocks([w.plots_dock], [plots], Qt.Orientation.Vertical)
    laid_out()
room, frame = w.screen().availableGeometry(), w.frameGeometry()
print(json.dumps({"room": room.getRect(), "frame": frame.getRect(), "size": [w.width(), w.height()],
                  "view_height": w.stack.height(), "side_width": w.side_dock.width(),
                  "side_right": w.side_dock.geometry().right(), "plots_height": w.plots_dock.height(),
                  "screen": w.screen().name()}))
w.close()
"""


def _layout_on(screen: tuple[int, int], settings, tmp_path) -> dict:
    """The window's layout at a start on an offscreen screen of ``screen`` pixels, ``settings`` its .ini."""
    return _layout_on_screens([screen], settings, tmp_path)


def _layout_on_screens(screens: list[tuple[int, int]], settings, tmp_path, place: list[int] | None = None) -> dict:
    """The window's layout at a start on offscreen screens of these sizes, side by side from the left and named by
    their index, ``settings`` its .ini; ``place`` as LAYOUT_SCRIPT takes it, the user's move before it closes."""
    config = tmp_path / ("screens-" + "-".join(f"{w}x{h}" for w, h in screens) + ".json")
    lefts = [sum(w for w, _ in screens[:i]) for i in range(len(screens))]
    config.write_text(json.dumps({"screens": [
        {"name": str(i), "x": left, "y": 0, "width": w, "height": h, "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1}
        for i, (left, (w, h)) in enumerate(zip(lefts, screens))]}))
    env = dict(os.environ, QT_QPA_PLATFORM=f"offscreen:configfile={config}", BIASMIRROR_SETTINGS=str(settings))
    done = subprocess.run([sys.executable, "-c", LAYOUT_SCRIPT, *([json.dumps(place)] if place else [])], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def _fits(layout: dict) -> bool:
    rx, ry, rw, rh = layout["room"]
    fx, fy, fw, fh = layout["frame"]
    return rx <= fx and ry <= fy and fx + fw <= rx + rw and fy + fh <= ry + rh


@pytest.mark.parametrize("screen", SMALL_SCREENS)
def test_a_first_start_on_a_small_screen_leaves_the_view_most_of_its_height(screen, tmp_path):
    """The plots dock was 330 px on any screen: the view got 322 px of a 1366×768 screen, 274 of a 1280×720 one, and
    the labels of most faces did not fit beside them."""
    layout = _layout_on(screen, tmp_path / "settings.ini", tmp_path)
    assert _fits(layout), layout
    assert layout["view_height"] >= VIEW_SHARE * screen[1], layout


def test_a_first_start_on_a_1080p_screen_keeps_its_plots_height():
    from PySide6.QtCore import QRect

    from gui.window_size import first_start_plots_height

    assert first_start_plots_height(QRect(0, 0, *BIG_SCREEN)) == PLOTS_HEIGHT


def test_a_window_saved_on_a_big_screen_reopens_on_a_small_one_as_a_first_start_there(tmp_path):
    """Qt refuses a geometry saved on a screen of another size: the window reopened at 2/3 of the small screen, the
    docks at their big-screen sizes, the side panel clipped."""
    from PySide6.QtCore import QRect

    small = SMALL_SCREENS[0]
    _layout_on(BIG_SCREEN, tmp_path / "settings.ini", tmp_path)
    moved = _layout_on(small, tmp_path / "settings.ini", tmp_path)
    assert _fits(moved), moved
    assert moved["size"] == list(first_start_size(QRect(*moved["room"])).toTuple()), moved
    assert moved["side_right"] < moved["size"][0] and moved["view_height"] >= VIEW_SHARE * small[1], moved
    again = _layout_on(small, tmp_path / "settings.ini", tmp_path)  # saved on this screen now: kept as it was
    assert _fits(again) and again["size"] == moved["size"], again


def _on_second_screen(screens: list[tuple[int, int]], share: float, across: bool = False) -> list[int]:
    """A place for LAYOUT_SCRIPT on the second of ``screens`` (side by side): ``share`` of its width and height, a
    tenth of it in from its top left corner, or ``across`` both screens' edge, the plots dock at 2/3 of its
    first-start height."""
    (left, _), (width, height) = screens[0], screens[1]
    x = left - round(width * share) // 2 if across else left + width // 10
    return [x, height // 10, round(width * share), round(height * share), PLOTS_HEIGHT * 2 // 3]


def test_a_window_closed_on_the_second_screen_reopens_there_as_it_was(tmp_path):
    """The room it was checked against was the primary screen's (the window's before its geometry was restored): a
    window closed on the other monitor reopened on the primary one at the first-start size, its docks' sizes lost."""
    screens = [BIG_SCREEN, BIG_SCREEN]
    first = _layout_on_screens(screens, tmp_path / "settings.ini", tmp_path)
    moved = _layout_on_screens(screens, tmp_path / "settings.ini", tmp_path, _on_second_screen(screens, 0.6))
    assert moved["screen"] != first["screen"] and _fits(moved), (first, moved)
    assert moved["plots_height"] != first["plots_height"], moved  # the user's, not the first start's
    again = _layout_on_screens(screens, tmp_path / "settings.ini", tmp_path)
    assert again["screen"] == moved["screen"] and again["frame"] == moved["frame"], (moved, again)
    assert again["plots_height"] == moved["plots_height"], (moved, again)


def test_a_window_left_across_two_screens_reopens_at_its_size_with_its_docks(tmp_path):
    """Qt moves it whole onto the screen it was saved on, the second: there it fits, and keeps its size and docks."""
    screens = [BIG_SCREEN, BIG_SCREEN]
    _layout_on_screens(screens, tmp_path / "settings.ini", tmp_path)
    across = _layout_on_screens(screens, tmp_path / "settings.ini", tmp_path, _on_second_screen(screens, 0.6, True))
    assert across["frame"][0] < screens[0][0] < across["frame"][0] + across["frame"][2], across
    again = _layout_on_screens(screens, tmp_path / "settings.ini", tmp_path)
    assert again["size"] == across["size"] and again["plots_height"] == across["plots_height"], (across, again)


def test_a_window_saved_on_a_bigger_second_screen_reopens_on_it_as_a_first_start_there(tmp_path):
    """Where the second screen is now smaller than the window saved on it, the window opens at the first-start size
    on that screen, not on the primary one."""
    from PySide6.QtCore import QRect

    before, now = [BIG_SCREEN, BIG_SCREEN], [BIG_SCREEN, SMALL_SCREENS[0]]
    _layout_on_screens(before, tmp_path / "settings.ini", tmp_path)
    big = _layout_on_screens(before, tmp_path / "settings.ini", tmp_path, _on_second_screen(before, 0.8))
    assert big["screen"] == "1" and _fits(big), big
    moved = _layout_on_screens(now, tmp_path / "settings.ini", tmp_path)
    assert moved["screen"] == big["screen"] and _fits(moved), moved
    assert moved["size"] == list(first_start_size(QRect(*moved["room"])).toTuple()), moved


def test_a_setting_that_is_no_saved_geometry_tells_no_frame():
    from PySide6.QtCore import QByteArray

    from gui.window_size import saved_frame

    assert saved_frame(QByteArray(b"")) is None and saved_frame(QByteArray(b"not a window's geometry")) is None


def test_each_dock_can_be_closed_and_reopened_from_the_view_menu(qtbot, make_window):
    """A dock closed with its × could be reopened only from the toolbar's right-click menu, and stayed closed."""
    w = make_window(None)
    view_menu = next(a.menu() for a in w.menuBar().actions() if a.text().replace("&", "") == "View")
    toggles = {a.text(): a for a in view_menu.actions()}
    for dock in (w.side_dock, w.plots_dock, w.summary_dock):
        assert dock.windowTitle() in toggles, list(toggles)
        dock.close()
        qtbot.waitUntil(lambda: not dock.isVisible(), timeout=WAIT)
        toggles[dock.windowTitle()].trigger()
        qtbot.waitUntil(dock.isVisible, timeout=WAIT)


def test_a_long_source_path_is_elided_not_widening_the_window(qtbot, make_window, tmp_path):
    """A folder of a 162-character name made the window wider than a 1366 px screen, the side panel crushed to
    68 px: "Opening <its path>…", a word too long to wrap, on the page shown while it opened; and its path in the
    status bar, whole."""
    w = make_window(None)
    room = w.screen().availableGeometry()
    name, metrics = "my_family_photos_from_the_summer_holiday", w.status.source.fontMetrics()
    while metrics.horizontalAdvance(name) <= room.width():
        name += "_my_family_photos_from_the_summer_holiday"
    folder = tmp_path / name
    folder.mkdir()
    shutil.copy(utk_images(1)[0], folder)
    with qtbot.waitSignal(w.source_opened, timeout=WAIT) as opened:
        w.open_source(str(folder))
    assert opened.args[0]
    qtbot.wait(2 * w.slow_timer.interval())  # laid out again, the status bar's rates shown
    assert w.minimumSizeHint().width() <= room.width(), w.minimumSizeHint()
    assert w.status.source.minimumSizeHint().width() <= room.width() and str(folder) in w.status.source.toolTip()
    head, tail = w.status.source.text().split("…")  # elided in the middle: its start and its end stay
    assert f"source: {folder}".startswith(head) and name.endswith(tail) and tail


def _status_rates(w: MainWindow) -> tuple[float, float] | None:
    found = re.search(r"([\d.]+) fps processed · ([\d.]+) shown", w.status.fps.text())
    return (float(found[1]), float(found[2])) if found else None


def test_a_slow_slideshow_shows_as_many_frames_per_second_as_it_processes(qtbot, make_window, tmp_path, monkeypatch):
    """At 0.2 fps the status bar said "0.2 fps processed · 0.5 shown" (shown counted over 2 s, processed over 5 s),
    and the Speed tab's "displayed" stayed 0 though every frame was shown."""
    folder = tmp_path / "slow"
    folder.mkdir()
    for image in utk_images(2):
        shutil.copy(image, folder)
    fed: list[tuple[float, float]] = []  # (processed, displayed) as the Speed tab gets them
    w = make_window(None, fps=0.3)  # slower than one frame in the 2 s the shown rate was counted over
    plotted = w.plots.add_result

    def plot(result, latency_ms: float, processed: float, displayed: float) -> None:
        fed.append((processed, displayed))
        plotted(result, latency_ms, processed, displayed)

    monkeypatch.setattr(w.plots, "add_result", plot)
    with qtbot.waitSignal(w.source_opened, timeout=WAIT):
        w.open_source(str(folder))
    qtbot.waitUntil(lambda: "Ctrl+O" in w.view.note, timeout=WAIT)  # the slideshow is over, every frame shown
    assert w.results_shown == w.inference.frames_done == len(fed)
    qtbot.wait(2 * w.slow_timer.interval())  # the status bar's rates counted since
    processed, shown = _status_rates(w)
    assert processed == shown > 0, w.status.fps.text()
    assert all(displayed > 0 for _, displayed in fed[1:]), fed  # the first frame comes before anything was shown


def test_no_camera_is_said_in_one_sentence(qtbot, make_window):
    """The message said it twice: "No camera found at index 0. camera 0: no camera could be opened at index 0; …"."""
    w = make_window("9")
    text = w.message.text()
    assert w.stack.currentWidget() is w.message_page
    assert text.startswith("No camera found at index 9") and text.count("index 9") == 1, text
    assert "check it is connected" in text
