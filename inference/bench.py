"""`python main.py bench`: pipeline speed against a research-script baseline, measured in the same run.

Ours: the FramePipeline on ONNX Runtime (batched per model, CAM inside the
graph). Baseline: the same work done the way a research script does it —
OpenCV's Haar cascade called on the full frame with the usual parameters,
then PyTorch eager per face: two torchvision ResNet-18 at 128 px with a
forward hook on the last block and the CAM computed in NumPy, and a 128 px
ngf-32 CycleGAN generator in eager mode. Both see the same frames.

torch is imported lazily, only for the baseline: the runtime never needs it.
"""
from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from .cli_common import add_model_arguments, pipeline_from_args
from .datasets.folder import list_images
from .errors import BiasMirrorError
from .faces import crop_square
from .pipeline import FramePipeline, PipelineConfig


@dataclass
class Measurement:
    name: str
    frames: int
    fps: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # stage → p50/p95/p99


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3


def make_frames(source: str | None, n_faces: int, size: tuple[int, int], count: int) -> list[np.ndarray]:
    """Frames of the given size with ``n_faces`` faces each, from a folder of face images or a video."""
    w, h = size
    faces: list[np.ndarray] = []
    if source and Path(source).is_file():
        cap = cv2.VideoCapture(source)
        frames = []
        while len(frames) < count:
            ok, img = cap.read()
            if not ok:
                break
            frames.append(cv2.resize(img, (w, h)))
        cap.release()
        if not frames:
            raise BiasMirrorError("no frames could be read from this video", source)
        return frames
    if not source or not Path(source).is_dir():
        raise BiasMirrorError("give --source: a folder of face images (e.g. ../shared/datasets/utkface/UTKFace) or a video",
                              source)
    for p in list_images(Path(source))[: max(count, n_faces) * 2]:
        img = cv2.imread(str(p))
        if img is not None:
            faces.append(img)
        if len(faces) >= count + n_faces:
            break
    if not faces:
        raise BiasMirrorError("no readable images in the folder", source)
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    side = min(int(min(w / cols, h / rows) * 0.8), 220)
    frames = []
    for i in range(count):
        frame = np.full((h, w, 3), 110, np.uint8)
        for k in range(n_faces):
            face = cv2.resize(faces[(i + k) % len(faces)], (side, side))
            r, c = divmod(k, cols)
            y = int((r + 0.5) * h / rows - side / 2)
            x = int((c + 0.5) * w / cols - side / 2)
            frame[y : y + side, x : x + side] = face
        frames.append(frame)
    return frames


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99))}


def measure(name: str, fn: Callable[[np.ndarray], dict[str, float]], frames: list[np.ndarray], warmup: int) -> Measurement:
    for f in frames[:warmup]:
        fn(f)
    stages: dict[str, list[float]] = {}
    t0 = time.perf_counter()
    for f in frames[warmup:]:
        t = time.perf_counter()
        timings = fn(f)
        timings["end_to_end"] = (time.perf_counter() - t) * 1000
        for k, v in timings.items():
            stages.setdefault(k, []).append(v)
    elapsed = time.perf_counter() - t0
    n = len(frames) - warmup
    return Measurement(name, n, n / elapsed, {k: percentiles(v) for k, v in stages.items()})


class EagerBaseline:
    """A research script's per-face eager PyTorch pipeline (random weights: only time is measured)."""

    def __init__(self, with_filter: bool, threads: int | None):
        import torch
        from torchvision.models import resnet18

        from training.nets.cyclegan import build_generator, preset

        self.torch = torch
        if threads:
            torch.set_num_threads(threads)
        # A research script calls the cascade on the full frame with the usual parameters.
        self.cascade = cv2.CascadeClassifier(str(Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"))
        self.models = [resnet18(weights=None, num_classes=2).eval() for _ in range(2)]
        self.features: dict[int, np.ndarray] = {}
        for i, m in enumerate(self.models):
            m.layer4.register_forward_hook(lambda _m, _i, out, i=i: self.features.__setitem__(i, out.detach().numpy()))
        self.generator = build_generator(preset("fast")).eval() if with_filter else None

    def _classify(self, crop: np.ndarray) -> None:
        torch = self.torch
        x = torch.from_numpy(crop).permute(2, 0, 1).float().div(255).sub(0.5).div(0.5)[None]
        for i, m in enumerate(self.models):
            probs = torch.softmax(m(x), 1).numpy()
            w = m.fc.weight.detach().numpy()
            cam = np.einsum("kc,chw->khw", w, self.features[i][0])[1]
            cv2.resize(cam, (128, 128))
            _ = probs[0, 1]

    def __call__(self, frame: np.ndarray) -> dict[str, float]:
        torch = self.torch
        with torch.no_grad():
            rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            gray = cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY)
            for box in self.cascade.detectMultiScale(gray, 1.1, 5, minSize=(30, 30)):
                crop, _ = crop_square(rgb, tuple(box), 128)
                self._classify(crop)
                if self.generator is not None:
                    x = torch.from_numpy(crop).permute(2, 0, 1).float().div(127.5).sub(1)[None]
                    y = self.generator(x)[0].permute(1, 2, 0).add(1).mul(127.5).clamp(0, 255).byte().numpy()
                    self._classify(np.ascontiguousarray(y))
        return {}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--source", help="folder of face images or a video (e.g. ../shared/datasets/utkface/UTKFace)")
    p.add_argument("--frames", type=int, default=60, help="frames measured per configuration")
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--faces", type=int, default=1, help="faces per frame")
    p.add_argument("--resolution", default="640x480")
    p.add_argument("--no-baseline", action="store_true", help="skip the PyTorch eager baseline")
    p.add_argument("--soak", type=float, default=0, help="then run this many seconds and report RSS at start and end")
    p.add_argument("--json", help="write the results here")
    add_model_arguments(p)


def print_table(results: list[Measurement]) -> None:
    print(f"{'configuration':34s} {'frames/s':>9s} {'p50 ms':>8s} {'p95 ms':>8s} {'p99 ms':>8s}")
    for m in results:
        e = m.latency_ms["end_to_end"]
        print(f"{m.name:34s} {m.fps:9.1f} {e['p50']:8.1f} {e['p95']:8.1f} {e['p99']:8.1f}")


def main(args: argparse.Namespace) -> int:
    w, h = (int(v) for v in args.resolution.lower().split("x"))
    frames = make_frames(args.source, args.faces, (w, h), args.frames + args.warmup)
    pipeline = pipeline_from_args(args)
    if len(pipeline.classifiers) > 2 and not args.classifier:
        pipeline.classifiers = pipeline.classifiers[:2]  # the goal is stated for two classifiers
    print(f"models: {', '.join(f'{k} on {v}' for k, v in pipeline.providers().items())}")
    print(f"{len(frames)} frames of {w}×{h} with {args.faces} face(s); {os.cpu_count()} CPU cores")
    no_filter = FramePipeline(pipeline.classifiers, pipeline.filter, pipeline.detector, PipelineConfig(apply_filter=False))
    ours = [m for m in [
        measure("onnx: classifiers + filter", lambda f: dict(pipeline.process(f).timings_ms), frames, args.warmup)
        if pipeline.filter else None,
        measure("onnx: classifiers only", lambda f: dict(no_filter.process(f).timings_ms), frames, args.warmup),
    ] if m]
    results = list(ours)
    ratios = {}
    if not args.no_baseline:
        base_filter = measure("eager baseline: + filter", EagerBaseline(True, args.threads), frames, args.warmup)
        base_plain = measure("eager baseline: classifiers only", EagerBaseline(False, args.threads), frames, args.warmup)
        results += [base_filter, base_plain]
        if pipeline.filter:
            ratios["with_filter"] = ours[0].fps / base_filter.fps
        ratios["without_filter"] = ours[-1].fps / base_plain.fps
    print_table(results)
    for stage, q in results[0].latency_ms.items():
        print(f"  {stage:20s} p50 {q['p50']:7.2f}  p95 {q['p95']:7.2f}  p99 {q['p99']:7.2f} ms")
    for k, v in ratios.items():
        print(f"speed-up over the eager baseline ({k.replace('_', ' ')}): {v:.2f}×")
    soak = None
    if args.soak > 0:
        start_rss, t0, n = rss_mb(), time.monotonic(), 0
        while time.monotonic() - t0 < args.soak:
            pipeline.process(frames[n % len(frames)])
            n += 1
        soak = {"seconds": args.soak, "frames": n, "rss_start_mb": start_rss, "rss_end_mb": rss_mb()}
        print(f"soak: {n} frames in {args.soak:.0f} s; RSS {soak['rss_start_mb']:.0f} MB → {soak['rss_end_mb']:.0f} MB")
    if args.json:
        Path(args.json).write_text(json.dumps({
            "resolution": [w, h], "faces": args.faces, "cpu_count": os.cpu_count(),
            "providers": pipeline.providers(), "results": [asdict(m) for m in results], "ratios": ratios,
            "soak": soak}, indent=1))
    return 0
