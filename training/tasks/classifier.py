"""Trainer for the CAM gender classifiers.

Augmentation keeps skin colour intact: flips, small crops/zooms and at most
±10% brightness/contrast. ``--framing-jitter F`` also zooms out (edge-padded)
and tilts, so crops framed by a live detector, which wander around the aligned
framing by a few percent and tilt with the head, look like training crops.
No hue or saturation jitter and no colour constancy tricks, because the skin
tone a model sees is exactly what the project measures; a model trained on
shifted hues would learn to ignore the very signal we audit (and would look
fairer than it is).
``--erase P`` hides a random patch of a training crop (mid-grey, 2–20 % of the
face) with probability P, so a model cannot lean on one region alone (the
hide-and-seek argument; with it, label smoothing and 30 epochs the ResNet-10s put
more of their CAM on the face: 61–62 % of its positive mass on the face ellipse
before, 64–72 % after over two seeds each, docs/architecture.md);
``--label-smoothing`` softens the targets, since a few labels in UTKFace are
plainly wrong.
"""
from __future__ import annotations

import argparse
import hashlib
import logging
import os
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, update_bn
from torchvision.transforms import v2

from inference.arg_checks import check_cache_dir, check_output_file, data_folders
from inference.cli_common import ALIGNED_KINDS, dataset_cache_dir
from inference.datasets import USER_CACHE, DatasetCache, DatasetRead, Sample, open_dataset, split_of
from inference.datasets.sample import listed_not_found
from inference.datasets.framing import train_remedy, warn_if_loosely_framed
from inference.errors import BiasMirrorError
from inference.runtime import RuntimeConfig
from inference.user_dirs import default_cache_dir
from inference.writing import writing, written_whole
from training.checkpoints import CHECKPOINT, load_checkpoint
from training.data.cache import load_images, unreadable_note
from training.data.compose import Composition, compose
from training.data.teachers import open_teachers, soft_targets, teacher_p_female
from training.distributed import Dist
from training.epoch_batches import KeptRows
from training.evaluate import DEFAULT_MIN_AGE
from training.loop import StepContext, run_for_cli
from training.nets.cam_classifier import CamClassifier, ClassifierConfig
from training.resume import (RUN_OPTIONS_THAT_MAY_CHANGE, Where, anchored, carry_outputs, checked_places,
                             command_line, given_options, model_name, record_resume, refuse_a_dataset_gone,
                             started_here, with_saved_defaults)
from training.run_arguments import check_run_arguments, loop_config_from_args, new_run, run_folder_held
from training.same_data import check_data_recorded
# The command line, kept without torch so that main.py answers --help without loading it; its names are imported
# from here too.
from training.tasks.classifier_args import COMPOSE_BY, add_arguments, block_counts  # noqa: F401

log = logging.getLogger(__name__)
LABELS = ["male", "female"]  # output order of every classifier we train
ERASE_SCALE = (0.02, 0.2)  # share of the crop one --erase patch hides
# The most faces validation sends through the net at once; never more than a training batch, which is known to fit:
# a fixed 256 could run out of the memory a smaller batch fits in.
EVAL_CHUNK = 256
# The averaged weights' batch-norm pass: always this many at once, without gradients (far less memory than a training
# step's), since the statistics it averages depend on the chunks: a smaller one would make the default recipe's
# averaged classifiers differ from those it shipped.
BN_CHUNK = 256


@dataclass
class ClassifierData:
    """Faces of every split, decoded once at the training size."""

    read: DatasetRead
    samples: list[Sample]
    images: np.ndarray | KeptRows  # one face a sample, in their order
    labels: np.ndarray
    split: np.ndarray
    train_idx: np.ndarray
    composition: Composition
    filters: dict = field(default_factory=dict)


@dataclass
class ListedFaces:
    """The labelled faces a run would train and test on, as listed: before any image is decoded."""

    read: DatasetRead
    samples: list[Sample]
    min_age: int | None
    no_age: int = 0  # labelled faces the age bar left out for having no age
    no_gender: int = 0  # images kept without a usable gender label, which training cannot use

    def training_count(self, mode: str, by: list[str], target: dict | None, seed: int) -> int:
        """How many training faces the mix would hold if every listed image decodes: an upper bound, since an
        unreadable image can only shrink a cell and with it the mix. A mix of one gender is refused."""
        pool = [s for s in self.samples if split_of(s) == "train"]
        idx = compose(pool, by, mode, target, seed)[0]
        require_both_genders([pool[i] for i in idx], mode, self.read.root)
        return len(idx)


def require_both_genders(mix: list[Sample], mode: str, where: object) -> None:
    """A gender classifier trained on one gender "reaches" 100 % on a test split of that gender; --compose target
    female:1 had trained and exported one with exit status 0."""
    genders = Counter(s.gender for s in mix)
    if len(genders) < 2:
        found = ", ".join(f"{n} {g}" for g, n in genders.items()) or "none"
        mixed = "the training split holds" if mode == "none" else f"the training mix (--compose {mode}) holds"
        raise BiasMirrorError(f"{mixed} faces of one gender only ({found}): a gender classifier needs both", where)


def require_a_training_split(labelled: list[Sample], read: DatasetRead, min_age: int | None = None) -> None:
    """Refuse faces none of which is in the training split: a labels.csv with split test on every row had been
    called "faces of one gender only (none)", sending its user to look for a gender that was there. Where the
    training split has faces with a gender label that the age bar left out, the bar is named instead: rows of split
    train with no age had been told to give some rows split train."""
    splits = Counter(split_of(s) for s in labelled)
    if splits["train"]:
        return
    barred = [s for s in read.samples if s.gender is not None and split_of(s) == "train"]
    if barred:
        raise BiasMirrorError(f"{min_age_given(min_age)} left no face of the training split to train on: of its "
                              f"{len(barred)} labelled face(s), {barred_in_words(barred, min_age)}; "
                              f"{lower_bar_advice(barred)}", read.root)
    found = ", ".join(f"{splits[name]} {name}" for name in ("val", "test") if splits[name])
    ungendered = sum(s.gender is None and s.partition == "train" for s in read.samples)
    if ungendered:  # they had been told to give some rows split train, which they are
        raise BiasMirrorError(f"the training split is empty: {ungendered} row(s) of split train have no gender label "
                              f"(male/female), and every labelled face is in val or test ({found}): give those rows "
                              "their gender", read.root)
    fix = ("; give some rows of its labels CSV split train, or an empty split, which a hash of the file name decides"
           if read.name == "folder" else "")
    raise BiasMirrorError(f"the training split is empty: every labelled face to train on is in val or test ({found})"
                          f"{fix}", read.root)


def min_age_given(min_age: int | None) -> str:
    """The age bar as the user gave it, or did not ("--min-age 18 (the default)")."""
    return f"--min-age {min_age}" + (" (the default)" if min_age == DEFAULT_MIN_AGE else "")


def lower_bar_advice(barred: list[Sample]) -> str:
    """How to keep ``barred``: a face of no age passes no bar of 0 or more, so only -1 keeps it; a face aged by a
    band (FairFace's) passes a bar up to its band's youngest age, which is named: "a lower --min-age" had sent the
    user of faces 10-19 barred by 15 to try 16 or 17."""
    ages = [s.age for s in barred if s.age is not None]
    if not ages:
        return "pass --min-age -1 to keep every labelled face"
    if not any(s.age_bin for s in barred):
        return "give a lower --min-age, or -1 to keep every labelled face"
    those = "them" if len(ages) == len(barred) else "those with an age"
    return f"--min-age {min(ages)} keeps {those}, and -1 every labelled face"


def barred_in_words(barred: list[Sample], min_age: int | None) -> str:
    """Why the age bar left out ``barred``: "12 have no age, 3 are younger than 18", and a face aged by a band by its
    band and the age it compares as: "39 are in band 10-19, which compares as its youngest age, 10" (its faces may be
    older than the bar, and "younger than 15" had misstated them)."""
    no_age = sum(s.age is None for s in barred)
    younger = sum(s.age is not None and not s.age_bin for s in barred)
    bands = Counter((s.age_bin, s.age) for s in barred if s.age is not None and s.age_bin)
    parts = [f"{no_age} have no age" if no_age else "", f"{younger} are younger than {min_age}" if younger else "",
             *(f"{n} are in band {band}, which compares as its youngest age, {lower}"
               for (band, lower), n in sorted(bands.items(), key=lambda item: item[0][1]))]
    return ", ".join(p for p in parts if p)


def oldest_in_words(read: DatasetRead) -> str:
    """The oldest labelled face, for an age bar that left none: by its band where the dataset ages faces by bands
    (FairFace's "10-19" compares as 10), so that the age said is the one the bar was compared with."""
    aged = [s for s in read.samples if s.gender is not None and s.age is not None]
    if not aged:
        return "no face with a gender label has an age"
    oldest = max(aged, key=lambda s: s.age)
    if oldest.age_bin:
        return (f"the oldest labelled faces are in band {oldest.age_bin}, which compares as its youngest age, "
                f"{oldest.age}")
    return f"the oldest labelled face is {oldest.age}"


def list_faces(dataset: str, min_age: int | None, unknown_age_passes: bool = False, say: bool = True,
               cache_dir: DatasetCache = USER_CACHE) -> ListedFaces:
    """``unknown_age_passes``: the rule of runs begun before 2026-12-06, by which a face of no age passed an age bar
    of 0 or less; their resumes keep it, as their data must stay what it was. ``say``: print what the bar left
    out (a check made before the run that says it again does not). ``cache_dir``: as ``open_dataset``'s."""
    read = open_dataset(dataset, cache_dir)
    if say:  # trained on whole images: faces a third of theirs (FairFace's padding-1.25 release) are said
        warn_if_loosely_framed(read, train_remedy())
    # a face of no known age does not pass an age bar, as in `train evaluate` (it had passed --min-age 0 here)
    labelled = [s for s in read.samples if s.gender is not None and (
        min_age is None or (s.age is not None and s.age >= min_age) or (unknown_age_passes and s.age is None
                                                                          and min_age <= 0))]
    # Checked before ages: an unlabelled folder lacks both, and genders are what it cannot train without.
    if not any(s.gender is not None for s in read.samples):
        fix = ("give the folder a labels.csv with columns file and gender (male or female), optionally race, age, split "
               "and group" if read.name == "folder" else "this dataset's files carry none that could be read")
        raise BiasMirrorError(f"no image has a gender label, and a classifier learns from them: {fix}", read.root)
    if min_age is not None and not any(s.age is not None for s in read.samples):
        raise BiasMirrorError(f"{min_age_given(min_age)} needs ages and this dataset has none: pass --min-age -1 to "
                              "train on every labelled face", read.root)
    if not labelled:  # faces with a gender label exist (checked above): the age bar left none of them
        raise BiasMirrorError(f"--min-age {min_age} left no face to train on ({oldest_in_words(read)}): give a lower "
                              "--min-age, or -1 to keep every labelled face", read.root)
    require_a_training_split(labelled, read, min_age)
    require_both_genders([s for s in labelled if split_of(s) == "train"], "none", read.root)  # before decoding
    kept_unknown = min_age is None or (unknown_age_passes and min_age <= 0)
    no_age = 0 if kept_unknown else sum(s.gender is not None and s.age is None for s in read.samples)
    if no_age and say and Dist.from_env().is_main:  # they had been left out without a word
        print(f"note: {no_age} labelled face(s) have no age and are left out by --min-age {min_age} (--min-age -1 "
              "keeps them); the card counts them")
    return ListedFaces(read, labelled, min_age, no_age, sum(s.gender is None for s in read.samples))


def decode_data(listed: ListedFaces, size: int, mode: str, by: list[str], target: dict | None, seed: int,
                cache_dir: Path | None) -> ClassifierData:
    read, labelled = listed.read, listed.samples
    arr = load_images([s.path for s in labelled], size, cache_dir)
    keep = np.flatnonzero(arr.ok)
    if arr.n_bad:
        log.warning("%s", unreadable_note([s.path for s in labelled], arr.ok))
    samples = [labelled[i] for i in keep]
    images = arr.images if arr.n_bad == 0 else KeptRows(arr.images, keep)  # the file mapping kept (KeptRows)
    split = np.array([split_of(s) for s in samples])
    train_pool = np.flatnonzero(split == "train")
    idx, comp = compose([samples[i] for i in train_pool], by, mode, target, seed, values_from=samples)
    require_both_genders([samples[train_pool[i]] for i in idx], mode, read.root)  # unreadable ones may take one away
    return ClassifierData(
        read=read, samples=samples, images=images,
        labels=np.array([LABELS.index(s.gender) for s in samples]), split=split,
        train_idx=train_pool[np.asarray(idx, int)], composition=comp,
        filters=reading_filters(read, listed.min_age, arr.n_bad, listed.no_age, listed.no_gender),
    )


def run_faces(run_cfg: dict, say: bool = True, cache_dir: DatasetCache = USER_CACHE) -> ListedFaces:
    """The faces a run's config lists, as it listed them: a run begun before ages were required keeps its own rule
    (its faces, or its resume is refused as other data). ``cache_dir``: as ``open_dataset``'s."""
    return list_faces(run_cfg["dataset"], run_cfg["min_age"], unknown_age_passes="age_rule" not in run_cfg, say=say,
                      cache_dir=cache_dir)


def run_mix(run_cfg: dict) -> tuple:
    """The run's composition arguments for decode_data and ListedFaces.training_count: mode, by, target, seed."""
    return run_cfg["compose"], run_cfg["by"], run_cfg["target"], run_cfg["seed"]


def build_data(
    dataset: str, size: int, min_age: int | None, mode: str, by: list[str], target: dict | None,
    seed: int, cache_dir: Path | None,
) -> ClassifierData:
    return decode_data(list_faces(dataset, min_age), size, mode, by, target, seed, cache_dir)


def faces_taken(kind: str, size: int) -> str:
    """How a run takes its faces, for its card (and, for a folder, its console): each image whole, as an aligned
    face; training finds no faces. `train evaluate` finds a folder's faces by default, so a folder run's card had said
    nothing of it, and its test figure and evaluate's default one were measured on other inputs (69.0 % on 126 whole
    photos against 68.3 % on 123 faces found)."""
    whole = f"each image whole, resized to {size}×{size} px, as an aligned face"
    if kind in ALIGNED_KINDS:
        return f"{whole} ({kind}'s images are aligned face crops; `train evaluate` takes them so too)"
    return (f"{whole}: no face is searched for in a {kind}'s photos, so a small face in a large photo is a small part "
            "of what the model learns from and is tested on; `train evaluate` finds the largest face in each photo "
            "unless given --aligned, which measures the same inputs as this run's test figures")


def reading_filters(read: DatasetRead, min_age: int | None, unreadable: int, no_age: int = 0,
                    no_gender: int = 0) -> dict:
    """What reading the dataset left out, for the card: ``read.skipped`` holds the files whose copies disagree
    on their labels, those with unusable labels and a labels CSV's rows naming files the folder lacks, which are
    different warts (the missing files were counted as bad names). An unusable label is a bad name in UTKFace only,
    whose labels are its file names: CelebA's and FairFace's unusable label rows (a Male of "0", a gender
    "unknown") had been counted as bad names too, and are ``unusable_labels_skipped``. Images without a gender
    label, which the card had not counted, are named where there are any (only a folder's labels CSV can leave
    one out)."""
    conflicts = sum(len(group) for group in read.conflicts)
    missing = sum(listed_not_found(why) for _, why in read.skipped)
    unusable = len(read.skipped) - conflicts - missing
    bad_names = unusable if read.name == "utkface" else 0
    return {"min_age": min_age, "no_age_left_out": no_age, "unreadable_skipped": unreadable,
            "bad_names_skipped": bad_names, "listed_not_in_folder": missing,
            "label_conflicts_left_out": conflicts, "copies_counted_once": len(read.copies),
            **({"unusable_labels_skipped": unusable - bad_names} if unusable - bad_names else {}),
            **({"no_gender_left_out": no_gender} if no_gender else {})}


def framing_transforms(size: int, jitter: float) -> list:
    """Random framing: zoom-in crops only (jitter 0), or crop sides within ±jitter of the image
    side on an edge-padded copy, after a tilt of up to 100·jitter degrees."""
    if jitter <= 0:
        return [v2.RandomResizedCrop(size, scale=(0.8, 1.0), ratio=(0.9, 1.1), antialias=True)]
    pad = int(round(size * jitter))
    padded = size + 2 * pad
    return [
        v2.Pad(pad, padding_mode="edge"),
        v2.RandomRotation(100 * jitter, interpolation=v2.InterpolationMode.BILINEAR),
        v2.RandomResizedCrop(size, scale=(((1 - jitter) * size / padded) ** 2, ((1 + jitter) * size / padded) ** 2),
                             ratio=(0.9, 1.1), antialias=True),
    ]


class ClassifierTask:
    """One gender classifier: ``epochs`` of a one-cycle schedule, then optionally ``swa_epochs``
    at the constant ``swa_lr`` whose weights are averaged (SWA, Izmailov et al. 2018).

    The averaging epochs come after the one-cycle ones and leave them as they were,
    so a run with ``swa_epochs`` passes through the very model a run without it ends
    on; the exported model is the average, with batch-norm statistics re-estimated.
    """

    prefetch = True  # batch() only reads the image cache: DataLoader workers may run it
    # An averaging epoch's steps are cut into about this many stretches, a snapshot ending each; rounded to whole
    # steps, an epoch may hold others (15 steps: one every 3, 5 an epoch), so the card counts them instead.
    snapshots_per_epoch = 4

    def __init__(self, data: ClassifierData, net_cfg: ClassifierConfig, run_cfg: dict,
                 targets: np.ndarray | None = None):
        """``run_cfg`` holds epochs, batch_size, lr and optionally framing_jitter, swa_epochs and
        swa_lr; ``targets`` (N×2 class probabilities, rows of the training faces filled) replaces
        the hard labels."""
        self.data = data
        self.targets = targets
        torch.manual_seed(run_cfg.get("seed", 0))  # the loop seeds only after tasks are built: --seed fixes the init too
        self.net = CamClassifier(net_cfg)
        epochs, batch_size, lr = run_cfg["epochs"], run_cfg["batch_size"], run_cfg["lr"]
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=lr, weight_decay=0.05)
        self.steps_per_epoch = max(1, len(data.train_idx) // batch_size)
        self.eval_chunk = min(EVAL_CHUNK, batch_size)
        self.sched = torch.optim.lr_scheduler.OneCycleLR(self.opt, max_lr=lr, total_steps=epochs * self.steps_per_epoch,
                                                         pct_start=0.15)
        self.schedule_epochs = epochs
        self.swa_lr = run_cfg.get("swa_lr", lr / 4)
        self.swa = AveragedModel(self.net) if run_cfg.get("swa_epochs", 0) > 0 else None
        self.total_epochs = epochs + run_cfg.get("swa_epochs", 0)
        s = net_cfg.size
        self.augment = v2.Compose([
            *framing_transforms(s, run_cfg.get("framing_jitter", 0.0)),
            v2.RandomHorizontalFlip(),
            v2.ColorJitter(brightness=0.1, contrast=0.1),  # no hue/saturation: skin colour is the signal we audit
            # After the colour jitter, so the grey patch is the same grey in every face.
            *([v2.RandomErasing(p=run_cfg["erase"], scale=ERASE_SCALE, value=128)] if run_cfg.get("erase") else []),
        ])
        self.seed = run_cfg.get("seed", 0)
        self.config = {"net": net_cfg.to_dict(), "labels": LABELS, **run_cfg}
        self.loss = nn.CrossEntropyLoss(label_smoothing=run_cfg.get("label_smoothing", 0.0))
        self.train_net: nn.Module = self.net  # DistributedDataParallel(net) under torchrun, compiled with --compile

    def wrap_for_training(self, wrap) -> None:
        self.train_net = wrap(self.net)

    def modules(self):
        return {"net": self.net} if self.swa is None else {"net": self.net, "swa": self.swa}

    def final_net(self) -> CamClassifier:
        """What is exported: the weight average where there is one, else the trained net."""
        return self.net if self.swa is None else self.swa.module

    def optimizers(self):
        return {"net": self.opt}

    def schedulers(self):
        return {"net": self.sched}

    def indices(self) -> np.ndarray:
        return self.data.train_idx

    def data_counts(self) -> dict[str, int]:
        return {"training images": len(self.data.train_idx), "images in all splits": len(self.data.samples)}

    def data_faces(self) -> list[tuple[str, ...]]:
        """Each face of every split (those read), kept in checkpoints: its path below the dataset's root, its
        split (a training face left out of the mix apart), its gender and the attributes the mix is composed
        over. Counted alone, one training face of a gender removed and one of the other added passed a resume,
        whose epoch order then pointed at other faces."""
        d, cfg = self.data, self.config
        used = ("gender", *(cfg.get("by") or () if cfg.get("compose", "none") != "none" else ()))
        used = tuple(dict.fromkeys(used))
        mix = set(d.train_idx.tolist())
        return [(os.path.relpath(s.path, d.read.root),
                 "train" if i in mix else "train, not in the mix" if d.split[i] == "train" else str(d.split[i]),
                 *(str(getattr(s, a)) for a in used))
                for i, s in enumerate(d.samples)]

    def image_paths(self) -> list[str]:
        """The file of each face ``data_faces`` lists: a resume checks how they are framed (``same_data``)."""
        return [s.path for s in self.data.samples]

    def batch(self, idx: np.ndarray, device: torch.device):
        rows = np.sort(idx)
        x = torch.from_numpy(np.ascontiguousarray(self.data.images[rows])).permute(0, 3, 1, 2)
        # The augmentation draws from a generator seeded by the batch itself, not from whichever process's
        # random state runs it: a DataLoader worker's is seeded per loader, so a resume mid-epoch (or another
        # --workers) would otherwise augment the same batch differently.
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(np.random.SeedSequence([self.seed, *rows.tolist()]).generate_state(1, np.uint64)[0]))
            x = torch.stack([self.augment(img) for img in x])
        # CrossEntropyLoss takes class indices or class probabilities alike.
        y = torch.from_numpy(self.data.labels[rows] if self.targets is None else self.targets[rows])
        return x.permute(0, 2, 3, 1).to(device), y.to(device)

    def step(self, batch, ctx: StepContext) -> dict[str, float]:
        x, y = batch
        self.net.train()
        averaging = ctx.epoch >= self.schedule_epochs
        if averaging:
            # before the optimiser steps: set after it, the first averaging step had trained at the one-cycle's
            # rate one step past its end (OneCycleLR extrapolates there), its log row saying swa_lr
            self._constant_lr()
        # read before the schedule moves on: read after, log.csv and the bar gave the next step's rate
        trained_at = self.opt.param_groups[0]["lr"]
        with ctx.autocast():
            loss = self.loss(self.train_net(CamClassifier.preprocess(x)), y)
        self.opt.zero_grad(set_to_none=True)
        ctx.scaler.scale(loss).backward()
        ctx.scaler.step(self.opt)
        ctx.scaler.update()
        if averaging:
            self._averaging_step(ctx)
        else:
            # The schedule counts batches of one process, so the same schedule fits any
            # number of processes (and a resume with another number).
            for _ in range(ctx.world):
                self.sched.step()
        return {"loss": float(loss.detach()), "lr": trained_at}

    def _constant_lr(self) -> None:
        """The weight-averaging epochs' learning rate, --swa-lr, in place of the finished one-cycle's."""
        for group in self.opt.param_groups:
            group["lr"] = self.swa_lr

    def _averaging_step(self, ctx: StepContext) -> None:
        """A snapshot joins the average a few times an epoch. The step counter is in
        checkpoints, so a resume keeps the same snapshot cadence."""
        every = max(1, self.steps_per_epoch // (ctx.world * self.snapshots_per_epoch))
        if (ctx.step + 1) % every == 0:
            self.swa.update_parameters(self.net)

    def end_epoch(self, epoch: int, ctx: StepContext) -> dict[str, float]:
        metrics = {"val_accuracy": self.val_accuracy(self.net, ctx.device)}
        if self.swa is not None:  # a column in every row: epochs.csv takes its header from the first
            metrics["val_accuracy_averaged"] = float("nan")
            if epoch == self.total_epochs - 1:
                self.reestimate_batch_norm(ctx.device)
                metrics["val_accuracy_averaged"] = self.val_accuracy(self.swa.module, ctx.device)
        return metrics

    def reestimate_batch_norm(self, device: torch.device) -> None:
        """The averaged weights need their own batch-norm statistics: one pass over the
        training faces, augmented as in training, in a fixed order."""
        order = np.random.default_rng(0).permutation(self.data.train_idx)
        step = BN_CHUNK
        chunks = (self.batch(order[i : i + step], device)[0] for i in range(0, len(order), step))
        was = self.swa.training
        update_bn((CamClassifier.preprocess(x) for x in chunks), self.swa, device)
        self.swa.train(was)

    @torch.no_grad()
    def val_accuracy(self, net: nn.Module, device: torch.device) -> float:
        """The share of validation faces ``net`` labels right; NaN (not measured) when there are none."""
        val = np.flatnonzero(self.data.split == "val")
        if len(val) == 0:
            return float("nan")
        was = net.training
        net.eval()
        correct = 0
        for i in range(0, len(val), self.eval_chunk):
            idx = val[i : i + self.eval_chunk]
            x = torch.from_numpy(np.ascontiguousarray(self.data.images[idx])).to(device)
            pred = net(CamClassifier.preprocess(x)).argmax(1).cpu().numpy()
            correct += int((pred == self.data.labels[idx]).sum())
        net.train(was)
        return correct / len(val)


def parse_target(text: str | None) -> dict[str, float] | None:
    if not text:
        return None
    out = {}
    for part in text.split(","):
        cell, _, share = part.rpartition(":")
        if not cell:
            raise BiasMirrorError(f"--target {text!r}: each part must be CELL:SHARE, e.g. female:0.5,male:0.5")
        try:
            value = float(share)
        except ValueError:
            value = float("nan")  # refused below, as a NaN or a negative share is
        if not 0 <= value < float("inf"):
            raise BiasMirrorError(f"--target {text!r}: the share of {cell.strip()!r} must be a number ≥ 0, got {share!r}")
        if cell.strip() in out:  # the last share had silently replaced the first
            raise BiasMirrorError(f"--target {text!r}: the cell {cell.strip()!r} is given twice; give each cell "
                                  "one share")
        out[cell.strip()] = value
    if not sum(out.values()) > 0:
        raise BiasMirrorError(f"--target {text!r}: the shares add up to 0; give at least one cell a share above 0")
    return out


def parse_by(text: str) -> list[str]:
    by = [b.strip() for b in text.split(",") if b.strip()]
    unknown = [b for b in by if b not in COMPOSE_BY]
    if unknown or not by:
        what = f"{', '.join(map(repr, unknown))} is not an attribute to compose over" if unknown else "names no attribute"
        raise BiasMirrorError(f"--by {text!r}: {what}; choose from {', '.join(COMPOSE_BY)} (comma-separated)")
    return by


def check_batch_fits(n: int, batch_size: int, compose_mode: str, where: object, world: int = 1,
                     listed: bool = False, resumed: bool = False) -> None:
    """The loop trains on full batches only: with fewer training faces than one batch (on every process)
    every epoch would be empty, and an untrained model would be exported as if trained. ``listed``: ``n``
    counts the faces listed, before decoding, so that a dataset too small is refused without the wait."""
    if n >= batch_size * world:
        return
    after = "" if compose_mode == "none" else f" after --compose {compose_mode}"
    processes = "" if world == 1 else f" on each of {world} processes"
    if resumed:  # --batch-size is the checkpoint's, and another would be refused
        fix = (f"a resumed run keeps --batch-size {batch_size}: run it with --nproc_per_node {n // batch_size} or "
               "fewer" if n >= batch_size else "the data is smaller than when the run began")
    else:
        fix = f"give --batch-size {n // world} or less, or a larger dataset" if n >= world else "use a larger dataset"
    raise BiasMirrorError(f"only {n} training face(s){' listed' if listed else ''}{after}, fewer than one batch of "
                          f"--batch-size {batch_size}{processes}: {fix}", where)


def config_from_args(args: argparse.Namespace) -> tuple[ClassifierConfig, dict]:
    if args.distill_weight > 1:
        raise BiasMirrorError(f"--distill-weight is a share of the target: give 0 to 1, not {args.distill_weight:g}")
    target = parse_target(args.target)
    if args.compose == "target" and target is None:
        raise BiasMirrorError("--compose target needs --target shares per cell, e.g. --target female:0.5,male:0.5")
    by = parse_by(args.by)
    if target is not None:
        # 'male' under --by gender,race was "a cell with 0 samples", as if the data lacked it
        wrong = [c for c in target if len(c.split("|")) != len(by)]
        if wrong:
            raise BiasMirrorError(f"--target cell(s) {', '.join(map(repr, wrong))} are not cells of --by {','.join(by)}: "
                                  f"name each by its {len(by)} value(s) joined with '|', as "
                                  f"{'|'.join(by)}:SHARE (e.g. female|White:0.1 for --by gender,race)")
    # an option that cannot apply was trained without, yet the card recorded it as if it had
    given = given_options(args)
    unused = [f"--{o} (a resnet setting) with --arch mobilenet" for o in ("width", "blocks")
              if args.arch == "mobilenet" and o in given]
    unused += [f"--{o} without {needs}" for o, needs, applies in (
        ("target", "--compose target", args.compose == "target"), ("swa-lr", "--swa-epochs", args.swa_epochs > 0),
        ("distill-weight", "--distill-from", bool(args.distill_from))) if o.replace("-", "_") in given and not applies]
    if unused:
        raise BiasMirrorError("; ".join(unused) + ": it would not be used; leave it out or give what it needs")
    net = ClassifierConfig(arch=args.arch, size=args.size, width=args.width,
                           blocks=args.blocks)
    data = {
        "dataset": args.dataset, "min_age": None if args.min_age < 0 else args.min_age, "compose": args.compose,
        # not for the second variant of a comparison begun before the rule: both must train on the same faces
        **({} if getattr(args, "legacy_age_rule", False) else {"age_rule": "known ages only"}),
        "by": by, "target": target, "seed": args.seed,
        "epochs": args.epochs, "batch_size": args.batch_size, "lr": args.lr, "framing_jitter": args.framing_jitter,
        "erase": args.erase, "label_smoothing": args.label_smoothing,
        "swa_epochs": args.swa_epochs, "swa_lr": args.swa_lr if args.swa_lr is not None else args.lr / 4,
        "distill_from": args.distill_from, "distill_weight": args.distill_weight if args.distill_from else 0.0,
        "command": command_line(args), **started_here(),
    }
    moves = getattr(args, "comparison_moves", None)  # a comparison's variant started after its dataset moved
    if moves:  # before this variant's first step: the card says where the comparison began
        data["dataset_moves"] = [{**move, "at_step": 0} for move in moves]
    return net, data


def check_same_teachers(run_cfg: dict, teachers: list, checkpoint: Path) -> None:
    """A resumed run's teachers are the files it started with: one replaced at its path had been read again, its
    targets silently recomputed, and the card named only the new teacher."""
    # by position: the paths were anchored since (a relative one never matched the one recorded)
    changed = [now.path for now, then in zip(teachers, run_cfg.get("teachers") or []) if now.sha256 != then["sha256"]]
    if changed:
        raise BiasMirrorError(f"the teacher(s) {', '.join(changed)} changed since this run began (their content is "
                              "not the one its soft labels came from): restore them, or start a new --out", checkpoint)


def training_faces_key(data: ClassifierData) -> str:
    """A hash of the training faces in order (their paths below the dataset's root) and of the size they were
    decoded at: the teachers' cached probabilities are those of these faces. Checked by their count alone, a folder
    left by a run killed before its first checkpoint gave another seed's or mix's faces its soft labels."""
    digest = hashlib.sha256(repr(data.images.shape[1:]).encode())
    for i in data.train_idx:
        digest.update(os.path.relpath(data.samples[i].path, data.read.root).encode("utf-8", "surrogateescape") + b"\0")
    return digest.hexdigest()


def distillation_targets(data: ClassifierData, run_cfg: dict, out: Path) -> np.ndarray | None:
    """Soft targets for the training faces from ``run_cfg["distill_from"]``, or None.

    The teachers' probabilities are kept in the run folder, so a resume does not
    rerun them and keeps training on the very targets it started with.
    """
    paths = run_cfg.get("distill_from") or []
    if not paths:
        return None
    teachers = open_teachers(paths, data.read.name, data.read.root, RuntimeConfig(provider="cpu"),
                             run_cfg.get("dataset_moves") or [])
    run_cfg["teachers"] = [t.to_dict() for t, _ in teachers]
    cache = out / "teacher_p_female.npz"
    train, shas, faces = data.train_idx, np.array([t.sha256 for t, _ in teachers]), training_faces_key(data)
    saved = saved_teacher_targets(cache)
    if (saved is not None and {"p", "teachers", "faces"} <= saved.keys() and np.array_equal(saved["teachers"], shas)
            and str(saved["faces"]) == faces and len(saved["p"]) == len(train)):
        p_train = saved["p"]
    else:  # first start, or a folder left by other teachers or by a run on other faces
        p_train = teacher_p_female(KeptRows(data.images, train), [m for _, m in teachers])
        if Dist.from_env().is_main:
            out.mkdir(parents=True, exist_ok=True)
            # whole or not at all: a write cut short (a full disk, Ctrl-C) had left a file every later run and
            # resume of this folder stopped on with a BadZipFile traceback
            kept = "what the run saved before is kept; once there is room, run the same command again"
            with writing(cache, "the teachers' soft labels", kept), written_whole(cache) as part, \
                    open(part, "wb") as fh:
                np.savez(fh, p=p_train, teachers=shas, faces=faces)
    agree = float(((p_train >= 0.5) == (data.labels[train] == LABELS.index("female"))).mean())
    if Dist.from_env().is_main:  # every process computes it alike: under torchrun it was printed once per rank
        print(f"teachers agree with the training labels on {agree:.1%} of {len(train)} faces")
    run_cfg["teacher_label_agreement"] = round(agree, 4)
    p_all = np.zeros(len(data.labels), np.float32)
    p_all[train] = p_train
    return soft_targets(data.labels, p_all, run_cfg["distill_weight"], LABELS.index("female"))


def saved_teacher_targets(cache: Path) -> dict[str, np.ndarray] | None:
    """The teachers' probabilities a run kept in ``cache``, or None where there are none or they cannot be read
    (a file damaged or cut short: they are computed again, as on a first start)."""
    if not cache.exists():
        return None
    try:
        with np.load(cache, allow_pickle=False) as saved:
            return {name: saved[name] for name in ("p", "teachers", "faces") if name in saved.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        log.warning("%s cannot be read (%s): the teachers' soft labels are computed again", cache, exc)
        return None


# What a resume keeps (given on its command line, each must be the checkpoint's), as its config holds it.
RESUME_SETTINGS = {
    "dataset": lambda c: Where(c.get("dataset")),
    "arch": lambda c: c["net"]["arch"],
    "size": lambda c: c["net"]["size"],
    "width": lambda c: c["net"]["width"],
    "blocks": lambda c: list(c["net"]["blocks"]),
    "min_age": lambda c: -1 if c.get("min_age") is None else c["min_age"],
    "compose": "compose", "by": "by", "target": "target", "seed": "seed",
    "epochs": "epochs", "batch_size": "batch_size", "lr": "lr",
    "framing_jitter": ("framing_jitter", 0.0), "swa_epochs": ("swa_epochs", 0), "swa_lr": "swa_lr",
    "distill_from": lambda c: [Where(p) for p in c.get("distill_from") or []],
    "distill_weight": ("distill_weight", 0.0),
    "erase": ("erase", 0.0), "label_smoothing": ("label_smoothing", 0.0),
}
MAY_CHANGE_ON_RESUME = RUN_OPTIONS_THAT_MAY_CHANGE | {"export_to", "no_dataset_cache"}


PATH_SETTINGS = ("dataset", "distill_from")


def _saved_as_args(saved: dict) -> dict:
    """The options the settings below depend on, as the command line would give them to make ``saved``."""
    target = saved.get("target")
    return {"dataset": saved.get("dataset"), "distill_from": list(saved.get("distill_from") or []),
            "swa_epochs": saved.get("swa_epochs", 0),
            "compose": saved.get("compose", "none"), "by": ",".join(saved.get("by") or ["gender"]),
            "target": ",".join(f"{k}:{v!r}" for k, v in target.items()) if target else None, "lr": saved["lr"]}


def requested_config(args: argparse.Namespace, saved: dict | None = None) -> dict:
    """The config a new run with these arguments would have (as checkpoints hold it); with ``saved``, the options
    not given are the checkpoint's."""
    net, data = config_from_args(args if saved is None else with_saved_defaults(args, _saved_as_args(saved)))
    return {"net": net.to_dict(), "labels": LABELS, **data}


def checked_settings(args: argparse.Namespace, checkpoint: Path, state: dict | None = None, **how) -> dict:
    """The checkpoint's config (its paths anchored where the run started), after refusing any setting given on
    the command line that differs from it (``how``: refuse_changed_settings' only=, keeps= and advice=). ``state``:
    the checkpoint, where it has been read already. A --dataset of the checkpoint's kind at another place, with
    every other setting the checkpoint's, is no changed setting: the config returned reads it there, the move
    recorded (``moved_to``), and the faces it holds must be the checkpoint's (the loop's ``check_same_data``)."""
    state = load_checkpoint(checkpoint, "classifier") if state is None else state
    saved = anchored(state["config"], PATH_SETTINGS)
    return checked_places(args, RESUME_SETTINGS, requested_config(args, saved), saved, checkpoint,
                          int(state.get("step", 0)), **how)


def resumed_config(args: argparse.Namespace, checkpoint: Path) -> tuple[ClassifierConfig, dict, str | None]:
    """The checkpoint's settings, after refusing any given on the command line that differ from them (and a checkpoint
    that keeps no record of its data), and this command where the run has trained to its end (it only exports: the
    card's "exported_by", not a resume)."""
    state = load_checkpoint(checkpoint, "classifier")
    saved = checked_settings(args, checkpoint, state)
    check_data_recorded(state, checkpoint)
    run_cfg = {k: v for k, v in saved.items() if k not in ("net", "labels")}
    epochs = run_cfg["epochs"] + run_cfg.get("swa_epochs", 0)
    exported_by = record_resume(run_cfg, args, state, epochs)
    return ClassifierConfig.from_dict(saved["net"]), run_cfg, exported_by


def main(args: argparse.Namespace) -> int:
    out, _ = check_run_arguments(args)  # the cache folder too, checked again once the run's own is known
    with run_folder_held(out, "train classifier", new_run(args)):
        return _train(args, out)


# What a plain --resume keeps of the command that started the run. It had dropped them all: no --export-to copy,
# every face decoded again into the default cache instead of the run's --cache, and a --threads 1 run went on with
# PyTorch's default thread count, whose sums round otherwise (not the uninterrupted run's weights). --threads is per
# process under torchrun, and kept as given. --no-dataset-cache too: a run meant to leave nothing of its dataset in
# the user's cache must not write it there once continued.
CARRIED_PATHS = ("export_to", "cache")
CARRIED = (*CARRIED_PATHS, "threads", "no_dataset_cache")


def carried_outputs(args: argparse.Namespace, run_cfg: dict) -> Path | None:
    """``CARRIED`` into ``args`` from the checkpoint where not given again (said where it is news); returns the
    cache folder to decode into, checked again: it may be the checkpoint's, which check_run_arguments did not see."""
    default_cache = str((default_cache_dir() / "faces").resolve())  # add_cache_argument's default is no news
    taken = carry_outputs(args, run_cfg, CARRIED, paths=CARRIED_PATHS, unremarkable={"cache": default_cache})
    if args.export_to and "export_to" not in given_options(args):
        for folder in data_folders(run_cfg) or [None]:  # checked when the run began; the folder may be gone since
            args.export_to = str(check_output_file(args.export_to, "--export-to", folder))
    if taken and Dist.from_env().is_main:
        print(f"as the run last ran: {', '.join(taken)} (give them again to change them; --export-to '' makes no "
              "copy, --cache '' decodes without a cache, --with-dataset-cache keeps the dataset's digests again)")
    return check_cache_dir(args.cache)


def _train(args: argparse.Namespace, out: Path) -> int:
    exported_by = None
    if args.resume:
        net_cfg, run_cfg, exported_by = resumed_config(args, out / CHECKPOINT)
        refuse_a_dataset_gone(args, run_cfg)
    elif args.dataset is None:
        raise BiasMirrorError("--dataset KIND:PATH is needed to start a run (e.g. utkface:../shared/datasets/utkface); "
                              "with --resume the checkpoint's is used")
    else:
        net_cfg, run_cfg = config_from_args(args)
    cache = carried_outputs(args, run_cfg)
    if run_cfg.get("distill_from"):  # a wrong teacher is refused now, not after minutes of decoding the faces
        kind, _, path = run_cfg["dataset"].partition(":")
        teachers = open_teachers(run_cfg["distill_from"], kind, str(Path(path).expanduser()),
                                 RuntimeConfig(provider="cpu"), run_cfg.get("dataset_moves") or [])
        check_same_teachers(run_cfg, [t for t, _ in teachers], out / CHECKPOINT)
        if args.export_to:  # the checkpoint's teachers too, which a plain --resume does not name
            for path in run_cfg["distill_from"]:
                check_output_file(args.export_to, "--export-to", path)
    mix = run_mix(run_cfg)
    world = Dist.from_env().world
    listed = run_faces(run_cfg, cache_dir=dataset_cache_dir(args))
    check_batch_fits(listed.training_count(*mix), run_cfg["batch_size"], run_cfg["compose"], listed.read.root, world,
                     listed=True, resumed=args.resume)
    data = decode_data(listed, net_cfg.size, *mix, cache)
    check_batch_fits(len(data.train_idx), run_cfg["batch_size"], run_cfg["compose"], data.read.root, world,
                     resumed=args.resume)
    if Dist.from_env().is_main:
        print(f"training on {len(data.train_idx)} faces; composition over {'×'.join(data.composition.by)}:")
        print(data.composition.table())
        if data.read.name not in ALIGNED_KINDS:  # evaluate finds faces in these photos: said before training on them
            print(f"note: {faces_taken(data.read.name, net_cfg.size)}")
        if not (data.split == "val").any():
            print("no faces in the val split: val_accuracy is not measured (nan in epochs.csv and the log, "
                  "null in the card)")
    targets = distillation_targets(data, run_cfg, out)
    name = model_name(args, run_cfg, out)
    task = ClassifierTask(data, net_cfg, run_cfg, targets)
    loop_cfg = loop_config_from_args(args, out, task.total_epochs, run_cfg["batch_size"], run_cfg["seed"])
    status = run_for_cli(task, loop_cfg)
    if status is not None:
        return status  # stopped, or not rank 0 (which evaluates and exports)
    from training.tasks.classifier_report import finish  # lazy: export pulls in onnx

    finish(task, out, name, args.export_to, exported_by)
    return 0
