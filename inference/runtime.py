"""ONNX Runtime sessions: provider choice, thread counts, and an honest fallback report.

ORT lists CUDA and TensorRT as *available* whenever onnxruntime-gpu is
installed, GPU or not, and silently falls back to the CPU when a provider
cannot start. So the provider a model really runs on is read back from the
created session, and any difference from what was asked is a warning the
app and the CLI show.
"""
from __future__ import annotations

import contextlib
import ctypes
import functools
import io
import logging
import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import onnxruntime as ort

from .user_dirs import default_cache_dir

log = logging.getLogger(__name__)

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


@dataclass
class SessionInfo:
    session: ort.InferenceSession
    provider: str  # the provider that actually runs the model
    requested: str
    warning: str | None = None  # the provider asked for explicitly could not be used
    note: str | None = None  # "auto" settled on the CPU: expected on a machine without a GPU
    cuda_graph: bool = False  # runs replay a CUDA graph (asked for, and ORT accepted it)

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


def _provider_options(providers: list[str], cfg: RuntimeConfig) -> list:
    out = []
    for p in providers:
        if p == TRT:
            cache = Path(cfg.trt_cache_dir) if cfg.trt_cache_dir else default_cache_dir() / "tensorrt"
            cache.mkdir(parents=True, exist_ok=True)
            out.append((p, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache),
                            "trt_fp16_enable": False}))
        elif p == CUDA:
            options = {"cudnn_conv_algo_search": cfg.cudnn_conv_algo_search, "use_tf32": "1" if cfg.tf32 else "0"}
            if cfg.cuda_graph:
                options["enable_cuda_graph"] = "1"
            out.append((p, options))
        else:
            out.append(p)
    return out


def create_session(path: str | Path | bytes, cfg: RuntimeConfig = RuntimeConfig(), gpus: int | None = None) -> SessionInfo:
    """Create a session (from a file, or a serialised model); the returned info says which provider really runs it."""
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
    if CUDA in providers or TRT in providers:
        preload_gpu_libraries(tensorrt=TRT in providers)
    model = path if isinstance(path, bytes) else str(path)
    graph = cfg.cuda_graph and CUDA in providers
    refused = None
    try:
        session = ort.InferenceSession(model, sess_options=so, providers=_provider_options(providers, cfg))
    except Exception as exc:  # ORT's own error types; only a refused CUDA graph is ours to handle
        if not graph:
            raise
        refused = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        graph = False
        session = ort.InferenceSession(model, sess_options=so,
                                       providers=_provider_options(providers, replace(cfg, cuda_graph=False)))
    actual = session.get_providers()[0]
    warning = None
    if actual != providers[0]:
        # every provider tried before the one running, and where to read why: naming the first alone had blamed
        # TensorRT for a CUDA that failed too, and ORT's own reason scrolls by in its log
        tried = providers[:providers.index(actual)] if actual in providers else providers
        warning = (f"{' and '.join(SHORT.get(p, p) for p in tried)} could not start; running on "
                   f"{SHORT.get(actual, actual)} (`python main.py doctor` says why)")
    elif note and cfg.provider != "auto":
        warning, note = note, None
    if refused:
        warning = f"CUDA graphs refused ({refused}); running without them"
    elif cfg.cuda_graph and actual != CUDA and not warning:
        warning = f"CUDA graphs need the CUDA provider; running on {SHORT.get(actual, actual)} without them"
    name = "an in-memory model" if isinstance(path, bytes) else Path(path).name
    if warning:
        log.warning("%s: %s", name, warning)
    elif note:
        log.info("%s: %s", name, note)
    return SessionInfo(session, actual, cfg.provider, warning, note, cuda_graph=graph and actual == CUDA)
