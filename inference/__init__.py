"""Bias Mirror runtime: ONNX Runtime, OpenCV and NumPy only (never torch or Qt)."""
