"""What `run` leaves at --out and on standard output, and faces.csv's cells, as a script reading them finds them.

- A run that found no face left no CSV, or an earlier run's CSV at --out, exiting 0: a CI job crashed on the missing
  file or read the earlier rows as this run's. It now leaves the header alone, put in place whole.
- The header was the first row's columns: video_s only for a video, moved_px only with a filter, so two runs' CSVs
  did not line up. Every run now writes the same columns in the same order, empty where they do not apply.
- Status lines and warnings went to standard output, into the CSV of `--out /dev/stdout`; `--out -` wrote a file
  named "-". They go to standard error, and `-` is standard output.
- faces.csv wrote a diverged classifier's NaN CAM focus as "nan", where an empty cell means not measured.
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.results import FaceResult, FaceView, FrameResult, SkinTone
from inference.rows import face_row
from tests.conftest import REPO, make_diverged_classifier, run_main, utk_images

NAME = "tiny-a"  # tiny_models["classifier"]'s display name


def row_columns(classifiers: list[str]) -> list[str]:
    """Every run's header, as `run --help` lists it: written out here, not asked of the code that writes it."""
    return ["frame", "time", "video_s", "source", "track_id", "x", "y", "w", "h", "filter", "measurable", "ita", "L",
            "mst", "ita_filtered", "L_filtered", "mst_filtered", "delta_ita", "delta_l", "delta_mst", "moved_px",
            *(f"{column}[{name}]" for name in classifiers for column in
              ("p_female", "cam_focus", "p_female_reference", "p_female_filtered", "delta_p_female"))]


def header_and_rows(text: str) -> tuple[list[str], list[dict]]:
    lines = text.splitlines()
    return next(csv.reader(lines[:1]), []), list(csv.DictReader(lines))


def walls(folder: Path, n: int = 2) -> Path:
    """Photos without a face."""
    folder.mkdir()
    for i in range(n):
        cv2.imwrite(str(folder / f"wall{i}.png"), np.full((240, 320, 3), 90 + 20 * i, np.uint8))
    return folder


def clip_of_a_face(path: Path, frames: int = 3) -> Path:
    face = cv2.imread(str(utk_images(1)[0]))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 5, face.shape[1::-1])
    for _ in range(frames):
        writer.write(face)
    writer.release()
    return path


def run_args(source: Path, out: str, tiny_models, *models: str) -> list[str]:
    return ["run", "--source", str(source), "--out", out, "--classifier", str(tiny_models["classifier"]),
            "--threads", "1", *(models or ("--no-filter",))]


# --- 1. a run without faces, and the columns of every run ----------------------------------------------------------

def test_a_run_that_finds_no_face_leaves_the_header_alone_in_place_of_an_earlier_csv(tmp_path, tiny_models, capsys):
    out = tmp_path / "rows.csv"
    out.write_text("frame,source\n0,earlier-run.jpg\n")
    code, stdout, err = run_main(run_args(walls(tmp_path / "walls"), str(out), tiny_models), capsys)
    assert code == 0
    header, rows = header_and_rows(out.read_text(encoding="utf-8"))
    assert header == row_columns([NAME]) and rows == []
    assert f"2 frame(s), no face found in any: no rows, so {out} holds the header alone" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rows.csv", "walls"]  # nothing of its own left beside it


def test_a_run_that_finds_no_face_writes_a_csv_where_there_was_none(tmp_path, tiny_models, capsys):
    out = tmp_path / "new" / "rows.csv"
    code, _, _ = run_main(run_args(walls(tmp_path / "walls"), str(out), tiny_models), capsys)
    assert code == 0 and out.read_text(encoding="utf-8").splitlines() == [",".join(row_columns([NAME]))]


def test_a_run_whose_source_gives_no_frame_still_leaves_an_earlier_csv_as_it_was(tmp_path, tiny_models, capsys):
    """An error, not a run of no faces: exit 2, and nothing of it is at --out."""
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "rows.csv"
    out.write_text("earlier\n")
    code, _, err = run_main(run_args(bad, str(out), tiny_models), capsys)
    assert code == 2 and f"{out} was left as it was" in err and out.read_text() == "earlier\n"


def test_an_interrupt_while_the_header_is_written_leaves_the_earlier_csv_whole(tmp_path, tiny_models, capsys,
                                                                            monkeypatch):
    """The CSV was emptied as it was opened, then its header written: stopped between, it held neither."""
    import inference.rows as rows_module

    class Stopped:
        """csv with every writer stopped by Ctrl-C at its first row (the header)."""

        def __getattr__(self, name):
            return getattr(csv, name)

        @staticmethod
        def writer(fh, *args, **kwargs):
            raise KeyboardInterrupt

        class DictWriter(csv.DictWriter):
            def writeheader(self):
                raise KeyboardInterrupt

    faces = tmp_path / "faces"
    faces.mkdir()
    cv2.imwrite(str(faces / "face.png"), cv2.imread(str(utk_images(1)[0])))
    out = tmp_path / "rows.csv"
    out.write_text("earlier\n")
    monkeypatch.setattr(rows_module, "csv", Stopped())
    code, _, err = run_main(run_args(faces, str(out), tiny_models), capsys)
    assert code == 130 and out.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["faces", "rows.csv"]


def test_every_run_writes_the_same_columns_whatever_its_source_and_with_or_without_a_filter(tmp_path, tiny_models,
                                                                                          faces_dir, capsys):
    clip = clip_of_a_face(tmp_path / "clip.avi")
    runs = {"photos": (faces_dir, ()), "photos, filtered": (faces_dir, ("--filter", str(tiny_models["darken"]))),
            "video": (clip, ()), "video, filtered": (clip, ("--filter", str(tiny_models["darken"])))}
    tables = {}
    for what, (source, models) in runs.items():
        out = tmp_path / f"{what}.csv"
        code, _, err = run_main(run_args(source, str(out), tiny_models, *models), capsys)
        assert code == 0, err
        tables[what] = header_and_rows(out.read_text(encoding="utf-8"))
    assert all(header == row_columns([NAME]) for header, _ in tables.values()), {w: h for w, (h, _) in tables.items()}
    assert all(rows for _, rows in tables.values())
    photos, filtered, video, video_filtered = (rows for _, rows in tables.values())
    assert {r["video_s"] for r in photos + filtered} == {""}  # a photo has no place in time
    assert [float(r["video_s"]) for r in video] == pytest.approx([0.0, 0.2, 0.4])
    assert {r["moved_px"] for r in photos + video} == {""} and {r["filter"] for r in photos + video} == {""}
    assert {r[f"p_female_reference[{NAME}]"] for r in photos + video} == {""}
    assert all(r["moved_px"] != "" and r[f"delta_p_female[{NAME}]"] != "" for r in filtered + video_filtered)


def test_a_face_row_has_every_column_even_without_a_filter_or_a_video(tiny_models):
    """The app's recording takes its header from the first row (face_row): a switch to a video or the filter turned
    on had started a new part file for video_s or the filter's columns."""
    face = FaceResult(1, (0, 0, 8, 8), np.eye(2, 3), FaceView(np.zeros((8, 8, 3), np.uint8), {}, SkinTone(False, 0)))
    photo = FrameResult(0, 1.0, np.zeros((8, 8, 3), np.uint8), (face,), {}, {}, source="a.jpg")
    video = FrameResult(1, 2.0, np.zeros((8, 8, 3), np.uint8), (face,), {}, {}, source="b.mp4#3", video_s=0.6)
    assert list(face_row(photo, face)) == list(face_row(video, face)) == row_columns([])
    from inference.rows import row_columns as written

    assert written([NAME, "b"]) == row_columns([NAME, "b"])
    assert face_row(photo, face)["video_s"] == "" and face_row(video, face)["video_s"] == 0.6
    assert face_row(photo, face)["moved_px"] == ""


# --- 2. standard output: the rows alone --------------------------------------------------------------------------

def test_a_run_says_nothing_on_standard_output(tmp_path, tiny_models, faces_dir, capsys):
    """Its status and warnings were printed there, so --out /dev/stdout mixed them into the CSV."""
    out = tmp_path / "rows.csv"
    code, stdout, err = run_main(run_args(faces_dir, str(out), tiny_models), capsys)
    assert code == 0 and stdout == ""
    assert f"face row(s) written to {out}" in err


def run_to_stdout(out: str, source: Path, tiny_models, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(REPO / "main.py"), *run_args(source, out, tiny_models)], cwd=cwd,
                          capture_output=True, text=True, encoding="utf-8", timeout=300)


def test_out_dash_streams_the_csv_alone_to_standard_output(tmp_path, tiny_models, faces_dir):
    """`--out -` had written a file named "-"."""
    work = tmp_path / "work"
    work.mkdir()
    done = run_to_stdout("-", faces_dir, tiny_models, work)
    assert done.returncode == 0, done.stderr
    header, rows = header_and_rows(done.stdout)
    assert header == row_columns([NAME]) and rows
    assert f"{len(rows)} face row(s) written to standard output" in done.stderr
    assert list(work.iterdir()) == []  # no file "-", no lock beside one


def test_out_dash_of_a_run_without_faces_gives_the_header_alone(tmp_path, tiny_models):
    done = run_to_stdout("-", walls(tmp_path / "walls"), tiny_models, tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [",".join(row_columns([NAME]))]
    assert "no face found in any: no rows, so standard output holds the header alone" in done.stderr


@pytest.mark.skipif(not Path("/dev/stdout").exists(), reason="no /dev/stdout here")
def test_out_dev_stdout_holds_the_csv_alone(tmp_path, tiny_models, faces_dir):
    done = run_to_stdout("/dev/stdout", faces_dir, tiny_models, tmp_path)
    assert done.returncode == 0, done.stderr
    header, rows = header_and_rows(done.stdout)
    assert header == row_columns([NAME]) and rows
    assert "frame(s)" not in done.stdout and "face row(s) written to /dev/stdout" in done.stderr


# --- 3. faces.csv: a value not finite is an empty cell -----------------------------------------------------------

def test_faces_csv_writes_a_cam_focus_that_is_not_finite_as_an_empty_cell(tmp_path):
    from inference.audit.cli import write_faces_csv

    row = {"file": "a.jpg", "face": 0, "box": [0, 0, 8, 8], "gender": None, "race": None, "age": 0, "group": "g",
           "skin": {"measurable": False}, "filtered_skin": None, "d_ita": None, "d_l": None, "d_mst": None,
           "moved_px": None, "clf": {"m": {"p": None, "pred": None, "focus": float("nan")},
                                     "n": {"p": 0.5, "pred": "female", "focus": float("inf")},
                                     "o": {"p": 0.25, "pred": "male", "focus": 0.75}}}
    path = tmp_path / "faces.csv"
    write_faces_csv(path, [row], ["m", "n", "o"])
    got = next(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"))))
    assert got["m:cam_focus"] == got["n:cam_focus"] == "" and got["o:cam_focus"] == "0.75"
    assert got["age"] == "0" and got["n:p_female"] == "0.5"
    assert "nan" not in path.read_text().lower() and "inf" not in path.read_text().lower()


def test_an_audit_of_a_diverged_classifier_leaves_its_focus_cells_empty_and_its_report_strict(tmp_path, faces_dir,
                                                                                           capsys):
    from inference.audit import cli as audit_cli

    model = make_diverged_classifier(tmp_path / "diverged.onnx")
    out = tmp_path / "audit"
    parser = argparse.ArgumentParser()
    audit_cli.add_arguments(parser)
    args = parser.parse_args(["--dataset", f"folder:{faces_dir}", "--aligned", "--classifier", model, "--no-filter",
                              "--no-html", "--no-progress", "--threads", "1", "--out", str(out)])
    audit_cli.main(args)
    faces = list(csv.DictReader(io.StringIO((out / "faces.csv").read_text(encoding="utf-8"))))
    assert len(faces) == 6
    assert {f["diverged:cam_focus"] for f in faces} == {""} and {f["diverged:p_female"] for f in faces} == {""}

    def refused(token: str):
        raise ValueError(f"report.json holds {token}, which is no JSON")

    report = json.loads((out / "report.json").read_text(encoding="utf-8"), parse_constant=refused)
    assert report["focus"]["diverged"]["overall"]["n"] == 0
    # the NaN is kept apart from a CAM of no positive mass, in report.json as before
    assert report["focus"]["diverged"]["no_positive_cam"] == 0
    assert not any(isinstance(v, float) and not math.isfinite(v) for v in _numbers(report))


def _numbers(x):
    if isinstance(x, dict):
        for v in x.values():
            yield from _numbers(v)
    elif isinstance(x, list):
        for v in x:
            yield from _numbers(v)
    else:
        yield x


# --- 4. the documents name every column written ------------------------------------------------------------------

def test_audit_schema_names_every_column_of_faces_csv_in_its_order(tmp_path):
    """ita_category was written and named nowhere."""
    from inference.audit.cli import write_faces_csv

    write_faces_csv(tmp_path / "faces.csv", [], ["NAME"])
    header = (tmp_path / "faces.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    schema = (REPO / "docs" / "audit_schema.md").read_text(encoding="utf-8")
    row = next(line for line in schema.splitlines() if line.startswith("| `faces.csv` |"))
    at = [row.find(f"`{column}`") for column in header]
    assert all(i >= 0 for i in at), [c for c, i in zip(header, at) if i < 0]
    assert at == sorted(at), "docs/audit_schema.md names faces.csv's columns in another order than it writes them"


def test_runs_help_names_every_column_it_writes():
    import fnmatch
    import re

    from inference.rows import COLUMNS, row_columns as written

    named = set(re.findall(r"[\w*]+(?:\[C\])?", COLUMNS))
    missing = [c for c in written(["C"]) if c not in named and not any(fnmatch.fnmatchcase(c, n) for n in named
                                                                       if "*" in n)]
    assert not missing, missing


def test_the_readme_says_a_recording_writes_rows_and_only_a_snapshot_a_frame():
    readme = " ".join((REPO / "README.md").read_text(encoding="utf-8").split())
    assert "frames are written to disk only when you record or snapshot" not in readme
    assert "a frame is written to disk only when you take a snapshot (a recording writes per-face CSV rows" in readme
