"""One command at a time writes an output: two audits, trainers or runs on one --out (two terminals, a re-run while
the first still ran) had interleaved their files, each saying it had written them; and caches a crash or a race left
damaged are read again, not a traceback on every later command."""
from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from filelock import FileLock

import main
from inference.writing import Staged, one_writer
from tests.conftest import REPO, own_pattern, utk_images

BUSY = "is writing to it; wait for it to finish, or give another --out"


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_two_staged_sets_in_one_folder_leave_each_other_alone(tmp_path):
    """Every process staged report.json as .report.json.new: one audit put the other's file in place, or its
    discard deleted what the other had staged."""
    report = tmp_path / "report.json"
    ours, theirs = Staged(), Staged()
    ours.path(report).write_text("ours")
    theirs.path(report).write_text("theirs")
    ours.put_in_place()
    assert report.read_text() == "ours"
    theirs.discard()  # theirs stopped: what it staged goes, nothing of ours
    assert report.read_text() == "ours" and [p.name for p in tmp_path.iterdir()] == ["report.json"]
    again, other = Staged(), Staged()
    again.path(report).write_text("again")
    other.path(report).write_text("other")
    other.discard()
    again.put_in_place()  # the other's discard had deleted it: "No such file or directory"
    assert report.read_text() == "again" and [p.name for p in tmp_path.iterdir()] == ["report.json"]


def test_a_checkpoint_saved_while_another_process_saves_one_is_whole(tmp_path, monkeypatch):
    """Both wrote last.tmp: one renamed the other's in place, and the other failed on a file gone, said as "could
    not write the checkpoint (No such file or directory) … once there is room for it"."""
    import training.checkpoints as checkpoints
    import training.loop as loop
    from tests.test_loop import ToyTask

    ctx = loop.make_context(loop.LoopConfig(tmp_path, epochs=1, batch_size=8), torch.device("cpu"))
    real_save = torch.save

    def another_saves_meanwhile(state, path):
        real_save(state, path)
        if state["config"] == {"toy": True}:  # ours written; another run's whole save happens before our rename
            other = ToyTask()
            other.config = {"other": True}
            checkpoints.Checkpoints(tmp_path).save(other, 0, 8, ctx)

    monkeypatch.setattr(checkpoints.torch, "save", another_saves_meanwhile)
    checkpoints.Checkpoints(tmp_path).save(ToyTask(), 0, 8, ctx)
    assert checkpoints.load_checkpoint(tmp_path)["config"] == {"toy": True}  # ours, renamed last: whole
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


def _faces(folder: Path, n: int = 3) -> Path:
    folder.mkdir()
    for p in utk_images(n):
        shutil.copy(p, folder / p.name)
    return folder


def test_an_audit_into_an_out_another_audit_writes_stops_before_writing(tmp_path, tiny_models, capsys):
    """The second audit had run, put its report.json beside the first's report.html, and said it wrote both."""
    out = tmp_path / "out"
    out.mkdir()
    (out / "report.json").write_text("the first audit's")
    argv = ["audit", "--dataset", f"folder:{_faces(tmp_path / 'faces')}", "--aligned", "--classifier",
            str(tiny_models["classifier"]), "--no-filter", "--no-progress", "--threads", "1", "--no-html",
            "--out", str(out)]
    with one_writer(out, out / ".lock", "audit"):
        capsys.readouterr()
        assert main.main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: {out}: another audit (process {os.getpid()}, started " in err and BUSY in err
        assert _files(out) == {".lock": (out / ".lock").read_bytes(), "report.json": b"the first audit's"}
    assert main.main(argv) == 0  # once the first has finished
    assert sorted(p.name for p in out.iterdir()) == ["cache", "faces.csv", "report.json", "run.json"]


@pytest.mark.parametrize("trainer", ["classifier", "cyclegan", "compare"])
def test_a_trainer_on_a_run_folder_another_command_holds_stops_before_writing(trainer, tmp_path, tiny_utk, capsys):
    """Two trainers on one --out had both trained, each saving its checkpoints over the other's, and both said
    they had succeeded (a CycleGAN folder ended with one seed's last.pt beside the other's exported filter)."""
    run = tmp_path / "run"
    run.mkdir()
    a, b = tmp_path / "A", tmp_path / "B"
    for i, face in enumerate(sorted(p for p in tiny_utk.iterdir() if p.name[0].isdigit())[:60]):
        (a if i % 2 else b).mkdir(exist_ok=True)
        shutil.copy(face, (a if i % 2 else b) / face.name)
    common = ["--cache", str(tmp_path / "cache"), "--threads", "1", "--out", str(run), "--max-steps", "1"]
    argv = {"classifier": ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                           "--epochs", "1", "--batch-size", "16"],
            "compare": ["train", "compare", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                        "--epochs", "1", "--batch-size", "16"],
            "cyclegan": ["train", "cyclegan", "--domain-a", str(a), "--domain-b", str(b), "--preset",
                         "smoke", "--min-domain-size", "4", "--iters-per-epoch", "1", "--n-epochs", "1",
                         "--n-epochs-decay", "0", "--sample-every", "0", "--eval-faces", "12"]}[trainer]
    holder = FileLock(run / ".lock", timeout=0)  # another command's hold, as the OS sees it
    with holder:
        assert main.main([*argv, *common]) == 2
        assert f"error: {run}: another train {trainer} {BUSY}" in capsys.readouterr().err
        assert [p.name for p in run.iterdir()] == [".lock"]  # nothing written


def test_a_resume_while_the_run_still_trains_stops_and_leaves_its_checkpoint(tmp_path, tiny_utk, capsys):
    """`--resume` while the first still trained had loaded its checkpoint and trained on beside it: epochs.csv held
    epochs 9-22 twice, and last.pt one run's work, the other's gone."""
    assert main.main(["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8",
                      "--epochs", "1", "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--threads", "1",
                      "--out", str(tmp_path / "run"), "--max-steps", "1"]) == 0
    run = tmp_path / "run"
    before = _files(run)
    resume = ["train", "classifier", "--out", str(run), "--resume", "--cache", str(tmp_path / "cache"),
              "--threads", "1", "--max-steps", "1"]
    with one_writer(run, run / ".lock", "train classifier"):
        capsys.readouterr()
        assert main.main(resume) == 2
        assert f"{run}: another train classifier (process {os.getpid()}" in capsys.readouterr().err
        assert {n: b for n, b in _files(run).items() if n != ".lock"} == before
    assert main.main(resume) == 0
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # the lock goes with the command


def test_a_run_into_a_csv_another_run_writes_stops_and_the_lock_ends_with_its_process(tmp_path, tiny_models, capsys):
    """Two `run --out same.csv` had torn the header and mixed rows of both, each saying its rows were written. The
    hold is the OS's: a holder killed leaves none standing."""
    csv_path = tmp_path / "rows" / "same.csv"
    csv_path.parent.mkdir()
    csv_path.write_text("the first run's rows\n")
    holding = ("import sys; from pathlib import Path; from inference.writing import one_writer\n"
               f"with one_writer(Path({str(csv_path)!r}), Path({str(csv_path.parent / '.same.csv.lock')!r}), 'run'):\n"
               "    print('held', flush=True); sys.stdin.read()\n")
    holder = subprocess.Popen([sys.executable, "-c", holding], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        argv = ["run", "--source", str(_faces(tmp_path / "faces", 2)), "--out", str(csv_path), "--classifier",
                str(tiny_models["classifier"]), "--no-filter", "--threads", "1"]
        assert main.main(argv) == 2
        err = capsys.readouterr().err
        assert f"error: {csv_path}: another run (process {holder.pid}, started " in err and BUSY in err
        assert csv_path.read_text() == "the first run's rows\n"
    finally:
        holder.kill()  # no release of its own: the OS lets go of its lock
        holder.wait()
    assert main.main(argv) == 0
    assert csv_path.read_text().startswith("frame,") and [p.name for p in csv_path.parent.iterdir()] == ["same.csv"]


@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_thumbnail_cache_is_read_again_with_a_warning(damage, tmp_path, caplog):
    """A thumbnails .npz cut short (a full disk, a kill) or corrupt gave zipfile.BadZipFile on every later command."""
    from inference.datasets.near_identical import thumbnails
    from inference.user_dirs import folder_cache_file

    root = tmp_path / "faces"
    root.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(root / f"{i}.png"), np.clip(128 + own_pattern(rng, 32), 0, 255).astype(np.uint8))
    stats = {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(root.iterdir())}
    kept, thumbs = thumbnails(stats, str(root), tmp_path / "cache")
    cache = folder_cache_file(tmp_path / "cache", "thumbnails", str(root), ".npz")
    data = cache.read_bytes()
    cache.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[:40] + bytes(len(data) - 40))
    with caplog.at_level(logging.WARNING):
        again, thumbs_again = thumbnails(stats, str(root), tmp_path / "cache")
    assert again == kept and np.array_equal(thumbs_again, thumbs)
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and said[0].startswith(f"{cache}: damaged cache of thumbnails (") and "read again" in said[0]
    assert thumbnails(stats, str(root), tmp_path / "cache")[0] == kept  # made whole again


def test_a_truncated_cache_of_decoded_faces_is_decoded_again_with_a_warning(tmp_path, caplog):
    """A faces_*/images.npy cut short gave "ValueError: mmap length is greater than file size" on every later
    training command on that dataset."""
    from training.data.cache import load_images

    paths = [str(p) for p in utk_images(3)]
    first = np.array(load_images(paths, 32, tmp_path).images)
    images = next(tmp_path.glob("faces_32_*")) / "images.npy"
    images.write_bytes(images.read_bytes()[:1000])
    with caplog.at_level(logging.WARNING):
        again = load_images(paths, 32, tmp_path)
    assert np.array_equal(np.array(again.images), first) and again.ok.all()
    said = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(said) == 1 and said[0].startswith(f"{images}: damaged cache of decoded faces (")
    assert images.stat().st_size > 32 * 32 * 3 * 3  # decoded again, whole


def _dead_pid() -> int:
    """The pid of a process that has ended."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


def test_what_a_killed_writer_left_is_cleared_by_the_next_and_nothing_of_a_live_one(tmp_path):
    """A SIGKILL mid-save leaves its private file, named so that no later save overwrites it: three killed
    checkpoint saves had left 520 MB of hidden files beside last.pt, and a killed audit its staging folder."""
    from inference.writing import private_path

    dead, alive = _dead_pid(), os.getppid()
    left = [tmp_path / f".last.pt.{dead}-0a1b2c3d.tmp", tmp_path / f".report.json.{dead}-0a1b2c3d.part"]
    kept = [tmp_path / f".last.pt.{alive}-0a1b2c3d.tmp", tmp_path / "notes.txt", tmp_path / ".last.pt.keep"]
    # a dead pid's file touched a moment ago may be another machine's writer at work (a pid is only its own host's)
    fresh = tmp_path / f".last.pt.{dead}-0e1f2a3b.tmp"
    staged_dead, staged_alive = tmp_path / f".staged-{dead}-0a1b2c3d", tmp_path / f".staged-{alive}-0a1b2c3d"
    for folder in (staged_dead, staged_alive):
        folder.mkdir()
        (folder / ".report.json.new").write_bytes(b"x")
    an_hour_ago = time.time() - 3600
    for f in [*left, *kept, fresh]:
        f.write_bytes(b"x")
    for f in [*left, *kept, staged_dead, staged_dead / ".report.json.new", staged_alive, staged_alive / ".report.json.new"]:
        os.utime(f, (an_hour_ago, an_hour_ago))
    private_path(tmp_path / "last.pt")  # clears what killed writers of last.pt left, and only that
    assert not left[0].exists() and left[1].exists() and fresh.exists() and all(f.exists() for f in kept)
    Staged().path(tmp_path / "report.json")  # clears killed writers' staging folders
    assert not staged_dead.exists() and staged_alive.exists()


def test_whether_a_writer_still_runs_is_asked_of_psutil_which_asks_windows_without_a_signal(monkeypatch):
    """os.kill(pid, 0) would send a Windows process Ctrl-C, so every process had been taken as running there and no
    killed writer's leftovers were ever cleared on Windows. psutil asks each system its own way; its answer is taken
    (stubbed here: this machine is not Windows)."""
    import psutil

    from inference.writing import process_alive

    assert not process_alive(_dead_pid()) and process_alive(os.getpid()) and process_alive(os.getppid())
    asked = []
    monkeypatch.setattr(psutil, "pid_exists", lambda pid: asked.append(pid) or False)
    assert not process_alive(os.getppid()) and asked == [os.getppid()]
    monkeypatch.setattr(psutil, "pid_exists", lambda pid: (_ for _ in ()).throw(psutil.AccessDenied(pid)))
    assert process_alive(os.getppid())  # not to be told: kept, nothing of it removed


def test_a_file_system_that_gives_no_locks_is_written_as_before_with_a_warning(tmp_path, monkeypatch, caplog):
    """An NFS mount without its lock daemon (ENOLCK) or a FUSE one (EOPNOTSUPP) made every writing command fail with
    "error: No locks available", naming no file, and left a folder holding only the lock file."""
    import errno

    import fcntl

    def refuse(fd, op):
        raise OSError(errno.ENOLCK, os.strerror(errno.ENOLCK))

    monkeypatch.setattr(fcntl, "flock", refuse)
    out = tmp_path / "new" / "out"
    with caplog.at_level(logging.WARNING), one_writer(out, out / ".lock", "audit"):
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text("{}")
    assert "gives no locks (No locks available): written without one" in caplog.text
    assert sorted(p.name for p in out.iterdir()) == ["report.json"]
    empty = tmp_path / "empty" / "out"
    with one_writer(empty, empty / ".lock", "audit"):
        pass
    assert not (tmp_path / "empty").exists()  # folders made for the lock alone are not left behind


def test_a_cache_of_decoded_faces_missing_a_file_is_decoded_again(tmp_path, caplog):
    """Its log says to delete it whenever you like: a deleted images.npy beside its `done` mark failed every later
    training on that dataset ("No such file or directory")."""
    from training.data.cache import load_images

    paths = [str(p) for p in utk_images(2)]
    first = np.array(load_images(paths, 32, tmp_path).images)
    (next(tmp_path.glob("faces_32_*")) / "images.npy").unlink()
    with caplog.at_level(logging.WARNING):
        again = load_images(paths, 32, tmp_path)
    assert np.array_equal(np.array(again.images), first) and "damaged cache of decoded faces" in caplog.text
