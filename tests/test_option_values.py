"""Edge values of options: an output on an input or on another output, an empty path, a number that is not finite
or out of range, a screenshot name Qt cannot write. Each is refused up front, with the option's name, where it had
destroyed a model, run on a default model, or crashed the app."""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from inference.arg_checks import check_paths_apart, non_negative_float, positive_float
from inference.errors import BiasMirrorError
from tests.conftest import REPO, run_main


class WindowWouldOpen(Exception):
    """The app got past its checks: the window would open (before a fix, it ran the session on a bad value)."""


@pytest.fixture
def no_window(monkeypatch):
    import gui.app_cli

    def stop() -> None:
        raise WindowWouldOpen

    monkeypatch.setattr(gui.app_cli, "check_display", stop)


@pytest.fixture
def faces(faces_dir) -> Path:
    return faces_dir


@pytest.fixture
def model(tmp_path, tiny_models) -> Path:
    """A classifier of this test's own: a test that failed would have overwritten it."""
    return Path(shutil.copy(tiny_models["classifier"], tmp_path / "v.onnx"))


def refused(argv: list[str], capsys) -> str:
    """What main.py printed for a command it refused with status 2 (argparse's too); never a traceback."""
    code, _, err = run_main(argv, capsys)
    assert code == 2, err
    return err


# --- 1: an output on an input, or two outputs on one path -------------------------------------------------------

@pytest.mark.parametrize("clash, message", [
    (["--classifier", "{model}", "--health", "{model}"], "--health and --classifier name the same file"),
    (["--classifier", "{model}", "--log", "{model}"], "--log and --classifier name the same file"),
    (["--filter", "{filter}", "--screenshot", "{filter}"], "--screenshot and --filter name the same file"),
    (["--screenshot", "{tmp}/x.png", "--health", "{tmp}/x.png"], "--screenshot and --health name the same file"),
    (["--health", "{tmp}/x", "--log", "{tmp}/x"], "--log and --health name the same file"),
])
def test_an_app_output_on_a_model_or_on_another_output_is_refused(clash, message, tmp_path, faces, model, tiny_models,
                                                                 no_window, capsys):
    """`--classifier v.onnx --health v.onnx` replaced the model with the health JSON, `--log` rotated it away to
    v.onnx.1, and two outputs on one path kept only one: all with status 0."""
    filt = Path(shutil.copy(tiny_models["darken"], tmp_path / "f.onnx"))
    before = model.read_bytes(), filt.read_bytes()
    argv = [a.format(model=model, filter=filt, tmp=tmp_path) for a in clash]
    err = refused(["app", "--source", str(faces), "--max-seconds", "1", *argv], capsys)
    assert message in err and "give" in err, err
    assert (model.read_bytes(), filt.read_bytes()) == before and not Path(f"{model}.1").exists()


def test_paths_apart_compares_the_files_written_not_the_spelling(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.onnx").write_bytes(b"model")
    (tmp_path / "link.onnx").symlink_to(tmp_path / "m.onnx")
    with pytest.raises(BiasMirrorError, match="--out and --classifier name the same file"):
        check_paths_apart([("--out", "~/link.onnx")], [("--classifier", "a.onnx"), ("--classifier", "m.onnx")])
    with pytest.raises(BiasMirrorError, match="--json and --out name the same file"):
        check_paths_apart([("--out", "r.csv"), ("--json", "./sub/../r.csv")])
    check_paths_apart([("--out", "r.csv"), ("--json", None), ("--log", "")], [("--filter", None), ("--yunet", "")])


# --- 2: an empty model or input path ----------------------------------------------------------------------------

@pytest.mark.parametrize("command, option", [
    (["run", "--source", "{faces}", "--out", "{tmp}/r.csv", "--no-filter", "--filter", ""], "--filter"),
    (["run", "--source", "{faces}", "--out", "{tmp}/r.csv", "--classifier", ""], "--classifier"),
    (["run", "--source", "{faces}", "--out", "{tmp}/r.csv", "--classifier", "{model}", "--no-filter", "--yunet", ""],
     "--yunet"),
    (["audit", "--dataset", "folder:{faces}", "--out", "{tmp}/audit", "--classifier", "{model}", "--filter", ""],
     "--filter"),
    (["train", "evaluate", "--model", "", "--dataset", "utkface:{utk}"], "--model"),
    (["train", "fp16", "{model}", "--out", "{tmp}/f16.onnx", "--images", ""], "--images"),
])
def test_an_empty_model_or_input_path_is_refused_not_replaced_by_a_default(command, option, tmp_path, faces, model,
                                                                           tiny_utk, monkeypatch, capsys):
    """`audit --filter ''` audited the shipped filter (a CI job's unset variable passed the ship gate on it), `--yunet
    ''` ran the Haar cascade, `train fp16 --images ''` measured on another folder, and `--classifier ''` said ". is a
    folder"."""
    work = tmp_path / "work"  # the current folder, where Path("") points
    work.mkdir()
    monkeypatch.chdir(work)
    argv = [a.format(faces=faces, tmp=tmp_path, model=model, utk=tiny_utk) for a in command]
    assert f"error: {option} is empty (an unset shell variable?); give " in refused(argv, capsys)
    assert not (tmp_path / "r.csv").exists() and not (tmp_path / "audit").exists()


def test_an_empty_filter_is_refused_by_the_app(faces, no_window, capsys):
    assert "--filter is empty" in refused(["app", "--source", str(faces), "--max-seconds", "1", "--filter", ""], capsys)


# --- 3: numbers that are not finite; durations longer than Qt's timers --------------------------------------------

@pytest.mark.parametrize("parse", [positive_float, non_negative_float])
@pytest.mark.parametrize("text", ["inf", "-inf", "nan", "1e400"])
def test_the_duration_and_rate_parsers_refuse_what_is_not_finite(parse, text):
    with pytest.raises(argparse.ArgumentTypeError, match="must be a finite number"):
        parse(text)


@pytest.mark.parametrize("argv", [["app", "--max-seconds", "inf"], ["app", "--screenshot-after", "inf"],
                                  ["bench", "--seconds", "inf"]])
def test_an_infinite_duration_is_refused_where_it_is_parsed(argv, no_window, capsys):
    assert f"argument {argv[1]}: must be a finite number, got inf" in refused(argv, capsys)


def test_a_wait_longer_than_a_qt_timer_takes_is_chained(qtbot, monkeypatch):
    import gui.app_cli

    fired: list[bool] = []
    gui.app_cli.call_after(1e9, lambda: None)  # had raised OverflowError: Qt's timers take int32 milliseconds
    monkeypatch.setattr(gui.app_cli, "QT_TIMER_MAX_MS", 20)
    gui.app_cli.call_after(0.05, lambda: fired.append(True))  # three steps: 20, 20 and 10 ms
    qtbot.waitUntil(lambda: fired == [True], timeout=5000)


def test_the_app_runs_a_long_session_and_saves_a_png_screenshot_named_without_a_suffix(tmp_path, faces, tiny_models):
    """`--max-seconds 1e9` crashed the app (OverflowError, then "QThread: Destroyed while thread is still running",
    status 134); and `--screenshot shot` failed only at the end: "the image could not be written"."""
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", BIASMIRROR_SETTINGS=str(tmp_path / "settings.ini"),
               XDG_DATA_HOME=str(tmp_path / "data"))
    shot = tmp_path / "shot"
    cmd = [sys.executable, str(REPO / "main.py"), "app", "--threads", "1",
           "--classifier", str(tiny_models["classifier"]), "--no-filter", "--source", str(faces), "--max-seconds", "1e9", "--screenshot", str(shot),
           "--screenshot-after", "0.5"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if "screenshot saved" in line:  # the session is up with its timers set
                proc.send_signal(signal.SIGTERM)
                break
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- 4, 5: train adopt's --size, --mean and --std -----------------------------------------------------------------

@pytest.mark.parametrize("option, message", [
    ("--size=100000", "argument --size: must be at most 1024, got 100000"),
    ("--std=nan,1,1", "argument --std: 'nan,1,1' should be three finite numbers"),
    ("--mean=inf,0,0", "argument --mean: 'inf,0,0' should be three finite numbers"),
    ("--std=-0.2,0.2,0.2", "argument --std: '-0.2,0.2,0.2': each spread must be above 0"),
])
def test_adopt_refuses_a_size_beyond_reason_and_a_normalisation_that_is_not_finite(option, message, tmp_path, capsys):
    """`--size 100000` ended in an OpenCV allocation traceback; `--kind filter --std=nan,1,1` wrote a filter that
    blacked out every face, with status 0."""
    argv = ["train", "adopt", str(tmp_path / "missing.onnx"), "--kind", "filter", "--out", str(tmp_path / "a.onnx"),
            option]
    assert message in refused(argv, capsys)


# --- 6: a screenshot name Qt cannot write -------------------------------------------------------------------------

def test_a_screenshot_suffix_qt_cannot_write_is_refused_before_the_session(tmp_path, faces, no_window, capsys):
    err = refused(["app", "--source", str(faces), "--max-seconds", "1", "--screenshot", str(tmp_path / "shot.txt")],
                  capsys)
    assert "--screenshot: a .txt image cannot be written; end the name in .png" in err and ".jpg" in err


def test_a_screenshot_without_a_suffix_is_a_png():
    from gui.app_cli import screenshot_format

    assert (screenshot_format("shot"), screenshot_format("shot.PNG"), screenshot_format("s.jpg")) == ("PNG", None, None)


# --- 7: a slideshow slower than paced; --screenshot-after alone; an output inside a missing source ----------------

def test_a_slideshow_slower_than_the_app_paces_is_refused(faces, no_window, capsys):
    err = refused(["app", "--source", str(faces), "--max-seconds", "1", "--slideshow-fps", "1e-9"], capsys)
    assert "argument --slideshow-fps: must be at least 0.05, got 1e-9" in err


def test_screenshot_after_without_a_screenshot_is_refused(faces, no_window, capsys):
    err = refused(["app", "--source", str(faces), "--max-seconds", "1", "--screenshot-after", "2"], capsys)
    assert "--screenshot-after without --screenshot" in err


def test_an_output_inside_a_source_that_does_not_exist_is_refused_not_made_into_it(tmp_path, no_window, capsys):
    """`app --source x --log x/sub/app.log` made x a folder for the log, then said of x "no images found" where `run`
    says the source does not exist."""
    missing = tmp_path / "x"
    err = refused(["app", "--source", str(missing), "--max-seconds", "1", "--log", str(missing / "sub" / "app.log")],
                  capsys)
    assert f"{missing}: the source does not exist" in err and "--log lies in it" in err and not missing.exists()


# --- the same, for run, the audit and the trainers -----------------------------------------------------------------

def test_run_refuses_an_out_that_is_one_of_its_models(tmp_path, faces, model, capsys):
    """`run --out v.onnx --classifier v.onnx` wrote its rows over the model, with status 0."""
    before = model.read_bytes()
    err = refused(["run", "--source", str(faces), "--out", str(model), "--classifier", str(model), "--no-filter"],
                  capsys)
    assert "--out and --classifier name the same file" in err and model.read_bytes() == before


@pytest.mark.parametrize("option, value, message", [
    ("--groups", "", "--groups is empty"),
    ("--max-delta-p", "1.5", "argument --max-delta-p: must be below 1: P(female) lies within 0 to 1"),
    ("--max-delta-ita", "200", "argument --max-delta-ita: must be below 180"),
])
def test_the_audit_refuses_an_empty_groups_csv_and_a_tolerance_no_filter_could_fail(option, value, message, tmp_path,
                                                                                    faces, model, capsys):
    """`--groups ''` was ignored (tested for truth), and a ΔP tolerance of 1.5 passed every filter."""
    argv = ["audit", "--dataset", f"folder:{faces}", "--out", str(tmp_path / "a"), "--classifier", str(model),
            f"{option}={value}"]
    assert message in refused(argv, capsys)
    assert not (tmp_path / "a" / "report.json").exists()


@pytest.mark.parametrize("option, message", [
    ("--seed=-1", "argument --seed: must be at least 0, got -1"),
    ("--seed=4294967296", "argument --seed: must be at most 4294967295"),
    ("--size=100000", "argument --size: must be at most 512"),
    ("--width=100000", "argument --width: must be at most 512"),
    ("--framing-jitter=50", "argument --framing-jitter: must be at most 0.5"),
])
def test_train_classifier_refuses_numbers_that_ended_in_tracebacks(option, message, tmp_path, capsys):
    """A seed of -1 ended in NumPy's traceback, --size/--width 100000 in allocation tracebacks, and a framing jitter
    of 50 wrapped its zoom bound round and took 50 s a step."""
    argv = ["train", "classifier", "--dataset", "utkface:../shared/datasets/utkface", "--out", str(tmp_path / "r"),
            "--max-steps", "1", option]
    assert message in refused(argv, capsys)
    assert not (tmp_path / "r").exists()
