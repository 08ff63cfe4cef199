"""What a screenshot review of the view and the plots found: a label over the eyes of a face filling the frame, the
count of labels left out cut mid-word, "time (s) (x0.001)" on a single photo's plots, captions that named lines
where dots were drawn, and colours that meant a face and a direction at once.

Synthetic FrameResults (no model, no detector), as in test_painter_layout.
"""
from __future__ import annotations

import itertools

import cv2
import numpy as np
import pytest

pytest.importorskip("pytestqt")

import pyqtgraph as pg  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QColor, QFontMetricsF  # noqa: E402
from skimage.color import deltaE_ciede2000, rgb2lab  # noqa: E402

from gui.painter import (BACKDROP_PAD, DARKER, LESS_FEMALE, LIGHTER, MORE_FEMALE, TRACK_COLOURS,  # noqa: E402
                         DisplaySettings, render, view_font)
from inference.faces import crop_square  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402

CROP = 64  # the synthetic faces' crop size
FRAME = (640, 480)  # the synthetic frames' width and height
VIEWS = ("side by side", "original", "filtered", "split")
SIGN_COLOURS = {"lighter": LIGHTER, "darker": DARKER, "more female": MORE_FEMALE, "less female": LESS_FEMALE}
# CIEDE2000 between colours told apart at a glance: the faces' orange had been 2.5 from "lighter", their pink 10
# from "more female" (a just noticeable difference is about 1; 10 and less read as one colour beside each other)
DISTINCT = 15.0
SMALL_ITA = 0.3  # degrees: a skin tone whose plot's ITA axis spans less than 1


def _face(frame: np.ndarray, track_id: int, box: tuple[int, int, int, int], ita: float = 20.0) -> FaceResult:
    """A face measured as the pipeline would report it, filtered by an identity filter (its crop unchanged)."""
    crop, crop_to_frame = crop_square(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB), box, CROP)
    out = ClassifierOutput("tiny-a", ("male", "female"), np.array([0.3, 0.7]), np.ones((CROP, CROP), np.float32),
                           "female", cam_focus=0.5)
    view = FaceView(crop, {"tiny-a": out}, SkinTone(True, 500, 60.0, 12.0, 18.0, ita, "intermediate", 4))
    return FaceResult(track_id, box, crop_to_frame, view, view, SkinShift(0.4, 0.3, 0), {"tiny-a": 0.01},
                      reference={"tiny-a": out})


def _result(boxes: list[tuple[int, int, int, int]], size: tuple[int, int] = FRAME, ita: float = 20.0,
            timestamp: float = 0.0) -> FrameResult:
    frame = np.full((size[1], size[0], 3), 120, np.uint8)
    faces = tuple(_face(frame, i + 1, box, ita) for i, box in enumerate(boxes))
    return FrameResult(0, timestamp, frame, faces, {"total": 30.0}, {}, filter_name="identity")


def _middle(rect):
    """The middle third of a rectangle each way: a face's eyes, nose and mouth."""
    return rect.adjusted(rect.width() / 3, rect.height() / 3, -rect.width() / 3, -rect.height() / 3)


# --- labels ------------------------------------------------------------------------
@pytest.mark.parametrize("view", VIEWS)
@pytest.mark.parametrize("frame", [FRAME, (FRAME[1], FRAME[1])], ids=["camera", "square photo"])
@pytest.mark.parametrize("reach", [0.0, 0.15], ids=["the frame", "past the frame"])
def test_the_label_of_a_face_filling_the_frame_keeps_off_its_middle(qapp, view, frame, reach):
    """A face filling the frame, its box past the frame's edges (a close-up, a UTKFace photo), had its label over its
    eyes: the spots beside the box lay past the view and were dropped, and the label went to the free spot nearest
    the box's centre."""
    w, h = frame
    box = (round(-reach * w), round(-reach * h), round((1 + 2 * reach) * w), round((1 + reach) * h))
    geometry: dict = {}
    render(_result([box], frame), DisplaySettings(view=view), 1100, 540, geometry=geometry)
    assert geometry["labels_hidden"] == 0 and len(geometry["labels"]) == 1
    [(rect, own)] = geometry["labels"]
    face = own.intersected(geometry["image_rect"])  # the part of the face that shows
    assert not rect.intersects(_middle(face)), f"the label at {rect} covers the middle of its face at {face}"


def _crowd() -> FrameResult:
    """Twenty faces in a 5×4 grid reaching every edge of the frame: too many for every label to fit in a small view."""
    side, gap = 72, 8
    size = (5 * side + 4 * gap, 4 * side + 3 * gap)
    return _result([(c * (side + gap), r * (side + gap), side, side) for r in range(4) for c in range(5)], size)


@pytest.mark.parametrize("size", [(500, 260), (700, 300)])
@pytest.mark.parametrize("view", ["side by side", "original"])
def test_the_count_of_labels_left_out_is_drawn_whole(qapp, view, size):
    """The count of labels left out, one long line elided to the titles' row, read "labels of 12 of 20 faces not
    shown: no room beside th…": it is drawn whole, in the words that fit."""
    crowd = _crowd()
    geometry: dict = {}
    render(crowd, DisplaySettings(view=view), *size, geometry=geometry)
    assert geometry["labels_hidden"] > 0  # so the count is drawn
    text, room = geometry["status_text"]["not_shown"], geometry["status_room"]["not_shown"]
    fm = QFontMetricsF(view_font())
    assert "…" not in text and fm.horizontalAdvance(text) + 2 * BACKDROP_PAD <= room.width(), \
        f"{text!r} does not fit the {room.width():.0f} px it is given"
    assert str(geometry["labels_hidden"]) in text and str(len(crowd.faces)) in text


# --- plots -------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot):
    from gui.plots import PlotsPanel

    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(940, 260)  # 1080p at 200 %
    panel.show()
    return panel


def _show_every_tab(qtbot, panel) -> None:
    """Raises each tab and draws its plots, as the window's refresh does."""
    for i in range(panel.count()):
        panel.setCurrentIndex(i)
        qtbot.waitExposed(panel)
        panel.refresh()


def _plots_by_tab(panel) -> dict:
    return {panel.ita_plot: [panel.ita_plot.getPlotItem()], panel.p_widget: list(panel.p_plots.values()),
            panel.focus_widget: list(panel.focus_plots.values()),
            panel.speed_widget: [panel.fps_plot, panel.stage_plot, panel.lat_plot]}


def test_no_plot_axis_scales_its_label_for_a_range_under_one(qtbot, panel):
    """A single photo (and every session's first second) had a time axis of "time (s) (x0.001)" with ticks
    −400…400: pyqtgraph scales a label without units whose range is under 1. ITA near 0 did it to the ITA axis."""
    panel.add_result(_result([(200, 100, 200, 200)], ita=SMALL_ITA), 50.0, 2.0, 2.0)
    _show_every_tab(qtbot, panel)  # so that every classifier's plots exist
    checked = 0
    for tab, plots in _plots_by_tab(panel).items():
        panel.setCurrentWidget(tab)  # a plot takes its data's range when shown
        panel.refresh()
        axes = [(plot, plot.getAxis(side)) for plot in plots for side in ("left", "bottom")
                if plot.getAxis(side).label.isVisible()]
        # the view of one point spans less than 1 each way
        qtbot.waitUntil(lambda: all(max(map(abs, axis.range)) < 1 for _, axis in axes), timeout=5000)
        for plot, axis in axes:
            assert "(x" not in axis.labelString(), f"{plot.titleLabel.text}: {axis.labelString()}"
            assert axis.autoSIPrefixScale == 1, f"{plot.titleLabel.text}: ticks scaled by {axis.autoSIPrefixScale}"
        checked += len(axes)
    assert checked > sum(map(len, _plots_by_tab(panel).values()))  # every plot's time axis, and the ITA axis


def test_the_captions_name_the_dots_a_face_seen_once_is_drawn_as(qtbot, panel):
    """A face seen in one frame (a folder's photo) is drawn as a filled dot (original) and a hollow one (filtered),
    while the captions said "solid original, dashed filtered"."""
    from gui.plots import P_CAPTION, P_CAPTION_REFERENCE

    panel.add_result(_result([(200, 100, 200, 200)]), 50.0, 2.0, 2.0)
    _show_every_tab(qtbot, panel)
    curves = panel.ita_plot.getPlotItem().listDataItems()
    assert {curve.opts["symbol"] for curve in curves} == {"o"}  # dots, the face being seen once
    fills = sorted(pg.mkBrush(curve.opts["symbolBrush"]).style() != Qt.BrushStyle.NoBrush for curve in curves)
    assert fills == [False, True]  # a hollow dot and a filled one
    captions = {"ITA": panel.ita_plot.getPlotItem().titleLabel, "P(female)": panel.p_caption,
                "CAM focus": panel.focus_widget.getItem(0, 0)}
    for tab, caption in captions.items():
        assert "filled dot" in caption.text and "hollow dot" in caption.text, f"{tab}: {caption.text}"
    for text in (P_CAPTION, P_CAPTION_REFERENCE):  # the P(female) caption, without a reference and with one
        assert "filled dot" in text and "hollow dot" in text, text
        panel.p_caption.setText(text)
        assert panel.p_caption.item.boundingRect().width() <= panel.p_widget.width(), f"cut off: {text}"


# --- colours -----------------------------------------------------------------------
def _lab(colour) -> np.ndarray:
    c = QColor(colour)
    return rgb2lab(np.array([[[c.redF(), c.greenF(), c.blueF()]]]))[0, 0]


def _delta_e(a, b) -> float:
    return float(deltaE_ciede2000(_lab(a), _lab(b)))


def _hist_colours(panel) -> dict[tuple, QColor]:
    values = np.array([-3.0, -0.1, 0.2, 2.0])
    panel.t0 = 0.0
    panel.setCurrentWidget(panel.hist_widget)
    panel.refresh(values, {name: values / 10 for name in ("tiny-a", "tiny-b", "tiny-c")})
    return {key: curve.opts["pen"].color() for key, curve in panel._curves.items() if key[0] == "hist"}


def test_the_faces_colours_stay_clear_of_the_sign_colours_and_of_each_other():
    """Track colours nearly matched the sign colours (orange "lighter", blue "darker", pink and teal for ΔP(female)):
    a label's "#2 ΔITA +9.1°" read as one orange run."""
    for colour, (sign, sign_colour) in itertools.product(TRACK_COLOURS, SIGN_COLOURS.items()):
        assert _delta_e(colour, sign_colour) >= DISTINCT, f"{colour.name()} looks like the {sign} colour"
    for a, b in itertools.combinations(TRACK_COLOURS, 2):
        assert _delta_e(a, b) >= DISTINCT, f"{a.name()} and {b.name()} look alike"


def test_the_session_histograms_claim_no_sign_with_their_colours(qtbot, panel):
    """The ΔITA histogram was "lighter" orange, its negative bars too, and the classifiers' ΔP(female) histograms
    were "more female" pink, "darker" blue and "lighter" orange."""
    colours = _hist_colours(panel)
    assert len(colours) == 4  # ΔITA and three classifiers
    for (key, colour), (sign, sign_colour) in itertools.product(colours.items(), SIGN_COLOURS.items()):
        assert _delta_e(colour, sign_colour) >= DISTINCT, f"{key} is drawn in a colour like the {sign} one"
    classifiers = [colour for key, colour in colours.items() if key[1] == "p"]
    for a, b in itertools.combinations(classifiers, 2):
        assert _delta_e(a, b) >= DISTINCT, f"two classifiers' histograms look alike: {a.name()}, {b.name()}"
