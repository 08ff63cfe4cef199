"""A filter that moves the face (a beautify or reshape warp) is measured where it put the face: the skin mask covers
the same skin before and after, so a move alone reads as no change of skin tone (``skin.aligned_onto``)."""
from __future__ import annotations

import argparse
import csv
import json
import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from inference.audit import cli as audit_cli
from inference.faces import whole_image_crop
from inference.images import read_rgb_checked, resize_batch
from inference.models import load_model
from inference.pipeline import FramePipeline, PipelineConfig
from inference.rows import face_row
from inference.skin import aligned_onto, face_moves, face_skin_mask, measure_pairs, measure_skin_tones
from tests.conftest import REPO, utk_images

SIZE = PipelineConfig().min_crop  # the pipeline's crop for the tiny classifier: a filter of this size resamples nothing
MOVES = [(3, 0), (-3, 0), (-6, 0), (0, 3), (2, -4)]  # (down, right) in crop pixels
LONG_MOVE = (-(SIZE // 10), SIZE // 20)  # a tenth of the side up, a twentieth right: the face off the window's centre


def _exported_filter(path: Path, net, size: int, what: str) -> Path:
    """``net`` (N×3×H×W in, the same out) exported as a filter of ``size`` px."""
    import torch

    from inference.card import filter_card
    from training.export import ImageToImageGraph, export

    card = filter_card("mover", size, "A->B", f"{what} (test)", {"dataset": "none"}, {})
    export(ImageToImageGraph(net), [torch.zeros(1, size, size, 3, dtype=torch.uint8)], ["image"], ["filtered"],
           path, card)
    return path


def _moving_filter(path: Path, move: tuple[int, int], size: int = SIZE) -> Path:
    """A filter that only moves the face, by ``move`` pixels (down, right), as torch.roll does: no colour changes."""
    import torch

    class Move(torch.nn.Module):
        def forward(self, x):  # N×3×H×W
            return torch.roll(x, shifts=move, dims=(2, 3))

    return _exported_filter(path, Move(), size, f"moves the face by {move} px")


def _sub_pixel_filter(path: Path, down: float, size: int) -> Path:
    """A filter that moves the face ``down`` (under 1) of a pixel down: each row blended with the one above it, as
    linear interpolation moves an image (an encoder-decoder's stride often leaves such an offset)."""
    import torch

    class MoveDown(torch.nn.Module):
        def forward(self, x):  # N×3×H×W
            above = torch.cat([x[:, :, :1], x[:, :, :-1]], dim=2)  # the top row repeated
            return (1 - down) * x + down * above

    return _exported_filter(path, MoveDown(), size, f"moves the face {down} px down")


def _crops(n: int, size: int = SIZE) -> np.ndarray:
    """Real adult faces (UTKFace) as the pipeline crops an aligned image."""
    return np.stack([whole_image_crop(read_rgb_checked(str(p))[0], size)[0] for p in utk_images(n)])


@pytest.mark.parametrize("move", [*MOVES, LONG_MOVE])
def test_a_face_only_moved_reads_no_change_of_skin_tone(move):
    """The mask had been laid at the same place on the moved face: 3 px down read about +3° ΔITA, "lighter"."""
    crops = _crops(8)
    pairs = measure_pairs(crops, np.roll(crops, move, axis=(1, 2)))
    assert all(o.measurable and f.measurable for o, f, _ in pairs)
    shifts = [s for _, _, s in pairs]
    assert all(s.delta_ita == 0 and s.delta_l == 0 and s.delta_mst == 0 for s in shifts), shifts
    assert all(s.moved_px == pytest.approx(math.hypot(*move)) for s in shifts), shifts


def test_a_face_moved_back_is_the_original_under_the_mask():
    crops = _crops(4)
    mask = face_skin_mask(crops.shape[1:3])
    for move in MOVES:
        aligned = aligned_onto(crops, np.roll(crops, move, axis=(1, 2)))
        assert all(np.array_equal(a[mask], c[mask]) for a, c in zip(aligned.crops, crops)), move


def test_a_move_that_would_bring_the_crops_edge_into_the_mask_is_not_taken():
    """Undone, a face moved up further than the mask's top lies below the crop's edge would fill the mask's top rows
    with the repeated edge: such a reading is not taken, and the face is measured as it is."""
    crops = _crops(8)
    mask = face_skin_mask(crops.shape[1:3])
    top = int(np.flatnonzero(mask.any(axis=1))[0])  # rows above the mask
    assert list(aligned_onto(crops, np.roll(crops, -(top + 1), axis=1)).moved_px) == [0] * len(crops)
    # a mask reaching nearer the edge, for a move whose peak is strong on every face
    near = np.ones_like(mask)
    near[:top // 4] = False
    free = int(np.flatnonzero(near.any(axis=1))[0])
    assert list(aligned_onto(crops, np.roll(crops, -free, axis=1), near).moved_px) == [free] * len(crops)
    assert list(aligned_onto(crops, np.roll(crops, -(free + 1), axis=1), near).moved_px) == [0] * len(crops)


def test_another_face_is_not_read_as_this_face_moved():
    crops = _crops(8)
    aligned = aligned_onto(crops, np.roll(crops, 1, axis=0))  # each face beside the next one's
    assert list(aligned.moved_px) == [0] * len(crops)


def _mosaic(crops: np.ndarray, block: int) -> np.ndarray:
    """Each crop as blocks of ``block`` px, each the mean of its pixels: a restyle that moves nothing."""
    h, w = crops.shape[1:3]
    return np.stack([cv2.resize(cv2.resize(c, (w // block, h // block), interpolation=cv2.INTER_AREA), (w, h),
                                interpolation=cv2.INTER_NEAREST) for c in crops])


def test_a_filter_that_restyles_without_moving_is_not_read_as_moving_the_face():
    """A mosaic moves no face, yet phase correlation reads it as moved by up to 2 px, and the reading rounded had been
    undone on a third of the faces, moving the mask onto other skin (ΔITA off by up to 7°). A move is undone only
    where that lines the faces up better than no move does, which a mosaic's reading does not."""
    crops = _crops(24)
    assert list(aligned_onto(crops, _mosaic(crops, block=4)).moved_px) == [0] * len(crops)


def test_a_move_under_a_heavy_blur_is_found_where_the_crops_are_read_coarser():
    """A 3 px move under a Gaussian blur of σ 5 px had no peak strong enough at the crop's own resolution, and was not
    undone on any face; read again at half the crop's side, it is found to within a pixel."""
    crops, move = _crops(8), MOVES[0]
    blurred = np.stack([cv2.GaussianBlur(c, (0, 0), 5) for c in np.roll(crops, move, axis=(1, 2))])
    moves = face_moves(crops, blurred, face_skin_mask(crops.shape[1:3]))
    assert np.abs(moves - np.array(move)).max(initial=0) <= 1, moves


@pytest.mark.parametrize("down", [0.25, 0.5])
def test_a_sub_pixel_move_at_the_filters_size_is_undone_by_the_whole_pixels_nearest_it(tmp_path, tiny_models, down):
    """A 64 px filter's faces are scaled up to the crop, whose finer detail is the scaling's: read there, a quarter of a
    pixel down at 64 px (0.44 px on the crop) had been undone by 1 px on nearly every face and half a pixel (0.88 px)
    by 2 px on many, the mask moved further than the face. Read at the filter's own size, each is undone by the whole
    pixels nearest the move on the crop."""
    filter_px = 64
    filt = load_model(_sub_pixel_filter(tmp_path / "sub.onnx", down, filter_px))
    pipe = FramePipeline([load_model(tiny_models["classifier"])], filt)
    faces = [r.faces[0] for _, r, _ in pipe.process_images(utk_images(8))]
    on_the_crop = down * faces[0].original.crop.shape[0] / filter_px
    assert [f.skin_shift.moved_px for f in faces] == [round(on_the_crop)] * len(faces)


def test_a_whole_pixel_move_at_the_filters_size_is_still_found_on_the_crop(tmp_path, tiny_models):
    """Read at the filter's own size, a move the filter makes there is found and undone on the larger crop by the
    whole pixels either side of it."""
    filter_px, move = 64, (2, 0)
    pipe = FramePipeline([load_model(tiny_models["classifier"])],
                         load_model(_moving_filter(tmp_path / "m.onnx", move, filter_px)))
    faces = [r.faces[0] for _, r, _ in pipe.process_images(utk_images(8))]
    on_the_crop = math.hypot(*move) * faces[0].original.crop.shape[0] / filter_px
    assert all(f.skin_shift.moved_px in (math.floor(on_the_crop), math.ceil(on_the_crop)) for f in faces), \
        [f.skin_shift.moved_px for f in faces]


@pytest.mark.parametrize("filter_name", ["darken", "shipped"])
def test_a_filter_that_restyles_faces_in_place_reads_no_move_and_measures_as_before(tiny_models, filter_name):
    """The shipped CycleGAN restyles faces (colour, texture, a hairline) without moving them: no face is moved back,
    and every filtered skin is the one measured with the mask where it always was."""
    path = REPO / "resources" / "models" / "engineer_filter.onnx" if filter_name == "shipped" else tiny_models["darken"]
    pipe = FramePipeline([load_model(tiny_models["classifier"])], load_model(path))
    faces = [r.faces[0] for _, r, _ in pipe.process_images(utk_images(24))]
    assert [f.skin_shift.moved_px for f in faces] == [0] * len(faces)
    filtered = np.stack([f.filtered.crop for f in faces])
    small = resize_batch(np.stack([f.original.crop for f in faces]), pipe.filter.size)
    before = resize_batch(small, filtered.shape[1:3])  # the reference: the crop through the filter's resampling
    assert [f.filtered.skin for f in faces] == measure_skin_tones(filtered, clipped_in=before)


@pytest.mark.parametrize("chain", ["off", "on"])
@pytest.mark.parametrize("overlap", ["off", "on"])
def test_the_pipeline_measures_a_moved_face_where_it_moved_on_every_path(tmp_path, tiny_models, overlap, chain):
    """In line, measured while the models run, and fed from the device chain: the same skin before and after, while
    the filtered face shown is the filter's output as it came."""
    move = MOVES[0]
    pipe = FramePipeline([load_model(tiny_models["classifier"])], load_model(_moving_filter(tmp_path / "m.onnx", move)),
                         config=PipelineConfig(overlap_skin=overlap, device_chain=chain))
    assert (pipe.device_chain() is not None) == (chain == "on")
    faces = [r.faces[0] for _, r, _ in pipe.process_images(utk_images(6), batch=3)]
    assert all(f.original.skin.measurable for f in faces)
    assert all(f.filtered.skin == f.original.skin for f in faces), [f.skin_shift for f in faces]
    assert all(f.skin_shift.delta_ita == 0 and f.skin_shift.moved_px == pytest.approx(math.hypot(*move))
               for f in faces)
    assert all(np.array_equal(f.filtered.crop, np.roll(f.original.crop, move, axis=(0, 1))) for f in faces)


def test_runs_rows_say_how_far_the_filter_moved_each_face(tmp_path, tiny_models):
    move = MOVES[-1]
    classifier = load_model(tiny_models["classifier"])
    moved = FramePipeline([classifier], load_model(_moving_filter(tmp_path / "m.onnx", move)))
    rows = [face_row(r, r.faces[0]) for _, r, _ in moved.process_images(utk_images(3))]
    assert [row["moved_px"] for row in rows] == [round(math.hypot(*move), 2)] * len(rows)
    assert [row["delta_ita"] for row in rows] == [0] * len(rows)
    unfiltered = [face_row(r, r.faces[0]) for _, r, _ in FramePipeline([classifier]).process_images(utk_images(1))]
    assert unfiltered[0]["moved_px"] == ""  # every row has the column: empty without a filter


def _audit(data: Path, out: Path, classifier: Path, filt: Path) -> dict:
    parser = argparse.ArgumentParser()
    audit_cli.add_arguments(parser)
    args = parser.parse_args(["--dataset", f"utkface:{data}", "--classifier", str(classifier), "--filter", str(filt),
                              "--out", str(out), "--no-html", "--no-progress", "--threads", "1"])
    audit_cli.main(args)
    return json.loads((out / "report.json").read_text())


def test_the_audit_counts_the_faces_the_filter_moved_and_says_so(tmp_path, tiny_models):
    data = tmp_path / "UTKFace"
    data.mkdir()
    for p in utk_images(8):
        shutil.copy(p, data / p.name)
    moved = _audit(data, tmp_path / "moved", tiny_models["classifier"], _moving_filter(tmp_path / "m.onnx", MOVES[0]))
    o = moved["filter"]["overall"]
    assert o["n_moved"] == o["share_moved"]["n"] == o["n_faces"] and o["share_moved"]["value"] == 1
    assert o["delta_ita"]["mean"]["value"] == 0
    # said as read: how many faces had a whole-pixel move undone, of every face, measurable or not
    assert any(line.startswith(f"The audit read {o['n_faces']} of the {o['n_faces']} face(s) as moved by the filter")
               and "a whole-pixel move, undone before their skin was measured" in line for line in moved["summary"])
    for by in moved["filter"]["by"].values():
        assert sum(g["n_moved"] for g in by.values()) == o["n_moved"]
    still = _audit(data, tmp_path / "still", tiny_models["classifier"], tiny_models["darken"])
    assert still["filter"]["overall"]["n_moved"] == 0 and still["filter"]["overall"]["share_moved"]["n"] == o["n_faces"]
    assert not any("as moved by the filter" in line for line in still["summary"])
    for out, length in (("moved", math.hypot(*MOVES[0])), ("still", 0.0)):  # faces.csv says each face's move
        with open(tmp_path / out / "faces.csv", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
        assert rows and all(float(r["moved_px"]) == pytest.approx(length) for r in rows), out
