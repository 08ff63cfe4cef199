"""ONNX Runtime sessions: provider choice, thread counts, and an honest fallback report.

ORT lists CUDA and TensorRT as *available* whenever onnxruntime-gpu is
installed, GPU or not, and silently falls back to the CPU when a provider
cannot start. So the provider a model really runs on is read back from the
created session, and any difference from what was asked is a warning the
app and the CLI show.
"""
from __future__ import annotations

import contextlib
import contextvars
import ctypes
import functools
import io
import locale
import logging
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import BiasMirrorError
from .program_name import program
from .user_dirs import default_cache_dir

log = logging.getLogger(__name__)


# --- numbers in ONNX Runtime's own text ------------------------------------------
# ORT parses some operators' definitions from text when it is imported, numbers with the C library's strtof, which
# reads LC_NUMERIC: imported where it writes a decimal comma (de_DE; Qt's QApplication calls setlocale(LC_ALL, "") on
# Unix, as does a script's locale.setlocale), HardSwish's constants 1/6 and 0.5 read as 0, and the shipped MobileNet
# gave every face P(female) 0.4886 and an all-zero CAM, without an error. Only the import reads it (ORT 1.31: every
# shipped model and 16 activation and normalisation operators give the same outputs whatever the locale at session
# creation or run), and what it parsed stays for the process. So onnxruntime is imported below with numbers read the
# C way, on this thread alone where the C library can (uselocale: the app's other threads, and the caller's own
# locale, are untouched); sessions are made so too, in case an ORT parses text there; and the first session checks
# that the ORT of this process, whoever imported it, reads its numbers right (``ort_numbers_problem``).

@functools.cache
def _thread_locales() -> ctypes.CDLL | None:
    """The C library with POSIX 2008's per-thread locales (newlocale, uselocale), or None where it has none
    (Windows)."""
    try:
        libc = ctypes.CDLL(None)
        functions = (libc.newlocale, libc.uselocale, libc.duplocale, libc.freelocale)
    except (OSError, TypeError, AttributeError):
        return None
    for function in functions:
        function.restype = ctypes.c_void_p
    libc.newlocale.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_void_p]
    libc.uselocale.argtypes = libc.duplocale.argtypes = libc.freelocale.argtypes = [ctypes.c_void_p]
    return libc


@contextlib.contextmanager
def c_numbers_on_this_thread() -> Iterator[bool]:
    """While the block runs, C code on this thread reads and writes numbers the C way ("." for the decimal point),
    its other categories as they were; other threads keep theirs. Yields False, changing nothing, where the C library
    has no per-thread locales."""
    libc = _thread_locales()
    # LC_NUMERIC_MASK is 1 << LC_NUMERIC in glibc, musl, macOS and the BSDs
    base = libc.duplocale(libc.uselocale(None)) if libc else None  # uselocale(NULL) asks, changing nothing
    numeric = libc.newlocale(1 << locale.LC_NUMERIC, b"C", base) if base else None  # takes base over
    if not numeric:
        if base:
            libc.freelocale(base)
        yield False
        return
    previous = libc.uselocale(numeric)
    try:
        yield True
    finally:
        libc.uselocale(previous)
        libc.freelocale(numeric)


@contextlib.contextmanager
def c_numbers() -> Iterator[None]:
    """Numbers read the C way while the block runs: on this thread alone where the C library can, else process-wide
    (setlocale), put back after. For onnxruntime's import, once, before the threads that would see it."""
    with c_numbers_on_this_thread() as held:
        if held:
            yield
            return
    previous = locale.setlocale(locale.LC_NUMERIC)
    locale.setlocale(locale.LC_NUMERIC, "C")
    try:
        yield
    finally:
        locale.setlocale(locale.LC_NUMERIC, previous)


with c_numbers():
    import onnxruntime as ort

_ORT_SESSION = ort.InferenceSession  # the probe's own, whatever stands in for ORT's sessions later (tests' stubs)

TRT, CUDA, CPU = "TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"
SHORT = {TRT: "TensorRT", CUDA: "CUDA", CPU: "CPU"}
PREFERENCES = {
    "auto": [TRT, CUDA, CPU],
    "tensorrt": [TRT, CUDA, CPU],
    "cuda": [CUDA, CPU],
    "cpu": [CPU],
}


@dataclass(frozen=True)
class RuntimeConfig:
    provider: str = "auto"  # auto | tensorrt | cuda | cpu
    threads: int | None = None  # intra-op threads; None: all cores
    trt_cache_dir: str | None = None  # TensorRT engine cache; None: a user cache folder
    # cuDNN's EXHAUSTIVE search (ORT's default) benchmarks every algorithm on each new input
    # shape, about a second per shape per model on an H100; HEURISTIC asks cuDNN's rules instead.
    cudnn_conv_algo_search: str = "HEURISTIC"  # EXHAUSTIVE | HEURISTIC | DEFAULT
    # CUDA graphs: each run replays the kernels recorded on an early one, one launch instead of one per node
    # (inference/fixed_binding.py). ORT refuses them for a model with compute nodes off CUDA; then the
    # session runs without, and says why.
    cuda_graph: bool = False
    # TensorFloat-32 in the CUDA provider's float matrix products and convolutions (ORT's default on Ampere
    # and later): faster, with 10-bit mantissas in the products. Off where a graph must give the host's numbers
    # to the grey level (the device chain's resize), on for the models, whose parity holds either way.
    tf32: bool = True
    # ORT's own lines while a GPU provider fails to start go to the debug log, the reason into one warning. fd 2 and
    # sys.stdout are the process's: a program whose other threads print meanwhile (the app) turns this off, or their
    # lines went into the model's debug log instead of the console.
    capture_ort_output: bool = True
    # Why GPU providers did not start here, as (provider, reason), from a session made earlier with ORT's output
    # captured: a program that leaves it uncaptured (the app) gives them, and its models' warnings still say why.
    provider_failures: tuple[tuple[str, str], ...] = ()


@dataclass
class SessionInfo:
    session: ort.InferenceSession
    provider: str  # the provider that actually runs the model
    requested: str
    warning: str | None = None  # the provider asked for explicitly could not be used
    note: str | None = None  # "auto" settled on the CPU: expected on a machine without a GPU
    cuda_graph: bool = False  # runs replay a CUDA graph (asked for, and ORT accepted it)
    skipped: str | None = None  # a provider left out before ORT was asked, and why (TensorRT without its cache)
    reasons: dict[str, str] = field(default_factory=dict)  # why each provider tried before ``provider`` did not start

    @property
    def short_provider(self) -> str:
        return SHORT.get(self.provider, self.provider)


def cuda_device_count() -> int:
    """CUDA devices visible to the driver (0 without a GPU or driver); never raises."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        count = ctypes.c_int(0)
        if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    return 0


def nvidia_library_dirs(cuda_major: str | None) -> dict[str, list[Path]]:
    """Folders of the nvidia-* and TensorRT pip packages anywhere on sys.path, by kind.

    CUDA 13 wheels put every CUDA library in ``nvidia/cu13/lib``; CUDA 12 ones in
    ``nvidia/<component>/lib``; cuDNN keeps ``nvidia/cudnn/lib``; TensorRT's
    ``tensorrt-cu*-libs`` installs ``tensorrt_libs``.
    """
    found: dict[str, list[Path]] = {"cuda": [], "cudnn": [], "tensorrt": []}
    for entry in dict.fromkeys(sys.path):
        root = Path(entry or ".")
        nvidia = root / "nvidia"
        if nvidia.is_dir():
            if cuda_major and (nvidia / f"cu{cuda_major}" / "lib").is_dir():
                found["cuda"].append(nvidia / f"cu{cuda_major}" / "lib")
            found["cuda"] += [d / "lib" for d in sorted(nvidia.iterdir())
                              if d.name not in ("cudnn", f"cu{cuda_major}") and not d.name.startswith("cu1")
                              and (d / "lib").is_dir()]
            if (nvidia / "cudnn" / "lib").is_dir():
                found["cudnn"].append(nvidia / "cudnn" / "lib")
        if (root / "tensorrt_libs").is_dir():
            found["tensorrt"].append(root / "tensorrt_libs")
    return found


def ort_cuda_version() -> str | None:
    """The CUDA version this onnxruntime was built for ("13.0"), None for a CPU-only build."""
    try:
        from onnxruntime.capi.build_and_package_info import cuda_version  # type: ignore[attr-defined]
    except ImportError:
        return None
    return str(cuda_version) if cuda_version else None


def preload_gpu_libraries(tensorrt: bool = False) -> list[str]:
    """Load CUDA/cuDNN (and TensorRT) from pip packages before a GPU session is created; once per process.

    ``onnxruntime.preload_dlls()`` looks for the nvidia-* packages next to
    onnxruntime itself, which misses them when onnxruntime-gpu is installed
    elsewhere (``pip install --target``, another venv on PYTHONPATH). So the
    folders are looked up on sys.path and passed to it; without any, it falls
    back to the loader's own path (LD_LIBRARY_PATH, ldconfig). Returns what
    ORT printed (its failures), which callers may log.
    """
    return [*_preload_cuda(), *(_preload_tensorrt() if tensorrt else ())]


@functools.cache  # loading a library is process-wide: once is enough
def _preload_cuda() -> tuple[str, ...]:
    if not hasattr(ort, "preload_dlls"):
        return ()
    version = ort_cuda_version()
    major = version.split(".")[0] if version else None
    dirs = nvidia_library_dirs(major)
    # One folder holds every CUDA library only in the CUDA 13+ layout (nvidia/cu13/lib).
    consolidated = [d for d in dirs["cuda"] if d.parent.name == f"cu{major}"]
    beside = Path(ort.__file__).resolve().parent.parent / "nvidia"
    messages: list[str] = []
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            if beside.is_dir() or not (consolidated or dirs["cudnn"]):
                ort.preload_dlls()
            else:
                if consolidated:
                    ort.preload_dlls(cuda=True, cudnn=False, directory=str(consolidated[0]))
                if dirs["cudnn"]:
                    ort.preload_dlls(cuda=False, cudnn=True, directory=str(dirs["cudnn"][0]))
        except (OSError, RuntimeError) as exc:
            messages.append(f"onnxruntime.preload_dlls: {exc}")
    messages += [ln for ln in out.getvalue().splitlines() if ln.strip()]
    return _logged(messages)


@functools.cache
def _preload_tensorrt() -> tuple[str, ...]:
    messages: list[str] = []
    for d in nvidia_library_dirs(None)["tensorrt"][:1]:
        for lib in sorted(d.glob("libnv*.so.*"), key=lambda p: (not p.name.startswith("libnvinfer.so"), p.name)):
            try:
                ctypes.CDLL(str(lib), mode=ctypes.RTLD_GLOBAL)
            except OSError as exc:
                messages.append(f"{lib}: {exc}")
    return _logged(messages)


def _logged(messages: list[str]) -> tuple[str, ...]:
    for m in messages:
        log.debug("GPU library preload: %s", m)
    return tuple(messages)


def device_of(provider: str) -> str:
    """Where a session's inputs and outputs live for I/O binding: "cuda" for the GPU providers, else "cpu"."""
    return "cuda" if provider in (CUDA, TRT) else "cpu"


def choose_providers(preference: str, available: list[str], gpus: int) -> tuple[list[str], str | None]:
    """The provider list to ask ORT for, and a note when the preference cannot be met.

    Pure function of its inputs so the choice can be tested with stubbed lists.
    """
    if preference not in PREFERENCES:
        raise ValueError(f"provider preference {preference!r} is not one of {', '.join(PREFERENCES)}")
    wanted = PREFERENCES[preference]
    chosen = [p for p in wanted if p in available and (p == CPU or gpus > 0)]
    if CPU not in chosen:
        chosen.append(CPU)
    note = None
    if preference != "cpu" and chosen == [CPU]:
        why = "no CUDA GPU is visible" if gpus == 0 else "onnxruntime-gpu is not installed"
        note = f"{why}: running on the CPU (asked for {preference})"
    return chosen, note


def tensorrt_cache_dir(cfg: RuntimeConfig) -> Path:
    """Where TensorRT keeps its engines: ``cfg.trt_cache_dir``, else ``$XDG_CACHE_HOME/bias-mirror/tensorrt``."""
    return Path(cfg.trt_cache_dir) if cfg.trt_cache_dir else default_cache_dir() / "tensorrt"


def tensorrt_cache_problem(cfg: RuntimeConfig) -> str | None:
    """Make the TensorRT engine cache folder; None when it is there and writable, else what is wrong and how to
    move it. A folder that cannot be made stopped every command that put TensorRT first (`auto` on a GPU), even
    where TensorRT is not installed: now TensorRT alone is left out of that session."""
    cache = tensorrt_cache_dir(cfg)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        problem = None if os.access(cache, os.W_OK | os.X_OK) else "it is not writable"
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename and str(exc.filename) != str(cache) else ""
        problem = f"it cannot be created: {exc.strerror or exc}{where}"
    if problem is None:
        return None
    move = ("give RuntimeConfig.trt_cache_dir a writable folder" if cfg.trt_cache_dir
            else "set XDG_CACHE_HOME to a writable folder to move it")
    return f"TensorRT skipped: its engine cache folder {cache} is unusable ({problem}); {move}"


def _provider_options(providers: list[str], cfg: RuntimeConfig) -> list:
    """ORT's provider list with each one's options; TensorRT's cache folder is made by ``tensorrt_cache_problem``."""
    out = []
    for p in providers:
        if p == TRT:
            out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(tensorrt_cache_dir(cfg)),
                            "trt_fp16_enable": False}))
        elif p == CUDA:
            options = {"cudnn_conv_algo_search": cfg.cudnn_conv_algo_search, "use_tf32": "1" if cfg.tf32 else "0"}
            if cfg.cuda_graph:
                options["enable_cuda_graph"] = "1"
            out.append((p, options))
        else:
            out.append(p)
    return out


# --- what ONNX Runtime prints -------------------------------------------------
# ORT writes why a provider failed to load to the process's stderr (file descriptor 2, from C++, in colour), and
# its Python layer prints an "EP Error … Falling back … retrying" block to stdout: per model, several lines each.
# Sessions asking for a GPU provider, and doctor's probe, capture both; the text goes to the debug log and the one
# line that says why into the session's warning.
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FD2_LOCK = threading.RLock()  # fd 2 is the process's: one capture at a time, or a restore could leave it redirected


@contextlib.contextmanager
def captured_fd2() -> Iterator[list[str]]:
    """Collect what native code writes to file descriptor 2 while the block runs."""
    text: list[str] = []
    with _FD2_LOCK:
        if sys.stderr is not None:  # None under pythonw, or with stderr closed
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (2>&-): nothing to capture, and the session must still be made
            yield text
            return
        with tempfile.TemporaryFile() as tmp:
            os.dup2(tmp.fileno(), 2)
            try:
                yield text
            finally:
                os.dup2(saved, 2)
                os.close(saved)
                tmp.seek(0)
                text.append(_ANSI.sub("", tmp.read().decode(errors="replace")))


@contextlib.contextmanager
def ort_output_captured() -> Iterator[list[str]]:
    """Collect what ORT writes while the block runs: its native log (fd 2), then its Python layer's prints (stdout);
    the list holds the text once the block has ended, raised or not."""
    out: list[str] = []
    log: list[str] = []
    printed = io.StringIO()
    try:
        with captured_fd2() as log, contextlib.redirect_stdout(printed):
            yield out
    finally:
        out.append((log[0] if log else "") + printed.getvalue())


def failure_reason(log: str, last_line: bool = True) -> str | None:
    """The most telling line of ORT's log about a provider that did not start (with ``last_line``, the last line
    where none says more)."""
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for pattern in (r"with error: (.*)", r"(CUDA failure \d+.*|CUDNN failure.*|cudaError\w*.*)",
                    r"\] (Failed to create \w+ExecutionProvider.*?)(?: Please|$)", r"\] (.*(?:TensorRT|TRT).*error.*)"):
        for ln in lines:
            m = re.search(pattern, ln)
            if m:
                return m.group(1).strip()[:300]
    return lines[-1][-300:] if lines and last_line else None


_PROVIDER_WORDS = {TRT: ("tensorrt",), CUDA: ("providers_cuda", "cudaexecutionprovider", "cuda failure", "cudnn",
                                               "cudaerror")}
_FOLDERS = re.compile(r"(?<![\w.])/(?:[^\s/:'\"]+/)+")


def provider_reasons(log: str, providers: list[str]) -> dict[str, str]:
    """Why each of ``providers`` did not start, from ORT's captured text, library paths without their folders. With
    several, a provider's reason comes from the lines that name it alone ("when using [TensorRT…, CUDA…]" names
    both)."""
    out = {}
    lines = [ln for ln in log.splitlines() if ln.strip()]
    for p in providers:
        own = lines
        if len(providers) > 1:
            mine = _PROVIDER_WORDS.get(p, (p.lower(),))
            others = [w for q in providers if q != p for w in _PROVIDER_WORDS.get(q, (q.lower(),))]
            own = [ln for ln in lines if any(w in ln.lower() for w in mine) and not any(w in ln.lower() for w in others)]
        reason = failure_reason("\n".join(own), last_line=False)
        if reason:
            out[p] = _FOLDERS.sub("", reason)[:200]
    return out


# --- who says a session's warning ----------------------------------------------
# a context variable, not a module list: a collector belongs to the thread (and task) that opened it, so the
# app's workers creating sessions meanwhile still log their own warnings
_collector: contextvars.ContextVar[list[tuple[str, str]] | None] = contextvars.ContextVar("fallbacks", default=None)


@contextlib.contextmanager
def fallbacks_collected() -> Iterator[list[tuple[str, str]]]:
    """While the block runs, sessions' warnings are collected as (model, warning), the model by its file (a
    serialised one by its name), for the caller to say (see
    ``fallback_lines``), and logged at debug level only: `run` had said each twice, the log's and its own."""
    found: list[tuple[str, str]] = []
    token = _collector.set(found)
    try:
        yield found
    finally:
        _collector.reset(token)


def fallback_lines(found: list[tuple[str, str]]) -> list[str]:
    """One line per distinct warning, naming every model it was said of: "a.onnx, b.onnx and the Haar cascade: …"."""
    by_warning: dict[str, list[str]] = {}
    for name, warning in found:
        names = by_warning.setdefault(warning, [])
        if name not in names:
            names.append(name)
    return [f"{names[0] if len(names) == 1 else ', '.join(names[:-1]) + ' and ' + names[-1]}: {warning}"
            for warning, names in by_warning.items()]


_GRAPH_NAMES = {"haar_cascade": "the Haar cascade", "probe": "doctor's probe model"}


def model_label(model: str | Path | bytes) -> str:
    """A model's name in messages: its file's name, or for a serialised one what its graph is called (the Haar
    cascade had been "an in-memory model")."""
    if not isinstance(model, bytes):
        return Path(model).name
    try:
        import onnx

        graph = onnx.ModelProto.FromString(model).graph.name
    except Exception:  # noqa: BLE001 - not a model onnx reads: ORT will say so, this only names it
        graph = ""
    if graph.startswith("resize_"):
        return f"the device chain's resize ({graph[len('resize_'):].replace('_to_', '→')} px)"
    return _GRAPH_NAMES.get(graph) or (f"the in-memory model '{graph}'" if graph else "an in-memory model")


# --- falling back: ours, not ORT's -------------------------------------------------
# ORT's Python layer retries a session that failed to start on ["CUDAExecutionProvider", "CPUExecutionProvider"] with
# no provider options at all: where TensorRT's libraries were missing (the default onnxruntime-gpu install), every
# model ran on CUDA without our options (cuDNN's exhaustive search: 1.2 frames/s at 16 faces, performance.md). And a
# run() that failed with EP_FAIL moved the session to the CPU unseen, the model still saying CUDA. Both are off
# (``enable_fallback=0``); create_session tries the providers itself, each with its options, and a failed run is an
# error that names the model (inference.models.explained_failures).

def _ort_session(model: str | bytes, so: ort.SessionOptions, providers: list[str], cfg: RuntimeConfig):
    """ORT's session on ``providers``, each with its options, without ORT's own fallback (see above)."""
    with c_numbers_on_this_thread():  # not process-wide: the app makes sessions on workers while others draw
        return ort.InferenceSession(model, sess_options=so, providers=_provider_options(providers, cfg),
                                    enable_fallback=0)


# --- whether this process's ORT reads its numbers right ------------------------------

def _proto_field(number: int, value: int | str | bytes) -> bytes:
    """One protobuf field: an int as a varint, text and bytes length-delimited."""
    def varint(n: int) -> bytes:
        out = bytearray()
        while n > 0x7F:
            out.append(n & 0x7F | 0x80)
            n >>= 7
        return bytes(out) + bytes([n])

    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def _hardswish_model(n: int) -> bytes:
    """An ONNX model of one node, y = HardSwish(x) over ``n`` floats (opset 17, the shipped MobileNet's), serialised
    here: the onnx package takes over a second to import, which every process's first session would wait for."""
    floats = _proto_field(1, _proto_field(1, 1) + _proto_field(2, _proto_field(1, _proto_field(1, n))))
    node = _proto_field(1, "x") + _proto_field(2, "y") + _proto_field(4, "HardSwish")
    graph = (_proto_field(1, node) + _proto_field(2, "numbers_probe")
             + _proto_field(11, _proto_field(1, "x") + _proto_field(2, floats))
             + _proto_field(12, _proto_field(1, "y") + _proto_field(2, floats)))
    return _proto_field(1, 8) + _proto_field(7, graph) + _proto_field(8, _proto_field(2, 17))  # IR 8, opset 17


@functools.cache  # what ORT parsed at its import stays for the process: once tells
def ort_numbers_problem() -> str | None:
    """Why this process's ORT cannot be trusted, where it reads the constants of its own operators wrongly (imported
    by someone else under a decimal-comma locale: see "numbers in ONNX Runtime's own text" above); None where it
    reads them right, or where the probe itself could not run (it then proves nothing)."""
    x = np.linspace(-4, 4, 9, dtype=np.float32)
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.log_severity_level = 3
    try:
        with c_numbers_on_this_thread():  # as our sessions are made: what is probed is what ORT's import parsed
            probe = _ORT_SESSION(_hardswish_model(x.size), sess_options=so, providers=[CPU])
        y = probe.run(None, {"x": x})[0]
    except Exception:  # noqa: BLE001 - ORT's own error types; a probe that cannot run refuses nothing
        log.debug("the probe of ORT's HardSwish did not run", exc_info=True)
        return None
    if np.allclose(y, x * np.clip(x / 6 + 0.5, 0, 1), atol=1e-6):  # HardSwish as ONNX defines it
        return None
    return ("this process's ONNX Runtime reads the constants of its own operators wrongly (HardSwish gives "
            f"{np.array2string(y[-3:], precision=3, separator=', ')} for {x[-3:].tolist()}), so models would give "
            "wrong outputs without an error: it was imported while the C locale wrote numbers with a decimal comma "
            "(LC_NUMERIC of a locale like de_DE, which a QApplication built or a locale.setlocale(locale.LC_ALL, "
            "\"\") called before it sets). Import inference.runtime (inference.models imports it) before either, "
            "and start the process again")


def _session_on(model: str | bytes, so: ort.SessionOptions, providers: list[str],
                cfg: RuntimeConfig) -> tuple[ort.InferenceSession, str | None]:
    """A session on ``providers``, and why ORT refused CUDA graphs where they were asked for and it did (the session
    is then made without them); raises what ORT raised where the providers themselves do not start."""
    if not (cfg.cuda_graph and CUDA in providers):
        return _ort_session(model, so, providers, cfg), None
    try:
        return _ort_session(model, so, providers, cfg), None
    except Exception as exc:  # noqa: BLE001 - ORT's own error types; a refused CUDA graph is told by trying without
        refused = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return _ort_session(model, so, providers, replace(cfg, cuda_graph=False)), refused


def _first_that_starts(model: str | bytes, so: ort.SessionOptions, providers: list[str],
                       cfg: RuntimeConfig) -> tuple[ort.InferenceSession, str | None, dict[str, str]]:
    """The session on the first of ``providers`` (the CPU last) that starts: all of them, then without the first,
    and so on, each with its own options. Returns it, its refused CUDA graphs (``_session_on``) and, by provider,
    why each that raised did. The last (the CPU) raises: its error is the model's own."""
    raised: dict[str, str] = {}
    for k, first in enumerate(providers[:-1]):
        try:
            return (*_session_on(model, so, providers[k:], cfg), raised)
        except Exception as exc:  # noqa: BLE001 - ORT's own error types; the next provider is tried
            raised[first] = _error_reason(exc)
    return (*_session_on(model, so, providers[-1:], cfg), raised)


def _error_reason(exc: BaseException) -> str:
    """What ORT's exception says about a provider that did not start, on one line, without C++ locations or
    folders."""
    from .models import ort_reason  # models imports this module: the same reading of ORT's errors, at call time

    return _FOLDERS.sub("", ort_reason(exc))[:200]


def failure_reasons(log: str, tried: list[str], raised: dict[str, str], known: dict[str, str]) -> dict[str, str]:
    """Why each of ``tried`` did not start: ORT's captured log first (it names the missing library), else ``known``
    (``RuntimeConfig.provider_failures``: a captured log of an earlier session), else the exception its session
    raised (for TensorRT generic advice: "Please install TensorRT libraries …")."""
    reasons = {**raised, **known, **provider_reasons(log, tried)}
    return {p: reasons[p] for p in tried if p in reasons}


def fallback_warning(tried: list[str], actual: str, reasons: dict[str, str]) -> str:
    """"TensorRT (why) and CUDA (why) could not start; running on CPU …": every provider tried before the one running,
    each with its reason where known (naming the first alone had blamed TensorRT for a CUDA that failed too)."""
    named = " and ".join(SHORT.get(p, p) + (f" ({reasons[p]})" if p in reasons else "") for p in tried)
    return f"{named} could not start; running on {SHORT.get(actual, actual)} (`{program()} doctor` says why)"


def create_session(path: str | Path | bytes, cfg: RuntimeConfig = RuntimeConfig(), gpus: int | None = None,
                   name: str | None = None) -> SessionInfo:
    """Create a session (from a file, or a serialised model); the returned info says which provider really runs it.

    ``name`` names the model in its warning (default: the file's name, or the graph's for a serialised model).
    A provider that does not start is left for the next, each tried with its own options (``_first_that_starts``;
    ORT's own fallback is off). ORT's own output while it tries a GPU provider goes to the debug log; the session's
    warning says why in one line, logged as a warning unless the caller collects them (``fallbacks_collected``) to
    say them itself."""
    untrusted = ort_numbers_problem()
    if untrusted:
        raise BiasMirrorError(untrusted, model_label(path) if isinstance(path, bytes) else path)
    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.intra_op_num_threads = cfg.threads or os.cpu_count() or 1
    so.inter_op_num_threads = 1  # models run one after another within a frame
    so.log_severity_level = 3
    # Idle ORT workers spin-wait by default, which on a 2-core machine steals the
    # CPU from the next stage (OpenCV's detector, the next model) for nothing.
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    gpus = cuda_device_count() if gpus is None else gpus
    providers, note = choose_providers(cfg.provider, ort.get_available_providers(), gpus)
    name = name or model_label(path)
    skipped = tensorrt_cache_problem(cfg) if TRT in providers else None
    if skipped:
        providers = [p for p in providers if p != TRT]
    if CUDA in providers or TRT in providers:
        preload_gpu_libraries(tensorrt=TRT in providers)
    model = path if isinstance(path, bytes) else str(path)
    said: list[str] = []  # what ORT printed while it tried the GPU providers (several lines a model, in colour)
    try:
        capture = cfg.capture_ort_output and (CUDA in providers or TRT in providers)  # only a GPU provider's fail prints
        with ort_output_captured() if capture else contextlib.nullcontext(said) as said:
            session, refused, raised = _first_that_starts(model, so, providers, cfg)
    finally:
        ort_said = "".join(said).strip()
        if ort_said:
            log.debug("%s: ONNX Runtime's own output while creating the session:\n%s", name, ort_said)
    actual = session.get_providers()[0]
    graph = cfg.cuda_graph and actual == CUDA and not refused
    warning, reasons = None, {}
    if actual != providers[0]:
        # ORT's own lines, several a model, are in the debug log; the warning gives each provider's reason
        tried = providers[:providers.index(actual)] if actual in providers else providers
        reasons = failure_reasons(ort_said, tried, raised, dict(cfg.provider_failures))
        warning = fallback_warning(tried, actual, reasons)
    elif note and cfg.provider != "auto":
        warning, note = note, None
    if refused:
        warning = f"CUDA graphs refused ({refused}); running without them"
    elif cfg.cuda_graph and actual != CUDA and not warning:
        warning = f"CUDA graphs need the CUDA provider; running on {SHORT.get(actual, actual)} without them"
    if skipped:
        warning = f"{skipped}; {warning}" if warning else skipped
    if warning:
        if (collector := _collector.get()) is not None:
            # by its file, which names one model where two files share a base name; a serialised one by ``name``
            collector.append((name if isinstance(path, bytes) else str(path), warning))
            log.debug("%s: %s", name, warning)
        else:
            log.warning("%s: %s", name, warning)
    elif note:
        log.info("%s: %s", name, note)
    return SessionInfo(session, actual, cfg.provider, warning, note, cuda_graph=graph, skipped=skipped,
                       reasons=reasons)
