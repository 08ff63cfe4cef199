"""The one training loop every trainer runs on.

A trainer (``training/tasks/*``) supplies modules, optimisers, a step function
and an index list; the loop owns everything else: seeding, device and AMP,
progress, CSV logs, checkpoints with the architecture config inside, resume
after Ctrl-C or a kill, (under torchrun) DistributedDataParallel, and (with
``--compile``) torch.compile around what the step calls.

Resume is exact to the batch: the order of each epoch is a seeded permutation
of the task's indices, and a checkpoint records how far into it we were.
"""
from __future__ import annotations

import csv
import gc
import hashlib
import logging
import os
import random
import signal
import socket
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from inference.arg_checks import (check_cache_dir, check_output_dir, check_output_file, data_folders, int_at_least,
                                   non_negative_int, positive_int, thread_count)
from inference.datasets import LISTING_VERSION
from inference.errors import BiasMirrorError
from training.data.cache import add_cache_argument
from inference.writing import one_writer, private_path, write_failure, writing, written_whole

log = logging.getLogger(__name__)
CHECKPOINT = "last.pt"


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
    """What a trainer gives the loop."""

    config: dict[str, Any]  # the architecture and data config, stored in every checkpoint

    def modules(self) -> dict[str, nn.Module]: ...
    def optimizers(self) -> dict[str, torch.optim.Optimizer]: ...
    def schedulers(self) -> dict[str, Any]: ...
    def indices(self) -> np.ndarray: ...
    # batch() may run in a DataLoader worker (prefetch = True): any randomness it draws must be seeded by the batch
    # (its idx), so that a resume, or another --workers, makes the same batch
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


def data_counts(task: Task) -> dict[str, int] | None:
    counts = getattr(task, "data_counts", None)
    return None if counts is None else dict(counts())


def faces_record(entries: Iterable[Sequence[object]]) -> dict:
    """What a checkpoint keeps of the faces a run trains on: each entry (a face's path below its data's root, its
    split or role, the labels the run uses) as a line, sorted; their digest, their number and the lines themselves,
    compressed (a few hundred KB for all of UTKFace), to name what changed."""
    lines = sorted("\t".join(str(part) for part in entry) for entry in entries)
    text = "\n".join(lines).encode("utf-8", "surrogateescape")  # a name not UTF-8 by its bytes
    return {"sha256": hashlib.sha256(text).hexdigest(), "n": len(lines), "faces": zlib.compress(text, 6),
            "listing": LISTING_VERSION}


def data_faces(task: Task) -> dict | None:
    """``faces_record`` of the task's data_faces(), or None for a task that lists none."""
    faces = getattr(task, "data_faces", None)
    listed = None if faces is None else faces()
    return None if listed is None else faces_record(listed)


def _by_path(record: dict) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for line in zlib.decompress(record["faces"]).decode("utf-8", "surrogateescape").split("\n") if record["n"] else []:
        out.setdefault(line.split("\t", 1)[0], set()).add(line)
    return out


def faces_changed(saved: dict, now: dict) -> str:
    """What differs between two ``faces_record``s, e.g. "2 files gone (e.g. a.jpg), 1 new (e.g. b.jpg)"."""
    then, here = _by_path(saved), _by_path(now)
    said = []
    for what, paths in (("gone", sorted(then.keys() - here.keys())), ("new", sorted(here.keys() - then.keys())),
                        ("with other labels or in another split",
                         sorted(p for p in then.keys() & here.keys() if then[p] != here[p]))):
        if paths:
            examples = ", ".join(paths[:3]) + (", …" if len(paths) > 3 else "")
            files = "" if said else " files" if len(paths) > 1 else " file"
            said.append(f"{len(paths)}{files} {what} (e.g. {examples})")
    return ", ".join(said) or "the faces listed otherwise"


def check_same_data(state: dict, task: Task, checkpoint: Path, faces: dict | None = None) -> None:
    """Refuses to go on with a checkpoint (its ``state``) on other data than ``task`` holds now: by the faces' record
    (its digest: each face's path, split and labels; ``faces``: the task's ``data_faces`` where already made) where
    the checkpoint keeps one, else by the counts (checkpoints from before the record, which a change keeping every
    count passes)."""
    saved, now, saved_faces = state.get("data"), data_counts(task), state.get("data_faces")
    now_faces = None if saved_faces is None else data_faces(task) if faces is None else faces
    if saved_faces is not None and now_faces is not None:
        if saved_faces["sha256"] == now_faces["sha256"]:
            return
        said = faces_changed(saved_faces, now_faces)
        if saved is not None and now is not None and saved != now:
            said = f"{_counts_changed(saved, now)}; {said}"
        if saved_faces.get("listing") != now_faces.get("listing"):
            raise BiasMirrorError(listing_changed(saved_faces.get("listing"), now_faces.get("listing"), said),
                                  checkpoint)
    elif saved is None or now is None or saved == now:
        return  # a checkpoint from before the counts were kept cannot be checked
    else:
        said = _counts_changed(saved, now)
    raise BiasMirrorError(f"the training data is not what this run started on ({said}): a resume goes on with the "
                          "images it began with; restore them, or start a new --out", checkpoint)


def listing_changed(then: int | None, now: int | None, said: str) -> str:
    """Why a resume is refused whose faces differ where this version lists a dataset by other rules than the run's
    start did (``LISTING_VERSION``s; None: before it was kept): the reading changed, which restoring files cannot
    undo, and the files may well be as they were."""
    began = f"listing version {then}" if then is not None else "a version from before 2026-12-07"
    return (f"this version of Bias Mirror lists a dataset's faces by other rules (listing version {now}) than the one "
            f"this run began with ({began}), and lists this run's data otherwise ({said}): a resume goes on only with "
            "the faces it began with, so start a new --out, or finish this run with the version that began it")


def data_identity(task: Task, faces: dict | None) -> dict:
    """What one process says of the data it holds, for ``check_ranks_hold_the_same_data``: the digest of its faces
    (``faces``: its ``data_faces`` record, or None), its counts, and the indices its epochs are drawn from (all a task
    that lists no faces has to tell); where it runs, to name it."""
    indices = np.asarray(task.indices(), dtype=np.int64)
    folders = data_folders(getattr(task, "config", None) or {})
    return {"faces": None if faces is None else faces["sha256"], "counts": data_counts(task),
            "indices": hashlib.sha256(indices.tobytes()).hexdigest(), "n_indices": len(indices),
            "host": socket.gethostname(), "folders": [str(Path(f).expanduser().resolve()) for f in folders]}


SAME_DATA_KEYS = ("faces", "counts", "indices")


def check_ranks_hold_the_same_data(task: Task, faces: dict | None, ctx: "StepContext") -> None:
    """Under torchrun, refuses to train unless every process holds the data rank 0 holds. Each draws its share of
    one seeded permutation of its own indices, so two nodes with different copies of a dataset no longer split one
    mix (5 files missing on one: both exited 0 without a word), or ran different numbers of steps and hung at the
    end of the epoch (120 missing: one in the checkpoint's gather, the other in an all-reduce, for gloo's 30 min)."""
    if ctx.world == 1:
        return
    everyone: list[Any] = [None] * ctx.world
    torch.distributed.all_gather_object(everyone, data_identity(task, faces))
    if all(_same_data(said, everyone[0]) for said in everyone):
        return
    records: list[Any] = [None] * ctx.world  # the lists themselves, to name what differs: only when something does
    torch.distributed.all_gather_object(records, faces)
    raise BiasMirrorError(ranks_data_differ(everyone, records))


def _same_data(a: dict, b: dict) -> bool:
    return all(a[k] == b[k] for k in SAME_DATA_KEYS)


def ranks_data_differ(everyone: list[dict], records: list[dict | None]) -> str:
    """The message for processes (``everyone``: each rank's ``data_identity``; ``records``: its faces record) that
    do not all hold rank 0's data: each rank that differs, where it runs, and what its data has that rank 0's has
    not, or lacks."""
    several_hosts = len({said["host"] for said in everyone}) > 1

    def whose(rank: int) -> str:
        where = ([everyone[rank]["host"]] if several_hosts else []) + everyone[rank]["folders"]
        return f"rank {rank}'s" + (f" ({', '.join(where)})" if where else "")

    said = []
    for rank in (r for r, data in enumerate(everyone) if not _same_data(data, everyone[0])):
        ours, theirs = everyone[0], everyone[rank]
        if records[0] is not None and records[rank] is not None and records[0]["sha256"] != records[rank]["sha256"]:
            what = faces_changed(records[0], records[rank])
        elif ours["counts"] and theirs["counts"] and ours["counts"] != theirs["counts"]:
            what = ", ".join(f"{theirs['counts'].get(k, 'no')} {k} against {ours['counts'].get(k, 'none')}"
                             for k in sorted({*ours["counts"], *theirs["counts"]})
                             if ours["counts"].get(k) != theirs["counts"].get(k))
        else:
            what = f"{theirs['n_indices']} training indices against {ours['n_indices']}, or other ones"
        said.append(f"{whose(rank)} against {whose(0)}: {what}")
    return ("the processes do not hold the same training data: " + "; ".join(said) + ". They would not train on one "
            "mix, and could wait for one another for ever: every node must read the same copy of the dataset. Check "
            "that each node's copy holds the same files (copied whole, e.g. with rsync, and not still being copied) "
            "with the same labels, and that --dataset names it on each")


def _counts_changed(saved: dict[str, int], now: dict[str, int]) -> str:
    return ", ".join(f"{k} {saved.get(k, 'none')} then, {now.get(k, 'none')} now" for k in sorted({*saved, *now})
                     if saved.get(k) != now.get(k))


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


class StoppedEarly(KeyboardInterrupt):
    """--max-steps was reached: checkpointed, to be continued with --resume (not an error)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C or a kill, taken after the step in hand (StopFlag): checkpointed at a step boundary. A bare
    KeyboardInterrupt (a second Ctrl-C) may land anywhere in a step, so the loop saves nothing for it."""


def add_run_arguments(p, out_help: str) -> None:
    """The arguments every trainer shares: where the run lives, and how the loop runs it."""
    # NumPy's generators take 0 to 2³² − 1: -1 and larger seeds had ended in its traceback
    p.add_argument("--seed", type=int_at_least(0, most=2**32 - 1), default=0,
                   help="random seed, 0 to 2³² − 1 (default %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train: auto (the GPU where PyTorch sees one, else the CPU), cpu or cuda "
                        "(default %(default)s)")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="CPU threads for torch (default: PyTorch's own)")
    add_cache_argument(p)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--name", help="model name in the card (default: the run folder's name)")
    p.add_argument("--resume", action="store_true",
                   help="continue the checkpoint in --out (with any number of processes) with its own settings: a "
                        "training setting given as well must be the checkpoint's; how it runs (--max-steps, --threads, "
                        "--workers, --device, --precision, --channels-last, --compile, --cache), --name and --export-to "
                        "may change (for the CycleGAN more: docs/training_at_scale.md); a run trained to its end "
                        "trains nothing more and is exported again")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many steps, checkpointed; continue later with --resume")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="mixed precision on a GPU (auto: bf16 where the GPU computes in it, Ampere and later; else fp16 "
                        "with a grad scaler)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (faster convs on GPUs)")
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="processes that decode/augment batches ahead of the GPU (0: none, batches are made in this "
                        "process; default with a GPU: this process's share of the cores less one, at most 8; 0 without)")
    p.add_argument("--compile", choices=list(COMPILE_MODES), default="off",
                   help="torch.compile the step's networks: default (fused kernels), reduce-overhead (and CUDA graphs), "
                        "cudagraphs (CUDA graphs only, no Triton needed), trace-only (find graph breaks); the first steps "
                        "take longer while it compiles")


EXISTING_CHECKPOINT = "a checkpoint already exists here: pass --resume to continue it, or choose another --out"


def check_run_arguments(args) -> tuple[Path, Path | None]:
    """The run folder and the cache folder, checked with --export-to and --device before any data is read:
    a path that cannot be written, or a GPU that is not there (asked for by --device or --compile), must not wait
    until the faces have been decoded."""
    # a run folder inside its own data would add its sample grids to it (a CycleGAN domain then no longer matched
    # its checkpoint's image count, and could not be resumed)
    sources = tuple(data_folders(args))
    out = check_output_dir(args.out, "--out", sources)
    if new_run(args) and (out / CHECKPOINT).exists():
        raise BiasMirrorError(EXISTING_CHECKPOINT, out / CHECKPOINT)  # now, not after minutes of decoding
    cache = check_cache_dir(args.cache)
    if getattr(args, "export_to", None) == "":  # none: a resume's way to drop the copy its run was started with
        args.export_to = None
    if getattr(args, "export_to", None) is not None:
        for folder in sources or (None,):  # a training image had been overwritten by the model
            # "~/m.onnx" is the home folder's, as checked: it had been written to "./~/m.onnx"
            args.export_to = str(check_output_file(args.export_to, "--export-to", folder))
        if out.resolve() in Path(args.export_to).resolve().parents:  # it replaced the run's own files (last.pt)
            raise BiasMirrorError("--export-to lies in the run folder (--out), where the run writes its own files: "
                                  "give a path outside it, e.g. resources/models/NAME.onnx", args.export_to)
        read = [getattr(args, "classifier", None), *(getattr(args, "distill_from", None) or [])]
        for model in (m for m in read if m):  # the model the run reads was replaced by the one it trained
            check_output_file(args.export_to, "--export-to", model)
    device = pick_device(args.device, Dist.from_env().local_rank)
    if not getattr(args, "export_only", False):  # an export compiles nothing
        check_compile_mode(getattr(args, "compile", "off"), device)  # cudagraphs on the CPU, as --device cuda is
    return out, cache


RUN_LOCK = ".lock"  # in the run folder, held while a trainer runs there (inference.writing.one_writer)


@contextmanager
def run_folder_held(out: Path, what: str, new_run: bool = False) -> Iterator[None]:
    """The run folder ``out`` (as ``check_run_arguments`` checked it) written by this command (``what``, e.g.
    "train classifier") alone while the block runs (under torchrun, held by rank 0: the other ranks write nothing
    there); for a ``new_run``, that no checkpoint is there checked again once held. Two trainers on one --out (or a
    --resume while the first still trained) had each written checkpoints and logs over the other's, both saying
    they had succeeded."""
    if not Dist.from_env().is_main:
        yield
        return
    with one_writer(out, out / RUN_LOCK, what):
        if new_run and (out / CHECKPOINT).exists():
            raise BiasMirrorError(EXISTING_CHECKPOINT, out / CHECKPOINT)  # made since it was first checked
        yield


def new_run(args) -> bool:
    """Whether the command starts a run (it may find no checkpoint in its folder)."""
    return not getattr(args, "resume", False) and not getattr(args, "export_only", False)


MAX_DEFAULT_WORKERS = 8

# --compile: what torch.compile is asked for. A small network at batch 1 on a GPU is bound by how many kernels a
# step launches (the CycleGAN's fast preset: 1,420 operations a step); fused kernels and CUDA graphs cut that.
COMPILE_MODES: dict[str, dict[str, str] | None] = {
    "off": None,
    "default": {},  # Inductor: fused kernels (Triton on a GPU, C++ on the CPU)
    "reduce-overhead": {"mode": "reduce-overhead"},  # Inductor, replayed as CUDA graphs on a GPU
    "cudagraphs": {"backend": "cudagraphs"},  # CUDA graphs of the traced step, no generated code (no Triton needed)
    "trace-only": {"backend": "aot_eager"},  # traced as a compile would be, run as is: finds what breaks a graph
}
NEEDS_CUDA = {"cudagraphs"}
# Modes that replay CUDA graphs, whose outputs live in memory a later replay reuses: each training step is marked
# as a new iteration (begin_step) instead of left to torch's guess (a new one at any compiled call made while no
# backward is pending), which a step calling one network several times around its backward passes could defeat.
CUDA_GRAPH_MODES = {"reduce-overhead", "cudagraphs"}


def begin_step(mode: str) -> None:
    """Call before each step run under --compile ``mode``."""
    if mode in CUDA_GRAPH_MODES:
        torch.compiler.cudagraph_mark_step_begin()


def default_workers(gpu: bool, cpu_count: int | None = None, local_processes: int | None = None) -> int:
    """DataLoader workers per training process: none without a GPU (the step itself needs the cores), else
    the cores this process's share of the machine has, less one for the step, at most 8. On an H100 with
    4 workers the classifier waited on data 72 % of the time, with 12 of 16 cores idle."""
    if not gpu:
        return 0
    cores = cpu_count if cpu_count is not None else (os.cpu_count() or 1)
    share = local_processes if local_processes is not None else int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(0, min(MAX_DEFAULT_WORKERS, cores // max(1, share) - 1))


def loop_config_from_args(args, out_dir: Path, epochs: int, batch_size: int, seed: int, **extra) -> LoopConfig:
    workers = args.workers
    if workers is None:
        workers = default_workers(args.device != "cpu" and torch.cuda.is_available())
    return LoopConfig(out_dir=out_dir, epochs=epochs, batch_size=batch_size, device=args.device, seed=seed,
                      resume=args.resume, threads=args.threads, max_steps=args.max_steps,
                      precision=args.precision, channels_last=args.channels_last, workers=workers,
                      compile=getattr(args, "compile", "off"), **extra)


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


def epoch_order(indices: np.ndarray, seed: int, epoch: int, rank: int = 0, world: int = 1,
                batch_size: int = 1, consumed: int = 0) -> np.ndarray:
    """This rank's share of the epoch's seeded permutation, after the ``consumed`` samples already trained on.

    Ranks take every world-th item, so after b batches the samples used by all
    ranks together are exactly the permutation's first b·batch_size·world: a
    checkpoint's position is one number, and a resume can use any world size.
    """
    rest = np.random.default_rng([seed, epoch]).permutation(indices)[consumed:]
    usable = len(rest) - len(rest) % (world * batch_size)  # every rank gets the same number of full batches
    return rest[rank:usable:world]


def batches(order: np.ndarray, batch_size: int) -> Iterator[np.ndarray]:
    """Full batches in order; a short tail is left for the next epoch's permutation."""
    for i in range(0, len(order) - batch_size + 1, batch_size):
        yield order[i : i + batch_size]


class _Batches(torch.utils.data.Dataset):
    """One item per batch, so DataLoader workers run the task's own batch() ahead of the step."""

    def __init__(self, task: Task, order: np.ndarray, batch_size: int):
        self.task, self.chunks = task, list(batches(order, batch_size))

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> Any:
        return self.task.batch(self.chunks[i], torch.device("cpu"))


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)  # many workers × many threads would fight over the cores
    # A kill sent to the whole process group (`timeout`, a batch scheduler, `docker stop`) reaches the workers
    # too, as a Ctrl-C in a terminal does. Were they to die of it, the main process would fail on their deaths
    # mid-step instead of finishing the step and checkpointing, which is what both mean to it (StopFlag); it
    # shuts them down itself. A second SIGTERM (the loader's own terminate() for a worker stuck past its
    # shutdown) still ends one; SIGINT is the main process's alone.
    # The worker was forked with both blocked (_forking_workers), so one sent before now waits for this.
    signal.signal(signal.SIGTERM, _ignore_first_term)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)


def _ignore_first_term(signum: int, frame: Any) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


@contextmanager
def _forking_workers() -> Iterator[None]:
    """SIGTERM and SIGINT held back while the DataLoader forks its workers: a child inherits the mask, so a kill
    or Ctrl-C that lands before its _worker_init stays pending until the worker is ready to ignore it; here it is
    delivered on leaving."""
    old = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def _to(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, (tuple, list)):
        return type(batch)(_to(b, device) for b in batch)
    return batch


def batch_stream(task: Task, order: np.ndarray, cfg: LoopConfig, device: torch.device) -> Iterator[Any]:
    """The epoch's batches, in order; prepared by worker processes where the task allows it."""
    if cfg.workers > 0 and getattr(task, "prefetch", False):
        loader = torch.utils.data.DataLoader(
            _Batches(task, order, cfg.batch_size), batch_size=None, shuffle=False, num_workers=cfg.workers,
            pin_memory=device.type == "cuda", prefetch_factor=4, worker_init_fn=_worker_init,
            # its own generator: the workers' seeds are otherwise drawn from the global one, which would shift
            # the step's own draws (dropout) by one for every loader started, and a resume starts one mid-epoch
            generator=torch.Generator().manual_seed(cfg.seed))
        with _forking_workers():
            started = iter(loader)  # the workers start here
        for b in started:
            yield _to(b, device)
    else:
        for idx in batches(order, cfg.batch_size):
            yield task.batch(idx, device)


def process_state(task: Task, device: torch.device) -> dict:
    """What is this process's own, not shared through DistributedDataParallel: its random streams (dropout)
    and the task's per-process modules."""
    # on the host: gathered as pickles, a GPU tensor of process 1 would be unpickled onto process 1's GPU by rank 0
    own = {"torch_rng": torch.get_rng_state(),
           "modules": {k: {n: t.cpu() for n, t in _unwrap(task.modules()[k]).state_dict().items()}
                       for k in getattr(task, "per_process_modules", ())}}
    if device.type == "cuda":
        own["cuda_rng"] = torch.cuda.get_rng_state(device)
    return own


class Checkpoints:
    def __init__(self, out_dir: Path):
        self.path = out_dir / CHECKPOINT
        self._faces: dict | None = None  # the task's data_faces record, made once: the data does not change
        self.saved_step: int | None = None  # the step of the checkpoint on disk (saved or resumed) by this run

    def faces(self, task: Task) -> dict | None:
        if self._faces is None:
            self._faces = data_faces(task)
        return self._faces

    def save(self, task: Task, epoch: int, samples_in_epoch: int, ctx: StepContext, extra: dict | None = None) -> None:
        """Every process calls it at the same step: each one's own state is gathered, and rank 0 writes."""
        self.saved_step = ctx.step
        own = process_state(task, ctx.device)
        processes = [own]
        if ctx.world > 1:
            processes = [None] * ctx.world if ctx.is_main else None  # type: ignore[assignment]
            torch.distributed.gather_object(own, processes, dst=0)
        if not ctx.is_main:
            return
        state = {
            "config": task.config,
            "epoch": epoch,
            "samples_in_epoch": samples_in_epoch,
            "batch_in_epoch": samples_in_epoch // (ctx.batch_size * ctx.world),  # in this run's world size
            "step": ctx.step,
            "samples": ctx.samples,
            "world": ctx.world,
            "batch_size": ctx.batch_size,
            "modules": {k: _unwrap(m).state_dict() for k, m in task.modules().items()},
            "optimizers": {k: o.state_dict() for k, o in task.optimizers().items()},
            "schedulers": {k: s.state_dict() for k, s in task.schedulers().items()},
            # fp16's loss scale, which an fp16 run has grown and cut by its own steps: {} for the other precisions
            "scaler": ctx.scaler.state_dict(),
            "torch_rng": own["torch_rng"],  # rank 0's, as checkpoints from before "processes" held it
            "processes": processes,
            "data": data_counts(task),
            "data_faces": self.faces(task),
            "epoch_timing": list(ctx.epoch_timing) if samples_in_epoch else [0.0, 0.0],
            "extra": extra or {},
        }
        tmp = private_path(self.path)
        try:
            torch.save(state, tmp)
            os.replace(tmp, self.path)  # atomic: a kill mid-save never leaves a broken checkpoint
        except (OSError, RuntimeError) as exc:  # a full disk, a file size limit: torch's writer said it in a traceback
            failure = self._write_failure(exc, tmp)
            if failure is None:
                raise
            raise failure from exc
        finally:
            tmp.unlink(missing_ok=True)  # a second Ctrl-C mid-write had left a partial temporary file beside it

    def _write_failure(self, exc: BaseException, tmp: Path) -> BiasMirrorError | None:
        """The one-line error for a checkpoint that could not be written; the one before it is whole (the new one
        goes to ``tmp`` and replaces it only once written)."""
        sizes = [p.stat().st_size for p in (self.path, tmp) if p.exists()]
        kept = (f"the previous checkpoint {self.path.name} is intact (the steps since it are not saved): continue "
                "with --resume once there is room for it" if self.path.exists() else
                "no checkpoint was saved yet: run the command again once there is room for it")
        return write_failure(exc, self.path, "the checkpoint", kept, max(sizes, default=0))

    def load(self, task: Task, ctx: StepContext, seed: int) -> dict:
        if not self.path.exists():
            raise BiasMirrorError("--resume was given but there is no checkpoint to resume from", self.path)
        state = read_checkpoint(self.path)
        self.saved_step = state["step"]
        for k, m in task.modules().items():
            _unwrap(m).load_state_dict(state["modules"][k])
        for k, o in task.optimizers().items():
            o.load_state_dict(state["optimizers"][k])
        for k, s in task.schedulers().items():
            s.load_state_dict(state["schedulers"][k])
        load_scaler(ctx.scaler, state)
        processes = state.get("processes") or [{"torch_rng": state["torch_rng"], "modules": {}}]
        if ctx.rank < len(processes):  # its own state back: resumed with as many processes, the very same run
            own = processes[ctx.rank]
            torch.set_rng_state(own["torch_rng"])
            if "cuda_rng" in own and ctx.device.type == "cuda":
                torch.cuda.set_rng_state(own["cuda_rng"], ctx.device)
            for k, sd in own["modules"].items():
                _unwrap(task.modules()[k]).load_state_dict(sd)
        else:  # a process the checkpoint's run did not have: a stream of its own, not another's copy
            torch.manual_seed(int(np.random.SeedSequence([seed, ctx.rank, state["step"]]).generate_state(1)[0]))
        return state


def load_scaler(scaler: torch.amp.GradScaler, state: dict) -> None:
    """The checkpoint's fp16 loss scale (and its count of steps towards growing it) back into ``scaler``: a resume
    that began again at 65536 skipped other steps than the uninterrupted run, and trained another model. Only from
    fp16 to fp16: a checkpoint of another precision, or from before the scale was kept, holds none, and the scaler
    starts afresh as it did."""
    saved = state.get("scaler")
    if saved and scaler.is_enabled():
        scaler.load_state_dict(saved)


def _unwrap(m: nn.Module) -> nn.Module:
    # Only DDP: other wrappers with a .module (AveragedModel) keep state of their own.
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


# The trainers whose checkpoints a command may be given: the command, and how a message names the run.
TRAINERS = {"classifier": "a classifier", "cyclegan": "a CycleGAN"}


def checkpoint_trainer(state: Any) -> str | None:
    """Which trainer wrote ``state`` (a TRAINERS key), or None when it is none of ours."""
    cfg = state.get("config") if isinstance(state, dict) else None
    if not isinstance(cfg, dict):
        return None
    net = cfg.get("net") if isinstance(cfg.get("net"), dict) else {}
    if "n_epochs" in cfg or "preset" in net:
        return "cyclegan"
    if "labels" in cfg or "arch" in net:
        return "classifier"
    return None


def read_checkpoint(path: Path) -> dict:
    """``torch.load`` of a checkpoint file, with a truncated or corrupt file said in one line naming it."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # zip, pickle, EOF and OS errors, each worded differently by torch
        if isinstance(exc, OSError) and exc.filename is not None:  # the system refused the file itself
            raise  # (permissions, a folder): main.py says so, naming it
        raise BiasMirrorError(f"truncated or corrupt checkpoint ({type(exc).__name__}: {_first_line(exc)}); "
                              "restore it, or start again in a new --out", path) from exc
    if not isinstance(state, dict) or "modules" not in state or "config" not in state:
        raise BiasMirrorError("not a training checkpoint of this project (no config and weights in it)", path)
    return state


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else "no details")[:160]


def load_checkpoint(path: str | Path, trainer: str | None = None) -> dict:
    """A checkpoint's contents (config + weights), for export and evaluation; with ``trainer`` (a TRAINERS key),
    one that another trainer wrote is refused by name."""
    p = Path(path)
    if p.is_dir():
        p = p / CHECKPOINT
    if not p.exists():
        raise BiasMirrorError("no checkpoint found: a run keeps its checkpoint in its folder as last.pt, and this has "
                              "none (yet)", p)
    state = read_checkpoint(p)
    if trainer is not None:
        found = checkpoint_trainer(state)
        if found != trainer:
            what = f"{TRAINERS[found]} checkpoint" if found else "a checkpoint of no trainer of this project"
            fix = (f"; continue it with `train {found} --resume --out {p.parent}`" if found else "")
            raise BiasMirrorError(f"{what}, not {TRAINERS[trainer]}'s{fix}", p)
    return state


# What a write the disk refuses during training leaves (a log row, a sample grid): it had ended in an OSError that
# named no file and said nothing of the checkpoint
RUN_KEPT = "what the run saved before is kept: --resume goes on from its last checkpoint once there is room"


class CsvLog:
    def __init__(self, path: Path):
        self.path = path

    def keep_until(self, column: str, last: int) -> None:
        """Rows whose ``column`` is past ``last`` go: a run killed after writing them resumes from an earlier
        checkpoint and writes them again (log.csv had read 300, 320, 320)."""
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
            fields = list(rows[0]) if rows else None
        kept = [r for r in rows if not (r.get(column) or "").isdigit() or int(r[column]) <= last]
        if fields is None or len(kept) == len(rows):
            return
        with written_whole(self.path) as part, open(part, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=fields)
            w.writeheader()
            w.writerows(kept)

    def start_afresh(self) -> None:
        """A new run (no checkpoint) begins its log empty: one killed before its first checkpoint left rows that the
        new run had appended to (steps 20, 40, 20, 40, 60)."""
        self.path.unlink(missing_ok=True)

    def write(self, row: dict[str, Any]) -> None:
        new = not self.path.exists()
        with writing(self.path, "the training log", RUN_KEPT), open(self.path, "a", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=list(row))
            if new:
                w.writeheader()
            w.writerow(row)


def run_for_cli(task: Task, cfg: LoopConfig) -> int | None:
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


def run(task: Task, cfg: LoopConfig) -> dict[str, float]:
    """Train ``task`` for ``cfg.epochs``; returns the last epoch's metrics.

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
    with process_group(device):
        try:
            return _run(task, cfg, dist, device)
        finally:
            if dist.world > 1:  # also inside a caller's group (compare's), which outlives this run
                _release_wrappers(task)


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
        torch.distributed.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        if own:
            torch.distributed.destroy_process_group()


def rank0_says(value: Any) -> Any:
    """Rank 0's ``value`` on every process (inside a process group; ``value`` itself without one): what rank 0
    alone can tell, such as whether the run it exported is finished, decided once for all. The others wait here
    until rank 0 comes to it."""
    if Dist.from_env().world == 1 or not torch.distributed.is_initialized():
        return value
    box = [value]
    torch.distributed.broadcast_object_list(box, src=0)
    return box[0]


def _release_wrappers(task: Task) -> None:
    """Hand the task back its plain modules and free the DistributedDataParallel wrappers before their process
    group goes. With torch 2.14 and gloo, a DDP module that outlives destroy_process_group aborts the process as it
    exits ("terminate called without an active exception", exit status -6 after a finished run): 6 of 40 runs of
    a bare two-process DDP script, 0 of 40 with the module freed first."""
    hook = getattr(task, "wrap_for_training", None)
    if hook is not None:
        hook(lambda m: m)
    gc.collect()  # the wrappers sit in reference cycles (autograd hooks), which only the collector frees


def place_modules(task: Task, device: torch.device, channels_last: bool = False) -> None:
    for m in task.modules().values():
        m.to(device)
        if channels_last:
            m.to(memory_format=torch.channels_last)


def check_compile_mode(mode: str, device: torch.device) -> None:
    """Refuses a --compile mode that is unknown or that ``device`` cannot run."""
    if mode not in COMPILE_MODES:
        raise BiasMirrorError(f"unknown --compile mode {mode!r}; choose one of {', '.join(COMPILE_MODES)}")
    if mode in NEEDS_CUDA and device.type != "cuda":
        raise BiasMirrorError(f"--compile {mode} needs a CUDA GPU; this run is on the {device.type.upper()}: "
                              "use --compile default, or off")


def compiled(module: nn.Module, mode: str, device: torch.device) -> nn.Module:
    """``module`` under torch.compile as ``mode`` (a COMPILE_MODES key) asks; itself for "off"."""
    check_compile_mode(mode, device)
    kwargs = COMPILE_MODES[mode]
    return module if kwargs is None else torch.compile(module, **kwargs)  # type: ignore[return-value]


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


# The way out of a failed compile that only a run on a GPU can take (--compile cudagraphs needs CUDA).
GPU_ONLY_ADVICE = ", or --compile cudagraphs on a GPU without Triton"


def compile_failure(exc: BaseException, mode: str, step: int, checkpoint: Path | None,
                    device: torch.device | None = None) -> BiasMirrorError | None:
    """The BiasMirrorError for a torch.compile failure (no Triton, no C++ compiler, an unsupported
    operation) at ``step`` (0-based) of a run whose last checkpoint is ``checkpoint`` (None: a run that keeps
    none, such as a benchmark), or None when ``exc`` is not one. --compile cudagraphs is offered only to a run on
    a GPU (``device``; None: this machine's, where PyTorch sees one) and not as the way out of itself: a CPU-only
    machine was told to try it, and check_compile_mode then refused it there."""
    if mode == "off":
        return None
    try:
        from torch._dynamo.exc import TorchDynamoException
    except ImportError:  # pragma: no cover - every torch we support has it
        return None
    if not isinstance(exc, TorchDynamoException):
        return None
    cause: BaseException = exc
    while getattr(cause, "inner_exception", None) is not None:  # BackendCompilerFailed says only "backend raised:"
        cause = cause.inner_exception  # type: ignore[attr-defined]
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    resumable = step > 0 and checkpoint is not None
    where = "at the first step" if step == 0 else f"at step {step + 1}" + (
        " (nothing after the last checkpoint was saved; continue it with --resume)" if resumable else "")
    gpu = device.type == "cuda" if device is not None else torch.cuda.is_available()
    advice = GPU_ONLY_ADVICE if gpu and mode != "cudagraphs" else ""
    return BiasMirrorError(f"--compile {mode} failed {where}: {type(cause).__name__}: {first}. Train with --compile off"
                           f"{advice}", checkpoint if resumable else None)


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
    if cfg.resume:
        state = ckpt.load(task, ctx, cfg.seed)
        check_same_data(state, task, ckpt.path, ckpt.faces(task))
        start_epoch, ctx.step = state["epoch"], state["step"]
        # checkpoints from before multi-process training count batches of one process
        consumed = state.get("samples_in_epoch", state["batch_in_epoch"] * cfg.batch_size)
        ctx.samples = state.get("samples", state["step"] * cfg.batch_size)
        if consumed:
            ctx.epoch_timing = tuple(state.get("epoch_timing", (0.0, 0.0)))  # type: ignore[assignment]
        log.info("resumed from %s at epoch %d, sample %d (saved by %d process(es), now %d)",
                 ckpt.path, start_epoch, consumed, state.get("world", 1), dist.world)
    elif ckpt.path.exists():
        raise BiasMirrorError(EXISTING_CHECKPOINT, ckpt.path)
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
        for step_log in step_logs:
            step_log.keep_until("step", ctx.step)
        # by epoch: a checkpoint at an epoch's last step is saved before that epoch's end (its row may be written,
        # its end-of-epoch checkpoint not), and the resumed run ends that epoch again
        epoch_log.keep_until("epoch", start_epoch - 1)
    elif ctx.is_main:
        for stale in (*step_logs, epoch_log):
            stale.start_afresh()
    stop = StopFlag(announce=ctx.is_main)
    metrics: dict[str, float] = {}
    indices = task.indices()
    per_step = cfg.batch_size * dist.world
    pos = (start_epoch, consumed)  # where a resume would continue
    steps_here = 0
    bar: tqdm | None = None
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
            stream = batch_stream(task, order, cfg, device)
            batches_left = len(order) // cfg.batch_size
            while True:
                # checked before a step, not after the last one: --max-steps equal to the steps left had stopped
                # the run before its last epoch ended, said "continue with --resume" and exported nothing
                if cfg.max_steps is not None and steps_here >= cfg.max_steps and batches_left > 0:
                    raise StoppedEarly
                batches_left -= 1
                t_wait = time.perf_counter()
                batch = next(stream, None)
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
                    logger.write({"step": ctx.step, "epoch": epoch, **losses})
                if ctx.step % cfg.checkpoint_every == 0:
                    ckpt.save(task, epoch, consumed, ctx)
                if _any_rank(stop.requested, ctx):
                    raise Interrupted
            bar.close()
            train_seconds = time.time() - t0
            if ckpt.saved_step != ctx.step:  # the epoch's steps on disk before its evaluation, which may run out of
                ckpt.save(task, epoch, consumed, ctx)  # memory; a resume from here evaluates the epoch again
            consumed = 0
            try:
                metrics = task.end_epoch(epoch, ctx)
            except torch.OutOfMemoryError as exc:
                raise OutOfGpuMemory(out_of_memory_advice(cfg.batch_size, True, ending_epoch=epoch + 1),
                                     ckpt.path, ending_epoch=epoch + 1) from exc
            seconds = time.time() - t0
            metrics = {"epoch_seconds": round(seconds, 1), "data_wait_share": round(waited / max(train_seconds, 1e-9), 3),
                       **metrics}
            pos = (epoch + 1, 0)
            if ctx.is_main:
                epoch_log.write({"step": ctx.step, "epoch": epoch, **metrics})
            ckpt.save(task, epoch + 1, 0, ctx)
            if ctx.is_main:
                tqdm.write(f"epoch {epoch + 1}: " + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items()))
            if _any_rank(stop.requested, ctx):  # asked during the epoch's evaluation: stop before the next
                raise Interrupted
    except (Interrupted, StoppedEarly) as exc:
        try:
            ckpt.save(task, pos[0], pos[1], ctx)
        except KeyboardInterrupt:  # a second Ctrl-C while this one's checkpoint was written: said, not silent
            _aborted(ctx, ckpt)
            raise
        if ctx.is_main:
            why = f"stopped after {steps_here} steps as asked" if isinstance(exc, StoppedEarly) else "interrupted"
            tqdm.write(f"{why}: the last checkpoint is {ckpt.path}; continue with --resume")
        _barrier(ctx)
        raise
    except KeyboardInterrupt:
        # A second Ctrl-C, wherever it landed: a step may be half done (weights updated, position not), so
        # nothing is saved now; the last checkpoint on disk is whole.
        _aborted(ctx, ckpt)
        raise
    finally:
        if bar is not None:
            bar.close()  # an epoch cut short: else its bar is drawn once more when the process exits
        stop.restore()
    _barrier(ctx)
    return metrics


class OutOfGpuMemory(BiasMirrorError):
    """The GPU ran out of memory at the run's batch size: in a training step, or with ``ending_epoch`` (1-based) in
    the evaluation that ends that epoch, whose steps were checkpointed before it (a caller that words its own advice,
    as `train compare` does, says so)."""

    def __init__(self, message: str, path: object | None = None, ending_epoch: int | None = None):
        super().__init__(message, path)
        self.ending_epoch = ending_epoch


def out_of_memory_advice(batch_size: int, checkpoint_kept: bool, ending_epoch: int | None = None) -> str:
    """What to do after the GPU ran out of memory at ``batch_size`` per process: in a training step, or (with
    ``ending_epoch``, 1-based) in the evaluation that ends that epoch, whose steps the loop checkpointed before it.
    A resume keeps the checkpoint's batch size (another is refused), so it had been no way to the smaller batch this
    advised; and before the first checkpoint there is nothing to resume."""
    said = f"out of GPU memory at --batch-size {batch_size} per process"
    smaller = smaller_batch(batch_size)
    if ending_epoch is not None:  # the evaluation runs in chunks of at most a batch: a smaller one needs less too
        said += (f", in the evaluation that ends epoch {ending_epoch} (the epoch's training steps are all in the "
                 "checkpoint)")
        again = f"it evaluates epoch {ending_epoch} again and loses no step"
    elif not checkpoint_kept:
        return f"{said}, before the run's first checkpoint, so nothing was saved: run the command again {smaller}"
    else:
        again = "from its last checkpoint; the steps since are lost"
    return (f"{said}. To train {smaller}, start a new --out: a resume keeps the checkpoint's --batch-size "
            f"{batch_size}, so --resume continues this run ({again}) only once more GPU memory is free (another "
            "program using it)")


def smaller_batch(batch_size: int) -> str:
    """How to train in less GPU memory than at ``batch_size`` per process, as "To train …" goes on."""
    return (f"with --batch-size {batch_size // 2}" if batch_size > 1 else
            "with a smaller model or image size (there is no batch smaller than 1)")


def _aborted(ctx: StepContext, ckpt: Checkpoints) -> None:
    if ctx.is_main:
        kept = f"the last checkpoint is {ckpt.path}; continue with --resume" if ckpt.path.exists() else \
            "no checkpoint was written yet"
        tqdm.write(f"aborted at once: nothing since the last checkpoint was saved; {kept}")


def _barrier(ctx: StepContext) -> None:
    """The others wait until rank 0's checkpoint is on disk (only on paths all ranks take together)."""
    if ctx.world > 1 and torch.distributed.is_initialized():
        torch.distributed.barrier()


def _any_rank(flag: bool, ctx: StepContext) -> bool:
    """A kill reaches the processes at different steps: stop all together, or the others hang in all-reduce."""
    if ctx.world == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    torch.distributed.all_reduce(t, op=torch.distributed.ReduceOp.MAX)
    return bool(t.item())


class StopFlag:
    """Ctrl-C (SIGINT) and a kill (SIGTERM) are noted, not raised: the step in hand finishes (a DataLoader
    starting its workers, an optimiser half through its update, a batch half augmented are never cut), and the
    caller stops after it, checkpointed. A second Ctrl-C aborts at once (KeyboardInterrupt wherever it lands;
    the loop then keeps the last checkpoint as it is). Under torchrun the agent passes on the Ctrl-C the
    terminal already sent, so there a repeated SIGINT is only noted, like a repeated SIGTERM."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, abort_on_second_interrupt: bool | None = None, announce: bool = False) -> None:
        self.requested = False
        self.abort_on_second_interrupt = ("TORCHELASTIC_RUN_ID" not in os.environ if abort_on_second_interrupt is None
                                          else abort_on_second_interrupt)
        self.announce = announce
        self._old: dict[int, Any] = {}
        try:
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not in the main thread
            self._old = {}

    def _handle(self, signum: int, _frame: Any) -> None:
        if signum == signal.SIGINT and self.requested and self.abort_on_second_interrupt:
            raise KeyboardInterrupt  # the second Ctrl-C: now
        if not self.requested and self.announce:
            what = "Ctrl-C" if signum == signal.SIGINT else "SIGTERM"
            again = "; Ctrl-C again aborts at once, keeping only the last checkpoint" if self.abort_on_second_interrupt else ""
            os.write(2, f"\n{what}: stopping after the step in hand, checkpointed{again}\n".encode())
        self.requested = True

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}
