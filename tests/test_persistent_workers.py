"""DataLoader workers live for the whole run: started at its first batch, serving every epoch, shut down however the
run ends. Started anew each epoch, spawned ones (macOS's and Windows' default) imported torch again before every
epoch's first batch."""
import multiprocessing
import os
import sys

import pytest
import torch

from training.checkpoints import load_checkpoint
from training.interrupts import StoppedEarly
from training.loop import LoopConfig, run
from training.out_of_memory import OutOfGpuMemory

from .test_classifier_training import assert_workers_train_the_very_model
from .test_loop import ToyTask
from .test_spawn_and_windows_training import spawned_workers  # noqa: F401 (a fixture)

EPOCHS, BATCH, WORKERS = 3, 8, 2


class _SaysItsWorker(ToyTask):
    """Each batch says which process prepared it; the step notes it by epoch."""

    prefetch = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.prepared_by = {}  # epoch → the pids that prepared its batches

    def batch(self, idx, device):
        x, y = super().batch(idx, device)
        return x, y, os.getpid()

    def step(self, batch, ctx):
        x, y, pid = batch
        self.prepared_by.setdefault(ctx.epoch, set()).add(pid)
        return super().step((x, y), ctx)


class _OutOfMemoryAt(_SaysItsWorker):
    def __init__(self, at):
        super().__init__()
        self.at = at

    def step(self, batch, ctx):
        if ctx.step == self.at:
            raise torch.OutOfMemoryError("CUDA out of memory")
        return super().step(batch, ctx)


@pytest.fixture(params=["fork", "spawn"])
def start_method(request):
    """Workers started as on Linux, and as on macOS and Windows."""
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method(request.param, force=True)
    yield request.param
    multiprocessing.set_start_method(before, force=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _workers_of(task):
    return set().union(*task.prepared_by.values())


def _steps_per_epoch():
    return len(ToyTask().indices()) // BATCH


def test_the_workers_are_started_once_a_run_and_serve_every_epoch(tmp_path, start_method):
    here, task = ToyTask(), _SaysItsWorker()
    run(here, LoopConfig(tmp_path / "here", epochs=EPOCHS, batch_size=BATCH))
    run(task, LoopConfig(tmp_path / "workers", epochs=EPOCHS, batch_size=BATCH, workers=WORKERS))
    assert sorted(task.prepared_by) == list(range(EPOCHS))
    assert all(pids == task.prepared_by[0] for pids in task.prepared_by.values()), task.prepared_by
    assert len(task.prepared_by[0]) == WORKERS and os.getpid() not in task.prepared_by[0]
    assert torch.equal(here.net.weight, task.net.weight)  # each epoch's own batches, in its own order
    assert not any(_alive(pid) for pid in _workers_of(task))  # shut down at the run's end


def test_a_run_resumed_mid_epoch_goes_on_with_the_same_workers_and_batches(tmp_path):
    straight = ToyTask()
    run(straight, LoopConfig(tmp_path / "straight", epochs=EPOCHS, batch_size=BATCH))
    stops_after = _steps_per_epoch() + _steps_per_epoch() // 2  # inside the second epoch
    with pytest.raises(StoppedEarly):
        run(_SaysItsWorker(), LoopConfig(tmp_path / "cut", epochs=EPOCHS, batch_size=BATCH, workers=WORKERS,
                                          max_steps=stops_after))
    resumed = _SaysItsWorker()
    run(resumed, LoopConfig(tmp_path / "cut", epochs=EPOCHS, batch_size=BATCH, workers=WORKERS, resume=True))
    assert all(pids == resumed.prepared_by[1] for pids in resumed.prepared_by.values())
    assert torch.equal(straight.net.weight, resumed.net.weight)
    assert load_checkpoint(tmp_path / "cut")["step"] == load_checkpoint(tmp_path / "straight")["step"]


@pytest.mark.parametrize("stop", ["max steps", "ctrl-c", "out of memory"])
def test_the_workers_are_shut_down_however_the_run_ends(tmp_path, stop, start_method):
    """Ended only when the loader was collected, they lived on with the exception that stopped the run, as long as
    its caller held it (here ``stopped``)."""
    mid_run = _steps_per_epoch() + 1  # in the second epoch: the workers served one before
    task, cfg, raised = {
        "max steps": (_SaysItsWorker(), {"max_steps": mid_run}, StoppedEarly),
        "ctrl-c": (_SaysItsWorker(interrupt_at=mid_run), {}, KeyboardInterrupt),
        "out of memory": (_OutOfMemoryAt(mid_run), {}, OutOfGpuMemory),
    }[stop]
    with pytest.raises(raised) as stopped:
        run(task, LoopConfig(tmp_path, epochs=EPOCHS, batch_size=BATCH, workers=WORKERS, **cfg))
    assert len(task.prepared_by) == 2  # the workers served an epoch and began the next
    assert [pid for pid in _workers_of(task) if _alive(pid)] == []


def test_a_classifier_trained_over_epochs_with_a_spawned_worker_is_the_one_trained_without(tmp_path, tiny_utk,
                                                                                          spawned_workers):
    """The same worker serves every epoch: what it prepares in the later ones is still each batch's own."""
    assert_workers_train_the_very_model(tmp_path, tiny_utk, workers=1, epochs=EPOCHS, steps=sys.maxsize)  # all epochs
    assert load_checkpoint(tmp_path / "workers")["epoch"] == EPOCHS
