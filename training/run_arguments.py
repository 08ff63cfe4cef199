"""The command-line arguments every trainer shares (where the run lives, how the loop runs it), checked before any
data is read, the run folder held by one command at a time, and the loop's config made of them."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from inference.arg_checks import check_cache_dir, check_output_dir, check_output_file, data_folders
from inference.errors import BiasMirrorError
from inference.writing import one_writer
from training.checkpoints import CHECKPOINT, EXISTING_CHECKPOINT
from training.compile_step import check_compile_mode
from training.distributed import Dist
from training.epoch_batches import default_workers
from training.loop import LoopConfig, pick_device
# torch-free, so that main.py builds the trainers' --help without PyTorch; imported here for the trainers
from training.tasks.run_args import add_run_arguments  # noqa: F401


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
