"""What the project tells users of macOS and Windows: advice checked on Linux through each function's ``platform``
seam (a ``sys.platform`` value), and the setup scripts run in a copy whose venv has Windows' layout or whose system
has no sha1sum, as macOS up to 13.
"""
from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from tests.conftest import REPO


# --- ONNX Runtime: macOS has the CPU build only -----------------------------------------------------------------
def _declared_onnxruntime(system: str) -> str:
    """The onnxruntime distribution pyproject.toml declares for ``system`` (platform_system: Darwin, Linux…)."""
    text = (REPO / "pyproject.toml").read_text()
    for requirement in re.findall(r'"(onnxruntime[^"]*)"', text):
        if f"'{system}'" in requirement:
            return re.match(r"[\w-]+", requirement).group(0)
    raise AssertionError(f"pyproject.toml declares no onnxruntime for {system}")


def _cpu_build(monkeypatch, package: str):
    """ORT as the CPU build ``package`` (no CUDA) reports itself, whatever is installed here."""
    import onnxruntime as ort

    from inference import gpu

    build = gpu.OrtBuild(package, ort.__version__, None, "", Path(ort.__file__).parent / "capi")
    monkeypatch.setattr(gpu, "ort_build", lambda: build)
    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])


def test_doctor_on_macos_does_not_advise_swapping_the_only_onnxruntime_it_has(monkeypatch):
    """`doctor` on a Mac said "pip uninstall onnxruntime && pip install onnxruntime-gpu": onnxruntime-gpu has no
    macOS wheel, so following it uninstalled the working runtime and the install then failed."""
    from inference import gpu
    from inference.doctor import cpu_only_advice

    _cpu_build(monkeypatch, _declared_onnxruntime("Darwin"))
    said = [*gpu.report_lines(False, "darwin"), cpu_only_advice(False, "darwin"), gpu.probe(gpu.CUDA, "darwin").reason]
    for line in said:
        assert "pip uninstall" not in line and "install onnxruntime-gpu" not in line, line
    assert "CPU-only build" in said[0] and "macOS has no CUDA" in said[0], said
    assert "runs on the CPU" in said[1], said


def test_the_cpu_build_advice_on_linux_and_windows_is_still_to_install_onnxruntime_gpu(monkeypatch):
    from inference import gpu
    from inference.doctor import cpu_only_advice

    _cpu_build(monkeypatch, "onnxruntime")
    for platform in ("linux", "win32"):
        assert "pip uninstall onnxruntime && pip install onnxruntime-gpu" in gpu.report_lines(False, platform)[0]
        assert "install onnxruntime-gpu instead of onnxruntime" in gpu.probe(gpu.CUDA, platform).reason
        assert "an NVIDIA GPU and its driver, onnxruntime-gpu," in cpu_only_advice(False, platform)


@pytest.mark.parametrize("platform, system", [("darwin", "Darwin"), ("linux", "Linux"), ("win32", "Windows")])
def test_a_missing_onnxruntime_is_named_as_pyproject_declares_it_for_the_system(platform, system):
    """The hint named onnxruntime-gpu on macOS too, where pyproject installs onnxruntime (and no other exists)."""
    said = main.missing_module_message(ModuleNotFoundError(name="onnxruntime"), platform)
    assert f"(pip package {_declared_onnxruntime(system)})" in said, said


def test_a_missing_module_names_the_venvs_python_where_windows_keeps_it():
    """Windows' venv has Scripts\\python.exe and no bin folder: `.venv/bin/python main.py …` named no file there."""
    windows = main.missing_module_message(ModuleNotFoundError(name="cv2"), "win32")
    assert r"`.venv\Scripts\python.exe main.py …`" in windows and "`.venv/bin/python" not in windows, windows
    assert ".venv/bin/python main.py" in main.missing_module_message(ModuleNotFoundError(name="cv2"), "linux")


# --- the camera: macOS and Windows may refuse it --------------------------------------------------------------
@pytest.mark.parametrize("platform, where", [("darwin", "System Settings › Privacy & Security › Camera"),
                                             ("win32", "Settings › Privacy & security › Camera")])
def test_a_camera_that_did_not_open_sends_the_user_to_the_systems_camera_permission(platform, where):
    """A camera refused in the Privacy settings opens no more than a missing one, and the page said only "check it
    is connected and not in use"."""
    from gui.source_message import refusal_text
    from inference.errors import BiasMirrorError

    text = refusal_text("0", BiasMirrorError("no camera could be opened at index 0"), "camera 0", platform)
    assert where in text and "check it is connected and not in use" in text, text
    assert text.startswith("No camera found at index 0") and text.count("index 0") == 1, text
    linux = refusal_text("0", BiasMirrorError("no camera could be opened at index 0"), "camera 0", "linux")
    assert "Privacy" not in linux and "check it is connected and not in use" in linux


# --- where the app keeps its settings and log ----------------------------------------------------------------
def test_app_help_names_the_settings_and_log_this_system_uses(tmp_path, monkeypatch, capsys):
    """It named Linux's log folder alone ("~/.local/share/BiasMirror/BiasMirror on Linux") and no settings file,
    while the README said `app --help` says where."""
    chosen = tmp_path / "chosen settings.ini"
    monkeypatch.setenv("BIASMIRROR_SETTINGS", str(chosen))
    with pytest.raises(SystemExit):
        main.main(["app", "--help"])
    out = capsys.readouterr().out
    assert f"settings  {chosen}\n" in out, out
    if sys.platform.startswith("linux"):  # where Qt follows XDG_DATA_HOME (the tests' folder, conftest)
        log = Path(os.environ["XDG_DATA_HOME"]) / "BiasMirror" / "BiasMirror" / "bias-mirror.log"
        assert f"log       {log} " in out, out


# --- scripts/setup and scripts/app on Windows' venv layout and without sha1sum ---------------------------------
def _fake_pythons(tmp_path: Path, layout: str) -> tuple[Path, Path]:
    """A Python that makes .venv with ``layout`` (bin/python, or Scripts/python.exe as Windows' does), and the venv's
    Python it puts there: ``-c`` code runs in the real one, ``-m`` (pip) and ``main.py`` are logged, not run.
    Returns (the Python, the log)."""
    log = tmp_path / "called.log"
    in_venv = tmp_path / "venv-python"
    in_venv.write_text(f'#!/bin/sh\ncase "$1" in -m|main.py) echo "$(basename "$0") $*" >> "{log}"; exit 0;; esac\n'
                       f'exec "{sys.executable}" "$@"\n')
    base = tmp_path / "python3"
    base.write_text(f'#!/bin/sh\nif [ "$1" = -m ] && [ "$2" = venv ]; then\n  echo "venv $3" >> "{log}"\n'
                    f'  mkdir -p "$3/{Path(layout).parent}" && cp "{in_venv}" "$3/{layout}"\n  exit 0\nfi\n'
                    f'exec "{sys.executable}" "$@"\n')
    for fake in (in_venv, base):
        fake.chmod(0o755)
    return base, log


def _checkout(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts")
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    return repo


def _stamp(repo: Path) -> str:
    return ".installed-" + hashlib.sha1((repo / "pyproject.toml").read_bytes()).hexdigest()[:12]


def _run(repo: Path, script: str, *args: str, python: Path, path: str | None = None):
    env = {**os.environ, "PYTHON": str(python), "PATH": path or os.environ["PATH"]}
    return subprocess.run([shutil.which("bash"), str(repo / "scripts" / script), *args], cwd=repo, env=env,
                          capture_output=True, text=True, timeout=60)


def test_setup_and_app_use_a_venv_made_by_windows_python(tmp_path):
    """A venv made by Windows' Python (from Git Bash too) has Scripts/python.exe: setup looked for bin/python, so
    each run deleted .venv, made it again, and failed running .venv/bin/python."""
    python, log = _fake_pythons(tmp_path, "Scripts/python.exe")
    repo = _checkout(tmp_path)
    for _ in range(2):
        done = _run(repo, "setup", python=python)
        assert done.returncode == 0, done.stderr
    done = _run(repo, "app", "doctor", python=python)
    assert done.returncode == 0, done.stderr
    called = log.read_text().splitlines()
    assert sum(line.startswith("venv ") for line in called) == 1, called
    assert sum(line.startswith("python.exe -m pip install --quiet -e") for line in called) == 1, called
    assert called[-1] == "python.exe main.py doctor", called
    assert (repo / ".venv" / _stamp(repo)).is_file(), sorted(p.name for p in (repo / ".venv").iterdir())


def test_setup_installs_again_after_pyproject_changes_without_sha1sum(tmp_path):
    """macOS up to 13 has shasum, not sha1sum: setup stopped with "sha1sum: command not found" (status 127)."""
    python, log = _fake_pythons(tmp_path, "bin/python")
    repo = _checkout(tmp_path)
    tools = tmp_path / "tools"  # the commands the scripts and the fakes use, and no sha1sum
    tools.mkdir()
    for name in ("bash", "sh", "env", "dirname", "basename", "rm", "touch", "cat", "cut", "mkdir", "cp"):
        (tools / name).symlink_to(shutil.which(name))
    for change in ("", "\n# changed\n"):
        with open(repo / "pyproject.toml", "a") as fh:
            fh.write(change)
        done = _run(repo, "setup", python=python, path=str(tools))
        assert done.returncode == 0 and "sha1sum" not in done.stderr, done.stderr
        assert (repo / ".venv" / _stamp(repo)).is_file(), sorted(p.name for p in (repo / ".venv").iterdir())
    installs = [line for line in log.read_text().splitlines() if line.startswith("python -m pip install --quiet -e")]
    assert len(installs) == 2, installs


def test_setup_names_the_venvs_python_without_setting_anything_up(tmp_path):
    python, log = _fake_pythons(tmp_path, "Scripts/python.exe")
    repo = _checkout(tmp_path)
    assert _run(repo, "setup", "--python", python=python).returncode == 1 and not (repo / ".venv").exists()
    assert _run(repo, "setup", python=python).returncode == 0
    done = _run(repo, "setup", "--python", python=python)
    assert done.returncode == 0 and done.stdout.strip() == ".venv/Scripts/python.exe", done
