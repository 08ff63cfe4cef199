"""The main window's menu bar and toolbar: each action, its keys, and the menu and toolbar it shows in."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from PySide6.QtCore import QEvent, QObject, Qt
from PySide6.QtGui import QAction, QKeyEvent, QKeySequence
from PySide6.QtWidgets import (QAbstractButton, QAbstractSlider, QAbstractSpinBox, QApplication,
                               QComboBox, QDockWidget, QLineEdit, QPlainTextEdit, QTextEdit, QToolBar, QWidget)


if TYPE_CHECKING:
    from .display_controls import DisplayControls
    from .frame_view import HelpOverlay
    from .main_window import MainWindow


# The keys a slider moves itself by: none is a shortcut today, but a one-key shortcut among them would steal them
SLIDER_KEYS = {Qt.Key.Key_Left, Qt.Key.Key_Right, Qt.Key.Key_Up, Qt.Key.Key_Down, Qt.Key.Key_PageUp,
               Qt.Key.Key_PageDown, Qt.Key.Key_Home, Qt.Key.Key_End}
COMMAND_MODIFIERS = (Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.AltModifier
                     | Qt.KeyboardModifier.MetaModifier)
# The focus comes back to the control that had it (the window active again, a drop-down's list or a menu closed): the
# control stays as the focus came to it, by a click or by the keyboard
FOCUS_COMES_BACK = {Qt.FocusReason.ActiveWindowFocusReason, Qt.FocusReason.PopupFocusReason,
                    Qt.FocusReason.MenuBarFocusReason}
# The app moves the focus itself (a classifier's row made again, the help closed): the control it moves the focus to
# takes the place of the one that had it, and is as that one was. Counted as the keyboard, Space after a click on a
# classifier's check box had ticked it back, and after the help opened and closed had ticked the clicked check box
FOCUS_MOVED_BY_APP = Qt.FocusReason.OtherFocusReason


def _typed_into(widget: QWidget) -> bool:
    """Whether ``widget`` takes what is typed as its text (a read-only text, as the help's, does not)."""
    if isinstance(widget, (QLineEdit, QTextEdit, QPlainTextEdit)):
        return not widget.isReadOnly()
    return isinstance(widget, QAbstractSpinBox) or (isinstance(widget, QComboBox) and widget.isEditable())


def control_uses_key(widget: QWidget | None, event: QKeyEvent, by_keyboard: bool) -> bool:
    """Whether ``widget``, the control with the focus, uses the key of ``event`` itself: a text or number field takes
    what is typed into it; a slider its arrow keys; a button, a check box or a drop-down list Space, where the keyboard
    brought the focus to it (``by_keyboard``). A key with Ctrl, Alt or Meta is a command, never the control's.

    A clicked control keeps the focus: had it kept Space, the Space after a click on "Reset session" (to pause, as the
    help says) had wiped the session again. A drop-down list or a table takes no letters: "F" in the filter list had
    chosen "From file…" and opened a file dialog, not switched the filter off; arrows choose in them."""
    if widget is None or event.modifiers() & COMMAND_MODIFIERS:
        return False
    if _typed_into(widget):
        return bool(event.text()) and event.text().isprintable()
    if isinstance(widget, (QAbstractButton, QComboBox)):
        return by_keyboard and event.key() == Qt.Key.Key_Space
    return isinstance(widget, QAbstractSlider) and event.key() in SLIDER_KEYS


def _by_keyboard(reason: Qt.FocusReason, old_by_keyboard: bool) -> bool | None:
    """Whether a focus that moved for ``reason`` was brought by the keyboard (Tab, a shortcut); where the app moved
    it itself, whether the keyboard had brought it to the control that lost it (``old_by_keyboard``). None where the
    focus did not move but came back to the control that had it."""
    if reason in FOCUS_COMES_BACK:
        return None
    if reason == FOCUS_MOVED_BY_APP:
        return old_by_keyboard
    return reason != Qt.FocusReason.MouseFocusReason


def _in_window(widget: QWidget, window: QWidget) -> bool:
    """Whether ``widget`` is part of ``window``, in a floating dock of it too (a window of its own)."""
    while widget is not None and widget is not window:
        widget = widget.parentWidget()
    return widget is window


class KeysToFocusedControls(QObject):
    """Lets the focused control of ``window`` have the keys it uses (``control_uses_key``) before the window's
    one-key shortcuts do: Space on a check box reached with Tab had paused the video instead of ticking it. Elsewhere
    (the video view has the focus when a source opens) the keys stay shortcuts: scoped to the view instead, they
    would have stopped working once any other control was clicked.

    Watches each control that takes the focus, and acts for it while it has it: Qt asks the control a key is for
    (the shortcut-override event) before it tries a shortcut. A filter on the whole application would have seen
    every event of every widget. Why the focus moved (a click, or the keyboard) the focus events say: Qt sends the
    control that loses the focus and the one that takes it their events before it says the focus changed, and the
    first of the two is watched already wherever the focus moves within the window. A click on the control that has
    the focus moves none: its mouse press says it."""

    def __init__(self, window: QWidget) -> None:
        super().__init__(window)
        self._window = window
        self._reason: Qt.FocusReason | None = None  # why the focus is moving, from its focus events; None: unseen
        self._keyboard_focused: QWidget | None = None  # the control the keyboard brought the focus to
        QApplication.instance().focusChanged.connect(self._watch)

    def _watch(self, old: QWidget | None, new: QWidget | None) -> None:
        reason, self._reason = self._reason, None
        if new is None or not _in_window(new, self._window):
            return
        new.installEventFilter(self)  # once: Qt installs a filter again in the place of the first
        old_by_keyboard = old is not None and old is self._keyboard_focused
        # unseen (the window's first focus, or one from another window): a click, for all that is known
        by_keyboard = _by_keyboard(reason, old_by_keyboard) if reason is not None else False
        if by_keyboard is not None:
            self._keyboard_focused = new if by_keyboard else None

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        kind = event.type()
        if kind in (QEvent.Type.FocusIn, QEvent.Type.FocusOut):
            self._reason = event.reason()  # read by ``_watch``, which Qt calls after both
        elif kind == QEvent.Type.MouseButtonPress and obj is self._keyboard_focused:
            # a click on the control that has the focus moves no focus: Space after a click on "Reset session",
            # reached with Tab before, had wiped the session again
            self._keyboard_focused = None
        elif kind == QEvent.Type.ShortcutOverride and obj.hasFocus() \
                and control_uses_key(obj, event, obj is self._keyboard_focused):
            event.accept()  # an accepted override: no shortcut, and the key goes to the focused control
            return True
        return False


class FullScreen(QObject):
    """``window`` on the whole screen and back (F11, the View menu's ``action``): a projector of 1024×768 left the
    picture a fifth of the window. Esc leaves it too, where nothing before the window took the key (the help, shown,
    closes on Esc first). The action's tick follows the window's state, however it changed."""

    def __init__(self, window: QWidget, action: QAction) -> None:
        super().__init__(window)
        self._window, self._action = window, action
        window.installEventFilter(self)

    def show_full(self, on: bool) -> None:
        state = self._window.windowState()
        full = Qt.WindowState.WindowFullScreen
        self._window.setWindowState(state | full if on else state & ~full)  # a maximized window stays maximized
        self._action.setChecked(self._window.isFullScreen())

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if obj is not self._window:
            return False
        kind = event.type()
        if kind == QEvent.Type.WindowStateChange:
            self._action.setChecked(self._window.isFullScreen())
        elif kind == QEvent.Type.KeyPress and event.key() == Qt.Key.Key_Escape and self._window.isFullScreen():
            self.show_full(False)
            return True
        return False


@dataclass
class WindowActions:
    """The actions the window changes after they are made."""
    pause: QAction
    record: QAction
    full_screen: QAction


def add_actions(window: MainWindow, controls: DisplayControls, docks: Sequence[QDockWidget], help_overlay: HelpOverlay,
                ask_output_dir: Callable[[], None]) -> WindowActions:
    """Adds the toolbar, the File, View and Help menus and their actions to ``window``; the keys work anywhere in
    it, but for a one-key shortcut's key the focused control uses itself (``KeysToFocusedControls``). C, F and V
    work ``controls``; the View menu opens and closes ``docks``; Help shows ``help_overlay``."""
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
    menu_view.addSeparator()
    act_full = act("Full screen", lambda on: full_screen.show_full(on), ["F11"], menu_view, checkable=True)
    full_screen = FullScreen(window, act_full)
    tb.addSeparator()
    act("Help", help_overlay.toggle, ["H", "F1"], menu_help, True)
    KeysToFocusedControls(window)
    return WindowActions(act_pause, act_record, act_full)
