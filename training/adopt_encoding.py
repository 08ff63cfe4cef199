"""How an adopted model wants its pixels: the ranges 0..255 may be mapped onto, and the ``Encoding`` that feeds it
faces (and maps a filter's output back) in NumPy, as the wrapper's nodes (adopt_wrap) do in its graph."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Named, not "-1,1": argparse would read a value that opens with a minus sign as an option.
RANGES = {"symmetric": (-1.0, 1.0), "unit": (0.0, 1.0), "byte": (0.0, 255.0)}

# How many faces (or a generator's latents) are run and checked at a time: 16 of 256 px or less, fewer as they grow,
# a batch holding about as many numbers as 16 such faces. All 64 latents of a 1024 px generator through ONNX Runtime at once, and
# whole float copies of every output in the checks, had taken 10 GB. Never fewer than 2: a graph that mixes the faces
# of a batch shows it only on a batch.
MAX_BATCH, MIN_BATCH = 16, 2
BATCH_VALUES = MAX_BATCH * 256 * 256 * 3


def per_batch(values: int) -> int:
    """How many images of ``values`` numbers each go in a batch."""
    return max(MIN_BATCH, min(MAX_BATCH, BATCH_VALUES // max(values, 1)))


def batch_rows(n: int, values: int) -> list[slice]:
    """The batches, in order, of ``n`` images of ``values`` numbers each."""
    step = per_batch(values)
    return [slice(start, start + step) for start in range(0, n, step)]


def rows_of(images: np.ndarray) -> list[slice]:
    """The batches, in order, of a stack of images (faces, or a model's raw output)."""
    return batch_rows(len(images), images[0].size if len(images) else 1)


def written_value(value: Sequence[float]) -> str:
    """A condition's value as --conditions gives it: its numbers separated by ':'."""
    return ":".join(f"{v:g}" for v in value)


@dataclass(frozen=True)
class Encoding:
    """How the model wants its pixels: 0..255 mapped onto [lo, hi], then (x − mean) / std per channel (RGB order),
    then channels in ``order`` and the tensor in ``layout``; a filter's output mapped back the same way, or, where
    ``out_lo``/``out_hi`` are given (--output-range), from that range alone, without mean/std: an ImageNet-normalised
    input with a sigmoid's [0, 1] output, mapped back through the input's mean and std, had been written 44 grey
    levels from the faces it was given back.
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
    out_lo: float | None = None
    out_hi: float | None = None

    @property
    def output_interval(self) -> tuple[float, float]:
        """The range a float output is read on: --output-range's, or the input's."""
        return (self.lo, self.hi) if self.out_lo is None else (self.out_lo, self.out_hi)  # type: ignore[return-value]

    @property
    def output_denormalised(self) -> bool:
        """Whether a float output is mapped back through mean/std before its range: only where it is read on the
        input's range (--output-range names a range of the output's own)."""
        return self.out_lo is None

    def encode(self, faces: np.ndarray) -> np.ndarray:
        """uint8 N×H×W×3 RGB faces as the model takes them (float32): what the wrapper's nodes do, in NumPy."""
        x = faces.astype(np.float32)
        if not self.takes_bytes:  # as the wrapper, which feeds a uint8 input the faces as they are
            x = x * np.float32((self.hi - self.lo) / 255) + np.float32(self.lo)
            x = (x - np.float32(self.mean)) / np.float32(self.std)
        x = x[..., ::-1] if self.order == "BGR" else x
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if self.layout == "NCHW" else x)

    def decode(self, y: np.ndarray) -> np.ndarray:
        """A filter's output in the model's terms → uint8 N×H×W×3 RGB, a batch at a time: ``grey``'s float copies of
        the whole output are four times its size."""
        return np.concatenate([np.clip(np.round(self.grey(y[rows])), 0, 255).astype(np.uint8) for rows in rows_of(y)])

    def grey(self, y: np.ndarray) -> np.ndarray:
        """A filter's output in the model's terms → float32 N×H×W×3 RGB grey levels, neither rounded nor clipped:
        where much of it lies past 0..255, the range reads the output otherwise than the filter gives it
        (adopt_filter_checks)."""
        y = y.astype(np.float32)
        y = y.transpose(0, 2, 3, 1) if self.layout == "NCHW" else y
        y = np.repeat(y, 3, axis=3) if y.shape[3] == 1 else y  # a grey image, given as three alike (adopt_wrap)
        y = y[..., ::-1] if self.order == "BGR" else y
        if not self.gives_bytes:  # a uint8 output is a face already: mapped through the range it was 222 grey off
            if self.output_denormalised:
                y = y * np.float32(self.std) + np.float32(self.mean)
            lo, hi = self.output_interval
            y = (y - np.float32(lo)) * np.float32(255 / (hi - lo))
        return y

    def describe(self, dtype: str, gives_image: bool = True) -> str:
        """Its input, and a filter's (``gives_image``) output where it is not read as its input is."""
        if self.takes_bytes:
            reads_out = gives_image and not self.gives_bytes
            out = f"; its float output read as [{self.lo:g}, {self.hi:g}]" if reads_out else ""
            return f"{dtype} {self.layout} {self.order}, pixels 0..255 as they are{out}"
        norm = "" if self.mean == (0, 0, 0) and self.std == (1, 1, 1) else f", then (x − {list(self.mean)}) / {list(self.std)}"
        out = "; its uint8 output taken as it is" if gives_image and self.gives_bytes else ""
        if gives_image and not self.gives_bytes and not self.output_denormalised:
            lo, hi = self.output_interval
            out = f"; its output read as [{lo:g}, {hi:g}] (--output-range)"
        return f"{dtype} {self.layout} {self.order}, pixels mapped onto [{self.lo:g}, {self.hi:g}]{norm}{out}"

    def describe_output(self, dtype: str) -> str:
        """A generator's or filter's output, as read into a face."""
        if self.gives_bytes:
            return f"{dtype} {self.layout} {self.order}, 0..255 as it is"
        plain = self.mean == (0, 0, 0) and self.std == (1, 1, 1) or not self.output_denormalised
        norm = "" if plain else f"x × {list(self.std)} + {list(self.mean)}, "
        lo, hi = self.output_interval
        return f"{dtype} {self.layout} {self.order}, {norm}[{lo:g}, {hi:g}] mapped onto 0..255"


@dataclass(frozen=True)
class Conditions:
    """A conditional filter's conditions: ``names`` as the card has them, each chosen by a one-hot row of the card's
    ``condition`` input (what run, the audit and the app feed), and ``values``, what each stands for in the model's
    own terms (one tuple a condition, of the model's D numbers), or None where the model takes the one-hot row itself.
    A CVAE's 0/1 scalar, a StarGAN's attribute vector and an nn.Embedding's label index are all values: the wrapper
    maps the row onto them. ``rank``: the model's condition input's, 1 (N,) or 2 (N×D); ``integer``: it takes whole
    numbers (an index), picked by the row's largest entry, where float values are the row times the table (a row
    that mixes conditions mixes their values)."""

    names: tuple[str, ...]
    values: tuple[tuple[float, ...], ...] | None = None
    rank: int = 2
    integer: bool = False

    @property
    def table(self) -> np.ndarray | None:
        """The values K×D (K for a model that takes one number a face), or None: one-hot."""
        if self.values is None:
            return None
        table = np.array(self.values, np.int64 if self.integer else np.float32)
        return table[:, 0] if self.rank == 1 else table

    @property
    def width(self) -> int:
        """How many numbers the model takes a face: D, or K where it takes the one-hot row."""
        return len(self.names) if self.values is None else len(self.values[0])

    def inner(self, rows: np.ndarray) -> np.ndarray:
        """One-hot rows (N×K) as the model takes them: what the wrapper's nodes do, in NumPy."""
        table = self.table
        if table is None:
            return rows
        return table[np.asarray(rows).argmax(1)] if self.integer else np.asarray(rows, np.float32) @ table

    def record(self) -> dict[str, list[float] | float] | None:
        """Each condition's value, for the card (None: one-hot)."""
        if self.values is None:
            return None
        as_written = [[int(v) if self.integer else v for v in value] for value in self.values]
        return {n: (v[0] if self.rank == 1 else v) for n, v in zip(self.names, as_written)}

    def written_each(self) -> dict[str, str]:
        """Each condition as --conditions gives it, by name: NAME=VALUE (names alone: one-hot)."""
        if self.values is None:
            return {n: n for n in self.names}
        return {n: f"{n}={written_value(value)}" for n, value in zip(self.names, self.values)}

    def written(self) -> str:
        """As --conditions gives them: NAME=VALUE, a value's numbers separated by ':' (names alone: one-hot)."""
        return ",".join(self.written_each().values())
