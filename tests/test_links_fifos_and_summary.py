"""Paths that are no file to read (a link that leads back to itself, a FIFO) are refused in one line naming them,
never a traceback or a hang; and the label check's summary sentence is whole when a group has no face left."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

import main
from inference.arg_checks import LINK_LOOP, resolved
from inference.errors import BiasMirrorError
from tests.conftest import REPO, run_main

# long enough for a command to load its models and refuse its source; a hang (the FIFO's) is ended and fails
COMMAND_TIMEOUT_S = 240


@pytest.fixture
def link_loop(tmp_path):
    """A symbolic link to itself (`ln -s loop loop`)."""
    loop = tmp_path / "loop"
    loop.symlink_to(loop.name)
    return loop


def refused_with(argv: list[str], capsys) -> str:
    """The error line main.py printed for a command it refused (status 2, no traceback)."""
    code, _, err = run_main(argv, capsys)
    assert code == 2, err
    return err


# --- a link loop in --source, --dataset or --out ----------------------------------------------------------------------

@pytest.mark.parametrize("command", [
    lambda loop, tmp: ["run", "--source", str(loop), "--out", str(tmp / "rows.csv")],
    lambda loop, tmp: ["audit", "--dataset", f"folder:{tmp / 'zoo'}", "--out", str(loop)],
    lambda loop, tmp: ["train", "classifier", "--dataset", f"folder:{loop}", "--out", str(tmp / "run")],
], ids=["run --source", "audit --out", "train --dataset"])
def test_a_link_loop_given_to_a_command_is_refused_naming_it(command, link_loop, tmp_path, capsys):
    """Path.resolve raised RuntimeError("Symlink loop from …") in the output checks: a traceback, status 1."""
    err = refused_with(command(link_loop, tmp_path), capsys)
    assert f"{link_loop} {LINK_LOOP}" in err and err.startswith("error: ")


def test_a_link_loop_on_the_way_to_an_output_is_named_with_its_option(link_loop, tmp_path, capsys):
    err = refused_with(["run", "--source", str(tmp_path), "--out", str(link_loop / "rows.csv")], capsys)
    assert f"--out: {link_loop} {LINK_LOOP}" in err


def test_resolved_names_the_link_of_a_loop_and_follows_other_links(link_loop, tmp_path):
    with pytest.raises(BiasMirrorError, match="a link loop") as refused:
        resolved(link_loop / "sub" / "x.csv", "--out")
    assert str(refused.value).startswith(f"--out: {link_loop} ")
    target = tmp_path / "real"
    (tmp_path / "link").symlink_to(target.name)
    assert resolved(tmp_path / "link") == target.resolve()


def test_the_app_refuses_a_link_loop_as_its_source_without_a_traceback(link_loop, tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", BIASMIRROR_SETTINGS=str(tmp_path / "app-settings.ini"))
    done = subprocess.run([sys.executable, str(REPO / "main.py"), "app", "--source", str(link_loop), "--max-seconds",
                           "3"], cwd=REPO, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"--source: {link_loop} {LINK_LOOP}" in done.stderr.strip().splitlines()[-1]


def test_a_link_loop_no_check_reached_is_one_line_and_other_runtime_errors_keep_their_traceback(
        monkeypatch, link_loop, capsys):
    """main.py's net, for a resolve() of a path no check looked at: pathlib's words for a loop before Python 3.13."""
    import inference.run_cli

    def meets_a_loop(args):
        raise RuntimeError(f"Symlink loop from {str(link_loop)!r}")
    monkeypatch.setattr(inference.run_cli, "main", meets_a_loop)
    err = refused_with(["run", "--source", "0", "--out", "x.csv"], capsys)
    assert err.strip() == f"error: {link_loop} {LINK_LOOP}; remove the link or give another path"

    def a_bug(args):
        raise RuntimeError("something else")
    monkeypatch.setattr(inference.run_cli, "main", a_bug)
    assert main.main(["run", "--source", "0", "--out", "x.csv"]) == 2  # not Python's 1, the audit's "gate failed"
    err = capsys.readouterr().err
    assert "Traceback" in err and "RuntimeError: something else" in err and "unexpected RuntimeError" in err


# --- a FIFO as --source -----------------------------------------------------------------------------------------------

@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_given_as_the_source_is_refused_not_waited_on(tmp_path, tiny_models):
    """`run --source x.jpg` on a FIFO blocked reading its first bytes until it was killed."""
    fifo = tmp_path / "x.jpg"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, str(REPO / "main.py"), "run", "--source", str(fifo), "--out",
                           str(tmp_path / "rows.csv"), "--classifier", str(tiny_models["classifier"]), "--no-filter",
                           "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert f"error: {fifo}: is not a regular file but a FIFO" in done.stderr
    assert not (tmp_path / "rows.csv").exists()


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this system")
def test_a_fifo_in_a_source_folder_is_not_among_its_images(tmp_path, faces_dir):
    from inference.datasets.folder import list_folder

    os.mkfifo(faces_dir / "pipe.jpg")
    images = list_folder(faces_dir).images
    assert images and faces_dir / "pipe.jpg" not in images


# --- the label check's sentence when the lowest group's every face is contradicted ------------------------------------

def _face(i: int, gender: str, race: str, p_female: float) -> dict:
    """One labelled face as the audit's rows hold it, one classifier "A" giving it ``p_female``."""
    return {"file": f"{i}.jpg", "face": 0, "gender": gender, "race": race, "age": 30,
            "clf": {"A": {"p": p_female, "pred": "female" if p_female > 0.5 else "male"}}}


def _report_with_labels_checked(rows: list[dict]) -> dict:
    """The least of a report.json that summary_lines reads around the label check, built by the audit's own
    functions from ``rows``."""
    from inference.audit.classifier_audit import classifier_metrics, p_female_distribution
    from inference.audit.label_check import contradicted_labels

    groupings = {"gender_race": [f"{r['gender']}/{r['race']}" for r in rows]}
    metrics = classifier_metrics(rows, groupings, ["A"])["A"]
    return {"audit": {"dataset": "folder:x", "labelled": True},
            "images": {"n_images": len(rows), "n_faces": len(rows), "n_with_faces": len(rows), "no_face": [],
                       "unreadable": []},
            "groups": {"primary": "gender_race", "small": {}, "groupings": ["gender_race"]},
            "classifiers": {"A": {"metrics": metrics,
                                  "p_female": {"overall": p_female_distribution([r["clf"]["A"]["p"] for r in rows])}}},
            "comparisons": [], "labels": contradicted_labels(rows, groupings, ["A"]),
            "models": {"classifiers": []}, "focus": {}, "filter": None, "caveats": []}


def test_the_label_check_says_the_lowest_group_has_no_face_left_when_all_its_labels_are_contradicted():
    """Every face of the lowest group (women labelled male/Black) was flagged: the group was left out of the join,
    and the sentence ended "… the lowest gender × race group's accuracy goes ."."""
    from inference.audit.summary import summary_lines

    rows = ([_face(i, "male", "Black", 0.97) for i in range(2)]
            + [_face(10 + i, "male", "White", 0.05) for i in range(2)]
            + [_face(20 + i, "female", "White", 0.95) for i in range(2)])
    r = _report_with_labels_checked(rows)
    assert r["classifiers"]["A"]["metrics"]["gaps"]["gender_race"]["accuracy"]["worst"] == "male/Black"
    assert "male/Black" not in r["labels"]["accuracy_without"]["A"]["by"]["gender_race"]
    [line] = [x for x in summary_lines(r) if "check those labels" in x]
    assert "goes ." not in line
    assert "the lowest gender × race group's accuracy goes male/Black " in line
    assert line.endswith("% → no face left to measure (A).")


def test_linux_camera_device_is_taken_as_its_camera_index(monkeypatch):
    """A device given as a source is refused (reading one may block), but /dev/videoN is how Linux names camera N:
    it had been opened as a video file of that name."""
    import os
    import stat as stat_module

    from inference import sources

    real_stat = os.stat

    def as_if_a_camera(path, *a, **k):
        if str(path) == "/dev/video2":
            return os.stat_result((stat_module.S_IFCHR | 0o660, 0, 0, 1, 0, 0, 0, 0, 0, 0))
        return real_stat(path, *a, **k)

    monkeypatch.setattr(sources.os, "stat", as_if_a_camera)
    assert sources.camera_index("/dev/video2") == 2
    assert sources.camera_index("/dev/video") is None and sources.camera_index("/tmp/video2") is None
    assert sources.camera_index("/dev/video7") is None  # no such device here
