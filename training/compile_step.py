"""torch.compile around the networks a training step calls (--compile): the modes, each checked against the
device before any step, the modules compiled, and a compile that fails said in one line with the way out."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from inference.errors import BiasMirrorError


# --compile: what torch.compile is asked for. A small network at batch 1 on a GPU is bound by how many kernels a
# step launches (the CycleGAN's fast preset: 1,420 operations a step); fused kernels and CUDA graphs cut that.
COMPILE_MODES: dict[str, dict[str, str] | None] = {
    "off": None,
    "default": {},  # Inductor: fused kernels (Triton on a GPU, C++ on the CPU)
    "reduce-overhead": {"mode": "reduce-overhead"},  # Inductor, replayed as CUDA graphs on a GPU
    "cudagraphs": {"backend": "cudagraphs"},  # CUDA graphs of the traced step, no generated code (no Triton needed)
    "trace-only": {"backend": "aot_eager"},  # traced as a compile would be, run as is: finds what breaks a graph
}
NEEDS_CUDA = {"cudagraphs"}
# Modes that replay CUDA graphs, whose outputs live in memory a later replay reuses: each training step is marked
# as a new iteration (begin_step) instead of left to torch's guess (a new one at any compiled call made while no
# backward is pending), which a step calling one network several times around its backward passes could defeat.
CUDA_GRAPH_MODES = {"reduce-overhead", "cudagraphs"}


def begin_step(mode: str) -> None:
    """Call before each step run under --compile ``mode``."""
    if mode in CUDA_GRAPH_MODES:
        torch.compiler.cudagraph_mark_step_begin()


def check_compile_mode(mode: str, device: torch.device) -> None:
    """Refuses a --compile mode that is unknown or that ``device`` cannot run."""
    if mode not in COMPILE_MODES:
        raise BiasMirrorError(f"unknown --compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    if mode in NEEDS_CUDA and device.type != "cuda":
        raise BiasMirrorError(f"--compile {mode} needs a CUDA GPU; this run is on the {device.type.upper()}: "
                              "use --compile default, or off")


def compiled(module: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """``module`` under torch.compile as ``mode`` (a COMPILE_MODES key) asks; itself for "off"."""
    check_compile_mode(mode, device)
    kwargs = COMPILE_MODES[mode]
    return module if kwargs is None else torch.compile(module, **kwargs)  # type: ignore[return-value]


# The way out of a failed compile that only a run on a GPU can take (--compile cudagraphs needs CUDA).
GPU_ONLY_ADVICE = ", or --compile cudagraphs on a GPU without Triton"


def compile_failure(exc: BaseException, mode: str, step: int, checkpoint: Path | None,
                    device: torch.device | None = None) -> BiasMirrorError | None:
    """The BiasMirrorError for a torch.compile failure (no Triton, no C++ compiler, an unsupported
    operation) at ``step`` (0-based) of a run whose last checkpoint is ``checkpoint`` (None: a run that keeps
    none, such as a benchmark), or None when ``exc`` is not one. --compile cudagraphs is offered only to a run on
    a GPU (``device``; None: this machine's, where PyTorch sees one) and not as the way out of itself: a CPU-only
    machine was told to try it, and check_compile_mode then refused it there."""
    if mode == "off":
        return None
    try:
        from torch._dynamo.exc import TorchDynamoException
    except ImportError:  # pragma: no cover - every torch we support has it
        return None
    if not isinstance(exc, TorchDynamoException):
        return None
    cause: BaseException = exc
    while getattr(cause, "inner_exception", None) is not None:  # BackendCompilerFailed says only "backend raised:"
        cause = cause.inner_exception  # type: ignore[attr-defined]
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    resumable = step > 0 and checkpoint is not None
    where = "at the first step" if step == 0 else f"at step {step + 1}" + (
        " (nothing after the last checkpoint was saved; continue it with --resume)" if resumable else "")
    gpu = device.type == "cuda" if device is not None else torch.cuda.is_available()
    advice = GPU_ONLY_ADVICE if gpu and mode != "cudagraphs" else ""
    return BiasMirrorError(f"--compile {mode} failed {where}: {type(cause).__name__}: {first}. Train with --compile off"
                           f"{advice}", checkpoint if resumable else None)
