"""A second look at the day's fixes (review "second", s25): a folder at an output's place hidden in a staging folder
that a later command deletes, the face colour allocator shared with the snapshot thread, a failed CUDA-graph run
escaping as a bare RuntimeError beyond the reach of a stop, and a close during the GPU batch preparation logged as a
failure."""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from pathlib import Path

import numpy as np
import pytest

from inference.errors import BiasMirrorError

# --- 1. a folder where an output file goes -------------------------------------------------------------------------


def _users_folder(folder: Path) -> None:
    folder.mkdir()
    (folder / "precious.txt").write_text("user data")


def _earlier_report(folder: Path) -> None:
    """An earlier audit's report.json, and a folder of the user's where its faces.csv goes."""
    (folder / "report.json").write_text("earlier report.json")
    _users_folder(folder / "faces.csv")


def _as_it_was(folder: Path) -> None:
    assert sorted(p.name for p in folder.iterdir()) == ["faces.csv", "report.json"]  # no staging folder left
    assert (folder / "report.json").read_text() == "earlier report.json"
    assert (folder / "faces.csv" / "precious.txt").read_text() == "user data"


@pytest.mark.parametrize("as_stale", [False, True])
def test_a_folder_at_an_output_place_is_refused_by_name_and_kept(tmp_path, as_stale):
    """faces.csv a folder: it had been renamed into the staging folder, the command said nothing, and a later one's
    clear_leftovers deleted the folder with what it held."""
    from inference.writing import Staged

    _earlier_report(tmp_path)
    staged = Staged()
    staged.path(tmp_path / "report.json").write_text("new report.json")
    if not as_stale:
        staged.path(tmp_path / "faces.csv").write_text("a,b\n")
    with pytest.raises(BiasMirrorError) as refused:
        staged.put_in_place(stale=(tmp_path / "faces.csv",) if as_stale else ())
    staged.discard()
    assert refused.value.path == str(tmp_path / "faces.csv")
    assert "is a folder; give a file name" in refused.value.message and "as they were" in refused.value.message
    assert not staged.placed
    _as_it_was(tmp_path)


def test_a_folder_made_at_a_place_as_it_is_set_aside_goes_back(tmp_path, monkeypatch):
    """A folder standing at the place only by the time of the rename (made by another program after the look) is
    put back, never left in the staging folder for clear_leftovers."""
    from inference import writing
    from inference.writing import Staged

    (tmp_path / "report.json").write_text("earlier report.json")
    (tmp_path / "faces.csv").write_text("earlier faces.csv")
    staged = Staged()
    staged.path(tmp_path / "report.json").write_text("new report.json")
    staged.path(tmp_path / "faces.csv").write_text("a,b\n")
    real = os.rename

    def folder_made_first(src, dst):
        if Path(src) == tmp_path / "faces.csv" and Path(dst).parent.name.startswith(".staged-"):
            (tmp_path / "faces.csv").unlink()
            _users_folder(tmp_path / "faces.csv")
        real(src, dst)

    monkeypatch.setattr(writing.os, "rename", folder_made_first)
    with pytest.raises(BiasMirrorError) as refused:
        staged.put_in_place()
    monkeypatch.undo()
    staged.discard()
    assert refused.value.path == str(tmp_path / "faces.csv") and "is a folder" in refused.value.message
    _as_it_was(tmp_path)


def test_a_link_to_a_folder_at_a_place_is_replaced_and_the_folder_kept(tmp_path):
    """A symlink is replaced as before (the link, not what it points to)."""
    from inference.writing import Staged

    _users_folder(tmp_path / "elsewhere")
    (tmp_path / "faces.csv").symlink_to(tmp_path / "elsewhere")
    staged = Staged()
    staged.path(tmp_path / "faces.csv").write_text("a,b\n")
    staged.put_in_place()
    assert not (tmp_path / "faces.csv").is_symlink() and (tmp_path / "faces.csv").read_text() == "a,b\n"
    assert (tmp_path / "elsewhere" / "precious.txt").read_text() == "user data"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "faces.csv"]


# --- 2. the face colour allocator and the snapshot thread -----------------------------------------------------------


def test_face_styles_copy_draws_alike_and_changes_nothing_of_the_original():
    from gui.painter import FaceStyles

    styles = FaceStyles()
    styles.see([3, 9, 15], 0.0)  # 3, 9 and 15 prefer one pair: two of them get others
    twin = styles.copy()
    assert [twin.style(i) for i in (3, 9, 15)] == [styles.style(i) for i in (3, 9, 15)]
    before = styles.style(21)
    twin.see([21, 27, 33], 1.0)
    assert styles.style(21) == before and 21 not in styles._pairs and styles._now == 0.0


def test_a_snapshot_draws_with_a_copy_of_the_views_styles(qtbot, tmp_path, monkeypatch):
    """The snapshot's render ran on its own thread with the view's allocator, while the GUI thread's paint and plots
    changed it: a KeyError in see(), or two faces on show in one colour and shape."""
    from PySide6.QtCore import QSettings
    from PySide6.QtGui import QAction
    from PySide6.QtWidgets import QMainWindow

    from gui import recording_controls
    from gui.painter import DisplaySettings
    from gui.recording import Recorder
    from gui.status_line import StatusLine
    from inference.results import FaceResult, FaceView, FrameResult, SkinTone

    window = QMainWindow()
    qtbot.addWidget(window)
    action = QAction("Record", window)
    action.setCheckable(True)
    controls = recording_controls.RecordingControls(
        window, Recorder(), action, StatusLine(window.statusBar()), lambda _: None,
        QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat), None)
    controls.output_dir = tmp_path / "out"
    display = DisplaySettings()
    display.face_styles.see([3, 9], 0.0)  # on show in the view: 9 drawn in a pair not its first choice
    shown = {i: display.face_styles.style(i) for i in (3, 9)}
    drawn = []
    real = recording_controls.render

    def render(result, d, *args):
        drawn.append((d.face_styles, {i: d.face_styles.style(i) for i in (3, 9)}))
        return real(result, d, *args)

    monkeypatch.setattr(recording_controls, "render", render)
    view = FaceView(np.zeros((8, 8, 3), np.uint8), {}, SkinTone(False, 0))
    faces = tuple(FaceResult(i, (0, 0, 8, 8), np.eye(2, 3), view) for i in (9, 15))
    result = FrameResult(0, 1.0, np.zeros((8, 8, 3), np.uint8), faces, {}, {}, source="camera 0")
    try:
        controls.snapshot(result, display, "").result(timeout=20)
    finally:
        controls.shutdown()
    (styles, seen), = drawn
    assert styles is not display.face_styles
    assert seen == shown  # the snapshot's colours are the view's
    assert 15 not in display.face_styles._pairs  # the snapshot's faces are no change to the view's allocator


# --- 3. a failed run replaying CUDA graphs --------------------------------------------------------------------------


@pytest.fixture
def graph_replaying(tmp_path, tiny_models):
    """A classifier run through FixedBinding, as --cuda-graph runs it (forced here on a CPU session), and one failing
    on a batch not a multiple of 3."""
    from inference.models import load_model

    from .test_damaged_models_run_time import changed, fails_unless_a_batch_of_three

    def load(path: Path):
        model = load_model(path)
        model.info = dataclasses.replace(model.info, cuda_graph=True)
        return model

    failing = changed(tiny_models["classifier"], tmp_path / "fails.onnx", fails_unless_a_batch_of_three)
    return load(tiny_models["classifier"]), load(failing)


def test_a_failed_cuda_graph_run_names_the_model_and_ort_prints_nothing(graph_replaying, capfd):
    """It reached the app as "RuntimeError (details in the log)", with ORT's [E:onnxruntime …] line on stderr."""
    _, failing = graph_replaying
    capfd.readouterr()
    with pytest.raises(BiasMirrorError) as failed:
        failing.predict(np.full((2, *failing.size, 3), 128, np.uint8))
    assert failed.value.path == str(failing.path)
    assert f"classifier '{failing.name}' failed on CPU with a batch of 2" in str(failed.value)
    assert "onnxruntime" not in capfd.readouterr().err
    assert failing._fixed and not failing._running


def test_a_cuda_graph_run_ends_on_its_threads_stop(graph_replaying):
    """Given no RunOptions, a replay was out of reach of stop_runs and of a stop set before it started."""
    from inference.models import runs_end_when

    model, _ = graph_replaying
    faces = np.full((3, *model.size, 3), 128, np.uint8)
    model.predict(faces)  # runs as it is
    stop = threading.Event()
    stop.set()
    with runs_end_when(stop), pytest.raises(BiasMirrorError, match="terminate"):
        model.predict(faces)


# --- 4. a close during the GPU batch preparation --------------------------------------------------------------------


@pytest.mark.parametrize("closing", [True, False])
def test_a_close_during_the_batch_preparation_logs_no_failure(qtbot, caplog, closing):
    """The stop ends the preparation's runs ("terminate flag"): logged as a failure with its traceback at every
    close that came while the GPU sessions were being prepared."""
    from gui.workers import InferenceThread, Mailbox

    class Preparing:
        thread: InferenceThread

        def prepare(self):
            if closing:
                self.thread.stop()
            raise BiasMirrorError("classifier 'tiny-a' failed on CUDA with a batch of 16: Exiting due to terminate "
                                  "flag being set to true.")

        def stop_runs(self):
            return 0

        def process(self, *args, **kwargs):
            raise AssertionError("no frame was sent")

    pipeline = Preparing()
    pipeline.thread = thread = InferenceThread(pipeline, Mailbox(), Mailbox())
    caplog.set_level(logging.INFO)
    thread.start()
    if not closing:
        qtbot.waitUntil(lambda: any("preparing" in r.getMessage() for r in caplog.records), timeout=5000)
        thread.stop()
    assert thread.wait(5000)
    logged = [r.getMessage() for r in caplog.records if "preparing the GPU batch sessions failed" in r.getMessage()]
    assert logged == ([] if closing else ["preparing the GPU batch sessions failed"])
