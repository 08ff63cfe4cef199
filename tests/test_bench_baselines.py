"""What `main.py bench` and `bench train` compare against: the base a ratio is taken on, the frames it is taken over,
the faces counted as found, and the rows the issue's targets are judged on. Timing is stubbed (a clock the test
advances, or step times it gives) wherever a ratio is checked, so no figure depends on this machine's speed."""
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference import bench, bench_measure, bench_ratios, bench_report, bench_targets
from inference.faces import Detection
from tests.conftest import make_filter, run_main


# --- 1. bench train: ratios against plain fp32 without compile, whatever order --compile gives ---------------------
@pytest.fixture
def stubbed_training(monkeypatch):
    """bench train with no training: faces, tasks and step times stubbed; a compiled step takes half the time."""
    from training import bench_train

    def time_steps(task, cfg, device, warmup, steps, stop=None):
        seconds = steps * (1.0 if cfg.compile == "off" else 0.5)
        return seconds, 0.0, None if cfg.compile != "off" else 10, 0.0

    monkeypatch.setattr(bench_train, "real_faces", lambda *a: (np.zeros((64, 8, 8, 3), np.uint8), np.zeros(64, int)))
    monkeypatch.setattr(bench_train, "cyclegan_task", lambda *a: object())
    monkeypatch.setattr(bench_train, "time_steps", time_steps)
    return bench_train


def bench_train_rows(tmp_path: Path, capsys, *more: str) -> tuple[list[dict], str]:
    report = tmp_path / "t.json"
    code, out, _ = run_main(["bench", "train", "--device", "cpu", "--trainers", "cyclegan", "--cyclegan-preset",
                             "smoke", "--steps", "2", "--warmup", "0", "--json", str(report), *more], capsys)
    assert code == 0
    return json.loads(report.read_text())["results"], out


def test_bench_train_takes_its_ratios_against_plain_fp32_whatever_order_compile_gives(stubbed_training, tmp_path,
                                                                                       capsys):
    """`--compile default,off` timed the compiled row first and took every ratio against it: plain fp32 read ×0.5."""
    rows, out = bench_train_rows(tmp_path, capsys, "--variants", "fp32", "--compile", "default,off")
    plain = [r for r in rows if r["variant"] == "fp32"]
    assert rows[0] == plain[0] and all(r["ratio_base"] == "fp32" for r in rows)
    for r in rows:
        assert r["ratio_vs_fp32"] == pytest.approx(r["per_second"] / plain[0]["per_second"], abs=0.01)
    assert "ratios are against" not in out  # the base is plain fp32: nothing to explain


def test_bench_train_names_its_base_where_plain_fp32_was_not_asked_for(stubbed_training, tmp_path, capsys):
    rows, out = bench_train_rows(tmp_path, capsys, "--variants", "fp32", "--compile", "default")
    assert [r["ratio_base"] for r in rows] == ["fp32+compile:default"]
    assert ("ratios are against fp32+compile:default, the first row timed: plain fp32 without compile was not asked "
            "for") in out


def test_plain_fp32_is_timed_first_and_the_rest_keep_the_order_given():
    from training.bench_train import timing_order, variants

    import torch

    chosen = list(reversed(variants(torch.device("cpu"))))  # fp32+channels-last, then fp32
    order = [(v[0], mode) for v, mode in timing_order(chosen, ["default", "off"])]
    assert order == [("fp32", "off"), ("fp32+channels-last", "default"), ("fp32+channels-last", "off"),
                     ("fp32", "default")]


# --- 2. bench --seconds: a ratio over the frames both rows measured --------------------------------------------------
class Clock:
    """time.perf_counter for measure(): it moves only when a stub does the work of a frame."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def faces_in(frame: np.ndarray) -> int:
    return 1 + int(frame[0, 0, 0]) % 4  # frames differ in their faces, so which frames were timed matters


def worker(clock: Clock, seconds_a_face: float):
    def run(frame: np.ndarray) -> tuple[dict[str, float], int]:
        n = faces_in(frame)
        clock.now += n * seconds_a_face
        return {}, n
    return run


def test_the_eager_ratio_is_taken_over_the_frames_both_rows_measured(monkeypatch):
    """With --seconds each row stopped on its own clock: the ONNX row's rate over frames 2-13 was divided by eager's
    over frames 2-4, other faces and other counts. Both stubs cost the same per face, so on the same frames the
    ratio is the ratio of their costs a face, whatever faces the frames hold."""
    clock = Clock()
    monkeypatch.setattr(bench_measure.time, "perf_counter", clock)
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(16)]
    eager_cost, onnx_cost, seconds = 1.0, 0.1, 2.0
    onnx = bench_measure.measure("onnx CPU: classifiers only", worker(clock, onnx_cost), frames, 1, seconds)
    eager = bench_measure.measure("eager: classifiers only", worker(clock, eager_cost), frames, 1, seconds)
    for m, provider in ((onnx, "cpu"), (eager, "eager")):
        m.provider, m.faces, m.variant = provider, 4, "plain"
    assert eager.frames < onnx.frames  # the stubs' costs make --seconds stop them apart, as in the review's run

    bench_ratios.compare_with_eager([onnx, eager])
    assert onnx.vs_eager == pytest.approx(eager_cost / onnx_cost)
    assert onnx.vs_eager_faces == pytest.approx(eager_cost / onnx_cost)
    assert onnx.vs_eager_frames == eager.frames
    assert bench_ratios.ratio_notes([onnx, eager]) == [
        f"note: onnx CPU: classifiers only at 4 face(s): × eager over the first {eager.frames} frames after the "
        f"warm-up, those both it ({onnx.frames} measured) and the eager baseline ({eager.frames}) measured"]


def test_rows_that_measured_the_same_frames_keep_their_frames_per_second_ratio(monkeypatch):
    clock = Clock()
    monkeypatch.setattr(bench_measure.time, "perf_counter", clock)
    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(6)]
    onnx = bench_measure.measure("onnx", worker(clock, 0.1), frames, 1)
    eager = bench_measure.measure("eager", worker(clock, 1.0), frames, 1)
    onnx.provider, eager.provider = "cpu", "eager"
    bench_ratios.compare_with_eager([onnx, eager])
    assert onnx.vs_eager == pytest.approx(onnx.fps / eager.fps) and onnx.vs_eager_frames == onnx.frames
    assert bench_ratios.ratio_notes([onnx, eager]) == []


def test_the_reports_rows_leave_the_per_frame_figures_out():
    row = bench_report.json_row(bench_measure.Measurement("onnx", 2, 1.0, {}, frame_ms=[1.0, 2.0], frame_faces=[1, 1]))
    assert not set(bench_report.PER_FRAME) & set(row) and "vs_eager_frames" in row and "faces_dropped" in row


# --- 3. more faces than the app's max_faces: all analysed, the detector's count reported ----------------------------
class Boxes:
    """A detector that finds ``n`` faces in every frame, in a grid."""

    def __init__(self, n: int) -> None:
        self.n = n

    def detect(self, frame: np.ndarray) -> list[Detection]:
        return [Detection((8 + 40 * (i % 12), 8 + 40 * (i // 12), 32, 32)) for i in range(self.n)]


def test_faces_beyond_the_apps_limit_are_analysed_and_those_the_detector_found_beyond_it_said(
        tiny_models, plain_images, tmp_path, monkeypatch, capsys):
    """PipelineConfig.max_faces (the app's 20) kept the 20 largest of `--faces 30`, and the bench called those 20
    "found" while the eager baseline analysed every box: its ratio compared unequal work."""
    from inference.pipeline import PipelineConfig

    pasted = PipelineConfig.max_faces + 4
    found = pasted + 2  # the detector finds two more than were pasted: those two are beyond what is analysed
    monkeypatch.setattr(bench, "make_detector", lambda *a, **k: Boxes(found))
    report = tmp_path / "b.json"
    code, out, _ = run_main(["bench", "--source", str(plain_images), "--classifier", str(tiny_models["classifier"]),
                             "--no-filter", "--no-baseline", "--providers", "cpu", "--threads", "1", "--frames", "2",
                             "--warmup", "0", "--faces", str(pasted), "--json", str(report)], capsys)
    assert code == 0
    row = json.loads(report.read_text())["results"][0]
    assert row["faces_seen"] == found and row["faces_dropped"] == found - pasted
    assert (f"found {found:.2f} a frame and analysed {pasted:.2f}: the pipeline analyses only the largest {pasted} "
            "(PipelineConfig.max_faces)") in out


# --- 4. targets judged only on rows of their configuration ------------------------------------------------------------
def row(variant: str = "filter", faces: int = 1, seen: float = 1.0) -> bench_measure.Measurement:
    """A GPU row that is well inside both goals, whatever its configuration."""
    one, many = bench_targets.TARGETS["one_face"], bench_targets.TARGETS["many_faces"]
    fps = 2 * max(one["min_fps"], many["min_fps"])
    q = {"p50": one["max_p99_ms"] / 4, "p95": one["max_p99_ms"] / 3, "p99": one["max_p99_ms"] / 2}
    name = f"onnx CUDA: {bench.VARIANTS[variant]}"
    return bench_measure.Measurement(name, 100, fps, {"end_to_end": q, "total": q}, "cuda", faces, variant, seen)


def target_run(**differs) -> dict:
    """The run the targets are stated for, but for ``differs``."""
    return {"resolution": tuple(bench_targets.TARGETS["resolution"]), "filter_px": bench_targets.TARGETS["filter_px"],
            "classifiers": bench_targets.TARGETS["classifiers"], **differs}


def judged(lines: list[str]) -> list[str]:
    return [line.rsplit(" — ", 1)[1] for line in lines[1:]]


def test_a_row_of_the_targets_configuration_is_judged():
    many = bench_targets.TARGETS["many_faces"]["faces"]
    rows = [row(), row(faces=many, seen=float(many))]
    assert judged(bench_targets.target_lines(rows, **target_run())) == ["meets the target"] * 2


@pytest.mark.parametrize("which, why", [
    ("classifiers only", "classifiers only, without the filter"),
    ("no face found", "found 0.00 faces a frame of the 1 pasted (none: no model ran)"),
    ("1280x960", "1280×960 frames, not 640×480"),
    ("64 px filter", "a 64 px filter, not 256 px"),
    ("one classifier", "1 classifier(s), not 2"),
])
def test_a_row_not_of_the_targets_configuration_is_not_judged_and_says_why(which, why):
    """Each had "met the target": a classifiers-only row, frames in which no model ran, any --resolution."""
    rows = {"classifiers only": [row("plain")], "no face found": [row(seen=0.0)]}.get(which, [row()])
    run = target_run(**{"1280x960": {"resolution": (1280, 960)}, "64 px filter": {"filter_px": 64},
                        "one classifier": {"classifiers": 1}}.get(which, {}))
    (verdict,) = judged(bench_targets.target_lines(rows, **run))
    assert verdict.startswith("not judged, not the targets' configuration: ") and why in verdict


def test_a_gpu_run_of_another_configuration_is_not_judged(tiny_models, plain_images, tmp_path, monkeypatch, capsys):
    """The bench's own lines for a run under a GPU label (the CPU models, as no GPU is needed to say which rows the
    targets apply to): two classifiers and the 256 px filter at 640×480, but no face found in its frames."""
    real = bench.load_for
    monkeypatch.setattr(bench, "load_for", lambda args, provider: real(args, "cpu"))
    filt = make_filter(tmp_path / "gain256.onnx", size=bench_targets.TARGETS["filter_px"])
    w, h = bench_targets.TARGETS["resolution"]
    code, out, _ = run_main(["bench", "--source", str(plain_images), "--classifier", str(tiny_models["classifier"]),
                             "--classifier", str(tiny_models["classifier2"]), "--filter", str(filt), "--no-baseline",
                             "--providers", "cuda", "--threads", "1", "--frames", "2", "--warmup", "0",
                             "--resolution", f"{w}x{h}"], capsys)
    assert code == 0
    lines = out[out.index("issue #11 targets"):].splitlines()[1:3]
    assert [line.split(",")[0] for line in lines] == [f"  onnx CUDA: {bench.VARIANTS[v]}" for v in ("filter", "plain")]
    assert all("not judged" in line and "(none: no model ran)" in line for line in lines)
    assert not any("meets" in line or "misses" in line for line in lines)
