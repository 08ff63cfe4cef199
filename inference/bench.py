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

This module is the command: it plans the configurations, measures each
provider's rows (and the soak) and the eager ones, and reports. Its parts:
the frames (bench_frames), timing a row (bench_measure), the models per
provider (bench_models), the options (bench_options), the machine's GPU and
memory (bench_machine), the ratios against eager (bench_ratios), the JSON
report (bench_report), the table and notes (bench_table) and issue #11's
targets (bench_targets).
"""
from __future__ import annotations

import argparse
import os
import time
from pathlib import Path
from typing import Callable, Protocol, TextIO

import numpy as np
import onnxruntime as ort

from . import strict_json
from .arg_checks import (check_output_dir, check_output_file, check_paths_apart, check_source, json_on_stdout,
                          model_inputs, put_json, resolved)
# Called unqualified below, as imported here: tests stand in for measure, make_frames, load_for, make_detector,
# gpu_name and gpu_memory_used_mib by patching this module's names (a call through bench_measure.measure would
# pass them by).
from .bench_frames import cycling_note, distinct_frames, is_video, make_frames
from .bench_machine import gpu_memory_used_mib, gpu_name, rss_mb
from .bench_measure import AS_FILMED, Measurement, measure, unavailable
from .bench_models import GRAPHS, Loaded, checked_models, load_for, row_label
from .bench_options import parse_counts, parse_providers, parse_resolution
from .bench_ratios import compare_with_eager
from .bench_report import BenchReport, stopped_before_measuring
from .bench_table import print_results
from .detect_ahead import MAX_DEPTH, DetectingAhead
from .errors import BiasMirrorError
from .faces import FaceDetector, make_detector
from .host_profile import profile_frames, profile_line
from .pipeline import FramePipeline, PipelineConfig
from .program_name import program
from .results import FrameResult
from .runtime import CPU, RuntimeConfig
from .stopping import terminate_as_interrupt
from .untrusted_text import say

VARIANTS = {"filter": "classifiers + filter", "plain": "classifiers only"}


class Baseline(Protocol):
    label: str

    def __call__(self, frame: np.ndarray) -> tuple[dict[str, float], int]: ...


# (with_filter, the ONNX filter's input size or None, how many classifiers the ONNX rows run) → a baseline
BaselineFactory = Callable[[bool, "int | None", int], Baseline]


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


def main(args: argparse.Namespace, baseline_factory: BaselineFactory | None = None,
         no_baseline_reason: str = "no baseline was given (run it as `python main.py bench`)") -> int:
    with json_on_stdout(args.json) as stdout:  # `--json -`: the rows and the table on standard error, the JSON alone
        return _bench(args, baseline_factory, no_baseline_reason, stdout)


def _bench(args: argparse.Namespace, baseline_factory: BaselineFactory | None, no_baseline_reason: str,
           stdout: TextIO | None) -> int:
    """The command, its --json written once at the end to ``stdout`` where that is given (``json_on_stdout``),
    else to the file, rewritten after every row."""
    check_source(args.source, "a folder of face images or a video")
    if args.source:  # a link loop named as one, as a dataset's is: it had been "give --source"
        resolved(args.source, "--source")
    w, h = parse_resolution(args.resolution)
    if is_video(args.source) and args.faces is not None:
        # its frames were measured as they are, and the rows said 4 and 16 faces of the same one-face clip
        raise BiasMirrorError("--faces tiles face images from a folder onto each frame; a video's frames are measured "
                              "with the faces it films (found/frame counts them): leave --faces out, or give a folder",
                              args.source)
    counts = [AS_FILMED] if is_video(args.source) else parse_counts(args.faces or "1")
    depths = parse_counts(args.detect_depth, "--detect-depth", "1,2,3", MAX_DEPTH)
    providers = parse_providers(args.providers or args.provider)
    if args.json is not None and stdout is None:
        from .writing import refuse_in_place, written_in_place

        # "~/b.json" as the home folder's; /dev/null is taken where it stands, though a user may not write in /dev
        args.json = str(check_output_file(args.json, "--json", args.source, in_place=written_in_place))
        refuse_in_place(args.json, "--json", "is rewritten after every row")  # as root /dev/stdout had been replaced
        check_paths_apart([("--json", args.json)], model_inputs(args))  # `--json m.onnx --classifier m.onnx` wrote over it
    if args.profile_host is not None:
        args.profile_host = str(check_output_dir(args.profile_host, "--profile-host"))
    distinct = distinct_frames((w, h), args.frames + args.warmup, len(counts))
    try:
        filter_card, n_classifiers = checked_models(args)
        frames = {n: make_frames(args.source, n, (w, h), args.frames + args.warmup, distinct) for n in counts}
        gpu = gpu_name()
        gpu_start = gpu_memory_used_mib() if gpu else None  # before any model is loaded on a GPU
    except KeyboardInterrupt:
        stopped_before_measuring(args.json, [w, h], counts, stdout)
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
    repeats = cycling_note(distinct, args.frames + args.warmup)
    print(f"{w}×{h} frames with {faces}; {len(frames[counts[0]])} per configuration "
          f"({args.warmup} warm-up){repeats}; {os.cpu_count()} CPU cores; GPU: {gpu or 'none visible to nvidia-smi'}; "
          f"ONNX Runtime {ort.__version__}")
    print(plan_line(total, args.seconds, args.frames, args.soak), flush=True)
    if filter_card and filter_card["timing_only"]:
        # the card's name is the filter's author's text: a terminal would obey an escape sequence in it
        say(f"filter '{filter_card['name']}' ({filter_size} px) is UNTRAINED: timing only, its output means nothing")
    info: dict[str, dict] = {}
    # `--json -` has no file to rewrite after every row: its report is put on standard output at the end
    report = BenchReport(Path(args.json) if args.json and stdout is None else None, {
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
    print_results(results, bench_max_faces(counts), filter_size, (w, h), n_classifiers, report.soak)
    if report.path or stdout is not None:
        if stdout is not None:
            put_json(stdout, strict_json.dumps(report.document(complete=stopped is None, stopped=stopped), indent=1))
        else:
            report.write(complete=stopped is None, stopped=stopped)
        print(f"results written to {report.path or 'standard output'}"
              + (f" ({report.done} of {total} configurations)" if stopped else ""))
    if failed:
        raise BiasMirrorError(failed)
    if not stopped and not any(m.status == "ok" for m in results):
        raise BiasMirrorError(nothing_measured(providers, args.no_baseline, {
            p: i["status"].removeprefix("failed: ") for p, i in info.items() if i["status"].startswith("failed: ")}))
    return 130 if stopped else 0


def nothing_measured(providers: list[str], no_baseline: bool, failed: dict[str, str] | None = None) -> str:
    """The error of a run in which no configuration was timed: every provider unavailable and no baseline ran (a GPU
    run on a machine without one had ended with status 0, as if it had measured). ``failed``: why each provider
    that started failed while measuring, said as such, not as one that could not start."""
    baseline = "the eager baseline was skipped (--no-baseline)" if no_baseline else "the eager baseline was unavailable"
    if failed:
        return ("nothing was measured: " + "; ".join(f"{p} failed while measuring ({why})" for p, why in failed.items())
                + f"; {baseline}")
    return (f"nothing was measured: every provider asked for ({', '.join(providers)}) was unavailable and {baseline}; "
            f"`{program()} doctor` says which providers this machine can run")


def _measure_provider(args: argparse.Namespace, provider: str, counts: list[int], variants: list[str], modes: list[tuple[int, str]],
                      frames: dict[int, list[np.ndarray]], gpu_start: float | None, info: dict[str, dict],
                      report: BenchReport) -> None:
    """Every face count × variant × detection mode on one provider, or a row each saying why it cannot run."""
    loaded, reason = load_for(args, provider)
    label = row_label(provider, loaded)
    if loaded is None:
        info[provider] = {"status": f"unavailable: {reason}"}
        say(f"{label}: unavailable — {reason}")
        for n in counts:  # one row per face count says it; it stands for every variant and mode
            report.add(unavailable(f"onnx {label}", provider, n, "", reason or "?"), len(variants) * len(modes))
        return
    info[provider] = {"status": "ok", "models": loaded.models}
    say(f"{label}: " + ", ".join(f"{k} on {v}" for k, v in loaded.models.items()))
    per_count, start = len(variants) * len(modes), report.done
    try:
        _measure_loaded(args, provider, label, loaded, counts, variants, modes, frames, gpu_start, report)
    except BiasMirrorError as exc:
        if provider == "cpu" or failed_on_the_cpu(exc, loaded):
            raise
        # A GPU provider that started but failed while measuring (out of memory, a CUDA graph it could not
        # record): its remaining rows say so in one, and the other providers and the baseline are still measured.
        done = report.done - start
        info[provider] = {"status": f"failed: {exc}", "models": loaded.models}
        say(f"{label}: failed — {exc}")  # an error quotes the models' paths and names
        report.add(unavailable(f"onnx {label}", provider, counts[min(done // per_count, len(counts) - 1)], "",
                               f"failed while measuring: {exc}"), max(0, len(counts) * per_count - done))


def failed_on_the_cpu(exc: BiasMirrorError, loaded: Loaded) -> bool:
    """Whether ``exc`` is a model of this row failing on the CPU, whatever provider was asked for: the model's own
    failure, as on the CPU row (auto on a machine without a GPU had made it the provider's, and the run ended
    "every provider asked for (auto) was unavailable")."""
    failed = next((m for m in [*loaded.classifiers, *([loaded.filter] if loaded.filter else [])]
                   if str(m.path) == exc.path), None)
    return failed is not None and failed.info.provider == CPU


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
            say(f"eager baseline ({VARIANTS[variant]}): unavailable — {exc}")
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
