"""Typed wrappers around ONNX models, checked against their embedded card at load time.

``load_model(path)`` refuses a missing file, a truncated or non-ONNX file, a
file without a card, and a card that does not match the graph, each with one
``BiasMirrorError`` that names the file and the problem.
"""
from __future__ import annotations

import contextlib
import contextvars
import os
import queue
import re
import stat
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable, Collection, Iterable, Iterator, Sequence, TypeVar

import numpy as np
import onnxruntime as ort
from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

from .arg_checks import user_path
from .batching import bucket, buckets_up_to, pad_batch
from .card import METADATA_KEY, OUTPUT_NAMES, ModelCard, TensorSpec
from .errors import PERMISSION_DENIED, BiasMirrorError
from .fixed_binding import NP_TYPES, FixedBinding
from .program_name import program
from .runtime import CUDA, TRT, RuntimeConfig, SessionInfo, create_session

_ORT_TYPES = {"uint8": "tensor(uint8)", "float32": "tensor(float)", "float16": "tensor(float16)"}

# What ORT raises when a run fails (a kernel error, CUDA out of memory, a failing provider).
RUN_ERRORS = (ort_state.Fail, ort_state.RuntimeException, ort_state.EPFail, ort_state.InvalidArgument)


def _ort_status_errors() -> tuple[type[Exception], ...]:
    """Every exception class ORT's Python binding raises for a status: they derive from Exception, not RuntimeError,
    so each must be named to be caught, and a hand-picked list missed some (a model this user may not read raises
    ModelRequiresCompilation, "SystemError : 13", which had given a traceback in run, the audit and the app)."""
    return tuple(c for c in vars(ort_state).values() if isinstance(c, type) and issubclass(c, Exception))


LOAD_ERRORS = (*_ort_status_errors(), RuntimeError)
_OUT_OF_MEMORY = re.compile(r"out of memory|failed to allocate|ALLOC_FAILED|BFCArena", re.IGNORECASE)
# ORT's load errors open with a status code, the path and the C++ file, line and signature that raised them; the
# reason comes last, often past 200 characters.
_ORT_PREAMBLE = re.compile(r"^\[ONNXRuntimeError\] : \d+ : \w+ : (?:Load model from .*? failed:)?")
_CPP_LOCATION = re.compile(r"^\S+\.(?:cc|cpp|cxx|h|hpp):\d+ ")
_NEWER_IR = re.compile(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)")
_NEWER_OPSET = re.compile(r"Opset (\d+) is under development.*?support for domain (\S+) is till opset (\d+)")


def ort_reason(exc: BaseException) -> str:
    """The part of an ONNX Runtime error that says why, on one line."""
    text = _ORT_PREAMBLE.sub("", " ".join(str(exc).split()), count=1)
    if location := _CPP_LOCATION.match(text):
        text = text[location.end():]
        opened, depth = text.find("("), 0
        for i in range(opened, len(text) if opened >= 0 else 0):
            depth += {"(": 1, ")": -1}.get(text[i], 0)
            if depth == 0:  # the end of the function's parameter list: the message follows
                text = text[i + 1:].removeprefix(" const")
                break
    return text.strip() or type(exc).__name__


def load_failure(reason: str, path: Path | None = None) -> str:
    """Why a model file would not load; a well-formed model for a newer ONNX Runtime is not called corrupt, nor one
    whose weights lie in an external data file that is missing or cut short (``path``: the model, whose file names
    that data file where ONNX Runtime's reason does not)."""
    if path is not None and (denied := unreadable_by_this_user(path, reason)):
        return denied
    if external := external_data_failure(reason, path):
        return external
    if m := _NEWER_IR.search(reason):
        return (f"made for a newer ONNX Runtime (IR version {m[1]}; this one reads up to {m[2]}): "
                "upgrade onnxruntime or re-export the model with an older onnx package")
    if m := _NEWER_OPSET.search(reason):
        return (f"made for a newer ONNX Runtime (opset {m[1]} of {m[2].rstrip('.')}; this one "
                f"supports up to opset {m[3].rstrip('.')}): upgrade onnxruntime or re-export with an older opset")
    return f"not a readable ONNX model (truncated, corrupt or another format): {reason}"


# Where a model's weights are kept in an external data file it cannot use, as ONNX Runtime says it (run, the audit,
# the app) and as onnx does (train adopt reads the model with onnx): each said in one wording, naming the file
_EXTERNAL_MISSING = (re.compile(r'External data path does not exist: "([^"]+)"'),
                     re.compile(r"Random-access reads require a regular file: (.+?)\s*$"),  # ORT, of a folder
                     re.compile(r"should be stored in (.+), but it is not (?:a )?regular file"))  # onnx's checker
_EXTERNAL_SHORT = re.compile(r"External initializer: (\S+) offset: (\d+) size to read: (\d+) given file_length: (\d+)")
_ONNX_SHORT = re.compile(r"External data length \((\d+)\) exceeds available data \((\d+) bytes from offset (\d+)\) "
                         r"for tensor (['\"])(.*)\4")
_ONNX_PAST_END = re.compile(r"External data offset \((\d+)\) exceeds file size \((\d+)\) for tensor (['\"])(.*)\3")
_EXTERNAL_OUTSIDE = (re.compile(r'External data path escapes model directory\. External data path: "([^"]*)"'),
                     re.compile(r"should be file inside '.*', but '(.*)' points outside the directory"))
# ONNX Runtime names the weight, onnx the location
_ORT_ABSOLUTE = re.compile(r"for initializer: (.+?)\. Error: .*Absolute path not allowed for external data location")
_ONNX_ABSOLUTE = re.compile(r"should be a relative path, but it is an absolute path: (.+)$")
KEEP_WEIGHTS_INSIDE = "or re-export the model with its weights inside it"


def missing_external_data(data_file: object) -> str:
    """What to say of a model whose weights are kept in an external data file that does not exist."""
    return (f"not a readable ONNX model: its weights are kept in an external data file, {data_file}, which does not "
            f"exist (or is not a regular file): put that file where the model says, {KEEP_WEIGHTS_INSIDE}")


LET_THIS_USER_READ = "let this user read it (its owner may run chmod a+r on it)"
# How a refused read (errno 13) or an external data file is worded where a load fails: ONNX Runtime "SystemError :
# 13" or "system error number 13", onnx "kernel rejected path" or Python's "[Errno 13] Permission denied"
_MAY_BE_DENIED = re.compile(r"SystemError : 13\b|system error number 13\b|kernel rejected|\[Errno 13\]|"
                            r"permission denied|external (?:data|initializer)", re.IGNORECASE)


def unreadable_by_this_user(path: Path, reason: str = "") -> str | None:
    """What to say where this user may not read the model at ``path``, or an external data file it names in its
    folder; None where it may. Asked once a load has failed, for ``reason``: each refusal had been called a corrupt
    model or a traceback. The data files are looked for only where ``reason`` may be a refused read: finding them
    reads the model, and a load that failed for any reason had read a 600 MB file that was no model into memory."""
    if _denied(path):
        return f"the model file cannot be read by this user ({PERMISSION_DENIED}): {LET_THIS_USER_READ}"
    if not _MAY_BE_DENIED.search(reason):
        return None
    for location in external_data_files(path):
        data = path.parent / location
        if not os.path.isabs(location) and _denied(data):
            return (f"not a readable ONNX model: its weights are kept in an external data file, {data}, which cannot "
                    f"be read by this user ({PERMISSION_DENIED}): let this user read it (its owner may run chmod a+r "
                    f"on it; onnx.save writes data files readable by their owner alone), {KEEP_WEIGHTS_INSIDE}")
    return None


def _denied(file: Path) -> bool:
    """Whether this user is refused reading ``file``: a file it may not open, or one in a folder it may not enter.
    A missing file, or one that is no regular file, is not (another message says what it is)."""
    try:
        mode = file.stat().st_mode
    except PermissionError:
        return True
    except (OSError, ValueError):  # ValueError: a name no path can have ("w\0.bin"), which another message names
        return False
    return stat.S_ISREG(mode) and not os.access(file, os.R_OK)


def external_data_failure(reason: str, path: Path | None = None) -> str | None:
    """What to say where ``reason`` (ONNX Runtime's or onnx's) is a model's external data file missing, shorter
    than its weights, outside its folder or named by an absolute path; None for any other reason. It had been called
    "truncated, corrupt or another format" with ORT's C++ location, where `train adopt` named the missing file."""
    for missing in _EXTERNAL_MISSING:
        if m := missing.search(reason):
            return missing_external_data(m[1])
    if short := _short_read(reason):
        weight, start, end, length = short
        kept_in = _data_file_words(path, weight)
        lies = f"lies at bytes {start} to {end}" if end is not None else f"starts at byte {start}"
        return (f"not a readable ONNX model: its weights are kept in {kept_in} which is shorter than the model says "
                f"(weight '{weight}' {lies}; the file has {length}): put the whole file where the model says (a copy "
                f"cut short?), {KEEP_WEIGHTS_INSIDE}")
    for outside in _EXTERNAL_OUTSIDE:
        if m := outside.search(reason):
            return (f"not a readable ONNX model: its weights are said to be kept in an external data file outside the "
                    f"model's folder, {m[1]}, which ONNX Runtime does not read: put the data file in the model's "
                    f"folder, {KEEP_WEIGHTS_INSIDE}")
    location = _absolute_location(reason, path)
    if location is not None:
        named = f", {location}" if location else ""
        return (f"not a readable ONNX model: its weights are said to be kept in an external data file named by an "
                f"absolute path{named}, which ONNX Runtime does not read (it reads a path relative to the model's "
                f"folder): put the data file in the model's folder and name it relative to the model, "
                f"{KEEP_WEIGHTS_INSIDE}")
    return None


def _short_read(reason: str) -> tuple[str, int, int | None, int] | None:
    """(the weight, its first byte, the byte it ends at where said, the file's length) where ``reason`` says a
    weight runs past the end of its external data file."""
    if m := _EXTERNAL_SHORT.search(reason):
        return m[1], int(m[2]), int(m[2]) + int(m[3]), int(m[4])
    if m := _ONNX_SHORT.search(reason):  # "available" is what lies from the offset on
        return m[5], int(m[3]), int(m[3]) + int(m[1]), int(m[3]) + int(m[2])
    if m := _ONNX_PAST_END.search(reason):
        return m[4], int(m[1]), None, int(m[2])
    return None


def _absolute_location(reason: str, path: Path | None) -> str | None:
    """The absolute location ``reason`` refuses a weight's external data at ("" where the model does not say it),
    or None where ``reason`` is not that."""
    if m := _ONNX_ABSOLUTE.search(reason):
        return m[1].strip()
    if m := _ORT_ABSOLUTE.search(reason):
        return external_data_locations(path).get(m[1], "") if path is not None else ""
    return None


def _data_file_words(path: Path | None, weight: str) -> str:
    """The external data file ``weight`` is kept in, as a message names it ("an external data file, F,"): the one
    the model gives that weight (a model of six data files, one cut short, had been said to lack all six); every
    one only where the weight is not found in the model."""
    if path is None:
        return "an external data file"
    locations = external_data_locations(path)
    named = [locations[weight]] if weight in locations else list(dict.fromkeys(locations.values()))
    if not named:
        return "an external data file"
    return f"an external data file, {', '.join(str(path.parent / f) for f in named)},"


def external_data_locations(path: Path) -> dict[str, str]:
    """Each weight of the model at ``path`` kept in an external data file: its name → that file's location, as
    written in the model (relative to its folder), in the model's order; its subgraphs' weights included. Empty
    where the file cannot be read as a model (only asked once ONNX Runtime has refused it)."""
    import onnx  # here, not at the top: asked only on a failure, and onnx takes a while to import
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - protobuf's DecodeError and OSError alike: a file that is no model names none
        return {}
    locations: dict[str, str] = {}
    graphs = [model.graph]
    while graphs:  # a stack, not recursion: a graph's nodes may hold graphs (If, Loop), however deep
        graph = graphs.pop()
        for tensor in graph.initializer:
            if uses_external_data(tensor) and ExternalDataInfo(tensor).location:
                locations[tensor.name] = ExternalDataInfo(tensor).location
        graphs.extend(g for node in graph.node for attribute in node.attribute
                      for g in ([attribute.g] if attribute.HasField("g") else []) + list(attribute.graphs))
    return locations


def external_data_files(path: Path) -> list[str]:
    """The external data files the model at ``path`` names (as written in it, relative to its folder), in order."""
    return list(dict.fromkeys(external_data_locations(path).values()))


# Of ORT's message, what a failed run quotes: its first line, cut at a word (it had ended "… for re.").
_QUOTED_CHARS = 300


@contextlib.contextmanager
def explained_failures(model: "OnnxModel", n: int) -> Iterator[None]:
    """A failed run as a BiasMirrorError naming the model file, its provider and the batch, with what to
    try when it ran out of memory, instead of ORT's exception (which the app would show as a type name)."""
    try:
        yield
    except RUN_ERRORS as exc:
        text = str(exc).strip()
        first = cut_at_word((text.splitlines() or ["no message"])[0], _QUOTED_CHARS)
        message = f"{model.kind} '{model.name}' failed on {model.provider} with a batch of {n}: {first}"
        if _OUT_OF_MEMORY.search(text):
            message += (" " if first.endswith("…") else ". ") + out_of_memory_advice(model, n)
        raise BiasMirrorError(message, model.path) from exc


def out_of_memory_advice(model: "OnnxModel", n: int) -> str:
    """What to try where a run of ``model`` on a batch of ``n`` ran out of memory: the GPU's on a GPU provider; on
    the CPU the machine's, where running on the CPU had been the advice."""
    if model.info.provider in (CUDA, TRT):
        return ("Out of GPU memory: analyse fewer faces at a time (fewer in view, or a smaller --batch in the "
                "audit), use a smaller filter, or run on the CPU (--provider cpu)")
    return (f"Out of memory: the model needed more memory than this machine has for a batch of {n}; analyse fewer "
            "faces at a time (fewer in view, or a smaller --batch in the audit), or use a smaller model")


def cut_at_word(text: str, limit: int) -> str:
    """``text`` where it has at most ``limit`` characters; else cut after its last whole word that fits, with
    '…'."""
    if len(text) <= limit:
        return text
    space = text.rfind(" ", 0, limit + 1)  # a space just past the limit ends a word that fits
    return (text[:space] if space > 0 else text[:limit]).rstrip(" ,;:") + "…"


PYTORCH_FILE = "is a PyTorch checkpoint or saved model, not an ONNX model"


def is_pytorch_file(path: Path) -> bool:
    """Whether ``path`` is what torch.save writes: a training run writes last.pt beside its .onnx, and given where
    the model belongs it had read "truncated, corrupt" as if the run had gone wrong."""
    try:
        if zipfile.is_zipfile(path):  # torch.save's format since 1.6: a zip holding <name>/data.pkl
            with zipfile.ZipFile(path) as z:
                return any(n == "data.pkl" or n.endswith("/data.pkl") for n in z.namelist())
        # the older format is a pickle: told by its name too, as pickles are many things
        return path.suffix.lower() in (".pt", ".pth", ".ckpt") and _starts_a_pickle(path)
    except (OSError, zipfile.BadZipFile):
        return False


def pytorch_file(path: Path) -> str | None:
    """What to say of a PyTorch file given where one of the project's ONNX models belongs, or None."""
    if not is_pytorch_file(path):
        return None
    return (f"{PYTORCH_FILE}: give the .onnx file its training exported (a run folder of `{program()} train` holds it: "
            "model.onnx for a classifier, filter_A2B.onnx for a filter)")


def _starts_a_pickle(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(1) == b"\x80"  # pickle's PROTO opcode


NOT_UTF8 = "not a readable ONNX model: corrupt (its card or a name is not UTF-8 text)"


def _open(path: Path, cfg: RuntimeConfig) -> tuple[SessionInfo, ModelCard]:
    if not path.exists():
        raise BiasMirrorError("model file not found", path)
    if path.is_dir():
        raise BiasMirrorError("is a folder; give the model's .onnx file", path)
    if path.stat().st_size == 0:
        raise BiasMirrorError("the model file is empty", path)
    try:
        return _open_session(path, cfg)
    except UnicodeDecodeError as exc:
        # ORT's Python layer decodes the card, the graph's names and its own messages (which quote a node's name)
        # as UTF-8: one flipped bit in them had given a traceback in every command, and had stopped the app at each
        # start where the model was a saved choice
        raise BiasMirrorError(NOT_UTF8, path) from exc


def _open_session(path: Path, cfg: RuntimeConfig) -> tuple[SessionInfo, ModelCard]:
    """The session on the model at ``path`` and its card, checked against its graph."""
    try:
        info = create_session(path, cfg)
    except ort_state.NotImplemented as exc:
        # a well-formed graph with an operator or type this ONNX Runtime has no kernel for (it had given a
        # traceback in run and the app, and stopped the app's start-up when a saved filter was one)
        raise BiasMirrorError(f"this ONNX Runtime cannot run it: {ort_reason(exc)}; re-export it with operators and "
                              "types that ONNX Runtime implements on this provider (e.g. float32 rather than double)",
                              path) from exc
    except LOAD_ERRORS as exc:
        raise BiasMirrorError(pytorch_file(path) or load_failure(ort_reason(exc), path), path) from exc
    meta = info.session.get_modelmeta().custom_metadata_map
    if METADATA_KEY not in meta:
        raise BiasMirrorError(
            "this ONNX file has no Bias Mirror model card (metadata 'model_card'): train one with "
            f"`{program()} train …`, or give a filter or classifier made elsewhere a card with "
            f"`{program()} train adopt`",
            path,
        )
    card = ModelCard.from_json(meta[METADATA_KEY], path)
    _check_io(info.session, card, path)
    _check_cam_grid(card, path)
    return info, card


def _check_io(sess: ort.InferenceSession, card: ModelCard, path: Path) -> None:
    graph = {"input": {i.name: i for i in sess.get_inputs()}, "output": {o.name: o for o in sess.get_outputs()}}
    for role, specs in (("input", card.inputs), ("output", card.outputs)):
        for spec in specs:
            node = graph[role].get(spec.name)
            if node is None:
                raise BiasMirrorError(
                    f"the card names {role} '{spec.name}' but the graph's {role}s are {sorted(graph[role])}", path
                )
            if _ORT_TYPES.get(spec.dtype) != node.type:
                raise BiasMirrorError(f"{role} '{spec.name}' is {node.type} in the graph but {spec.dtype} in the card", path)
            if len(node.shape) != len(spec.shape) or any(
                isinstance(c, int) and isinstance(g, int) and c != g for c, g in zip(spec.shape, node.shape)
            ):
                raise BiasMirrorError(f"{role} '{spec.name}' has shape {node.shape} in the graph but {spec.shape} in the card", path)
            _check_batch_axis(role, spec, node.shape, path)
    undeclared = sorted(set(graph["input"]) - {t.name for t in card.inputs})
    if undeclared:
        raise BiasMirrorError(f"the graph takes input(s) {undeclared} that the card does not list, so nothing would "
                              "feed them", path)


def _check_cam_grid(card: ModelCard, path: Path) -> None:
    """A classifier's CAM grid in whole numbers, as the runtime reads it (the card may name the axes only while an
    exporter works the grid out)."""
    if card.kind != "classifier":
        return
    grid = card.cam["grid"]  # type: ignore[index]  # a list as long as the CAM's h×w: the card's checks saw to it
    if not all(isinstance(g, int) and not isinstance(g, bool) and g > 0 for g in grid):
        raise BiasMirrorError(f"the card's cam grid {grid!r} is not two positive whole numbers: re-export the model "
                              "(or adopt it again) to record its CAM's size", path)


def _check_batch_axis(role: str, spec: TensorSpec, graph_shape: list, path: Path) -> None:
    """A graph whose batch axis is fixed (at 1) under a card declaring a batch ("N") loaded, then failed on the
    first frame with two faces ("Got invalid dimensions")."""
    if isinstance(graph_shape[0], int) and isinstance(spec.shape[0], str):
        raise BiasMirrorError(
            f"{role} '{spec.name}' has its batch axis fixed at {graph_shape[0]} in the graph, but the card declares a "
            f"batch ('{spec.shape[0]}') and the runtime runs several at a time: re-export it with a dynamic batch axis",
            path)


# --- runs a stop can end -----------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM reach Python's handlers on the main thread alone, and only between bytecodes: a run there held
# them until ONNX Runtime returned, which a shared model with a 200M-iteration Loop made minutes (SIGTERM took 6.5),
# and a longer one never. So the main thread hands its runs to a thread of their own and waits in short steps; on a
# stop it sets the run's terminate flag, which ONNX Runtime reads between nodes and a Loop's iterations.
_WAIT_S = 0.1  # each step of the wait: POSIX interrupts a lock's wait for a signal, Windows does not
# How long a run told to end is waited for before the stop goes on without it: a Loop ends at its next iteration,
# one long kernel (a convolution over a huge input) is not cut short.
_TERMINATE_GRACE_S = 5.0
R = TypeVar("R")


class _Call:
    """One call handed to the run thread, and what came of it."""

    __slots__ = ("call", "done", "result", "error")

    def __init__(self, call: Callable[[], object]):
        self.call, self.result, self.error = call, None, None
        self.done = threading.Event()  # set by the run thread once the call has returned or raised

    def wait(self, timeout: float | None = None) -> bool:
        """Whether the call has ended, waited for in steps of ``_WAIT_S`` (so that a signal's handler runs between
        them) for up to ``timeout`` seconds (None: until it ends)."""
        end = None if timeout is None else time.monotonic() + timeout
        while not self.done.wait(_WAIT_S if end is None else max(0.0, min(_WAIT_S, end - time.monotonic()))):
            if end is not None and time.monotonic() >= end:
                return False
        return True


class _RunThread:
    """The thread the main thread's runs go to. One for the process, not one per run: a thread started per run cost
    about 85 µs a run, a hand-over to this one about 45 (a no-op run, on 2 loaded cores; a shipped classifier's run of
    a face takes 2-6 ms there), and the CUDA provider keeps its handles and CUDA graphs per thread, so every run of a
    session on one thread reuses them."""

    def __init__(self) -> None:
        self.busy = False
        self._calls: queue.SimpleQueue[_Call | None] = queue.SimpleQueue()
        threading.Thread(target=self._serve, name="onnx-runs", daemon=True).start()

    def _serve(self) -> None:
        while (call := self._calls.get()) is not None:
            try:
                call.result = call.call()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller, who raises it as its own
                call.error = exc
            self.busy = False
            call.done.set()

    def start(self, call: Callable[[], object]) -> _Call:
        self.busy = True
        handed = _Call(call)
        self._calls.put(handed)
        return handed

    def close(self) -> None:
        """Ends the thread once its call in hand is done."""
        self._calls.put(None)


_run_thread: _RunThread | None = None  # the main thread's alone: no lock


def _idle_run_thread() -> _RunThread:
    """The run thread; a fresh one where the last is still in a run that a stop gave up waiting for."""
    global _run_thread
    if _run_thread is None or _run_thread.busy:
        if _run_thread is not None:
            _run_thread.close()
        _run_thread = _RunThread()
    return _run_thread


def _forget_run_thread() -> None:
    global _run_thread
    _run_thread = None  # a forked child has no copy of the thread: its runs would have waited on it for ever


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_run_thread)


# The stop of the thread the context is in (``runs_end_when``); None where the thread has none (the main thread's are
# ended by Ctrl-C and SIGTERM, through ``stoppable_run``).
_runs_stop: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("runs_stop", default=None)


@contextlib.contextmanager
def runs_end_when(stop: threading.Event) -> Iterator[None]:
    """Within the block, a model run this thread begins once ``stop`` is set is ended as it begins. Set ``stop``, then
    call the models' ``stop_runs`` for the runs already under way: a stop that landed between two runs of a frame
    (or before its first, the frame still being cropped) had found none under way, and the next run, starting
    clean, could loop for days. The stop is the thread's own, not the models': two windows share models in tests,
    and one closing must not stop the other's runs."""
    token = _runs_stop.set(stop)
    try:
        yield
    finally:
        _runs_stop.reset(token)


def stoppable_run(run: Callable[[ort.RunOptions], R], options: ort.RunOptions) -> R:
    """``run(options)``; on the main thread, in the run thread while this one waits, so that Ctrl-C and SIGTERM
    (as KeyboardInterrupt) stop it: ``options.terminate`` is set, the run waited for up to ``_TERMINATE_GRACE_S``,
    and the KeyboardInterrupt raised. Elsewhere (the app's inference thread) in the calling thread, which no signal
    reaches: a stop there sets ``options.terminate`` itself (``OnnxModel.stop_runs``)."""
    if threading.current_thread() is not threading.main_thread():
        return run(options)
    call: _Call | None = None
    try:
        call = _idle_run_thread().start(lambda: run(options))
        call.wait()
    except KeyboardInterrupt:
        options.terminate = True  # also where the stop came as the run was handed over: it ends as it starts
        with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C ends the wait; the first stop is raised
            if call is not None:
                call.wait(_TERMINATE_GRACE_S)
        raise
    if call.error is not None:
        raise call.error
    return call.result  # type: ignore[return-value]


class OnnxModel:
    kind = ""

    def __init__(self, path: Path, info: SessionInfo, card: ModelCard, runtime: RuntimeConfig = RuntimeConfig()):
        if card.kind != self.kind:
            raise BiasMirrorError(f"this is a {card.kind} model, not a {self.kind}", path)
        self.path, self.info, self.card, self.runtime = path, info, card, runtime
        self.session = info.session
        self._by_batch: dict[int, ort.InferenceSession] = {}
        self._fixed: dict[int, FixedBinding] = {}  # per batch size, where the session replays CUDA graphs
        # Milliseconds inside ONNX Runtime's run() since loading; a frame's share is the difference across it.
        # On a GPU it says whether a frame waits on the models or on the host around them.
        self.run_ms = 0.0
        self._name: str | None = None
        self._running: set[ort.RunOptions] = set()  # of the runs under way, what ``stop_runs`` ends them by
        # Held while a run registers and while a stop reads ``_running``: a run registering as its thread is stopped
        # is either among those the stop ends or sees the stop set (``runs_end_when``), never neither.
        self._stop_lock = threading.Lock()

    @property
    def name(self) -> str:
        """The card's name, or the one ``name_uniquely`` gave it: results, columns and checkboxes are keyed by it."""
        return self._name or self.card.name

    @name.setter
    def name(self, value: str) -> None:
        self._name = value

    @property
    def provider(self) -> str:
        return self.info.short_provider

    @property
    def pads_batches(self) -> bool:
        """Whether batches are padded to a bucket size (see ``inference.batching``): on GPU providers."""
        return self.info.provider in (CUDA, TRT)

    def batch_size_for(self, n: int) -> int:
        return bucket(n) if self.pads_batches else n

    def session_for(self, n: int) -> tuple[ort.InferenceSession, int]:
        """The session that runs a batch of n, and the batch size it runs it at.

        On a GPU each bucket size gets a session of its own: ORT's CUDA convolutions
        keep the set-up (cuDNN descriptors, algorithm, workspace) of the last input shape
        only, so one session fed 4 faces then 8 then 4 redid it on every change, about
        30 ms a call on an H100 against 1-2 ms for a repeated shape. The first bucket
        seen adopts the session made at load time; the others are made when first met.
        """
        if not self.pads_batches:
            return self.session, n
        size = bucket(n)
        if size not in self._by_batch:
            self._by_batch[size] = (self.session if not self._by_batch
                                    else create_session(self.path, self.runtime).session)
        return self._by_batch[size], size

    def prepare_batches(self, max_n: int) -> int:
        """On a GPU, make and run once every bucket's session up to ``max_n`` items, so that the first
        frame with a new face count does not pay for it (a session and its cuDNN set-up took 60-640 ms
        a bucket on an H100). Returns how many buckets were prepared; nothing happens on the CPU."""
        if not self.pads_batches or max_n < 1:
            return 0
        sizes = buckets_up_to(max_n)
        # With CUDA graphs ORT runs once plainly (to allocate), records on the next run, then replays: both now.
        for _ in range(2 if self.info.cuda_graph else 1):
            for size in sizes:
                self._run({i.name: np.zeros([size if not isinstance(d, int) else d for d in i.shape], NP_TYPES[i.type])
                           for i in self.session.get_inputs()}, [o.name for o in self.card.outputs])
        return len(sizes)

    def _run(self, feeds: dict[str, np.ndarray], outputs: Sequence[str]) -> list[np.ndarray]:
        """Run on a batch (every feed's first axis is the batch), padded where it pays; ``outputs`` by name, in that
        order, cut back to the batch. By name, not position: a filter whose graph lists a mask before 'filtered'
        returned the mask."""
        n = len(next(iter(feeds.values())))
        session, size = self.session_for(n)
        if size != n:
            feeds = {k: pad_batch(v, size) for k, v in feeds.items()}
        t = time.perf_counter()
        try:
            with self.registered_run() as options, explained_failures(self, n):
                if not self.info.cuda_graph:
                    return [o[:n] for o in stoppable_run(lambda o: session.run(list(outputs), feeds, o), options)]
                if size not in self._fixed:
                    self._fixed[size] = FixedBinding(session, size)
                fixed = self._fixed[size]
                ran = stoppable_run(lambda o: fixed.run(feeds, o), options)
                got = dict(zip(fixed.outputs, ran))  # FixedBinding returns the session's order
                return [got[name][:n] for name in outputs]
        finally:
            self.run_ms += (time.perf_counter() - t) * 1000

    @contextlib.contextmanager
    def registered_run(self) -> Iterator[ort.RunOptions]:
        """The RunOptions for one run of this model's sessions (this model's own, or the device chain's on its
        behalf), known to ``stop_runs`` while the block runs: a run given none (the chain's) no stop could end.
        Pass them to the run through ``stoppable_run``, so that Ctrl-C ends it on the main thread too."""
        options = ort.RunOptions()  # one a run: a terminate flag once set stays set
        # A failed run's reason is raised and quoted (explained_failures); ORT's log of it on stderr said it again,
        # and a stop's "Exiting due to terminate flag" read as an error. Set now: ORT reads it as the run starts.
        options.log_severity_level = 4
        stop = _runs_stop.get()
        with self._stop_lock:
            options.terminate = stop is not None and stop.is_set()  # ORT then ends it as it starts
            self._running.add(options)
        try:
            yield options
        finally:
            with self._stop_lock:
                self._running.discard(options)

    def stop_runs(self) -> int:
        """Asks every run of this model under way, in any thread, to end (ONNX Runtime then raises, at its next
        node or Loop iteration): for a thread no signal reaches, such as the app's inference thread when the app
        closes. A run that registers after it, in a thread whose stop (``runs_end_when``) was set before this call,
        is ended as it starts. Returns how many runs under way were asked."""
        with self._stop_lock:
            running = list(self._running)
        for options in running:
            options.terminate = True
        return len(running)

    @property
    def image_name(self) -> str:
        """The name the card gives the image (a classifier's or filter's) input."""
        return self.card.image_input.name  # type: ignore[union-attr]

    def checked_faces(self, faces: np.ndarray) -> np.ndarray:
        """``faces`` as a classifier's or filter's image input takes them: a batch N×H×W×3 of uint8 RGB. Refused
        otherwise, saying how to pass them: faces as floats 0…1 had been cast to uint8 (all 0 or 1) and given every
        face P(female) 0.186 and near-black filtered faces, without an error; one face (H×W×3), its rows taken for
        the batch."""
        faces = np.asarray(faces)
        if faces.dtype != np.uint8:
            raise BiasMirrorError(f"{self.kind} '{self.name}' takes faces as uint8 RGB (0…255); got {faces.dtype}"
                                  + (" (floats 0…1? pass (faces * 255).round().astype(np.uint8))"
                                     if faces.dtype.kind == "f" else ""), self.path)
        if faces.ndim != 4 or faces.shape[3] != 3:
            one = " (one face: pass faces[None] for a batch of one)" if faces.ndim == 3 and faces.shape[2] == 3 else ""
            raise BiasMirrorError(f"{self.kind} '{self.name}' takes a batch of faces, an array of shape N × H × W × 3; "
                                  f"got shape {tuple(faces.shape)}{one}", self.path)
        return np.ascontiguousarray(faces)

    def checked_output(self, name: str, got: np.ndarray, n: int) -> np.ndarray:
        """``got``, this model's output ``name`` for a batch of ``n``, if it has the shape and type the card declares
        (a shape check, no more). The load check compares the graph's fixed axes alone: a filter whose graph leaves
        its output's axes open gave 4 channels, and the error blamed the classifier fed them; a classifier gave the
        first face's probs alone, and `run` ended in an IndexError."""
        spec = self.card.output(name)
        assert spec is not None  # the card's checks saw to the outputs a model's runs ask for
        declared = [n, *spec.shape[1:]]
        if got.dtype == np.dtype(spec.dtype) and got.ndim == len(declared) and all(
                isinstance(d, str) or d == g for d, g in zip(declared, got.shape)):
            return got
        raise BiasMirrorError(
            f"{self.kind} '{self.name}' gave its '{name}' output as {_shape_words(got.shape)} {got.dtype} for a batch "
            f"of {n}, where its card declares {_shape_words(declared)} {spec.dtype}: its graph does not give what its "
            "card says; re-export it (or adopt it again)", self.path)


def _shape_words(shape: Iterable) -> str:
    return "×".join(str(d) for d in shape) or "a scalar"


# How far a classifier's probs may be from probabilities: an fp16 variant's softmax rounds each of them to fp16 (by up
# to 2^-11 of itself, so a face's sum moves by under 5e-4); the shipped fp32 models sum to 1 within 2e-7.
PROBS_TOLERANCE = 1e-3


def not_probabilities(probs: np.ndarray) -> int | None:
    """The first row (face) of ``probs`` (N×K) that is not probabilities: a value outside 0…1 (an infinity included),
    or finite values that do not sum to 1; None where every row is. A row holding NaN is left alone: a model whose
    training diverged gives NaN, which the audit and evaluate say of by name (its P(female) not measured)."""
    outside = ((probs < -PROBS_TOLERANCE) | (probs > 1 + PROBS_TOLERANCE)).any(axis=1)
    complete = ~np.isnan(probs).any(axis=1)
    off_sum = complete & (np.abs(probs.sum(axis=1, dtype=np.float64) - 1) > PROBS_TOLERANCE)
    bad = np.flatnonzero(outside | off_sum)
    return int(bad[0]) if len(bad) else None


class Classifier(OnnxModel):
    kind = "classifier"

    @property
    def size(self) -> tuple[int, int]:
        return self.card.input_size  # type: ignore[return-value]

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.card.labels)

    def require_gender(self, role: str) -> None:
        """Refuses a classifier of other labels where P(female) is measured (a smile classifier adopted with
        ``--labels smile,neutral`` was read as unreadable faces, or failed after training), or of more (adopt, the
        audit and evaluate had each called a face "female" by another rule)."""
        if sorted(self.labels) != ["female", "male"]:  # a third label had been scored three ways (argmax, ≥ 0.5, f > m)
            raise BiasMirrorError(f"{role}: its labels are {', '.join(self.labels)}; this measures P(female) against "
                                  "P(male), so it needs a gender classifier whose labels are female and male alone "
                                  "(adopt it again with those two outputs)", self.path)

    def predict(self, faces: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """faces: N×H×W×3 RGB uint8 at the model's size → (probs N×K, raw cam N×K×h×w)."""
        faces = self.checked_faces(faces)
        if faces.shape[0] == 0:
            h, w = self.card.cam["grid"]  # type: ignore[index]
            return np.zeros((0, len(self.labels)), np.float32), np.zeros((0, len(self.labels), h, w), np.float32)
        probs, cam = self._run({self.image_name: faces},
                               ["probs", self.card.cam["output"]])  # type: ignore[index]
        return self.checked(probs, cam, faces.shape[0])

    def checked(self, probs: np.ndarray, cam: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``probs`` and ``cam`` for a batch of ``n`` as the card declares them, and ``probs`` probabilities: logits
        (a softmax left out) had been written as P(female) -1.70, and averaged by evaluate into CIs beyond 0…1."""
        probs = self.checked_output("probs", probs, n)
        cam = self.checked_output(self.card.cam["output"], cam, n)  # type: ignore[index]
        row = not_probabilities(probs)
        if row is not None:
            values = np.array2string(probs[row], precision=4, separator=", ", threshold=8)
            raise BiasMirrorError(
                f"classifier '{self.name}': its probs are not probabilities: a face got {values} (each must lie in "
                "0…1, and a face's sum to 1); a softmax missing? Re-export it with the softmax's output as 'probs'",
                self.path)
        return probs, cam


class Filter(OnnxModel):
    kind = "filter"

    @property
    def size(self) -> tuple[int, int]:
        return self.card.input_size  # type: ignore[return-value]

    @property
    def condition(self) -> TensorSpec | None:
        return self.card.input("condition")

    @property
    def condition_labels(self) -> tuple[str, ...]:
        """What a conditional filter can be asked for (its ``condition`` input's labels), in input order."""
        spec = self.condition
        if spec is None:
            return ()
        return tuple(spec.labels or [f"condition {i}" for i in range(int(spec.shape[1]))])

    def check_condition(self, label: str | None) -> str | None:
        """``label`` if this filter takes it; None (its first condition, if it has any) stays None."""
        if label is None:
            return None
        if not self.condition_labels:
            raise BiasMirrorError(f"filter '{self.name}' has no condition input, so there is no condition "
                                  f"{label!r} to choose", self.path)
        if label not in self.condition_labels:
            raise BiasMirrorError(f"filter '{self.name}' has no condition {label!r}; its conditions are "
                                  + ", ".join(self.condition_labels), self.path)
        return label

    def chosen_condition(self, label: str | None) -> str | None:
        """The condition that runs when ``label`` is asked for: it (checked), else the first; None for a filter
        that takes no condition."""
        label = self.check_condition(label)
        return label or (self.condition_labels[0] if self.condition_labels else None)

    def condition_rows(self, label: str | None, n: int) -> np.ndarray | None:
        """One-hot ``condition`` rows for ``n`` faces asking for ``label`` (None: the first), or None where the
        filter takes no condition."""
        chosen = self.chosen_condition(label)
        if chosen is None:
            return None
        rows = np.zeros((n, len(self.condition_labels)), np.float32)
        rows[:, self.condition_labels.index(chosen)] = 1.0
        return rows

    def apply(self, faces: np.ndarray, condition: np.ndarray | None = None) -> np.ndarray:
        """faces: N×H×W×3 RGB uint8 at the model's size → filtered faces, same shape; ``condition``: N×K rows for
        a conditional filter (default: its first condition, ``condition_rows``)."""
        faces = self.checked_faces(faces)
        if faces.shape[0] == 0:
            return faces.copy()
        feeds = {self.image_name: faces}
        if self.condition is not None:
            if condition is None:
                condition = self.condition_rows(None, faces.shape[0])
            feeds[self.condition.name] = np.asarray(condition, np.float32)
        return self.checked(self._run(feeds, [OUTPUT_NAMES["filter"]])[0], faces.shape[0])

    def checked(self, filtered: np.ndarray, n: int) -> np.ndarray:
        """``filtered`` for a batch of ``n`` as the card declares it (N×H×W×3 uint8): a filter giving 4 channels, or
        the first face alone, had failed in the classifiers or the skin measure, which were blamed."""
        return self.checked_output(OUTPUT_NAMES["filter"], filtered, n)


class Generator(OnnxModel):
    kind = "generator"

    @property
    def latent_dim(self) -> int:
        return int(self.card.inputs[0].shape[1])

    def generate(self, z: np.ndarray) -> np.ndarray:
        """Faces for a batch of latents ``z`` (N × latent_dim). A single latent (1-D) is refused, not run: its
        length had been taken for the batch ("failed … with a batch of 16")."""
        z = np.asarray(z, np.float32)
        if z.ndim != 2 or z.shape[1] != self.latent_dim:
            raise BiasMirrorError(
                f"generator '{self.card.name}' takes a batch of latents, an array of shape N × {self.latent_dim}; got "
                f"shape {tuple(z.shape)}" + (" (one latent: pass z[None] for a batch of one)"
                                              if z.ndim == 1 and len(z) == self.latent_dim else ""), self.path)
        return self.checked_output(OUTPUT_NAMES["generator"],
                                   self._run({self.card.inputs[0].name: z}, [OUTPUT_NAMES["generator"]])[0], len(z))


KINDS = {"classifier": Classifier, "filter": Filter, "generator": Generator}


def load_model(path: str | Path, kind: str | None = None, runtime: RuntimeConfig = RuntimeConfig()) -> OnnxModel:
    """Load any Bias Mirror model; with ``kind``, refuse a model of another kind. ``~`` (``~user``) is expanded, as
    for datasets and outputs: `run --classifier=~/m.onnx` had been "model file not found" of a file in the home
    folder."""
    path = user_path(path)
    info, card = _open(path, runtime)
    if kind is not None and card.kind != kind:
        raise BiasMirrorError(f"this is a {card.kind} model, but a {kind} was expected here", path)
    return KINDS[card.kind](path, info, card, runtime)


M = TypeVar("M", bound=OnnxModel)


def unique_name(name: str, taken: Collection[str]) -> str:
    """``name``, else the first of ``name#2``, ``name#3``… not in ``taken``."""
    out, k = name, 2
    while out in taken:
        out, k = f"{name}#{k}", k + 1
    return out


def name_uniquely(models: Sequence[M], taken: Iterable[str] = ()) -> Sequence[M]:
    """Name each model by its card, numbered where that name is already taken (by ``taken`` or an earlier model).

    Two files may carry one card name (a retrained copy, the same file given twice); under one name the second
    would silently replace the first's outputs, columns and checkbox. In order, so the same list is named the
    same way each time. Returns ``models``.
    """
    seen = set(taken)
    for m in models:
        m.name = unique_name(m.card.name, seen)
        seen.add(m.name)
    return models


def loaded_from(models: Iterable[M], path: str | Path) -> M | None:
    """The model among ``models`` read from the file at ``path``, whatever it is named: giving a loaded file again
    (``--filter`` naming the default filter, "Add classifier…" on one in use) must not add a second copy."""
    try:
        target = user_path(path).resolve()
    except BiasMirrorError:  # a ~user unknown here names no file, so none loaded: loading it says why
        return None
    return next((m for m in models if Path(m.path).resolve() == target), None)


def read_card(path: str | Path) -> ModelCard:
    return _open(user_path(path), RuntimeConfig(provider="cpu", threads=1))[1]


def find_models(folder: str | Path) -> list[Path]:
    folder = Path(folder)
    return sorted(folder.glob("*.onnx")) if folder.is_dir() else []
