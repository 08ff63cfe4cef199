"""A CycleGAN's weight average and learning rate, as a review found them (2026-12-07): `--ema 0.999` on a short run
exported a filter that was still mostly its first step's weights, without a word (the average had no warm-up), and
epochs.csv and the end-of-epoch line gave each epoch the next one's learning rate."""
from __future__ import annotations

import csv
import logging
import math
import re
from pathlib import Path

import pytest
import torch

from inference.models import read_card
from training.checkpoints import CHECKPOINT, load_checkpoint
from training.tasks.cyclegan import EMA_START_WEIGHT_LIMIT, EMA_WARMUP, EMA_WARMUP_KEY, linear_decay

from .test_cyclegan import train, write_utk

DECAY = "0.999"  # the README's recipe


@pytest.fixture(scope="module")
def utk(tmp_path_factory) -> Path:
    return write_utk(tmp_path_factory.mktemp("data") / "UTKFace", per_cell=14)


def warmed_up(decay: float, n: int) -> float:
    """The decay of the n-th update after the first, as TensorFlow's ExponentialMovingAverage warms it up."""
    return min(decay, (1 + n) / (10 + n))


def averaged_weights(state: dict, name: str = "ema_G_A") -> dict[str, torch.Tensor]:
    return {k.removeprefix("module."): v for k, v in state["modules"][name].items() if k.startswith("module.")}


def moved_towards(average: dict, weights: dict, decay: float) -> dict:
    return {k: decay * v + (1 - decay) * weights[k] for k, v in average.items()}


def assert_same_weights(got: dict, want: dict) -> None:
    assert got.keys() == want.keys()
    for k, v in want.items():
        assert torch.allclose(got[k], v, atol=1e-6), k


def ema_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING and "--ema" in r.getMessage()]


def test_the_average_warms_up_over_a_short_run_and_a_resume_continues_its_count(tmp_path, utk, caplog):
    """80 updates of a plain 0.999 left 92 % of the average on the first step's weights: the filter exported was
    practically untrained. Each update's decay is now warmed up by the average's update count, which a checkpoint
    keeps: a run resumed after every step averages as the formula says, the count going on, not starting again."""
    run, steps = tmp_path / "run", 3
    trained = []  # G_A after each step, each from the checkpoint of a run stopped there
    with caplog.at_level(logging.WARNING):
        for done in range(steps):
            resume = ("--resume",) if done else ()
            assert train(run, utk, "--n-epochs", str(steps), "--ema", DECAY, "--max-steps", "1", *resume) == 0
            trained.append(load_checkpoint(run)["modules"]["G_A"])
    decay = float(DECAY)
    want = dict(trained[0])  # the first update copies the weights
    for n, weights in enumerate(trained[1:], start=1):
        want = moved_towards(want, weights, warmed_up(decay, n))
    state = load_checkpoint(run)
    assert int(state["modules"]["ema_G_A"]["n_averaged"]) == steps
    assert_same_weights(averaged_weights(state), want)

    start_weight = math.prod(warmed_up(decay, n) for n in range(1, steps))
    assert start_weight <= EMA_START_WEIGHT_LIMIT  # the run is long enough for its average: nothing to warn of
    ema = read_card(run / "filter_A2B.onnx").training["ema"]
    assert ema["updates"] == steps and ema["warmup"] == EMA_WARMUP
    assert ema["start_weight"] == pytest.approx(start_weight, rel=5e-3)
    assert "warning" not in ema and not ema_warnings(caplog)
    assert state["config"][EMA_WARMUP_KEY] == EMA_WARMUP


def test_an_average_still_mostly_its_first_steps_weights_is_warned_of_on_the_console_and_the_card(tmp_path, utk,
                                                                                                   caplog):
    steps, decay = 2, float(DECAY)
    start_weight = math.prod(warmed_up(decay, n) for n in range(1, steps))
    assert start_weight > EMA_START_WEIGHT_LIMIT  # a run this short is still mostly its first step, warm-up or not
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        assert train(run, utk, "--n-epochs", str(steps), "--ema", DECAY) == 0
    ema = read_card(run / "filter_A2B.onnx").training["ema"]
    assert ema["start_weight"] == pytest.approx(start_weight, rel=5e-3)
    assert f"{start_weight:.0%}" in ema["warning"] and "barely trained" in ema["warning"]
    said = ema_warnings(caplog)
    assert len(said) == 1 and ema["warning"] in said[0]


def test_a_checkpoint_begun_before_the_warm_up_resumes_averaging_as_it_began_and_its_card_says_so(tmp_path, utk,
                                                                                                   caplog):
    """An earlier run's checkpoint has no warm-up in its config: it resumes, its average goes on at its plain decay
    (the run it began as), and its card gives the first step's weight that decay leaves, with the warning."""
    run, steps = tmp_path / "run", 2
    assert train(run, utk, "--n-epochs", str(steps), "--ema", DECAY, "--max-steps", "1") == 0
    state = load_checkpoint(run)
    state["config"].pop(EMA_WARMUP_KEY, None)
    torch.save(state, run / CHECKPOINT)
    with caplog.at_level(logging.WARNING):
        assert train(run, utk, "--n-epochs", str(steps), "--resume") == 0
    resumed = load_checkpoint(run)
    decay = float(DECAY)
    assert_same_weights(averaged_weights(resumed),
                        moved_towards(averaged_weights(state), resumed["modules"]["G_A"], decay))
    assert EMA_WARMUP_KEY not in resumed["config"]
    ema = read_card(run / "filter_A2B.onnx").training["ema"]
    assert ema["updates"] == steps and ema["warmup"].startswith("none")
    assert ema["start_weight"] == pytest.approx(decay ** (steps - 1), rel=5e-3)
    assert "start the run again" in ema["warning"] and ema_warnings(caplog)


def epoch_lines(out: str) -> dict[int, str]:
    """The end-of-epoch lines printed, by epoch number: "epoch N: …, lr X"."""
    return {int(m[1]): m[2] for m in re.finditer(r"^epoch (\d+): .*\blr (\S+)$", out, re.MULTILINE)}


def test_each_epoch_logs_the_learning_rate_it_trained_at_through_a_resume_that_lengthens_the_schedule(tmp_path, utk,
                                                                                                       capsys):
    """epochs.csv and the epoch line gave the next epoch's rate: a 1 + 0 run's only epoch, trained at 2e-4, read
    "lr 0"; resumed longer, epochs trained at 2e-4, 2e-4, 1e-4 read 2e-4, 1e-4, 0."""
    run = tmp_path / "run"
    assert train(run, utk, "--n-epochs", "1", "--n-epochs-decay", "1", "--max-steps", "1") == 0
    assert train(run, utk, "--n-epochs", "2", "--n-epochs-decay", "1", "--resume") == 0
    cfg = load_checkpoint(run)["config"]
    factor = linear_decay(cfg["n_epochs"], cfg["n_epochs_decay"])
    epochs = cfg["n_epochs"] + cfg["n_epochs_decay"]
    trained_at = [cfg["lr"] * factor(e) for e in range(epochs)]
    assert len(set(trained_at)) > 1  # the decay is in the run: a rate one epoch off reads another
    with open(run / "epochs.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert [float(r["lr"]) for r in rows] == pytest.approx(trained_at)
    printed = epoch_lines(capsys.readouterr().out)
    assert printed == {e + 1: f"{lr:.4g}" for e, lr in enumerate(trained_at)}
    assert {int(r["epoch"]): f"{float(r['lr']):.4g}" for r in rows} == printed  # numbered as the lines are
