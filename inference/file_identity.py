"""What identifies a file's content: its digest, or (to tell whether a kept digest still holds) its size and
modification time."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def file_hash(path: str | Path, *more: str | Path) -> str:
    """The sha256 of the file's bytes, followed by each of ``more``'s (a model and its external data)."""
    h = hashlib.sha256()
    for part in (path, *more):
        with open(part, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


def file_stats(paths: list[str]) -> dict[str, tuple[int, int]]:
    """(size, modification time in ns) of each path that can be read; one that cannot is left out, and reading
    it later names the problem."""
    stats = {}
    for p in paths:
        try:
            st = os.stat(p)
        except OSError:
            continue
        stats[p] = (st.st_size, st.st_mtime_ns)
    return stats
