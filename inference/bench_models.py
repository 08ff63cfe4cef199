"""The models a bench row times: checked once on the CPU before anything is measured, then loaded on each provider
asked for, or the reason that provider cannot run them (never a silent CPU fallback), and the row's provider label."""
from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from .arg_checks import refuse_empty
from .card_fields import CardNotes, card_flag
from .cli_common import YUNET_WANTED, checked_cam_class, checked_condition
from .defaults import load_selection
from .errors import BiasMirrorError
from .faces import make_detector
from .models import Classifier, Filter
from .runtime import CPU, CUDA, SHORT, TRT, RuntimeConfig, fallback_lines, fallbacks_collected

EXPECTED = {"cpu": CPU, "cuda": CUDA, "cuda-graph": CUDA, "tensorrt": TRT}
GRAPHS = {"cuda-graph"}  # providers whose rows replay CUDA graphs (RuntimeConfig.cuda_graph)
LABELS = {"cuda-graph": "CUDA graphs"}


@dataclass
class Loaded:
    classifiers: list[Classifier]
    filter: Filter | None
    models: dict[str, str]  # model name → provider it runs on


def timed_classifiers(classifiers: list[Classifier], args: argparse.Namespace) -> list[Classifier]:
    """The classifiers a row times: those given, or the first two defaults, as the goal is stated for two."""
    return classifiers if args.classifier else classifiers[:2]


def load_for(args: argparse.Namespace, provider: str) -> tuple[Loaded | None, str | None]:
    """The models on ``provider``, or the reason that provider cannot run them (never a silent CPU fallback).

    On a GPU provider anything that stops the models loading is that provider's row's reason, not the end of the
    bench (a TensorRT cache folder that could not be made had stopped it with an OSError); on the CPU, where the
    models were checked first, it is an error."""
    try:
        # the sessions' fallbacks are this row's reason (or, for auto, said below): not a log line per model too
        with fallbacks_collected() as fallbacks:
            cls, filt = load_selection(args.classifier, args.filter, args.no_filter,
                                       RuntimeConfig(provider="cuda" if provider in GRAPHS else provider,
                                                     threads=args.threads, cuda_graph=provider in GRAPHS))
    except BiasMirrorError as exc:
        if provider == "cpu":
            raise
        return None, str(exc)
    except Exception as exc:  # noqa: BLE001 - ORT's errors, an OSError, ...: a GPU row says it and the bench goes on
        if provider == "cpu":
            raise
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return None, f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    named = {str(m.path): m.name for m in [*cls, *([filt] if filt else [])]}
    cls = timed_classifiers(cls, args)
    models = [*cls, *([filt] if filt else [])]
    loaded = Loaded(cls, filt, {m.name: m.provider for m in models})
    if provider == "auto":
        for line in fallback_lines([(named.get(n, Path(n).name), w) for n, w in fallbacks]):
            print(f"warning: {line}")
        return loaded, None
    wanted = EXPECTED[provider]
    wrong = [m for m in models if m.info.provider != wanted]
    if not wrong and provider in GRAPHS:  # timed under "CUDA graphs" only if every model replays them
        refused = [m for m in models if not m.info.cuda_graph]
        if refused:
            return None, f"{refused[0].name}: {refused[0].info.warning or 'CUDA graphs were not enabled'}"
    if not wrong:
        return loaded, None
    m = wrong[0]
    reason = m.info.warning or m.info.note or f"{m.name} runs on {m.provider}"
    if m.info.skipped and wanted == TRT:
        return None, m.info.skipped  # left out before ORT was asked: the probe would tell of something else
    if wanted != CPU:
        from .gpu import probe  # what ORT said when the provider failed to load

        why = probe(wanted)
        if not why.ok and why.reason:
            reason = f"{SHORT[wanted]} did not start: {why.reason}"
    return None, reason


def row_label(provider: str, loaded: Loaded | None) -> str:
    if provider == "auto" and loaded is not None:
        return "auto→" + "/".join(sorted(set(loaded.models.values())))
    return LABELS.get(provider) or SHORT.get(EXPECTED.get(provider, ""), provider)


def checked_models(args: argparse.Namespace) -> tuple[dict | None, int]:
    """The models checked on the CPU before anything is measured, where a bad model file is an error, not an
    "unavailable" provider: the filter's card (None without one) and how many classifiers a row times. A --yunet
    file too: it was first opened while measuring, where a missing one made a provider's row "unavailable"."""
    classifiers, checked = load_selection(args.classifier, args.filter, args.no_filter,
                                          RuntimeConfig(provider="cpu", threads=1))
    args.cam_class = checked_cam_class(args, classifiers)  # every row's pipeline_config reads it
    args.condition = checked_condition(args, checked)
    n_classifiers = len(timed_classifiers(classifiers, args))  # the baseline runs as many: the same work
    refuse_empty(args.yunet, "--yunet", YUNET_WANTED)
    if args.yunet:
        make_detector(args.yunet)  # runs it once on a blank frame: another ONNX model is refused here
    if checked is None:
        return None, n_classifiers
    # only JSON true: "timing_only": "false" had been a non-empty string, true to bool(), and a trained filter was
    # called UNTRAINED (its output meaning nothing) in the bench's words and its JSON
    timing_only = card_flag(CardNotes(checked.path), "training.timing_only", checked.card.training.get("timing_only"))
    return {"name": checked.name, "size": checked.size[0], "timing_only": timing_only}, n_classifiers
