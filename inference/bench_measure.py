"""Timing one bench configuration into a row (``Measurement``): frames run after a warm-up, each frame's time and
faces kept, and how a row's face count, and a shortfall of faces found, are said."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from .errors import BiasMirrorError


@dataclass
class Measurement:
    name: str
    frames: int
    fps: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # stage → p50/p95/p99
    provider: str = ""  # cpu / cuda / tensorrt / auto, or "eager"
    faces: int = 0  # faces pasted per frame
    variant: str = ""  # filter | plain
    faces_seen: float = 0.0  # faces found per frame by the detector (mean)
    status: str = "ok"  # or "unavailable: <reason>"
    vs_eager: float | None = None  # frames/s ÷ the eager baseline's in the same run, over the same frames
    vs_eager_faces: float | None = None  # faces/s ÷ the eager baseline's (the detectors may find different counts)
    vs_eager_frames: int | None = None  # how many frames the ratios are over: the first ones both rows measured
    faces_dropped: float = 0.0  # faces a frame found beyond the pipeline's max_faces, left unanalysed (mean)
    gpu_memory_mib: float | None = None  # GPU memory in use after this configuration, above the run's start (GPU rows)
    # each measured frame's time (end to end, ms) and the faces its work ran on, in order from the first frame after
    # the warm-up: --seconds stops rows after different counts, and a ratio is taken over the frames both measured
    frame_ms: list[float] = field(default_factory=list, repr=False)
    frame_faces: list[int] = field(default_factory=list, repr=False)


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99))}


def measure(name: str, fn: Callable[[np.ndarray], tuple[dict[str, float], int]], frames: list[np.ndarray],
            warmup: int, seconds: float | None = None) -> Measurement:
    """Run ``fn`` over the frames after ``warmup`` of them; with ``seconds``, stop early (warm-up gets a quarter).
    Each measured frame's time and faces are kept in order: a ratio between rows stopped apart is taken over the
    frames both measured (``compare_with_eager``)."""
    t0 = time.perf_counter()
    for f in frames[:warmup]:
        fn(f)
        if seconds and time.perf_counter() - t0 > seconds / 4:
            break
    stages: dict[str, list[float]] = {}
    seen: list[int] = []
    t0 = time.perf_counter()
    for f in frames[warmup:]:
        t = time.perf_counter()
        timings, n_faces = fn(f)
        timings = dict(timings)
        timings["end_to_end"] = (time.perf_counter() - t) * 1000
        seen.append(n_faces)
        for k, v in timings.items():
            stages.setdefault(k, []).append(v)
        if seconds and len(seen) >= 3 and time.perf_counter() - t0 > seconds:
            break
    elapsed = time.perf_counter() - t0
    n = len(seen)
    if n == 0:
        raise BiasMirrorError(f"--frames must be at least 1 ({name})")
    return Measurement(name, n, n / elapsed, {k: percentiles(v) for k, v in stages.items()},
                       faces_seen=float(np.mean(seen)), frame_ms=stages["end_to_end"], frame_faces=seen)


AS_FILMED = 0  # a row's face count for a video's frames: the faces it films, which found/frame counts


def faces_label(n: int) -> str:
    return "video" if n == AS_FILMED else str(n)


def faces_words(n: int) -> str:
    return "a video's frames" if n == AS_FILMED else f"{n} face(s)"


def unavailable(name: str, provider: str, faces: int, variant: str, reason: str) -> Measurement:
    return Measurement(name, 0, 0.0, {}, provider, faces, variant, 0.0, f"unavailable: {reason}")


FOUND_ENOUGH = 0.9  # a row's faces found a frame, as a share of those pasted, below which it times less model work


def found_short(m: Measurement) -> bool:
    return m.faces_seen == 0 or (m.faces != AS_FILMED and m.faces_seen < FOUND_ENOUGH * m.faces)
