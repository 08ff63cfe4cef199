"""A folder slideshow brings a new face (a new track) every photo: each one had built its curves (a PlotDataItem and
a ScatterPlotItem each) and a legend entry (an HTML LabelItem), and each face that left had them closed, 3.3 ms of
GUI-thread time a face (plots.refresh p50 25 → 47 ms). The curves and entries of faces that left are kept and given to
the next faces; what is drawn is as a new curve's."""
from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from dataclasses import replace  # noqa: E402

import numpy as np  # noqa: E402
import pyqtgraph as pg  # noqa: E402
import pytest  # noqa: E402
from pyqtgraph.graphicsItems import LegendItem as legend_module  # noqa: E402

from gui import plots  # noqa: E402
from gui.painter import track_colour  # noqa: E402
from inference.results import ClassifierOutput, FaceResult, FaceView, FrameResult, SkinShift, SkinTone  # noqa: E402

NAMES = ("tiny-a", "tiny-b")
PHOTOS = 40  # far more faces than MAX_TRACKS


def _face(track_id: int) -> FaceResult:
    skin = SkinTone(True, 100, 60.0, 10.0, 15.0, 30.0, "x", 3)
    cls = {n: ClassifierOutput(n, ("female", "male"), np.array([0.6, 0.4]), np.zeros((2, 2), np.float32), "female",
                               0.5) for n in NAMES}
    view = FaceView(np.zeros((1, 1, 3), np.uint8), cls, skin)
    face = FaceResult(0, (0, 0, 10, 10), np.eye(2, 3), view, view, SkinShift(1.0, 1.0, 0), {n: 0.05 for n in NAMES})
    return replace(face, track_id=track_id)


def _show_photo(panel: plots.PlotsPanel, i: int) -> None:
    """Photo ``i`` of a slideshow: one face, of a track of its own, shown for two frames."""
    for frame in range(2):
        t = i + frame * 0.5
        panel.add_result(FrameResult(2 * i + frame, t, np.zeros((1, 1, 3), np.uint8), (_face(i + 1),),
                                     {"total": 5.0}, {}), 10.0, 2.0, 2.0)
        panel.refresh()


@pytest.fixture
def panel(qtbot) -> plots.PlotsPanel:
    p = plots.PlotsPanel()
    qtbot.addWidget(p)
    p.resize(1280, 400)
    p.show()
    qtbot.waitExposed(p)
    return p


@pytest.fixture
def built(monkeypatch) -> dict[str, int]:
    """Counts the faces' curves and the legends' labels built."""
    counts = {"curves": 0, "labels": 0}
    curve_init, label_class = plots._FaceCurve.__init__, legend_module.LabelItem

    def counting_curve_init(self, *args, **kwargs):
        counts["curves"] += 1
        curve_init(self, *args, **kwargs)

    class CountingLabel(label_class):
        def __init__(self, *args, **kwargs):
            counts["labels"] += 1
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(plots._FaceCurve, "__init__", counting_curve_init)
    monkeypatch.setattr(legend_module, "LabelItem", CountingLabel)
    return counts


@pytest.mark.parametrize("tab", ["ita_plot", "p_widget", "focus_widget"])
def test_a_slideshows_new_faces_reuse_the_curves_and_legend_entries_of_faces_that_left(qtbot, panel, built, tab):
    panel.setCurrentWidget(getattr(panel, tab))
    for i in range(PHOTOS):
        _show_photo(panel, i)
    plot_count = 1 if tab == "ita_plot" else len(NAMES)
    assert built["curves"] <= 2 * plots.MAX_TRACKS * plot_count  # original and filtered, for six faces at most
    assert built["labels"] <= plots.MAX_TRACKS  # one legend for the tab's plots


def _expect_fresh(panel: plots.PlotsPanel, plot, tid: int) -> None:
    """Face ``tid``'s curves on ``plot`` are drawn as a newly built pair's."""
    original = next(c for c in plot.listDataItems() if c.name() == f"#{tid}")
    filtered = original.filtered_twin
    assert filtered is not None and filtered in plot.listDataItems() and filtered.name() is None
    colour = track_colour(tid)
    for curve, width, style in ((original, 2, pg.QtCore.Qt.PenStyle.SolidLine),
                                (filtered, plots.DASHED_WIDTH, pg.QtCore.Qt.PenStyle.DashLine)):
        pen = pg.mkPen(curve.opts["pen"])
        assert (pen.color(), pen.width(), pen.style()) == (colour, width, style), tid
        assert pg.mkPen(curve.opts["symbolPen"]).color() == colour
        assert curve.face_symbol == plots.face_symbol(tid)
        assert curve.opts["symbol"] in (None, plots.face_symbol(tid))
        assert curve.isVisible()
        newest = curve.newest.opts
        assert (newest["symbol"], pg.mkPen(newest["pen"]).color()) == (plots.face_symbol(tid), colour)
        assert newest["size"] == plots.NEWEST_SIZE
    assert pg.mkBrush(original.opts["symbolBrush"]).color() == colour
    assert pg.mkBrush(original.newest.opts["brush"]).color() == colour
    assert pg.mkBrush(filtered.opts["symbolBrush"]).style() == pg.QtCore.Qt.BrushStyle.NoBrush  # hollow
    assert pg.mkBrush(filtered.newest.opts["brush"]).style() == pg.QtCore.Qt.BrushStyle.NoBrush


def _click(qtbot, panel: plots.PlotsPanel, sample) -> None:
    """A click on a legend entry of the skin tone plot, once the legend is laid out."""
    legend = panel.ita_plot.getPlotItem().legend
    qtbot.waitUntil(lambda: legend.layout.isActivated() and sample.sceneBoundingRect().width() > 0, timeout=5000)
    qtbot.mouseClick(panel.ita_plot.viewport(), pg.QtCore.Qt.MouseButton.LeftButton,
                     pos=panel.ita_plot.mapFromScene(sample.sceneBoundingRect().center()))


def test_a_reused_curve_and_entry_show_the_new_face_as_new_ones_would(qtbot, panel):
    panel.setCurrentWidget(panel.ita_plot)
    plot = panel.ita_plot.getPlotItem()
    for i in range(plots.MAX_TRACKS):
        _show_photo(panel, i)
    legend = plot.legend
    sample, label = legend.items[0]
    _click(qtbot, panel, sample)
    assert not sample.item.isVisible()  # the oldest face hidden, then gone: its curves go to the next face
    for i in range(plots.MAX_TRACKS, PHOTOS):
        _show_photo(panel, i)
    shown = panel._visible_tracks()
    assert sorted(shown) == list(range(PHOTOS - plots.MAX_TRACKS + 1, PHOTOS + 1))
    assert [label.text for _, label in legend.items] == [f"#{tid}" for tid in sorted(shown)]
    assert all(s.isVisible() and lb.isVisible() for s, lb in legend.items)
    assert all(s.item.name() == lb.text for s, lb in legend.items)  # each entry draws (and hides) its own face
    assert len(plot.listDataItems()) == 2 * len(shown)  # no curve left on the plot once its face left
    for tid in shown:
        _expect_fresh(panel, plot, tid)
        x, y = panel._curves[("ita", tid, "o")].getData()
        assert list(x) == [tid - 1, tid - 0.5]  # its own points alone, none of the face before it
    sample, label = legend.items[0]  # a click on a reused entry hides its face's solid and dashed curves
    _click(qtbot, panel, sample)
    face = sample.item
    assert not face.isVisible() and not face.filtered_twin.isVisible()
    assert all(c.isVisible() for c in plot.listDataItems() if c is not face and c is not face.filtered_twin)


def test_a_reset_keeps_no_face_curves_on_the_plots_and_draws_the_next_faces_afresh(qtbot, panel):
    panel.setCurrentWidget(panel.ita_plot)
    for i in range(plots.MAX_TRACKS + 2):
        _show_photo(panel, i)
    panel.reset()
    plot = panel.ita_plot.getPlotItem()
    assert not plot.listDataItems() and not plot.legend.items
    _show_photo(panel, 100)
    assert [label.text for _, label in plot.legend.items] == ["#101"]
    _expect_fresh(panel, plot, 101)
