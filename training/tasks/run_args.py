"""The command-line arguments every trainer shares (where the run lives, how the loop runs it), without torch: the
trainers' argument modules build their parsers from it, so that --help and a refused option need not load PyTorch
(seconds of imports for a page of text)."""
from __future__ import annotations

from inference.arg_checks import int_at_least, non_negative_int, positive_int, thread_count
from training.data.cache import add_cache_argument

# --compile's choices: training.compile_step.COMPILE_MODES's keys (what each asks torch.compile for is kept there, with
# torch), in its order; tests/test_cli_help_light.py keeps the two the same.
COMPILE_MODE_NAMES = ("off", "default", "reduce-overhead", "cudagraphs", "trace-only")


def add_run_arguments(p, out_help: str) -> None:
    """The arguments every trainer shares: where the run lives, and how the loop runs it."""
    # NumPy's generators take 0 to 2³² − 1: -1 and larger seeds had ended in its traceback
    p.add_argument("--seed", type=int_at_least(0, most=2**32 - 1), default=0,
                   help="random seed, 0 to 2³² − 1 (default %(default)s)")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="where to train: auto (the GPU where PyTorch sees one, else the CPU), cpu or cuda "
                        "(default %(default)s)")
    p.add_argument("--threads", type=thread_count, default=None,
                   help="CPU threads for torch (default: PyTorch's own)")
    add_cache_argument(p)
    p.add_argument("--out", required=True, help=out_help)
    p.add_argument("--name", help="model name in the card (default: the run folder's name)")
    p.add_argument("--resume", action="store_true",
                   help="continue the checkpoint in --out (with any number of processes) with its own settings: a "
                        "training setting given as well must be the checkpoint's; how it runs (--max-steps, --threads, "
                        "--workers, --device, --precision, --channels-last, --compile, --cache), --name and --export-to "
                        "may change (for the CycleGAN more: docs/training_at_scale.md); a run trained to its end "
                        "trains nothing more and is exported again")
    p.add_argument("--max-steps", type=positive_int, default=None,
                   help="stop after this many steps, checkpointed; continue later with --resume")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"], default="auto",
                   help="mixed precision on a GPU (auto: bf16 where the GPU computes in it, Ampere and later; else fp16 "
                        "with a grad scaler)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format (faster convs on GPUs)")
    p.add_argument("--workers", type=non_negative_int, default=None,
                   help="processes that decode/augment batches ahead of the GPU (0: none, batches are made in this "
                        "process; default with a GPU: this process's share of the cores less one, at most 8; 0 without)")
    p.add_argument("--compile", choices=list(COMPILE_MODE_NAMES), default="off",
                   help="torch.compile the step's networks: default (fused kernels), reduce-overhead (and CUDA graphs), "
                        "cudagraphs (CUDA graphs only, no Triton needed), trace-only (find graph breaks); the first steps "
                        "take longer while it compiles")
