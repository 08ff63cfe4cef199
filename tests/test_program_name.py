"""The commands Bias Mirror's hints, help, reports and cards give, as the user started it: `bias-mirror …` once pip
installed it (console script), `python main.py …` from a checkout.

Found by a review in an installed venv without a checkout: a model with no card said "train one with `python main.py
train …`", bench `--providers tensorrt` "`python main.py doctor` says which providers…", report.html "python main.py
audit --dataset …", and a run's card recorded "python main.py train classifier …" (its fp16 variant's
"training.fp16.make_variant"): a file the installed user does not have."""
from __future__ import annotations

import argparse
import re

import onnx
import pytest

import main
from inference import bench
from inference.audit.html import run_words
from inference.models import read_card
from inference.program_name import PROGRAM, program
from tests.conftest import require_utk


def _said(capsys) -> str:
    """Standard output and error together, with argparse's line wrapping undone."""
    captured = capsys.readouterr()
    return re.sub(r"\s+", " ", captured.out + captured.err)


@pytest.fixture
def cardless(tmp_path, tiny_models):
    path = tmp_path / "nocard.onnx"
    model = onnx.load(str(tiny_models["classifier"]))
    del model.metadata_props[:]
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("prog, typed", [("bias-mirror", "bias-mirror"), ("main.py", "python main.py")])
def test_a_model_without_a_card_says_how_to_give_it_one_as_started(tmp_path, cardless, plain_images, capsys, prog,
                                                                    typed):
    code = main.main(["run", "--source", str(plain_images), "--out", str(tmp_path / "rows.csv"), "--classifier",
                      str(cardless), "--no-filter"], prog=prog)
    said = _said(capsys)
    assert code == 2 and f"train one with `{typed} train …`" in said, said
    assert f"a card with `{typed} train adopt`" in said, said
    if prog == "bias-mirror":
        assert "main.py" not in said, said


@pytest.mark.parametrize("prog, typed", [("bias-mirror", "bias-mirror"), ("main.py", "python main.py")])
def test_bench_that_timed_nothing_points_to_doctor_as_started(tmp_path, tiny_models, plain_images, monkeypatch,
                                                             capsys, prog, typed):
    monkeypatch.setattr(bench, "load_for", lambda args, provider: (None, "no TensorRT here (stub)"))
    code = main.main(["bench", "--source", str(plain_images), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter", "--no-baseline", "--threads", "1", "--frames", "2", "--warmup", "0",
                      "--resolution", "64x64", "--providers", "tensorrt"], prog=prog)
    said = _said(capsys)
    assert code == 2 and f"`{typed} doctor` says which providers this machine can run" in said, said


@pytest.mark.parametrize("prog, typed", [("bias-mirror", "bias-mirror"), ("main.py", "python main.py")])
def test_a_commands_help_names_the_program_as_started(capsys, prog, typed):
    with pytest.raises(SystemExit):
        main.main(["run", "--help"], prog=prog)
    said = _said(capsys)
    assert f"`{typed} bench detect`" in said, said
    assert f"usage: {prog} run" in said and (prog == "main.py") == ("main.py" in said), said


def test_the_name_is_set_for_one_main_call_only(capsys):
    with pytest.raises(SystemExit):
        main.main(["doctor", "--help"], prog="bias-mirror")
    capsys.readouterr()
    assert program() == "python main.py"  # a test, a script calling the code directly: the checkout's form


def test_report_html_gives_the_audit_as_started():
    run = {"date": "2026-12-07T10:00:00+00:00", "argv": ["audit", "--dataset", "utkface:/home/ana/utk"]}
    assert run_words(run) == "run 2026-12-07T10:00:00+00:00: python main.py audit --dataset utkface:utk"
    token = PROGRAM.set("bias-mirror")
    try:
        assert run_words(run) == "run 2026-12-07T10:00:00+00:00: bias-mirror audit --dataset utkface:utk"
    finally:
        PROGRAM.reset(token)


def test_export_retry_hints_and_cards_name_the_program_as_started():
    from training.export import copy_not_made
    from training.resume import command_line

    args = argparse.Namespace(_argv=["train", "classifier", "--out", "runs/a"])
    token = PROGRAM.set("bias-mirror")
    try:
        said = copy_not_made("classifier", "runs/a", "runs/a/model.onnx", "placed", "/ro/m.onnx")
        assert "`bias-mirror train classifier --out runs/a --resume --export-to OTHER.onnx`" in said, said
        assert command_line(args, env={}) == "bias-mirror train classifier --out runs/a"
        # torchrun runs a script by its path: a checkout's main.py, whatever name the one-process form has
        torchrun = command_line(args, env={"WORLD_SIZE": "2", "LOCAL_WORLD_SIZE": "2"})
        assert torchrun == "torchrun --nproc_per_node 2 main.py train classifier --out runs/a"
    finally:
        PROGRAM.reset(token)
    assert command_line(args, env={}) == "python main.py train classifier --out runs/a"


def test_a_run_started_as_the_console_script_records_that_command_on_its_card(tmp_path, tiny_utk):
    argv = ["train", "classifier", "--dataset", f"utkface:{tiny_utk}", "--size", "32", "--width", "8", "--epochs", "1",
            "--batch-size", "16", "--cache", str(tmp_path / "cache"), "--out", str(tmp_path / "run"), "--threads", "1"]
    again = ["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--cache", str(tmp_path / "cache"),
             "--threads", "1"]
    assert main.main([*argv, "--max-steps", "2"], prog="bias-mirror") == 0
    assert main.main(again, prog="bias-mirror") == 0
    training = read_card(tmp_path / "run" / "model.onnx").training
    assert training["command"] == "bias-mirror " + " ".join([*argv, "--max-steps", "2"])
    assert training["resumes"] == ["bias-mirror " + " ".join(again)]


def test_an_fp16_variant_records_the_command_typed(tmp_path, tiny_models, capsys):
    out = tmp_path / "v.onnx"
    code = main.main(["train", "fp16", str(tiny_models["classifier"]), "--out", str(out), "--images",
                      str(require_utk()), "--n", "4", "--provider", "cpu", "--force"], prog="bias-mirror")
    assert code == 0, capsys.readouterr().err
    command = read_card(out).training["fp16"]["command"]
    assert command == f"bias-mirror train fp16 {tiny_models['classifier']} --out {out} --images {require_utk()} " \
                      "--n 4 --provider cpu --force", command


def test_the_last_hints_name_the_program_as_started():
    """Said at import time, as constants, they had kept `main.py` under the console script."""
    from inference.audit.summary import first_frame_only_advice
    from inference.datasets.framing import train_remedy
    from inference.program_name import PROGRAM

    token = PROGRAM.set("bias-mirror")
    try:
        assert "`bias-mirror run --source FILE`" in first_frame_only_advice()
        assert "`bias-mirror train evaluate --detect`" in train_remedy()
    finally:
        PROGRAM.reset(token)
    assert "`python main.py run --source FILE`" in first_frame_only_advice()
