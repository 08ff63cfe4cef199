"""The app when things go wrong: a disk that refuses a snapshot, a screenshot or a recording, a slideshow slower to
analyse than to show, a camera that opens but gives nothing. Offscreen, on the tiny models of tests/test_app.py."""
from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import textwrap
import threading
import time

import cv2
import pytest

pytest.importorskip("pytestqt")

from tests.conftest import REPO, utk_images  # noqa: E402
from tests.test_app import WAIT, _open, make_window, models  # noqa: E402,F401  (fixtures: used by name)

from inference.sources import Frame  # noqa: E402


def _limited(script: str, limit: str, *args: str) -> dict:
    """``script`` run in a Python of its own whose files may grow to ``limit`` bytes at most (an expression of the
    names the script defines, applied once it has set them up), as on a disk that is full or a file size limit
    (``ulimit -f``). It prints one JSON line, returned here."""
    prelude = textwrap.dedent("""
        import json, resource, sys
        from pathlib import Path
        import numpy as np
        from PySide6.QtCore import QBuffer, QByteArray, QIODevice
        from PySide6.QtGui import QImage

        def noise(side):
            pixels = np.random.default_rng(0).integers(0, 256, (side, side, 3), np.uint8)
            return pixels, QImage(pixels.data, side, side, 3 * side, QImage.Format.Format_RGB888).copy()

        def png_size(image):
            data = QByteArray()
            buffer = QBuffer(data)
            buffer.open(QIODevice.OpenModeFlag.WriteOnly)
            image.save(buffer, "PNG")
            return data.size()

        def limit_files(size):
            resource.setrlimit(resource.RLIMIT_FSIZE, (size, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))

        def listing(folder):
            return sorted((p.name, p.stat().st_size) for p in folder.iterdir()) if folder.is_dir() else None
    """)
    body = textwrap.dedent(script).replace("LIMIT", limit)
    done = subprocess.run([sys.executable, "-c", prelude + body, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "QT_QPA_PLATFORM": "offscreen"})
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


SNAPSHOT = """
    from gui.recording import save_snapshot
    from inference.results import FrameResult

    folder, refused = Path(sys.argv[1]), sys.argv[2]
    side, padding = (400, 0) if refused == "image" else (8, 200_000)  # the larger file is the one refused
    pixels, image = noise(side)
    result = FrameResult(0, 0.0, pixels, (), {}, {})
    settings = {"note": "x" * padding}
    limit_files(LIMIT)
    try:
        save_snapshot(folder, image, result, settings)
        said = None
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"said": said, "left": listing(folder)}))
"""


@pytest.mark.parametrize("refused", ["image", "measurements"])
def test_a_snapshot_the_disk_refuses_leaves_nothing_under_its_names(tmp_path, refused):
    """The PNG was written onto its name: a disk that refused it part way left a cut-off PNG there (102,400 bytes
    under `ulimit -f 100`), and one that refused the JSON left a whole PNG and a cut-off JSON, while the window said
    the snapshot had failed."""
    folder = tmp_path / "out"
    # the limit lies between the two files' sizes: the larger one (the image of noise, or the long measurements)
    # is refused, the smaller one fits
    limit = "(png_size(image) + len(json.dumps(settings))) // 2"
    got = _limited(SNAPSHOT, limit, str(folder), refused)
    assert got["left"] == [], got  # neither file of the pair, and no half-written one under a hidden name
    assert got["said"] is not None and "File too large" in got["said"], got
    refused_file = ".png" if refused == "image" else ".json"
    assert got["said"].split(": ")[1].endswith(refused_file), got  # the file refused is named


SCREENSHOT = """
    from PySide6.QtWidgets import QApplication
    from gui.app_cli import save_screenshot

    app = QApplication([])
    path = Path(sys.argv[1])
    _, image = noise(300)
    limit_files(LIMIT)
    try:
        save_screenshot(image, path, None)
        said = None
    except Exception as exc:
        said = f"{type(exc).__name__}: {exc}"
    print(json.dumps({"said": said, "left": listing(path.parent)}))
"""


def test_a_screenshot_the_disk_refuses_leaves_no_cut_off_file(tmp_path):
    """--screenshot under `ulimit -f 20` left a 20,480-byte PNG that no viewer opens, and said it had failed."""
    shot = tmp_path / "shots" / "window.png"
    got = _limited(SCREENSHOT, "png_size(image) // 2", str(shot))
    assert got["left"] == [], got
    assert got["said"] is not None and str(shot) in got["said"] and "File too large" in got["said"], got


RECORDING = """
    import numpy as np
    from gui.recording import Recorder
    from inference.results import FaceResult, FaceView, FrameResult, SkinTone

    path = Path(sys.argv[1])
    face = FaceResult(1, (0, 0, 8, 8), np.eye(2, 3), FaceView(np.zeros((8, 8, 3), np.uint8), {}, SkinTone(False, 0)))
    frame = FrameResult(0, 0.0, np.zeros((8, 8, 3), np.uint8), (face,), {}, {}, source="a.jpg")
    recorder = Recorder()
    recorder.start(path)
    limit_files(LIMIT)
    recorder.write(frame)
    print(json.dumps({"active": recorder.active, "failure": recorder.failure, "notices": recorder.notices(),
                      "left": listing(path.parent)}))
"""


def test_a_recording_the_disk_refuses_from_its_first_row_leaves_no_empty_file(tmp_path):
    """The recording stopped and said "0 rows saved", and left a 0-byte CSV behind (the empty file was removed
    only when a recording ended without a face, not when the disk refused its first row)."""
    path = tmp_path / "out" / "rows.csv"
    got = _limited(RECORDING, "0", str(path))
    assert not got["active"] and "0 rows saved" in got["failure"], got
    assert got["left"] == [], got
    assert "rows.csv" in got["failure"] and "not kept" in got["failure"], got
    assert got["notices"] == [[got["failure"], True]], got  # what the window's status bar and warnings say


class _LiveCamera:
    """A camera delivering a frame every read, as fast as it is read: a frame waits for nobody."""

    live = True
    name = "camera 7"
    end_warning = None

    def __init__(self):
        self.image = cv2.imread(str(utk_images(1)[0]))
        self.reads = 0

    def read(self):
        time.sleep(0.005)
        self.reads += 1
        return Frame(self.image, self.reads, time.monotonic(), self.name)

    def reopen(self):
        return True

    def close(self):
        pass


def test_a_slow_analysis_loses_no_photo_of_a_folder_but_a_camera_keeps_only_its_newest_frame(qtbot, make_window,
                                                                                            faces_dir, monkeypatch):
    """A photo that took longer than 1/--slideshow-fps to analyse had the next one replace the one waiting in the
    capture's mailbox: 4 of 12 photos were missing from the recording, and nothing said so."""
    from gui.workers import CaptureThread, Mailbox

    fps = 20.0
    w = make_window(None, fps=fps)
    real, analysed = w.pipeline.process, []

    def slow(image, timestamp, name, **kw):  # a photo that takes three slideshow steps to analyse
        analysed.append(name)
        time.sleep(3 / fps)
        return real(image, timestamp, name, **kw)

    monkeypatch.setattr(w.pipeline, "process", slow)
    w.toggle_record()
    assert _open(qtbot, w, str(faces_dir))
    qtbot.waitUntil(lambda: "end of" in w.view.note, timeout=WAIT)
    photos = sorted(p.name for p in faces_dir.iterdir())
    assert sorted(analysed) == photos and w.captured.dropped == 0
    with open(next(w.recording.output_dir.glob("rows-*.csv")), newline="") as fh:
        recorded = {row["source"] for row in csv.DictReader(fh)}
    assert recorded <= set(photos) and recorded  # the rows are those of the photos analysed
    # a camera's frames are not held for the analysis: the newest replaces the one waiting
    camera, mailbox = _LiveCamera(), Mailbox()
    capture = CaptureThread(camera, mailbox, fps)
    capture.start()
    try:
        qtbot.waitUntil(lambda: mailbox.dropped > 0, timeout=WAIT)  # nobody takes: the capture goes on regardless
    finally:
        capture.stop()
        capture.wait(2000)


class _DeadCamera:
    """A camera that opens but never gives a frame (held by another app, a broken driver)."""

    live = True
    name = "camera 7"
    end_warning = None

    def read(self):
        time.sleep(0.01)
        return Frame(None, 0, time.monotonic(), self.name, "the camera is not available")

    def reopen(self):
        return False

    def close(self):
        pass


def test_a_timed_session_on_a_camera_that_never_gives_a_frame_exits_2_naming_it(qtbot, make_window, monkeypatch):
    """`app --source 0 --max-seconds 4` on such a camera exited 0, where `run` refuses it with 2: the source's
    problem was noted only as it opened or ended, and a lost camera never ends."""
    import gui.source_player as source_player
    from gui.app_cli import source_problem

    monkeypatch.setattr(source_player, "open_source", lambda spec, loop=False: _DeadCamera())
    w = make_window(None)
    assert _open(qtbot, w, "7")
    w.capture.retry_every = 0.05
    qtbot.waitUntil(lambda: w.camera_lost, timeout=WAIT)
    w.shutdown()
    assert w.source_problem == "camera 7: no frame could be read (the camera delivered none)"
    timed = argparse.Namespace(max_seconds=4.0, screenshot=None, health=None)
    assert source_problem(w, timed) == w.source_problem


def test_a_camera_given_by_its_number_as_text_is_named_a_camera(qtbot, make_window, monkeypatch):
    """--source 0 was "opening 0…" and "0: still opening when the app closed": only a number typed in the camera
    dialog was named a camera."""
    import gui.source_player as source_player

    release = threading.Event()

    def slow_open(spec, loop=False):
        release.wait(WAIT / 1000)
        return _DeadCamera()

    monkeypatch.setattr(source_player, "open_source", slow_open)
    w = make_window(None)
    try:
        w.open_source("7")
        assert w.statusBar().currentMessage() == "opening camera 7…"
        w.shutdown()
        assert w.source_problem == "camera 7: still opening when the app closed"
    finally:
        release.set()
