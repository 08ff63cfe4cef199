"""The page shown in the view's place while no source plays: why (none chosen yet, or it could not be opened), and
buttons to open one."""
from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from inference.errors import BiasMirrorError
from inference.sources import camera_index


def refusal_text(spec: str | int, error: Exception | None, what: str) -> str:
    """The page's text where ``spec`` could not be opened: ``error`` raised, said in ``what``."""
    if (index := camera_index(spec)) is not None and isinstance(error, BiasMirrorError):
        # one sentence: the error's own ("camera 0: no camera could be opened at index 0; …") said it twice
        return (f"No camera found at index {index}: check it is connected and not in use, or open a video, "
                "an image or an image folder instead.")
    if index is not None:
        return f"No camera found at index {index}.\n\n{what}."
    return f"This source cannot be opened.\n\n{what}\n\nOpen a video, an image or an image folder instead."


class SourceMessage(QWidget):
    """``message`` above a button per way to open a source, each calling its slot."""

    def __init__(self, open_any: Callable[[], None], open_folder: Callable[[], None],
                 open_camera: Callable[[], None]) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        self.message = QLabel()
        self.message.setObjectName("sourceMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("QLabel { font-size: 15px; padding: 16px; }")
        # its text sets no minimum width: "Opening <a folder of a 162-character name>…", a word too long to wrap, had
        # made the window wider than a 1366 px screen (the page stays in the stack), the side panel crushed to 68 px
        self.message.setMinimumWidth(1)
        layout.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for text, slot in (("Open video or image…", open_any), ("Open image folder…", open_folder),
                           ("Try a camera…", open_camera)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout.addLayout(buttons)
        layout.addStretch(2)
