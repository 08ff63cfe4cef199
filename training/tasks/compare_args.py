"""The command line of `train compare`: the classifier's, with the options compare sets for each variant itself
hidden. Without torch: main.py builds the parser from here, so that --help and a refused option need not load
PyTorch; training.tasks.compare runs it (and imports these names from here)."""
from __future__ import annotations

import argparse

from training.tasks import classifier_args


HELP = {
    "dataset": "KIND:PATH, e.g. utkface:../shared/datasets/utkface: both variants train on it and are compared on its "
               "test faces",
    "out": "folder of the comparison: unbalanced/ and balanced/ (each a classifier run) and comparison.json",
    "resume": "continue the comparison in --out: a variant trained there is reused, a stopped one continues from its "
              "checkpoint (running the same command again does the same)",
    "max_steps": "stop the variant in training after this many steps, checkpointed, comparing nothing yet; run the "
                 "command again to continue",
    # the classifier's own help names --compose, which compare refuses (SET_PER_VARIANT)
    "seed": "random seed of both variants: the initial weights, the balanced variant's sample and the batch order "
            "(default 0)",
}


# The classifier's options compare sets for each variant itself (_variant_args), and why: hidden from its help, and
# refused when given (they had been accepted and overwritten without a word).
SET_PER_VARIANT = {
    "compose": "the training mix is what compare varies: the unbalanced variant trains on the data as it is "
               "(--compose none), the balanced one on equal genders (--compose balanced)",
    "by": "the balanced variant balances gender (--by gender)",
    "target": "the balanced variant balances gender equally; there is no --target mix",
    "name": "each variant is named by its --arch and mix (e.g. resnet-unbalanced, resnet-balanced)",
    "export_to": "each variant's model is written to --out/unbalanced/model.onnx and --out/balanced/model.onnx; "
                 "copy the one you want from there",
}


def add_arguments(p: argparse.ArgumentParser) -> None:
    classifier_args.add_arguments(p)
    for action in p._actions:
        if action.dest == "dataset":
            action.required = True  # the test faces both variants are compared on
        if action.dest in HELP:
            action.help = HELP[action.dest]
        if action.dest in SET_PER_VARIANT:
            action.help = argparse.SUPPRESS
