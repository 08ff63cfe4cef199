"""Every command answers --help; doctor reports providers, models and cameras."""
import subprocess
import sys

import pytest

import main
from tests.conftest import REPO

COMMANDS = ([[name] for name, _, _ in main.COMMANDS] + [["train", name] for name, _, _ in main.TRAIN_COMMANDS]
            + [["bench", name] for name, _, _ in main.BENCH_COMMANDS])


def test_entry_point_help_runs_as_a_script():
    out = subprocess.run([sys.executable, "main.py", "--help"], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "usage: main.py" in out.stdout and "audit" in out.stdout


@pytest.mark.parametrize("cmd", COMMANDS, ids=" ".join)
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as done:
        main.main([*cmd, "--help"])
    assert done.value.code == 0
    assert f"usage: main.py {' '.join(cmd)}" in capsys.readouterr().out


def test_doctor(capsys):
    assert main.main(["doctor", "--cameras", "1"]) == 0
    out = capsys.readouterr().out
    assert "ONNX Runtime" in out and "CUDA devices visible" in out and "models in" in out and "cameras" in out


def test_user_errors_are_one_line_not_tracebacks(tmp_path, capsys):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x00garbage")
    code = main.main(["train", "evaluate", "--model", str(bad), "--dataset", f"folder:{tmp_path}"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err and str(tmp_path) in err


@pytest.mark.parametrize("missing, package", [("cv2", "opencv-python-headless"), ("skimage", "scikit-image")])
def test_a_missing_dependency_is_named_not_a_traceback(missing, package):
    """A Python without the project's packages (not the .venv): which one, and how to set up."""
    code = f"import sys; sys.modules[{missing!r}] = None; import main; sys.exit(main.main(['audit', '--help']))"
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert f"no module '{missing}' (pip package {package})" in out.stderr and "scripts/setup" in out.stderr


def test_doctor_cards_prints_every_default_model_as_markdown(capsys):
    from inference.defaults import MODELS_DIR

    assert main.main(["doctor", "--cards"]) == 0
    out = capsys.readouterr().out
    for path in MODELS_DIR.glob("*.onnx"):
        assert f"`{path.name}`" in out
    assert "| gender×race | n | accuracy [95% CI] | FPR | FNR |" in out
