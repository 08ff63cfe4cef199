"""What the machine says of itself while a bench runs: its GPU (per nvidia-smi), and the memory in use, this
process's and the GPU's (this process's RSS is also the app's --health soak figure)."""
from __future__ import annotations

import subprocess

import psutil


def rss_mb() -> float:
    """This process's resident memory in MB now, on every system (psutil), else NaN: a soak's leak figure needs the
    current size, not the peak (ru_maxrss, in bytes on macOS: 1000× too large; Windows has no ``resource``), and
    /proc/self/statm, read before, is Linux's alone, so `app --health` showed no memory on a Mac."""
    try:
        return psutil.Process().memory_info().rss / 1e6
    except (OSError, psutil.Error):
        return float("nan")


def gpu_name() -> str | None:
    """The GPU nvidia-smi reports (name, driver), for labelling results; None without one."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    lines = [ln.strip() for ln in out.stdout.splitlines() if ln.strip()]
    return "; ".join(lines) if out.returncode == 0 and lines else None


def gpu_memory_used_mib() -> float | None:
    """Memory in use on the first GPU per nvidia-smi, all processes together (on a machine of one's own, this
    run's ORT arenas and CUDA context); None without nvidia-smi or a GPU."""
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=memory.used", "--format=csv,noheader,nounits"],
                             capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return None
    return parse_memory_used(out.stdout) if out.returncode == 0 else None


def parse_memory_used(text: str) -> float | None:
    """The first GPU's figure from ``nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits``."""
    for line in text.splitlines():
        try:
            return float(line.strip())
        except ValueError:
            continue
    return None
