"""Draws a FrameResult: the frame (original / filtered / side by side / split), CAM overlays, boxes, labels.

The only image work here is for display: normalising a raw CAM per face
(positive part over its maximum), colouring it and blending it in. Every
number shown comes from the FrameResult as the pipeline measured it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from functools import lru_cache

import cv2
import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontInfo, QFontMetricsF, QImage, QPainter, QPen

from inference.faces import blend_into_frame, paste_back
from inference.results import FaceResult, FrameResult
from inference.skin import shift_word
from inference.strict_json import as_printed

VIEW_MODES = ("original", "filtered", "side by side", "split")
CAM_FLOOR, CAM_RAMP = 0.2, 0.5  # display only: where a normalised CAM starts to show, and how fast it reaches full opacity

# Sign colours (kept in one place; the help overlay shows the legend).
LIGHTER = QColor(255, 190, 80)  # the filter made the skin lighter (skin.shift_word): ΔITA > 0 made by L*
DARKER = QColor(100, 165, 255)  # darker
# What a positive ΔITA says, in every caption: ITA = atan((L* − 50)/b*) rises with L* and moves with b* too (less
# yellow raises it on light skin, lowers it on dark), so "+ = lighter" had named a yellow tint's fall of ITA "darker"
HIGHER_ITA = "higher ITA: L* rose, or b* (yellowness) moved it"
MORE_FEMALE = QColor(255, 120, 200)  # ΔP(female) > 0
LESS_FEMALE = QColor(80, 215, 190)  # ΔP(female) < 0
NEUTRAL = QColor(200, 200, 200)  # no sign, or a ΔITA lightness did not make (shift_colour)
TEXT = QColor(240, 240, 240)
MUTED = QColor(160, 160, 160)
# Under every label and status line. At alpha 200 a white wall showed through: the backdrop came out (67, 67, 71) and
# MUTED, DARKER, MORE_FEMALE and the violet face colour fell to 3.2–4.2:1, under WCAG's 4.5:1 for text; at 235 each
# text colour here keeps 5:1 over a white frame and a black one (the help overlay's opacity)
BACKDROP = QColor(15, 15, 20, 235)
# Colours that name a thing (a face, a classifier), not a direction: hues the four sign colours leave free (red,
# olive, violet, green, yellow), each at least 20 CIEDE2000 from every sign colour. The faces' had been the sign
# colours' near twins (orange 2.5 from LIGHTER, pink 10 from MORE_FEMALE), so "#2 ΔITA +9.1°" read as one orange
# run. Neighbours in the list differ most: faces seen together have consecutive ids.
TRACK_COLOURS = [QColor(c) for c in ("#ff5a4a", "#99aa00", "#aa77ff", "#11ff55", "#eeff44", "#2eaa3a")]


def series_colour(index: int) -> QColor:
    """The colour of the ``index``-th of a set of things drawn together (faces, classifiers)."""
    return TRACK_COLOURS[index % len(TRACK_COLOURS)]


def track_colour(track_id: int) -> QColor:
    return series_colour(track_id)


@dataclass
class DisplaySettings:
    view: str = "side by side"
    show_cam: bool = True
    cam_model: str | None = None  # which classifier's CAM; None: the first
    cam_opacity: float = 0.45
    split: float = 0.5  # split view: share of the width showing the original
    show_labels: bool = True


# --- numpy: the composed frame ------------------------------------------------
def normalise_cam(cam: np.ndarray) -> np.ndarray:
    """Display only: the positive part of a raw CAM over its own maximum (0..1); zeros when none is positive."""
    pos = np.clip(np.nan_to_num(np.asarray(cam, np.float32)), 0, None)
    m = float(pos.max()) if pos.size else 0.0
    return pos / m if m > 0 else np.zeros_like(pos)


def cam_overlay(frame_bgr: np.ndarray, cam: np.ndarray, crop_to_frame: np.ndarray, opacity: float) -> np.ndarray:
    """Blend a colour-mapped CAM (crop coordinates) into the frame through the face's crop→frame affine."""
    norm = normalise_cam(cam)
    colour = cv2.applyColorMap((norm * 255).astype(np.uint8), cv2.COLORMAP_JET)
    # weak evidence stays see-through: the colour fades in between 20% and 70% of the face's maximum
    alpha = np.clip((norm - CAM_FLOOR) / CAM_RAMP, 0, 1) * opacity
    return blend_into_frame(frame_bgr, colour, alpha, crop_to_frame)


def filtered_frame(result: FrameResult) -> np.ndarray:
    """The frame with every filtered face crop pasted back (feathered)."""
    out = result.frame
    for face in result.faces:
        if face.filtered is not None:
            out = paste_back(out, cv2.cvtColor(face.filtered.crop, cv2.COLOR_RGB2BGR), face.crop_to_frame)
    return out


def cam_model_of(face: FaceResult, wanted: str | None) -> str | None:
    """The classifier whose CAM and numbers are shown for ``face``: ``wanted`` where the face has it, else its first."""
    names = list(face.original.classifiers)
    if not names:
        return None
    return wanted if wanted in names else names[0]


def with_cams(frame: np.ndarray, result: FrameResult, s: DisplaySettings, filtered: bool) -> np.ndarray:
    if not s.show_cam:
        return frame
    for face in result.faces:
        name = cam_model_of(face, s.cam_model)
        view = face.filtered if filtered else face.original
        if name is None or view is None or name not in view.classifiers:
            continue
        frame = cam_overlay(frame, view.classifiers[name].cam, face.crop_to_frame, s.cam_opacity)
    return frame


@dataclass
class Panel:
    x0: int  # left edge in the composed image
    width: int
    kind: str  # "original" | "filtered" | "split"
    title: str


def has_filtered(result: FrameResult) -> bool:
    return result.filter_name is not None and any(f.filtered is not None for f in result.faces)


def compose(result: FrameResult, s: DisplaySettings) -> tuple[np.ndarray, list[Panel]]:
    """The BGR image to show and where its panels are."""
    h, w = result.frame.shape[:2]
    orig = with_cams(result.frame, result, s, filtered=False)
    filt_name = result.filter_name or "none"
    if s.view == "original" or not has_filtered(result):
        title = ("original" if s.view == "original" else "original (no face to filter)" if result.filter_name
                 else "original (no filter active)")
        return orig, [Panel(0, w, "original", title)]
    filt = with_cams(filtered_frame(result), result, s, filtered=True)
    if s.view == "filtered":
        return filt, [Panel(0, w, "filtered", f"filtered: {filt_name}")]
    if s.view == "side by side":
        gap = max(2, w // 100)
        canvas = np.zeros((h, 2 * w + gap, 3), np.uint8)
        canvas[:, :w], canvas[:, w + gap:] = orig, filt
        return canvas, [Panel(0, w, "original", "original"), Panel(w + gap, w, "filtered", f"filtered: {filt_name}")]
    cut = int(round(np.clip(s.split, 0, 1) * w))
    out = filt.copy()
    out[:, :cut] = orig[:, :cut]
    return out, [Panel(0, w, "split", f"◀ original | filtered: {filt_name} ▶")]


# --- text: what each face's label says -------------------------------------------
Segment = tuple[str, QColor]


def signed(v: float, digits: int, unit: str = "") -> str:
    """With its sign and a true minus; rounded first, so that a value shown as zero has no minus ("−0.0")."""
    return f"{as_printed(v, digits):+.{digits}f}{unit}".replace("-", "−")


def _sign_colour(d: float, up: QColor, down: QColor) -> QColor:
    return up if d > 0 else down if d < 0 else NEUTRAL


ITA_DIGITS = 1  # a face's ΔITA is shown to 0.1°


def skin_shift_word(face: FaceResult) -> str:
    """What the face's skin did, in inference's words (``skin.shift_word``); '' where a side was not measured. By
    ΔITA's sign alone a yellow tint that raised L* had read "darker", and a dark face whose ΔITA b* made "lighter"."""
    before, after = face.original.skin, (face.filtered.skin if face.filtered else None)
    if not (before.measurable and after is not None and after.measurable):
        return ""
    return shift_word(before, after, ITA_DIGITS)


def shift_colour(word: str) -> QColor:
    """The colour of a face's ΔITA by its word: a ΔITA that lightness did not make ("higher ITA", "lower ITA": a
    yellow tint's) is in neither lighter's colour nor darker's, which the legend names."""
    return {"lighter": LIGHTER, "darker": DARKER}.get(word, NEUTRAL)


def skin_lines(face: FaceResult) -> list[list[Segment]]:
    o, f, shift = face.original.skin, (face.filtered.skin if face.filtered else None), face.skin_shift
    if not o.measurable:
        return [[("skin tone: not measurable", MUTED)]]
    if f is None:
        return [[(f"ITA {o.ita:.1f}°  ·  Monk {o.mst}  ·  {o.ita_category}", TEXT)]]
    if not f.measurable:
        return [[(f"ITA {o.ita:.1f}° → not measurable", TEXT)], [(f"Monk {o.mst} → ?", TEXT)]]
    ita: list[Segment] = [(f"ITA {o.ita:.1f}° → {f.ita:.1f}°  ", TEXT)]
    if shift is not None and shift.delta_ita is not None and not math.isnan(shift.delta_ita):
        word = skin_shift_word(face)
        ita.append((f"Δ {signed(shift.delta_ita, ITA_DIGITS, '°')} {word}", shift_colour(word)))
    mst: list[Segment] = [(f"Monk {o.mst} → {f.mst}  ", TEXT)]
    if shift is not None and shift.delta_mst is not None:
        dm = shift.delta_mst
        mst.append((f"({signed(dm, 0)} {'lighter' if dm > 0 else 'darker' if dm < 0 else 'same'})" if dm else "(same)",
                    _sign_colour(dm, LIGHTER, DARKER)))
    return [ita, mst]


def _finite(x: float | None) -> bool:
    """A CAM without positive mass has no focus (None); a NaN CAM's is NaN, which had read "nan%"."""
    return x is not None and math.isfinite(x)


def classifier_lines(face: FaceResult) -> list[list[Segment]]:
    lines = []
    for name, out in face.original.classifiers.items():
        line: list[Segment] = [(f"{name}  ", MUTED)]
        if not out.predicted:  # probabilities not finite: a model whose training diverged
            line.append(("no finite prediction", MUTED))
        elif math.isnan(out.p_female):
            line.append((f"predicts {out.predicted}", TEXT))
        elif face.filtered is not None and name in face.filtered.classifiers:
            after = face.filtered.classifiers[name].p_female
            line.append((f"P(female) {out.p_female:.2f} → {after:.2f}  ", TEXT))
            d = face.delta_p_female.get(name)
            if d is not None and not math.isnan(d):
                d = as_printed(d, 2)
                line.append((f"Δ {signed(d, 2)}", _sign_colour(d, MORE_FEMALE, LESS_FEMALE)))
                ref = face.reference.get(name)
                if ref is not None and f"{ref.p_female:.2f}" != f"{out.p_female:.2f}":
                    # Δ is from the face resized to the filter's size and back (the filter's own doing): where that
                    # differs from the face as seen, the label's two numbers did not make its Δ
                    line.append((f" from {ref.p_female:.2f} resized", MUTED))
        else:
            line.append((f"P(female) {out.p_female:.2f}", TEXT))
        if _finite(out.cam_focus):  # share of positive CAM mass on the face ellipse (inference.pipeline.cam_focus)
            after = face.filtered.classifiers[name].cam_focus if face.filtered and name in face.filtered.classifiers else None
            focus = f"  CAM on face {out.cam_focus:.0%}" + (f" → {after:.0%}" if _finite(after) else "")
            line.append((focus, MUTED))
        lines.append(line)
    return lines


def face_lines(face: FaceResult) -> list[list[Segment]]:
    return [[(f"face #{face.track_id}", track_colour(face.track_id))], *skin_lines(face), *classifier_lines(face)]


def plain_text(lines: list[list[Segment]]) -> str:
    """A label's lines as text, one a line, without their colours: what a screen reader is given of it."""
    return "\n".join("".join(text for text, _ in line).strip() for line in lines)


def compact_lines(face: FaceResult, cam_model: str | None) -> list[list[Segment]]:
    """One line for a crowded frame: the face, its skin shift and the shown classifier's ΔP(female) (or P), named:
    the shift read "ITA +7.2°" beside a face whose ITA was −4.0°, and the ΔP did not say whose it was. The shift has
    its word, as in the full label: by its colour alone "lighter" and "higher ITA" were one for a reader who cannot
    tell orange from grey."""
    line: list[Segment] = [(f"#{face.track_id} ", track_colour(face.track_id))]
    shift = face.skin_shift
    if shift is not None and shift.delta_ita is not None and not math.isnan(shift.delta_ita):
        word = skin_shift_word(face)
        line.append((f"ΔITA {signed(shift.delta_ita, ITA_DIGITS, '°')}{' ' + word if word else ''}  ",
                     shift_colour(word)))
    name = cam_model_of(face, cam_model)
    if name is not None:
        dp = face.delta_p_female.get(name)
        if dp is not None and not math.isnan(dp):
            dp = as_printed(dp, 2)
            line.append((f"ΔP(f) {signed(dp, 2)}", _sign_colour(dp, MORE_FEMALE, LESS_FEMALE)))
        elif not math.isnan(face.original.classifiers[name].p_female):
            line.append((f"P(f) {face.original.classifiers[name].p_female:.2f}", TEXT))
        else:
            return [line]
        line.append((f" {name}", MUTED))
    return [line]


# --- Qt: the composed frame plus boxes and labels, fitted into a target size ------------
def to_qimage(bgr: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


def _label_rect(box: QRectF, size: tuple[float, float], bounds: QRectF, taken: list[QRectF],
                own: QRectF | None = None, frame: QRectF | None = None) -> QRectF | None:
    """Where a face's label goes: beside, below or above its box, or inside ``own`` (its face in the original
    panel), if free, else the free spot nearest to the box's top or bottom edge; None where nothing is free. Taken
    are the other faces' boxes (in every panel), the titles and the labels placed before: a label clamped over
    whatever was there hid the filtered faces it describes. ``frame``: where the frame is, for a box reaching past
    its edges: placed by the part of it that shows."""
    w, h = size
    if w > bounds.width() or h > bounds.height():
        return None
    box, inner = _showing(box, frame), _showing(own if own is not None else box, frame)
    near = [(box.right() + 6, box.top()), (box.left() - w - 6, box.top()), (box.left(), box.bottom() + 4),
            (box.left(), box.top() - h - 4), (inner.left() + 4, inner.top() + 4)]
    # a spot past the view's edge is moved onto the frame, not dropped: for a face filling the frame every spot was
    # past it, and the label went to the free spot nearest the face's centre, over its eyes
    onto = frame if frame is not None and w <= frame.width() and h <= frame.height() else bounds
    near = [spot if _within(spot, size, bounds) else _clamped(spot, size, onto) for spot in near]
    xs = np.arange(bounds.left(), bounds.right() - w + 1, max(8.0, w / 3))
    ys = np.arange(bounds.top(), bounds.bottom() - h + 1, max(8.0, h / 3))
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    grid = grid[np.argsort(_from_edges(grid, box, size), kind="stable")]
    spots = np.concatenate([np.array(near, float), grid])
    rects = np.column_stack([spots, spots + (w, h)])  # x0, y0, x1, y1
    inside = ((rects[:, 0] >= bounds.left()) & (rects[:, 1] >= bounds.top()) & (rects[:, 2] <= bounds.right())
              & (rects[:, 3] <= bounds.bottom()))
    if taken:
        t = np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in taken])
        hit = ((rects[:, None, 0] < t[None, :, 2]) & (rects[:, None, 2] > t[None, :, 0])
               & (rects[:, None, 1] < t[None, :, 3]) & (rects[:, None, 3] > t[None, :, 1])).any(1)
        inside &= ~hit
    free = np.flatnonzero(inside)
    if not len(free):
        return None
    x, y = spots[free[0]]
    return QRectF(float(x), float(y), w, h)


def _within(spot: tuple[float, float], size: tuple[float, float], area: QRectF) -> bool:
    """Whether a label of ``size`` at ``spot`` (its top-left corner) lies inside ``area``."""
    (x, y), (w, h) = spot, size
    return area.left() <= x and x + w <= area.right() and area.top() <= y and y + h <= area.bottom()


def _clamped(spot: tuple[float, float], size: tuple[float, float], area: QRectF) -> tuple[float, float]:
    """The spot nearest to ``spot`` where a label of ``size`` lies inside ``area`` (which it fits)."""
    (x, y), (w, h) = spot, size
    return min(max(x, area.left()), area.right() - w), min(max(y, area.top()), area.bottom() - h)


def _showing(box: QRectF, frame: QRectF | None) -> QRectF:
    """The part of ``box`` on the frame (all of it where there is no frame, or where it lies off the frame)."""
    part = box.intersected(frame) if frame is not None else box
    return part if not part.isEmpty() else box


def _from_edges(spots: np.ndarray, box: QRectF, size: tuple[float, float]) -> np.ndarray:
    """How far labels at ``spots`` (top-left corners) lie from the box's top or bottom edge, the nearer one,
    centred on it (squared). Nearest the box's centre, as they were, a face filling the frame had its label over
    its eyes."""
    w, h = size
    middle_x, middle_y = spots[:, 0] + w / 2, spots[:, 1] + h / 2
    to_edge = np.minimum(np.abs(middle_y - box.top()), np.abs(middle_y - box.bottom()))
    return (middle_x - box.center().x()) ** 2 + to_edge ** 2


BACKDROP_PAD = 6  # logical pixels between a line's backdrop and its text, left and right


def backdrop_of(rect: QRectF, text: str, fm: QFontMetricsF) -> tuple[str, QRectF]:
    """``text`` elided to fit one line of ``rect``, and the backdrop it is drawn on."""
    text = fm.elidedText(text, Qt.TextElideMode.ElideRight, rect.width() - 2 * BACKDROP_PAD)
    return text, QRectF(rect.left(), rect.top(), fm.horizontalAdvance(text) + 2 * BACKDROP_PAD, fm.lineSpacing() + 6)


def draw_text_on_backdrop(p: QPainter, rect: QRectF, text: str, colour: QColor, fm: QFontMetricsF) -> QRectF:
    """One line on a dark backdrop, elided to fit: read over any image (plain text vanished on busy ones). Returns
    the backdrop drawn."""
    text, backdrop = backdrop_of(rect, text, fm)
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(BACKDROP)
    p.drawRoundedRect(backdrop, 4, 4)
    p.setPen(colour)
    p.drawText(QPointF(rect.left() + BACKDROP_PAD, rect.top() + 3 + fm.ascent()), text)
    return backdrop


def draw_label(p: QPainter, rect: QRectF, lines: list[list[Segment]], fm: QFontMetricsF) -> None:
    p.setPen(Qt.PenStyle.NoPen)
    p.setBrush(BACKDROP)
    p.drawRoundedRect(rect, 4, 4)
    y = rect.top() + 4 + fm.ascent()
    for line in lines:
        x = rect.left() + 6
        for text, colour in line:
            p.setPen(colour)
            p.drawText(QPointF(x, y), text)
            x += fm.horizontalAdvance(text)
        y += fm.lineSpacing()


def for_display(result: FrameResult, s: DisplaySettings, width: int, height: int) -> FrameResult:
    """``result`` with its frame shrunk to about the size it is shown at, and every face's box and crop→frame
    affine with it. Composing a 12-megapixel photo for a 1,500 px window cost 0.3 s a settings change on the GUI
    thread, and an 8,000 px one 4.8 s; the CAM blends and paste-backs need not run on pixels nobody sees."""
    h, w = result.frame.shape[:2]
    panels = 2 if s.view == "side by side" and has_filtered(result) else 1
    f = min(width / (panels * w), height / h)
    if f >= 0.75:  # close to the frame's own size: not worth a resampling
        return result
    frame = cv2.resize(result.frame, (max(1, round(w * f)), max(1, round(h * f))), interpolation=cv2.INTER_AREA)
    fx, fy = frame.shape[1] / w, frame.shape[0] / h  # what the rounding to whole pixels made of f, per axis
    faces = tuple(replace(face, box=_resized_box(face.box, fx, fy),
                          crop_to_frame=resized_affine(face.crop_to_frame, fx, fy)) for face in result.faces)
    return replace(result, frame=frame, faces=faces)


def _resized_box(box: tuple[int, int, int, int], fx: float, fy: float) -> tuple[int, int, int, int]:
    x, y, w, h = box  # edges, not pixel centres: edge X is at X·f in the resized frame
    return round(x * fx), round(y * fy), round(w * fx), round(h * fy)


def resized_affine(crop_to_frame: np.ndarray, fx: float, fy: float) -> np.ndarray:
    """A crop→frame affine for the frame resized by (fx, fy) with ``cv2.resize``, which aligns pixel centres (frame
    pixel X lands at (X + ½)·f − ½), as ``inference.faces.centre_aligned`` crops do: scaled by f alone, the CAM and
    the pasted filtered face sat (1 − f)/2 shown pixels down and to the right of the face they belong to."""
    out = np.asarray(crop_to_frame, np.float64).copy()
    out[0] *= fx
    out[0, 2] += (fx - 1) / 2
    out[1] *= fy
    out[1, 2] += (fy - 1) / 2
    return out


@dataclass(frozen=True)
class Composed:
    """A frame composed off the GUI thread, with the settings and the view size it was composed for."""

    result: FrameResult
    settings: DisplaySettings
    size: tuple[int, int]
    shown: FrameResult  # ``result`` at the size it was composed at (boxes in the image's pixels)
    image: np.ndarray
    panels: list[Panel]
    dpr: float = 1.0  # the screen's device pixels per logical pixel it was composed for

    @classmethod
    def of(cls, result: FrameResult, s: DisplaySettings, size: tuple[int, int], dpr: float = 1.0) -> Composed:
        snapshot = replace(s)  # the GUI may change its settings while this is composed
        shown = for_display(result, snapshot, *_frame_area(*_device(size, dpr)))
        return cls(result, snapshot, size, shown, *compose(shown, snapshot), dpr=dpr)

    def fits(self, result: FrameResult, s: DisplaySettings, size: tuple[int, int], dpr: float = 1.0) -> bool:
        return self.result is result and self.settings == s and self.size == size and self.dpr == dpr


def _device(size: tuple[int, int], dpr: float) -> tuple[int, int]:
    return max(1, round(size[0] * dpr)), max(1, round(size[1] * dpr))


VIEW_FONT_PT = 9.5  # the smallest the view's text is drawn at: the size it had been fixed at


def view_font() -> QFont:
    """The font of everything written over the view: titles, labels, status lines. The application's, the user's
    choice, at VIEW_FONT_PT where that is smaller: fixed at 9.5 pt, the labels had stayed small under a 24 pt
    application font."""
    font = QFont()  # the application's
    font.setPointSizeF(max(VIEW_FONT_PT, QFontInfo(font).pointSizeF()))
    return font


def _title_height() -> float:
    return _row_height(view_font().toString())


@lru_cache(maxsize=4)  # asked for every frame the worker composes; by the font, which follows the application's
def _row_height(font: str) -> float:
    """A row of one line in ``font`` (``QFont.toString``) on its backdrop."""
    described = QFont()
    described.fromString(font)
    return QFontMetricsF(described).lineSpacing() + 6


def _note_height() -> float:
    """The row under the frame that a note takes: its backdrop and a margin, so no face box's edge touches it."""
    return _title_height() + 6


def _title_row_gap(titles: list[QRectF], bottom: float, width: float) -> QRectF | None:
    """The widest stretch of the titles' row (ending at ``bottom``, the frame's top) right of a title: a line there
    covers no face. None where the titles leave no room."""
    row = _title_height()
    edges = sorted((t.left(), t.right()) for t in titles)
    gaps = [(right + 8, (edges[i + 1][0] if i + 1 < len(edges) else width) - 4) for i, (_, right) in enumerate(edges)]
    left, right = max(gaps, key=lambda g: g[1] - g[0], default=(0.0, 0.0))
    return QRectF(left, bottom - row, right - left, row) if right - left > 24 else None


def labels_hidden_text(hidden: int, faces: int, room: float, fm: QFontMetricsF) -> str | None:
    """The longest wording of the count of labels left out that fits ``room`` (a backdrop's width) whole; None
    where none does. Elided to the room, the one long wording had read "…not shown: no room beside th…"."""
    wordings = (f"{hidden} of {faces} labels hidden: no room beside their faces (a larger window or one view leaves "
                "more; a recording's rows hold every face)",
                f"{hidden} of {faces} labels hidden: no room beside their faces",
                f"{hidden} of {faces} labels hidden (no room)",
                f"{hidden}/{faces} labels hidden")
    return next((text for text in wordings if fm.horizontalAdvance(text) + 2 * BACKDROP_PAD <= room), None)


def _label_size(lines: list[list[Segment]], fm: QFontMetricsF) -> tuple[float, float]:
    return max(sum(fm.horizontalAdvance(t) for t, _ in line) for line in lines) + 12, fm.lineSpacing() * len(lines) + 8


def _place_label(face: FaceResult, box: QRectF, own: QRectF, bounds: QRectF, taken: list[QRectF], fm: QFontMetricsF,
                 cam_model: str | None, frame: QRectF) -> tuple[QRectF, list[list[Segment]]] | None:
    """Where a face's label goes, and its lines: the whole label clear of every face, its own too, else one line
    (a crowded frame) clear of them; only then over its own face in the original panel (a face that fills the frame
    leaves no room beside it), whole or on one line. Never over another face, a filtered face, a title or another
    label; None where nothing is free (counted by the caller). Allowed onto its own face at once, a full label had
    covered a quarter of its face though one line fitted beside it."""
    full, compact = face_lines(face), compact_lines(face, cam_model)
    others = [t for t in taken if t != own]
    for lines, avoid in ((full, taken), (compact, taken), (full, others), (compact, others)):
        if (rect := _label_rect(box, _label_size(lines, fm), bounds, avoid, own, frame)) is not None:
            return rect, lines
    return None


def _frame_area(width: int, height: int) -> tuple[int, int]:
    """Where the frame goes in a view of ``width``×``height``: below the panel titles."""
    return max(1, width), max(1, int(height - _title_height()))


def render(result: FrameResult | None, s: DisplaySettings, width: int, height: int, note: str = "",
           geometry: dict | None = None, ready: Composed | None = None, dpr: float = 1.0) -> QImage:
    """The whole view at ``width``×``height``: what the window shows and what a snapshot saves.

    ``ready`` is the frame already composed by a worker; it is used only if it was composed
    from this result with these settings, else the frame is composed here. ``dpr``: the screen's
    device pixels per logical pixel. The image has that many more pixels, and the frame keeps
    them: drawn at the logical size and scaled up by Qt, a HiDPI screen showed the frame and
    its labels blurred. Everything is drawn in logical units as before.
    """
    out = QImage(*_device((width, height), dpr), QImage.Format.Format_RGB32)
    out.setDevicePixelRatio(dpr)
    out.fill(QColor(24, 24, 28))
    p = QPainter(out)
    p.setRenderHint(QPainter.RenderHint.Antialiasing)
    p.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
    font = view_font()
    p.setFont(font)
    fm = QFontMetricsF(font)
    try:
        if result is None:
            p.setPen(MUTED)
            p.drawText(QRectF(0, 0, width, height), Qt.AlignmentFlag.AlignCenter, note or "waiting for frames…")
            return out
        if ready is not None and ready.fits(result, s, (width, height), dpr):
            result, image, panels = ready.shown, ready.image, ready.panels
        else:
            result = for_display(result, s, *_frame_area(*_device((width, height), dpr)))
            image, panels = compose(result, s)
        ih, iw = image.shape[:2]
        top = _title_height()  # room for panel titles
        bottom = _note_height() if note else 0  # and for the note, under the frame: over it, it had hidden a label
        scale = min(width / iw, max(1.0, height - top - bottom) / ih)
        # centred, as without a note, unless that puts the frame's foot under the note's row
        dx, dy = (width - iw * scale) / 2, min(top + (height - top - ih * scale) / 2, height - bottom - ih * scale)
        image_rect = QRectF(dx, dy, iw * scale, ih * scale)
        p.drawImage(image_rect, to_qimage(image))
        if geometry is not None:
            geometry["image_rect"] = QRectF(image_rect)
        bounds = QRectF(0, top, width, height - top)
        taken: list[QRectF] = []  # what a label must not cover: titles, face boxes, labels placed before it
        for panel in panels:
            p.setPen(MUTED)
            p.drawText(QPointF(dx + panel.x0 * scale + 4, dy - 5), panel.title)
            taken.append(QRectF(dx + panel.x0 * scale + 2, dy - 5 - fm.ascent(), fm.horizontalAdvance(panel.title) + 4,
                                fm.lineSpacing()))
        # the line that counts the labels left out goes in the titles' row, kept for it: over the frame's top-left
        # it had darkened the tops of the faces there
        not_shown = _title_row_gap(taken, math.floor(dy), width) if s.show_labels and result.faces else None
        if not_shown is not None:
            taken.append(not_shown)
        # the note's own row, under the frame: the labels may have the rest of it
        note_line = QRectF(4, height - fm.lineSpacing() - 10, width - 8, fm.lineSpacing() + 6)
        if note:
            taken.append(backdrop_of(note_line, note, fm)[1])
        if panels[0].kind == "split":
            x = dx + s.split * panels[0].width * scale
            p.setPen(QPen(QColor(255, 255, 255, 220), 2))
            p.drawLine(QPointF(x, dy), QPointF(x, dy + ih * scale))
        for face in result.faces:
            colour = track_colour(face.track_id)
            x, y, bw, bh = face.box
            for i, panel in enumerate(panels):
                r = QRectF(dx + (panel.x0 + x) * scale, dy + y * scale, bw * scale, bh * scale)
                p.save()
                p.setClipRect(QRectF(dx + panel.x0 * scale, dy, panel.width * scale, ih * scale))
                p.setPen(QPen(colour, 2))
                p.setBrush(Qt.BrushStyle.NoBrush)
                p.drawRect(r.adjusted(1, 1, -1, -1))
                p.restore()
                taken.append(r)
        if not result.faces:
            draw_text_on_backdrop(p, QRectF(dx + 4, dy + 4, iw * scale - 8, fm.lineSpacing() + 6),
                                  "no face detected in this frame", TEXT, fm)
        hidden, placed, kept_clear = 0, [], list(taken)
        if s.show_labels:
            for face in result.faces:
                x, y, bw, bh = face.box
                box = QRectF(dx + x * scale, dy + y * scale, bw * scale, bh * scale)
                if len(panels) == 2:  # side by side: the label may sit between or beside the two faces
                    box = QRectF(box.left(), box.top(), (panels[1].x0 + x + bw) * scale + dx - box.left(), box.height())
                own = QRectF(dx + x * scale, dy + y * scale, bw * scale, bh * scale)  # its face in the original panel
                if (label := _place_label(face, box, own, bounds, taken, fm, s.cam_model, image_rect)) is None:
                    hidden += 1
                    continue
                rect, lines = label
                taken.append(rect)
                placed.append((rect, own))
                draw_label(p, rect, lines, fm)
        status: dict[str, QRectF] = {}  # where the two status lines were drawn, for the geometry
        status_text: dict[str, str] = {}  # and what they say
        count = (labels_hidden_text(hidden, len(result.faces), not_shown.width(), fm)
                 if hidden and not_shown is not None else None)
        if count is not None:
            status["not_shown"] = draw_text_on_backdrop(p, not_shown, count, MUTED, fm)
            status_text["not_shown"] = count
        if note:
            status["note"] = draw_text_on_backdrop(p, note_line, note, LIGHTER, fm)
        if geometry is not None:
            geometry["labels"], geometry["labels_hidden"], geometry["kept_clear"] = placed, hidden, kept_clear
            geometry["status"], geometry["status_text"] = status, status_text
            geometry["status_room"] = {"not_shown": not_shown} if not_shown is not None else {}
    finally:
        p.end()
    return out
