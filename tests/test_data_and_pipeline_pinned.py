"""Dataset reading, training mixes, crop geometry and model cards, pinned where hand-made mutation testing found
mutants no test caught: a UTKFace race code past "Others", malformed names said, the age bands' edges and a band's
bounds, the engineer recipe's adults from 18, a target mix's shares on its report, the whole-image face's box, a
crop centred on a box that is not square, boxes scaled back from the detection frame, faces in reading order, and
the model card's schema version, labels, image channels, axis sizes, kinds and inputs.

Every expected value is worked out by hand in a comment (or comes from the dataset's README), never taken from the
code's own output."""
from __future__ import annotations

import json
import logging
import math

import cv2
import numpy as np
import pytest

from inference.card import ModelCard, classifier_card, filter_card
from inference.datasets import DatasetRead, Sample
from inference.datasets.sample import age_band, band_bounds
from inference.datasets.utkface import parse_name, read_utkface
from inference.errors import BiasMirrorError
from inference.faces import Detection, HaarDetector, crop_square, reading_order
from inference.models import load_model
from inference.pipeline import FramePipeline, PipelineConfig
from training.data import domains
from training.data.compose import compose
from training.data.domains import engineer_domains

from .conftest import utk_images

STAMP = "20170109150557335"


# --- UTKFace names ----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("race", ["5", "9", "10"])
def test_a_utkface_race_code_past_others_is_skipped_with_its_reason_not_a_crash(tmp_path, race):
    """The dataset's README: race 0 White, 1 Black, 2 Asian, 3 Indian, 4 Others; no code 5 or above."""
    assert isinstance(parse_name(f"30_0_4_{STAMP}.jpg.chip.jpg"), Sample)
    assert parse_name(f"30_0_4_{STAMP}.jpg.chip.jpg").race == "Others"  # code 4 is the last: Others
    why = parse_name(f"30_0_{race}_{STAMP}.jpg.chip.jpg")
    assert isinstance(why, str) and "race" in why
    root = tmp_path / "UTKFace"
    root.mkdir()
    (root / f"30_0_4_{STAMP}.jpg.chip.jpg").write_bytes(b"x")  # the reader lists names; it decodes nothing
    bad = f"31_1_{race}_{STAMP}.jpg.chip.jpg"
    (root / bad).write_bytes(b"x")
    read = read_utkface(tmp_path)
    assert [s.race for s in read.samples] == ["Others"]
    assert [name for name, _ in read.skipped] == [bad]


def test_a_utkface_reader_says_which_names_it_skipped(tmp_path, caplog):
    """Malformed names are skipped and said: the README's own example lacks a field."""
    root = tmp_path / "UTKFace"
    root.mkdir()
    good = f"25_1_2_{STAMP}.jpg.chip.jpg"
    no_race = "39_1_20170116174525125.jpg.chip.jpg"  # the README's example of a name without a field
    (root / good).write_bytes(b"x")
    (root / no_race).write_bytes(b"x")
    with caplog.at_level(logging.WARNING):
        read = read_utkface(root)
    assert [s.age for s in read.samples] == [25] and [n for n, _ in read.skipped] == [no_race]
    said = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert any(no_race in m and "1 file(s)" in m for m in said), said


# --- age bands ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("age, band", [
    # the bands 0-17 / 18-29 / 30-44 / 45-59 / 60+, each end included, read off their names
    (0, "0-17"), (17, "0-17"), (18, "18-29"), (29, "18-29"), (30, "30-44"), (44, "30-44"),
    (45, "45-59"), (59, "45-59"), (60, "60+"), (116, "60+"),
])
def test_each_age_falls_in_the_band_its_name_says(age, band):
    assert age_band(age) == band
    assert Sample("x.jpg", age=age).age_band == band


@pytest.mark.parametrize("text, bounds", [
    ("30-39", (30, 39)), ("0-2", (0, 2)), ("more than 70", (70, math.inf)), ("unknown", None),
])
def test_a_bands_bounds_are_its_numbers_and_a_single_number_is_open_above(text, bounds):
    """"more than 70" has no oldest age: (70, inf), not (70, 70)."""
    assert band_bounds(text) == bounds


# --- training mixes -----------------------------------------------------------------------------------------------

def test_a_target_mix_reports_its_shares_normalised_as_it_draws_them():
    """--target female:1,male:2 is a mix of a third women: the report's target is 2/3 and 1/3, not 2 and 1."""
    samples = [Sample(f"m{i}.jpg", gender="male") for i in range(60)] + \
              [Sample(f"f{i}.jpg", gender="female") for i in range(60)]
    idx, comp = compose(samples, ("gender",), "target", {"male": 2.0, "female": 1.0})
    assert comp.target == pytest.approx({"male": 2 / 3, "female": 1 / 3})
    # the largest mix without oversampling: 60 men at 2/3 is 90 faces, 30 of them women
    assert comp.achieved == {"male": 60, "female": 30} and len(idx) == 90
    assert comp.achieved_share == pytest.approx({"male": 2 / 3, "female": 1 / 3})
    assert "0.667" in comp.table() and "2.000" not in comp.table()


def test_the_engineer_recipe_takes_adults_from_18_and_leaves_17_out(monkeypatch):
    """Adults are aged 18 or more: a dataset of 17- and 18-year-olds gives domains of 18-year-olds only."""
    races = ("White", "Black", "Asian", "Indian", "Others")
    samples = [Sample(f"/data/utk/{age}_{g}_{r}_{i:04d}.jpg", gender=gender, race=race, age=age)
               for age in (17, 18) for g, gender in enumerate(("male", "female")) for r, race in enumerate(races)
               for i in range(24)]
    read = DatasetRead("utkface", "/data/utk", samples)
    monkeypatch.setattr(domains, "open_dataset", lambda spec, cache_dir=None: read)
    d = engineer_domains("utkface:/data/utk", seed=0, min_size=1)
    trained = d.a.train + d.b.train
    assert trained and {s.age for s in trained} == {18}
    held_out = d.a.val + d.a.test
    assert held_out and {s.age for s in held_out} == {18}


# --- frames and crops ---------------------------------------------------------------------------------------------

def test_the_whole_image_face_has_the_frames_width_and_height(tiny_models):
    """No detector: the face is the frame, box (0, 0, width, height); a 64-wide, 40-high frame is not 40 × 64."""
    pipe = FramePipeline([load_model(tiny_models["classifier"])], None, None, PipelineConfig(track=False))
    frame = np.random.default_rng(0).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    r = pipe.process(frame)
    assert [f.box for f in r.faces] == [(0, 0, 64, 40)]


@pytest.mark.parametrize("box, left, top", [
    # wide box (x 10.5, y 39.5, w 100, h 50): side 0.97 × max(100, 50) = 97; centre x 10.5 + 50 = 60.5,
    # y 39.5 + 25 + 0.08 × 50 = 68.5; top-left (60.5 − 48.5, 68.5 − 48.5) = (12, 20)
    ((10.5, 39.5, 100.0, 50.0), 12, 20),
    # tall box (x 30.5, y 12.5, w 50, h 100): side 97; centre x 30.5 + 25 = 55.5, y 12.5 + 50 + 8 = 70.5;
    # top-left (7, 22)
    ((30.5, 12.5, 50.0, 100.0), 7, 22),
])
def test_a_crop_is_the_square_of_the_boxs_larger_side_centred_on_it_and_shifted_down(box, left, top):
    """At a crop of the square's own size (97 px) the crop is that square of the frame, pixel for pixel."""
    frame = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    crop, to_frame = crop_square(frame, box, 97)
    want = frame[top: top + 97, left: left + 97]
    assert crop.shape == want.shape
    assert np.abs(crop.astype(int) - want.astype(int)).max() <= 1
    # the kept transform takes crop pixel (0, 0) back to frame pixel (left, top)
    assert to_frame @ np.array([0, 0, 1.0]) == pytest.approx([left, top], abs=1e-6)


def test_boxes_found_in_the_downscaled_padded_frame_are_scaled_back_to_the_frame():
    """A box at (30, 50) 40×40 in a frame scanned at half size with 10 px of padding: (30 − 10) / 0.5 = 40,
    (50 − 10) / 0.5 = 80, 40 / 0.5 = 80."""
    assert HaarDetector.in_frame(np.array([[30, 50, 40, 40]]), 10, 0.5) == [Detection((40, 80, 80, 80))]
    assert HaarDetector.in_frame(np.array([[10, 10, 20, 20]]), 10, 0.25) == [Detection((0, 0, 80, 80))]


def test_a_face_in_a_large_frame_is_found_where_it_is():
    """A UTKFace chip enlarged to 600 px at (900, 300) in a 1920×1080 frame (scanned at 600 px, padded): the box
    found holds the chip's centre, the chip being 0.97× the box with its centre 8 % of the box below the box's
    (``inference.faces``), within a tenth of the chip's side."""
    detector = HaarDetector()
    x0, y0, side = 900, 300, 600
    for path in utk_images(20):
        chip = cv2.resize(cv2.imread(str(path)), (side, side), interpolation=cv2.INTER_LINEAR)
        frame = np.full((1080, 1920, 3), 127, np.uint8)
        frame[y0: y0 + side, x0: x0 + side] = chip
        found = detector.detect(frame)
        if len(found) == 1:
            break
    else:
        pytest.fail("no chip of the first 20 was found alone")
    x, y, w, h = found[0].box
    cx, cy = x + w / 2, y + h / 2 + 0.08 * h
    assert abs(cx - (x0 + side / 2)) < side / 10 and abs(cy - (y0 + side / 2)) < side / 10, found[0].box
    assert abs(w * 0.97 - side) < side / 5, found[0].box


def test_faces_come_top_to_bottom_then_left_to_right():
    a, b, c = Detection((100, 10, 30, 30)), Detection((10, 50, 30, 30)), Detection((50, 10, 30, 30))
    # the two at y 10 first, the left one (x 50) before x 100; then the one at y 50
    assert reading_order([a, b, c]) == [c, a, b]


# --- model cards --------------------------------------------------------------------------------------------------

def _classifier_json(**changes) -> dict:
    card = json.loads(classifier_card("x", 64, ["male", "female"], (4, 4), "m", {"dataset": "d"}, {}).to_json())
    card.update(changes)
    return card


def _refused(card: dict, match: str) -> None:
    with pytest.raises(BiasMirrorError, match=match):
        ModelCard.from_json(json.dumps(card), "f.onnx")


def test_a_card_loads_as_written():
    """The cards the checks below spoil each load unspoilt."""
    ModelCard.from_json(json.dumps(_classifier_json()), "f.onnx")
    ModelCard.from_json(filter_card("f", 32, "A->B", "m", {}, {}).to_json(), "f.onnx")


@pytest.mark.parametrize("version", [True, 1.0, "1"])
def test_a_schema_version_that_only_equals_1_is_refused(version):
    """JSON true equals 1 in Python, as 1.0 does: the schema version is the whole number 1."""
    _refused(_classifier_json(schema_version=version), "schema version")


def test_a_classifier_of_one_label_is_refused():
    card = _classifier_json(labels=["female"])
    card["outputs"][0]["shape"] = ["N", 1]
    card["outputs"][1]["shape"] = ["N", 1, 4, 4]
    _refused(card, "at least two labels")


def test_a_classifier_of_four_channel_faces_is_refused():
    card = _classifier_json()
    card["inputs"][0]["shape"] = ["N", 64, 64, 4]
    _refused(card, r"needs a uint8 N×H×W×3 RGB image input")


def test_an_image_of_no_pixels_is_refused():
    card = _classifier_json()
    card["inputs"][0]["shape"] = ["N", 0, 0, 3]
    _refused(card, "positive whole number")


@pytest.mark.parametrize("kind", ["detector", "Classifier", ""])
def test_a_card_of_another_kind_is_refused(kind):
    """The kinds are classifier, filter and generator (the module's docstring), spelt so."""
    _refused(_classifier_json(kind=kind), "kind")


def test_a_classifier_listing_an_input_it_is_never_fed_is_refused():
    card = _classifier_json()
    card["inputs"].append({"name": "mask", "shape": ["N", 64, 64, 1], "dtype": "uint8", "layout": "NHWC",
                           "color": None, "labels": None})
    _refused(card, "never fed")
