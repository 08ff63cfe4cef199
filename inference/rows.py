"""Flat rows (one per face per frame) for CSV: shared by `run` and the app's recorder."""
from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import IO, Any

from .results import FaceResult, FrameResult


def _num(v: float | None, digits: int = 4) -> Any:
    return "" if v is None or (isinstance(v, float) and math.isnan(v)) else round(float(v), digits)


def face_row(frame: FrameResult, face: FaceResult) -> dict[str, Any]:
    o, f, s = face.original, face.filtered, face.skin_shift
    row: dict[str, Any] = {
        "frame": frame.index, "time": round(frame.timestamp, 3), "source": frame.source, "track_id": face.track_id,
        "x": face.box[0], "y": face.box[1], "w": face.box[2], "h": face.box[3],
        "filter": frame.filter_name or "",
        "measurable": int(o.skin.measurable),
        "ita": _num(o.skin.ita, 2), "L": _num(o.skin.L, 2), "mst": o.skin.mst or "",
        "ita_filtered": _num(f.skin.ita, 2) if f else "", "L_filtered": _num(f.skin.L, 2) if f else "",
        "mst_filtered": (f.skin.mst or "") if f else "",
        "delta_ita": _num(s.delta_ita, 2) if s else "", "delta_l": _num(s.delta_l, 2) if s else "",
        "delta_mst": "" if s is None or s.delta_mst is None else s.delta_mst,
    }
    for name, out in o.classifiers.items():
        row[f"p_female[{name}]"] = _num(out.p_female)
        row[f"cam_focus[{name}]"] = _num(out.cam_focus, 3)
        if f:
            # the filter's deltas are measured against this: the crop through the filter's resampling alone
            row[f"p_female_reference[{name}]"] = _num(face.reference[name].p_female)
            row[f"p_female_filtered[{name}]"] = _num(f.classifiers[name].p_female)
            row[f"delta_p_female[{name}]"] = _num(face.delta_p_female.get(name))
    return row


class RowWriter:
    """Streams rows to CSV and flushes every ``flush_every`` seconds, so a crash loses at most that much."""

    def __init__(self, path: str | Path, flush_every: float = 1.0):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh: IO[str] = open(self.path, "w", newline="")
        self._writer: csv.DictWriter | None = None
        self._last_flush = 0.0
        self.flush_every = flush_every
        self.rows = 0

    def write_frame(self, frame: FrameResult, now: float) -> None:
        for face in frame.faces:
            row = face_row(frame, face)
            if self._writer is None:
                self._writer = csv.DictWriter(self._fh, fieldnames=list(row), extrasaction="ignore")
                self._writer.writeheader()
            self._writer.writerow(row)
            self.rows += 1
        if now - self._last_flush >= self.flush_every:
            self._fh.flush()
            self._last_flush = now

    def close(self) -> None:
        if not self._fh.closed:
            self._fh.flush()
            self._fh.close()
