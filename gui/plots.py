"""Live pyqtgraph plots: rolling per-face ITA and P(female) (original vs filtered), session Δ histograms, speed.

Data is appended as results are displayed; curves are redrawn by ``refresh``
(the window calls it a few times a second, not per frame, to keep the GUI
thread light), and only those of the tab on screen, and only where what it
shows changed: setting a curve's data costs GUI-thread time (and a repaint of
its plot) whether or not anyone sees it, and whether or not it is new.
"""
from __future__ import annotations

import html
import math
from collections import defaultdict, deque

import numpy as np
import pyqtgraph as pg
from pyqtgraph.graphicsItems.ScatterPlotItem import drawSymbol
from PySide6.QtCore import QRectF, Qt
from PySide6.QtWidgets import QSizePolicy, QStyle, QTabWidget

from inference.results import FaceResult, FrameResult

from .painter import NEUTRAL, FaceStyle, FaceStyles, preferred_style, series_colour
from .recording import ITA_BIN_WIDTH, P_BIN_WIDTH, Histogram, SeriesBins

WINDOW_S = 60.0  # rolling plots show the last minute
# Points are kept by time, the last WINDOW_S; by count (600 for the Speed tab, 2,000 a face) they had covered 24 s at
# 25 frames/s and 33 s at 60 under a caption that says a minute. The count is capped only against a frame rate past
# a camera's, where the span shown shrinks rather than the memory and the painting time growing without end.
MOST_POINTS_PER_S = 120
MOST_POINTS = int(WINDOW_S * MOST_POINTS_PER_S)
# Filtered curves are dashed at 1 px: Qt strokes a wider dashed pen in software, and at
# 2 px it took half of the plots' painting time (38 → 20 ms a paint, GUI stalls > 100 ms
# over 120 s: 36 → 0 on 2 cores).
DASHED_WIDTH = 1
MAX_TRACKS = 6  # the most recently seen faces get curves
LEAST_PLOT_HEIGHT = 110  # px: a classifier's plot is no shorter; where its tab's rows need more, it scrolls
FACES_LEGEND_ROW = 4  # a PlotItem's layout: title, top axis, plot, bottom axis (rows 0–3), then the faces' legend
STAGES = ("detect", "crop", "classify", "filter", "classify_filtered", "skin", "total")
STAGE_COLOURS = ("#4fc3f7", "#90a4ae", "#aed581", "#ffb74d", "#ba68c8", "#f06292", "#ffffff")

# What the lines and dots stand for: a face seen in one or two frames (every photo of a folder) is drawn as dots
# (``_FaceCurve``), which the captions had not named ("solid original, dashed filtered")
KEY = "solid line / filled dot = original, dashed / hollow dot = filtered"
# ITA is not lightness alone: a yellow tint lowers a light face's ITA as L* rises (painter.HIGHER_ITA). Kept short:
# a plot's title is one line, and a longer one pushed the Session Δ plots past a 940 px window
ITA_CAPTION = f"ITA° per face (moves with L* and b*) — {KEY}"
HIST_ITA_CAPTION = "Session ΔITA° (filtered − original; + = higher ITA)"
P_CAPTION = f"P(female) per face — {KEY}"
# With a filter, ΔP(female) is filtered − the face through the filter's resampling alone (FaceResult.reference)
P_CAPTION_REFERENCE = ("P(female) — solid line / filled dot = the face resized to the filter's size and back (what "
                       "ΔP(female) is measured from), dashed / hollow dot = filtered")
FOCUS_CAPTION = f"CAM focus: share of each classifier's positive CAM on the face ellipse — {KEY}"

pg.setConfigOptions(antialias=False, background="#18181c", foreground="#c8c8c8")


# A face's shape as well as its colour (the id's colours merge in pairs for a reader without red or green cones): its
# dots, the marker on its newest point, its legend entry. The first is the dot the captions name. Which a face gets
# is painter.FaceStyles': one FaceStyle.marker a shape.
FACE_SYMBOLS = ("o", "s", "t", "d", "star", "t1")  # circle, square, triangle down, diamond, star, triangle up
DOT_SIZE = 7
NEWEST_SIZE = 9  # the marker on a line's newest point, a little larger than a dot: it stands on a line


def face_symbol(track_id: int) -> str:
    """Face ``track_id``'s shape where no other face on show has it (``painter.preferred_style``)."""
    return FACE_SYMBOLS[preferred_style(track_id).marker]


def _pens(style: FaceStyle) -> tuple:
    """A face's pens: solid 2 px for the original, dashed for the filtered."""
    return pg.mkPen(style.colour, width=2), pg.mkPen(style.colour, width=DASHED_WIDTH, style=Qt.PenStyle.DashLine)


def _label_axis(plot: pg.PlotItem | pg.PlotWidget, side: str, text: str) -> None:
    """Labels an axis of plain numbers: pyqtgraph (0.14) scales a unitless axis whose range is under 1, as a single
    photo's time axis is (and any session's in its first second), to "time (s) (x0.001)" with ticks −400…400.
    Switched off here, while the axis has its first range, [0, 1]: switching it off keeps the scale of that moment."""
    plot.setLabel(side, text)
    plot.getAxis(side).enableAutoSIPrefix(False)


def _nan(v) -> float:
    return float("nan") if v is None else float(v)


def _histogram_of(data: Histogram | np.ndarray | None, width: float) -> Histogram | None:
    """``data``: a session histogram, or values to count in bins ``width`` wide."""
    return data if data is None or isinstance(data, Histogram) else SeriesBins.of(data, width).histogram()


class _FaceCurve(pg.PlotDataItem):
    """A face's curve, original (solid line, filled markers) or filtered (dashed, hollow), marked in its face's shape
    (its ``FaceStyle``): a face seen in one or two frames (a photo of a folder) is drawn as dots, which a line through
    one point does not draw; a longer one as a line with a marker on its newest point alone (dots on long curves cost
    painting time)."""

    def __init__(self, style: FaceStyle, filtered: bool, name: str | None = None):
        solid, dashed = _pens(style)
        super().__init__([], [], pen=dashed if filtered else solid, name=name)
        self.filtered = filtered
        self.setSymbolSize(DOT_SIZE)
        # a child of the curve: it goes where the curve goes, and off the plot with it
        self.newest = pg.ScatterPlotItem(size=NEWEST_SIZE)
        self.newest.setParentItem(self)
        self._mark(style)
        self.filtered_twin: _FaceCurve | None = None  # an original's: the same face's dashed curve on the same plot

    def _mark(self, style: FaceStyle) -> None:
        """Gives the curve's dots and newest-point marker the colour and shape ``style``."""
        self.style = style
        colour = style.colour
        self.face_symbol = FACE_SYMBOLS[style.marker]
        marker_pen, marker_brush = pg.mkPen(colour, width=1.5), (None if self.filtered else colour)
        self.setSymbolPen(marker_pen)
        self.setSymbolBrush(marker_brush)
        self.newest.setSymbol(self.face_symbol)
        self.newest.setPen(marker_pen)
        self.newest.setBrush(marker_brush)

    def become(self, style: FaceStyle, name: str | None) -> None:
        """Makes a spare curve, off its plot, the new curve of a face drawn in ``style``, as ``_FaceCurve(style, ...)``
        would be: a slideshow brings a new face every photo, and building a curve and its legend entry for each had
        cost 3.3 ms of GUI-thread time a face (plots.refresh's p50 25 → 47 ms)."""
        self.setData([], [])  # emptied first: the styles below would redraw the last face's points
        self.newest.setData([], [])
        if self.opts["symbol"] is not None:
            self.setSymbol(None)
        self.restyle(style)
        self.opts["name"] = name  # pyqtgraph has no setter; PlotItem.addItem reads it for the legend
        self.filtered_twin = None
        self.setVisible(True)  # the last face may have been hidden by a click on its legend entry

    def restyle(self, style: FaceStyle) -> None:
        """Draws the curve in ``style``: its face's, which changes where it came back to find its own given away."""
        solid, dashed = _pens(style)
        self.setPen(dashed if self.filtered else solid)
        self._mark(style)
        if self.opts["symbol"] is not None:
            self.setSymbol(self.face_symbol)

    def set_points(self, t: np.ndarray, y: np.ndarray) -> None:
        finite = np.isfinite(y)
        few = int(finite.sum()) <= 2
        if few != (self.opts.get("symbol") is not None):
            self.setSymbol(self.face_symbol if few else None)
        if few:  # the dots of NaN points (a face whose skin is not measurable) made numpy warn at every redraw
            self.setData(t[finite], y[finite])
            self.newest.setData([], [])
        else:
            self.setData(t, y, connect="finite")
            last = np.flatnonzero(finite)[-1]
            self.newest.setData([t[last]], [y[last]])


class _FaceSample(pg.ItemSample):
    """A face's legend entry: its line and its shape, which a long curve draws on its newest point alone."""

    def paint(self, p, *args) -> None:
        if not self.item.isVisible():  # hidden by a click on its entry: the base class draws the closed eye
            super().paint(p, *args)
            return
        p.setRenderHint(p.RenderHint.Antialiasing)
        p.setPen(pg.mkPen(self.item.opts["pen"]))
        p.drawLine(0, 11, 20, 11)
        p.translate(10, 10)
        marker = self.item.newest.opts
        drawSymbol(p, self.item.face_symbol, marker["size"], pg.mkPen(marker["pen"]), pg.mkBrush(marker["brush"]))


def _p_reference(face: FaceResult) -> bool:
    """Whether the face's ΔP(female) is measured from its reference (a filter ran on it)."""
    return face.filtered is not None and bool(face.reference)


def _p_before(face: FaceResult, name: str) -> float:
    """The P(female) the plot draws before the filter: the one ΔP(female) is measured from, so that the gap between
    the lines is the ΔP the app reports (the sharp crop's P had the gap's sign opposite to ΔP's at times)."""
    ref = face.reference.get(name) if _p_reference(face) else None
    return (ref if ref is not None else face.original.classifiers[name]).p_female


class _CellLegend(pg.LegendItem):
    """A legend in a cell of its own below its plot: anchored inside the plot, it covered the bars and curves it
    names (the ΔP(female) bars near 0, the speed curves). Below, not beside: beside, the plots of a tab were wider
    than a 960 px window."""

    def __init__(self, columns: int = 1, sample: type = pg.ItemSample):
        super().__init__(colCount=columns, verSpacing=-6, sampleType=sample)  # no offset: the layout places it
        self.setSizePolicy(QSizePolicy.Policy.Maximum, QSizePolicy.Policy.Maximum)
        self.layout.setContentsMargins(0, 0, 0, 0)

    def updateSize(self) -> None:  # noqa: N802
        self.updateGeometry()  # sized by the layout from its entries; the base class set a geometry at (0, 0)


def _legend_below(widget: pg.GraphicsLayoutWidget, plot: pg.PlotItem, col: int, columns: int,
                  colspan: int = 1) -> pg.LegendItem:
    """A legend in the layout's second row, from column ``col``, where a named curve added to ``plot`` gets its
    entry and loses it when taken off (``PlotItem.addItem``/``removeItem`` keep ``plot.legend``)."""
    legend = _CellLegend(columns)
    widget.addItem(legend, row=1, col=col, colspan=colspan)
    widget.ci.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    plot.legend = legend
    return legend


class _FacesLegend(_CellLegend):
    """The faces' legend of a plot, or of a tab's plots side by side (one a classifier): a face's curves had been told
    from another's by their colour alone. An entry a face, named "#N" as its solid curve is on each plot; a click on it
    hides or shows the face's curves, solid and dashed, on every plot (the base class's click had hidden the solid
    curve of one plot alone, and left the dashed one showing)."""

    def __init__(self) -> None:
        super().__init__(MAX_TRACKS, _FaceSample)  # the faces on one row
        self.curves: dict[str, list[_FaceCurve]] = {}  # a face's solid curves, one a plot, by the face's name
        # the entries of faces that left, off the layout and hidden, relabelled for the next faces: a new LabelItem
        # (its HTML laid out) for every photo of a slideshow was much of a new face's cost
        self._spare_entries: list[tuple[pg.ItemSample, pg.LabelItem]] = []
        self.sigSampleClicked.connect(self._show_face)

    def addItem(self, item: _FaceCurve, name: str) -> None:  # noqa: N802
        """Called by each plot that has the legend, as a face's solid curve is added to it: one entry a face."""
        if name in self.curves:
            item.setVisible(self.curves[name][0].isVisible())  # a face hidden stays hidden on this plot too
        elif self._spare_entries:
            self.curves[name] = []
            self._reuse_entry(item, name)
        else:
            self.curves[name] = []
            super().addItem(item, name)
        self.curves[name].append(item)

    def _reuse_entry(self, item: _FaceCurve, name: str) -> None:
        """Adds the entry as the base class's addItem does, with a spare sample and label."""
        sample, label = self._spare_entries.pop()
        sample.item = item
        label.setText(name)
        sample.show()
        label.show()
        self.items.append((sample, label))
        self._addItemToLayout(sample, label)
        self.updateSize()

    def _spare_entry(self, name: str) -> None:
        """Takes the entry off as the base class's removeItem does, kept for the next face rather than closed."""
        for entry in self.items:
            if entry[1].text == name:
                self.items.remove(entry)
                for part in entry:
                    self.layout.removeItem(part)
                    part.hide()
                self._spare_entries.append(entry)
                self.updateSize()
                return

    def removeItem(self, item) -> None:  # noqa: N802
        """Called by each plot that has the legend, as a curve is taken off it: the entry goes with the face's last."""
        name = item.name() if isinstance(item, _FaceCurve) else None
        if name not in self.curves:
            super().removeItem(item)
            return
        curves = self.curves[name] = [c for c in self.curves[name] if c is not item]
        if not curves:
            del self.curves[name]
            self._spare_entry(name)
            return
        for sample, _ in self.items:  # the entry draws a curve still on a plot, with its visibility
            if sample.item is item:
                sample.item = curves[0]

    def _show_face(self, clicked: _FaceCurve) -> None:
        shown = clicked.isVisible()  # as the base class's click has just set it
        for curve in self.curves.get(clicked.name(), ()):
            for c in (curve, curve.filtered_twin):
                if c is not None:
                    c.setVisible(shown)


def _faces_legend(plot: pg.PlotItem) -> _FacesLegend:
    """The faces' legend of ``plot``, under its time axis, in the plot's own layout."""
    legend = _FacesLegend()
    plot.layout.addItem(legend, FACES_LEGEND_ROW, 1)
    plot.layout.setAlignment(legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
    plot.legend = legend
    return legend


class _PerClassifier(pg.GraphicsLayoutWidget):
    """A tab of plots, one a classifier, titled by its classifier alone, under one caption (the third was cut off
    under titles that each repeated the caption) and over one faces' legend: a legend of six faces under each plot
    (about 330 px on one row) had set each plot's least width, and cut off the third classifier's plots in a 1008 px
    window, the fourth's at 1366 px. The plots go in as many columns as fit the width, in rows, and where the rows
    do not fit the height a scroll bar reaches them: on one row, with four or five classifiers the plots past the
    right edge had not been drawn at all, with no scroll bar, at 784 px and at 1264."""

    _built = False  # pyqtgraph lays the view out (resizeEvent) before __init__ is through

    def __init__(self, caption: str):
        super().__init__()
        self.caption: pg.LabelItem = self.addLabel(caption, row=0, col=0)
        self.faces_legend = _FacesLegend()
        self.addItem(self.faces_legend, row=2, col=0)
        self.plots: list[pg.PlotItem] = []
        self._columns = 0
        self._need = 0.0  # the height the layout took when last fitted
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self._built = True

    def add_plot(self, title: str) -> pg.PlotItem:
        plot = pg.PlotItem(title=title)
        plot.setMinimumHeight(LEAST_PLOT_HEIGHT)
        self.plots.append(plot)
        self._columns = 0  # placed afresh
        self._fit()
        return plot

    def set_caption(self, text: str) -> None:
        self.caption.setText(text)
        self._fit()

    def refit(self) -> None:
        """Fits the tab again where its height changed (the faces' legend got its first entries)."""
        if self.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).height() != self._need:
            self._fit()

    def resizeEvent(self, ev) -> None:  # noqa: N802
        if not self._built or self.closed:
            super().resizeEvent(ev)
            return
        self._fit()

    def _fit(self) -> None:
        """Lays the tab out for its size: the plots in as many columns as fit the width, and the view as tall as
        its rows, with a scroll bar where that is taller than the tab."""
        width = self.width() - 2 * self.frameWidth()
        height = self.height() - 2 * self.frameWidth()
        need = self._arrange(width)
        scroll = need > height
        if scroll:  # the bar takes some of the width, which may take a column
            width -= self.style().pixelMetric(QStyle.PixelMetric.PM_ScrollBarExtent, None, self)
            need = self._arrange(width)
        self._need = need
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOn if scroll
                                        else Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.range = QRectF(0, 0, max(1, width), max(height, need))
        pg.GraphicsView.setRange(self, self.range, padding=0, disableAutoPixel=False)
        self.updateMatrix()

    def _arrange(self, width: float) -> float:
        """Puts the plots in as many columns as fit ``width`` (one at least), the caption (wrapped to the width)
        above them and the legend below; returns the height that takes."""
        grid = self.ci.layout
        left, _, right, _ = grid.getContentsMargins()
        room = width - left - right
        self._wrap_caption(room)
        columns = _columns(self.plots, room, grid.horizontalSpacing()) if self.plots else 1
        if columns != self._columns:
            self._columns = columns
            for i in reversed(range(grid.count())):  # the plots with the rest: each goes back where it now belongs
                grid.removeAt(i)
            grid.addItem(self.caption, 0, 0, 1, columns)
            for i, plot in enumerate(self.plots):
                grid.addItem(plot, 1 + i // columns, i % columns)
            grid.addItem(self.faces_legend, 1 + math.ceil(len(self.plots) / columns), 0, 1, columns)
            grid.setAlignment(self.faces_legend, Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            for column in range(columns):
                grid.setColumnStretchFactor(column, 1)
        return self.ci.effectiveSizeHint(Qt.SizeHint.MinimumSize).height()

    def _wrap_caption(self, room: float) -> None:
        """The caption on as many lines as ``room`` takes: on one, its least width had set the tab's."""
        text = self.caption.item
        text.setTextWidth(-1)
        if text.boundingRect().width() > room:
            text.setTextWidth(max(1.0, room))
        self.caption.updateMin()


def _columns(plots: list[pg.PlotItem], room: float, spacing: float) -> int:
    """How many columns of ``plots`` fit ``room``, each as wide as its widest plot needs; one at least."""
    least = [plot.effectiveSizeHint(Qt.SizeHint.MinimumSize).width() for plot in plots]
    for columns in range(len(plots), 1, -1):
        widths = [max(least[c::columns]) for c in range(columns)]
        if sum(widths) + spacing * (columns - 1) <= room:
            return columns
    return 1


class _Rolling:
    def __init__(self, n: int = MOST_POINTS):
        self.t: deque[float] = deque(maxlen=n)
        self.cols: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=n))

    def add(self, t: float, **values: float) -> None:
        self.t.append(t)
        for k, v in values.items():
            self.cols[k].append(v)

    def arrays(self, key: str) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(self.t, float), np.asarray(self.cols[key], float)

    def drop_before(self, lo: float) -> None:
        """Forgets the points before time ``lo`` (the oldest first: points come in time order)."""
        n = 0
        for t in self.t:
            if t >= lo:
                break
            n += 1
        for column in (self.t, *self.cols.values()):
            for _ in range(min(n, len(column))):
                column.popleft()


class PlotsPanel(QTabWidget):
    def __init__(self, parent=None, face_styles: FaceStyles | None = None):
        """``face_styles``: which colour and shape each face is drawn in, shared with the view's boxes (the window's
        ``DisplaySettings.face_styles``) so that a face's curves are in its box's colour; else the plots' own."""
        super().__init__(parent)
        self.face_styles = FaceStyles() if face_styles is None else face_styles
        self.t0: float | None = None
        self.now = 0.0
        self.tracks: dict[int, _Rolling] = {}
        self.last_seen: dict[int, float] = {}
        self.p_tracks: dict[tuple[int, str], _Rolling] = {}
        self.speed = _Rolling()
        self.classifiers: list[str] = []
        self.updates = 0  # how many refreshes drew data (tests look at this)
        self._changes = 0  # results added: what the face and speed tabs show moves with it
        self._drawn: tuple | None = None  # what the last draw showed (``_picture``): not drawn again while it is so

        self.ita_plot = self._plot(ITA_CAPTION, "ITA (°)")
        _faces_legend(self.ita_plot.getPlotItem())
        self.addTab(self.ita_plot, "Skin tone")
        # One plot per classifier: in one plot every classifier's focus curves had the same colours, with nothing
        # to tell them apart.
        self.p_widget = _PerClassifier(P_CAPTION)
        self.p_caption = self.p_widget.caption
        self.p_plots: dict[str, pg.PlotItem] = {}
        self.addTab(self.p_widget, "P(female)")
        self.focus_widget = _PerClassifier(FOCUS_CAPTION)
        self.focus_plots: dict[str, pg.PlotItem] = {}
        self.addTab(self.focus_widget, "CAM focus")
        self.hist_widget = pg.GraphicsLayoutWidget()
        self.hist_ita = self.hist_widget.addPlot(title=HIST_ITA_CAPTION)
        self.hist_p = self.hist_widget.addPlot(title="Session ΔP(female) per classifier (> 0 more female)")
        _legend_below(self.hist_widget, self.hist_p, col=1, columns=2)
        self.addTab(self.hist_widget, "Session Δ")
        self.speed_widget = pg.GraphicsLayoutWidget()
        self.fps_plot = self.speed_widget.addPlot(title="frames/s (processed and displayed)")
        self.stage_plot = self.speed_widget.addPlot(title="pipeline stage latency (ms)")
        self.lat_plot = self.speed_widget.addPlot(title="capture → display latency (ms)")
        _legend_below(self.speed_widget, self.fps_plot, col=0, columns=2)
        _legend_below(self.speed_widget, self.stage_plot, col=1, columns=4, colspan=2)  # 7 stages: two rows
        self.addTab(self.speed_widget, "Speed")
        for i in range(self.count()):  # a screen reader had announced each tab's plots as a nameless graphic
            self.widget(i).setAccessibleName(f"{self.tabText(i)} plots")
        for p in (self.fps_plot, self.stage_plot, self.lat_plot):
            _label_axis(p, "bottom", "time (s)")
            p.showGrid(x=True, y=True, alpha=0.2)
        self._curves: dict[tuple, pg.PlotDataItem] = {}
        self._curve_plots: dict[tuple, object] = {}  # the plot each curve is on, to take it off
        # faces' curves taken off their plots, by (id of the plot, filtered), for the next faces on that plot: at
        # most MAX_TRACKS each, as no more are on a plot at once
        self._spare_curves: dict[tuple[int, bool], list[_FaceCurve]] = defaultdict(list)
        self._hist: tuple = (None, None)  # the latest session histograms, to draw the Δ tab when it is raised
        self.currentChanged.connect(lambda _i: self.redraw())

    @staticmethod
    def _classifier_plot(widget: _PerClassifier, plots: dict, name: str) -> pg.PlotItem:
        if name not in plots:
            plot = widget.add_plot(html.escape(name))  # pyqtgraph's titles are HTML
            _label_axis(plot, "bottom", "time (s)")
            plot.setYRange(0, 1)
            plot.showGrid(x=True, y=True, alpha=0.2)
            plot.legend = widget.faces_legend  # a face's curve added to the plot gets its entry there
            plots[name] = plot
        return plots[name]

    @staticmethod
    def _plot(title: str, ylabel: str) -> pg.PlotWidget:
        w = pg.PlotWidget(title=title)
        _label_axis(w, "left", ylabel)
        _label_axis(w, "bottom", "time (s)")
        w.showGrid(x=True, y=True, alpha=0.2)
        return w

    def reset(self) -> None:
        self.t0 = None
        self._drawn = None  # its curves are emptied below
        self.tracks.clear(), self.last_seen.clear(), self.p_tracks.clear()
        self.speed = _Rolling()
        for key in [k for k in self._curves if k[0] in ("ita", "p")]:
            self._remove_curve(key)
        for curve in self._curves.values():
            curve.setData([], [])

    # --- data --------------------------------------------------------------------
    def add_result(self, result: FrameResult, display_latency_ms: float, fps_processed: float, fps_displayed: float) -> None:
        if self.t0 is None:
            self.t0 = result.timestamp
        self._changes += 1
        t = result.timestamp - self.t0
        self.now = t
        self.face_styles.see((face.track_id for face in result.faces), result.timestamp)
        for face in result.faces:
            tid = face.track_id
            o, f = face.original.skin, (face.filtered.skin if face.filtered else None)
            ita = o.ita if o.measurable else float("nan")
            ita_f = f.ita if (f is not None and f.measurable) else float("nan")
            self.tracks.setdefault(tid, _Rolling()).add(t, ita=ita, ita_f=ita_f)
            self.last_seen[tid] = t
            for name, out in face.original.classifiers.items():
                filt = face.filtered.classifiers.get(name) if face.filtered else None
                pf = filt.p_female if filt else float("nan")
                self.p_tracks.setdefault((tid, name), _Rolling()).add(
                    t, p=_p_before(face, name), p_f=pf, focus=_nan(out.cam_focus),
                    focus_f=_nan(filt.cam_focus if filt else None))
                if name not in self.classifiers:
                    self.classifiers.append(name)
        if result.faces:
            caption = P_CAPTION_REFERENCE if any(_p_reference(f) for f in result.faces) else P_CAPTION
            if self.p_caption.text != caption:
                self.p_widget.set_caption(caption)
        stages = {s: _nan(result.timings_ms.get(s)) for s in STAGES}
        self.speed.add(t, fps=fps_processed, fps_shown=fps_displayed, latency=display_latency_ms, **stages)
        self._prune(result)

    def _prune(self, result: FrameResult) -> None:
        """Keeps the points the plots can show: the last WINDOW_S of the speed's, and of the faces seen in it (every
        face ever seen had kept its points and hidden curves until a reset, 0.1 MB a face, each refresh slower). By
        time, not by count: a looped folder's photo comes round again with its id, and, dropped as one of more than a
        dozen, its curve had come back as a single dot."""
        lo = self.now - WINDOW_S
        self.speed.drop_before(lo)
        if any(s < lo for s in self.last_seen.values()):
            kept = {t for t, s in self.last_seen.items() if s >= lo}
            for tid in [t for t in self.last_seen if t not in kept]:
                del self.last_seen[tid]
                self.tracks.pop(tid, None)
            for key in [k for k in self.p_tracks if k[0] not in kept]:
                del self.p_tracks[key]
        for face in result.faces:  # the others' points are trimmed when they are seen again, or dropped
            if face.track_id in self.tracks:
                self.tracks[face.track_id].drop_before(lo)
                for name in face.original.classifiers:
                    self.p_tracks[(face.track_id, name)].drop_before(lo)

    # --- drawing -----------------------------------------------------------------
    def _curve(self, plot, key: tuple, **style) -> pg.PlotDataItem:
        if key not in self._curves:
            self._curves[key] = plot.plot([], [], **style)
            self._curve_plots[key] = plot
        return self._curves[key]

    def _face_curve(self, plot, key: tuple, track_id: int, filtered: bool) -> _FaceCurve:
        """A face's curve under ``key``, in the face's colour and shape (``face_styles``); the original one is named
        by its face, "#N", in the plot's legend."""
        style = self.face_styles.style(track_id)
        if key not in self._curves:
            name = None if filtered else f"#{track_id}"
            spare = self._spare_curves[(id(plot), filtered)]
            if spare:
                curve = spare.pop()
                curve.become(style, name)
            else:
                curve = _FaceCurve(style, filtered, name=name)
            plot.addItem(curve)
            self._curves[key], self._curve_plots[key] = curve, plot
        elif self._curves[key].style != style:
            self._curves[key].restyle(style)
        return self._curves[key]

    def _face_pair(self, plot, key: tuple, track_id: int,
                   suffixes: tuple[str, str]) -> tuple[_FaceCurve, _FaceCurve]:
        """A face's original and filtered curves on ``plot``, under ``key`` and each of ``suffixes``: the original's
        legend entry hides and shows both."""
        original = self._face_curve(plot, (*key, suffixes[0]), track_id, filtered=False)
        filtered = self._face_curve(plot, (*key, suffixes[1]), track_id, filtered=True)
        if original.filtered_twin is not filtered:
            original.filtered_twin = filtered
            filtered.setVisible(original.isVisible())
        return original, filtered

    def _remove_curve(self, key: tuple) -> None:
        """Takes the curve off its plot (its legend entry too), not only empties it."""
        curve, plot = self._curves.pop(key), self._curve_plots.pop(key)
        plot.removeItem(curve)
        if isinstance(curve, _FaceCurve):
            self._spare_curves[(id(plot), curve.filtered)].append(curve)

    def _visible_tracks(self) -> list[int]:
        """The MAX_TRACKS faces seen most recently within the last WINDOW_S."""
        recent = sorted(self.last_seen, key=self.last_seen.get, reverse=True)[:MAX_TRACKS]
        return [t for t in recent if self.now - self.last_seen[t] <= WINDOW_S]

    def redraw(self) -> None:
        self.refresh(*self._hist)

    def refresh(self, hist_ita: Histogram | np.ndarray | None = None,
                hist_p: dict[str, Histogram | np.ndarray] | None = None) -> None:
        """Draws the tab on screen where what it shows changed since it was last drawn. ``hist_ita`` and ``hist_p``:
        the session's histograms (``SessionStats.histograms_data``), or their values."""
        if hist_ita is not None or hist_p is not None:
            self._hist = (_histogram_of(hist_ita, ITA_BIN_WIDTH),
                          None if hist_p is None else {k: _histogram_of(v, P_BIN_WIDTH) for k, v in hist_p.items()})
        if self.t0 is None or not self._on_screen():
            return  # not marked drawn: the first tick on screen again draws what came meanwhile
        tab = self.currentWidget()
        visible_order = self._visible_tracks()
        picture = self._picture(tab, visible_order)
        if picture == self._drawn:
            return  # drawn as it is: paused, the source over, nothing new (twice a second, 21 ms of painting each)
        self._drawn = picture
        lo = self.now - WINDOW_S
        visible = set(visible_order)
        for key in [k for k in self._curves if k[0] in ("ita", "p") and k[1] not in visible]:  # faces that left
            self._remove_curve(key)
        if tab is self.ita_plot:
            self._draw_ita(visible, lo)
        elif tab is self.p_widget or tab is self.focus_widget:
            self._draw_p(visible, lo, focus=tab is self.focus_widget)
        elif tab is self.hist_widget:
            self._draw_hist(*self._hist)
        elif tab is self.speed_widget:
            self._draw_speed(lo)
        self.updates += 1

    def _on_screen(self) -> bool:
        """Whether the plots can be seen: not behind another dock tab (its visible region is empty), nor in a
        minimised window, which Qt counts as visible, its region too."""
        return not self.visibleRegion().isEmpty() and not self.window().isMinimized()

    def _picture(self, tab, visible: list[int]) -> tuple:
        """What the tab on screen shows depends on: the session's histograms for the Δ tab (the same objects while
        they are unchanged: a result without a Δ leaves them so); for the others the results added, and the faces'
        colours and shapes (the allocator is the view's too)."""
        if tab is self.hist_widget:
            return tab, self._hist
        return tab, self._changes, tuple(self.face_styles.style(tid) for tid in visible)

    def _draw_ita(self, visible: set[int], lo: float) -> None:
        for tid in visible:
            r = self.tracks[tid]
            t, y = r.arrays("ita")
            _, yf = r.arrays("ita_f")
            keep = t >= lo
            original, filtered = self._face_pair(self.ita_plot, ("ita", tid), tid, ("o", "f"))
            original.set_points(t[keep], y[keep])
            filtered.set_points(t[keep], yf[keep])

    def _draw_p(self, visible: set[int], lo: float, focus: bool) -> None:
        """P(female) per classifier, or (``focus``) the share of each CAM on the face."""
        for name in self.classifiers:
            plot = (self._classifier_plot(self.focus_widget, self.focus_plots, name) if focus
                    else self._classifier_plot(self.p_widget, self.p_plots, name))
            for tid in visible:
                r = self.p_tracks.get((tid, name))
                if r is None:
                    continue
                t = np.asarray(r.t, float)
                keep = t >= lo
                # (column, curve key suffix): original solid, filtered dashed
                series = (("focus", "focus"), ("focus_f", "focus_f")) if focus else (("p", "o"), ("p_f", "f"))
                columns, suffixes = zip(*series)
                for curve, column in zip(self._face_pair(plot, ("p", tid, name), tid, suffixes), columns):
                    _, y = r.arrays(column)
                    curve.set_points(t[keep], y[keep])
        (self.focus_widget if focus else self.p_widget).refit()

    def _draw_hist(self, hist_ita: Histogram | None, hist_p: dict[str, Histogram] | None) -> None:
        """Draws the session's data alone: a histogram the data no longer has (the session restarted for another
        filter, a classifier it has not seen) is taken off the plot, not left showing the last session's values."""
        drawn: set[tuple] = set()
        # bars of both signs in colours of neither: the sign colours had painted negative ΔITA "lighter" orange, and
        # named classifiers "more female" pink and "darker" blue
        if hist_ita is not None:
            drawn |= self._histogram(self.hist_ita, ("hist", "ita"), hist_ita, NEUTRAL)
        if hist_p is not None:
            for i, (name, counts) in enumerate(sorted(hist_p.items())):
                # legend entries are HTML: a model named "age<30 vs age>60" had shown as "age60"
                drawn |= self._histogram(self.hist_p, ("hist", "p", name), counts, series_colour(i),
                                         name=html.escape(name))
        for key in [k for k in self._curves if k[0] == "hist" and k not in drawn]:
            self._remove_curve(key)  # its legend entry too

    def _draw_speed(self, lo: float) -> None:
        t = np.asarray(self.speed.t, float)
        keep = t >= lo
        for key, label, colour in (("fps", "processed", "#aed581"), ("fps_shown", "displayed", "#4fc3f7")):
            _, y = self.speed.arrays(key)
            self._curve(self.fps_plot, ("speed", key), pen=pg.mkPen(colour, width=2), name=label).setData(t[keep], y[keep], connect="finite")
        for stage, colour in zip(STAGES, STAGE_COLOURS):
            _, y = self.speed.arrays(stage)
            if np.isfinite(y).any():
                self._curve(self.stage_plot, ("stage", stage), pen=pg.mkPen(colour, width=2 if stage == "total" else 1),
                            name=stage).setData(t[keep], y[keep], connect="finite")
        _, y = self.speed.arrays("latency")
        self._curve(self.lat_plot, ("speed", "latency"), pen=pg.mkPen("#ffffff", width=2)).setData(t[keep], y[keep], connect="finite")

    def _histogram(self, plot, key: tuple, histogram: Histogram, colour, name: str | None = None) -> set[tuple]:
        """Draws ``histogram`` under ``key``; returns {key}, or nothing where it has no values to draw."""
        bins = histogram.bins()
        if bins is None:
            return set()
        edges, counts = bins
        fill = pg.mkColor(colour)
        fill.setAlpha(90)
        self._curve(plot, key, stepMode="center", fillLevel=0, brush=fill, pen=pg.mkPen(colour), name=name).setData(edges, counts)
        return {key}
