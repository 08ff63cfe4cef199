"""The one training loop every trainer runs on.

A trainer (``training/tasks/*``) supplies modules, optimisers, a step function
and an index list; the loop owns everything else: seeding, device and AMP,
progress, CSV logs, checkpoints with the architecture config inside, resume
after Ctrl-C or a kill, and (under torchrun) DistributedDataParallel.

Resume is exact to the batch: the order of each epoch is a seeded permutation
of the task's indices, and a checkpoint records how far into it we were.
"""
from __future__ import annotations

import csv
import logging
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inference.errors import BiasMirrorError

log = logging.getLogger(__name__)
CHECKPOINT = "last.pt"


@dataclass
class LoopConfig:
    out_dir: Path
    epochs: int
    batch_size: int = 64
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0
    amp: bool = True
    checkpoint_every: int = 200  # steps; also at each epoch end and on interrupt
    resume: bool = False
    threads: int | None = None


class Task(Protocol):
    """What a trainer gives the loop."""

    config: dict[str, Any]  # the architecture and data config, stored in every checkpoint

    def modules(self) -> dict[str, nn.Module]: ...
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...
    def schedulers(self) -> dict[str, Any]: ...
    def indices(self) -> np.ndarray: ...
    def batch(self, idx: np.ndarray, device: torch.device) -> Any: ...
    def step(self, batch: Any, ctx: "StepContext") -> dict[str, float]: ...
    def end_epoch(self, epoch: int, ctx: "StepContext") -> dict[str, float]: ...


@dataclass
class StepContext:
    device: torch.device
    autocast: Callable[[], Any]
    scaler: torch.amp.GradScaler
    epoch: int = 0
    step: int = 0
    rank: int = 0
    world: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def add_run_arguments(p, out_help: str) -> None:
    """The arguments every trainer shares: where the run lives, and how the loop runs it."""
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch")
    p.add_argument("--cache", default="cache", help="folder for decoded image caches ('' to disable)")
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--name", help="model name in the card (default: the run folder's name)")
    p.add_argument("--resume", action="store_true", help="continue the checkpoint in --out")


def pick_device(choice: str) -> torch.device:
    if choice == "cuda" and not torch.cuda.is_available():
        raise BiasMirrorError("--device cuda was asked for but no CUDA GPU is visible to PyTorch; use --device cpu or auto")
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def epoch_order(indices: np.ndarray, seed: int, epoch: int, rank: int = 0, world: int = 1) -> np.ndarray:
    """A seeded permutation per epoch; each rank takes every world-th item."""
    order = np.random.default_rng([seed, epoch]).permutation(indices)
    usable = len(order) - len(order) % world
    return order[rank:usable:world]


def batches(order: np.ndarray, batch_size: int, start: int = 0) -> Iterator[tuple[int, np.ndarray]]:
    for b, i in enumerate(range(0, len(order) - batch_size + 1, batch_size)):
        if b >= start:
            yield b, order[i : i + batch_size]


class Checkpoints:
    def __init__(self, out_dir: Path):
        self.path = out_dir / CHECKPOINT

    def save(self, task: Task, epoch: int, batch_in_epoch: int, step: int, extra: dict | None = None) -> None:
        state = {
            "config": task.config,
            "epoch": epoch,
            "batch_in_epoch": batch_in_epoch,
            "step": step,
            "modules": {k: _unwrap(m).state_dict() for k, m in task.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in task.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in task.schedulers().items()},
            "torch_rng": torch.get_rng_state(),
            "extra": extra or {},
        }
        tmp = self.path.with_suffix(".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.path)  # atomic: a kill mid-save never leaves a broken checkpoint

    def load(self, task: Task) -> dict:
        if not self.path.exists():
            raise BiasMirrorError("--resume was given but there is no checkpoint to resume from", self.path)
        state = torch.load(self.path, map_location="cpu", weights_only=False)
        for k, m in task.modules().items():
            _unwrap(m).load_state_dict(state["modules"][k])
        for k, o in task.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in task.schedulers().items():
            s.load_state_dict(state["schedulers"][k])
        torch.set_rng_state(state["torch_rng"])
        return state


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if hasattr(m, "module") else m


def load_checkpoint(path: str | Path) -> dict:
    """A checkpoint's contents (config + weights), for export and evaluation."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.exists():
        raise BiasMirrorError("no checkpoint found (give a run folder or its last.pt)", p)
    return torch.load(p, map_location="cpu", weights_only=False)


class CsvLog:
    def __init__(self, path: Path):
        self.path = path

    def write(self, row: dict[str, Any]) -> None:
        new = not self.path.exists()
        with open(self.path, "a", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)


def run(task: Task, cfg: LoopConfig) -> dict[str, float]:
    """Train ``task`` for ``cfg.epochs``; returns the last epoch's metrics."""
    cfg.out_dir.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    device = pick_device(cfg.device)
    if world > 1 and not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    seed_everything(cfg.seed + rank)
    for m in task.modules().values():
        m.to(device)
    use_amp = cfg.amp and device.type == "cuda"
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    ctx = StepContext(
        device=device,
        autocast=lambda: torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp),
        scaler=torch.amp.GradScaler(device.type, enabled=use_amp and amp_dtype == torch.float16),
        rank=rank,
        world=world,
    )
    ckpt = Checkpoints(cfg.out_dir)
    start_epoch, start_batch = 0, 0
    if cfg.resume:
        state = ckpt.load(task)
        start_epoch, start_batch, ctx.step = state["epoch"], state["batch_in_epoch"], state["step"]
        log.info("resumed from %s at epoch %d, batch %d", ckpt.path, start_epoch, start_batch)
    elif ckpt.path.exists():
        raise BiasMirrorError("a checkpoint already exists here: pass --resume to continue it, or choose another --out", ckpt.path)
    logger = CsvLog(cfg.out_dir / "log.csv")  # one row per 20 steps
    epoch_log = CsvLog(cfg.out_dir / "epochs.csv")  # one row per epoch: its own columns
    stop = _StopFlag()
    metrics: dict[str, float] = {}
    indices = task.indices()
    pos = (start_epoch, start_batch)  # where a resume would continue
    try:
        for epoch in range(start_epoch, cfg.epochs):
            ctx.epoch = epoch
            order = epoch_order(indices, cfg.seed, epoch, rank, world)
            n_batches = len(order) // cfg.batch_size
            bar = tqdm(total=n_batches, initial=start_batch, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                       disable=not ctx.is_main, mininterval=1, dynamic_ncols=True)
            t0 = time.time()
            for b, idx in batches(order, cfg.batch_size, start_batch):
                losses = task.step(task.batch(idx, device), ctx)
                ctx.step += 1
                pos = (epoch, b + 1)
                bar.update(1)
                bar.set_postfix({k: f"{v:.3f}" for k, v in losses.items()}, refresh=False)
                if ctx.is_main and ctx.step % 20 == 0:
                    logger.write({"step": ctx.step, "epoch": epoch, **losses})
                if ctx.is_main and ctx.step % cfg.checkpoint_every == 0:
                    ckpt.save(task, epoch, b + 1, ctx.step)
                if stop.requested:
                    raise KeyboardInterrupt
            bar.close()
            start_batch = 0
            metrics = task.end_epoch(epoch, ctx)
            metrics = {"epoch_seconds": round(time.time() - t0, 1), **metrics}
            if ctx.is_main:
                epoch_log.write({"step": ctx.step, "epoch": epoch, **metrics})
                ckpt.save(task, epoch + 1, 0, ctx.step)
                pos = (epoch + 1, 0)
                tqdm.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
    except KeyboardInterrupt:
        if ctx.is_main:
            ckpt.save(task, pos[0], pos[1], ctx.step)
            tqdm.write(f"interrupted: the last checkpoint is {ckpt.path}; continue with --resume")
        raise
    finally:
        stop.restore()
    return metrics


class _StopFlag:
    """SIGTERM (a kill) finishes the current step and checkpoints, like Ctrl-C."""

    def __init__(self) -> None:
        self.requested = False
        try:
            self._old = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not in the main thread
            self._old = None

    def _handle(self, *_: Any) -> None:
        self.requested = True

    def restore(self) -> None:
        if self._old is not None:
            signal.signal(signal.SIGTERM, self._old)
