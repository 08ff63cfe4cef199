"""The window with the keyboard alone (offscreen): the one-key shortcuts leave a control reached with Tab the Space
it uses and a text field what is typed into it, and work in a clicked control, a drop-down list and a table; Tab
leaves the session summary's table, the help scrolls and Esc closes it, the arrow keys move the split line, ticking a
classifier keeps the focus, Tab follows the model panel as it shows, each "Card" button says whose card it opens, and
a disabled control looks disabled."""
from __future__ import annotations

import functools

import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QEvent, QPoint, QRect, Qt  # noqa: E402
from PySide6.QtGui import QColor, QKeyEvent, QPalette  # noqa: E402
from PySide6.QtWidgets import (QApplication, QCheckBox, QFileDialog, QLineEdit, QPushButton,  # noqa: E402
                               QTableWidgetItem, QToolButton, QVBoxLayout, QWidget)

from tests.test_app import WAIT, _has_faces, _open, make_window, models  # noqa: E402,F401  (fixtures: used by name)
from tests.test_app_legibility import LARGE_FONT_PT, with_large_font  # noqa: E402

from gui.frame_view import FrameView, HelpOverlay  # noqa: E402
from gui.model_panel import ModelPanel, elided  # noqa: E402
from gui.painter import VIEW_MODES, DisplaySettings  # noqa: E402
from gui.session_summary import SessionSummary  # noqa: E402
from gui.window_actions import control_uses_key  # noqa: E402

# WCAG's least contrast for large text and the parts of a control: a disabled control's text may be dimmer than
# enabled text's 4.5:1, not unreadable
MIN_DISABLED_CONTRAST = 3.0
# the help at a 1366×768 screen's size with a 24 pt font, where the docks leave the view about a third of its height
SMALL_SCREEN = (1366, 768)


def _active(qtbot, widget: QWidget) -> QWidget:
    """``widget`` shown as the active window: keys go to its focused control."""
    widget.show()
    with qtbot.waitActive(widget):
        widget.activateWindow()
    return widget


def _press(qtbot, key: Qt.Key, modifier=Qt.KeyboardModifier.NoModifier) -> None:
    """``key`` pressed as the user presses it: on whatever has the focus."""
    qtbot.keyClick(QApplication.focusWidget(), key, modifier)


def _one_key_shortcuts(w) -> set[str]:
    return {s.toString() for a in w.actions() for s in a.shortcuts() if len(s.toString()) == 1}


def _state(w) -> tuple:
    """What the one-key shortcuts change."""
    c = w.display_controls
    return w.paused, w.act_record.isChecked(), c.filter_check.isChecked(), c.cam_check.isChecked(), w.display.view


# --- 1. the one-key shortcuts and the focused control ------------------------------------------
def _reset_button(w) -> QPushButton:
    return next(b for b in w.summary.findChildren(QPushButton) if b.text() == "Reset session")


def test_space_on_a_check_box_reached_with_tab_ticks_it_and_does_not_pause(qtbot, make_window):
    w = _active(qtbot, make_window(None))
    box = w.display_controls.labels_check
    box.setFocus(Qt.FocusReason.TabFocusReason)
    ticked = box.isChecked()
    _press(qtbot, Qt.Key.Key_Space)
    assert box.isChecked() is not ticked, "Space on a focused check box did not tick it"
    assert not w.paused, "Space on a focused check box paused the window"


def test_space_on_a_push_button_reached_with_tab_presses_it_and_does_not_pause(qtbot, make_window):
    w = _active(qtbot, make_window(None))
    w.summary_dock.raise_()
    button = _reset_button(w)
    button.setFocus(Qt.FocusReason.TabFocusReason)
    pressed = []
    button.clicked.connect(lambda: pressed.append(True))
    _press(qtbot, Qt.Key.Key_Space)
    assert pressed, "Space on a focused push button did not press it"
    assert not w.paused, "Space on a focused push button paused the window"


def _labels_check(w) -> QCheckBox:
    return w.display_controls.labels_check


def _click(qtbot, button) -> None:
    """``button`` clicked as the user clicks it: a check box on its box, not past its text."""
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton, pos=QPoint(button.height() // 2, button.height() // 2))


@pytest.mark.parametrize("tabbed_to_first", [False, True], ids=["clicked", "Tab on it before the click"])
@pytest.mark.parametrize("control", [_reset_button, _labels_check], ids=["Reset session", "check box"])
def test_space_after_a_click_on_a_button_pauses_and_leaves_the_button_alone(qtbot, make_window, control,
                                                                           tabbed_to_first):
    """A clicked button keeps the focus: Space, pause in the help, had pressed "Reset session" again (the session
    wiped a second time) or ticked the check box back; so too where Tab had been on it before the click, which moved
    no focus."""
    w = _active(qtbot, make_window(None))
    w.summary_dock.raise_()
    button = control(w)
    qtbot.waitExposed(button)
    if tabbed_to_first:
        button.setFocus(Qt.FocusReason.TabFocusReason)
    clicks = []
    button.clicked.connect(lambda: clicks.append(True))
    _click(qtbot, button)
    assert QApplication.focusWidget() is button and clicks == [True]
    ticked = button.isChecked()
    _press(qtbot, Qt.Key.Key_Space)
    assert w.paused, f"Space after a click on {button.text()!r} did not pause"
    assert clicks == [True] and button.isChecked() == ticked, f"Space pressed {button.text()!r} again"


def test_space_after_a_click_on_a_classifier_check_box_pauses_and_leaves_it_unticked(qtbot, make_window):
    """Unticking a classifier makes its row again, the focus moved to its new check box by the app: Space, pause in
    the help, had ticked it back."""
    w = _active(qtbot, make_window(None))
    panel = w.models
    name = panel.classifiers[-1].name
    box = _checked_box(panel, name)
    qtbot.waitExposed(box)
    _click(qtbot, box)
    _rows_made_again(qtbot, panel)
    assert name not in panel.enabled_names()
    _press(qtbot, Qt.Key.Key_Space)
    assert w.paused, "Space after a click on a classifier's check box did not pause"
    assert name not in panel.enabled_names(), "Space after a click ticked the classifier back"


def test_space_on_a_classifier_check_box_reached_with_tab_ticks_it_again_after_its_row_is_made_again(qtbot,
                                                                                                     make_window):
    """The new check box is as the old one was, reached with the keyboard: Space goes on ticking it."""
    w = _active(qtbot, make_window(None))
    panel = w.models
    name = panel.classifiers[-1].name
    _checked_box(panel, name).setFocus(Qt.FocusReason.TabFocusReason)
    for _ in range(2):
        enabled = name in panel.enabled_names()
        _press(qtbot, Qt.Key.Key_Space)
        _rows_made_again(qtbot, panel)
        assert (name in panel.enabled_names()) is not enabled, "Space on the new check box did not tick it"
    assert not w.paused


@pytest.mark.parametrize("tabbed_to", [False, True], ids=["clicked", "reached with Tab"])
def test_a_check_box_the_help_gives_the_focus_back_to_is_as_it_was_before(qtbot, make_window, tabbed_to):
    """The help, opened and closed, hands the focus back: Space on a clicked check box had then ticked it, where it
    pauses."""
    w = _active(qtbot, make_window(None))
    box = w.display_controls.labels_check
    qtbot.waitExposed(box)
    if tabbed_to:
        box.setFocus(Qt.FocusReason.TabFocusReason)
    else:
        _click(qtbot, box)
    _press(qtbot, Qt.Key.Key_H)
    assert w.help.isVisible()
    _press(qtbot, Qt.Key.Key_Escape)
    assert QApplication.focusWidget() is box
    ticked, paused = box.isChecked(), w.paused
    _press(qtbot, Qt.Key.Key_Space)
    toggled, paused_or_played = box.isChecked() is not ticked, w.paused is not paused
    assert (toggled, paused_or_played) == (tabbed_to, not tabbed_to), \
        f"Space after the help closed: check box ticked {toggled}, pause toggled {paused_or_played}"


def test_space_on_a_clicked_drop_down_list_pauses(qtbot, make_window):
    """Space had opened the list (a click had already), where the help says it pauses."""
    w = _active(qtbot, make_window(None))
    combo = w.display_controls.cam_class_combo
    combo.setFocus(Qt.FocusReason.MouseFocusReason)  # as a click leaves it, its list closed
    _press(qtbot, Qt.Key.Key_Space)
    assert w.paused
    assert QApplication.activePopupWidget() is None, "Space on a clicked drop-down list opened it"


def test_a_shortcut_letter_in_a_focused_drop_down_list_is_the_shortcut(qtbot, make_window, monkeypatch):
    """F, filter on/off in the help, had chosen "From file…" in the focused filter list and opened a file dialog."""
    asked = []
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(lambda *a, **k: asked.append(a) or ("", "")))
    w = _active(qtbot, make_window(None))
    combo = w.models.filter_combo
    assert any(combo.itemText(i).upper().startswith("F") for i in range(combo.count()))  # an item F would choose
    chosen, filtering = combo.currentText(), w.display_controls.filter_check.isChecked()
    combo.setFocus(Qt.FocusReason.TabFocusReason)
    _press(qtbot, Qt.Key.Key_F)
    assert not asked, "F in the filter list opened a file dialog"
    assert combo.currentText() == chosen
    assert w.display_controls.filter_check.isChecked() is not filtering, "F in the filter list left the filter alone"


def test_the_one_key_shortcuts_work_in_the_clicked_session_summary_table(qtbot, make_window, faces_dir):
    """A clicked table had taken Space and every letter for its search, H for help and C for the CAM too."""
    w = _active(qtbot, make_window(str(faces_dir), fps=4.0))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.summary_dock.raise_()
    table = w.summary.table
    qtbot.waitUntil(lambda: table.rowCount() > 0, timeout=WAIT)
    qtbot.mouseClick(table.viewport(), Qt.MouseButton.LeftButton, pos=table.visualItemRect(table.item(0, 0)).center())
    assert QApplication.focusWidget() is table
    for key in (Qt.Key.Key_Space, Qt.Key.Key_C, Qt.Key.Key_V):
        before = _state(w)
        _press(qtbot, key)
        assert _state(w) != before, f"{key.name} in the clicked table did nothing"
    _press(qtbot, Qt.Key.Key_H)
    assert w.help.isVisible(), "H in the clicked table did not show the help"


@pytest.mark.parametrize("by_keyboard", [True, False], ids=["reached with Tab", "clicked"])
def test_a_text_field_keeps_what_is_typed_into_it_however_it_was_focused(qtbot, by_keyboard):
    field = QLineEdit()
    qtbot.addWidget(field)
    for key, text in ((Qt.Key.Key_F, "f"), (Qt.Key.Key_Space, " ")):
        event = QKeyEvent(QEvent.Type.ShortcutOverride, key, Qt.KeyboardModifier.NoModifier, text)
        assert control_uses_key(field, event, by_keyboard), repr(text)


def test_one_key_shortcuts_still_work_where_the_focused_control_does_not_use_the_key(qtbot, make_window):
    w = _active(qtbot, make_window(None))
    w.display_controls.labels_check.setFocus()  # a check box takes Space, not letters
    view = w.display.view
    _press(qtbot, Qt.Key.Key_V)
    assert w.display.view != view
    w.display_controls.opacity.setFocus()  # a slider takes arrows, not Space
    _press(qtbot, Qt.Key.Key_Space)
    assert w.paused


def test_space_pauses_once_a_source_plays_the_user_having_clicked_nothing(qtbot, make_window, faces_dir):
    """Where the focus starts: on the view once a source opens, where every one-key shortcut works."""
    w = _active(qtbot, make_window(str(faces_dir), fps=4.0))
    assert QApplication.focusWidget() is w.view
    _press(qtbot, Qt.Key.Key_Space)
    assert w.paused


# --- 2. the session summary's table -------------------------------------------------------
def test_tab_leaves_the_session_summary_table_for_reset_session(qtbot):
    summary = SessionSummary(lambda: None)
    qtbot.addWidget(summary)
    table = summary.table
    table.setRowCount(2)
    for i in range(table.rowCount()):
        for j in range(table.columnCount()):
            table.setItem(i, j, QTableWidgetItem(f"{i},{j}"))
    _active(qtbot, summary)
    table.setFocus()
    table.setCurrentCell(0, 0)
    _press(qtbot, Qt.Key.Key_Tab)
    focus = QApplication.focusWidget()
    cell = (table.currentRow(), table.currentColumn())
    assert isinstance(focus, QPushButton) and focus.text() == "Reset session", \
        f"Tab from the table's first cell went to {type(focus).__name__}, cell {cell}"


# --- 3. the help ---------------------------------------------------------------------------
def test_the_help_fits_a_small_screen_at_a_large_font_and_scrolls_to_its_end(qtbot):
    parent = with_large_font(QWidget())
    qtbot.addWidget(parent)
    parent.resize(SMALL_SCREEN[0], SMALL_SCREEN[1] // 3)
    help_overlay = HelpOverlay(parent)
    _active(qtbot, parent)
    help_overlay.toggle()
    assert help_overlay.isVisible()
    assert parent.rect().contains(help_overlay.geometry()), \
        f"the help at {help_overlay.geometry()} is cut off by its parent's {parent.rect()}"
    bar = help_overlay.verticalScrollBar()
    bar.setValue(bar.maximum())
    shown = help_overlay.viewport().height() + bar.value()
    assert shown >= help_overlay.document().size().height(), "the end of the help cannot be scrolled to"
    assert help_overlay.font().pointSizeF() == LARGE_FONT_PT  # readable: at the user's font, not shrunk to fit


def test_esc_closes_the_help_and_gives_the_focus_back_to_the_view(qtbot, make_window, faces_dir):
    w = _active(qtbot, make_window(str(faces_dir), fps=4.0))
    w.view.setFocus()
    _press(qtbot, Qt.Key.Key_H)
    assert w.help.isVisible()
    assert QApplication.focusWidget() is w.help, "the shown help has not the focus: the keyboard cannot scroll it"
    _press(qtbot, Qt.Key.Key_Escape)
    assert not w.help.isVisible(), "Esc did not close the help"
    assert QApplication.focusWidget() is w.view



def test_the_help_opened_before_a_source_stays_on_top_of_the_video(qtbot, make_window, faces_dir):
    """The video page, raised as the source opened, had covered the open help: the next H closed a help no one saw."""
    w = _active(qtbot, make_window(None))
    _press(qtbot, Qt.Key.Key_H)
    assert w.help.isVisible()
    assert _open(qtbot, w, str(faces_dir))
    assert w.stack.currentWidget() is w.view
    shown = w.stack.childAt(w.help.geometry().center())
    assert shown is w.help or w.help.isAncestorOf(shown), f"the open help is under {type(shown).__name__}"

# --- 4. the split line ----------------------------------------------------------------------
@pytest.fixture
def split_view(qtbot) -> FrameView:
    view = FrameView(DisplaySettings(view="split"))
    qtbot.addWidget(view)
    _active(qtbot, view)
    view.setFocus()
    return view


def test_left_and_right_move_the_split_line_and_home_and_end_put_it_at_the_edges(qtbot, split_view):
    settings, start = split_view.settings, split_view.settings.split
    moved = []
    split_view.split_changed.connect(moved.append)
    _press(qtbot, Qt.Key.Key_Right)
    assert settings.split > start, "Right did not move the split line"
    from gui.frame_view import SPLIT_STEP

    assert settings.split == pytest.approx(start + SPLIT_STEP) and moved == [settings.split]  # saved as dragged
    _press(qtbot, Qt.Key.Key_Left)
    _press(qtbot, Qt.Key.Key_Left)
    assert settings.split == pytest.approx(start - SPLIT_STEP)
    _press(qtbot, Qt.Key.Key_Home)
    assert settings.split == 0.0
    _press(qtbot, Qt.Key.Key_Left)
    assert settings.split == 0.0  # kept on the image
    _press(qtbot, Qt.Key.Key_End)
    assert settings.split == 1.0


@pytest.mark.parametrize("mode", [m for m in VIEW_MODES if m != "split"])
def test_the_arrow_keys_leave_the_split_line_alone_in_other_views(qtbot, split_view, mode):
    split_view.settings.view = mode
    start = split_view.settings.split
    for key in (Qt.Key.Key_Right, Qt.Key.Key_Home, Qt.Key.Key_End):
        _press(qtbot, key)
    assert split_view.settings.split == start


# --- 5. the model panel ----------------------------------------------------------------------
@pytest.fixture
def panel_between(qtbot, models):
    """A model panel between two buttons, as in the side panel between the controls around it, shown; and the widget
    that holds them (held here: the test's reference is all that keeps it)."""
    outer = QWidget()
    qtbot.addWidget(outer)
    layout = QVBoxLayout(outer)
    before, after = QPushButton("before"), QPushButton("after")
    panel = ModelPanel([models["classifier"], models["classifier2"]], [models["darken"], models["identity"]], [])
    for widget in (before, panel, after):
        layout.addWidget(widget)
    _active(qtbot, outer)
    return outer, before, panel, after


def _checked_box(panel: ModelPanel, name: str) -> QCheckBox:
    return next(b for b in panel.cls_box.findChildren(QCheckBox) if b.text() == elided(name) and b.isVisible())


def _rows_made_again(qtbot, panel: ModelPanel) -> None:
    """Waits until the rows made again are shown and the old ones deleted, as the event loop has done before the
    user's next key."""
    qtbot.waitUntil(lambda: len(panel.cls_box.findChildren(QCheckBox)) == len(panel.classifiers), timeout=WAIT)


def test_ticking_a_classifier_with_the_keyboard_keeps_the_focus_on_its_check_box(qtbot, panel_between):
    _, _, panel, _ = panel_between
    name = panel.classifiers[-1].name
    _checked_box(panel, name).setFocus()
    _press(qtbot, Qt.Key.Key_Space)
    _rows_made_again(qtbot, panel)
    focus = QApplication.focusWidget()
    assert isinstance(focus, QCheckBox), f"ticking {name} left the focus on {focus}"
    assert focus.text() == elided(name) and not focus.isChecked()
    assert name not in panel.enabled_names()


def _reading_order(outer: QWidget, a: QWidget, b: QWidget) -> int:
    """-1 where ``a`` reads before ``b``: above it, or beside it on the left."""
    ra, rb = (QRect(w.mapTo(outer, QPoint(0, 0)), w.size()) for w in (a, b))
    if ra.bottom() < rb.top() or rb.bottom() < ra.top():
        return -1 if ra.top() < rb.top() else 1
    return -1 if ra.left() < rb.left() else 1


@pytest.mark.parametrize("made_again", [False, True], ids=["as made", "rows made again"])
def test_tab_goes_through_the_model_panel_as_it_shows(qtbot, panel_between, made_again):
    outer, before, panel, after = panel_between
    if made_again:  # choosing a filter makes the classifiers' rows again
        panel.set_filter(panel.filters[-1])
        _rows_made_again(qtbot, panel)
    stops = [w for w in panel.findChildren(QWidget) if w.isVisible() and w.isEnabled()
             and w.focusPolicy() & Qt.FocusPolicy.TabFocus]
    expected = [before, *sorted(stops, key=functools.cmp_to_key(lambda a, b: _reading_order(outer, a, b))), after]
    before.setFocus()
    visited = [before]
    for _ in expected[1:]:
        _press(qtbot, Qt.Key.Key_Tab)
        visited.append(QApplication.focusWidget())
    names = [w.accessibleName() or (w.text() if hasattr(w, "text") else type(w).__name__) for w in visited]
    assert visited == expected, f"Tab went {names}"


def test_each_card_button_names_the_model_whose_card_it_opens(qtbot, panel_between):
    _, _, panel, _ = panel_between
    names = {b.accessibleName() for b in panel.findChildren(QToolButton) if b.text() == "Card" and b.isVisible()}
    models_shown = [*(c.name for c in panel.classifiers), panel.active_filter().name]
    assert len(names) == len(models_shown), f"Card buttons named {names} for {models_shown}"
    for model in models_shown:
        assert any(model in name for name in names), f"no Card button names {model}: {names}"


# --- 6. a disabled control in the dark palette -----------------------------------------------
def _luminance(colour: QColor) -> float:
    """WCAG's relative luminance."""
    def linear(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4
    return 0.2126 * linear(colour.redF()) + 0.7152 * linear(colour.greenF()) + 0.0722 * linear(colour.blueF())


def _contrast(a: QColor, b: QColor) -> float:
    hi, lo = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


def _brightest_pixel(widget: QWidget) -> QColor:
    """A dark button's text colour: its brightest pixel."""
    image = widget.grab().toImage()
    return max((image.pixelColor(x, y) for x in range(image.width()) for y in range(image.height())), key=_luminance)


@pytest.fixture
def dark_palette(qapp):
    from gui.app_cli import _dark

    saved = QPalette(qapp.palette())
    _dark(qapp)
    yield qapp.palette()
    qapp.setPalette(saved)


def test_a_disabled_button_in_the_dark_palette_looks_dimmer_and_still_reads(qtbot, dark_palette):
    buttons = {}
    for enabled in (True, False):
        button = buttons[enabled] = QToolButton()
        button.setText("Card")
        button.setEnabled(enabled)
        qtbot.addWidget(button)
        button.show()
    window = dark_palette.color(QPalette.ColorGroup.Active, QPalette.ColorRole.Window)
    enabled_text, disabled_text = (_brightest_pixel(buttons[e]) for e in (True, False))
    assert _contrast(disabled_text, window) < _contrast(enabled_text, window), \
        f"a disabled button's text {disabled_text.name()} is as bright as an enabled one's {enabled_text.name()}"
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        disabled = dark_palette.color(QPalette.ColorGroup.Disabled, role)
        assert disabled != dark_palette.color(QPalette.ColorGroup.Active, role), role
        assert _contrast(disabled, window) >= MIN_DISABLED_CONTRAST, f"{role} disabled {disabled.name()} unreadable"
