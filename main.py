"""Bias Mirror: the one entry point.

    python main.py                 open the app
    python main.py train ...       train models (classifier, cyclegan, evaluate)
    python main.py audit ...       audit models over a dataset
    python main.py run ...         headless: a source → per-face CSV rows
    python main.py bench ...       measure speed against the eager baseline
    python main.py bench train ... training throughput per precision and memory format
    python main.py bench detect .. face detectors: time, and the share of each group's faces found
    python main.py doctor          what this machine can run
    python main.py doctor train    ... and train with (torch, GPUs, precision, --compile)

Installed with pip, the same commands are `bias-mirror …` (script_main). Subcommand modules are imported lazily so
that start-up and --help stay fast.
"""
from __future__ import annotations

import argparse
import contextvars
import difflib
import importlib
import logging
import os
import signal
import sys
import threading
import traceback

# (command, module with add_arguments/main, help); "train" has its own subcommands.
COMMANDS = [
    ("app", "gui.app_cli", "open the live app (the default)"),
    ("run", "inference.run_cli", "process a source headlessly and stream per-face rows to CSV"),
    ("audit", "inference.audit.cli", "audit classifiers and a filter over a dataset; write a report"),
    ("bench", "training.bench_cli", "benchmark providers and face counts against a PyTorch-eager baseline"),
    ("doctor", "inference.doctor", "show ONNX Runtime providers, GPUs, models and cameras"),
]
BENCH_COMMANDS = [
    ("train", "training.bench_train", "training throughput of the real trainers per precision and memory format"),
    ("detect", "inference.bench_detect", "face detectors: time per frame, and the share of each group's faces found"),
]
DOCTOR_COMMANDS = [
    ("train", "training.doctor", "what this machine can train with: torch, GPUs, precision, --compile modes"),
]
NESTED = {"bench": BENCH_COMMANDS, "doctor": DOCTOR_COMMANDS}  # commands that run alone or take a WHAT
# The commands that train in several processes under torchrun; any other did the whole job once per process (its
# tables printed N times, its files written by N processes at once), and is refused there.
TORCHRUN_COMMANDS = {"training.tasks.classifier", "training.tasks.compare", "training.tasks.cyclegan"}
TRAIN_COMMANDS = [
    ("classifier", "training.tasks.classifier", "train a CAM gender classifier and export it to ONNX"),
    ("compare", "training.tasks.compare", "train balanced and unbalanced classifiers and compare them"),
    ("evaluate", "training.evaluate", "per-group accuracy/FPR/FNR of ONNX classifiers on a dataset"),
    ("cyclegan", "training.tasks.cyclegan", "train a CycleGAN face filter and export it to ONNX"),
    ("fp16", "training.fp16", "make an fp16 variant of an ONNX model, written only if it keeps parity"),
    ("adopt", "training.adopt", "give an ONNX filter or classifier made elsewhere a card, so the app and audit can run it"),
]
# The module that adds a command's arguments, where it is not the one that runs it: these run modules load PyTorch
# (seconds), and --help or a refused option needs none of it.
ARGUMENT_MODULES = {
    "training.tasks.classifier": "training.tasks.classifier_args",
    "training.tasks.compare": "training.tasks.compare_args",
    "training.tasks.cyclegan": "training.tasks.cyclegan_args",
    "training.bench_train": "training.tasks.bench_train_args",
    "training.doctor": "training.tasks.doctor_train_args",
}


def _add_lazy(sub, name: str, module: str, help_text: str) -> None:
    p = sub.add_parser(name, help=help_text, description=help_text)
    p.set_defaults(_module=module, _parser=p)


# The name usage lines and hints give Bias Mirror during one main() call: main.py, or the console script's own
# (script_main). A context, not an argument, so that build_parser(argv) reads it wherever it is called from.
PROG: contextvars.ContextVar[str] = contextvars.ContextVar("PROG", default="main.py")


def program(prog: str) -> str:
    """What a user types to start Bias Mirror as this process was started (``prog``: main.py, or the console
    script's name): `python main.py` in a checkout, `bias-mirror` once pip installed it, where no main.py is at hand."""
    return f"python {prog}" if prog.endswith(".py") else prog


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG.get(),
                                     description="Bias Mirror: how face models treat different people.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug details")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, module, help_text in COMMANDS:
        _add_lazy(sub, name, module, help_text)
    train = sub.add_parser("train", help="train models", description="train models")
    tsub = train.add_subparsers(dest="train_command", metavar="WHAT", required=True)
    for name, module, help_text in TRAIN_COMMANDS:
        _add_lazy(tsub, name, module, help_text)
    for command, nested in NESTED.items():  # optional: plain `bench` and `doctor` run on their own
        nsub = _subparser(parser, command).add_subparsers(dest=f"{command}_command", metavar="WHAT")
        for name, module, help_text in nested:
            _add_lazy(nsub, name, module, help_text)
    # Only the chosen subcommand's module (or its ARGUMENT_MODULES one) is imported, to add its arguments.
    chosen = _chosen_module(argv)
    if chosen is not None:
        module_name, parser_path = chosen
        p = parser
        for part in parser_path:
            p = _subparser(p, part)
        importlib.import_module(ARGUMENT_MODULES.get(module_name, module_name)).add_arguments(p)
    return parser


def given_options(parser: argparse.ArgumentParser, command: argparse.ArgumentParser, argv: list[str]) -> set[str]:
    """The options of ``command`` (a subcommand's parser) that ``argv`` gives explicitly, whatever their value:
    argv parsed again with the command's defaults suppressed (abbreviations and --opt=value count as given)."""
    defaults = {action: action.default for action in command._actions}
    try:
        for action in defaults:
            action.default = argparse.SUPPRESS
        given, _ = parser.parse_known_args(argv)
    finally:
        for action, default in defaults.items():
            action.default = default
    return {dest for dest in vars(given) if dest in {a.dest for a in defaults}}


def _subparser(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and name in action.choices:
            return action.choices[name]
    raise KeyError(name)


def _chosen_module(argv: list[str]) -> tuple[str, list[str]] | None:
    words = [a for a in argv if not a.startswith("-")]
    if not words:
        return None
    if words[0] in NESTED:
        after = argv[argv.index(words[0]) + 1 : argv.index(words[0]) + 2]  # the very next word names the WHAT
        for name, module, _ in NESTED[words[0]]:
            if after == [name]:
                return module, [words[0], name]
    if words[0] == "train" and len(words) > 1:
        for name, module, _ in TRAIN_COMMANDS:
            if words[1] == name:
                return module, ["train", name]
    for name, module, _ in COMMANDS:
        if words[0] == name:
            return module, [name]
    return None


def nested_command_problem(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """Why argv cannot run, where a WHAT of bench or doctor comes after its options (`doctor --no-gpu-probe train`):
    argparse then took it for the WHAT without that command's own options, and it ran with them missing, to a
    traceback. None where the WHAT, if any, follows its command at once. A misspelled option, of these commands as of
    any other, is unknown_option_problem's."""
    words = [a for a in argv if not a.startswith("-")]
    if not words or words[0] not in NESTED:
        return None
    command, start = words[0], argv.index(words[0])
    names = {name for name, _, _ in NESTED[command]}
    if argv[start + 1 : start + 2] and argv[start + 1] in names:
        return None  # in its place; a later "train" is a value (`bench train --json train`)
    if argv[start + 1 : start + 2] and not argv[start + 1].startswith("-"):
        # a bare word right after the command can only be its WHAT: misspelled (`bench detetc --per-group 5`), it had
        # been reported as "unrecognized option --per-group", the plain command's, not as the typo it is
        close = difflib.get_close_matches(argv[start + 1], sorted(names), n=1)
        return (f"unknown {command} command '{argv[start + 1]}'" + (f" (did you mean '{close[0]}'?)" if close else "")
                + f": {parser.prog} {command} runs alone or as {' or '.join(f'{command} {n}' for n in sorted(names))}")
    takes_value = {s for a in _subparser(parser, command)._actions if a.nargs != 0 for s in a.option_strings}

    def is_value_of(option: str) -> bool:  # as argparse reads it, abbreviations too (--sou for --source)
        return "=" not in option and (option in takes_value or (
            option.startswith("--") and len(option) > 2 and any(s.startswith(option) for s in takes_value)))

    for i in range(start + 2, len(argv)):
        if argv[i] in names and not is_value_of(argv[i - 1]):
            return (f"put '{argv[i]}' right after '{command}' ({parser.prog} {command} {argv[i]} …): the options "
                    f"before it are plain `{command}`'s, not its own")
    return None


def _command_parser(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[argparse.ArgumentParser, list[str], int] | None:
    """The parser of the command argv runs (a subcommand's, as _chosen_module finds it), its words (["train",
    "classifier"]) and the index in argv of the last of them; None where argv names no command argparse knows."""
    chosen = _chosen_module(argv)
    if chosen is None:
        return None
    p, end = parser, -1
    for part in chosen[1]:
        p, end = _subparser(p, part), argv.index(part, end + 1)
    return p, chosen[1], end


# Options that name one thing under two commands' spellings (audit --classifier, train evaluate --model; bench
# detect/train --data, the others --dataset): a script written for one command gave the other's and heard no hint.
SAME_THING = {"--classifier": "--model", "--model": "--classifier", "--data": "--dataset", "--dataset": "--data"}


def unknown_option_problem(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    """'unrecognized option --datset (did you mean --dataset? …)' for the first option after the command that its
    parser does not know (nor as an abbreviation, as argparse reads one), or None. argparse says "the following
    arguments are required: --dataset" before it reports unknown ones, so `audit --datset X` never heard of its
    typo; and plain bench and doctor took a misspelled option's value for their WHAT ("argument WHAT: invalid
    choice: '/tmp'" for `bench --soruce /tmp`)."""
    found = _command_parser(parser, argv)
    if found is None:
        return None
    command, words, end = found
    after = argv[end + 1:]
    if "--" in after:
        after = after[:after.index("--")]  # positional values from here on
    if "-h" in after or "--help" in after:
        return None  # argparse prints the help before it would refuse anything
    known = [s for a in command._actions for s in a.option_strings if s.startswith("--")]
    own_short = {s for a in command._actions for s in a.option_strings if not s.startswith("--")}
    for option in after:  # `run -v …`: argparse had answered with the top-level usage and "unrecognized arguments"
        if (len(option) == 2 and option.startswith("-") and option not in own_short
                and any(option in a.option_strings for a in parser._actions)):
            return f"{option} is {parser.prog}'s own option: give it before the command ({parser.prog} {option} {words[0]} …)"
    for option in (a.partition("=")[0] for a in after if a.startswith("--") and len(a) > 2):
        if not any(s.startswith(option) for s in known):
            if any(s.startswith(option) for a in parser._actions for s in a.option_strings if s.startswith("--")):
                return (f"{option} is {parser.prog}'s own option: give it before the command ({parser.prog} {option} "
                        f"{words[0]} …)")
            # compared without the dashes every option shares, which had made --bogus "close" to --out
            close = difflib.get_close_matches(option[2:], [s[2:] for s in known], n=1)
            if not close and SAME_THING.get(option) in known:  # one concept, two commands' names: no spelling is close
                close = [SAME_THING[option][2:]]
            return (f"unrecognized option {option} (" + (f"did you mean --{close[0]}? " if close else "")
                    + f"{parser.prog} {' '.join(words)} --help lists them)")
    return None


def unknown_command_problem(argv: list[str]) -> str | None:
    """"unknown command 'trian' (did you mean 'train'?) — commands: …" where the first word after the global flags
    is no command; None otherwise. The app takes no bare word (its arguments are all options), so such a word was
    handed to the app (_default_to_app), which refused it as "unrecognized arguments" without naming a command."""
    i = 0
    while i < len(argv) and argv[i] in ("-v", "--verbose"):
        i += 1
    names = [*(name for name, _, _ in COMMANDS), "train"]
    if i >= len(argv) or argv[i].startswith("-") or argv[i] in names:
        return None
    close = difflib.get_close_matches(argv[i], names, n=1)
    return (f"unknown command '{argv[i]}'" + (f" (did you mean '{close[0]}'?)" if close else "")
            + f" — commands: {', '.join(names)}")


def torchrun_problem(args: argparse.Namespace, env: dict[str, str] | None = None) -> str | None:
    """Why this command cannot run under torchrun (WORLD_SIZE above 1), or None: only the trainers use several
    processes."""
    env = os.environ if env is None else env
    world = int(env.get("WORLD_SIZE", "1") or 1)
    if world <= 1 or getattr(args, "_module", None) in TORCHRUN_COMMANDS:
        return None
    words = [w for w in (args.command, getattr(args, "train_command", None), getattr(args, "bench_command", None),
                         getattr(args, "doctor_command", None)) if w]
    what = " ".join(words)
    return (f"`{what}` does not use several processes (torchrun started {world}): run it once, with "
            f"`{getattr(args, '_program', 'python main.py')} {what} …`; under torchrun only train classifier, train "
            "compare and train cyclegan run")


def _default_to_app(argv: list[str]) -> list[str]:
    """No command given (``main.py``, ``main.py --source x``): the app. Global flags stay in front."""
    i = 0
    while i < len(argv) and argv[i] in ("-v", "--verbose"):
        i += 1
    commands = {name for name, _, _ in COMMANDS} | {"train"}
    if i < len(argv) and (argv[i] in commands or argv[i] in ("-h", "--help")):
        return argv
    return [*argv[:i], "app", *argv[i:]]


# What to install for a third-party module a command could not import.
# as pyproject.toml names them: opencv-python-headless beside the declared opencv-python is a known conflict
PACKAGES = {"cv2": "opencv-python", "onnxruntime": "onnxruntime-gpu", "onnx": "onnx", "numpy": "numpy",
            "skimage": "scikit-image", "scipy": "scipy", "PySide6": "pyside6-essentials", "pyqtgraph": "pyqtgraph",
            "torch": "torch==2.14.1", "torchvision": "torchvision==0.29.1", "tqdm": "tqdm", "matplotlib": "matplotlib",
            "onnxconverter_common": "onnxconverter-common"}
# macOS has no onnxruntime-gpu wheel (nor CUDA): pyproject installs the CPU build there, which the hint must name
MACOS_PACKAGES = {**PACKAGES, "onnxruntime": "onnxruntime"}
# Modules of an optional extra (pyproject.toml): a plain install leaves them out, so the hint names the extra, which
# brings them at the versions the project pins, rather than `pip install -e .`, which would not
EXTRAS = {"torch": "train", "torchvision": "train"}
OUR_PACKAGES = ("main", "gui", "inference", "training", "tests")


def pip_package(module: str, platform: str | None = None) -> str:
    """The pip package pyproject installs ``module`` from on ``platform``, a ``sys.platform`` (this one's where None)."""
    packages = MACOS_PACKAGES if (platform or sys.platform) == "darwin" else PACKAGES
    return packages.get(module, module)


def venv_python(platform: str | None = None) -> str:
    """Where .venv keeps its Python on ``platform``, a ``sys.platform`` (this one's where None): Windows' venv has no
    bin folder."""
    return r".venv\Scripts\python.exe" if (platform or sys.platform) == "win32" else ".venv/bin/python"


def missing_module_message(exc: ModuleNotFoundError, platform: str | None = None, prog: str = "main.py") -> str:
    """What to install for the module ``exc`` names, for Bias Mirror started as ``prog`` (main.py from a checkout,
    which scripts/setup sets up, or the console script of an installed copy, which has no scripts/ beside it)."""
    top = (exc.name or "?").split(".")[0]
    package = pip_package(top, platform)
    said = (f"error: this Python ({sys.executable}) has no module '{top}' (pip package {package}), which this command "
            "needs")
    checkout = prog.endswith(".py")
    extra = EXTRAS.get(top)
    if extra:
        return (f"{said}: it comes with Bias Mirror's optional extra '{extra}', which a plain install leaves out. Add "
                f'it with `{sys.executable} -m pip install "bias-mirror[{extra}]"`'
                + (", or set the project up with `bash scripts/setup`, whose .venv has it." if checkout else "."))
    if not checkout:
        return (f"{said}: this install of Bias Mirror is incomplete. Install it again into this Python, which brings "
                f"every package it needs, or `{sys.executable} -m pip install {package}`.")
    return (f"{said}. Set the project up once with `bash scripts/setup` (it makes .venv), then run "
            f"`{venv_python(platform)} main.py …`, or `pip install -e .` into the Python you use.")


def printable_output(streams=None) -> None:
    """Standard output and error that can carry any character. Windows writes output sent to a file or a pipe in its
    ANSI code page (cp1252), which has no →, Δ or ≥ and no Chinese file name: `main.py audit … > audit.log` stopped at
    its first arrow with a UnicodeEncodeError. Such output is written as UTF-8; a console whose code page lacks a
    character shows it escaped (\\u2192) rather than stopping."""
    import codecs

    for stream in streams if streams is not None else (sys.stdout, sys.stderr):
        try:
            unicode = codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name.startswith("utf")
        except LookupError:
            unicode = False
        if unicode or not hasattr(stream, "reconfigure"):
            continue
        stream.reconfigure(**({"errors": "backslashreplace"} if _is_terminal(stream) else {"encoding": "utf-8"}))


def needs_utf8_restart(fs_encoding: str | None = None, utf8_mode: int | None = None, xoptions: dict | None = None,
                       environ: dict[str, str] | None = None, os_name: str | None = None) -> bool:
    """Whether this command must run again in Python's UTF-8 mode: where this process decodes file names in another
    encoding (a POSIX locale such as de_DE.ISO-8859-1 or ja_JP.EUC-JP; each argument defaults to this process's
    own). Every file we read or write (labels, manifests, the rows of `run`) is UTF-8, as are the names of files
    almost everywhere now: decoded as Latin-1, 'é.jpg' became 'Ã©.jpg', a labelled folder's names no longer matched
    its labels.csv and `run` wrote them garbled. Never twice: the restarted process has UTF-8 mode whatever else
    happens (-X on its command line beats the environment). Windows names files in UTF-16, and a user's own
    -X utf8=0 or PYTHONUTF8=0 is kept."""
    import codecs

    fs_encoding = sys.getfilesystemencoding() if fs_encoding is None else fs_encoding
    utf8_mode = sys.flags.utf8_mode if utf8_mode is None else utf8_mode
    xoptions = sys._xoptions if xoptions is None else xoptions
    environ = os.environ if environ is None else environ
    return ((os.name if os_name is None else os_name) == "posix" and not utf8_mode and "utf8" not in xoptions
            and environ.get("PYTHONUTF8") != "0" and codecs.lookup(fs_encoding).name != "utf-8")


def command_line_bytes() -> list[bytes] | None:
    """This process's command line as the system gave it, bytes for bytes: Linux's /proc/self/cmdline, else
    sys.orig_argv encoded back, which can differ (Python decoded it with the C library's EUC-JP, which reads bytes
    its own codec cannot give back); None where it cannot be had."""
    try:
        with open("/proc/self/cmdline", "rb") as f:
            given = f.read().split(b"\0")[:-1]
    except OSError:
        given = []
    if len(given) == len(sys.orig_argv):
        return given
    try:
        return [os.fsencode(arg) for arg in sys.orig_argv]
    except UnicodeEncodeError:
        return None


def _is_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (OSError, ValueError):
        return False


def restart_in_utf8_mode(prog: str = "main.py") -> None:
    """Run this command again in UTF-8 mode where it needs it (``needs_utf8_restart``), by replacing this process
    (os.execv): the same process id, so the exit status and the signals sent to it are the command's own, and its
    arguments bytes for bytes. Python children it starts (workers) get UTF-8 mode too. Where it cannot, the command
    runs on, said once."""
    if not needs_utf8_restart():
        return
    given = command_line_bytes()
    problem = None if given and sys.executable else "this command line cannot be read back"
    if problem is None:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
        os.environ["PYTHONUTF8"] = "1"
        # UTF-8 mode writes UTF-8 to a terminal too, and a Latin-1 terminal showed "Ã\x97" for ×: the terminal keeps
        # its own encoding, as before the restart (printable_output still turns a pipe's into UTF-8)
        kept_io = "PYTHONIOENCODING" in os.environ
        encoding = getattr(sys.stdout or sys.stderr, "encoding", None)
        if not kept_io and encoding and any(_is_terminal(s) for s in (sys.stdout, sys.stderr)):
            os.environ["PYTHONIOENCODING"] = f"{encoding}:backslashreplace"
        try:
            os.execv(sys.executable, [os.fsencode(sys.executable), b"-X", b"utf8", *given[1:]])
        except OSError as exc:
            del os.environ["PYTHONUTF8"]
            if not kept_io:
                os.environ.pop("PYTHONIOENCODING", None)
            problem = str(exc)
    print(f"warning: file names are decoded as {sys.getfilesystemencoding()} under this locale, not as UTF-8 like the "
          f"files that list them, and running again in Python's UTF-8 mode failed ({problem}): run "
          f"`PYTHONUTF8=1 {program(prog)} …`", file=sys.stderr)


def main(argv: list[str] | None = None, prog: str = "main.py") -> int:
    """Run the command ``argv`` (this process's arguments where None); ``prog``: the name its usage and hints give
    Bias Mirror. main.py, whatever started it (a test, a script calling main()): only ``script_main`` knows it was
    started as the console script, whose sys.argv[0] is its own."""
    printable_output()
    # SIGTERM while the command's modules load (NumPy, OpenCV, ONNX Runtime, torch: seconds) had killed it with 143;
    # it stops there as Ctrl-C does, with 130, as it does once the command runs (``terminate_as_interrupt``)
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _stop_on_sigterm) if in_main_thread else None
    named = PROG.set(prog)
    try:
        # a context of its own: what _main sets in it (the program's name for inference's hints) ends with the call
        return contextvars.copy_context().run(_main, argv, prog)
    except KeyboardInterrupt as exc:  # Ctrl-C or SIGTERM while the command's modules load, before its own handler
        print("stopped (SIGTERM)" if str(exc) == _SIGTERM_WORDS else "interrupted", file=sys.stderr)
        return 130
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] in OUR_PACKAGES:  # a broken checkout, not a missing dependency
            traceback.print_exc()  # it says where; status 2, not Python's 1 (the audit's "gate failed")
            print(f"error: Bias Mirror's own module {exc.name} is missing: this checkout or install is incomplete",
                  file=sys.stderr)
            return 2
        print(missing_module_message(exc, prog=prog), file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - a fault of ours: its traceback, and not status 1
        # Python's own status for an uncaught exception, 1, is the audit's "the ship gate failed": a CI pipeline read
        # a crash (a damaged cache line) as a verdict on the filter
        print(_shown_traceback(), end="", file=sys.stderr)
        print(f"error: an unexpected {type(exc).__name__} in Bias Mirror itself (the traceback above says where; "
              "please report it): the command did not finish", file=sys.stderr)
        return 2
    finally:
        PROG.reset(named)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


_SIGTERM_WORDS = f"signal {int(signal.SIGTERM)}"  # as inference.stopping.TERMINATED, which loads the package
LOG_FORMAT = "%(levelname)s %(name)s: %(message)s"


def _shown_traceback() -> str:
    """The traceback being handled, as the terminal can show it: its message may quote a card or a file name."""
    text = traceback.format_exc()
    try:
        from inference.untrusted_text import terminal_safe
    except Exception:  # noqa: BLE001 - the package itself failed to load: nothing anyone else wrote was read yet
        return text
    return terminal_safe(text)


def _say_error(text: str) -> None:
    """An `error:` line on standard error. Its text quotes what others wrote (a card's name, an ONNX graph's output
    names, a photo's file name), whose escape sequences had set the terminal's title and cleared the screen."""
    from inference.untrusted_text import terminal_safe

    print(f"error: {terminal_safe(text)}", file=sys.stderr)


def _log_handler() -> logging.Handler:
    """Standard error's log handler: warnings quote card names and file names, shown as ``terminal_safe`` shows
    them. tqdm's progress bars (their \\r) are written by tqdm itself, not through here."""
    from inference.untrusted_text import TerminalSafeFormatter

    handler = logging.StreamHandler()
    handler.setFormatter(TerminalSafeFormatter(LOG_FORMAT))
    return handler


def _stop_on_sigterm(signum: int, frame) -> None:
    raise KeyboardInterrupt(_SIGTERM_WORDS)


def _main(argv: list[str] | None, prog: str) -> int:
    given = list(sys.argv[1:] if argv is None else argv)
    problem = unknown_command_problem(given)
    if problem:
        build_parser([]).error(problem)
    argv = _default_to_app(given)
    if _chosen_module(argv) is not None:
        # only where build_parser loads a command's module, and with it the runtime (ONNX Runtime): `--help` and a
        # misspelled command stay fast, and say nothing but argparse's usage, which PROG names
        from inference.program_name import PROGRAM

        PROGRAM.set(program(prog))  # before the module's add_arguments: its help texts name the program too
    parser = build_parser(argv)
    problem = nested_command_problem(parser, argv) or unknown_option_problem(parser, argv)
    if problem:
        found = _command_parser(parser, argv)
        # the command's own usage where it is one (`main.py audit [-h] --dataset …`)
        (found[0] if found and problem.startswith("unrecognized option") else parser).error(problem)
    args = parser.parse_args(argv)
    if hasattr(args, "_parser"):
        args._given = given_options(parser, args._parser, argv)
        args._argv = argv  # as typed, for model cards
    args._program = program(prog)  # for the hints a command prints: `python main.py doctor train`, `bias-mirror …`
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO, handlers=[_log_handler()])
    if int(os.environ.get("RANK", "0") or 0) > 0:
        # under torchrun every process reads the same data: its warnings are rank 0's, printed N times over
        logging.getLogger().setLevel(logging.ERROR)
    problem = torchrun_problem(args)
    if problem:  # before it reads or writes anything, on every process; said once
        if int(os.environ.get("RANK", "0") or 0) == 0:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    from inference.arg_checks import link_loop_said
    from inference.errors import BiasMirrorError

    from inference.stopping import TERMINATED, StopSaid, terminate_as_interrupt

    module = importlib.import_module(args._module)
    try:
        # a batch system's cancel (SIGTERM) stops as Ctrl-C does: `run` keeps its rows, the audit its cache, and both
        # say so; it had killed them at once, `run` with rows of processed frames unsaved (the trainers, the app and
        # bench handle it themselves inside)
        with terminate_as_interrupt():
            return int(module.main(args) or 0)
    except BiasMirrorError as exc:
        logging.getLogger("main").debug("error details", exc_info=True)
        _say_error(str(exc))
        return 2
    except KeyboardInterrupt as exc:
        # 130 for both, as the trainers and bench return after either: one status for "stopped, work kept"
        if str(exc) == TERMINATED:  # which signal stopped it, which no command's own line says
            print("stopped (SIGTERM)", file=sys.stderr)
        elif not isinstance(exc, StopSaid):  # a command that said what its stop kept (audit, run) is not said again
            print("interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        # A file the system refused (a folder where a file was meant, a full disk, no permission) that no
        # check caught earlier: its path and the system's reason are what the user needs, not the traceback.
        logging.getLogger("main").debug("error details", exc_info=True)
        if exc.filename is None:  # a write refused mid-file (a full disk) names none: the reason, and where to look
            _say_error(f"{exc.strerror or exc} (run with --verbose to see where)")
        else:
            _say_error(f"{exc.filename}: {exc.strerror or exc}")
        return 2
    except RuntimeError as exc:
        # a link loop met by a Path.resolve no check reached (pathlib raises RuntimeError for it before Python 3.13):
        # the link, not a traceback; any other RuntimeError is a bug, and keeps its traceback
        said = link_loop_said(exc)
        if said is None:
            raise
        logging.getLogger("main").debug("error details", exc_info=True)
        _say_error(said)
        return 2


def run_as_program(prog: str) -> int:
    """This process's command, run as the program ``prog``: what `python main.py` and the console script do, and
    main() does not, as a test may call it in its own process."""
    restart_in_utf8_mode(prog)  # before anything reads a file name
    status = main(prog=prog)
    # the command is over: a Ctrl-C pressed again while the interpreter shuts down (a trainer's workers, its
    # exit handlers) printed "Exception ignored in atexit callback" and a traceback
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return status


def script_main() -> int:
    """The `bias-mirror` console script pip installs (pyproject.toml): its usage and hints say the name it was
    started by, as there is no main.py where it is installed (`usage: main.py` and `python main.py doctor train` had
    named a file the user does not have)."""
    return run_as_program(os.path.basename(sys.argv[0]) or "bias-mirror")


if __name__ == "__main__":
    sys.exit(run_as_program("main.py"))
