"""The command line of `train cyclegan`, without torch: main.py builds the parser from here, so that --help and a
refused option need not load PyTorch; training.tasks.cyclegan runs it (and imports these names from here)."""
from __future__ import annotations

import argparse

from inference.arg_checks import non_negative_int, open_unit, positive_float, positive_int
from inference.cli_common import add_dataset_cache_argument
from training.data.cache import TRAINING_DATASET_CACHE_HELP
from training.nets.cyclegan_presets import PRESETS
from training.tasks.run_args import add_run_arguments

SCHEDULE_DEFAULTS = {"n_epochs": 10, "n_epochs_decay": 10}
EVAL_FACES = 400


def add_arguments(p: argparse.ArgumentParser) -> None:
    src = p.add_argument_group("domains (two folders, or a labelled dataset and a recipe)")
    src.add_argument("--domain-a", help="folder of domain-A images (e.g. trainA)")
    src.add_argument("--domain-b", help="folder of domain-B images (e.g. trainB)")
    src.add_argument("--dataset", help="KIND:PATH with labels, e.g. utkface:../shared/datasets/utkface")
    src.add_argument("--preset-domains", choices=["engineer", "aging"],
                     help="engineer: adults balanced over gender×race → tech-workforce mix; aging: 20–35 → 60+")
    src.add_argument("--min-domain-size", type=positive_int, default=200,
                     help="refuse a domain with fewer training images than this (default %(default)s)")
    p.add_argument("--preset", choices=list(PRESETS), default="cpu",
                   help="network size: smoke (tests), cpu (64 px), fast (128 px), full (256 px, the paper); default "
                        "%(default)s")
    p.add_argument("--n-epochs", type=non_negative_int, default=None,
                   help=f"epochs at the initial LR (default {SCHEDULE_DEFAULTS['n_epochs']}; 0: decay from the start); "
                        "--resume may lengthen it while the run has not begun its decay, and change nothing else "
                        "of the schedule")
    p.add_argument("--n-epochs-decay", type=non_negative_int, default=None,
                   help=f"epochs of linear LR decay to 0 (default {SCHEDULE_DEFAULTS['n_epochs_decay']}; 0: no decay; "
                        "not both 0)")
    p.add_argument("--iters-per-epoch", type=positive_int, default=None,
                   help="batches per epoch (default: one pass over A): its steps with one process; under torchrun "
                        "each step of N processes draws N of them")
    p.add_argument("--batch-size", type=positive_int, default=1,
                   help="images per domain per step (default %(default)s, as in the paper)")
    p.add_argument("--lr", type=positive_float, default=2e-4,
                   help="Adam learning rate of the generators and discriminators: constant for --n-epochs, then "
                        "linearly to 0 over --n-epochs-decay (default 2e-4)")
    p.add_argument("--ema", type=open_unit, default=None, metavar="DECAY",
                   help="also keep an exponential moving average of each generator's weights (e.g. 0.999: about the "
                        "last 1,000 steps, with a warm-up: the n-th update's decay is min(DECAY, (1+n)/(10+n)), so a "
                        "short run's average follows its training), and export and measure the averages; drift.csv "
                        "logs both curves")
    p.add_argument("--sample-every", type=non_negative_int, default=500,
                   help="steps between sample grids / drift points (0: off; default %(default)s)")
    p.add_argument("--checkpoint-every", type=positive_int, default=500,
                   help="steps between checkpoints (also at each epoch's end and on a stop; default %(default)s)")
    add_run_arguments(p, "run folder: checkpoints, logs, samples, ONNX, metrics.json")
    add_dataset_cache_argument(p, TRAINING_DATASET_CACHE_HELP, resumable=True)
    p.add_argument("--export-only", action="store_true",
                   help="skip training: export the checkpoint in --out as is, finished or stopped early (its card "
                        "says which); it reads the checkpoint, so --resume adds nothing and is not recorded as a "
                        "resume; --max-steps and a change of schedule are refused")
    p.add_argument("--export-both", action=argparse.BooleanOptionalAction, default=False,
                   help="also export G_B (B→A); a resume keeps the run's choice unless given")
    p.add_argument("--export-to", help="also copy the A→B ONNX here (e.g. resources/models/engineer_filter.onnx); a "
                                       "resume or --export-only keeps the run's unless given, and --export-to '' "
                                       "makes no copy. A copy that cannot be written is an error, but the run's own "
                                       "filters and metrics.json are put in place all the same")
    p.add_argument("--classifier", help="classifier ONNX for the card's |ΔP(female)| metric")
    p.add_argument("--eval-faces", type=positive_int, default=EVAL_FACES,
                   help="held-out domain-A faces measured for the card (default %(default)s)")
