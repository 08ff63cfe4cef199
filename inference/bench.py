"""`python main.py bench`: pipeline speed per provider and face count, against a research-script baseline.

Ours: the FramePipeline on ONNX Runtime (batched per model, CAM inside the
graph), once per provider asked for (``--providers cpu,cuda,tensorrt``) and
face count (``--faces 1,4,16``). A provider that cannot start is reported as
unavailable with the reason; the provider each model really runs on is read
back from its session, so nothing is ever timed on the CPU under a GPU label.

Baseline: the same work done the way a research script does it — OpenCV's
Haar cascade on the full frame, then PyTorch eager per face (a ResNet-18
with a hooked CAM for each classifier timed, two by default, and a CycleGAN
generator). It lives in
``training/eager_baseline.py`` and is handed in by ``training/bench_cli.py``
(``main.py bench``): the runtime never imports torch. Both see the same frames
in the same run, and the ratios are taken within that run.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Protocol

import cv2
import numpy as np
import onnxruntime as ort
import psutil

from .arg_checks import (check_output_dir, check_output_file, check_paths_apart, check_source, model_inputs,
                         non_negative_float, non_negative_int, positive_float, positive_int, refuse_empty)
from .cli_common import YUNET_WANTED, add_model_arguments, checked_cam_class, checked_condition
from .datasets.folder import list_images
from .datasets.sample import IMAGE_EXTENSIONS
from .defaults import load_selection
from .errors import BiasMirrorError
from .images import as_bgr_uint8, read_image
from .detect_ahead import MAX_DEPTH, DetectingAhead
from .models import Classifier, Filter
from .pipeline import FramePipeline, PipelineConfig
from .results import FrameResult
from .faces import FaceDetector, make_detector
from .host_profile import profile_frames, profile_line
from .runtime import CPU, CUDA, SHORT, TRT, RuntimeConfig, fallback_lines, fallbacks_collected
from .sources import VideoSource
from .stopping import terminate_as_interrupt, write_json_atomically

# Issue #11's goals for the GPU path: targets to compare with, never results.
TARGETS = {
    "device": "H100",
    "resolution": [640, 480],
    "configuration": "two classifiers with CAM + the full-size 256 px filter",
    "classifiers": 2,
    "filter_px": 256,
    "one_face": {"faces": 1, "min_fps": 200.0, "max_p99_ms": 10.0},
    "many_faces": {"faces": 16, "min_fps": 60.0},
}
EXPECTED = {"cpu": CPU, "cuda": CUDA, "cuda-graph": CUDA, "tensorrt": TRT}
GRAPHS = {"cuda-graph"}  # providers whose rows replay CUDA graphs (RuntimeConfig.cuda_graph)
LABELS = {"cuda-graph": "CUDA graphs"}
# per-frame figures that split the frame three ways (and the whole): not stages of their own
SPLIT = ("end_to_end", "total", "onnx_runtime", "host")
VARIANTS = {"filter": "classifiers + filter", "plain": "classifiers only"}


@dataclass
class Measurement:
    name: str
    frames: int
    fps: float
    latency_ms: dict[str, dict[str, float]] = field(default_factory=dict)  # stage → p50/p95/p99
    provider: str = ""  # cpu / cuda / tensorrt / auto, or "eager"
    faces: int = 0  # faces pasted per frame
    variant: str = ""  # filter | plain
    faces_seen: float = 0.0  # faces found per frame by the detector (mean)
    status: str = "ok"  # or "unavailable: <reason>"
    vs_eager: float | None = None  # frames/s ÷ the eager baseline's in the same run, over the same frames
    vs_eager_faces: float | None = None  # faces/s ÷ the eager baseline's (the detectors may find different counts)
    vs_eager_frames: int | None = None  # how many frames the ratios are over: the first ones both rows measured
    faces_dropped: float = 0.0  # faces a frame found beyond the pipeline's max_faces, left unanalysed (mean)
    gpu_memory_mib: float | None = None  # GPU memory in use after this configuration, above the run's start (GPU rows)
    # each measured frame's time (end to end, ms) and the faces its work ran on, in order from the first frame after
    # the warm-up: --seconds stops rows after different counts, and a ratio is taken over the frames both measured
    frame_ms: list[float] = field(default_factory=list, repr=False)
    frame_faces: list[int] = field(default_factory=list, repr=False)


class Baseline(Protocol):
    label: str

    def __call__(self, frame: np.ndarray) -> tuple[dict[str, float], int]: ...


# (with_filter, the ONNX filter's input size or None, how many classifiers the ONNX rows run) → a baseline
BaselineFactory = Callable[[bool, "int | None", int], Baseline]


def rss_mb() -> float:
    """This process's resident memory in MB now, on every system (psutil), else NaN: a soak's leak figure needs the
    current size, not the peak (ru_maxrss, in bytes on macOS: 1000× too large; Windows has no ``resource``), and
    /proc/self/statm, read before, is Linux's alone, so `app --health` showed no memory on a Mac."""
    try:
        return psutil.Process().memory_info().rss / 1e6
    except (OSError, psutil.Error):
        return float("nan")


def letterboxed(img: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``img`` scaled to fit ``size`` (w, h) whole, its aspect kept, on the bench's grey."""
    w, h = size
    s = min(w / img.shape[1], h / img.shape[0])
    fw, fh = max(1, round(img.shape[1] * s)), max(1, round(img.shape[0] * s))
    out = np.full((h, w, 3), 110, np.uint8)
    y, x = (h - fh) // 2, (w - fw) // 2
    out[y:y + fh, x:x + fw] = cv2.resize(img, (fw, fh), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    return out


def make_frames(source: str | None, n_faces: int, size: tuple[int, int], count: int,
                distinct: int | None = None) -> list[np.ndarray]:
    """``count`` frames of ``size`` with ``n_faces`` face images tiled on a grey canvas, or a video's frames fitted
    into it; at most ``distinct`` of them different, cycled (``distinct_frames``: 60 frames of 8192×8192 asked for
    12.5 GB a face count)."""
    w, h = size
    distinct = min(count, distinct or count)
    faces: list[np.ndarray] = []
    unreadable = 0
    if source and Path(source).is_file() and Path(source).suffix.lower() in IMAGE_EXTENSIONS:
        img = read_image(source)  # one face, tiled like a folder's
        if img is None:
            raise BiasMirrorError("cannot be read as an image (corrupt, or another format)", source)
        faces.append(img)
    elif is_video(source):
        # read as `run` and the app read it: undecodable frames skipped, not the end (a damaged first frame had
        # refused the video); each frame fitted into the bench's size, not stretched (a portrait phone video,
        # squeezed into 640×480, showed no face and timed empty frames at twice the speed)
        video = VideoSource(Path(source))
        frames = []
        try:
            while len(frames) < distinct and (frame := video.read()) is not None:
                if frame.image is not None:
                    frames.append(letterboxed(as_bgr_uint8(frame.image), (w, h)))
        finally:
            video.close()
        if not frames:
            raise BiasMirrorError("no frames could be read from this video", source)
        return cycled(frames, count)  # a short clip is looped to the frames asked for
    elif not source or not Path(source).is_dir():
        raise BiasMirrorError("give --source: a folder of face images (e.g. ../shared/datasets/utkface/UTKFace) or a video",
                              source)
    else:
        faces, unreadable = readable_faces(list_images(Path(source)), distinct + n_faces)
    if not faces:
        raise BiasMirrorError("no readable images in the folder"
                              + (f" ({unreadable} image file(s) could not be read)" if unreadable else ""), source)
    cols = int(np.ceil(np.sqrt(n_faces)))
    rows = int(np.ceil(n_faces / cols))
    side = min(int(min(w / cols, h / rows) * 0.8), 220)
    frames = []
    for i in range(distinct):
        frame = np.full((h, w, 3), 110, np.uint8)
        for k in range(n_faces):
            face = cv2.resize(faces[(i + k) % len(faces)], (side, side))
            r, c = divmod(k, cols)
            y = int((r + 0.5) * h / rows - side / 2)
            x = int((c + 0.5) * w / cols - side / 2)
            frame[y : y + side, x : x + side] = face
        frames.append(frame)
    return cycled(frames, count)


def readable_faces(paths: list[Path], wanted: int) -> tuple[list[np.ndarray], int]:
    """Up to ``wanted`` images read from ``paths`` in order, and how many files were passed over unreadable. It
    reads on until enough are found: a folder whose readable images came after as many unreadable ones as it was
    asked for had been called one of "no readable images"."""
    faces, unreadable = [], 0
    for p in paths:
        img = read_image(p)
        if img is None:
            unreadable += 1
            continue
        faces.append(img)
        if len(faces) >= wanted:
            break
    return faces, unreadable


def cycled(frames: list[np.ndarray], count: int) -> list[np.ndarray]:
    """``count`` frames cycling through ``frames``, each repeat a view of its own: ``DetectingAhead`` finds a frame's
    place in the list by its identity, and a repeated object had put every repeat at its last place."""
    return [frames[i] if i < len(frames) else frames[i % len(frames)].view() for i in range(count)]


FRAME_BUDGET = 1 << 30  # bytes of distinct frames held at once, all face counts together


def distinct_frames(size: tuple[int, int], count: int, face_counts: int) -> int:
    """How many different frames each face count holds: all ``count`` where they fit in ``FRAME_BUDGET``, else as
    many as fit, cycled (every frame was held at once, and --resolution 8192x8192 ended in a MemoryError). The
    frames stay real frames of that size, so the work a frame takes is unchanged; only fewer faces vary."""
    w, h = size
    fit = FRAME_BUDGET // (w * h * 3 * face_counts)
    if fit < 1:
        need = w * h * 3 * face_counts / 2**30
        raise BiasMirrorError(f"--resolution {w}x{h} with {face_counts} face counts (--faces) holds {need:.1f} GiB of "
                              f"frames at once, more than the bench's {FRAME_BUDGET / 2**30:g} GiB: give fewer --faces "
                              "or a smaller --resolution")
    return min(count, fit)


def percentiles(values: list[float]) -> dict[str, float]:
    a = np.asarray(values)
    return {"p50": float(np.percentile(a, 50)), "p95": float(np.percentile(a, 95)), "p99": float(np.percentile(a, 99))}


def measure(name: str, fn: Callable[[np.ndarray], tuple[dict[str, float], int]], frames: list[np.ndarray],
            warmup: int, seconds: float | None = None) -> Measurement:
    """Run ``fn`` over the frames after ``warmup`` of them; with ``seconds``, stop early (warm-up gets a quarter).
    Each measured frame's time and faces are kept in order: a ratio between rows stopped apart is taken over the
    frames both measured (``compare_with_eager``)."""
    t0 = time.perf_counter()
    for f in frames[:warmup]:
        fn(f)
        if seconds and time.perf_counter() - t0 > seconds / 4:
            break
    stages: dict[str, list[float]] = {}
    seen: list[int] = []
    t0 = time.perf_counter()
    for f in frames[warmup:]:
        t = time.perf_counter()
        timings, n_faces = fn(f)
        timings = dict(timings)
        timings["end_to_end"] = (time.perf_counter() - t) * 1000
        seen.append(n_faces)
        for k, v in timings.items():
            stages.setdefault(k, []).append(v)
        if seconds and len(seen) >= 3 and time.perf_counter() - t0 > seconds:
            break
    elapsed = time.perf_counter() - t0
    n = len(seen)
    if n == 0:
        raise BiasMirrorError(f"--frames must be at least 1 ({name})")
    return Measurement(name, n, n / elapsed, {k: percentiles(v) for k, v in stages.items()},
                       faces_seen=float(np.mean(seen)), frame_ms=stages["end_to_end"], frame_faces=seen)


AS_FILMED = 0  # a row's face count for a video's frames: the faces it films, which found/frame counts


def faces_label(n: int) -> str:
    return "video" if n == AS_FILMED else str(n)


def faces_words(n: int) -> str:
    return "a video's frames" if n == AS_FILMED else f"{n} face(s)"


def is_video(source: str | None) -> bool:
    return bool(source) and Path(source).is_file() and Path(source).suffix.lower() not in IMAGE_EXTENSIONS


def unavailable(name: str, provider: str, faces: int, variant: str, reason: str) -> Measurement:
    return Measurement(name, 0, 0.0, {}, provider, faces, variant, 0.0, f"unavailable: {reason}")


def parse_counts(text: str, option: str = "--faces", example: str = "1,4,16", most: int | None = None) -> list[int]:
    try:
        counts = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or (most is not None and max(counts) > most):
        limit = "" if most is None else f" up to {most}"
        raise BiasMirrorError(f"{option} takes positive whole numbers{limit} separated by commas (e.g. {example}), not {text!r}")
    return counts


def parse_providers(text: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in (*EXPECTED, "auto")]
    if not names or bad:
        raise BiasMirrorError(f"--providers takes a comma list of {', '.join([*EXPECTED, 'auto'])}, not {text!r}")
    return list(dict.fromkeys(names))


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BiasMirrorError(f"--resolution is WIDTHxHEIGHT (e.g. 640x480), not {text!r}") from None
    if w < 64 or h < 64:
        raise BiasMirrorError(f"--resolution {text} is too small (at least 64x64)")
    if w > MAX_SIDE or h > MAX_SIDE:  # 100000x100000 asked NumPy for 28 GiB and died with its traceback
        raise BiasMirrorError(f"--resolution {text} is too large (at most {MAX_SIDE}x{MAX_SIDE})")
    return w, h


MAX_SIDE = 8192  # beyond 8K video: no camera's frame


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


def add_arguments(p: argparse.ArgumentParser) -> None:
    # required of plain `bench` only: `bench train` and `bench detect` are parsers of their own, which read --data
    p.add_argument("--source", required=True,
                   help="folder of face images or a video (e.g. ../shared/datasets/utkface/UTKFace); required "
                        "(`bench train` and `bench detect` take --data instead)")
    p.add_argument("--frames", type=positive_int, default=60, help="frames measured per configuration (default %(default)s)")
    p.add_argument("--warmup", type=non_negative_int, default=5, help="frames run before measuring, per configuration (default %(default)s)")
    p.add_argument("--seconds", type=positive_float, default=None,
                   help="stop a configuration after this many seconds (at least 3 frames; warm-up gets a quarter; default: "
                        "no time limit, --frames decides)")
    p.add_argument("--faces", help="faces per frame, a comma list (e.g. 1,4,16; default 1), tiled from a folder's "
                                    "images; not with a video, whose rows are its own frames ('video', 0 in --json)")
    p.add_argument("--providers", help="ONNX Runtime providers to compare, a comma list of cpu,cuda,cuda-graph,"
                                       "tensorrt,auto (default: --provider; cuda-graph: CUDA replaying CUDA graphs); "
                                       "one that cannot start is reported as unavailable")
    p.add_argument("--resolution", default="640x480", help="frame size, WxH (default %(default)s): a folder's faces are tiled onto it, a video's frames "
                        "fitted into it with their aspect kept")
    p.add_argument("--no-baseline", action="store_true", help="skip the PyTorch eager baseline")
    p.add_argument("--soak", type=non_negative_float, default=0, help="then run this many seconds and report RSS (and GPU memory) at start and end (default 0: no soak)")
    p.add_argument("--json", help="write the results here, rewritten after every row: \"configurations\" planned, "
                                  "\"measured\" of them gone through (an unavailable provider's included), \"timed\" "
                                  "those with figures, \"complete\" false when stopped early")
    p.epilog = ("exit status: 0 measured; 2 an error (an `error:` line says what), or nothing was timed: every "
                "provider unavailable and no eager baseline (the --json file is written all the same); 130 stopped "
                "(Ctrl-C, or SIGTERM as `timeout` sends it), what was measured kept")
    p.add_argument("--detect-ahead", default="on", choices=["on", "off", "both"],
                   help="find the next frame's faces on a helper thread while this one is analysed, as the app does "
                        "(on); off: one after the other; both: a row each, in the same run")
    p.add_argument("--detect-depth", default="1",
                   help="with detection ahead: how many frames are found at once, each on its own thread; a comma "
                        "list gives a row each (e.g. 1,2,3: where the models outpace the detector, a GPU with cores "
                        "to spare, more keeps up; default 1)")
    p.add_argument("--device-chain", default="auto", choices=["auto", "on", "off"],
                   help="keep the filter → classifier hand-over on the device (I/O binding): auto = on GPU providers")
    p.add_argument("--overlap-skin", default="auto", choices=["auto", "on", "off"],
                   help="measure the unfiltered faces' skin on a helper thread while the filter runs: auto = where the "
                        "filter runs on a GPU")
    p.add_argument("--skin-threads", type=int, default=1, choices=range(5), metavar="{0..4}",
                   help="helper threads sharing a frame's skin measurements (0: a quarter of the cores, 1 to 4; default 1)")
    p.add_argument("--profile-host", metavar="DIR",
                   help="after each row is measured, profile more of its frames (cProfile, the analysing thread) and "
                        "write where the host time went, by function, to DIR/<row>.txt")
    p.add_argument("--profile-frames", type=positive_int, default=30, help="frames profiled per row with --profile-host (default %(default)s)")
    add_model_arguments(p, haar_both=True)
    for action in p._actions:
        if action.dest == "classifier":  # bench times two by default, as the goals are stated for two
            action.help = "ONNX classifier (repeat; default: the first two in resources/models)"


@dataclass
class Loaded:
    classifiers: list[Classifier]
    filter: Filter | None
    models: dict[str, str]  # model name → provider it runs on


def timed_classifiers(classifiers: list[Classifier], args: argparse.Namespace) -> list[Classifier]:
    """The classifiers a row times: those given, or the first two defaults, as the goal is stated for two."""
    return classifiers if args.classifier else classifiers[:2]


def load_for(args: argparse.Namespace, provider: str) -> tuple[Loaded | None, str | None]:
    """The models on ``provider``, or the reason that provider cannot run them (never a silent CPU fallback).

    On a GPU provider anything that stops the models loading is that provider's row's reason, not the end of the
    bench (a TensorRT cache folder that could not be made had stopped it with an OSError); on the CPU, where the
    models were checked first, it is an error."""
    try:
        # the sessions' fallbacks are this row's reason (or, for auto, said below): not a log line per model too
        with fallbacks_collected() as fallbacks:
            cls, filt = load_selection(args.classifier, args.filter, args.no_filter,
                                       RuntimeConfig(provider="cuda" if provider in GRAPHS else provider,
                                                     threads=args.threads, cuda_graph=provider in GRAPHS))
    except BiasMirrorError as exc:
        if provider == "cpu":
            raise
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - ORT's errors, an OSError, ...: a GPU row says it and the bench goes on
        if provider == "cpu":
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    named = {str(m.path): m.name for m in [*cls, *([filt] if filt else [])]}
    cls = timed_classifiers(cls, args)
    models = [*cls, *([filt] if filt else [])]
    loaded = Loaded(cls, filt, {m.name: m.provider for m in models})
    if provider == "auto":
        for line in fallback_lines([(named.get(n, Path(n).name), w) for n, w in fallbacks]):
            print(f"warning: {line}")
        return loaded, None
    wanted = EXPECTED[provider]
    wrong = [m for m in models if m.info.provider != wanted]
    if not wrong and provider in GRAPHS:  # timed under "CUDA graphs" only if every model replays them
        refused = [m for m in models if not m.info.cuda_graph]
        if refused:
            return None, f"{refused[0].name}: {refused[0].info.warning or 'CUDA graphs were not enabled'}"
    if not wrong:
        return loaded, None
    m = wrong[0]
    reason = m.info.warning or m.info.note or f"{m.name} runs on {m.provider}"
    if m.info.skipped and wanted == TRT:
        return None, m.info.skipped  # left out before ORT was asked: the probe would tell of something else
    if wanted != CPU:
        from .gpu import probe  # what ORT said when the provider failed to load

        why = probe(wanted)
        if not why.ok and why.reason:
            reason = f"{SHORT[wanted]} did not start: {why.reason}"
    return None, reason


def _row_label(provider: str, loaded: Loaded | None) -> str:
    if provider == "auto" and loaded is not None:
        return "auto→" + "/".join(sorted(set(loaded.models.values())))
    return LABELS.get(provider) or SHORT.get(EXPECTED.get(provider, ""), provider)


def print_table(results: list[Measurement]) -> None:
    w = max([38, *(len(m.name) for m in results)])  # the names' column, as wide as the longest
    print(f"{'faces':>5s} {'configuration':{w}s} {'frames':>6s} {'frames/s':>9s} {'p50 ms':>8s} {'p95 ms':>8s} "
          f"{'p99 ms':>8s} {'found/frame':>11s} {'× eager':>8s} {'(per face)':>10s}")
    for m in results:
        if m.status != "ok":
            print(f"{faces_label(m.faces):>5s} {m.name:{w}s} {m.status}")
            continue
        e = m.latency_ms["end_to_end"]
        ratios = f"{m.vs_eager:7.2f}×" if m.vs_eager is not None else f"{'—':>8s}"
        ratios += f"{m.vs_eager_faces:9.2f}×" if m.vs_eager_faces is not None else f"{'—':>10s}"
        fps = f"{m.fps:9.1f}" if m.fps >= 10 else f"{m.fps:9.2f}"
        print(f"{faces_label(m.faces):>5s} {m.name:{w}s} {m.frames:6d} {fps} {e['p50']:8.1f} {e['p95']:8.1f} {e['p99']:8.1f} "
              f"{m.faces_seen:11.2f} {ratios}")


FOUND_ENOUGH = 0.9  # a row's faces found a frame, as a share of those pasted, below which it times less model work


def found_short(m: Measurement) -> bool:
    return m.faces_seen == 0 or (m.faces != AS_FILMED and m.faces_seen < FOUND_ENOUGH * m.faces)


def short_of_faces(results: list[Measurement]) -> list[str]:
    """A note for the rows whose detector found fewer faces a frame than were placed: their frames/s time that much
    less model work (a frame of no face found printed a ratio against eager as if the models had run). A video's
    rows place no faces, so only one that found none is noted (it had printed its ratios without a word)."""
    lines = []
    for m in results:
        if m.status == "ok" and found_short(m):
            lines.append(f"note: {m.name} at {faces_words(m.faces)} found {m.faces_seen:.2f} a frame: its figures time "
                         "the models on those only" + (" (none: no model ran)" if m.faces_seen == 0 else ""))
    return lines


def dropped_faces(results: list[Measurement], most: int) -> list[str]:
    """A note for the rows whose detector found more faces a frame than the pipeline analyses (``max_faces``, at
    least the largest --faces): those faces were found but not timed, where the eager baseline analyses them all."""
    return [f"note: {m.name} at {faces_words(m.faces)} found {m.faces_seen:.2f} a frame and analysed "
            f"{m.faces_seen - m.faces_dropped:.2f}: the pipeline analyses only the largest {most} "
            "(PipelineConfig.max_faces); × eager (per face) counts those analysed"
            for m in results if m.status == "ok" and m.faces_dropped > 0]


def target_lines(results: list[Measurement], resolution: tuple[int, int], filter_px: int | None,
                 classifiers: int) -> list[str]:
    """The targets, then each GPU row at their face counts: judged against them where it is of their configuration,
    else said not judged and why (a classifiers-only row, one whose frames found no face, a run at 1280×960 had each
    "met the target")."""
    one, many = TARGETS["one_face"], TARGETS["many_faces"]
    lines = [f"issue #11 targets ({TARGETS['device']}, {TARGETS['resolution'][0]}×{TARGETS['resolution'][1]}, "
             f"{TARGETS['configuration']}; goals, not measurements): {one['faces']} face ≥{one['min_fps']:.0f} frames/s "
             f"and p99 ≤{one['max_p99_ms']:.0f} ms; {many['faces']} faces ≥{many['min_fps']:.0f} frames/s"]
    run_differs = not_the_targets_run(resolution, filter_px, classifiers)
    for m in results:
        gpu_row = m.provider in ("cuda", "cuda-graph", "tensorrt") or (m.provider == "auto" and "CPU" not in m.name)
        if m.status != "ok" or not gpu_row or m.faces not in (one["faces"], many["faces"]):
            continue
        differs = run_differs + not_the_targets_row(m, filter_px is not None)
        if differs:
            lines.append(f"  {m.name} at {m.faces} face(s): {m.fps:.1f} frames/s — not judged, not the targets' "
                         f"configuration: {'; '.join(differs)}")
            continue
        # With detection ahead a frame comes out every end_to_end ms, but it waited for its own detection too:
        # the latency goal is held to the longer of the two (``total``: the frame's detection plus its analysis)
        between = m.latency_ms["end_to_end"]["p99"]
        own = m.latency_ms.get("total", {}).get("p99", between)
        p99 = max(between, own)
        if m.faces == one["faces"]:
            ok = m.fps >= one["min_fps"] and p99 <= one["max_p99_ms"]
        else:
            ok = m.fps >= many["min_fps"]
        held = f"p99 {between:.1f} ms between frames" + (f", {own:.1f} ms a frame's own detection and analysis"
                                                         if own > between else "")
        lines.append(f"  {m.name} at {m.faces} face(s): {m.fps:.1f} frames/s, {held} — "
                     f"{'meets' if ok else 'misses'} the target")
    return lines


def not_the_targets_run(resolution: tuple[int, int], filter_px: int | None, classifiers: int) -> list[str]:
    """How this run's frames and models differ from those the targets are stated for (none: they are the same)."""
    w, h = TARGETS["resolution"]
    differs = [] if tuple(resolution) == (w, h) else [f"{resolution[0]}×{resolution[1]} frames, not {w}×{h}"]
    if filter_px is None:
        differs.append("no filter")
    elif filter_px != TARGETS["filter_px"]:
        differs.append(f"a {filter_px} px filter, not {TARGETS['filter_px']} px")
    if classifiers != TARGETS["classifiers"]:
        differs.append(f"{classifiers} classifier(s), not {TARGETS['classifiers']}")
    return differs


def not_the_targets_row(m: Measurement, has_filter: bool) -> list[str]:
    """How a row's work differs from the targets': the filter left out, or fewer faces found than were pasted."""
    differs = ["classifiers only, without the filter"] if has_filter and m.variant != "filter" else []
    if found_short(m):
        differs.append(f"found {m.faces_seen:.2f} faces a frame of the {m.faces} pasted"
                       + (" (none: no model ran)" if m.faces_seen == 0 else ""))
    return differs


def planned_configurations(providers: int, counts: int, variants: int, modes: int, baseline: bool) -> int:
    """How many rows a run makes: each provider × face count × variant × detection mode, then the eager ones."""
    return providers * counts * variants * modes + (counts * variants if baseline else 0)


def plan_line(total: int, seconds: float | None, frames: int, soak: float) -> str:
    """What a run will take, said before it starts: a device call or a CI job has a time limit to fit in."""
    if not seconds:
        return f"{total} configurations of up to {frames} frames each (give --seconds to bound each one's time)"
    bound = total * seconds * 1.25 + soak  # warm-up stops after a quarter of --seconds
    return (f"{total} configurations, each stopped after {seconds:g} s (+ a quarter for warm-up): at most about "
            f"{bound / 60:.1f} min of measuring{f' with the {soak:g} s soak' if soak else ''}, plus loading the models"
            " and the eager baseline; Ctrl-C (or SIGTERM) stops early and still reports what was measured")


def compare_with_eager(results: list[Measurement]) -> None:
    """Each ONNX row ÷ the eager row of the same face count and variant, measured in this run, over the frames both
    measured. Every row measures the frames from the first after the warm-up on, but --seconds stops each on its own
    clock: rates over different frames (an ONNX row's 2-30 against eager's 2-6) compared other faces and counts."""
    eager = {(m.faces, m.variant): m for m in results if m.provider == "eager" and m.status == "ok"}
    for m in results:
        base = eager.get((m.faces, m.variant))
        if m.provider == "eager" or m.status != "ok" or base is None or base.fps <= 0:
            continue
        k = min(m.frames, base.frames)
        (rate, faces), (base_rate, base_faces) = over_frames(m, k), over_frames(base, k)
        m.vs_eager, m.vs_eager_frames = rate / base_rate, k
        m.vs_eager_faces = rate * faces / (base_rate * base_faces) if base_faces > 0 else None


def over_frames(m: Measurement, k: int) -> tuple[float, float]:
    """A row's frames/s and faces analysed a frame over its first ``k`` measured frames: its own figures where it
    measured just those, else from its frames' times."""
    faces = m.frame_faces[:k] or [m.faces_seen - m.faces_dropped]
    if k >= m.frames:
        return m.fps, float(np.mean(faces))
    return k * 1000 / sum(m.frame_ms[:k]), float(np.mean(faces))


def ratio_notes(results: list[Measurement]) -> list[str]:
    """A note for each ratio taken over fewer frames than its row or the eager one measured (--seconds stopped them
    after different counts): the table's frames/s are each over its own frames, the ratio over the common ones."""
    eager = {(m.faces, m.variant): m.frames for m in results if m.provider == "eager" and m.status == "ok"}
    lines = []
    for m in results:
        k, base = m.vs_eager_frames, eager.get((m.faces, m.variant))
        if k is not None and base is not None and (k < m.frames or k < base):
            lines.append(f"note: {m.name} at {faces_words(m.faces)}: × eager over the first {k} frames after the "
                         f"warm-up, those both it ({m.frames} measured) and the eager baseline ({base}) measured")
    return lines


@dataclass
class BenchReport:
    """The rows measured so far, said as each one ends and kept in the JSON file after every row, so a run cut
    short (Ctrl-C, SIGTERM, or a kill that gives no warning) still leaves what it measured."""

    path: Path | None
    header: dict
    total: int
    results: list[Measurement] = field(default_factory=list)
    soak: dict | None = None
    done: int = 0

    def add(self, m: Measurement, configurations: int = 1) -> None:
        self.results.append(m)
        self.done += configurations
        if m.status == "ok":
            e = m.latency_ms["end_to_end"]
            print(f"[{self.done}/{self.total}] {m.name}, {faces_words(m.faces)}: {m.fps:.1f} frames/s, p50 {e['p50']:.1f} ms, "
                  f"p99 {e['p99']:.1f} ms", flush=True)
        self.write(complete=False, stopped=None)

    def write(self, complete: bool, stopped: str | None) -> None:
        if self.path is None:
            return
        compare_with_eager(self.results)
        write_json_atomically(self.path, {
            **self.header, "complete": complete, "stopped": stopped, "configurations": self.total, "measured": self.done,
            "timed": sum(m.status == "ok" for m in self.results),
            "results": [json_row(m) for m in self.results], "targets": TARGETS, "soak": self.soak})


PER_FRAME = ("frame_ms", "frame_faces")  # a row's per-frame figures: for the ratios, not the report


def json_row(m: Measurement) -> dict:
    return {k: v for k, v in asdict(m).items() if k not in PER_FRAME}


def main(args: argparse.Namespace, baseline_factory: BaselineFactory | None = None,
         no_baseline_reason: str = "no baseline was given (run it as `python main.py bench`)") -> int:
    check_source(args.source, "a folder of face images or a video")
    w, h = parse_resolution(args.resolution)
    if is_video(args.source) and args.faces is not None:
        # its frames were measured as they are, and the rows said 4 and 16 faces of the same one-face clip
        raise BiasMirrorError("--faces tiles face images from a folder onto each frame; a video's frames are measured "
                              "with the faces it films (found/frame counts them): leave --faces out, or give a folder",
                              args.source)
    counts = [AS_FILMED] if is_video(args.source) else parse_counts(args.faces or "1")
    depths = parse_counts(args.detect_depth, "--detect-depth", "1,2,3", MAX_DEPTH)
    providers = parse_providers(args.providers or args.provider)
    if args.json is not None:
        args.json = str(check_output_file(args.json, "--json", args.source))  # "~/b.json" as the home folder's
        check_paths_apart([("--json", args.json)], model_inputs(args))  # `--json m.onnx --classifier m.onnx` wrote over it
    if args.profile_host is not None:
        args.profile_host = str(check_output_dir(args.profile_host, "--profile-host"))
    distinct = distinct_frames((w, h), args.frames + args.warmup, len(counts))
    try:
        filter_card, n_classifiers = _checked_models(args)
        frames = {n: make_frames(args.source, n, (w, h), args.frames + args.warmup, distinct) for n in counts}
        gpu = gpu_name()
        gpu_start = gpu_memory_used_mib() if gpu else None  # before any model is loaded on a GPU
    except KeyboardInterrupt:
        stopped_before_measuring(args.json, [w, h], counts)
        raise
    except MemoryError:
        raise BiasMirrorError(f"out of memory making the {w}x{h} frames (--resolution) before measuring: give a "
                              "smaller --resolution or fewer --faces") from None
    filter_size = filter_card["size"] if filter_card else None
    variants = (["filter"] if filter_size else []) + ["plain"]
    # (detection ahead, what runs the Haar cascade): 0 ahead is one step after the other
    haars = ["opencv", "onnxruntime"] if args.haar_runtime == "both" else [args.haar_runtime]
    modes = [(ahead, haar) for haar in haars
             for ahead in {"on": depths, "off": [0], "both": [0, *depths]}[args.detect_ahead]]
    total = planned_configurations(len(providers), len(counts), len(variants), len(modes), not args.no_baseline)
    faces = "a video's own frames, resized" if counts == [AS_FILMED] else f"{', '.join(map(str, counts))} face(s)"
    repeats = (f", cycling through {distinct} different ones (at most {FRAME_BUDGET / 2**30:g} GiB of frames is held)"
               if distinct < args.frames + args.warmup else "")
    print(f"{w}×{h} frames with {faces}; {len(frames[counts[0]])} per configuration "
          f"({args.warmup} warm-up){repeats}; {os.cpu_count()} CPU cores; GPU: {gpu or 'none visible to nvidia-smi'}; "
          f"ONNX Runtime {ort.__version__}")
    print(plan_line(total, args.seconds, args.frames, args.soak), flush=True)
    if filter_card and filter_card["timing_only"]:
        print(f"filter '{filter_card['name']}' ({filter_size} px) is UNTRAINED: timing only, its output means nothing")
    info: dict[str, dict] = {}
    report = BenchReport(Path(args.json) if args.json else None, {
        "resolution": [w, h], "faces": counts, "cpu_count": os.cpu_count(), "gpu": gpu,
        "onnxruntime": ort.__version__, "device_chain": args.device_chain, "overlap_skin": args.overlap_skin,
        "skin_threads": args.skin_threads, "providers": info, "filter": filter_card, "baseline": None}, total)
    stopped = failed = None
    with terminate_as_interrupt():
        try:
            for provider in providers:
                _measure_provider(args, provider, counts, variants, modes, frames, gpu_start, info, report)
            if args.no_baseline:
                print("eager baseline: skipped (--no-baseline)")
            else:
                _measure_eager(args, baseline_factory, no_baseline_reason, counts, variants, filter_size, n_classifiers,
                               frames, report)
        except KeyboardInterrupt:
            stopped = f"interrupted after {report.done} of {total} configurations"
            print(f"\n{stopped}; what was measured follows", flush=True)
        except MemoryError:  # a frame's work, not the frames held: said in one line, with what was measured
            stopped = failed = (f"out of memory after {report.done} of {total} configurations at {w}x{h}: give a "
                                "smaller --resolution or fewer --faces")
            print(f"\n{stopped}; what was measured follows", flush=True)
    results = report.results
    compare_with_eager(results)
    results.sort(key=lambda m: (counts.index(m.faces), m.variant != "filter", m.provider == "eager"))
    print()
    print_table(results)
    for line in [*short_of_faces(results), *dropped_faces(results, bench_max_faces(counts)), *ratio_notes(results)]:
        print(line)
    for m in results:
        if m.status == "ok" and m.provider != "eager" and m.variant == ("filter" if filter_size else "plain"):
            stages = ", ".join(f"{k} {q['p50']:.1f}" for k, q in m.latency_ms.items() if k not in SPLIT)
            print(f"  stages p50 ms, {m.name}, {faces_words(m.faces)}: {stages}")
            if {"onnx_runtime", "host"} <= set(m.latency_ms):
                q = {k: m.latency_ms[k]["p50"] for k in ("detect", "onnx_runtime", "host") if k in m.latency_ms}
                print(f"    a frame, p50 ms: {q.get('detect', 0.0):.1f} finding faces, {q['onnx_runtime']:.1f} inside ONNX "
                      f"Runtime's runs (the models, with their copies), {q['host']:.1f} on the host around them")
    print()
    for line in target_lines(results, (w, h), filter_size, n_classifiers):
        print(line)
    for m in results:
        if m.gpu_memory_mib is not None:
            print(f"  GPU memory in use after {m.name}, {faces_words(m.faces)}: {m.gpu_memory_mib:.0f} MiB above the run's start")
    soak = report.soak
    if soak:
        gpu_line = (f"; GPU memory {soak['gpu_start_mib']:.0f} → {soak['gpu_end_mib']:.0f} MiB"
                    if soak["gpu_start_mib"] is not None and soak["gpu_end_mib"] is not None else "")
        print(f"soak ({soak['provider']}): {soak['frames']} frames in {soak['seconds']:.0f} s"
              f"{' (cut short)' if soak.get('interrupted') else ''}; "
              f"RSS {soak['rss_start_mb']:.0f} MB → {soak['rss_end_mb']:.0f} MB{gpu_line}")
    if report.path:
        report.write(complete=stopped is None, stopped=stopped)
        print(f"results written to {report.path}" + (f" ({report.done} of {total} configurations)" if stopped else ""))
    if failed:
        raise BiasMirrorError(failed)
    if not stopped and not any(m.status == "ok" for m in results):
        raise BiasMirrorError(nothing_measured(providers, args.no_baseline))
    return 130 if stopped else 0


def nothing_measured(providers: list[str], no_baseline: bool) -> str:
    """The error of a run in which no configuration was timed: every provider unavailable and no baseline ran (a GPU
    run on a machine without one had ended with status 0, as if it had measured)."""
    baseline = "the eager baseline was skipped (--no-baseline)" if no_baseline else "the eager baseline was unavailable"
    return (f"nothing was measured: every provider asked for ({', '.join(providers)}) was unavailable and {baseline}; "
            "`python main.py doctor` says which providers this machine can run")


def _checked_models(args: argparse.Namespace) -> tuple[dict | None, int]:
    """The models checked on the CPU before anything is measured, where a bad model file is an error, not an
    "unavailable" provider: the filter's card (None without one) and how many classifiers a row times. A --yunet
    file too: it was first opened while measuring, where a missing one made a provider's row "unavailable"."""
    classifiers, checked = load_selection(args.classifier, args.filter, args.no_filter,
                                          RuntimeConfig(provider="cpu", threads=1))
    args.cam_class = checked_cam_class(args, classifiers)  # every row's pipeline_config reads it
    args.condition = checked_condition(args, checked)
    n_classifiers = len(timed_classifiers(classifiers, args))  # the baseline runs as many: the same work
    refuse_empty(args.yunet, "--yunet", YUNET_WANTED)
    if args.yunet:
        make_detector(args.yunet)  # runs it once on a blank frame: another ONNX model is refused here
    if checked is None:
        return None, n_classifiers
    return {"name": checked.name, "size": checked.size[0],
            "timing_only": bool(checked.card.training.get("timing_only"))}, n_classifiers


def stopped_before_measuring(path: str | None, resolution: list[int], counts: list[int]) -> None:
    """On Ctrl-C (or SIGTERM) while the models and frames load: --json says this run measured nothing, as a later
    stop says what it measured; an earlier run's file had been left there, "complete": true."""
    stopped = "interrupted before the first configuration was measured"
    print(f"\n{stopped}", flush=True)
    if path is not None:
        write_json_atomically(Path(path), {"resolution": resolution, "faces": counts, "complete": False,
                                           "stopped": stopped, "configurations": None, "measured": 0, "timed": 0,
                                           "results": []})
        print(f"results written to {path} (none)", flush=True)


def _measure_provider(args: argparse.Namespace, provider: str, counts: list[int], variants: list[str], modes: list[tuple[int, str]],
                      frames: dict[int, list[np.ndarray]], gpu_start: float | None, info: dict[str, dict],
                      report: BenchReport) -> None:
    """Every face count × variant × detection mode on one provider, or a row each saying why it cannot run."""
    loaded, reason = load_for(args, provider)
    label = _row_label(provider, loaded)
    if loaded is None:
        info[provider] = {"status": f"unavailable: {reason}"}
        print(f"{label}: unavailable — {reason}")
        for n in counts:  # one row per face count says it; it stands for every variant and mode
            report.add(unavailable(f"onnx {label}", provider, n, "", reason or "?"), len(variants) * len(modes))
        return
    info[provider] = {"status": "ok", "models": loaded.models}
    print(f"{label}: " + ", ".join(f"{k} on {v}" for k, v in loaded.models.items()))
    per_count, start = len(variants) * len(modes), report.done
    try:
        _measure_loaded(args, provider, label, loaded, counts, variants, modes, frames, gpu_start, report)
    except BiasMirrorError as exc:
        if provider == "cpu":
            raise
        # A GPU provider that started but failed while measuring (out of memory, a CUDA graph it could not
        # record): its remaining rows say so in one, and the other providers and the baseline are still measured.
        done = report.done - start
        info[provider] = {"status": f"failed: {exc}", "models": loaded.models}
        print(f"{label}: failed — {exc}")
        report.add(unavailable(f"onnx {label}", provider, counts[min(done // per_count, len(counts) - 1)], "",
                               f"failed while measuring: {exc}"), max(0, len(counts) * per_count - done))


def pipeline_config(args: argparse.Namespace, apply_filter: bool = True,
                    max_faces: int = PipelineConfig.max_faces) -> PipelineConfig:
    return PipelineConfig(cam_class=args.cam_class, apply_filter=apply_filter, device_chain=args.device_chain,
                          overlap_skin=args.overlap_skin, skin_threads=args.skin_threads,
                          filter_condition=getattr(args, "condition", None), max_faces=max_faces)


def bench_max_faces(counts: list[int]) -> int:
    """The faces a frame the bench's pipelines analyse: the app's limit, or more where --faces pastes more. At the
    app's 20, `--faces 30` analysed the 20 largest and called them all found, against an eager baseline that
    analyses every face it finds."""
    return max(PipelineConfig.max_faces, *counts)


class FacesFound:
    """A pipeline as a row's runner and ``DetectingAhead`` call it, keeping each frame's count of faces the detector
    found (``FrameResult.faces_found``): a row's "found" is the detector's, and faces beyond ``max_faces`` (never
    analysed) are said, not counted as timed."""

    def __init__(self, pipe: FramePipeline):
        self.pipe = pipe
        self.found: list[int] = []  # a count a frame processed, warm-up included

    @property
    def detector(self) -> FaceDetector | None:
        return self.pipe.detector

    def process(self, frame: np.ndarray, **kwargs) -> FrameResult:
        r = self.pipe.process(frame, **kwargs)
        self.found.append(len(r.faces) if r.faces_found is None else r.faces_found)
        return r

    def settle(self, m: Measurement) -> None:
        """Row ``m`` (measured by ``measure``, whose frames were the last ``m.frames`` processed) told the
        detector's count as found, and the faces a frame it left unanalysed as dropped."""
        found = float(np.mean(self.found[-m.frames:]))
        m.faces_dropped, m.faces_seen = found - m.faces_seen, found


def _measure_loaded(args: argparse.Namespace, provider: str, label: str, loaded: Loaded, counts: list[int],
                    variants: list[str], modes: list[tuple[int, str]], frames: dict[int, list[np.ndarray]], gpu_start: float | None,
                    report: BenchReport) -> None:
    """The rows of a provider whose models loaded, then the soak if asked and not yet run."""
    # As the app does before its first frame: on a GPU every batch bucket's session is made now, so
    # a face count first met while measuring does not put a session's start-up into the figures.
    most = bench_max_faces(counts)
    prepared = FramePipeline(loaded.classifiers, loaded.filter, None,
                             PipelineConfig(device_chain=args.device_chain, max_faces=most)).prepare()
    if prepared:
        print(f"{label}: {prepared} batch-bucket sessions prepared before the warm-up")
    # a cascade run by ONNX Runtime runs on the row's provider (without CUDA graphs: its shapes change by frame)
    detectors = {haar: make_detector(args.yunet, args.haar_cascade, haar,
                                     RuntimeConfig(provider="cuda" if provider in GRAPHS else provider,
                                                   threads=args.threads))
                 for haar in dict.fromkeys(h for _, h in modes)}
    for n in counts:
        for variant in variants:
            # one pipeline per face count, variant and detector; its detection modes run on it in turn
            pipes = {haar: FramePipeline(loaded.classifiers, loaded.filter, detector,
                                         pipeline_config(args, variant == "filter", most))
                     for haar, detector in detectors.items()}
            for ahead, haar in modes:
                pipe = FacesFound(pipes[haar])

                def run(f: np.ndarray, pipe: FacesFound = pipe) -> tuple[dict[str, float], int]:
                    r = pipe.process(f)
                    return dict(r.timings_ms), len(r.faces)  # the faces analysed: what the work ran on

                runner = DetectingAhead(pipe, frames[n], ahead) if ahead else run  # type: ignore[arg-type]
                name = f"onnx {label}: {VARIANTS[variant]}" + (
                    "" if not ahead else ", detect ahead" if ahead == 1 else f", detect {ahead} ahead") + (
                    ", Haar on ORT" if haar == "onnxruntime" and not args.yunet else "")
                profiled = None
                try:
                    m = measure(name, runner, frames[n], args.warmup, args.seconds)
                    pipe.settle(m)
                    if args.profile_host:
                        profiled = profile_frames(f"{name}, {n} face(s)", runner, frames[n], args.profile_frames,
                                                  Path(args.profile_host))
                finally:
                    if ahead:
                        runner.close()  # type: ignore[union-attr]
                m.provider, m.faces, m.variant = provider, n, variant
                if gpu_start is not None and provider != "cpu":
                    used = gpu_memory_used_mib()
                    m.gpu_memory_mib = None if used is None else used - gpu_start
                report.add(m)
                if profiled is not None:
                    print(profile_line(profiled))
    if args.soak > 0 and report.soak is None:
        soaked = FramePipeline(loaded.classifiers, loaded.filter, detectors[modes[0][1]],
                               pipeline_config(args, max_faces=most))
        soak(soaked, frames[counts[0]], args.soak, label, gpu_start is not None, report)


def soak(pipe: FramePipeline, frames: list[np.ndarray], seconds: float, label: str, gpu: bool, report: BenchReport) -> None:
    """Frames for ``seconds`` on one pipeline, memory read at both ends; stopped early, it reports the time run."""
    start_rss, start_gpu, t0, k = rss_mb(), gpu_memory_used_mib() if gpu else None, time.monotonic(), 0
    interrupted = False
    try:
        while time.monotonic() - t0 < seconds:
            pipe.process(frames[k % len(frames)])
            k += 1
    except KeyboardInterrupt:
        interrupted = True
    report.soak = {"provider": label, "seconds": round(min(seconds, time.monotonic() - t0), 1), "frames": k,
                   "rss_start_mb": start_rss, "rss_end_mb": rss_mb(), "gpu_start_mib": start_gpu,
                   "gpu_end_mib": gpu_memory_used_mib() if gpu else None, "interrupted": interrupted}
    report.write(complete=False, stopped=None)
    if interrupted:
        raise KeyboardInterrupt


def _measure_eager(args: argparse.Namespace, factory: BaselineFactory | None, no_baseline_reason: str, counts: list[int],
                   variants: list[str], filter_size: int | None, n_classifiers: int, frames: dict[int, list[np.ndarray]],
                   report: BenchReport) -> None:
    for variant in variants:
        try:
            if factory is None:
                raise BiasMirrorError(no_baseline_reason)
            base = factory(variant == "filter", filter_size if variant == "filter" else None, n_classifiers)
        except BiasMirrorError as exc:
            print(f"eager baseline ({VARIANTS[variant]}): unavailable — {exc}")
            for n in counts:
                report.add(unavailable(f"eager: {VARIANTS[variant]}", "eager", n, variant, str(exc)))
            continue
        report.header["baseline"] = report.header["baseline"] or base.label
        print(f"eager baseline ({VARIANTS[variant]}): {base.label}")
        for n in counts:
            m = measure(f"eager: {VARIANTS[variant]}", base, frames[n], args.warmup, args.seconds)
            m.provider, m.faces, m.variant = "eager", n, variant
            report.add(m)
        del base
