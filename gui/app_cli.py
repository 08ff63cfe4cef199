"""`python main.py app` (the default command): the live window.

    python main.py                                  camera 0
    python main.py app --source faces/              an image folder as a slideshow
    python main.py app --source clip.mp4 --classifier a.onnx --classifier b.onnx --filter f.onnx
"""
from __future__ import annotations

import argparse
import logging
import os
import sys

from inference.arg_checks import check_output_file, check_source, non_negative_float, positive_float
from inference.cli_common import add_model_arguments, detector_from_args, runtime_from_args

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", default="0", help="camera index, video file, image folder or image (default: camera 0)")
    p.add_argument("--slideshow-fps", type=positive_float, default=2.0, help="images per second for a folder (default 2)")
    p.add_argument("--loop", action="store_true", help="repeat an image folder or image forever")
    p.add_argument("--max-seconds", type=positive_float, help="quit by itself after this many seconds (screenshots, tests)")
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window (after --screenshot-after seconds)")
    p.add_argument("--screenshot-after", type=non_negative_float, default=10.0, help="seconds before --screenshot is taken (default 10)")
    p.add_argument("--health", metavar="PATH",
                   help="on quitting, write GUI-thread stalls and memory over the session to this JSON (soak runs)")
    add_model_arguments(p)


def load_models(args: argparse.Namespace):
    """(classifiers, filters, load errors, filter chosen on the command line or False). Never raises for a bad default."""
    from inference.defaults import MODELS_DIR, load_folder
    from inference.models import load_model

    runtime = runtime_from_args(args)
    found = load_folder(MODELS_DIR, runtime)
    classifiers, filters, errors = found.classifiers, found.filters, list(found.errors)
    if args.classifier:  # explicit classifiers replace the defaults; a bad one is a command-line error
        classifiers = [load_model(p, "classifier", runtime) for p in args.classifier]
    chosen = False
    if args.no_filter:
        chosen = None
    elif args.filter:
        chosen = load_model(args.filter, "filter", runtime)
    return classifiers, filters, errors, chosen


def main(args: argparse.Namespace) -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from inference.defaults import MODELS_DIR

    from .main_window import MainWindow

    check_source(args.source)
    for path, option in ((args.health, "--health"), (args.screenshot, "--screenshot")):
        if path:  # checked before the window opens: a session's health is written only when it ends
            check_output_file(path, option)
    clear_opencv_qt_paths()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("BiasMirror")
    app.setApplicationName("BiasMirror")
    app.setStyle("Fusion")
    _dark(app)
    classifiers, filters, errors, chosen = load_models(args)
    window = MainWindow(args.source, classifiers, filters, errors, runtime_from_args(args), detector_from_args(args),
                        slideshow_fps=args.slideshow_fps, loop=args.loop, models_dir=MODELS_DIR,
                        cam_class=args.cam_class if args.cam_class != "female" else None, filter_override=chosen)
    _install_excepthook(window)
    window.show()
    if args.screenshot:
        after = args.screenshot_after
        if args.max_seconds:
            after = min(after, max(0.5, args.max_seconds - 1.0))

        def shoot() -> None:
            if window.grab().save(args.screenshot):
                print(f"screenshot saved to {args.screenshot}")
            else:
                print(f"error: could not write {args.screenshot}", file=sys.stderr)

        QTimer.singleShot(int(after * 1000), shoot)
    if args.health:
        watch_health(app, window, args.health)
    if args.max_seconds:
        QTimer.singleShot(int(args.max_seconds * 1000), window.close)
    app.aboutToQuit.connect(window.shutdown)
    return int(app.exec())


def watch_health(app, window, path: str) -> None:
    from .health import HealthMonitor, write_report

    monitor = HealthMonitor(parent=window)

    def write() -> None:
        report = monitor.report(window.inference.frames_done, window.results_shown)
        write_report(report, path)
        print(f"health: {report.line()} (written to {path})")

    app.aboutToQuit.connect(write)
    monitor.start()


def clear_opencv_qt_paths() -> None:
    """opencv-python (the GUI build) points QT_QPA_PLATFORM_PLUGIN_PATH and QT_QPA_FONTDIR at its own Qt on
    import; PySide6 would then load cv2's platform plugins and fail ("Could not load the Qt platform plugin
    xcb"). Drop those two variables when they point inside cv2 so PySide6 uses its own."""
    for var in ("QT_QPA_PLATFORM_PLUGIN_PATH", "QT_QPA_FONTDIR"):
        value = os.environ.get(var, "")
        if value and f"{os.sep}cv2{os.sep}" in value:
            del os.environ[var]


def _install_excepthook(window) -> None:
    """An unexpected error in a slot is logged with its traceback; the window shows one short line."""
    previous = sys.excepthook

    def hook(kind, value, tb):
        if issubclass(kind, KeyboardInterrupt):
            return previous(kind, value, tb)
        log.error("unexpected error", exc_info=(kind, value, tb))
        try:
            window.statusBar().showMessage(f"unexpected error: {kind.__name__}: {str(value)[:120]} (details in the log)", 15000)
        except RuntimeError:
            pass

    sys.excepthook = hook


def _dark(app) -> None:
    from PySide6.QtGui import QColor, QPalette

    pal = QPalette()
    for role, colour in ((QPalette.ColorRole.Window, "#232329"), (QPalette.ColorRole.WindowText, "#e6e6e6"),
                         (QPalette.ColorRole.Base, "#1b1b20"), (QPalette.ColorRole.AlternateBase, "#26262c"),
                         (QPalette.ColorRole.Text, "#e6e6e6"), (QPalette.ColorRole.Button, "#2d2d34"),
                         (QPalette.ColorRole.ButtonText, "#e6e6e6"), (QPalette.ColorRole.Highlight, "#3d7bd9"),
                         (QPalette.ColorRole.HighlightedText, "#ffffff"), (QPalette.ColorRole.ToolTipBase, "#2d2d34"),
                         (QPalette.ColorRole.ToolTipText, "#e6e6e6")):
        pal.setColor(role, QColor(colour))
    app.setPalette(pal)
