"""The command line of `bench train`, without torch: main.py builds the parser from here, so that --help and a
refused option need not load PyTorch; training.bench_train runs it (and imports these names from here)."""
from __future__ import annotations

import argparse

from inference.arg_checks import JSON_DASH_HELP, int_at_least, non_negative_int, positive_int
from inference.cli_common import add_dataset_cache_argument
from inference.defaults import DEFAULT_DATASET_SAID
from training.data.cache import add_cache_argument
from training.nets.cyclegan_presets import PRESETS
from training.tasks.classifier_args import SIZES, classifier_size
from training.tasks.run_args import COMPILE_MODE_NAMES

MIN_FACES = 64  # one CPU classifier batch


def add_arguments(p: argparse.ArgumentParser) -> None:
    # None, not the default's path: a default that cannot be read is said to be one (open_data_or_default)
    p.add_argument("--data", default=None,
                   help="labelled faces to train on, KIND:PATH as for `train classifier --dataset` "
                        f"(default {DEFAULT_DATASET_SAID})")
    p.add_argument("--faces", type=int_at_least(MIN_FACES), default=2048,
                   help=f"faces decoded for the benchmark (at least {MIN_FACES}; default %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to time: auto (the GPU where PyTorch sees one, else the CPU), cpu or cuda "
                        "(default %(default)s)")
    p.add_argument("--trainers", default="classifier,cyclegan",
                   help="comma-separated: classifier, cyclegan (default %(default)s)")
    p.add_argument("--size", type=classifier_size, default=128,
                   help=f"classifier input size in px, {SIZES[0]} to {SIZES[1]} (default %(default)s; "
                        "`train classifier` defaults to 112)")
    p.add_argument("--classifier-batch", type=positive_int, default=None,
                   help="classifier faces per step (default: 256 on a GPU, 64 on the CPU)")
    p.add_argument("--cyclegan-preset", choices=list(PRESETS), default="fast",
                   help="CycleGAN network size: smoke, cpu (64 px), fast (128 px), full (256 px) (default %(default)s, "
                        "a GPU's; `train cyclegan` defaults to cpu)")
    p.add_argument("--cyclegan-batch", type=positive_int, default=1,
                   help="CycleGAN images per domain per step (default %(default)s)")
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="DataLoader workers (0: batches made in this process; default: as training uses them; "
                        "0 on the CPU)")
    p.add_argument("--warmup", type=non_negative_int, default=5,
                   help="untimed steps first, per configuration (0: time from the first; default %(default)s)")
    p.add_argument("--steps", type=positive_int, default=30,
                   help="timed training steps per configuration, after --warmup (default %(default)s)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="CPU threads for torch (default: PyTorch's own, about one per core)")
    add_cache_argument(p)
    add_dataset_cache_argument(p, "; with --cache '' no decoded faces are kept either")
    p.add_argument("--variants", default=None,
                   help="only these precision/memory variants, a comma list (fp32, fp32+channels-last, and on a GPU amp, "
                        "amp+channels-last; default: all)")
    p.add_argument("--compile", default="off",
                   help="torch.compile modes to time each variant under too, a comma list of "
                        f"{', '.join(COMPILE_MODE_NAMES)} (e.g. off,default,reduce-overhead); a mode that fails is reported "
                        "(default off: none)")
    p.add_argument("--json", help="also write the figures here, rewritten after every row" + JSON_DASH_HELP)
