"""OpenCV's Haar cascade as an ONNX graph (for the GPU) must find exactly what OpenCV finds.

The reference is OpenCV itself: ``detectMultiScale`` with ``minNeighbors=0`` returns every window that passed
the cascade, before grouping, and the graph's list must be the same, window for window, for each of OpenCV's
frontal-face cascades (trees and stumps) on real faces. Runs on the CPU provider (a few hundred ms a frame).
"""
from __future__ import annotations

import dataclasses
import json

import cv2
import numpy as np
import onnx
import pytest

import main
from inference.bench_detect import pasted
from inference.errors import BiasMirrorError
from inference.faces import HAAR_CASCADES, HaarDetector, make_detector
from inference.haar_cascade import Pyramid, pyramid, read_cascade, scan_skips
from inference.haar_graph import cascade_model, default_phases, leaf_sum_bits
from collections import Counter

from inference.haar_device import HaarOnnxDetector, placement_line
from inference.runtime import RuntimeConfig
from tests.conftest import require_utk, utk_images

CPU = RuntimeConfig(provider="cpu")


def frames() -> list[np.ndarray]:
    """A White, a Black and an Indian adult's face pasted into noisy 320×240 frames, as grey images."""
    rng = np.random.default_rng(0)
    out = []
    for race in "012":
        frame = np.full((240, 320, 3), 120, np.uint8) + rng.integers(0, 30, (240, 320, 3), dtype=np.uint8)
        frame[50:180, 90:220] = cv2.resize(cv2.imread(str(utk_images(1, race=race)[0])), (130, 130))
        out.append(cv2.cvtColor(frame, cv2.COLOR_BGR2GRAY))
    return out


@pytest.mark.parametrize("cascade", list(HAAR_CASCADES))
def test_the_graph_passes_exactly_the_windows_opencv_passes(cascade):
    detector = HaarOnnxDetector(cascade, CPU)
    opencv = cv2.CascadeClassifier(str(detector.framing.path))
    compared = 0
    for gray in frames():
        ours = sorted(map(tuple, detector.raw_windows(gray, 19).tolist()))
        theirs = sorted(map(tuple, np.asarray(opencv.detectMultiScale(gray, 1.1, 0, minSize=(19, 19))).reshape(-1, 4).tolist()))
        assert ours == theirs
        compared += len(theirs)
    assert compared > 30  # faces were there to be found, at many windows


def _opencv_row_scan(failed_first: list[bool]) -> set[int]:
    """OpenCV's loop over a row, as written: after a window that fails the first stage, step over one."""
    seen, x = set(), 0
    while x < len(failed_first):
        seen.add(x)
        x += 2 if failed_first[x] else 1
    return seen


def test_the_scan_skips_the_windows_opencvs_row_loop_steps_over():
    rng = np.random.default_rng(1)
    rows, width = 40, 23
    failed = rng.random((rows, width)) < 0.6
    pyr = Pyramid((width, rows), (20, 20), np.ones(1, np.float32), np.zeros((1, 2), np.int64),
                  np.zeros((1, 2), np.int64), (1, 1), np.zeros(rows * width, np.int64),
                  np.tile(np.arange(width), rows), np.repeat(np.arange(rows), width), np.zeros(rows * width, np.int64),
                  np.repeat(np.arange(rows) * width, width), np.full(rows * width, width))
    skipped = scan_skips(pyr, failed.ravel(), np.arange(rows * width)).reshape(rows, width)
    some = np.array([5, 6, 7, 30, 31, 200, 919])  # a few windows of a few rows: the same answers
    assert (scan_skips(pyr, failed.ravel(), some) == skipped.ravel()[some]).all()
    for r in range(rows):
        evaluated = _opencv_row_scan(failed[r].tolist())
        assert {x for x in range(width) if not skipped[r, x]} == evaluated


def test_the_pyramid_follows_opencvs_levels_and_steps():
    pyr = pyramid((296, 232), (20, 20), 1.1, (19, 19))
    assert pyr.scales[0] == 1 and 2.0 > pyr.scales[7] and pyr.scales[8] >= 2.0
    assert np.rint(20 * pyr.scales[-1].astype(np.float64)) <= 232 < np.rint(20 * pyr.scales[-1] * 1.1)
    on = lambda level: (pyr.window_level == level)
    assert set(np.diff(np.unique(pyr.window_x[on(0)]))) == {2} and set(np.diff(np.unique(pyr.window_x[on(8)]))) == {1}
    # every window lies inside its level, and no two levels overlap in the canvas
    w, h = pyr.sizes[pyr.window_level].T
    assert (pyr.window_x + 20 <= w).all() and (pyr.window_y + 20 <= h).all()
    mask = np.zeros(pyr.canvas_shape, np.int64)
    for (sw, sh), (ox, oy) in zip(pyr.sizes, pyr.origins):
        mask[oy - 1:oy + sh, ox - 1:ox + sw] += 1  # each level with its zero row and column
    assert mask.max() == 1


def test_the_onnx_detector_gives_opencvs_faces():
    framed, onnx_run = HaarDetector(), make_detector(haar_runtime="onnxruntime", runtime=CPU)
    assert isinstance(onnx_run, HaarOnnxDetector) and onnx_run.name == "haar-alt2-ort" and onnx_run.provider == "CPUExecutionProvider"
    found = 0
    for path in utk_images(4, race="1"):
        image = cv2.imread(str(path))
        for frame in (pasted(image, (640, 480), 176)[0], image):  # a camera-like frame, and an aligned crop
            theirs = framed.detect(frame)
            assert onnx_run.detect(frame) == theirs
            found += len(theirs)
    assert found >= 6


def test_nothing_to_find_is_nothing_found():
    detector = HaarOnnxDetector("alt2", CPU)
    assert detector.detect(np.full((480, 640, 3), 90, np.uint8)) == []
    assert detector.detect(np.zeros((6, 6, 3), np.uint8)) == []


def test_a_file_that_is_not_a_cascade_is_named(tmp_path):
    with pytest.raises(BiasMirrorError, match="not found"):
        read_cascade(tmp_path / "none.xml")
    bad = tmp_path / "bad.xml"
    bad.write_text('<?xml version="1.0"?>\n<opencv_storage><thing>1</thing></opencv_storage>\n')
    with pytest.raises(BiasMirrorError, match="not a boosted Haar cascade") as err:
        read_cascade(bad)
    assert str(bad) in str(err.value)
    with pytest.raises(BiasMirrorError, match="Haar runtime"):
        make_detector(haar_runtime="opencl")


def test_bench_detect_checks_the_onnx_cascade_against_opencv_frame_by_frame(tmp_path, capsys):
    out = tmp_path / "detect.json"
    code = main.main(["bench", "detect", "--data", f"utkface:{require_utk().parent}", "--per-group", "2",
                      "--detectors", "haar-alt2-ort", "--provider", "cpu", "--json", str(out)])
    assert code == 0
    (r,) = json.loads(out.read_text())["results"]
    assert r["name"] == "haar-alt2-ort" and r["provider"] == "CPUExecutionProvider"
    assert r["frames"] == 10 and r["same_as_opencv"] == 10
    assert "the same boxes as OpenCV's haar-alt2 on 10 of 10 frames" in capsys.readouterr().out


def test_bench_detect_weighs_the_graphs_phases_each_against_opencv(tmp_path, capsys):
    """Fewer phases mean fewer kernels and host syncs but more dense work in each: a GPU may prefer either, so
    bench detect times any split it is given, and every split must still find OpenCV's boxes."""
    out = tmp_path / "detect.json"
    names = ["haar-alt2-ort@3/20", "haar-alt2-ort@2/6/20"]
    assert main.main(["bench", "detect", "--data", f"utkface:{require_utk().parent}", "--per-group", "1",
                      "--detectors", ",".join(names), "--provider", "cpu", "--json", str(out)]) == 0
    results = {r["name"]: r for r in json.loads(out.read_text())["results"]}
    assert list(results) == names
    assert all(r["frames"] == 5 and r["same_as_opencv"] == 5 for r in results.values())
    printed = capsys.readouterr().out
    kernels = [int(printed.split(f"{n} graph on CPUExecutionProvider, one frame: ")[1].split(" kernels")[0]) for n in names]
    assert kernels[0] < kernels[1]  # two phases run fewer kernels than three
    assert "haar-alt2-ort@3/20 (CPUExecutionProvider): the same boxes as OpenCV's haar-alt2 on 5 of 5 frames" in printed


def test_where_the_graphs_kernels_ran_is_read_from_onnx_runtimes_profile():
    counts = HaarOnnxDetector("alt2", CPU).placement()
    assert set(p for p, _ in counts) == {"CPUExecutionProvider"} and sum(counts.values()) > 100
    assert counts[("CPUExecutionProvider", "NonZero")] == 5  # one per phase
    line = placement_line(Counter({("CUDAExecutionProvider", "Gather"): 40, ("CPUExecutionProvider", "Shape"): 1,
                                   ("CPUExecutionProvider", "CumSum"): 4}))
    assert line == "45 kernels: 40 on CUDAExecutionProvider, 5 on CPUExecutionProvider (CumSum 4, Shape 1)"


@pytest.mark.parametrize("cascade", list(HAAR_CASCADES))
def test_no_reduction_whose_result_depends_on_how_a_gpu_adds(cascade):
    """ONNX Runtime's CUDA provider reduces int32/int64 through float32 (integral corners of hundreds of millions
    would round) and adds floats in its own order: the graph keeps its integer and float32 sums out of
    reductions, and its one double reduction is over leaf values that sum exactly in any order."""
    c = read_cascade(HaarDetector(cascade).path)
    model = onnx.shape_inference.infer_shapes(onnx.load_from_string(cascade_model(c)))
    types = {v.name: v.type.tensor_type.elem_type for v in [*model.graph.value_info, *model.graph.input]}
    types.update({t.name: t.data_type for t in model.graph.initializer})
    reductions = Counter((n.op_type, onnx.TensorProto.DataType.Name(types[n.input[0]]))
                         for n in model.graph.node if n.op_type.startswith("Reduce"))
    phases = len(default_phases(c.n_stages))
    # over 0/1 decisions (exact in any type and order), and the stage sums in doubles
    assert reductions == {("ReduceProd", "FLOAT"): phases, ("ReduceMin", "FLOAT"): phases,
                          ("ReduceSum", "DOUBLE"): phases}
    assert leaf_sum_bits(c) <= 53
    spread = dataclasses.replace(c, leaves=np.array([1.0, 2.0**-60], np.float32))
    assert leaf_sum_bits(spread) == 61
    with pytest.raises(ValueError, match="61 bits"):
        cascade_model(spread)


def test_run_writes_the_same_rows_with_either_haar_runtime_two_frames_ahead(tmp_path):
    """End to end, with faces found two frames ahead on two threads sharing one detector."""
    import csv

    frames_dir = tmp_path / "frames"
    frames_dir.mkdir()
    for i, path in enumerate(utk_images(3, race="2")):
        cv2.imwrite(str(frames_dir / f"{i}.png"), pasted(cv2.imread(str(path)), (640, 480), 176)[0])
    rows = {}
    for runtime in ("opencv", "onnxruntime"):
        out = tmp_path / f"{runtime}.csv"
        assert main.main(["run", "--source", str(frames_dir), "--out", str(out), "--detect-depth", "2",
                          "--haar-runtime", runtime, "--provider", "cpu"]) == 0
        rows[runtime] = [{k: v for k, v in r.items() if k != "time"} for r in csv.DictReader(out.open())]
    assert len(rows["opencv"]) >= 2 and rows["onnxruntime"] == rows["opencv"]
