"""Results that cross a boundary: what the pipeline hands the app, `run` and the audit.

All are frozen. CAMs stay raw (unnormalised) so that maps are comparable
across faces, frames and models; normalising for display is the painter's job.
Deltas follow one sign convention everywhere: positive ``delta_l`` and
``delta_mst`` mean the filter made the skin *lighter*, positive ``delta_ita``
a higher ITA (lighter, or less yellow where L* > 50: skin.shift_word says which);
positive ``delta_p_female`` means the filter made the face look more female
to that classifier. Both deltas compare the filtered face with the crop sent
through the filter's resampling alone, so they are the filter's own effect.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import numpy as np


@dataclass(frozen=True)
class SkinTone:
    """Skin colour of one face crop over a skin mask.

    ``measurable`` is False when too few skin pixels survive the mask (dark
    frame, occlusion); then every number is NaN / 0 and must not be shown.
    """

    measurable: bool
    n_pixels: int
    L: float = float("nan")  # CIELAB L* (D65), 0..100
    a: float = float("nan")
    b: float = float("nan")
    ita: float = float("nan")  # degrees
    ita_category: str = "not measurable"
    mst: int = 0  # Monk Skin Tone 1 (lightest) .. 10 (darkest); 0 when not measurable


@dataclass(frozen=True)
class SkinShift:
    """Filtered minus original on the same mask, laid where the filter put the face (``skin.aligned_onto``). The
    deltas are ``None`` when either side is not measurable."""

    delta_ita: float | None
    delta_l: float | None
    delta_mst: int | None  # positive = lighter (original MST − filtered MST)
    # how far the filter moved the face (the length of a whole-pixel translation, in pixels of the crops measured),
    # undone before its skin was measured so that the mask covers the same skin; 0 where no move was found
    moved_px: float = 0.0


@dataclass(frozen=True)
class Prediction:
    """A classifier's probabilities for one face."""

    model: str
    labels: tuple[str, ...]
    probs: np.ndarray  # (K,)

    @property
    def p_female(self) -> float:
        return float(self.probs[self.labels.index("female")]) if "female" in self.labels else float("nan")

    @property
    def predicted(self) -> str:
        """The most probable label; "" where the probabilities are not finite (a model trained to NaN), whose
        argmax had named the first label: an audit counted its faces predicted "male"."""
        if not np.all(np.isfinite(self.probs)):
            return ""
        return self.labels[int(np.argmax(self.probs))]


@dataclass(frozen=True)
class ClassifierOutput(Prediction):
    """A prediction with the class-activation map behind it."""

    cam: np.ndarray  # raw CAM of ``cam_class``, upsampled to the face crop (H×W float32)
    # the class of ``cam``: the pipeline's cam_class, or with PipelineConfig.PREDICTED this face's predicted class
    cam_class: str
    cam_focus: float | None = None  # share of the predicted class's positive CAM mass inside the face region
    # the predicted class's CAM, on which cam_focus was measured, where that class is not cam_class (else None: it is
    # ``cam``, as always with PipelineConfig.PREDICTED). A picture captioned with the focus draws this one: the
    # report's focus grid had drawn the female map of faces called male under their male map's figure
    focus_cam: np.ndarray | None = None

    @property
    def focus_map(self) -> tuple[str, np.ndarray]:
        """The class whose CAM ``cam_focus`` was measured on, and that CAM."""
        if self.focus_cam is None:
            return self.cam_class, self.cam
        return self.labels[int(np.argmax(self.probs))], self.focus_cam


@dataclass(frozen=True)
class FaceView:
    """One version of a face (original or filtered): the crop and what was measured on it."""

    crop: np.ndarray  # RGB uint8, square, the pipeline's crop size
    classifiers: Mapping[str, ClassifierOutput]
    skin: SkinTone


@dataclass(frozen=True)
class FaceResult:
    track_id: int
    box: tuple[int, int, int, int]  # x, y, w, h of the detection in frame pixels
    crop_to_frame: np.ndarray  # 2×3 affine mapping crop pixels to frame pixels (for paste-back)
    original: FaceView
    filtered: FaceView | None = None
    skin_shift: SkinShift | None = None
    delta_p_female: Mapping[str, float] = field(default_factory=dict)  # filtered − reference
    score: float = 1.0  # detector confidence where it has one
    # With a filter: each classifier on the crop sent through the filter's resampling alone (down to its size
    # and back), what ΔP(female) and gender flips are measured against, as skin is. The original crop when the
    # filter works at the crop's size.
    reference: Mapping[str, Prediction] = field(default_factory=dict)


@dataclass(frozen=True)
class FrameResult:
    index: int
    timestamp: float  # seconds (time.monotonic at capture)
    frame: np.ndarray  # BGR uint8 H×W×3, as processed
    faces: tuple[FaceResult, ...]
    timings_ms: Mapping[str, float]
    providers: Mapping[str, str]  # model name → provider it actually runs on
    filter_name: str | None = None
    filter_condition: str | None = None  # the condition a conditional filter ran with (its name says it too)
    warnings: tuple[str, ...] = ()
    source: str = ""  # file name or camera, for rows and reports
    video_s: float | None = None  # a video file's frame: its position in it, in seconds
    # the faces the detector found, the ``max_faces`` largest of which are ``faces``; None where nothing was looked
    # for (an aligned face): the audit reports those left out, which it had dropped without a word
    faces_found: int | None = None
