"""A bench run's rows as they end: each said in one progress line, and the JSON report rewritten after every row
(its × eager ratios worked out again), so a run cut short still leaves what it measured; and the report of a run
stopped before its first row."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

from . import provenance, strict_json
from .arg_checks import put_json
from .bench_measure import Measurement, faces_words
from .bench_ratios import compare_with_eager
from .bench_targets import TARGETS
from .stopping import write_json_atomically

# bench --json's format: bump it when a key changes meaning. The files written before it had none (1), and changed
# unsaid: the first GPU run's (2026-11-24) lack complete, measured and stopped, and vs_eager was over all frames before
# 2026-12-07, over the first vs_eager_frames both rows measured since. docs/outputs.md lists every output's version.
BENCH_SCHEMA_VERSION = 2


@dataclass
class BenchReport:
    """The rows measured so far, said as each one ends and kept in the JSON file after every row, so a run cut
    short (Ctrl-C, SIGTERM, or a kill that gives no warning) still leaves what it measured."""

    path: Path | None
    header: dict
    total: int
    results: list[Measurement] = field(default_factory=list)
    soak: dict | None = None
    done: int = 0
    software: dict | None = None  # asked at the first write, once: the file is rewritten after every row

    def add(self, m: Measurement, configurations: int = 1) -> None:
        self.results.append(m)
        self.done += configurations
        if m.status == "ok":
            e = m.latency_ms["end_to_end"]
            print(f"[{self.done}/{self.total}] {m.name}, {faces_words(m.faces)}: {m.fps:.1f} frames/s, p50 {e['p50']:.1f} ms, "
                  f"p99 {e['p99']:.1f} ms", flush=True)
        self.write(complete=False, stopped=None)

    def write(self, complete: bool, stopped: str | None) -> None:
        if self.path is None:
            return
        write_json_atomically(self.path, self.document(complete, stopped))

    def document(self, complete: bool, stopped: str | None) -> dict:
        """The report as it stands: what ``write`` puts in the file, and `--json -` on standard output at the end."""
        if self.software is None:
            self.software = provenance.software()
        compare_with_eager(self.results)
        return {
            "schema_version": BENCH_SCHEMA_VERSION, "software": self.software,
            **self.header, "complete": complete, "stopped": stopped, "configurations": self.total, "measured": self.done,
            "timed": sum(m.status == "ok" for m in self.results),
            "results": [json_row(m) for m in self.results], "targets": TARGETS, "soak": self.soak}


PER_FRAME = ("frame_ms", "frame_faces")  # a row's per-frame figures: for the ratios, not the report


def json_row(m: Measurement) -> dict:
    return {k: v for k, v in asdict(m).items() if k not in PER_FRAME}


def stopped_before_measuring(path: str | None, resolution: list[int], counts: list[int],
                             stdout: TextIO | None = None) -> None:
    """On Ctrl-C (or SIGTERM) while the models and frames load: --json says this run measured nothing, as a later
    stop says what it measured; an earlier run's file had been left there, "complete": true. The report goes to
    ``stdout`` where it is given (`--json -`), else to ``path``."""
    stopped = "interrupted before the first configuration was measured"
    print(f"\n{stopped}", flush=True)
    if path is None:
        return
    report = {"schema_version": BENCH_SCHEMA_VERSION, "software": provenance.software(), "resolution": resolution,
              "faces": counts, "complete": False, "stopped": stopped, "configurations": None, "measured": 0, "timed": 0,
              "results": []}
    if stdout is not None:
        put_json(stdout, strict_json.dumps(report, indent=1))  # as write_json_atomically writes a file
        print("results written to standard output (none)", flush=True)
        return
    write_json_atomically(Path(path), report)
    print(f"results written to {path} (none)", flush=True)
