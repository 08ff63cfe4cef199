"""Per-group evaluation of exported ONNX classifiers (what ships, not the checkpoint).

    python main.py train evaluate --model a.onnx [--model b.onnx] --dataset utkface:PATH

prints accuracy, FPR and FNR overall, per gender × race and per age band,
each with a 95% Wilson interval, models side by side, and writes JSON.
"""
from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from inference import strict_json
from inference.arg_checks import check_output_file, data_folders, int_at_least
from inference.audit.classifier_audit import paired_accuracy
from inference.audit.summary import comparison_line
from inference.datasets import SPLITS, DatasetRead, Sample, open_dataset, select, split_of
from inference.defaults import load_classifiers
from inference.errors import BiasMirrorError
from inference.metrics import GroupedMetrics, disaggregate, format_table
from inference.models import Classifier
from inference.pipeline import FramePipeline, PipelineConfig
from inference.runtime import RuntimeConfig
from training.data.cache import unreadable_note

GROUPINGS = ("gender×race", "age_band")
DEFAULT_MIN_AGE = 18  # train classifier's default, and evaluate's where the models' cards do not say
log = logging.getLogger(__name__)


def predict_read(model: Classifier, samples: list[Sample], batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """P(female) per sample (NaN where the image cannot be read, or the model gave no finite output) and a mask of
    the images that were read: a model trained to NaN reads every image and predicts none, which is the model's
    failure, not the images'.

    Runs the pipeline's own batch API (whole image = face, crop at the model's
    size), so these numbers are the ones the audit and the app compute.
    """
    pipeline = FramePipeline([model], None, None, PipelineConfig(min_crop=model.size[0]))
    p = np.full(len(samples), np.nan)
    read = np.zeros(len(samples), bool)
    results = pipeline.process_images([s.path for s in samples], batch)
    for i, (_path, result, _error) in enumerate(tqdm(results, total=len(samples), desc=f"evaluating {model.name}",
                                                      unit="img", mininterval=2)):
        if result is not None:
            read[i] = True
            p[i] = result.faces[0].original.classifiers[model.name].p_female
    p[~np.isfinite(p)] = np.nan  # an infinite P(female) is no more a prediction than NaN
    return p, read


def predict_samples(model: Classifier, samples: list[Sample], batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """P(female) per sample (NaN where the image cannot be read or the model gave no finite output) and a mask of
    the finite ones (``predict_read`` tells the two apart)."""
    p, _read = predict_read(model, samples, batch)
    return p, np.isfinite(p)


def _groups(samples: list[Sample]) -> dict[str, list[str]]:
    return {"gender×race": [f"{s.gender}|{s.race}" for s in samples], "age_band": [s.age_band for s in samples]}


def grouped(p: np.ndarray, ok: np.ndarray, samples: list[Sample]) -> GroupedMetrics:
    """Metrics overall and per group from ``predict_samples``' output."""
    kept = [s for s, k in zip(samples, ok) if k]
    y = np.array([s.gender == "female" for s in kept])
    pf = p[ok]
    return disaggregate(y, pf >= 0.5, pf, _groups(kept))


def evaluate(model: Classifier, samples: list[Sample]) -> GroupedMetrics:
    return grouped(*predict_samples(model, samples), samples)


def paired_comparisons(predictions: dict[str, tuple[np.ndarray, np.ndarray]], samples: list[Sample]) -> list[dict]:
    """Each pair of models on the faces all of them read: exact McNemar overall and per gender × race
    (the audit's ``comparisons`` entries, docs/audit_schema.md)."""
    if len(predictions) < 2:
        return []
    both = np.logical_and.reduce([ok for _, ok in predictions.values()])
    y = np.array([s.gender == "female" for s in samples])[both]
    correct = {name: (p[both] >= 0.5) == y for name, (p, _) in predictions.items()}
    kept = [s for s, k in zip(samples, both) if k]
    return paired_accuracy(correct, {"gender×race": _groups(kept)["gender×race"]})


def paired_lines(comparisons: list[dict]) -> list[str]:
    return [comparison_line(c, "gender×race") for c in comparisons]


def evaluation_json(results: dict[str, GroupedMetrics], comparisons: list[dict], extra: dict | None = None) -> str:
    """What --json (evaluate) and comparison.json (compare) hold: each model's metrics and the paired tests
    (and ``extra``: compare records how each variant was made)."""
    return strict_json.dumps({"models": {k: v.to_dict() for k, v in results.items()}, "comparisons": comparisons,
                              **(extra or {})}, indent=1)


def evaluate_models(models: dict[str, Classifier], samples: list[Sample]) -> tuple[dict[str, GroupedMetrics], list[dict]]:
    """Per-group metrics of each model and their paired comparisons, from one pass of each model."""
    results, paired, _read, _no_finite = evaluate_read_models(models, samples)
    return results, paired


def evaluate_read_models(models: dict[str, Classifier], samples: list[Sample]
                         ) -> tuple[dict[str, GroupedMetrics], list[dict], np.ndarray, dict[str, int]]:
    """``evaluate_models``, with the mask of the images read and, per model, how many of the faces read got no
    finite P(female) from it. Each is warned of apart: a model trained to NaN had its faces called unreadable."""
    predictions, read = {}, np.ones(len(samples), bool)
    for name, m in models.items():
        p, seen = predict_read(m, samples)
        predictions[name] = (p, np.isfinite(p))
        read &= seen
    if not read.all():  # the tables count only the faces read: say which were left out
        log.warning("%s; %d of %d face(s) evaluated", unreadable_note([s.path for s in samples], read),
                    int(read.sum()), len(samples))
    no_finite = {name: int((read & ~ok).sum()) for name, (_p, ok) in predictions.items()}
    for name, k in no_finite.items():
        if k and k < read.sum():  # none at all is main's error
            log.warning("%s; its figures count only the faces it gave one for",
                        no_finite_note(name, k, int(read.sum())))
    return ({name: grouped(p, ok, samples) for name, (p, ok) in predictions.items()},
            paired_comparisons(predictions, samples), read, no_finite)


def no_finite_note(name: str, k: int, n: int) -> str:
    """'model NAME gave no finite P(female) on K of the N face(s) read: its training diverged?'"""
    return (f"model {name} gave no finite P(female) on {'any of' if k == n else f'{k} of'} the {n} face(s) read: "
            "its training diverged? (NaN or infinite outputs: the images were read)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", required=True, help="an ONNX classifier (repeat to compare)")
    p.add_argument("--dataset", required=True, help="KIND:PATH, e.g. utkface:../shared/datasets/utkface")
    p.add_argument("--split", default="test", choices=["train", "val", "test", "all"],
                   help="the split evaluated on (default %(default)s; all: every labelled face)")
    p.add_argument("--min-age", type=int_at_least(-1), default=None,
                   help=f"evaluate on faces at least this old (-1: all); default: the age the models' cards were "
                        f"trained and tested on ({DEFAULT_MIN_AGE} where they do not say or disagree)")
    p.add_argument("--json", help="write the metrics here")


def evaluation_samples(dataset: str, split: str, min_age: int | None) -> list[Sample]:
    return evaluation_read(dataset, split, min_age)[1]


def evaluation_read(dataset: str, split: str, min_age: int | None) -> tuple[DatasetRead, list[Sample]]:
    """The dataset read and its labelled faces of ``split`` (every split: "all") at the age bar, with notes on
    what the filters left out."""
    read = open_dataset(dataset)
    if min_age is not None and read.samples and not any(s.age is not None for s in read.samples):
        raise BiasMirrorError(f"evaluating faces {ages_text(min_age)} needs ages, and this dataset has none: pass "
                              "--min-age -1 to evaluate every labelled face", read.root)
    samples = select(read.samples, None if split == "all" else split, min_age=min_age, labelled=True)
    if not samples:
        raise BiasMirrorError(f"no labelled faces in split '{split}' (min age {min_age})", read.root)
    # what the filters left out, said: faces without an age went without a word, and a folder without a split
    # column was evaluated on the tenth of it that its file names' hash puts in "test"
    in_split = select(read.samples, None if split == "all" else split, labelled=True)
    no_age = sum(s.age is None for s in in_split) if min_age is not None else 0
    if no_age:
        print(f"note: {no_age} labelled face(s) of split '{split}' have no age and are left out by the age bar "
              f"({ages_text(min_age)}; --min-age -1 keeps them)")
    hashed = sum(s.partition not in SPLITS for s in samples)  # an empty or unknown split value is hashed too
    if split != "all" and read.name == "folder" and hashed:
        print(f"note: {hashed} of the {len(samples)} face(s) evaluated are in split '{split}' by a hash of their file "
              f"name, the dataset giving them no split (the folder has {len(select(read.samples, labelled=True))} "
              "labelled faces; --split all evaluates every one)")
    return read, samples


def split_text(split: str) -> str:
    return "every split (--split all)" if split == "all" else f"split '{split}'"


def trained_on(name: str, model: Classifier, read: DatasetRead, split: str, samples: list[Sample]
               ) -> tuple[int, bool, str] | None:
    """How many of ``samples`` are faces ``model`` was trained on by its card (the train split of the same
    dataset, by its resolved root), whether that is sure, and the line that says so: a WARNING where the card names
    this very dataset (sure); a note where it names another copy of the same kind whose train-split file names
    the evaluated faces share (their split, by file name or the dataset's own labels, is the same in every copy;
    a folder's split is its own labels file's, so another folder is not taken for it), or that is not here to
    compare with. None where neither, or where none of the faces is in the train split.

    Nothing is said of --split val: the classifier trainer exports its last (or weight-averaged) weights, and its
    card records the val split as measured, not as used to choose them."""
    training = model.card.training if isinstance(model.card.training, dict) else {}
    said = training.get("split")
    if split not in ("train", "all") or training.get("dataset") != read.name or not isinstance(said, str) \
            or not said.startswith("train"):
        return None
    in_train = [s for s in samples if split_of(s) == "train"]
    root = training.get("dataset_root")
    overstates = "its accuracy here overstates how it does on faces it has not seen"
    if isinstance(root, str) and os.path.realpath(root) == os.path.realpath(read.root):
        if not in_train:
            return None
        which = ("these are faces" if len(in_train) == len(samples)
                 else f"{len(in_train)} of the {len(samples)} faces evaluated are faces")
        return len(in_train), True, (f"WARNING: {which} {name} was trained on (its card: the train split of "
                                     f"{read.name} at {root}): {overstates}; --split test evaluates it on faces held "
                                     "out from its training")
    if read.name == "folder":
        return None
    if isinstance(root, str) and os.path.isdir(root):
        there = set(os.listdir(root))
        k = sum(os.path.basename(s.path) in there for s in in_train)
        if not k:
            return None
        return k, False, (f"note: {k} of the {len(samples)} faces evaluated share a file name with a face of the train "
                          f"split {name} was trained on (its card: {read.name} at {root}): where they are copies, it "
                          "was trained on them, which flatters its accuracy here")
    if not in_train:
        return None
    where = f"at {root}, not here to compare with" if isinstance(root, str) else "(its card does not say where)"
    return len(in_train), False, (f"note: {name} was trained on the train split of {read.name} {where}; if "
                                  f"{read.root} is a copy of it, {len(in_train)} of the {len(samples)} faces evaluated "
                                  f"are faces it was trained on and {overstates}")


_UNKNOWN = object()


def card_min_age(model: Classifier) -> object:
    """The youngest age (None: all ages) the model's card says it was trained and tested on, or _UNKNOWN."""
    filters = (model.card.training or {}).get("filters")
    return filters["min_age"] if isinstance(filters, dict) and "min_age" in filters else _UNKNOWN


def ages_text(min_age: int | None) -> str:
    return "of all ages" if min_age is None else f"aged {min_age} or more"


def choose_min_age(given: int | None, models: dict[str, Classifier]) -> tuple[int | None, list[str]]:
    """The age filter to evaluate with and the notes to print: --min-age when given (noting each model whose card
    says otherwise, so its numbers here are not its card's), else the cards' own when they agree."""
    recorded = {name: age for name, m in models.items() if (age := card_min_age(m)) is not _UNKNOWN}
    if given is not None:
        min_age = None if given < 0 else given
        return min_age, [f"note: --min-age {given} differs from the card of {name}, trained and tested on faces "
                         f"{ages_text(age)}: its numbers here are on other faces than its card's"
                         for name, age in recorded.items() if age != min_age]
    ages = set(recorded.values())
    if len(ages) == 1:
        (min_age,) = ages
        silent = [name for name in models if name not in recorded]
        whose = "the model card(s)" if not silent else f"the cards that say ({', '.join(recorded)}; {', '.join(silent)}: not said)"
        return min_age, [f"note: evaluating on faces {ages_text(min_age)}, as {whose} were trained and tested on "
                         "(give --min-age to choose)"]
    if ages:
        said = ", ".join(f"{name}: {ages_text(age)}" for name, age in recorded.items())
        return DEFAULT_MIN_AGE, [f"note: the models' cards were tested on different ages ({said}); evaluating all on "
                                 f"faces {ages_text(DEFAULT_MIN_AGE)} (give --min-age to choose)"]
    return DEFAULT_MIN_AGE, []


def main(args: argparse.Namespace) -> int:
    if args.json is not None:
        for read in (*args.model, *data_folders(args)):  # the JSON had replaced a model or the dataset's labels.csv
            check_output_file(args.json, "--json", read)
    # Named uniquely: a retrained model beside its predecessor has the same card name and file name, and under one
    # key the second silently replaced the first in every table and comparison.
    loaded = load_classifiers(args.model, RuntimeConfig(provider="cpu"), "--model")
    models = {f"{model.name} ({Path(path).name})": model for model, path in zip(loaded, args.model)}
    min_age, notes = choose_min_age(args.min_age, models)
    for note in notes:
        print(note)
    read, samples = evaluation_read(args.dataset, args.split, min_age)
    print(f"evaluating {split_text(args.split)} of {read.name} at {read.root}: {len(samples)} labelled face(s) "
          f"{ages_text(min_age)}")
    seen = {}
    for name, model in models.items():
        if (found := trained_on(name, model, read, args.split, samples)) is not None:
            k, sure, line = found
            print(line)
            if sure:
                seen[name] = k
    results, paired, was_read, no_finite = evaluate_read_models(models, samples)
    if not was_read.any():  # tables of nan and exit 0 read as a success
        raise BiasMirrorError(f"none of the {len(samples)} face(s) could be read, so nothing was evaluated",
                              args.dataset.partition(":")[2])
    diverged = [name for name, k in no_finite.items() if k == was_read.sum()]
    if diverged:  # a model trained to NaN: its own failure, not the images' (they had been called unreadable)
        notes = [no_finite_note(name, no_finite[name], int(was_read.sum())) for name in diverged]
        if len(diverged) == 1:
            raise BiasMirrorError(f"{notes[0]}, so it was not evaluated", models[diverged[0]].path)
        raise BiasMirrorError("; ".join(f"{models[name].path}: {note}" for name, note in zip(diverged, notes))
                              + ", so they were not evaluated")
    for grouping in GROUPINGS:
        print(format_table(results, grouping), end="\n\n")
    for name, r in results.items():
        worst = r.worst("gender×race")
        if worst:
            print(f"{name}: overall {r.overall['accuracy']['value']:.4f}; worst gender×race group {worst[0]} "
                  f"{worst[1]['accuracy']['value']:.4f} (n={worst[1]['n']})"
                  + (f"; on faces it was trained on ({seen[name]} of {len(samples)}): overstated"
                     if name in seen else ""))
    for line in paired_lines(paired):
        print(line)
    if args.json:
        # which faces were evaluated: the age bar may come from the cards, so the file must say it
        evaluated = {"dataset": args.dataset, "root": read.root, "split": args.split, "min_age": min_age,
                     "faces_trained_on": seen}
        path = Path(args.json)  # its folders are made as the other --json outputs' are
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(evaluation_json(results, paired, {"evaluated": evaluated}))
    return 0
