"""The command line of `train classifier`, without torch: main.py builds the parser from here, so that --help and a
refused option need not load PyTorch; training.tasks.classifier runs it (and imports these names from here)."""
from __future__ import annotations

import argparse

from inference.arg_checks import (float_at_least, int_at_least, non_negative_float, non_negative_int, positive_float,
                                  positive_int, probability)
from inference.cli_common import add_dataset_cache_argument
from training.data.cache import TRAINING_DATASET_CACHE_HELP
from training.evaluate import DEFAULT_MIN_AGE
from training.tasks.run_args import add_run_arguments

COMPOSE_BY = ("gender", "race", "age_band", "group")  # Sample attributes a training mix can be composed over
# The default classifiers' recipe (docs/architecture.md): on the validation adults 96.3 % against 95.5 % for the
# 12 epochs without erasing or smoothing that were the defaults before, so a plain `train classifier` makes them.
RECIPE = {"epochs": 30, "erase": 0.25, "label_smoothing": 0.1}


def block_counts(text: str) -> tuple[int, ...]:
    parts = [b.strip() for b in text.split(",")]
    if len(parts) != 4 or not all(b.isdigit() and int(b) >= 1 for b in parts):
        raise argparse.ArgumentTypeError(f"{text!r}: give four whole numbers ≥ 1, one per stage, e.g. 1,1,1,1")
    return tuple(int(b) for b in parts)


# add_run_arguments gives these no help of their own: their defaults went unsaid in --help
RUN_HELP = {
    "seed": "random seed: the initial weights, the --compose sample and the batch order (default 0)",
    "device": "where to train: auto (the GPU where PyTorch sees one, else the CPU), cpu or cuda (default auto)",
    "threads": "CPU threads for torch (default: PyTorch's own, about one per core)",
}


SIZES = (32, 512)  # a CAM grid of 2×2 cells (size/16) up to past the full CycleGAN's 256 px and UTKFace's 200 px
MAX_WIDTH = 512  # 16× the default: 100000 ended in torch's allocation traceback (360 GB)
MAX_JITTER = 0.5  # a crop zoomed out by half its size each side; above 1 the zoom bound wrapped round (50 s a step)


def classifier_size(text: str) -> int:
    """--size within ``SIZES``: 100000 ended in OpenCV's allocation traceback, and 1 reported thousands of images/s."""
    return int_at_least(SIZES[0], most=SIZES[1])(text)


framing_share = float_at_least(0.0, most=MAX_JITTER, why="a share of the crop")  # --framing-jitter


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dataset", help="KIND:PATH, e.g. utkface:../shared/datasets/utkface (with --resume: the checkpoint's)")
    p.add_argument("--arch", choices=["resnet", "mobilenet"], default="resnet",
                   help="network: a small ResNet (--width, --blocks) or MobileNetV3-small (default resnet)")
    p.add_argument("--size", type=classifier_size, default=112,
                   help=f"input size in px, square, {SIZES[0]} to {SIZES[1]} (CAM grid is size/16; default 112)")
    p.add_argument("--width", type=int_at_least(1, most=MAX_WIDTH), default=32,
                   help=f"resnet base width, in channels, at most {MAX_WIDTH} (default 32)")
    p.add_argument("--blocks", type=block_counts, default=(1, 1, 1, 1), help="resnet blocks per stage, four counts ≥ 1 (default 1,1,1,1)")
    p.add_argument("--min-age", type=int_at_least(-1), default=DEFAULT_MIN_AGE,
                   help=f"train and test on faces at least this old (-1: all; default {DEFAULT_MIN_AGE})")
    p.add_argument("--compose", choices=["none", "balanced", "target"], default="none",
                   help="training mix: as is, balanced cells, or a --target mix (default none)")
    p.add_argument("--by", default="gender",
                   help=f"attributes whose cells --compose acts on, e.g. gender,race (of: {', '.join(COMPOSE_BY)}; "
                        "default gender)")
    p.add_argument("--target", help="with --compose target: shares per cell, e.g. 'male:0.5,female:0.5'")
    p.add_argument("--epochs", type=positive_int, default=RECIPE["epochs"],
                   help=f"passes over the training faces (default {RECIPE['epochs']}; --swa-epochs come after)")
    p.add_argument("--batch-size", type=positive_int, default=64,
                   help="faces per optimiser step on each process (default 64; under torchrun a step takes this many from "
                        "each)")
    p.add_argument("--lr", type=positive_float, default=2e-3,
                   help="peak learning rate of AdamW's one-cycle schedule (default 2e-3)")
    p.add_argument("--distill-from", action="append", default=[], metavar="ONNX",
                   help="a trained classifier whose probabilities (averaged with the other teachers' and over the "
                        "mirror image) become soft labels; repeat for an ensemble of teachers")
    p.add_argument("--distill-weight", type=non_negative_float, default=0.5,
                   help="share of the teachers' probabilities in each target, 0 to 1 (the rest is the hard label; "
                        "default 0.5)")
    p.add_argument("--swa-epochs", type=non_negative_int, default=0,
                   help="after --epochs, this many epochs at a constant --swa-lr whose weights are averaged "
                        "(stochastic weight averaging); the average is what is exported (default 0: none)")
    p.add_argument("--swa-lr", type=positive_float, default=None, help="learning rate of the averaging epochs (default: --lr / 4)")
    p.add_argument("--framing-jitter", type=framing_share, default=0.0,
                   help=f"also zoom out and tilt training crops by up to this share, at most {MAX_JITTER:g} (e.g. 0.12): "
                        "robustness to detector framing; default 0: zoom-in crops only")
    p.add_argument("--erase", type=probability, default=RECIPE["erase"],
                   help="chance that a training crop has a random patch (2–20%% of it) painted mid-grey "
                        f"(default {RECIPE['erase']:g}); 0: never")
    p.add_argument("--label-smoothing", type=probability, default=RECIPE["label_smoothing"],
                   help=f"share of each target spread evenly over both classes (default {RECIPE['label_smoothing']:g}); "
                        "0: none")
    add_run_arguments(p, "run folder: checkpoints, logs, model.onnx, metrics.json")
    add_dataset_cache_argument(p, TRAINING_DATASET_CACHE_HELP, resumable=True)
    for action in p._actions:  # the loop's shared options, said as this trainer uses them
        if action.dest in RUN_HELP:
            action.help = RUN_HELP[action.dest]
    p.epilog = ("Defaults are a new run's: a run continued from its checkpoint (--resume) keeps the checkpoint's "
                "value of every training setting left out.")
    p.add_argument("--export-to", help="also copy the exported ONNX here (e.g. resources/models/x.onnx); a resume "
                                       "keeps the run's unless given, and --export-to '' makes no copy. A copy that "
                                       "cannot be written is an error, but the run's own model.onnx and "
                                       "metrics.json are put in place all the same")
