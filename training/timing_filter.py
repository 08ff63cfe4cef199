"""An UNTRAINED CycleGAN generator exported as a filter, for timing the GPU path only.

Issue #11 states its speed goals "with the full-size 256 px filter"; the
shipped filter is the 64 px cpu preset. This exports a random-weight
generator of any preset (``full``: 256 px, ngf 64, 9 residual blocks, the
paper's network) through the same exporter as a trained one, so the graph
ONNX Runtime runs is the one a trained full-preset filter would have. Its
card says, in its name, method and training fields, that it is untrained and
for timing only; `main.py bench` prints that next to its results. It is
written to the user's cache (``timing_dir``), never into resources/models, by
``python main.py bench --timing-filter full``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from inference.card import OUTPUT_NAMES, filter_card
from inference.errors import BiasMirrorError
from inference.user_dirs import default_cache_dir
from training.export import ImageToImageGraph, export
from training.provenance import provenance
from training.nets.cyclegan import build_generator, preset


def timing_dir() -> Path:
    """Where the default exports are kept: the user's cache, as they can be made again. runs/timing beside the source
    was site-packages once installed, or a tree the user cannot write (`bench --timing-filter` failed with
    "Permission denied" there)."""
    return default_cache_dir() / "timing"


def default_path(preset_name: str) -> Path:
    cfg = preset(preset_name)
    return timing_dir() / f"cyclegan-{cfg.preset}-{cfg.size}-untrained.onnx"


def export_timing_filter(preset_name: str, path: str | Path | None = None, seed: int = 0) -> Path:
    """Export a random-weight generator of ``preset_name`` as a filter; returns the path."""
    cfg = preset(preset_name)
    path = Path(path) if path else default_path(preset_name)
    torch.manual_seed(seed)
    net = build_generator(cfg).eval()
    card = filter_card(
        f"untrained-cyclegan-{cfg.preset}-{cfg.size}px (timing only)", cfg.size,
        "none: untrained (timing only)",
        f"UNTRAINED CycleGAN ResNet generator, random weights (seed {seed}), preset '{cfg.preset}': {cfg.size} px, "
        f"ngf {cfg.ngf}, {cfg.n_blocks} residual blocks. For timing the runtime only: its output means nothing.",
        {"dataset": "none (untrained, timing only)", "timing_only": True, "preset": cfg.to_dict(), "seed": seed,
         **provenance()},
        {},
    )
    graph = ImageToImageGraph(net)
    export(graph, [torch.zeros(1, cfg.size, cfg.size, 3, dtype=torch.uint8)], ["image"], [OUTPUT_NAMES["filter"]],
           path, card)
    return path


def ensure_timing_filter(preset_name: str) -> Path:
    """The default export for ``preset_name``, made once and reused while its card still says timing-only."""
    from inference.models import read_card

    path = default_path(preset_name)
    if path.exists():
        try:
            card = read_card(path)
            if card.training.get("timing_only") and card.training.get("preset") == preset(preset_name).to_dict():
                return path
        except BiasMirrorError:
            pass  # a half-written file from an interrupted export: make it again
    print(f"exporting an UNTRAINED '{preset_name}' CycleGAN generator for timing to {path} …")
    return export_timing_filter(preset_name, path)
