"""`python main.py bench`: the runtime's benchmark (inference/bench.py) with the PyTorch-eager baseline handed in.

inference/ never imports torch: this module adds the baseline's options, and
imports training/eager_baseline.py (and with it torch) only when the baseline
is measured, so `main.py bench --help` stays fast.
"""
from __future__ import annotations

import argparse
import os

from inference import bench, bench_options
from inference.errors import BiasMirrorError
from training.nets.cyclegan_presets import PRESETS  # no torch: the names only


def add_arguments(p: argparse.ArgumentParser) -> None:
    bench_options.add_arguments(p)
    g = p.add_argument_group("eager baseline and timing models (PyTorch)")
    g.add_argument("--baseline-device", default="auto", choices=["auto", "cpu", "cuda"],
                   help="where the PyTorch eager baseline runs (auto: the GPU when torch sees one)")
    g.add_argument("--baseline-generator", default="match", choices=["match", *PRESETS], metavar="PRESET",
                   help="the baseline's CycleGAN preset: match (the preset at the ONNX filter's size, default), "
                        f"or {', '.join(PRESETS)}")
    g.add_argument("--timing-filter", metavar="PRESET", choices=list(PRESETS),
                   help=f"time an UNTRAINED CycleGAN generator of this preset ({', '.join(PRESETS)}; full: 256 px) "
                        "as the filter, exported once to the user's cache (timing/); for timing only, never a real filter")


def eager_factory(args: argparse.Namespace) -> bench.BaselineFactory:
    def make(with_filter: bool, filter_size: int | None, classifiers: int) -> bench.Baseline:
        try:
            from training.eager_baseline import EagerBaseline
        except ImportError as exc:
            raise BiasMirrorError(f"PyTorch/torchvision is needed for the eager baseline ({exc}); "
                                  'install the optional extra \'train\' (pip install "bias-mirror[train]") or pass '
                                  "--no-baseline") from exc
        return EagerBaseline(with_filter, args.threads, args.baseline_device, args.baseline_generator, filter_size,
                             classifiers)

    return make


def main(args: argparse.Namespace) -> int:
    # Idle PyTorch (OpenMP) workers sleep rather than spin, as ORT's do (allow_spinning=0): on two cores a
    # spinning pool starves OpenCV's threads, and identical baseline runs took 70 ms to 2 s a frame.
    # Read when torch is first imported, which is below; a value the user set is kept.
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    if args.timing_filter:
        if args.filter or args.no_filter:
            raise BiasMirrorError("--timing-filter replaces the filter: leave out --filter and --no-filter")
        from training.timing_filter import ensure_timing_filter

        args.filter = str(ensure_timing_filter(args.timing_filter))
    return bench.main(args, None if args.no_baseline else eager_factory(args))
