"""Face labels held steady from frame to frame, and a lone face's label in a narrow view (review s26: a teacher's
classroom demo on a 1024×768 projector).

1. Laid out afresh each frame, a face moving ±20 px switched its label between six lines and one 8-12 times in 2.4 s
   (5 of 16 faces of a 4×4 mosaic video): the view keeps each face's form (``painter.LabelForms``, by its track id)
   while it fits, and takes a longer one only once one has had room for several frames.
2. In a view under ~450 px wide (1024×768 at 125 % with the side panels open) the only face's label was hidden, "1/1
   labels hidden" with room under the face, and under ~360 px the count went too: the shortened forms were tried only
   where the titles' row had room to name their classifier.

Synthetic FrameResults (no model, no detector): the reviewer's 4×4 mosaic as test_crowd_labels_short_s25 builds it
(faces of 170 px in a 1280×720 frame, four classifiers), its faces each moved by up to ±20 px a frame in a pattern of
its own, 60 frames (2.4 s at 25 fps).
"""
from __future__ import annotations

import math
from dataclasses import fields, replace

import numpy as np
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QRectF  # noqa: E402
from PySide6.QtGui import QFontMetricsF  # noqa: E402

from gui import painter  # noqa: E402
from gui.painter import BACKDROP_PAD, DisplaySettings, LabelForms, render, view_font  # noqa: E402
from inference.results import FrameResult  # noqa: E402

from .test_crowd_labels_short_s25 import NAMES, _face, _mosaic, _wrong  # noqa: E402

PROJECTOR = (1024, 768)
FRAMES = 60  # 2.4 s at 25 fps


# --- frames -------------------------------------------------------------------------------------------------------
def _numbered(result: FrameResult, k: int) -> FrameResult:
    """``result`` as the ``k``-th frame of a video at 25 fps: a frame of its own, not the last one drawn again."""
    return replace(result, index=k, timestamp=k / 25)


def _jittered(result: FrameResult, k: int) -> FrameResult:
    """Frame ``k`` of ``result``'s faces each moving up to ±20 px each way, each in a pattern of its own."""
    faces = []
    for i, face in enumerate(result.faces):
        dx = round(20 * math.sin(2 * math.pi * (k / 12 + i / 7)))
        dy = round(20 * math.cos(2 * math.pi * (k / 17 + i / 5)))
        x, y, w, h = face.box
        affine = face.crop_to_frame.copy()
        affine[:, 2] += (dx, dy)
        faces.append(replace(face, box=(x + dx, y + dy, w, h), crop_to_frame=affine))
    return _numbered(replace(result, faces=tuple(faces)), k)


def _alone(result: FrameResult, track_id: int) -> FrameResult:
    return replace(result, faces=tuple(f for f in result.faces if f.track_id == track_id))


def _drawn(result: FrameResult, view: str, size: tuple[int, int] = PROJECTOR, steady: LabelForms | None = None
           ) -> dict:
    geometry: dict = {}
    render(result, DisplaySettings(view=view), *size, geometry=geometry, steady=steady)
    return geometry


def _form(geometry: dict, track_id: int) -> str:
    """The form face ``track_id``'s label is drawn in: its text (its figures do not change from frame to frame), or
    "hidden"."""
    return geometry["label_text"].get(track_id, "hidden")


def _switches(forms: list[str], hidden_too: bool = True) -> int:
    """How many times a label changed form; ``hidden_too``: being hidden or shown again counts as a change."""
    if not hidden_too:
        forms = [f for f in forms if f != "hidden"]
    return sum(a != b for a, b in zip(forms, forms[1:]))


def _moving_crowd(view: str, steady: LabelForms | None) -> tuple[dict[int, list[str]], list[list[str]]]:
    """Each face's label form frame by frame as the mosaic's faces move, and what was wrong with each frame's labels."""
    crowd = _mosaic(4, 4, (1280, 720), 170, 16)
    forms: dict[int, list[str]] = {face.track_id: [] for face in crowd.faces}
    wrong = []
    for k in range(FRAMES):
        geometry = _drawn(_jittered(crowd, k), view, steady=steady)
        for tid, seen in forms.items():
            seen.append(_form(geometry, tid))
        wrong.append(_wrong(geometry))
    return forms, wrong


# --- 1. labels held steady ------------------------------------------------------------------------------------------
def test_a_moving_crowds_labels_keep_their_form(qapp):
    """The reviewer's 4×4 mosaic at 1024×768, its faces moving ±20 px: laid out afresh each frame (``steady`` None,
    as before) 12 of 16 labels switched form 5 times or more in 60 frames, up to 35 times, 284 switches in all;
    held by the view's ``LabelForms``, none switches more than 4 times, 8 in all. Every label drawn still keeps to
    the layout's rules (near its face or joined to it, over no other face, number, label or line)."""
    forms, wrong = _moving_crowd("original", LabelForms())
    switches = {tid: _switches(seen) for tid, seen in forms.items()}
    assert max(switches.values()) <= 4 and sum(switches.values()) <= 16, switches
    assert not any(wrong), next(w for w in wrong if w)


def test_side_by_side_a_moving_crowds_shown_labels_keep_their_form(qapp):
    """Side by side at 1024×768 the filtered panel halves the room: laid out afresh, 12 of 16 labels switched form 5
    times or more (up to 30). Held, a label switches form at most 4 times; two labels inside the mosaic are still
    hidden and shown again as their neighbours close in and move off (no form fits them then), as before."""
    forms, wrong = _moving_crowd("side by side", LabelForms())
    switches = {tid: _switches(seen, hidden_too=False) for tid, seen in forms.items()}
    assert max(switches.values()) <= 4 and sum(switches.values()) <= 16, switches
    assert not any(wrong), next(w for w in wrong if w)


def test_without_the_views_forms_each_frame_is_laid_out_afresh(qapp):
    """What the test above measures, in the layout a snapshot still gets: the labels switch form many times."""
    forms, _ = _moving_crowd("original", None)
    assert sum(_switches(seen) for seen in forms.values()) > 100


def _crowded_then_alone(track_id: int = 81) -> tuple[FrameResult, FrameResult]:
    crowd = _mosaic(4, 4, (1280, 720), 170, 16)
    return crowd, _alone(crowd, track_id)


def test_a_label_takes_a_longer_form_only_once_it_has_had_room_for_a_while(qapp):
    """A face inside the crowd has a shortened label; its neighbours gone, its whole label fits: it keeps its form for
    ``UPGRADE_FRAMES`` - 1 frames, and takes its whole label at the ``UPGRADE_FRAMES``-th."""
    crowd, alone = _crowded_then_alone()
    steady = LabelForms()
    crowded = _form(_drawn(_numbered(crowd, 0), "original", steady=steady), 81)
    whole = _form(_drawn(alone, "original"), 81)
    assert crowded != whole and crowded.startswith("#81 ")
    seen = [_form(_drawn(_numbered(alone, k), "original", steady=steady), 81)
            for k in range(1, painter.UPGRADE_FRAMES + 1)]
    assert seen == [crowded] * (painter.UPGRADE_FRAMES - 1) + [whole]


def test_the_same_frame_drawn_again_does_not_count_as_room_for_longer(qapp):
    """A repaint of one frame (a note changed, the window uncovered) is not a frame of room: a paused video's labels
    keep their form however often the view is drawn."""
    crowd, alone = _crowded_then_alone()
    steady = LabelForms()
    crowded = _form(_drawn(_numbered(crowd, 0), "original", steady=steady), 81)
    paused = _numbered(alone, 1)
    again = [_form(_drawn(paused, "original", steady=steady), 81) for _ in range(3 * painter.UPGRADE_FRAMES)]
    assert set(again) == {crowded}


def test_a_view_of_another_size_or_mode_lays_its_labels_out_afresh(qapp):
    """The forms were chosen for other room: a resized view, or another view mode, draws each label in the form that
    fits it at once."""
    crowd, alone = _crowded_then_alone()
    for size, view in (((1100, 768), "original"), (PROJECTOR, "filtered")):
        steady = LabelForms()
        _drawn(_numbered(crowd, 0), "original", steady=steady)
        now = _drawn(_numbered(alone, 1), view, size, steady=steady)
        assert _form(now, 81) == _form(_drawn(alone, view, size), 81)


def test_a_label_that_no_longer_fits_takes_the_form_that_does_at_once(qapp):
    """Held forms never break the layout: a face alone has its whole label; the crowd comes back and its label
    shortens in the first crowded frame, as a layout afresh has it."""
    crowd, alone = _crowded_then_alone()
    steady = LabelForms()
    assert _form(_drawn(_numbered(alone, 0), "original", steady=steady), 81).startswith("face #81")
    geometry = _drawn(_numbered(crowd, 1), "original", steady=steady)
    assert _form(geometry, 81) == _form(_drawn(crowd, "original"), 81)
    assert not _wrong(geometry)


def test_the_forms_are_the_views_own_and_a_snapshot_leaves_them_alone(qtbot):
    """The view keeps the forms (not its DisplaySettings, which a snapshot copies to draw on another thread); a
    snapshot, drawn with no forms, changes none of the view's and draws each label in the form that fits best."""
    from gui.frame_view import FrameView

    assert not any(f.type in (LabelForms, "LabelForms") or f.name == "label_forms" for f in fields(DisplaySettings))
    settings = DisplaySettings(view="original")
    view = FrameView(settings)
    qtbot.addWidget(view)
    view.resize(*PROJECTOR)
    crowd, alone = _crowded_then_alone()
    for k, result in enumerate((crowd, alone)):
        view.set_result(_numbered(result, k))
        view.grab()  # a paint
    held = dict(view.label_forms._drawn)
    crowded = _form(_drawn(crowd, "original"), 81)
    assert view._geometry["label_text"][81] == crowded  # held through the paints: the view draws with its forms
    snapshot = replace(settings, face_styles=settings.face_styles.copy())  # as recording_controls does
    geometry: dict = {}
    render(_numbered(alone, 2), snapshot, *PROJECTOR, geometry=geometry)
    assert view.label_forms._drawn == held
    assert geometry["label_text"][81].startswith("face #81")



def test_another_source_lays_its_faces_labels_out_afresh(qtbot):
    """A new source's ids start at 1 again: its face 81 had taken the old face 81's held form (second look: a crowd
    on the camera, then one photo, whose one frame never counts towards a longer form, and its label stayed short
    until the window was resized). The window shows no result between sources (``set_result(None)``)."""
    from gui.frame_view import FrameView

    view = FrameView(DisplaySettings(view="original"))
    qtbot.addWidget(view)
    view.resize(*PROJECTOR)
    crowd, alone = _crowded_then_alone()
    view.set_result(_numbered(crowd, 0))
    view.grab()
    assert view._geometry["label_text"][81] != _form(_drawn(alone, "original"), 81)  # held short in the crowd
    view.set_result(None)  # the source switch
    view.set_result(replace(_numbered(alone, 1), index=0, timestamp=0.0))
    view.grab()
    assert view._geometry["label_text"][81] == _form(_drawn(alone, "original"), 81)

# --- 2. a lone face's label in a narrow view ------------------------------------------------------------------------
def _one_face() -> FrameResult:
    """A camera frame, 640×480, with one face in its middle (a student before the webcam)."""
    frame = np.full((480, 640, 3), 128, np.uint8)
    return FrameResult(0, 0.0, frame, (_face(7, (260, 150, 120, 120), 0),), {}, {}, filter_name="identity")


@pytest.mark.parametrize("width", [300, 360, 424, 450])
@pytest.mark.parametrize("view", ["side by side", "original"])
def test_a_lone_faces_label_is_drawn_in_a_narrow_view_and_the_count_says_so(qapp, view, width):
    """Before: side by side, 1/1 labels hidden at 360-400 px, and nothing at all at 300-360 (no label, no count);
    in one view, hidden under ~424 px. Now the label is drawn in a shortened form starting with its number, and the
    count line says it is shortened, whole, in a row of its own over no face, label or title."""
    height = 400
    geometry = _drawn(_one_face(), view, (width, height))
    assert geometry["labels_hidden"] == 0 and len(geometry["labels"]) == 1, geometry["status_text"]
    text = geometry["label_text"][7]
    assert text.startswith("#7 ") or text.startswith("face #7\n"), text
    assert "ΔP(f)" in text or NAMES[0] in text, text
    if NAMES[0] in text or text.startswith("face #"):
        assert "not_shown" not in geometry["status_text"]  # nothing shortened, nothing to count
        return
    count, line = geometry["status_text"]["not_shown"], geometry["status"]["not_shown"]
    assert "1 shortened" in count or "1 of 1 labels shortened" in count or "1/1 shortened" in count, count
    fm = QFontMetricsF(view_font())
    assert fm.horizontalAdvance(count) + 2 * BACKDROP_PAD <= geometry["status_room"]["not_shown"].width() + 0.5
    assert QRectF(0, 0, width, height).contains(line)
    [(label, _)] = geometry["labels"]
    boxes = geometry["faces"][7][1]
    assert not line.intersects(label) and not any(line.intersects(b) for b in boxes)
    assert not any(line.intersects(r) for r in geometry["kept_clear"] if r != geometry["status_room"]["not_shown"])


@pytest.mark.parametrize("width", [320, 360])
def test_the_count_of_a_crowds_hidden_labels_stays_in_a_narrow_view(qapp, width):
    """Side by side in a narrow view the titles' row leaves ~100 px right of a title: the count had gone with the
    labels it counts; it is drawn, shorter or in the row under the frame."""
    crowd = _mosaic(4, 4, (1280, 720), 170, 16)
    geometry = _drawn(crowd, "side by side", (width, 400))
    assert geometry["labels_hidden"] > 0
    count = geometry["status_text"]["not_shown"]
    assert f"{geometry['labels_hidden']}/16" in count or f"{geometry['labels_hidden']} of 16" in count, count
    line = geometry["status"]["not_shown"]
    assert not any(line.intersects(rect) for rect, _ in geometry["labels"])
    assert not any(line.intersects(b) for _, boxes in geometry["faces"].values() for b in boxes)
