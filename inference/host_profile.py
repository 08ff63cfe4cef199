"""Where a bench row's host time goes, by function: ``bench --profile-host DIR``.

The bench splits a frame into finding faces, time inside ONNX Runtime, and the host work around the models; on the
H100 the host part at 16 faces (14 ms) was what stood between the frame and the 60 frames/s goal, and a profile
taken on 2 CPU cores says little about a machine with 16 fast ones. So the bench can profile each row's frames
where it runs: extra frames after the row is measured (its figures are taken without the profiler's overhead),
profiled on the thread that analyses them, written as a text report per row.
"""
from __future__ import annotations

import cProfile
import io
import pstats
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# ONNX Runtime's runs (plain and I/O-bound): the models' time, which the bench already reports apart
ORT_RUNS = re.compile(r"onnxruntime.*\b(run|run_with_iobinding|run_with_ort_values)\b|InferenceSession' objects\}")


@dataclass(frozen=True)
class HostProfile:
    path: Path
    frames: int
    top: list[tuple[str, float]]  # (function, ms a frame of its own time), the largest first, ORT's runs left out


def _label(func: tuple[str, int, str]) -> str:
    file, line, name = func
    if name == "<method 'acquire' of '_thread.lock' objects>":
        return "waiting on other threads (detection ahead, skin helpers)"
    if file == "~":  # a built-in
        return name
    parts = Path(file).parts
    short = "/".join(parts[-2:]) if len(parts) > 1 else file
    return f"{short}:{line}({name})"


def profile_frames(name: str, runner: Callable[[np.ndarray], object], frames: list[np.ndarray], count: int,
                   folder: Path) -> HostProfile:
    """Run ``count`` more frames (cycling through ``frames``) under cProfile and write ``folder``/<row>.txt:
    the functions by their own time, ms a frame."""
    folder.mkdir(parents=True, exist_ok=True)
    runner(frames[0])  # unprofiled: a runner finding faces ahead finds this one in line, and the next ahead
    profiler = cProfile.Profile()
    profiler.enable()
    try:
        for i in range(1, count + 1):
            runner(frames[i % len(frames)])
    finally:
        profiler.disable()
    stats = pstats.Stats(profiler)
    own = sorted(((_label(func), row[2] * 1000 / count) for func, row in stats.stats.items()),  # type: ignore[attr-defined]
                 key=lambda item: -item[1])
    host = [(f, ms) for f, ms in own if not ORT_RUNS.search(f)]
    in_ort = sum(ms for f, ms in own if ORT_RUNS.search(f))
    slug = re.sub(r"[^A-Za-z0-9]+", "_", name).strip("_").lower()
    path = folder / f"{slug}.txt"
    text = io.StringIO()
    stats.stream = text  # type: ignore[attr-defined]
    stats.sort_stats("tottime").print_stats(40)
    lines = [f"{name}: {count} frames profiled after the row was measured (profiler overhead included)",
             f"inside ONNX Runtime's runs: {in_ort:.2f} ms a frame; the rest, by own time, ms a frame:"]
    lines += [f"  {ms:8.3f}  {f}" for f, ms in host[:25]]
    path.write_text("\n".join(lines) + "\n\n" + text.getvalue(), encoding="utf-8")
    return HostProfile(path, count, host[:5])


def profile_line(profile: HostProfile) -> str:
    top = ", ".join(f"{f} {ms:.2f}" for f, ms in profile.top[:3])
    return f"    host profile ({profile.frames} frames): {profile.path}; most own time, ms a frame: {top}"
