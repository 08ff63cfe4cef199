"""The main window: the view in the middle, models and display settings on the right, plots and the session below.

The GUI thread only paints and reacts to the user; capture and inference run
in their own threads (see ``workers``), and so do opening a source and writing
a snapshot. A display timer takes the newest
result from a one-slot mailbox; the recording, the session figures and the
plots get every processed frame, shown or not.
"""
from __future__ import annotations

import contextlib
import logging
import struct
import threading
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from PySide6.QtCore import QByteArray, QPoint, QRect, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QGuiApplication, QKeySequence, QScreen
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDockWidget, QFileDialog, QFormLayout, QFrame, QGroupBox,
                               QHBoxLayout, QHeaderView, QInputDialog, QLabel, QMainWindow, QMessageBox, QPushButton,
                               QScrollArea, QSlider, QStackedWidget, QTableWidget, QTableWidgetItem, QToolBar,
                               QVBoxLayout, QWidget)

from inference.errors import BiasMirrorError, in_words
from inference.faces import FaceDetector, make_detector
from inference.models import Classifier, Filter, load_model, loaded_from, name_uniquely
from inference.pipeline import FramePipeline, PipelineConfig
from inference.results import FrameResult
from inference.runtime import RuntimeConfig
from inference.sources import IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, Frame, Source, camera_index, open_source

from . import settings as st
from .frame_view import FrameView, HelpOverlay
from .log_file import IN_THE_LOG, where_details_are
from .model_panel import ModelPanel, elided, narrow_combo
from .painter import VIEW_MODES, Composed, DisplaySettings, cam_model_of, has_filtered, render, signed
from .plots import PlotsPanel
from .recording import Recorder, SessionStats, free_base, make_folder, save_snapshot, stamp
from .workers import CaptureThread, DetectThread, InferenceThread, Mailbox

log = logging.getLogger(__name__)
DISPLAY_MS = 30  # the display timer; painting happens only when a new result arrives
STOP_WAIT_MS = 300  # how long quitting waits for a capture to stop before leaving it behind (a switch does not wait)
# the settings that keep each classifier's on/off state and the CAM model by file (settings.file_key), not by name
CLASSIFIERS_ON, CLASSIFIERS_OFF = "checked_classifier_files", "unchecked_classifier_files"
CAM_MODEL_FILE = "cam_model_file"
SUMMARY_NOTE = ("Per tracked face this session: ΔITA filtered − original (> 0 lighter); ΔP(female) filtered − the "
                "face resized to the filter's size and back, the filter's own doing (> 0 more female). Intervals "
                "stand on runs of consecutive frames, not on frames: a face's frames are nearly alike.")
FIRST_SIZE = QSize(1500, 950)  # a first start's window, where the screen has room for it
FRAME_ROOM = QSize(16, 40)  # left on the screen for the window's frame and title bar, where it has not
# QWidget.saveGeometry's data begins with this magic number and a header read by saved_frame (Qt 5 and 6 alike)
GEOMETRY_MAGIC, GEOMETRY_HEAD = 0x1D9D0CB, struct.Struct(">IHH4i")
PLOTS_HEIGHT, SIDE_WIDTH = 330, 380  # the docks' sizes at a first start in a window of FIRST_SIZE
# On a screen without room for FIRST_SIZE the plots get this share of its height, and at least PLOTS_MIN: a fixed
# 330 px left the view 322 px of a 1366×768 screen and 274 px of a 1280×720 one, too little for most faces' labels.
# Less than this leaves plot areas under 120 px once titles, axes and legends are drawn: view and plots share the loss.
PLOTS_SHARE, PLOTS_MIN = 0.36, 250
# the status bar's source, a path elided in the middle past it, as wide as the warning beside it may be: a path of
# 80 characters or so is shown whole
SOURCE_WIDTH = 520
# both frame rates count the frames of the last FPS_WINDOW_S, or since the source opened: over windows of their own
# (5 s and 2 s) a 0.2 fps slideshow had shown "0.2 fps processed · 0.5 shown"
FPS_WINDOW_S = 10.0
OPEN_FILTER = f"Videos and images ({' '.join('*' + e for e in (*VIDEO_EXTENSIONS, *IMAGE_EXTENSIONS))});;All files (*)"


def _ci(m: dict, digits: int) -> str:
    if not m or m.get("n", 0) == 0:
        return "—"
    v, lo, hi = m["value"], m["lo"], m["hi"]
    return f"{signed(v, digits)}  [{signed(lo, digits)}, {signed(hi, digits)}]" if m["n"] > 1 else \
        f"{signed(v, digits)}  (n=1)"


def providers_line(models: list[tuple[str, str]]) -> str:
    """Where the models run, short enough for the status bar: one provider for all of them as a count, and where
    they differ (a model fell back to the CPU) the models off the most common provider by name. The full list is
    the label's tooltip; a line per model did not fit in a narrow window."""
    if not models:
        return "no models"
    by_provider: dict[str, list[str]] = {}
    for name, provider in models:
        by_provider.setdefault(provider, []).append(name)
    common = max(by_provider, key=lambda p: len(by_provider[p]))
    parts = [f"{common}: {len(by_provider[common])} model(s)"]
    parts += [f"{p}: {', '.join(names)}" for p, names in by_provider.items() if p != common]
    return " · ".join(parts)


def first_start_size(available: QRect) -> QSize:
    """The window's size at a first start on a screen of ``available`` room: FIRST_SIZE where it fits, else the
    room less the frame's. A fixed 1500×950 ran past a 1366×768 screen, and 1080p at 150 % or 200 %."""
    if available.width() >= FIRST_SIZE.width() and available.height() >= FIRST_SIZE.height():
        return QSize(FIRST_SIZE)
    return FIRST_SIZE.boundedTo(available.size() - FRAME_ROOM)


def first_start_plots_height(available: QRect) -> int:
    """The plots dock's height at a first start on a screen of ``available`` room: PLOTS_HEIGHT in a window of
    FIRST_SIZE (1080p, as before), else PLOTS_SHARE of the screen's height, PLOTS_MIN at least."""
    if first_start_size(available) == FIRST_SIZE:
        return PLOTS_HEIGHT
    return max(PLOTS_MIN, min(PLOTS_HEIGHT, round(available.height() * PLOTS_SHARE)))


def saved_frame(geometry: QByteArray) -> QRect | None:
    """The window's frame in ``geometry``, QWidget.saveGeometry's data (its magic number, major and minor version,
    then the frame's left, top, right and bottom, big-endian), or None where it is not such data: where Qt refuses to
    restore a geometry, the screen the window was on is told only there."""
    head = geometry.data()[:GEOMETRY_HEAD.size]
    if len(head) < GEOMETRY_HEAD.size:
        return None
    magic, _major, _minor, left, top, right, bottom = GEOMETRY_HEAD.unpack(head)
    return QRect(QPoint(left, top), QPoint(right, bottom)) if magic == GEOMETRY_MAGIC else None


def frame_rate(times: list[float], since: float, now: float) -> float:
    """Frames per second of ``times`` (time.monotonic, oldest first) in the FPS_WINDOW_S up to ``now``, or since
    ``since`` where that is later (a source opened 2 s ago has played for 2 s)."""
    start = max(since, now - FPS_WINDOW_S)
    if now <= start:
        return 0.0
    return sum(1 for t in times if start < t <= now) / (now - start)


def cam_class_drawn(result: FrameResult, cam_model: str | None) -> str | None:
    """The class of the CAMs ``result`` carries for ``cam_model``, as the painter picks them; None where no face has a
    classifier's map."""
    for face in result.faces:
        if (name := cam_model_of(face, cam_model)) is not None:
            return face.original.classifiers[name].cam_class
    return None


def summary_note(filter_label: str | None) -> tuple[str, str]:
    """The session summary's note, and its tooltip: the filter's name elided in the note (a long one had widened
    the window past the screen when the tab was raised), whole in the tooltip."""
    if not filter_label:
        return SUMMARY_NOTE, ""
    shown, whole = (SUMMARY_NOTE.replace("this session", f"this session, filter '{name}'")
                    for name in (elided(filter_label), filter_label))
    return shown, whole


class _CountingMailbox(Mailbox[Frame]):
    """The capture's mailbox, counting the frames put in it: only a frame that was read is put, so a source that
    ends with none put (a folder of corrupt images) played nothing, though it opened."""

    def __init__(self) -> None:
        super().__init__()
        self.delivered = 0

    def put(self, item: Frame) -> None:
        self.delivered += 1
        super().put(item)


class MainWindow(QMainWindow):
    # from the thread that opened a source: (request number, spec, the Source or None, the exception or None)
    _source_ready = Signal(int, object, object, object)
    source_opened = Signal(bool)  # the newest request to open a source is settled: opened (True) or refused
    _snapshot_done = Signal(object, object)  # from the snapshot thread: ((png, json) or None, the OSError or None)
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
        self.output_dir = Path(st.get(self.qs, "output_dir", str(st.default_output_dir()), str))
        self.display = DisplaySettings(
            view=st.get(self.qs, "view", "side by side", str), show_cam=st.get(self.qs, "show_cam", True, bool),
            cam_model=None,  # the saved one once the classifiers are known: see _saved_cam_model
            cam_opacity=st.get(self.qs, "cam_opacity", 0.45, float, within=(0.0, 1.0)),
            split=st.get(self.qs, "split", 0.5, float, within=(0.0, 1.0)),
            show_labels=st.get(self.qs, "show_labels", True, bool))
        if self.display.view not in VIEW_MODES:
            self.display.view = "side by side"
        self.paused = False
        self.source_name = ""
        self._source_spec = ""  # as given to open_source: what a timed run's error names
        # why the source gave nothing to see (it could not be opened, or no frame of it could be read), else None:
        # a script's run (--max-seconds) exits with it, where the window's message alone had left status 0
        self.source_problem: str | None = None
        self.camera_lost = False
        self.last_result: FrameResult | None = None
        self.results_shown = 0
        self._warnings: deque[str] = deque(maxlen=5)  # the status bar's ⚠ shows the latest; older ones are counted
        self._warnings_dropped = 0
        self._skipped = 0  # unreadable images or frames of the current source
        # when each new frame was processed (appended by the inference thread) and shown: the frame rates' data
        self._processed_times: deque[float] = deque(maxlen=10_000)
        self._shown_times: deque[float] = deque(maxlen=10_000)
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
        # What the command line chose wins over what the last session saved.
        filter_pref = st.get(self.qs, "filter", "", str)
        apply_filter = st.get(self.qs, "apply_filter", True, bool)
        if filter_override is not False:  # a filter or --no-filter
            filter_pref = filter_override.name if filter_override else None
            if filter_override:
                apply_filter = True
                if filter_override not in filters:
                    filters = [*filters, filter_override]
        elif st.get(self.qs, "no_filter", False, bool):
            filter_pref = None
        elif filter_pref and all(f.name != filter_pref for f in filters):
            filters, filter_pref, errors = self._reopen_saved_filter(filter_pref, filters, errors, runtime)
        self.filter_chosen = filter_override is not False  # like --classifier: this session's, never saved
        self.condition_chosen = filter_condition is not None  # --condition too
        self.classifiers_chosen = classifiers_chosen  # on the command line: this session's, not a preference to keep
        self._given_classifiers = tuple(classifiers)  # those not among them were added from a file
        enabled: list[str] | None = None
        disabled: list[str] = []
        if not classifiers_chosen:
            classifiers, errors = self._reopen_saved_classifiers(classifiers, errors, runtime)
            enabled, disabled = self._saved_classifier_states(classifiers)
        self.display.cam_model = self._saved_cam_model(classifiers)
        self.models = ModelPanel(classifiers, filters, errors, runtime, enabled, filter_pref, models_dir, disabled)
        self.models.log_path = log_path
        self.models.models_changed.connect(self._models_changed)
        active = self.models.active_filter()
        # the saved condition was the saved filter's: a --filter session runs its filter's first, as run and audit
        # do (a condition saved for another filter of the same labels had been run without a word)
        saved = None if self.filter_chosen else st.get(self.qs, "filter_condition", "", str) or None
        self.filter_condition = self._condition_for(active, filter_condition or saved)
        if filter_condition is not None and self.filter_condition != filter_condition:  # the last session's filter
            why = ("no filter runs" if active is None else f"filter '{active.name}' takes no condition"
                   if not active.condition_labels else
                   f"filter '{active.name}' has no such condition; it runs with '{active.condition_labels[0]}'")
            self._warn(f"--condition {filter_condition!r}: {why}")
        config = PipelineConfig(cam_class=cam_class or st.get(self.qs, "cam_class", "female", str),
                                apply_filter=apply_filter, filter_condition=self.filter_condition)
        self.pipeline = FramePipeline(self.models.active_classifiers(), self.models.active_filter(),
                                      detector if detector is not None else make_detector(), config)
        self.captured = _CountingMailbox()  # capture → detection
        self.frames: Mailbox[Frame] = Mailbox()  # detection (faces attached) → inference
        self.results: Mailbox[tuple[FrameResult, bool]] = Mailbox()
        self.recorder = Recorder()
        self.stats = SessionStats()
        # The detector is the pipeline's; the detection thread is its only user (the inference thread
        # falls back to it only for a frame whose detection failed there).
        self.detect = DetectThread(self.pipeline.detector, self.captured, self.frames)
        self.inference = InferenceThread(self.pipeline, self.frames, self.results, self._on_result_worker)
        self.inference.error.connect(self._worker_error)
        self.inference.skipped.connect(self._capture_warning)
        self.capture: CaptureThread | None = None
        self._stopping: set[CaptureThread] = set()  # stopped, still in a read: kept until they end (see _stop_capture)
        # Sources are opened on threads of their own (listing a folder of 21,000 files, decoding a 24 MP photo to
        # check it, a camera slow to answer had held the GUI thread): the newest request is the one taken up
        self._open_request = 0
        self.opening: str | int | None = None  # what the newest request opens, until it is settled
        self._source_ready.connect(self._source_opened)
        # snapshots are drawn, encoded and written here, one after the other (so names stamped alike never clash)
        self._snapshots = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snapshot")
        self._snapshot_done.connect(self._snapshot_saved)

        self._build_ui(config)
        self.inference.start()
        self.detect.start()

        self.display_timer = QTimer(self)
        self.display_timer.timeout.connect(self._tick)
        self.display_timer.start(DISPLAY_MS)
        self.slow_timer = QTimer(self)
        self.slow_timer.timeout.connect(self._slow_tick)
        self.slow_timer.start(500)
        self._restore_window()
        if source is not None:
            self.open_source(source)
        else:
            self._show_message("No source chosen yet.")

    def _reopen_saved_filter(self, name: str, filters: list[Filter], errors: list[str],
                             runtime: RuntimeConfig) -> tuple[list[Filter], str, list[str]]:
        """The last session's filter is not among those loaded: it came from a file, opened again here. If that
        file is gone or broken the default filter runs, and the models panel says why (filters, choice, errors)."""
        path = st.get(self.qs, "filter_path", "", str)
        if path and (same := loaded_from(filters, path)) is not None:  # saved under another name, already here
            return filters, same.name, errors
        try:
            if not path:
                raise BiasMirrorError(f"the last session's filter '{name}' is not in the models folder")
            model = load_model(path, "filter", runtime)
        except (BiasMirrorError, OSError) as exc:
            note = (f"{exc if isinstance(exc, BiasMirrorError) else f'{path}: {in_words(exc)}'}; the last session's "
                    "filter was not loaded, the default filter runs instead")
            log.warning("%s", note)
            return filters, "", [*errors, note]
        name_uniquely([model], [f.name for f in filters])
        return [*filters, model], model.name, errors  # type: ignore[list-item]

    def _reopen_saved_classifiers(self, classifiers: list[Classifier], errors: list[str],
                                  runtime: RuntimeConfig) -> tuple[list[Classifier], list[str]]:
        """The classifiers the last session added from a file, opened again (they were gone after a restart,
        while a filter from a file came back). One whose file is gone or broken is named in the models panel."""
        for path in st.get(self.qs, "classifier_files", [], list):
            if loaded_from(classifiers, path) is not None:
                continue
            try:
                model = load_model(path, "classifier", runtime)
                model.require_gender("a classifier for the app")  # type: ignore[union-attr]
            except (BiasMirrorError, OSError) as exc:  # an unreadable folder or mount had stopped every start
                said = str(exc) if isinstance(exc, BiasMirrorError) else f"{path}: {in_words(exc)}"
                note = f"{said}; the classifier the last session added from this file was not loaded"
                log.warning("%s", note)
                errors = [*errors, note]
                continue
            name_uniquely([model], [c.name for c in classifiers])
            classifiers = [*classifiers, model]  # type: ignore[list-item]
        return classifiers, errors

    def _saved_classifier_states(self, classifiers: list[Classifier]) -> tuple[list[str], list[str]]:
        """The names the classifiers the last session left checked, and unchecked, have now. Kept by file (see
        ``settings.file_key``); settings saved by name, before, are read by name until the next save."""
        if not (self.qs.contains(CLASSIFIERS_ON) or self.qs.contains(CLASSIFIERS_OFF)):
            return st.get(self.qs, "classifiers", [], list), st.get(self.qs, "classifiers_off", [], list)
        on, off = (set(st.get(self.qs, key, [], list)) for key in (CLASSIFIERS_ON, CLASSIFIERS_OFF))
        keys = [(c.name, st.file_key(c.path)) for c in classifiers]
        return [n for n, k in keys if k in on], [n for n, k in keys if k in off]

    def _saved_cam_model(self, classifiers: list[Classifier]) -> str | None:
        """The name the last session's CAM model has now: kept by file, as the on/off state is; by name in settings
        saved before. None where it is not loaded (the first classifier's CAM shows)."""
        path = st.get(self.qs, CAM_MODEL_FILE, "", str)
        if not path:
            return st.get(self.qs, "cam_model", "", str) or None
        return next((c.name for c in classifiers if st.file_key(c.path) == path), None)

    def _save_cam_model(self) -> None:
        model = next((c for c in self.models.classifiers if c.name == self.display.cam_model), None)
        if model is not None:
            st.put(self.qs, CAM_MODEL_FILE, st.file_key(model.path))
            self.qs.remove("cam_model")  # by name it would go to another file of that name, should this one go

    def _added_classifier_files(self) -> list[str]:
        """The checked ones only: one the user unchecked is let go at the next start (else nothing could drop it)."""
        on = set(self.models.enabled_names())
        return [str(c.path) for c in self.models.classifiers
                if c.name in on and not any(c is g for g in self._given_classifiers)]

    # --- UI ------------------------------------------------------------------------------
    def _build_ui(self, config: PipelineConfig) -> None:
        self.view = FrameView(self.display)
        self.view.split_changed.connect(lambda v: st.put(self.qs, "split", v))
        self.message_page = QWidget()
        ml = QVBoxLayout(self.message_page)
        ml.addStretch(1)
        self.message = QLabel()
        self.message.setObjectName("sourceMessage")
        self.message.setWordWrap(True)
        self.message.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.message.setStyleSheet("QLabel { font-size: 15px; padding: 16px; }")
        # its text sets no minimum width: "Opening <a folder of a 162-character name>…", a word too long to wrap, had
        # made the window wider than a 1366 px screen (the page stays in the stack), the side panel crushed to 68 px
        self.message.setMinimumWidth(1)
        ml.addWidget(self.message)
        buttons = QHBoxLayout()
        buttons.addStretch(1)
        for text, slot in (("Open video or image…", self.ask_open_any), ("Open image folder…", self.ask_open_folder),
                           ("Try a camera…", self.ask_camera)):
            b = QPushButton(text)
            b.clicked.connect(slot)
            buttons.addWidget(b)
        buttons.addStretch(1)
        ml.addLayout(buttons)
        ml.addStretch(2)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.message_page)
        self.stack.addWidget(self.view)
        self.setCentralWidget(self.stack)
        self.help = HelpOverlay(self.stack)

        # right: models + display, scrolled: its height (and each classifier row, warning or condition row added)
        # had set the window's minimum height, above a 720 px screen's
        side = QWidget()
        sl = QVBoxLayout(side)
        sl.setContentsMargins(4, 4, 4, 4)
        sl.addWidget(self.models)
        sl.addWidget(self._display_box(config))
        sl.addStretch(1)
        self.side_scroll = QScrollArea()
        self.side_scroll.setWidgetResizable(True)
        self.side_scroll.setFrameShape(QFrame.Shape.NoFrame)
        self.side_scroll.setWidget(side)
        self.side_dock = self._dock("Models and display", self.side_scroll, Qt.DockWidgetArea.RightDockWidgetArea)

        self.plots = PlotsPanel()
        self.plots_dock = self._dock("Plots", self.plots, Qt.DockWidgetArea.BottomDockWidgetArea)
        summary = QWidget()
        sml = QVBoxLayout(summary)
        sml.setContentsMargins(4, 4, 4, 4)
        # each mean has its own n: one n for both showed ΔITA's count beside a classifier's ΔP that had fewer values
        # (the classifier switched off for a while)
        self.summary_table = QTableWidget(0, 7)
        self.summary_table.setHorizontalHeaderLabels(
            ["face", "frames", "mean ΔITA° [95% CI]", "n", "classifier", "mean ΔP(female) [95% CI]", "n"])
        self.summary_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.summary_table.verticalHeader().hide()
        self.summary_table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.summary_note = QLabel(SUMMARY_NOTE)
        self.summary_note.setWordWrap(True)  # on one line it set the window's minimum width, 1,053 px and up
        sml.addWidget(self.summary_note)
        sml.addWidget(self.summary_table)
        reset = QPushButton("Reset session")
        reset.clicked.connect(self.reset_session)
        sml.addWidget(reset, alignment=Qt.AlignmentFlag.AlignLeft)
        self.summary_dock = self._dock("Session summary", summary, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.plots_dock, self.summary_dock)
        self.summary_dock.visibilityChanged.connect(lambda shown: shown and self._update_summary())
        self.plots_dock.visibilityChanged.connect(lambda shown: shown and self.plots.redraw())
        self.plots_dock.raise_()
        self._size_docks()

        self._build_actions()

        # status bar
        self.status_source = QLabel()
        self.status_fps = QLabel()
        self.status_providers = QLabel()
        self.status_rec = QLabel()
        self.status_rec.setStyleSheet("QLabel { color: #ef5350; font-weight: bold; }")
        self.status_warn = QLabel()
        self.status_warn.setStyleSheet("QLabel { color: #ffb74d; }")
        for w in (self.status_source, self.status_fps, self.status_providers, self.status_rec, self.status_warn):
            self.statusBar().addPermanentWidget(w)
        # the standing labels took the whole bar, and a passing message (an error, where a recording was saved)
        # was cut to a few letters or not shown at all: while one shows, they step aside
        self.status_warn.setMaximumWidth(520)  # the whole list is its tooltip
        self.status_providers.setMaximumWidth(420)  # and so is each model's provider
        self.status_source.setMaximumWidth(SOURCE_WIDTH)  # a long path is elided (_show_source), whole in its tooltip
        self.statusBar().messageChanged.connect(self._passing_message)
        self._update_providers()

    def _screen(self) -> QScreen | None:
        return self.screen() or QGuiApplication.primaryScreen()

    def _size_docks(self, room: QRect | None = None) -> None:
        """The docks' first-start sizes in a window on a screen of ``room``, or on the window's screen."""
        if room is None and (screen := self._screen()) is not None:
            room = screen.availableGeometry()
        plots = first_start_plots_height(room) if room is not None else PLOTS_HEIGHT
        self.resizeDocks([self.plots_dock], [plots], Qt.Orientation.Vertical)
        self.resizeDocks([self.side_dock], [SIDE_WIDTH], Qt.Orientation.Horizontal)

    def _show_source(self, text: str) -> None:
        """``text`` in the status bar, a path too long for SOURCE_WIDTH elided in the middle (its start and its end
        stay), whole in the tooltip: a 162-character path took most of the bar, cut off before the folder's name."""
        shown = self.status_source.fontMetrics().elidedText(text, Qt.TextElideMode.ElideMiddle, SOURCE_WIDTH)
        self.status_source.setText(shown)
        self.status_source.setToolTip(text if shown != text else "")

    def _passing_message(self, text: str) -> None:
        for w in (self.status_providers, self.status_warn):
            w.setVisible(not text)

    def _dock(self, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(title)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _display_box(self, config: PipelineConfig) -> QGroupBox:
        box = QGroupBox("Display")
        form = QFormLayout(box)
        self.view_combo = narrow_combo(QComboBox())
        self.view_combo.addItems(VIEW_MODES)
        self.view_combo.setCurrentText(self.display.view)
        self.view_combo.currentTextChanged.connect(self.set_view_mode)
        form.addRow("View (V)", self.view_combo)
        self.filter_check = QCheckBox("apply the filter (F)")
        self.filter_check.setChecked(config.apply_filter)
        self.filter_check.toggled.connect(self.set_apply_filter)
        form.addRow(self.filter_check)
        # a conditional filter's conditions; the row shows only for one
        self.condition_combo = narrow_combo(QComboBox())
        self.condition_combo.setToolTip("what this conditional filter is asked for (its card's condition labels)")
        self.condition_combo.currentTextChanged.connect(self.set_filter_condition)
        form.addRow("Filter condition", self.condition_combo)
        self._display_form = form
        self._refresh_conditions()
        self.cam_check = QCheckBox("show class activation map (C)")
        self.cam_check.setChecked(self.display.show_cam)
        self.cam_check.toggled.connect(self.set_show_cam)
        form.addRow(self.cam_check)
        self.cam_model_combo = narrow_combo(QComboBox())
        self.cam_model_combo.currentTextChanged.connect(self._cam_model_chosen)
        form.addRow("CAM of", self.cam_model_combo)
        self.cam_class_combo = narrow_combo(QComboBox())
        self.cam_class_combo.addItem(config.cam_class)
        self.cam_class_combo.currentTextChanged.connect(self.set_cam_class)
        form.addRow("CAM class", self.cam_class_combo)
        self.opacity = QSlider(Qt.Orientation.Horizontal)
        self.opacity.setRange(0, 100)
        self.opacity.setValue(int(self.display.cam_opacity * 100))
        self.opacity.valueChanged.connect(self._opacity_changed)
        form.addRow("CAM opacity", self.opacity)
        self.labels_check = QCheckBox("face labels")
        self.labels_check.setChecked(self.display.show_labels)
        self.labels_check.toggled.connect(self._labels_toggled)
        form.addRow(self.labels_check)
        self._refresh_cam_choices()
        return box

    def _build_actions(self) -> None:
        tb = QToolBar("Main")
        tb.setObjectName("main toolbar")
        self.addToolBar(tb)
        menu_file = self.menuBar().addMenu("&File")
        menu_view = self.menuBar().addMenu("&View")
        menu_help = self.menuBar().addMenu("&Help")

        def act(text, slot, keys=(), menu=None, toolbar=False, checkable=False):
            a = QAction(text, self)
            if keys:
                a.setShortcuts([QKeySequence(k) for k in keys])
                a.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            a.setCheckable(checkable)
            a.triggered.connect(slot)
            self.addAction(a)
            if menu is not None:
                menu.addAction(a)
            if toolbar:
                tb.addAction(a)
            return a

        self.act_open = act("Open video or image…", self.ask_open_any, ["Ctrl+O"], menu_file, True)
        act("Open image folder…", self.ask_open_folder, ["Ctrl+Shift+O"], menu_file)
        act("Open camera…", self.ask_camera, [], menu_file)
        act("Output folder…", self.ask_output_dir, [], menu_file)
        menu_file.addSeparator()
        act("Quit", self.close, ["Ctrl+Q"], menu_file)
        tb.addSeparator()
        self.act_pause = act("Pause", self.toggle_pause, ["Space"], menu_view, True, checkable=True)
        self.act_record = act("● Record", self.toggle_record, ["R"], menu_file, True, checkable=True)
        self.act_snapshot = act("Snapshot", self.snapshot, ["S"], menu_file, True)
        tb.addSeparator()
        act("CAM", lambda: self.cam_check.toggle(), ["C"], menu_view, True)
        act("Filter on/off", lambda: self.filter_check.toggle(), ["F"], menu_view, True)
        act("Next view", self.cycle_view, ["V"], menu_view, True)
        # a dock closed with its × could be reopened only from the toolbar's right-click menu, and stayed closed
        menu_view.addSeparator()
        for dock in (self.side_dock, self.plots_dock, self.summary_dock):
            menu_view.addAction(dock.toggleViewAction())  # named as the dock is titled
        tb.addSeparator()
        act("Help", self.help.toggle, ["H", "F1"], menu_help, True)

    # --- settings the user changes -------------------------------------------------------
    def set_view_mode(self, mode: str) -> None:
        if mode not in VIEW_MODES:
            return
        self.display.view = mode
        if self.view_combo.currentText() != mode:
            self.view_combo.setCurrentText(mode)
        st.put(self.qs, "view", mode)
        self.view.update()

    def cycle_view(self) -> None:
        self.set_view_mode(VIEW_MODES[(VIEW_MODES.index(self.display.view) + 1) % len(VIEW_MODES)])

    def set_show_cam(self, on: bool) -> None:
        self.display.show_cam = on
        st.put(self.qs, "show_cam", on)
        self.view.update()

    def _cam_model_chosen(self, name: str) -> None:
        if name:
            self.display.cam_model = name
            if not self.classifiers_chosen:  # a --classifier session's CAM model names its own classifiers
                self._save_cam_model()
            self.view.update()

    def set_cam_model(self, name: str) -> None:
        self.cam_model_combo.setCurrentText(name)

    def set_cam_class(self, label: str) -> None:
        if label and label != self.pipeline_config_cam_class:
            self.pipeline_config_cam_class = label
            st.put(self.qs, "cam_class", label)
            self.inference.set_config(cam_class=label)  # re-runs the last frame at once

    @staticmethod
    def _condition_for(filt: Filter | None, wanted: str | None) -> str | None:
        """``wanted`` where ``filt`` takes it as a condition, else None (its first, or no condition at all)."""
        return wanted if filt is not None and wanted in filt.condition_labels else None

    def _refresh_conditions(self) -> None:
        f = self.models.active_filter()
        labels = list(f.condition_labels) if f is not None else []
        self.condition_combo.blockSignals(True)
        self.condition_combo.clear()
        self.condition_combo.addItems(labels)
        if labels:
            self.condition_combo.setCurrentText(self.filter_condition or labels[0])
        self.condition_combo.blockSignals(False)
        self._display_form.setRowVisible(self.condition_combo, bool(labels))

    def set_filter_condition(self, label: str) -> None:
        if label and label != self.filter_condition:
            self.filter_condition = label
            self._save_condition()
            self.inference.set_config(filter_condition=label)  # re-runs the last frame at once

    def set_apply_filter(self, on: bool) -> None:
        st.put(self.qs, "apply_filter", on)
        self.inference.set_config(apply_filter=on)

    def _opacity_changed(self, v: int) -> None:
        self.display.cam_opacity = v / 100
        st.put(self.qs, "cam_opacity", self.display.cam_opacity)
        self.view.update()

    def _labels_toggled(self, on: bool) -> None:
        self.display.show_labels = on
        st.put(self.qs, "show_labels", on)
        self.view.update()

    def _refresh_cam_choices(self) -> None:
        active = self.models.active_classifiers()
        names = [c.name for c in active]
        self.cam_model_combo.blockSignals(True)
        self.cam_model_combo.clear()
        self.cam_model_combo.addItems(names)
        if self.display.cam_model in names:
            self.cam_model_combo.setCurrentText(self.display.cam_model)
        elif names:
            self.display.cam_model = names[0]
        self.cam_model_combo.blockSignals(False)
        labels = list(dict.fromkeys(label for c in active for label in c.labels))
        current = getattr(self, "pipeline_config_cam_class", None) or self.cam_class_combo.currentText()
        shown = current if current in labels or not labels else labels[0]
        self.pipeline_config_cam_class = shown
        if shown != current:  # a class no classifier has (a saved "man"): the one shown is the one run and saved
            self.inference.set_config(cam_class=shown)  # in snapshots, or picking it would change nothing
        self.cam_class_combo.blockSignals(True)
        self.cam_class_combo.clear()
        self.cam_class_combo.addItems(labels or [current])
        self.cam_class_combo.setCurrentText(shown)
        self.cam_class_combo.blockSignals(False)

    def _models_changed(self) -> None:
        f = self.models.active_filter()
        # the condition chosen stays where the new filter has it too; otherwise the new filter's first
        self.filter_condition = self._condition_for(f, self.filter_condition)
        self.inference.set_models(self.models.active_classifiers(), f, filter_condition=self.filter_condition)
        self._refresh_conditions()
        self._refresh_cam_choices()
        self._save_models()
        self._update_providers()

    def _save_condition(self) -> None:
        """The condition in effect, unless the command line chose the filter or the condition: this session's alone
        (--condition had been saved once an unrelated control changed)."""
        if not (self.filter_chosen or self.condition_chosen):
            st.put(self.qs, "filter_condition", self.filter_condition or "")

    def _save_models(self) -> None:
        """Saves the models in effect, the condition and CAM model they fell back to included: a restart had run
        the condition or CAM model last picked, not the one showing at close. A command line's choice is kept
        out, whichever control changed (a --filter was saved once a classifier checkbox was toggled)."""
        if not self.filter_chosen:
            f = self.models.active_filter()
            st.put(self.qs, "filter", f.name if f else "")
            st.put(self.qs, "filter_path", str(f.path) if f else "")  # one from a file is opened again next time
            st.put(self.qs, "no_filter", f is None)
        self._save_condition()
        if not self.classifiers_chosen:
            st.put(self.qs, CLASSIFIERS_ON, self.models.enabled_files())
            st.put(self.qs, CLASSIFIERS_OFF, self.models.disabled_files())  # all unchecked differs from stale
            for old in ("classifiers", "classifiers_off"):  # by name, as settings from before kept it: read once
                self.qs.remove(old)
            st.put(self.qs, "classifier_files", self._added_classifier_files())
            self._save_cam_model()

    # --- sources -------------------------------------------------------------------------
    def open_source(self, spec: str | int) -> None:
        """Switch to a camera index, video, image folder or image: opened on a thread of its own, taken up in
        ``_source_opened`` (``source_opened`` says when). A failure is shown in the window; a source that was
        playing goes on meanwhile, and after a failure (it used to be stopped before the new one was tried)."""
        self._open_request += 1
        request, self.opening, loop = self._open_request, spec, self.loop
        what = self._what(spec)
        self.statusBar().showMessage(f"opening {what}…")
        if self.stack.currentWidget() is self.message_page:
            self._show_message(f"Opening {what}…")

        def work() -> None:
            source, error = None, None
            try:
                source = open_source(spec, loop=loop)
            except Exception as exc:  # noqa: BLE001 — said in the window, as on the GUI thread it had been
                if not isinstance(exc, BiasMirrorError):
                    log.exception("opening %s failed", what)
                error = exc
            try:
                self._source_ready.emit(request, spec, source, error)
            except RuntimeError:  # the window is gone
                if source is not None:
                    source.close()

        threading.Thread(target=work, name=f"open {what}", daemon=True).start()

    @staticmethod
    def _what(spec: str | int) -> str:
        """The source as the window names it: "camera 0" for a camera, given as a number (the camera dialog) or as
        its digits (--source 0, which had been named "0"), else the path given."""
        index = camera_index(spec)
        return f"camera {index}" if index is not None else str(spec)

    def _source_opened(self, request: int, spec: str | int, source: Source | None, error: Exception | None) -> None:
        if request != self._open_request or self._closed:  # another source was asked for meanwhile
            if source is not None:
                threading.Thread(target=source.close, name=f"close {source.name}", daemon=True).start()
            return
        self.opening = None
        ok = self._take_up(spec, source, error)
        self.source_opened.emit(ok)

    def _take_up(self, spec: str | int, source: Source | None, error: Exception | None) -> bool:
        """Plays ``source``, which ``spec`` opened; or says why it could not be opened (``error``)."""
        self.statusBar().clearMessage()  # "opening …", or the old source's end
        if source is None:
            what = str(error) if isinstance(error, BiasMirrorError) else where_details_are(
                f"{spec}: {type(error).__name__}: {error} {IN_THE_LOG}", self.log_path)
            if self.capture is not None and self.capture.isRunning():
                QMessageBox.warning(self, "Cannot open source", f"This source cannot be opened:\n\n{what}\n\n"
                                    f"{self.source_name} goes on.")
                self.statusBar().showMessage(what, 15000)
                return False
            self._stop_capture()
            if (index := camera_index(spec)) is not None and isinstance(error, BiasMirrorError):
                # one sentence: the error's own ("camera 0: no camera could be opened at index 0; …") said it twice
                text = (f"No camera found at index {index}: check it is connected and not in use, or open a video, "
                        "an image or an image folder instead.")
            elif index is not None:
                text = f"No camera found at index {index}.\n\n{what}."
            else:
                text = f"This source cannot be opened.\n\n{what}\n\nOpen a video, an image or an image folder instead."
            self._show_message(text)
            self.source_problem = what  # the source is in it: the path, or "camera 9"
            self._show_source("no source")
            self.statusBar().showMessage(what, 15000)
            return False
        self._stop_capture()
        self._source_since = time.monotonic()
        self.last_result = None
        self.view.set_result(None)  # paused, the old source's last frame stayed on show under the new one's name
        self.source_name, self._source_spec, self.source_problem = source.name, str(spec), None
        self.captured.delivered = 0  # the old capture, stopped above, puts nothing more
        self.camera_lost = False
        self.recorder.paused_reason = None
        self.inference.reset_tracks(since=self._source_since)  # a frame of the old source still on its way: dropped
        self.recorder.new_source(source.name, self._source_since)  # its ids start at 1 again: a part of its own
        self.reset_session()
        self._skipped = 0
        self.capture = CaptureThread(source, self.captured, self.slideshow_fps)
        self.capture.set_paused(self.paused)
        self.capture.status.connect(self._capture_status)
        self.capture.warning.connect(self._capture_warning)
        self.capture.ended.connect(self._source_ended)
        self.capture.failed.connect(self._source_failed)
        self.capture.finished.connect(self._capture_finished)
        self.capture.lost_changed.connect(self._camera_lost)
        self.capture.start()
        self.stack.setCurrentWidget(self.view)
        self.view.set_note(f"paused: press Space to play {source.name}" if self.paused else "")
        self._show_source(f"source: {source.name}")
        self.view.setFocus()
        return True

    def _show_message(self, text: str) -> None:
        self.message.setText(text)
        self.stack.setCurrentWidget(self.message_page)

    def _stop_capture(self) -> None:
        """The capture is told to stop and left to end by itself, never waited for here: a read can take seconds
        (a camera unplugged, a huge image), and waiting, then dropping the thread still running, had frozen the
        window and aborted the app. It is kept here until it ends; once stopped, nothing it reads is delivered,
        and a frame of it still in detection is dropped by the inference thread (``reset_tracks(since=…)``)."""
        if self.capture is not None:
            cap, self.capture = self.capture, None
            for sig in (cap.status, cap.warning, cap.ended, cap.failed, cap.lost_changed):
                try:
                    sig.disconnect()
                except (RuntimeError, TypeError):
                    pass
            cap.stop()
            if cap.isRunning():
                self._stopping.add(cap)  # its `finished`, queued to this thread, comes after this and lets it go
            self.captured.take()
            self.frames.take()

    def _capture_finished(self) -> None:
        if isinstance(cap := self.sender(), CaptureThread):
            self._let_go(cap)

    def _let_go(self, cap: CaptureThread) -> None:
        """Drops ``cap`` once its thread has ended, polled rather than waited for (the GUI thread only paints): its
        `finished` comes while the thread still holds it, and had the thread then dropped the last reference, the
        Qt object would have been destroyed there (1 switch in 12), as a worker's garbage collection had done when
        the app froze (gui_thread_gc)."""
        if cap.isRunning():
            QTimer.singleShot(5, self, lambda: self._let_go(cap))
            return
        self._stopping.discard(cap)

    def ask_open_any(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a video or image", "", OPEN_FILTER)
        if path:
            self.open_source(path)

    def ask_open_folder(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Open an image folder (slideshow)")
        if path:
            self.open_source(path)

    def ask_camera(self) -> None:
        index, ok = QInputDialog.getInt(self, "Open a camera", "Camera index:", 0, 0, 64)
        if ok:
            self.open_source(index)  # the number, not its digits: a folder "0" in the working folder is no camera

    def ask_output_dir(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Folder for recordings and snapshots", str(self.output_dir))
        if path:
            self.output_dir = Path(path)
            st.put(self.qs, "output_dir", path)

    def _capture_status(self, text: str) -> None:
        self.statusBar().showMessage(text, 5000)

    def _capture_warning(self, text: str) -> None:
        log.warning("%s", text)  # every skipped file stays findable: the window keeps only the latest few
        self._skipped += 1
        self._warn(text)
        self.statusBar().showMessage(text, 5000)

    def _warn(self, text: str) -> None:
        if text in self._warnings:
            self._warnings.remove(text)
        elif len(self._warnings) == self._warnings.maxlen:
            self._warnings_dropped += 1
        self._warnings.append(text)

    def _camera_lost(self, lost: bool) -> None:
        self.camera_lost = lost
        if lost:
            self.recorder.paused_reason = "camera lost"
            rec = "; recording paused (rows so far are kept)" if self.recorder.active else ""
            self.view.set_note(f"{self.source_name} lost — retrying every second{rec}")
        else:
            self.recorder.paused_reason = None
            self.view.set_note("")

    def _source_ended(self, text: str) -> None:
        cap = self.sender()
        if not isinstance(cap, CaptureThread) or cap is not self.capture:  # queued before another source opened
            return
        if cap.source.end_warning == text:
            log.warning("%s", text)  # a video cut short: kept with the warnings, not only in the passing note
            self._warn(text)
        self._note_if_nothing_played(text if cap.source.end_warning == text else None)
        self._end_of(cap, text)

    def _source_failed(self, text: str) -> None:
        """The failure names the source, the error and the log file (it said only "reading the source failed"),
        and stays with the warnings. The thread has logged it."""
        cap = self.sender()
        if not isinstance(cap, CaptureThread) or cap is not self.capture:
            return
        text = where_details_are(text, self.log_path)
        self._warn(text)
        self._note_if_nothing_played(text)
        self._end_of(cap, text)

    def _note_if_nothing_played(self, why: str | None) -> None:
        """The source is over (``why``: its warning or error; None for a plain end). Not one frame of it read, it
        failed as surely as one that would not open: `run` refuses it with status 2."""
        if self.captured.delivered == 0:
            said = f"{self._what(self._source_spec)}: no frame could be read"
            self.source_problem = said + (f" ({why})" if why else "")

    def _note_if_nothing_came(self) -> None:
        """At quitting: a source playing that has given no frame yet showed nothing, though it never ended (a
        camera that opens but delivers none is retried until the app quits). A script's session on it had exited 0,
        where `run` refuses it with 2."""
        if self.capture is None or self.source_problem is not None or self.captured.delivered:
            return
        why = "the camera delivered none" if self.capture.source.live else "none had been read when the app closed"
        self.source_problem = f"{self._what(self._source_spec)}: no frame could be read ({why})"

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
        if self._skipped:
            note += f"; {self._skipped} unreadable image(s) or frame(s) skipped, each named in the log"
        if self.recorder.active:
            note += "; " + self.recorder.finish()
            self.act_record.setChecked(False)
        self.view.set_note(note + " — open another source with Ctrl+O")
        self.statusBar().showMessage(note, 15000)

    # --- pause, record, snapshot -----------------------------------------------------------
    def toggle_pause(self) -> None:
        self.paused = not self.paused
        self.act_pause.setChecked(self.paused)
        if self.capture is not None:
            self.capture.set_paused(self.paused)
        if not self.paused and self.view.note.startswith("paused: press Space"):
            self.view.set_note("")
        self.statusBar().showMessage("paused: settings still re-run the last frame" if self.paused else "running", 3000)

    def toggle_record(self) -> None:
        if self.recorder.active:
            text = self.recorder.finish()
            if self.recorder.failure:
                self._warn(text)
            self.statusBar().showMessage(text, 10000)
        else:
            try:
                make_folder(self.output_dir)
                path = self.recorder.start(free_base(self.output_dir, f"rows-{stamp()}", (".csv",)).with_suffix(".csv"),
                                           self.source_name)
            except OSError as exc:
                QMessageBox.warning(self, "Cannot record", f"{self.output_dir}: {exc.strerror or exc}")
                self.act_record.setChecked(False)
                return
            if self.camera_lost:
                self.recorder.paused_reason = "camera lost"
            self.statusBar().showMessage(f"recording per-face rows to {path}", 5000)
        self.act_record.setChecked(self.recorder.active)
        self._update_rec()

    def snapshot(self) -> Future[tuple[Path, Path]] | None:
        """The frame on show, drawn as shown, saved as PNG + JSON on the snapshot thread (drawing and encoding a
        4616 px PNG took the GUI thread 1.4 s); the status bar says where once it is written, or why not. Returns
        the pending (png, json) paths, None when nothing is on show."""
        result = self.last_result
        if result is None:
            self.statusBar().showMessage("nothing to snapshot yet", 3000)
            return None
        h, w = result.frame.shape[:2]
        wide = 2 if self.display.view == "side by side" and has_filtered(result) else 1  # one panel with the filter off
        # a small frame is enlarged to 720 px high, and none is drawn wider than 4096 px (a 4000×50 strip made a
        # PNG 115,720 px wide)
        scale = min(max(1.0, 720 / h), 4096 / (w * wide))
        size = int(max(1280, w * wide * scale + 520)), int(max(480, h * scale + 40))
        display, note, folder = replace(self.display), self.view.note, self.output_dir  # as they are now
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
            QMessageBox.warning(self, "Cannot save snapshot", text)
            return
        png, js = paths
        self.statusBar().showMessage(f"snapshot saved: {png.name} + {js.name} in {png.parent}", 8000)

    def reset_session(self) -> None:
        # frames still in the pipeline from before (the old source's) would be counted and plotted in the new
        # session, the old face #1 on the new face #1's curve
        self._session_since = time.monotonic()
        self._to_plot.clear()
        self.stats.reset()
        self.plots.reset()
        self.summary_table.setRowCount(0)

    # --- results -----------------------------------------------------------------------------
    def _on_result_worker(self, result: FrameResult, rerun: bool) -> None:
        """Runs in the inference thread: rows, statistics and plots see every processed frame, shown or not.

        The frame is also composed here (CAM overlays, paste-backs: tens of ms of NumPy) so that the
        GUI thread only draws it; a settings change in between makes the GUI compose it itself."""
        self.view.offer(Composed.of(result, self.display, self.view.size_shown, self.view.dpr_shown))
        if rerun:
            return  # the same frame again after a settings change: not a new measurement
        self._processed_times.append(time.monotonic())
        self.recorder.write(result)
        if result.timestamp >= self._session_since:
            self.stats.add(result)
            self._to_plot.append(result)

    def _worker_error(self, text: str) -> None:
        text = where_details_are(text, self.log_path)
        self._warn(text)
        self.statusBar().showMessage(text, 10000)

    def _tick(self) -> None:
        now = time.monotonic()
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
            self._shown_times.append(now)

    def _of_this_source(self, result: FrameResult) -> bool:
        """Whether ``result``'s frame was captured after the current source opened: one still in the pipeline at the
        switch (or its re-run) reached the screen and the snapshots under the new source's name."""
        return result.timestamp >= self._source_since

    def _slow_tick(self) -> None:
        now = time.monotonic()
        # the same window for both, and the same numbers for the Speed tab (its "displayed" had stayed 0 through a
        # slideshow whose every frame was shown); list(): the inference thread appends meanwhile
        processed, shown = (frame_rate(list(times), self._source_since, now)
                            for times in (self._processed_times, self._shown_times))
        self._fps = (processed, shown)
        lat = ""
        if self.last_result is not None:
            total = self.last_result.timings_ms.get("total")
            lat = f" · pipeline {total:.0f} ms" if total is not None else ""
        self.status_fps.setText(f"{processed:.1f} fps processed · {shown:.1f} shown{lat}")
        hist_ita, hist_p = self.stats.histograms_data()
        self.plots.refresh(hist_ita, hist_p)
        self._update_summary()
        for text in self.stats.notices():
            log.info("%s", text)
            self.statusBar().showMessage(text, 15000)
        for text, stopped in self.recorder.notices():
            if stopped:  # stays in the warnings after the message times out: rows are no longer being kept
                self._warn(text)
            else:
                log.info("%s", text)
            self.statusBar().showMessage(text, 15000)
        self._update_rec()
        self._update_providers()

    def _update_rec(self) -> None:
        if self.recorder.active:
            paused = f" (paused: {self.recorder.paused_reason})" if self.recorder.paused_reason else ""
            self.status_rec.setText(f"● REC {self.recorder.rows} rows{paused}")
        else:
            self.status_rec.setText("")
        self.act_record.setChecked(self.recorder.active)  # the recorder stops by itself when the disk refuses a write

    def _update_providers(self) -> None:
        models = [*self.models.active_classifiers(), *([self.models.active_filter()] if self.models.active_filter() else [])]
        self.status_providers.setText(providers_line([(m.name, m.provider) for m in models]))
        self.status_providers.setToolTip("\n".join(f"{m.name}: {m.provider}" for m in models))
        warnings = [*self.models.warning_lines(), *self._warnings]
        if self.last_result is not None:
            warnings = [*self.last_result.warnings, *warnings]
        warnings = list(dict.fromkeys(warnings))
        more = len(warnings) - 1 + self._warnings_dropped
        self.status_warn.setText(f"⚠ {warnings[-1]}" + (f" (+{more})" if more else "") if warnings else "")
        earlier = [f"… and {self._warnings_dropped} earlier warning(s), each in the log"] if self._warnings_dropped else []
        self.status_warn.setToolTip("\n".join([*earlier, *warnings]))

    def _update_summary(self) -> None:
        # The intervals of the faces seen since the last tick (a few ms), whether the table is on screen or not: those
        # of an hour's faces at once, when the tab was raised, froze the window for a second.
        rows = self.stats.summary()
        if self.summary_table.visibleRegion().isEmpty():  # a hidden tab is still isVisible()
            return  # a table resized to its contents: only when looked at
        note, whole = summary_note(self.stats.filter_label)
        if self.summary_note.text() != note:
            self.summary_note.setText(note)
            self.summary_note.setToolTip(whole)
        table = self.summary_table
        # A face's rows are the same objects until it gets a frame (SessionStats.summary): the rows shown last time
        # and still in place (a reset empties the table) are neither formatted nor compared again.
        shown, self._summary_shown = getattr(self, "_summary_shown", [])[:table.rowCount()], rows
        changed = [(i, [f"#{r['track_id']}", str(r["frames"]), _ci(r["delta_ita"], 1), str(r["delta_ita"]["n"]),
                        r["classifier"] or "—", _ci(r["delta_p_female"], 3), str(r["delta_p_female"]["n"])])
                   for i, r in enumerate(rows) if i >= len(shown) or shown[i] is not r]
        if not changed and table.rowCount() == len(rows):
            return
        # Columns sized to their contents measured up to 1,000 rows again at each cell set: 0.1 to 0.4 s a tick with
        # two faces on screen, from 90 faces seen. Measured once for the lot, at the next layout:
        header = table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
        try:
            table.setRowCount(len(rows))
            for i, cells in changed:
                for j, c in enumerate(cells):
                    item = table.item(i, j)
                    if item is None:
                        table.setItem(i, j, QTableWidgetItem(c))
                    elif item.text() != c:
                        item.setText(c)
        finally:
            header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)

    # --- persistence and shutdown ------------------------------------------------------------
    def _restore_window(self) -> None:
        """The last session's window, where it fits its screen; else the first start's size and docks on the screen
        it would be on. Qt refuses a geometry saved on a screen of another size (restoreGeometry is False): a window
        saved on a 1920 px monitor had reopened on a 1366 px one at Qt's default, 2/3 of the screen, its side panel
        clipped."""
        geometry = self.qs.value("geometry")
        saved = isinstance(geometry, QByteArray)
        restored = saved and self.restoreGeometry(geometry)
        # the screen it is restored onto, or was saved on where Qt refused it: the window's own was the primary one
        # until then, and a window closed on the other monitor, checked against it, had reopened on the primary one
        frame = self.frameGeometry() if restored else saved_frame(geometry) if saved else None
        screen = (QGuiApplication.screenAt(frame.center()) if frame is not None else None) or self._screen()
        room = screen.availableGeometry() if screen is not None else None
        kept = restored and (room is None or room.contains(self.frameGeometry()))
        if not kept:
            self.resize(first_start_size(room) if room is not None else FIRST_SIZE)
            if saved and room is not None:
                self.move(room.topLeft())  # one fitted partly (its place kept, its size too big) is on the screen
        state = self.qs.value("window_state")
        if isinstance(state, QByteArray):
            self.restoreState(state)  # which docks are open, and where
        if not kept:
            self._size_docks(room)  # sized before in a window of another size, or saved for another screen

    def shutdown(self) -> None:
        """Stop timers and threads (flags + wait, never terminate) and close the recording."""
        if self._closed:
            return
        self._closed = True
        self.display_timer.stop()
        self.slow_timer.stop()
        if self.opening is not None and self.capture is None:  # a script's run (--max-seconds) ended on nothing
            self.source_problem = f"{self._what(self.opening)}: still opening when the app closed"
        self._note_if_nothing_came()
        self._stop_capture()
        deadline = time.monotonic() + STOP_WAIT_MS / 1000
        for cap in list(self._stopping):
            if not cap.wait(max(0, int((deadline - time.monotonic()) * 1000))):
                log.warning("reading %s has not returned yet; it is left to finish in the background", cap.source.name)
        self.detect.stop()
        if not self.detect.wait(5000):
            log.warning("the detection thread did not stop within 5 s")
        self.inference.stop()
        if not self.inference.wait(10000):
            log.warning("the inference thread did not stop within 10 s")
        if self.recorder.active:  # as the Record button stops it: a recording without rows leaves no empty file
            log.info("%s", self.recorder.finish())
        self._snapshots.shutdown(wait=True)  # a snapshot being written is finished, not cut off
        st.put(self.qs, "geometry", self.saveGeometry())
        st.put(self.qs, "window_state", self.saveState())
        st.put(self.qs, "slideshow_fps", self.slideshow_fps)
        self.qs.sync()

    def closeEvent(self, event) -> None:  # noqa: N802
        self.shutdown()
        super().closeEvent(event)
