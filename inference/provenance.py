"""What made a file's numbers: the ``software`` block that every versioned JSON output carries (report.json, bench
--json, bench detect --json, train evaluate --json, the app's snapshots and --health), so that a file read months
later says which version, commit and libraries wrote it. docs/outputs.md lists those outputs and their schema
versions."""
from __future__ import annotations

import importlib.metadata
import platform

from .checkout import git_state
from .pipeline import MEASURES_VERSION

PROJECT = "bias-mirror"  # the distribution name in pyproject.toml


def _installed_version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:  # run from a checkout never installed
        return None


def software() -> dict:
    """What made the report's numbers: the project's version and commit, the pipeline's measures version (the
    audit's cache key) and the libraries that read the images, run the models and compute the statistics. The same
    software writes the same block: the report stays byte-identical across reruns."""
    import cv2
    import numpy as np
    import onnxruntime
    import scipy

    git = git_state()
    return {"bias_mirror": _installed_version(PROJECT), "git_commit": git and git["commit"],
            "git_modified": git and git["modified"], "measures_version": MEASURES_VERSION,
            "python": platform.python_version(), "onnxruntime": onnxruntime.__version__, "opencv": cv2.__version__,
            "numpy": np.__version__, "scipy": scipy.__version__}
