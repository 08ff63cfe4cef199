"""A disk without room, a file size limit, or too little memory, said as what to do, naming the file or folder:
the decoded-face cache (a bare "Bus error" on a full disk), the faces held in memory with --cache '', the training
loop's host-memory failures, the detection and accuracy tests' permutations, and evaluate's and compare's JSON."""
from __future__ import annotations

import argparse
import errno
import itertools
import json
import math
import os
import subprocess
import sys
import textwrap
import tracemalloc
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import stats

import main
from inference.errors import BiasMirrorError
from tests.conftest import REPO, utk_images

MODEL = REPO / "resources" / "models" / "resnet10_balanced.onnx"


def _photos(folder: Path, n: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        cv2.imwrite(str(folder / f"{i}.png"), np.full((20, 20, 3), 10 * i % 250, np.uint8))
        paths.append(str(folder / f"{i}.png"))
    return paths


def _left(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.iterdir()) if cache.exists() else []


# --- the decoded-face cache on a disk without room ------------------------------------------------------------------

def test_a_cache_the_disk_has_no_room_for_is_refused_naming_its_folder_and_leaves_nothing(tmp_path, monkeypatch):
    """The cache filled a sparse file through a memory map: on a full disk the command died of SIGBUS ("Bus error",
    exit 135) with the disk left full by its .part folder. Its space is reserved first now, and refused in words."""
    from training.data import cache as cache_module

    paths = _photos(tmp_path / "photos", 3)
    cache = tmp_path / "cache"

    def full(fd, offset, length):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "posix_fallocate", full, raising=False)
    with pytest.raises(BiasMirrorError) as caught:
        cache_module.load_images(paths, 64, cache)
    said = str(caught.value)
    assert said.startswith(f"{cache}: no room for the decoded-face cache (No space left on device)"), said
    assert "it takes 0 MB" in said and "MB free" in said  # 3×64×64×3 bytes: the MB needed and the MB free
    assert "--cache ANOTHER_FOLDER" in said and "--cache '' to hold the faces in memory" in said
    assert "MB of RAM is available now" in said
    assert _left(cache) == []  # no .part folder left filling the disk

    monkeypatch.undo()  # room again: the same faces are decoded and cached
    assert cache_module.load_images(paths, 64, cache).n_bad == 0 and len(_left(cache)) == 1


def test_where_space_cannot_be_reserved_a_disk_with_less_free_than_the_cache_is_refused(tmp_path, monkeypatch):
    """posix_fallocate is not everywhere (ZFS says EOPNOTSUPP): the cache is then made as before, unless the disk
    has less free space than it takes."""
    import shutil

    from training.data import cache as cache_module

    paths = _photos(tmp_path / "photos", 2)

    def unsupported(fd, offset, length):
        raise OSError(errno.EOPNOTSUPP, os.strerror(errno.EOPNOTSUPP))

    monkeypatch.setattr(os, "posix_fallocate", unsupported, raising=False)
    assert cache_module.load_images(paths, 32, tmp_path / "roomy").n_bad == 0

    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1000))
    with pytest.raises(BiasMirrorError, match="no room for the decoded-face cache") as caught:
        cache_module.load_images(paths, 32, tmp_path / "tight")
    assert str(caught.value).startswith(f"{tmp_path / 'tight'}: ") and "has 0 MB free" in str(caught.value)
    assert _left(tmp_path / "tight") == []


def test_a_cache_over_the_file_size_limit_is_refused_naming_its_folder_and_leaves_nothing(tmp_path):
    """Under `ulimit -f` the cache had failed with "error: File too large", naming no file, its .part folder left."""
    resource = pytest.importorskip("resource")
    del resource
    photo = _photos(tmp_path / "photos", 1)[0]  # 200 times: 200×64×64×3 bytes, 2.3 MB, over a 1 MB limit
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import resource, signal, sys
        sys.path.insert(0, {str(REPO)!r})
        from inference.errors import BiasMirrorError
        from training.data.cache import load_images
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # as Python has it: the write fails with EFBIG instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (2**20, 2**20))
        try:
            load_images([sys.argv[1]] * 200, 64, sys.argv[2])
        except BiasMirrorError as exc:
            print("refused:", exc)
        """)
    done = subprocess.run([sys.executable, "-c", script, photo, str(cache)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stdout
    assert said.startswith(f"refused: {cache}: the decoded-face cache takes 2 MB, over this process's file size "
                           "limit (1 MB): raise the limit (ulimit -f unlimited), or give --cache ''"), said
    assert _left(cache) == []


def test_a_cache_whose_last_files_the_disk_refuses_is_said_and_removed(tmp_path, monkeypatch):
    """ok.npy and done were written bare after the faces: a full disk there had left a .part folder and said
    "No space left on device" of no file."""
    from training.data import cache as cache_module

    paths = _photos(tmp_path / "photos", 2)
    cache = tmp_path / "cache"

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(cache_module.np, "save", full)
    with pytest.raises(BiasMirrorError, match="could not write the decoded-face cache") as caught:
        cache_module.load_images(paths, 16, cache)
    assert str(caught.value).startswith(str(cache / "faces_16_")) and "--cache ANOTHER_FOLDER" in str(caught.value)
    assert _left(cache) == []


# --- the faces held in memory ---------------------------------------------------------------------------------------

def test_faces_held_in_memory_that_do_not_fit_are_said_with_what_to_do(tmp_path):
    """--cache '' on more faces than memory holds had reached main.py's "an unexpected MemoryError in Bias Mirror
    itself (please report it)"."""
    resource = pytest.importorskip("resource")
    del resource
    photo = _photos(tmp_path / "photos", 1)[0]  # 20,000 times at 1024 px: 59 GB, over a limit of 3 GB more
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(REPO)!r})
        from inference.errors import BiasMirrorError
        from training.data.cache import load_images
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + 3 * 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
        try:
            load_images([sys.argv[1]] * 20_000, 1024, "")
        except BiasMirrorError as exc:
            print("refused:", exc)
        """)
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs /proc to set an address-space limit above what the process uses")
    done = subprocess.run([sys.executable, "-c", script, photo], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    said = done.stdout
    assert said.startswith("refused: the decoded faces do not fit in memory: --cache '' holds every one at once, a "
                           "20000×1024×1024×3 array of 58.6 GB"), said
    assert "leave out --cache ''" in said and "memory-mapped cache on disk" in said and "smaller --size" in said


def test_the_cache_option_says_that_none_holds_every_face_in_memory():
    from training.data.cache import add_cache_argument

    p = argparse.ArgumentParser()
    add_cache_argument(p)
    help_text = " ".join(p.format_help().split())
    assert "'' for none: every face is then held in memory" in help_text, help_text


# --- the training loop out of the machine's memory ------------------------------------------------------------------

ALLOCATOR = ("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't allocate memory: you tried to "
             "allocate 1073741824 bytes. Error code 12 (Cannot allocate memory)")


def test_the_machine_out_of_memory_in_training_is_said_with_what_to_do(tmp_path):
    """torch says a failed CPU allocation as a plain RuntimeError (a MemoryError from NumPy or Python): neither is
    the GPU's OutOfMemoryError the loop words advice for, and both had reached the user unexplained."""
    from training.out_of_memory import OutOfGpuMemory, OutOfHostMemory, host_out_of_memory

    run = tmp_path / "run"
    checkpoint = run / "last.pt"
    early = host_out_of_memory(RuntimeError(ALLOCATOR), 64, 4, checkpoint, run)
    assert isinstance(early, OutOfHostMemory) and not isinstance(early, OutOfGpuMemory)
    assert str(early) == (f"{run}: out of memory (RAM) on this machine allocating 1,024 MB at --batch-size 64 per "
                          "process with --workers 4, before the run's first checkpoint, so nothing was saved: run the "
                          "command again with a smaller --batch-size or --size, or --workers 2 (each worker holds "
                          "batches of its own), or with other programs closed")

    run.mkdir()
    checkpoint.write_bytes(b"a checkpoint")
    later = host_out_of_memory(MemoryError(), 32, 1, checkpoint, run)
    assert later.path == str(checkpoint) and later.ending_epoch is None
    assert ("--resume continues this run (from its last checkpoint; the steps since are lost) with --workers 0"
            in str(later))
    assert "start a new --out: a resume keeps the checkpoint's" in str(later)

    evaluating = host_out_of_memory(MemoryError(), 8, 0, checkpoint, run, ending_epoch=3, size_option="--preset")
    assert evaluating.ending_epoch == 3 and "in the evaluation that ends epoch 3" in str(evaluating)
    advice = str(evaluating).split(". ", 1)[1]  # with no workers, none fewer to suggest
    assert advice.startswith("--resume continues this run (it evaluates epoch 3 again and loses no step) once more "
                             "memory is free") and "--workers" not in advice
    assert "a smaller --batch-size or --preset" in str(evaluating)

    # a DataLoader worker's failure reaches the loop as the same type, the worker's message quoted
    quoted = RuntimeError(f"Caught RuntimeError in DataLoader worker process 0.\nOriginal Traceback:\n{ALLOCATOR}")
    assert host_out_of_memory(quoted, 64, 2, checkpoint, run) is not None
    for other in (RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), RuntimeError("shape mismatch"),
                  ValueError("no")):
        assert host_out_of_memory(other, 64, 2, checkpoint, run) is None


def test_torch_s_own_failed_cpu_allocation_is_recognised(tmp_path):
    """The allocator's words are torch's: pinned on a real failure, under an address-space limit."""
    pytest.importorskip("torch")
    if not Path("/proc/self/statm").exists():
        pytest.skip("needs /proc to set an address-space limit above what the process uses")
    script = textwrap.dedent(f"""
        import resource, sys
        sys.path.insert(0, {str(REPO)!r})
        from pathlib import Path
        import torch
        from training.out_of_memory import host_out_of_memory
        with open("/proc/self/statm") as fh:
            used = int(fh.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + 2**30, resource.getrlimit(resource.RLIMIT_AS)[1]))
        try:
            torch.empty(8 * 2**30, dtype=torch.uint8)
        except (RuntimeError, MemoryError) as exc:
            said = host_out_of_memory(exc, 64, 0, Path("none.pt"), Path("run"))
            print("said:", said)
        """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("said: run: out of memory (RAM) on this machine allocating 8,192 MB"), done.stdout


# --- the detection and accuracy tests' permutations -----------------------------------------------------------------

def _scipy_permutation_p(table) -> float:
    """The p-value as found_test had it: SciPy permuting one group label per image."""
    from inference.audit.detection import PERMUTATIONS
    from inference.audit.stats import SEED

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(stats.chi2_contingency(
            np.asarray(table), correction=False,
            method=stats.PermutationMethod(n_resamples=PERMUTATIONS, rng=np.random.default_rng(SEED))).pvalue)


def _exact_p(table) -> float:
    """The permutation p-value with every table of these margins weighed by its probability (r×2 tables)."""
    table = np.asarray(table)
    rows, cols = table.sum(axis=1), table.sum(axis=0)
    expected = stats.contingency.expected_freq(table)
    observed = ((table - expected) ** 2 / expected).sum()
    law = stats.random_table(rows, cols)
    p = 0.0
    for first in itertools.product(*(range(min(r, cols[0]) + 1) for r in rows)):
        if sum(first) == cols[0]:
            t = np.array([[f, r - f] for f, r in zip(first, rows)])
            p += law.pmf(t) if ((t - expected) ** 2 / expected).sum() >= observed * (1 - 1e-12) else 0.0
    return p


def _counts(table) -> dict[str, tuple[int, int]]:
    return {f"g{i}": (int(found + missed), int(found)) for i, (found, missed) in enumerate(table)}


@pytest.mark.parametrize("table", [[[3, 0], [1, 2]], [[2, 0], [1, 1], [0, 1]], [[2, 1], [0, 2]]])
def test_a_table_of_few_images_gets_scipy_s_exact_permutation_p_value(table):
    """n! ≤ 1999 orderings: SciPy enumerated them all (no +1); so does found_test, to the same p."""
    from inference.audit.detection import found_test

    got = found_test(_counts(table))
    assert got["method"] == "permutation (1999 resamples)"
    assert got["p"] == pytest.approx(_scipy_permutation_p(table), abs=1e-12)
    assert got["statistic"] == pytest.approx(stats.chi2_contingency(table, correction=False).statistic)


@pytest.mark.parametrize("table", [[[10, 0], [8, 2], [9, 1]], [[60, 0], [51, 9]], [[38, 2], [25, 5], [3, 2]],
                                   [[195, 5], [17, 3]], [[30, 1], [28, 3], [29, 2], [5, 1]]])
def test_drawn_tables_give_the_permutation_p_value_within_monte_carlo_error(table):
    """The tables are drawn directly now, not by shuffling a label per image: the same null law (both margins fixed),
    so the p-value is the exact one, and SciPy's, within the error of 1999 draws."""
    from inference.audit.detection import found_test

    got = found_test(_counts(table))
    exact, scipy_p = _exact_p(table), _scipy_permutation_p(table)
    error = math.sqrt(max(exact * (1 - exact), 1e-3) / 2000)
    assert got["method"] == "permutation (1999 resamples)"
    assert abs(got["p"] - exact) < 4 * error + 1 / 2000, (got["p"], exact)
    assert abs(got["p"] - scipy_p) < 4 * math.sqrt(2) * error + 2 / 2000, (got["p"], scipy_p)
    assert found_test(_counts(table)) == got  # seeded: the same p every run


def test_one_small_group_among_many_faces_is_tested_without_a_matrix_of_them_per_resample():
    """30 of 21,336 faces in one group: SciPy expanded the table to a label per face and permuted all 1999 resamples
    at once (1.7 GB, 31 s; a MemoryError under a 2 GB limit)."""
    from inference.audit.detection import found_test

    n = 21_336
    counts = {"site-A": (n - 30, n - 30 - 1900), "site-B": (30, 26)}
    tracemalloc.start()
    try:
        got = found_test(counts)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert got["method"] == "permutation (1999 resamples)" and 0 < got["p"] <= 1
    per_face = n * 1999 * 8  # one int64 label per face per resample
    assert peak < 16 * 2**20, f"{peak / 2**20:.0f} MB traced ({per_face / 2**20:.0f} MB for a label per face)"


# --- evaluate's --json and compare's comparison.json ----------------------------------------------------------------

def _disk_full_for(monkeypatch, name: str) -> None:
    """Path.write_text of files whose name holds ``name`` writes half, then finds the disk full."""
    real = Path.write_text

    def write_text(self, data, *args, **kwargs):
        if name not in self.name:
            return real(self, data, *args, **kwargs)
        real(self, data[: len(data) // 2], *args, **kwargs)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_text", write_text)


def test_evaluate_json_on_a_full_disk_is_said_naming_it_and_leaves_no_part_of_it(tmp_path, monkeypatch, capsys):
    """`train evaluate --json` on a full disk said "No space left on device (run with --verbose to see where)" of no
    file, and left half of e.json."""
    data = tmp_path / "lab"
    data.mkdir()
    for i, p in enumerate(utk_images(4)):
        cv2.imwrite(str(data / f"{i}.jpg"), cv2.imread(str(p)))
    (data / "labels.csv").write_text("file,gender\n0.jpg,male\n1.jpg,female\n2.jpg,male\n3.jpg,female\n")
    out = tmp_path / "reports" / "e.json"
    _disk_full_for(monkeypatch, "e.json")
    code = main.main(["train", "evaluate", "--model", str(MODEL), "--dataset", f"folder:{data}", "--json", str(out)])
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert f"{out}: could not write the --json report (No space left on device)" in err, err
    assert "what was evaluated is printed above" in err
    assert _left(out.parent) == []  # neither half a report nor a hidden part of one


def test_an_evaluation_written_whole_replaces_the_old_one_only_when_whole(tmp_path, monkeypatch):
    """compare's comparison.json is written by the same function: an earlier comparison is kept, not cut to 0 bytes."""
    from training.evaluate import write_evaluation

    place = tmp_path / "cmp" / "comparison.json"
    write_evaluation(place, '{"models": {}}', "the comparison", "kept")
    assert json.loads(place.read_text()) == {"models": {}}
    _disk_full_for(monkeypatch, "comparison.json")
    with pytest.raises(BiasMirrorError) as caught:
        write_evaluation(place, '{"models": {"a": 1}}', "the comparison", "both variants are kept in --out")
    assert str(caught.value).startswith(f"{place}: could not write the comparison (No space left on device)")
    assert str(caught.value).endswith("both variants are kept in --out")
    monkeypatch.undo()
    assert json.loads(place.read_text()) == {"models": {}} and _left(place.parent) == ["comparison.json"]


def test_compare_on_a_full_disk_says_so_naming_comparison_json_and_reuses_its_variants_after(tmp_path, tiny_utk,
                                                                                             monkeypatch, capsys):
    """compare wrote comparison.json with a bare write_text, as evaluate its --json: a full disk left half of it."""
    out = tmp_path / "cmp"
    argv = ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(out), "--threads", "1"]
    _disk_full_for(monkeypatch, "comparison.json")
    code = main.main(argv)
    err = capsys.readouterr().err
    assert code != 0 and "Traceback" not in err
    assert f"{out / 'comparison.json'}: could not write the comparison (No space left on device)" in err, err
    assert "both variants are kept in --out" in err
    assert not [p for p in out.iterdir() if "comparison.json" in p.name]  # neither half of it nor a hidden part
    monkeypatch.undo()
    assert main.main(argv) == 0 and "reusing" in capsys.readouterr().out.lower()
    assert set(json.loads((out / "comparison.json").read_text())["models"]) == {"unbalanced", "gender-balanced"}


@pytest.mark.parametrize("where", ["step", "end_epoch"])
def test_a_training_run_out_of_ram_stops_with_the_advice_not_as_a_fault_of_ours(tmp_path, tiny_utk, monkeypatch,
                                                                                 capsys, where):
    """The loop caught only the GPU's OutOfMemoryError: PyTorch's failed CPU allocation, in a step or in the
    evaluation that ends an epoch, reached the user as "an unexpected RuntimeError in Bias Mirror itself"."""
    import training.loop as loop
    from training.tasks.classifier import ClassifierTask

    def out_of_ram(*args, **kwargs):
        raise RuntimeError(ALLOCATOR)

    if where == "step":
        monkeypatch.setattr(loop, "train_step", out_of_ram)
    else:
        monkeypatch.setattr(ClassifierTask, "end_epoch", out_of_ram)
    status = main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                        "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--threads", "1",
                        "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and "out of memory (RAM) on this machine allocating 1,024 MB at --batch-size 16" in err, err
    assert "please report it" not in err
    if where == "end_epoch":
        assert "in the evaluation that ends epoch 1" in err


def test_another_runtime_error_in_training_is_still_ours_to_report(tmp_path, tiny_utk, monkeypatch, capsys):
    import training.loop as loop

    def broken(*args, **kwargs):
        raise RuntimeError("shape mismatch")

    monkeypatch.setattr(loop, "train_step", broken)
    status = main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                        "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--threads", "1",
                        "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert status == 2 and "shape mismatch" in err and "please report it" in err


def test_an_evaluation_goes_through_a_link_and_keeps_the_files_mode(tmp_path):
    """A bare rename had put a new file of mode 0644 in the link's place (the file it led to left as it was), and
    a 0640 report came back readable to all."""
    from training.evaluate import write_evaluation

    (tmp_path / "run1.json").write_text('{"old": true}')
    (tmp_path / "run1.json").chmod(0o640)
    (tmp_path / "latest.json").symlink_to("run1.json")
    write_evaluation(tmp_path / "latest.json", '{"new": true}', "the --json report", "kept")
    assert (tmp_path / "latest.json").is_symlink()
    assert json.loads((tmp_path / "run1.json").read_text()) == {"new": True}
    assert (tmp_path / "run1.json").stat().st_mode & 0o777 == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["latest.json", "run1.json"]
