"""Command-line values checked where they are parsed, and output paths checked before any work starts.

argparse turns a ValueError from a ``type`` into "argument --batch: invalid … value", so a zero batch or a
negative duration is refused with the option's name instead of failing deep inside (or, worse, running and
reporting nothing). Output paths are checked up front so that an hour of training is not lost to an
``--out`` that names a file. An optional output is checked whenever it was given (``is not None``), so that
an empty value is refused rather than skipped.
"""
from __future__ import annotations

import argparse
import ast
import contextlib
import errno
import itertools
import math
import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterable, Iterator, TextIO

from .errors import BiasMirrorError
from .sources import camera_index


def int_at_least(least: int, most: int | None = None) -> Callable[[str], int]:
    """A whole number ≥ ``least`` (and ≤ ``most`` where given)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be at least {least}, got {value}")
        if most is not None and value > most:
            raise argparse.ArgumentTypeError(f"must be at most {most}, got {value}")
        return value
    parse.__name__ = f"int ≥ {least}"
    return parse


def finite_float(text: str) -> float:
    """A number, not inf or nan: `app --max-seconds inf` crashed the app, and `train adopt --std=nan,1,1` wrote a
    filter that blacked out every face."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def float_at_least(least: float, above: bool = False, most: float | None = None, below: bool = False,
                   why: str = "") -> Callable[[str], float]:
    """A finite number ≥ ``least`` (> ``least`` with ``above``), and ≤ ``most`` (< ``most`` with ``below``) where
    given; ``why`` says what the upper bound is, in its refusal."""
    def parse(text: str) -> float:
        value = finite_float(text)
        if value < least or (above and value == least):
            raise argparse.ArgumentTypeError(f"must be {'above' if above else 'at least'} {least:g}, got {text}")
        if most is not None and (value > most or (below and value == most)):
            reason = f": {why}" if why else ""
            raise argparse.ArgumentTypeError(f"must be {'below' if below else 'at most'} {most:g}{reason}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


probability = float_at_least(0.0, most=1.0)  # a number from 0 to 1


def open_unit(text: str) -> float:
    """A number strictly between 0 and 1 (a decay: 0 keeps nothing of the past, 1 nothing of the present)."""
    try:  # both bounds said at once: probability's "at most 1" let 1 through, to be refused with another bound
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < 1.0:  # NaN too
        raise argparse.ArgumentTypeError(f"must be above 0 and below 1, got {text}")
    return value


def thread_count(text: str) -> int:
    """A thread count from 1 to four per core: far more only slows everything down, and a mistyped 100000 made
    ONNX Runtime start threads for minutes before anything ran."""
    value = int_at_least(1)(text)
    cores = os.cpu_count() or 1
    most = max(8, 4 * cores)
    if value > most:
        raise argparse.ArgumentTypeError(f"must be at most {most} (four per core; this machine has {cores}), "
                                         f"got {value}")
    return value


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = float_at_least(0.0, above=True)
non_negative_float = float_at_least(0.0)


def check_source(spec: str | None, expected: str = "a camera index, a video file, an image folder or an image") -> None:
    """An empty --source, as an unset shell variable gives, is refused: as a path it is the current folder,
    which was opened with all its subfolders."""
    if spec is not None and not spec.strip():
        raise BiasMirrorError(f"--source is empty (an unset shell variable?); give {expected}")


def _check_writable_below(folder: Path, option: str, path: Path) -> None:
    """The nearest existing ancestor of ``folder`` (itself if it exists) is a folder this process can write in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise BiasMirrorError(f"{option}: {existing} is a file, not a folder", path)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise BiasMirrorError(f"{option}: cannot write in {existing} ({_why_unwritable(existing)})", path)


def _why_unwritable(path: Path) -> str:
    """Why this process cannot write ``path``: its file system is mounted read-only (os.access refuses writing
    there too, and "no permission" had sent users of read-only CI containers to chmod), or no permission. Where the
    system cannot tell (Windows), no permission."""
    try:
        if os.statvfs(path).f_flag & os.ST_RDONLY:
            return "a read-only file system"
    except (AttributeError, OSError):
        pass
    return "no permission"


def refuse_empty(path: str | Path | None, option: str, expected: str = "") -> None:
    """An option given as '' (an unset shell variable) is refused: Path("") is Path("."), so an output was written
    into the current folder, and a model or input path was read as the current folder or, tested for truth, quietly
    replaced by the default (`audit --filter ''` audited the shipped filter). None (not given) passes."""
    if isinstance(path, str) and path == "":
        give = f"; give {expected}" if expected else ""
        raise BiasMirrorError(f"{option} is empty (an unset shell variable?){give}")


def user_path(path: str | Path) -> Path:
    """A path as the commands read and write it: ``~`` (``~user``) expanded, as for --source and --dataset. A shell
    leaves ``--out=~/x`` as it is, and a folder named "~" had been written in the current folder, past the check
    that keeps outputs out of their input folder. The output checks return it: the caller writes to what was checked.
    A ``~user`` of no user known here is a BiasMirrorError naming the path (Path.expanduser's RuntimeError had been a
    traceback)."""
    text = str(path)
    if _home_is_empty(text):
        raise BiasMirrorError("~ names the home folder, and HOME is set but empty here, which would make it the root "
                              "folder /: set HOME, or give the path without ~", path)
    try:
        return Path(path).expanduser()
    except RuntimeError:  # "Could not determine home directory."
        if Path(path).exists():  # "~draft.onnx" in this folder, which a shell passes on as it is where no user is so named
            return Path(path)
        raise BiasMirrorError(_no_home_for(text), path) from None


def _home_is_empty(path: str) -> bool:
    """Whether ``path`` opens with the user's own ``~`` where HOME is set but empty: POSIX's expanduser then puts
    it at the root ("~/o.csv" → "/o.csv", written there by a run as root)."""
    own_home = path == "~" or path.startswith("~/")
    return own_home and os.name != "nt" and os.environ.get("HOME") == ""


def _no_home_for(path: str) -> str:
    """Why the ``~`` that opens ``path`` names no home folder, and what to give instead."""
    user = path[1:].split("/", 1)[0]  # as expanduser reads it: on POSIX a backslash is a letter of the user's name
    if "\\" in user:  # "~\\o.csv" had been blamed on HOME, which was set
        slashed = "/".join(path.split("\\"))
        return (f"~{user} is not a home folder on this system (a backslash does not separate folders here, as it does "
                f"on Windows): write {slashed}")
    advice = "give the path without ~, or with a user known here"
    if user:
        return f"~{user} names a user unknown on this system (no home folder to expand it to): {advice}"
    return f"~ names the home folder, and none is known for this user (HOME is not set): {advice}"


LINK_LOOP = "is a symbolic link that leads back to itself (a link loop)"
_LOOP_ADVICE = "remove the link or give another path"
_SYMLINK_LOOP = "Symlink loop from "  # how pathlib words one, before Python 3.13


def _link_loop_in(path: Path) -> Path | None:
    """The first of ``path``'s folders, or ``path`` itself, that is a link loop; None where there is none."""
    for part in (*reversed(path.parents), path):
        try:
            os.stat(part)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                return part
    return None


def link_loop_said(exc: RuntimeError) -> str | None:
    """Path.resolve's RuntimeError for a link loop ("Symlink loop from '/x/loop'", Python 3.10–3.12) in our words,
    naming the link; None for any other RuntimeError. For a resolve no check reached, which had ended in a traceback."""
    said = str(exc)
    if not said.startswith(_SYMLINK_LOOP):
        return None
    link = said.removeprefix(_SYMLINK_LOOP)
    with contextlib.suppress(ValueError, SyntaxError):  # the path is written as its repr
        link = ast.literal_eval(link)
    return f"{link} {LINK_LOOP}; {_LOOP_ADVICE}"


def resolved(path: str | Path, option: str = "") -> Path:
    """``path`` as it is written to or read (``user_path``, links followed), for comparing one path with another. A
    link loop on the way is a BiasMirrorError naming the link (and ``option`` where given), looked for before
    resolving: Path.resolve raises RuntimeError for it on Python 3.10–3.12, which no handler caught (a traceback),
    and from 3.13 returns the loop unresolved, to fail later."""
    path = user_path(path)
    loop = _link_loop_in(path)
    if loop is not None:
        named = f"{option}: " if option else ""
        raise BiasMirrorError(f"{named}{loop} {LINK_LOOP}; {_LOOP_ADVICE}")
    return path.resolve()


def same_place(a: Path, b: Path) -> bool:
    """Whether ``a`` and ``b`` (as ``resolved`` gives them) name one file: they are spelled alike, are one file
    there (another case of its name, a hard link), or differ in case only where the file system ignores case
    (``ignores_case``), there or to be made. Compared as strings, face.jpg and Face.jpg had been two files on macOS,
    whose APFS and HFS+ ignore case and whose realpath keeps the case typed: `run --source face.jpg --out Face.jpg`
    wrote its rows over the photo."""
    if a == b or _same_file(a, b):
        return True
    if len(a.parts) != len(b.parts) or any(x.casefold() != y.casefold() for x, y in zip(a.parts, b.parts)):
        return False
    return all(ignores_case(_nearest_folder(Path(*a.parts[:i])))
               for i, (x, y) in enumerate(zip(a.parts, b.parts)) if x != y)


def _same_file(a: Path, b: Path) -> bool:
    try:
        there = os.stat(a)
        return bool(there.st_ino) and os.path.samestat(there, os.stat(b))  # 0: a file system that numbers no files
    except OSError:  # either not there (yet)
        return False


def _nearest_folder(path: Path) -> Path:
    """``path``, or its nearest parent that is there: where a folder to be made would be made."""
    return next((folder for folder in (path, *path.parents) if folder.is_dir()), path)


def lies_in(path: Path, folder: Path) -> bool:
    """Whether ``path`` is below ``folder`` (both as ``resolved`` gives them, by ``same_place``): ~/faces/report is
    in ~/Faces where names ignore case."""
    return any(same_place(up, folder) for up in path.parents)


_CASE_PROBES = 32  # a folder's entries looked at for a name to ask about: enough to find one, few to list


def ignores_case(folder: Path) -> bool:
    """Whether the file system holding ``folder`` matches names ignoring case (macOS's APFS and HFS+ as formatted
    by default, Windows's NTFS, FAT): a name there asked for with its case swapped finds that file. Asked of the file
    system, not told by the platform: a Mac may have a case-sensitive volume, and Linux a FAT stick. False where no
    name with a letter is found to ask about."""
    for probe in _case_probes(folder):
        swapped = probe.with_name(probe.name.swapcase())
        try:
            named = os.lstat(probe)
        except OSError:  # gone since it was listed, or not to be looked at
            continue
        try:
            other = os.lstat(swapped)
        except FileNotFoundError:
            return False
        except OSError:
            continue
        if named.st_ino and os.path.samestat(named, other):
            return True
        try:  # a file of its own by that name, or one file numbered by the name asked (a FUSE file system may)
            return swapped.name not in os.listdir(probe.parent)
        except OSError:
            continue
    return False


def _case_probes(folder: Path) -> Iterator[Path]:
    """Names whose case can be swapped: a few of ``folder``'s entries (on its own file system), then ``folder`` and
    the folders above it (each named on its parent's: a mount point's own name tells of the disk below it). ASCII
    names only: a file system may fold other letters otherwise than Python (ß, the Turkish ı), or not at all."""
    try:
        with os.scandir(folder) as entries:
            listed = [folder / e.name for e in itertools.islice(entries, _CASE_PROBES)]
    except OSError:
        listed = []
    for probe in (*listed, folder, *folder.parents):
        if probe.name.isascii() and probe.name != probe.name.swapcase():
            yield probe


def _refuse_writing_into_source(path: Path, option: str, source: str | Path) -> None:
    """An output that is an input, or lies in an input folder, is refused: `run --source v.mp4 --out v.mp4`
    replaced the video with its rows, and `--out faces/labels.csv` a folder's labels. Compared as places
    (``same_place``), so another name of the input (another case, a hard link) is the input."""
    if not str(source).strip() or camera_index(source) is not None:  # a camera index is no file
        return
    src, out = resolved(source), resolved(path, option)
    if same_place(out, src):
        raise BiasMirrorError(f"{option} is an input of this command: writing it would destroy or change the input; "
                              "give another path", path)
    if src.is_dir() and lies_in(out, src):
        raise BiasMirrorError(f"{option} lies in {user_path(source)}, an input folder: write results outside it (a file there "
                              "may be the folder's own, such as its labels.csv, and one written there joins its input)",
                              path)


def check_paths_apart(outputs: Iterable[tuple[str, str | Path | None]],
                      inputs: Iterable[tuple[str, str | Path | None]] = ()) -> None:
    """Each output (option, path) is none of the input files and no other output: else a BiasMirrorError naming both
    options. `app --classifier v.onnx --health v.onnx` replaced the model with the health JSON, `--log` rotated it
    away, and `--screenshot x.png --health x.png` kept only one of the two, each with status 0. Paths are compared
    as written to (``~`` expanded, links followed); a path that is None or '' (checked elsewhere) is skipped, and an
    option may come more than once (a repeated --classifier). Compared as places (``same_place``): names differing
    in case only are one file where the file system ignores case (macOS, Windows)."""
    inputs_seen: list[tuple[Path, str]] = []
    for option, path in inputs:
        if path is not None and str(path) != "":
            inputs_seen.append((resolved(path, option), option))
    outputs_seen: list[tuple[Path, str]] = []
    for option, path in outputs:
        if path is None or str(path) == "":
            continue
        where = resolved(path, option)
        same_input = next((other for there, other in inputs_seen if same_place(where, there)), None)
        if same_input is not None:
            raise BiasMirrorError(f"{option} and {same_input} name the same file: writing {option} would "
                                  f"destroy {same_input}, an input of this command; give {option} another path",
                                  user_path(path))
        same_output = next((other for there, other in outputs_seen if same_place(where, there)), None)
        if same_output is not None:
            raise BiasMirrorError(f"{option} and {same_output} name the same file: one would overwrite the other; "
                                  "give each its own path", user_path(path))
        outputs_seen.append((where, option))


def model_inputs(args: argparse.Namespace, all_defaults: bool = False) -> list[tuple[str, str | None]]:
    """The model files a command line names (option, path), and the default models it loads where it names none
    (every one where ``all_defaults``: the app loads the whole folder for its menus), which none of its outputs may
    overwrite (``check_paths_apart``): `run --out resources/models/x.onnx` had written its rows over a default
    model, which only models given by name were kept from."""
    from .defaults import MODELS_DIR  # imported here: defaults imports this module

    given = [*(("--classifier", c) for c in getattr(args, "classifier", None) or ()),
             ("--filter", getattr(args, "filter", None)), ("--yunet", getattr(args, "yunet", None))]
    defaults_loaded = all_defaults or not getattr(args, "classifier", None) or not (
        getattr(args, "filter", None) or getattr(args, "no_filter", False))
    return given + ([(f"the default model {p.name}", str(p)) for p in sorted(MODELS_DIR.glob("*.onnx"))]
                    if defaults_loaded else [])


STDOUT = "-"  # an output option's standard output: `run --out -`, `bench --json -`
# the end of a --json help where - is standard output
JSON_DASH_HELP = ("; - for standard output: the JSON alone there, written once at the end, every other line on "
                  "standard error (`--json - | jq`)")


def names_stdout(out: str) -> bool:
    """Whether ``out`` leads to standard output's own name, itself or through links (``descriptor_named``): closed,
    it names nothing, or the next file the run opens (a link to /dev/stdout had written rows into it)."""
    from .writing import descriptor_named  # imported here: writing is the heavier module, and needs none of this

    named = descriptor_named(out)
    return named is not None and re.fullmatch(rf"/dev/(?:stdout|fd/1)|/proc/(?:self|thread-self|{os.getpid()})/fd/1",
                                              named) is not None


def check_stdout_open(option: str = "--out", what: str = "the rows") -> None:
    """Standard output closed (``>&-``): Python has no sys.stdout then, and the rows had gone to a file named
    "standard output" in the current folder, with status 0."""
    if sys.stdout is None:
        raise BiasMirrorError(f"standard output is closed (`>&-`?): nothing can read {what} there; give {option} a "
                              "file, or run with standard output open")


def stdout_gone(stdout: TextIO | None = None) -> None:
    """After a write to standard output (``stdout``, sys.stdout by default) failed, its reader gone (``run --out - |
    head``): Python's own flush at exit would fail again and print a traceback below the error said, so what is
    left goes to the null device."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        os.dup2(os.open(os.devnull, os.O_WRONLY), (stdout or sys.stdout).fileno())


@contextlib.contextmanager
def json_on_stdout(json_out: str | None) -> Iterator[TextIO | None]:
    """For the block of a command whose --json names standard output (``-``, or /dev/stdout and its like): what
    it prints for people (tables, notes, progress) goes to standard error, so that standard output holds the JSON
    alone (`--json - | jq`); they had been mixed into it. Yields the standard output that ``-``'s JSON goes to
    (``put_json``), None for any other --json, which is written as a file is."""
    if json_out is None or (json_out != STDOUT and not names_stdout(json_out)):
        yield None
        return
    if json_out == STDOUT:
        check_stdout_open("--json", "the JSON")
    kept = sys.stdout
    with contextlib.redirect_stdout(sys.stderr):
        yield kept if json_out == STDOUT else None


def put_json(stdout: TextIO, text: str) -> None:
    """``text``, a --json document, on standard output (``json_on_stdout``'s), a newline after it as after any
    text a terminal shows. A reader that stopped reading (`| head -c 100`) ends it as it ends `run --out -`: a
    line on standard error, the command's status as it was."""
    try:
        stdout.write(text if text.endswith("\n") else text + "\n")
        stdout.flush()
    except BrokenPipeError:
        stdout_gone(stdout)
        print("standard output: its reader stopped reading before the whole JSON was written", file=sys.stderr)


def check_output_file(path: str | Path, option: str, source: str | Path | None = None,
                      in_place: Callable[[Path], bool] | None = None) -> Path:
    """``path`` can be written as a file (it, or the folders to make for it), and is not ``source`` or in it: else a
    message naming it. Returns it as it is to be written (``user_path``). Where ``in_place(path)`` says the caller
    writes it where it stands (`run`'s /dev/stdout, a FIFO, /dev/null), only ``path`` itself need be writable: no
    file is made beside it, and a user may not write in /dev (`--out /dev/stdout` had been refused)."""
    refuse_empty(path, option)
    if str(path) == STDOUT:  # a file named "-" had been written, status 0: a caller that means stdout takes it first
        raise BiasMirrorError(f"{option} -: standard output is not supported here; give a file (./- for a file "
                              "named -)")
    # "new/" names a folder to be: Path drops the slash, and a file called "new" was written
    as_given, path = str(path), user_path(path)
    if as_given.endswith(("/", os.sep)) or path.is_dir():
        raise BiasMirrorError(f"{option} names a folder; give a file name", path)
    if source is not None:
        _refuse_writing_into_source(path, option, source)
    if in_place is None or not in_place(path):
        _check_writable_below(path.parent, option, path)
    if path.exists() and not os.access(path, os.W_OK):
        raise BiasMirrorError(f"{option}: the file exists and cannot be overwritten ({_why_unwritable(path)})", path)
    return path


def data_folders(cfg: dict | argparse.Namespace) -> list[str]:
    """The input folders a command or a run's config names: a dataset's (KIND:PATH) and a CycleGAN's domains, for
    the output checks (a --json, --out or --export-to there had overwritten a dataset's labels.csv or an image)."""
    get = cfg.get if isinstance(cfg, dict) else lambda key: getattr(cfg, key, None)
    spec = get("dataset") or get("data")
    return [p for p in (spec.partition(":")[2] if isinstance(spec, str) else None, get("domain_a"), get("domain_b"))
            if p]


def check_output_dir(path: str | Path, option: str, sources: tuple[str | Path | None, ...] = ()) -> Path:
    """``path`` is, or can be made, a folder to write in, and is none of ``sources`` (input folders) nor in one:
    else a message naming it. Returns it as it is to be written (``user_path``)."""
    refuse_empty(path, option)
    path = user_path(path)
    for source in sources:
        if source is not None:
            _refuse_writing_into_source(path, option, source)
    if path.exists() and not path.is_dir():
        raise BiasMirrorError(f"{option} names a file; give a folder", path)
    _check_writable_below(path, option, path)
    return path


def check_cache_dir(path: str | Path | None, option: str = "--cache") -> Path | None:
    """An optional cache folder, as ``check_output_dir`` checks one; '' (or None) means no cache and gives None."""
    return check_output_dir(path, option) if path else None
