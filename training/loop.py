"""The one training loop every trainer runs on.

A trainer (``training/tasks/*``) supplies modules, optimisers, a step function
and an index list; the loop owns everything else: seeding, device and AMP,
progress, CSV logs, checkpoints with the architecture config inside, resume
after Ctrl-C or a kill, (under torchrun) DistributedDataParallel, and (with
``--compile``) torch.compile around what the step calls.

Resume is exact to the batch: the order of each epoch is a seeded permutation
of the task's indices, and a checkpoint records how far into it we were.

Each of those parts is a module of its own beside this one, which runs them in order: checkpoints.py, same_data.py
(the data a resume, and every process, must hold), epoch_batches.py, csv_log.py, interrupts.py, out_of_memory.py,
distributed.py and compile_step.py; the arguments the trainers share, checked and made into a LoopConfig, are
run_arguments.py's.
"""
from __future__ import annotations

import logging
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inference.errors import BiasMirrorError
from training.checkpoints import EXISTING_CHECKPOINT, Checkpoints
from training.compile_step import begin_step, compile_failure
from training.csv_log import EPOCHS_FROM_ONE, CsvLog, count_epochs_from_one, logs_count_epochs_from_one
from training.distributed import Dist, any_rank, barrier, process_group, release_wrappers, training_wrapper
from training.epoch_batches import EpochBatches, epoch_order
from training.interrupts import Interrupted, StopFlag, StoppedEarly
from training.out_of_memory import OutOfGpuMemory, host_out_of_memory, out_of_memory_advice
from training.same_data import check_ranks_hold_the_same_data, check_same_data

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    out_dir: Path
    epochs: int
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    checkpoint_every: int = 200  # steps; also at each epoch end and on interrupt
    resume: bool = False
    threads: int | None = None
    max_steps: int | None = None  # stop after this many steps of this invocation, checkpointed, resumable
    precision: str = "auto"  # auto (bf16 where the GPU has it, else fp16) | fp32 | bf16 | fp16; CPU runs fp32
    channels_last: bool = False
    workers: int = 0  # DataLoader processes preparing batches (tasks with prefetch = True); 0: in this process
    compile: str = "off"  # a COMPILE_MODES key: torch.compile around the modules the step calls


class Task(Protocol):
    """What a trainer gives the loop.

    Its networks are drawn when it is built, before the loop seeds its steps: give ``run`` (or ``run_for_cli``) a
    function that builds the task, and the loop builds it under ``LoopConfig.seed``, or build it with ``build_task``
    where the caller keeps it (to export it after); a task built otherwise draws its initial weights from torch's
    unseeded stream, unless it seeds itself. Everything a checkpoint keeps of it (config, data_counts(), the
    modules', optimisers' and schedulers' state) is saved as tensors, numbers, strings, lists, tuples and dicts:
    NumPy numbers and paths are made plain, and anything else is refused by name before the first step.
    """

    config: dict[str, Any]  # the architecture and data config, stored in every checkpoint

    def modules(self) -> dict[str, nn.Module]: ...
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...
    def schedulers(self) -> dict[str, Any]: ...
    def indices(self) -> np.ndarray: ...
    # batch() may run in a DataLoader worker (prefetch = True): any randomness it draws must be seeded by the batch
    # (its idx), so that a resume, or another --workers, makes the same batch; and the workers serve the whole run,
    # holding the task as it was at its first batch, so nothing batch() reads may change from one epoch to the next
    def batch(self, idx: np.ndarray, device: torch.device) -> Any: ...
    def step(self, batch: Any, ctx: "StepContext") -> dict[str, float]: ...
    def end_epoch(self, epoch: int, ctx: "StepContext") -> dict[str, float]: ...
    # Optional: wrap_for_training(wrap) replaces the modules the step calls by wrap(module): DistributedDataParallel
    # under torchrun, torch.compile with --compile. Checkpoints, samples and exports keep using the plain modules.
    # wrap is applied to the plain modules each time: the loop releases the wrappers by wrap = identity.
    # Optional: data_counts() → {"training images": N, …}, and data_faces() → (path below the data's root, split or
    # role, labels used) of each face in the run's splits (or None), kept in checkpoints (the faces as a digest and
    # a compressed list): a resume refuses data listed otherwise (a dataset changed since, or read otherwise),
    # which would go on training on other images. Checkpoints from before the list are checked by their counts.
    # Under torchrun the processes compare them (and their indices) before the first step.
    # Optional: per_process_modules, the names of modules() whose state is each process's own (a CycleGAN's image
    # pools): a checkpoint keeps every process's, and a resume gives each its own back.
    # Optional: step_logs, CSV files in the run folder with a "step" column that the task appends to: a resume
    # drops their rows past the checkpoint's step (a kill after them left rows the resumed run writes again).


@dataclass
class StepContext:
    device: torch.device
    autocast: Callable[[], Any]
    scaler: torch.amp.GradScaler
    epoch: int = 0
    step: int = 0  # optimiser steps so far, all processes together
    samples: int = 0  # samples consumed so far by all processes: a world-size-free position
    # the epoch in hand's seconds so far and the share of them spent waiting for data, kept in checkpoints: an
    # epoch resumed part-way through had logged only the part after the resume (an epoch of 0.0 s)
    epoch_timing: tuple[float, float] = (0.0, 0.0)
    rank: int = 0
    world: int = 1
    batch_size: int = 1  # per process

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(choice: str, local_rank: int = 0) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise BiasMirrorError("--device cuda was asked for but no CUDA GPU is visible to PyTorch; use --device cpu or auto")
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        if local_rank >= torch.cuda.device_count():
            raise BiasMirrorError(f"process {local_rank} has no GPU of its own: {torch.cuda.device_count()} visible; "
                                  "use --nproc_per_node ≤ the GPU count")
        return torch.device("cuda", local_rank)
    return torch.device("cpu")


def amp_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for plain fp32 (always on the CPU: CPU autocast is slower there)."""
    if device.type != "cuda" or precision == "fp32":
        return None
    if precision == "auto":
        return torch.bfloat16 if gpu_has_bf16(device) else torch.float16
    return {"bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def gpu_has_bf16(device: torch.device) -> bool:
    """Whether ``device`` computes in bf16 itself (Ampere, compute capability 8.0, and later). Asked plainly, torch
    also says yes for GPUs that only emulate it (a T4, a V100, an RTX 20xx: a bf16 tensor can be made there, and runs
    slower than fp16), where --precision auto then picked bf16."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # a torch from before the argument: read the capability itself
        return torch.cuda.get_device_properties(device).major >= 8


def process_seed(seed: int, rank: int) -> int:
    """Each process's own seed, within NumPy's 0..2³² − 1: --seed 4294967295 with two processes had ended in its
    traceback on the second."""
    return (seed + rank) % 2**32


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def build_task(build: Callable[[], Task], seed: int) -> Task:
    """``build()`` with Python's, NumPy's and torch's streams seeded by ``seed``: the task's initial weights are
    the seed's. The same seed in every process (not ``process_seed``'s): a module DistributedDataParallel does not
    broadcast (an EMA copy of a generator) starts alike everywhere, as one run's."""
    seed_everything(seed)
    return build()


def _built(task: Task | Callable[[], Task], seed: int) -> Task:
    # a Task has a step(); a function building one (a class, a lambda) has not
    return task if hasattr(task, "step") else build_task(task, seed)  # type: ignore[arg-type]


def check_batch_fits(n: int, cfg: LoopConfig, world: int) -> None:
    """The loop trains on full batches only: with fewer samples than one batch (on every process) every epoch ran
    no step, and an untrained model went on to be exported with exit status 0. Worded as the trainers' own checks,
    which come first with their data's names."""
    if n >= cfg.batch_size * world:
        return
    processes = "" if world == 1 else f" on each of {world} processes"
    if cfg.resume:  # --batch-size is the checkpoint's
        fix = (f"a resumed run keeps --batch-size {cfg.batch_size}: run it with --nproc_per_node "
               f"{n // cfg.batch_size} or fewer" if n >= cfg.batch_size else "the data is smaller than when the run began")
    else:
        fix = f"give --batch-size {n // world} or less, or more data" if n >= world else "use more data"
    raise BiasMirrorError(f"only {n} training sample(s), fewer than one batch of --batch-size {cfg.batch_size}"
                          f"{processes}: every epoch would train on nothing; {fix}")  # the trainer names its data


def place_modules(task: Task, device: torch.device, channels_last: bool = False) -> None:
    for m in task.modules().values():
        m.to(device)
        if channels_last:
            m.to(memory_format=torch.channels_last)


def train_step(task: Task, batch: Any, ctx: "StepContext", cfg: LoopConfig, checkpoint: Path | None = None) -> dict[str, float]:
    """``task.step`` as the loop runs it (and ``bench train`` times it): marked as a new iteration where CUDA
    graphs replay, and a torch.compile failure turned into one line (see ``compile_failure``)."""
    try:
        begin_step(cfg.compile)
        return task.step(batch, ctx)
    except Exception as exc:
        failure = compile_failure(exc, cfg.compile, ctx.step, checkpoint, ctx.device)
        if failure is None:
            raise
        raise failure from exc


def make_context(cfg: LoopConfig, device: torch.device, dist: Dist = Dist()) -> StepContext:
    """The step context for ``cfg.precision`` on ``device`` (autocast dtype, grad scaler for fp16)."""
    dtype = amp_dtype(cfg.precision, device)
    return StepContext(
        device=device,
        autocast=lambda: torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None),
        scaler=torch.amp.GradScaler(device.type, enabled=dtype == torch.float16),
        rank=dist.rank,
        world=dist.world,
        batch_size=cfg.batch_size,
    )


def _raise_if_out_of_host_memory(exc: BaseException, task: Task, cfg: LoopConfig, ckpt: Checkpoints,
                                 ending_epoch: int | None = None) -> None:
    """Raises ``exc`` said as the machine's memory running out, with what to do, where it is that (PyTorch's CPU
    allocator raises a plain RuntimeError, which had reached the user as "an unexpected RuntimeError … please
    report it"); returns where it is something else, for the caller to raise as it was."""
    # the CycleGAN's image size is its --preset's
    size_option = "--preset" if "preset" in (getattr(task, "config", None) or {}).get("net", {}) else "--size"
    # the workers in use, as EpochBatches starts them: a task that does not prefetch (the CycleGAN) starts none, and
    # "--workers 1" had been advised it where --workers defaults to up to 8 on a GPU
    workers = cfg.workers if getattr(task, "prefetch", False) else 0
    failure = host_out_of_memory(exc, cfg.batch_size, workers, ckpt.path, cfg.out_dir, ending_epoch, size_option)
    if failure is not None:
        raise failure from exc


def _run(task: Task, cfg: LoopConfig, dist: Dist, device: torch.device) -> dict[str, float]:
    seed_everything(process_seed(cfg.seed, dist.rank))
    place_modules(task, device, cfg.channels_last)
    ctx = make_context(cfg, device, dist)
    if cfg.precision in ("bf16", "fp16") and device.type != "cuda" and ctx.is_main:  # it trained fp32 without a word
        log.warning("--precision %s is mixed precision on a GPU; this run is on the %s and trains in fp32",
                    cfg.precision, device.type.upper())
    ckpt = Checkpoints(cfg.out_dir)
    check_ranks_hold_the_same_data(task, ckpt.faces(task), ctx)  # before the resume's check, which each rank makes
    start_epoch, consumed = 0, 0
    logs_from_zero = False
    if cfg.resume:
        state = ckpt.load(task, ctx, cfg.seed)
        check_same_data(state, task, ckpt.path, ckpt.faces(task))
        start_epoch, ctx.step = state["epoch"], state["step"]
        logs_from_zero = not logs_count_epochs_from_one(state)
        # checkpoints from before multi-process training count batches of one process
        consumed = state.get("samples_in_epoch", state["batch_in_epoch"] * cfg.batch_size)
        ctx.samples = state.get("samples", state["step"] * cfg.batch_size)
        if consumed:
            ctx.epoch_timing = tuple(state.get("epoch_timing", (0.0, 0.0)))  # type: ignore[assignment]
        log.info("resumed from %s at epoch %d, sample %d (saved by %d process(es), now %d)",
                 ckpt.path, start_epoch + 1, consumed, state.get("world", 1), dist.world)
    elif ckpt.path.exists():
        raise BiasMirrorError(EXISTING_CHECKPOINT, ckpt.path)
    indices = task.indices()
    check_batch_fits(len(indices), cfg, dist.world)  # before any log is touched or step run
    ckpt.check_savable(task, ctx)
    wrap = training_wrapper(cfg, dist, device)
    if wrap is not None:
        hook = getattr(task, "wrap_for_training", None)
        if hook is None:
            raise BiasMirrorError(f"{type(task).__name__} cannot run under torchrun or --compile: "
                                  "it has no wrap_for_training() hook")
        hook(wrap)
    logger = CsvLog(cfg.out_dir / "log.csv")  # one row per 20 steps
    epoch_log = CsvLog(cfg.out_dir / "epochs.csv")  # one row per epoch: its own columns
    step_logs = [CsvLog(cfg.out_dir / name) for name in ("log.csv", *getattr(task, "step_logs", ()))]
    if cfg.resume and ctx.is_main:
        if logs_from_zero:  # a run begun before the logs counted from 1: else its rows went on 0, 1, 3, 4
            count_epochs_from_one(epoch_log, logger, start_epoch)
        for step_log in step_logs:
            step_log.keep_until("step", ctx.step)
        # by epoch: a checkpoint at an epoch's last step is saved before that epoch's end (its row may be written,
        # its end-of-epoch checkpoint not), and the resumed run ends that epoch again; start_epoch is the number of
        # epochs finished, the last of them numbered start_epoch in the logs
        epoch_log.keep_until("epoch", start_epoch)
    elif ctx.is_main:
        for stale in (*step_logs, epoch_log):
            stale.start_afresh()
    stop = StopFlag(announce=ctx.is_main)
    metrics: dict[str, float] = {}
    per_step = cfg.batch_size * dist.world
    pos = (start_epoch, consumed)  # where a resume would continue
    steps_here = 0
    bar: tqdm | None = None
    epoch_batches = EpochBatches(task, cfg, device)  # its workers, if any, start at the first batch
    try:
        for epoch in range(start_epoch, cfg.epochs):
            ctx.epoch = epoch
            order = epoch_order(indices, cfg.seed, epoch, dist.rank, dist.world, cfg.batch_size, consumed)
            done_before = consumed // per_step
            bar = tqdm(total=done_before + len(order) // cfg.batch_size, initial=done_before,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}", disable=not ctx.is_main, mininterval=1, dynamic_ncols=True)
            before = ctx.epoch_timing if consumed else (0.0, 0.0)  # a resumed epoch's earlier part
            t0 = time.time() - before[0]
            waited = before[1]  # time the step loop sat waiting for its next batch
            stream = epoch_batches.of(order)
            batches_left = len(order) // cfg.batch_size
            while True:
                # checked before a step, not after the last one: --max-steps equal to the steps left had stopped
                # the run before its last epoch ended, said "continue with --resume" and exported nothing
                if cfg.max_steps is not None and steps_here >= cfg.max_steps and batches_left > 0:
                    raise StoppedEarly
                batches_left -= 1
                t_wait = time.perf_counter()
                batch = next(stream, None)  # a DataLoader worker's failed allocation arrives here
                waited += time.perf_counter() - t_wait
                if batch is None:
                    break
                try:
                    losses = train_step(task, batch, ctx, cfg, ckpt.path)
                except torch.OutOfMemoryError as exc:
                    kept = ckpt.path.exists()
                    raise OutOfGpuMemory(out_of_memory_advice(cfg.batch_size, kept),
                                         ckpt.path if kept else cfg.out_dir) from exc
                ctx.step += 1
                ctx.samples += per_step
                consumed += per_step
                steps_here += 1
                pos = (epoch, consumed)
                ctx.epoch_timing = (time.time() - t0, waited)
                bar.update(1)
                bar.set_postfix({k: f"{v:.4g}" for k, v in losses.items()}, refresh=False)
                if ctx.is_main and ctx.step % 20 == 0:
                    # from 1, as the bar and --epochs count: plotted against them, the logs had been one off
                    logger.write({"step": ctx.step, "epoch": epoch + 1, **losses})
                if ctx.step % cfg.checkpoint_every == 0:
                    ckpt.save(task, epoch, consumed, ctx, EPOCHS_FROM_ONE)
                if any_rank(stop.requested, ctx):
                    raise Interrupted
            bar.close()
            train_seconds = time.time() - t0
            if ckpt.saved_step != ctx.step:  # the epoch's steps on disk before its evaluation, which may run out of
                ckpt.save(task, epoch, consumed, ctx, EPOCHS_FROM_ONE)  # memory; a resume from here evaluates it again
            consumed = 0
            try:
                metrics = task.end_epoch(epoch, ctx)
            except torch.OutOfMemoryError as exc:
                raise OutOfGpuMemory(out_of_memory_advice(cfg.batch_size, True, ending_epoch=epoch + 1),
                                     ckpt.path, ending_epoch=epoch + 1) from exc
            except (RuntimeError, MemoryError) as exc:
                _raise_if_out_of_host_memory(exc, task, cfg, ckpt, ending_epoch=epoch + 1)
                raise
            seconds = time.time() - t0
            metrics = {"epoch_seconds": round(seconds, 1), "data_wait_share": round(waited / max(train_seconds, 1e-9), 3),
                       **metrics}
            pos = (epoch + 1, 0)
            if ctx.is_main:
                epoch_log.write({"step": ctx.step, "epoch": epoch + 1, **metrics})  # the line below's number
            ckpt.save(task, epoch + 1, 0, ctx, EPOCHS_FROM_ONE)
            if ctx.is_main:
                tqdm.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if any_rank(stop.requested, ctx):  # asked during the epoch's evaluation: stop before the next
                raise Interrupted
    except (RuntimeError, MemoryError) as exc:
        # anywhere in the epoch: a batch's failed allocation in a worker, a step's, and a worker the out-of-memory
        # killer ended, which the DataLoader's SIGCHLD handler raises wherever the main process is (in backward())
        _raise_if_out_of_host_memory(exc, task, cfg, ckpt)
        raise
    except (Interrupted, StoppedEarly) as exc:
        if bar is not None:
            bar.close()  # before the lines below: closed after them, its redraw came last on the screen
        try:
            ckpt.save(task, pos[0], pos[1], ctx, EPOCHS_FROM_ONE)
        except KeyboardInterrupt:  # a second Ctrl-C while this one's checkpoint was written: said, not silent
            _aborted(ctx, ckpt)
            raise
        if ctx.is_main:
            why = f"stopped after {steps_here} steps as asked" if isinstance(exc, StoppedEarly) else "interrupted"
            tqdm.write(f"{why}: the last checkpoint is {ckpt.path}; continue with --resume")
        barrier(ctx)
        raise
    except KeyboardInterrupt:
        # A second Ctrl-C, wherever it landed: a step may be half done (weights updated, position not), so
        # nothing is saved now; the last checkpoint on disk is whole.
        if bar is not None:
            bar.close()
        _aborted(ctx, ckpt)
        raise
    finally:
        if bar is not None:
            bar.close()  # an epoch cut short: else its bar is drawn once more when the process exits
        try:
            epoch_batches.close()  # while a Ctrl-C is still only noted: the workers shut down whole
        finally:
            stop.restore()
    barrier(ctx)
    return metrics


def _aborted(ctx: StepContext, ckpt: Checkpoints) -> None:
    if ctx.is_main:
        kept = f"the last checkpoint is {ckpt.path}; continue with --resume" if ckpt.path.exists() else \
            "no checkpoint was written yet"
        tqdm.write(f"aborted at once: nothing since the last checkpoint was saved; {kept}")


def run_for_cli(task: Task | Callable[[], Task], cfg: LoopConfig) -> int | None:
    """``run`` as a trainer's command runs it: the exit status to return now (0 at --max-steps or on a
    process other than rank 0, 130 after Ctrl-C, each checkpointed), or None where this process goes on to
    evaluate and export the finished run."""
    try:
        run(task, cfg)
    except StoppedEarly:
        return 0
    except KeyboardInterrupt:
        return 130
    return None if Dist.from_env().is_main else 0


def run(task: Task | Callable[[], Task], cfg: LoopConfig) -> dict[str, float]:
    """Train ``task`` for ``cfg.epochs``; returns the last epoch's metrics. ``task`` may be a function that builds
    it, called under ``cfg.seed`` (``build_task``) so that the seed fixes its initial weights too.

    Under torchrun every process runs this; the task's ``wrap_for_training`` hook wraps
    its trained modules in DistributedDataParallel, and only rank 0 writes logs,
    samples and checkpoints. Raises Interrupted (after the step in hand, checkpointed)
    on Ctrl-C or a kill, StoppedEarly at ``cfg.max_steps``, and a bare KeyboardInterrupt
    (nothing saved: the last checkpoint stands) on a second Ctrl-C.
    """
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    dist = Dist.from_env()
    device = pick_device(cfg.device, dist.local_rank)
    task = _built(task, cfg.seed)
    with process_group(device):
        try:
            return _run(task, cfg, dist, device)
        finally:
            if dist.world > 1:  # also inside a caller's group (compare's), which outlives this run
                release_wrappers(task)
