"""Where Bias Mirror keeps what it can compute again (TensorRT engines, dataset file digests): the user's cache."""
from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bias-mirror"


def folder_cache_file(cache_dir: Path, kind: str, folder: str, suffix: str) -> Path:
    """Where what was computed for every file of ``folder`` is kept: ``cache_dir/kind/<folder's digest><suffix>``."""
    return cache_dir / kind / (hashlib.sha1(os.path.abspath(folder).encode("utf-8", "surrogateescape")).hexdigest() + suffix)


def cache_keys(paths: Iterable[str], folder: str) -> dict[str, str]:
    """Each path as a ``folder_cache_file`` entry names it: within the folder, so that the same folder spelled
    another way (absolute, or relative from elsewhere) finds what was kept, as its cache file does."""
    base = os.path.abspath(folder)
    inside = base.rstrip(os.sep) + os.sep
    keys = {}
    for p in paths:
        a = os.path.abspath(p)
        keys[p] = a[len(inside):] if a.startswith(inside) else os.path.relpath(a, base)  # relpath is slow: rarely
    return keys
