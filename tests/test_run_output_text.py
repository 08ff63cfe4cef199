"""What `run` and `audit` write, and what `run --help` says of it.

- A file name whose bytes are not UTF-8 (a Latin-1 "café.jpg" copied from an old camera or a Windows share) is
  written escaped, "caf\\xe9.jpg", in run's CSV and in the audit's faces.csv, report.json and report.html: it had
  stopped both with a UnicodeEncodeError traceback, `run`'s CSV left with its header alone.
- `run --help` lists its exit statuses, as audit's and bench's do.
- `--cam-class` changes nothing in run's CSV (cam_focus[C] is the predicted class's map), and its help says so.
- With a filter, run's skin columns are measured on the crop through the filter's resampling, p_female[C] on the
  crop as found, and its help says so.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO, run_main, utk_images

NOT_UTF8 = os.fsdecode(b"caf\xe9.jpg")  # how Python names a file whose name holds the Latin-1 byte E9
SHOWN = "caf\\xe9.jpg"  # how the files written show it


def rows_of(path) -> list[dict]:
    # decoded strictly: a file that is not valid UTF-8 fails here
    return list(csv.DictReader(path.read_bytes().decode("utf-8").splitlines()))


def help_text(argv: list[str], capsys, monkeypatch) -> str:
    monkeypatch.setenv("COLUMNS", "1000")  # one line per entry where it fits
    code, out, _ = run_main([*argv, "--help"], capsys)
    assert code == 0
    return " ".join(out.split())


@pytest.fixture
def odd_names(tmp_path):
    """Two real faces, one under a name that is not UTF-8."""
    folder = tmp_path / "odd"
    folder.mkdir()
    first, second = utk_images(2)
    shutil.copy(first, folder / "plain.jpg")
    shutil.copy(second, folder / NOT_UTF8)
    return folder


def test_printable_shows_the_bytes_a_name_could_not_decode_and_leaves_text_as_it_is():
    from inference.rows import printable

    assert printable(NOT_UTF8) == SHOWN
    assert printable("café ΔITA.jpg") == "café ΔITA.jpg"
    assert printable(printable(NOT_UTF8)) == SHOWN  # once shown, it stays as shown


# --- a file name that is not UTF-8 ---------------------------------------------------------------------------------

def test_run_writes_a_file_name_that_is_not_utf8_escaped_with_every_row(odd_names, tiny_models, tmp_path, capsys):
    out = tmp_path / "rows.csv"
    out.write_text("frame,old\n0,precious\n")
    code, _, _ = run_main(["run", "--source", str(odd_names), "--out", str(out), "--no-filter",
                           "--classifier", str(tiny_models["classifier"]), "--threads", "1"], capsys)
    rows = rows_of(out)
    assert code == 0 and SHOWN in {r["source"] for r in rows}
    assert len(rows) == len({r["source"] for r in rows}) == 2  # the other photo's row too: nothing lost


def test_runs_warning_of_an_unreadable_file_so_named_stops_no_terminal(odd_names, tiny_models, tmp_path):
    """A terminal that refuses what is not UTF-8 (Python's own on most desktops' UTF-8 locales) had stopped the run at
    its warning of such a file."""
    (odd_names / os.fsdecode(b"br\xfbk.jpg")).write_bytes(b"not a jpeg")
    out = tmp_path / "rows.csv"
    done = subprocess.run([sys.executable, "main.py", "run", "--source", str(odd_names), "--out", str(out),
                           "--no-filter", "--classifier", str(tiny_models["classifier"]), "--threads", "1"],
                          cwd=REPO, capture_output=True, env={**os.environ, "PYTHONIOENCODING": "utf-8:strict"})
    said = done.stdout.decode("utf-8") + done.stderr.decode("utf-8")
    assert done.returncode == 0 and "Traceback" not in said, said
    assert "br\\xfbk.jpg: cannot be read" in said and len(rows_of(out)) == 2


def test_audit_writes_a_file_name_that_is_not_utf8_escaped_in_every_file(odd_names, tiny_models, tmp_path, capsys,
                                                                          monkeypatch):
    from inference.audit import html

    (odd_names / os.fsdecode(b"br\xfbk.jpg")).write_bytes(b"not a jpeg")  # named in report.html too
    drawn = {}
    real_write_html = html.write_html

    def write_html(path, report, collector, paths):
        drawn.update(report=report, paths=paths)
        real_write_html(path, report, collector, paths)

    monkeypatch.setattr(html, "write_html", write_html)
    out = tmp_path / "audit"
    code, _, _ = run_main(["audit", "--dataset", f"folder:{odd_names}", "--classifier", str(tiny_models["classifier"]),
                           "--no-filter", "--no-progress", "--threads", "1", "--out", str(out)], capsys)
    assert code == 0
    assert SHOWN in {r["file"] for r in rows_of(out / "faces.csv")}
    report = json.loads((out / "report.json").read_bytes().decode("utf-8"))
    focus = [f["file"] for n in report["focus"].values() for f in n["lowest"] + n["highest"]]
    assert SHOWN in focus and report["images"]["unreadable"][0]["file"] == "br\\xfbk.jpg"
    assert "br\\xfbk.jpg" in (out / "report.html").read_bytes().decode("utf-8")
    json.loads((out / "run.json").read_bytes().decode("utf-8"))
    # the HTML draws each face the report names from its file: under the name the report gives it
    assert set(focus) <= set(drawn["paths"]) and drawn["paths"][SHOWN].endswith(NOT_UTF8)


# --- run --help ----------------------------------------------------------------------------------------------------

def test_run_help_lists_every_exit_status(capsys, monkeypatch):
    text = help_text(["run"], capsys, monkeypatch)
    says = ["exit status: 0 rows were written, or no face was found in any frame", "2 an error",
            "no frame could be read", "130 interrupted (Ctrl-C or SIGTERM)"]
    assert all(s in text for s in says), [s for s in says if s not in text]


def test_cam_class_changes_nothing_in_runs_csv_and_its_help_says_so(faces_dir, tiny_models, tmp_path, capsys,
                                                                    monkeypatch):
    written = {}
    for cam_class in ("male", "female"):
        out = tmp_path / f"{cam_class}.csv"
        code, _, _ = run_main(["run", "--source", str(faces_dir), "--out", str(out), "--no-filter", "--threads", "1",
                               "--classifier", str(tiny_models["classifier"]), "--cam-class", cam_class], capsys)
        assert code == 0
        written[cam_class] = [{k: v for k, v in r.items() if k != "time"} for r in rows_of(out)]
    assert written["male"] and written["male"] == written["female"]
    text = help_text(["run"], capsys, monkeypatch)
    assert "this changes nothing in its CSV" in text
    assert "cam_focus[C] per classifier C: P(female), and the share on the face of the positive CAM of the class " \
           "that C predicted for the face, whatever --cam-class says" in text


def test_with_a_filter_runs_skin_is_the_resampled_crops_and_p_female_the_crops_as_found(faces_dir, tiny_models,
                                                                                          tmp_path, capsys, monkeypatch):
    """The darken filter's input is smaller than the crops: its resampling alone changes the skin measured."""
    written = {}
    for name, model in (("none", ["--no-filter"]), ("darken", ["--filter", str(tiny_models["darken"])])):
        out = tmp_path / f"{name}.csv"
        code, _, _ = run_main(["run", "--source", str(faces_dir), "--out", str(out), "--threads", "1",
                               "--classifier", str(tiny_models["classifier"]), *model], capsys)
        assert code == 0
        written[name] = rows_of(out)
    p_female = "p_female[tiny-a]"
    assert [r[p_female] for r in written["darken"]] == [r[p_female] for r in written["none"]]
    assert [r["ita"] for r in written["darken"]] != [r["ita"] for r in written["none"]]
    text = help_text(["run"], capsys, monkeypatch)
    assert ("With a filter, these and measurable are measured on the face through the filter's resampling alone"
            in text and "p_female[C] is measured on the face as found" in text)


def test_audit_splits_a_file_name_that_is_not_utf8_by_its_bytes(odd_names, tiny_models, tmp_path, capsys):
    """--split hashes each file's name, which had stopped the audit with a UnicodeEncodeError traceback (so had a
    copy of such a file, whose split is worked out the same way)."""
    from inference.datasets.splits import hash_fraction

    assert hash_fraction(NOT_UTF8) == hash_fraction(os.fsdecode(b"caf\xe9.jpg"))  # stable, from the name's bytes
    assert hash_fraction("café.jpg") != hash_fraction(NOT_UTF8)
    shutil.copy(odd_names / NOT_UTF8, odd_names / "copy of it.jpg")
    for split in ("test", "train"):
        code, _, err = run_main(["audit", "--dataset", f"folder:{odd_names}", "--split", split, "--classifier",
                                 str(tiny_models["classifier"]), "--no-filter", "--no-progress", "--threads", "1",
                                 "--out", str(tmp_path / split)], capsys)
        assert "Traceback" not in err and code in (0, 2), err
    tested = {r["file"] for r in rows_of(tmp_path / "test" / "faces.csv")} if (tmp_path / "test" / "faces.csv").exists() \
        else set()
    trained = {r["file"] for r in rows_of(tmp_path / "train" / "faces.csv")} if (tmp_path / "train" / "faces.csv").exists() \
        else set()
    assert SHOWN in tested | trained


def test_training_reads_a_dataset_in_a_folder_whose_name_is_not_utf8(tiny_utk, tmp_path, capsys):
    """The decoded-face cache is keyed by the files' paths, and the thumbnail and digest caches by the folder's: a
    home folder named in Latin-1 ("Jos\\xe9") had stopped training with a UnicodeEncodeError traceback."""
    root = tmp_path / os.fsdecode(b"Jos\xe9") / "UTKFace"
    shutil.copytree(tiny_utk, root)
    for face in sorted(root.iterdir())[:5]:  # and faces whose own names are not (checkpoints list them, by name)
        face.rename(root / (face.stem + os.fsdecode(b"-caf\xe9") + face.suffix))
    code, _, err = run_main(["train", "classifier", "--dataset", f"utkface:{root}", "--size", "32", "--width", "8",
                             "--epochs", "2", "--batch-size", "16", "--cache", str(tmp_path / "cache"),
                             "--out", str(tmp_path / "run"), "--threads", "1", "--max-steps", "1"], capsys)
    assert code == 0 and "Traceback" not in err, err
    assert any((tmp_path / "cache").iterdir())
    code, _, err = run_main(["train", "classifier", "--out", str(tmp_path / "run"), "--resume", "--threads", "1"],
                            capsys)
    assert code == 0 and "Traceback" not in err, err


def test_runs_deltas_are_after_minus_before_as_written(tiny_models, tmp_path, capsys):
    """Each delta was the measured difference rounded on its own: off by one in the last digit from the rounded
    terms beside it in about a quarter of the rows (0.9297 − 0.9291 written 0.0007)."""
    folder = tmp_path / "faces"
    folder.mkdir()
    for p in utk_images(24):
        shutil.copy(p, folder / p.name)
    out = tmp_path / "rows.csv"
    code, _, _ = run_main(["run", "--source", str(folder), "--out", str(out), "--threads", "1",
                           "--classifier", str(tiny_models["classifier"]), "--filter", str(tiny_models["darken"])],
                          capsys)
    rows = rows_of(out)
    assert code == 0 and len(rows) >= 12  # Haar finds a face in most of them
    checked = 0
    for r in rows:
        for after, before, delta, digits in (("p_female_filtered[tiny-a]", "p_female_reference[tiny-a]",
                                              "delta_p_female[tiny-a]", 4), ("ita_filtered", "ita", "delta_ita", 2),
                                             ("L_filtered", "L", "delta_l", 2)):
            if r[delta] != "":
                assert round(float(r[after]) - float(r[before]), digits) == float(r[delta]), (r["source"], delta)
                checked += 1
    assert checked >= 2 * len(rows)


def test_a_video_or_animation_whose_name_is_not_utf8_is_refused_or_read_not_a_crash(tiny_models, tmp_path):
    """OpenCV's functions that take a file name crash the process (a segmentation fault) on a name whose bytes are
    not UTF-8: a Latin-1 video, a GIF or PNG in a folder (asked for its frames), a YuNet model. Images and YuNet
    models are read from their bytes (this one, no model, is refused as such); a video cannot be, and is refused
    with its name."""
    import cv2
    import numpy as np

    face = cv2.imread(str(utk_images(1)[0]))
    video = tmp_path / os.fsdecode(b"f\xeate.avi")
    writer = cv2.VideoWriter(str(tmp_path / "plain.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, face.shape[1::-1])
    for _ in range(3):
        writer.write(face)
    writer.release()
    (tmp_path / "plain.avi").rename(video)
    folder = tmp_path / "pics"
    folder.mkdir()
    for suffix in (".png", ".gif", ".webp", ".tif"):
        ok, data = cv2.imencode(suffix, face)
        assert ok
        (folder / os.fsdecode(b"caf\xe9" + suffix.encode())).write_bytes(data.tobytes())
    yunet = tmp_path / os.fsdecode(b"yun\xe9t.onnx")
    yunet.write_bytes(np.zeros(64, np.uint8).tobytes())
    base = [sys.executable, "main.py", "run", "--no-filter", "--classifier", str(tiny_models["classifier"]),
            "--threads", "1"]
    for source, extra, code, said in ((video, [], 2, "OpenCV cannot open this video: its name is not UTF-8"),
                                      (folder, [], 0, "4 frame(s)"),
                                      (folder / os.fsdecode(b"caf\xe9.gif"), [], 0, "1 frame(s)"),
                                      (folder, ["--yunet", str(yunet)], 2, "not a YuNet face detector")):
        done = subprocess.run([*base, "--source", str(source), "--out", str(tmp_path / "rows.csv"), *extra],
                              cwd=REPO, capture_output=True)
        out = done.stdout.decode("utf-8", "replace") + done.stderr.decode("utf-8", "replace")
        assert done.returncode == code and said in out and "Traceback" not in out, (source, done.returncode, out)
