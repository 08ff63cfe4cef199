"""Where the painter puts what it draws over a frame: status lines, labels, and faces in a frame shrunk for display.

Synthetic FrameResults (no model, no detector): the layout is checked on its rectangles and on the pixels drawn.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

from gui.painter import DisplaySettings, compose, for_display, render  # noqa: E402
from inference.faces import crop_square, feather_mask  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402

CROP = 64  # the synthetic faces' crop size
BLOB = 12  # pixels: the detail of the synthetic frames
IN_PLACE = 0.5  # grey levels, mean: what rounding and the crop's own resampling leave of a face pasted in place
# two end-of-source notes of one width (digits are as wide as each other), so of one layout, whose text differs
# from end to end: the note's pixels are where they differ
NOTE, SAME_WIDTH_NOTE = (f"end of take-{'0123456789' * 4}.mp4", f"end of take-{'9876543210' * 4}.mp4")
SINGLE_PANEL_VIEWS = ("original", "filtered", "split")


def _textured_frame(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """A smooth brownish picture (BGR) of blobs about ``BLOB`` pixels across: detail enough that a paste-back a
    quarter of a pixel off shows (a grey level and more), none that resampling alone would blur away."""
    rows, columns = height // BLOB + 1, width // BLOB + 1
    coarse = rng.normal(0, 40, (rows, columns)).astype(np.float32)
    pattern = cv2.resize(coarse, (columns * BLOB, rows * BLOB), interpolation=cv2.INTER_CUBIC)[:height, :width, None]
    return np.clip(np.concatenate([pattern + 110, pattern + 130, pattern + 150], axis=2), 0, 255).astype(np.uint8)


def _face(frame: np.ndarray, track_id: int, box: tuple[int, int, int, int]) -> FaceResult:
    """A face measured as the pipeline would report it, filtered by an identity filter (its crop unchanged)."""
    crop, crop_to_frame = crop_square(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), box, CROP)
    out = ClassifierOutput("tiny-a", ("male", "female"), np.array([0.3, 0.7]), np.ones((CROP, CROP), np.float32),
                           "female", cam_focus=0.5)
    skin = SkinTone(True, 500, 60.0, 12.0, 18.0, 30.0, "intermediate", 4)
    view = FaceView(crop, {"tiny-a": out}, skin)
    return FaceResult(track_id, box, crop_to_frame, view, view, SkinShift(0.4, 0.3, 0), {"tiny-a": 0.01},
                      reference={"tiny-a": out})


def _result(frame: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> FrameResult:
    faces = tuple(_face(frame, i + 1, box) for i, box in enumerate(boxes))
    return FrameResult(0, 0.0, frame, faces, {}, {}, filter_name="identity")


def _pixels(image) -> np.ndarray:
    return np.frombuffer(image.constBits(), np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[
        :, :image.width(), :3].astype(int)


def _region(rect, grow: float = 0.0) -> tuple[slice, slice]:
    """A QRectF's whole pixels (grown by ``grow`` on every side): antialiased edges bleed into the pixel beside."""
    x0, y0 = int(np.floor(rect.left() - grow)), int(np.floor(rect.top() - grow))
    x1, y1 = int(np.ceil(rect.right() + grow)), int(np.ceil(rect.bottom() + grow))
    return slice(max(0, y0), y1), slice(max(0, x0), x1)


def _face_boxes(geometry: dict) -> list:
    """The face boxes as drawn: the parts of those kept clear that lie on the frame (titles lie above it)."""
    image = geometry["image_rect"]
    return [r.intersected(image) for r in geometry["kept_clear"]
            if r.intersects(image) and r.top() >= image.top() - 1]


def _inside(rect) -> tuple[slice, slice]:
    """A face box's pixels less its drawn edge (a 2 px pen at 1 px in): what the face itself shows."""
    return _region(rect.adjusted(3, 3, -3, -3))


def _crowd(rng: np.random.Generator) -> FrameResult:
    """Twenty faces in a 5×4 grid reaching every edge of the frame: too many for every label to fit in a small view."""
    side, gap = 72, 8
    frame = _textured_frame(rng, 5 * side + 4 * gap, 4 * side + 3 * gap)
    return _result(frame, [(c * (side + gap), r * (side + gap), side, side) for r in range(4) for c in range(5)])


def _two_rows(rng: np.random.Generator) -> FrameResult:
    """Six faces in two rows, the lower reaching the frame's foot."""
    frame = _textured_frame(rng, 640, 480)
    return _result(frame, [(60 + 200 * c, 20 + 350 * r, 110, 110) for r in range(2) for c in range(3)])


def _note_pixels(result: FrameResult, settings: DisplaySettings, size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """Where the note is drawn: the pixels two notes of one width make differ (the layout is the same for both)."""
    geometry, other = {}, {}
    noted = _pixels(render(result, settings, *size, note=NOTE, geometry=geometry))
    other_note = _pixels(render(result, settings, *size, note=SAME_WIDTH_NOTE, geometry=other))
    assert other["labels"] == geometry["labels"] and other["image_rect"] == geometry["image_rect"], \
        "the two notes laid the view out differently: this font's digits differ in width"
    return np.abs(noted - other_note).sum(axis=2) > 0, geometry


@pytest.mark.parametrize("view", ["side by side", "original"])
def test_the_note_is_drawn_under_the_frame_over_no_face_or_label(qapp, rng, view):
    """The end-of-source note, drawn at the view's foot and left on the last frame (the one a user studies), covered
    the labels and faces of the frame's bottom row: it has a row of its own under the frame."""
    note, geometry = _note_pixels(_two_rows(rng), DisplaySettings(view=view), (700, 300))
    faces, labels = _face_boxes(geometry), [rect for rect, _ in geometry["labels"]]
    assert note.any() and labels
    for rect in faces + labels:
        assert not note[_region(rect)].any(), f"the note covers {rect}"
    assert not note[:int(np.ceil(geometry["image_rect"].bottom()))].any()  # all of it under the frame
    assert not any(geometry["status"]["note"].intersects(rect) for rect in faces + labels)


def test_the_frame_gives_the_note_its_row_only_while_there_is_one(qapp, rng):
    """A frame that fills the view's height gives up a row to the note; one letterboxed with room under it for the
    note does not move, and without a note no frame moves."""
    faces = _two_rows(rng)
    for size in ((700, 300), (700, 700)):
        plain: dict = {}
        render(faces, DisplaySettings(), *size, geometry=plain)
        note, noted = _note_pixels(faces, DisplaySettings(), size)
        note_top = np.flatnonzero(note.any(axis=1))[0]
        assert noted["image_rect"].bottom() <= note_top
        if plain["image_rect"].bottom() <= note_top:
            assert noted["image_rect"] == plain["image_rect"]
        else:
            assert noted["image_rect"].height() < plain["image_rect"].height()


@pytest.mark.parametrize("view", ["side by side", "original"])
def test_the_count_of_labels_left_out_is_drawn_in_the_titles_row_over_no_face(qapp, rng, view):
    """The line counting the labels left out was drawn at the frame's top-left, darkening the top rows of the faces
    there: it goes in the titles' row, right of a title, kept clear of labels."""
    crowd = _crowd(rng)
    size = (700, 300)
    geometry: dict = {}
    with_labels = _pixels(render(crowd, DisplaySettings(view=view), *size, geometry=geometry))
    without_labels = _pixels(render(crowd, DisplaySettings(view=view, show_labels=False), *size))
    assert geometry["labels_hidden"] > 0  # so the count is drawn
    faces, labels = _face_boxes(geometry), [rect for rect, _ in geometry["labels"]]
    # what the labels and the count change, less the labels: the count alone
    count = np.abs(with_labels - without_labels).sum(axis=2) > 0
    for label in labels:
        count[_region(label, grow=1)] = False
    for face in faces:
        assert not count[_inside(face)].any(), f"the count of labels left out covers the face at {face}"
    assert count.any() and not count[int(np.floor(geometry["image_rect"].top())):].any()  # above the frame
    line = geometry["status"]["not_shown"]
    assert count[_region(line)].any() and not line.intersects(geometry["image_rect"])
    assert not any(line.intersects(rect) for rect in labels)


@pytest.mark.parametrize("view", SINGLE_PANEL_VIEWS)
def test_a_label_goes_beside_its_face_on_one_line_before_it_covers_the_face(qapp, rng, view):
    """In a single-panel view a face's whole label was put over the face itself (a quarter of it) while its
    one-line label fitted beside it: a label may cover its own face only where no label fits beside it."""
    frame = _textured_frame(rng, 640, 480)
    # a strip above the face as high as a few lines of text: room for one line, not for the whole label
    result = _result(frame, [(20, 40, 600, 420)])
    geometry: dict = {}
    with_labels = _pixels(render(result, DisplaySettings(view=view), 800, 600, geometry=geometry))
    without_labels = _pixels(render(result, DisplaySettings(view=view, show_labels=False), 800, 600))
    [(rect, own)] = geometry["labels"]
    changed = np.abs(with_labels - without_labels).sum(axis=2) > 0
    assert not changed[_inside(own)].any(), f"the label at {rect} covers its face at {own}"
    assert not rect.intersects(own)
    # the one-line label: shorter than the whole label this face gets where it has room
    roomy: dict = {}
    render(_result(frame, [(280, 200, 80, 80)]), DisplaySettings(view=view), 800, 600, geometry=roomy)
    [(whole, _)] = roomy["labels"]
    assert rect.height() < whole.height()


def test_a_face_that_fills_the_frame_still_gets_its_label_over_itself(qapp, rng):
    """The last resort stays: with no room beside a face, its label goes over it rather than not at all."""
    frame = _textured_frame(rng, 640, 480)
    result = _result(frame, [(0, 0, 640, 480)])
    for view in SINGLE_PANEL_VIEWS:
        geometry: dict = {}
        render(result, DisplaySettings(view=view), 800, 600, geometry=geometry)
        assert geometry["labels_hidden"] == 0 and len(geometry["labels"]) == 1
        rect, own = geometry["labels"][0]
        assert own.contains(rect)


def _paste_back_error(result: FrameResult, width: int, height: int) -> float:
    """Mean |painted − shown| (grey levels) where the face's unchanged crop is pasted back whole in the filtered
    view of a frame shrunk for display: the crop is the frame's own pixels, so where it lands right it vanishes."""
    settings = DisplaySettings(view="filtered", show_cam=False, show_labels=False)
    shown = for_display(result, settings, width, height)
    assert shown.frame.shape[1] < result.frame.shape[1]  # shrunk for display
    painted, _ = compose(shown, settings)
    face = shown.faces[0]
    whole = cv2.warpAffine(feather_mask(CROP), face.crop_to_frame, painted.shape[1::-1]) > 0.99
    return float(np.abs(painted[whole].astype(int) - shown.frame[whole].astype(int)).mean())


@pytest.mark.parametrize("interpolation", [cv2.INTER_LINEAR, cv2.INTER_AREA])
def test_a_frame_shrunk_for_display_keeps_its_pasted_faces_in_place(rng, interpolation):
    """Shrunk for display by f, a face's crop→frame affine was scaled by f alone while cv2.resize aligns pixel
    centres: the pasted filtered face (and the CAM) sat (1 − f)/2 shown pixels down-right of its face. A frame
    enlarged by a whole factor and shown at its first size gets its own pixels back where they were."""
    k = 4
    small = _textured_frame(rng, 200, 150)
    big = cv2.resize(small, None, fx=k, fy=k, interpolation=interpolation)  # centre-aligned, as crops are
    result = _result(big, [(60 * k, 30 * k, 90 * k, 90 * k)])
    error = _paste_back_error(result, small.shape[1], small.shape[0])
    assert error < IN_PLACE, f"the pasted face is off its place: mean |diff| {error:.2f} grey levels"
