"""Where a face is found and what is cropped of it: the ONNX Haar cascade finds OpenCV's faces at every frame size
OpenCV takes (4K and phone photos had been refused; images of 24-44 px scanned a window row OpenCV never scans), a
face's crop is its square resized as training resizes faces (it sat half a crop pixel up-left), and the boxes
written may reach past the frame, by the detector's padding, as the columns say."""
from __future__ import annotations

import dataclasses
import re

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from inference import haar_graph, rows
from inference.faces import CROP_SCALE, CROP_SHIFT_Y, HAAR_CASCADES, HaarDetector, crop_square, whole_image_crop
from inference.haar_cascade import Pyramid, candidates, group_and_clip, pack, pyramid, read_cascade, scan_skips
from inference.haar_device import HaarOnnxDetector
from inference.haar_graph import cascade_model
from inference.images import resize_batch
from inference.runtime import RuntimeConfig
from tests.conftest import REPO, require_utk, utk_images
from tests.test_cuda_kernels import missing_on_cuda

CPU = RuntimeConfig(provider="cpu")


def _with_face(size: tuple[int, int], face_px: int, at: tuple[int, int], background: int = 110,
               race: str = "2") -> np.ndarray:
    """A frame of ``size`` (w, h), grey ``background`` with a little noise, and a UTKFace adult at ``at`` (what of
    it lies in the frame)."""
    w, h = size
    rng = np.random.default_rng(0)
    frame = np.full((h, w, 3), background, np.uint8) + rng.integers(0, 20, (h, w, 3), dtype=np.uint8)
    face = cv2.resize(cv2.imread(str(utk_images(1, race=race)[0])), (face_px, face_px), interpolation=cv2.INTER_AREA)
    x, y = at
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + face_px, w), min(y + face_px, h)
    frame[y0:y1, x0:x1] = face[y0 - y:y1 - y, x0 - x:x1 - x]
    return frame


def _opencv_raw(gray: np.ndarray, framing: HaarDetector, min_side: int) -> set[tuple[int, int, int, int]]:
    """OpenCV's raw windows (minNeighbors=0), which it clips to the image as it reports them."""
    found = framing._cascade().detectMultiScale(gray, framing.scale_factor, 0, minSize=(min_side, min_side))
    return set(map(tuple, np.asarray(found).reshape(-1, 4).tolist()))


# 1. frames of 4K and more


def test_a_4k_frame_gets_opencvs_faces_from_the_onnx_cascade():
    """Its packed pyramid (8.7 million pixels) could sum past an int32, so every frame from 3840×2160 up was
    refused ("too large for the ONNX Haar cascade") and `run` stopped without a row. "alt" is the cascade whose
    first stage has fewest nodes: the dense first phase over the frame's 2.6 million windows stays under 3 GB."""
    frame = _with_face((3840, 2160), 600, (1600, 700))
    onnx_run = HaarOnnxDetector("alt", CPU)
    theirs = HaarDetector("alt").detect(frame)
    assert theirs and onnx_run.detect(frame) == theirs
    gray, _, _, min_side = onnx_run.framing.prepare(frame)
    pyr = pyramid((gray.shape[1], gray.shape[0]), onnx_run.cascade.window, onnx_run.framing.scale_factor,
                  (min_side, min_side))
    assert np.prod(pyr.canvas_shape) > haar_graph.MAX_INT32_CANVAS_PIXELS  # beyond an all-white canvas's bound
    # but its sums are not: the int32 graph ran it (judged by the pixel count, every 4K frame had taken the int64
    # graph, at twice the memory and up to 2.6 times the time)
    assert int(pack(gray, pyr).sum(dtype=np.int64)) < 2**31 and onnx_run._wide_session is None
    # a white 12 MP photo's does sum past 2³¹ (an all-white 4K frame's does not): the int64 graph, where needed
    white, _, _, white_min = onnx_run.framing.prepare(np.full((3024, 4032, 3), 255, np.uint8))
    wide = pyramid((white.shape[1], white.shape[0]), onnx_run.cascade.window, onnx_run.framing.scale_factor,
                   (white_min, white_min))
    assert onnx_run._session_for(wide, pack(white, wide)) is not onnx_run.session_info.session


def test_a_frame_the_onnx_cascades_memory_cannot_hold_gets_opencvs_faces_with_a_warning(monkeypatch, caplog):
    """A 12 MP photo on a 16 GB machine asked ONNX Runtime for one 5.3 GB buffer: the run stopped with its
    traceback, the folder's other photos unread. OpenCV's cascade finds the same faces."""
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_state

    frame = _with_face((640, 480), 200, (200, 120))
    detector = HaarOnnxDetector("alt2", CPU)

    def no_memory(*_):
        raise ort_state.RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : Non-zero status code returned "
                                         "while running Gather node. Failed to allocate memory for requested buffer")

    monkeypatch.setattr(detector, "raw_windows", no_memory)
    with caplog.at_level("WARNING"):
        found = detector.detect(frame)
    assert found and found == HaarDetector("alt2").detect(frame)
    assert "a 640×480 frame needs more memory for the ONNX Haar cascade" in caplog.text

    def broken(*_):
        raise ort_state.RuntimeException("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : a shape mismatch")

    monkeypatch.setattr(detector, "raw_windows", broken)
    with pytest.raises(ort_state.RuntimeException, match="shape mismatch"):  # a fault of ours is not hidden
        detector.detect(frame)


def _levels_from(pyr: Pyramid, first_level: int) -> Pyramid:
    """The pyramid with only the windows of its levels from ``first_level`` on (a suffix of its window list)."""
    keep = pyr.window_level >= first_level
    start = int(np.argmax(keep))
    return dataclasses.replace(pyr, window_level=pyr.window_level[keep], window_x=pyr.window_x[keep],
                               window_y=pyr.window_y[keep], window_index=pyr.window_index[keep],
                               row_first=pyr.row_first[keep] - start, row_length=pyr.row_length[keep])


def test_the_int64_integral_holds_a_bright_phone_photos_sums_past_2_31():
    """A bright 4032×3024 photo's pyramid sums past 2³¹; the int64 graph must still pass exactly OpenCV's windows
    where the integral is that large (its large-scale levels, at the canvas's end: evaluated alone, to stay light)."""
    framing = HaarDetector("alt2")
    frame = _with_face((4032, 3024), 1000, (1500, 1000), background=235)
    gray, _, _, min_side = framing.prepare(frame)
    cascade = read_cascade(framing.path)
    pyr = pyramid((gray.shape[1], gray.shape[0]), cascade.window, framing.scale_factor, (min_side, min_side))
    canvas = pack(gray, pyr)
    integral = canvas.astype(np.int64).cumsum(0).cumsum(1).ravel()
    first = int(np.argmax(pyr.scales >= 6))  # windows of 120 px and more: the face's
    large = _levels_from(pyr, first)
    assert integral[large.window_index].max() >= 2**31  # where an int32 integral would have wrapped

    session = ort.InferenceSession(cascade_model(cascade, wide_integral=True), providers=["CPUExecutionProvider"])
    passed, failed_first = session.run(None, {"canvas": canvas, "windows": large.window_index})
    passed = passed[passed >= 0]
    passed = passed[~scan_skips(large, failed_first, passed)]
    ours = set(group_and_clip(candidates(large, passed), (gray.shape[1], gray.shape[0]), 0))
    smallest = int(np.rint(cascade.window[0] * pyr.scales[first]))
    theirs = {r for r in _opencv_raw(gray, framing, min_side) if r[2] >= smallest}
    assert len(theirs) > 5 and ours == theirs


@pytest.mark.parametrize("cascade", sorted(HAAR_CASCADES))
def test_the_int64_graph_runs_wholly_on_cuda(cascade):
    model = onnx.load_from_string(cascade_model(read_cascade(HaarDetector(cascade).path), wide_integral=True))
    assert missing_on_cuda(model) == []


# 3. images of a few dozen pixels


def test_the_onnx_cascade_skips_the_window_rows_opencvs_stripes_skip():
    """OpenCV scans a level in stripes (one per 32 window columns of the first level), each a whole number of row
    steps: where they fall short of the level, its last row is not scanned. The graph had scanned it, and on
    images of 24-44 px found windows there that OpenCV never looks at (a face one pixel larger, or one more)."""
    found_larger = cv2.resize(cv2.imread(str(require_utk() / "16_1_0_20170102234927276.jpg.chip.jpg")), (24, 24),
                              interpolation=cv2.INTER_AREA)  # by one pixel: (-2, -2, 27, 27), OpenCV's 26 × 26
    assert HaarOnnxDetector("alt2", CPU).detect(found_larger) == HaarDetector("alt2").detect(found_larger)
    compared = 0
    for cascade in ("alt2", "default"):
        framing, onnx_run = HaarDetector(cascade), HaarOnnxDetector(cascade, CPU)
        for path in utk_images(6):
            image = cv2.imread(str(path))
            for side in range(24, 45):
                small = cv2.resize(image, (side, side), interpolation=cv2.INTER_AREA)
                gray, _, _, min_side = framing.prepare(small)
                ours = set(group_and_clip(onnx_run.raw_windows(gray, min_side), (gray.shape[1], gray.shape[0]), 0))
                theirs = _opencv_raw(gray, framing, min_side)
                assert ours == theirs, (cascade, path.name, side, ours ^ theirs)
                compared += len(theirs)
    assert compared > 100


# 2. the crop


def _square_box(x0: int, y0: int, side: int) -> tuple[float, float, float, float]:
    """The detector box whose crop square is frame pixels x0 … x0 + side − 1 (and the same rows from y0)."""
    w = side / CROP_SCALE
    return x0 + side / 2 - w / 2, y0 + side / 2 - w / 2 - CROP_SHIFT_Y * w, w, w


def test_a_shrunk_crop_is_its_square_area_resized():
    """As training resizes an aligned face (images.resize_batch: INTER_AREA): the crop had been the square moved
    half a crop pixel up-left (7 frame pixels for 970 px cropped to 64: 4.0 grey levels off on average, up to 22)."""
    face = cv2.cvtColor(cv2.imread(str(utk_images(1, race="2")[0])), cv2.COLOR_BGR2RGB)
    frame = cv2.resize(face, (1600, 1200), interpolation=cv2.INTER_CUBIC)
    x0, y0, side = 215, 195, 970  # 970 / 64, / 112, / 128: no whole number of frame pixels a crop pixel
    for size in (64, 112, 128):
        crop, _ = crop_square(frame, _square_box(x0, y0, side), size)
        square = resize_batch(frame[None, y0:y0 + side, x0:x0 + side], (size, size))[0]
        assert np.abs(crop.astype(int) - square).max() <= 1, size


def test_an_enlarged_crop_is_its_square_linearly_resized():
    """As training resizes a small aligned face (interpolated linearly, pixel centres aligned). Up to the edge
    of the square, where the crop goes on into the frame and a resize of the square alone repeats its edge, and
    to warpAffine's 1/32-pixel steps (a grey level or two)."""
    face = cv2.cvtColor(cv2.imread(str(utk_images(1, race="1")[0])), cv2.COLOR_BGR2RGB)
    for side, size in ((50, 112), (64, 128), (97, 128), (150, 224)):
        crop, _ = crop_square(face, _square_box(30, 30, side), size)
        square = resize_batch(face[None, 30:30 + side, 30:30 + side], (size, size))[0].astype(int)
        edge = int(np.ceil(size / side))  # crop pixels within a frame pixel of the square's edge
        inner = (slice(edge, -edge), slice(edge, -edge))
        assert np.abs(crop - square)[inner].max() <= 2 and np.abs(crop - square).mean() < 0.25, (side, size)


def test_the_kept_affine_maps_crop_pixel_centres_to_where_they_were_sampled():
    """paste_back (and the CAM overlay) put a crop back through this affine: crop pixel c is the frame area
    x0 + c/s … x0 + (c + 1)/s, centred on x0 + (c + ½)/s − ½ in pixel-centre coordinates. For a whole image too,
    whose crop is cv2.resize's of its centred square (300×300 of this 300×400 frame, from row 50)."""
    frame = np.zeros((400, 300, 3), np.uint8)
    for size in (64, 112, 256):
        _, to_frame = crop_square(frame, _square_box(40, 60, 200), size)
        s = size / 200
        for c in (0, size // 2, size - 1):
            assert np.allclose(to_frame @ [c, c, 1], [40 + (c + 0.5) / s - 0.5, 60 + (c + 0.5) / s - 0.5])
        _, to_frame = whole_image_crop(frame, size)
        assert np.allclose(to_frame @ [size / 2 - 0.5, size / 2 - 0.5, 1], [300 / 2 - 0.5, 400 / 2 - 0.5])
        assert np.allclose(to_frame @ [-0.5, -0.5, 1], [-0.5, 49.5])  # the crop's outer corner is the square's


# 4. boxes past the frame


def test_a_box_at_the_frames_edge_may_reach_past_it_by_the_padding_which_the_columns_say():
    """Faces are found in the frame scanned with its edges repeated around it, and their boxes mapped back as
    found: a face at the border has a box past the frame (the crop needs it whole). By how much at most is the
    padding, which the CSV's columns and the audit's schema state."""
    framing = HaarDetector()
    past = 0
    for size, at in (((640, 480), (0, 0)), ((640, 480), (-40, 100)), ((640, 480), (440, 280)), ((200, 200), (0, 0))):
        frame = _with_face(size, 200, at)
        _, p, s, _ = framing.prepare(frame)
        most = p / s + 1  # the padding in frame pixels, and a pixel of rounding
        for det in framing.detect(frame):
            x, y, w, h = det.box
            over = max(-x, -y, x + w - size[0], y + h - size[1])
            assert over <= most, (size, det.box, most)
            past += over > 0
    assert past >= 3  # it happens, at the frame's edges and in an aligned image

    entry = re.search(r"^  x, y, w, h .*?(?=^  \S)", rows.COLUMNS, re.M | re.S).group(0)
    schema = next(line for line in (REPO / "docs" / "audit_schema.md").read_text(encoding="utf-8").splitlines()
                  if line.startswith("| `faces.csv`"))
    for text in (" ".join(entry.split()), schema):
        assert "past" in text and f"{framing.edge_pad:.0%}".replace("%", " %") in text
        assert f"{framing.pad:.0%}".replace("%", " %") in text and f"{framing.pad_below} px" in text
