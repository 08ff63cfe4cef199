"""The aging recipe's domains by age, found by a review: FairFace's whole "30-39" band had been in the "ages 20-35"
domain (a band's sample is aged by its lower bound), and a dataset without ages (CelebA) had been told only "domain
A is empty: no training faces match it (counts per cell: {})"."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.card_fields import CardNotes
from inference.card_markdown import _domain_lines
from inference.datasets import DatasetRead, Sample
from inference.errors import BiasMirrorError
from training.data import domains
from training.data.domains import AGING_OLD, AGING_YOUNG, aging_domains, engineer_domains

from .conftest import own_pattern

# FairFace's age bands as its label files spell them, each with its bounds (None: no upper bound)
FAIRFACE_BANDS = (("0-2", 0, 2), ("3-9", 3, 9), ("10-19", 10, 19), ("20-29", 20, 29), ("30-39", 30, 39),
                  ("40-49", 40, 49), ("50-59", 50, 59), ("60-69", 60, 69), ("more than 70", 70, None))
SPLITS = ("train", "val", "test")
PER_BAND = 2  # faces per band in each split


def _within(lo: int, hi: int | None, ages: tuple[float, float]) -> bool:
    return ages[0] <= lo and (hi if hi is not None else float("inf")) <= ages[1]


def _straddles(lo: int, hi: int | None, ages: tuple[float, float]) -> bool:
    return lo <= ages[1] and (hi is None or hi >= ages[0]) and not _within(lo, hi, ages)


YOUNG, OLD = AGING_YOUNG, (AGING_OLD, float("inf"))


def _read(samples: list[Sample], name: str) -> DatasetRead:
    return DatasetRead(name, f"/data/{name}", samples)


def _opened(monkeypatch, read: DatasetRead) -> str:
    """The spec that opens ``read``: the recipe reads it as it would a dataset on disk."""
    monkeypatch.setattr(domains, "open_dataset", lambda spec, cache_dir=None: read)
    return f"{read.name}:{read.root}"


def _binned(bands=FAIRFACE_BANDS) -> list[Sample]:
    """Faces as the FairFace reader gives them: aged by their band's lower bound, the band as ``age_bin``."""
    return [Sample(f"{split}/{band}-{i}.jpg", gender=("male", "female")[i % 2], race="White", age=lo,
                   partition=split, age_bin=band)
            for band, lo, _ in bands for split in SPLITS for i in range(PER_BAND)]


def _bands(domain) -> set[str]:
    return {s.age_bin for s in domain.train + domain.val + domain.test}


def test_a_band_is_in_a_domain_only_when_wholly_within_its_ages(monkeypatch):
    """"30-39" straddles 20-35: in neither domain; "0-2" is in none; "more than 70" (no upper bound) is old."""
    d = aging_domains(_opened(monkeypatch, _read(_binned(), "fairface")), seed=0, min_size=1)
    young = {band for band, lo, hi in FAIRFACE_BANDS if _within(lo, hi, YOUNG)}
    straddling = {band for band, lo, hi in FAIRFACE_BANDS if _straddles(lo, hi, YOUNG)}
    assert young and straddling  # the bands test both cases
    assert _bands(d.a) == young
    assert _bands(d.b) == {band for band, lo, hi in FAIRFACE_BANDS if _within(lo, hi, OLD)}
    assert "more than 70" in _bands(d.b) and not {"0-2", *straddling} & (_bands(d.a) | _bands(d.b))
    # the card says which bands a domain holds, and which it left out
    assert set(d.a.notes["age_bands"]) == young and set(d.a.notes["age_bands_left_out"]) == straddling
    # and its Markdown, as doctor --cards and docs/models.md show it
    shown = "\n".join(_domain_lines({"domain_a": {"name": d.a.name, "n_train": len(d.a.train), **d.a.notes}},
                                    CardNotes()))
    assert all(band in shown.split("; left out:")[0] for band in young)
    assert all(f"{band} (" in shown.split("; left out:")[1] for band in straddling)


def test_exact_ages_keep_both_ends_of_each_range(monkeypatch):
    """UTKFace's exact ages: 20 and 35 are young, 60 old, and the card is as it was (no band notes)."""
    lo, hi = AGING_YOUNG
    ages = (lo - 1, lo, hi, hi + 1, AGING_OLD - 1, AGING_OLD, AGING_OLD + 30)
    faces = [Sample(f"{split}/{age}.jpg", gender="male", race="White", age=age, partition=split)
             for age in ages for split in SPLITS]
    d = aging_domains(_opened(monkeypatch, _read(faces, "utkface")), seed=0, min_size=1)
    assert {s.age for s in d.a.train} == {a for a in ages if lo <= a <= hi}
    assert {s.age for s in d.b.train} == {a for a in ages if a >= AGING_OLD}
    assert d.a.notes == {} and d.b.notes == {}


def test_a_domain_left_empty_by_straddling_bands_says_so(monkeypatch):
    straddling = [b for b in FAIRFACE_BANDS if _straddles(b[1], b[2], YOUNG)]
    old = [b for b in FAIRFACE_BANDS if _within(b[1], b[2], OLD)]
    spec = _opened(monkeypatch, _read(_binned(straddling + old), "fairface"))
    named = " and ".join(repr(band) for band, *_ in straddling)
    with pytest.raises(BiasMirrorError, match=rf"domain A is empty: none of the fairface dataset's \d+ "
                                              rf"training faces is of ages {YOUNG[0]}-{YOUNG[1]} .* are in the age "
                                              rf"band\(s\) {re.escape(named)}, "
                                              r"which straddle them and are left out of both domains"):
        aging_domains(spec, seed=0, min_size=1)


def test_a_dataset_without_ages_is_told_the_aging_domains_need_them(monkeypatch):
    """CelebA gives no ages: "domain A is empty: no training faces match it (counts per cell: {})" said nothing of
    why. A folder is told how to give its faces ages, as the engineer recipe tells it."""
    faces = [Sample(f"{split}/{i}.jpg", gender="female", race="pale", partition=split)
             for split in SPLITS for i in range(PER_BAND)]
    trained = sum(s.partition == "train" for s in faces)
    with pytest.raises(BiasMirrorError, match=rf"none of the celeba dataset's {trained} training faces is of ages "
                                              rf".* \({trained} have no age\); the aging domains need each face's age; "
                                              r"use a dataset that gives ages"):
        aging_domains(_opened(monkeypatch, _read(faces, "celeba")), seed=0, min_size=1)
    spec = _opened(monkeypatch, _read(faces, "folder"))
    for recipe in (aging_domains, engineer_domains):
        with pytest.raises(BiasMirrorError, match=r"have no age.*give it an age column \(labels.csv"):
            recipe(spec, seed=0, min_size=1)


def _fairface_folder(root: Path) -> Path:
    """A tiny FairFace copy: PER_BAND faces of each band in each of its label files, each image a pattern of its
    own (images alike would be one photograph to the copy check)."""
    rng = np.random.default_rng(0)
    for part, csv_name in (("train", "fairface_label_train.csv"), ("val", "fairface_label_val.csv")):
        (root / part).mkdir(parents=True)
        rows = []
        for band, *_ in FAIRFACE_BANDS:
            for i in range(PER_BAND * 3):  # FairFace's train file also gives the val split
                name = f"{part}/{len(rows)}.jpg"
                img = np.clip(128 + own_pattern(rng, 40, amplitude=40), 0, 255).astype(np.uint8)
                cv2.imwrite(str(root / name), np.repeat(img, 3, axis=2))
                rows.append([name, band, ("Male", "Female")[i % 2], "White"])
        with open(root / csv_name, "w", newline="") as fh:
            csv.writer(fh).writerows([["file", "age", "gender", "race"], *rows])
    return root


def test_a_fairface_folder_keeps_its_straddling_band_out_of_both_domains(tmp_path):
    d = aging_domains(f"fairface:{_fairface_folder(tmp_path / 'fairface')}", seed=0, min_size=1)
    assert _bands(d.a) == {band for band, lo, hi in FAIRFACE_BANDS if _within(lo, hi, YOUNG)}
    assert _bands(d.b) == {band for band, lo, hi in FAIRFACE_BANDS if _within(lo, hi, OLD)}
    assert d.a.name == f"ages {YOUNG[0]}-{YOUNG[1]}"
