"""The research's balanced-vs-unbalanced comparison in one command.

    python main.py train compare --dataset utkface:PATH --out runs/compare

trains the same classifier twice — on the data as it is, and undersampled so
each gender is equal — then evaluates both exported models on the same test
faces and prints them side by side (per gender × race and per age band).
A finished run is reused, an interrupted one resumes.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from inference.arg_checks import check_output_dir
from inference.metrics import format_table
from inference.models import load_model
from inference.runtime import RuntimeConfig
from training.evaluate import GROUPINGS, evaluate_models, evaluation_json, evaluation_samples, paired_lines
from training.loop import CHECKPOINT
from training.tasks import classifier


def add_arguments(p: argparse.ArgumentParser) -> None:
    classifier.add_arguments(p)
    for action in p._actions:
        if action.dest == "dataset":
            action.required = True  # the test faces both variants are compared on
        if action.dest in ("compose", "by", "target", "export_to", "name", "resume"):
            action.help = argparse.SUPPRESS


def _train_variant(args: argparse.Namespace, out: Path, compose: str) -> Path:
    if (out / "model.onnx").exists():
        print(f"reusing {out / 'model.onnx'}")
        return out / "model.onnx"
    variant = argparse.Namespace(**vars(args))
    variant.compose, variant.by, variant.target = compose, "gender", None
    variant.out, variant.name, variant.export_to = str(out), f"{args.arch}-{compose if compose != 'none' else 'unbalanced'}", None
    variant.resume = (out / CHECKPOINT).exists()
    code = classifier.main(variant)
    if code != 0:
        raise SystemExit(code)
    return out / "model.onnx"


def main(args: argparse.Namespace) -> int:
    out = check_output_dir(args.out, "--out")
    paths = {"unbalanced": _train_variant(args, out / "unbalanced", "none"),
             "gender-balanced": _train_variant(args, out / "balanced", "balanced")}
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
