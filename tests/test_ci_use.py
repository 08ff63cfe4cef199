"""An audit wired into a CI pipeline: a damaged cache line, a fresh runner's first look at a dataset under
`--no-progress`, and an output on a read-only file system each read as what they are (a CI log reads exit status
1 as "the gate failed", progress bars as noise, "no permission" as a chmod to try)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from inference import arg_checks  # noqa: E402
from inference.audit.cache import Component, _line  # noqa: E402
from inference.datasets import near_identical  # noqa: E402
from inference.datasets.copies import merge_copies  # noqa: E402
from inference.datasets.folder import read_folder  # noqa: E402
from inference.errors import BiasMirrorError  # noqa: E402

import main as main_module  # noqa: E402


def test_a_cache_line_with_bytes_not_utf8_is_skipped_as_a_torn_one(tmp_path):
    """A byte not UTF-8 in OUT/cache/*.jsonl had ended the audit in a UnicodeDecodeError traceback, exit 1."""
    (tmp_path / "base.jsonl").write_bytes(_line("a", [1.0]).encode() + b"gar\xffbage\n"
                                          + _line("b", {"x": "\u00e9"}).encode())
    component = Component(tmp_path, "base")
    assert component.data == {"a": [1.0], "b": {"x": "\u00e9"}} and component.lines == 3


@pytest.fixture
def small_folder(tmp_path) -> Path:
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        cv2.imwrite(str(folder / f"{i}.png"), rng.integers(0, 256, (48, 48, 3), dtype=np.uint8))
    return folder


def test_no_progress_hides_the_first_look_at_a_dataset(small_folder, tmp_path, monkeypatch, capsys):
    """`audit --no-progress` on a fresh runner had printed the bars of the copy detection's first look."""
    monkeypatch.setattr(near_identical, "FIRST_LOOK_SHOWN_FROM", 1)  # these three files as many as a large dataset
    read = read_folder(small_folder)
    merge_copies(read, tmp_path / "cache_shown")
    assert "looking for near-identical images" in capsys.readouterr().err  # the bar this test looks for
    merge_copies(read, tmp_path / "cache_hidden", progress=False)
    assert "looking for" not in capsys.readouterr().err


def test_an_output_on_a_read_only_file_system_is_said_so(tmp_path, monkeypatch):
    """os.access refuses a read-only mount as it refuses a folder without permission: both had read "no
    permission"."""
    real_statvfs = os.statvfs

    def statvfs(path):
        flags = real_statvfs(path).f_flag | os.ST_RDONLY
        return SimpleNamespace(f_flag=flags)

    monkeypatch.setattr(arg_checks.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(arg_checks.os, "statvfs", statvfs)
    with pytest.raises(BiasMirrorError, match=r"cannot write in .* \(a read-only file system\)"):
        arg_checks.check_output_dir(tmp_path / "out", "--out")
    rows = tmp_path / "rows.csv"
    rows.write_text("")
    monkeypatch.setattr(arg_checks.os, "access", lambda path, mode: Path(path) != rows)  # its folder writable
    with pytest.raises(BiasMirrorError, match=r"cannot be overwritten \(a read-only file system\)"):
        arg_checks.check_output_file(tmp_path / "rows.csv", "--out")
    monkeypatch.setattr(arg_checks.os, "access", lambda *a, **k: False)
    monkeypatch.setattr(arg_checks.os, "statvfs", real_statvfs)
    with pytest.raises(BiasMirrorError, match=r"cannot write in .* \(no permission\)"):
        arg_checks.check_output_dir(tmp_path / "out", "--out")


def _doctor_that(monkeypatch, does) -> None:
    """`main.py doctor` with its command module's main replaced by ``does``."""
    import importlib

    doctor = importlib.import_module(dict((c, m) for c, m, _ in main_module.COMMANDS)["doctor"])
    monkeypatch.setattr(doctor, "main", does)


def test_a_fault_of_ours_exits_2_with_its_traceback_not_1(monkeypatch, capsys):
    """Python's status for an uncaught exception, 1, is the audit's "the ship gate failed"."""
    def fault(args):
        raise ValueError("a fault in the code")

    _doctor_that(monkeypatch, fault)
    assert main_module.main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "ValueError: a fault in the code" in err
    assert "error: an unexpected ValueError in Bias Mirror itself" in err


def test_sigterm_while_the_command_loads_stops_with_130(monkeypatch, capsys):
    """SIGTERM in the seconds before a command's own handler (its modules loading) had killed it with 143."""
    import importlib
    import signal
    import time

    loaded = importlib.import_module

    def slow_to_load(name, *a, **k):
        if name == "inference.doctor":
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal lands here, as it would amid the imports
        return loaded(name, *a, **k)

    monkeypatch.setattr(main_module.importlib, "import_module", slow_to_load)
    before = signal.getsignal(signal.SIGTERM)
    assert main_module.main(["doctor"]) == 130
    assert "stopped (SIGTERM)" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) == before, "main left its SIGTERM handler behind"


def test_audit_no_progress_hides_the_first_look_at_its_dataset(small_folder, tmp_path, tiny_models, monkeypatch,
                                                                capsys):
    monkeypatch.setattr(near_identical, "FIRST_LOOK_SHOWN_FROM", 1)
    argv = ["audit", "--dataset", f"folder:{small_folder}", "--classifier", str(tiny_models["classifier"]),
            "--aligned", "--no-html", "--no-dataset-cache"]
    assert main_module.main([*argv, "--out", str(tmp_path / "shown")]) == 0
    assert "looking for near-identical images" in capsys.readouterr().err  # the bar this test looks for
    assert main_module.main([*argv, "--out", str(tmp_path / "hidden"), "--no-progress"]) == 0
    assert "looking for" not in capsys.readouterr().err


def test_a_module_of_ours_missing_exits_2_not_1(monkeypatch, capsys):
    """A broken checkout (one of our modules gone) had been re-raised: Python's 1, the audit's "gate failed"."""
    import importlib

    loaded = importlib.import_module

    def incomplete(name, *a, **k):
        if name == "inference.doctor":
            raise ModuleNotFoundError("No module named 'inference.audit.gate'", name="inference.audit.gate")
        return loaded(name, *a, **k)

    monkeypatch.setattr(main_module.importlib, "import_module", incomplete)
    assert main_module.main(["doctor"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" in err and "module inference.audit.gate is missing" in err, err


def test_asking_git_for_provenance_takes_no_lock_in_the_checkout(monkeypatch):
    """`git status` refreshes the index under .git/index.lock: a command that only reads the checkout (adopt, a
    trainer's card) wrote into it, and a git command of the user's running then failed on the lock."""
    import subprocess

    from inference import checkout
    from training import provenance

    asked = []
    real = subprocess.run

    def recorded(argv, *a, **k):
        asked.append(argv)
        return real(argv, *a, **k)

    monkeypatch.setattr(checkout.subprocess, "run", recorded)
    provenance.git_commit()
    status = [argv for argv in asked if "status" in argv]
    assert status and all("--no-optional-locks" in argv[:argv.index("status")] for argv in status), asked
