"""The main window: the view in the middle, models and display settings on the right, plots and the session below.

The GUI thread only paints and reacts to the user; capture and inference run
in their own threads (see ``workers``), and so do opening a source and writing
a snapshot. Each result the inference thread announces schedules one
paint of the newest in a one-slot mailbox (nothing is polled while nothing
comes); the recording, the session figures and the plots get every processed
frame, shown or not.

This class wires the window's parts together and keeps what the session is showing; each part has a module of its
own: ``source_player`` (opening and playing sources), ``source_message`` (the page while none plays),
``display_controls`` (the Display box), ``model_choices`` (the models saved and read back), ``recording_controls``
(Record, Snapshot and the output folder), ``session_summary`` (its tab), ``status_line`` (the status bar's labels),
``window_actions`` (menus and toolbar) and ``window_size`` (the window's size and docks on its screen).
"""
from __future__ import annotations

import logging
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QDockWidget, QFileDialog, QFrame, QInputDialog, QMainWindow, QScrollArea,
                               QStackedWidget, QVBoxLayout, QWidget)

from inference.errors import BiasMirrorError
from inference.faces import FaceDetector, make_detector
from inference.models import Classifier, Filter
from inference.pipeline import FramePipeline, PipelineConfig
from inference.results import FrameResult
from inference.runtime import RuntimeConfig
from inference.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Frame, Source, camera_index

from . import settings as st
from .display_controls import DisplayControls
from .frame_view import FrameView, HelpOverlay
from .log_file import IN_THE_LOG, SkipLines, where_details_are
from .model_choices import ModelChoices, condition_for
from .model_panel import ModelPanel, tell_plainly
from .painter import VIEW_MODES, Composed, DisplaySettings, face_lines, plain_text
from .plots import PlotsPanel
from .recording import Recorder, SessionStats
from .recording_controls import RecordingControls
from .session_summary import SessionSummary
from .source_message import SourceMessage, refusal_text
from .source_player import SourcePlayer, no_first_frame, source_label
from .status_line import FrameTimes, MessageBar, StatusLine, Warnings
from .window_actions import add_actions
from .window_size import restore_window, size_docks
from .workers import CaptureThread, DetectThread, InferenceThread, Mailbox

log = logging.getLogger(__name__)
DISPLAY_MS = 30  # the least time between two paints of results: a burst of them is shown as its newest
STOP_WAIT_MS = 300  # how long quitting waits for a capture to stop before leaving it behind (a switch does not wait)
OPEN_FILTER = f"Videos and images ({' '.join('*' + e for e in (*VIDEO_EXTENSIONS, *IMAGE_EXTENSIONS))});;All files (*)"


class MainWindow(QMainWindow):
    source_opened = Signal(bool)  # the newest request to open a source is settled: opened (True) or refused

    def __init__(self, source: str | None, classifiers: list[Classifier], filters: list[Filter], errors: list[str],
                 runtime: RuntimeConfig = RuntimeConfig(), detector: FaceDetector | None = None,
                 slideshow_fps: float = 2.0, loop: bool = False, models_dir: Path | None = None,
                 cam_class: str | None = None, filter_override: Filter | None | bool = False,
                 classifiers_chosen: bool = False, log_path: Path | None = None, filter_condition: str | None = None):
        super().__init__()
        self.log_path = log_path  # the app's log file: messages that say "details in the log" name it
        self.setWindowTitle("Bias Mirror")
        self.qs = st.make_settings()
        self.slideshow_fps, self.loop = slideshow_fps, loop
        self.display = DisplaySettings(
            view=st.get(self.qs, "view", "side by side", str), show_cam=st.get(self.qs, "show_cam", True, bool),
            cam_model=None,  # the saved one once the classifiers are known: see ModelChoices.starting
            cam_opacity=st.get(self.qs, "cam_opacity", 0.45, float, within=(0.0, 1.0)),
            split=st.get(self.qs, "split", 0.5, float, within=(0.0, 1.0)),
            show_labels=st.get(self.qs, "show_labels", True, bool))
        if self.display.view not in VIEW_MODES:
            self.display.view = "side by side"
        self.paused = False
        self.source_name = ""
        # why the source gave nothing to see (it could not be opened, or no frame of it could be read), else None:
        # a script's run (--max-seconds) exits with it, where the window's message alone had left status 0
        self.source_problem: str | None = None
        self.camera_lost = False
        # the camera last opened, being opened at start; where it is not there, camera 0 is opened instead, and once
        # that is settled the window says why (``_fallen_back_from``: the camera that was not there)
        self._remembered_camera: int | None = None
        self._fallen_back_from: int | None = None
        self.last_result: FrameResult | None = None
        self.results_shown = 0
        self._warnings = Warnings()  # the status bar's ⚠ shows the latest; older ones are counted
        self._skipped = 0  # unreadable images or frames of the current source
        self._notes_shown = 0  # of the current source's warnings (Source.warnings)
        self._skip_lines = SkipLines()  # what the log has heard of them: each once, a looped source's passes summed up
        self._frame_times = FrameTimes()
        # every measured frame for the plots, shown or not (the display takes only the newest: a large photo's
        # faces were in the summary and the recording but never plotted); bounded should the GUI thread stall
        self._to_plot: deque[FrameResult] = deque(maxlen=256)
        self._session_since = 0.0  # frames captured before the session was reset belong to the one before
        self._source_since = 0.0  # frames captured before the source was opened belong to the one before
        self._fps = (0.0, 0.0)  # processed, shown: the status bar's and the Speed tab's
        self._closed = False
        if (unsaved := st.unsaved_reason(self.qs)) is not None:
            log.warning("%s", unsaved)
            self._warn(unsaved)

        # --- models and the pipeline (owned by the inference thread from here on) -----------
        self.choices = ModelChoices(self.qs, classifiers, filter_override, filter_condition, classifiers_chosen)
        start = self.choices.starting(classifiers, filters, errors, runtime)
        self.display.cam_model = start.cam_model
        self.models = ModelPanel(start.classifiers, start.filters, start.errors, runtime, start.enabled,
                                 start.filter_pref, models_dir, start.disabled)
        self.models.log_path = log_path
        self.models.models_changed.connect(self._models_changed)
        # F had switched it off: picking a filter in the list had left it off, under "no filter active"
        self.models.filter_picked.connect(lambda: self.display_controls.filter_check.setChecked(True))
        condition, warning = self.choices.starting_condition(self.models.active_filter(), filter_condition)
        if warning is not None:  # --condition names one the filter in effect does not take
            self._warn(warning)
        config = PipelineConfig(cam_class=cam_class or st.get(self.qs, "cam_class", PipelineConfig.PREDICTED, str),
                                apply_filter=start.apply_filter, filter_condition=condition)
        self.pipeline = FramePipeline(self.models.active_classifiers(), self.models.active_filter(),
                                      detector if detector is not None else make_detector(), config)
        self.frames: Mailbox[Frame] = Mailbox()  # detection (faces attached) → inference
        self.player = SourcePlayer(self.frames, self)
        self.captured = self.player.captured  # the window's API: capture → detection
        self.results: Mailbox[tuple[FrameResult, bool]] = Mailbox()
        self.recorder = Recorder()
        self.stats = SessionStats()
        # The detector is the pipeline's; the detection thread is its only user (the inference thread
        # falls back to it only for a frame whose detection failed there).
        self.detect = DetectThread(self.pipeline.detector, self.captured, self.frames)
        self.inference = InferenceThread(self.pipeline, self.frames, self.results, self._on_result_worker)
        self.inference.error.connect(self._worker_error)
        self.inference.skipped.connect(self._capture_warning)
        self.player.opened.connect(self._source_opened)
        self.player.status.connect(self._capture_status)
        self.player.warning.connect(self._capture_warning)
        self.player.ended.connect(self._source_ended)
        self.player.failed.connect(self._source_failed)
        self.player.lost_changed.connect(self._camera_lost)

        self._build_ui(config)
        # Woken by results, not polled: a 30 ms timer had woken the GUI thread 33 times a second with nothing to
        # show (no source, paused, a source over), ~1 % of a core. The inference thread's ``processed`` (queued to
        # this thread) starts this single-shot timer; the results that come while it runs wait in the one-slot
        # mailbox, so a burst is one paint of the newest, at most one paint per DISPLAY_MS.
        self.display_timer = QTimer(self)
        self.display_timer.setSingleShot(True)
        self.display_timer.timeout.connect(self._tick)
        self._last_display = float("-inf")  # when ``_tick`` last ran (time.monotonic)
        self.inference.processed.connect(self._result_ready, Qt.ConnectionType.QueuedConnection)
        self.inference.start()
        self.detect.start()

        # the status bar's rates, the summary, the histograms, recording notices: these change with time as well as
        # with results (a rate falls to 0 when frames stop), so they keep a slow tick of their own
        self.slow_timer = QTimer(self)
        self.slow_timer.timeout.connect(self._slow_tick)
        self.slow_timer.start(500)
        restore_window(self, self.qs, self.plots_dock, self.side_dock)
        if source is not None:
            self.open_source(source)
        else:
            self._show_message("No source chosen yet.")

    # --- what the parts hold ------------------------------------------------------------------
    @property
    def capture(self) -> CaptureThread | None:  # the window's API: the capture playing, None while none plays
        return self.player.capture

    @property
    def opening(self) -> str | int | None:  # the window's API
        """What the newest request opens, until it is settled."""
        return self.player.opening

    # --- UI ------------------------------------------------------------------------------
    def _build_ui(self, config: PipelineConfig) -> None:
        self.view = FrameView(self.display)
        self.view.split_changed.connect(lambda v: st.put(self.qs, "split", v))
        self.message_page = SourceMessage(self.ask_open_any, self.ask_open_folder, self.ask_camera)
        self.message = self.message_page.message  # the window's API: the text shown while no source plays
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message_page)
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)
        self.help = HelpOverlay(self.stack)
        # the stack raises the page it turns to: the video had covered a help opened before the source, still open
        self.stack.currentChanged.connect(lambda _i: self.help.raise_())

        # right: models + display, scrolled: its height (and each classifier row, warning or condition row added)
        # had set the window's minimum height, above a 720 px screen's
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(4, 4, 4, 4)
        sl.addWidget(self.models)
        self.display_controls = DisplayControls(self.display, config, self.qs, self.models, self.choices, self.view,
                                                self.inference)
        sl.addWidget(self.display_controls)
        sl.addStretch(1)
        self.side_scroll = QScrollArea()
        self.side_scroll.setWidgetResizable(True)
        self.side_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.side_scroll.setWidget(side)
        self.side_dock = self._dock("Models and display", self.side_scroll, Qt.DockWidgetArea.RightDockWidgetArea)

        self.plots = PlotsPanel(face_styles=self.display.face_styles)  # a face's curve in its box's colour
        self.plots_dock = self._dock("Plots", self.plots, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.summary = SessionSummary(self.reset_session)
        self.summary_dock = self._dock("Session summary", self.summary, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.plots_dock, self.summary_dock)
        self.summary_dock.visibilityChanged.connect(lambda shown: shown and self.summary.refresh(self.stats))
        self.plots_dock.visibilityChanged.connect(lambda shown: shown and self.plots.redraw())
        self.plots_dock.raise_()
        size_docks(self, self.plots_dock, self.side_dock)

        # "Output folder…" asks the recording controls, made below: they need the Record action
        actions = add_actions(self, self.display_controls, (self.side_dock, self.plots_dock, self.summary_dock),
                              self.help, lambda: self.recording.ask_output_dir())
        self.act_pause, self.act_record = actions.pause, actions.record

        self.setStatusBar(MessageBar())  # a passing message too long for the bar is cut at a word, not mid-word
        self.status = StatusLine(self.statusBar())
        self.recording = RecordingControls(self, self.recorder, self.act_record, self.status, self._warn, self.qs,
                                           self.log_path)
        self._update_providers()
        self._name_for_screen_readers()

    def _name_for_screen_readers(self) -> None:
        """Names for the parts a screen reader had announced as nothing: a picture, a set of plots and a table. The
        view's numbers are its description, kept up by ``_describe_view``."""
        self.view.setAccessibleName("Video view: the frame, its faces and their labels")
        self.plots.setAccessibleName("Plots of the faces' skin tone, P(female) and CAM focus, the session's shifts "
                                     "and the speed")
        self.summary.table.setAccessibleName("Session summary: each face's mean shifts and their intervals")

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    # --- settings the user changes -------------------------------------------------------
    def _models_changed(self) -> None:
        controls, f = self.display_controls, self.models.active_filter()
        # the condition chosen stays where the new filter has it too; otherwise the new filter's first
        controls.filter_condition = condition_for(f, controls.filter_condition)
        self.inference.set_models(self.models.active_classifiers(), f, filter_condition=controls.filter_condition)
        controls.refresh_conditions()
        controls.refresh_cam_choices()
        self.choices.save_models(self.models, controls.filter_condition, self.display.cam_model)
        self._update_providers()

    # --- sources -------------------------------------------------------------------------
    def open_source(self, spec: str | int) -> None:
        """Switch to a camera index, video, image folder or image: opened on a thread of its own, taken up in
        ``_source_opened`` (``source_opened`` says when). A failure is shown in the window; a source that was
        playing goes on meanwhile, and after a failure (it used to be stopped before the new one was tried)."""
        what = source_label(spec)
        self.statusBar().showMessage(f"opening {what}…")
        if self.stack.currentWidget() is self.message_page:
            self._show_message(f"Opening {what}…")
        self.player.start_opening(spec, self.loop)

    def open_last_camera(self) -> None:
        """Opens the camera last opened (camera 0 at a first start); where it is not there, camera 0."""
        index = st.last_camera(self.qs)
        self._remembered_camera = index if index != 0 else None
        self.open_source(index)

    def _source_opened(self, spec: str | int, source: Source | None, error: Exception | None) -> None:
        remembered, self._remembered_camera = self._remembered_camera, None
        fallen_back_from, self._fallen_back_from = self._fallen_back_from, None
        if source is None and remembered is not None and spec == remembered:  # a USB camera unplugged
            self._fallen_back_from = remembered
            self.open_source(0)
            return
        opened = self._take_up(spec, source, error)
        if fallen_back_from is not None:
            self._say_fallen_back(fallen_back_from, opened)
        elif opened and (index := camera_index(spec)) is not None:
            # the camera to open at the next start; not camera 0 fallen back to: the USB camera forgotten one day is
            # looked for again the next
            st.put(self.qs, st.LAST_CAMERA, index)
        self.source_opened.emit(opened)

    def _say_fallen_back(self, index: int, opened: bool) -> None:
        """Camera ``index``, opened last time, was not there, and camera 0 was tried instead (``opened``): said in the
        warnings, and where camera 0 opened in the status bar, after the opening's own messages, which clear it (the
        page says why camera 0 did not open)."""
        text = f"camera {index}, opened last time, is not there" + (": camera 0 opened instead" if opened else "")
        log.info("%s", text)
        self._warn(text)
        if opened:
            self.statusBar().showMessage(text, 15000)

    def _take_up(self, spec: str | int, source: Source | None, error: Exception | None) -> bool:
        """Plays ``source``, which ``spec`` opened; or says why it could not be opened (``error``)."""
        self.statusBar().clearMessage()  # "opening …", or the old source's end
        if source is None:
            what = str(error) if isinstance(error, BiasMirrorError) else where_details_are(
                f"{spec}: {type(error).__name__}: {error} {IN_THE_LOG}", self.log_path)
            if self.capture is not None and self.capture.isRunning():
                tell_plainly(self, "Cannot open source", f"This source cannot be opened:\n\n{what}\n\n"
                             f"{self.source_name} goes on.")
                self.statusBar().showMessage(what, 15000)
                return False
            self.player.stop()
            self._show_message(refusal_text(spec, error, what))
            self.source_problem = what  # the source is in it: the path, or "camera 9"
            self.status.show_source("no source")
            self.statusBar().showMessage(what, 15000)
            return False
        self.player.stop()
        self._source_since = time.monotonic()
        self.last_result = None
        self.view.set_result(None)  # paused, the old source's last frame stayed on show under the new one's name
        self.source_name, self.source_problem = source.name, None
        self.camera_lost = False
        self.recorder.paused_reason = None
        self.inference.reset_tracks(since=self._source_since)  # a frame of the old source still on its way: dropped
        self.recorder.new_source(source.name, self._source_since)  # its ids start at 1 again: a part of its own
        self.reset_session()
        self._skipped = 0
        self._log_skips(self._skip_lines.finish())  # the old source's passes not yet summed up
        self._skip_lines = SkipLines(source.name)
        self._notes_shown = 0
        self._show_source_notes(source)  # those it said as it opened, before it plays
        self.player.play(source, spec, self.slideshow_fps, self.paused)
        self.stack.setCurrentWidget(self.view)
        self.view.set_note(f"paused: press Space to play {source.name}" if self.paused else "")
        self.status.show_source(f"source: {source.name}")
        self.view.setFocus()
        return True

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message_page)

    def ask_open_any(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or image", "", OPEN_FILTER)
        if path:
            self.open_source(path)

    def ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open an image folder (slideshow)")
        if path:
            self.open_source(path)

    def ask_camera(self) -> None:
        last = min(st.last_camera(self.qs), 64)  # the one last opened is offered first
        index, ok = QInputDialog.getInt(self, "Open a camera", "Camera index:", last, 0, 64)
        if ok:
            self.open_source(index)  # the number, not its digits: a folder "0" in the working folder is no camera

    def _show_source_notes(self, source: Source) -> None:
        """What the source says of itself (``Source.warnings``: a folder's HEIC photos passed over, an HDR video's
        colour, a pause in a video's times), each once among the warnings: it had reached the log alone, and the
        window said only "end of heic". Not a skipped frame, and not counted as one. Read from the tuple the source
        replaces whole, never by calling into it: this is the GUI thread."""
        notes = getattr(source, "warnings", ())  # getattr: a test's stand-in for a source may say nothing
        for text in notes[self._notes_shown:]:
            self._warn(text)
            self.statusBar().showMessage(text, 5000)
        self._notes_shown = len(notes)

    def _capture_status(self, text: str) -> None:
        if self.player.never_delivered():
            # its "stopped delivering frames" and "reconnected", every second, said nothing of the program holding it
            text = no_first_frame(self.source_name)
        self.statusBar().showMessage(text, 5000)

    def _capture_warning(self, text: str) -> None:
        # every skipped file stays findable (the window keeps only the latest few), named once: see SkipLines
        self._log_skips(self._skip_lines.lines(text))
        self._skipped += 1
        self._warn(text)
        self.statusBar().showMessage(text, 5000)

    @staticmethod
    def _log_skips(lines: list[str]) -> None:
        for line in lines:
            log.warning("%s", line)

    def _warn(self, text: str) -> None:
        self._warnings.add(text)

    def _camera_lost(self, lost: bool) -> None:
        self.camera_lost = lost
        if lost:
            self.recorder.paused_reason = "camera lost"
            rec = "; recording paused (rows so far are kept)" if self.recorder.active else ""
            if self.player.never_delivered():  # it never started: the page, whose "Try a camera…" the text names
                paused = "\n\nRecording paused (rows so far are kept)." if self.recorder.active else ""
                self._show_message(no_first_frame(self.source_name) + paused)
            self.view.set_note(f"{self.source_name} lost — retrying every second{rec}")
        else:
            self.recorder.paused_reason = None
            self.view.set_note("")
            self.stack.setCurrentWidget(self.view)

    def _source_ended(self, cap: CaptureThread, text: str) -> None:
        if cap is self.capture:
            self._show_source_notes(cap.source)  # said at its last reads: before its end
        if cap.source.end_warning == text:
            log.warning("%s", text)  # a video cut short: kept with the warnings, not only in the passing note
            self._warn(text)
        self._note_if_nothing_played(text if cap.source.end_warning == text else None)
        self._end_of(cap, text)

    def _source_failed(self, cap: CaptureThread, text: str) -> None:
        """The failure names the source, the error and the log file (it said only "reading the source failed"),
        and stays with the warnings. The thread has logged it."""
        text = where_details_are(text, self.log_path)
        self._warn(text)
        self._note_if_nothing_played(text)
        self._end_of(cap, text)

    def _note_if_nothing_played(self, why: str | None) -> None:
        if (problem := self.player.nothing_played(why)) is not None:
            self.source_problem = problem

    def _end_of(self, cap: CaptureThread, text: str, waited_ms: int = 0) -> None:
        """Says that ``cap``'s source ended and stops the recording, once its last frame is through. Only while
        ``cap`` is still the capture: a retry left waiting when another source opened stopped the new source's
        recording and showed the old source's end."""
        if cap is not self.capture:
            return
        if self.recorder.active and not (self.detect.idle() and self.inference.idle()) and waited_ms < 5000:
            # the last frame may still be in the pipeline: its rows belong in the recording
            QTimer.singleShot(50, lambda: self._end_of(cap, text, waited_ms + 50))
            return
        note = text
        self._log_skips(self._skip_lines.finish())
        if self._skipped:
            note += f"; {self._skipped} unreadable image(s) or frame(s) skipped, each named in the log"
        if self.recorder.active:
            note += "; " + self.recording.finish()
            self.act_record.setChecked(False)
        self.view.set_note(note + " — open another source with Ctrl+O")
        self.statusBar().showMessage(note, 15000)

    # --- pause, record, snapshot -----------------------------------------------------------
    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self.act_pause.setChecked(self.paused)
        self.player.set_paused(self.paused)
        if not self.paused and self.view.note.startswith("paused: press Space"):
            self.view.set_note("")
        self.statusBar().showMessage("paused: settings still re-run the last frame" if self.paused else "running", 3000)

    def toggle_record(self) -> None:
        self.recording.toggle(self.source_name, self.camera_lost)

    def snapshot(self) -> Future[tuple[Path, Path]] | None:
        """The frame on show, drawn as shown, saved as PNG + JSON on the snapshot thread; the status bar says where
        once it is written, or why not. Returns the pending (png, json) paths, None when nothing is on show."""
        return self.recording.snapshot(self.last_result, self.display, self.view.note)

    def reset_session(self) -> None:
        # frames still in the pipeline from before (the old source's) would be counted and plotted in the new
        # session, the old face #1 on the new face #1's curve
        self._session_since = time.monotonic()
        self._to_plot.clear()
        self.stats.reset()
        self.plots.reset()
        self.summary.clear()

    # --- results -----------------------------------------------------------------------------
    def _on_result_worker(self, result: FrameResult, rerun: bool) -> None:
        """Runs in the inference thread: rows, statistics and plots see every processed frame, shown or not.

        The frame is also composed here (CAM overlays, paste-backs: tens of ms of NumPy) so that the
        GUI thread only draws it; a settings change in between makes the GUI compose it itself."""
        self.view.offer(Composed.of(result, self.display, self.view.size_shown, self.view.dpr_shown))
        if rerun:
            return  # the same frame again after a settings change: not a new measurement
        self._frame_times.processed.append(time.monotonic())
        self.recorder.write(result)
        if result.timestamp >= self._session_since:
            self.stats.add(result)
            self._to_plot.append(result)

    def _worker_error(self, text: str) -> None:
        text = where_details_are(text, self.log_path)
        self._warn(text)
        self.statusBar().showMessage(text, 10000)

    def _result_ready(self) -> None:
        """A result is in the mailbox (the inference thread's ``processed``): one paint is scheduled, DISPLAY_MS after
        the last at the earliest; one already scheduled shows it too (the newest wins), so the notices of a burst
        cost a check each and nothing queues up."""
        if self._closed or self.display_timer.isActive():
            return
        wait_ms = DISPLAY_MS - (time.monotonic() - self._last_display) * 1000  # -inf before the first paint
        self.display_timer.start(round(wait_ms) if wait_ms > 0 else 0)

    def _tick(self) -> None:
        """Shows the newest result and hands the plots every frame measured since the last call. Runs only once a
        result was announced (``_result_ready``): the plots' frames come with the results, so none waits for it."""
        now = time.monotonic()
        self._last_display = now
        while self._to_plot:
            measured = self._to_plot.popleft()
            self.plots.add_result(measured, (now - measured.timestamp) * 1000, *self._fps)
        item = self.results.take()
        if item is None or not self._of_this_source(item[0]):
            return
        result, rerun = item
        self.last_result = result
        self.results_shown += 1
        self.view.set_result(result)
        if not rerun:
            self._frame_times.shown.append(now)

    def _of_this_source(self, result: FrameResult) -> bool:
        """Whether ``result``'s frame was captured after the current source opened: one still in the pipeline at the
        switch (or its re-run) reached the screen and the snapshots under the new source's name."""
        return result.timestamp >= self._source_since

    def _slow_tick(self) -> None:
        if self.capture is not None:
            self._show_source_notes(self.capture.source)  # what it found as it plays
        self._fps = self._frame_times.rates(self._source_since, time.monotonic())
        self.status.show_rates(*self._fps, self.last_result)
        hist_ita, hist_p = self.stats.histograms_data()
        self.plots.refresh(hist_ita, hist_p)
        self.summary.refresh(self.stats)
        for text in self.stats.notices():
            log.info("%s", text)
            self.statusBar().showMessage(text, 15000)
        for text, stopped in self.recorder.notices():
            if stopped:  # stays in the warnings after the message times out: rows are no longer being kept
                self._warn(text)
            else:
                log.info("%s", text)
            self.statusBar().showMessage(text, 15000)
        self.recording.show_state()
        self._update_providers()
        self._describe_view()

    def _describe_view(self) -> None:
        """The view's accessible description: the labels of the faces on show as text, and its note. The numbers had
        been pixels only, out of a screen reader's reach. On the slow timer: a reader cannot follow every frame."""
        parts = [self.view.note] if self.view.note else []
        result = self.last_result if self.stack.currentWidget() is self.view else None
        if result is not None:
            parts += [plain_text(face_lines(face)) for face in result.faces] or ["no face detected in this frame"]
        description = "\n\n".join(parts)
        if description != self.view.accessibleDescription():
            self.view.setAccessibleDescription(description)

    def _update_providers(self) -> None:
        f = self.models.active_filter()
        models = [*self.models.active_classifiers(), *([f] if f else [])]
        frame_warnings = self.last_result.warnings if self.last_result is not None else []
        self.status.show_models(models, [*frame_warnings, *self.models.warning_lines(), *self._warnings],
                                self._warnings.dropped)

    # --- shutdown ----------------------------------------------------------------------------
    def shutdown(self) -> None:
        """Stop timers and threads (flags + wait, never terminate) and close the recording."""
        if self._closed:
            return
        self._closed = True
        self.display_timer.stop()
        self.slow_timer.stop()
        if self.opening is not None and self.capture is None:  # a script's run (--max-seconds) ended on nothing
            self.source_problem = f"{source_label(self.opening)}: still opening when the app closed"
        # a source playing that has given no frame yet showed nothing, though it never ended: a script's session
        # on it had exited 0, where `run` refuses it with 2
        if self.source_problem is None and (problem := self.player.nothing_came()) is not None:
            self.source_problem = problem
        self.player.close(STOP_WAIT_MS)
        self._log_skips(self._skip_lines.finish())
        self.detect.stop()
        if not self.detect.wait(5000):
            log.warning("the detection thread did not stop within 5 s")
        self.inference.stop()
        if not self.inference.wait(10000):
            log.warning("the inference thread did not stop within 10 s")
        if self.recorder.active:  # as the Record button stops it: a recording without rows leaves no empty file
            self.recorder.finish()  # which logs the files it saved
        self.recording.shutdown()  # a snapshot being written is finished, not cut off
        st.put(self.qs, "geometry", self.saveGeometry())
        st.put(self.qs, "window_state", self.saveState())
        # a setting only --slideshow-fps gives, never read back: an earlier version's saved value is let go
        self.qs.remove("slideshow_fps")
        self.qs.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
