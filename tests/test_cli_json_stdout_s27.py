"""`--json -` is standard output, as `run --out -` is (review s27).

- `bench --json -`, `bench detect --json -`, `bench train --json -` and `train evaluate --json -` wrote a file named
  "-" in the current folder with status 0 (bench even said "results written to -"), and no command could put its
  JSON alone on standard output: `train evaluate --json /dev/stdout` mixed its tables and notes into the JSON.
  Now the JSON goes to standard output alone and every line for people to standard error (`--json - | jq`).
- Every other output checked by ``check_output_file`` (`--export-to -`, `--health -`, fp16's `--out -`) refuses "-"
  in one line rather than writing a file of that name.
- `train cyclegan --help` said the --cache size "at --size 128", an option `train cyclegan` does not have.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, utk_images

RACES = ("0", "1", "2", "3", "4")  # UTKFace's race codes: bench detect takes a face of each group


@pytest.fixture
def utk(tmp_path) -> Path:
    """Real UTKFace faces, 13 of each race (bench train takes at least 64), linked into this test's own folder."""
    root = tmp_path / "data" / "UTKFace"
    root.mkdir(parents=True)
    for race in RACES:
        for image in utk_images(13, race=race):
            (root / image.name).symlink_to(image)
    return root


def main_py(args: list[str], cwd: Path, shell_suffix: str = "") -> subprocess.CompletedProcess:
    """main.py run in ``cwd`` (where a file named "-" would be left), its stdout and stderr apart."""
    cwd.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if shell_suffix:
        import shlex

        command = shlex.join([sys.executable, str(REPO / "main.py"), *args]) + shell_suffix
        return subprocess.run(["bash", "-c", command], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)
    return subprocess.run([sys.executable, str(REPO / "main.py"), *args], cwd=cwd, capture_output=True, text=True,
                          env=env, timeout=300)


def command_line(kind: str, data: Path) -> list[str]:
    """Each --json command on ``data``, kept to seconds."""
    if kind == "evaluate":
        return ["train", "evaluate", "--model", str(REPO / "resources" / "models" / "resnet10_balanced.onnx"),
                "--dataset", f"utkface:{data}", "--split", "all", "--no-dataset-cache"]
    if kind == "bench detect":
        return ["bench", "detect", "--data", f"utkface:{data}", "--per-group", "1", "--min-age", "-1",
                "--detectors", "haar-alt2", "--no-dataset-cache"]
    if kind == "bench":
        return ["bench", "--source", str(data), "--frames", "2", "--warmup", "0", "--no-baseline", "--providers",
                "cpu", "--no-filter"]
    assert kind == "bench train"
    return ["bench", "train", "--data", f"utkface:{data}", "--faces", "64", "--device", "cpu", "--trainers",
            "classifier", "--size", "32", "--warmup", "0", "--steps", "1", "--variants", "fp32", "--threads", "1",
            "--cache", "", "--no-dataset-cache"]


# what each command says for people, which belongs on standard error
HUMAN_LINE = {"evaluate": "overall accuracy", "bench detect": "detector(s) on", "bench": "configurations",
              "bench train": "training throughput on"}


@pytest.mark.parametrize("kind", ["evaluate", "bench detect", "bench", "bench train"])
def test_json_dash_is_the_json_alone_on_standard_output(kind, utk, tmp_path):
    cwd = tmp_path / "cwd"
    done = main_py([*command_line(kind, utk), "--json", "-"], cwd)
    assert done.returncode == 0, done.stderr
    assert not (cwd / "-").exists() and list(cwd.iterdir()) == []  # it had written a file named "-" here
    report = json.loads(done.stdout)  # nothing else there: the tables and notes had been printed there too
    assert isinstance(report["schema_version"], int) and "software" in report
    assert HUMAN_LINE[kind] in done.stderr and "Traceback" not in done.stderr
    assert "results written to -" not in done.stderr


def test_evaluate_json_to_dev_stdout_keeps_its_tables_out_of_it(utk, tmp_path):
    """`--json /dev/stdout` had given the tables, the notes and then the JSON, which json.load failed on at char 0."""
    if not Path("/dev/stdout").exists():
        pytest.skip("no /dev/stdout here")
    done = main_py([*command_line("evaluate", utk), "--json", "/dev/stdout"], tmp_path / "cwd")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["schema_version"] >= 1
    assert "overall accuracy" in done.stderr


def test_json_dash_with_standard_output_closed_is_refused_in_one_line(utk, tmp_path):
    done = main_py([*command_line("bench detect", utk), "--json", "-"], tmp_path / "cwd", shell_suffix=" >&-")
    assert done.returncode == 2
    assert "standard output is closed" in done.stderr and "--json" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "cwd" / "-").exists()


def test_json_dash_to_a_reader_that_stopped_reading_ends_in_one_line(utk, tmp_path):
    """As `run --out - | head` ends: a line on standard error, the command's status as it was, no traceback."""
    done = main_py([*command_line("bench detect", utk), "--json", "-"], tmp_path / "cwd",
                   shell_suffix=" | true; exit ${PIPESTATUS[0]}")  # `true` reads nothing and is gone at once
    assert done.returncode == 0, done.stderr
    assert "its reader stopped reading" in done.stderr and "Traceback" not in done.stderr
    assert "Exception ignored" not in done.stderr  # Python's flush at exit, failing again


def test_other_outputs_refuse_a_dash_rather_than_write_a_file_of_that_name(tmp_path, monkeypatch):
    from inference.arg_checks import check_output_file
    from inference.errors import BiasMirrorError

    monkeypatch.chdir(tmp_path)
    with pytest.raises(BiasMirrorError) as refused:
        check_output_file("-", "--export-to")
    assert str(refused.value).startswith("--export-to -: standard output is not supported here; give a file")
    assert list(tmp_path.iterdir()) == []
    assert check_output_file("./-", "--export-to") == Path("-")  # a file of that name, asked for as one


def command_parser(words: list[str]):
    import main

    parser = main.build_parser(words)
    for word in words:
        parser = main._subparser(parser, word)
    return parser


def option_help(words: list[str], option: str) -> str:
    return next(a.help for a in command_parser(words)._actions if option in a.option_strings)


@pytest.mark.parametrize("words", [["bench"], ["bench", "detect"], ["bench", "train"], ["train", "evaluate"]])
def test_each_json_help_says_what_a_dash_does(words):
    assert re.search(r"- for standard output", option_help(words, "--json")), option_help(words, "--json")


@pytest.mark.parametrize("words", [["train", "classifier"], ["train", "cyclegan"], ["bench", "train"]])
def test_the_cache_help_names_only_options_its_command_has(words):
    """`train cyclegan --help` said "about 1 GB per 20,000 faces at --size 128": it has no --size."""
    parser = command_parser(words)
    options = {s for a in parser._actions for s in a.option_strings}
    named = set(re.findall(r"--[a-z][a-z-]*", option_help(words, "--cache")))
    assert named <= options, f"{' '.join(words)} --cache's help names {sorted(named - options)}, not its options"
    assert "1 GB per 20,000 faces" in option_help(words, "--cache")  # the size it takes is still said
