"""`python main.py app` (the default command): the live window.

    python main.py                                  the camera last opened (camera 0 at first)
    python main.py app --source faces/              an image folder as a slideshow
    python main.py app --source clip.mp4 --classifier a.onnx --classifier b.onnx --filter f.onnx
"""
from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Callable, Iterator

from inference.arg_checks import (check_output_file, check_paths_apart, check_source, float_at_least, lies_in,
                                  model_inputs, non_negative_float, positive_float, resolved)
from inference.cli_common import (add_model_arguments, checked_cam_class, checked_condition, detector_from_args,
                                  runtime_from_args)
from inference.errors import BiasMirrorError
from inference.writing import written_in_place

from .log_file import IN_THE_LOG, default_log_path, log_file, where_details_are

log = logging.getLogger(__name__)
SCREENSHOT_AFTER = 10.0  # seconds, where --screenshot-after is not given
QT_TIMER_MAX_MS = 2**31 - 1  # Qt's timers take a signed 32-bit count of milliseconds: 24.8 days
DISABLED_TEXT = "#8a8a8a"  # the dark palette's text of a disabled control


def slideshow_fps(text: str) -> float:
    """--slideshow-fps, no slower than a slideshow is paced: a lower one (1e-9) was raised to it without a word."""
    from .workers import MIN_SLIDESHOW_FPS  # PySide6: imported only when the option is given

    return float_at_least(MIN_SLIDESHOW_FPS)(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help="camera index, video file, image folder or image (default: the camera last "
                   "opened in the app, or camera 0 where it is not there)")
    p.add_argument("--slideshow-fps", type=slideshow_fps, default=2.0, help="images per second for a folder (default 2)")
    p.add_argument("--loop", action="store_true", help="repeat an image folder, an image or a video forever")
    p.add_argument("--max-seconds", type=positive_float, help="quit by itself after this many seconds (screenshots, tests)")
    p.add_argument("--screenshot", metavar="PATH", help="save a PNG of the window (after --screenshot-after seconds; "
                   "another format by the name's suffix, e.g. .jpg)")
    p.add_argument("--screenshot-after", type=non_negative_float, default=None,
                   help=f"seconds before --screenshot is taken (default {SCREENSHOT_AFTER:g})")
    p.add_argument("--log", metavar="PATH", help="keep the app's log here (default: bias-mirror.log in the platform's "
                   "folder for the app's data, named below)")
    p.add_argument("--health", metavar="PATH",
                   help="on quitting, write GUI-thread stalls and memory over the session to this JSON (soak runs)")
    add_model_arguments(p)
    p.formatter_class = LocationsHelpFormatter
    p.epilog = EPILOG


# unwrapped (LocationsHelpFormatter), so that no path is cut at a hyphen or a space ("Application Support")
EPILOG = """The app starts with the last session's camera, models, view and CAM class where
none is given here (its settings; BIASMIRROR_SETTINGS names another file): the
defaults above are a first start's. Where this system keeps them, and the log:
  settings  {settings}
  log       {log} (or --log)
Recordings (CSV) and snapshots (PNG + JSON) are saved in
  {output}
unless File > Output folder… picked another, kept in the settings{chosen}."""


class LocationsHelpFormatter(argparse.RawDescriptionHelpFormatter):
    """--help with the places this system keeps the settings and the log in, looked up only when help is printed:
    Qt names them (a file on Linux, a plist on macOS, the registry on Windows), and importing it for every start
    would slow the command line's; the help had named Linux's alone."""

    def add_text(self, text: str | None) -> None:
        super().add_text(text.format(**storage_locations()) if text == EPILOG else text)


def storage_locations() -> dict[str, str]:
    """Where the app keeps its settings (a file, or a registry key), its log and, unless the user picked another
    folder, its recordings and snapshots, as Qt names them for the app's names, set for the look-up and then put
    back. The folder of recordings had been named nowhere but in a status message a narrow screen cut off."""
    from PySide6.QtCore import QCoreApplication

    from .settings import APP, ORG, default_output_dir, make_settings

    names = QCoreApplication.organizationName(), QCoreApplication.applicationName()
    QCoreApplication.setOrganizationName(ORG)
    QCoreApplication.setApplicationName(APP)
    try:
        settings, default = make_settings(), str(default_output_dir())
        picked = str(settings.value("output_dir", default) or default)
        return {"settings": settings.fileName(), "log": str(default_log_path()), "output": default,
                "chosen": "" if picked == default else f" (now {picked})"}
    finally:
        QCoreApplication.setOrganizationName(names[0])
        QCoreApplication.setApplicationName(names[1])


def app_runtime(args: argparse.Namespace):
    """The command line's runtime, ORT's own output left on the console: the app's workers print while models load
    (a classifier added from a file, the device chain), and capturing fd 2 then took their lines too. Why a GPU
    provider did not start comes instead from one captured probe (``gpu_failures``); make it once, before the window."""
    from dataclasses import replace

    runtime = replace(runtime_from_args(args), capture_ort_output=False)
    return replace(runtime, provider_failures=gpu_failures(runtime))


def gpu_failures(runtime) -> tuple[tuple[str, str], ...]:
    """Why each GPU provider ``runtime`` asks for did not start here, as (provider, reason): one session on doctor's
    tiny Conv model, ORT's output captured while it is made. Without it the app's warnings said "CUDA could not
    start" and no more. Made before the window, whose workers print, so the capture takes no one else's lines."""
    if runtime.provider == "cpu":
        return ()
    from dataclasses import replace

    from inference.gpu import probe_model
    from inference.runtime import create_session, fallbacks_collected

    try:
        with fallbacks_collected():  # the probe's warning is no model's: to the debug log only
            probe = create_session(probe_model(), replace(runtime, capture_ort_output=True, threads=1))
    except Exception as exc:  # noqa: BLE001 - the reasons only add words to warnings: the models say their own errors
        log.debug("the GPU provider probe failed: %s", exc)
        return ()
    return tuple(probe.reasons.items())


def load_models(args: argparse.Namespace, runtime=None):
    """(classifiers, filters, load errors, filter chosen on the command line or False). Never raises for a bad default.
    ``runtime``: ``app_runtime(args)``, made here where not given."""
    from inference.defaults import MODELS_DIR, load_classifiers, load_folder
    from inference.models import load_model, loaded_from, name_uniquely

    runtime = app_runtime(args) if runtime is None else runtime
    found = load_folder(MODELS_DIR, runtime)
    classifiers, filters, errors = found.classifiers, found.filters, list(found.errors)
    if args.classifier:  # explicit classifiers replace the defaults; a bad one is a command-line error
        classifiers = load_classifiers(args.classifier, runtime)
    chosen = False
    if args.no_filter:
        chosen = None
    elif args.filter:  # joins the default filters in the window's list, so it needs a name none of them has
        chosen = loaded_from(filters, args.filter) or name_uniquely(
            [load_model(args.filter, "filter", runtime)], [f.name for f in filters])[0]
    return classifiers, filters, errors, chosen


def main(args: argparse.Namespace) -> int:
    from inference.defaults import check_filter_choice

    check_source(args.source)
    check_filter_choice(args.filter, args.no_filter)
    if getattr(args, "screenshot_after", None) is not None and args.screenshot is None:  # it was ignored
        raise BiasMirrorError("--screenshot-after without --screenshot: it would not be used; leave it out or give "
                              "--screenshot PATH")
    outputs = (("health", "--health"), ("screenshot", "--screenshot"), ("log", "--log"))
    for dest, option in outputs:
        if getattr(args, dest) is not None:  # checked before the window opens: a session's health is written at its end
            # kept as checked ("~/shot.png" expanded): a folder named "~" had been made in the current one
            in_place = written_in_place if dest != "log" else None  # --health /dev/stdout: no folder made in /dev
            setattr(args, dest, str(check_output_file(getattr(args, dest), option, args.source, in_place)))
    # every default model: the app loads the whole folder whatever it is given (its menus offer them all)
    check_paths_apart([(option, getattr(args, dest)) for dest, option in outputs], model_inputs(args, all_defaults=True))
    refuse_making_the_source(args.source, [(option, getattr(args, dest)) for dest, option in outputs])
    if args.screenshot is not None:
        screenshot_format(args.screenshot)
    check_display()
    from PySide6.QtWidgets import QApplication

    from .gui_thread_gc import garbage_collected_on_gui_thread

    clear_opencv_qt_paths()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("BiasMirror")
    app.setApplicationName("BiasMirror")
    app.setStyle("Fusion")
    _dark(app)
    with contextlib.ExitStack() as cleanup:
        cleanup.enter_context(garbage_collected_on_gui_thread())
        log_path = cleanup.enter_context(log_file(Path(args.log) if args.log is not None else default_log_path()))
        signals = cleanup.enter_context(closing_on_signals())
        return _run(app, args, log_path, signals)


def refuse_making_the_source(source: str | None, outputs: list[tuple[str, str | None]]) -> None:
    """An output inside a --source that does not exist is refused: its folders, made before the source was opened,
    made the source an empty folder (`--source x --log x/sub/app.log`), and the app said "no images found" where
    `run` says the source does not exist."""
    from inference.sources import camera_index

    if source is None or camera_index(source) is not None:  # none given: a camera
        return
    where = resolved(source, "--source")
    if where.exists():
        return
    for option, path in outputs:
        if path is not None and lies_in(resolved(path, option), where):
            raise BiasMirrorError(f"the source does not exist (give a camera index, a video file, an image folder or "
                                  f"an image), and {option} lies in it: writing it would make it a folder", source)


def screenshot_format(path: str) -> str | None:
    """The format to save --screenshot in: PNG for a name without a suffix (the help promises a PNG), else None (Qt
    takes the suffix's). A suffix Qt cannot write is refused before the session: "shot" and "shot.txt" failed only
    after it, with "the image could not be written"."""
    from PySide6.QtGui import QImageWriter

    suffix = Path(path).suffix.lower().lstrip(".")
    if not suffix:
        return "PNG"
    formats = sorted(bytes(f.data()).decode() for f in QImageWriter.supportedImageFormats())
    if suffix not in formats:
        raise BiasMirrorError(f"--screenshot: a .{suffix} image cannot be written; end the name in .png (or one of "
                              f"{', '.join('.' + f for f in formats)})", path)
    return None


def call_after(seconds: float, slot: Callable[[], object]) -> None:
    """``slot`` once ``seconds`` have passed, however many: Qt's timers take int32 milliseconds, and `--max-seconds
    1e9` raised OverflowError there and aborted the app (status 134); a longer wait is chained in steps Qt takes."""
    from PySide6.QtCore import QTimer

    if seconds * 1000 <= QT_TIMER_MAX_MS:
        QTimer.singleShot(int(seconds * 1000), slot)
    else:
        QTimer.singleShot(QT_TIMER_MAX_MS, lambda: call_after(seconds - QT_TIMER_MAX_MS / 1000, slot))


def _run(app, args: argparse.Namespace, log_path: Path | None, signals: ClosingOnSignals) -> int:
    from PySide6.QtCore import QTimer

    from inference.defaults import MODELS_DIR

    from .main_window import MainWindow

    runtime = app_runtime(args)  # its GPU probe before the window's workers start
    classifiers, filters, errors, chosen = load_models(args, runtime)
    checked_cam_class(args, classifiers)  # a --cam-class a classifier lacks is refused; none given: the app's saved one
    if chosen is not False:  # --filter or --no-filter: the filter the window opens with is known here
        checked_condition(args, chosen)
    window = MainWindow(args.source, classifiers, filters, errors, runtime, detector_from_args(args, runtime),
                        slideshow_fps=args.slideshow_fps, loop=args.loop, models_dir=MODELS_DIR,
                        cam_class=args.cam_class, filter_override=chosen,
                        classifiers_chosen=bool(args.classifier), log_path=log_path, filter_condition=args.condition)
    _install_excepthook(window)
    if args.source is None:
        window.open_last_camera()
    window.show()
    failed: list[str] = []
    if args.screenshot:
        after = SCREENSHOT_AFTER if args.screenshot_after is None else args.screenshot_after
        image_format = screenshot_format(args.screenshot)
        if args.max_seconds:
            after = min(after, max(0.5, args.max_seconds - 1.0))

        def shoot() -> None:
            path = Path(args.screenshot)
            try:
                save_screenshot(window.grab(), path, image_format)
            except BiasMirrorError as exc:
                failed.append(str(exc))
            except OSError as exc:
                failed.append(f"{exc.filename}: {exc.strerror or exc}")
            else:
                print(f"screenshot saved to {path}", flush=True)  # a script may wait on this line
                return
            print(f"error: {failed[-1]}", file=sys.stderr)

        call_after(after, shoot)
    monitor = watch_health(window) if args.health else None
    if args.max_seconds:
        call_after(args.max_seconds, window.close)
    app.aboutToQuit.connect(window.shutdown)
    signals.window = window
    wake = QTimer(window)  # Python runs a signal handler only when the main thread runs Python: wake it
    wake.timeout.connect(lambda: None)
    wake.start(200)
    code = int(app.exec())
    if monitor is not None:  # after the loop, not in a slot, so that a failure to write it is the exit status
        write_health(monitor, window, args.health)
    if signals.received:
        return 128 + signals.received[0]  # the shell's convention for a command a signal ended (130 after Ctrl-C)
    if (problem := source_problem(window, args)) is not None:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    return 2 if failed and not code else code


def save_screenshot(picture, path: Path, image_format: str | None) -> None:
    """--screenshot's ``picture`` (the window grabbed) saved to ``path``, its folder made where missing; whole or not
    at all: written onto its name, a disk that refused it part way (`ulimit -f 20`) left a cut-off PNG there. A
    refused write is a BiasMirrorError naming ``path``."""
    from .recording import write_image

    path.parent.mkdir(parents=True, exist_ok=True)
    write_image(picture, path, "the screenshot", image_format)


def source_problem(window, args: argparse.Namespace) -> str | None:
    """Why the source gave nothing to see, for a session a script ran (--max-seconds, --screenshot, --health):
    it waited out the time on a window showing the error, then got status 0, where `run` refuses the same
    source with 2. Someone at the window reads the error there, so their session's status stays as it was."""
    scripted = bool(args.max_seconds or args.screenshot or args.health)
    return window.source_problem if scripted else None


def check_display() -> None:
    """On Linux without a display, Qt's default platform (xcb) prints its plugin list and aborts the process
    (SIGABRT) inside QApplication, where nothing can catch it; so the missing display is named first."""
    if not sys.platform.startswith("linux") or os.environ.get("QT_QPA_PLATFORM"):
        return
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        raise BiasMirrorError("no display to open the window on (neither DISPLAY nor WAYLAND_DISPLAY is set): run it "
                              "in a desktop session (or over ssh -X), or set QT_QPA_PLATFORM=offscreen to run it unseen")
    if os.environ.get("WAYLAND_DISPLAY") and os.environ.get("XDG_SESSION_TYPE") == "wayland":
        return  # Qt takes its wayland plugin
    if not os.environ.get("DISPLAY"):  # Qt takes xcb outside a Wayland session, and aborted with no X display
        raise BiasMirrorError("WAYLAND_DISPLAY is set but this is no Wayland session (XDG_SESSION_TYPE is not "
                              "wayland), so Qt would open the window on X, and DISPLAY is not set: set "
                              "QT_QPA_PLATFORM=wayland to use Wayland, or QT_QPA_PLATFORM=offscreen to run it unseen")
    missing = xcb_plugin_problem()  # X11: the xcb plugin, whose system libraries pip does not install
    if missing:
        raise BiasMirrorError(f"Qt cannot open a window on this X display (DISPLAY={os.environ['DISPLAY']}): its xcb "
                              f"platform plugin needs a system library that is not installed ({missing}). On Debian "
                              f"or Ubuntu: sudo apt install {' '.join(XCB_PACKAGES)}; or set QT_QPA_PLATFORM=offscreen "
                              "to run it unseen")


# What Qt 6's xcb plugin needs beyond the wheel (Debian/Ubuntu names); a desktop install has them, a server or a
# container often has not, and then Qt aborted the app (status 134) naming only libxcb-cursor0, which may be there.
XCB_PACKAGES = ("libxcb-cursor0", "libxcb-icccm4", "libxcb-keysyms1", "libxcb-image0", "libxcb-render-util0",
                "libxcb-xkb1", "libxkbcommon-x11-0", "libxcb-shape0", "libxcb-randr0", "libxcb-xinerama0")


def xcb_plugin_problem() -> str | None:
    """Why Qt's xcb platform plugin cannot be loaded (the loader's words: the first library missing), or None where
    it can or is not where PySide6 keeps it. Loading it here is what Qt does next, where a failure cannot be caught."""
    import ctypes

    from PySide6.QtCore import QLibraryInfo

    plugin = Path(QLibraryInfo.path(QLibraryInfo.LibraryPath.PluginsPath)) / "platforms" / "libqxcb.so"
    if not plugin.is_file():
        return None
    try:
        ctypes.CDLL(str(plugin))
    except OSError as exc:
        return str(exc).replace(f"{plugin}: ", "")
    return None


class ClosingOnSignals:
    """Ctrl-C and SIGTERM (timeout, kill, a logout) close the window as Quit does: workers stopped, settings saved,
    --health written; ``received`` lists the signals that came.

    Python runs a signal handler only between bytecodes of the main thread, which sits in Qt's C++ event loop:
    a timer that calls into Python a few times a second gives it the chance. A second signal is not caught: it
    ends a shutdown that hangs. A signal ignored when the app started (nohup, a background job) stays ignored.
    Before the window exists a signal ends the start-up at once.
    """

    def __init__(self, caught: list[int]):
        self.caught, self.received, self.window = caught, [], None

    def handle(self, signum, frame) -> None:
        self.received.append(signum)
        for sig in self.caught:
            signal.signal(sig, signal.SIG_DFL)
        if self.window is None:
            raise SystemExit(128 + signum)
        self.window.close()


@contextlib.contextmanager
def closing_on_signals() -> Iterator[ClosingOnSignals]:
    """``ClosingOnSignals`` for the time inside; the handlers before it are put back on leaving."""
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    closing = ClosingOnSignals([sig for sig, handler in previous.items() if handler is not signal.SIG_IGN])
    for sig in closing.caught:
        signal.signal(sig, closing.handle)
    try:
        yield closing
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def watch_health(window):
    from .health import HealthMonitor

    monitor = HealthMonitor(parent=window)
    monitor.start()
    return monitor


def write_health(monitor, window, path: str) -> None:
    """An OSError naming the file goes up to main.py, which prints it in one line and exits with status 2."""
    from .health import write_report

    report = monitor.report(window.inference.frames_done, window.results_shown)
    write_report(report, path)
    print(f"health: {report.line()} (written to {path})", flush=True)


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
            window.statusBar().showMessage(where_details_are(
                f"unexpected error: {kind.__name__}: {str(value)[:120]} {IN_THE_LOG}", window.log_path), 15000)
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
    # A disabled control's text had the enabled one's colour (the palette set every group alike): a greyed "Card"
    # read as one to click. Dimmer, and still readable: 4.5:1 on the window, 4.0:1 on a button (12.5:1 enabled).
    for role in (QPalette.ColorRole.WindowText, QPalette.ColorRole.Text, QPalette.ColorRole.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor(DISABLED_TEXT))
    app.setPalette(pal)
