"""A polite stop for long measuring commands: SIGTERM is taken as Ctrl-C.

`timeout`, a job scheduler or a device call that runs out of time sends
SIGTERM; by default that kills Python at once and everything measured so far
is lost. Raised as KeyboardInterrupt instead, the command's own Ctrl-C path
reports what it has before it exits.
"""
from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


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
