"""An installed copy (`pip install /path/to/clone`, not -e) as a school's admin sets one up: its default models, the
name it goes by, where it writes, a .venv another user made, and what a plain install leaves out (PyTorch).

Found by a review: the wheel had no resources/ (doctor: "models in …/site-packages/resources/models: (none)"; audit,
run and bench: "no classifier found"); `--help` said `usage: main.py` and doctor `python main.py doctor train`
under the console script; `bench --timing-filter` wrote runs/timing into site-packages; and scripts/setup ran
`rm -rf .venv` on a teacher's .venv whose Python a student cannot run."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

import main

REPO = Path(__file__).resolve().parent.parent
# What a clone holds that the wheel is built from (tests/, docs/ and scripts/ stay in the clone)
SOURCES = ("main.py", "pyproject.toml", "README.md", "inference", "training", "gui", "resources")
# A console script as pip writes it: sys.argv[0] is the script's own path
CONSOLE_SCRIPT = ('import sys; sys.argv[0] = "/opt/class/bin/bias-mirror"; from main import script_main; '
                  "sys.exit(script_main())")
# An install without the extra 'train': torch and torchvision cannot be found (sys.modules[...] = None would also
# break scipy and scikit-image, which look torch up there)
NO_TORCH = """import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in ("torch", "torchvision"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
"""


def resource_files() -> dict[str, bytes]:
    """Every file under resources/ (the default models), by its path in the repository, as the runtime reads them."""
    found = {p.relative_to(REPO).as_posix(): p.read_bytes() for p in (REPO / "resources").rglob("*")
             if p.is_file() and "__pycache__" not in p.parts}
    assert any(name.endswith(".onnx") for name in found), sorted(found)
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The project's wheel, built offline by setuptools (the backend pyproject names) from a copy of the clone."""
    pytest.importorskip("setuptools")
    tree = tmp_path_factory.mktemp("clone")
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(source, tree / name)
    out = tmp_path_factory.mktemp("dist")
    build = "import sys; from setuptools import build_meta; build_meta.build_wheel(sys.argv[1])"
    done = subprocess.run([sys.executable, "-c", build, str(out)], cwd=tree, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    (built,) = out.glob("*.whl")
    return built


def dist_info(wheel: zipfile.ZipFile, name: str) -> str:
    (path,) = [n for n in wheel.namelist() if n.endswith(f".dist-info/{name}")]
    return wheel.read(path).decode()


# --- 1. the default models travel with an install, which names itself as started ------------------------------
def test_the_wheel_carries_every_file_of_resources_byte_for_byte(wheel):
    with zipfile.ZipFile(wheel) as whl:
        names = set(whl.namelist())
        for name, data in resource_files().items():
            assert name in names, f"{wheel.name} lacks {name}"
            assert whl.read(name) == data, f"{wheel.name}: {name} differs from the repository's"
        assert "inference/defaults.py" in names  # resources/ beside it, where defaults.MODELS_DIR looks
        assert "bias-mirror = main:script_main" in dist_info(whl, "entry_points.txt")


def test_an_installed_copy_finds_its_models_and_names_its_console_script(wheel, tmp_path):
    """The wheel unpacked as pip puts it in site-packages, run as its console script from another folder."""
    site = (tmp_path / "site-packages").resolve()
    with zipfile.ZipFile(wheel) as whl:
        whl.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "doctor", "--cameras", "0", "--no-gpu-probe"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert f"models in {site / 'resources' / 'models'}:" in done.stdout, done.stdout + done.stderr
    for name in resource_files():
        assert f"  {Path(name).name}: " in done.stdout, (name, done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "bias-mirror doctor train" in done.stdout and "main.py" not in done.stdout + done.stderr, done.stdout


def test_the_console_script_gives_its_own_name_in_usage():
    done = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: bias-mirror [-h]"), done.stdout + done.stderr
    done = subprocess.run([sys.executable, "-c", CONSOLE_SCRIPT, "audit", "--datset", "x"], cwd=REPO,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "usage: bias-mirror audit" in done.stderr, done.stderr
    assert "bias-mirror audit --help lists them" in done.stderr and "main.py" not in done.stderr, done.stderr


def test_main_called_by_a_program_of_its_own_stays_main_py(monkeypatch, capsys):
    """pytest (or a script driving the app) calls main.main: its sys.argv[0] is not Bias Mirror's name."""
    monkeypatch.setattr(sys, "argv", ["/usr/lib/python3/dist-packages/pytest", "-q"])
    with pytest.raises(SystemExit) as exc:
        main.main(["--help"])
    assert exc.value.code == 0 and capsys.readouterr().out.startswith("usage: main.py [-h]")
    with pytest.raises(SystemExit):
        main.main(["bench", "banana"], prog="bias-mirror")
    assert "bias-mirror bench runs alone or as bench detect or bench train" in capsys.readouterr().err


def test_doctor_names_the_program_it_was_started_as(capsys):
    from inference import doctor

    assert doctor.training_hint("bias-mirror", torch_installed=True).endswith(": bias-mirror doctor train")
    assert doctor.training_hint("python main.py", torch_installed=True).endswith(": python main.py doctor train")
    without = doctor.training_hint("bias-mirror", torch_installed=False)
    assert '"bias-mirror[train]"' in without and without.endswith("then bias-mirror doctor train")
    doctor._status(0, 0, "bias-mirror")  # no classifier: how to train one
    assert "train one: bias-mirror train classifier --help" in capsys.readouterr().err


# --- 3. bench's timing filter is kept in the user's cache, not beside the source ------------------------------
def test_the_timing_filter_is_exported_to_the_users_cache(tmp_path, monkeypatch):
    """runs/timing beside the source was site-packages once installed: Permission denied for a user."""
    from training.timing_filter import default_path, ensure_timing_filter

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = default_path("smoke")
    assert path.parent == tmp_path / "cache" / "bias-mirror" / "timing", path
    assert ensure_timing_filter("smoke") == path and path.is_file()
    made = path.stat().st_mtime_ns
    assert ensure_timing_filter("smoke") == path and path.stat().st_mtime_ns == made  # kept, not made again


# --- 2. scripts/setup and a .venv another user made -------------------------------------------------------------
NOBODY = 65534


def _as_nobody_possible() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("setpriv") is not None


def _setup_checkout(root: Path) -> Path:
    repo = root / "repo"
    shutil.copytree(REPO / "scripts", repo / "scripts")
    shutil.copy(REPO / "pyproject.toml", repo / "pyproject.toml")
    return repo


def _logging_python(path: Path, log: Path, real: str | None = None) -> Path:
    """A Python that logs what it is asked to run (-m venv, -m pip) and runs nothing; ``-c`` code in ``real``."""
    run_code = f'if [ "$1" = -c ]; then exec "{real}" "$@"; fi\n' if real else ""
    path.write_text(f'#!/bin/sh\n{run_code}if [ "$1 $2" = "-m pip" ] && [ "$3" = --version ]; then exit 0; fi\n'
                    f'echo "$(basename "$0") $*" >> "{log}"\nexit 0\n')
    path.chmod(0o755)
    return path


def _run_setup_as_nobody(repo: Path, python: Path) -> subprocess.CompletedProcess:
    command = [shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "env", "-i",
               "PATH=/usr/bin:/bin", "HOME=/nonexistent", f"PYTHON={python}", shutil.which("bash"),
               str(repo / "scripts" / "setup")]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=60)


@pytest.fixture
def shared_root():
    """A folder every user can enter (pytest's own temporary folder is its user's alone); removed after."""
    root = Path(tempfile.mkdtemp(prefix="bias-mirror-setup-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.parametrize("writable", [False, True], ids=["closed", "open to all"])
def test_setup_leaves_another_users_venv_it_cannot_run_as_it_is(shared_root, writable):
    """The teacher's .venv, its Python under a mode-700 home: setup as a student said "making it again" and ran
    rm -rf .venv, a "Permission denied" per file (1,482), or, where the folder let it, deleted the venv."""
    if not _as_nobody_possible():
        pytest.skip("needs root and setpriv to run setup as another user")
    repo = _setup_checkout(shared_root)
    home = shared_root / "teacher-home"  # as /root/.pyenv/versions/3.11.7/bin
    (home / "bin").mkdir(parents=True)
    _logging_python(home / "bin" / "python3", shared_root / "teacher.log")
    home.chmod(0o700)
    venv = repo / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "lib" / "site-packages").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(home / "bin" / "python3")
    (venv / "pyvenv.cfg").write_text(f"home = {home / 'bin'}\nversion = 3.11.7\n")
    (venv / "lib" / "site-packages" / "numpy.py").write_text("")
    if writable:
        for folder in (venv, venv / "bin", venv / "lib", venv / "lib" / "site-packages"):
            folder.chmod(0o777)
    log = shared_root / "student.log"
    log.touch()
    log.chmod(0o666)
    student_python = _logging_python(shared_root / "python3", log)
    before = _files(venv)
    done = _run_setup_as_nobody(repo, student_python)
    assert done.returncode == 1, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and "Permission denied" not in done.stderr, done.stderr
    assert lines[0].startswith("setup: .venv is another user's and its Python .venv/bin/python"), lines
    assert f"(made from {home / 'bin'})" in lines[0] and "cannot be run by this user" in lines[0], lines
    assert _files(venv) == before and log.read_text() == ""  # nothing removed, no venv made, no pip


def test_setup_will_not_install_into_a_venv_this_user_cannot_write(shared_root):
    """Another user's .venv whose Python runs, with pyproject.toml changed since its install: pip failed on every
    file of every package."""
    if not _as_nobody_possible():
        pytest.skip("needs root and setpriv to run setup as another user")
    real = next((p for p in ("/usr/bin/python3", "/usr/local/bin/python3") if os.access(p, os.X_OK)), None)
    if real is None or subprocess.run([shutil.which("setpriv"), f"--reuid={NOBODY}", f"--regid={NOBODY}",
                                       "--clear-groups", real, "-c", "pass"], capture_output=True).returncode != 0:
        pytest.skip("no Python another user can run")
    repo = _setup_checkout(shared_root)
    log = shared_root / "pip.log"
    log.touch()
    log.chmod(0o666)
    (repo / ".venv" / "bin").mkdir(parents=True)
    _logging_python(repo / ".venv" / "bin" / "python", log, real)
    done = _run_setup_as_nobody(repo, _logging_python(shared_root / "python3", log))
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert "cannot write it" in done.stderr and log.read_text() == "", (done.stderr, log.read_text())


def test_setup_still_makes_this_users_own_unusable_venv_again(tmp_path):
    """Its own .venv whose Python is gone is remade, as before (the case setup's remaking is for)."""
    repo = _setup_checkout(tmp_path)
    log = tmp_path / "called.log"
    in_venv = _logging_python(tmp_path / "venv-python", log, sys.executable)
    base = tmp_path / "python3"
    base.write_text(f'#!/bin/sh\nif [ "$1 $2" = "-m venv" ]; then echo "venv $3" >> "{log}"; mkdir -p "$3/bin" && '
                    f'cp "{in_venv}" "$3/bin/python"; exit 0; fi\nexec "{sys.executable}" "$@"\n')
    base.chmod(0o755)
    (repo / ".venv" / "bin").mkdir(parents=True)
    (repo / ".venv" / "bin" / "python").symlink_to(tmp_path / "gone" / "python3")
    done = subprocess.run([shutil.which("bash"), str(repo / "scripts" / "setup")], cwd=repo,
                          env={**os.environ, "PYTHON": str(base)}, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "setup: .venv is unusable (its Python .venv/bin/python cannot be run by this user" in done.stderr
    called = log.read_text().splitlines()
    assert called[0] == "venv .venv" and "python -m pip install --quiet -e .[dev]" in called, called


# --- 4. PyTorch is the extra 'train': a command that needs it says so ---------------------------------------------
def test_pyproject_leaves_pytorch_to_the_train_extra_which_dev_includes():
    tomllib = pytest.importorskip("tomllib", reason="Python 3.10 has no tomllib")
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    base = " ".join(project["dependencies"])
    assert "torch" not in base, base  # torchvision too
    extras = project["optional-dependencies"]
    assert {r.split(">")[0].split("=")[0] for r in extras["train"]} == {"torch", "torchvision"}, extras
    assert "bias-mirror[train]" in extras["dev"], extras  # scripts/setup and CI install .[dev]: everything


def _without_torch(argv: list[str], prog: str = "main.py") -> subprocess.CompletedProcess:
    given = "" if prog == "main.py" else f", prog={prog!r}"  # main.py: as a checkout's main.main(argv) always ran
    code = NO_TORCH + f"import main\nsys.exit(main.main({argv!r}{given}))\n"
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)


# Real runs: their --help no longer needs PyTorch (tests/test_cli_help_light.py), the training itself does.
@pytest.mark.parametrize("argv", [["train", "classifier", "--out", "OUT"],
                                  ["train", "compare", "--dataset", "utkface:x", "--out", "OUT"],
                                  ["train", "cyclegan", "--out", "OUT"], ["bench", "train"], ["doctor", "train"]],
                         ids=lambda argv: " ".join(argv))
def test_a_command_that_needs_pytorch_names_the_extra_to_install(argv, tmp_path):
    out = tmp_path / "out"
    done = _without_torch([str(out) if a == "OUT" else a for a in argv])
    assert not out.exists()
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert "no module 'torch'" in line and "optional extra 'train'" in line and '"bias-mirror[train]"' in line, line
    assert "bash scripts/setup" in line, line  # started as main.py: a checkout, which setup sets up


def test_an_installed_copy_without_pytorch_is_not_sent_to_scripts_setup(tmp_path):
    faces = tmp_path / "faces"
    faces.mkdir()
    import cv2
    import numpy as np

    cv2.imwrite(str(faces / "a.png"), np.full((64, 64, 3), 128, np.uint8))  # any image: it stops before reading
    done = _without_torch(["bench", "--source", str(faces), "--timing-filter", "smoke", "--no-baseline"], "bias-mirror")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    (line,) = done.stderr.splitlines()
    assert '-m pip install "bias-mirror[train]"' in line and "scripts/setup" not in line and "main.py" not in line


def test_what_needs_no_pytorch_runs_without_it():
    """The app, run, audit, plain doctor and the ONNX-only trainers' steps: a plain install is enough."""
    code = NO_TORCH + """import main
for argv in (["app", "--help"], ["run", "--help"], ["audit", "--help"], ["bench", "--help"],
             ["bench", "detect", "--help"], ["train", "evaluate", "--help"], ["train", "fp16", "--help"],
             ["train", "adopt", "--help"], ["train", "classifier", "--help"], ["train", "compare", "--help"],
             ["train", "cyclegan", "--help"], ["bench", "train", "--help"], ["doctor", "train", "--help"]):
    try:
        main.main(argv)
    except SystemExit as exc:
        assert exc.code == 0, (argv, exc.code)
sys.exit(main.main(["doctor", "--cameras", "0", "--no-gpu-probe"], prog="bias-mirror"))
"""
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert 'PyTorch is not installed here; it comes with the optional extra \'train\'' in done.stdout, done.stdout
    assert '"bias-mirror[train]"), then bias-mirror doctor train' in done.stdout, done.stdout
