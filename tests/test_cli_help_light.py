"""--help and a refused option of the training commands are answered without loading PyTorch (seconds of imports
for a page of text): main.py builds their parsers from torch-free argument modules, and imports the trainer only
to run it."""
import json
import re
import subprocess
import sys

import pytest

from tests.conftest import REPO

# What each command's parsing loaded, checked in a fresh process: this one has torch from other tests.
PROBE = """
import json, sys
import main
try:
    main.main(sys.argv[1:])
except SystemExit as done:
    code = done.code
else:
    code = None
print(json.dumps({"code": code, "torch": "torch" in sys.modules, "torchvision": "torchvision" in sys.modules}))
"""

HEAVY = [["train", "classifier"], ["train", "compare"], ["train", "cyclegan"], ["bench", "train"], ["doctor", "train"]]
# a value each command refuses while parsing, as argparse reports it
BAD_VALUE = {"train classifier": ["--size", "5"], "train compare": ["--arch", "x"],
             "train cyclegan": ["--preset", "nope"], "bench train": ["--steps", "-1"], "doctor train": ["--bogus"]}


def _parsed(argv: list[str]) -> tuple[dict, str]:
    out = subprocess.run([sys.executable, "-c", PROBE, *argv], cwd=REPO, capture_output=True, text=True, timeout=300)
    return json.loads(out.stdout.strip().splitlines()[-1]), out.stdout + out.stderr


@pytest.mark.parametrize("cmd", HEAVY, ids=" ".join)
def test_help_loads_no_torch(cmd):
    seen, text = _parsed([*cmd, "--help"])
    assert seen["code"] == 0 and f"usage: main.py {' '.join(cmd)}" in text
    assert not seen["torch"] and not seen["torchvision"], f"{' '.join(cmd)} --help imported torch"


@pytest.mark.parametrize("cmd", HEAVY, ids=" ".join)
def test_a_refused_option_loads_no_torch(cmd):
    seen, text = _parsed([*cmd, *BAD_VALUE[" ".join(cmd)]])
    assert seen["code"] == 2 and f"main.py {' '.join(cmd)}: error:" in text
    assert not seen["torch"], f"{' '.join(cmd)} imported torch to refuse an option"


def test_the_run_module_builds_the_same_arguments():
    """The trainers keep add_arguments (compare builds on the classifier's): the one their argument module has."""
    import importlib

    import main

    for run, light in main.ARGUMENT_MODULES.items():
        assert importlib.import_module(run).add_arguments is importlib.import_module(light).add_arguments, run


def test_the_torch_free_names_are_the_trainers():
    """--compile's choices are named without torch; they must stay the modes compile_step knows."""
    from training.compile_step import COMPILE_MODES
    from training.tasks.run_args import COMPILE_MODE_NAMES

    assert tuple(COMPILE_MODES) == COMPILE_MODE_NAMES


def test_compares_help_names_no_option_compare_refuses():
    """Its --seed help had said "the --compose sample", an option `train compare` refuses (it sets it per variant)."""
    import argparse

    from training.tasks import compare_args

    p = argparse.ArgumentParser(prog="main.py train compare", formatter_class=lambda prog: argparse.HelpFormatter(
        prog, width=10_000))
    compare_args.add_arguments(p)
    shown = p.format_help()
    named = {f"--{dest.replace('_', '-')}" for dest in compare_args.SET_PER_VARIANT}
    assert not [o for o in named if re.search(rf"{re.escape(o)}\b", shown)], shown
