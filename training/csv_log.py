"""A run's CSV logs (log.csv, epochs.csv, a task's own): appended row by row, and cut back to a checkpoint's step
on a resume."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from inference.writing import writing, written_whole


# What a write the disk refuses during training leaves (a log row, a sample grid): it had ended in an OSError that
# named no file and said nothing of the checkpoint
RUN_KEPT = "what the run saved before is kept: --resume goes on from its last checkpoint once there is room"


class CsvLog:
    def __init__(self, path: Path):
        self.path = path

    def keep_until(self, column: str, last: int) -> None:
        """Rows whose ``column`` is past ``last`` go: a run killed after writing them resumes from an earlier
        checkpoint and writes them again (log.csv had read 300, 320, 320)."""
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            fields = list(rows[0]) if rows else None
        kept = [r for r in rows if not (r.get(column) or "").isdigit() or int(r[column]) <= last]
        if fields is None or len(kept) == len(rows):
            return
        with written_whole(self.path) as part, open(part, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(kept)

    def start_afresh(self) -> None:
        """A new run (no checkpoint) begins its log empty: one killed before its first checkpoint left rows that the
        new run had appended to (steps 20, 40, 20, 40, 60)."""
        self.path.unlink(missing_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        new = not self.path.exists()
        with writing(self.path, "the training log", RUN_KEPT), open(self.path, "a", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)
