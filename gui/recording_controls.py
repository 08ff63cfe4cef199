"""Record and Snapshot: the per-face rows started and stopped, and the frame on show saved as PNG + JSON, both in the
output folder the user picks (saved for the next session).

A snapshot is drawn, encoded and written on a thread of its own (drawing and encoding a 4616 px PNG took the GUI
thread 1.4 s); the status bar says where once it is written, or a message box why not.
"""
from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMainWindow

from inference.errors import BiasMirrorError
from inference.pipeline import PipelineConfig
from inference.results import FrameResult

from . import settings as st
from .log_file import IN_THE_LOG, where_details_are
from .model_panel import tell_plainly
from .painter import DisplaySettings, cam_model_of, has_filtered, render
from .recording import Recorder, make_folder, new_file, remove_if_empty, save_snapshot, stamp
from .status_line import StatusLine

log = logging.getLogger(__name__)


def shown_folder(folder: Path) -> str:
    """``folder`` as the status bar says it: the home folder as ~, so that on a narrow screen the folder is not what
    gets cut off."""
    try:
        home = Path.home()
    except RuntimeError:  # no home folder to be found
        return str(folder)
    if home == Path(home.anchor) or not folder.is_relative_to(home):  # a home of / would make ~ of every folder
        return str(folder)
    return str(Path("~", folder.relative_to(home)))


def record_tip(folder: Path) -> str:
    """What Record does, for its tooltip: "● Record" alone had been read as a video clip's, and a teacher who recorded
    the demo found a CSV."""
    return f"Record the measurements (R): one CSV row per face per frame, no video, saved in {shown_folder(folder)}"


def said_shortly(text: str, path: Path | None) -> str:
    """A recording's line (``Recorder.finish``) with its file said as a snapshot's is, the folder first and home as ~:
    the whole path, said last, was what a 1024 px status bar cut off."""
    if path is None:
        return text
    return (text.replace(f"saved to {path}", f"saved in {shown_folder(path.parent)}: {path.name}", 1)
            .replace(str(path.parent), shown_folder(path.parent)))


def cam_class_drawn(result: FrameResult, cam_model: str | None) -> str | None:
    """The class of the CAMs ``result`` carries for ``cam_model``, as the painter picks them: their one class, or
    ``PipelineConfig.PREDICTED`` where faces carry maps of different classes (each its predicted class's: the first
    face's class had been named for all, "male" over a woman's female map); None where no face has a map."""
    classes = {face.original.classifiers[name].cam_class for face in result.faces
               if (name := cam_model_of(face, cam_model)) is not None}
    if not classes:
        return None
    return classes.pop() if len(classes) == 1 else PipelineConfig.PREDICTED


class RecordingControls(QObject):
    """``recorder`` started and stopped, shown by ``action`` (the checkable Record action) and ``status``, and
    snapshots, for ``window``: its status bar says what happened, its message boxes what went wrong, ``warn`` keeps
    a recording's failure with the window's warnings. ``output_dir``, read from ``qs`` and saved there when the user
    picks another (``ask_output_dir``), is read at each use."""
    _snapshot_done = Signal(object, object)  # from the snapshot thread: ((png, json) or None, the OSError or None)

    def __init__(self, window: QMainWindow, recorder: Recorder, action: QAction, status: StatusLine,
                 warn: Callable[[str], None], qs: QSettings, log_path: Path | None) -> None:
        super().__init__(window)
        self.window, self.recorder, self.action, self.status, self.warn = window, recorder, action, status, warn
        self.qs, self.log_path = qs, log_path
        self.output_dir = Path(st.get(qs, "output_dir", str(st.default_output_dir()), str))  # and Record's tooltip
        # snapshots are drawn, encoded and written here, one after the other (so names stamped alike never clash)
        self._snapshots = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._snapshot_done.connect(self._snapshot_saved)

    @property
    def output_dir(self) -> Path:
        return self._output_dir

    @output_dir.setter
    def output_dir(self, folder: Path) -> None:
        self._output_dir = Path(folder)
        self.action.setToolTip(record_tip(self._output_dir))  # it names the folder the rows go to

    def ask_output_dir(self) -> None:
        """The folder for recordings and snapshots, picked in a dialog and saved for the next session."""
        path = QFileDialog.getExistingDirectory(self.window, "Folder for recordings and snapshots",
                                                str(self.output_dir))
        if path:
            self.output_dir = Path(path)
            st.put(self.qs, "output_dir", path)

    def toggle(self, source_name: str, camera_lost: bool) -> None:
        """Stops the recording, or starts one of ``source_name`` in the output folder."""
        bar = self.window.statusBar()
        if self.recorder.active:
            text = self.finish()
            if self.recorder.failure:
                self.warn(text)
            bar.showMessage(text, 10000)
        else:
            folder = self.output_dir
            try:
                path = self._start(folder, source_name)
            except OSError as exc:
                tell_plainly(self.window, "Cannot record", f"{folder}: {exc.strerror or exc}")  # a folder is anyone's name
                self.action.setChecked(False)
                return
            if camera_lost:
                self.recorder.paused_reason = "camera lost"
            bar.showMessage(f"recording one CSV row per face per frame (no video) in {shown_folder(path.parent)}: "
                            f"{path.name}", 5000)
        self.show_state()

    def finish(self) -> str:
        """Stops the recording; says where its rows went, shortly (``said_shortly``)."""
        return said_shortly(self.recorder.finish(), self.recorder.path)

    def _start(self, folder: Path, source_name: str) -> Path:
        """A recording of ``source_name`` begun in a file of its own in ``folder``: none that another window (or the
        last recording of this second) writes."""
        make_folder(folder)
        path = new_file(folder, f"rows-{stamp()}", ".csv")
        try:
            return self.recorder.start(path, source_name)
        except OSError:
            remove_if_empty(path)  # the name taken for it, never written
            raise

    def show_state(self) -> None:
        """The status bar's REC and the Record button as the recorder is: it stops by itself when the disk refuses a
        write."""
        self.status.show_recording(self.recorder)
        self.action.setChecked(self.recorder.active)

    def snapshot(self, result: FrameResult | None, display: DisplaySettings,
                 note: str) -> Future[tuple[Path, Path]] | None:
        """``result`` drawn as shown with ``display`` and ``note``, saved on the snapshot thread. Returns the pending
        (png, json) paths, None when nothing is on show."""
        if result is None:
            self.window.statusBar().showMessage("nothing to snapshot yet", 3000)
            return None
        h, w = result.frame.shape[:2]
        wide = 2 if display.view == "side by side" and has_filtered(result) else 1  # one panel with the filter off
        # a small frame is enlarged to 720 px high, and none is drawn wider than 4096 px (a 4000×50 strip made a
        # PNG 115,720 px wide)
        scale = min(max(1.0, 720 / h), 4096 / (w * wide))
        size = int(max(1280, w * wide * scale + 520)), int(max(480, h * scale + 40))
        # as they are now; the face styles a copy, drawn with on the snapshot thread while the view goes on with its own
        display, folder = replace(display, face_styles=display.face_styles.copy()), self.output_dir
        # the class and condition the frame saved ran with: those asked for since are not in it until its re-run lands
        settings = {"view": display.view, "cam": display.show_cam, "cam_model": display.cam_model,
                    "cam_class": cam_class_drawn(result, display.cam_model),
                    "filter_condition": result.filter_condition}
        recording = self.recorder.recorded_as(result.index)

        def work() -> tuple[Path, Path]:
            paths, error = None, None
            try:
                paths = save_snapshot(folder, render(result, display, *size, note), result, settings, recording)
            except Exception as exc:  # noqa: BLE001 — said in the window, as on the GUI thread it had been
                if not isinstance(exc, (OSError, BiasMirrorError)):
                    log.exception("saving a snapshot failed")
                error = exc
            with contextlib.suppress(RuntimeError):  # the window is gone
                self._snapshot_done.emit(paths, error)
            if error is not None:
                raise error
            return paths  # type: ignore[return-value]

        return self._snapshots.submit(work)

    def _snapshot_saved(self, paths: tuple[Path, Path] | None, exc: Exception | None) -> None:
        if paths is None:
            # a refused write names its file and reason (BiasMirrorError); a folder that cannot be made, its own
            text = (str(exc) if isinstance(exc, BiasMirrorError) else
                    f"{exc.filename or self.output_dir}: {exc.strerror or exc}" if isinstance(exc, OSError) else
                    where_details_are(f"{type(exc).__name__}: {exc} {IN_THE_LOG}", self.log_path))
            tell_plainly(self.window, "Cannot save snapshot", text)
            return
        png, js = paths
        log.info("snapshot saved: %s and %s", png, js)
        # the folder first: a projector's 1024 px cut the message after the names, and the folder went unseen
        self.window.statusBar().showMessage(f"saved in {shown_folder(png.parent)}: {png.name} and {js.suffix}", 8000)

    def shutdown(self) -> None:
        """A snapshot being written is finished, not cut off."""
        self._snapshots.shutdown(wait=True)
