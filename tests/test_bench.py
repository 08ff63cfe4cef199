"""`main.py bench` as a user meets it: bad model files, runs that time nothing, frames that cannot all be held,
folders and videos without faces, Ctrl-C before the first row, and `bench train --size`. Tiny models, a few frames."""
import json
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import bench, bench_frames, bench_machine, bench_measure, bench_table
from tests.conftest import run_main


run = run_main


@pytest.fixture
def faces(plain_images) -> Path:
    """These tests need no face found."""
    return plain_images


def bench_argv(source: Path, tiny_models, *more: str) -> list[str]:
    return ["bench", "--source", str(source), "--classifier", str(tiny_models["classifier"]), "--no-filter",
            "--no-baseline", "--threads", "1", "--frames", "2", "--warmup", "0", "--resolution", "64x64", *more]


def blank_video(path: Path, frames: int = 4) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(frames):
        writer.write(np.full((48, 64, 3), 128, np.uint8))
    writer.release()
    return path


# --- 1. a bad --yunet is an error whatever --providers says; a run that timed nothing says so ----------------------
@pytest.mark.parametrize("which", ["missing", "another model"])
def test_a_bad_yunet_file_is_an_error_under_auto_as_under_cpu(which, tiny_models, faces, tmp_path, capsys):
    """With auto on a CPU-only machine a missing YuNet file made the row "unavailable" and the run exited 0 (with
    --providers cpu it was an error already)."""
    yunet = tmp_path / "nope.onnx" if which == "missing" else tiny_models["classifier2"]
    report = tmp_path / "b.json"
    code, _, err = run(bench_argv(faces, tiny_models, "--providers", "auto", "--yunet", str(yunet),
                                  "--json", str(report)), capsys)
    assert code == 2 and err.startswith(f"error: {yunet}") and "YuNet" in err
    assert not report.exists()  # refused before anything was measured


def test_a_run_that_timed_nothing_ends_with_an_error_and_says_so_in_its_json(tiny_models, faces, tmp_path, monkeypatch,
                                                                              capsys):
    """`--providers cuda --no-baseline` without a GPU measured nothing and exited 0, like a run that had measured."""
    monkeypatch.setattr(bench, "load_for", lambda args, provider: (None, "no GPU here (stub)"))
    report = tmp_path / "b.json"
    code, out, err = run(bench_argv(faces, tiny_models, "--providers", "cuda", "--json", str(report)), capsys)
    assert code == 2
    assert "error: nothing was measured: every provider asked for (cuda) was unavailable" in err
    assert "--no-baseline" in err
    data = json.loads(report.read_text())
    assert data["timed"] == 0 and data["measured"] == data["configurations"] == 1
    assert "unavailable: no GPU here (stub)" in out


# --- 2. frames: a bounded number held, cycled; memory never a traceback ---------------------------------------------
def test_frames_beyond_the_memory_budget_are_cycled_each_a_view_of_its_own(faces, monkeypatch):
    """Every frame was built before timing: 8192×8192 with the default 60 frames asked for 12.5 GB a face count."""
    monkeypatch.setattr(bench_frames, "FRAME_BUDGET", 64 * 64 * 3 * 3)  # three 64×64 frames
    distinct = bench_frames.distinct_frames((64, 64), 7, 1)
    frames = bench_frames.make_frames(str(faces), 1, (64, 64), 7, distinct)
    assert distinct == 3 and len(frames) == 7
    owners = {id(f.base if f.base is not None else f) for f in frames}
    assert len(owners) == 3  # three frames' memory
    assert len({id(f) for f in frames}) == 7  # but each a place of its own (DetectingAhead finds frames by identity)
    assert all((frames[i] == frames[i % 3]).all() for i in range(7))


def test_a_run_beyond_the_memory_budget_times_cycled_frames_and_says_so(tiny_models, faces, tmp_path, monkeypatch,
                                                                         capsys):
    monkeypatch.setattr(bench_frames, "FRAME_BUDGET", 64 * 64 * 3 * 2)
    report = tmp_path / "b.json"
    code, out, _ = run(bench_argv(faces, tiny_models, "--providers", "cpu", "--frames", "3", "--warmup", "1",
                                  "--json", str(report)), capsys)
    assert code == 0 and "4 per configuration (1 warm-up), cycling through 2 different ones" in out
    rows = json.loads(report.read_text())["results"]
    assert [(r["status"], r["frames"]) for r in rows] == [("ok", 3)]


def test_frames_that_cannot_be_held_even_once_each_are_refused_by_option(tiny_models, faces, monkeypatch, capsys):
    monkeypatch.setattr(bench_frames, "FRAME_BUDGET", 64 * 64 * 3)  # one frame: not one for each of two face counts
    code, _, err = run(bench_argv(faces, tiny_models, "--faces", "1,2"), capsys)
    assert code == 2 and "--resolution 64x64 with 2 face counts (--faces)" in err and "give fewer --faces" in err


def test_running_out_of_memory_making_the_frames_is_an_error_line(tiny_models, faces, monkeypatch, capsys):
    def make_frames(*a, **kw):
        raise MemoryError

    monkeypatch.setattr(bench, "make_frames", make_frames)
    code, _, err = run(bench_argv(faces, tiny_models), capsys)
    assert code == 2 and err.startswith("error: out of memory making the 64x64 frames (--resolution)")


def test_running_out_of_memory_while_measuring_keeps_what_was_measured(tiny_models, faces, tmp_path, monkeypatch,
                                                                       capsys):
    real, calls = bench.measure, []

    def measure(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise MemoryError
        return real(*a, **kw)

    monkeypatch.setattr(bench, "measure", measure)
    report = tmp_path / "b.json"
    code, _, err = run(bench_argv(faces, tiny_models, "--providers", "cpu", "--faces", "1,2", "--json", str(report)),
                       capsys)
    assert code == 2 and err.startswith("error: out of memory after 1 of 2 configurations at 64x64")
    data = json.loads(report.read_text())
    assert data["complete"] is False and [r["faces"] for r in data["results"]] == [1]


# --- 4. a video in which no face is found is noted, as a folder's rows are ------------------------------------------
def test_a_video_in_which_no_face_was_found_is_noted(tiny_models, tmp_path, capsys):
    """Its rows printed "× eager" ratios with no word that no model had run."""
    clip = blank_video(tmp_path / "blank.avi")
    code, out, _ = run(["bench", "--source", str(clip), "--classifier", str(tiny_models["classifier"]), "--no-filter",
                        "--no-baseline", "--threads", "1", "--providers", "cpu", "--frames", "2", "--warmup", "0",
                        "--resolution", "64x64"], capsys)
    assert code == 0
    assert "at a video's frames found 0.00 a frame: its figures time the models on those only" in out
    assert "(none: no model ran)" in out


def test_of_a_videos_rows_only_one_that_found_no_face_is_noted():
    """A video places no faces: a row that found some is not short of any."""
    rows = [bench_measure.Measurement(f"onnx CPU {seen}", 3, 10.0, {}, "cpu", bench_measure.AS_FILMED, "plain", faces_seen=seen)
            for seen in (0.0, 0.4)]
    assert [line.split(" at ")[0] for line in bench_table.short_of_faces(rows)] == ["note: onnx CPU 0.0"]


# --- 5. a folder's readable images after many unreadable ones -------------------------------------------------------
def test_a_folder_is_read_on_past_unreadable_images(tmp_path):
    """Only the first max(count, faces) × 2 files were tried: 6 unreadable ones first read as "no readable images"."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(8):
        (folder / f"a{i}.jpg").write_bytes(b"not a jpeg")
    cv2.imwrite(str(folder / "z.png"), np.full((40, 40, 3), 90, np.uint8))
    frames = bench_frames.make_frames(str(folder), 1, (64, 64), 3)
    assert len(frames) == 3 and (frames[0] == 90).any()


def test_a_folder_of_only_unreadable_images_says_how_many(tmp_path):
    from inference.errors import BiasMirrorError

    folder = tmp_path / "bad"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(BiasMirrorError, match=r"no readable images in the folder \(3 image file\(s\) could not be"):
        bench_frames.make_frames(str(folder), 1, (64, 64), 3)


# --- 6. Ctrl-C before the first row ---------------------------------------------------------------------------------
def test_ctrl_c_while_loading_leaves_no_earlier_runs_json_looking_complete(tiny_models, faces, tmp_path, monkeypatch,
                                                                          capsys):
    report = tmp_path / "b.json"
    report.write_text(json.dumps({"complete": True, "stopped": None, "results": [{"fps": 99.0}]}))

    def make_frames(*a, **kw):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "make_frames", make_frames)
    code, out, _ = run(bench_argv(faces, tiny_models, "--json", str(report)), capsys)
    data = json.loads(report.read_text())
    assert code == 130 and data["complete"] is False and data["results"] == [] and data["measured"] == 0
    assert data["stopped"] == "interrupted before the first configuration was measured" and data["stopped"] in out


# --- 3. bench train --size ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("size, says", [("100000", "must be at most 512, got 100000"),
                                        ("1", "must be at least 32, got 1")])
def test_bench_train_refuses_a_size_out_of_range(size, says, capsys):
    """100000 ended in OpenCV's allocation traceback; 1 ran and reported "2419.8 images/s"."""
    code, _, err = run(["bench", "train", "--size", size, "--device", "cpu"], capsys)
    assert code == 2 and f"argument --size: {says}" in err


def test_bench_refuses_a_json_that_is_one_of_its_models(tmp_path, tiny_models, faces_dir, capsys):
    """`bench --json m.onnx --classifier m.onnx` replaced the model with its results after the first row."""
    import shutil

    model = Path(shutil.copy(tiny_models["classifier"], tmp_path / "m.onnx"))
    before = model.read_bytes()
    code, _, err = run(["bench", "--source", str(faces_dir), "--classifier", str(model), "--no-filter",
                        "--json", str(model)], capsys)
    assert code == 2 and "--json and --classifier name the same file" in err and model.read_bytes() == before


def test_bench_detect_names_a_yunet_spec_without_a_file_by_its_option():
    from inference.bench_detect import parse_detectors
    from inference.errors import BiasMirrorError

    with pytest.raises(BiasMirrorError, match=r"--detectors: 'yunet:' names no model file"):
        parse_detectors("haar-default,yunet:")


def test_memory_is_the_current_size_asked_of_psutil_on_every_system(monkeypatch):
    """Memory had been read from /proc/self/statm, Linux's alone: NaN on a Mac or Windows (and, before that, the
    peak, in bytes on macOS, or a crash on Windows). psutil tells the current resident size on each system: its
    figure is taken (stubbed below, as this machine is Linux), and here it is /proc's and grows with what is held."""
    import psutil

    with open("/proc/self/statm", encoding="ascii") as fh:
        statm = int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6
    before = bench_machine.rss_mb()
    assert abs(before - statm) < 50
    held = np.ones(200_000_000, np.uint8)  # 200 MB written, so resident
    assert bench_machine.rss_mb() - before > 150 and held[-1] == 1

    from types import SimpleNamespace

    monkeypatch.setattr(psutil, "Process", lambda: SimpleNamespace(memory_info=lambda: SimpleNamespace(rss=123e6)))
    assert bench_machine.rss_mb() == 123.0
    monkeypatch.setattr(psutil, "Process", lambda: (_ for _ in ()).throw(psutil.AccessDenied()))
    assert np.isnan(bench_machine.rss_mb())


def test_a_json_report_the_system_refuses_names_the_path_given(tiny_models, faces, tmp_path, monkeypatch, capsys):
    """A --json that passed the check up front but whose write failed (a folder made read-only meanwhile, a full
    disk, root's os.access) stopped the bench with the hidden file written in its place as the name."""
    import errno

    from inference import writing

    def refused(*a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    target = tmp_path / "bench.json"
    monkeypatch.setattr(writing.Path, "write_text", refused)
    code, _, err = run_main(["bench", "--source", str(faces), "--json", str(target), "--no-baseline", "--frames",
                             "1", "--warmup", "0", "--threads", "1", "--providers", "cpu",
                             "--classifier", str(tiny_models["classifier"]), "--no-filter"], capsys)
    assert code == 2 and f"error: {target}: could not write the --json report (Read-only file system" in err
    assert ".part" not in err and "what was measured is printed above" in err
