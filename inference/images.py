"""Reading images from disk: one place, so training, the audit and the app decode alike."""
from __future__ import annotations

import cv2
import numpy as np


def resize_square(rgb: np.ndarray, size: int) -> np.ndarray:
    interp = cv2.INTER_AREA if min(rgb.shape[:2]) > size else cv2.INTER_LINEAR
    return cv2.resize(rgb, (size, size), interpolation=interp)


def read_rgb(path: str, size: int | None = None) -> np.ndarray | None:
    """An RGB uint8 image (resized to size×size if given), or None if it cannot be read."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None or img.size == 0:
        return None
    img = cv2.cvtColor(img, cv2.COLOR_BGR2RGB)
    return resize_square(img, size) if size else img
