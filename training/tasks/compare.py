"""The research's balanced-vs-unbalanced comparison in one command.

    python main.py train compare --dataset utkface:PATH --out runs/compare

trains the same classifier twice — on the data as it is, and undersampled so
each gender is equal — then evaluates both exported models on the same test
faces and prints them side by side (per gender × race and per age band).
A variant trained in --out is reused, a stopped one continues (running the same
command again, or with --resume); a command that stops a variant (--max-steps,
Ctrl-C) ends there, checkpointed, and compares nothing yet.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from inference.arg_checks import check_output_dir
from inference.errors import BiasMirrorError
from inference.metrics import format_table
from inference.models import load_model
from inference.runtime import RuntimeConfig
from training.evaluate import GROUPINGS, evaluate_models, evaluation_json, evaluation_samples, paired_lines
from training.loop import CHECKPOINT
from training.tasks import classifier


HELP = {
    "dataset": "KIND:PATH, e.g. utkface:../shared/datasets/utkface: both variants train on it and are compared on its "
               "test faces",
    "out": "folder of the comparison: unbalanced/ and balanced/ (each a classifier run) and comparison.json",
    "resume": "continue the comparison in --out: a variant trained there is reused, a stopped one continues from its "
              "checkpoint (running the same command again does the same)",
    "max_steps": "stop the variant in training after this many steps, checkpointed, comparing nothing yet; run the "
                 "command again to continue",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    classifier.add_arguments(p)
    for action in p._actions:
        if action.dest == "dataset":
            action.required = True  # the test faces both variants are compared on
        if action.dest in HELP:
            action.help = HELP[action.dest]
        if action.dest in ("compose", "by", "target", "export_to", "name"):
            action.help = argparse.SUPPRESS


VARIANTS = {"unbalanced": ("unbalanced", "none"), "gender-balanced": ("balanced", "balanced")}  # name: folder, compose


def _train_variant(args: argparse.Namespace, out: Path, compose: str) -> int:
    """Trains (or continues) one variant in ``out``; its exit status (0 also when --max-steps stopped it)."""
    if (out / "model.onnx").exists():
        print(f"reusing {out / 'model.onnx'}")
        return 0
    variant = argparse.Namespace(**vars(args))
    variant.compose, variant.by, variant.target = compose, "gender", None
    variant.out, variant.name, variant.export_to = str(out), f"{args.arch}-{compose if compose != 'none' else 'unbalanced'}", None
    variant.resume = (out / CHECKPOINT).exists()
    return classifier.main(variant)


def main(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out, "--out")
    if args.resume and not any((out / folder / CHECKPOINT).exists() for folder, _ in VARIANTS.values()):
        raise BiasMirrorError("--resume was given but no variant has been trained here yet: leave it out to start "
                              "the comparison", out)
    paths = {}
    for name, (folder, compose) in VARIANTS.items():
        code = _train_variant(args, out / folder, compose)
        if code != 0:
            return code  # interrupted: checkpointed, and said so
        if not (out / folder / "model.onnx").exists():  # --max-steps stopped it, checkpointed
            print(f"the {name} variant has not finished training, so nothing is compared yet; run the same command "
                  "again (with or without --max-steps, or with --resume) to continue it, and the comparison follows "
                  "once both variants are trained")
            return 0
        paths[name] = out / folder / "model.onnx"
    samples = evaluation_samples(args.dataset, "test", None if args.min_age < 0 else args.min_age)
    results, paired = evaluate_models({name: load_model(p, "classifier", RuntimeConfig(provider="cpu"))
                                       for name, p in paths.items()}, samples)
    for grouping in GROUPINGS:
        print(format_table(results, grouping), end="\n\n")
    for line in paired_lines(paired):
        print(line)
    (out / "comparison.json").write_text(evaluation_json(results, paired))
    print(f"written {out / 'comparison.json'}")
    return 0
