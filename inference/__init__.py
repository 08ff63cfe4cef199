"""Bias Mirror runtime: ONNX Runtime, OpenCV and NumPy only (never torch or Qt)."""
import os

# onnxruntime ≥ 1.29 starts telemetry when it is imported: a device id and an event store under
# ~/.cache/Microsoft/DeveloperTools/.onnxruntime holding each session's model file name, to be uploaded.
# Only this variable, set before the import, stops it (ort.disable_telemetry_events() comes after the store
# exists). Every module that imports onnxruntime lives in this package or imports it first; a user's own
# explicit setting is kept.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

# onnxruntime imported here, once, with numbers read the C way (runtime.py says why): a module of this package that
# imports it itself (pipeline, bench, fixed_binding…) would otherwise import it in whatever locale the process then has
from . import runtime  # noqa: E402,F401
