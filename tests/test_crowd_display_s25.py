"""Crowd scenes on screen (review 2026-12, "crowd"): a label must be matched to its face (findings 1 and 3), and a tab
of plots one a classifier must show every classifier's plot (finding 6).

Synthetic FrameResults (no model, no detector), as in test_painter_layout.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import QRectF  # noqa: E402

from gui import painter  # noqa: E402
from gui.painter import DisplaySettings, render  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402

CROP = 64
ADJACENT = 8.0  # px: a label this near its face's box reads as that face's without a line to it
LEAST_REACH = 40.0  # px: how far a label may stand from its face, at least (else one face's side)
NAMES = ("resnet10-utk-unbalanced", "resnet10-utk-gender-balanced", "mobilenetv3s-utk-unbalanced",
         "resnet10-utk-unbalanced#2", "my-own-classifier")


# --- synthetic faces -----------------------------------------------------------------------------------------------
def _face(track_id: int, box: tuple[int, int, int, int], names: tuple[str, ...] = NAMES[:1]) -> FaceResult:
    crop = np.full((CROP, CROP, 3), 120, np.uint8)
    outputs = {n: ClassifierOutput(n, ("male", "female"), np.array([0.3, 0.7]), np.ones((CROP, CROP), np.float32),
                                   "female", cam_focus=0.5) for n in names}
    skin = SkinTone(True, 500, 60.0, 12.0, 18.0, 30.0, "intermediate", 4)
    view = FaceView(crop, outputs, skin)
    affine = np.array([[box[2] / CROP, 0, box[0]], [0, box[3] / CROP, box[1]]], np.float64)
    return FaceResult(track_id, box, affine, view, view, SkinShift(-5.4, -2.0, 0), {n: -0.01 for n in names},
                      reference=dict(outputs))


def _grid(columns: int, faces: int, frame: tuple[int, int], side: int, step: int) -> FrameResult:
    """``faces`` faces in rows of ``columns``, their ids row by row (consecutive ids side by side)."""
    w, h = frame
    x0, y0 = (w - (columns - 1) * step - side) // 2, 10  # the rows from the top: the frame's foot is left empty
    boxes = [(x0 + (i % columns) * step, y0 + (i // columns) * step, side, side) for i in range(faces)]
    image = np.full((h, w, 3), 110, np.uint8)
    return FrameResult(0, 0.0, image, tuple(_face(40 + i, box) for i, box in enumerate(boxes)), {}, {},
                       filter_name="identity")


CROWDS = {"6 columns, 1920×1080": lambda: _grid(6, 20, (1920, 1080), 150, 175),
          "4 columns, 1280×720": lambda: _grid(4, 16, (1280, 720), 130, 170)}


# --- geometry of what render drew -----------------------------------------------------------------------------------
def _gap(a: QRectF, b: QRectF) -> float:
    """How far apart two rectangles are (0 where they touch or overlap)."""
    dx = max(b.left() - a.right(), 0.0, a.left() - b.right())
    dy = max(b.top() - a.bottom(), 0.0, a.top() - b.bottom())
    return math.hypot(dx, dy)


def _drawn_faces(result: FrameResult, geometry: dict, view: str) -> dict[int, tuple[str, list[QRectF]]]:
    """Each face's colour and its boxes as drawn, one a panel. Where the painter does not say (as before the fix),
    from its per-id colour and the frame's scale, as the reviewer measured them."""
    if "faces" in geometry:
        return {tid: (colour.name(), boxes) for tid, (colour, boxes) in geometry["faces"].items()}
    image, w = geometry["image_rect"], result.frame.shape[1]
    gap = max(2, w // 100) if view == "side by side" else 0
    panels = (0, w + gap) if view == "side by side" else (0,)
    scale = image.width() / (w * len(panels) + (gap if view == "side by side" else 0))
    return {f.track_id: (painter.track_colour(f.track_id).name(),
                         [QRectF(image.left() + (x0 + f.box[0]) * scale, image.top() + f.box[1] * scale,
                                 f.box[2] * scale, f.box[3] * scale) for x0 in panels]) for f in result.faces}


def _owner(own: QRectF, faces: dict[int, tuple[str, list[QRectF]]]) -> int:
    return next(tid for tid, (_, boxes) in faces.items()
                if abs(boxes[0].left() - own.left()) < 2 and abs(boxes[0].top() - own.top()) < 2)


def _on_edge(point, rect: QRectF, tolerance: float = 1.5) -> bool:
    inside = rect.adjusted(-tolerance, -tolerance, tolerance, tolerance).contains(point)
    return inside and not rect.adjusted(tolerance, tolerance, -tolerance, -tolerance).contains(point)


def _misattributed(result: FrameResult, geometry: dict, view: str) -> list[str]:
    """The reviewer's measure (label_misattr.py) as a list of what is wrong: a label with no line to its face that is
    not next to it, or is as near another box of its colour as to its own; a label far from its face; a line that
    does not join a label to its own face."""
    faces, leaders = _drawn_faces(result, geometry, view), geometry.get("leaders", {})
    wrong = []
    for rect, own in geometry["labels"]:
        tid = _owner(own, faces)
        colour, boxes = faces[tid]
        mine = min(_gap(rect, b) for b in boxes)
        alike = min((_gap(rect, b) for other, (c, bs) in faces.items() if other != tid and c == colour for b in bs),
                    default=math.inf)
        reach = max(LEAST_REACH, max(max(b.width(), b.height()) for b in boxes))
        if mine > reach:
            wrong.append(f"#{tid}'s label is {mine:.0f} px from its face (reach {reach:.0f})")
        line = leaders.get(tid)
        if line is None:
            if mine > ADJACENT:
                wrong.append(f"#{tid}'s label is {mine:.0f} px from its face, with no line to it")
            elif alike <= mine:
                wrong.append(f"#{tid}'s label is as near another {colour} box ({alike:.0f} px) as its own, no line")
        elif not (_on_edge(line.p1(), rect) and any(_on_edge(line.p2(), b) for b in boxes)):
            wrong.append(f"#{tid}'s line {line} does not join its label {rect} to its face")
    return wrong


@pytest.mark.parametrize("size", [(1200, 700), (1500, 620)])
@pytest.mark.parametrize("view", ["side by side", "original"])
@pytest.mark.parametrize("crowd", list(CROWDS))
def test_every_label_in_a_crowd_is_next_to_its_face_or_joined_to_it_by_a_line(qapp, crowd, view, size):
    """The labels of a crowd were put anywhere in the view where no spot beside their face was free (10 of 18 more than
    20 px from their face), with no line to it, and their colour, the only link, came round every 6 ids: 8 of 18
    labels were nearer another box of their colour than their own. A label stays within about a face's side of its
    face (else it is counted as hidden), and one not plainly beside its own face has a line to it."""
    result = CROWDS[crowd]()
    geometry: dict = {}
    render(result, DisplaySettings(view=view), *size, geometry=geometry)
    assert geometry["labels"], "no label drawn at all"
    assert len(geometry["labels"]) + geometry["labels_hidden"] == len(result.faces)
    wrong = _misattributed(result, geometry, view)
    assert not wrong, f"{len(wrong)} of {len(geometry['labels'])} labels:\n" + "\n".join(wrong)


@pytest.mark.parametrize("view", ["side by side", "original", "split"])
def test_every_box_carries_its_faces_number(qapp, view):
    """The boxes carried no id: in a frame with four green boxes none said which was #57's."""
    result = CROWDS["6 columns, 1920×1080"]()
    geometry: dict = {}
    render(result, DisplaySettings(view=view), 1200, 700, geometry=geometry)
    tags = geometry.get("tags", {})
    panels = 2 if view == "side by side" else 1
    for face in result.faces:
        assert len(tags.get(face.track_id, ())) == panels, f"#{face.track_id}: no number on its box"
        _, boxes = geometry["faces"][face.track_id]
        for (text, tag), box in zip(tags[face.track_id], boxes):
            assert text == f"#{face.track_id}"
            assert _gap(tag, box) <= 1, f"#{face.track_id}'s number at {tag} is not on its box {box}"


# --- colours and shapes: one a face on show, the same in the frame and on the plots -----------------------------------
def _leave20() -> list[list[int]]:
    """The reviewer's leave20-like sequence (plot_colours.py): 20 faces; 1, 4, 7, … leave for 15 frames and come back
    as new ids 21…27."""
    ids = list(range(1, 21))
    frames = []
    for k in range(60):
        stay = [i for i in ids if i % 3 != 1]
        frames.append(ids if k < 20 else stay if k < 35 else stay + list(range(21, 28)))
    return frames


def _frame(ids: list[int], t: float, names: tuple[str, ...] = NAMES[:1]) -> FrameResult:
    faces = tuple(_face(tid, (10 + 70 * (i % 10), 10 + 70 * (i // 10), 60, 60), names) for i, tid in enumerate(ids))
    return FrameResult(0, t, np.full((160, 720, 3), 110, np.uint8), faces, {"total": 30.0}, {}, filter_name="identity")


def test_faces_on_show_together_get_distinct_colour_and_shape_pairs_kept_for_their_life():
    from gui.plots import FACE_SYMBOLS

    assert len(FACE_SYMBOLS) == painter.FACE_MARKERS  # a shape for each the allocator hands out
    styles = painter.FaceStyles()
    held: dict[int, painter.FaceStyle] = {}
    before: set[int] = set()
    for k, ids in enumerate(_leave20()):
        styles.see(ids, k / 15)
        now = {tid: styles.style(tid) for tid in ids}
        pairs = [(s.colour.name(), s.marker) for s in now.values()]
        assert len(set(pairs)) == len(pairs), f"frame {k}: two faces on show share a colour and a shape"
        for tid in before & set(ids):
            assert now[tid] == held[tid], f"#{tid} changed its colour or shape while on show"
        held.update(now)
        before = set(ids)
    colours = [s.colour.name() for s in now.values()]
    assert max(map(colours.count, set(colours))) - min(map(colours.count, set(colours))) <= 1  # spread evenly


@pytest.fixture
def plots_panel(qtbot):
    from gui.plots import PlotsPanel

    def make(**kwargs):
        panel = PlotsPanel(**kwargs)
        qtbot.addWidget(panel)
        panel.resize(900, 300)
        panel.show()
        qtbot.waitExposed(panel)
        return panel

    return make


def _curve_style(panel, tid: int) -> tuple[str, str]:
    curve = panel._curves[("ita", tid, "o")]
    return pg.mkPen(curve.opts["pen"]).color().name(), curve.face_symbol


def test_the_plots_faces_have_distinct_colour_and_shape_pairs(plots_panel):
    """Faces #2 and #8, and #3 and #9, were drawn in one colour and one shape: both cycled every 6 ids."""
    panel = plots_panel()
    panel.setCurrentWidget(panel.ita_plot)
    for k, ids in enumerate(_leave20()):
        panel.add_result(_frame(ids, k / 15), 0, 1, 1)
    panel.refresh()
    shown = panel._visible_tracks()
    styles = {tid: _curve_style(panel, tid) for tid in shown}
    assert len(set(styles.values())) == len(shown), f"faces on the plots share a colour and a shape: {styles}"


def test_a_faces_box_and_its_plot_curve_are_drawn_in_one_colour(qapp, plots_panel):
    """The frame and the plots take a face's colour from one allocator: the window's display settings'."""
    display = DisplaySettings(view="original")
    panel = plots_panel(face_styles=display.face_styles)
    panel.setCurrentWidget(panel.ita_plot)
    frames = _leave20()
    for k, ids in enumerate(frames):
        panel.add_result(_frame(ids, k / 15), 0, 1, 1)
    panel.refresh()
    geometry: dict = {}
    render(_frame(frames[-1], (len(frames) - 1) / 15), display, 1200, 500, geometry=geometry)
    for tid in panel._visible_tracks():
        colour, _ = geometry["faces"][tid]
        assert colour.name() == _curve_style(panel, tid)[0], f"#{tid}: its box and its curve differ in colour"


# --- a tab of plots, one a classifier ------------------------------------------------------------------------------
@pytest.mark.parametrize("width, height", [(784, 330), (784, 300), (1000, 330), (1264, 330)])
@pytest.mark.parametrize("tab", ["p_widget", "focus_widget"])
def test_every_classifiers_plot_is_on_show_or_reachable(qtbot, plots_panel, tab, width, height):
    """With 4 and 5 classifiers one row of plots ran past the tab's right edge: at 784 px the third was cut off and
    the fourth not drawn, with no scroll bar. Every plot is in view, or a scroll bar reaches it."""
    panel = plots_panel()
    panel.resize(width, height)
    for k in range(10):
        panel.add_result(_frame(list(range(1, 7)), k / 10, NAMES), 0, 1, 1)
    widget = getattr(panel, tab)
    panel.setCurrentWidget(widget)
    plots = panel.p_plots if tab == "p_widget" else panel.focus_plots
    panel.refresh()
    qtbot.waitUntil(lambda: len(plots) == len(NAMES) and widget.ci.layout.isActivated(), timeout=5000)
    qtbot.wait(50)
    view = widget.viewport().rect()
    shown = widget.mapToScene(view).boundingRect()
    bars = (widget.horizontalScrollBar(), widget.verticalScrollBar())
    for name, plot in plots.items():
        rect = plot.sceneBoundingRect()
        assert rect.width() > 100 and rect.height() > 60, f"{name}'s plot is squeezed to {rect}"
        if shown.adjusted(-1, -1, 1, 1).contains(rect):
            continue
        # past the view: a scroll bar on show must reach it
        reach = shown.adjusted(0, 0, bars[0].maximum() if bars[0].isVisible() else 0,
                               bars[1].maximum() if bars[1].isVisible() else 0)
        assert reach.adjusted(-1, -1, 1, 1).contains(rect), \
            f"{name}'s plot at {rect} is outside the view {shown} and no scroll bar reaches it"
