"""The frame pipeline on tiny random-weight models and real faces."""
import csv

import cv2
import numpy as np
import pytest

import main
from inference.errors import BiasMirrorError
from inference.faces import HaarDetector, crop_square, paste_back
from inference.faces import Detection
from inference.models import load_model
from inference.frame_depth import as_bgr_uint8
from inference.pipeline import FramePipeline, PipelineConfig, cam_focus
from inference.faces import face_region_mask
from inference.tracking import IoUTracker, Track, iou_matrix
from tests.conftest import REPO, make_filter, utk_images

DEFAULT_CLASSIFIER = REPO / "resources/models/resnet10_unbalanced.onnx"


def _face_bgr(i=0):
    return cv2.imread(str(utk_images(i + 1)[i]))


def _scene(faces=1, size=(480, 640), face_px=150):
    frame = np.full((*size, 3), 90, np.uint8)
    cols = max(1, int(np.ceil(np.sqrt(faces))))
    step_x, step_y = size[1] // cols, size[0] // int(np.ceil(faces / cols))
    side = min(face_px, step_x, step_y)
    for k in range(faces):
        face = cv2.resize(_face_bgr(k % 8), (side, side))
        y, x = (k // cols) * step_y, (k % cols) * step_x
        frame[y : y + side, x : x + side] = face
    return frame


def _centred_face(size=(480, 640), face_px=200, i=0):
    frame = np.full((*size, 3), 90, np.uint8)
    y, x = (size[0] - face_px) // 2, (size[1] - face_px) // 2
    frame[y : y + face_px, x : x + face_px] = cv2.resize(_face_bgr(i), (face_px, face_px))
    return frame


@pytest.fixture
def pipeline(tiny_models):
    cls = [load_model(tiny_models["classifier"]), load_model(tiny_models["classifier2"])]
    return FramePipeline(cls, load_model(tiny_models["darken"]), HaarDetector())


def test_haar_finds_real_faces():
    det = HaarDetector()
    assert len(det.detect(_scene(1))) == 1
    skimage_data = pytest.importorskip("skimage.data")
    astronaut = cv2.cvtColor(skimage_data.astronaut(), cv2.COLOR_RGB2BGR)
    assert len(det.detect(astronaut)) >= 1


def test_faces_of_an_ordinary_size_are_found_in_an_hd_or_4k_frame_as_in_a_camera_frame():
    """Every frame was scanned at 256 px wide, so the smallest face found was 20·width/256 px: in a 4K photo none
    of six faces of 110–200 px was found, in 1080p three, with no warning. A camera frame is scanned as before."""
    det = HaarDetector()
    scene = _scene(6, size=(480, 640), face_px=140)
    found = len(det.detect(scene))
    assert found >= 5
    for w, h in ((1920, 1080), (3840, 2160)):
        frame = np.full((h, w, 3), 90, np.uint8)
        frame[:480, :640] = scene  # the same faces, at the same pixel size, in a larger frame
        assert len(det.detect(frame)) >= found - 1, (w, h)
    assert det.prepare(scene)[2] == 256 / 640  # 640×480 is scanned at 256 px wide: its speed is what it was


def test_one_detector_used_from_several_threads_finds_what_it_finds_alone():
    """The app and detect-ahead call one detector from helper threads; a shared cv2 cascade got most frames wrong."""
    from concurrent.futures import ThreadPoolExecutor

    frames = [_scene(n) for n in (1, 2, 3, 4, 6)]
    det = HaarDetector()
    alone = [det.detect(f) for f in frames]
    assert all(alone)  # every scene has faces to find
    with ThreadPoolExecutor(4) as pool:
        shared = list(pool.map(det.detect, frames * 4))
    assert shared == alone * 4


def test_the_cascade_is_chosen_by_name():
    assert HaarDetector().name == "haar-alt2" and HaarDetector("default").name == "haar-default"
    with pytest.raises(BiasMirrorError, match="no Haar cascade named 'nope'; choose one of alt2, default, alt"):
        HaarDetector("nope")


def test_opencv_without_a_cascade_is_named_not_a_traceback(monkeypatch):
    # OpenCV 5 wheels (seen on the GPU machine) have no CascadeClassifier at all
    monkeypatch.delattr(cv2, "CascadeClassifier")
    with pytest.raises(BiasMirrorError, match="no Haar cascade.*opencv-python<5.*--yunet"):
        HaarDetector()


def test_frame_result_holds_everything(pipeline):
    r = pipeline.process(_scene(1), timestamp=1.0, source="test")
    assert len(r.faces) == 1
    face = r.faces[0]
    assert set(face.original.classifiers) == {"tiny-a", "tiny-b"}
    out = face.original.classifiers["tiny-a"]
    assert 0 <= out.p_female <= 1 and out.cam.shape == face.original.crop.shape[:2] and out.cam_class == "female"
    assert face.filtered is not None and face.original.skin.measurable and face.filtered.skin.measurable
    # a filter that darkens must read as darker: negative ΔITA and ΔL
    assert face.skin_shift.delta_ita < -1 and face.skin_shift.delta_l < -1
    # the darkening filter works at 32 px, so ΔP is measured against the crop's round trip through 32 px
    ref = face.reference["tiny-a"]
    assert ref.labels == out.labels and not hasattr(ref, "cam")
    assert face.delta_p_female["tiny-a"] == pytest.approx(
        face.filtered.classifiers["tiny-a"].p_female - ref.p_female)
    assert {"detect", "classify", "filter", "classify_filtered", "skin", "total"} <= set(r.timings_ms)
    assert r.providers == {"tiny-a": "CPU", "tiny-b": "CPU", "darken": "CPU"}


def test_the_filters_resampling_alone_moves_no_prediction(tmp_path):
    """An identity filter at 64 px on 112 px crops: what comes out is the crop's round trip through 64 px, which
    moves a real classifier's P(female) on its own. ΔP and flips are measured against that round trip, as skin
    is, so they read zero: the filter did nothing. Against the sharp crop they read as a shift."""
    identity = load_model(make_filter(tmp_path / "identity64.onnx", size=64, gain=1.0, name="identity64"))
    clf = load_model(DEFAULT_CLASSIFIER)
    pipe = FramePipeline([clf], identity, None, PipelineConfig(track=False))
    moved = 0
    for path, r, error in pipe.process_images(utk_images(40)):
        assert error is None, path
        face = r.faces[0]
        original, ref = face.original.classifiers[clf.name], face.reference[clf.name]
        filtered = face.filtered.classifiers[clf.name]
        assert face.delta_p_female[clf.name] == pytest.approx(0, abs=1e-6)
        assert filtered.predicted == ref.predicted
        assert face.skin_shift.delta_ita in (None, pytest.approx(0, abs=1e-9))
        moved += abs(ref.p_female - original.p_female) > 0.005
    assert moved >= 10, "the round trip through 64 px should move some predictions by itself"
    # at the filter's own size the round trip is the crop itself: no second pass, the original is the reference
    same = FramePipeline([clf], load_model(make_filter(tmp_path / "id112.onnx", size=112, gain=1.0)), None,
                         PipelineConfig(track=False))
    face = next(same.process_images(utk_images(1)))[1].faces[0]
    assert face.reference[clf.name] is face.original.classifiers[clf.name]


def test_cam_stays_raw(pipeline):
    r = pipeline.process(_scene(1))
    cam = r.faces[0].original.classifiers["tiny-a"].cam
    assert cam.dtype == np.float32 and not (cam.min() == 0 and cam.max() == 1)


def test_without_filter(tiny_models):
    p = FramePipeline([load_model(tiny_models["classifier"])], None, HaarDetector())
    face = p.process(_scene(1)).faces[0]
    assert face.filtered is None and face.skin_shift is None and face.delta_p_female == {}
    p2 = FramePipeline([load_model(tiny_models["classifier"])], load_model(tiny_models["darken"]), HaarDetector(),
                       PipelineConfig(apply_filter=False))
    assert p2.process(_scene(1)).faces[0].filtered is None


@pytest.mark.parametrize("kind", ["black", "grey", "tiny", "huge", "gray2d", "bgra", "uint16", "noface", "many"])
def test_bad_and_odd_frames_never_crash(pipeline, kind):
    frames = {
        "black": np.zeros((480, 640, 3), np.uint8),
        "grey": np.full((480, 640, 3), 128, np.uint8),
        "tiny": np.zeros((1, 1, 3), np.uint8),
        # a 4K frame with a face in its centre (stretching a 4:3 scene to 16:9 squashed its face, which one
        # cascade found by chance and neither found once moved off the corner)
        "huge": _centred_face((2160, 3840), 900),
        "gray2d": cv2.cvtColor(_scene(1), cv2.COLOR_BGR2GRAY),
        "bgra": cv2.cvtColor(_scene(1), cv2.COLOR_BGR2BGRA),
        "uint16": _scene(1).astype(np.uint16) * 257,
        "noface": np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8),
        "many": _scene(20, size=(1000, 1250), face_px=240),
    }
    r = pipeline.process(frames[kind])
    assert r.frame.dtype == np.uint8 and r.frame.ndim == 3 and r.frame.shape[2] == 3
    if kind in ("black", "grey", "tiny", "noface"):
        assert r.faces == ()
    if kind in ("huge", "gray2d", "bgra", "uint16"):
        assert len(r.faces) == 1
    if kind == "many":
        assert 15 <= len(r.faces) <= 20
        assert len({f.track_id for f in r.faces}) == len(r.faces)
    for f in r.faces:  # grey input is still measured, never invented
        assert f.original.skin.measurable in (True, False)


def test_unusable_frames_give_clear_errors():
    with pytest.raises(BiasMirrorError, match="empty"):
        as_bgr_uint8(np.zeros((0, 0, 3), np.uint8))
    with pytest.raises(BiasMirrorError, match="not images"):
        as_bgr_uint8(np.zeros((4, 4, 7), np.uint8))


def test_dark_frame_is_not_measurable(tiny_models):
    p = FramePipeline([load_model(tiny_models["classifier"])], None, HaarDetector())
    frame = (_scene(1).astype(np.float32) * 0.03).astype(np.uint8)  # nearly black: Haar may still fire or not
    for f in p.process(frame).faces:
        if not f.original.skin.measurable:
            assert np.isnan(f.original.skin.ita) and f.original.skin.mst == 0


def test_tracker_keeps_ids():
    t = IoUTracker()
    a = t.update([Detection((100, 100, 80, 80)), Detection((400, 100, 80, 80))])
    b = t.update([Detection((405, 102, 80, 80)), Detection((104, 98, 80, 80))])
    assert [i for i, _ in a] == [1, 2] and [i for i, _ in b] == [2, 1]
    for _ in range(3):
        t.update([])
    c = t.update([Detection((106, 99, 80, 80))])
    assert c[0][0] == 1
    d = t.update([Detection((500, 350, 60, 60))])
    assert d[0][0] == 3


def test_a_moving_face_is_boxed_where_it_is_found_not_where_it_was():
    """The tracker gave back the box averaged with the last frame's, and the pipeline cut, measured and pasted the
    face there: a face moving 30 px a frame was cropped 15 px behind, which moved its ITA by 11° and P(female) by
    0.05. The id still follows it."""
    t = IoUTracker()
    boxes = [(100.0 + 30 * i, 80.0, 145.0, 145.0) for i in range(5)]
    out = [t.update([Detection(b)])[0] for b in boxes]
    assert [box for _, box in out] == boxes
    assert {tid for tid, _ in out} == {1}


def _greedy_by_pairs(tracks, boxes, threshold):
    """The matching as first written: every (IoU, track, detection) pair in Python, sorted from the highest."""
    def one(a, b):
        ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
        iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
        union = a[2] * a[3] + b[2] * b[3] - ix * iy
        return ix * iy / union if union > 0 else 0.0

    pairs = sorted(((one(t, d), ti, di) for ti, t in enumerate(tracks) for di, d in enumerate(boxes)), reverse=True)
    assigned, used = {}, set()
    for score, ti, di in pairs:
        if score < threshold:
            break
        if ti not in used and di not in assigned:
            assigned[di] = ti
            used.add(ti)
    return assigned


def test_tracker_matches_as_the_pairwise_greedy_did_with_ties_and_empty_boxes():
    rng = np.random.default_rng(3)
    for trial in range(200):
        tracks = rng.integers(0, 60, (int(rng.integers(0, 7)), 4)).astype(float)
        tracks[:, 2:] = rng.integers(0, 30, (len(tracks), 2))  # some boxes have no area
        # detections near the tracks, some exactly on them (equal IoUs), some anywhere
        boxes = [tuple(tracks[i % len(tracks)] + (rng.integers(-3, 4, 4) if trial % 3 else 0))
                 if len(tracks) and k % 2 == 0 else tuple(rng.integers(0, 60, 4).astype(float))
                 for k, i in enumerate(rng.integers(0, 7, int(rng.integers(0, 7))))]
        t = IoUTracker()
        t.tracks = [Track(i + 1, box.copy()) for i, box in enumerate(tracks)]
        t._next_id = len(tracks) + 1
        expected = _greedy_by_pairs([tuple(b) for b in tracks], boxes, t.iou_threshold)
        ids = [i for i, _ in t.update([Detection(b) for b in boxes])]
        for di, track_id in enumerate(ids):
            if di in expected:
                assert track_id == expected[di] + 1, (trial, di)
            else:
                assert track_id > len(tracks), (trial, di)  # a new track
    assert iou_matrix(np.zeros((0, 4)), np.ones((3, 4))).shape == (0, 3)
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 10, 10]])[0, 0] == pytest.approx(50 / 150)


def test_crop_and_paste_back_round_trip():
    frame = _scene(1)
    rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    box = HaarDetector().detect(frame)[0].box
    crop, to_frame = crop_square(rgb, box, 256)  # upsampled: the round trip tests geometry, not resampling loss
    back = paste_back(rgb, crop, to_frame)
    x, y, w, h = box
    inner = (slice(y + h // 4, y + 3 * h // 4), slice(x + w // 4, x + 3 * w // 4))
    assert np.abs(back[inner].astype(int) - rgb[inner].astype(int)).mean() < 4
    dark = paste_back(rgb, (crop * 0.5).astype(np.uint8), to_frame)
    assert dark[inner].mean() < 0.6 * rgb[inner].mean()
    assert np.array_equal(dark[:5, :5], rgb[:5, :5])  # outside the face is untouched


def test_a_face_larger_than_the_crop_is_area_averaged_not_point_sampled():
    """warpAffine takes INTER_AREA for INTER_LINEAR: a face of a full-resolution photo was point-sampled, and fine
    detail (hair, grain) aliased into the crop the classifiers and the skin measurement see."""
    from inference.faces import CROP_SCALE, CROP_SHIFT_Y

    rng = np.random.default_rng(0)
    frame = np.zeros((1600, 1600, 3), np.uint8)
    frame[::2, ::2] = frame[1::2, 1::2] = 255  # a one-pixel checkerboard: grey 127.5 to any anti-aliased eye
    frame[300:1300, 300:1300] = rng.integers(0, 256, (1000, 1000, 3), dtype=np.uint8)
    side = 784.0  # the crop's square, from frame pixel 400 on, 7 frame pixels a crop pixel
    w = h = side / CROP_SCALE
    box = (792 - w / 2, 792 - h / 2 - CROP_SHIFT_Y * h, w, h)
    crop, to_frame = crop_square(frame, box, 112)
    # crop pixel 0 is the mean of frame pixels 400…406, centred on 403 (pixel centres aligned, as cv2.resize aligns
    # them: it had been centred on 400, half a crop pixel up-left of the square's resize)
    assert np.allclose(to_frame @ [0, 0, 1], [403, 403], atol=1e-6)
    ideal = cv2.resize(frame[400:1184, 400:1184], (112, 112), interpolation=cv2.INTER_AREA)
    assert np.abs(crop.astype(int) - ideal).max() <= 1  # point-sampled: 63 on average
    checker, _ = crop_square(frame, (0, 0, 300, 300), 32)
    assert np.abs(checker.astype(float) - 127.5).max() < 12  # point-sampled: 0s and 255s


def test_cam_focus_on_synthetic_maps():
    region = face_region_mask(64)
    inside = np.where(region, 1.0, 0.0)
    assert cam_focus(inside, region) == pytest.approx(1.0)
    assert cam_focus(1.0 - inside, region) == pytest.approx(0.0)
    half = inside / region.sum() + (1 - inside) / (~region).sum()
    assert cam_focus(half, region) == pytest.approx(0.5)
    assert cam_focus(-np.ones((64, 64)), region) is None


def test_the_focus_is_of_the_predicted_classs_map_which_a_face_carries_where_it_is_not_the_drawn_one():
    """Focus is measured on the CAM of the class the model chose, but only the --cam-class map was kept: the
    report's focus grid drew the female map of faces called male under their male map's figure."""
    model = load_model(DEFAULT_CLASSIFIER)
    p = FramePipeline([model], None, None, PipelineConfig(cam_class="female"))
    paths = [str(x) for x in utk_images(24)]
    outs = [r.faces[0].original.classifiers[model.name] for _, r, _ in p.process_images(paths, batch=8)]
    region = face_region_mask(outs[0].cam.shape[0])
    assert {o.predicted for o in outs} == {"female", "male"}
    for o in outs:
        label, cam = o.focus_map
        assert label == o.predicted and o.cam_focus == pytest.approx(cam_focus(cam, region))
        if o.predicted == "female":
            assert o.focus_cam is None and cam is o.cam
        else:  # the male map: the female one's focus is another figure
            assert o.focus_cam is not None and cam_focus(o.cam, region) != pytest.approx(o.cam_focus, abs=1e-3)


def test_process_images_batches_aligned_faces_and_reports_unreadable(tmp_path, tiny_models):
    paths = [str(p) for p in utk_images(5)]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"nope")
    p = FramePipeline([load_model(tiny_models["classifier"])], load_model(tiny_models["identity"]), None)
    out = list(p.process_images([*paths[:3], str(bad), *paths[3:]], batch=4))
    assert [e for _, _, e in out] == [None, None, None, "cannot be read as an image", None, None]
    r = out[0][1]
    assert len(r.faces) == 1 and abs(r.faces[0].skin_shift.delta_ita) < 0.5  # identity filter: no shift


def test_process_images_with_a_detector_finds_ahead_what_each_image_alone_gives(tmp_path, tiny_models, monkeypatch):
    from inference import pipeline as pipeline_module

    paths = []
    for k in range(4):
        paths.append(str(tmp_path / f"{k}.png"))
        cv2.imwrite(paths[-1], _scene(k % 3 + 1))
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"nope")
    paths.insert(2, str(bad))
    cls, filt = [load_model(tiny_models["classifier"])], load_model(tiny_models["darken"])
    depths = []
    real = pipeline_module.detecting_ahead
    monkeypatch.setattr(pipeline_module, "detecting_ahead", lambda *a, **k: depths.append(1) or real(*a, **k))
    out = list(FramePipeline(cls, filt, HaarDetector()).process_images(paths))
    assert depths == [1]  # the faces were found ahead
    assert [(p, e) for p, _, e in out] == [(p, None if p != str(bad) else "cannot be read as an image") for p in paths]
    alone = FramePipeline(cls, filt, HaarDetector())
    for path, result, _ in out:
        if path == str(bad):
            continue
        alone.tracker.reset()
        want = alone.process(cv2.imread(path, cv2.IMREAD_UNCHANGED), timestamp=0.0, source=path)
        assert [f.box for f in result.faces] == [f.box for f in want.faces] and len(want.faces) >= 1
        assert [f.skin_shift.delta_ita for f in result.faces] == pytest.approx([f.skin_shift.delta_ita for f in want.faces])
        assert result.source == path and result.timings_ms["detect"] > 0


def test_run_writes_rows(tmp_path, tiny_models):
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(6):
        cv2.imwrite(str(src / f"{i}.png"), _scene(i % 2 + 1))
    (src / "6.png").write_bytes(b"corrupt")
    tables = {}
    for depth in ("1", "3"):  # faces found three frames ahead: the same rows
        out = tmp_path / f"rows{depth}.csv"
        code = main.main(["run", "--source", str(src), "--out", str(out), "--classifier", str(tiny_models["classifier"]),
                          "--filter", str(tiny_models["darken"]), "--detect-depth", depth])
        assert code == 0
        tables[depth] = rows = list(csv.DictReader(open(out)))
        assert len(rows) == 9
        assert {"track_id", "ita", "ita_filtered", "delta_ita", "p_female[tiny-a]", "delta_p_female[tiny-a]"} <= set(rows[0])
        assert float(rows[0]["delta_ita"]) < 0
    drop = {"time", "latency_ms"}
    assert [{k: v for k, v in r.items() if k not in drop} for r in tables["1"]] == \
        [{k: v for k, v in r.items() if k not in drop} for r in tables["3"]]


def test_rows_that_bring_new_columns_continue_in_a_new_part_and_lose_nothing(tmp_path, tiny_models):
    # The app's recorder: started with the filter off and one classifier; then the filter goes on and a second
    # classifier is added. The header of the first file cannot hold the new columns: they used to be dropped. (The
    # filter's columns are in every row, empty without it: the second classifier's are the new ones.)
    from inference.rows import RowWriter

    one = [load_model(tiny_models["classifier"])]
    two = [*one, load_model(tiny_models["classifier2"])]
    before = FramePipeline(one, None, HaarDetector()).process(_scene(1))
    after = FramePipeline(two, load_model(tiny_models["darken"]), HaarDetector()).process(_scene(1))
    told = []
    writer = RowWriter(tmp_path / "rows-1.csv", on_part=lambda path, added: told.append((path.name, added)))
    writer.write_frame(before, 0.0)
    writer.write_frame(after, 1.0)
    writer.write_frame(before, 2.0)  # columns missing from a row are left empty: no new part
    writer.close()
    assert writer.paths == [tmp_path / "rows-1.csv", tmp_path / "rows-1-part2.csv"] and writer.rows == 3
    first, second = (list(csv.DictReader(open(p))) for p in writer.paths)
    assert len(first) == 1 and "p_female[tiny-b]" not in first[0]
    assert len(second) == 2
    assert second[0]["p_female[tiny-b]"] != "" and second[0]["delta_p_female[tiny-a]"] != ""
    assert second[0]["filter"] == "darken" and second[1]["p_female[tiny-b]"] == "" and second[1]["filter"] == ""
    assert first[0]["delta_p_female[tiny-a]"] == ""
    assert told[0][0] == "rows-1-part2.csv" and {"p_female[tiny-b]", "delta_p_female[tiny-b]"} <= set(told[0][1])
    assert "delta_p_female[tiny-a]" not in told[0][1]


def test_a_full_disk_leaves_the_rows_file_cut_back_to_the_rows_it_says_were_saved(tmp_path, tiny_models):
    """`run` said "61 rows saved" on a full disk, and the file ended in half a 62nd row."""
    import errno

    from inference.rows import RowWriter

    frame = FramePipeline([load_model(tiny_models["classifier"])], None, HaarDetector()).process(_scene(1))
    path = tmp_path / "rows.csv"
    writer = RowWriter(path, flush_every=0.0)
    writer.write_frame(frame, 0.0)
    writer.write_frame(frame, 1.0)
    whole = path.read_bytes()
    real = writer._fh

    class FullDisk:  # the system took part of the next row, then refused the rest
        def __getattr__(self, name):
            return getattr(real, name)

        def flush(self):
            real.flush()
            with open(path, "ab") as fh:
                fh.write(b"3,0.25,half a ro")
            raise OSError(errno.ENOSPC, "No space left on device")

    writer._fh = FullDisk()
    with pytest.raises(BiasMirrorError, match=r"rows.csv: no space left on device; 2 rows saved"):
        writer.write_frame(frame, 2.0)
    assert path.read_bytes() == whole and len(list(csv.DictReader(open(path)))) == 2


def test_classifiers_of_one_card_name_each_keep_their_columns(tmp_path, tiny_models):
    # a retrained copy carries its parent's card name: under one name the second overwrote the first's column
    import shutil

    copy = tmp_path / "copy_of_a.onnx"
    shutil.copy(tiny_models["classifier"], copy)
    cv2.imwrite(str(tmp_path / "face.png"), _scene(1))
    out = tmp_path / "rows.csv"
    code = main.main(["run", "--source", str(tmp_path / "face.png"), "--out", str(out), "--no-filter",
                      "--classifier", str(tiny_models["classifier"]), "--classifier", str(copy)])
    assert code == 0
    row = next(csv.DictReader(open(out)))
    assert row["p_female[tiny-a]"] != "" and row["p_female[tiny-a#2]"] == row["p_female[tiny-a]"]


def test_run_refuses_a_detection_depth_out_of_range_in_one_line(tmp_path, tiny_models, capsys):
    code = main.main(["run", "--source", str(tmp_path), "--out", str(tmp_path / "x.csv"),
                      "--classifier", str(tiny_models["classifier"]), "--no-filter", "--detect-depth", "0"])
    err = capsys.readouterr().err
    assert code == 2 and "--detect-depth" in err and "1 to 16" in err and len(err.strip().splitlines()) == 1


def test_run_reports_missing_source(tmp_path, tiny_models, capsys):
    code = main.main(["run", "--source", str(tmp_path / "nothing.mp4"), "--out", str(tmp_path / "x.csv"),
                      "--classifier", str(tiny_models["classifier"]), "--no-filter"])
    assert code == 2 and "does not exist" in capsys.readouterr().err


@pytest.mark.parametrize("depth", [1, 3])
def test_bench_detecting_ahead_finds_what_the_plain_run_finds(tiny_models, depth):
    from inference.detect_ahead import DetectingAhead

    frames = [_scene(k % 3 + 1) for k in range(7)]
    cls = [load_model(tiny_models["classifier"])]
    plain = FramePipeline(cls, load_model(tiny_models["darken"]), HaarDetector())
    ahead = FramePipeline(cls, load_model(tiny_models["darken"]), HaarDetector())
    runner = DetectingAhead(ahead, frames, depth)
    try:
        for k, i in enumerate([0, 1, 2, 3, 6, 1, 2]):  # in order, then jumps (measure() may cut a warm-up short)
            want = plain.process(frames[i])
            timings, n = runner(frames[i])
            assert n == len(want.faces) and timings["detect"] > 0
            assert len(runner.pending) <= depth and all(j > i for j in runner.pending)
            if k == 1:  # frame 1 in hand: the next `depth` frames are being found
                assert sorted(runner.pending) == list(range(2, 2 + depth))
        assert sorted(runner.pending) == list(range(3, 3 + depth))
        runner(frames[6])
        assert not runner.pending  # nothing is detected past the last frame, nothing jumped over is kept
    finally:
        runner.close()


def test_detecting_ahead_keeps_order_and_finds_the_next_frame_while_this_one_is_used():
    import threading

    from inference.detect_ahead import detecting_ahead
    from inference.sources import Frame

    calls, started = [], {k: threading.Event() for k in range(4)}

    class Recording:
        def detect(self, bgr):
            k = int(bgr[0, 0, 0])
            calls.append(k)
            started[k].set()
            return [Detection((k, k, 10, 10))]

    frames = [Frame(np.full((8, 8, 3), k, np.uint8), k, float(k), f"f{k}") for k in range(3)]
    frames.insert(2, Frame(None, 9, 9.0, "bad", warning="unreadable"))  # passes through, never detected
    seen = []
    for f in detecting_ahead(frames, Recording()):
        if f.index == 0:  # while the caller holds frame 0, frame 1 is being found
            assert started[1].wait(5)
        if f.index == 9:  # and while it holds the unreadable one, frame 2
            assert started[2].wait(5)
        seen.append((f.index, f.detected.detections[0].box[0] if f.detected else None))
    assert seen == [(0, 0), (1, 1), (9, None), (2, 2)]
    assert sorted(calls) == [0, 1, 2]
    assert [f.detected for f in detecting_ahead(frames[:1], None)] == [None]  # no detector: unchanged


def test_detecting_several_ahead_finds_them_at_once_and_keeps_order():
    import threading

    from inference.detect_ahead import detecting_ahead
    from inference.sources import Frame

    n, depth = 8, 3
    started = {k: threading.Event() for k in range(n)}
    release = threading.Event()
    pulled = []

    class Blocking:  # each detection waits until released: the ones in flight must all have started
        def detect(self, bgr):
            k = int(bgr[0, 0, 0])
            started[k].set()
            assert release.wait(5)
            return [Detection((k, k, 10, 10))]

    def source():
        for k in range(n):
            pulled.append(k)
            yield Frame(np.full((8, 8, 3), k, np.uint8), k, float(k), f"f{k}")

    running_at_once = []

    def let_go():
        running_at_once.extend(k for k in range(n) if started[k].is_set())
        release.set()

    it = detecting_ahead(source(), Blocking(), depth)
    threading.Timer(0.5, let_go).start()
    first = next(it)
    assert running_at_once == list(range(depth))  # `depth` detections side by side, the next one queued
    assert pulled == list(range(depth + 1))  # frame 0 handed over with the next `depth` read, and no more
    assert all(started[k].wait(5) for k in range(1, depth + 1))  # found while the caller holds frame 0
    seen = [first, *it]
    assert [f.index for f in seen] == list(range(n))
    assert [f.detected.detections[0].box[0] for f in seen] == list(range(n))
    with pytest.raises(BiasMirrorError, match="1 to 16"):
        next(detecting_ahead(source(), Blocking(), 0))


@pytest.mark.parametrize("chain", ["off", "on"])
def test_skin_measured_on_helper_threads_is_the_same(tiny_models, chain):
    """overlap_skin and skin_threads only move skin measurements to other threads (with the device chain, the
    filtered faces' skin starts from inside it, before its classifier runs): every figure stays, in order."""
    cls = [load_model(tiny_models["classifier"])]
    paths = utk_images(6)
    runs = {}
    for overlap, threads in (("off", 1), ("on", 1), ("off", 3), ("on", 3)):
        pipe = FramePipeline(cls, load_model(tiny_models["darken"]), None,
                             PipelineConfig(overlap_skin=overlap, skin_threads=threads, device_chain=chain))
        runs[overlap, threads] = [r.faces[0] for _, r, _ in pipe.process_images(paths, batch=4)]
        assert (pipe._helper is not None) == (overlap == "on" or threads > 1)
        assert (pipe.device_chain() is not None) == (chain == "on")
    base = runs["off", 1]
    assert all(f.original.skin.measurable for f in base)
    for key, faces in runs.items():
        for a, b in zip(base, faces, strict=True):
            assert a.original.skin == b.original.skin and a.filtered.skin == b.filtered.skin, key
            assert a.skin_shift == b.skin_shift, key
    # auto: overlap only where the filter runs on a GPU, so not here
    assert not FramePipeline(cls, load_model(tiny_models["darken"]))._overlap_skin()


class _SlowSession:
    """An ONNX Runtime session whose every run takes ``delay`` s longer: time the frame must put in the models."""

    def __init__(self, session, delay: float):
        self._session, self.delay = session, delay

    def run(self, *a, **kw):
        import time

        time.sleep(self.delay)
        return self._session.run(*a, **kw)

    def run_with_iobinding(self, binding, run_options=None):  # the device chain's way
        import time

        time.sleep(self.delay)
        return self._session.run_with_iobinding(binding, run_options)

    def __getattr__(self, name):
        return getattr(self._session, name)


@pytest.mark.parametrize("chain", ["off", "on"])
def test_a_frame_is_split_into_finding_faces_the_models_and_the_host_around_them(tiny_models, chain):
    """On a GPU the question is whether a frame waits on the models or on the host: time spent inside ONNX
    Runtime's runs (the device chain's included) is counted as the models', never as the host's."""
    cls = load_model(tiny_models["classifier"])
    flt = load_model(tiny_models["darken"])
    pipe = FramePipeline([cls], flt, HaarDetector(), PipelineConfig(device_chain=chain))
    pipe.process(_scene(2))  # warm
    slow = 0.05
    if chain == "off":
        cls.session = _SlowSession(cls.session, slow)
        runs = 2  # the faces, then the filtered faces
    else:  # the filtered faces' classifier runs inside the chain, through I/O binding: slow the filter's run there
        flt.session = _SlowSession(flt.session, slow)
        runs = 1
    t = pipe.process(_scene(2)).timings_ms
    assert t["onnx_runtime"] >= runs * slow * 1000
    assert t["host"] >= 0 and t["host"] < t["total"] - runs * slow * 1000
    assert t["detect"] + t["onnx_runtime"] + t["host"] == pytest.approx(t["total"])
    assert cls.run_ms > 0 and flt.run_ms > 0  # both counted, whichever path ran them


@pytest.mark.parametrize("chain", ["off", "on"])
def test_with_the_overlap_both_skins_start_before_the_models_they_can_hide_behind(tiny_models, monkeypatch, chain):
    """The "before" skin is started ahead of the classifiers' first pass, the "after" skin as soon as the filter's
    faces are back and before the classifiers' pass on them: model runs release the GIL, so on a GPU machine the
    skin work runs behind them instead of after them."""
    cls = load_model(tiny_models["classifier"])
    events: list[str] = []

    class Logged:
        def __init__(self, session):
            self._session = session

        def run(self, *a, **kw):
            events.append("classifier run")
            return self._session.run(*a, **kw)

        def run_with_iobinding(self, binding, run_options=None):
            events.append("classifier run")
            return self._session.run_with_iobinding(binding, run_options)

        def __getattr__(self, name):
            return getattr(self._session, name)

    cls.session = Logged(cls.session)
    started = FramePipeline._skins_started

    def logged_start(self, faces, mask, helpers, **kw):
        events.append("skin started on a helper" if helpers else "skin measured in line")
        return started(self, faces, mask, helpers, **kw)

    monkeypatch.setattr(FramePipeline, "_skins_started", logged_start)
    pipe = FramePipeline([cls], load_model(tiny_models["darken"]), None,
                         PipelineConfig(overlap_skin="on", device_chain=chain))
    list(pipe.process_images(utk_images(2), batch=2))
    assert events == ["skin started on a helper", "classifier run", "skin started on a helper", "classifier run"]


def test_a_filter_that_is_off_does_not_size_the_crops(tmp_path, tiny_models):
    from dataclasses import replace

    from tests.conftest import make_filter

    big = load_model(make_filter(tmp_path / "big.onnx", size=96, name="big"))
    cls = [load_model(tiny_models["classifier"])]
    pipe = FramePipeline(cls, big, HaarDetector(), PipelineConfig(min_crop=48))
    frame = _centred_face()
    on = pipe.process(frame)
    assert pipe.crop_size == 96 and on.faces[0].original.crop.shape[:2] == (96, 96)
    pipe.config = replace(pipe.config, apply_filter=False)
    off = pipe.process(frame)
    assert pipe.crop_size == 48 and off.faces[0].original.crop.shape[:2] == (48, 48)
    assert off.faces[0].filtered is None and off.faces[0].original.classifiers["tiny-a"].cam.shape == (48, 48)


def test_skin_is_measured_on_crops_shrunk_to_skin_px(tiny_models):
    """Large crops (a 256 px filter's) are measured on a copy shrunk to PipelineConfig.skin_px, before and after
    the filter alike, wherever the measurement runs; crops at or below it are measured as they are."""
    from inference.images import resize_batch
    from inference.skin import measure_skin_tones

    cls = [load_model(tiny_models["classifier"])]
    paths = utk_images(4)
    plain = [r.faces[0] for _, r, _ in FramePipeline(cls).process_images(paths)]
    shrunk = [r.faces[0] for _, r, _ in FramePipeline(cls, config=PipelineConfig(skin_px=64)).process_images(paths)]
    crops = np.stack([f.original.crop for f in plain])
    assert crops.shape[1] == 112
    assert [f.original.skin for f in plain] == measure_skin_tones(crops)
    assert [f.original.skin for f in shrunk] == measure_skin_tones(resize_batch(crops, (64, 64)))
    assert [f.original.skin for f in shrunk] != [f.original.skin for f in plain]  # not a no-op
    runs = {}
    for overlap in ("off", "on"):
        pipe = FramePipeline(cls, load_model(tiny_models["darken"]), None, PipelineConfig(skin_px=64, overlap_skin=overlap))
        runs[overlap] = [r.faces[0] for _, r, _ in pipe.process_images(paths)]
    for a, b in zip(runs["off"], runs["on"], strict=True):
        assert a.original.skin == b.original.skin and a.filtered.skin == b.filtered.skin
        # the filter's input, as the "before" is measured: the crop at the filter's own size (darken's, 32 px), back
        # to the crop's, then shrunk for skin
        crop = a.original.crop[None]
        before = resize_batch(resize_batch(resize_batch(crop, (32, 32)), crop.shape[1:3]), (64, 64))
        assert a.original.skin == measure_skin_tones(before)[0]
        assert a.filtered.skin == measure_skin_tones(resize_batch(a.filtered.crop[None], (64, 64)), clipped_in=before)[0]


def _half_black_filter(path, size: int = 32):
    """A filter that blackens the left half of every face and leaves the rest as it was."""
    import torch

    from inference.card import filter_card
    from training.export import ImageToImageGraph, export

    class HalfBlack(torch.nn.Module):
        def forward(self, x):  # x in [-1, 1], N×3×H×W
            left = torch.arange(x.shape[-1]) < x.shape[-1] // 2
            return torch.where(left, torch.full_like(x, -1.0), x)

    card = filter_card("half-black", size, "A->B", "left half black (test)", {"dataset": "none"}, {})
    export(ImageToImageGraph(HalfBlack()), [torch.zeros(1, size, size, 3, dtype=torch.uint8)], ["image"], ["filtered"],
           path, card)
    return path


@pytest.mark.parametrize("overlap", ["off", "on"])
def test_a_filter_that_blackens_half_the_face_reads_as_darker(tmp_path, tiny_models, overlap):
    """The filtered face's black half counts (the original had no black there): it had been left out as if the
    photo had clipped it, and the face read as unchanged in tone."""
    cls = [load_model(tiny_models["classifier"])]
    crush = load_model(_half_black_filter(tmp_path / "half_black.onnx"))
    pipe = FramePipeline(cls, crush, None, PipelineConfig(overlap_skin=overlap))
    faces = [r.faces[0] for _, r, _ in pipe.process_images(utk_images(4))]
    shifts = [f.skin_shift for f in faces]
    assert all(s is not None and s.delta_l < -10 and s.delta_ita < -10 for s in shifts), shifts


def test_run_rows_give_a_videos_frames_their_position_in_it(tmp_path, tiny_models):
    """The `time` column is the capture clock; for a video the rows also say where in it each frame lies."""
    clip = tmp_path / "clip.avi"
    scene = _scene(1)
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (scene.shape[1], scene.shape[0]))
    for _ in range(4):
        writer.write(scene)
    writer.release()
    whole = bytearray(clip.read_bytes())  # frame 1 zeroed: FFmpeg cannot decode it, and it is skipped
    starts = [i for i in range(len(whole) - 1) if whole[i : i + 2] == b"\xff\xd8"]
    whole[starts[1] : starts[2] - 8] = bytes(starts[2] - 8 - starts[1])
    clip.write_bytes(bytes(whole))
    out = tmp_path / "rows" / "rows.csv"
    assert main.main(["run", "--source", str(clip), "--out", str(out), "--no-filter",
                      "--classifier", str(tiny_models["classifier"])]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["source"] for r in rows] == ["clip.avi#0", "clip.avi#2", "clip.avi#3"]
    # the position in the file, not the count of frames analysed (which the skipped frame put one behind)
    assert [float(r["video_s"]) for r in rows] == pytest.approx([0.0, 0.4, 0.6])
    picture = tmp_path / "face.png"
    cv2.imwrite(str(picture), scene)
    assert main.main(["run", "--source", str(picture), "--out", str(out), "--no-filter",
                      "--classifier", str(tiny_models["classifier"])]) == 0
    assert next(csv.DictReader(open(out)))["video_s"] == ""  # an image has no position in time: its column is empty


def test_faces_beyond_max_faces_are_named_in_the_frames_warnings(tiny_models):
    """24 faces found, 20 analysed, and nothing said of the other 4."""
    from inference.faces import Detected, Detection
    from inference.pipeline import PipelineConfig

    pipe = FramePipeline([load_model(tiny_models["classifier"])], None, HaarDetector(), PipelineConfig(max_faces=3))
    frame = np.full((200, 600, 3), 90, np.uint8)
    found = Detected(tuple(Detection((10 + 110 * i, 40, 60 + 5 * i, 60 + 5 * i)) for i in range(5)), 1.0)
    result = pipe.process(frame, detected=found)
    assert len(result.faces) == 3 and sorted(f.box[2] for f in result.faces) == [70, 75, 80]  # the largest
    assert "5 faces found in this frame; the 3 largest are analysed" in result.warnings
    assert not any("largest" in w for w in pipe.process(frame, detected=Detected(found.detections[:3], 1.0)).warnings)


def test_a_folder_of_photos_gives_each_face_its_own_track_and_a_video_follows_one(tmp_path, tiny_models):
    """Photos of different people in the same place were one track '#1' through the whole folder."""
    folder = tmp_path / "photos"
    folder.mkdir()
    clip = tmp_path / "clip.avi"
    frames = [_centred_face(i=i) for i in range(3)]
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (640, 480))
    for i, frame in enumerate(frames):
        cv2.imwrite(str(folder / f"{i}.png"), frame)
        writer.write(_centred_face(i=0))  # one person, three frames
    writer.release()
    ids = {}
    for name, source in (("photos", folder), ("video", clip)):
        out = tmp_path / f"{name}.csv"
        assert main.main(["run", "--source", str(source), "--out", str(out), "--no-filter",
                          "--classifier", str(tiny_models["classifier"])]) == 0
        ids[name] = [r["track_id"] for r in csv.DictReader(open(out))]
    assert len(ids["photos"]) == 3 and len(set(ids["photos"])) == 3
    assert len(ids["video"]) == 3 and len(set(ids["video"])) == 1
    # the same photo shown again (a one-image --loop in the app, a rerun after a settings change) keeps its id
    pipe = FramePipeline([load_model(tiny_models["classifier"])], None, HaarDetector())
    again = [pipe.process(frames[0], source="0.png", still=True).faces[0].track_id for _ in range(3)]
    other = pipe.process(frames[1], source="1.png", still=True).faces[0].track_id
    assert again == [again[0]] * 3 and other != again[0]
    # ... and so does a photo shown again after others (a looped folder's next pass), not after a reset
    assert pipe.process(frames[0], source="0.png", still=True).faces[0].track_id == again[0]
    assert pipe.process(frames[1], source="1.png", still=True).faces[0].track_id == other
    pipe.tracker.reset()
    assert pipe.process(frames[1], source="1.png", still=True).faces[0].track_id == 1


def test_photos_of_one_name_in_two_subfolders_are_two_photos(tmp_path, tiny_models):
    """A folder per person, each with its photo.png: the bare file name made them one photo, one face id."""
    for i in range(2):
        (tmp_path / "people" / f"p{i}").mkdir(parents=True)
        cv2.imwrite(str(tmp_path / "people" / f"p{i}" / "photo.png"), _centred_face(i=i))
    out = tmp_path / "rows.csv"
    assert main.main(["run", "--source", str(tmp_path / "people"), "--out", str(out), "--no-filter",
                      "--classifier", str(tiny_models["classifier"])]) == 0
    rows = list(csv.DictReader(open(out)))
    assert [r["source"] for r in rows] == ["p0/photo.png", "p1/photo.png"]
    assert len({r["track_id"] for r in rows}) == 2


def test_run_says_when_a_frame_had_more_faces_than_analysed_and_max_faces_takes_more(tmp_path, tiny_models, capsys):
    """The faces beyond the 20 largest went without rows and without a word, and nothing could raise the cap."""
    src = tmp_path / "frames"
    src.mkdir()
    cv2.imwrite(str(src / "two.png"), _scene(2))
    args = ["run", "--source", str(src), "--classifier", str(tiny_models["classifier"]), "--no-filter"]
    assert main.main([*args, "--out", str(tmp_path / "one.csv"), "--max-faces", "1"]) == 0
    out = capsys.readouterr().err  # warnings on stderr: stdout is for --out -
    assert "warning: two.png: 2 faces found in this frame; the 1 largest are analysed" in out
    assert "warning: 1 frame(s) had more faces than are analysed" in out and "--max-faces" in out
    assert len(list(csv.DictReader(open(tmp_path / "one.csv")))) == 1
    assert main.main([*args, "--out", str(tmp_path / "two.csv")]) == 0
    assert "more faces than" not in capsys.readouterr().err
    assert len(list(csv.DictReader(open(tmp_path / "two.csv")))) == 2


def test_run_over_frames_without_faces_leaves_the_header_alone_in_place_of_an_existing_csv(tmp_path, tiny_models,
                                                                                           capsys):
    """It was emptied: a file of 0 bytes, not even a header, and "0 face row(s) written". Then it was left as it was,
    an earlier run's rows that a script read as this run's: now the header alone, as a run of faces starts with."""
    src = tmp_path / "frames"
    src.mkdir()
    cv2.imwrite(str(src / "wall.png"), np.full((240, 320, 3), 90, np.uint8))
    out = tmp_path / "rows.csv"
    out.write_text("precious\n")
    assert main.main(["run", "--source", str(src), "--out", str(out), "--classifier", str(tiny_models["classifier"]),
                      "--no-filter"]) == 0
    assert f"1 frame(s), no face found in any: no rows, so {out} holds the header alone" in capsys.readouterr().err
    assert out.read_text().startswith("frame,time,video_s,source,") and len(out.read_text().splitlines()) == 1


def test_a_frame_processed_again_keeps_its_number(tiny_models):
    """The app re-runs the last frame after a settings change: each re-run took a number, so a snapshot's frame
    numbers skipped."""
    p = FramePipeline([load_model(tiny_models["classifier"])], None, HaarDetector())
    frame = _scene(1)
    assert [p.process(frame).index, p.process(frame, again=True).index, p.process(frame).index] == [0, 0, 1]


def test_run_shows_how_far_through_a_folder_it_is_and_says_what_an_interruption_kept(tmp_path, tiny_models, capsys,
                                                                                     monkeypatch):
    """Its bar had no end for a folder or a video, and Ctrl-C printed only "interrupted"."""
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"{i}.png"), _scene(1))
    out = tmp_path / "rows.csv"
    args = ["run", "--source", str(src), "--out", str(out), "--classifier", str(tiny_models["classifier"]), "--no-filter"]
    assert main.main(args) == 0
    assert "3/3" in capsys.readouterr().err
    real, calls = FramePipeline.process, []

    def stopped_at_the_third(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(FramePipeline, "process", stopped_at_the_third)
    assert main.main(args) == 130
    assert f"interrupted after 2 frame(s): 2 face row(s) saved in {out}, each whole" in capsys.readouterr().err
    assert len(list(csv.DictReader(open(out)))) == 2


def test_run_stopped_by_sigterm_keeps_its_rows_and_says_so_as_after_ctrl_c(tmp_path, tiny_models, capsys, monkeypatch):
    """`timeout`, a batch system's cancel or `docker stop` send SIGTERM, which killed `run` at once: 142 frames
    processed, 114 rows saved, no word. It now stops as Ctrl-C does."""
    import signal

    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        cv2.imwrite(str(src / f"{i}.png"), _scene(1))
    out = tmp_path / "rows.csv"
    real, calls = FramePipeline.process, []

    def terminated_at_the_third(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            handler = signal.getsignal(signal.SIGTERM)
            assert callable(handler), f"SIGTERM's handler is {handler}: the signal kills run with its rows unsaved"
            handler(signal.SIGTERM, None)  # as the signal arriving now would run it
        return real(self, *a, **k)

    monkeypatch.setattr(FramePipeline, "process", terminated_at_the_third)
    args = ["run", "--source", str(src), "--out", str(out), "--classifier", str(tiny_models["classifier"]), "--no-filter"]
    assert main.main(args) == 130  # as after Ctrl-C, and as the trainers return after either
    captured = capsys.readouterr()
    assert f"interrupted after 2 frame(s): 2 face row(s) saved in {out}, each whole" in captured.err
    assert "stopped (SIGTERM)" in captured.err
    assert len(list(csv.DictReader(open(out)))) == 2
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # as it was once the command is over


def test_a_row_leaves_a_numpy_nan_empty_as_it_leaves_a_python_nan():
    """A CAM focus is a NumPy float32: its NaN is no Python float and had been written into the CSV as "nan"."""
    from inference.rows import _num

    assert _num(np.float32("nan"), 3) == "" and _num(float("nan")) == "" and _num(np.float32(np.inf)) == ""
    assert _num(np.float32(0.25), 3) == 0.25


def test_process_images_results_name_their_photo_filter_and_condition(tiny_models):
    """Its FrameResults had been built in order past filter_name: the warnings were its filter_condition, the photo's
    path its warnings, and its source empty."""
    paths = [str(p) for p in utk_images(2)]
    classifier = load_model(tiny_models["classifier"])
    conditional = load_model(tiny_models["conditional"])
    p = FramePipeline([classifier], conditional, None, PipelineConfig(filter_condition=conditional.condition_labels[-1]))
    for path, r, error in p.process_images(paths):
        assert error is None and r.source == path and isinstance(r.warnings, tuple)
        assert r.filter_condition == conditional.condition_labels[-1] and conditional.condition_labels[-1] in r.filter_name
    off = FramePipeline([classifier], conditional, None, PipelineConfig(apply_filter=False))
    (_, r, _), = off.process_images(paths[:1])
    assert r.filter_name is None and r.filter_condition is None and r.faces[0].filtered is None
