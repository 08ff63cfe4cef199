"""Where Bias Mirror keeps what it can compute again (TensorRT engines, dataset file digests): the user's cache."""
from __future__ import annotations

import os
from pathlib import Path


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bias-mirror"
