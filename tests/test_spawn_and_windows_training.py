"""Training where Linux's defaults do not hold: DataLoader workers started by 'spawn' (macOS's and Windows' default),
a signal module without pthread_sigmask (Windows) and a torch without NCCL (Windows builds)."""
import mmap
import multiprocessing
import signal

import numpy as np
import pytest
import torch
from torch import nn

from training import distributed
from training.epoch_batches import batch_stream
from training.loop import LoopConfig, run

from .test_classifier_training import assert_workers_train_the_very_model
from .test_loop import _Prefetching

FACES, SIDE, BATCH = 24, 4, 4


class _MappedFaces:
    """A prefetching task whose faces are a read-only memory-mapped .npy, as the decoded-face cache gives; its
    batch() also says what the process running it holds."""

    prefetch = True

    def __init__(self, images_file):
        torch.manual_seed(0)
        self.images = np.load(images_file, mmap_mode="r")
        self.net = nn.Linear(SIDE * SIDE * 3, 1)
        self.train_net = nn.Sequential(self.net)  # as a wrapper the step calls (DistributedDataParallel, compiled)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, 1)
        self.config = {}

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def schedulers(self):
        return {"net": self.sched}

    def indices(self):
        return np.arange(len(self.images))

    def batch(self, idx, device):
        x = torch.from_numpy(np.array(self.images[idx], np.float32)).to(device)
        images = self.images
        held = {"mapped from": str(images.filename) if isinstance(images.base, mmap.mmap) else "",
                "training state": ",".join(n for n in ("net", "train_net", "opt", "sched") if hasattr(self, n))}
        return x, held


@pytest.fixture
def faces_file(tmp_path):
    path = tmp_path / "images.npy"
    np.save(path, np.random.default_rng(0).integers(0, 256, (FACES, SIDE, SIDE, 3), dtype=np.uint8))
    return path


@pytest.fixture
def spawned_workers():
    """DataLoader workers started as on macOS and Windows, for this test alone."""
    before = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)
    yield
    multiprocessing.set_start_method(before, force=True)


def _stream(task, tmp_path, workers):
    order = np.random.default_rng(0).permutation(task.indices())
    cfg = LoopConfig(tmp_path / "run", epochs=1, batch_size=BATCH, workers=workers)
    return list(batch_stream(task, order, cfg, torch.device("cpu")))


def test_spawned_workers_map_the_faces_file_again_and_get_no_training_state(tmp_path, faces_file, spawned_workers):
    """Pickled for a spawned worker, a np.memmap had come as a private copy of the whole file, in every worker,
    every epoch; the task came with its model, optimizer and scheduler too."""
    task = _MappedFaces(faces_file)
    here, spawned = _stream(task, tmp_path, 0), _stream(task, tmp_path, 1)
    assert len(spawned) == len(here) == FACES // BATCH
    for (x_here, _), (x_spawned, held) in zip(here, spawned):
        assert torch.equal(x_spawned, x_here)
        assert held == {"mapped from": str(faces_file), "training state": ""}
    assert isinstance(task.images.base, mmap.mmap) and hasattr(task, "net")  # the main process's task is untouched


def test_forked_workers_make_the_batches_spawned_ones_do(tmp_path, faces_file):
    task = _MappedFaces(faces_file)
    here, forked = _stream(task, tmp_path, 0), _stream(task, tmp_path, 1)
    for (x_here, _), (x_forked, held) in zip(here, forked, strict=True):
        assert torch.equal(x_forked, x_here)
        assert held["training state"] == "net,train_net,opt,sched"  # a forked worker shares the parent's task


def test_a_classifier_trained_with_spawned_workers_is_the_one_trained_without(tmp_path, tiny_utk, spawned_workers):
    assert_workers_train_the_very_model(tmp_path, tiny_utk, workers=1, epochs=1, steps=4)


def test_workers_train_where_signals_cannot_be_masked(tmp_path, monkeypatch):
    """Windows' signal module has no pthread_sigmask: every training with workers had crashed at its first batch."""
    monkeypatch.delattr(signal, "pthread_sigmask")
    here, workers = _Prefetching(), _Prefetching()
    run(here, LoopConfig(tmp_path / "here", epochs=2, batch_size=8))
    run(workers, LoopConfig(tmp_path / "workers", epochs=2, batch_size=8, workers=1))
    assert torch.equal(here.net.weight, workers.net.weight)


@pytest.mark.parametrize("device, nccl, backend", [("cuda", True, "nccl"), ("cuda", False, "gloo"),
                                                   ("cpu", True, "gloo")])
def test_the_process_group_uses_nccl_only_where_torch_has_it(monkeypatch, device, nccl, backend):
    """Windows builds of torch have no NCCL: asking for it failed every run under torchrun on a GPU."""
    asked = []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(torch.distributed, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.distributed, "is_nccl_available", lambda: nccl)
    monkeypatch.setattr(torch.distributed, "init_process_group", lambda name, *a, **k: asked.append(name))
    monkeypatch.setattr(torch.distributed, "destroy_process_group", lambda *a, **k: None)
    monkeypatch.setattr(torch.cuda, "set_device", lambda *a, **k: None)
    with distributed.process_group(torch.device(device)):
        pass
    assert asked == [backend]
