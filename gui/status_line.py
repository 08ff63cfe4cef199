"""The status bar's standing labels (source, frame rates, where the models run, recording, warnings) and their text,
and what two of them show: the frame rates' data (FrameTimes) and the window's latest warnings (Warnings).

The window tells it what to show; the labels step aside while a passing message shows.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence

from PySide6.QtCore import QEvent, QRect, QSize, Qt
from PySide6.QtGui import QFontMetrics, QPainter
from PySide6.QtWidgets import QLabel, QStatusBar, QStyle, QStyleOption, QToolTip, QWidget

from inference.results import FrameResult

from .model_panel import plain_label, plain_tip
from .recording import Recorder

# the status bar's source, a path elided in the middle past it, as wide as the warning beside it may be: a path of
# 80 characters or so is shown whole
SOURCE_WIDTH = 520
# both frame rates count the frames of the last FPS_WINDOW_S, or since the source opened: over windows of their own
# (5 s and 2 s) a 0.2 fps slideshow had shown "0.2 fps processed · 0.5 shown"
FPS_WINDOW_S = 10.0


def providers_line(models: list[tuple[str, str]]) -> str:
    """Where the models run, short enough for the status bar: one provider for all of them as a count, and where
    they differ (a model fell back to the CPU) the models off the most common provider by name. The full list is
    the label's tooltip; a line per model did not fit in a narrow window."""
    if not models:
        return "no models"
    by_provider: dict[str, list[str]] = {}
    for name, provider in models:
        by_provider.setdefault(provider, []).append(name)
    common = max(by_provider, key=lambda p: len(by_provider[p]))
    parts = [f"{common}: {len(by_provider[common])} model(s)"]
    parts += [f"{p}: {', '.join(names)}" for p, names in by_provider.items() if p != common]
    return " · ".join(parts)


def frame_rate(times: list[float], since: float, now: float) -> float:
    """Frames per second of ``times`` (time.monotonic, oldest first) in the FPS_WINDOW_S up to ``now``, or since
    ``since`` where that is later (a source opened 2 s ago has played for 2 s)."""
    start = max(since, now - FPS_WINDOW_S)
    if now <= start:
        return 0.0
    return sum(1 for t in times if start < t <= now) / (now - start)


class FrameTimes:
    """When each new frame was processed (appended by the inference thread) and shown: the frame rates' data."""

    def __init__(self) -> None:
        self.processed: deque[float] = deque(maxlen=10_000)
        self.shown: deque[float] = deque(maxlen=10_000)

    def rates(self, since: float, now: float) -> tuple[float, float]:
        """Processed and shown frames per second, over the same window (the Speed tab's "displayed" had stayed 0
        through a slideshow whose every frame was shown); list(): the inference thread appends meanwhile."""
        processed, shown = (frame_rate(list(times), since, now) for times in (self.processed, self.shown))
        return processed, shown


class Warnings:
    """The window's latest warnings, each once and the latest last (the status bar's ⚠ shows it); older ones fall
    off, counted."""
    KEPT = 5

    def __init__(self) -> None:
        self._latest: deque[str] = deque(maxlen=self.KEPT)
        self.dropped = 0

    def add(self, text: str) -> None:
        if text in self._latest:
            self._latest.remove(text)
        elif len(self._latest) == self.KEPT:
            self.dropped += 1
        self._latest.append(text)

    def __iter__(self) -> Iterator[str]:
        return iter(self._latest)


def elide_at_words(text: str, metrics: QFontMetrics, width: int) -> str:
    """``text`` whole where it fits in ``width`` px, else the words of it that fit and "…": cut mid-word, "retrying
    every s" read as a typo. A first word too long on its own is cut as Qt cuts it."""
    if metrics.horizontalAdvance(text) <= width:
        return text
    cut = metrics.elidedText(text, Qt.TextElideMode.ElideRight, width)
    kept = cut[:-1] if cut.endswith("…") else cut
    if text[len(kept):len(kept) + 1] == " ":  # Qt's cut fell between two words
        return kept.rstrip(" ,;:") + "…"
    words = kept[:kept.rfind(" ")].rstrip(" ,;:") if " " in kept else ""
    return words + "…" if words else cut


class ElidedLabel(QLabel):
    """A label that shows its text's start and "…" where the bar has no room for all of it (its first word at the
    least), whole in its tooltip then: QLabels as wide as their text had made the status bar 1,542 px under a 24 pt
    font, wider than the window, and cut off mid-word. ``text()`` stays whole: a screen reader reads it. Plain text,
    as drawn: it holds a model's name, a file's, a warning quoting a card (``plain_label``)."""

    def __init__(self) -> None:
        super().__init__()
        plain_label(self)

    def minimumSizeHint(self) -> QSize:  # noqa: N802
        hint = super().minimumSizeHint()
        first_word = self.text().split(" ", 1)[0]
        return QSize(min(hint.width(), self._width_of(first_word + "…")), hint.height())

    def shown_text(self) -> str:
        """The text as drawn at the label's width."""
        return elide_at_words(self.text(), self.fontMetrics(), self.contentsRect().width())

    def _width_of(self, text: str) -> int:
        margins = self.contentsMargins()
        return self.fontMetrics().horizontalAdvance(text) + margins.left() + margins.right()

    def paintEvent(self, event) -> None:  # noqa: N802
        painter = QPainter(self)
        self.style().drawItemText(painter, self.contentsRect(), self.alignment().value, self.palette(),
                                  self.isEnabled(), self.shown_text(), self.foregroundRole())
        painter.end()

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and not self.toolTip() and self.shown_text() != self.text():
            QToolTip.showText(event.globalPos(), plain_tip(self.text()), self)
            return True
        return super().event(event)


class MessageBar(QStatusBar):
    """A status bar whose passing message, where it does not fit beside the labels that stay, ends at a word and "…",
    whole in its tooltip: QStatusBar cuts it at the first label, mid-word ("…retrying every s|source: camera 0").
    ``currentMessage()`` stays whole."""

    def paintEvent(self, event) -> None:  # noqa: N802
        super().paintEvent(event)
        room = self._message_room()
        shown = self._shown_message(room)
        if shown == self.currentMessage():
            return
        # over the message QStatusBar drew, cut: its background again, then the words that fit
        painter = QPainter(self)
        painter.setClipRect(room)
        painter.fillRect(room, self.palette().window())
        option = QStyleOption()
        option.initFrom(self)
        self.style().drawPrimitive(QStyle.PrimitiveElement.PE_PanelStatusBar, option, painter, self)
        painter.setPen(self.palette().windowText().color())
        painter.drawText(room, Qt.AlignmentFlag.AlignLeading | Qt.AlignmentFlag.AlignVCenter
                         | Qt.TextFlag.TextSingleLine, shown)
        painter.end()

    def shown_message(self) -> str:
        """The passing message as drawn at the bar's width ("" where none shows)."""
        return self._shown_message(self._message_room())

    def _shown_message(self, room: QRect) -> str:
        return elide_at_words(self.currentMessage(), self.fontMetrics(), room.width())

    def _message_room(self) -> QRect:
        """Where QStatusBar draws a passing message: from its left margin to the first label (or the size grip)
        still shown beside it."""
        left, right = 6, self.width() - 12
        for child in self.findChildren(QWidget, options=Qt.FindChildOption.FindDirectChildrenOnly):
            if child.isVisible() and not child.isWindow():
                right = min(right, child.x() - 2)
        return QRect(left, 0, max(0, right - left), self.height())

    def event(self, event: QEvent) -> bool:
        if event.type() == QEvent.Type.ToolTip and self.shown_message() != self.currentMessage() \
                and self._message_room().contains(event.pos()):
            QToolTip.showText(event.globalPos(), plain_tip(self.currentMessage()), self)
            return True
        return super().event(event)


class StatusLine:
    """The labels, added to ``bar`` as permanent widgets in the order they show."""

    def __init__(self, bar: QStatusBar) -> None:
        self.source = plain_label(QLabel())  # a file's name is anyone's text
        self.fps = ElidedLabel()
        self.providers = ElidedLabel()
        self.rec = ElidedLabel()
        self.rec.setStyleSheet("QLabel { color: #ef5350; font-weight: bold; }")
        self.warn = ElidedLabel()
        self.warn.setStyleSheet("QLabel { color: #ffb74d; }")
        for w in (self.source, self.fps, self.providers, self.rec, self.warn):
            bar.addPermanentWidget(w)
        # the standing labels took the whole bar, and a passing message (an error, where a recording was saved)
        # was cut to a few letters or not shown at all: while one shows, they step aside
        self.warn.setMaximumWidth(520)  # the whole list is its tooltip
        self.providers.setMaximumWidth(420)  # and so is each model's provider
        self.source.setMaximumWidth(SOURCE_WIDTH)  # a long path is elided (show_source), whole in its tooltip
        bar.messageChanged.connect(self._passing_message)

    def _passing_message(self, text: str) -> None:
        for w in (self.providers, self.warn):
            w.setVisible(not text)

    def show_source(self, text: str) -> None:
        """``text``, a path too long for SOURCE_WIDTH elided in the middle (its start and its end stay), whole in the
        tooltip: a 162-character path took most of the bar, cut off before the folder's name."""
        shown = self.source.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, SOURCE_WIDTH)
        self.source.setText(shown)
        self.source.setToolTip(plain_tip(text) if shown != text else "")

    def show_rates(self, processed: float, shown: float, last: FrameResult | None) -> None:
        lat = ""
        if last is not None:
            total = last.timings_ms.get("total")
            lat = f" · pipeline {total:.0f} ms" if total is not None else ""
        self.fps.setText(f"{processed:.1f} fps processed · {shown:.1f} shown{lat}")

    def show_recording(self, recorder: Recorder) -> None:
        if recorder.active:
            paused = f" (paused: {recorder.paused_reason})" if recorder.paused_reason else ""
            self.rec.setText(f"● REC {recorder.rows} rows{paused}")
        else:
            self.rec.setText("")

    def show_models(self, models: Sequence, warnings: list[str], dropped: int) -> None:
        """Where ``models`` run; the latest of ``warnings`` (a frame's, the models', the window's), the rest and how
        many ``dropped`` off the window's list counted beside it and listed in its tooltip."""
        self.providers.setText(providers_line([(m.name, m.provider) for m in models]))
        self.providers.setToolTip(plain_tip("\n".join(f"{m.name}: {m.provider}" for m in models)))
        warnings = list(dict.fromkeys(warnings))
        more = len(warnings) - 1 + dropped
        self.warn.setText(f"⚠ {warnings[-1]}" + (f" (+{more})" if more else "") if warnings else "")
        earlier = [f"… and {dropped} earlier warning(s), each in the log"] if dropped else []
        self.warn.setToolTip(plain_tip("\n".join([*earlier, *warnings])))
