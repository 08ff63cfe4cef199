"""`main.py app --health PATH` wrote its JSON without `schema_version` or the `software` block that every other
machine-readable output carries (docs/outputs.md): a soak file read later could not say which version, commit and
libraries ran the session, nor which format it was in."""
from __future__ import annotations

import json
import re
import subprocess
from dataclasses import asdict

import pytest

pytest.importorskip("PySide6")

from gui import health  # noqa: E402
from gui.health import HealthMonitor, HealthReport, write_report  # noqa: E402
from inference import provenance  # noqa: E402
from tests.conftest import REPO  # noqa: E402


def _report() -> HealthReport:
    return HealthReport(seconds=2.0, ticks=100, tick_ms=20, lateness_ms_p50=0.5, lateness_ms_p99=3.0,
                        lateness_ms_max=7.0, stalls_over_100ms=0, rss_mb=[(0.0, 100.0), (2.0, 101.5)],
                        frames_processed=40, results_shown=38)


def test_the_health_json_says_its_version_and_the_software_first_then_the_report_as_before(tmp_path):
    report = _report()
    write_report(report, tmp_path / "h.json")
    doc = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    assert list(doc)[:2] == ["schema_version", "software"], list(doc)
    assert doc["schema_version"] == health.HEALTH_SCHEMA_VERSION == 2
    assert set(doc["software"]) == set(provenance.software()), doc["software"]
    rest = {k: v for k, v in doc.items() if k not in ("schema_version", "software")}
    measured = {k: v for k, v in asdict(report).items() if k != "software"}
    assert rest == json.loads(json.dumps(measured)), rest  # the measurements as version 1 gave them, unchanged


def test_the_monitor_takes_the_software_once_as_the_session_starts(qtbot, tmp_path, monkeypatch):
    """The software that ran a soak of hours is the one loaded at its start: a checkout changed meanwhile (git's
    commit, or its files modified) is not what measured it."""
    asked: list[int] = []

    def software() -> dict:
        asked.append(1)
        return {"git_commit": f"commit {len(asked)}"}

    monkeypatch.setattr(health, "software", software)
    monitor = HealthMonitor(tick_ms=10, rss_every_s=0.05)
    monitor.start()
    qtbot.wait(60)
    write_report(monitor.report(), tmp_path / "h.json")
    doc = json.loads((tmp_path / "h.json").read_text(encoding="utf-8"))
    assert asked == [1] and doc["software"] == {"git_commit": "commit 1"}, (asked, doc["software"])


def test_docs_outputs_gives_the_health_json_the_version_the_app_writes():
    page = (REPO / "docs" / "outputs.md").read_text(encoding="utf-8")
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| (.+?) \| ([^|]+?) \|", page, re.MULTILINE)}
    assert rows["`app --health`"] == str(health.HEALTH_SCHEMA_VERSION), rows.get("`app --health`")
    assert f"**app --health {health.HEALTH_SCHEMA_VERSION}**" in page


def test_the_app_writes_its_health_json_versioned(tmp_path, faces_dir, tiny_models):
    """End to end: the file `main.py app --health` leaves on quitting."""
    from tests.test_app import _app

    out = tmp_path / "h.json"
    cmd, env = _app(["--source", str(faces_dir), "--max-seconds", "2", "--health", str(out)], tmp_path, tiny_models)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, cwd=REPO)
    assert done.returncode == 0, done.stderr[-2000:]
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["schema_version"] == 2 and doc["software"]["measures_version"] == provenance.MEASURES_VERSION, doc
    assert doc["frames_processed"] >= 0 and "written to" in done.stdout
