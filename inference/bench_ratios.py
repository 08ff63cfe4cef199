"""Each ONNX row against the eager baseline's row of the same face count and variant, measured in the same run:
ratios of frames/s and of faces/s, over the frames both rows measured."""
from __future__ import annotations

import numpy as np

from .bench_measure import Measurement, faces_words


def compare_with_eager(results: list[Measurement]) -> None:
    """Each ONNX row ÷ the eager row of the same face count and variant, measured in this run, over the frames both
    measured. Every row measures the frames from the first after the warm-up on, but --seconds stops each on its own
    clock: rates over different frames (an ONNX row's 2-30 against eager's 2-6) compared other faces and counts."""
    eager = {(m.faces, m.variant): m for m in results if m.provider == "eager" and m.status == "ok"}
    for m in results:
        base = eager.get((m.faces, m.variant))
        if m.provider == "eager" or m.status != "ok" or base is None or base.fps <= 0:
            continue
        k = min(m.frames, base.frames)
        (rate, faces), (base_rate, base_faces) = over_frames(m, k), over_frames(base, k)
        m.vs_eager, m.vs_eager_frames = rate / base_rate, k
        m.vs_eager_faces = rate * faces / (base_rate * base_faces) if base_faces > 0 else None


def over_frames(m: Measurement, k: int) -> tuple[float, float]:
    """A row's frames/s and faces analysed a frame over its first ``k`` measured frames: its own figures where it
    measured just those, else from its frames' times."""
    faces = m.frame_faces[:k] or [m.faces_seen - m.faces_dropped]
    if k >= m.frames:
        return m.fps, float(np.mean(faces))
    return k * 1000 / sum(m.frame_ms[:k]), float(np.mean(faces))


def ratio_notes(results: list[Measurement]) -> list[str]:
    """A note for each ratio taken over fewer frames than its row or the eager one measured (--seconds stopped them
    after different counts): the table's frames/s are each over its own frames, the ratio over the common ones."""
    eager = {(m.faces, m.variant): m.frames for m in results if m.provider == "eager" and m.status == "ok"}
    lines = []
    for m in results:
        k, base = m.vs_eager_frames, eager.get((m.faces, m.variant))
        if k is not None and base is not None and (k < m.frames or k < base):
            lines.append(f"note: {m.name} at {faces_words(m.faces)}: × eager over the first {k} frames after the "
                         f"warm-up, those both it ({m.frames} measured) and the eager baseline ({base}) measured")
    return lines
