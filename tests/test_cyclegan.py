"""CycleGAN trainer: domain composition, one smoke-preset step, export parity, card, exact resume, errors."""
from __future__ import annotations

import csv
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

import main
from inference.datasets import Sample
from inference.errors import BiasMirrorError
from inference.models import load_model, read_card
from training.data.compose import compose, product_target
from training.data.domains import ENGINEER_MARGINALS, aging_domains, engineer_domains
from training.loop import load_checkpoint
from training.nets.cyclegan import PRESETS, build_discriminator, build_generator
from training.tasks.cyclegan import stream_pick

from .conftest import make_classifier

RACES = ("White", "Black", "Asian", "Indian", "Others")


def write_utk(root: Path, per_cell: int, ages=(25, 41, 63), genders=(0, 1), races=range(5)) -> Path:
    """A tiny UTKFace-style folder: gradient faces whose brightness follows the race code."""
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 60, 40, dtype=np.float32)[None, :, None]
    i = 0
    for g in genders:
        for r in races:
            for k in range(per_cell):
                base = 60 + 35 * r + rng.integers(0, 20, (40, 40, 3))
                img = np.clip(base + ramp, 0, 255).astype(np.uint8)
                age = ages[k % len(ages)]
                cv2.imwrite(str(root / f"{age}_{g}_{r}_20170101{i:09d}.jpg.chip.jpg"), img)
                i += 1
    return root


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


def train(out: Path, utk: Path, *extra: str) -> int:
    return main.main(["train", "cyclegan", "--dataset", f"utkface:{utk}", "--preset-domains", "engineer",
                      "--preset", "smoke", "--min-domain-size", "4", "--iters-per-epoch", "1",
                      "--n-epochs-decay", "0", "--sample-every", "2", "--eval-faces", "12", "--threads", "1",
                      "--cache", str(out.parent / "cache"), "--out", str(out), *extra])


@pytest.fixture(scope="module")
def trained(tmp_path_factory, utk) -> Path:
    """Two smoke-preset steps, then export with a classifier for ΔP(female)."""
    d = tmp_path_factory.mktemp("run")
    clf = make_classifier(d / "clf.onnx", size=24)
    assert train(d / "run", utk, "--n-epochs", "2", "--classifier", str(clf), "--export-both") == 0
    return d / "run"


def test_engineer_target_is_hit_on_synthetic_labels():
    samples = [Sample(f"{g}{r}{i}.jpg", gender=g, race=r, age=30)
               for g in ("male", "female") for r in RACES for i in range(300)]
    target = product_target(ENGINEER_MARGINALS)
    assert sum(target.values()) == pytest.approx(1.0)
    assert target["male|White"] == pytest.approx(0.67 * 0.48)
    idx, comp = compose(samples, ("gender", "race"), "target", target, seed=0)
    n = len(idx)
    for cell, share in target.items():
        assert abs(comp.achieved_share[cell] - share) <= 1.0 / n + 1e-9, cell  # within one face of rounding


def test_engineer_domains_are_disjoint_and_balanced(utk):
    d = engineer_domains(f"utkface:{utk}", seed=0, min_size=4)
    assert not {s.path for s in d.a.train} & {s.path for s in d.b.train}
    assert len(set(d.a.composition.achieved.values())) == 1  # A is balanced over gender×race
    assert all(s.age >= 18 for s in d.a.train + d.b.train)
    assert d.b.composition.target is not None


def test_aging_domains_by_age(utk):
    d = aging_domains(f"utkface:{utk}", seed=0, min_size=4)
    assert all(20 <= s.age <= 35 for s in d.a.train) and all(s.age >= 60 for s in d.b.train)


def test_empty_or_small_domain_names_counts(tmp_path):
    only_men = write_utk(tmp_path / "men" / "UTKFace", per_cell=6, genders=(0,))
    with pytest.raises(BiasMirrorError, match="counts per cell"):
        engineer_domains(f"utkface:{only_men}", seed=0, min_size=1)  # B needs women
    full = write_utk(tmp_path / "all" / "UTKFace", per_cell=14)
    with pytest.raises(BiasMirrorError, match=r"fewer than --min-domain-size 1000.*counts per cell"):
        engineer_domains(f"utkface:{full}", seed=0, min_size=1000)
    with pytest.raises(BiasMirrorError, match="domain A is empty"):
        aging_domains(f"utkface:{write_utk(tmp_path / 'old' / 'UTKFace', per_cell=2, ages=(70,))}", 0, 1)


def test_networks_shapes():
    cfg = PRESETS["smoke"]
    g, d = build_generator(cfg), build_discriminator(cfg)
    x = torch.randn(2, 3, cfg.size, cfg.size)
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert d(x).shape[:2] == (2, 1)


def test_streams_cover_each_domain_and_differ():
    a = stream_pick(10, 0, 1, np.arange(20))
    assert sorted(a[:10]) == list(range(10)) and sorted(a[10:]) == list(range(10))
    assert not np.array_equal(a[:10], stream_pick(10, 0, 2, np.arange(10)))


def test_training_writes_grid_drift_and_log(trained):
    assert (trained / "samples" / "latest.png").exists()
    grid = cv2.imread(str(trained / "samples" / "step_0000002.png"))
    assert grid.shape[0] > 6 * PRESETS["smoke"].size  # six rows
    rows = list(csv.DictReader(open(trained / "drift.csv")))
    assert rows and rows[0]["step"] == "2" and int(rows[0]["n_faces"]) > 0


def test_export_parity_loads_as_filter_and_card_round_trips(trained):
    path = trained / "filter_A2B.onnx"
    filt = load_model(path, "filter")
    size = PRESETS["smoke"].size
    out = filt.apply(np.full((3, size, size, 3), 128, np.uint8))
    assert out.shape == (3, size, size, 3) and out.dtype == np.uint8
    card = read_card(path)
    assert card.kind == "filter" and card.direction.startswith("A->B")
    assert card.training["iterations"] == 2 and card.training["preset"] == "smoke"
    assert card.training["domain_b"]["composition"]["target"]["male|White"] == pytest.approx(0.67 * 0.48)
    assert "commit" in card.training and "date" in card.training and "train cyclegan" in card.training["command"]
    m = card.metrics
    assert m["parity_max_abs_grey_levels"] <= 1.0
    assert m["cycle_l1"] >= 0 and "mean_abs_delta_ita" in m and "mean_delta_ita" in m
    assert 0 <= m["classifier"]["mean_abs_delta_p_female"] <= 1
    assert m["sample_grid"]["faces"] > 0
    assert read_card(trained / "filter_B2A.onnx").direction.startswith("B->A")
    assert path.stat().st_size < 20 * 2**20


def test_resume_is_exact_to_the_step(tmp_path, utk, trained):
    # `trained` stopped after 2 steps; resume a copy of it to 4, and compare with 4 straight steps.
    import shutil

    resumed = tmp_path / "resumed"
    shutil.copytree(trained, resumed)
    assert train(resumed, utk, "--resume", "--n-epochs", "4") == 0
    straight = tmp_path / "straight"
    assert train(straight, utk, "--n-epochs", "4") == 0
    a, b = load_checkpoint(resumed), load_checkpoint(straight)
    assert a["step"] == b["step"] == 4
    assert a["optimizers"]["G"]["state"][0]["step"] == 4  # Adam's counters continued, not restarted
    assert a["optimizers"]["D"]["state"][0]["step"] == 4
    for name in ("G_A", "D_B", "pool_A"):
        for k, v in a["modules"][name].items():
            assert torch.allclose(v.float(), b["modules"][name][k].float(), atol=1e-6), (name, k)
    assert read_card(resumed / "filter_A2B.onnx").training["iterations"] == 4


def test_help_works(capsys):
    with pytest.raises(SystemExit) as exc:
        main.main(["train", "cyclegan", "--help"])
    assert exc.value.code == 0
    assert "--preset-domains" in capsys.readouterr().out
