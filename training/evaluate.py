"""Per-group evaluation of exported ONNX classifiers (what ships, not the checkpoint).

    python main.py train evaluate --model a.onnx [--model b.onnx] --dataset utkface:PATH

prints accuracy, FPR and FNR overall, per gender × race and per age band,
each with a 95% modified Wilson interval (inference.metrics.modified_wilson), models side by side, and
writes JSON.

Faces are taken as the audit takes them: a utkface, celeba or fairface image is an aligned face crop, and a
folder's photo is searched by the face detector, its largest face carrying its label (--detect / --aligned choose).
"""
from __future__ import annotations

import argparse
import logging
import os
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, TextIO

import numpy as np
from tqdm import tqdm

from inference import strict_json
from inference.arg_checks import (JSON_DASH_HELP, check_output_file, data_folders, int_at_least, json_on_stdout,
                                  put_json)
from inference.audit.classifier_audit import paired_accuracy
from inference.audit.summary import extreme_group, pct, ci, comparison_line
from inference.card_fields import CardNotes, card_number, card_object, needed_card_number
from inference.cli_common import (add_dataset_cache_argument, add_detector_arguments, add_face_choice_arguments,
                                  dataset_cache_dir, detector_from_args, detects_faces)
from inference.datasets import SPLITS, USER_CACHE, DatasetCache, DatasetRead, Sample, open_dataset, select, split_of
from inference.datasets.copies import kept_with_copies
from inference.datasets.framing import warn_if_loosely_framed
from inference.datasets.folder import list_folder
from inference.datasets.sample import nfc
from inference.datasets.splits import say_bands_cut
from inference.defaults import load_classifiers
from inference.errors import BiasMirrorError
from inference.detect_ahead import detecting_ahead
from inference.faces import FaceDetector, detect_faces
from inference.file_identity import file_hash
from inference.metrics import UNKNOWN, GroupedMetrics, disaggregate, format_table, group_order, tied_groups
from inference.models import Classifier
from inference.pipeline import FramePipeline, PipelineConfig
from inference.provenance import software
from inference.results import FrameResult
from inference.runtime import RuntimeConfig
from inference.sources import Frame, ImageListSource
from inference.untrusted_text import terminal_safe
from inference.writing import write_through, writing
from training.data.cache import unreadable_note
from training.data.compose import cell_of, compose

GROUPINGS = ("gender×race", "age_band")
# train evaluate --json's format: bump it when a key changes meaning. The files written before it had none (1): their
# models were named "name (file)" alone, which two trainings of one name saved under one file name share.
# compare's comparison.json (training/tasks/compare.py) has a version of its own. docs/outputs.md lists every output's version.
# 3: a comparison's grouped McNemar objects carry report.json 18's Holm family (`least_p`, `holm_family`,
# `holm_family_size`; `p_holm` null for a group left out): `p_holm < 0.05` on a version-2 reading raises on null.
EVALUATE_SCHEMA_VERSION = 3
DEFAULT_MIN_AGE = 18  # train classifier's default, and evaluate's where the models' cards do not say
log = logging.getLogger(__name__)


def predict_read(model: Classifier, samples: list[Sample], batch: int = 128, detector: FaceDetector | None = None
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P(female) per sample (NaN where the image cannot be read, no face was found in it, or the model gave no
    finite output), a mask of the images that were read, and the faces found in each (0 where it was not read):
    a model trained to NaN reads every image and predicts none, which is the model's failure, not the images'.

    Runs the pipeline's own batch API, so these numbers are the ones the audit and the app compute. Without a
    ``detector`` the whole image is the face (an aligned crop, cropped at the model's size); with one, the largest
    face found carries the image's label, as in the audit (the others are no one's whose label is known).
    """
    pipeline = _model_pipeline(model, detector)
    predicted = Predicted(len(samples))
    results = pipeline.process_images([s.path for s in samples], batch)
    shown = terminal_safe(f"evaluating {model.name}")  # a card's name; the bar's own \r are tqdm's, written past it
    for i, (_path, result, _error) in enumerate(tqdm(results, total=len(samples), desc=shown, unit="img",
                                                      mininterval=2)):
        predicted.record(i, result, model.name)
    return predicted.figures()


def _model_pipeline(model: Classifier, detector: FaceDetector | None) -> FramePipeline:
    """The pipeline of one model, its faces cropped at the model's own size, the largest alone analysed."""
    return FramePipeline([model], None, detector, PipelineConfig(min_crop=model.size[0], max_faces=1))


class Predicted:
    """``predict_read``'s three arrays for one model, filled in one image at a time."""

    def __init__(self, n: int):
        self.p = np.full(n, np.nan)
        self.read = np.zeros(n, bool)
        self.found = np.zeros(n, int)

    def record(self, i: int, result: FrameResult | None, model_name: str) -> None:
        """Image ``i``'s result (None: it was not read) from the pipeline that ran the model ``model_name``."""
        if result is None:
            return
        self.read[i] = True
        self.found[i] = len(result.faces) if result.faces_found is None else result.faces_found
        if result.faces:  # the largest first
            self.p[i] = result.faces[0].original.classifiers[model_name].p_female

    def figures(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        self.p[~np.isfinite(self.p)] = np.nan  # an infinite P(female) is no more a prediction than NaN
        return self.p, self.read, self.found


def predict_read_models(models: dict[str, Classifier], samples: list[Sample], batch: int = 128,
                        detector: FaceDetector | None = None) -> dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """``predict_read`` of each model. With a ``detector``, each photo is read and searched for faces once, and its
    faces are cropped and classified by each model's own pipeline at that model's size: detection does not depend
    on the model, and had been paid once per model (the same faces, so the same figures)."""
    if detector is None:  # aligned crops: batched per model, nothing to find
        return {name: predict_read(m, samples, batch) for name, m in models.items()}
    pipelines = {name: _model_pipeline(m, detector) for name, m in models.items()}
    predicted = {name: Predicted(len(samples)) for name in models}
    for i, (path, frame) in enumerate(tqdm(_photos_with_faces(samples, detector), total=len(samples),
                                           desc=f"evaluating {len(models)} model(s)", unit="img", mininterval=2)):
        if frame.image is None:  # unreadable: no model reads it
            continue
        # found ahead on a helper thread; where that failed, found here, once for all the models (a detector's
        # error raised as the pipeline would raise it)
        detected = frame.detected if frame.detected is not None else detect_faces(detector, frame.image)
        for name, pipeline in pipelines.items():
            pipeline.tracker.reset()  # another photo's faces are other people, as process_images has them
            predicted[name].record(i, pipeline.process(frame.image, timestamp=0.0, source=path, detected=detected),
                                   models[name].name)
    return {name: done.figures() for name, done in predicted.items()}


def _photos_with_faces(samples: list[Sample], detector: FaceDetector) -> Iterator[tuple[str, Frame]]:
    """Each sample's photo as ``FramePipeline.process_images`` reads it, its faces found ahead of its analysis."""
    if not samples:
        return iter(())
    paths = [s.path for s in samples]
    frames = detecting_ahead(ImageListSource([Path(p) for p in paths], "images", say_first_frame_only=False), detector)
    return zip(paths, frames)


def predict_samples(model: Classifier, samples: list[Sample], batch: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """P(female) per sample (NaN where the image cannot be read or the model gave no finite output) and a mask of
    the finite ones (``predict_read`` tells the two apart)."""
    p, _read, _found = predict_read(model, samples, batch)
    return p, np.isfinite(p)


def _groups(samples: list[Sample]) -> dict[str, list[str]]:
    """Each face's group of each grouping; a label it lacks is ``UNKNOWN``, as the audit has it (it had read
    "female|None")."""
    return {"gender×race": [cell_of(s, ("gender", "race"), UNKNOWN) for s in samples],
            "age_band": [s.age_band for s in samples]}


def grouped(p: np.ndarray, ok: np.ndarray, samples: list[Sample], every: list[Sample] | None = None
            ) -> GroupedMetrics:
    """Metrics overall and per group from ``predict_samples``' output. ``every``: the faces whose groups are
    known to exist (the dataset's), so that a group with no face among those measured is named in the gaps."""
    kept = [s for s, k in zip(samples, ok) if k]
    y = np.array([s.gender == "female" for s in kept])
    pf = p[ok]
    return disaggregate(y, pf >= 0.5, pf, _groups(kept), None if every is None else _groups(every))


def evaluate(model: Classifier, samples: list[Sample], every: list[Sample] | None = None) -> GroupedMetrics:
    """``grouped`` of the model's predictions on ``samples`` (``every``: as ``grouped``'s)."""
    return grouped(*predict_samples(model, samples), samples, every)


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


def evaluation_doc(results: dict[str, GroupedMetrics], comparisons: list[dict], extra: dict | None = None) -> dict:
    """What --json (evaluate) and comparison.json (compare) hold: each model's metrics and the paired tests
    (and ``extra``: compare records how each variant was made)."""
    return {"models": {k: v.to_dict() for k, v in results.items()}, "comparisons": comparisons, **(extra or {})}


def evaluation_json(results: dict[str, GroupedMetrics], comparisons: list[dict], extra: dict | None = None) -> str:
    return strict_json.dumps(evaluation_doc(results, comparisons, extra), indent=1)


@dataclass(frozen=True)
class ModelFile:
    """Which weights a model's figures are of: its file's name and the sha256 of its bytes, as the audit's
    report.json names its models."""

    file: str
    sha256: str


def model_files(models: dict[str, Classifier]) -> dict[str, ModelFile]:
    """Each model's ``ModelFile``, hashed as it is loaded: the file named may be replaced while the faces are read."""
    return {name: ModelFile(Path(m.path).name, file_hash(m.path)) for name, m in models.items()}


def evaluate_json(results: dict[str, GroupedMetrics], comparisons: list[dict], evaluated: dict,
                  files: dict[str, ModelFile]) -> str:
    """--json's document: ``evaluation_doc``'s under its schema version and the software that wrote it, each
    model's metrics followed by its file and sha256 (its key, "name (file)", says no more than its card's name)."""
    doc = evaluation_doc(results, comparisons, {"evaluated": evaluated})
    for name, f in files.items():
        doc["models"][name].update(file=f.file, sha256=f.sha256)
    return strict_json.dumps({"schema_version": EVALUATE_SCHEMA_VERSION, "software": software(), **doc}, indent=1)


def evaluate_models(models: dict[str, Classifier], samples: list[Sample]) -> tuple[dict[str, GroupedMetrics], list[dict]]:
    """Per-group metrics of each model and their paired comparisons, from one pass of each model (the whole image
    the face: compare's variants were trained on its dataset's images as they are)."""
    done = evaluate_read_models(models, samples)
    return done.results, done.paired


@dataclass
class Evaluation:
    """``evaluate_read_models``' figures, and what they leave out: the images not read, those read with no face
    found, and per model the faces it gave no finite P(female)."""

    results: dict[str, GroupedMetrics]
    paired: list[dict]
    read: np.ndarray  # the images every model read
    faces: np.ndarray  # the faces found in each (1 for each image read where the whole image is the face)
    no_finite: dict[str, int]

    @property
    def with_face(self) -> np.ndarray:
        return self.read & (self.faces > 0)

    @property
    def no_face(self) -> np.ndarray:
        return self.read & (self.faces == 0)


def evaluate_read_models(models: dict[str, Classifier], samples: list[Sample],
                         detector: FaceDetector | None = None, every: list[Sample] | None = None) -> Evaluation:
    """``evaluate_models``, with ``detector`` finding the faces (None: the whole image is the face), and what was
    left out. Each is warned of apart: a model trained to NaN had its faces called unreadable; the images with no
    face found are main's to say (it names them within the dataset). ``every``: as ``grouped``'s."""
    predictions, read, faces = {}, np.ones(len(samples), bool), []
    for name, (p, seen, found) in predict_read_models(models, samples, detector=detector).items():
        predictions[name] = (p, np.isfinite(p))
        read &= seen
        faces.append(found)
    if not read.all():  # the tables count only the faces read: say which were left out
        log.warning("%s; %d of %d face(s) evaluated", unreadable_note([s.path for s in samples], read),
                    int(read.sum()), len(samples))
    found = np.min(faces, axis=0)  # one detector, so every pass finds the same; a face missed by one is in no table
    with_face = read & (found > 0)
    no_finite = {name: int((with_face & ~ok).sum()) for name, (_p, ok) in predictions.items()}
    for name, k in no_finite.items():
        if k and k < with_face.sum():  # none at all is main's error
            log.warning("%s; its figures count only the faces it gave one for",
                        no_finite_note(name, k, int(with_face.sum())))
    return Evaluation({name: grouped(p, ok, samples, every) for name, (p, ok) in predictions.items()},
                      paired_comparisons(predictions, samples), read, found, no_finite)


def no_finite_note(name: str, k: int, n: int) -> str:
    """'model NAME gave no finite P(female) on K of the N face(s) read: its training diverged?'"""
    return (f"model {name} gave no finite P(female) on {'any of' if k == n else f'{k} of'} the {n} face(s) read: "
            "its training diverged? (NaN or infinite outputs: the images were read)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--model", action="append", required=True, help="an ONNX classifier (repeat to compare)")
    p.add_argument("--dataset", required=True, help="KIND:PATH, e.g. utkface:../shared/datasets/utkface")
    p.add_argument("--split", default=None, choices=["train", "val", "test", "all"],
                   help="the split evaluated on (all: every labelled face); default test, or all for a folder whose "
                        "labels give no split and which no model's card shows may be its training folder (a folder "
                        "card whose root is this one, is not here, is relative, or holds these faces' bytes keeps test)")
    p.add_argument("--min-age", type=int_at_least(-1), default=None,
                   help=f"evaluate on faces at least this old (-1: all); default: the age the models' cards were "
                        f"trained and tested on ({DEFAULT_MIN_AGE} where they do not say or disagree)")
    p.add_argument("--json", help="write the metrics here" + JSON_DASH_HELP)
    # faces taken as the audit takes them: evaluate had classified a folder's 640×480 photos whole, at 42.5 % where
    # the audit found 94.9 %
    add_face_choice_arguments(p, "; the largest face of each photo carries its label, and a photo with no face "
                                 "found is counted, named and left out")
    add_detector_arguments(p)
    add_dataset_cache_argument(p, "; nor of a model card's training dataset, read to find the faces it was trained on")


def faces_line(detector: FaceDetector | None) -> str | None:
    """How the faces evaluated were taken, said where the detector found them (aligned crops are said nowhere, as
    before)."""
    if detector is None:
        return None
    return (f"faces: found by the detector ({detector.name}), the largest face of each photo carrying its label, as "
            "the audit takes them (--aligned takes the whole image as the face)")


def no_face_note(samples: list[Sample], no_face: np.ndarray, root: str, detector: FaceDetector, n_read: int,
                 shown: int = 3) -> str:
    """'the detector (NAME) found no face in K of the N photo(s) read (by group; e.g. a, b): left out …'. By group,
    since whose faces a detector misses is itself a bias the tables would not show."""
    missed = [s for s, m in zip(samples, no_face) if m]
    by_group = Counter(_groups(missed)["gender×race"])
    names = [_relative(s.path, root) for s in missed]
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return (f"the detector ({detector.name}) found no face in {len(missed)} of the {n_read} photo(s) read ("
            + ", ".join(f"{g} {k}" for g, k in sorted(by_group.items(), key=lambda gk: group_order(gk[0])))
            + f"; e.g. {', '.join(names[:shown])}{more}): they are in no figure below; --yunet or --haar-cascade "
              "finds faces otherwise")


def several_faces_note(faces: np.ndarray) -> str | None:
    """'note: K photo(s) hold more than one face …', or None where none does."""
    k = int((faces > 1).sum())
    return (f"note: {k} photo(s) hold more than one face: the largest is taken as the labelled person's, as the audit "
            "takes it") if k else None


def evaluation_samples(dataset: str, split: str, min_age: int | None, cache_dir: DatasetCache = USER_CACHE
                       ) -> list[Sample]:
    return evaluation_read(dataset, split, min_age, cache_dir)[1]


def evaluation_read(dataset: str, split: str, min_age: int | None, cache_dir: DatasetCache = USER_CACHE
                    ) -> tuple[DatasetRead, list[Sample]]:
    """The dataset read and its labelled faces of ``split`` (``evaluation_faces``). ``cache_dir``: as
    ``open_dataset``'s."""
    read = open_dataset(dataset, cache_dir)
    return read, evaluation_faces(read, split, min_age)


def evaluation_faces(read: DatasetRead, split: str, min_age: int | None) -> list[Sample]:
    """The labelled faces of ``split`` (every split: "all") at the age bar, with notes on what the filters left
    out."""
    if min_age is not None and not ages_given(read):
        raise BiasMirrorError(f"evaluating faces {ages_text(min_age)} needs ages, and this dataset has none: pass "
                              "--min-age -1 (or leave --min-age out) to evaluate its faces whatever their age",
                              read.root)
    in_split = select(read.samples, None if split == "all" else split, labelled=True)
    say_bands_cut(in_split, min_age)  # here, once: evaluate selects at the bar again for the groups it holds
    samples = select(in_split, min_age=min_age)
    if not samples:
        raise no_faces_error(read, split, min_age)
    # what the filters left out, said: faces without an age went without a word, and a folder without a split
    # column was evaluated on the tenth of it that its file names' hash puts in "test"
    no_age = sum(s.age is None for s in in_split) if min_age is not None else 0
    if no_age:
        say(f"note: {no_age} labelled face(s) of split '{split}' have no age and are left out by the age bar "
            f"({ages_text(min_age)}; --min-age -1 keeps them)")
    hashed = sum(s.partition not in SPLITS for s in samples)  # an empty or unknown split value is hashed too
    if split != "all" and read.name == "folder" and hashed:
        say(f"note: {hashed} of the {len(samples)} face(s) evaluated are in split '{split}' by a hash of their file "
            f"name, the dataset giving them no split (the folder has {len(select(read.samples, labelled=True))} "
            "labelled faces; --split all evaluates every one)")
    return samples


def ages_given(read: DatasetRead) -> bool:
    """Whether the dataset gives any face an age (an empty one is not said to lack them)."""
    return not read.samples or any(s.age is not None for s in read.samples)


def no_faces_error(read: DatasetRead, split: str, min_age: int | None) -> BiasMirrorError:
    """'no labelled faces in split 'test' …', with what would find some: five labelled photos, none hashed into
    'test', had been refused with "(min age None)" and no word of --split all."""
    labelled = select(read.samples, labelled=True)
    aged = select(labelled, min_age=min_age)
    where = "in any split" if split == "all" else f"in split '{split}'"
    bar = f" {ages_text(min_age)}" if min_age is not None else ""
    if not labelled:
        held = "the dataset labels no face with a gender"
    elif split != "all" and aged:
        held = f"the dataset has {len(aged)} labelled face(s){bar} in other splits; --split all evaluates every one"
    else:
        held = (f"the dataset has {len(labelled)} labelled face(s), none {ages_text(min_age)}; --min-age -1 "
                "evaluates faces of every age" + ("" if split == "all" else ", and --split all those of every split"))
    return BiasMirrorError(f"no labelled faces{bar} {where} ({held})", read.root)


def own_split_given(read: DatasetRead) -> bool:
    """Whether the dataset's labels put any labelled face in a split (not its name's hash, nor its copies')."""
    copied = kept_with_copies(read)
    return any(s.partition in SPLITS and s.path not in copied for s in select(read.samples, labelled=True))


def choose_split(given: str | None, read: DatasetRead, models: dict[str, Classifier],
                 digests: dict[str, str | None] | None = None) -> tuple[str, list[str]]:
    """--split where given, else "test", or for a folder whose labels give no split every labelled face ("all"),
    with the note that says so. A folder's hashed "test" had cut 20 labelled photos to the 1 it held, where audit
    takes every photo. Where a model may have been trained on this very folder (``trained_here_words``), "test"
    stays: it holds out its faces. ``digests``: as ``byte_copies``'."""
    if given is not None:
        return given, []
    if read.name != "folder" or own_split_given(read):
        return "test", []
    why = [said for name, m in models.items() if (said := trained_here_words(name, m, read, digests)) is not None]
    if why:
        whose = "its" if len(why) == 1 else "their"
        return "test", [f"note: the labels of {read.root} give no split, and {'; '.join(why)}: evaluating split "
                        f"'test', the faces a hash of their file names held out of {whose} training (--split all "
                        "evaluates every labelled face)"]
    return "all", [f"note: the labels of {read.root} give no split, so every labelled face is evaluated (--split "
                   "test evaluates the share a hash of their file names puts in 'test')"]


def trained_here_words(name: str, model: Classifier, read: DatasetRead,
                       digests: dict[str, str | None] | None = None) -> str | None:
    """Why the ``folder:`` dataset ``read`` may be the folder the model's card says it was trained on, or None where
    the card names no folder training or one shown to be another. Only the very folder had kept "test": the same
    folder moved, copied, on another machine, or named by a relative root was evaluated whole, training faces
    and all (52.5 % on 400 faces where its held-out 44 gave 43.2 %). A folder at the card's root that holds none of
    these faces' bytes is another one. ``digests``: as ``byte_copies``'."""
    card = _card_dataset(model)
    if card is None or card[0] != "folder":
        return None
    said, root = model.card.training.get("dataset_root"), card[1]
    if root is not None and root == os.path.realpath(read.root):
        return f"{name} was trained on this folder"
    if not isinstance(said, str):
        return f"{name} was trained on a folder its card does not name, which may be this one"
    if root is None:
        return (f"{name} was trained on the folder {said}, a path relative to where it was trained, which its card "
                "does not say: this folder may be it")
    if not os.path.isdir(root):
        return f"{name} was trained on the folder {said}, which is not here: this folder may be it, moved or copied"
    labelled = select(read.samples, labelled=True)
    k = sum(bool(same) for same in byte_copies([s.path for s in labelled], root, digests))
    if not k:
        return None
    return (f"{k} of its {len(labelled)} labelled faces are byte-for-byte copies of files in {said}, the folder "
            f"{name} was trained on")


def split_text(split: str) -> str:
    return "every split (--split all)" if split == "all" else f"split '{split}'"


@dataclass
class TrainedOn:
    """What ``trained_on`` found: ``n`` of the faces evaluated are faces the model was trained on (at most ``n``
    where ``up_to``), ``sure`` where the card names this very dataset, and the line that says so; ``unchecked``
    where that could not be checked."""

    n: int
    up_to: bool
    sure: bool
    line: str
    # where whether they are cannot be checked here: the card's dataset, and why (``card_place``)
    unchecked: str | None = None

    def count_text(self) -> str:
        return f"up to {self.n}" if self.up_to else str(self.n)

    def json_value(self) -> dict:
        """``faces_trained_on``'s figure, one shape whether exact or only an upper bound, and what could not be
        checked where nothing could: such a model had been left out, as if none of its faces were trained on."""
        return {"n": self.n, "upper_bound": self.up_to, **({"unchecked": self.unchecked} if self.unchecked else {})}


def _relative(path: str, root: str) -> str:
    """A face's file below its dataset's root ("img_align_celeba/000001.jpg", "train/1.jpg"): what a copy of the
    dataset shares with the original, however its readers lay it out."""
    return nfc(os.path.relpath(path, root))


_UNKNOWN = object()


def card_age_bar(training: dict, notes: CardNotes) -> object:
    """The youngest age the card records training on (``training.filters.min_age``; None: all ages), or _UNKNOWN
    where it records none, or one that is not a number ("18" reads 18; "eighteen" is warned of in ``notes``): a
    string there had crashed ``train evaluate`` comparing it with ages."""
    filters = card_object(notes, "training.filters", training.get("filters"))
    if filters is None or "min_age" not in filters:
        return _UNKNOWN
    if filters["min_age"] is None:
        return None
    bar = card_number(notes, "training.filters.min_age", filters["min_age"])
    return _UNKNOWN if bar is None else bar


def needed_age_bar(training: dict, notes: CardNotes, needed_for: str) -> int | float | None:
    """The card's age bar (as ``card_age_bar`` reads it; None: all ages) where a command cannot go on without it:
    one the card does not record, or of no type read as a number, is a BiasMirrorError naming the file, the field
    and ``needed_for``. Read raw, "eighteen" had reached the age comparisons as text."""
    filters = training.get("filters") if isinstance(training, dict) else None
    if not isinstance(filters, dict) or "min_age" not in filters:
        raise BiasMirrorError(f"its card records no training.filters.min_age, and {needed_for}", notes.source)
    if filters["min_age"] is None:
        return None
    return needed_card_number(notes, "training.filters.min_age", filters["min_age"], needed_for)


def card_age_rule(training: dict, notes: CardNotes) -> Callable[[Sample], bool] | None:
    """Whether a face passes the age bar the card records (``card_age_bar``), or None where the card records
    none. A face of no age passes a bar of 0 or less only where the card says none was left out for lacking one
    and does not record the rule that bars them (``age_rule``): runs begun before such faces were barred let them
    pass."""
    bar = card_age_bar(training, notes)
    if bar is _UNKNOWN:
        return None
    if bar is None:
        return lambda s: True
    no_age_left_out = card_number(notes, "training.filters.no_age_left_out",
                                  training["filters"].get("no_age_left_out"), whole=True)
    no_age_passed = bar <= 0 and not no_age_left_out and training.get("age_rule") != "known ages only"
    return lambda s: (s.age >= bar) if s.age is not None else no_age_passed


def _natural(composition: object) -> bool:
    """Whether the card's training mix is the train split as it was (no --compose, or one that left nothing out)."""
    if not isinstance(composition, dict):
        return True  # a card that records no mix drew none
    achieved, available = composition.get("achieved"), composition.get("available")
    return composition.get("mode", "none") == "none" or (isinstance(achieved, dict) and achieved == available)


def faces_trained(training: dict, source: DatasetRead,
                  notes: CardNotes | None = None) -> tuple[set[str], str | None]:
    """The faces of ``source`` (by ``_relative`` name) that the card's training run trained on, read as that run
    read its dataset: labelled train-split faces past the card's age bar, then its composition's mix, drawn again
    where the card records its seed and the draw gives the card's counts. With the reason where the set may hold
    faces it did not train on (an upper bound), else None. ``notes``: the command's reading of the model's card,
    which says where a field of it is of no type this reads (a fresh one, naming no file, where not given)."""
    notes = CardNotes() if notes is None else notes
    passes = card_age_rule(training, notes)
    pool = [s for s in source.samples
            if s.gender is not None and split_of(s) == "train" and (passes is None or passes(s))]
    names = [_relative(s.path, source.root) for s in pool]
    n_train = card_number(notes, "training.n_train", training.get("n_train"), whole=True)
    comp = card_object(notes, "training.composition", training.get("composition"))
    if passes is None:
        return set(names), "its card does not record the age bar it trained with"
    if _natural(comp):
        if n_train is not None and n_train != len(pool):
            return set(names), (f"its card trained on {n_train} faces; that train split holds {len(pool)} past "
                                "its age bar now")
        return set(names), None
    mode, by, seed = comp.get("mode"), comp.get("by"), training.get("seed")
    drawn = None
    filters = card_object(notes, "training.filters", training.get("filters")) or {}
    unreadable = card_number(notes, "training.filters.unreadable_skipped", filters.get("unreadable_skipped"),
                             whole=True)
    if isinstance(by, list) and isinstance(seed, int) and not unreadable:
        try:
            idx, redrawn = compose(pool, by, mode, comp.get("target"), seed)
        except (BiasMirrorError, TypeError, ValueError, AttributeError):
            idx, redrawn = None, None
        nonzero = lambda counts: {k: v for k, v in (counts or {}).items() if v}  # noqa: E731
        said = {key: card_object(notes, f"training.composition.{key}", comp.get(key))
                for key in ("achieved", "available")}
        if redrawn is not None and nonzero(redrawn.achieved) == nonzero(said["achieved"]) \
                and nonzero(redrawn.available) == nonzero(said["available"]) \
                and (n_train is None or n_train == len(idx)):
            drawn = {names[i] for i in idx}
    if drawn is not None:
        return drawn, None
    return set(names), f"its --compose {mode} mix was drawn from them, and could not be drawn again here"


def _read_root(kind: str, root: str, reads: dict | None = None, cache_dir: DatasetCache = USER_CACHE
               ) -> DatasetRead | None:
    """The card's training dataset read by its own reader (None where it cannot be), its warnings kept quiet:
    they are of another folder than the one evaluated. ``reads``: those read already, by kind and resolved root
    (models trained on one dataset read it once). ``cache_dir``: as ``open_dataset``'s."""
    key = (kind, os.path.realpath(root))
    if reads is not None and key in reads:
        return reads[key]
    quiet = logging.getLogger("inference.datasets")
    was = quiet.level
    quiet.setLevel(logging.ERROR)
    try:
        found: DatasetRead | None = open_dataset(f"{kind}:{root}", cache_dir)
    except (BiasMirrorError, OSError):
        found = None
    finally:
        quiet.setLevel(was)
    if reads is not None:
        reads[key] = found
    return found


def trained_on(name: str, model: Classifier, read: DatasetRead, split: str, samples: list[Sample],
               reads: dict | None = None, cache_dir: DatasetCache = USER_CACHE,
               notes: CardNotes | None = None) -> TrainedOn | None:
    """How many of ``samples`` are faces ``model`` was trained on by its card, whether that is sure, and the line
    that says so: a WARNING where the card names this very dataset (sure); a note where it names another copy of the
    same kind whose faces trained on (as that dataset's own reader lists them) the evaluated faces share a file name
    below the root with, or that is not here to compare with (its faces then taken to be these). None where neither,
    or where none of the faces is one it was trained on. A folder's split is its own labels file's, so another folder
    is not taken for it.

    Faces trained on are those its card records: the train split past its age bar, and its composition's mix where
    that is drawn again; where it cannot be (or the card does not say), the count is an upper bound, said "up to".

    Nothing is said of --split val: the classifier trainer exports its last (or weight-averaged) weights, and its
    card records the val split as measured, not as used to choose them. ``reads``, ``cache_dir``: as
    ``_read_root``'s; ``notes``: the command's reading of the model's card (``card_readings``)."""
    training = model.card.training if isinstance(model.card.training, dict) else {}
    said = training.get("split")
    if split not in ("train", "all") or training.get("dataset") != read.name or not isinstance(said, str) \
            or not said.startswith("train"):
        return None
    root = training.get("dataset_root")
    if isinstance(root, str) and not os.path.isabs(root):  # relative to where it was trained, which is not recorded:
        root = None  # resolved here it named this folder from one place and another folder from the next
    overstates = "its accuracy here overstates how it does on faces it has not seen"
    same = isinstance(root, str) and os.path.realpath(root) == os.path.realpath(read.root)
    if not same and read.name == "folder":
        return None
    elsewhere = not same and isinstance(root, str) and os.path.isdir(root)
    here = _read_root(read.name, root, reads, cache_dir) if elsewhere else None
    source = here or read  # not here: if this is a copy of it, its faces are these
    names, why = faces_trained(training, source, CardNotes(model.path) if notes is None else notes)
    k = sum(_relative(s.path, read.root) in names for s in samples)
    if not k:
        return None
    up_to = why is not None
    count = f"up to {k}" if up_to else str(k)
    bound = f"; up to, as {why}" if up_to else ""
    if same:
        which = ("these are faces" if k == len(samples) and not up_to
                 else f"{count} of the {len(samples)} faces evaluated are faces")
        return TrainedOn(k, up_to, True, f"WARNING: {which} {name} was trained on (its card: the train split of "
                                         f"{read.name} at {root}{bound}): {overstates}; --split test evaluates it on "
                                         "faces held out from its training")
    if here is not None:
        return TrainedOn(k, up_to, False, f"note: {count} of the {len(samples)} faces evaluated share a file name with "
                                          f"a face of the train split {name} was trained on (its card: {read.name} at "
                                          f"{root}{bound}): where they are copies, it was trained on them, which "
                                          "flatters its accuracy here")
    where = card_place(training.get("dataset_root")) or f"at {root}, which could not be read"
    return TrainedOn(k, True, False, f"note: {name} was trained on the train split of {read.name} {where}; if "
                                     f"{read.root} is a copy of it, {count} of the {len(samples)} faces evaluated are "
                                     f"faces it was trained on{f' (up to, as {why})' if up_to else ''} and "
                                     f"{overstates}", f"{read.name} {where}")


def card_place(said: object) -> str | None:
    """Where the card's training dataset is (its ``dataset_root``, ``said``), in words, where it cannot be compared
    with here; None where it is a folder here. A root relative to where the model was trained is said as the card
    says it: it had been said to be no place at all ("its card does not say where")."""
    if not isinstance(said, str):
        return "(its card does not say where)"
    if not os.path.isabs(said):
        return f"at {said}, relative to where it was trained (its card does not say where)"
    if not os.path.isdir(said):
        return f"at {said}, which is not here to compare with"
    return None


def _card_dataset(model: Classifier) -> tuple[str, str | None] | None:
    """The kind and resolved root (None: not recorded, or relative to where it was trained) of the dataset whose
    train split the model's card says it was trained on; None where the card says no such thing."""
    training = model.card.training if isinstance(model.card.training, dict) else {}
    kind, said, root = training.get("dataset"), training.get("split"), training.get("dataset_root")
    if not isinstance(kind, str) or not isinstance(said, str) or not said.startswith("train"):
        return None
    return kind, os.path.realpath(root) if isinstance(root, str) and os.path.isabs(root) else None


def copies_trained_on(name: str, model: Classifier, read: DatasetRead, samples: list[Sample],
                      reads: dict | None = None, cache_dir: DatasetCache = USER_CACHE,
                      notes: CardNotes | None = None, digests: dict[str, str | None] | None = None
                      ) -> TrainedOn | None:
    """Where the model's card names another dataset than the one evaluated (of another kind, or another folder), file
    names cannot say which faces it was trained on (``trained_on`` compares them within a kind; a folder names its
    photos as it likes), whatever the split: a model trained on utkface:utk_sub had been said to score 70.6 % on a
    folder's "test" faces, 101 of its 126 faces those it trained on, saved as imgs/NNNN.jpg. So the files evaluated
    are compared by content with the card's dataset where it is here: a WARNING counts those that are the very bytes
    of a face it was trained on. Its card keeps no digest of its faces, so where its dataset is not here that cannot
    be ruled out, and a note says so; a copy re-encoded or re-cropped is not found. None where the card names this
    very dataset or another of its kind (``trained_on``'s), or no dataset, or no face evaluated is such a copy.
    ``reads``, ``cache_dir``, ``notes``: as ``trained_on``'s; ``digests``: as ``byte_copies``'."""
    card = _card_dataset(model)
    if card is None or card[0] == read.name and (read.name != "folder" or card[1] == os.path.realpath(read.root)):
        return None
    kind, root = card
    training = model.card.training
    said = training.get("dataset_root")
    where = card_place(said)
    if where is not None:
        return unchecked(name, kind, where, read, len(samples))
    copies = byte_copies([s.path for s in samples], root, digests)
    if not any(copies):
        return None
    here = _read_root(kind, said, reads, cache_dir)
    if here is None:
        return unchecked(name, kind, f"at {said}, which could not be read", read, len(samples))
    names, why = faces_trained(training, here, CardNotes(model.path) if notes is None else notes)
    trained = {os.path.realpath(s.path) for s in here.samples if _relative(s.path, here.root) in names}
    k = sum(bool(same & trained) for same in copies)
    if not k:
        return None
    up_to = why is not None
    bound = f"; up to, as {why}" if up_to else ""
    return TrainedOn(k, up_to, True, f"WARNING: {'up to ' if up_to else ''}{k} of the {len(samples)} faces evaluated "
                                     f"are byte-for-byte copies of faces {name} was trained on (its card: the train "
                                     f"split of {kind} at {said}{bound}): its accuracy here overstates how it does on "
                                     "faces it has not seen; evaluate it on faces it was not trained on")


def unchecked(name: str, kind: str, where: str, read: DatasetRead, n: int) -> TrainedOn:
    """What ``copies_trained_on`` finds where the card's dataset cannot be compared with: up to every one of the
    ``n`` faces evaluated, unchecked (``unchecked_note``)."""
    return TrainedOn(n, True, False, unchecked_note(name, kind, where, read), f"{kind} {where}")


def unchecked_note(name: str, kind: str, where: str, read: DatasetRead) -> str:
    """'note: NAME was trained on the train split of KIND WHERE …: whether … cannot be checked here …'."""
    return (f"note: {name} was trained on the train split of {kind} {where}, not on {read.name} at {read.root}: "
            "whether any of the faces evaluated are copies of faces it was trained on cannot be checked, and where "
            "they are, its accuracy here is overstated")


def byte_copies(paths: list[str], root: str, digests: dict[str, str | None] | None = None) -> list[set[str]]:
    """For each of ``paths``, the images below ``root`` (resolved) that hold the very same bytes, listed as a
    ``folder:`` dataset lists them (``list_folder``: through links to folders, each once), so that faces trained on
    through a linked subfolder are found: a walk that did not follow links had missed them without a word. Only
    files of a size one of ``paths`` has are read, so a folder of photos unlike any of ``root``'s costs a listing of
    it. ``digests``: each file's digest by path, kept for the command (a folder is compared to choose the split,
    then its faces evaluated: each file is read once)."""
    digests = {} if digests is None else digests
    by_size: dict[int, list[int]] = {}
    for i, path in enumerate(paths):
        if (size := _size(path)) is not None:  # one that cannot be read is said where the faces are read
            by_size.setdefault(size, []).append(i)
    theirs: dict[int, list[str]] = {}
    for full in _images_below(root):
        if (size := _size(full)) in by_size:
            theirs.setdefault(size, []).append(full)
    found: list[set[str]] = [set() for _ in paths]
    for size, others in theirs.items():
        by_digest: dict[str | None, set[str]] = {}
        for other in others:
            by_digest.setdefault(_digest(other, digests), set()).add(os.path.realpath(other))
        by_digest.pop(None, None)  # unreadable: the same as nothing
        for i in by_size[size]:
            found[i] = by_digest.get(_digest(paths[i], digests), set())
    return found


def _images_below(root: str) -> list[str]:
    """The images below ``root`` as the folder reader finds them; none where it cannot be listed (the copy check
    is a warning, and its dataset's own reader names such a problem)."""
    try:
        return [str(p) for p in list_folder(Path(root), say=False).images]
    except (BiasMirrorError, OSError):
        return []


def _size(path: str) -> int | None:
    try:
        return os.path.getsize(path)
    except OSError:
        return None


def _digest(path: str, digests: dict[str, str | None]) -> str | None:
    """The file's digest (None: it cannot be read), kept in ``digests``."""
    if path not in digests:
        try:
            digests[path] = file_hash(path)
        except OSError:
            digests[path] = None
    return digests[path]


def card_readings(models: dict[str, Classifier]) -> dict[str, CardNotes]:
    """One reading of each model's card for one command (``CardNotes``): a field it reads twice (the age bar, for
    the faces to evaluate and for those it was trained on) is warned of once."""
    return {name: CardNotes(model.path) for name, model in models.items()}


def card_min_age(model: Classifier, notes: CardNotes) -> object:
    """The youngest age (None: all ages) the model's card says it was trained and tested on, or _UNKNOWN."""
    training = model.card.training if isinstance(model.card.training, dict) else {}
    return card_age_bar(training, notes)


def ages_text(min_age: int | None) -> str:
    return "of all ages" if min_age is None else f"aged {min_age} or more"


def choose_min_age(given: int | None, models: dict[str, Classifier], readings: dict[str, CardNotes],
                   with_ages: bool = True) -> tuple[int | None, list[str]]:
    """The age filter to evaluate with and the notes to print: --min-age when given (noting each model whose card
    says otherwise, so its numbers here are not its card's), else the cards' own when they agree, or every age where
    the dataset gives none (``with_ages`` False: the cards' 18 had stopped a folder labelled file,gender, the
    README's own example). ``readings``: the command's of each model's card (``card_readings``)."""
    recorded = {name: age for name, m in models.items() if (age := card_min_age(m, readings[name])) is not _UNKNOWN}
    if given is None and not with_ages:
        return None, no_ages_notes(recorded)
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


def no_ages_notes(recorded: dict[str, int | None]) -> list[str]:
    """'note: the dataset gives no ages, so its faces are evaluated whatever their age …', and a note of each model
    whose card was trained and tested on an age bar, whose numbers here are then on other faces than its card's."""
    return ["note: the dataset gives no ages, so its faces are evaluated whatever their age (--min-age needs ages)",
            *(f"note: the card of {name} was trained and tested on faces {ages_text(age)}: its numbers here are on "
              "other faces than its card's" for name, age in recorded.items() if age is not None)]


def no_faces_lines(results: dict[str, GroupedMetrics]) -> list[str]:
    """'note: no face evaluated is of gender×race group(s) A, B, which the dataset holds: …', per grouping, where a
    group of the dataset has no face among those any model was measured on: such a group had vanished from every
    table and gap without a word."""
    lines = []
    for grouping in GROUPINGS:
        missing = sorted({g for r in results.values() for g in r.no_faces.get(grouping, [])}, key=group_order)
        if missing:
            lines.append(f"note: no face evaluated is of {grouping} group(s) {', '.join(missing)}, which the dataset "
                         "holds (in another split, or not measured here): no table or gap says how they fare")
    return lines


def worst_group_words(metrics: GroupedMetrics, grouping: str = "gender×race") -> str | None:
    """The group of lowest accuracy with its CI and n, or every group tied there, each with its n, small groups
    (n < SMALL_GROUP) marked, as the audit's summary names them. One of five groups tied at 92.3 % had been named
    "the worst", and a group of 5 faces given no word of its size."""
    worst = metrics.worst(grouping)
    if worst is None:
        return None
    by = metrics.by[grouping]
    ties, n_shown = tied_groups(by, "accuracy", worst[0])
    if len(ties) == n_shown > 1:
        return f"every {grouping} group alike in accuracy ({pct(worst[1]['accuracy']['value'])} in each)"
    if len(ties) > 1:
        return f"{len(ties)} {grouping} groups tie for worst: {extreme_group(by, 'accuracy', worst[0], small=True)}"
    return f"worst {grouping} group {extreme_group(by, 'accuracy', worst[0], small=True)}"


def say(text: str, end: str = "\n") -> None:
    """A line of the evaluation's output: its tables and notes name models by their cards' names and groups by the
    dataset's labels, anyone's text, whose escape sequences had reached the terminal."""
    print(terminal_safe(text), end=end)


def summary_line(name: str, metrics: GroupedMetrics) -> str:
    """'NAME: overall accuracy A [95% CI …]; worst gender×race group …' (``worst_group_words``)."""
    worst = worst_group_words(metrics)
    return f"{name}: overall accuracy {ci(metrics.overall['accuracy'], pct=True)}" + (f"; {worst}" if worst else "")


def main(args: argparse.Namespace) -> int:
    with json_on_stdout(args.json) as stdout:  # `--json -`: the tables and notes on standard error, the JSON alone
        return _evaluate(args, stdout)


def _evaluate(args: argparse.Namespace, stdout: TextIO | None) -> int:
    """The command, its --json written to ``stdout`` where that is given (``json_on_stdout``), else to the file."""
    if args.json is not None and stdout is None:
        # the JSON had replaced a model or the dataset's labels.csv
        from inference.writing import written_in_place  # /dev/stdout: no file is made beside it

        for read in (*args.model, *data_folders(args), *([args.yunet] if args.yunet else [])):
            args.json = str(check_output_file(args.json, "--json", read, in_place=written_in_place))  # "~" expanded
    detect = detects_faces(args, args.dataset.partition(":")[0])  # before any model is loaded
    # Named uniquely: a retrained model beside its predecessor has the same card name and file name, and under one
    # key the second silently replaced the first in every table and comparison.
    runtime = RuntimeConfig(provider="cpu")
    loaded = load_classifiers(args.model, runtime, "--model")
    detector = detector_from_args(args, runtime) if detect else None
    models = {f"{model.name} ({Path(path).name})": model for model, path in zip(loaded, args.model)}
    files = model_files(models) if args.json else {}
    readings = card_readings(models)
    cache_dir = dataset_cache_dir(args)
    read = open_dataset(args.dataset, cache_dir)
    if not detect:  # FairFace's padding-1.25 release, read whole, had scored 58 % where --detect gave 96 %
        warn_if_loosely_framed(read)
    digests: dict[str, str | None] = {}  # each file compared by its bytes read once: to choose the split, then here
    split, split_notes = choose_split(args.split, read, models, digests)
    min_age, notes = choose_min_age(args.min_age, models, readings, ages_given(read))
    for note in (*notes, *split_notes):
        say(note)
    samples = evaluation_faces(read, split, min_age)
    say(f"evaluating {split_text(split)} of {read.name} at {read.root}: {len(samples)} labelled "
        f"{'photo' if detect else 'face'}(s) {ages_text(min_age)}")
    if (said := faces_line(detector)) is not None:
        say(said)
    seen, unsure, reads = {}, {}, {}
    for name, model in models.items():
        found = (trained_on(name, model, read, split, samples, reads, cache_dir, readings[name])
                 or copies_trained_on(name, model, read, samples, reads, cache_dir, readings[name], digests))
        if found is not None:
            say(found.line)
            if found.sure:
                seen[name] = found
            elif found.unchecked:
                unsure[name] = found
    # the groups the dataset holds at this age bar, so that one with no face measured here is named
    every = select(read.samples, min_age=min_age, labelled=True)
    done = evaluate_read_models(models, samples, detector, every)
    results, paired, no_finite = done.results, done.paired, done.no_finite
    if not done.read.any():  # tables of nan and exit 0 read as a success
        raise BiasMirrorError(f"none of the {len(samples)} face(s) could be read, so nothing was evaluated",
                              args.dataset.partition(":")[2])
    if detector is not None and done.no_face.any():  # they had been classified whole, or would be dropped unsaid
        note = no_face_note(samples, done.no_face, read.root, detector, int(done.read.sum()))
        if not done.with_face.any():
            raise BiasMirrorError(f"{note}, so nothing was evaluated; --aligned takes each whole image as the face, "
                                  "where the images are aligned face crops", args.dataset.partition(":")[2])
        log.warning("%s", note)
    if detector is not None and (said := several_faces_note(done.faces[done.read])) is not None:
        say(said)
    n_faces = int(done.with_face.sum())
    diverged = [name for name, k in no_finite.items() if k == n_faces]
    if diverged:  # a model trained to NaN: its own failure, not the images' (they had been called unreadable)
        notes = [no_finite_note(name, no_finite[name], n_faces) for name in diverged]
        if len(diverged) == 1:
            raise BiasMirrorError(f"{notes[0]}, so it was not evaluated", models[diverged[0]].path)
        raise BiasMirrorError("; ".join(f"{models[name].path}: {note}" for name, note in zip(diverged, notes))
                              + ", so they were not evaluated")
    for grouping in GROUPINGS:
        say(format_table(results, grouping), end="\n\n")
    for name, r in results.items():
        say(summary_line(name, r)
            + (f"; on faces it was trained on ({seen[name].count_text()} of {len(samples)}): overstated"
               if name in seen else ""))
    for line in (*no_faces_lines(results), *paired_lines(paired)):
        say(line)
    if args.json:
        # which faces were evaluated: the age bar may come from the cards, so the file must say it
        evaluated = {"dataset": args.dataset, "root": read.root, "split": split, "min_age": min_age,
                     # {"n": N, "upper_bound": true} where a composition could not be drawn again, and
                     # "unchecked": the card's dataset, where whether they are could not be checked (it had read {})
                     "faces_trained_on": {name: found.json_value() for name, found in {**seen, **unsure}.items()},
                     # how the faces were taken, as the audit's report says it, and the photos with none found
                     "detect": detect, "detector": detector.name if detector is not None else "aligned",
                     "no_face": [_relative(s.path, read.root) for s, m in zip(samples, done.no_face) if m]}
        text = evaluate_json(results, paired, evaluated, files)
        if stdout is not None:
            put_json(stdout, text)
        else:
            write_evaluation(Path(args.json), text, "the --json report", "what was evaluated is printed above; free "
                             "space, or give another --json, and run it again")
    return 0


def write_evaluation(path: Path, text: str, what: str, kept: str) -> None:
    """``text`` (``evaluation_json``'s) written to ``path`` whole or not at all, its folders made as the other --json
    outputs' are: a full disk had left an empty file and said "No space left on device" of no file. ``what`` and
    ``kept`` as ``inference.writing.writing`` takes them."""
    with writing(path, what, kept, len(text.encode("utf-8"))):
        write_through(path, text)
