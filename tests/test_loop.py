"""The shared loop: an interrupted run resumes exactly where it stopped."""
import csv
import signal
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from training.checkpoints import load_checkpoint
from training.loop import LoopConfig, run, run_for_cli


class ToyTask:
    """Linear regression; Ctrl-C (a real SIGINT to this process) lands inside a chosen step, before its update;
    ``aborts`` more Ctrl-Cs land after that step's update.

    tests/test_distributed.py runs it under torchrun too, through its wrap_for_training() hook.
    """

    def __init__(self, interrupt_at=None, aborts=0):
        torch.manual_seed(0)
        self.net = nn.Linear(3, 1)
        self.train_net = self.net
        self.opt = torch.optim.Adam(self.net.parameters(), lr=0.05)
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, 5)
        rng = np.random.default_rng(0)
        self.x = torch.tensor(rng.normal(size=(64, 3)), dtype=torch.float32)
        self.y = self.x @ torch.tensor([[1.0], [-2.0], [0.5]])
        self.interrupt_at, self.aborts = interrupt_at, aborts
        self.config = {"toy": True}
        self.seen = []
        self.wrapped_as = []

    def modules(self):
        return {"net": self.net}

    def wrap_for_training(self, wrap):
        self.train_net = wrap(self.net)
        # names, not the modules: a reference kept here would keep a DDP wrapper alive past its process group
        self.wrapped_as.append(type(getattr(self.train_net, "_orig_mod", self.train_net)).__name__)

    def optimizers(self):
        return {"net": self.opt}

    def schedulers(self):
        return {"net": self.sched}

    def indices(self):
        return np.arange(64)

    def batch(self, idx, device):
        self.seen.append(tuple(idx.tolist()))
        return self.x[idx], self.y[idx]

    def step(self, batch, ctx):
        hit = self.interrupt_at is not None and ctx.step == self.interrupt_at
        if hit:
            signal.raise_signal(signal.SIGINT)
        x, y = batch
        loss = ((self.train_net(x) - y) ** 2).mean()
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        for _ in range(self.aborts if hit else 0):
            signal.raise_signal(signal.SIGINT)  # weights updated, the loop's position not yet
        self.sched.step()
        return {"loss": float(loss)}

    def end_epoch(self, epoch, ctx):
        return {"w0": float(self.net.weight[0, 0])}


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    straight = ToyTask()
    run(straight, LoopConfig(tmp_path / "a", epochs=3, batch_size=8))
    broken = ToyTask(interrupt_at=11)  # Ctrl-C inside step 12 of 24 (mid-epoch 2): that step is finished first
    # what was there before, not default_int_handler: a suite started in the background inherits SIGINT ignored
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        run(broken, LoopConfig(tmp_path / "b", epochs=3, batch_size=8))
    assert signal.getsignal(signal.SIGINT) is before  # handed back
    state = load_checkpoint(tmp_path / "b")
    assert (state["epoch"], state["batch_in_epoch"], state["step"]) == (1, 4, 12)
    resumed = ToyTask()
    run(resumed, LoopConfig(tmp_path / "b", epochs=3, batch_size=8, resume=True))
    assert broken.seen[:12] + resumed.seen == straight.seen  # same batches, in the same order
    assert torch.allclose(straight.net.weight, resumed.net.weight, atol=1e-6)
    assert load_checkpoint(tmp_path / "b")["step"] == 24
    assert resumed.opt.state_dict()["state"][0]["step"] == straight.opt.state_dict()["state"][0]["step"]


def test_a_second_ctrl_c_aborts_at_once_and_keeps_the_last_whole_checkpoint(tmp_path, capsys):
    """It lands after a step's update and before the loop counts the step: saving then would put updated weights
    at the old position (the batch trained twice on resume), so nothing is saved and the last checkpoint stands."""
    straight = ToyTask()
    run(straight, LoopConfig(tmp_path / "a", epochs=3, batch_size=8))
    broken = ToyTask(interrupt_at=11, aborts=1)
    with pytest.raises(KeyboardInterrupt) as exc:
        run(broken, LoopConfig(tmp_path / "b", epochs=3, batch_size=8))
    assert type(exc.value) is KeyboardInterrupt
    assert "aborted at once: nothing since the last checkpoint was saved" in capsys.readouterr().out
    state = load_checkpoint(tmp_path / "b")
    assert (state["epoch"], state["samples_in_epoch"], state["step"]) == (1, 0, 8)  # the end of epoch 1, whole
    resumed = ToyTask()
    run(resumed, LoopConfig(tmp_path / "b", epochs=3, batch_size=8, resume=True))
    assert broken.seen[:8] + resumed.seen == straight.seen
    assert torch.allclose(straight.net.weight, resumed.net.weight, atol=1e-6)


def test_a_second_ctrl_c_while_the_first_is_checkpointed_says_so_and_leaves_no_part_file(tmp_path, capsys,
                                                                                        monkeypatch):
    """It landed inside the handler of the first, where nothing printed it, and left a partial last.tmp."""
    import training.checkpoints as checkpoints

    real_save = torch.save

    def torn_save(state, path):
        if state["step"] == 12:  # the first Ctrl-C's checkpoint, half written
            Path(path).write_bytes(b"partial")
            raise KeyboardInterrupt
        real_save(state, path)

    monkeypatch.setattr(checkpoints.torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        run(ToyTask(interrupt_at=11), LoopConfig(tmp_path, epochs=3, batch_size=8))
    assert "aborted at once: nothing since the last checkpoint was saved" in capsys.readouterr().out
    assert not (tmp_path / "last.tmp").exists()
    assert load_checkpoint(tmp_path)["step"] == 8  # the end of epoch 1, whole


def test_a_resume_drops_log_rows_written_after_its_checkpoint(tmp_path):
    """A run killed after writing rows resumes from an earlier checkpoint and writes them again (300, 320, 320)."""
    run(ToyTask(), LoopConfig(tmp_path / "a", epochs=3, batch_size=8))
    with pytest.raises(KeyboardInterrupt):
        run(ToyTask(), LoopConfig(tmp_path / "b", epochs=3, batch_size=8, max_steps=12))
    for name in ("log.csv", "epochs.csv"):  # as a kill after step 24 would leave them, its last checkpoint at 12
        (tmp_path / "b" / name).write_text((tmp_path / "a" / name).read_text())
    run(ToyTask(), LoopConfig(tmp_path / "b", epochs=3, batch_size=8, resume=True))
    assert (tmp_path / "b" / "log.csv").read_text() == (tmp_path / "a" / "log.csv").read_text()

    def epochs(run_dir):  # their seconds differ from run to run
        return [(r["step"], r["w0"]) for r in csv.DictReader(open(run_dir / "epochs.csv"))]

    assert epochs(tmp_path / "b") == epochs(tmp_path / "a") and [s for s, _ in epochs(tmp_path / "a")] == ["8", "16", "24"]


def test_a_run_killed_while_an_epochs_end_is_checkpointed_resumes_without_writing_its_row_twice(tmp_path,
                                                                                              monkeypatch):
    """The last checkpoint falls on the epoch's last step, before its end: the epoch's row was written, then the
    run died saving the epoch's end, and the resumed run ended that epoch again."""
    import training.checkpoints as checkpoints

    real_save = torch.save

    def dies_at_the_end_of_epoch_2(state, path):
        if state["epoch"] == 2 and state["samples_in_epoch"] == 0:
            raise RuntimeError("killed")
        real_save(state, path)

    with monkeypatch.context() as m:
        m.setattr(checkpoints.torch, "save", dies_at_the_end_of_epoch_2)
        with pytest.raises(RuntimeError):
            run(ToyTask(), LoopConfig(tmp_path, epochs=3, batch_size=8, checkpoint_every=8))
    state = load_checkpoint(tmp_path)
    assert (state["epoch"], state["samples_in_epoch"], state["step"]) == (1, 64, 16)
    run(ToyTask(), LoopConfig(tmp_path, epochs=3, batch_size=8, checkpoint_every=8, resume=True))
    assert [r["epoch"] for r in csv.DictReader(open(tmp_path / "epochs.csv"))] == ["1", "2", "3"]


class _Prefetching(ToyTask):
    prefetch = True


def test_workers_prepare_the_same_batches_in_the_same_order(tmp_path):
    here, workers = _Prefetching(), _Prefetching()
    run(here, LoopConfig(tmp_path / "a", epochs=2, batch_size=8))
    run(workers, LoopConfig(tmp_path / "b", epochs=2, batch_size=8, workers=2))
    assert torch.allclose(here.net.weight, workers.net.weight, atol=1e-6)  # batch() ran in the workers
    rows = (tmp_path / "b" / "epochs.csv").read_text().splitlines()
    assert "data_wait_share" in rows[0] and len(rows) == 3


def test_default_workers_follow_the_cores_each_process_has():
    from training.epoch_batches import default_workers

    assert default_workers(False, 64, 1) == 0  # no GPU: the step needs the cores
    assert default_workers(True, 16, 1) == 8  # one process on an H100 box: 8, not the 4 that left it waiting
    assert default_workers(True, 16, 8) == 1  # eight processes share the 16 cores
    assert default_workers(True, 2, 1) == 1 and default_workers(True, 1, 1) == 0


def test_compiled_steps_train_like_plain_ones(tmp_path):
    """--compile wraps what the step calls; checkpoints keep the plain module's weights (no _orig_mod. keys)."""
    plain = ToyTask()
    run(plain, LoopConfig(tmp_path / "plain", epochs=2, batch_size=8))
    for mode in ("trace-only", "default", "reduce-overhead"):  # reduce-overhead: no CUDA graphs on a CPU, but its steps are marked
        task = ToyTask()
        run(task, LoopConfig(tmp_path / mode, epochs=2, batch_size=8, compile=mode))
        assert type(task.train_net).__name__ == "OptimizedModule" and task.train_net._orig_mod is task.net
        assert torch.allclose(plain.net.weight, task.net.weight, atol=1e-5), mode
        assert set(load_checkpoint(tmp_path / mode)["modules"]["net"]) == {"weight", "bias"}


def test_every_step_is_marked_as_a_new_iteration_where_cuda_graphs_replay(tmp_path, monkeypatch):
    marks = []
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    for mode, steps in (("default", 0), ("reduce-overhead", 8)):  # 64 points, batch 16, 2 epochs: 8 steps
        marks.clear()
        run(ToyTask(), LoopConfig(tmp_path / mode, epochs=2, batch_size=16, compile=mode))
        assert len(marks) == steps, mode


def test_a_compile_mode_this_device_cannot_run_is_refused_before_any_step(tmp_path):
    from inference.errors import BiasMirrorError

    task = ToyTask()
    with pytest.raises(BiasMirrorError, match="--compile cudagraphs needs a CUDA GPU"):
        run(task, LoopConfig(tmp_path / "r", epochs=1, batch_size=8, compile="cudagraphs", device="cpu"))
    assert task.seen == [] and not (tmp_path / "r" / "last.pt").exists()


def test_a_failed_compile_is_one_line_naming_the_mode_and_what_to_do(tmp_path, monkeypatch):
    from inference.errors import BiasMirrorError
    from training import compile_step

    def no_code_generator(graph, example_inputs):
        raise RuntimeError("No working C++ compiler found")

    monkeypatch.setitem(compile_step.COMPILE_MODES, "broken", {"backend": no_code_generator})
    with pytest.raises(BiasMirrorError) as exc:
        run(ToyTask(), LoopConfig(tmp_path / "r", epochs=1, batch_size=8, compile="broken"))
    text = str(exc.value)
    assert "--compile broken failed at the first step" in text and "No working C++ compiler" in text
    assert "--compile off" in text and "\n" not in text


def test_a_trainer_command_exits_0_at_max_steps_130_on_ctrl_c_and_goes_on_when_done(tmp_path):
    assert run_for_cli(ToyTask(), LoopConfig(tmp_path / "max", epochs=2, batch_size=8, max_steps=3)) == 0
    assert run_for_cli(ToyTask(interrupt_at=2), LoopConfig(tmp_path / "int", epochs=2, batch_size=8)) == 130
    for out in ("max", "int"):  # each checkpointed, so --resume finishes it
        assert load_checkpoint(tmp_path / out)["step"] in (2, 3)
        assert run_for_cli(ToyTask(), LoopConfig(tmp_path / out, epochs=2, batch_size=8, resume=True)) is None
    assert run_for_cli(ToyTask(), LoopConfig(tmp_path / "whole", epochs=1, batch_size=8)) is None


def test_max_steps_as_many_as_are_left_finishes_the_run(tmp_path):
    """Checked after the last step, it had stopped a run with nothing left to train before its last epoch ended:
    "continue with --resume", no epochs.csv row, nothing exported; the resume then trained 0 steps to finish."""
    out = tmp_path / "run"
    assert run_for_cli(ToyTask(), LoopConfig(out, epochs=2, batch_size=8, max_steps=16)) is None  # 2 × 64/8
    assert [r["epoch"] for r in csv.DictReader(open(out / "epochs.csv"))] == ["1", "2"]
    stopped = tmp_path / "stopped"  # at an epoch's end with epochs to go: that epoch is ended, then it stops
    assert run_for_cli(ToyTask(), LoopConfig(stopped, epochs=2, batch_size=8, max_steps=8)) == 0
    assert [r["epoch"] for r in csv.DictReader(open(stopped / "epochs.csv"))] == ["1"]
    assert load_checkpoint(stopped)["step"] == 8


def test_an_epoch_resumed_part_way_logs_its_whole_time(tmp_path, monkeypatch):
    """Its row had counted only the part after the resume: an epoch of 0.0 s after a resume at its last step."""
    import training.loop as loop

    clock = [1000.0]
    monkeypatch.setattr(loop.time, "time", lambda: clock[0])

    class Slow(ToyTask):
        def step(self, batch, ctx):
            clock[0] += 1.0  # each step takes a second
            return super().step(batch, ctx)

    out = tmp_path / "run"
    assert run_for_cli(Slow(), LoopConfig(out, epochs=1, batch_size=8, max_steps=5)) == 0
    assert run_for_cli(Slow(), LoopConfig(out, epochs=1, batch_size=8, resume=True)) is None
    row = next(csv.DictReader(open(out / "epochs.csv")))
    assert float(row["epoch_seconds"]) == 8.0  # 5 steps before the stop, 3 after


def test_a_new_run_starts_its_logs_afresh_where_one_killed_before_its_first_checkpoint_left_rows(tmp_path):
    """No checkpoint, so not a resume: the new run had appended to the old rows (steps 20, 40, 20, 40, 60)."""
    run(ToyTask(), LoopConfig(tmp_path / "a", epochs=3, batch_size=8))
    task = ToyTask()
    task.step_logs = ("drift.csv",)
    (tmp_path / "b").mkdir()
    for name in ("log.csv", "epochs.csv", "drift.csv"):
        (tmp_path / "b" / name).write_text("step,epoch,loss\n20,0,1.0\n40,1,0.5\n")
    run(task, LoopConfig(tmp_path / "b", epochs=3, batch_size=8))
    assert (tmp_path / "b" / "log.csv").read_text() == (tmp_path / "a" / "log.csv").read_text()
    assert [r["step"] for r in csv.DictReader(open(tmp_path / "b" / "epochs.csv"))] == ["8", "16", "24"]
    assert not (tmp_path / "b" / "drift.csv").exists()  # the toy writes none: the old rows went


def test_a_checkpoint_the_disk_refuses_is_one_line_naming_it_and_the_previous_one_stays(tmp_path, monkeypatch):
    """A full disk (or `ulimit -f`) while saving gave torch's own traceback, "RuntimeError: [enforce fail at
    inline_container.cc:672] . unexpected pos …". It is a BiasMirrorError naming the checkpoint, the reason and the
    disk's free space, saying the checkpoint before is whole; and it is."""
    import shutil
    from collections import namedtuple

    import training.checkpoints as checkpoints
    from inference.errors import BiasMirrorError

    out = tmp_path / "run"
    assert run_for_cli(ToyTask(), LoopConfig(out, epochs=2, batch_size=8, max_steps=3)) == 0
    before = (out / "last.pt").read_bytes()

    def full_disk(state, path):
        Path(path).write_bytes(b"part of a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 504896 vs 504788")

    monkeypatch.setattr(checkpoints.torch, "save", full_disk)
    with pytest.raises(BiasMirrorError) as err:
        run(ToyTask(), LoopConfig(out, epochs=2, batch_size=8, resume=True))
    said = str(err.value)
    assert said.startswith(f"{out / 'last.pt'}: could not write the checkpoint (torch's writer: unexpected pos ")
    assert f"the disk holding {out} has " in said and " MB free" in said
    assert "the previous checkpoint last.pt is intact" in said and "continue with --resume" in said
    assert (out / "last.pt").read_bytes() == before and not (out / "last.tmp").exists()
    # a disk with no room left is said to be that, not a size limit
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage(10 * 2**30, 10 * 2**30 - 2**20, 2**20))
    with pytest.raises(BiasMirrorError) as err:
        run(ToyTask(), LoopConfig(out, epochs=2, batch_size=8, resume=True))
    assert f"the disk holding {out} has 1 MB free" in str(err.value) and "ulimit" not in str(err.value)
    # an error of torch's that is not its writer's stays as it was
    monkeypatch.setattr(checkpoints.torch, "save", lambda *_: (_ for _ in ()).throw(RuntimeError("CUDA error: misaligned")))
    with pytest.raises(RuntimeError, match="CUDA error"):
        run(ToyTask(), LoopConfig(out, epochs=2, batch_size=8, resume=True))


def test_files_put_in_place_together_are_not_parted_by_a_ctrl_c(tmp_path, monkeypatch):
    """A Ctrl-C between putting a model in place and its metrics.json had left one beside the other's; it is held
    back until every staged file is in place, then raised, and a stale file goes first."""
    import os

    import inference.writing as writing
    from inference.writing import Staged

    model, record = tmp_path / "model.onnx", tmp_path / "metrics.json"
    model.write_text("old model")
    record.write_text("old metrics")
    staged = Staged()
    staged.path(model).write_text("new model")
    staged.path(record).write_text("new metrics")
    real_replace, calls = os.replace, []

    def ctrl_c_between(src, dst):
        calls.append(Path(dst).name)
        real_replace(src, dst)
        if len(calls) == 1:
            assert not record.exists()  # the stale metrics went first: never the old one beside the new model
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(writing.os, "replace", ctrl_c_between)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite run in the background ignores it
    try:
        with pytest.raises(KeyboardInterrupt):
            staged.put_in_place(stale=(record,))
    finally:
        signal.signal(signal.SIGINT, before)
    assert calls == ["model.onnx", "metrics.json"] and staged.placed
    assert (model.read_text(), record.read_text()) == ("new model", "new metrics")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model.onnx"]


def test_a_stop_held_back_until_an_exports_files_are_in_place_says_they_are(tmp_path, monkeypatch, capsys):
    """A Ctrl-C or SIGTERM during the renames is raised once all are done; the files were in place, whole, but
    "interrupted" was all the user read, as after a stop that had put nothing in place."""
    import os

    import inference.writing as writing
    from training.export import place_with_record, staged_export

    model, record = tmp_path / "model.onnx", tmp_path / "metrics.json"
    real_replace = os.replace

    def ctrl_c_on_the_first(src, dst):
        real_replace(src, dst)
        if Path(dst) == model:
            signal.raise_signal(signal.SIGINT)

    monkeypatch.setattr(writing.os, "replace", ctrl_c_on_the_first)
    before = signal.signal(signal.SIGINT, signal.default_int_handler)  # a suite run in the background ignores it
    try:
        with pytest.raises(KeyboardInterrupt):
            with staged_export("no model was put in place", "run it again") as staged:
                staged.path(model).write_text("new model")
                place_with_record(staged, record, {"n": 1}, "the metrics", "")
    finally:
        signal.signal(signal.SIGINT, before)
    assert capsys.readouterr().err.strip() == f"stopped as the export ended: {model}, {record} in place, whole"
    assert model.read_text() == "new model" and record.exists()


def test_a_training_log_the_disk_refuses_is_one_line_naming_it_and_what_is_kept(tmp_path, monkeypatch):
    """A full disk on log.csv (or a CycleGAN sample grid) ended in an OSError naming no file, nor the checkpoint."""
    import errno

    from inference.errors import BiasMirrorError
    from training.csv_log import CsvLog

    log = CsvLog(tmp_path / "log.csv")
    log.write({"step": 1, "loss": 0.5})
    real_open = open

    class FullDisk:
        def __init__(self, *a, **k):
            self.fh = real_open(*a, **k)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.fh.close()

        def write(self, _):
            raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("builtins.open", FullDisk)
    with pytest.raises(BiasMirrorError) as err:
        log.write({"step": 2, "loss": 0.4})
    assert str(err.value).startswith(f"{tmp_path / 'log.csv'}: could not write the training log (No space left on "
                                     "device)")
    assert "--resume goes on from its last checkpoint once there is room" in str(err.value)


def test_each_process_seeds_within_numpys_range_at_the_largest_seed_allowed():
    """--seed 4294967295 (the largest --help allows) with two processes gave the second 2³², and NumPy's traceback."""
    import numpy as np

    from training.loop import process_seed, seed_everything

    seeds = [process_seed(2**32 - 1, rank) for rank in range(4)]
    assert seeds == [2**32 - 1, 0, 1, 2] and len(set(seeds)) == 4  # each process its own
    for seed in seeds:
        seed_everything(seed)
    assert process_seed(7, 1) == 8 and np.random.randint(10) >= 0
