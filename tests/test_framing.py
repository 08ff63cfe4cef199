"""Detector crops must be framed like the aligned crops the classifiers learned from.

Both checks run on real UTKFace test images: the framing constants against
what the Haar detector finds on them, and the default classifier's accuracy
through the app's path (detector → crop) against the aligned path.
"""
from __future__ import annotations

import cv2
import numpy as np

from inference import faces
from inference.datasets import open_dataset, split_of
from inference.models import load_model
from inference.pipeline import FramePipeline, PipelineConfig
from tests.conftest import REPO, require_utk


def _test_adults(n: int):
    read = open_dataset(f"utkface:{require_utk().parent}")
    pool = [s for s in read.samples if split_of(s) == "test" and s.gender and (s.age or 0) >= 18]
    pick = np.random.default_rng(7).choice(len(pool), n, replace=False)
    return [pool[i] for i in sorted(pick)]


def test_crop_framing_matches_the_detector_on_aligned_chips():
    det = faces.HaarDetector()
    side, shift = [], []
    for s in _test_adults(250):
        img = cv2.imread(str(s.path))
        found = det.detect(img)
        if not found:
            continue
        x, y, w, h = max(found, key=lambda d: d.box[2] * d.box[3]).box
        side.append(img.shape[1] / max(w, h))
        shift.append((img.shape[0] / 2 - (y + h / 2)) / h)
    assert len(side) > 220, f"Haar found faces in only {len(side)} of 250 aligned chips"
    assert abs(np.median(side) - faces.CROP_SCALE) < 0.03, (np.median(side), faces.CROP_SCALE)
    assert abs(np.median(shift) - faces.CROP_SHIFT_Y) < 0.02, (np.median(shift), faces.CROP_SHIFT_Y)


def test_detector_framed_faces_are_classified_like_aligned_ones():
    clf = load_model(REPO / "resources/models/resnet10_unbalanced.onnx", "classifier")
    cfg = PipelineConfig(apply_filter=False, track=False)
    samples = _test_adults(300)
    female = {str(s.path): s.gender == "female" for s in samples}

    def scores(pipe: FramePipeline) -> dict[str, float]:
        out = {}
        for path, result, _ in pipe.process_images([s.path for s in samples]):
            if result is not None and result.faces:
                face = max(result.faces, key=lambda f: f.box[2] * f.box[3])
                out[path] = face.original.classifiers[clf.name].p_female
        return out

    aligned = scores(FramePipeline([clf], None, None, cfg))
    framed = scores(FramePipeline([clf], None, faces.HaarDetector(), cfg))
    assert len(framed) > 270
    common = sorted(framed)

    def accuracy(p: dict[str, float]) -> float:
        return float(np.mean([(p[k] > 0.5) == female[k] for k in common]))

    def confident(p: dict[str, float]) -> float:
        return float(np.mean([abs(p[k] - 0.5) > 0.4 for k in common]))

    assert accuracy(framed) >= accuracy(aligned) - 0.02, (accuracy(framed), accuracy(aligned))
    assert confident(framed) >= confident(aligned) - 0.05, (confident(framed), confident(aligned))
