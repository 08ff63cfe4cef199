"""The command line of `doctor train`, without torch: main.py builds the parser from here, so that --help and a
refused option need not load PyTorch; training.doctor runs it (and imports add_arguments from here)."""
from __future__ import annotations

import argparse

EXIT_STATUSES = """exit status: 0 (no GPU is no failure: training runs on the CPU); 1 with --try-compile, a mode that
  looked ready failed to compile (FAILED above, with why); 2 an error"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = EXIT_STATUSES
    p.add_argument("--try-compile", action="store_true",
                   help="also compile a small step with each --compile mode that looks ready (tens of seconds each)")
