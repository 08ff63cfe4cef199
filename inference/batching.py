"""Batch sizes rounded up to a few fixed buckets for GPU providers.

ONNX Runtime's CUDA provider picks cuDNN convolution algorithms per input
shape, and TensorRT builds an engine per shape. With the batch axis equal to
the number of faces found, every new count (3, 5, 6, …) paid that cost again:
on an H100 a frame with a new face count took over a second. Padding the batch
to the next power of two keeps the shapes to a handful that are met once each.
The CPU provider has no per-shape cost, so it gets the exact batch.
"""
from __future__ import annotations

import numpy as np


def bucket(n: int) -> int:
    """The padded batch size for n items: the next power of two (0 stays 0)."""
    return 0 if n <= 0 else 1 << (n - 1).bit_length()


def pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    """x with zero rows appended along the first axis up to ``size`` rows (x itself when it has them)."""
    if len(x) >= size:
        return x
    pad = np.zeros((size - len(x), *x.shape[1:]), x.dtype)
    return np.concatenate([x, pad])
