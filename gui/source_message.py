"""The page shown in the view's place while no source plays: why (none chosen yet, or it could not be opened), and
buttons to open one."""
from __future__ import annotations

import sys
from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtGui import QFont, QFontInfo
from PySide6.QtWidgets import QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from inference.errors import BiasMirrorError
from inference.sources import camera_index

from .model_panel import plain_label


# Where macOS and Windows let the user refuse apps the camera. A refused app's cv2.VideoCapture fails to open as if
# there were no camera, and the page had sent the user to check the cable only.
CAMERA_PERMISSION = {
    "darwin": "that this app (your terminal or Python) is allowed to use the camera in System Settings › Privacy & "
              "Security › Camera",
    "win32": "that desktop apps are allowed to use the camera in Settings › Privacy & security › Camera",
}


def camera_checks(platform: str | None = None) -> str:
    """What to check where a camera did not open, on ``platform``, a ``sys.platform`` (this one's where None)."""
    permission = CAMERA_PERMISSION.get(platform or sys.platform)
    return "check it is connected and not in use" + (f", and {permission}" if permission else "")


def refusal_text(spec: str | int, error: Exception | None, what: str, platform: str | None = None) -> str:
    """The page's text where ``spec`` could not be opened: ``error`` raised, said in ``what``; ``platform`` as in
    ``camera_checks``."""
    if (index := camera_index(spec)) is not None and isinstance(error, BiasMirrorError):
        # one sentence: the error's own ("camera 0: no camera could be opened at index 0; …") said it twice
        return (f"No camera found at index {index}: {camera_checks(platform)}, or open a video, "
                "an image or an image folder instead.")
    if index is not None:
        return f"No camera found at index {index}.\n\n{what}."
    return f"This source cannot be opened.\n\n{what}\n\nOpen a video, an image or an image folder instead."


MESSAGE_SCALE = 1.25  # the page's message is larger than the rest of the window's text
MESSAGE_MIN_PX = 15  # and never smaller than the 15 px it had been fixed at


def message_font(font: QFont) -> QFont:
    """``font`` (the application's) enlarged for the page's message: fixed at 15 px, the message had stayed small
    under a 24 pt application font."""
    larger = QFont(font)
    larger.setPixelSize(max(MESSAGE_MIN_PX, round(QFontInfo(font).pixelSize() * MESSAGE_SCALE)))
    return larger


class SourceMessage(QWidget):
    """``message`` above a button per way to open a source, each calling its slot."""

    def __init__(self, open_any: Callable[[], None], open_folder: Callable[[], None],
                 open_camera: Callable[[], None]) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        layout.addStretch(1)
        # it quotes the source's name and why it did not open: anyone's text, shown as written (``plain_label``)
        self.message = plain_label(QLabel())
        self.message.setObjectName("sourceMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("QLabel { padding: 16px; }")
        self.message.setFont(message_font(self.message.font()))
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
