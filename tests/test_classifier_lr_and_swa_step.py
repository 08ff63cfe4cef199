"""The classifier's step says the learning rate it trained at (log.csv and the progress bar give what it returns), and
the first weight-averaging step trains at --swa-lr, not at the one-cycle's rate one step past its end."""
import pytest
import torch

from training.loop import StepContext
from training.nets.cam_classifier import ClassifierConfig
from training.tasks.classifier import ClassifierTask, build_data


@pytest.fixture
def averaged_task(tmp_path, tiny_utk):
    """A tiny classifier task of one one-cycle epoch and one averaging epoch at its own --swa-lr."""
    data = build_data(f"utkface:{tiny_utk}", 32, 18, "none", ["gender"], None, 0, tmp_path / "cache")
    run_cfg = {"epochs": 1, "batch_size": 16, "lr": 1e-3, "swa_epochs": 1, "swa_lr": 3e-4}
    return ClassifierTask(data, ClassifierConfig(size=32, width=8), run_cfg)


def rates_trained_and_said(task: ClassifierTask) -> list[tuple[float, float, int]]:
    """Each step of the task's epochs run in order: (the rate the optimiser stepped at, the rate the step returned,
    its epoch)."""
    stepped_at: list[float] = []
    task.opt.register_step_pre_hook(lambda opt, *_: stepped_at.append(opt.param_groups[0]["lr"]))
    cpu = torch.device("cpu")
    ctx = StepContext(device=cpu, autocast=lambda: torch.autocast("cpu", enabled=False),
                      scaler=torch.amp.GradScaler("cpu", enabled=False))
    out = []
    for epoch in range(task.total_epochs):
        ctx.epoch = epoch
        for i in range(task.steps_per_epoch):
            rows = task.indices()[i * 16:(i + 1) * 16]
            said = task.step(task.batch(rows, cpu), ctx)["lr"]
            ctx.step += 1
            out.append((stepped_at[-1], said, epoch))
    return out


def test_each_step_says_the_learning_rate_it_trained_at(averaged_task):
    """The one-cycle scheduler was stepped before the rate was read: each row gave the next step's rate."""
    steps = rates_trained_and_said(averaged_task)
    assert len({said for _, said, _ in steps}) > 2  # the one-cycle's rate changes from step to step
    wrong = [(i, trained, said) for i, (trained, said, _) in enumerate(steps) if said != trained]
    assert not wrong, f"(step, trained at, said): {wrong[:3]}"


def test_the_first_averaging_step_trains_at_the_swa_lr(averaged_task):
    """--swa-lr was set after the first averaging step's optimiser step: that step trained at the one-cycle's rate one
    step past its end (which OneCycleLR extrapolates), its log row saying swa_lr."""
    steps = rates_trained_and_said(averaged_task)
    averaging = [trained for trained, _, epoch in steps if epoch >= averaged_task.schedule_epochs]
    assert averaging and averaging == [averaged_task.swa_lr] * len(averaging)
