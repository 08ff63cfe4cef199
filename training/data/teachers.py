"""Soft labels from trained classifiers, for knowledge distillation.

Averaging several of our classifiers (and each over the mirror image) is more
accurate than any one of them; a student trained on those averaged
probabilities gets part of that gain at the cost of one model. The teachers run
through the same ONNX runtime as the app, so what the student learns from is
exactly what the shipped teachers say.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from tqdm import tqdm

from inference.card import overall_accuracy
from inference.card_fields import CardNotes, card_number
from inference.file_identity import file_hash
from inference.errors import BiasMirrorError
from inference.images import resize_batch
from inference.models import Classifier, load_model
from inference.runtime import RuntimeConfig
from training.resume import Where


@dataclass(frozen=True)
class Teacher:
    path: str
    name: str
    sha256: str
    test_accuracy: float | None

    def to_dict(self) -> dict:
        return {"path": self.path, "name": self.name, "sha256": self.sha256, "test_accuracy": self.test_accuracy}


def open_teachers(paths: list[str], dataset_name: str, dataset_root: str, runtime: RuntimeConfig,
                  dataset_moves: Sequence[object] = ()) -> list[tuple[Teacher, Classifier]]:
    """Load the teachers, refusing one that was not trained on the student's dataset.

    A teacher trained on another copy or split could have seen the student's test
    faces, and its soft labels would leak them into training. ``dataset_moves``: the
    student run's own record of its dataset's moves (its config's), whose places hold
    its faces too.
    """
    out = []
    for p in paths:
        model = load_model(p, "classifier", runtime)
        trained_on = model.card.training.get("dataset")
        if trained_on != dataset_name:
            raise BiasMirrorError(
                f"teacher was trained on {trained_on!r}, not {dataset_name!r}: it may have seen this run's test "
                "faces, so its soft labels cannot be used", p)
        if dataset_name == "folder":
            refuse_another_folder(model.card.training, dataset_root, p, dataset_moves)
        if "female" not in model.labels:
            raise BiasMirrorError(f"teacher has labels {list(model.labels)}, without 'female'", p)
        out.append((Teacher(str(p), model.name, file_hash(p), teacher_accuracy(model, p)), model))
    return out


def teacher_accuracy(model: Classifier, path: str) -> float | None:
    """The test accuracy the teacher's card records, as the Markdown reads it ("0.97" is 0.97), for the student's
    card; None where it records none, or one of no type read as a number (warned, naming ``path``): an
    ``overall`` of "x" had stopped `train classifier --distill-from` with an AttributeError. Informational: the
    soft labels are the teacher's outputs, not this figure."""
    acc = overall_accuracy(model.card.metrics) or {}
    return card_number(CardNotes(path), "metrics.overall.accuracy.value", acc.get("value"))


def refuse_another_folder(training: dict, root: str, teacher: str, dataset_moves: Sequence[object] = ()) -> None:
    """A folder's split is its own labels CSV's, not a rule of the file names: a teacher trained on another folder,
    whose labels put this run's test faces in train, had been taken because both datasets were "folder". The same
    folder moved is no other folder: a teacher's card (``training``) that records a move of its faces to or from
    ``root`` is taken, as is one whose folder the student's own run (``dataset_moves``) moved from; compared by
    their roots alone, a teacher trained before its folder was moved had been refused as trained on another."""
    trained_in = training.get("dataset_root")
    if recorded_places(trained_in, training.get("dataset_moves")) & {os.path.realpath(root),
                                                                     *recorded_places(None, dataset_moves)}:
        return
    where = ("a folder its card does not name" if trained_in is None
             else f"the folder {trained_in}" if os.path.isabs(trained_in)
             else f"a folder its card names only as {trained_in!r}, relative to where it was trained")
    moved = (f". If {root} is that folder moved since, the teacher's card must say so: resume the teacher's run there "
             f"(`train classifier --out TEACHER_RUN --resume --dataset folder:{root}`, TEACHER_RUN the --out of its "
             "card's command), which checks its faces against its checkpoint and exports it again with a card that "
             "records the move; or give this run the folder at its old place (a symbolic link there works too)"
             if isinstance(trained_in, str) and os.path.isabs(trained_in) else "")
    raise BiasMirrorError(f"teacher was trained on {where}, not on {root}: a folder's split is its own labels CSV's, "
                          f"so it may have seen this run's test faces and its soft labels cannot be used{moved}",
                          teacher)


def recorded_places(root: object, moves: object) -> set[str]:
    """The folders a run's record says its faces were at, resolved: its ``root`` and each place a resume moved them
    from or to (``moves``: a config's or card's "dataset_moves", each move checked against the run's checkpoint by
    its record of the faces). A root its card gives relative (as cards were written before 2026-12-06) is relative
    to where the teacher was trained, which the card does not say: left out, so the same teacher is not taken from
    one folder and refused from another."""
    places = [root] + [Where(move.get(end)).path for move in (moves if isinstance(moves, (list, tuple)) else ())
                       if isinstance(move, dict) for end in ("from", "to") if isinstance(move.get(end), str)]
    return {os.path.realpath(place) for place in places if isinstance(place, str) and os.path.isabs(place)}


def teacher_p_female(images: Sequence[np.ndarray], teachers: list[Classifier], batch: int = 256) -> np.ndarray:
    """Mean P(female) over the teachers and over each image and its mirror (float32, one per image). ``images`` is
    sliced a batch at a time: give some faces of the memory-mapped cache as ``KeptRows(faces, indices)``, since
    ``faces[indices]`` copies them all into RAM at once (about 8 GB for CelebA's training split at --size 128)."""
    total = np.zeros(len(images), np.float64)
    bar = tqdm(total=len(images) * len(teachers), desc="teacher soft labels", unit="img", mininterval=2)
    for model in teachers:
        col = list(model.labels).index("female")
        for i in range(0, len(images), batch):
            x = resize_batch(images[i: i + batch], model.size)
            for view in (x, np.ascontiguousarray(x[:, :, ::-1])):
                probs, _cam = model.predict(view)
                total[i: i + len(x)] += probs[:, col]
            bar.update(len(x))
    bar.close()
    return (total / (2 * len(teachers))).astype(np.float32)


def soft_targets(labels: np.ndarray, p_female: np.ndarray, weight: float, female_index: int) -> np.ndarray:
    """Per-image class probabilities: (1 − weight)·one-hot label + weight·teacher probabilities."""
    if not 0.0 <= weight <= 1.0:
        raise BiasMirrorError(f"--distill-weight must lie in [0, 1], got {weight}")
    teacher = np.zeros((len(labels), 2), np.float32)
    teacher[:, female_index] = p_female
    teacher[:, 1 - female_index] = 1.0 - p_female
    onehot = np.eye(2, dtype=np.float32)[labels]
    return (1.0 - weight) * onehot + weight * teacher
