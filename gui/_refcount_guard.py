"""Work around a PySide6 6.12 reference-count bug on Python < 3.12.

Measured here (PySide6-Essentials 6.12.0, CPython 3.11.7): every call of a
void C++ method (``QPainter.setRenderHint``, ``save``, ``setClipRect``, ...)
drops one reference to ``None`` it never took, and ``QSettings.setValue(key,
True)`` does the same to ``True``. A window that paints for a few minutes
drives the count to zero and the interpreter aborts ("Fatal Python error:
none_dealloc" / "bool_dealloc"). Python 3.12 made these objects immortal
(PEP 683), which hides the bug; here we do the same by hand: their counts
get a huge head start so they can never reach zero in a session.

Remove this module when the app requires Python ≥ 3.12 or a fixed PySide6.
"""
from __future__ import annotations

import ctypes
import platform
import sys

HEAD_START = 1 << 40  # ~10^12 leaked references before anything could go wrong
_done = False


def protect_singletons() -> bool:
    """Make None, True, False (and Ellipsis, NotImplemented) effectively immortal; True if applied."""
    global _done
    if _done or sys.version_info >= (3, 12) or platform.python_implementation() != "CPython":
        return False
    for obj in (None, True, False, Ellipsis, NotImplemented):
        ref = ctypes.c_ssize_t.from_address(id(obj))  # ob_refcnt is the first field of every PyObject
        ref.value += HEAD_START
    _done = True
    return True
