"""The app's log file. Launched from a desktop there is no terminal, yet the window's messages end with "details in
the log": the log is kept in a file (names of files and errors only, never frames) and the messages name it."""
from __future__ import annotations

import contextlib
import logging
from logging.handlers import RotatingFileHandler
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)
IN_THE_LOG = "(details in the log)"


def default_log_path() -> Path:
    """The platform's folder for the app's own data (QApplication's names must be set first)."""
    from PySide6.QtCore import QStandardPaths

    return Path(QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppLocalDataLocation)) / "bias-mirror.log"


@contextlib.contextmanager
def log_file(path: Path) -> Iterator[Path | None]:
    """Inside, every log record at INFO or above also goes to ``path`` (kept to three files of 1 MB); it yields
    None, with a warning, when the file cannot be written: the app runs without it. The handler is removed on
    leaving, so a second app in the same process (tests) does not write each line twice."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handler = RotatingFileHandler(path, maxBytes=1_000_000, backupCount=2, encoding="utf-8")
    except OSError as exc:
        log.warning("%s: the log cannot be kept there (%s)", path, exc.strerror or exc)
        yield None
        return
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.INFO)
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    if level == logging.NOTSET or level > logging.INFO:
        root.setLevel(logging.INFO)
    try:
        yield path
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
        handler.close()


def where_details_are(text: str, path: Path | None) -> str:
    """``text`` with "(details in the log)" naming the log file, where there is one."""
    return text.replace(IN_THE_LOG, f"(details in {path})") if path is not None else text
