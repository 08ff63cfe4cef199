"""A new trainer written to the loop's Task protocol (a tiny synthetic one here: random tensors, no dataset) gets
what the shipped ones get: a checkpoint its own --resume reads, an exact resume when its step draws with NumPy or
``random``, initial weights fixed by --seed, a refusal of data smaller than one batch, and a resume by a trainer
built otherwise said in one line."""
from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from inference.errors import BiasMirrorError
from training.checkpoints import CHECKPOINT, read_checkpoint, unpickle_checkpoint
from training.loop import LoopConfig, build_task, run, run_for_cli

N, FEATURES = 48, 4


class TinyTask:
    """A linear regression on fixed random data; ``draws`` picks the stream its step draws its noise from."""

    def __init__(self, n: int = N, draws: str = "torch", config: dict | None = None, lr: float = 0.05,
                 with_ema: bool = False, optimizer_name: str = "net", count=int):
        data = torch.Generator().manual_seed(123)  # the data alike in every instance, without the global streams
        self.x = torch.randn(n, FEATURES, generator=data)
        self.y = self.x.sum(1, keepdim=True) + 0.1 * torch.randn(n, 1, generator=data)
        self.draws = draws
        self.net = nn.Linear(FEATURES, 1)
        self.initial = [p.detach().clone() for p in self.net.parameters()]
        self.opt = torch.optim.SGD(self.net.parameters(), lr=lr)
        self.ema = torch.optim.swa_utils.AveragedModel(self.net) if with_ema else None
        self.optimizer_name = optimizer_name
        self.count = count  # the type data_counts() gives its count as
        self.config = {"net": {"kind": "tiny", "features": FEATURES}, **(config or {})}
        self.steps = 0

    def modules(self):
        return {"net": self.net} if self.ema is None else {"net": self.net, "ema": self.ema}

    def optimizers(self):
        return {self.optimizer_name: self.opt}

    def schedulers(self):
        return {}

    def indices(self):
        return np.arange(len(self.x))

    def data_counts(self):
        return {"training samples": self.count(len(self.x))}

    def batch(self, idx, device):
        return self.x[np.sort(idx)].to(device), self.y[np.sort(idx)].to(device)

    def step(self, batch, ctx):
        x, y = batch
        if self.draws == "numpy":
            noise = torch.from_numpy(np.random.standard_normal(x.shape).astype(np.float32))
        elif self.draws == "random":
            noise = torch.tensor([[random.gauss(0, 1) for _ in range(x.shape[1])] for _ in range(x.shape[0])])
        else:
            noise = torch.randn(x.shape)
        self.opt.zero_grad()
        loss = ((self.net(x + 0.1 * noise) - y) ** 2).mean()
        loss.backward()
        self.opt.step()
        self.steps += 1
        return {"loss": loss.item()}

    def end_epoch(self, epoch, ctx):
        return {}


def _cfg(out: Path, **kw) -> LoopConfig:
    return LoopConfig(**{"out_dir": out, "epochs": 2, "batch_size": 8, "device": "cpu", "threads": 1,
                         "checkpoint_every": 2, **kw})


def _weights(task: TinyTask) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in task.net.parameters()])


# 1. NumPy numbers and paths in what a checkpoint keeps


def test_numpy_numbers_and_paths_are_saved_plain_and_the_run_resumes(tmp_path):
    """A Path and an np.float64 in the config, an np.float64 learning rate (from a grid) and NumPy counts: saved as
    they were, the loop's own last.pt was refused by its --resume as one of no trainer of this project."""
    def make():
        lr = np.logspace(-2, -1, 3)[1]
        return TinyTask(config={"data_root": Path("/data/faces"), "lr": lr, "grid": (np.int32(2), np.float32(0.5))},
                        lr=lr, count=np.int64)  # np.sum-style counts are NumPy integers

    out = tmp_path / "run"
    assert run_for_cli(make(), _cfg(out, max_steps=3)) == 0
    state = unpickle_checkpoint(out / CHECKPOINT)  # the resume's own reader: weights only
    assert state["config"]["data_root"] == "/data/faces" and type(state["config"]["data_root"]) is str
    assert state["config"]["lr"] == np.logspace(-2, -1, 3)[1] and type(state["config"]["lr"]) is float
    assert state["config"]["grid"] == (2, 0.5) and type(state["config"]["grid"][0]) is int
    assert type(state["optimizers"]["net"]["param_groups"][0]["lr"]) is float
    assert state["data"] == {"training samples": N} and type(state["data"]["training samples"]) is int
    task = make()
    assert run_for_cli(task, _cfg(out, resume=True)) is None
    assert read_checkpoint(out / CHECKPOINT)["step"] == 2 * N // 8


def test_what_cannot_be_made_plain_is_refused_before_the_first_step_naming_where(tmp_path):
    """An array in the config: refused before any step (not after hours, at the first save), naming the key."""
    task = TinyTask(config={"settings": {"mask": np.zeros(3)}})
    with pytest.raises(BiasMirrorError) as refused:
        run(task, _cfg(tmp_path / "run"))
    said = str(refused.value)
    assert "task.config['settings']['mask'] is a numpy.ndarray" in said, said
    assert str(tmp_path / "run" / CHECKPOINT) in said
    assert task.steps == 0 and not (tmp_path / "run" / CHECKPOINT).exists()


class Marker:
    """An object of a trainer's own, which pickle saves and the weights-only reader refuses."""


def test_an_object_in_an_optimisers_state_is_named_by_its_optimiser(tmp_path):
    task = TinyTask()
    task.opt.param_groups[0]["tag"] = Marker()
    with pytest.raises(BiasMirrorError, match=r"task\.optimizers\(\)\['net'\]\.state_dict\(\)\['param_groups'\]"
                                              r"\[0\]\['tag'\] is a tests\.test_loop_new_trainers_s27\.Marker"):
        run(task, _cfg(tmp_path / "run"))
    assert task.steps == 0


def test_a_checkpoint_the_old_loop_saved_with_numpy_numbers_is_not_called_foreign(tmp_path):
    """What the loop wrote before it made them plain: refused unrun still, but not as a file no trainer wrote."""
    out = tmp_path / "run"
    assert run_for_cli(TinyTask(), _cfg(out, max_steps=3)) == 0
    state = unpickle_checkpoint(out / CHECKPOINT)
    state["config"]["lr"] = np.float64(0.05)
    torch.save(state, out / CHECKPOINT)
    with pytest.raises(BiasMirrorError) as refused:
        read_checkpoint(out / CHECKPOINT)
    said = str(refused.value)
    assert "nothing in it was run" in said and "numpy" in said
    assert "no checkpoint of this project" not in said and "only a last.pt that this project" not in said


# 2. NumPy's and random's streams


@pytest.mark.parametrize("draws", ["numpy", "random"])
def test_a_resume_goes_on_with_the_numpy_and_random_streams_the_run_had(tmp_path, draws):
    whole = build_task(lambda: TinyTask(draws=draws), 0)
    run(whole, _cfg(tmp_path / "whole"))
    assert run_for_cli(build_task(lambda: TinyTask(draws=draws), 0), _cfg(tmp_path / "resumed", max_steps=3)) == 0
    resumed = TinyTask(draws=draws)  # its weights are the checkpoint's
    run(resumed, _cfg(tmp_path / "resumed", resume=True))
    assert resumed.steps == 2 * N // 8 - 3
    assert torch.equal(_weights(whole), _weights(resumed))


def test_a_checkpoint_from_before_the_numpy_stream_was_kept_still_resumes(tmp_path):
    out = tmp_path / "run"
    assert run_for_cli(TinyTask(draws="numpy"), _cfg(out, max_steps=3)) == 0
    state = unpickle_checkpoint(out / CHECKPOINT)
    for own in state["processes"]:
        own.pop("numpy_rng", None), own.pop("python_rng", None)
    torch.save(state, out / CHECKPOINT)
    task = TinyTask(draws="numpy")
    assert run_for_cli(task, _cfg(out, resume=True)) is None
    assert task.steps == 2 * N // 8 - 3


# 3. --seed fixes the initial weights


def test_the_seed_fixes_the_initial_weights_of_a_task_the_loop_builds(tmp_path):
    """A task that seeds nothing itself, given as the function that builds it."""
    built: dict[int, list[TinyTask]] = {0: [], 1: []}

    def maker(seed: int):
        def make() -> TinyTask:
            built[seed].append(TinyTask())
            return built[seed][-1]
        return make

    for i, seed in enumerate((0, 0, 1)):
        run(maker(seed), _cfg(tmp_path / f"run{i}", seed=seed, epochs=1))
    (a, b), (c,) = built[0], built[1]
    assert all(torch.equal(p, q) for p, q in zip(a.initial, b.initial))
    assert torch.equal(_weights(a), _weights(b)) and a.steps == N // 8
    assert not torch.equal(a.initial[0], c.initial[0])  # another seed, other weights: the seed is what fixed them


def test_build_task_gives_the_caller_the_seeded_task(tmp_path):
    a, b = (build_task(TinyTask, 7) for _ in range(2))
    torch.manual_seed(99)  # the stream disturbed between: the seed alone decides
    assert all(torch.equal(p, q) for p, q in zip(a.initial, b.initial))


# 4. fewer samples than one batch


def test_fewer_samples_than_one_batch_are_refused_before_the_first_epoch(tmp_path):
    task = TinyTask(n=5)
    with pytest.raises(BiasMirrorError, match=r"only 5 training sample\(s\), fewer than one batch of --batch-size 8: "
                                              r".*give --batch-size 5 or less"):
        run(task, _cfg(tmp_path / "run"))
    assert not (tmp_path / "run" / CHECKPOINT).exists()


# 5. a resume by a trainer built otherwise


@pytest.mark.parametrize("changed, named", [({"with_ema": True}, "no module state for 'ema'"),
                                            ({"optimizer_name": "G"}, "no optimizer state for 'G'")])
def test_a_resume_by_a_trainer_that_has_changed_names_the_checkpoint_and_what_differs(tmp_path, changed, named):
    out = tmp_path / "run"
    assert run_for_cli(TinyTask(), _cfg(out, max_steps=3)) == 0
    with pytest.raises(BiasMirrorError) as refused:
        run(TinyTask(**changed), _cfg(out, resume=True))
    said = str(refused.value)
    assert said.startswith(f"{out / CHECKPOINT}: ") and named in said, said
    if "optimizer_name" in changed:
        assert "optimizer state for 'net', which the trainer has not" in said
