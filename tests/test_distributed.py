"""DDP smoke tests: two CPU processes over gloo, started by torchrun as a user would."""
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from inference.errors import BiasMirrorError
from training.checkpoints import load_checkpoint
from training.epoch_batches import epoch_order
from training.interrupts import StoppedEarly
from training.loop import LoopConfig, amp_dtype, run

ROOT = Path(__file__).resolve().parents[1]

TOY = textwrap.dedent('''
    import sys
    from pathlib import Path
    import torch
    from tests.test_loop import ToyTask
    from training.distributed import Dist
    from training.loop import LoopConfig, run

    out, bs, compile = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] if len(sys.argv) > 3 else "off"
    task = ToyTask()  # its DDP result must equal one process at twice the batch
    run(task, LoopConfig(out, epochs=2, batch_size=bs, device="cpu", threads=1, compile=compile))
    # compiled around DDP (under torchrun), so the all-reduce stays out of the graphs; and under torchrun the
    # wrappers are released before the process group goes (torch 2.14 aborts at exit otherwise, now and then)
    ddp = Dist.from_env().world > 1
    assert task.wrapped_as == (["DistributedDataParallel", "Linear"] if ddp else ["Linear"] if compile != "off" else [])
    torch.save(task.net.state_dict(), out / f"rank{Dist.from_env().rank}.pt")
''')


# Each process draws its own noise (as dropout does) and keeps a memory of its own (as a CycleGAN's image pools):
# a resume under torchrun must give every process its own back, or it is not the run an uninterrupted one makes.
NOISY = textwrap.dedent('''
    import sys
    from pathlib import Path
    import torch
    from tests.test_loop import ToyTask
    from training.distributed import Dist
    from training.loop import LoopConfig, run

    class Memory(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("seen", torch.zeros(3))

    class Noisy(ToyTask):
        per_process_modules = ("memory",)

        def __init__(self):
            super().__init__()
            self.memory = Memory()

        def modules(self):
            return {"net": self.net, "memory": self.memory}

        def batch(self, idx, device):
            x, y = super().batch(idx, device)
            return x + 0.1 * torch.randn_like(x) + 0.01 * self.memory.seen, y

        def step(self, batch, ctx):
            self.memory.seen += batch[0].mean(0)
            return super().step(batch, ctx)

    out, resume = Path(sys.argv[1]), sys.argv[2] == "resume"
    max_steps = int(sys.argv[3]) if len(sys.argv) > 3 else None
    task = Noisy()
    try:
        run(task, LoopConfig(out, epochs=3, batch_size=4, device="cpu", threads=1, resume=resume, max_steps=max_steps))
    except KeyboardInterrupt:
        sys.exit(0)
    torch.save({"net": task.net.state_dict(), "seen": task.memory.seen}, out / f"rank{Dist.from_env().rank}.pt")
''')


def torchrun(*args: str, n: int = 2, timeout: int = 240) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *args]
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc


def test_shards_cover_the_permutation_prefix_whatever_the_world_size():
    idx = np.arange(50)
    whole = epoch_order(idx, seed=3, epoch=1, batch_size=4)
    for world in (1, 2, 3):
        shards = [epoch_order(idx, 3, 1, r, world, 4, consumed=8) for r in range(world)]
        assert len({len(s) for s in shards}) == 1 and len(shards[0]) % 4 == 0
        used = np.sort(np.concatenate([s[: 4 * 2] for s in shards]))  # two batches on every rank
        assert np.array_equal(used, np.sort(whole[8 : 8 + 8 * world]))


@pytest.fixture(scope="module")
def toy_in_one_process(tmp_path_factory) -> dict:
    """The toy's weights trained by one process at twice the batch, uncompiled: the same run for every compile mode
    the two processes are tested under, so it is made once (a process start and a PyTorch import saved)."""
    folder = tmp_path_factory.mktemp("toy-one-process")
    script = folder / "toy.py"
    script.write_text(TOY)
    base = tmp_path_factory.getbasetemp()  # the folders conftest's _app_data_in_tmp gives a test's commands
    env = {**os.environ, "PYTHONPATH": str(ROOT), "XDG_DATA_HOME": str(base / "app-data"),
           "XDG_CACHE_HOME": str(base / "cache"), "TMPDIR": str(base / "tmp")}
    (base / "tmp").mkdir(exist_ok=True)
    one = subprocess.run([sys.executable, str(script), str(folder / "one"), "8"], cwd=ROOT, capture_output=True,
                         text=True, env=env, timeout=120)
    assert one.returncode == 0, one.stderr[-2000:]
    return torch.load(folder / "one" / "rank0.pt")


@pytest.mark.parametrize("compile", ["off", "trace-only"])  # trace-only: DDP wrapped, then traced as compile would
def test_two_processes_average_gradients_like_one_with_twice_the_batch(tmp_path, compile, toy_in_one_process):
    script = tmp_path / "toy.py"
    script.write_text(TOY)
    torchrun(str(script), str(tmp_path / "ddp"), "4", compile)
    rank0, rank1 = (torch.load(tmp_path / "ddp" / f"rank{r}.pt") for r in (0, 1))
    single = toy_in_one_process
    torch.manual_seed(0)
    start = torch.nn.Linear(3, 1).state_dict()  # the toy's initial weights
    for k in rank0:
        assert torch.equal(rank0[k], rank1[k])  # the ranks stayed in step
        assert not torch.allclose(rank0[k], start[k])  # and trained
        assert torch.allclose(rank0[k], single[k], atol=1e-5)  # on averaged gradients of disjoint halves
    state = load_checkpoint(tmp_path / "ddp")
    assert (state["world"], state["step"], state["samples"]) == (2, 16, 128)


def test_a_run_stopped_and_resumed_under_torchrun_is_the_run_an_uninterrupted_one_makes(tmp_path):
    """Rank 1 had resumed with rank 0's random stream and rank 0's pools: weights off by up to 0.16."""
    script = tmp_path / "noisy.py"
    script.write_text(NOISY)
    torchrun(str(script), str(tmp_path / "straight"), "new")
    torchrun(str(script), str(tmp_path / "broken"), "new", "5")  # 5 of 24 steps, mid-epoch
    assert load_checkpoint(tmp_path / "broken")["step"] == 5
    torchrun(str(script), str(tmp_path / "broken"), "resume")
    for rank in (0, 1):
        straight, resumed = (torch.load(tmp_path / d / f"rank{rank}.pt") for d in ("straight", "broken"))
        assert torch.equal(straight["seen"], resumed["seen"])  # its own memory back
        for k in straight["net"]:
            assert torch.equal(straight["net"][k], resumed["net"][k])  # its own noise: the very same weights
    seen = [torch.load(tmp_path / "straight" / f"rank{r}.pt")["seen"] for r in (0, 1)]
    assert not torch.equal(*seen)  # the memories are each process's own, or the test shows nothing


def test_classifier_under_torchrun_then_resumed_by_one_process(tmp_path, tiny_utk):
    out = tmp_path / "run"
    args = ["main.py", "train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
            "--epochs", "2", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(out),
            "--threads", "1", "--device", "cpu"]
    proc = torchrun(*args, "--max-steps", "4")
    state = load_checkpoint(out)
    per_step = state["samples"] // state["step"]  # 2 processes × 16
    assert state["world"] == 2 and per_step == 32 and state["step"] == 4
    assert state["epoch"] == 1 and state["samples_in_epoch"] > 0  # one epoch done, stopped inside the second
    assert (proc.stdout + proc.stderr).count("stopped after 4 steps as asked") == 1  # rank 0 alone checkpoints
    epochs = (out / "epochs.csv").read_text().splitlines()
    assert len(epochs) == 2  # header + one row: written once, not once per process
    assert not (out / "model.onnx").exists()  # stopped early: nothing exported yet
    load_steps = state["step"]

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, *args, "--resume"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    final = load_checkpoint(out)
    assert final["world"] == 1 and final["epoch"] == 2 and final["step"] > load_steps
    assert len((out / "epochs.csv").read_text().splitlines()) == 3
    assert (out / "model.onnx").exists()


def test_cyclegan_under_torchrun_then_resumed_by_one_process(tmp_path):
    from .test_cyclegan import write_utk

    utk = write_utk(tmp_path / "UTKFace", per_cell=14)
    out = tmp_path / "run"
    args = ["main.py", "train", "cyclegan", "--dataset", f"utkface:{utk}", "--preset-domains", "engineer",
            "--preset", "smoke", "--min-domain-size", "4", "--iters-per-epoch", "4", "--n-epochs", "2",
            "--n-epochs-decay", "0", "--sample-every", "2", "--eval-faces", "12", "--threads", "1", "--device", "cpu",
            "--cache", str(tmp_path / "cache"), "--out", str(out)]
    proc = torchrun(*args, "--max-steps", "3")
    state = load_checkpoint(out)
    # 4 iterations of batch 1 per epoch, shared by 2 processes: 2 steps, then 1 into epoch 2
    assert (state["world"], state["epoch"], state["step"], state["samples"]) == (2, 1, 3, 6)
    assert proc.stdout.count("preset smoke") == 1  # rank 0 alone reports
    assert (out / "samples" / "step_0000002.png").exists() and not (out / "filter_A2B.onnx").exists()
    done = subprocess.run([sys.executable, *args, "--resume"], cwd=ROOT, capture_output=True, text=True, timeout=240,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    final = load_checkpoint(out)
    assert (final["world"], final["epoch"], final["step"], final["samples"]) == (1, 2, 5, 8)
    assert (out / "filter_A2B.onnx").exists()


class _OomTask:
    config: dict = {}

    def __init__(self):
        self.net = torch.nn.Linear(2, 1)
        self.opt = torch.optim.SGD(self.net.parameters(), lr=0.1)

    def modules(self):
        return {"net": self.net}

    def optimizers(self):
        return {"net": self.opt}

    def schedulers(self):
        return {}

    def indices(self):
        return np.arange(32)

    def batch(self, idx, device):
        return idx

    def step(self, batch, ctx):
        if ctx.step == 2:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return {}

    def end_epoch(self, epoch, ctx):
        return {}


def test_out_of_memory_names_a_smaller_batch_and_keeps_the_checkpoint(tmp_path):
    with pytest.raises(BiasMirrorError, match=r"--batch-size 4.*--resume"):
        run(_OomTask(), LoopConfig(tmp_path, epochs=1, batch_size=8, checkpoint_every=1))
    assert load_checkpoint(tmp_path)["step"] == 2  # the last good step is on disk


def test_max_steps_stops_resumably(tmp_path):
    task = _OomTask()
    task.step = lambda batch, ctx: {}
    with pytest.raises(StoppedEarly):
        run(task, LoopConfig(tmp_path, epochs=2, batch_size=8, max_steps=5))
    state = load_checkpoint(tmp_path)
    assert (state["epoch"], state["samples_in_epoch"], state["step"]) == (1, 8, 5)


def test_precision_choice():
    cpu, gpu = torch.device("cpu"), torch.device("cuda", 0)
    assert amp_dtype("bf16", cpu) is None and amp_dtype("auto", cpu) is None  # the CPU trains in fp32
    assert amp_dtype("bf16", gpu) == torch.bfloat16 and amp_dtype("fp16", gpu) == torch.float16
    assert amp_dtype("fp32", gpu) is None


def _bench_train(tmp_path, tiny_utk, *options: str) -> list[dict]:
    """`bench train` on the CPU at 32 px, batch 16, one warm-up step, no cache: its JSON rows."""
    import json

    import main

    out = tmp_path / "bench.json"
    assert main.main(["bench", "train", "--data", f"utkface:{tiny_utk}", "--size", "32", "--classifier-batch", "16",
                      "--warmup", "1", "--device", "cpu", "--threads", "1", "--cache", "", "--json", str(out),
                      *options]) == 0
    doc = json.loads(out.read_text())
    # versioned as every JSON output is (docs/outputs.md): the file says its format and the software that wrote it
    assert doc["schema_version"] == 2 and doc["software"]["onnxruntime"] and doc["torch"]
    return doc["results"]


def test_bench_train_times_every_variant_against_fp32(tmp_path, tiny_utk, capsys):
    # 13 steps of 16 from ~159 faces: more steps than one epoch has (the H100 run failed there)
    rows = _bench_train(tmp_path, tiny_utk, "--faces", "160", "--cyclegan-preset", "smoke", "--steps", "12",
                        "--compile", "off,trace-only,cudagraphs")
    assert {(r["trainer"], r["variant"]) for r in rows} == {
        (t, v + c) for t in ("classifier", "cyclegan") for v in ("fp32", "fp32+channels-last")
        for c in ("", "+compile:trace-only", "+compile:cudagraphs")}
    fp32 = {r["trainer"]: r["per_second"] for r in rows if r["variant"] == "fp32"}
    for r in rows:
        if r["compile"] == "cudagraphs":  # needs a GPU: reported, and the other variants still timed
            assert r["status"].startswith("unavailable: --compile cudagraphs needs a CUDA GPU") and r["per_second"] == 0
            continue
        assert r["status"] == "ok" and r["per_second"] > 0 and 0 <= r["data_wait_share"] <= 1
        if r["compile"] == "off":
            assert r["ops_per_step"] > 100  # forward, backward and optimiser of a real trainer
        else:  # fused kernels cannot be counted one by one; the compiling first step is reported apart
            assert r["ops_per_step"] is None and r["first_step_seconds"] > 0
        assert r["peak_gpu_mib"] is None  # a CPU run
        assert r["ratio_vs_fp32"] == pytest.approx(r["per_second"] / fp32[r["trainer"]], abs=0.01)
    assert "target is ≥ 2000 images/s" in capsys.readouterr().out


def test_bench_train_ratios_are_against_fp32_in_whatever_order_the_variants_are_given(tmp_path, tiny_utk, capsys):
    rows = {r["variant"]: r for r in _bench_train(tmp_path, tiny_utk, "--faces", "64", "--steps", "2", "--trainers",
                                                  "classifier", "--variants", "fp32+channels-last,fp32")}
    assert rows["fp32"]["ratio_vs_fp32"] == 1.0
    assert rows["fp32+channels-last"]["ratio_vs_fp32"] == pytest.approx(
        rows["fp32+channels-last"]["per_second"] / rows["fp32"]["per_second"], abs=0.01)
    assert "×1.00 vs fp32," in capsys.readouterr().out


def test_bench_train_killed_midway_keeps_the_rows_it_timed(tmp_path, tiny_utk):
    """`timeout` (or a device call running out) sends SIGTERM to the whole process group, DataLoader workers
    included: the rows timed so far are printed and in the JSON, and the exit status says it was cut short."""
    import json
    import sys

    from tests.conftest import terminate_group_when

    out = tmp_path / "bench.json"
    code, text = terminate_group_when(
        [sys.executable, "main.py", "bench", "train", "--data", f"utkface:{tiny_utk}", "--faces", "160", "--size", "32",
         "--trainers", "classifier", "--classifier-batch", "16", "--warmup", "1", "--steps", "40", "--workers", "2",
         "--device", "cpu", "--threads", "1", "--cache", "", "--json", str(out), "--variants", "fp32,fp32+channels-last"],
        lambda: out.exists() and json.loads(out.read_text())["measured"] == 1)  # stopped during the second row
    if code == 0:
        pytest.skip("the second row finished before the kill arrived")  # a very fast machine
    data = json.loads(out.read_text())
    assert code == 130, text
    assert data["complete"] is False and data["stopped"] == "interrupted after 1 of 2 configurations"
    assert [r["variant"] for r in data["results"]] == ["fp32"] and data["results"][0]["per_second"] > 0
    assert "interrupted after 1 of 2 configurations" in text and "classifier: best" in text
    assert "Traceback" not in text  # the workers' deaths no longer surface as an error of their own


def test_bench_train_reports_a_variant_out_of_gpu_memory_and_times_the_rest(tmp_path, tiny_utk, monkeypatch):
    import json

    import main
    from training import bench_train

    real = bench_train.time_steps

    def time_steps(task, cfg, *a, **kw):
        if cfg.channels_last:  # as a variant whose memory layout needs more than the GPU has
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (stub)")
        return real(task, cfg, *a, **kw)

    monkeypatch.setattr(bench_train, "time_steps", time_steps)
    out = tmp_path / "bench.json"
    assert main.main(["bench", "train", "--data", f"utkface:{tiny_utk}", "--faces", "160", "--size", "32",
                      "--trainers", "classifier", "--classifier-batch", "16", "--warmup", "1", "--steps", "2",
                      "--device", "cpu", "--threads", "1", "--cache", "", "--json", str(out)]) == 0
    rows = {r["variant"]: r for r in json.loads(out.read_text())["results"]}
    assert rows["fp32"]["status"] == "ok" and rows["fp32"]["per_second"] > 0
    assert rows["fp32+channels-last"]["status"] == (
        "unavailable: out of GPU memory at batch 16; try a smaller --classifier-batch")


def test_a_cyclegan_epoch_of_fewer_batches_than_processes_is_refused_with_what_to_give():
    """Under torchrun it trained no step at all and exported its untrained generator with exit status 0."""
    from training.tasks.cyclegan import check_epoch_fits

    run_cfg = {"iters_per_epoch": 1, "batch_size": 30}
    check_epoch_fits(run_cfg, 1, 40, given=False, resumed=False, where="A")
    with pytest.raises(BiasMirrorError, match="an epoch of 1 batch\\(es\\) of --batch-size 30 is less than one step of "
                                              "2 processes, each of which draws a batch: give --batch-size 20 or less, "
                                              "or --iters-per-epoch 2 or more"):
        check_epoch_fits(run_cfg, 2, 40, given=False, resumed=False, where="A")
    with pytest.raises(BiasMirrorError, match="give --iters-per-epoch 2 or more$"):
        check_epoch_fits(run_cfg, 2, 40, given=True, resumed=False, where="A")
    with pytest.raises(BiasMirrorError, match="run it with --nproc_per_node 1 or fewer"):
        check_epoch_fits(run_cfg, 2, 40, given=True, resumed=True, where="A")


def test_only_rank_0_exports_a_cyclegan_checkpoint_and_warns(tmp_path, monkeypatch, capsys):
    """Every process exported the same files at once and raced on their part files; and every process printed
    each warning about the data they all read."""
    import logging

    import main

    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # put back after: the rest of the suite is rank 0
    assert main.main(["train", "cyclegan", "--out", str(tmp_path), "--export-only", "--device", "cpu"]) == 0
    assert list(tmp_path.iterdir()) == [] and capsys.readouterr().err == ""  # rank 0 reads the checkpoint, or says why
    assert root.level == logging.ERROR


def test_mixed_precision_asked_for_on_the_cpu_is_said_to_train_in_fp32(tmp_path, caplog):
    from .test_loop import ToyTask

    run(ToyTask(), LoopConfig(tmp_path, epochs=1, batch_size=8, device="cpu", precision="bf16"))
    assert "--precision bf16 is mixed precision on a GPU; this run is on the CPU and trains in fp32" in caplog.text


def test_a_card_names_the_process_count_it_was_trained_with():
    import argparse

    from training.resume import command_line

    args = argparse.Namespace(_argv=["train", "classifier", "--batch-size", "16"])
    assert command_line(args, {}) == "python main.py train classifier --batch-size 16"
    assert command_line(args, {"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"}) == \
        "torchrun --nproc_per_node 2 main.py train classifier --batch-size 16"
    assert command_line(args, {"WORLD_SIZE": "16", "LOCAL_WORLD_SIZE": "8"}).startswith(
        "torchrun --nproc_per_node 8 --nnodes 2 main.py")


def test_a_resume_that_no_longer_fits_a_batch_on_every_process_advises_fewer_processes():
    from training.tasks.classifier import check_batch_fits

    with pytest.raises(BiasMirrorError, match="a resumed run keeps --batch-size 128: run it with --nproc_per_node 2 or "
                                              "fewer"):
        check_batch_fits(317, 128, "none", "data", world=3, listed=True, resumed=True)
    with pytest.raises(BiasMirrorError, match="give --batch-size 105 or less"):
        check_batch_fits(317, 128, "none", "data", world=3, listed=True)


def test_bench_train_names_the_row_its_ratios_are_against(tmp_path, tiny_utk):
    """Without plain fp32 among the variants, ratio_vs_fp32 was against another row, and the JSON said not which."""
    rows = _bench_train(tmp_path, tiny_utk, "--faces", "64", "--steps", "2", "--trainers", "classifier",
                        "--variants", "fp32+channels-last")
    assert [(r["ratio_base"], r["ratio_vs_fp32"]) for r in rows] == [("fp32+channels-last", 1.0)]


def test_an_interrupted_bench_train_says_what_it_never_measured(tmp_path, tiny_utk, monkeypatch, capsys):
    """Interrupted in its first row, it said each trainer "could not be timed", as if each had failed."""
    import main
    from training import bench_train

    def interrupted(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench_train, "time_steps", interrupted)
    assert main.main(["bench", "train", "--data", f"utkface:{tiny_utk}", "--faces", "64", "--size", "32",
                      "--classifier-batch", "16", "--warmup", "1", "--steps", "2", "--device", "cpu", "--threads", "1",
                      "--cache", ""]) == 130
    out = capsys.readouterr().out
    assert "classifier: not measured (interrupted)" in out and "cyclegan: not measured (interrupted)" in out
    assert "could not be timed" not in out


def _torchrun_group(*args: str, n: int = 2, timeout: int = 180) -> subprocess.CompletedProcess:
    """torchrun in a process group of its own, killed whole (workers too) past ``timeout``: a run whose ranks wait
    for one another in vain fails the test instead of leaving its workers behind. Its exit status is not checked."""
    import signal

    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={n}", *args]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun {' '.join(args[:3])} hung past {timeout} s: {(out + err)[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def test_compare_under_torchrun_trains_both_variants_and_compares_in_one_command(tmp_path, tiny_utk):
    """Rank 1 returned from the first variant before rank 0 had exported it, judged it unfinished, said so and left;
    rank 0 then waited for it in vain at the second variant. The ranks now take rank 0's word, and say things once."""
    out = tmp_path / "cmp"
    args = ["main.py", "train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
            "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(out),
            "--threads", "1", "--device", "cpu"]
    stopped = _torchrun_group(*args, "--max-steps", "2")  # the unbalanced variant stops, checkpointed
    said = stopped.stdout + stopped.stderr
    assert stopped.returncode == 0, said[-3000:]
    assert said.count("the unbalanced variant has not finished training") == 1  # rank 0's word, said once
    assert load_checkpoint(out / "unbalanced")["step"] == 2 and not (out / "balanced").exists()

    done = _torchrun_group(*args)  # the same command again: continues it, trains the other, compares
    said = done.stdout + done.stderr
    assert done.returncode == 0, said[-3000:]
    assert "has not finished training" not in said and said.count("comparison.json") == 1
    assert load_checkpoint(out / "balanced")["world"] == 2 and (out / "comparison.json").exists()


def test_a_cyclegan_card_under_torchrun_counts_the_batches_actually_drawn(tmp_path):
    """--iters-per-epoch 5 under 2 processes draws 4 batches an epoch (a step draws one on each): the command had
    said 5, and the card counted its 4 optimiser steps as the iterations and as the images seen, half the 8 drawn."""
    from inference.models import read_card
    from .test_cyclegan import write_utk

    utk = write_utk(tmp_path / "UTKFace", per_cell=14)
    out = tmp_path / "run"
    proc = _torchrun_group("main.py", "train", "cyclegan", "--dataset", f"utkface:{utk}", "--preset-domains",
                           "engineer", "--preset", "smoke", "--min-domain-size", "4", "--iters-per-epoch", "5",
                           "--n-epochs", "2", "--n-epochs-decay", "0", "--sample-every", "0", "--eval-faces", "4",
                           "--threads", "1", "--device", "cpu", "--cache", str(tmp_path / "cache"), "--out", str(out))
    said = proc.stdout + proc.stderr
    assert proc.returncode == 0, said[-3000:]
    assert "2 epochs × 2 steps of 2 processes (each draws a batch: 4 batches an epoch)" in said
    assert said.count("an epoch of 5 batches is not a multiple of the 2 processes") == 1
    assert "each epoch draws 4, and the last 1 is left out (give --iters-per-epoch 4 or 6, a multiple of 2)" in said
    state = load_checkpoint(out)
    assert (state["world"], state["step"], state["samples"]) == (2, 4, 8)
    training = read_card(out / "filter_A2B.onnx").training
    assert training["images_seen_per_domain"] == state["samples"] == 8  # batch 1: 8 images of each domain
    assert training["iterations"] == 8 and training["steps"] == 4
    assert training["schedule"]["iters_per_epoch"] == 5 and "8 in 2 epochs, not 2 × 5" in \
        training["schedule"]["batches_drawn"]


def test_cyclegan_card_counts_images_alike_whatever_the_process_count():
    """--iters-per-epoch 4: 8 images drawn by 1 process (8 steps) or by 2 (4 steps); the 2-process card said 4."""
    from training.tasks.cyclegan_report import trained_progress, training_counts

    cfg = {"batch_size": 1, "n_epochs": 2, "n_epochs_decay": 0, "iters_per_epoch": 4, "lr": 2e-4}
    one = training_counts(trained_progress({"step": 8, "samples": 8, "epoch": 2, "samples_in_epoch": 0}, 1), cfg)
    two = training_counts(trained_progress({"step": 4, "samples": 8, "epoch": 2, "samples_in_epoch": 0}, 1), cfg)
    for counts in (one, two):
        assert (counts["iterations"], counts["images_seen_per_domain"]) == (8, 8)
        assert "batches_drawn" not in counts["schedule"]  # 2 × 4, as scheduled
    assert (one["steps"], two["steps"]) == (8, 4)
    old = training_counts(trained_progress({"step": 3, "epoch": 1}, 2), {**cfg, "batch_size": 2})  # no "samples"
    assert (old["iterations"], old["images_seen_per_domain"]) == (3, 6)


def _classifier_oom_in_epoch(monkeypatch, epoch: int) -> None:
    """The classifier's step runs out of GPU memory at the first step of ``epoch`` (0-based), as on a GPU too small."""
    from training.tasks import classifier

    real = classifier.ClassifierTask.step

    def step(self, batch, ctx):
        if ctx.epoch == epoch:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real(self, batch, ctx)

    monkeypatch.setattr(classifier.ClassifierTask, "step", step)


@pytest.mark.parametrize("oom_epoch", [0, 1])  # before any checkpoint; in epoch 2, after epoch 1's
def test_out_of_memory_advice_is_what_the_run_folder_allows(tmp_path, tiny_utk, monkeypatch, capsys, oom_epoch):
    """It said "try --batch-size 4 … continue it with --resume", but a resume at another batch size is refused, and
    before the first checkpoint there was nothing to resume (it named a last.pt that was not there)."""
    import main

    _classifier_oom_in_epoch(monkeypatch, oom_epoch)
    out = tmp_path / "run"
    args = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "2",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(out), "--threads", "1",
            "--device", "cpu"]
    at8 = ["8" if a == "16" else a for a in args]  # the batch size advised
    assert main.main(args) == 2
    err = capsys.readouterr().err
    assert "out of GPU memory at --batch-size 16 per process" in err
    if oom_epoch == 0:
        assert not (out / "last.pt").exists() and "last.pt" not in err and "--resume" not in err
        assert "before the run's first checkpoint, so nothing was saved: run the command again with --batch-size 8" \
            in err
        monkeypatch.undo()
        # as advised: the same command at batch 8, in the same --out, trains
        assert main.main(at8) == 0, capsys.readouterr().err
    else:
        assert load_checkpoint(out)["epoch"] == 1
        assert "To train with --batch-size 8, start a new --out: a resume keeps the checkpoint's --batch-size 16, " \
               "so --resume continues this run" in err
        monkeypatch.undo()
        # and so it is: a resume at batch 8 is refused, at its own batch size it continues
        assert main.main([*at8, "--resume"]) == 2
        assert "--batch-size 8" in capsys.readouterr().err
        assert main.main([*args, "--resume"]) == 0, capsys.readouterr().err
        assert load_checkpoint(out)["epoch"] == 2


@pytest.mark.skipif(torch.cuda.is_available(), reason="--compile cudagraphs runs where there is a CUDA GPU")
@pytest.mark.parametrize("trainer", ["classifier", "compare", "cyclegan"])
def test_compile_cudagraphs_without_a_gpu_is_refused_before_any_data_is_read(tmp_path, tiny_utk, monkeypatch, capsys,
                                                                             trainer):
    """As --device cuda is: it had been refused only after every face was decoded."""
    import main
    from training.data import cache as cache_module

    def decoded(*a, **kw):
        raise AssertionError("faces decoded before --compile cudagraphs was refused")

    from training.tasks import classifier, cyclegan

    for module in (cache_module, classifier, cyclegan):
        monkeypatch.setattr(module, "load_images", decoded)
    data = (["--dataset", f"utkface:{tiny_utk}", "--preset-domains", "engineer", "--preset", "smoke",
             "--min-domain-size", "4"]
            if trainer == "cyclegan" else ["--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8"])
    assert main.main(["train", trainer, *data, "--out", str(tmp_path / "run"), "--cache", str(tmp_path / "cache"),
                      "--device", "auto", "--compile", "cudagraphs"]) == 2
    assert "--compile cudagraphs needs a CUDA GPU; this run is on the CPU" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()  # nothing decoded, nothing cached


@pytest.mark.parametrize("what, rest", [("train evaluate", ["--model", "m.onnx", "--dataset", "utkface:x"]),
                                        ("train fp16", ["m.onnx"]),
                                        ("train adopt", ["m.onnx", "--kind", "filter", "--out", "o.onnx"]),
                                        ("audit", ["--dataset", "utkface:x", "--out", "o"]),
                                        ("run", ["--source", "x", "--out", "o.csv"]), ("bench", ["--source", "x"]),
                                        ("bench train", []),
                                        ("doctor", []), ("doctor train", []), ("app", [])])
def test_commands_that_are_not_trainers_are_refused_under_torchrun(tmp_path, monkeypatch, capsys, what, rest):
    """They did the whole job once per process: tables printed twice, the fp16 file written by both at once."""
    import importlib
    import logging

    import main

    command = [*what.split(), *rest]
    module = importlib.import_module(main._chosen_module(command)[0])
    monkeypatch.setattr(module, "main", lambda args: pytest.fail(f"{module.__name__} ran under torchrun"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WORLD_SIZE", "2")
    root = logging.getLogger()
    monkeypatch.setattr(root, "level", root.level)  # main sets rank 1's level: put back after
    said = []
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        assert main.main(command) == 2
        said.append(capsys.readouterr())
    assert f"error: `{what}` does not use several processes (torchrun started 2): run it once, with " \
           f"`python main.py {what} …`" in said[0].err
    assert said[1].err == "" and said[1].out == "" and said[0].out == ""  # said once, by rank 0
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_trainers_and_one_process_still_run_under_torchrun_variables(monkeypatch):
    import argparse

    import main

    for module in sorted(main.TORCHRUN_COMMANDS):
        assert main.torchrun_problem(argparse.Namespace(_module=module, command="train"), {"WORLD_SIZE": "2"}) is None
    evaluate = argparse.Namespace(_module="training.evaluate", command="train", train_command="evaluate")
    assert main.torchrun_problem(evaluate, {"WORLD_SIZE": "1"}) is None  # torchrun --nproc_per_node 1
    assert main.torchrun_problem(evaluate, {}) is None
    assert "`train evaluate` does not use several processes" in main.torchrun_problem(evaluate, {"WORLD_SIZE": "4"})


@pytest.mark.parametrize("oom_epoch", [0, 1])  # before the balanced variant's first checkpoint; after it
def test_out_of_memory_in_compare_advises_a_new_out_where_the_other_variant_is(tmp_path, tiny_utk, monkeypatch,
                                                                                capsys, oom_epoch):
    """The balanced variant ran out of GPU memory before its first checkpoint with the unbalanced one trained in
    --out, and was told "run the command again with --batch-size 8"; done so, it was refused as not the unbalanced
    variant's batch size. The variants of one comparison share their settings: a smaller batch is a new --out's."""
    import main
    from training.tasks import classifier

    real = classifier.ClassifierTask.step

    def step(self, batch, ctx):
        if self.config["compose"] == "balanced" and ctx.epoch == oom_epoch:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB (simulated)")
        return real(self, batch, ctx)

    monkeypatch.setattr(classifier.ClassifierTask, "step", step)
    out = tmp_path / "cmp"
    args = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "2",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(out), "--threads", "1",
            "--device", "cpu"]
    at8 = ["8" if a == "16" else a for a in args]
    assert main.main(args) == 2
    err = capsys.readouterr().err
    assert (out / "unbalanced" / "model.onnx").exists() and (out / "balanced" / "last.pt").exists() == (oom_epoch > 0)
    assert "the gender-balanced variant ran out of GPU memory at --batch-size 16 per process" in err
    assert "To train with --batch-size 8, start a new --out: the unbalanced variant in this one" in err
    assert "run the command again with --batch-size 8" not in err
    monkeypatch.undo()
    # as said: --batch-size 8 in this --out is refused, and in a new one it trains
    assert main.main(at8) == 2 and "--batch-size 8 differs from the checkpoint's 16" in capsys.readouterr().err
    new = [str(tmp_path / "new") if a == str(out) else a for a in at8]
    assert main.main([*new, "--max-steps", "1"]) == 0, capsys.readouterr().err
    assert load_checkpoint(tmp_path / "new" / "unbalanced")["batch_size"] == 8
