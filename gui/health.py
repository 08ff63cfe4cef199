"""How the running app holds up: event-loop stalls and memory over a session.

A timer asks to fire every ``tick_ms``; how late each tick arrives is how long
the GUI thread was busy (painting, or blocked), which is what a user feels as
a stall. Memory is sampled from the process's RSS. Used by ``--health PATH``
for soak runs (a long session left running), not shown in the window.
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer

from inference.bench_machine import rss_mb
from inference.provenance import software
from inference.stopping import write_json_atomically

# The --health JSON's format (docs/outputs.md): bump it when a key changes meaning. The files written before it had
# neither it nor the software block (1): a soak's file read later could not say what ran the session.
HEALTH_SCHEMA_VERSION = 2


@dataclass
class HealthReport:
    seconds: float
    ticks: int
    tick_ms: int
    lateness_ms_p50: float
    lateness_ms_p99: float
    lateness_ms_max: float
    stalls_over_100ms: int
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (seconds since start, MB)
    frames_processed: int = 0
    results_shown: int = 0
    # what ran the session (inference.provenance), taken as it started; None: asked as the report is written
    software: dict | None = field(default=None, repr=False)

    def line(self) -> str:
        rss = self.rss_mb
        mem = f"RSS {rss[0][1]:.0f} → {rss[-1][1]:.0f} MB (max {max(m for _, m in rss):.0f})" if rss else "RSS unknown"
        return (f"{self.seconds:.0f} s: {self.frames_processed} frames processed, {self.results_shown} shown; "
                f"GUI thread late by p50 {self.lateness_ms_p50:.1f} ms, p99 {self.lateness_ms_p99:.1f} ms, "
                f"max {self.lateness_ms_max:.0f} ms, {self.stalls_over_100ms} stall(s) > 100 ms; {mem}")


class Lateness:
    """How late the ticks came, in a fixed number of counts however long the session: every tick's lateness kept in a
    list had grown 4–5 MB an hour, in the RSS the report measures. The count, the maximum and the stalls over 100 ms
    are exact; the percentiles come from bins each GROWTH times as wide as the one before, from FLOOR_MS up to CAP_MS,
    and lie within √GROWTH − 1 (0.5 %) of ``np.percentile``'s over every tick, or within FLOOR_MS / 2 below FLOOR_MS
    (beyond CAP_MS a tick is read as the maximum)."""
    FLOOR_MS = 0.01  # below it, one bin: a tick on time is late by 0 or a few microseconds
    CAP_MS = 100_000.0  # above it, one bin, whose percentile is the maximum: a GUI thread stuck for minutes
    GROWTH = 1.01
    STALL_MS = 100.0

    def __init__(self) -> None:
        self._bins = math.ceil(math.log(self.CAP_MS / self.FLOOR_MS) / math.log(self.GROWTH))
        # [0] under FLOOR_MS, [1 + k] from FLOOR_MS·GROWTH^k, [-1] over CAP_MS
        self.counts = np.zeros(self._bins + 2, np.int64)
        self.n = 0
        self.max = 0.0
        self.stalls = 0

    def add(self, ms: float) -> None:
        self.counts[self._bin(ms)] += 1
        self.n += 1
        self.max = max(self.max, ms)
        self.stalls += ms > self.STALL_MS

    def _bin(self, ms: float) -> int:
        if ms < self.FLOOR_MS:
            return 0
        return min(1 + int(math.log(ms / self.FLOOR_MS) / math.log(self.GROWTH)), self._bins + 1)

    def _value(self, b: int) -> float:
        """The value a tick in bin ``b`` stands for: the bin's geometric middle, the maximum beyond CAP_MS."""
        if b == 0:
            return min(self.FLOOR_MS / 2, self.max)
        if b > self._bins:
            return self.max
        return min(self.FLOOR_MS * self.GROWTH ** (b - 0.5), self.max)

    def percentile(self, q: float) -> float:
        """As ``np.percentile``'s default (linear between the two ticks either side of the rank), each tick read as
        its bin's value; 0 without a tick."""
        if self.n == 0:
            return 0.0
        rank = (self.n - 1) * q / 100
        below, above = math.floor(rank), math.ceil(rank)
        cumulative = np.cumsum(self.counts)
        lo, hi = (self._value(int(np.searchsorted(cumulative, r, side="right"))) for r in (below, above))
        return lo + (hi - lo) * (rank - below)


class HealthMonitor(QObject):
    def __init__(self, tick_ms: int = 20, rss_every_s: float = 5.0, parent: QObject | None = None):
        super().__init__(parent)
        self.tick_ms, self.rss_every_s = tick_ms, rss_every_s
        self.lateness = Lateness()
        self._rss: list[tuple[float, float]] = []
        self._software: dict | None = None
        self._start = self._last = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        # once, here: a soak lasts hours, and a checkout changed meanwhile (commit, modified files) did not run it;
        # asked before the clock starts, so that its git call and imports are no tick's lateness
        self._software = software()
        self._start = self._last = time.monotonic()
        self._rss.append((0.0, rss_mb()))
        self._timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        self.lateness.add(max(0.0, (now - self._last) * 1e3 - self.tick_ms))
        self._last = now
        if now - self._start - self._rss[-1][0] >= self.rss_every_s:
            self._rss.append((now - self._start, rss_mb()))

    def report(self, frames_processed: int = 0, results_shown: int = 0) -> HealthReport:
        late = self.lateness
        self._rss.append((time.monotonic() - self._start, rss_mb()))
        return HealthReport(
            seconds=time.monotonic() - self._start, ticks=late.n, tick_ms=self.tick_ms,
            lateness_ms_p50=late.percentile(50), lateness_ms_p99=late.percentile(99),
            lateness_ms_max=late.max, stalls_over_100ms=late.stalls,
            rss_mb=[(round(t, 1), round(m, 1)) for t, m in self._rss],
            frames_processed=frames_processed, results_shown=results_shown, software=self._software)


def write_report(report: HealthReport, path: str | Path) -> None:
    """``schema_version`` and ``software`` first, as every versioned output has them (docs/outputs.md), then the
    report's measurements. Its folders are made as needed: --health was checked at start only for whether they can
    be."""
    measured = {k: v for k, v in asdict(report).items() if k != "software"}
    taken = report.software if report.software is not None else software()
    write_json_atomically(Path(path), {"schema_version": HEALTH_SCHEMA_VERSION, "software": taken, **measured})
