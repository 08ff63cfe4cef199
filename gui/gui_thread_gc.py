"""Python's cyclic garbage collected on the GUI thread only, while the app (or a test's window) runs.

Automatic collection runs on whichever thread happens to allocate past the threshold: a source-opening or capture
thread could so destroy a Qt object left in a reference cycle (an old window's menu), and ~QObject then waited for
the GIL while the GUI thread held it in Shiboken's deletion of another Qt object, waiting for the lock ~QObject held:
the app froze (seen in CI, tests/test_app.py). pyqtgraph's GarbageCollector switches automatic collection off and
collects on a timer of the thread that made it, which must be the GUI thread."""
from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

INTERVAL_S = 1.0  # pyqtgraph's default; a second's cycles are little memory next to a frame


@contextlib.contextmanager
def garbage_collected_on_gui_thread(interval_s: float = INTERVAL_S) -> Iterator[None]:
    """Within: no automatic collection; the GUI thread's event loop collects every ``interval_s``. After: what was
    left is collected here, and automatic collection is as it was (so an inner use leaves an outer one in force)."""
    from PySide6.QtCore import QCoreApplication, QThread
    from pyqtgraph.util.garbage_collector import GarbageCollector

    app = QCoreApplication.instance()
    if app is None or app.thread() is not QThread.currentThread():
        raise RuntimeError("garbage_collected_on_gui_thread must be entered on the GUI thread, after the QApplication")
    was_enabled = gc.isenabled()
    collector = GarbageCollector(interval=interval_s)
    try:
        yield
    finally:
        collector.timer.stop()
        gc.collect()
        if was_enabled:
            gc.enable()
