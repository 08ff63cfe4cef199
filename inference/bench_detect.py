"""`python main.py bench detect`: face detectors compared on time per frame and on who they miss.

The detector is the first model a face meets: a face it misses is never
classified, filtered or measured, so a detector that misses some groups more
than others biases everything after it. Each labelled face (UTKFace adults by
default) is pasted at ``--face-px`` in the centre of a grey frame of
``--resolution``, as ``bench`` builds its frames, and every detector runs on
the same frames. A face counts as found when a box's centre lies inside it.
Per detector: p50 ms a frame, and per group the share found with its modified
Wilson 95 % interval, then the gap between the best- and worst-served group.
Faces are taken evenly across each group's sorted list (UTKFace names begin
with the age, so the first N would be the youngest).
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TextIO

import cv2
import numpy as np
from tqdm import tqdm

from . import strict_json
from .arg_checks import (JSON_DASH_HELP, check_output_file, data_folders, int_at_least, json_on_stdout, positive_int,
                         put_json)
from .bench_options import parse_resolution
from .cli_common import add_dataset_cache_argument, dataset_cache_dir
from .defaults import DEFAULT_DATASET, DEFAULT_DATASET_SAID, open_data_or_default
from .errors import BiasMirrorError
from .faces import HAAR_CASCADES, Detection, FaceDetector, make_detector
from .haar_device import HaarOnnxDetector, placement_line
from .images import read_bgr
from .metrics import modified_wilson
from .provenance import software
from .runtime import RuntimeConfig
from .stopping import terminate_as_interrupt, write_json_atomically
from .writing import written_in_place

# bench detect --json's format: bump it when a key changes meaning. The files written before it had none (1).
DETECT_SCHEMA_VERSION = 2


def add_arguments(p: argparse.ArgumentParser) -> None:
    # None, not the default's path: a default that cannot be read is said to be one (open_data_or_default)
    p.add_argument("--data", default=None,
                   help=f"labelled faces, a dataset spec (KIND:PATH) whose samples carry --by (default: "
                        f"{DEFAULT_DATASET_SAID})")
    p.add_argument("--by", default="race", choices=["race", "gender"], help="the groups compared (default: %(default)s)")
    p.add_argument("--per-group", type=positive_int, default=300, help="faces per group (default: %(default)s)")
    p.add_argument("--min-age", type=int, default=18, help="only faces at least this old (-1: all; default: %(default)s)")
    p.add_argument("--detectors", default=",".join(f"haar-{c}" for c in HAAR_CASCADES),
                   help="comma list of haar-<cascade> (" + ", ".join(HAAR_CASCADES) + "), haar-<cascade>-ort (the "
                        "same cascade run by ONNX Runtime on --provider; its boxes are compared with OpenCV's frame "
                        "by frame; @3/20 splits its graph into phases ending at stages 3 and 20, fewer kernels and "
                        "syncs against more dense work) and yunet:PATH")
    p.add_argument("--provider", default="auto", choices=["auto", "tensorrt", "cuda", "cpu"],
                   help="ONNX Runtime provider for the -ort detectors")
    p.add_argument("--face-px", type=int_at_least(24), default=176, help="side of the pasted face, in pixels (default: %(default)s)")
    p.add_argument("--resolution", default="640x480",
                   help="WxH of the frames the faces are pasted into (default: %(default)s)")
    p.add_argument("--json", help="also write the results here" + JSON_DASH_HELP)
    add_dataset_cache_argument(p)


@dataclass
class GroupFound:
    group: str
    n: int
    found: int
    share: float
    ci: tuple[float, float]


@dataclass
class DetectorResult:
    name: str
    p50_ms: float
    groups: list[GroupFound] = field(default_factory=list)
    overall: GroupFound | None = None
    gap: float | None = None  # best group's share − worst group's, in points of share
    provider: str | None = None  # for a cascade run by ONNX Runtime: the provider that ran it
    same_as_opencv: int | None = None  # …and on how many frames its boxes were OpenCV's, box for box
    frames: int = 0


def _phases(spec: str, text: str) -> tuple[int, ...]:
    try:
        phases = tuple(int(p) for p in text.split("/"))
    except ValueError:
        phases = ()
    if not phases:
        raise BiasMirrorError(f"--detectors: {spec!r}: after @ give the stage each phase ends at, rising and "
                              "joined by /, the last the cascade's stage count (e.g. @3/20)")
    return phases


def parse_detectors(text: str, runtime: RuntimeConfig = RuntimeConfig()) -> list[tuple[str, FaceDetector]]:
    out = []
    for spec in (s.strip() for s in text.split(",")):
        if not spec:
            continue
        base, at, phases = spec.partition("@")
        if spec.startswith("yunet:"):
            if not spec.partition(":")[2]:
                raise BiasMirrorError(f"--detectors: {spec!r} names no model file (yunet:PATH, e.g. "
                                      "yunet:face_detection_yunet_2023mar.onnx)")
            out.append((spec, make_detector(spec.partition(":")[2])))
        elif spec.startswith("haar-") and spec[5:] in HAAR_CASCADES:
            out.append((spec, make_detector(None, spec[5:])))
        elif base.startswith("haar-") and base.endswith("-ort") and base[5:-4] in HAAR_CASCADES:
            # @3/20: the graph's phases (the stage each ends at), so a GPU can weigh fewer kernels and host
            # syncs against more dense work in each; the same faces whatever they are
            try:
                detector = HaarOnnxDetector(base[5:-4], runtime, phases=_phases(spec, phases) if at else None)
            except ValueError as e:
                raise BiasMirrorError(f"--detectors: {spec!r}: {e}") from None
            out.append((spec, detector))
        else:
            raise BiasMirrorError(f"--detectors: {spec!r} is neither haar-<{'|'.join(HAAR_CASCADES)}>[-ort[@P/P…]] "
                                  "nor yunet:PATH")
    if not out:
        raise BiasMirrorError("--detectors names no detector")
    twice = sorted({name for name, _ in out if [n for n, _ in out].count(name) > 1})
    if twice:  # its results are kept by name: each face was counted twice, and every interval was too narrow
        raise BiasMirrorError(f"--detectors names {', '.join(twice)} more than once")
    return out


def opencv_twin(name: str) -> str:
    """haar-alt2-ort@3/20 → haar-alt2: OpenCV running the cascade an ONNX Runtime detector runs."""
    return name.partition("@")[0].removesuffix("-ort")


def found_in(detections: list[Detection], face: tuple[int, int, int, int]) -> bool:
    """Whether a detection's centre lies inside the face's box (x, y, w, h)."""
    x, y, w, h = face
    return any(x <= d.box[0] + d.box[2] / 2 <= x + w and y <= d.box[1] + d.box[3] / 2 <= y + h for d in detections)


def pasted(image: np.ndarray, size: tuple[int, int], face_px: int) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    w, h = size
    frame = np.full((h, w, 3), 110, np.uint8)
    x, y = (w - face_px) // 2, (h - face_px) // 2
    frame[y : y + face_px, x : x + face_px] = cv2.resize(image, (face_px, face_px), interpolation=cv2.INTER_AREA)
    return frame, (x, y, face_px, face_px)


def choose(samples: list, by: str, per_group: int, min_age: int) -> dict[str, list]:
    """Up to ``per_group`` faces of each group, spread over it; a face of no known age does not pass an age bar
    (as in ``train evaluate``)."""
    groups: dict[str, list] = {}
    for s in sorted(samples, key=lambda s: s.path):
        value = getattr(s, by)
        if value and (min_age < 0 or (s.age is not None and s.age >= min_age)):
            groups.setdefault(value, []).append(s)
    return {g: [members[i] for i in np.unique(np.linspace(0, len(members) - 1, min(per_group, len(members))).astype(int))]
            for g, members in sorted(groups.items())}


def summarise(name: str, times: list[float], hits: dict[str, list[bool]]) -> DetectorResult:
    def row(group: str, seen: list[bool]) -> GroupFound:
        k, n = int(sum(seen)), len(seen)
        return GroupFound(group, n, k, k / n if n else float("nan"), modified_wilson(k, n))

    groups = [row(g, seen) for g, seen in hits.items() if seen]
    shares = [g.share for g in groups]
    return DetectorResult(name, float(np.percentile(times, 50)) if times else float("nan"), groups,
                          row("all", [v for seen in hits.values() for v in seen]),
                          (max(shares) - min(shares)) if len(shares) > 1 else None)


def tied(groups: list, share: float) -> str:
    """Every group at ``share``, named together: of four groups at 100 % one had been named "most" alone."""
    names = [g.group for g in groups if g.share == share]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def main(args: argparse.Namespace) -> int:
    with json_on_stdout(args.json) as stdout:  # `--json -`: the tables and progress on standard error, the JSON alone
        return _bench_detect(args, stdout)


def _bench_detect(args: argparse.Namespace, stdout: TextIO | None) -> int:
    """The command, its --json written to ``stdout`` where that is given (``json_on_stdout``), else to the file."""
    size = parse_resolution(args.resolution)
    if args.face_px > min(size):
        raise BiasMirrorError(f"--face-px {args.face_px} does not fit a {args.resolution} frame")
    if args.json is not None and stdout is None:
        for folder in data_folders(args) or [None]:  # it had replaced the dataset's labels.csv
            # written once, at the end: /dev/stdout or a FIFO takes it where it stands
            args.json = str(check_output_file(args.json, "--json", folder, in_place=written_in_place))
    detectors = parse_detectors(args.detectors, RuntimeConfig(provider=args.provider))
    # every cascade run by ONNX Runtime is checked against OpenCV running the same cascade on the same frames
    named = dict(detectors)
    twins = {name: named.get(opencv_twin(name)) or make_detector(None, opencv_twin(name)[5:])
             for name, detector in detectors if isinstance(detector, HaarOnnxDetector)}
    agreed = {name: 0 for name in twins}
    for name, detector in detectors:
        if name in twins:  # where a GPU provider lacks a kernel, it runs on the CPU: say so before the timings
            print(f"{name} graph on {detector.provider}, one frame: {placement_line(detector.placement())}")
    read = open_data_or_default(args.data, dataset_cache_dir(args))
    groups = choose(read.samples, args.by, args.per_group, args.min_age)
    if not groups:
        labelled = any(getattr(s, args.by) for s in read.samples)
        raise BiasMirrorError(f"no face with a {args.by} label is {args.min_age} or older (of known age)" if labelled
                              else f"no sample in this dataset has a {args.by} label", read.root)
    total = sum(map(len, groups.values()))
    print(f"{len(detectors)} detector(s) on {total} faces pasted at {args.face_px} px into {size[0]}×{size[1]} frames; "
          f"groups by {args.by}: " + ", ".join(f"{g} {len(m)}" for g, m in groups.items()))
    times: dict[str, list[float]] = {name: [] for name, _ in detectors}
    hits: dict[str, dict[str, list[bool]]] = {name: {g: [] for g in groups} for name, _ in detectors}
    unreadable: list[str] = []
    stopped = None
    with terminate_as_interrupt(), tqdm(total=total, desc="detecting", unit="face") as bar:
        try:
            for group, members in groups.items():
                for sample in members:
                    image = read_bgr(sample.path)  # as `run` reads it: a float TIFF had been called unreadable
                    if image is None:
                        unreadable.append(sample.path)
                        bar.update(1)
                        continue
                    frame, face = pasted(image, size, args.face_px)
                    seen, took = {}, {}
                    for name, detector in detectors:
                        t = time.perf_counter()
                        seen[name] = detector.detect(frame)
                        took[name] = (time.perf_counter() - t) * 1000
                    same = {name: seen[name] == (seen[opencv_twin(name)] if opencv_twin(name) in seen
                                                 else twin.detect(frame)) for name, twin in twins.items()}
                    # kept once every detector has seen the frame: a Ctrl-C midway had left them on other faces
                    for name, _ in detectors:
                        times[name].append(took[name])
                        hits[name][group].append(found_in(seen[name], face))
                    for name, agrees in same.items():
                        agreed[name] += agrees
                    bar.update(1)
        except KeyboardInterrupt:
            stopped = f"interrupted after {bar.n} of {total} faces"
    if stopped is None and not any(times.values()):  # tables of nan and exit 0 read as a success
        raise BiasMirrorError(f"none of the {total} image(s) could be read, e.g. {unreadable[0]}: nothing was measured",
                              read.root)
    results = [summarise(name, times[name], hits[name]) for name, _ in detectors]
    for r, (name, detector) in zip(results, detectors):
        r.frames = len(times[name])
        if name in twins:
            r.provider, r.same_as_opencv = detector.provider, agreed[name]
    if stopped:
        print(f"{stopped}; what was measured follows")
    print(f"\n{'detector':14s} {'group':10s} {'n':>5s} {'found':>7s} {'95% CI':>15s} {'p50 ms':>7s}")
    for r in results:
        for g in [*r.groups, r.overall]:
            if g is None:
                continue
            ms = f"{r.p50_ms:7.1f}" if g is r.overall else ""
            print(f"{r.name:14s} {g.group:10s} {g.n:5d} {g.share:7.1%} {f'{g.ci[0]:.1%}–{g.ci[1]:.1%}':>15s} {ms}")
    for r in results:
        if r.gap is not None:
            worst = min(r.groups, key=lambda g: g.share)
            best = max(r.groups, key=lambda g: g.share)
            if worst.share == best.share:
                print(f"{r.name}: every group's faces found alike ({best.share:.1%}); {r.p50_ms:.1f} ms a frame (p50)")
                continue
            print(f"{r.name}: {tied(r.groups, worst.share)} faces found least ({worst.share:.1%}), "
                  f"{tied(r.groups, best.share)} most ({best.share:.1%}): a gap of {100 * r.gap:.1f} points; "
                  f"{r.p50_ms:.1f} ms a frame (p50)")
    for r in results:
        if r.same_as_opencv is not None:
            print(f"{r.name} ({r.provider}): the same boxes as OpenCV's {opencv_twin(r.name)} on {r.same_as_opencv} of "
                  f"{r.frames} frames")
    if unreadable:
        print(f"{len(unreadable)} unreadable image(s) skipped, e.g. {unreadable[0]}")
    if args.json:
        report = {
            "schema_version": DETECT_SCHEMA_VERSION, "software": software(),
            "data": args.data or DEFAULT_DATASET, "by": args.by, "face_px": args.face_px, "resolution": list(size),
            "min_age": args.min_age, "complete": stopped is None, "stopped": stopped, "unreadable": unreadable,
            "results": [asdict(r) for r in results]}
        if stdout is not None:
            put_json(stdout, strict_json.dumps(report, indent=1))  # as write_json_atomically writes a file
        else:
            write_json_atomically(Path(args.json), report)
    return 130 if stopped else 0
