"""`python main.py doctor`: what this machine can run, and why not when it cannot."""
from __future__ import annotations

import argparse
import ctypes
import platform

import cv2
import onnxruntime as ort

from .defaults import MODELS_DIR
from .errors import BiasMirrorError
from .models import find_models, read_card
from .runtime import cuda_device_count
from .sources import list_cameras

# Shared libraries the ORT CUDA/TensorRT providers load, and what provides them.
GPU_LIBRARIES = [
    ("libcuda.so.1", "the NVIDIA driver"),
    ("libcudart.so.13", "CUDA 13 runtime (pip install nvidia-cuda-runtime)"),
    ("libcudart.so.12", "CUDA 12 runtime (pip install nvidia-cuda-runtime-cu12)"),
    ("libcublas.so.13", "cuBLAS for CUDA 13 (pip install nvidia-cublas)"),
    ("libcublas.so.12", "cuBLAS for CUDA 12 (pip install nvidia-cublas-cu12)"),
    ("libcudnn.so.9", "cuDNN 9 (pip install nvidia-cudnn-cu12 or -cu13)"),
    ("libnvinfer.so.10", "TensorRT 10 (pip install tensorrt)"),
]


def library_status() -> list[tuple[str, str, bool]]:
    out = []
    for lib, what in GPU_LIBRARIES:
        try:
            ctypes.CDLL(lib)
            ok = True
        except OSError:
            ok = False
        out.append((lib, what, ok))
    return out


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cameras", type=int, default=3, help="probe camera indices 0..N-1 (0 to skip)")


def main(args: argparse.Namespace) -> int:
    print(f"Python {platform.python_version()} on {platform.platform()}")
    print(f"ONNX Runtime {ort.__version__}; providers in this build: {', '.join(ort.get_available_providers())}")
    print(f"OpenCV {cv2.__version__}")
    gpus = cuda_device_count()
    print(f"CUDA devices visible to the driver: {gpus}")
    for lib, what, ok in library_status():
        print(f"  {'found  ' if ok else 'missing'} {lib:18s} {what}")
    if gpus == 0:
        print("  → inference runs on the CPU. For the GPU path: an NVIDIA driver, onnxruntime-gpu, and the CUDA/cuDNN "
              "libraries matching its build (onnxruntime.preload_dlls() also finds the nvidia-* pip packages).")
    print(f"\nmodels in {MODELS_DIR}:")
    paths = find_models(MODELS_DIR)
    if not paths:
        print("  (none)")
    for path in paths:
        try:
            print(f"  {path.name}: {read_card(path).summary()} [{path.stat().st_size / 1e6:.1f} MB]")
        except BiasMirrorError as exc:
            print(f"  {path.name}: UNUSABLE — {exc}")
    if args.cameras:
        cams = list_cameras(args.cameras)
        print(f"\ncameras OpenCV can open: {', '.join(map(str, cams)) if cams else 'none'}")
    return 0
