"""Leftovers: the age-band note said by each command that bars by age (a set kept for the whole process had left a
second command in it without the note), and bench's --json /dev/null taken (refused as a device that each rewrite
would add one more document to, which /dev/null discards)."""
import csv
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from inference.datasets import read_fairface
from tests.conftest import run_main

MODEL = "resources/models/mobilenet_fast.onnx"
NOTE = "leaves out the whole 10-19 band"


def _fairface_with_a_cut_band(root: Path) -> Path:
    """Two faces in the 10-19 band, which --min-age 18 cuts through, and two it keeps."""
    rows = [(f"train/{i}.jpg", band, gender, "White")
            for i, (band, gender) in enumerate([("10-19", "Male"), ("10-19", "Female"), ("20-29", "Male"),
                                                ("30-39", "Female")], 1)]
    for i, (name, *_) in enumerate(rows):
        (root / "train").mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(root / name), np.full((48, 48, 3), 60 + 40 * i, np.uint8))
    with open(root / "fairface_label_train.csv", "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh).writerows([["file", "age", "gender", "race"], *rows])
    return root


def _notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if NOTE in r.getMessage()]


def test_two_evaluations_in_one_process_each_say_the_band_their_age_bar_cuts(tmp_path, caplog):
    from training.evaluate import evaluation_faces

    read = read_fairface(_fairface_with_a_cut_band(tmp_path / "ff"))
    with caplog.at_level(logging.INFO, logger="inference.datasets"):
        for _ in range(2):
            assert len(evaluation_faces(read, "all", 18)) == 2
    assert len(_notes(caplog)) == 2, _notes(caplog)


def test_two_audits_in_one_process_each_say_the_band_their_age_bar_cuts(tmp_path, caplog):
    from inference.audit.cli import choose_samples

    read = read_fairface(_fairface_with_a_cut_band(tmp_path / "ff"))
    args = SimpleNamespace(split=None, min_age=18, limit=None)
    with caplog.at_level(logging.INFO, logger="inference.datasets"):
        for _ in range(2):
            assert len(choose_samples(read, args)) == 2
    assert len(_notes(caplog)) == 2, _notes(caplog)


def test_each_evaluate_command_in_one_process_says_the_note_once(tmp_path, caplog, capsys):
    """evaluate selects at the bar twice (the faces evaluated, the groups the dataset holds): one note a command."""
    root = _fairface_with_a_cut_band(tmp_path / "ff")
    argv = ["train", "evaluate", "--model", MODEL, "--dataset", f"fairface:{root}", "--split", "all",
            "--min-age", "18"]
    for _ in range(2):
        caplog.clear()
        with caplog.at_level(logging.INFO):
            code, _, err = run_main(argv, capsys)
        assert code == 0, err
        assert len(_notes(caplog)) == 1, _notes(caplog)


def test_select_says_nothing_of_the_bands_its_caller_says(tmp_path, caplog):
    from inference.datasets import select

    read = read_fairface(_fairface_with_a_cut_band(tmp_path / "ff"))
    with caplog.at_level(logging.INFO, logger="inference.datasets"):
        assert len(select(read.samples, min_age=18, labelled=True)) == 2
    assert _notes(caplog) == []


# bench's --json /dev/null


def _unwritable_dev(monkeypatch) -> None:
    """/dev as a user finds it, though the tests may run as root: no file of one's own can be made there."""
    import inference.arg_checks as arg_checks

    access = os.access

    def user_access(path, mode, **kwargs):
        return False if os.path.realpath(path) == "/dev" else access(path, mode, **kwargs)

    monkeypatch.setattr(arg_checks.os, "access", user_access)


@pytest.mark.skipif(not os.path.exists("/dev/null") or os.name != "posix", reason="POSIX's null device")
def test_bench_takes_json_dev_null(faces_dir, capsys, monkeypatch):
    _unwritable_dev(monkeypatch)
    code, out, err = run_main(["bench", "--source", str(faces_dir), "--frames", "1", "--warmup", "0", "--no-baseline",
                               "--providers", "cpu", "--no-filter", "--json", os.devnull], capsys)
    assert code == 0, err
    assert "--json" not in err and out.strip()


@pytest.mark.skipif(not os.path.exists("/dev/null") or os.name != "posix", reason="POSIX's null device")
def test_bench_train_takes_json_dev_null(capsys, monkeypatch, tmp_path):
    """Past the --json check: the dataset named, which is not there, is what it stops at."""
    _unwritable_dev(monkeypatch)
    code, _, err = run_main(["bench", "train", "--data", f"utkface:{tmp_path / 'nowhere'}", "--json", os.devnull],
                            capsys)
    assert code == 2 and "--json" not in err and "nowhere" in err, err


@pytest.mark.skipif(os.name != "posix", reason="POSIX's null device and FIFOs")
def test_refuse_in_place_takes_the_null_device_and_links_to_it_but_not_a_fifo(tmp_path):
    from inference import writing
    from inference.errors import BiasMirrorError

    writing.refuse_in_place(os.devnull, "--json", "is rewritten")
    link = tmp_path / "null.json"
    link.symlink_to(os.devnull)
    writing.refuse_in_place(link, "--json", "is rewritten")
    fifo = tmp_path / "f"
    os.mkfifo(fifo)
    with pytest.raises(BiasMirrorError, match="FIFO"):
        writing.refuse_in_place(fifo, "--json", "is rewritten")
    with pytest.raises(BiasMirrorError):  # another device: /dev/zero takes no document as /dev/null does
        writing.refuse_in_place("/dev/zero", "--json", "is rewritten")


def test_a_json_report_to_dev_null_is_written_harmlessly():
    from inference.stopping import write_json_atomically

    if not os.path.exists("/dev/null"):
        pytest.skip("POSIX's null device")
    for _ in range(2):  # bench rewrites it after every row
        write_json_atomically(Path(os.devnull), {"rows": [1]})
    assert Path(os.devnull).is_char_device()
