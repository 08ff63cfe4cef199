"""The one exception type users see.

Every message names the file (or path) involved and what to do about it, so
the CLI and the app can show it as is; the traceback goes to the log.
"""
from __future__ import annotations

import contextlib

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


@contextlib.contextmanager
def writing(path: object, what: str = ""):
    """Within it, an OSError that names no file (a write to a full disk: "[Errno 28] No space left on device") names
    ``path``, with ``what`` it is after the system's reason: open() names its file, a failed write or flush does not,
    and such errors had reached the user as tracebacks that said neither which file nor why."""
    try:
        yield
    except OSError as exc:
        if exc.filename is not None:
            raise
        reason = exc.strerror or str(exc)
        raise OSError(exc.errno, f"{reason} ({what})" if what else reason, str(path)) from None
