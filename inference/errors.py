"""The one exception type users see.

Every message names the file (or path) involved and what to do about it, so
the CLI and the app can show it as is; the traceback goes to the log.
"""
from __future__ import annotations


PERMISSION_DENIED = "permission denied"


def in_words(exc: OSError) -> str:
    """What an OSError says, in the lower-case words our messages use ("permission denied", "no such file …")."""
    return PERMISSION_DENIED if isinstance(exc, PermissionError) else (exc.strerror or str(exc)).lower()


class BiasMirrorError(Exception):
    """A problem the user can fix: bad file, missing data, wrong model."""

    def __init__(self, message: str, path: object | None = None):
        self.path = None if path is None else str(path)
        self.message = message  # without the path, for a caller that says it of another file
        super().__init__(f"{self.path}: {message}" if self.path else message)
