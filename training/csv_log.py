"""A run's CSV logs (log.csv, epochs.csv, a task's own): appended row by row, and cut back to a checkpoint's step
on a resume. Their ``epoch`` column counts from 1, as the console, --epochs and the card do."""
from __future__ import annotations

import csv
import logging
from bisect import bisect_left
from pathlib import Path
from typing import Any, Callable

from inference.writing import writing, written_whole

log = logging.getLogger(__name__)


# What a write the disk refuses during training leaves (a log row, a sample grid): it had ended in an OSError that
# named no file and said nothing of the checkpoint
RUN_KEPT = "what the run saved before is kept: --resume goes on from its last checkpoint once there is room"

# Each checkpoint the loop saves carries this (as its "extra"): the run's logs count epochs from 1. One without it
# was saved by a run whose logs counted them from 0 (epochs.csv read 0…5 where the console had said epoch 1…6)
EPOCHS_FROM_ONE = {"log_epochs_from": 1}


def logs_count_epochs_from_one(state: dict) -> bool:
    return (state.get("extra") or {}).get("log_epochs_from") == 1


class CsvLog:
    def __init__(self, path: Path):
        self.path = path

    def rows(self) -> list[dict[str, str]]:
        return self._read()[1]

    def keep_until(self, column: str, last: int) -> None:
        """Rows whose ``column`` is past ``last`` go: a run killed after writing them resumes from an earlier
        checkpoint and writes them again (log.csv had read 300, 320, 320)."""
        fields, rows = self._read()
        kept = [r for r in rows if (n := number(r, column)) is None or n <= last]
        if fields is not None and len(kept) != len(rows):
            self._replace(fields, kept)

    def renumber(self, column: str, new: Callable[[dict[str, str]], int | None]) -> None:
        """Each row's ``column`` set to ``new(row)``, where that is not None; the file is rewritten whole, and only
        where a number changes."""
        fields, rows = self._read()
        changed = False
        for r in rows:
            n = new(r)
            if n is not None and r.get(column) != str(n):
                r[column], changed = str(n), True
        if fields is not None and changed:
            self._replace(fields, rows)

    def start_afresh(self) -> None:
        """A new run (no checkpoint) begins its log empty: one killed before its first checkpoint left rows that the
        new run had appended to (steps 20, 40, 20, 40, 60)."""
        self.path.unlink(missing_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        """``row`` appended under the file's header, a column it lacks left empty. A key the header lacks widens it:
        the file is rewritten whole, the earlier rows' new cells empty. Each row had been written in its own keys'
        order under the first row's header, so a GAN's G loss on a step that logged no D loss was read as D's. The
        header is read back from the file, so a resumed run appends by the columns the run began with."""
        with writing(self.path, "the training log", RUN_KEPT):
            header = self._header()
            if header is None:
                with open(self.path, "a", newline="", encoding="utf-8") as fh:
                    w = csv.DictWriter(fh, fieldnames=list(row))
                    w.writeheader()
                    w.writerow(row)
            elif all(k in header for k in row):
                with open(self.path, "a", newline="", encoding="utf-8") as fh:
                    csv.DictWriter(fh, fieldnames=header, restval="").writerow(row)
            else:
                _, rows = self._read()
                self._replace([*header, *(k for k in row if k not in header)], [*rows, row])

    def _header(self) -> list[str] | None:
        """The file's columns, or None where it holds none yet: its first row alone is read, as a row is written
        every 20 steps."""
        if not self.path.exists():
            return None
        with self.path.open(newline="", encoding="utf-8") as fh:
            return next(csv.reader(fh), None) or None

    def _read(self) -> tuple[list[str] | None, list[dict[str, Any]]]:
        if not self.path.exists():
            return None, []
        with open(self.path, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            rows = list(reader)
            return (list(reader.fieldnames) if reader.fieldnames else None), rows

    def _replace(self, fields: list[str], rows: list[dict[str, Any]]) -> None:
        """The file rewritten whole with ``fields`` as its header. A row's values past its header (under the key
        None: a log written before rows were written by the header) are kept after its own, as they were."""
        with written_whole(self.path) as part, open(part, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(fields)
            w.writerows([*("" if r.get(f) is None else r[f] for f in fields), *(r.get(None) or ())] for r in rows)


def number(row: dict[str, str], column: str) -> int | None:
    value = row.get(column) or ""
    return int(value) if value.isdigit() else None


def count_epochs_from_one(epoch_log: CsvLog, step_log: CsvLog, finished: int) -> None:
    """The logs of a run begun when they counted epochs from 0, renumbered from 1 before its resume appends to them.

    A resume killed before its first checkpoint leaves them renumbered beside a checkpoint without the mark, and the
    next renumbers them again: done twice, each part gives what it gave once. epochs.csv goes up by one only while it
    holds an epoch 0, which counting from 1 never writes. log.csv cannot be told so: where an epoch is shorter than
    its 20 steps a row, an old log holds no epoch 0 either. Its rows are numbered by their step instead, each in the
    first epoch whose end (epochs.csv's step) is at or after it."""
    if any(number(r, "epoch") == 0 for r in epoch_log.rows()):
        epoch_log.renumber("epoch", lambda r: None if (n := number(r, "epoch")) is None else n + 1)
    ends = epoch_ends(epoch_log)
    missing = [e for e in range(1, finished + 1) if e not in ends]
    if missing:
        log.warning("%s: its rows' epochs are renumbered from 1 by where each epoch ended, and %s lacks epoch(s) %s "
                    "of the %d the checkpoint finished: its rows in them are numbered as a later epoch",
                    step_log.path, epoch_log.path.name, ", ".join(map(str, missing)), finished)
    by_end = sorted((step, epoch) for epoch, step in ends.items())
    after_last = max(ends, default=0) + 1  # rows past every end: the epoch the checkpoint is in

    def epoch_of(row: dict[str, str]) -> int | None:
        if (step := number(row, "step")) is None:
            return None
        i = bisect_left(by_end, (step, 0))
        return by_end[i][1] if i < len(by_end) else after_last

    step_log.renumber("epoch", epoch_of)


def epoch_ends(epoch_log: CsvLog) -> dict[int, int]:
    """Each epoch's last step, as epochs.csv says it; of a row written twice, the later."""
    ends: dict[int, int] = {}
    for r in epoch_log.rows():
        if (epoch := number(r, "epoch")) is not None and (step := number(r, "step")) is not None:
            ends[epoch] = step
    return ends
