"""Where Bias Mirror keeps what it can compute again (TensorRT engines, dataset file digests): the user's cache."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bias-mirror"


def folder_cache_file(cache_dir: Path, kind: str, folder: str, suffix: str) -> Path:
    """Where what was computed for every file of ``folder`` is kept: ``cache_dir/kind/<folder's digest><suffix>``."""
    return cache_dir / kind / (hashlib.sha1(os.path.abspath(folder).encode("utf-8")).hexdigest() + suffix)
