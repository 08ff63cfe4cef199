"""`python main.py doctor train`: what this machine can train with.

PyTorch and the GPUs it sees, the precision `--precision auto` would pick, the DataLoader workers a run
would start, and which `--compile` modes can run here. What a mode needs is read from the machine (a C++
compiler for Inductor on the CPU, Triton for Inductor on a GPU, a GPU for CUDA graphs); `--try-compile`
also compiles a small convolutional step with each mode, which is the only proof (tens of seconds each).
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass

import torch
from torch import nn

from training.compile_step import COMPILE_MODES, NEEDS_CUDA, begin_step, compile_failure, compiled
from training.epoch_batches import default_workers
from training.loop import amp_dtype
# The command line, kept without torch so that main.py answers --help without loading it; add_arguments is imported
# from here too.
from training.tasks.doctor_train_args import add_arguments  # noqa: F401


@dataclass(frozen=True)
class ModeCheck:
    mode: str
    ready: bool
    why: str  # what it needs, found or missing


NO_COMPILER = "none found (install g++, or set CXX)"


@dataclass(frozen=True)
class CxxCompiler:
    command: str | None  # what Inductor will run for the CPU kernels (its path where PATH finds it); None: none works
    problem: str = NO_COMPILER  # why none works, in a few words (for the doctor's line); unused when found


def inductor_cxx_search() -> tuple[str | None, ...]:
    """The compilers Inductor tries, in order: ``torch._inductor.config.cpp.cxx``. It is read from $CXX when
    Inductor's config is imported, and $CXX *replaces* the default (g++; clang++ on macOS): Inductor does not fall
    back to g++ when $CXX is missing. None stands for g++ from conda-forge, only tried with TORCH_INDUCTOR_INSTALL_GXX."""
    if sys.platform == "win32":  # Inductor on Windows: $CXX, else cl (cpp_builder.get_cpp_compiler)
        return (os.environ.get("CXX", "cl"),)
    try:
        from torch._inductor import config
        cxx = config.cpp.cxx
    except Exception:  # noqa: BLE001 - a torch without Inductor's config: what it has always held
        cxx = (None, os.environ.get("CXX", "clang++" if sys.platform == "darwin" else "g++"))
    return tuple(cxx) if isinstance(cxx, (list, tuple)) else (cxx,)


def _runs(command: str) -> str | None:
    """The path of ``command`` when ``command --version`` runs (Inductor's own check), else None."""
    argv = [command] if sys.platform == "win32" else shlex.split(command)  # CXX="ccache g++" is a command line
    if not argv:
        return None
    try:
        subprocess.run([*argv, "--version"], check=True, capture_output=True, timeout=30)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return " ".join([shutil.which(argv[0]) or argv[0], *argv[1:]])


def find_cxx_compiler(search: tuple[str | None, ...] | None = None) -> CxxCompiler:
    """The C++ compiler Inductor will use on the CPU, found the way Inductor finds it (the first of its search that
    answers ``--version``; torch._inductor.cpp_builder.cpp_compiler_search), or why there is none."""
    search = inductor_cxx_search() if search is None else search
    env_cxx = os.environ.get("CXX")
    for cxx in search:
        if cxx is None:  # Inductor would install g++ with conda first, only when asked to
            if sys.platform != "linux" or not os.environ.get("TORCH_INDUCTOR_INSTALL_GXX"):
                continue
            try:
                from torch._inductor.runtime.runtime_utils import cache_dir
                conda_gxx = os.path.join(cache_dir(), "gcc", "bin", "g++")
            except Exception:  # noqa: BLE001 - where this torch keeps it is unknown: judge by conda alone
                conda_gxx = None
            if conda_gxx and _runs(conda_gxx):
                return CxxCompiler(conda_gxx)
            if shutil.which(os.environ.get("CONDA_EXE", "conda")):
                return CxxCompiler("g++ from conda-forge, installed by conda at the first compile "
                                   "(TORCH_INDUCTOR_INSTALL_GXX is set)")
            continue
        found = _runs(cxx)
        if found:
            return CxxCompiler(found)
    named = [cxx for cxx in search if cxx is not None]
    if env_cxx is not None and env_cxx in named:
        if not env_cxx.strip():
            return CxxCompiler(None, "$CXX is set but empty, and PyTorch uses $CXX instead of g++: set CXX to a "
                                     "compiler, or unset it")
        argv = [env_cxx] if sys.platform == "win32" else shlex.split(env_cxx)
        how = "isn't found" if not shutil.which(argv[0]) else "doesn't run (`--version` failed)"
        instead = ", and PyTorch uses $CXX instead of g++" if env_cxx != "g++" else ""
        return CxxCompiler(None, f"$CXX names {env_cxx}, which {how}{instead}: fix CXX or unset it")
    if named and named != ["g++"]:
        return CxxCompiler(None, f"none of {', '.join(named)} runs (torch._inductor.config.cpp.cxx; install one, "
                                 "or set CXX)")
    return CxxCompiler(None, NO_COMPILER)


def has_triton() -> bool:
    return importlib.util.find_spec("triton") is not None


def mode_checks(gpu: bool, compiler: str | None, triton: bool, no_compiler: str = NO_COMPILER) -> list[ModeCheck]:
    """What each --compile mode needs on this device, and whether it is here (``no_compiler``: why there is no
    C++ compiler, when ``compiler`` is None)."""
    checks = []
    for mode in COMPILE_MODES:
        if mode in ("off", "trace-only"):
            checks.append(ModeCheck(mode, True, "nothing beyond PyTorch"))
        elif mode in NEEDS_CUDA:
            checks.append(ModeCheck(mode, gpu, "a CUDA GPU: " + ("found" if gpu else "none visible")))
        elif gpu:
            checks.append(ModeCheck(mode, triton, "Triton for the GPU kernels: " + ("installed" if triton else
                                    "missing (pip install triton, or use --compile cudagraphs)")))
        else:
            checks.append(ModeCheck(mode, compiler is not None, "a C++ compiler for the CPU kernels: "
                                    + (compiler or no_compiler)))
    return checks


class _TinyStep(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.InstanceNorm2d(8), nn.ReLU(), nn.Conv2d(8, 3, 1))

    def forward(self, x):
        return self.net(x)


def try_compile(mode: str, device: torch.device) -> str | None:
    """None when a forward and backward of a small step compile and run under ``mode``, else why not."""
    torch._dynamo.reset()
    try:
        step = compiled(_TinyStep().to(device), mode, device)
        begin_step(mode)
        step(torch.rand(2, 3, 16, 16, device=device)).square().mean().backward()
        return None
    except Exception as exc:  # noqa: BLE001 - every failure is reported, in one line
        failure = compile_failure(exc, mode, 0, None, device)  # offers a GPU-only way out on a GPU alone
        if failure is None:
            return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
        return str(failure)


def main(args: argparse.Namespace) -> int:
    gpu = torch.cuda.is_available()
    device = torch.device("cuda", 0) if gpu else torch.device("cpu")
    build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "CPU only"
    print(f"PyTorch {torch.__version__} ({build} build); {os.cpu_count()} CPU cores")
    if gpu:
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            print(f"  GPU {i}: {props.name}, {props.total_memory / 2**30:.0f} GiB, compute capability "
                  f"{props.major}.{props.minor}")
        print(f"  torchrun --nproc_per_node {torch.cuda.device_count()} would use every GPU (one process each)")
    else:
        print("  no CUDA GPU visible: training runs on the CPU, in fp32" + (
            " (this PyTorch is built for CUDA; the driver or the device is missing)" if torch.version.cuda else ""))
    dtype = amp_dtype("auto", device)
    print(f"--precision auto here: {'fp32' if dtype is None else str(dtype).replace('torch.', '') + ' autocast'}"
          + (" with a gradient scaler" if dtype == torch.float16 else ""))
    print(f"--workers default here: {default_workers(gpu)} DataLoader process(es) per training process")
    compiler, triton = find_cxx_compiler(), has_triton()
    print(f"--compile modes on the {device.type.upper()}:")
    failed = 0  # a setup check built on --try-compile (scripts/device_measure compile) had passed a failed compile
    for check in mode_checks(gpu, compiler.command, triton, compiler.problem):
        line = f"  {check.mode:16s} {'ready' if check.ready else 'not here':9s} needs {check.why}"
        if args.try_compile and check.ready and check.mode != "off":
            why = try_compile(check.mode, device)
            line += "; compiled a small step: " + ("ok" if why is None else f"FAILED — {why}")
            failed += why is not None
        print(line)
    return 1 if failed else 0
