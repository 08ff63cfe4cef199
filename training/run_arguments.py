"""The command-line arguments every trainer shares (where the run lives, how the loop runs it), checked before any
data is read, the run folder held by one command at a time, and the loop's config made of them."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from inference.arg_checks import (check_cache_dir, check_output_dir, check_output_file, data_folders, int_at_least,
                                   non_negative_int, positive_int, thread_count)
from inference.errors import BiasMirrorError
from inference.writing import one_writer
from training.checkpoints import CHECKPOINT, EXISTING_CHECKPOINT
from training.compile_step import COMPILE_MODES, check_compile_mode
from training.data.cache import add_cache_argument
from training.distributed import Dist
from training.epoch_batches import default_workers
from training.loop import LoopConfig, pick_device


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


def loop_config_from_args(args, out_dir: Path, epochs: int, batch_size: int, seed: int, **extra) -> LoopConfig:
    workers = args.workers
    if workers is None:
        workers = default_workers(args.device != "cpu" and torch.cuda.is_available())
    return LoopConfig(out_dir=out_dir, epochs=epochs, batch_size=batch_size, device=args.device, seed=seed,
                      resume=args.resume, threads=args.threads, max_steps=args.max_steps,
                      precision=args.precision, channels_last=args.channels_last, workers=workers,
                      compile=getattr(args, "compile", "off"), **extra)
