"""Snapshots, recordings and the models' settings as a classroom met them (review of 2026-12-07): the folder said
first where a projector's 1024 px cut the status bar, every snapshot and recording in the log, and two app windows
on one account (a shared lab account) neither saving over each other's files nor undoing each other's choices.
Offscreen, on the tiny models of tests/test_app.py."""
from __future__ import annotations

import csv
import errno
import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtGui import QAction, QImage  # noqa: E402
from PySide6.QtWidgets import QMainWindow  # noqa: E402

from gui import recording  # noqa: E402
from gui.painter import DisplaySettings  # noqa: E402
from gui.recording import Recorder, save_snapshot  # noqa: E402
from gui.recording_controls import RecordingControls  # noqa: E402
from gui.settings import default_output_dir, file_key  # noqa: E402
from gui.status_line import StatusLine  # noqa: E402
from inference.results import FaceResult, FaceView, FrameResult, SkinTone  # noqa: E402
from tests.conftest import REPO, run_main  # noqa: E402
from tests.test_app import make_window, models  # noqa: E402,F401  (fixtures: used by name)


def _frame(source: str, colour: int = 0, faces: int = 0) -> FrameResult:
    face = FaceResult(1, (0, 0, 8, 8), np.eye(2, 3), FaceView(np.zeros((8, 8, 3), np.uint8), {}, SkinTone(False, 0)))
    pixels = np.full((8, 8, 3), colour, np.uint8)
    return FrameResult(0, 0.0, pixels, (face,) * faces, {}, {}, source=source)


def _image(colour: int) -> QImage:
    image = QImage(16, 16, QImage.Format.Format_RGB888)
    image.fill(colour * 0x010101)
    return image


def _colour(png: Path) -> int:
    return QImage(str(png)).pixelColor(0, 0).red()


@pytest.fixture
def controls(qtbot, tmp_path):
    """The Record and Snapshot controls of a bare window of their own (one per call), saving in one folder."""
    made = []

    def make(folder: Path = tmp_path / "out") -> RecordingControls:
        window = QMainWindow()
        qtbot.addWidget(window)
        qs = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
        action = QAction("Record", window)
        action.setCheckable(True)
        made.append(RecordingControls(window, Recorder(), action, StatusLine(window.statusBar()), lambda _: None,
                                      qs, None))
        made[-1].output_dir = folder
        return made[-1]

    yield make
    for c in made:
        c.recorder.stop()
        c.shutdown()


# --- 1. the folder said first, and in the log; named in --help ---------------------------------------------------

def test_the_snapshot_message_says_the_folder_first_with_home_as_a_tilde_and_logs_both_whole_paths(
        qtbot, controls, tmp_path, monkeypatch, caplog):
    """On a 1024×768 projector the status bar showed "snapshot saved: snapshot-…-000004.png + snapshot-20261207-163"
    and no more: the folder, said last, was cut off."""
    monkeypatch.setenv("HOME", str(tmp_path))
    c = controls(tmp_path / "Documents" / "BiasMirror")
    said: list[str] = []
    c.window.statusBar().messageChanged.connect(said.append)
    caplog.set_level(logging.INFO)
    png, js = c.snapshot(_frame("camera 0"), DisplaySettings(), "").result(timeout=20)
    qtbot.waitUntil(lambda: bool(said), timeout=5000)
    assert said[-1] == f"saved in ~/Documents/BiasMirror: {png.stem}.png and .json"
    assert js == png.with_suffix(".json")
    logged = [r.getMessage() for r in caplog.records]
    assert f"snapshot saved: {png} and {js}" in logged, logged


def test_a_folder_outside_home_or_a_home_of_root_is_shown_whole(tmp_path, monkeypatch):
    from gui.recording_controls import shown_folder

    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert shown_folder(tmp_path / "me") == "~"
    assert shown_folder(tmp_path / "me" / "a b") == str(Path("~", "a b"))
    assert shown_folder(tmp_path / "elsewhere") == str(tmp_path / "elsewhere")
    assert shown_folder(tmp_path / "meal") == str(tmp_path / "meal")  # a name that begins like home's is not in it
    monkeypatch.setenv("HOME", "/")
    assert shown_folder(Path("/srv/class")) == "/srv/class"


def test_recordings_stopped_with_the_record_button_are_logged_with_every_files_whole_path(controls, caplog):
    """The log kept a recording's paths only where it was still open at quit: one stopped with the Record button,
    the way a lesson's recordings end, was in the status bar for ten seconds and then nowhere."""
    c = controls()
    caplog.set_level(logging.INFO)
    c.toggle("camera 0", False)
    c.recorder.write(_frame("camera 0", faces=1))
    c.toggle("camera 0", False)
    assert not c.recorder.active
    path = c.recorder.path
    logged = [r.getMessage() for r in caplog.records]
    assert f"recording saved: {path} (1 rows)" in logged, logged
    c.toggle("camera 0", False)
    empty = c.recorder.path
    c.toggle("camera 0", False)  # no face while it ran: not kept, and the log says which file that was
    assert not empty.exists()
    assert any(str(empty) in m and "not kept" in m for m in (r.getMessage() for r in caplog.records))


def test_the_apps_help_names_the_folder_of_recordings_and_snapshots_and_how_to_pick_another(
        capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run_main(["app", "--help"], capsys)
    assert code == 0
    assert f"\n  {default_output_dir()}\n" in out and "File > Output folder…" in out, out
    QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat).setValue("output_dir", "/srv/klasse 7b")
    _, out, _ = run_main(["app", "--help"], capsys)
    assert "(now /srv/klasse 7b)" in out, out  # this account's choice, where it picked one


# --- 2. two windows, one folder, one second ------------------------------------------------------------------------

def _race(folder: Path, monkeypatch, before_write=None) -> list[tuple[Path, Path]]:
    """Two windows' snapshots of one second saved at once: both have looked for a free name before either writes
    (a barrier where each encodes its image); ``before_write`` runs there, once both have come, before either goes
    on."""
    monkeypatch.setattr(recording, "stamp", lambda: "same-second")
    both_looked = threading.Barrier(2, action=before_write, timeout=10)
    real_encoded = recording.encoded

    def encoded(*args, **kw):
        both_looked.wait()
        return real_encoded(*args, **kw)

    monkeypatch.setattr(recording, "encoded", encoded)
    saved: dict[int, tuple[Path, Path]] = {}

    def window(i: int) -> None:
        saved[i] = save_snapshot(folder, _image(60 + 120 * i), _frame(f"window {i}", 60 + 120 * i), {"view": i})

    threads = [threading.Thread(target=window, args=(i,), name=f"window-{i}") for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(saved) == 2, "a snapshot failed"
    return [saved[0], saved[1]]


def _assert_whole_pairs(pairs: list[tuple[Path, Path]]) -> None:
    """Each window's PNG and JSON under one stem of their own, both its own."""
    assert pairs[0][0] != pairs[1][0], pairs
    for i, (png, js) in enumerate(pairs):
        assert png.with_suffix(".json") == js
        doc = json.loads(js.read_text())
        assert doc["source"] == f"window {i}" and _colour(png) == 60 + 120 * i, (i, png, doc["source"])


@pytest.mark.parametrize("links", [True, False], ids=["hard-links", "no-hard-links"])
def test_two_windows_snapshotting_in_the_same_second_keep_both_pairs_each_whole(qapp, tmp_path, monkeypatch, links):
    """Two app windows on one account, Snapshot in the same second: both said snapshot-…-000005.png, and one pair
    was left, its PNG and JSON possibly one from each window. Where the file system makes no hard links (FAT on a
    USB stick), an empty file takes the name instead."""
    if not links:
        def no_link(*_args, **_kw):
            raise PermissionError(errno.EPERM, "Operation not permitted")

        monkeypatch.setattr(os, "link", no_link)
    folder = tmp_path / "out"
    pairs = _race(folder, monkeypatch)
    _assert_whole_pairs(pairs)
    assert sorted(p.name for p in folder.iterdir()) == sorted(p.name for pair in pairs for p in pair)  # no leftovers


def test_a_snapshot_whose_json_name_was_taken_meanwhile_moves_its_png_with_it(qapp, tmp_path, monkeypatch):
    """Another window's JSON took the name after this snapshot found it free: its PNG must not stay under that name
    beside another's measurements, nor the other's JSON be written over."""
    folder = tmp_path / "out"
    first = folder / "snapshot-same-second-000000.json"
    pairs = _race(folder, monkeypatch, before_write=lambda: first.write_text('{"source": "a third window"}'))
    _assert_whole_pairs(pairs)
    assert json.loads(first.read_text())["source"] == "a third window"
    assert not first.with_suffix(".png").exists()  # no PNG beside the JSON that is not its own


def test_a_link_to_nothing_holds_its_name(qapp, tmp_path, monkeypatch):
    """A name taken by a link to nothing seemed free to exists(): the snapshot was renamed over the link."""
    folder = tmp_path / "out"
    folder.mkdir()
    monkeypatch.setattr(recording, "stamp", lambda: "same-second")
    (folder / "snapshot-same-second-000000.png").symlink_to(tmp_path / "gone")
    png, js = save_snapshot(folder, _image(60), _frame("window 0", 60), {})
    assert png.name == "snapshot-same-second-000000-2.png" and js.exists()
    assert (folder / "snapshot-same-second-000000.png").is_symlink()


def test_two_windows_starting_a_recording_in_the_same_second_record_into_files_of_their_own(
        controls, monkeypatch):
    """Both found rows-….csv free, then both opened it for writing: one emptied and interleaved the other."""
    import gui.recording_controls as recording_controls

    monkeypatch.setattr(recording_controls, "stamp", lambda: "same-second")
    a, b = controls(), controls()
    real_start = Recorder.start

    def start(self, path, source=""):
        if self is b.recorder and not a.recorder.active:
            a.toggle("window A", False)  # after B looked for a free name, before B opens it
        return real_start(self, path, source)

    monkeypatch.setattr(Recorder, "start", start)
    b.toggle("window B", False)
    assert a.recorder.active and b.recorder.active
    assert a.recorder.path != b.recorder.path
    for c, name in ((a, "window A"), (b, "window B")):
        c.recorder.write(_frame(name, faces=1))
        c.toggle(name, False)
    for c, name in ((a, "window A"), (b, "window B")):
        with open(c.recorder.path, newline="") as fh:
            assert [row["source"] for row in csv.DictReader(fh)] == [name]


# --- 3. two windows, one settings file -------------------------------------------------------------------------------

def _checked(w) -> dict[str, bool]:
    return {c.name: c.name in w.models.enabled_names() for c in w.models.classifiers}


def test_a_window_that_unticks_a_classifier_keeps_the_filter_another_window_switched_off(qtbot, make_window):
    """Window A picked filter "none"; window B then unticked a classifier, and the settings ended with B's filter:
    every change had saved every model setting as its own window saw them."""
    a, b = make_window(None), make_window(None)
    a.models.set_filter(None)
    b.models.set_enabled("tiny-a", False)
    a.shutdown(), b.shutdown()
    later = make_window(None)
    assert later.models.active_filter() is None
    assert _checked(later) == {"tiny-a": False, "tiny-b": True}


def test_two_windows_unticking_a_classifier_each_keep_both(qtbot, make_window):
    a, b = make_window(None), make_window(None)
    a.models.set_enabled("tiny-a", False)
    b.models.set_enabled("tiny-b", False)
    b.models.set_filter(b.models.filters[1])
    a.shutdown(), b.shutdown()
    later = make_window(None)
    assert _checked(later) == {"tiny-a": False, "tiny-b": False}
    assert later.models.active_filter().name == "identity"


def test_a_window_keeps_what_a_window_in_another_process_saved_since(qtbot, make_window, tmp_path, tiny_models):
    """A second app on the account is another process: its choices reach this window's settings only as the file
    is read again, which a change's read-modify-write does before it writes."""
    b = make_window(None)
    b.qs.sync()
    script = textwrap.dedent(f"""
        from PySide6.QtCore import QSettings
        qs = QSettings({str(tmp_path / "settings.ini")!r}, QSettings.Format.IniFormat)
        for key, value in (("filter", ""), ("filter_path", ""), ("no_filter", "true")):
            qs.setValue(key, value)
        on = qs.value("checked_classifier_files", [])
        on = [on] if isinstance(on, str) else list(on or [])
        qs.setValue("checked_classifier_files", [k for k in on if k != {file_key(tiny_models["classifier"])!r}])
        qs.setValue("unchecked_classifier_files", [{file_key(tiny_models["classifier"])!r}])
        qs.sync()
    """)
    subprocess.run([sys.executable, "-c", script], cwd=REPO, check=True, timeout=60)
    b.models.set_enabled("tiny-b", False)
    b.shutdown()
    later = make_window(None)
    assert later.models.active_filter() is None
    assert _checked(later) == {"tiny-a": False, "tiny-b": False}
