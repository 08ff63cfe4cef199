"""`python main.py bench train`: training throughput of the real trainers, per precision and memory format.

Every variant runs the trainers' own ``batch()`` and ``step()`` (augmentation,
losses, optimiser, grad scaler) on real faces, through the loop's batch stream
(DataLoader workers with ``--workers``), so the figures are what a training
run gets. Ratios are against plain fp32 without compile, measured in the same
run and timed first whatever order --variants and --compile give (where they
leave it out, against the first row timed, which every row names); the data-wait
share is the part of the step time spent waiting for the next batch. The
operations a step dispatches to PyTorch's kernels (forward, backward,
optimiser) are counted on one more step: where a step is bound by launches
(a small network at batch 1 on a GPU), that count is what its time follows,
and it is the same on any machine, GPU or not. With ``--compile`` each variant
is also timed under torch.compile (the trainers' ``--compile``); its first
step, which compiles, is reported apart, and its operations are not counted:
fused kernels never pass the dispatcher one by one.
"""
from __future__ import annotations

import argparse
import itertools
import logging
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TextIO

import numpy as np
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from inference import strict_json
from inference.arg_checks import STDOUT, check_cache_dir, check_output_file, json_on_stdout, put_json
from inference.cli_common import dataset_cache_dir
from inference.defaults import open_data_or_default
from inference.errors import BiasMirrorError
from inference.provenance import software
from inference.stopping import write_json_atomically
from inference.writing import refuse_in_place, written_in_place
from training.compile_step import COMPILE_MODES
from training.data.cache import load_images, unreadable_note
from training.distributed import Dist, training_wrapper
from training.epoch_batches import KeptRows, batch_stream, default_workers
from training.interrupts import StopFlag
from training.loop import LoopConfig, amp_dtype, make_context, pick_device, place_modules, seed_everything, train_step
from training.nets.cam_classifier import ClassifierConfig
from training.nets.cyclegan import preset
# The command line, kept without torch so that main.py answers --help without loading it; add_arguments is imported
# from here too.
from training.tasks.bench_train_args import MIN_FACES, add_arguments  # noqa: F401
from training.tasks.classifier import LABELS, ClassifierData, ClassifierTask
from training.tasks.classifier_args import RECIPE
from training.tasks.cyclegan import CycleGANTask, DomainImages

# 2: `schema_version` and the `software` block (inference.provenance) first; the files written before had neither
TRAIN_BENCH_SCHEMA_VERSION = 2


log = logging.getLogger(__name__)
GOALS = {"classifier": ("images/s", 2000.0), "cyclegan": ("iterations/s", 20.0)}  # the H100 targets


@dataclass
class TrainTiming:
    trainer: str
    variant: str
    dtype: str
    channels_last: bool
    batch_size: int
    steps: int
    seconds: float
    per_second: float  # images/s for the classifier, iterations/s for the CycleGAN; unrounded, so that the row and
    # the summary say the same figure (rounded here first, 39.349 read 39.3 in the row, 39.4 in the summary)
    unit: str
    data_wait_share: float
    ops_per_step: int | None = 0  # operations dispatched to kernels in one step (None when compiled: not countable)
    compile: str = "off"  # the --compile mode
    first_step_seconds: float = 0.0  # the first warm-up step: where torch.compile compiles
    status: str = "ok"  # or "unavailable: <why>"
    peak_gpu_mib: float | None = None  # most GPU memory PyTorch held at once (None on the CPU)
    ratio_vs_fp32: float = float("nan")  # per_second ÷ the ratio_base row's: plain fp32 where it was timed
    ratio_base: str = ""  # the row the ratio is against (the first timed, where plain fp32 was not asked for)


class OpCounter(TorchDispatchMode):
    """Counts the operations that reach PyTorch's kernels while it is active, on every thread autograd uses."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def variants(device: torch.device) -> list[tuple[str, str, bool]]:
    """(name, precision, channels_last); mixed precision only where it exists (CUDA)."""
    out = [("fp32", "fp32", False), ("fp32+channels-last", "fp32", True)]
    if device.type == "cuda":
        out += [("amp", "auto", False), ("amp+channels-last", "auto", True)]
    return out


def real_faces(spec: str | None, n: int, size: int, cache: Path | None,
               dataset_cache: Path | None) -> tuple[np.ndarray | KeptRows, np.ndarray]:
    """Up to ``n`` labelled faces of ``spec`` decoded at ``size``, and their labels. The faces stay the cache's file
    mapping (KeptRows where some could not be read): taken as ``np.asarray(faces)[readable]``, a copy even with every
    face read, they had been sent whole to every spawned DataLoader worker of the classifier (macOS, Windows; 0.1 GB
    each for the default 2048 faces at 128 px) where the mapping goes as its file's name."""
    read = open_data_or_default(spec, dataset_cache)  # spec None: --data's default
    samples = [s for s in read.samples if s.gender in LABELS][:n]
    if len(samples) < MIN_FACES:
        raise BiasMirrorError(f"bench train needs at least {MIN_FACES} labelled faces; found {len(samples)}", read.root)
    arr = load_images([s.path for s in samples], size, cache)
    if arr.n_bad:
        log.warning("%s", unreadable_note([s.path for s in samples], arr.ok))
    ok = np.flatnonzero(arr.ok)
    faces = arr.images if arr.n_bad == 0 else KeptRows(arr.images, ok)
    return faces, np.array([LABELS.index(samples[i].gender) for i in ok])


def classifier_task(images: np.ndarray | KeptRows, labels: np.ndarray, size: int, batch_size: int,
                    steps: int = 1) -> ClassifierTask:
    """A classifier trainer on these faces whose one-cycle schedule lasts at least ``steps`` steps.

    The faces are repeated when the steps need more batches than there are faces; the schedule
    must count those steps too, or OneCycleLR refuses to step past its end.
    """
    n = len(images)
    data = ClassifierData(read=None, samples=[], images=images, labels=labels,  # type: ignore[arg-type]
                          split=np.full(n, "train"), train_idx=np.arange(n), composition=None)  # type: ignore[arg-type]
    epochs = -(-steps // max(1, n // batch_size))
    # the default recipe's augmentation and loss, so the figures are those of a plain `train classifier`
    return ClassifierTask(data, ClassifierConfig(size=size), {**RECIPE, "epochs": epochs, "batch_size": batch_size,
                                                              "lr": 2e-3})


def cyclegan_task(images: np.ndarray | KeptRows, preset_name: str, batch_size: int, out: Path) -> CycleGANTask:
    # The halves of KeptRows are copies; no matter: the CycleGAN draws its batches in its step, in this process, and
    # never sends its faces to a worker (it does not prefetch).
    half = len(images) // 2
    a, b = DomainImages(images[:half], images[:8]), DomainImages(images[half:], images[half : half + 8])
    run_cfg = {"seed": 0, "batch_size": batch_size, "iters_per_epoch": max(1, half // batch_size), "sample_every": 0,
               "lr": 2e-4, "n_epochs": 1, "n_epochs_decay": 0}
    return CycleGANTask(a, b, preset(preset_name), run_cfg, out)


def time_steps(task, cfg: LoopConfig, device: torch.device, warmup: int, steps: int,
               stop: StopFlag | None = None) -> tuple[float, float, int | None, float]:
    """Seconds for ``steps`` steps after ``warmup``, the share of it spent waiting for batches, the
    operations one more (untimed) step dispatches (None when compiled), and the first step's seconds.
    KeyboardInterrupt after the step in hand once ``stop`` has been requested (SIGTERM)."""
    place_modules(task, device, cfg.channels_last)
    wrap = training_wrapper(cfg, Dist(), device)
    if wrap is not None:
        task.wrap_for_training(wrap)
    ctx = make_context(cfg, device)
    order = np.random.default_rng(0).permutation(task.indices())
    need = (warmup + steps + 1) * cfg.batch_size
    order = np.resize(order, need)  # repeat the faces when there are fewer than the steps need
    stream = batch_stream(task, order, cfg, device)
    waited, t0, first = 0.0, 0.0, 0.0
    for i in range(warmup + steps):
        if i == warmup:
            _sync(device)
            waited, t0 = 0.0, time.perf_counter()
        t = time.perf_counter()
        batch = next(stream)
        waited += time.perf_counter() - t
        train_step(task, batch, ctx, cfg)
        if i == 0:
            _sync(device)
            first = time.perf_counter() - t
        ctx.step += 1
        ctx.samples += cfg.batch_size
        if stop is not None and stop.requested:
            raise KeyboardInterrupt
    _sync(device)
    seconds = time.perf_counter() - t0
    if cfg.compile != "off":
        return seconds, waited / seconds, None, first
    batch = next(stream)
    with OpCounter() as ops:
        task.step(batch, ctx)
    return seconds, waited / seconds, ops.count, first


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def pick_variants(available: list[tuple[str, str, bool]], text: str | None) -> list[tuple[str, str, bool]]:
    if not text:
        return available
    names = [v.strip() for v in text.split(",") if v.strip()]
    known = {v[0]: v for v in available}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise BiasMirrorError(f"variant(s) {', '.join(unknown)} cannot run here; choose from {', '.join(known)}")
    return [known[n] for n in names]


def parse_compile_modes(text: str) -> list[str]:
    modes = [m.strip() for m in text.split(",") if m.strip()] or ["off"]
    unknown = [m for m in modes if m not in COMPILE_MODES]
    if unknown:
        raise BiasMirrorError(f"unknown --compile mode(s) {', '.join(unknown)}; choose from {', '.join(COMPILE_MODES)}")
    return modes


def main(args: argparse.Namespace) -> int:
    with json_on_stdout(args.json) as stdout:  # `--json -`: the rows said on standard error, the JSON alone
        return _bench_train(args, stdout)


def _bench_train(args: argparse.Namespace, stdout: TextIO | None) -> int:
    """The command, its --json written once at the end to ``stdout`` where that is given (``json_on_stdout``),
    else to the file, rewritten after every row."""
    if args.json is not None and stdout is None:
        # "~" expanded, as checked; /dev/null is taken where it stands, though a user may not write in /dev
        args.json = str(check_output_file(args.json, "--json", in_place=written_in_place))
        refuse_in_place(args.json, "--json", "is rewritten after every configuration")
    args.cache = check_cache_dir(args.cache)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    gpu = device.type == "cuda"
    workers = args.workers if args.workers is not None else default_workers(gpu)
    trainers = [t.strip() for t in args.trainers.split(",") if t.strip()]
    unknown = set(trainers) - set(GOALS)
    if unknown:
        raise BiasMirrorError(f"unknown trainer(s) {', '.join(sorted(unknown))}; choose from {', '.join(GOALS)}")
    modes = parse_compile_modes(args.compile)
    chosen = pick_variants(variants(device), args.variants)
    name = torch.cuda.get_device_name(device) if gpu else f"CPU ({torch.get_num_threads()} threads)"
    total = len(trainers) * len(chosen) * len(modes)
    print(f"training throughput on {name}; torch {torch.__version__}; {workers} data workers; {total} configurations "
          f"of {args.warmup} + {args.steps} steps; Ctrl-C (or SIGTERM) stops early and still reports what was measured",
          flush=True)
    results: list[TrainTiming] = []
    # the software block once (it asks git), not at each of the rows' writes
    header = {"schema_version": TRAIN_BENCH_SCHEMA_VERSION, "software": software(), "device": name,
              "torch": torch.__version__, "workers": workers, "configurations": total}
    stopped = None
    stop = StopFlag()  # SIGTERM: the step in hand ends, then as Ctrl-C
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for trainer in trainers:
                _time_trainer(args, trainer, chosen, modes, device, workers, Path(tmp), results, header, stop)
        except KeyboardInterrupt:
            stopped = f"interrupted after {len(results)} of {total} configurations"
            print(f"\n{stopped}; what was measured follows", flush=True)
        finally:
            stop.restore()
    for trainer in trainers:
        unit, goal = GOALS[trainer]
        timed = [r for r in results if r.trainer == trainer and r.status == "ok"]
        if not timed:  # an interrupted run had said this of trainers it never got to
            print(f"{trainer}: " + ("not measured (interrupted)" if stopped else "no variant could be timed"))
            continue
        best = max(timed, key=lambda r: r.per_second)
        print(f"{trainer}: best {best.per_second:.1f} {unit} ({best.variant}); the issue's H100 target is ≥ {goal:g} {unit}"
              + ("" if gpu else " (this run had no GPU)"))
    if stdout is not None:
        put_json(stdout, strict_json.dumps(json_document(header, results, stopped), indent=1))
    elif args.json:
        write_json(Path(args.json), header, results, stopped)
    return 130 if stopped else 0


def json_file(args: argparse.Namespace) -> Path | None:
    """The file --json rewrites after every row; None without one, or for `--json -`, written once at the end."""
    return Path(args.json) if args.json and args.json != STDOUT else None


def write_json(path: Path, header: dict, results: list[TrainTiming], stopped: str | None, complete: bool = True) -> None:
    """The figures so far, replaced whole after every row: a run killed outright still leaves its rows."""
    write_json_atomically(path, json_document(header, results, stopped, complete))


def json_document(header: dict, results: list[TrainTiming], stopped: str | None, complete: bool = True) -> dict:
    """--json's document, whether a file's or standard output's."""
    return {**header, "complete": complete and stopped is None, "stopped": stopped, "measured": len(results),
            "results": [_json_row(r) for r in results]}


def _json_row(r: TrainTiming) -> dict:
    """A row as the JSON holds it: its rate to two places."""
    return {**asdict(r), "per_second": round(r.per_second, 2)}


def timing_order(chosen: list[tuple[str, str, bool]], modes: list[str]) -> list[tuple[tuple[str, str, bool], str]]:
    """Every variant × compile mode in the order given, except that plain fp32 without compile comes first wherever
    it was asked for: the ratios are against the first row timed. Only the variants were reordered before, so
    ``--compile default,off`` took every ratio against the compiled fp32 row."""
    pairs = list(itertools.product(chosen, modes))
    return sorted(pairs, key=lambda pair: not is_plain_fp32(*pair))


def is_plain_fp32(variant: tuple[str, str, bool], mode: str) -> bool:
    _, precision, channels_last = variant
    return precision == "fp32" and not channels_last and mode == "off"


def _time_trainer(args: argparse.Namespace, trainer: str, chosen: list[tuple[str, str, bool]], modes: list[str],
                  device: torch.device, workers: int, tmp: Path, results: list[TrainTiming], header: dict,
                  stop: StopFlag | None = None) -> None:
    """Every variant × compile mode of one trainer, each row printed (and written) as it ends."""
    gpu = device.type == "cuda"
    size = args.size if trainer == "classifier" else preset(args.cyclegan_preset).size
    images, labels = real_faces(args.data, args.faces, size, Path(args.cache) if args.cache else None,
                                dataset_cache_dir(args))
    batch = args.classifier_batch or (256 if gpu else 64) if trainer == "classifier" else args.cyclegan_batch
    unit, _ = GOALS[trainer]
    fp32 = base = None
    order = timing_order(chosen, modes)
    for (variant, precision, channels_last), mode in order:
        label = variant if mode == "off" else f"{variant}+compile:{mode}"
        dtype = str(amp_dtype(precision, device) or torch.float32).replace("torch.", "")
        seed_everything(0)
        torch._dynamo.reset()  # each variant compiles afresh: no graphs or recompile counts carried over
        task = (classifier_task(images, labels, size, batch, args.warmup + args.steps + 1) if trainer == "classifier"
                else cyclegan_task(images, args.cyclegan_preset, batch, tmp))
        cfg = LoopConfig(tmp, epochs=1, batch_size=batch, precision=precision,
                         channels_last=channels_last, workers=workers, compile=mode)
        if gpu:
            torch.cuda.reset_peak_memory_stats(device)
        try:
            seconds, share, ops, first = time_steps(task, cfg, device, args.warmup, args.steps, stop)
        except (BiasMirrorError, torch.OutOfMemoryError) as exc:  # a compile mode this machine cannot run, or a
            # batch too big for this GPU in this variant: say so, time the rest
            why = (f"out of GPU memory at batch {batch}; try a smaller --{trainer}-batch"
                   if isinstance(exc, torch.OutOfMemoryError) else str(exc))
            results.append(TrainTiming(trainer, label, dtype, channels_last, batch, 0, 0.0, 0.0, unit, 0.0,
                                       None, mode, status=f"unavailable: {why}"))
            print(f"  {trainer:10s} {label:34s} unavailable: {why}", flush=True)
            if (path := json_file(args)) is not None:
                write_json(path, header, results, None, complete=False)
            continue
        finally:
            del task
            if gpu:
                torch.cuda.empty_cache()
        rate = args.steps * (batch if trainer == "classifier" else 1) / seconds
        t = TrainTiming(trainer, label, dtype, channels_last, batch, args.steps, round(seconds, 3), rate,
                        unit, round(share, 3), ops, mode, round(first, 2),
                        peak_gpu_mib=round(torch.cuda.max_memory_allocated(device) / 2**20, 1) if gpu else None)
        if fp32 is None:
            fp32, base = t.per_second, label
            if not is_plain_fp32((variant, precision, channels_last), mode):
                why = "could not be timed" if is_plain_fp32(*order[0]) else "was not asked for (--variants, --compile)"
                print(f"  {trainer}: ratios are against {label}, the first row timed: plain fp32 without compile {why}",
                      flush=True)
        t.ratio_vs_fp32, t.ratio_base = round(t.per_second / fp32, 2), base
        results.append(t)
        print(f"  {trainer:10s} {label:34s} batch {batch:4d}: {t.per_second:9.1f} {unit:12s} "
              f"×{t.ratio_vs_fp32:.2f} vs {base}, data wait {share:.0%}, "
              + (f"{ops} ops/step" if ops is not None else f"first step {first:.1f} s (compiling)")
              + (f", peak GPU memory {t.peak_gpu_mib:.0f} MiB" if t.peak_gpu_mib is not None else ""), flush=True)
        if (path := json_file(args)) is not None:
            write_json(path, header, results, None, complete=False)
