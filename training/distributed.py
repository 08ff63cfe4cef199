"""The training loop's plumbing under torchrun: where this process stands, the process group, the wrappers around
the modules a step calls (DistributedDataParallel, then --compile) and their release, and the few moments all
processes act together (a stop, rank 0's say, a barrier). Without torchrun each is a no-op or one process's."""
from __future__ import annotations

import gc
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterator

import torch
from torch import nn

from training.compile_step import check_compile_mode, compiled

if TYPE_CHECKING:
    from training.loop import LoopConfig, StepContext, Task


@dataclass(frozen=True)
class Dist:
    """Where this process stands under torchrun (RANK, WORLD_SIZE, LOCAL_RANK); one process without it."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> "Dist":
        env = os.environ if env is None else env
        return cls(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))

    @property
    def is_main(self) -> bool:
        return self.rank == 0


@contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Under torchrun, the process group of what runs inside: created here unless the caller holds one already,
    and then destroyed on leaving. A command that trains several runs in the same processes (``train compare``:
    two classifiers) holds one around them all, so that its processes can wait for rank 0 between them (rank 0
    exports each run after the others have finished it); nothing without torchrun."""
    own = Dist.from_env().world > 1 and not torch.distributed.is_initialized()
    if own:
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(group_backend(device))
    try:
        yield
    finally:
        if own:
            torch.distributed.destroy_process_group()


def group_backend(device: torch.device) -> str:
    """NCCL between GPUs where torch has it, else gloo (which also carries CUDA tensors): Windows builds of torch have
    no NCCL, and every run under torchrun there had failed with "Distributed package doesn't have NCCL built in"."""
    return "nccl" if device.type == "cuda" and torch.distributed.is_nccl_available() else "gloo"


def rank0_says(value: Any) -> Any:
    """Rank 0's ``value`` on every process (inside a process group; ``value`` itself without one): what rank 0
    alone can tell, such as whether the run it exported is finished, decided once for all. The others wait here
    until rank 0 comes to it."""
    if Dist.from_env().world == 1 or not torch.distributed.is_initialized():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(flag: bool, ctx: StepContext) -> bool:
    """A kill reaches the processes at different steps: stop all together, or the others hang in all-reduce."""
    if ctx.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


def barrier(ctx: StepContext) -> None:
    """The others wait until rank 0's checkpoint is on disk (only on paths all ranks take together)."""
    if ctx.world > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def training_wrapper(cfg: LoopConfig, dist: Dist, device: torch.device) -> Callable[[nn.Module], nn.Module] | None:
    """What wraps the modules the step calls: DistributedDataParallel under torchrun, then torch.compile
    (compiling the DDP module, so its gradient all-reduce is split out of the compiled graphs), or None."""
    if dist.world == 1 and cfg.compile == "off":
        return None
    check_compile_mode(cfg.compile, device)  # before any step
    ids = [device.index] if device.type == "cuda" else None

    def wrap(m: nn.Module) -> nn.Module:
        if dist.world > 1:
            m = torch.nn.parallel.DistributedDataParallel(m, device_ids=ids)
        return compiled(m, cfg.compile, device)

    return wrap


def release_wrappers(task: Task) -> None:
    """Hand the task back its plain modules and free the DistributedDataParallel wrappers before their process
    group goes. With torch 2.14 and gloo, a DDP module that outlives destroy_process_group aborts the process as it
    exits ("terminate called without an active exception", exit status -6 after a finished run): 6 of 40 runs of
    a bare two-process DDP script, 0 of 40 with the module freed first."""
    hook = getattr(task, "wrap_for_training", None)
    if hook is not None:
        hook(lambda m: m)
    gc.collect()  # the wrappers sit in reference cycles (autograd hooks), which only the collector frees
