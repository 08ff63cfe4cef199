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

import numpy as np
from tqdm import tqdm

from inference.card import overall_accuracy
from inference.card_fields import CardNotes, card_number
from inference.file_identity import file_hash
from inference.errors import BiasMirrorError
from inference.images import resize_batch
from inference.models import Classifier, load_model
from inference.runtime import RuntimeConfig


@dataclass(frozen=True)
class Teacher:
    path: str
    name: str
    sha256: str
    test_accuracy: float | None

    def to_dict(self) -> dict:
        return {"path": self.path, "name": self.name, "sha256": self.sha256, "test_accuracy": self.test_accuracy}


def open_teachers(paths: list[str], dataset_name: str, dataset_root: str,
                  runtime: RuntimeConfig) -> list[tuple[Teacher, Classifier]]:
    """Load the teachers, refusing one that was not trained on the student's dataset.

    A teacher trained on another copy or split could have seen the student's test
    faces, and its soft labels would leak them into training.
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
            refuse_another_folder(model.card.training.get("dataset_root"), dataset_root, p)
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


def refuse_another_folder(trained_in: str | None, root: str, teacher: str) -> None:
    """A folder's split is its own labels CSV's, not a rule of the file names: a teacher trained on another folder,
    whose labels put this run's test faces in train, had been taken because both datasets were "folder"."""
    # a root its card gives relative (as cards were written before 2026-12-06) is relative to where the teacher was
    # trained, which the card does not say: resolved here, the same teacher was taken from one folder, refused from
    # another
    if trained_in is not None and os.path.isabs(trained_in) and os.path.realpath(trained_in) == os.path.realpath(root):
        return
    where = ("a folder its card does not name" if trained_in is None
             else f"the folder {trained_in}" if os.path.isabs(trained_in)
             else f"a folder its card names only as {trained_in!r}, relative to where it was trained")
    raise BiasMirrorError(f"teacher was trained on {where}, not on {root}: a folder's split is its own labels CSV's, "
                          "so it may have seen this run's test faces and its soft labels cannot be used", teacher)


def teacher_p_female(images: np.ndarray, teachers: list[Classifier], batch: int = 256) -> np.ndarray:
    """Mean P(female) over the teachers and over each image and its mirror (float32, one per image)."""
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
