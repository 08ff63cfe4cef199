"""QSettings for the app. ``BIASMIRROR_SETTINGS`` (an .ini path) redirects them, so tests never touch the user's."""
from __future__ import annotations

import math
import os
from pathlib import Path

from PySide6.QtCore import QSettings, QStandardPaths

ORG, APP = "BiasMirror", "BiasMirror"
ENV = "BIASMIRROR_SETTINGS"
LAST_CAMERA = "last_camera"  # the camera index last opened: the one a start without --source opens


def make_settings() -> QSettings:
    path = os.environ.get(ENV)
    if path:
        return QSettings(path, QSettings.Format.IniFormat)
    return QSettings(ORG, APP)


def get(settings: QSettings, key: str, default, kind=None, within: tuple[float, float] | None = None):
    """A typed read: QSettings' ini backend returns strings for everything. A number that is not finite, or
    outside ``within`` (inclusive), is the default: a saved "nan" or "1e20" kept the app from starting."""
    value = settings.value(key, default)
    if value is None:
        return default
    kind = kind or type(default)
    try:
        if kind is bool:
            return value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes")
        if kind in (int, float):
            number = kind(value)
            usable = math.isfinite(number) and (within is None or within[0] <= number <= within[1])
            return number if usable else default
        if kind is list:
            return [] if value in ("", None) else (list(value) if isinstance(value, (list, tuple)) else [str(value)])
        return kind(value)
    except (TypeError, ValueError, OverflowError):
        return default


def unsaved_reason(settings: QSettings) -> str | None:
    """Why ``settings`` cannot be saved (its file cannot be written), naming the file; None when it can."""
    if settings.isWritable():
        return None
    return (f"settings cannot be saved to {settings.fileName()}: the file cannot be written; changes last this "
            "session only")


def default_output_dir() -> Path:
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.DocumentsLocation) or str(Path.home())
    return Path(base) / "BiasMirror"


def file_key(path: str | Path) -> str:
    """What a model's saved state is kept under: its file, resolved. Not its name: two files of one card name are
    numbered by load order, and with the first gone the second took its name, and with it the first's state."""
    return str(Path(path).resolve())


def last_camera(settings: QSettings) -> int:
    """The camera index last opened, 0 where none was (or what was saved is no index): a USB camera at 1 had to be
    chosen again at every start."""
    return get(settings, LAST_CAMERA, 0, int, within=(0, math.inf))


def put(settings: QSettings, key: str, value) -> None:
    """Write a setting. Booleans are stored as "true"/"false" so they read back the same from any
    QSettings backend (and PySide6 6.12's setValue(key, True) corrupted True's refcount)."""
    if isinstance(value, bool):
        value = "true" if value else "false"
    settings.setValue(key, value)
