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
import shutil
from dataclasses import dataclass

import torch
from torch import nn

from training.loop import COMPILE_MODES, NEEDS_CUDA, amp_dtype, begin_step, compile_failure, compiled, default_workers


@dataclass(frozen=True)
class ModeCheck:
    mode: str
    ready: bool
    why: str  # what it needs, found or missing


def cxx_compiler() -> str | None:
    """The C++ compiler Inductor would use on the CPU ($CXX, else the usual names), or None."""
    for name in filter(None, (os.environ.get("CXX"), "g++", "c++", "clang++")):
        path = shutil.which(name)
        if path:
            return path
    return None


def has_triton() -> bool:
    return importlib.util.find_spec("triton") is not None


def mode_checks(gpu: bool, compiler: str | None, triton: bool) -> list[ModeCheck]:
    """What each --compile mode needs on this device, and whether it is here."""
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
                                    + (compiler or "none found (install g++, or set CXX)")))
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
        failure = compile_failure(exc, mode, 0, None)
        return str(failure) if failure is not None else f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--try-compile", action="store_true",
                   help="also compile a small step with each --compile mode that looks ready (tens of seconds each)")


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
    compiler, triton = cxx_compiler(), has_triton()
    print(f"--compile modes on the {device.type.upper()}:")
    for check in mode_checks(gpu, compiler, triton):
        line = f"  {check.mode:16s} {'ready' if check.ready else 'not here':9s} needs {check.why}"
        if args.try_compile and check.ready and check.mode != "off":
            why = try_compile(check.mode, device)
            line += "; compiled a small step: " + ("ok" if why is None else f"FAILED — {why}")
        print(line)
    return 0
