"""Reading images from disk: one place, so training, the audit and the app decode alike."""
from __future__ import annotations

import cv2
import numpy as np


def resize_batch(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """N×H×W×C images resized to ``size`` (h, w); area when both sides shrink, linear otherwise."""
    if images.shape[1:3] == tuple(size):
        return images
    if len(images) == 0:
        return np.zeros((0, *size, *images.shape[3:]), images.dtype)
    if images.shape[1] > size[0] and images.shape[2] > size[1]:
        return np.stack([cv2.resize(im, (size[1], size[0]), interpolation=cv2.INTER_AREA) for im in images])
    # Growing is interpolated in float and rounded, not in OpenCV's fixed-point uint8
    # arithmetic: the GPU path (device_chain) does the same sums and must give the same faces.
    grown = [cv2.resize(im.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR) for im in images]
    return np.clip(np.rint(np.stack(grown)), 0, 255).astype(images.dtype)


def read_rgb(path: str, size: int | None = None) -> np.ndarray | None:
    """An RGB uint8 image (resized to size×size if given), or None if it cannot be read."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return resize_batch(img[None], (size, size))[0] if size else img
