"""Batch sizes rounded up to a few fixed buckets for GPU providers.

ONNX Runtime's CUDA provider picks cuDNN convolution algorithms per input
shape, and TensorRT builds an engine per shape. With the batch axis equal to
the number of faces found, every new count (3, 5, 6, …) paid that cost again:
on an H100 a frame with a new face count took over a second. Padding the batch
to the next power of two keeps the shapes to a handful that are met once each.
The CPU provider has no per-shape cost, so it gets the exact batch.

Above 16 the buckets are multiples of 8, not powers of two: with a filter the classifiers get the crops and their
references in one call (2 × faces rows), and 17 faces' 34 rows had run as 64.
"""
from __future__ import annotations

import numpy as np


FINE_ABOVE = 16  # up to here powers of two, then multiples of FINE_STEP
FINE_STEP = 8


def bucket(n: int) -> int:
    """The padded batch size for n items: the next power of two up to 16, then the next multiple of 8 (0 stays
    0)."""
    if n <= FINE_ABOVE:
        return 0 if n <= 0 else 1 << (n - 1).bit_length()
    return -(-n // FINE_STEP) * FINE_STEP


def buckets_up_to(n: int) -> list[int]:
    """Every bucket size a batch of 1 to n items is padded to, smallest first."""
    top = bucket(n)
    powers = [1 << k for k in range(min(top, FINE_ABOVE).bit_length())]
    return powers + list(range(FINE_ABOVE + FINE_STEP, top + 1, FINE_STEP))


def pad_batch(x: np.ndarray, size: int) -> np.ndarray:
    """x with zero rows appended along the first axis up to ``size`` rows (x itself when it has them)."""
    if len(x) >= size:
        return x
    pad = np.zeros((size - len(x), *x.shape[1:]), x.dtype)
    return np.concatenate([x, pad])
