"""Reports and images a user names written as write_through writes: through links, in place (appended) to a
descriptor's name or FIFO, and bench's rewritten --json refused where it would be appended to."""
from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest

from inference.writing import written_in_place

from inference import writing
from inference.errors import BiasMirrorError
from inference.stopping import write_json_atomically
from tests.conftest import run_main


def test_a_json_report_through_a_link_rewrites_its_file_and_keeps_the_link_and_mode(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("{}", encoding="utf-8")
    target.chmod(0o600)
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_json_atomically(link, {"a": 1})
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert json.loads(target.read_text(encoding="utf-8")) == {"a": 1}
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_health_report_through_a_link_reaches_its_file(tmp_path):
    from gui.health import HealthReport, write_report

    target = tmp_path / "h.json"
    target.write_text("old", encoding="utf-8")
    link = tmp_path / "h-link.json"
    link.symlink_to(target)
    report = HealthReport(seconds=1.0, ticks=1, tick_ms=10, lateness_ms_p50=0.0, lateness_ms_p99=0.0,
                          lateness_ms_max=0.0, stalls_over_100ms=0, rss_mb=[], frames_processed=0, results_shown=0)
    write_report(report, link)
    assert link.is_symlink() and json.loads(target.read_text(encoding="utf-8"))["ticks"] == 1


def test_an_in_place_write_appends_as_a_shells_redirect_to_append_expects(tmp_path, monkeypatch):
    log = tmp_path / "log"  # stands for what /dev/stdout opens under `>> log`
    log.write_text("earlier\n", encoding="utf-8")
    monkeypatch.setattr(writing, "names_a_descriptor", lambda p: Path(p) == log)
    writing.write_through(log, "{}\n")
    assert log.read_text(encoding="utf-8") == "earlier\n{}\n"


def _fifo_read_aside(fifo: Path) -> tuple[threading.Thread, list[bytes]]:
    """A FIFO made at ``fifo`` and a thread reading it whole (what a writer's reader gets, once the writer closes)."""
    os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    return reader, got


def test_a_json_report_to_a_fifo_is_written_into_it(tmp_path):
    fifo = tmp_path / "f"
    reader, got = _fifo_read_aside(fifo)
    write_json_atomically(fifo, {"a": 1})
    reader.join(10)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode) and json.loads(got[0]) == {"a": 1}


def test_rows_to_a_fifo_keep_one_handle_for_header_and_rows(tmp_path):
    from inference.rows import RowWriter

    fifo = tmp_path / "rows"
    reader, got = _fifo_read_aside(fifo)
    rows = RowWriter(fifo, columns=["a", "b"])
    rows._fh.write("1,2\r\n")  # on the handle the header was written on: the reader has not been told the end
    rows.close()
    reader.join(10)
    assert got[0].decode().splitlines() == ["a,b", "1,2"]


def test_a_screenshot_through_a_link_rewrites_its_file(tmp_path, monkeypatch):
    monkeypatch.setenv("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QImage  # noqa: E402

    from gui.recording import write_image

    target = tmp_path / "shot.png"
    target.write_bytes(b"old")
    link = tmp_path / "link.png"
    link.symlink_to(target)
    image = QImage(4, 4, QImage.Format.Format_RGB32)
    image.fill(0)
    write_image(image, link, "the screenshot")
    assert link.is_symlink() and target.read_bytes().startswith(b"\x89PNG")


def test_a_link_to_standard_output_counts_as_naming_it(tmp_path):
    from inference.run_cli import _names_stdout

    out = tmp_path / "rows.csv"
    out.symlink_to("/dev/stdout")  # only read, never written
    err = tmp_path / "err.csv"
    err.symlink_to("/dev/stderr")
    assert _names_stdout(str(out)) and _names_stdout("/dev/fd/1")
    assert not _names_stdout(str(err)) and not _names_stdout(str(tmp_path / "plain.csv"))


def test_bench_refuses_a_fifo_for_its_json_rewritten_after_every_row(tmp_path, faces_dir, capsys):
    fifo = tmp_path / "b.json"
    os.mkfifo(fifo)
    code, _, err = run_main(["bench", "--source", str(faces_dir), "--json", str(fifo)], capsys)
    assert code != 0 and "FIFO" in err and "--json" in err


def test_bench_train_refuses_a_fifo_for_its_json(tmp_path, capsys):
    fifo = tmp_path / "t.json"
    os.mkfifo(fifo)
    code, _, err = run_main(["bench", "train", "--json", str(fifo)], capsys)
    assert code != 0 and "FIFO" in err


def test_refuse_in_place_lets_a_plain_file_through(tmp_path):
    writing.refuse_in_place(tmp_path / "x.json", "--json", "is rewritten")
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(BiasMirrorError):
        writing.refuse_in_place(fifo, "--json", "is rewritten")


def test_evaluate_json_to_a_fifo_skips_the_folder_check(tmp_path, monkeypatch):
    import inference.arg_checks as arg_checks
    import training.evaluate as evaluate

    fifo = tmp_path / "e.json"
    os.mkfifo(fifo)

    def folder_checked(*_a, **_k):
        raise AssertionError("the folder of an in-place --json was checked")

    class Reached(Exception):
        pass

    def reached(*_a, **_k):
        raise Reached

    monkeypatch.setattr(arg_checks, "_check_writable_below", folder_checked)
    monkeypatch.setattr(evaluate, "detects_faces", reached)
    args = type("A", (), {"json": str(fifo), "model": [], "dataset": "folder:" + str(tmp_path / "d"), "yunet": None,
                          "domain_a": None, "domain_b": None})()
    with pytest.raises(Reached):
        evaluate.main(args)



def test_the_apps_health_report_and_screenshot_are_checked_with_the_in_place_rule(tmp_path, monkeypatch):
    """--health /dev/stdout had been refused to a user who may not write in /dev: its check took no in-place rule,
    though the report is now written where such a name stands."""
    import gui.app_cli as app_cli
    import main

    seen = {}
    real = app_cli.check_output_file

    def spy(path, option, source=None, in_place=None):
        seen[option] = in_place
        return real(path, option, source, in_place)

    class Stop(Exception):
        pass

    def stop():
        raise Stop

    monkeypatch.setattr(app_cli, "check_output_file", spy)
    monkeypatch.setattr(app_cli, "check_display", stop)  # past the checks, before any window
    (tmp_path / "faces").mkdir()
    args = main.build_parser(["app"]).parse_args(["app", "--source", str(tmp_path / "faces"), "--health",
                                                  str(tmp_path / "h.json"), "--screenshot", str(tmp_path / "s.png")])
    with pytest.raises(Stop):
        app_cli.main(args)
    assert seen["--health"] is written_in_place and seen["--screenshot"] is written_in_place
