"""How an adopted model wants its pixels: the ranges 0..255 may be mapped onto, and the ``Encoding`` that feeds it
faces (and maps a filter's output back) in NumPy, as the wrapper's nodes (adopt_wrap) do in its graph."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Named, not "-1,1": argparse would read a value that opens with a minus sign as an option.
RANGES = {"symmetric": (-1.0, 1.0), "unit": (0.0, 1.0), "byte": (0.0, 255.0)}


@dataclass(frozen=True)
class Encoding:
    """How the model wants its pixels: 0..255 mapped onto [lo, hi], then (x − mean) / std per channel (RGB order),
    then channels in ``order`` and the tensor in ``layout``; a filter's output mapped back the same way.
    ``takes_bytes``/``gives_bytes``: its input/output is uint8, 0..255 as it is, which no range or mean/std touches
    (a uint8 input with a float output: [lo, hi] is its output's range alone)."""

    lo: float
    hi: float
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    order: str = "RGB"
    layout: str = "NCHW"
    takes_bytes: bool = False
    gives_bytes: bool = False

    def encode(self, faces: np.ndarray) -> np.ndarray:
        """uint8 N×H×W×3 RGB faces as the model takes them (float32): what the wrapper's nodes do, in NumPy."""
        x = faces.astype(np.float32)
        if not self.takes_bytes:  # as the wrapper, which feeds a uint8 input the faces as they are
            x = x * np.float32((self.hi - self.lo) / 255) + np.float32(self.lo)
            x = (x - np.float32(self.mean)) / np.float32(self.std)
        x = x[..., ::-1] if self.order == "BGR" else x
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """A filter's output in the model's terms → uint8 N×H×W×3 RGB."""
        return np.clip(np.round(self.grey(y)), 0, 255).astype(np.uint8)

    def grey(self, y: np.ndarray) -> np.ndarray:
        """A filter's output in the model's terms → float32 N×H×W×3 RGB grey levels, neither rounded nor clipped:
        where much of it lies past 0..255, the range reads the output otherwise than the filter gives it
        (adopt_filter_checks)."""
        y = y.astype(np.float32)
        y = y.transpose(0, 2, 3, 1) if self.layout == "NCHW" else y
        y = y[..., ::-1] if self.order == "BGR" else y
        if not self.gives_bytes:  # a uint8 output is a face already: mapped through the range it was 222 grey off
            y = y * np.float32(self.std) + np.float32(self.mean)
            y = (y - np.float32(self.lo)) * np.float32(255 / (self.hi - self.lo))
        return y

    def describe(self, dtype: str, gives_image: bool = True) -> str:
        """Its input, and a filter's (``gives_image``) output where it is not read as its input is."""
        if self.takes_bytes:
            reads_out = gives_image and not self.gives_bytes
            out = f"; its float output read as [{self.lo:g}, {self.hi:g}]" if reads_out else ""
            return f"{dtype} {self.layout} {self.order}, pixels 0..255 as they are{out}"
        norm = "" if self.mean == (0, 0, 0) and self.std == (1, 1, 1) else f", then (x − {list(self.mean)}) / {list(self.std)}"
        out = "; its uint8 output taken as it is" if gives_image and self.gives_bytes else ""
        return f"{dtype} {self.layout} {self.order}, pixels mapped onto [{self.lo:g}, {self.hi:g}]{norm}{out}"
