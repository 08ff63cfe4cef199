"""The main window's menu bar and toolbar: each action, its keys, and the menu and toolbar it shows in."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QToolBar

if TYPE_CHECKING:
    from .display_controls import DisplayControls
    from .frame_view import HelpOverlay
    from .main_window import MainWindow


@dataclass
class WindowActions:
    """The actions the window changes after they are made."""
    pause: QAction
    record: QAction


def add_actions(window: MainWindow, controls: DisplayControls, docks: Sequence[QDockWidget], help_overlay: HelpOverlay,
                ask_output_dir: Callable[[], None]) -> WindowActions:
    """Adds the toolbar, the File, View and Help menus and their actions to ``window``; the keys work anywhere in
    it. C, F and V work ``controls``; the View menu opens and closes ``docks``; Help shows ``help_overlay``."""
    tb = QToolBar("Main")
    tb.setObjectName("main toolbar")
    window.addToolBar(tb)
    menu_file = window.menuBar().addMenu("&File")
    menu_view = window.menuBar().addMenu("&View")
    menu_help = window.menuBar().addMenu("&Help")

    def act(text, slot, keys=(), menu=None, toolbar=False, checkable=False):
        a = QAction(text, window)
        if keys:
            a.setShortcuts([QKeySequence(k) for k in keys])
            a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        a.setCheckable(checkable)
        a.triggered.connect(slot)
        window.addAction(a)
        if menu is not None:
            menu.addAction(a)
        if toolbar:
            tb.addAction(a)
        return a

    act("Open video or image…", window.ask_open_any, ["Ctrl+O"], menu_file, True)
    act("Open image folder…", window.ask_open_folder, ["Ctrl+Shift+O"], menu_file)
    act("Open camera…", window.ask_camera, [], menu_file)
    act("Output folder…", ask_output_dir, [], menu_file)
    menu_file.addSeparator()
    act("Quit", window.close, ["Ctrl+Q"], menu_file)
    tb.addSeparator()
    act_pause = act("Pause", window.toggle_pause, ["Space"], menu_view, True, checkable=True)
    act_record = act("● Record", window.toggle_record, ["R"], menu_file, True, checkable=True)
    act("Snapshot", window.snapshot, ["S"], menu_file, True)
    tb.addSeparator()
    act("CAM", lambda: controls.cam_check.toggle(), ["C"], menu_view, True)
    act("Filter on/off", lambda: controls.filter_check.toggle(), ["F"], menu_view, True)
    act("Next view", controls.cycle_view, ["V"], menu_view, True)
    # a dock closed with its × could be reopened only from the toolbar's right-click menu, and stayed closed
    menu_view.addSeparator()
    for dock in docks:
        menu_view.addAction(dock.toggleViewAction())  # named as the dock is titled
    tb.addSeparator()
    act("Help", help_overlay.toggle, ["H", "F1"], menu_help, True)
    return WindowActions(act_pause, act_record)
