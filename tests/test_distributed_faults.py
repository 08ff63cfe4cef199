"""Faults of training at scale that the review of 2026-12 found: the precision `auto` picks on a GPU without bf16,
ranks that hold different copies of the data, the fp16 gradient scaler across a resume, the CycleGAN's DDP
wrappers at the end of a run, and running out of GPU memory outside the training step.

There is no GPU here: what only a GPU decides is stubbed at torch's own queries (the device's compute capability),
and fp16 with a gradient scaler is run as CPU autocast in float16."""
import argparse
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import types
from pathlib import Path

import numpy as np
import pytest
import torch

import main
from training import checkpoints, distributed, loop, same_data
from training.checkpoints import load_checkpoint
from training.loop import LoopConfig, amp_dtype, make_context

ROOT = Path(__file__).resolve().parents[1]


# --- 1. --precision auto on a GPU that only emulates bf16 -----------------------------------------------------------

def _a_gpu_of_capability(monkeypatch, major: int, minor: int, name: str) -> torch.device:
    """torch's device queries answered as one CUDA GPU of that compute capability answers them, where a bf16 tensor
    can be made (CUDA 11 and later do, in software, on any GPU): torch's own is_bf16_supported runs on them."""
    props = types.SimpleNamespace(major=major, minor=minor, name=name, total_memory=16 * 2**30)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda device=None: props)
    monkeypatch.setattr(torch.cuda, "_check_bf16_tensor_supported", lambda device: True)
    return torch.device("cuda", 0)


@pytest.mark.parametrize("major, minor, name, wanted", [(7, 5, "Tesla T4", torch.float16),
                                                        (7, 0, "Tesla V100", torch.float16),
                                                        (8, 0, "A100", torch.bfloat16)])
def test_precision_auto_is_bf16_only_where_the_gpu_computes_in_it(monkeypatch, tmp_path, major, minor, name, wanted):
    """A T4 answers is_bf16_supported() with True (it emulates bf16), and `auto` trained there in bf16, slower than
    fp16 and without the gradient scaler the docs promise for such GPUs."""
    gpu = _a_gpu_of_capability(monkeypatch, major, minor, name)
    assert amp_dtype("auto", gpu) == wanted
    ctx = make_context(LoopConfig(tmp_path, epochs=1, precision="auto"), gpu)  # what training and bench train run
    assert ctx.scaler.is_enabled() == (wanted == torch.float16)


def test_doctor_train_says_the_precision_auto_picks_on_a_gpu_without_bf16(monkeypatch, capsys):
    from training import doctor

    _a_gpu_of_capability(monkeypatch, 7, 5, "Tesla T4")
    assert doctor.main(argparse.Namespace(try_compile=False)) == 0
    assert "--precision auto here: float16 autocast with a gradient scaler" in capsys.readouterr().out


def test_precision_auto_reads_the_capability_where_torch_has_no_emulation_argument(monkeypatch):
    gpu = _a_gpu_of_capability(monkeypatch, 7, 5, "Tesla T4")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)  # as torch before including_emulation
    assert amp_dtype("auto", gpu) == torch.float16



# --- 2. processes that hold different copies of the data ------------------------------------------------------------

# Each process runs in a folder of its own, as a node does, and reads the dataset there by the same relative path.
ON_ITS_OWN_NODE = textwrap.dedent('''
    import os, sys
    sys.path.insert(0, os.environ["PYTHONPATH"])
    os.chdir(sys.argv[1 + int(os.environ["RANK"])])
    import main
    sys.exit(main.main(sys.argv[3:]))
''')


def test_processes_whose_copies_of_the_dataset_differ_are_refused_before_the_first_step(tmp_path, tiny_utk):
    """Two nodes, each with its own copy of the dataset, one short of a few files: both trained and exited 0, the
    ranks no longer splitting one mix (with many files short, they hung at the end of the first epoch)."""
    from .test_distributed import _torchrun_group

    nodes = [tmp_path / "node0", tmp_path / "node1"]
    for node in nodes:
        shutil.copytree(tiny_utk, node / "utk")
    gone = sorted((nodes[1] / "utk").glob("2*.jpg.chip.jpg"))[:3]  # adults, which the run trains on
    for path in gone:
        path.unlink()
    script = tmp_path / "on_its_own_node.py"
    script.write_text(ON_ITS_OWN_NODE)
    proc = _torchrun_group(str(script), *map(str, nodes), "train", "classifier", "--dataset", "utkface:utk",
                           "--size", "32", "--width", "8", "--epochs", "1", "--batch-size", "8", "--threads", "1",
                           "--device", "cpu", "--cache", "cache", "--out", str(tmp_path / "run"), "--max-steps", "2")
    said = proc.stdout + proc.stderr
    assert proc.returncode != 0, said[-3000:]
    # one line from each process (main's way with a BiasMirrorError: no traceback), before any step
    assert said.count("error: the processes do not hold the same training data: rank 1's") == 2
    assert f"{len(gone)} files gone (e.g. {gone[0].name}" in said and "the same copy of the dataset" in said
    assert not (tmp_path / "run" / "last.pt").exists()


def test_what_differs_between_ranks_is_named_by_their_counts_where_no_faces_are_listed():
    a = {"faces": None, "counts": {"training images": 10}, "indices": "x", "n_indices": 10, "host": "a", "folders": []}
    b = {**a, "counts": {"training images": 8}, "indices": "y", "n_indices": 8, "host": "b"}
    said = same_data.ranks_data_differ([a, a, b], [None, None, None])
    assert "rank 2's (b) against rank 0's (a): 8 training images against 10" in said and "rank 1" not in said


# --- 3. the fp16 gradient scaler across a resume ----------------------------------------------------------------------

def _fp16_with_a_scaler_on_the_cpu(monkeypatch, growth_interval: int) -> None:
    """--precision fp16 as a GPU without bf16 runs it (autocast in float16, a gradient scaler), on the CPU; the scale
    grows every ``growth_interval`` steps, so that within a few steps it has moved, grown and been cut."""
    real_amp, real_context = loop.amp_dtype, loop.make_context
    monkeypatch.setattr(loop, "amp_dtype", lambda precision, device: torch.float16 if precision == "fp16"
                        else real_amp(precision, device))

    def make_context(cfg, device, dist=distributed.Dist()):
        ctx = real_context(cfg, device, dist)
        ctx.scaler = torch.amp.GradScaler(device.type, growth_interval=growth_interval)
        return ctx

    monkeypatch.setattr(loop, "make_context", make_context)


def _classifier_args(tiny_utk, tmp_path, *extra: str) -> list[str]:
    return ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
            "--epochs", "3", "--batch-size", "8", "--cache", str(tmp_path / "cache"), "--threads", "1",
            "--device", "cpu", *extra]


def test_an_fp16_run_stopped_and_resumed_is_the_run_an_uninterrupted_one_makes(tmp_path, tiny_utk, monkeypatch):
    """The loss scale was not in the checkpoint: the resumed run began again at the initial scale, skipped other
    steps (and rounded its scaled gradients otherwise), and ended on other weights than the uninterrupted run."""
    _fp16_with_a_scaler_on_the_cpu(monkeypatch, growth_interval=2)
    args = _classifier_args(tiny_utk, tmp_path, "--precision", "fp16")
    steps, stop_at = 12, 5
    straight, cut = tmp_path / "straight", tmp_path / "cut"
    assert main.main([*args, "--out", str(straight), "--max-steps", str(steps)]) == 0
    assert main.main([*args, "--out", str(cut), "--max-steps", str(stop_at)]) == 0
    stopped = load_checkpoint(cut)
    assert main.main([*args, "--out", str(cut), "--resume", "--max-steps", str(steps - stop_at)]) == 0
    a, b = load_checkpoint(cut), load_checkpoint(straight)
    assert a["step"] == b["step"] == steps
    for k, v in b["modules"]["net"].items():
        assert torch.equal(a["modules"]["net"][k], v), k
    assert a["scaler"] == b["scaler"]
    initial = torch.amp.GradScaler("cpu").get_scale()
    assert stopped["scaler"]["scale"] != initial  # the scale had moved when it stopped, or the test shows nothing


def test_a_checkpoint_without_a_scale_still_resumes_and_one_of_another_precision_leaves_the_scaler_alone(tmp_path):
    fresh = torch.amp.GradScaler("cpu")
    checkpoints.load_scaler(fresh, {"step": 3})  # from before the scale was kept
    checkpoints.load_scaler(fresh, {"scaler": {}})  # a bf16 or fp32 run keeps an empty one
    assert fresh.state_dict() == torch.amp.GradScaler("cpu").state_dict()
    grown = torch.amp.GradScaler("cpu", init_scale=fresh.get_scale() * 4).state_dict()
    off = torch.amp.GradScaler("cpu", enabled=False)
    checkpoints.load_scaler(off, {"scaler": grown})  # an fp16 checkpoint resumed in another precision: no scaler to fill
    assert not off.is_enabled()
    checkpoints.load_scaler(fresh, {"scaler": grown})
    assert fresh.get_scale() == grown["scale"]


# --- 4. the CycleGAN's DistributedDataParallel wrappers at the end of a run ------------------------------------------

@pytest.fixture
def one_process_group(tmp_path):
    """A gloo process group of this process alone: DistributedDataParallel runs in it as under torchrun."""
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'group'}", rank=0, world_size=1)
    try:
        yield
    finally:
        torch.distributed.destroy_process_group()


def test_the_cyclegan_hands_back_its_plain_modules_when_the_loop_releases_its_wrappers(tmp_path, one_process_group):
    """It wrapped what its step called last: the release (wrap = identity) handed back the DDP modules themselves,
    which then outlived their process group, as the docs said they no longer do."""
    from training.bench_train import cyclegan_task
    from training.tasks.cyclegan import CycleForward, JudgeForward

    images = np.random.default_rng(0).integers(0, 256, (16, 32, 32, 3), dtype=np.uint8)
    task = cyclegan_task(images, "smoke", 1, tmp_path)
    ddp = torch.nn.parallel.DistributedDataParallel
    task.wrap_for_training(ddp)  # as distributed.training_wrapper's wrap does under torchrun
    assert isinstance(task.cycle, ddp) and isinstance(task.judge, ddp)
    assert isinstance(task.cycle.module, CycleForward) and isinstance(task.judge.module, JudgeForward)
    distributed.release_wrappers(task)
    assert type(task.cycle) is CycleForward and type(task.judge) is JudgeForward
    assert task.cycle.G_A is task.G_A and task.judge.D_B is task.D_B  # the very networks trained and exported


# --- 5. out of GPU memory at the end of an epoch ----------------------------------------------------------------------

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (simulated)"


def test_the_end_of_an_epoch_validates_in_chunks_no_larger_than_a_training_batch(tmp_path, tiny_utk):
    """Validation ran 256 faces at once whatever --batch-size was: a GPU that trains at a smaller batch could run out
    of memory there. (The averaged weights' batch-norm pass, in training mode without gradients, keeps its chunks:
    its statistics depend on them.)"""
    from training.nets.cam_classifier import ClassifierConfig
    from training.tasks.classifier import ClassifierTask, build_data

    data = build_data(f"utkface:{tiny_utk}", 32, None, "none", ["gender"], None, 0, None)
    batch = 8
    task = ClassifierTask(data, ClassifierConfig(size=32, width=8),
                          {"epochs": 1, "batch_size": batch, "lr": 1e-3, "swa_epochs": 1})
    assert (data.split == "val").sum() > batch and len(data.train_idx) > batch  # more than a batch to go through
    seen: list[int] = []
    for net in (task.net, task.swa.module):
        net.register_forward_pre_hook(lambda module, inputs: None if module.training else seen.append(len(inputs[0])))
    cpu = torch.device("cpu")
    metrics = task.end_epoch(task.total_epochs - 1, make_context(LoopConfig(tmp_path, epochs=1), cpu))
    assert np.isfinite(metrics["val_accuracy"]) and np.isfinite(metrics["val_accuracy_averaged"])
    assert seen and max(seen) <= batch


def test_out_of_memory_in_the_epochs_evaluation_is_one_line_and_keeps_the_epochs_steps(tmp_path, tiny_utk,
                                                                                       monkeypatch, capsys):
    """Only the step was guarded: out of memory in validation ended in torch's traceback, and the epoch's steps were
    lost (its checkpoint is written after the evaluation). The steps are now checkpointed first, and a resume
    evaluates the epoch again and goes on as a run that never stopped."""
    from training.tasks import classifier

    def out_of_memory(self, net, device):
        raise torch.OutOfMemoryError(OOM)

    monkeypatch.setattr(classifier.ClassifierTask, "val_accuracy", out_of_memory)
    args = _classifier_args(tiny_utk, tmp_path)
    cut, straight = tmp_path / "cut", tmp_path / "straight"
    assert main.main([*args, "--out", str(cut)]) == 2
    err = capsys.readouterr().err
    assert "out of GPU memory at --batch-size 8 per process, in the evaluation that ends epoch 1" in err
    assert "it evaluates epoch 1 again and loses no step" in err and "Traceback" not in err
    kept = load_checkpoint(cut)
    assert kept["epoch"] == 0 and kept["step"] > 0 and kept["samples_in_epoch"] == kept["samples"]  # all of epoch 1
    monkeypatch.undo()
    more = 2  # into the second epoch
    assert main.main([*args, "--out", str(straight), "--max-steps", str(kept["step"] + more)]) == 0
    assert main.main([*args, "--out", str(cut), "--resume", "--max-steps", str(more)]) == 0
    a, b = load_checkpoint(cut), load_checkpoint(straight)
    assert a["step"] == b["step"] and a["epoch"] == b["epoch"] == 1
    assert (cut / "epochs.csv").read_text().count("\n") == (straight / "epochs.csv").read_text().count("\n") == 2
    for k, v in b["modules"]["net"].items():
        assert torch.equal(a["modules"]["net"][k], v), k


def test_out_of_memory_in_a_compared_variants_evaluation_says_no_step_is_lost(tmp_path, tiny_utk, monkeypatch, capsys):
    """`train compare` words its own advice: it said "the steps since are lost" where the loop had checkpointed them
    all before the evaluation that ran out of memory."""
    from training.tasks import classifier

    real = classifier.ClassifierTask.val_accuracy

    def val_accuracy(self, net, device):
        if self.config["compose"] == "balanced":
            raise torch.OutOfMemoryError(OOM)
        return real(self, net, device)

    monkeypatch.setattr(classifier.ClassifierTask, "val_accuracy", val_accuracy)
    args = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "cmp"), "--threads", "1",
            "--device", "cpu"]
    assert main.main(args) == 2
    err = capsys.readouterr().err
    assert "the gender-balanced variant ran out of GPU memory at --batch-size 16 per process" in err
    assert "it evaluates epoch 1 again, no step lost" in err and "the steps since are lost" not in err
