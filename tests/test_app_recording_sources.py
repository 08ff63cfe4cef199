"""A recording through a switch of source, and what a snapshot says of the frame it saves (the class, the condition
and where the frame is in the recording)."""
from __future__ import annotations

import csv
import json
import shutil
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from tests.conftest import utk_images  # noqa: E402
from tests.test_app import WAIT, _has_faces, _open, make_window, models  # noqa: E402,F401  (fixtures: used by name)

from gui.recording import Recorder  # noqa: E402
from inference.results import FaceResult, FaceView, FrameResult, SkinTone  # noqa: E402


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _folders_of_alike_names(tmp_path: Path, n: int) -> tuple[Path, Path]:
    """Two folders of different people's faces under the same file names (0.jpg, 1.jpg…): the rows' ``source``
    column, a path within the folder, is the same for both."""
    images = utk_images(2 * n)
    folders = (tmp_path / "a", tmp_path / "b")
    for k, folder in enumerate(folders):
        folder.mkdir()
        for i, image in enumerate(images[k * n:(k + 1) * n]):
            shutil.copy(image, folder / f"{i}.jpg")
    return folders


def _snapshot_doc(w) -> dict:
    _, js = w.snapshot().result(timeout=WAIT / 1000)
    return json.loads(js.read_text(encoding="utf-8"))


def test_a_source_taken_up_while_recording_goes_on_in_a_part_of_its_own(qtbot, make_window, tmp_path):
    """The recording ran on into the new source's rows, its track ids restarted at 1 and, for a folder, the same file
    names: two folders' faces in one CSV could not be told apart, and the end named only the new source."""
    a, b = _folders_of_alike_names(tmp_path, 3)
    w = make_window(str(a), fps=4.0, loop=True)  # a plays on until the switch: its end would stop the recording
    said: list[str] = []
    w.statusBar().messageChanged.connect(said.append)
    w.toggle_record()
    qtbot.waitUntil(lambda: w.recorder.rows > 0, timeout=WAIT)
    a_name = w.source_name
    w.loop = False  # b ends, and its end stops the recording once its last frame is in
    assert _open(qtbot, w, str(b))
    b_name, switched = w.source_name, round(w._source_since, 3)  # the rows' time is rounded to 3 digits
    qtbot.waitUntil(lambda: not w.recorder.active, timeout=WAIT)

    assert len(w.recorder.paths) == 2, w.recorder.paths
    first, part = w.recorder.paths
    a_rows, b_rows = _rows(first), _rows(part)
    assert a_rows and b_rows
    assert all(float(r["time"]) <= switched for r in a_rows)  # frames captured before b was taken up
    assert all(float(r["time"]) >= switched for r in b_rows)
    continued = [t for t in said if part.name in t and b_name in t]
    assert continued and "continues in" in continued[0]
    assert all(name in w.view.note for name in (first.name, part.name, a_name, b_name))
    # the session's figures are b's alone: none of a's faces merged into b's tracks of the same ids
    assert sum(w.stats.frames.values()) == len(b_rows)
    assert {r["track_id"] for r in w.stats.summary()} == {int(r["track_id"]) for r in b_rows}


def _frame(timestamp: float, source: str, faces: int = 1) -> FrameResult:
    face = FaceResult(1, (0, 0, 8, 8), np.eye(2, 3), FaceView(np.zeros((8, 8, 3), np.uint8), {}, SkinTone(False, 0)))
    return FrameResult(0, timestamp, np.zeros((8, 8, 3), np.uint8), (face,) * faces, {}, {}, source=source)


def test_the_old_sources_last_frames_stay_in_its_part_and_the_new_one_begins_at_its_first_face(tmp_path):
    """A frame of the old source still in analysis at the switch belongs with the old source's rows; frames of the
    new source without a face open no part (an empty file would be left), and before any row the file is the new
    source's own."""
    recorder = Recorder()
    recorder.start(tmp_path / "rows.csv", "nothing yet")
    recorder.new_source("a", since=1.0)
    recorder.write(_frame(1.0, "a.jpg"))
    assert recorder.paths == [tmp_path / "rows.csv"]  # no row before a: its rows are the first file's
    recorder.new_source("b", since=3.0)
    recorder.write(_frame(2.0, "late.jpg"))  # captured before b was taken up
    recorder.write(_frame(3.0, "empty.jpg", faces=0))
    assert len(recorder.paths) == 1
    recorder.write(_frame(4.0, "b.jpg"))
    # a video's frame of the same source: its video_s is a column of every row (empty for a photo), so no new part
    recorder.write(replace(_frame(5.0, "b.mp4"), video_s=0.5))
    first, part = recorder.paths
    text = recorder.finish()
    assert [r["source"] for r in _rows(first)] == ["a.jpg", "late.jpg"]
    assert [r["source"] for r in _rows(part)] == ["b.jpg", "b.mp4"]
    assert [r["video_s"] for r in _rows(part)] == ["", "0.5"]
    assert f"({sum(len(_rows(p)) for p in recorder.paths)} rows)" in text
    assert f"{first.name}: a" in text and f"{part.name}: b" in text


def test_a_snapshot_names_its_frame_in_the_recording(qtbot, make_window, faces_dir):
    """The snapshot's "frame" is the app's count of analysed frames, while the recording numbers its own from 0:
    looked up by it, the recording gave another photo's rows, or none."""
    w = make_window(str(faces_dir), loop=True)
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.index > 0, timeout=WAIT)  # the app's count runs ahead
    w.toggle_record()
    started = time.monotonic()
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.timestamp > started, timeout=WAIT)  # a recorded frame
    w.toggle_pause()
    doc = _snapshot_doc(w)
    w.toggle_record()  # the rows are all in the file

    at = doc["recording"]
    rows = [r for r in _rows(Path(at["file"])) if r["frame"] == str(at["frame"])]
    faces = doc["faces"]
    assert len(rows) == len(faces) > 0
    for row, face in zip(rows, faces):
        # the snapshot's null is the CSV's empty cell (snapshot schema 2: it had been "", the cell itself)
        assert {k: row[k] for k in face if k != "frame"} == {k: "" if v is None else str(v)
                                                             for k, v in face.items() if k != "frame"}
    assert doc["frame"] == faces[0]["frame"]  # the app's count, kept: the file's name numbers it so


def test_a_snapshot_without_a_recording_says_so(qtbot, make_window, faces_dir):
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    assert _snapshot_doc(w)["recording"] is None


def test_a_snapshot_names_the_cam_class_of_the_frame_it_saves_not_one_asked_for_since(qtbot, make_window, faces_dir,
                                                                                     monkeypatch):
    """Paused, another CAM class was chosen and S pressed before the re-run landed: the PNG showed the old class's
    maps and the JSON named the new one."""
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()
    monkeypatch.setattr(w.inference, "set_config", lambda **changes: None)  # the re-run has not landed yet
    saved = w.last_result
    drawn = saved.faces[0].original.classifiers[w.display.cam_model].cam_class
    cam_class_combo = w.display_controls.cam_class_combo
    other = next(label for label in (cam_class_combo.itemText(i) for i in range(cam_class_combo.count()))
                 if label != drawn)
    cam_class_combo.setCurrentText(other)
    assert w.display_controls.cam_class == other and w.last_result is saved
    assert _snapshot_doc(w)["display"]["cam_class"] == drawn


def test_a_snapshot_names_the_condition_a_conditional_filter_ran_with_on_its_default(qtbot, make_window, faces_dir):
    """No condition chosen, the filter ran its first, and the JSON said null."""
    w = make_window(str(faces_dir), filters=("conditional", "darken"))
    qtbot.waitUntil(lambda: _has_faces(w) and w.last_result.filter_name is not None, timeout=WAIT)
    assert w.display_controls.filter_condition is None  # on its default
    doc = _snapshot_doc(w)
    assert doc["display"]["filter_condition"] == w.models.active_filter().condition_labels[0]
    w.display_controls.filter_check.setChecked(False)
    qtbot.waitUntil(lambda: w.last_result.filter_name is None, timeout=WAIT)
    assert _snapshot_doc(w)["display"]["filter_condition"] is None  # no filter ran
