"""What an accessibility review of the window found: label colours under WCAG's contrast over a light frame, the
view's text and the no-source page at a fixed size under a large application font, a status bar wider than the
window, faces told apart by colour alone in the plots and in the one-line label, and nothing for a screen reader.

Synthetic FrameResults (no model) where the window is not needed, as in test_gui_display_fixes.
"""
from __future__ import annotations

from contextlib import contextmanager
from types import SimpleNamespace

import numpy as np
import pyqtgraph as pg
import pytest

pytest.importorskip("pytestqt")

from PySide6.QtCore import QRectF  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtGui import QAccessible, QColor, QFontInfo, QFontMetricsF, QImage, QPainter, QTextDocument  # noqa: E402
from PySide6.QtWidgets import QApplication, QMainWindow  # noqa: E402

from gui import painter  # noqa: E402
from gui.painter import (DisplaySettings, compact_lines, draw_label, draw_text_on_backdrop, face_lines,  # noqa: E402
                         render, skin_shift_word, track_colour, view_font)
from gui.plots import MAX_TRACKS, PlotsPanel  # noqa: E402
from gui.source_message import SourceMessage  # noqa: E402
from gui.status_line import StatusLine  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402
from inference.skin import ita_degrees  # noqa: E402
from tests.test_app import WAIT, _has_faces, make_window, models  # noqa: E402,F401  (fixtures: used by name)

WCAG_AA = 4.5  # WCAG 2's least contrast for text under 18 pt (success criterion 1.4.3)
LARGE_FONT_PT = 24  # a user's large application font, the review's


def with_large_font(widget):
    """The widget and its children at a user's large font (set on it, as a style or a parent's font would)."""
    font = widget.font()
    font.setPointSizeF(LARGE_FONT_PT)
    widget.setFont(font)
    return widget
FRAME = (640, 480)  # the synthetic frames' width and height
CLASSIFIERS = ("tiny-a", "tiny-b")
# The shipped classifiers' names (a plot is as wide as its title at least) and a user's fourth
LONG_CLASSIFIERS = ("mobilenetv3s-utk-unbalanced", "resnet10-utk-gender-balanced", "resnet10-utk-unbalanced",
                    "my-own-classifier")
# The window of a 1024×768 screen and of a 1366×768 screen, less their frames, and as many classifiers as had their
# plots side by side in it before the faces' legends
NARROW_WINDOWS = ((1008, 3), (1350, 4))
PLOTS_HEIGHT = 300  # the plots panel's, as in the window of a 768 px screen
# every colour a face's label or a status line is written in, by the name the painter gives it
LABEL_COLOURS = {**{name: getattr(painter, name) for name in
                    ("TEXT", "MUTED", "LIGHTER", "DARKER", "NEUTRAL", "MORE_FEMALE", "LESS_FEMALE")},
                 **{f"face colour {c.name()}": c for c in painter.TRACK_COLOURS}}


# --- synthetic faces -------------------------------------------------------------
def _tone(L: float, b: float) -> SkinTone:
    return SkinTone(True, 500, L, 10.0, b, ita_degrees(L, b), "intermediate", 5)


def _face(track_id: int, before: SkinTone, after: SkinTone, box=(200, 100, 200, 200),
          classifiers: tuple[str, ...] = CLASSIFIERS) -> FaceResult:
    """A face filtered from ``before`` to ``after``, seen by ``classifiers``."""
    crop = np.full((64, 64, 3), 120, np.uint8)
    outputs = {n: ClassifierOutput(n, ("male", "female"), np.array([0.3, 0.7]), np.ones((64, 64), np.float32),
                                   "female", cam_focus=0.5) for n in classifiers}
    original, filtered = FaceView(crop, outputs, before), FaceView(crop, outputs, after)
    shift = SkinShift(after.ita - before.ita, after.L - before.L, 0)
    affine = np.array([[box[2] / 64, 0, box[0]], [0, box[3] / 64, box[1]]], np.float64)
    return FaceResult(track_id, box, affine, original, filtered, shift, {n: 0.01 for n in classifiers},
                      reference=dict(outputs))


def _result(faces: tuple[FaceResult, ...], timestamp: float = 0.0) -> FrameResult:
    frame = np.full((FRAME[1], FRAME[0], 3), 120, np.uint8)
    return FrameResult(0, timestamp, frame, faces, {"total": 30.0}, {}, filter_name="identity")


def _lighter_face(track_id: int = 1, classifiers: tuple[str, ...] = CLASSIFIERS) -> FaceResult:
    return _face(track_id, _tone(60.0, 15.0), _tone(66.0, 15.0), classifiers=classifiers)  # L* up, b* kept: "lighter"


def _yellower_face(track_id: int = 2) -> FaceResult:
    return _face(track_id, _tone(60.0, 18.0), _tone(60.0, 12.0))  # b* down, L* kept: "higher ITA"


@contextmanager
def _application_font(points: float):
    """The application's font at ``points`` for the block, as a user's desktop sets it; put back after."""
    app = QApplication.instance()
    before = app.font()
    large = app.font()
    large.setPointSizeF(points)
    app.setFont(large)
    try:
        yield
    finally:
        app.setFont(before)


# --- 1. contrast ----------------------------------------------------------------------
def _luminance(c: QColor) -> float:
    """WCAG 2's relative luminance of an sRGB colour."""
    channels = [v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in (c.redF(), c.greenF(), c.blueF())]
    return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]


def _contrast(a: QColor, b: QColor) -> float:
    light, dark = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def _backdrop_over(under: QColor, draw) -> QColor:
    """The colour of a backdrop ``draw`` paints over a frame of ``under``, read off the pixels, clear of its text."""
    image = QImage(200, 60, QImage.Format.Format_RGB32)
    image.fill(under)
    p = QPainter(image)
    fm = QFontMetricsF(view_font())
    backdrop = draw(p, QRectF(0, 0, 200, 60), fm)
    p.end()
    return image.pixelColor(round(backdrop.right()) - 3, round(backdrop.center().y()))


def _draw_label(p: QPainter, rect: QRectF, fm: QFontMetricsF) -> QRectF:
    draw_label(p, rect, [[("x", painter.TEXT)]], fm)  # one short word: the rest of the backdrop is bare
    return rect


def _draw_status(p: QPainter, rect: QRectF, fm: QFontMetricsF) -> QRectF:
    return draw_text_on_backdrop(p, rect, "x" * 12, painter.TEXT, fm)


@pytest.mark.parametrize("draw", [_draw_label, _draw_status], ids=["face label", "status line"])
@pytest.mark.parametrize("under", [QColor("white"), QColor("black")], ids=["white wall", "black frame"])
def test_every_label_colour_reads_at_wcag_contrast_on_its_backdrop(qapp, draw, under):
    """The backdrop was 78 % opaque: over a white wall it came out (63, 63, 67), and MUTED, DARKER, MORE_FEMALE and
    the violet face colour read at 3.2–4.2:1."""
    backdrop = _backdrop_over(under, draw)
    low = {name: round(_contrast(colour, backdrop), 2) for name, colour in LABEL_COLOURS.items()
           if _contrast(colour, backdrop) < WCAG_AA}
    assert not low, f"under {WCAG_AA}:1 on the backdrop {backdrop.getRgb()[:3]} over {under.name()}: {low}"


# --- 2. the application's font ------------------------------------------------------------
def _label_height(result: FrameResult) -> float:
    geometry: dict = {}
    render(result, DisplaySettings(view="original"), 1400, 900, geometry=geometry)
    [(rect, _own)] = geometry["labels"]
    return rect.height()


def test_the_views_text_follows_a_large_application_font(qapp):
    """The view's titles, labels and notes were 9.5 pt under any application font."""
    result = _result((_lighter_face(),))
    usual_pt, usual_height = view_font().pointSizeF(), _label_height(result)
    with _application_font(LARGE_FONT_PT):
        app_pt = QFontInfo(QApplication.font()).pointSizeF()
        assert view_font().pointSizeF() >= max(app_pt, usual_pt)
        assert _label_height(result) > usual_height  # drawn in it: the rows' heights are measured in it too
    assert view_font().pointSizeF() == usual_pt  # and back with the application's


@pytest.mark.parametrize("points", [None, LARGE_FONT_PT], ids=["usual font", "large font"])
def test_the_no_source_page_writes_larger_than_the_application(qtbot, points):
    """The page's message was 15 px under any application font: under a 24 pt one, smaller than its buttons."""
    with _application_font(points or QApplication.font().pointSizeF()):
        page = SourceMessage(lambda: None, lambda: None, lambda: None)
        qtbot.addWidget(page)
        page.ensurePolished()
        page.message.ensurePolished()  # a style sheet's font is applied here
        message_px = QFontInfo(page.message.font()).pixelSize()
        assert message_px > QFontInfo(QApplication.font()).pixelSize()


# --- 3. the status bar ----------------------------------------------------------------------------
def test_the_status_bar_fits_its_window_under_a_large_font(qtbot):
    """Under a 24 pt font the status bar needed 1,542 px, wider than the window, and its labels were cut mid-word."""
    window = with_large_font(QMainWindow())
    qtbot.addWidget(window)
    status = StatusLine(window.statusBar())
    status.show_source("source: /home/someone/photos")
    status.show_rates(12.3, 11.9, _result(()))
    status.show_models([SimpleNamespace(name=n, provider="CPU") for n in CLASSIFIERS],
                       ["a warning long enough to need the room of the others"], 0)
    labels = (status.source, status.fps, status.providers, status.warn)
    whole = {label: label.text() for label in labels}
    needed = sum(label.fontMetrics().horizontalAdvance(text) for label, text in whole.items())
    room = needed // 2  # a window narrower than the labels' texts
    window.resize(room, window.sizeHint().height())
    window.show()
    qtbot.waitExposed(window)
    bar = window.statusBar()
    assert bar.minimumSizeHint().width() <= room, (bar.minimumSizeHint(), room)
    qtbot.waitUntil(lambda: all(label.geometry().right() <= bar.width() for label in labels), timeout=WAIT)
    for label, text in whole.items():
        assert label.text() == text  # whole for a screen reader, and in the tooltip
        shown = label.shown_text() if hasattr(label, "shown_text") else label.text()
        assert shown == text or (shown.endswith("…") and text.startswith(shown[:-1])), (text, shown)
        assert label.width() >= label.minimumSizeHint().width(), text


# --- 4. the plots -------------------------------------------------------------------------------------------
def _face_plots(panel: PlotsPanel) -> list:
    return [panel.ita_plot.getPlotItem(), *panel.p_plots.values(), *panel.focus_plots.values()]


def _draw_face_tabs(qtbot, panel: PlotsPanel) -> None:
    for tab in (panel.ita_plot, panel.p_widget, panel.focus_widget):
        panel.setCurrentWidget(tab)
        qtbot.waitExposed(panel)
        panel.refresh()


def _originals(plot) -> dict[int, object]:
    """The face's original (solid) curve on ``plot``, by its face."""
    return {int(c.name()[1:]): c for c in plot.listDataItems() if c.name()}


@pytest.fixture
def faces_panel(qtbot) -> PlotsPanel:
    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.resize(1280, PLOTS_HEIGHT)
    panel.show()
    return panel


def test_every_faces_plot_names_its_faces_in_a_legend(qtbot, faces_panel):
    """The skin tone, P(female) and CAM focus plots had no legend: faces were told apart by colour alone, and
    several of the face colours merge for a reader without red or green cones."""
    ids = range(1, MAX_TRACKS + 1)
    faces_panel.add_result(_result(tuple(_lighter_face(i) for i in ids)), 10.0, 5.0, 5.0)
    _draw_face_tabs(qtbot, faces_panel)
    plots = _face_plots(faces_panel)
    assert len(plots) == 1 + 2 * len(CLASSIFIERS)
    for plot in plots:
        assert plot.legend is not None, plot.titleLabel.text
        assert {label.text for _, label in plot.legend.items} == {f"#{i}" for i in ids}, plot.titleLabel.text
        assert set(_originals(plot)) == set(ids), plot.titleLabel.text  # the P and focus curves named as the ITA ones


def test_each_face_has_its_own_marker_shape(qtbot, faces_panel):
    """A face's dots (a photo's), the marker on its newest point (a longer curve's) and its legend entry have a
    shape of its own: its colour alone had told it from the others."""
    ids = range(1, MAX_TRACKS + 1)
    faces_panel.add_result(_result(tuple(_lighter_face(i) for i in ids)), 10.0, 5.0, 5.0)
    _draw_face_tabs(qtbot, faces_panel)
    for plot in _face_plots(faces_panel):
        dots = {tid: curve.opts["symbol"] for tid, curve in _originals(plot).items()}
        assert len(set(dots.values())) == len(dots), (plot.titleLabel.text, dots)
    for t in range(1, 5):  # seen again: lines, each with its shape on its newest point
        faces_panel.add_result(_result(tuple(_lighter_face(i) for i in ids), timestamp=float(t)), 10.0, 5.0, 5.0)
    _draw_face_tabs(qtbot, faces_panel)
    for plot in _face_plots(faces_panel):
        curves = _originals(plot)
        assert all(curve.opts["symbol"] is None for curve in curves.values())  # lines: no dot on every point
        newest = {tid: [point.symbol() for point in curve.newest.points()] for tid, curve in curves.items()}
        assert all(len(symbols) == 1 for symbols in newest.values()), newest
        assert len({symbols[0] for symbols in newest.values()}) == len(newest), (plot.titleLabel.text, newest)
        assert {s[0] for s in newest.values()} == set(dots.values())  # the shape of its dots



@pytest.mark.parametrize("width, classifiers", NARROW_WINDOWS, ids=[f"{n} at {w} px" for w, n in NARROW_WINDOWS])
def test_the_plots_of_each_classifier_fit_a_small_screens_window_beside_each_other(qtbot, faces_panel, width,
                                                                                    classifiers):
    """Six faces on one legend row under each classifier's plot (about 330 px) had made each plot wider than its title
    and axes: the third classifier's P(female) and CAM focus plots were cut off in a 1024×768 screen's window."""
    names = LONG_CLASSIFIERS[:classifiers]
    faces_panel.resize(width, PLOTS_HEIGHT)
    faces_panel.add_result(_result(tuple(_lighter_face(i, names) for i in range(1, MAX_TRACKS + 1))), 10.0, 5.0, 5.0)
    _draw_face_tabs(qtbot, faces_panel)
    panel = faces_panel
    for tab, plots in ((panel.p_widget, panel.p_plots), (panel.focus_widget, panel.focus_plots)):
        panel.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: all(len(plot.legend.items) == MAX_TRACKS and plot.layout.isActivated()
                                    for plot in plots.values()) and tab.ci.layout.isActivated(), timeout=WAIT)
        room = tab.viewport().width()
        assert list(plots) == list(names)
        for name, plot in plots.items():
            right = plot.sceneBoundingRect().right()
            assert right <= room, f"{name}'s plot is cut off: it ends at {right:.0f} px of {room}"


def _face_curves(plots, track_id: int) -> list:
    """The curves of face ``track_id`` on ``plots``: those in its colour."""
    colour = track_colour(track_id)
    return [c for plot in plots for c in plot.listDataItems() if pg.mkPen(c.opts["pen"]).color() == colour]


@pytest.mark.parametrize("tab", ["Skin tone", "P(female)"])
def test_a_click_on_a_faces_legend_entry_hides_and_shows_its_solid_and_dashed_curves(qtbot, faces_panel, tab):
    """A click had hidden the face's solid (original) curve alone: its dashed (filtered) curve stayed on show."""
    ids = range(1, MAX_TRACKS + 1)
    faces_panel.add_result(_result(tuple(_lighter_face(i) for i in ids)), 10.0, 5.0, 5.0)
    _draw_face_tabs(qtbot, faces_panel)
    view = {"Skin tone": faces_panel.ita_plot, "P(female)": faces_panel.p_widget}[tab]
    plots = [faces_panel.ita_plot.getPlotItem()] if view is faces_panel.ita_plot else list(faces_panel.p_plots.values())
    faces_panel.setCurrentWidget(view)
    legend = plots[0].legend
    qtbot.waitUntil(lambda: legend.sceneBoundingRect().width() > 0, timeout=WAIT)
    sample, label = legend.items[0]
    face = int(label.text[1:])
    curves, others = _face_curves(plots, face), [c for i in ids if i != face for c in _face_curves(plots, i)]
    assert len(curves) == 2 * len(plots)  # solid and dashed, on each plot
    for shown in (False, True):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton,
                         pos=view.mapFromScene(sample.sceneBoundingRect().center()))
        assert [c.isVisible() for c in curves] == [shown] * len(curves), f"a click on {label.text}'s entry"
        assert all(c.isVisible() for c in others)

# --- 5. the one-line label --------------------------------------------------------------------
def test_the_one_line_label_says_its_skin_shift_in_words():
    """A crowded frame's one-line label told "lighter" (orange) from "higher ITA" (grey) by colour alone."""
    texts = {}
    for face in (_lighter_face(), _yellower_face()):
        word = skin_shift_word(face)
        [line] = compact_lines(face, None)
        [shift] = [text for text, _ in line if text.startswith("ΔITA")]
        assert word in shift, (word, shift)
        texts[word] = shift
    assert set(texts) == {"lighter", "higher ITA"}  # both meanings, each in its words


# --- 6. screen readers ------------------------------------------------------------------------------
def _accessible(widget, what: QAccessible.Text) -> str:
    return QAccessible.queryAccessibleInterface(widget).text(what)


def test_a_screen_reader_gets_the_parts_names_and_the_shown_faces_numbers(qtbot, make_window, faces_dir):
    """The view, the plots and the session table had no accessible name, and the faces' numbers were pixels only."""
    w = make_window(str(faces_dir))
    qtbot.waitUntil(lambda: _has_faces(w), timeout=WAIT)
    w.toggle_pause()  # the frame on show stays
    for part in (w.view, w.plots, w.summary.table):
        assert _accessible(part, QAccessible.Text.Name), type(part).__name__

    def described() -> bool:  # the frame on show (one still in the pipeline at the pause may follow)
        description = _accessible(w.view, QAccessible.Text.Description)
        faces = w.last_result.faces
        return all("".join(text for text, _ in line).strip() in description for f in faces for line in face_lines(f))

    qtbot.waitUntil(described, timeout=WAIT)  # on the window's slow timer


# --- a model's name is text, never HTML ---------------------------------------------------------------------------

ANGLED = "age<30 vs age>60 & <b>bold</b>"  # a name researchers write: read as HTML, "age60" had been shown


def test_a_classifier_named_with_angle_brackets_shows_its_whole_name_in_titles_and_legends(qtbot):
    panel = PlotsPanel()
    qtbot.addWidget(panel)
    panel.show()
    plot = panel._classifier_plot(panel.p_widget, {}, ANGLED)
    assert plot.titleLabel.item.toPlainText() == ANGLED
    panel.setCurrentWidget(panel.hist_widget)
    panel.t0 = 0.0
    panel.refresh(None, {ANGLED: np.array([-0.1, 0.0, 0.2])})
    assert [label.item.toPlainText() for _, label in panel.hist_p.legend.items] == [ANGLED]


def test_a_filter_named_with_angle_brackets_shows_whole_in_the_session_note(qtbot):
    from gui.recording import SessionStats
    from gui.session_summary import SessionSummary

    summary = SessionSummary(lambda: None)
    qtbot.addWidget(summary)
    summary.show()
    stats = SessionStats()
    stats.filter_label = ANGLED
    summary.refresh(stats)
    shown = summary.note
    assert shown.textFormat() == Qt.TextFormat.PlainText and "filter 'age<30 vs age" in shown.text()  # elided
    from PySide6 import QtGui

    tip = shown.toolTip()
    if QtGui.Qt.mightBeRichText(tip):  # as QToolTip decides: escaped where Qt would read HTML, plain otherwise
        document = QTextDocument()
        document.setHtml(tip)
        tip = document.toPlainText()
    assert ANGLED in tip
