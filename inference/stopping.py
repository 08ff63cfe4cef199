"""What long measuring commands keep when they are stopped.

`timeout`, a job scheduler or a device call that runs out of time sends
SIGTERM; by default that kills Python at once and everything measured so far
is lost. Raised as KeyboardInterrupt instead, the command's own Ctrl-C path
reports what it has before it exits; and results rewritten whole after every
row survive even a kill that gives no warning.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from . import strict_json
from .writing import write_through, writing


TERMINATED = f"signal {int(signal.SIGTERM)}"  # the KeyboardInterrupt's words when SIGTERM raised it


class StopSaid(KeyboardInterrupt):
    """A stop whose command has said what it kept ("interrupted: the 1248 image(s) computed so far are cached; …"):
    main then adds no bare "interrupted" of its own, which had said it twice. Its words are the stop's, so that a
    SIGTERM's (``TERMINATED``) is still told apart."""

    @classmethod
    def of(cls, stop: KeyboardInterrupt) -> "StopSaid":
        return cls(*stop.args)


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {int(signum)}")


@contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM raises KeyboardInterrupt in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.signal(signal.SIGTERM, _raise_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def write_json_atomically(path: Path, payload: dict, what: str = "the --json report",
                          kept: str = "what was measured is printed above") -> None:
    """Replace ``path`` whole with ``payload``: a reader, or a kill mid-write, never sees half a file. Written as
    ``write_through`` writes: a bare rename had replaced a link (as root, the system's /dev/stdout) with a file
    of its own. A write the system refuses is a BiasMirrorError naming ``path`` (it had named the hidden file
    written in its place)."""
    with writing(path, what, kept):
        write_through(path, strict_json.dumps(payload, indent=1))
