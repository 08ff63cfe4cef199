"""ONNX Runtime sessions: provider choice, thread counts, and an honest fallback report.

ORT lists CUDA and TensorRT as *available* whenever onnxruntime-gpu is
installed, GPU or not, and silently falls back to the CPU when a provider
cannot start. So the provider a model really runs on is read back from the
created session, and any difference from what was asked is a warning the
app and the CLI show.
"""
from __future__ import annotations

import ctypes
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

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


@dataclass
class SessionInfo:
    session: ort.InferenceSession
    provider: str  # the provider that actually runs the model
    requested: str
    warning: str | None = None  # the provider asked for explicitly could not be used
    note: str | None = None  # "auto" settled on the CPU: expected on a machine without a GPU

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


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bias-mirror"


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
        else:
            out.append(p)
    return out


def create_session(path: str | Path, cfg: RuntimeConfig = RuntimeConfig(), gpus: int | None = None) -> SessionInfo:
    """Create a session; the returned info says which provider really runs it."""
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
    session = ort.InferenceSession(str(path), sess_options=so, providers=_provider_options(providers, cfg))
    actual = session.get_providers()[0]
    warning = None
    if actual != providers[0]:
        warning = f"{SHORT.get(providers[0], providers[0])} could not start; running on {SHORT.get(actual, actual)}"
    elif note and cfg.provider != "auto":
        warning, note = note, None
    if warning:
        log.warning("%s: %s", Path(path).name, warning)
    elif note:
        log.info("%s: %s", Path(path).name, note)
    return SessionInfo(session, actual, cfg.provider, warning, note)
