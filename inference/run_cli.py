"""Headless run: a source → one CSV row per face per frame, flushed as it goes.

    python main.py run --source video.mp4 --out results.csv
"""
from __future__ import annotations

import argparse
import contextlib
import math
import sys
import time
from pathlib import Path

from tqdm import tqdm

from .cli_common import add_model_arguments, pipeline_from_args
from .detect_ahead import MAX_DEPTH, check_depth, detecting_ahead
from .stopping import StopSaid
from .defaults import check_filter_choice
from .errors import BiasMirrorError
from .pipeline import PipelineConfig
from .results import FrameResult
from .rows import COLUMNS, ReaderStopped, RowWriter, printable, row_columns
from .runtime import fallback_lines, fallbacks_collected
# STDOUT, standard output's name, and what `run --out -` does with it, shared with the --json outputs (`bench --json -`)
from .arg_checks import (STDOUT, check_output_file, check_paths_apart, check_source, check_stdout_open, model_inputs,
                         positive_int, stdout_gone)
from .arg_checks import names_stdout as _names_stdout
from .sources import open_source
from .untrusted_text import terminal_safe
from .writing import hidden_name, one_writer, written_in_place


EXIT_STATUSES = """exit status: 0 rows were written, or no face was found in any frame (the CSV holds its header alone,
  in place of whatever was there); 2 an error (an `error:` line says what), or no frame could be read (every one
  unreadable, or the source gave none: a CSV there is left as it was); 130 interrupted (Ctrl-C or SIGTERM), the rows
  of the frames processed kept. A pipe the rows go to whose reader stops reading (`run --out - | head -n 5`) ends the
  run there with 0, as it ends other tools, a line on standard error saying after how many rows

Status lines and warnings go to standard error, so that `--out -` (or /dev/stdout) gives the CSV alone on standard
output."""
CAM_CLASS_HELP = ("the class whose CAM the app shows (a label, or predicted: each face's predicted class); `run` "
                  "writes no CAM, and its cam_focus[C] is measured on the CAM of the class that C predicted, so this "
                  "changes nothing in its CSV (a label a classifier lacks is refused)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter  # the column list keeps its lines
    p.epilog = f"The CSV has {COLUMNS}\n\n{EXIT_STATUSES}"
    p.add_argument("--source", required=True, help="camera index, video file, image folder or image")
    p.add_argument("--out", required=True, help="CSV file to write; - for standard output")
    p.add_argument("--max-frames", type=positive_int, help="stop after this many frames")
    p.add_argument("--max-faces", type=positive_int, default=PipelineConfig.max_faces,
                   help="faces analysed in a frame, the largest first (default %(default)s); a frame with more is "
                        "said at the end")
    p.add_argument("--detect-depth", type=int, default=1,
                   help=f"frames whose faces are found ahead at once, each on its own thread (1 to {MAX_DEPTH}): more "
                        "helps where the models outpace the face detector, e.g. on a GPU with cores to spare (default 1)")
    add_model_arguments(p)
    # shared with the app, where it chooses the map shown: said here for what it does in `run`, which is nothing
    next(a for a in p._actions if "--cam-class" in a.option_strings).help = CAM_CLASS_HELP


def _lock_for(csv_path: str | Path) -> Path:
    """The hidden file beside a run's CSV that it holds while it writes (removed as it ends): the CSV itself is
    put in place only at the first frame analysed, so that a run that reads none leaves a file there as it was.
    Shortened where the CSV's name is near the file system's limit (``hidden_name``)."""
    return hidden_name(csv_path, ".lock")


def main(args: argparse.Namespace) -> int:
    check_source(args.source)
    check_filter_choice(args.filter, args.no_filter)  # as the app does: what was asked for, before where it goes
    check_depth(args.detect_depth)
    if args.out == STDOUT or _names_stdout(args.out):
        check_stdout_open()
    if args.out == STDOUT:  # a file named "-" had been written; standard output is no file to check or lock
        return _run(args)
    # as checked: "~/rows.csv" expanded
    args.out = str(check_output_file(args.out, "--out", args.source, in_place=written_in_place))
    check_paths_apart([("--out", args.out)], model_inputs(args))  # `--out v.onnx --classifier v.onnx` wrote rows over it
    if written_in_place(args.out):  # /dev/stdout, a FIFO: no file of ours is put there, and /dev takes no lock file
        return _run(args)
    # two runs writing one CSV had torn its header and mixed their rows, each saying its rows were written
    with one_writer(args.out, _lock_for(args.out), "run"):
        return _run(args)


def say(line: str) -> None:
    """A status line or warning: on standard error, which --out /dev/stdout or - leaves to the rows alone (they had
    been mixed into the CSV). It quotes file names and card names, anyone's text, shown as ``terminal_safe`` shows
    it: their escape sequences had reached the terminal."""
    tqdm.write(terminal_safe(printable(line)), file=sys.stderr)


def shown(out: str) -> str:
    """``out`` as messages name it."""
    return "standard output" if out == STDOUT else out


def open_rows(out: str, columns: list[str]) -> RowWriter:
    """The run's writer, its header in place: on standard output for ``-``, whose newlines are the CSV's own (a
    text stream on Windows would write each as \\r\\r\\n)."""
    if out != STDOUT:
        return RowWriter(out, columns=columns)
    with contextlib.suppress(AttributeError, ValueError):  # a stream that cannot be reconfigured writes as it does
        sys.stdout.reconfigure(newline="")  # type: ignore[union-attr]
    return RowWriter(shown(out), columns=columns, stream=sys.stdout)


def close_rows(writer: RowWriter, out: str) -> ReaderStopped | None:
    """``writer`` closed. A reader that stopped reading is returned, not raised: the run ends as it was ending (a
    Ctrl-C is still one, said as such)."""
    try:
        writer.close()
    except ReaderStopped as stop:
        return stop
    except BiasMirrorError:
        if out == STDOUT:
            stdout_gone()
        raise
    return None


def _run(args: argparse.Namespace) -> int:
    # Each session's fallback is said once, here: one line for all the models (and the detector) it holds for,
    # where the runtime's log had said each one and this loop again.
    with fallbacks_collected() as fallbacks:
        pipeline = pipeline_from_args(args)
    said_at_start = pipeline.provider_warnings()  # a frame's result repeats them: said here, not per frame
    models = [*pipeline.classifiers, *([pipeline.filter] if pipeline.filter else [])]
    named = {str(m.path): m.name for m in models}  # the models by the names their CSV columns carry
    # by name, not by inverting ``named``: one file given twice is two models (two names, one path), and the
    # inverted map had lost one, a KeyError at its first NaN
    files = {m.name: str(m.path) for m in models}
    collected = {w for _, w in fallbacks}
    for line in [*fallback_lines([(named.get(n, Path(n).name), w) for n, w in fallbacks]),
                 *(f"{m.name}: {m.info.warning}" for m in models if m.info.warning and m.info.warning not in collected)]:
        say(f"warning: {line}")
    source = open_source(args.source)
    # The columns from the settings, whatever the frames hold; the file put in place at the first frame analysed, so
    # that a source that yields none leaves an existing CSV as it was, while a run over frames without faces leaves
    # the header alone (it had left an earlier run's rows, which a script then read as this run's).
    columns = row_columns(m.name for m in pipeline.classifiers)
    writer: RowWriter | None = None
    stopped: ReaderStopped | None = None  # the pipe's reader closed it: the run ends there, no failure
    # what an error then says was replaced
    held_before = args.out != STDOUT and not written_in_place(args.out) and Path(args.out).exists()
    frames = skipped = 0
    warned: dict[str, int] = {}  # a frame's own warning (faces beyond those analysed): frames it was said of
    not_finite: dict[str, int] = {}  # a classifier that gave a face no finite P(female): frames it did so in
    # a bar with an end where the source knows it: a folder's or video's had shown only a count
    total = min(filter(None, (args.max_frames, source.expected)), default=None)
    try:
        # the bar's name is a file's, shown safe; the bar's own \r are tqdm's, written past terminal_safe
        with tqdm(desc=terminal_safe(f"processing {printable(source.name)}"), unit="frame", total=total) as bar:
            for frame in detecting_ahead(source, pipeline.detector, args.detect_depth):
                if frame.image is None:
                    skipped += 1
                    say(f"warning: {frame.warning}")  # a name not UTF-8 had stopped the run here
                    if source.live:
                        break
                    continue
                result = pipeline.process(frame.image, frame.timestamp, frame.name, detected=frame.detected,
                                          still=frame.still, video_s=frame.video_s)
                for w in result.warnings:
                    if w not in said_at_start:
                        if not warned:  # the first one as it happens; how often, at the end
                            say(f"warning: {frame.name}: {w}")
                        warned[w] = warned.get(w, 0) + 1
                for name in without_finite_p_female(result):
                    if name not in not_finite:  # the first frame as it happens; how many, at the end
                        say(f"warning: {frame.name}: classifier '{name}' gave no finite P(female) ({files[name]}): "
                            "its p_female cells are left empty; its training diverged?")
                    not_finite[name] = not_finite.get(name, 0) + 1
                if writer is None:
                    writer = open_rows(args.out, columns)
                writer.write_frame(result, time.monotonic())
                frames += 1
                bar.update(1)
                if args.max_frames and frames >= args.max_frames:
                    break
    except KeyboardInterrupt as stop:
        out = shown(args.out)
        kept = "written to" if args.out == STDOUT else "saved in"
        rows = f"{writer.rows} face row(s) {kept} {out}, each whole" if writer else f"no frame yet, {out} as it was"
        say(f"interrupted after {frames} frame(s): {rows}")
        raise StopSaid.of(stop) from stop
    except ReaderStopped as stop:
        stopped = stop
    except BiasMirrorError as exc:
        if args.out == STDOUT and exc.path == shown(STDOUT):
            stdout_gone()
        if writer is not None and exc.path in {str(p) for p in writer.paths}:
            raise  # the CSV's own write was refused: its error says the rows saved
        raise BiasMirrorError(f"{exc.message}; {rows_kept(writer, args.out, held_before)}", exc.path) from exc
    finally:
        if writer is not None:
            stopped = close_rows(writer, args.out) or stopped
        source.close()
    if source.end_warning:
        say(f"warning: {source.end_warning}")
    if warned:
        say(f"warning: {sum(warned.values())} frame(s) had more faces than are analysed (e.g. "
            f"{next(iter(warned))}): the others have no rows; --max-faces analyses more")
    for name, count in not_finite.items():
        say(f"warning: classifier '{name}' gave no finite P(female) in {count} frame(s): their p_female[{name}] "
            "cells are empty")
    if stopped is not None:
        return reader_stopped(stopped, args.out)
    if writer is None:  # no frame analysed
        what = f"all {skipped} of its frame(s) were unreadable" if skipped else "it gave no frames"
        raise BiasMirrorError(f"cannot be read: {what}; {shown(args.out)} was left as it was", args.source)
    if writer.rows == 0:
        say(f"{frames} frame(s), no face found in any: no rows, so {shown(args.out)} holds the header alone; "
            f"{skipped} unreadable frame(s) skipped")
        return 0
    say(f"{frames} frame(s), {writer.rows} face row(s) written to {shown(args.out)}; {skipped} unreadable frame(s) "
        "skipped")
    return 0


def reader_stopped(stop: ReaderStopped, out: str) -> int:
    """The end of a run whose pipe's reader closed it (``| head``): said in one line, status 0, as `head`-piped
    tools end. A broken pipe had been "error: … broken pipe; 1 rows saved", status 2, failing a pipefail script."""
    if out == STDOUT:
        stdout_gone()
    say(f"{shown(out)} {stop.message}")
    return 0


def rows_kept(writer: RowWriter | None, out: str, held_before: bool) -> str:
    """What an error that stopped the run left in ``out``: the CSV is replaced at the first frame analysed, and a
    model failing a few frames on had left a user's earlier CSV holding their rows alone, the error not saying so."""
    if writer is None:
        return "no row was written" + ("" if out == STDOUT else f", so {out} was left as it was")
    close_rows(writer, out)  # its rows flushed and counted before they are said
    if out == STDOUT:
        return f"{writer.rows_saved} face row(s) of the frames before it were written to {shown(out)}"
    replaced = " (what it held before was replaced)" if held_before else ""
    return f"{writer.rows_saved} face row(s) of the frames before it are in {out}{replaced}"


def without_finite_p_female(result: FrameResult) -> list[str]:
    """The classifiers that gave a face of ``result`` no finite P(female), as found or through the filter: a model
    whose training diverged gives NaN, written as an empty cell, which a run had done without a word."""
    views = [v for face in result.faces for v in (face.original, face.filtered) if v is not None]
    return sorted({name for v in views for name, out in v.classifiers.items() if not math.isfinite(out.p_female)})
