"""Training: PyTorch trainers that produce every model the app runs."""
import inference  # noqa: F401  (before any onnxruntime import here: it switches ORT's telemetry off)
