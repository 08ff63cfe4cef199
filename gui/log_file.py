"""The app's log file. Launched from a desktop there is no terminal, yet the window's messages end with "details in
the log": the log is kept in a file (names of files and errors only, never frames) and the messages name it."""
from __future__ import annotations

import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path

log = logging.getLogger(__name__)
IN_THE_LOG = "(details in the log)"


def default_log_path() -> Path:
    """The platform's folder for the app's own data (QApplication's names must be set first)."""
    from PySide6.QtCore import QStandardPaths

    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)) / "bias-mirror.log"


def start_log_file(path: Path) -> Path | None:
    """Every log record from here on also goes to ``path`` (kept to three files of 1 MB); None, with a warning,
    when it cannot be written: the app runs without it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    except OSError as exc:
        log.warning("%s: the log cannot be kept there (%s)", path, exc.strerror or exc)
        return None
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    return path


def where_details_are(text: str, path: Path | None) -> str:
    """``text`` with "(details in the log)" naming the log file, where there is one."""
    return text.replace(IN_THE_LOG, f"(details in {path})") if path is not None else text
