"""The widget that shows the painted result; in split view, dragging or the arrow keys move the before/after line."""
from __future__ import annotations

from collections import deque

from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QKeySequence, QPainter, QShortcut
from PySide6.QtWidgets import QApplication, QTextBrowser, QWidget

from inference.results import FrameResult

from .painter import (DARKER, LESS_FEMALE, LIGHTER, MORE_FEMALE, NEUTRAL, Composed, DisplaySettings, LabelForms,
                      render)


SPLIT_STEP = 0.05  # the share of the image's width a Left or Right press moves the split line by


def _in(colour: QColor, text: str) -> str:
    """``text`` in a sign colour of the label, as the legend names it."""
    return f"<span style='color:{colour.name()}'>{text}</span>"


# The legend names every colour a ΔITA is drawn in: a shift L* does not bear out (painter.shift_colour: a yellow
# tint's "lower ITA") is grey, which it had left unnamed beside "lighter / darker"
HELP_HTML = f"""
<h3>Bias Mirror — keys</h3>
<table cellpadding='2'>
<tr><td><b>Space</b></td><td>pause / resume</td></tr>
<tr><td><b>S</b></td><td>snapshot (PNG with overlays + JSON of the numbers)</td></tr>
<tr><td><b>R</b></td><td>start / stop recording per-face rows (CSV)</td></tr>
<tr><td><b>C</b></td><td>class activation map on / off</td></tr>
<tr><td><b>F</b></td><td>filter on / off</td></tr>
<tr><td><b>V</b></td><td>view: original → filtered → side by side → split</td></tr>
<tr><td><b>Ctrl+O</b> / <b>Ctrl+Shift+O</b></td><td>open a video or image / an image folder</td></tr>
<tr><td><b>H</b>, <b>F1</b></td><td>this help; <b>Esc</b> closes it</td></tr>
<tr><td><b>←</b> / <b>→</b>, <b>Home</b> / <b>End</b></td><td>split view: move the line {SPLIT_STEP:.0%} / to an
edge</td></tr>
<tr><td><b>F11</b></td><td>full screen on / off (a projector); <b>Esc</b> leaves it</td></tr>
<tr><td><b>Ctrl+Q</b></td><td>quit</td></tr>
</table>
<p>The keys above work whatever has the focus, but: a control reached with <b>Tab</b> keeps <b>Space</b>, which
presses a button, ticks a check box or opens a list (after a click, Space pauses); a text or number field keeps what
is typed into it; a slider or a list keeps its arrow keys.</p>
<p>Labels: P(female) and skin tone (ITA°, Monk) <i>original → filtered</i>.<br>
Δ colours: {_in(LIGHTER, "lighter")} / {_in(DARKER, "darker")} skin (L* bears out the ΔITA);
{_in(NEUTRAL, "higher / lower ITA")} (L* does not: b*, yellowness, moved it) or same;<br>
{_in(MORE_FEMALE, "more female")} / {_in(LESS_FEMALE, "less female")}.<br>
CAM: where the chosen classifier looked for the chosen class (each face scaled to its own maximum; Grad-CAM for an
adopted classifier whose head has activations).<br>
A conditional filter (e.g. a target gender) runs the condition chosen under Display; the session's figures start
afresh for another filter or condition.<br>
In split view, drag on the image, or press ← / → with the image focused, to move the line.</p>
"""


class HelpOverlay(QTextBrowser):
    """The keys and the colour legend, centred over its parent (whatever page it shows). A label before, it was cut
    off where it did not fit (a large font, a small screen: 1,883 px of text in 327 at 24 pt): it scrolls, and takes
    the focus while shown, so that the keyboard scrolls it too. Esc closes it, as H and F1 do."""

    MARGIN = 10  # px kept free around it in its parent
    LINE_CHARS = 80  # its widest, in average characters: lines a reader's eye can follow, in any font size

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setHtml(HELP_HTML)
        self.setStyleSheet("QTextBrowser { background: rgba(10,10,14,235); color: #eee; border: none; "
                           "border-radius: 8px; }")
        self.document().setDocumentMargin(14)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setTabChangesFocus(True)  # read-only, no links: Tab leaves it, as from any other control
        self._focus_before: QWidget | None = None
        self.hide()
        parent.installEventFilter(self)
        close = QShortcut(QKeySequence(Qt.Key.Key_Escape), self, self.close_help)
        close.setContext(Qt.ShortcutContext.WindowShortcut)  # fires only while the overlay is shown

    def toggle(self) -> None:
        if self.isVisible():
            self.close_help()
        else:
            self.open_help()

    def open_help(self) -> None:
        self._focus_before = QApplication.focusWidget()
        self.place()
        self.show()
        self.verticalScrollBar().setValue(0)
        self.setFocus()

    def close_help(self) -> None:
        """Hides the help; the focus it had goes back where it was (the image, whose arrow keys move the line), as
        the app's own move (``OtherFocusReason``): the control is again as the focus had come to it, by a click or by
        the keyboard. Given back before the help hides: hidden with the focus, the help had passed it on as Tab does,
        and the clicked check box it came back to had taken Space as one reached with Tab."""
        had_focus, before, self._focus_before = self.hasFocus(), self._focus_before, None
        if had_focus and _still_shown(before):
            before.setFocus(Qt.FocusReason.OtherFocusReason)
        self.hide()

    def place(self) -> None:
        parent = self.parentWidget()
        width = min(parent.width() - 2 * self.MARGIN, self.fontMetrics().averageCharWidth() * self.LINE_CHARS)
        needed, room = self._height_at(width), parent.height() - 2 * self.MARGIN
        # a scroll bar only where the text does not fit: one shown at a smaller size had stayed once it fitted
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAsNeeded if needed > room
                                        else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        height = min(room, needed)
        self.resize(width, height)
        self.move((parent.width() - width) // 2, max(self.MARGIN, (parent.height() - height) // 2))
        self.raise_()

    def _height_at(self, width: int) -> int:
        """The height that shows the whole text at ``width``, scrolling none."""
        document = self.document().clone()
        document.setTextWidth(width - 2 * self.frameWidth())
        return int(document.size().height()) + 2 * self.frameWidth() + 1

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self.place()
        return False


def _still_shown(widget: QWidget | None) -> bool:
    try:
        return widget is not None and widget.isVisible()
    except RuntimeError:  # deleted since (a classifier's row, rebuilt)
        return False


class FrameView(QWidget):
    split_changed = Signal(float)

    def __init__(self, settings: DisplaySettings, parent=None):
        super().__init__(parent)
        self.settings = settings
        self.result: FrameResult | None = None
        self.note = ""
        self.renders = 0
        self.composed_ahead = 0  # renders that found their frame already composed by the worker
        # A few, not one: the worker may finish the next frame before this one is painted.
        self._ready: deque[Composed] = deque(maxlen=3)
        self._geometry: dict = {}
        # the form each face's label was drawn in, kept from frame to frame: laid out afresh each frame, a moving
        # face's label switched between six lines and one several times a second. The view's own: a snapshot
        # draws without it
        self.label_forms = LabelForms()
        # 240 px high, it left the plots below it no room on a screen of 540 px (1080p at 200 %)
        self.setMinimumSize(320, 180)
        self.size_shown = (320, 180)
        self.dpr_shown = 1.0  # the screen's device pixels per logical pixel, read by that worker too
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def set_result(self, result: FrameResult | None) -> None:
        if result is None:  # another source (its ids start at 1 again): its face 1 had taken the old face 1's form
            self.label_forms = LabelForms()
        self.result = result
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self.size_shown = (self.width(), self.height())  # read by the worker that composes frames ahead
        super().resizeEvent(event)

    def offer(self, composed: Composed) -> None:
        """Called from the inference thread (deque appends are atomic): the newest few composed frames."""
        self._ready.append(composed)

    def _composed_for(self, size: tuple[int, int], dpr: float) -> Composed | None:
        """The newest frame the worker composed that fits the paint; None where none does. Looked for in a copy taken
        in one step (C code, under the GIL): iterating the deque itself, Python code between its steps (``fits``)
        let the inference thread append, and the paint raised "deque mutated during iteration" (under grab(), a
        crash)."""
        if not self.result:
            return None
        return next((c for c in reversed(tuple(self._ready)) if c.fits(self.result, self.settings, size, dpr)), None)

    def set_note(self, note: str) -> None:
        if note != self.note:
            self.note = note
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        size, dpr = (self.width(), self.height()), self.devicePixelRatioF()
        self.dpr_shown = dpr  # the window may have moved to another screen
        ready = self._composed_for(size, dpr)
        image = render(self.result, self.settings, self.width(), self.height(), self.note, self._geometry, ready, dpr,
                       steady=self.label_forms)
        self.composed_ahead += ready is not None
        p = QPainter(self)
        p.fillRect(self.rect(), QColor(24, 24, 28))
        p.drawImage(0, 0, image)
        p.end()
        self.renders += 1

    def _drag(self, x: float) -> None:
        rect: QRectF | None = self._geometry.get("image_rect")
        if self.settings.view != "split" or rect is None or rect.width() <= 0:
            return
        self._set_split((x - rect.left()) / rect.width())

    def _set_split(self, share: float) -> None:
        self.settings.split = min(1.0, max(0.0, share))
        self.split_changed.emit(self.settings.split)
        self.update()

    def _split_for_key(self, key: int) -> float | None:
        """Where ``key`` puts the split line; None for a key that does not move it."""
        steps = {Qt.Key.Key_Left: -SPLIT_STEP, Qt.Key.Key_Right: SPLIT_STEP}
        edges = {Qt.Key.Key_Home: 0.0, Qt.Key.Key_End: 1.0}
        if key in edges:
            return edges[key]
        return self.settings.split + steps[key] if key in steps else None

    def keyPressEvent(self, event) -> None:  # noqa: N802
        # the line had moved only with the mouse: out of reach of the keyboard alone
        share = self._split_for_key(event.key()) if self.settings.view == "split" else None
        if share is None:
            super().keyPressEvent(event)
        else:
            self._set_split(share)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._drag(event.position().x())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event.position().x())
