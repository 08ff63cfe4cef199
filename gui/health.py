"""How the running app holds up: event-loop stalls and memory over a session.

A timer asks to fire every ``tick_ms``; how late each tick arrives is how long
the GUI thread was busy (painting, or blocked), which is what a user feels as
a stall. Memory is sampled from the process's RSS. Used by ``--health PATH``
for soak runs (a long session left running), not shown in the window.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QTimer

from inference.bench_machine import rss_mb
from inference.stopping import write_json_atomically


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

    def line(self) -> str:
        rss = self.rss_mb
        mem = f"RSS {rss[0][1]:.0f} → {rss[-1][1]:.0f} MB (max {max(m for _, m in rss):.0f})" if rss else "RSS unknown"
        return (f"{self.seconds:.0f} s: {self.frames_processed} frames processed, {self.results_shown} shown; "
                f"GUI thread late by p50 {self.lateness_ms_p50:.1f} ms, p99 {self.lateness_ms_p99:.1f} ms, "
                f"max {self.lateness_ms_max:.0f} ms, {self.stalls_over_100ms} stall(s) > 100 ms; {mem}")


class HealthMonitor(QObject):
    def __init__(self, tick_ms: int = 20, rss_every_s: float = 5.0, parent: QObject | None = None):
        super().__init__(parent)
        self.tick_ms, self.rss_every_s = tick_ms, rss_every_s
        self._lateness: list[float] = []
        self._rss: list[tuple[float, float]] = []
        self._start = self._last = time.monotonic()
        self._timer = QTimer(self)
        self._timer.setInterval(tick_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self._start = self._last = time.monotonic()
        self._rss.append((0.0, rss_mb()))
        self._timer.start()

    def _tick(self) -> None:
        now = time.monotonic()
        self._lateness.append(max(0.0, (now - self._last) * 1e3 - self.tick_ms))
        self._last = now
        if now - self._start - self._rss[-1][0] >= self.rss_every_s:
            self._rss.append((now - self._start, rss_mb()))

    def report(self, frames_processed: int = 0, results_shown: int = 0) -> HealthReport:
        late = np.asarray(self._lateness or [0.0])
        self._rss.append((time.monotonic() - self._start, rss_mb()))
        return HealthReport(
            seconds=time.monotonic() - self._start, ticks=len(self._lateness), tick_ms=self.tick_ms,
            lateness_ms_p50=float(np.percentile(late, 50)), lateness_ms_p99=float(np.percentile(late, 99)),
            lateness_ms_max=float(late.max()), stalls_over_100ms=int((late > 100).sum()),
            rss_mb=[(round(t, 1), round(m, 1)) for t, m in self._rss],
            frames_processed=frames_processed, results_shown=results_shown)


def write_report(report: HealthReport, path: str | Path) -> None:
    """Its folders are made as needed: --health was checked at start only for whether they can be."""
    write_json_atomically(Path(path), asdict(report))
