"""The session summary tab: per tracked face, mean ΔITA and ΔP(female) with their intervals, and a reset button.

Only the rows of faces that changed are computed and formatted again, and only while the table is on screen.
"""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

from .model_panel import elided, plain_tip
from .painter import HIGHER_ITA, signed
from .recording import SessionStats

SUMMARY_NOTE = (f"Per tracked face this session: ΔITA filtered − original (> 0 {HIGHER_ITA}); ΔP(female) "
                "filtered − the face resized to the filter's size and back, the filter's own doing (> 0 more "
                "female). Intervals stand on runs of consecutive frames, not on frames: a face's frames are nearly "
                "alike.")


def _ci(m: dict, digits: int) -> str:
    if not m or m.get("n", 0) == 0:
        return "—"
    v, lo, hi = m["value"], m["lo"], m["hi"]
    return f"{signed(v, digits)}  [{signed(lo, digits)}, {signed(hi, digits)}]" if m["n"] > 1 else \
        f"{signed(v, digits)}  (n=1)"


def summary_note(filter_label: str | None) -> tuple[str, str]:
    """The session summary's note, and its tooltip: the filter's name elided in the note (a long one had widened
    the window past the screen when the tab was raised), whole in the tooltip."""
    if not filter_label:
        return SUMMARY_NOTE, ""
    shown, whole = (SUMMARY_NOTE.replace("this session", f"this session, filter '{name}'")
                    for name in (elided(filter_label), filter_label))
    return shown, whole


class SessionSummary(QWidget):
    """The note above the table, the table, and "Reset session", which calls ``reset``."""

    def __init__(self, reset: Callable[[], None]) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        # each mean has its own n: one n for both showed ΔITA's count beside a classifier's ΔP that had fewer values
        # (the classifier switched off for a while)
        self.table = QTableWidget(0, 7)
        self.table.setHorizontalHeaderLabels(
            ["face", "frames", "mean ΔITA° [95% CI]", "n", "classifier", "mean ΔP(female) [95% CI]", "n"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        # Tab went from cell to cell, and the table kept adding rows: "Reset session" below it was out of the
        # keyboard's reach. The arrow keys still move between cells.
        self.table.setTabKeyNavigation(False)
        self.note = QLabel(SUMMARY_NOTE)
        self.note.setWordWrap(True)  # on one line it set the window's minimum width, 1,053 px and up
        self.note.setTextFormat(Qt.TextFormat.PlainText)  # a filter named "<b>…" had been read as HTML, the rest lost
        layout.addWidget(self.note)
        layout.addWidget(self.table)
        button = QPushButton("Reset session")
        button.clicked.connect(reset)
        layout.addWidget(button, alignment=Qt.AlignmentFlag.AlignLeft)
        self._shown: list[dict] = []  # the rows the table shows, as SessionStats.summary gave them

    def clear(self) -> None:
        self.table.setRowCount(0)

    def refresh(self, stats: SessionStats) -> None:
        if self.table.visibleRegion().isEmpty():  # a hidden tab is still isVisible()
            return
        # Computed only when looked at: with the tab hidden, the summary of 16 faces and four classifiers had taken
        # 64 ms of each 108 ms tick. A raise computes the faces that changed meanwhile, a bounded number of values a
        # tick (SessionStats.summary), the rest at the next ticks.
        rows = stats.summary()
        note, whole = summary_note(stats.filter_label)
        if self.note.text() != note:
            self.note.setText(note)
            self.note.setToolTip(plain_tip(whole))  # escaped only where Qt would read it as HTML: else a narrow column
        table = self.table
        # A face's rows are the same objects until it gets a frame (SessionStats.summary): the rows shown last time
        # and still in place (a reset empties the table) are neither formatted nor compared again.
        shown, self._shown = self._shown[:table.rowCount()], rows
        changed = [(i, [f"#{r['track_id']}", str(r["frames"]), _ci(r["delta_ita"], 1), str(r["delta_ita"]["n"]),
                        r["classifier"] or "—", _ci(r["delta_p_female"], 3), str(r["delta_p_female"]["n"])])
                   for i, r in enumerate(rows) if i >= len(shown) or shown[i] is not r]
        if not changed and table.rowCount() == len(rows):
            return
        # Columns sized to their contents measured up to 1,000 rows again at each cell set: 0.1 to 0.4 s a tick with
        # two faces on screen, from 90 faces seen. Measured once for the lot, at the next layout:
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        try:
            table.setRowCount(len(rows))
            for i, cells in changed:
                for j, c in enumerate(cells):
                    item = table.item(i, j)
                    if item is None:
                        table.setItem(i, j, QTableWidgetItem(c))
                    elif item.text() != c:
                        item.setText(c)
        finally:
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
