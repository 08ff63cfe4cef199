"""`python main.py bench`'s options, and the lists and sizes they are given as (face counts, providers, WxH)."""
from __future__ import annotations

import argparse

from .arg_checks import JSON_DASH_HELP, non_negative_float, non_negative_int, positive_float, positive_int
from .bench_models import EXPECTED
from .cli_common import add_model_arguments
from .errors import BiasMirrorError


def parse_counts(text: str, option: str = "--faces", example: str = "1,4,16", most: int | None = None) -> list[int]:
    try:
        counts = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or (most is not None and max(counts) > most):
        limit = "" if most is None else f" up to {most}"
        raise BiasMirrorError(f"{option} takes positive whole numbers{limit} separated by commas (e.g. {example}), not {text!r}")
    return counts


def parse_providers(text: str) -> list[str]:
    names = [v.strip().lower() for v in text.split(",") if v.strip()]
    bad = [n for n in names if n not in (*EXPECTED, "auto")]
    if not names or bad:
        raise BiasMirrorError(f"--providers takes a comma list of {', '.join([*EXPECTED, 'auto'])}, not {text!r}")
    return list(dict.fromkeys(names))


def parse_resolution(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise BiasMirrorError(f"--resolution is WIDTHxHEIGHT (e.g. 640x480), not {text!r}") from None
    if w < 64 or h < 64:
        raise BiasMirrorError(f"--resolution {text} is too small (at least 64x64)")
    if w > MAX_SIDE or h > MAX_SIDE:  # 100000x100000 asked NumPy for 28 GiB and died with its traceback
        raise BiasMirrorError(f"--resolution {text} is too large (at most {MAX_SIDE}x{MAX_SIDE})")
    return w, h


MAX_SIDE = 8192  # beyond 8K video: no camera's frame


def add_arguments(p: argparse.ArgumentParser) -> None:
    # required of plain `bench` only: `bench train` and `bench detect` are parsers of their own, which read --data
    p.add_argument("--source", required=True,
                   help="folder of face images or a video (e.g. ../shared/datasets/utkface/UTKFace); required "
                        "(`bench train` and `bench detect` take --data instead)")
    p.add_argument("--frames", type=positive_int, default=60, help="frames measured per configuration (default %(default)s)")
    p.add_argument("--warmup", type=non_negative_int, default=5, help="frames run before measuring, per configuration (default %(default)s)")
    p.add_argument("--seconds", type=positive_float, default=None,
                   help="stop a configuration after this many seconds (at least 3 frames; warm-up gets a quarter; default: "
                        "no time limit, --frames decides)")
    p.add_argument("--faces", help="faces per frame, a comma list (e.g. 1,4,16; default 1), tiled from a folder's "
                                    "images; not with a video, whose rows are its own frames ('video', 0 in --json)")
    p.add_argument("--providers", help="ONNX Runtime providers to compare, a comma list of cpu,cuda,cuda-graph,"
                                       "tensorrt,auto (default: --provider; cuda-graph: CUDA replaying CUDA graphs); "
                                       "one that cannot start is reported as unavailable")
    p.add_argument("--resolution", default="640x480", help="frame size, WxH (default %(default)s): a folder's faces are tiled onto it, a video's frames "
                        "fitted into it with their aspect kept")
    p.add_argument("--no-baseline", action="store_true", help="skip the PyTorch eager baseline")
    p.add_argument("--soak", type=non_negative_float, default=0, help="then run this many seconds and report RSS (and GPU memory) at start and end (default 0: no soak)")
    p.add_argument("--json", help="write the results here, rewritten after every row: \"configurations\" planned, "
                                  "\"measured\" of them gone through (an unavailable provider's included), \"timed\" "
                                  "those with figures, \"complete\" false when stopped early" + JSON_DASH_HELP)
    p.epilog = ("exit status: 0 measured; 2 an error (an `error:` line says what), or nothing was timed: every "
                "provider unavailable and no eager baseline (the --json file is written all the same); 130 stopped "
                "(Ctrl-C, or SIGTERM as `timeout` sends it), what was measured kept")
    p.add_argument("--detect-ahead", default="on", choices=["on", "off", "both"],
                   help="find the next frame's faces on a helper thread while this one is analysed, as the app does "
                        "(on); off: one after the other; both: a row each, in the same run")
    p.add_argument("--detect-depth", default="1",
                   help="with detection ahead: how many frames are found at once, each on its own thread; a comma "
                        "list gives a row each (e.g. 1,2,3: where the models outpace the detector, a GPU with cores "
                        "to spare, more keeps up; default 1)")
    p.add_argument("--device-chain", default="auto", choices=["auto", "on", "off"],
                   help="keep the filter → classifier hand-over on the device (I/O binding): auto = on GPU providers")
    p.add_argument("--overlap-skin", default="auto", choices=["auto", "on", "off"],
                   help="measure the unfiltered faces' skin on a helper thread while the filter runs: auto = where the "
                        "filter runs on a GPU")
    p.add_argument("--skin-threads", type=int, default=1, choices=range(5), metavar="{0..4}",
                   help="helper threads sharing a frame's skin measurements (0: a quarter of the cores, 1 to 4; default 1)")
    p.add_argument("--profile-host", metavar="DIR",
                   help="after each row is measured, profile more of its frames (cProfile, the analysing thread) and "
                        "write where the host time went, by function, to DIR/<row>.txt")
    p.add_argument("--profile-frames", type=positive_int, default=30, help="frames profiled per row with --profile-host (default %(default)s)")
    add_model_arguments(p, haar_both=True)
    for action in p._actions:
        if action.dest == "classifier":  # bench times two by default, as the goals are stated for two
            action.help = "ONNX classifier (repeat; default: the first two in resources/models)"
