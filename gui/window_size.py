"""The window's size and its docks' at a first start, fitted to its screen, and a saved window put back where it fits.

Pure arithmetic on the screen's room (first_start_size, first_start_plots_height) and on a saved geometry
(saved_frame), and the functions that look up a window's screen and size and restore the window (size_docks and
restore_window, which MainWindow calls).
"""
from __future__ import annotations

import struct

from PySide6.QtCore import QByteArray, QPoint, QRect, QSettings, QSize, Qt
from PySide6.QtGui import QGuiApplication, QScreen
from PySide6.QtWidgets import QDockWidget, QMainWindow

FIRST_SIZE = QSize(1500, 950)  # a first start's window, where the screen has room for it
FRAME_ROOM = QSize(16, 40)  # left on the screen for the window's frame and title bar, where it has not
# QWidget.saveGeometry's data begins with this magic number and a header read by saved_frame (Qt 5 and 6 alike)
GEOMETRY_MAGIC, GEOMETRY_HEAD = 0x1D9D0CB, struct.Struct(">IHH4i")
PLOTS_HEIGHT, SIDE_WIDTH = 330, 380  # the docks' sizes at a first start in a window of FIRST_SIZE
# On a screen without room for FIRST_SIZE the plots get this share of its height, and at least PLOTS_MIN: a fixed
# 330 px left the view 322 px of a 1366×768 screen and 274 px of a 1280×720 one, too little for most faces' labels.
# Less than this leaves plot areas under 120 px once titles, axes and legends are drawn: view and plots share the loss.
PLOTS_SHARE, PLOTS_MIN = 0.36, 250


def first_start_size(available: QRect) -> QSize:
    """The window's size at a first start on a screen of ``available`` room: FIRST_SIZE where it fits, else the
    room less the frame's. A fixed 1500×950 ran past a 1366×768 screen, and 1080p at 150 % or 200 %."""
    if available.width() >= FIRST_SIZE.width() and available.height() >= FIRST_SIZE.height():
        return QSize(FIRST_SIZE)
    return FIRST_SIZE.boundedTo(available.size() - FRAME_ROOM)


def first_start_plots_height(available: QRect) -> int:
    """The plots dock's height at a first start on a screen of ``available`` room: PLOTS_HEIGHT in a window of
    FIRST_SIZE (1080p, as before), else PLOTS_SHARE of the screen's height, PLOTS_MIN at least."""
    if first_start_size(available) == FIRST_SIZE:
        return PLOTS_HEIGHT
    return max(PLOTS_MIN, min(PLOTS_HEIGHT, round(available.height() * PLOTS_SHARE)))


def saved_frame(geometry: QByteArray) -> QRect | None:
    """The window's frame in ``geometry``, QWidget.saveGeometry's data (its magic number, major and minor version,
    then the frame's left, top, right and bottom, big-endian), or None where it is not such data: where Qt refuses to
    restore a geometry, the screen the window was on is told only there."""
    head = geometry.data()[:GEOMETRY_HEAD.size]
    if len(head) < GEOMETRY_HEAD.size:
        return None
    magic, _major, _minor, left, top, right, bottom = GEOMETRY_HEAD.unpack(head)
    return QRect(QPoint(left, top), QPoint(right, bottom)) if magic == GEOMETRY_MAGIC else None


def _screen_of(window: QMainWindow) -> QScreen | None:
    return window.screen() or QGuiApplication.primaryScreen()


def size_docks(window: QMainWindow, plots_dock: QDockWidget, side_dock: QDockWidget,
               room: QRect | None = None) -> None:
    """The docks' first-start sizes in a window on a screen of ``room``, or on the window's screen."""
    if room is None and (screen := _screen_of(window)) is not None:
        room = screen.availableGeometry()
    plots = first_start_plots_height(room) if room is not None else PLOTS_HEIGHT
    window.resizeDocks([plots_dock], [plots], Qt.Orientation.Vertical)
    window.resizeDocks([side_dock], [SIDE_WIDTH], Qt.Orientation.Horizontal)


def restore_window(window: QMainWindow, qs: QSettings, plots_dock: QDockWidget, side_dock: QDockWidget) -> None:
    """The last session's window, where it fits its screen; else the first start's size and docks on the screen
    it would be on. Qt refuses a geometry saved on a screen of another size (restoreGeometry is False): a window
    saved on a 1920 px monitor had reopened on a 1366 px one at Qt's default, 2/3 of the screen, its side panel
    clipped."""
    geometry = qs.value("geometry")
    saved = isinstance(geometry, QByteArray)
    restored = saved and window.restoreGeometry(geometry)
    # the screen it is restored onto, or was saved on where Qt refused it: the window's own was the primary one
    # until then, and a window closed on the other monitor, checked against it, had reopened on the primary one
    frame = window.frameGeometry() if restored else saved_frame(geometry) if saved else None
    screen = (QGuiApplication.screenAt(frame.center()) if frame is not None else None) or _screen_of(window)
    room = screen.availableGeometry() if screen is not None else None
    kept = restored and (room is None or room.contains(window.frameGeometry()))
    if not kept:
        window.resize(first_start_size(room) if room is not None else FIRST_SIZE)
        if saved and room is not None:
            window.move(room.topLeft())  # one fitted partly (its place kept, its size too big) is on the screen
    state = qs.value("window_state")
    if isinstance(state, QByteArray):
        window.restoreState(state)  # which docks are open, and where
    if not kept:
        # sized before in a window of another size, or saved for another screen
        size_docks(window, plots_dock, side_dock, room)
