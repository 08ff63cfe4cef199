"""End of classifier training: export, parity check, per-group test metrics into the card."""
from __future__ import annotations

import csv
import logging
import os
from pathlib import Path

import numpy as np
import torch

from inference.card import classifier_card
from inference.datasets.copies import kept_with_copies
from inference.datasets.splits import split_rule
from inference.metrics import PROPORTION_INTERVAL, format_table
from inference.models import load_model
from inference.program_name import program
from inference.runtime import RuntimeConfig
from inference.writing import writing
from training.evaluate import GROUPINGS, evaluate
from training.export import (ClassifierGraph, check_parity, copy_not_made, export, export_left, parity, place_with_record,
                             stage_copy, staged_export, write_card)
from training.provenance import provenance
from training.tasks.classifier import ERASE_SCALE, faces_taken

log = logging.getLogger(__name__)
PARITY_LIMITS = {"probs": 1e-4, "cam": 1e-3}


def method_text(arch: str) -> str:
    family = "narrow ResNet (torchvision BasicBlock)" if arch == "resnet" else "MobileNetV3-small features"
    return (f"{family} → global average pooling → linear; CAM = Σ_c w[k,c]·F_c on the last feature map "
            "(exact class activation mapping, Zhou et al. 2016); trained from scratch")


def augmentation_text(framing_jitter: float, erase: float = 0.0) -> str:
    framing = ("random resized crop 0.8–1" if framing_jitter <= 0 else
               f"edge-padded zoom out/in, tilt and shift up to ±{framing_jitter:g} of the side")
    low, high = ERASE_SCALE
    erasing = "" if erase <= 0 else f", a mid-grey patch of {low:.0%}–{high:.0%} of the crop with p {erase:g}"
    return f"{framing}, horizontal flip, brightness/contrast ±10%{erasing}; no hue/saturation"


def distillation_entry(cfg: dict) -> dict:
    if not cfg.get("distill_from"):
        return {}
    return {"distillation": {
        "teachers": cfg["teachers"],
        "weight": cfg["distill_weight"],
        "targets": "(1 − weight)·hard label + weight·mean P(female) of the teachers over each training face "
                   "and its mirror image, on the unaugmented crop",
        "teacher_label_agreement": cfg.get("teacher_label_agreement"),
    }}


def averaging_entry(task, out: Path) -> dict:
    cfg = task.config
    if task.swa is None:
        return {}
    with open(out / "epochs.csv", newline="", encoding="utf-8") as fh:  # the last epoch measured both already
        last = list(csv.DictReader(fh))[-1]
    # counted, not the cadence's aim: snapshots every steps // 4 had been said to be "4× an epoch" (15 steps: 5)
    snapshots = int(task.swa.n_averaged)
    return {"weight_averaging": {
        "method": "stochastic weight averaging (Izmailov et al. 2018): after the one-cycle epochs, "
                  f"{cfg['swa_epochs']} epoch(s) at a constant learning rate with {snapshots} snapshots of the weights "
                  f"averaged ({snapshots / cfg['swa_epochs']:.3g} an epoch); batch-norm statistics re-estimated on the "
                  "training faces",
        "epochs": cfg["swa_epochs"],
        "lr": cfg["swa_lr"],
        "snapshots": snapshots,
        # nan (no validation faces: not measured) is written as null with the card, as strict_json writes it
        "val_accuracy_last": round(float(last["val_accuracy"]), 4),
        "val_accuracy_averaged": round(float(last["val_accuracy_averaged"]), 4),
    }}


def export_classifier(net, size: int, path: Path, card, place: Path | None = None) -> dict[str, float]:
    """``net`` exported to ``path`` with ``card`` and checked against PyTorch; ``place``: where ``path``, written
    beside it, is to go (what a failed check names)."""
    graph = ClassifierGraph(net).eval()
    example = torch.zeros(2, size, size, 3, dtype=torch.uint8)
    export(graph, [example], ["image"], ["probs", "cam"], path, card)
    rng = np.random.default_rng(0)
    diffs = parity(graph, path, [rng.integers(0, 256, (4, size, size, 3), dtype=np.uint8)])
    check_parity(diffs, PARITY_LIMITS, path, place)
    return diffs


def no_test_note(dataset: str) -> str:
    """Said plainly where a dataset has no test faces: the card then records no test metrics, shown as "not
    measured", which otherwise surfaced only as null figures in metrics.json."""
    return (f"no test faces: the test split of {dataset} is empty (after its filters), so the model card has no "
            "test metrics and its accuracy reads \"not measured\"; give the dataset test faces to measure it")


def finish(task, out: Path, name: str, export_to: str | None, exported_by: str | None = None) -> Path:
    """Export, measure and card the run's model; ``exported_by``: the command of a resume that trained nothing
    (the run had finished), which the card names as the export's, not as a resume."""
    for module in task.modules().values():
        module.cpu()
    data, net = task.data, task.final_net().eval()
    cfg = task.config
    size = cfg["net"]["size"]
    training = {
        "dataset": data.read.name,
        "dataset_root": os.path.abspath(data.read.root),  # as typed it was relative to a folder the card does not name
        # where --dataset moved on a resume: the command names the first place, dataset_root the last
        **({"dataset_moves": cfg["dataset_moves"]} if cfg.get("dataset_moves") else {}),
        "faces": faces_taken(data.read.name, size),
        "filters": data.filters,
        "split": f"train ({split_rule(data.samples, kept_with_copies(data.read))})",
        "composition": data.composition.to_dict(),
        "n_train": int(len(data.train_idx)),
        "epochs": cfg["epochs"],
        "batch_size": cfg["batch_size"],
        "lr": cfg["lr"],
        "seed": cfg["seed"],
        "augmentation": augmentation_text(cfg.get("framing_jitter", 0.0), cfg.get("erase", 0.0)),
        "label_smoothing": cfg.get("label_smoothing", 0.0),
        "architecture": cfg["net"],
        **distillation_entry(cfg),
        **averaging_entry(task, out),
        "command": cfg["command"],
        "resumes": cfg.get("resumes", []),
        # a resume of a finished run writes a new card for old weights: its commit and date are the export's
        **({"exported_by": exported_by} if exported_by else {}),
        **provenance(),
    }
    card = classifier_card(name, size, cfg["labels"], net.cam_grid(), method_text(cfg["net"]["arch"]), training, {})
    path, record = out / "model.onnx", out / "metrics.json"
    # Written beside its place, measured, given its card with the metrics, and only then put in place with
    # metrics.json: a stop after the export had left a model whose card had no metrics, beside an older
    # metrics.json or none. The --export-to copy goes with them where it can be written; where it cannot, they go
    # in place without it, and the failed copy is said after.
    copy_failed = None
    left = export_left(path, export_to)
    again = f"`{program()} train classifier --out {out} --resume` exports it (training is done: it trains nothing more)"
    space = f"{left}; once there is room, {again}"
    with staged_export(left, again) as staged:
        part = staged.path(path)
        with writing(path, "the exported model", space):
            diffs = export_classifier(net, size, part, card, place=path)
        print(f"exported {path.name} (parity: " + ", ".join(f"max|Δ{k}| {v:.2e}" for k, v in diffs.items()) +
              f"); measuring it before it is put in place as {path}")
        model = load_model(part, "classifier", RuntimeConfig(provider="cpu"))
        test = [s for s, sp in zip(data.samples, data.split) if sp == "test"]
        if not test:
            log.warning("%s", no_test_note(data.read.name))
        metrics = evaluate(model, test, data.samples)  # the groups the data holds that no test face is of, named
        for grouping in GROUPINGS:
            print(format_table({name: metrics}, grouping), end="\n\n")
        summary = metrics.to_dict()
        # as `train evaluate --json` says how it took its faces: whole images here, never searched by a detector
        summary["evaluated_on"] = {"split": "test", "n": len(test), "filters": data.filters, "detect": False,
                                   "detector": "aligned"}
        summary["parity"] = diffs
        summary["proportion_interval"] = PROPORTION_INTERVAL  # which interval its bounds are, should it change again
        card = classifier_card(name, size, cfg["labels"], net.cam_grid(), card.method, training, summary)
        with writing(path, "the exported model", space):
            write_card(part, card)
        if export_to:
            copy_failed = stage_copy(staged, part, export_to, "the copy of the exported model (--export-to)",
                                     copy_not_made("classifier", out, path, f"{path} and {record} were put in place",
                                                   export_to))
        place_with_record(staged, record, summary, "the test metrics", space)
    print(f"written {path} (its card holds the test metrics) and {record}")
    if copy_failed is not None:
        raise copy_failed
    if export_to:
        print(f"copied to {export_to}")
    return path
