"""Training out of the machine's memory, as a second look found it (2026-12-10): --cache '' judged by the host's free
memory inside a smaller cgroup (and killed without a word), a DataLoader worker killed by the out-of-memory killer
said as a fault of ours, `train compare` advising a batch size it then refused, the CycleGAN advised workers it never
starts, and a comparison reusing a variant whose logs still counted epochs from 0."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from inference.errors import BiasMirrorError
from training.loop import LoopConfig, run

from tests.test_loop import ToyTask
from tests.test_training_logs_epochs import as_before_the_change, epochs_of

GB = 2**30
WORKER_SIGKILL = "DataLoader worker (pid 26767) is killed by signal: Killed. "
WORKERS_GONE = "DataLoader worker (pid(s) 26767, 26768) exited unexpectedly"


class _Memory:
    def __init__(self, available: int):
        self.available = available


@pytest.fixture
def host_has_plenty(monkeypatch):
    from training.data import cache as cache_module

    monkeypatch.setattr(cache_module.psutil, "virtual_memory", lambda: _Memory(23 * GB))


# --- the memory a cgroup leaves ------------------------------------------------------------------------------------

def _files(folder: Path, **contents: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in contents.items():
        (folder / name.replace("_", ".", 1)).write_text(text + "\n")


def test_a_cgroup_v2_limit_below_the_host_s_free_memory_is_what_is_available(tmp_path, host_has_plenty):
    from training.data.cache import available_memory

    root, own = tmp_path / "cgroup", tmp_path / "self_cgroup"
    own.write_text("0::/job.slice/run.scope\n")
    _files(root / "job.slice" / "run.scope", memory_max=str(700 * 2**20), memory_current=str(400 * 2**20))
    assert available_memory(root, own) == 300 * 2**20
    _files(root / "job.slice", memory_max=str(500 * 2**20), memory_current=str(450 * 2**20))  # a parent's, less
    assert available_memory(root, own) == 50 * 2**20
    for folder in (root / "job.slice", root / "job.slice" / "run.scope"):  # no limit anywhere
        _files(folder, memory_max="max")
    assert available_memory(root, own) == 23 * GB


def test_a_cgroup_v1_limit_and_a_container_s_own_root_are_read(tmp_path, host_has_plenty):
    from training.data.cache import available_memory

    root, own = tmp_path / "cgroup", tmp_path / "self_cgroup"
    # the host's path, not under the container's mount: its own cgroup is the mount's root
    own.write_text("9:name=systemd:/\n4:cpu,memory:/docker/0123abcd\n0::/\n")
    _files(root / "memory", memory_limit_in_bytes=str(300 * 2**20), memory_usage_in_bytes=str(100 * 2**20))
    assert available_memory(root, own) == 200 * 2**20
    _files(root / "memory", memory_limit_in_bytes="9223372036854771712")  # v1's "no limit"
    assert available_memory(root, own) == 23 * GB
    assert available_memory(tmp_path / "none", tmp_path / "none_either") == 23 * GB  # no cgroups at all


def test_cache_in_memory_that_a_cgroup_does_not_leave_room_for_is_refused_before_it_is_allocated(
        tmp_path, monkeypatch, host_has_plenty):
    """np.zeros raises MemoryError only for an obvious overcommit: in a 700 MB cgroup the faces were decoded into
    it until the out-of-memory killer ended the process (rc 137, no message)."""
    from training.data import cache as cache_module

    root, own = tmp_path / "cgroup", tmp_path / "self_cgroup"
    own.write_text("0::/\n")
    _files(root, memory_max=str(700 * 2**20), memory_current=str(400 * 2**20))
    real = cache_module.available_memory
    monkeypatch.setattr(cache_module, "available_memory", lambda: real(root, own))

    def allocated(*args, **kwargs):
        raise AssertionError("allocated although it does not fit")

    shape = (2000, 224, 224, 3)  # 287 MB: under the host's 23 GB, over 90 % of the cgroup's 300 MB left
    with monkeypatch.context() as m:
        m.setattr(cache_module.np, "zeros", allocated)
        with pytest.raises(BiasMirrorError) as caught:
            cache_module._in_memory(shape)
    assert str(caught.value).startswith("the decoded faces do not fit in memory: --cache '' holds every one at once")
    assert "(0.3 GB of RAM is available now)" in str(caught.value)
    assert "too little" in cache_module._in_memory_choice(shape)  # the disk-full advice says so too
    assert "300 MB of RAM is available now, too little" in cache_module._in_memory_choice(shape)
    assert cache_module._in_memory((10, 8, 8, 3)).shape == (10, 8, 8, 3)  # what fits is held as before


# --- a DataLoader worker the out-of-memory killer ended --------------------------------------------------------------

def test_a_dataloader_worker_killed_is_said_as_the_out_of_memory_killer_s_doing(tmp_path):
    from training.out_of_memory import OutOfHostMemory, host_out_of_memory, is_host_out_of_memory

    said = host_out_of_memory(RuntimeError(WORKER_SIGKILL), 64, 4, tmp_path / "last.pt", tmp_path)
    assert isinstance(said, OutOfHostMemory)
    assert str(said).startswith(f"{tmp_path}: a DataLoader worker was killed (SIGKILL), most often by the "
                                "out-of-memory killer (see dmesg), at --batch-size 64 per process with --workers 4")
    assert "--workers 2 (each worker holds batches of its own)" in str(said)
    # any worker's death, a container's too-small /dev/shm included: no SIGKILL is claimed for it
    gone = host_out_of_memory(RuntimeError(WORKERS_GONE), 64, 4, tmp_path / "last.pt", tmp_path)
    assert isinstance(gone, OutOfHostMemory) and "SIGKILL" not in str(gone)
    assert "a DataLoader worker died" in str(gone)
    for other in ("DataLoader worker (pid 26767) is killed by signal: Segmentation fault. ", "shape mismatch"):
        assert not is_host_out_of_memory(RuntimeError(other))


@pytest.mark.parametrize("where", ["step", "after_step", "end_of_epoch"])
def test_a_worker_killed_anywhere_in_the_epoch_ends_in_the_advice(tmp_path, monkeypatch, where):
    """torch's SIGCHLD handler raises it wherever the main process is: the reviewer saw it inside backward(), and
    the loop recognised a host-memory failure only in the step and the batch fetch."""
    import training.loop as loop
    from training.out_of_memory import OutOfHostMemory

    calls = {"n": 0}
    real_any_rank = loop.any_rank

    def killed(*args, **kwargs):
        raise RuntimeError(WORKER_SIGKILL)

    def killed_at_the_epoch_s_end(flag, ctx):
        calls["n"] += 1
        if calls["n"] == 5:  # a batch of 16: 4 steps an epoch, then the check that ends it
            raise RuntimeError(WORKER_SIGKILL)
        return real_any_rank(flag, ctx)

    if where == "step":
        monkeypatch.setattr(loop, "train_step", killed)
    elif where == "after_step":
        monkeypatch.setattr(loop.CsvLog, "write", killed)
    else:
        monkeypatch.setattr(loop, "any_rank", killed_at_the_epoch_s_end)
    with pytest.raises(OutOfHostMemory) as caught:
        run(ToyTask(), LoopConfig(tmp_path, epochs=2, batch_size=16 if where != "after_step" else 1))
    assert "a DataLoader worker was killed (SIGKILL)" in str(caught.value)


def test_another_runtime_error_anywhere_in_the_epoch_is_raised_as_it_was(tmp_path, monkeypatch):
    import training.loop as loop

    error = RuntimeError("shape mismatch")

    def broken(*args, **kwargs):
        raise error

    monkeypatch.setattr(loop, "any_rank", broken)
    with pytest.raises(RuntimeError) as caught:
        run(ToyTask(), LoopConfig(tmp_path, epochs=1, batch_size=16))
    assert caught.value is error


# --- the advice itself -----------------------------------------------------------------------------------------------

def test_a_task_that_does_not_prefetch_at_batch_size_one_is_advised_only_what_it_can_change(tmp_path, monkeypatch):
    """The CycleGAN starts no DataLoader workers, whatever --workers says (up to 8 on a GPU), and trains at batch
    size 1: it had been told "--workers 4" and "a smaller --batch-size", and every such message ended cut off."""
    import training.loop as loop

    task = ToyTask()
    task.config = {"net": {"preset": "small"}}
    assert not getattr(task, "prefetch", False)

    def out_of_ram(*args, **kwargs):
        raise MemoryError()

    monkeypatch.setattr(loop, "train_step", out_of_ram)
    with pytest.raises(BiasMirrorError) as caught:
        run(task, LoopConfig(tmp_path, epochs=1, batch_size=1, workers=8))
    said = str(caught.value)
    assert "at --batch-size 1 per process with --workers 0" in said, said
    assert "--workers 4" not in said and "smaller --batch-size" not in said
    assert "with a smaller --preset (there is no batch smaller than 1)" in said


def test_host_advice_after_a_checkpoint_ends_with_what_a_resume_keeps(tmp_path):
    from training.out_of_memory import host_out_of_memory

    checkpoint = tmp_path / "last.pt"
    checkpoint.write_bytes(b"a checkpoint")
    said = str(host_out_of_memory(MemoryError(), 8, 2, checkpoint, tmp_path, size_option="--preset"))
    assert said.endswith("to train with a smaller --batch-size or --preset, start a new --out: a resume keeps the "
                         "checkpoint's --batch-size and image size (--preset)"), said


# --- train compare ---------------------------------------------------------------------------------------------------

def _variant_folders(out: Path, *begun: str) -> None:
    from training.tasks.compare import VARIANTS

    for name in begun:
        folder = out / VARIANTS[name][0]
        folder.mkdir(parents=True)
        (folder / "last.pt").write_bytes(b"a checkpoint")


def test_compare_out_of_ram_in_a_variant_advises_what_the_comparison_accepts(tmp_path, monkeypatch):
    """The loop's "run the command again with a smaller --batch-size" was refused as not the other variant's."""
    from training.out_of_memory import host_out_of_memory
    from training.tasks import compare

    out = tmp_path / "out"
    _variant_folders(out, "unbalanced")
    balanced = out / compare.VARIANTS["gender-balanced"][0]
    balanced.mkdir()

    def out_of_ram(args):
        raise host_out_of_memory(MemoryError(), 8, 4, balanced / "last.pt", balanced)

    monkeypatch.setattr(compare.classifier, "main", out_of_ram)
    monkeypatch.setattr(compare, "_variant_args", lambda args, out, compose: None)
    with pytest.raises(BiasMirrorError) as caught:
        compare._train_variant(argparse.Namespace(batch_size=8), balanced, "balanced", reuse=False)
    said = str(caught.value)
    assert "run the command again" not in said and "GPU" not in said, said
    assert said.startswith(f"{balanced}: the gender-balanced variant ran out of memory (RAM) on this machine at "
                           "--batch-size 8 per process with --workers 4, before its first checkpoint"), said
    assert ("To train with a smaller --batch-size or --size, start a new --out: the unbalanced variant in this one "
            "keeps --batch-size 8 and --size") in said
    assert said.endswith("the same command here trains the gender-balanced variant at --batch-size 8 again with "
                         "--workers 2 (each worker holds batches of its own), or once more memory is free")


def test_a_reused_variant_trained_before_the_logs_counted_from_one_is_renumbered(tmp_path, capsys):
    from training.tasks import compare

    fresh, old = tmp_path / "fresh", tmp_path / "out" / compare.VARIANTS["unbalanced"][0]
    run(ToyTask(), LoopConfig(fresh, epochs=3, batch_size=4))
    run(ToyTask(), LoopConfig(old, epochs=3, batch_size=4))
    as_before_the_change(old)
    assert [e for _, e in epochs_of(old / "epochs.csv")] == ["0", "1", "2"]
    assert compare._train_variant(argparse.Namespace(), old, "none", reuse=True) == 0
    assert "reusing" in capsys.readouterr().out
    assert epochs_of(old / "epochs.csv") == epochs_of(fresh / "epochs.csv")
    assert (old / "log.csv").read_text() == (fresh / "log.csv").read_text()
    compare._train_variant(argparse.Namespace(), old, "none", reuse=True)  # reused again: not renumbered twice
    assert (old / "log.csv").read_text() == (fresh / "log.csv").read_text()
    assert epochs_of(old / "epochs.csv") == epochs_of(fresh / "epochs.csv")
