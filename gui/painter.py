"""Draws a FrameResult: the frame (original / filtered / side by side / split), CAM overlays, boxes, labels.

The only image work here is for display: normalising a raw CAM per face
(positive part over its maximum), colouring it and blending it in. Every
number shown comes from the FrameResult as the pipeline measured it.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
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
    """The colour of the ``index``-th of a set of things drawn together (classifiers)."""
    return TRACK_COLOURS[index % len(TRACK_COLOURS)]


# --- which colour and shape each face is drawn in -----------------------------------------------------------------
FACE_MARKERS = 6  # the shapes a face's curves are marked in on the plots: as many as plots.FACE_SYMBOLS has
PAIRS = len(TRACK_COLOURS) * FACE_MARKERS


@dataclass(frozen=True)
class FaceStyle:
    """A face's colour (its box, its label's number, its curves) and its shape on the plots (an index into
    ``plots.FACE_SYMBOLS``)."""

    colour: QColor
    marker: int


def _pair_style(pair: int) -> FaceStyle:
    return FaceStyle(TRACK_COLOURS[pair % len(TRACK_COLOURS)], pair // len(TRACK_COLOURS))


def preferred_pair(track_id: int) -> int:
    """The pair a face gets where no face on show or just gone holds it: the colour by the id as it was, the shape
    stepping on at each round of the colours, so that 36 consecutive ids have 36 pairs (both had come round every 6
    ids, and faces #2 and #8 had been drawn alike)."""
    colours, k = len(TRACK_COLOURS), track_id - 1
    return (k + k // colours) % FACE_MARKERS * colours + track_id % colours


def preferred_style(track_id: int) -> FaceStyle:
    """Face ``track_id``'s colour and shape where no other face on show has them (``FaceStyles``' first choice)."""
    return _pair_style(preferred_pair(track_id))


def track_colour(track_id: int) -> QColor:
    return preferred_style(track_id).colour


@dataclass
class FaceStyles:
    """Which colour and shape each face is drawn in, in the frame and on the plots alike: the faces on show at once
    each get a pair (colour, shape) none of the others has, the colours spread evenly over them, and a face keeps its
    pair while it is on show (and for ``keep_s`` after, should it come back). The pairs of the ``kept`` faces that
    left last, whose curves the plots still draw, go to new faces only where no other pair is free. By the id alone
    the colours and shapes came round every 6 ids: a crowd's churn put two faces 6 ids apart on the plots in one
    colour and one shape, and its frame had several boxes of each colour with nothing to tell them apart.

    Owned by whoever draws (the window's display settings, shared with the plots); updated with the faces of each
    frame drawn (``see``), on the GUI thread only: another thread draws with a ``copy`` of its own (a snapshot's)."""

    keep_s: float = 60.0  # as long as the plots draw a face that left (plots.WINDOW_S)
    kept: int = 6  # as many faces as the plots draw (plots.MAX_TRACKS)
    most: int = 256  # faces remembered at most: a crowd's churn starts hundreds of tracks a minute
    # track id → pair (colour index + colours × shape index); track id → when it was last on show; pair → when a
    # face on show last had it; the latest capture time seen
    _pairs: dict[int, int] = field(default_factory=dict, init=False, repr=False)
    _seen: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _held: dict[int, float] = field(default_factory=dict, init=False, repr=False)
    _now: float = field(default=-math.inf, init=False, repr=False)

    def copy(self) -> FaceStyles:
        """These styles as they are now, to draw with elsewhere: its ``see`` changes nothing of these. A snapshot's
        render on its own thread had changed the view's while the GUI thread drew (a KeyError in ``see``)."""
        twin = replace(self)  # the fields not given to __init__ start empty: filled with copies of these
        twin._pairs, twin._seen, twin._held = dict(self._pairs), dict(self._seen), dict(self._held)
        twin._now = self._now
        return twin

    def style(self, track_id: int) -> FaceStyle:
        """Face ``track_id``'s colour and shape: those it was given, or for a face not yet seen its first choice."""
        return _pair_style(self._pairs.get(track_id, preferred_pair(track_id)))

    def see(self, track_ids: Iterable[int], t: float) -> None:
        """The faces on show in a frame captured at ``t``: a new face gets a pair, a face back the one it had unless a
        face on show since holds it."""
        ids = sorted(set(track_ids))
        self._now = max(self._now, t)
        on_show = [0] * PAIRS  # faces on show holding each pair
        # those seen last keep their pairs first: a face back to find its pair on another face on show gets a new one
        known = sorted((i for i in ids if i in self._pairs), key=lambda i: (-self._seen[i], i))
        new = [i for i in ids if i not in self._pairs]
        for tid in known:
            if on_show[self._pairs[tid]]:
                new.append(tid)
            else:
                on_show[self._pairs[tid]] += 1
        kept = self._just_left(set(ids))
        for tid in sorted(new):
            self._pairs[tid] = pair = self._choose(tid, on_show, kept)
            on_show[pair] += 1
        for tid in ids:
            self._seen[tid] = self._held[self._pairs[tid]] = self._now
        self._forget()

    def _just_left(self, on_show: set[int]) -> set[int]:
        """The pairs of the ``kept`` faces that left last: the plots may still draw their curves."""
        gone = sorted((t for t in self._seen if t not in on_show), key=lambda t: -self._seen[t])[:self.kept]
        return {self._pairs[t] for t in gone}

    def _choose(self, track_id: int, on_show: list[int], kept: set[int]) -> int:
        """A new face's pair: one no face on show holds, nor a face just gone (``kept``), of the colour and then the
        shape least used on show; of those, the one its id prefers, else the one held longest ago."""
        colours = len(TRACK_COLOURS)
        by_colour, by_shape = [0] * colours, [0] * FACE_MARKERS
        for pair, n in enumerate(on_show):
            by_colour[pair % colours] += n
            by_shape[pair // colours] += n
        preferred = preferred_pair(track_id)
        return min(range(PAIRS), key=lambda p: (on_show[p], p in kept, by_colour[p % colours],
                                                by_shape[p // colours], p != preferred,
                                                self._held.get(p, -math.inf), p))

    def _forget(self) -> None:
        """Forgets the faces gone for ``keep_s``, and the longest gone past ``most``."""
        order = sorted(self._seen, key=lambda t: -self._seen[t])
        for tid in order[self.most:] + [t for t in order[:self.most] if self._now - self._seen[t] > self.keep_s]:
            del self._seen[tid], self._pairs[tid]


@dataclass
class DisplaySettings:
    view: str = "side by side"
    show_cam: bool = True
    cam_model: str | None = None  # which classifier's CAM; None: the first
    cam_opacity: float = 0.45
    split: float = 0.5  # split view: share of the width showing the original
    show_labels: bool = True
    # each face's colour and shape, kept from frame to frame: not a setting, and no part of a settings comparison;
    # the plots take it too (PlotsPanel(face_styles=...)) so that a face's curves are in its box's colour
    face_styles: FaceStyles = field(default_factory=FaceStyles, compare=False, repr=False)


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


def face_lines(face: FaceResult, colour: QColor | None = None) -> list[list[Segment]]:
    """A face's whole label; ``colour``: its box's (``FaceStyles``), else the one its id prefers."""
    colour = track_colour(face.track_id) if colour is None else colour
    return [[(f"face #{face.track_id}", colour)], *skin_lines(face), *classifier_lines(face)]


def plain_text(lines: list[list[Segment]]) -> str:
    """A label's lines as text, one a line, without their colours: what a screen reader is given of it."""
    return "\n".join("".join(text for text, _ in line).strip() for line in lines)


def compact_lines(face: FaceResult, cam_model: str | None, colour: QColor | None = None) -> list[list[Segment]]:
    """One line for a crowded frame: the face, its skin shift and the shown classifier's ΔP(female) (or P), named:
    the shift read "ITA +7.2°" beside a face whose ITA was −4.0°, and the ΔP did not say whose it was. The shift has
    its word, as in the full label: by its colour alone "lighter" and "higher ITA" were one for a reader who cannot
    tell orange from grey. ``colour``: as ``face_lines``'."""
    number, shift, p, name = _compact_parts(face, cam_model, colour)
    line = [number]
    if shift is not None:
        line.append((f"{shift[0]}{' ' + shift[1] if shift[1] else ''}  ", shift[2]))
    if p is not None:
        line += [p, (f" {name}", MUTED)]
    return [line]


def _compact_parts(face: FaceResult, cam_model: str | None, colour: QColor | None
                   ) -> tuple[Segment, tuple[str, str, QColor] | None, Segment | None, str | None]:
    """A one-line label's parts: its face's number; its ΔITA, the word for it and their colour; the shown
    classifier's ΔP(f) (or P(f)) and that classifier's name; None for a part the face has not."""
    number = (f"#{face.track_id} ", track_colour(face.track_id) if colour is None else colour)
    shift, ita = face.skin_shift, None
    if shift is not None and shift.delta_ita is not None and not math.isnan(shift.delta_ita):
        word = skin_shift_word(face)
        ita = (f"ΔITA {signed(shift.delta_ita, ITA_DIGITS, '°')}", word, shift_colour(word))
    name = cam_model_of(face, cam_model)
    p = None
    if name is not None:
        dp = face.delta_p_female.get(name)
        if dp is not None and not math.isnan(dp):
            dp = as_printed(dp, 2)
            p = (f"ΔP(f) {signed(dp, 2)}", _sign_colour(dp, MORE_FEMALE, LESS_FEMALE))
        elif not math.isnan(face.original.classifiers[name].p_female):
            p = (f"P(f) {face.original.classifiers[name].p_female:.2f}", TEXT)
    return number, ita, p, name if p is not None else None


def short_forms(face: FaceResult, cam_model: str | None, colour: QColor | None = None) -> list[list[list[Segment]]]:
    """The one-line label (``compact_lines``) shortened, longest first, for a face it leaves no room beside in a
    crowd (a 4×4 mosaic at 1200×700 had room for 1 label of 16 on one line): without the classifier's name (the
    count of labels hidden names it, ``labels_hidden_text``); then the figures alone, the ΔITA's word left to its
    colour (the legend names it); then those on two lines, narrow enough for the room between two faces. Each keeps
    the face's number and the names of its figures, as the one-line label has them. A form that reads as one before
    it (a face with no classifier, or no skin shift) is left out."""
    number, ita, p, _ = _compact_parts(face, cam_model, colour)
    tail = [p] if p is not None else []
    forms = []
    if ita is not None:
        text, word, shade = ita
        forms.append([[number, (f"{text}{' ' + word if word else ''}" + ("  " if tail else ""), shade), *tail]])
        forms.append([[number, (text + ("  " if tail else ""), shade), *tail]])
        if tail:
            forms.append([[number, (text, shade)], tail])
    elif tail:
        forms.append([[number, *tail]])
    distinct, seen = [], {plain_text(compact_lines(face, cam_model, colour))}
    for form in forms:
        if plain_text(form) not in seen:
            distinct.append(form)
            seen.add(plain_text(form))
    return distinct


# --- Qt: the composed frame plus boxes and labels, fitted into a target size ------------
def to_qimage(bgr: np.ndarray) -> QImage:
    rgb = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()


ADJACENT = 8.0  # logical px: a label this near its face's box reads as that face's without a line to it
LEAST_REACH = 40.0  # logical px: how far from its face a label may stand, at least (else its face's side)
LINE_TRIES = 32  # spots whose line to their face is checked at once
LEAST_LINE = ADJACENT / 2  # logical px: a line shorter than this reads as no line


@dataclass(frozen=True)
class LabelTarget:
    """The face a label is placed for: ``box``, where the spots beside it are taken from (its face, or side by side
    its two faces and the room between them); ``own``, its face in the original panel, which the label may cover as
    a last resort; ``faces``, its boxes as shown (x0, y0, x1, y1 rows, one a panel), near one of which the label
    stays; ``others``, the other faces' boxes as shown, which a label must not be as near to as to its own without
    a line to it. Of those in its colour alone, a shortened label in the room between two faces had stood 6 px from
    its own and 1 px from the next."""

    box: QRectF
    own: QRectF
    faces: np.ndarray
    others: np.ndarray

    def reach(self) -> float:
        """How far from its face (box edge to label edge) its label may stand: about the face's side. A label put
        wherever the view had room stood several faces away in a crowd, read as another face's."""
        sides = self.faces[:, 2:] - self.faces[:, :2]
        return max(LEAST_REACH, float(sides.max()))


def _rects_array(rects: Iterable[QRectF]) -> np.ndarray:
    return np.array([[r.left(), r.top(), r.right(), r.bottom()] for r in rects], float).reshape(-1, 4)


def _gap_each(rects: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """How far each of ``rects`` is from each of ``boxes`` (x0, y0, x1, y1 rows), 0 where they touch: rects × boxes."""
    dx = np.maximum(np.maximum(boxes[None, :, 0] - rects[:, None, 2], rects[:, None, 0] - boxes[None, :, 2]), 0)
    dy = np.maximum(np.maximum(boxes[None, :, 1] - rects[:, None, 3], rects[:, None, 1] - boxes[None, :, 3]), 0)
    return np.hypot(dx, dy)


def _gaps(rects: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """How far each of ``rects`` is from the nearest of ``boxes``; inf where there are none."""
    return _gap_each(rects, boxes).min(axis=1) if len(boxes) else np.full(len(rects), np.inf)


def _nearest_points(rects: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The ends of the shortest line from each of ``rects`` to the box on its row of ``boxes`` (x0, y0, x1, y1 rows):
    on each axis an edge of each, or where they overlap the middle of the overlap."""
    ends = []
    for lo, hi in ((0, 2), (1, 3)):
        before, after = rects[:, hi] < boxes[:, lo], boxes[:, hi] < rects[:, lo]
        middle = (np.maximum(rects[:, lo], boxes[:, lo]) + np.minimum(rects[:, hi], boxes[:, hi])) / 2
        ends.append((np.where(before, rects[:, hi], np.where(after, rects[:, lo], middle)),
                     np.where(before, boxes[:, lo], np.where(after, boxes[:, hi], middle))))
    (x0, x1), (y0, y1) = ends
    return np.column_stack([x0, y0, x1, y1])


def _crosses(lines: np.ndarray, rects: np.ndarray) -> np.ndarray:
    """Which of ``rects`` each of ``lines`` (x0, y0, x1, y1 rows) passes through the inside of (Liang–Barsky), lines ×
    rects: touching an edge is not crossing, as a label's line ends on its face's box. Worked out only for the pairs
    whose bounds meet: a crowd's labels shortened rather than hidden draw many more lines, most far from most spots."""
    inner = rects + (1, 1, -1, -1)
    low, high = np.minimum(lines[:, :2], lines[:, 2:]), np.maximum(lines[:, :2], lines[:, 2:])
    crossed = ((low[:, None, 0] <= inner[None, :, 2]) & (high[:, None, 0] >= inner[None, :, 0])
               & (low[:, None, 1] <= inner[None, :, 3]) & (high[:, None, 1] >= inner[None, :, 1]))
    i, j = np.nonzero(crossed)
    x0, y0, x1, y1 = (lines[i, k] for k in range(4))
    enter, leave = np.zeros(len(i)), np.ones(len(i))
    for p, q in ((x0 - x1, x0 - inner[j, 0]), (x1 - x0, inner[j, 2] - x0),
                 (y0 - y1, y0 - inner[j, 1]), (y1 - y0, inner[j, 3] - y0)):
        with np.errstate(divide="ignore", invalid="ignore"):
            t = q / p
        leave = np.where((p == 0) & (q < 0), -1.0, leave)  # parallel to this edge and outside it
        enter = np.where(p < 0, np.maximum(enter, t), enter)
        leave = np.where(p > 0, np.minimum(leave, t), leave)
    crossed[i, j] = enter < leave
    return crossed


def _lines_array(lines: Iterable[QLineF]) -> np.ndarray:
    return np.array([[line.x1(), line.y1(), line.x2(), line.y2()] for line in lines], float).reshape(-1, 4)


def _label_rect(target: LabelTarget, size: tuple[float, float], bounds: QRectF, taken: np.ndarray,
                frame: QRectF | None = None, lines: np.ndarray | None = None) -> tuple[QRectF, QLineF | None] | None:
    """Where a face's label goes, and the line that joins it to its face where it needs one: beside, below or above
    its box, or inside ``target.own`` (its face in the original panel), if free, else the free spot nearest its face,
    within ``target.reach()`` of it; None where nothing is free. A spot next to the face and nearer to it than to any
    other face's box is taken before one that needs a line, whose line crosses nothing taken. Taken (x0, y0,
    x1, y1 rows) are the other faces' boxes (in every panel), the titles and the labels placed before: a label
    clamped over whatever was there hid the filtered faces it describes; ``lines``, those placed before, which a
    label must not cover. ``frame``: where the frame is, for a box reaching past its edges: placed by the part of
    it that shows."""
    w, h = size
    if w > bounds.width() or h > bounds.height():
        return None
    box, inner = _showing(target.box, frame), _showing(target.own, frame)
    near = [(box.right() + 6, box.top()), (box.left() - w - 6, box.top()), (box.left(), box.bottom() + 4),
            (box.left(), box.top() - h - 4), (inner.left() + 4, inner.top() + 4)]
    # a spot past the view's edge is moved onto the frame, not dropped: for a face filling the frame every spot was
    # past it, and the label went to the free spot nearest the face's centre, over its eyes
    onto = frame if frame is not None and w <= frame.width() and h <= frame.height() else bounds
    near = [spot if _within(spot, size, bounds) else _clamped(spot, size, onto) for spot in near]
    faces, reach = target.faces, target.reach()
    xs = np.arange(bounds.left(), bounds.right() - w + 1, max(8.0, w / 3))
    ys = np.arange(bounds.top(), bounds.bottom() - h + 1, max(8.0, h / 3))
    # the spots within reach of the face alone: the whole view's had cost a crowd's hidden labels the most time
    xs = xs[(xs + w >= faces[:, 0].min() - reach) & (xs <= faces[:, 2].max() + reach)]
    ys = ys[(ys + h >= faces[:, 1].min() - reach) & (ys <= faces[:, 3].max() + reach)]
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2)
    spots = np.concatenate([np.array(near, float), grid])
    rects = np.column_stack([spots, spots + (w, h)])  # x0, y0, x1, y1
    mine = _gaps(rects, faces)
    keep = np.flatnonzero((rects[:, 0] >= bounds.left()) & (rects[:, 1] >= bounds.top())
                          & (rects[:, 2] <= bounds.right()) & (rects[:, 3] <= bounds.bottom()) & (mine <= reach))
    if len(taken):
        r = rects[keep]
        keep = keep[~((r[:, None, 0] < taken[None, :, 2]) & (r[:, None, 2] > taken[None, :, 0])
                      & (r[:, None, 1] < taken[None, :, 3]) & (r[:, None, 3] > taken[None, :, 1])).any(1)]
    if lines is not None and len(lines):  # a label over another's line had cut it off its face
        keep = keep[~_crosses(lines, rects[keep]).any(axis=0)]
    if not len(keep):
        return None
    # the spots beside the box first; then the grid nearest the face, and of those as near, nearest its top or bottom
    # edge's middle. The free spots alone are sorted: a crowd's labels, tried in several forms, had sorted whole grids
    first, rest = keep[keep < len(near)], keep[keep >= len(near)]
    keep = np.concatenate([first, rest[np.lexsort((_from_edges(spots[rest], box, size), mine[rest]))]])
    others = _gaps(rects[keep], target.others)
    plain = (mine[keep] <= ADJACENT) & (others > mine[keep])  # its face's without a line
    if plain.any():
        return QRectF(*spots[keep[np.argmax(plain)]], w, h), None
    keep = keep[mine[keep] >= LEAST_LINE]
    for start in range(0, len(keep), LINE_TRIES):  # the nearest first: most find one in the first few
        tried = keep[start:start + LINE_TRIES]
        ends = _nearest_points(rects[tried], faces[np.argmin(_gap_each(rects[tried], faces), axis=1)])
        clear = ~_crosses(ends, taken).any(axis=1) if len(taken) else np.ones(len(tried), bool)
        if clear.any():
            i = int(np.argmax(clear))
            return QRectF(*spots[tried[i]], w, h), QLineF(*ends[i])
    return None


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


def _rows_under(image_rect: QRectF, width: float, height: float) -> list[QRectF]:
    """The rows under the frame, nearest it first, that the view has room for: the count of labels left out goes in
    the first free one where the titles' row is too narrow for it (side by side in a view 360 px wide, 116 px were
    left right of a title, and the count went). Labels may have taken the nearest."""
    row, left = _title_height(), max(4.0, image_rect.left())
    if width - left - 4 <= 24:
        return []
    tops = np.arange(image_rect.bottom() + 4, height - row + 1, row)
    return [QRectF(left, float(top), width - left - 4, row) for top in tops]


def _count_line(hidden: int, faces: int, shortened: int, classifier: str | None, titles_row: QRectF | None,
                under: list[QRectF], drawn: list[QRectF], lines: list[QLineF], fm: QFontMetricsF
                ) -> tuple[QRectF, str] | None:
    """Where the count of labels left out and shortened goes and what it says (``labels_hidden_text``): in the
    titles' row kept for it, else in the first of the rows ``under`` the frame where it covers nothing ``drawn``
    (faces, numbers, titles, the note, labels) nor a label's line; in its terse wordings only where no row has room
    for the others. None where nothing is counted or no row has room."""
    rooms = [(titles_row, True)] + [(row, False) for row in under]
    for terse in (False, True):
        for room, kept_for_it in rooms:
            if room is None:
                continue
            text = labels_hidden_text(hidden, faces, room.width(), fm, shortened, classifier, terse)
            if text is None:
                continue
            backdrop = backdrop_of(room, text, fm)[1]
            if kept_for_it or not (any(backdrop.intersects(r) for r in drawn) or _crossed_by(backdrop, lines)):
                return room, text
    return None


def _crossed_by(rect: QRectF, lines: list[QLineF]) -> bool:
    return bool(lines) and bool(_crosses(_lines_array(lines), _rects_array([rect])).any())


def labels_hidden_text(hidden: int, faces: int, room: float, fm: QFontMetricsF, shortened: int = 0,
                       classifier: str | None = None, terse: bool = False) -> str | None:
    """The longest wording of the count of labels left out, and of those shortened (``short_forms``), that fits
    ``room`` (a backdrop's width) whole; None where none does, or where none is left out or shortened. Elided to the
    room, the one long wording had read "…not shown: no room beside th…". A shortened label's P(f) leaves out whose it
    is: ``classifier`` (where the labels have one) names it. ``terse``: the shortest wordings too, which leave out
    the classifier's name (and, last, the labels shortened), for a narrow view: there it had left out the count."""
    whose = f": P(f) of {classifier}" if classifier is not None else ""
    more = " (a larger window or one view leaves more; a recording's rows hold every face)"
    if hidden and shortened:
        wordings = (f"{hidden} of {faces} labels hidden: no room beside their faces; {shortened} shortened{whose}{more}",
                    f"{hidden} of {faces} labels hidden: no room beside their faces; {shortened} shortened{whose}",
                    f"{hidden} of {faces} labels hidden, {shortened} shortened{whose}",
                    f"{hidden}/{faces} hidden, {shortened} shortened{whose}")
        shortest = (f"{hidden}/{faces} hidden, {shortened} shortened", f"{hidden}/{faces} hidden")
    elif shortened:
        wordings = (f"{shortened} of {faces} labels shortened to fit beside their faces{whose}{more}",
                    f"{shortened} of {faces} labels shortened to fit beside their faces{whose}",
                    f"{shortened} of {faces} labels shortened{whose}",
                    f"{shortened}/{faces} shortened{whose}")
        shortest = (f"{shortened}/{faces} shortened", f"{shortened} shortened")
    elif hidden:
        wordings = (f"{hidden} of {faces} labels hidden: no room beside their faces{more}",
                    f"{hidden} of {faces} labels hidden: no room beside their faces",
                    f"{hidden} of {faces} labels hidden (no room)",
                    f"{hidden}/{faces} labels hidden")
        shortest = (f"{hidden}/{faces} hidden",)
    else:
        return None
    wordings += shortest if terse else ()
    return next((text for text in wordings if fm.horizontalAdvance(text) + 2 * BACKDROP_PAD <= room), None)


def _label_size(lines: list[list[Segment]], fm: QFontMetricsF) -> tuple[float, float]:
    return max(sum(fm.horizontalAdvance(t) for t, _ in line) for line in lines) + 12, fm.lineSpacing() * len(lines) + 8


@dataclass(frozen=True)
class FaceMark:
    """A face as drawn over the frame: its colour, its box in each panel as drawn (``drawn``) and the part of it
    that shows in its panel (``boxes``)."""

    track_id: int
    colour: QColor
    drawn: tuple[QRectF, ...]
    boxes: tuple[QRectF, ...]
    panels: tuple[QRectF, ...]  # where each panel is: a box is drawn inside its own


def face_marks(result: FrameResult, panels: list[Panel], origin: tuple[float, float], scale: float,
               styles: FaceStyles) -> list[FaceMark]:
    """Each face's ``FaceMark``, in ``result.faces``' order, for a frame drawn at ``origin`` and ``scale``."""
    dx, dy = origin
    ih = result.frame.shape[0]
    areas = tuple(QRectF(dx + panel.x0 * scale, dy, panel.width * scale, ih * scale) for panel in panels)
    marks = []
    for face in result.faces:
        x, y, bw, bh = face.box
        drawn = tuple(QRectF(dx + (panel.x0 + x) * scale, dy + y * scale, bw * scale, bh * scale) for panel in panels)
        marks.append(FaceMark(face.track_id, styles.style(face.track_id).colour, drawn,
                              tuple(_showing(r, area) for r, area in zip(drawn, areas)), areas))
    return marks


def _draw_box(p: QPainter, mark: FaceMark) -> None:
    for r, area in zip(mark.drawn, mark.panels):
        p.save()
        p.setClipRect(area)
        p.setPen(QPen(mark.colour, 2))
        p.setBrush(Qt.BrushStyle.NoBrush)
        p.drawRect(r.adjusted(1, 1, -1, -1))
        p.restore()


TAG_TEXT = QColor(15, 15, 20)  # a face's number, on a tag in its colour (every face colour is light enough for it)


def _tag_rect(box: QRectF, size: tuple[float, float], area: QRectF, others: list[QRectF]) -> QRectF:
    """Where a face's number goes: in its box's top-left corner where the face can spare the room, else just above
    the box or just below it, on no other face, else in the corner all the same."""
    w, h = size
    left = min(max(box.left(), area.left()), area.right() - w)
    corner = QRectF(left, box.top(), w, h)
    spots = ([corner] if w <= 0.6 * box.width() and h <= box.height() / 3 else []) + [
        QRectF(left, box.top() - h, w, h), QRectF(left, box.bottom(), w, h)]
    return next((r for r in spots if area.contains(r) and not any(r.intersects(o) for o in others)), corner)


def _draw_tags(p: QPainter, marks: list[FaceMark], fm: QFontMetricsF) -> list[list[tuple[str, QRectF]]]:
    """Each face's number ("#N", as its label starts) on each of its boxes, so that a label is matched to its face
    by its number where colours repeat (six colours, twenty faces): the boxes had carried no id. Returns the
    numbers and where they went, by face and panel."""
    boxes = [box for mark in marks for box in mark.boxes]
    drawn = []
    for mark in marks:
        text = f"#{mark.track_id}"
        size = (fm.horizontalAdvance(text) + 6, fm.height() + 2)
        on = []
        for box, area in zip(mark.boxes, mark.panels):
            rect = _tag_rect(box, size, area, [b for b in boxes if b is not box])
            p.save()
            p.setClipRect(area)
            p.setPen(Qt.PenStyle.NoPen)
            p.setBrush(mark.colour)
            p.drawRect(rect)
            p.setPen(TAG_TEXT)
            p.drawText(QPointF(rect.left() + 3, rect.top() + 1 + fm.ascent()), text)
            p.restore()
            on.append((text, rect))
        drawn.append(on)
    return drawn


def _draw_leader(p: QPainter, line: QLineF, colour: QColor) -> None:
    """The line from a label to its face: in the face's colour on a dark edge, read over any image."""
    p.setPen(QPen(QColor(BACKDROP.red(), BACKDROP.green(), BACKDROP.blue()), 4))
    p.drawLine(line)
    p.setPen(QPen(colour, 2))
    p.drawLine(line)


WHOLE_FORMS = 2  # a label's whole form and its one named line (``label_forms``); those past them are shortened
UPGRADE_FRAMES = 12  # frames in a row (half a second at 25 fps) a longer form must have room before a label takes it
SHOW_FRAMES = 3  # and a hidden label, any form: held hidden as long, a label in a moving crowd had stayed hidden


def label_forms(face: FaceResult, cam_model: str | None, colour: QColor, shorten: bool) -> list[list[list[Segment]]]:
    """Every form a face's label may be drawn in, longest first: whole, on one named line, then (``shorten``) its
    ``short_forms``. A form is named by its index here; one past the last stands for the label hidden."""
    whole = [face_lines(face, colour), compact_lines(face, cam_model, colour)]
    return whole + (short_forms(face, cam_model, colour) if shorten else [])


@dataclass(frozen=True)
class Placement:
    """Where one form of a face's label goes: its rect, its line to its face where it needs one."""

    rect: QRectF
    lines: list[list[Segment]]
    leader: QLineF | None
    form: int  # its index in the face's ``label_forms``


@dataclass
class LabelForms:
    """The form each face's label was drawn in (``label_forms``' index), kept from frame to frame, so that a label
    keeps its form while that form fits and takes a longer one only once one has had room for ``UPGRADE_FRAMES``
    frames in a row (a hidden label is shown after ``SHOW_FRAMES``). Laid out afresh each frame, a face moving ±20 px
    in a 4×4 mosaic at 1024×768 had its label switch between six lines and one 8-12 times in 2.4 s. A margin of room
    asked for as well (8 px each side) had kept some labels of a still crowd short, or hidden, for good.

    Owned by the view that draws frame after frame (``FrameView``) and used on the GUI thread only. A snapshot is
    drawn without one: each label in the form that fits best, and the view's forms untouched."""

    _drawn: dict[int, int] = field(default_factory=dict, init=False, repr=False)  # track id → form drawn last
    _roomy: dict[int, int] = field(default_factory=dict, init=False, repr=False)  # track id → frames a longer fitted
    _frame: tuple[int, float] | None = field(default=None, init=False, repr=False)
    _layout: tuple = field(default=(), init=False, repr=False)
    _new_frame: bool = field(default=True, init=False, repr=False)

    def begin(self, frame: tuple[int, float], layout: tuple, track_ids: Iterable[int]) -> None:
        """A frame (its index and capture time) about to be laid out in ``layout`` (the view's size and mode): forms
        chosen in another layout are forgotten (they fitted other room), and those of faces no longer on show. A
        frame drawn again (a repaint) counts once towards ``UPGRADE_FRAMES``."""
        if layout != self._layout:
            self._drawn.clear()
            self._roomy.clear()
        self._layout, self._new_frame, self._frame = layout, frame != self._frame, frame
        on_show = set(track_ids)
        for kept in (self._drawn, self._roomy):
            for tid in [t for t in kept if t not in on_show]:
                del kept[tid]

    def held(self, track_id: int) -> int | None:
        """The form face ``track_id``'s label was drawn in last; None for a face new to this layout."""
        return self._drawn.get(track_id)

    def longer_had_room(self, track_id: int, frames: int) -> bool:
        """Counts this frame, in which a form longer than face ``track_id``'s has room, towards its taking it:
        whether one has had room for ``frames`` frames in a row (a frame drawn again counts once)."""
        if self._new_frame:
            self._roomy[track_id] = self._roomy.get(track_id, 0) + 1
        return self._roomy.get(track_id, 0) >= frames

    def drawn(self, track_id: int, form: int, waiting: bool) -> None:
        """The form face ``track_id``'s label is drawn in this frame; ``waiting``: a longer one had room, counted on."""
        self._drawn[track_id] = form
        if not waiting:
            self._roomy.pop(track_id, None)


@dataclass(frozen=True)
class PlacedLabel:
    track_id: int
    colour: QColor
    rect: QRectF
    lines: list[list[Segment]]
    own: QRectF  # its face in the original panel
    leader: QLineF | None  # from the label to its face's box, where the label is not plainly beside it
    short: bool = False  # one of ``short_forms``: the count of labels hidden says so, and names their classifier


def lay_out_labels(faces: tuple[FaceResult, ...], marks: list[FaceMark], bounds: QRectF, taken: list[QRectF],
                   fm: QFontMetricsF, cam_model: str | None, frame: QRectF, shorten: bool = False,
                   steady: LabelForms | None = None) -> list[PlacedLabel]:
    """Where each face's label goes (``_place_label``), in the faces' order, clear of ``taken`` and of the labels
    and lines placed before it; a face left out has none (the caller counts them). ``shorten``: a label with no room
    may be drawn in a shorter form, where the caller can say so. ``steady``: the forms the labels were drawn in
    before, which they keep while they fit (``LabelForms``); None: each in the form that fits best."""
    placed: list[PlacedLabel] = []
    obstacles, leaders = _rects_array(taken), np.zeros((0, 4))
    shown = [_rects_array(_showing(b, frame) for b in mark.boxes) for mark in marks]
    for face, mark, boxes in zip(faces, marks, shown):
        own = mark.drawn[0]
        box = own if len(mark.drawn) == 1 else own.united(mark.drawn[1])  # side by side: between the two too
        others = [b for other, bs in zip(marks, shown) if other is not mark for b in bs]
        target = LabelTarget(box, own, boxes, np.array(others, float).reshape(-1, 4))
        forms = label_forms(face, cam_model, mark.colour, shorten)

        def place(only: int | None = None) -> Placement | None:
            return _place_label(forms, target, bounds, obstacles, fm, frame, leaders, only)

        found = place()
        if steady is not None:
            found = _steadied(steady, face.track_id, found, len(forms), place)
        if found is None:
            continue
        obstacles = np.vstack([obstacles, _rects_array([found.rect])])
        if found.leader is not None:
            leaders = np.vstack([leaders, _lines_array([found.leader])])
        placed.append(PlacedLabel(face.track_id, mark.colour, found.rect, found.lines, own, found.leader,
                                  found.form >= WHOLE_FORMS))
    return placed


def _steadied(steady: LabelForms, track_id: int, found: Placement | None, hidden: int,
              place: Callable[[int], Placement | None]) -> Placement | None:
    """Face ``track_id``'s label in the form it was drawn in before (``steady``), where that form still fits and
    ``found`` (the form that fits best this frame) is not a longer one that has had room long enough; else ``found``.
    ``hidden``: the form that stands for the label hidden, which a hidden label keeps as any other, for fewer frames."""
    free = found.form if found is not None else hidden
    held = steady.held(track_id)
    held = None if held is None else min(held, hidden)  # a face with fewer forms than before (a figure gone)
    frames = SHOW_FRAMES if held == hidden else UPGRADE_FRAMES
    waiting = held is not None and free < held and not steady.longer_had_room(track_id, frames)
    if held is not None and (free > held or waiting):
        kept = place(held) if held < hidden else None
        if kept is not None or held == hidden:
            found = kept
    steady.drawn(track_id, found.form if found is not None else hidden, waiting)
    return found


def _place_label(forms: list[list[list[Segment]]], target: LabelTarget, bounds: QRectF, taken: np.ndarray,
                 fm: QFontMetricsF, frame: QRectF, leaders: np.ndarray, only: int | None = None) -> Placement | None:
    """Where a face's label goes, in which of its ``forms`` (``label_forms``; ``only``: that one alone), and its
    line to its face where it needs one: the whole label clear of every face, its own too, else one line (a crowded
    frame) clear of them, each next to its face before either with a line to it; only then over its own face in the
    original panel (a face that fills the frame leaves no room beside it), whole or on one line. Where neither has
    room, the same for its shortened forms, before it is hidden: in a crowd the one line was wider than the room
    between two faces. Never over another face, a filtered face, a title, another label or another's line, nor further
    from its face than ``target.reach()``; None where nothing is free (counted by the caller). Allowed onto its own
    face at once, a full label had covered a quarter of its face though one line fitted beside it."""
    own = _rects_array([target.own])[0]
    others = taken[~np.all(taken == own, axis=1)]
    tried = range(len(forms)) if only is None else [only]
    for group in ([f for f in tried if f < WHOLE_FORMS], [f for f in tried if f >= WHOLE_FORMS]):
        sized = [(f, _label_size(forms[f], fm)) for f in group]
        with_line = None
        for f, size in sized:
            if (found := _label_rect(target, size, bounds, taken, frame, leaders)) is not None:
                if found[1] is None:
                    return Placement(found[0], forms[f], None, f)
                with_line = with_line or Placement(found[0], forms[f], found[1], f)
        if with_line is not None:
            return with_line
        for f, size in sized:
            if (found := _label_rect(target, size, bounds, others, frame, leaders)) is not None:
                return Placement(found[0], forms[f], found[1], f)
    return None


def _frame_area(width: int, height: int) -> tuple[int, int]:
    """Where the frame goes in a view of ``width``×``height``: below the panel titles."""
    return max(1, width), max(1, int(height - _title_height()))


def render(result: FrameResult | None, s: DisplaySettings, width: int, height: int, note: str = "",
           geometry: dict | None = None, ready: Composed | None = None, dpr: float = 1.0,
           steady: LabelForms | None = None) -> QImage:
    """The whole view at ``width``×``height``: what the window shows and what a snapshot saves.

    ``ready`` is the frame already composed by a worker; it is used only if it was composed
    from this result with these settings, else the frame is composed here. ``dpr``: the screen's
    device pixels per logical pixel. The image has that many more pixels, and the frame keeps
    them: drawn at the logical size and scaled up by Qt, a HiDPI screen showed the frame and
    its labels blurred. Everything is drawn in logical units as before.

    ``steady``: the forms the view drew each face's label in before, which it keeps while they fit (``LabelForms``,
    the view's own); None (a snapshot) draws each label in the form that fits best.
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
        s.face_styles.see((face.track_id for face in result.faces), result.timestamp)
        marks = face_marks(result, panels, (dx, dy), scale, s.face_styles)
        for mark in marks:
            _draw_box(p, mark)
            taken.extend(mark.drawn)
        tags = _draw_tags(p, marks, fm)
        taken.extend(rect for mark, on in zip(marks, tags) for (_, rect), box in zip(on, mark.boxes)
                      if not box.contains(rect))  # a number beside a small face: no label goes over it
        if not result.faces:
            draw_text_on_backdrop(p, QRectF(dx + 4, dy + 4, iw * scale - 8, fm.lineSpacing() + 6),
                                  "no face detected in this frame", TEXT, fm)
        kept_clear = list(taken)
        # a shortened label leaves its classifier's name to the count, where the count has room to name it; one
        # classifier is every label's. Shortened only where the titles' row had room for the name, a lone face's
        # label was hidden in a view under 450 px wide, with room under the face for its figures
        named = {cam_model_of(face, s.cam_model) for face in result.faces}
        classifier, n = (next(iter(named)) if len(named) == 1 else None), len(result.faces)
        if steady is not None:
            steady.begin((result.index, result.timestamp), (width, height, dpr, s.view, s.cam_model, s.show_labels),
                         (face.track_id for face in result.faces))
        labels = (lay_out_labels(result.faces, marks, bounds, taken, fm, s.cam_model, image_rect, len(named) == 1,
                                 steady) if s.show_labels else [])
        for label in labels:  # under every label: a label drawn later had cut an earlier one's line short
            if label.leader is not None:
                _draw_leader(p, label.leader, label.colour)
        for label in labels:
            draw_label(p, label.rect, label.lines, fm)
        hidden = len(result.faces) - len(labels) if s.show_labels else 0
        status: dict[str, QRectF] = {}  # where the two status lines were drawn, for the geometry
        status_text: dict[str, str] = {}  # and what they say
        shortened = sum(label.short for label in labels)
        under = _rows_under(image_rect, width, height) if s.show_labels and result.faces else []
        drawn = kept_clear + [label.rect for label in labels]
        lines = [label.leader for label in labels if label.leader is not None]
        count = _count_line(hidden, n, shortened, classifier, not_shown, under, drawn, lines, fm)
        if count is not None:
            count_room, count_text = count
            status["not_shown"] = draw_text_on_backdrop(p, count_room, count_text, MUTED, fm)
            status_text["not_shown"] = count_text
        if note:
            status["note"] = draw_text_on_backdrop(p, note_line, note, LIGHTER, fm)
        if geometry is not None:
            geometry["labels"] = [(label.rect, label.own) for label in labels]
            geometry["label_text"] = {label.track_id: plain_text(label.lines) for label in labels}
            geometry["labels_hidden"], geometry["kept_clear"] = hidden, kept_clear
            geometry["leaders"] = {label.track_id: label.leader for label in labels if label.leader is not None}
            geometry["faces"] = {mark.track_id: (mark.colour, list(mark.boxes)) for mark in marks}
            geometry["tags"] = {mark.track_id: on for mark, on in zip(marks, tags)}
            geometry["status"], geometry["status_text"] = status, status_text
            geometry["status_room"] = {"not_shown": count[0]} if count is not None else {}
    finally:
        p.end()
    return out
