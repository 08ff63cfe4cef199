"""The widget that shows the painted result; in split view, dragging moves the before/after line."""
from __future__ import annotations

from collections import deque

from PySide6.QtCore import QEvent, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QPainter
from PySide6.QtWidgets import QLabel, QWidget

from inference.results import FrameResult

from .painter import DARKER, LESS_FEMALE, LIGHTER, MORE_FEMALE, NEUTRAL, Composed, DisplaySettings, render


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
<tr><td><b>H</b>, <b>F1</b></td><td>this help</td></tr>
</table>
<p>Labels: P(female) and skin tone (ITA°, Monk) <i>original → filtered</i>.<br>
Δ colours: {_in(LIGHTER, "lighter")} / {_in(DARKER, "darker")} skin (L* bears out the ΔITA);
{_in(NEUTRAL, "higher / lower ITA")} (L* does not: b*, yellowness, moved it) or same;<br>
{_in(MORE_FEMALE, "more female")} / {_in(LESS_FEMALE, "less female")}.<br>
CAM: where the chosen classifier looked for the chosen class (each face scaled to its own maximum; Grad-CAM for an
adopted classifier whose head has activations).<br>
A conditional filter (e.g. a target gender) runs the condition chosen under Display; the session's figures start
afresh for another filter or condition.<br>
In split view, drag on the image to move the line.</p>
"""


class HelpOverlay(QLabel):
    """The keys and the colour legend, centred over its parent (whatever page it shows)."""

    def __init__(self, parent: QWidget):
        super().__init__(parent)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setText(HELP_HTML)
        self.setStyleSheet("QLabel { background: rgba(10,10,14,235); color: #eee; padding: 14px; border-radius: 8px; }")
        self.setWordWrap(True)
        self.hide()
        parent.installEventFilter(self)

    def toggle(self) -> None:
        self.setVisible(not self.isVisible())
        self.place()

    def place(self) -> None:
        parent = self.parentWidget()
        self.setFixedWidth(max(200, min(560, parent.width() - 20)))
        self.adjustSize()
        self.move((parent.width() - self.width()) // 2, max(10, (parent.height() - self.height()) // 2))
        self.raise_()

    def eventFilter(self, obj, event) -> bool:  # noqa: N802
        if event.type() == QEvent.Type.Resize and self.isVisible():
            self.place()
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
        # 240 px high, it left the plots below it no room on a screen of 540 px (1080p at 200 %)
        self.setMinimumSize(320, 180)
        self.size_shown = (320, 180)
        self.dpr_shown = 1.0  # the screen's device pixels per logical pixel, read by that worker too
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)

    def set_result(self, result: FrameResult | None) -> None:
        self.result = result
        self.update()

    def resizeEvent(self, event) -> None:  # noqa: N802
        self.size_shown = (self.width(), self.height())  # read by the worker that composes frames ahead
        super().resizeEvent(event)

    def offer(self, composed: Composed) -> None:
        """Called from the inference thread (deque appends are atomic): the newest few composed frames."""
        self._ready.append(composed)

    def set_note(self, note: str) -> None:
        if note != self.note:
            self.note = note
            self.update()

    def paintEvent(self, event) -> None:  # noqa: N802
        size, dpr = (self.width(), self.height()), self.devicePixelRatioF()
        self.dpr_shown = dpr  # the window may have moved to another screen
        ready = next((c for c in reversed(self._ready) if c.fits(self.result, self.settings, size, dpr)), None) \
            if self.result else None
        image = render(self.result, self.settings, self.width(), self.height(), self.note, self._geometry, ready, dpr)
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
        self.settings.split = min(1.0, max(0.0, (x - rect.left()) / rect.width()))
        self.split_changed.emit(self.settings.split)
        self.update()

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self._drag(event.position().x())

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if event.buttons() & Qt.MouseButton.LeftButton:
            self._drag(event.position().x())
