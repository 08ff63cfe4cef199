"""Skin tone of a face crop: CIELAB, ITA°, Monk Skin Tone, and the paired shift.

The one place colour science lives. Everything is computed in CIELAB (D65)
from sRGB values scaled to [0, 1] by ``skimage.color`` (``rgb2lab``; for 8-bit
crops ``rgb2xyz`` tables and ``xyz2lab``, the same values); OpenCV's 8-bit
Lab encoding (L scaled to 0..255, a/b offset by 128) is deliberately not used.

Method
------
1. **Where** to look is purely geometric (``face_skin_mask``): an ellipse over
   the central face (forehead, nose, cheeks, jaw) that leaves out the crop's
   outer border where hair and background live, minus a horizontal band at eye
   height (keeping the nose bridge between the eyes) and a box at mouth height.
   The mask does not look at colour, so it is identical for every skin tone;
   colour-threshold skin detectors are tuned on light skin and drop dark skin,
   which is exactly the bias this project measures.
2. **Which pixels** count is decided per image by robust trimming inside that
   mask (``measure_skin_tone``): near-black and blown-out pixels go (for a
   filtered face, those of its original and as many of its own as the filter
   moved, so only what the filter clipped counts), then
   pixels outside the 10th–90th percentile of L* (hair, eye corners, nostrils,
   glare, shadow) or the 5th–95th percentile of a* / b* (lips, stray
   background) go.
3. The skin colour is the mean Lab of what survives; ITA° and the nearest
   Monk Skin Tone follow from it.
4. A filtered face is measured where the filter put it (``aligned_onto``): a
   filter that moves the face (a beautify or reshape warp) would otherwise have
   the mask laid on other skin after than before (3 px down read +3° ΔITA with
   no colour changed). Its move, a whole-pixel translation found by phase
   correlation at the filter's own resolution, is undone before measuring where
   undoing it lines the grey faces up under the mask better than no move (a
   restyle that moves nothing reads small moves it did not make), and recorded
   (``SkinShift.moved_px``).

Limits
------
* Assumes a frontal, roughly centred square face crop framed like
  ``faces.crop_square`` (detector box plus margin, face centre slightly above
  the crop centre), which matches the UTKFace aligned chips; the zones were
  placed on the average UTKFace face and leave room for looser framing (eyes
  anywhere from ~0.25 to ~0.42 of the height). Profiles, tilted heads or
  badly off-centre crops put the mask on hair or background.
* Hair over the forehead, beards, glasses, masks and hands reach into the
  mask; trimming removes some of it, not all.
* Strong side light or coloured light changes the measured colour, and ITA
  depends on lighting and the camera's white balance: it measures the
  *picture*, not the person. That is fine for this project's paired
  comparison (same picture before and after a filter), and a reason to treat
  absolute values across different photos with care.
* MST is the nearest of ten swatches in colour; the Monk scale is meant for
  human annotation, so this is an approximation, not a rating.
* The paired shift pairs clipped pixels by count, not by place
  (``_exposed_as_in``): a filter that lifts a photo's near-black hair and
  crushes as much skin to black is read as having moved them, and its
  crushing counts for the excess only (a test face: ΔITA -37° where by place
  it read -44°). On the default filter, a few ΔITAs in 3,000 UTKFace faces
  differ from pairing by place, by ≲0.3° (3 of one such sample, by at most
  0.13°; 5 of 3,000 spread evenly over the sorted files, by at most 0.26°).
* Only a move of the whole face is undone (``aligned_onto``): a warp that
  reshapes it (a zoom, a slimmed jaw) still has the mask laid on partly other
  skin after than before. A zoom of 10 % about the centre is read as a move
  on a few faces (8 of 300 test adults, undone by 1 or 2 px), its mean ΔITA
  as it was (−0.74°, −0.75° with no face moved back).
* ΔITA is not lightness alone: ITA = atan((L* − 50)/b*) falls as skin
  yellows where L* > 50 and rises where L* < 50, so a yellow tint lowers a
  light face's ITA while L* rises. ``shift_word`` says "lighter" or "darker"
  only where L* moved the same way and made the move, or moved visibly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
from skimage.color import deltaE_ciede2000, lab2xyz, rgb2lab, rgb2xyz, xyz2lab

from .results import SkinShift, SkinTone
from .strict_json import as_printed

MONK_HEX = ("#f6ede4", "#f3e7db", "#f7ead0", "#eadaba", "#d7bd96",
            "#a07e56", "#825c43", "#604134", "#3a312a", "#292420")

# Chardon et al. (1991) / Del Bino et al. (2006) ITA classes, lower bounds (exclusive).
_ITA_CLASSES = ((55.0, "very light"), (41.0, "light"), (28.0, "intermediate"),
                (10.0, "tan"), (-30.0, "brown"))

# Mask geometry in fractions of the crop's width / height.
_FACE_CENTRE = (0.5, 0.47)  # (x, y): faces sit slightly above the crop centre
_FACE_RADII = (0.25, 0.33)  # stays inside the cheeks, off the hairline and ears
_EYE_BAND = (0.21, 0.45)  # brows and eyes, for tight chips (eyes ~0.3) and padded crops (~0.42)
_NOSE_BRIDGE_HALF = 0.06  # skin between the eyes is kept
_MOUTH_BOX = (0.63, 0.82, 0.17)  # top, bottom, half width

_DARK_L, _BRIGHT_L = 5.0, 98.0
_L_PCT = (10.0, 90.0)
_AB_PCT = (5.0, 95.0)


def srgb_to_lab(rgb) -> np.ndarray:
    """CIELAB (D65) of sRGB colours, shape (..., 3): integers are 0..255, floats 0..1."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1:] != (3,):
        raise ValueError(f"expected (..., 3) RGB, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:  # the crops: XYZ by table (same values as rgb2xyz, to ~1e-13), then xyz2lab
        red, green, blue = _xyz_by_channel()
        xyz = sum(np.take(table, rgb[..., c], axis=0) for c, table in enumerate((red, green, blue)))  # take: ~5× [] here
        return xyz2lab(xyz.reshape(-1, 1, 3)).reshape(rgb.shape)
    if np.issubdtype(rgb.dtype, np.integer):  # 8-bit values, whatever the integer type
        rgb = rgb / 255.0
    elif not np.issubdtype(rgb.dtype, np.floating):
        raise ValueError(f"expected 8-bit integer or float RGB, got {rgb.dtype}")
    flat = rgb.reshape(-1, 1, 3).astype(np.float64)
    return rgb2lab(flat).reshape(rgb.shape)


@lru_cache(maxsize=1)
def _xyz_by_channel() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # sRGB → XYZ is a per-channel curve followed by a 3×3 matrix, so XYZ(r, g, b) = XYZ(r, 0, 0) + XYZ(0, g, 0)
    # + XYZ(0, 0, b). For 8-bit input those are three 256-entry tables made by skimage's own rgb2xyz: a
    # frame's skin pixels then skip its per-pixel power function, over half of the measurement's time.
    levels = np.arange(256) / 255.0
    tables = []
    for channel in range(3):
        pure = np.zeros((256, 1, 3))
        pure[:, 0, channel] = levels
        table = rgb2xyz(pure)[:, 0]
        table.setflags(write=False)
        tables.append(table)
    return tables[0], tables[1], tables[2]


def ita_degrees(L, b):
    """Individual Typology Angle, arctan((L* − 50) / b*) in degrees; arctan2 so b* = 0 is defined. Only b* > 0
    keeps it in (−90°, 90°), which is why a skin tone needs b* ≥ MIN_B."""
    ita = np.degrees(np.arctan2(np.asarray(L, float) - 50.0, np.asarray(b, float)))
    return float(ita) if ita.ndim == 0 else ita


NOT_MEASURABLE = "not measurable"  # the category of a face whose ITA is undefined


def ita_category(ita: float) -> str:
    if not np.isfinite(ita):
        return NOT_MEASURABLE
    for lower, name in _ITA_CLASSES:
        if ita > lower:
            return name
    return "dark"


def _hex_to_rgb(h: str) -> tuple[int, int, int]:
    return tuple(int(h[i:i + 2], 16) for i in (1, 3, 5))


_MONK_LAB = srgb_to_lab(np.array([_hex_to_rgb(h) for h in MONK_HEX], np.uint8))


def nearest_monk(lab) -> int:
    """Monk Skin Tone 1..10 whose swatch is nearest by CIEDE2000.

    CIEDE2000 rather than CIE76: the light swatches (MST 1–4) differ mostly in
    chroma and the dark ones mostly in lightness, and plain Euclidean ΔE
    over-weights chroma differences relative to what people see, so it can
    pick a neighbour a viewer would not.
    """
    return int(nearest_monks(np.asarray(lab, float).reshape(1, 3))[0])


def nearest_monks(lab: np.ndarray) -> np.ndarray:
    """``nearest_monk`` for N Lab colours (N×3) in one CIEDE2000 call: N Monk tones."""
    return np.argmin(deltaE_ciede2000(lab[:, None, :], _MONK_LAB[None]), axis=1) + 1


@lru_cache(maxsize=16)
def _mask(h: int, w: int) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    u, v = (x + 0.5) / w, (y + 0.5) / h  # pixel centres, so the mask scales with the crop
    (cx, cy), (rx, ry) = _FACE_CENTRE, _FACE_RADII
    face = ((u - cx) / rx) ** 2 + ((v - cy) / ry) ** 2 <= 1.0
    eyes = (v >= _EYE_BAND[0]) & (v <= _EYE_BAND[1]) & (np.abs(u - 0.5) > _NOSE_BRIDGE_HALF)
    top, bottom, half = _MOUTH_BOX
    mouth = (v >= top) & (v <= bottom) & (np.abs(u - 0.5) < half)
    mask = face & ~eyes & ~mouth
    mask.setflags(write=False)
    return mask


def face_skin_mask(shape_hw, rgb=None) -> np.ndarray:
    """Boolean H×W mask of cheek, nose and forehead skin for a centred face crop.

    Geometric only (see the module docstring), so two crops of the same shape
    get the same mask whatever their colours; ``rgb`` is accepted for the
    caller's convenience and only checked against ``shape_hw``.
    """
    h, w = int(shape_hw[0]), int(shape_hw[1])
    if rgb is not None and tuple(np.shape(rgb)[:2]) != (h, w):
        raise ValueError(f"rgb shape {np.shape(rgb)} does not match {(h, w)}")
    return _mask(h, w).copy()


# Skin of every tone is yellowish: b* > 0 (≳ 5 in most photos). Near b* = 0 ITA swings towards ±90° and past
# it arctan2 leaves (−90°, 90°) altogether (L* 77, b* −13 read 116°, "very light"), so a grey image or a blue
# or magenta colour cast has no skin tone to report. 1.4 % of UTKFace faces fall below this.
MIN_B = 2.0


def _required_pixels(h: int, w: int, min_pixels: int) -> int:
    # min_pixels is meant for the pipeline's crops (~100+ px a side), whose
    # mask holds thousands of pixels. A tiny crop (below ~55 px a side) cannot
    # reach it even when well lit, so there the bar is half of its default
    # mask instead: trimming alone keeps about two thirds, so a well-lit tiny
    # face passes and a half-dark one does not. A crop with fewer than
    # min_pixels pixels in all is never measured: too little face to say
    # anything about skin.
    if h * w < min_pixels:
        return h * w + 1
    return min(min_pixels, max(1, int(_mask(h, w).sum()) // 2))


def measure_skin_tone(rgb_uint8: np.ndarray, mask: np.ndarray | None = None,
                      min_pixels: int = 200) -> SkinTone:
    """Skin tone of an H×W×3 RGB uint8 crop over ``mask`` (default ``face_skin_mask``)."""
    rgb = np.asarray(rgb_uint8)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError(f"expected an H×W×3 RGB image, got shape {rgb.shape}")
    return measure_skin_tones(rgb[None], mask, min_pixels)[0]


def _trim_bounds(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per face, the low and high percentile of L*, a*, b* (each N×3) over the pixels given (N×P×3)."""
    lo_l, hi_l = np.percentile(lab[..., 0], _L_PCT, axis=1)
    lo_ab, hi_ab = np.percentile(lab[..., 1:], _AB_PCT, axis=1)
    return np.column_stack([lo_l, lo_ab]), np.column_stack([hi_l, hi_ab])


def _exposed(lab: np.ndarray) -> np.ndarray:
    return (lab[..., 0] >= _DARK_L) & (lab[..., 0] <= _BRIGHT_L)


@lru_cache(maxsize=1)
def _exposed_luminance() -> tuple[float, float]:
    # L* depends on Y alone and grows with it, so the L* bounds are Y bounds: a reference image's clipped pixels
    # are found from the tables' Y without its full Lab (a third of a pair's measurement time).
    dark, bright = lab2xyz(np.array([[[_DARK_L, 0.0, 0.0], [_BRIGHT_L, 0.0, 0.0]]]))[0, :, 1]
    return float(dark), float(bright)


def _exposed_pixels(rgb: np.ndarray) -> np.ndarray:
    """``_exposed`` of 8-bit sRGB pixels (..., 3), from their luminance."""
    dark, bright = _clipped_pixels(rgb)
    return ~(dark | bright)


def _clipped_pixels(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which sRGB pixels (..., 3) are near-black and which blown out (outside ``_exposed``'s L* bounds)."""
    if rgb.dtype != np.uint8:
        lightness = srgb_to_lab(rgb)[..., 0]
        return lightness < _DARK_L, lightness > _BRIGHT_L
    y = sum(np.take(table[:, 1], rgb[..., c]) for c, table in enumerate(_xyz_by_channel()))
    dark, bright = _exposed_luminance()
    return y < dark, y > bright


def _exposed_as_in(lab: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The pixels of filtered faces (``lab``, N×P×3) to measure: those exposed in their originals (``reference``,
    N×P×3 sRGB), but for clipping the filter moved rather than made. Left out by position alone, a filter that
    moves pixels (a mirror, a warp, a CycleGAN shifting a hairline) had its moved hair counted as skin it crushed:
    a mirrored face read up to 41° darker, dark faces, whose photos hold the most near-black pixels, most of all.
    So where a filtered face has k pixels clipped where its original was not and k of the original's clipped ones
    are clipped no more, those k (the most clipped) are left out instead of these k (the least clipped in the
    original): a filter that only moves pixels is measured on its own exposed pixels, as many as the original's;
    clipping beyond the original's still counts as the filter's doing, and clipping it lifted is still left out."""
    ref_dark, ref_bright = _clipped_pixels(reference)
    exposed = ~(ref_dark | ref_bright)
    lightness = lab[..., 0]
    own_dark, own_bright = lightness < _DARK_L, lightness > _BRIGHT_L
    own_exposed = ~(own_dark | own_bright)
    for sign, ref_clipped, own_clipped in ((-1, ref_dark, own_dark), (1, ref_bright, own_bright)):
        arrived, left = own_clipped & exposed, ref_clipped & own_exposed
        for i in np.flatnonzero(np.minimum(arrived.sum(axis=1), left.sum(axis=1))):
            came, went = np.flatnonzero(arrived[i]), np.flatnonzero(left[i])
            k = min(len(came), len(went))
            ref_lightness = srgb_to_lab(reference[i, went])[..., 0]
            exposed[i, came[np.argsort(-sign * lightness[i, came], kind="stable")[:k]]] = False
            exposed[i, went[np.argsort(sign * ref_lightness, kind="stable")[:k]]] = True
    return exposed


def measure_skin_tones(crops: np.ndarray, mask: np.ndarray | None = None, min_pixels: int = 200,
                       clipped_in: np.ndarray | None = None) -> list[SkinTone]:
    """``measure_skin_tone`` for a batch of N×H×W×3 RGB uint8 crops over one mask, in a few array calls
    instead of a dozen per face: the percentiles of faces with no near-black or blown-out pixel in the
    mask (nearly all) are taken together; a face that has some is trimmed on its own. Same numbers.

    ``clipped_in``: crops of the same shape (a filter's inputs) whose near-black and blown-out pixels are
    left out instead of the crops' own. A photo's clipped pixels hold no skin colour; a pixel a filter
    crushed to black or blew out is the filter's doing and must count, or a filter that blackens half a
    face reads as *lighter* (only its brighter half measured) and one that blows skin out as barely lighter.
    Clipping the filter only moved is left out as well (``_exposed_as_in``).
    """
    crops = np.asarray(crops)
    if crops.ndim != 4 or crops.shape[3] != 3:
        raise ValueError(f"expected N×H×W×3 RGB crops, got shape {crops.shape}")
    n_faces, h, w = crops.shape[:3]
    if clipped_in is not None and np.shape(clipped_in) != crops.shape:
        raise ValueError(f"clipped_in {np.shape(clipped_in)} and crops {crops.shape} differ in shape")
    mask = face_skin_mask((h, w)) if mask is None else np.asarray(mask, bool)
    if mask.shape != (h, w):
        raise ValueError(f"mask shape {mask.shape} does not match image {(h, w)}")
    if n_faces == 0:
        return []

    lab = srgb_to_lab(crops[:, mask])  # N×P×3
    exposed = _exposed(lab) if clipped_in is None else _exposed_as_in(lab, np.asarray(clipped_in)[:, mask])
    lo, hi = np.full((n_faces, 3), np.inf), np.full((n_faces, 3), -np.inf)  # no bounds: nothing kept
    whole = exposed.all(axis=1) & exposed.any(axis=1)  # (an empty mask has no pixels to take percentiles of)
    if whole.any():
        lo[whole], hi[whole] = _trim_bounds(lab[whole])
    for i in np.flatnonzero(~whole & exposed.any(axis=1)):
        # Percentiles are taken together on the same pixels, then intersected,
        # so the order of the three cuts does not matter.
        lo[i], hi[i] = (b[0] for b in _trim_bounds(lab[i][exposed[i]][None]))
    keep = exposed & ((lab >= lo[:, None]) & (lab <= hi[:, None])).all(axis=2)
    counts = keep.sum(axis=1)
    # Mean, not median: after trimming the mean is robust enough, and on 8-bit
    # data the median moves in quantisation steps, so a small filter shift
    # could read as zero or as a jump; the mean follows it smoothly.
    with np.errstate(invalid="ignore", divide="ignore"):
        means = np.einsum("np,npc->nc", keep.astype(lab.dtype), lab) / counts[:, None]
    # b* ≥ MIN_B keeps every ITA inside (−90°, 90°) and away from its swing at b* = 0
    measurable = (counts >= _required_pixels(h, w, min_pixels)) & (means[:, 2] >= MIN_B)
    monks = np.zeros(n_faces, int)
    if measurable.any():
        monks[measurable] = nearest_monks(means[measurable])
    tones = []
    for (L, a, b), n, ok, mst in zip(means.tolist(), counts.tolist(), measurable.tolist(), monks.tolist()):
        if not ok:
            tones.append(SkinTone(measurable=False, n_pixels=n))
            continue
        ita = ita_degrees(L, b)
        tones.append(SkinTone(measurable=True, n_pixels=n, L=L, a=a, b=b, ita=ita,
                              ita_category=ita_category(ita), mst=mst))
    return tones


def compare_skin(original: SkinTone, filtered: SkinTone, moved_px: float = 0.0) -> SkinShift:
    """Filtered minus original: a positive ΔL* or ΔMST means lighter skin, a positive ΔITA a higher ITA, which b*
    moves too (``shift_word`` says whether it was lighter). ``moved_px``: how far the filter moved the face, which
    the filtered skin was measured after undoing (``aligned_onto``)."""
    if not (original.measurable and filtered.measurable):
        return SkinShift(delta_ita=None, delta_l=None, delta_mst=None, moved_px=moved_px)
    return SkinShift(delta_ita=filtered.ita - original.ita,
                     delta_l=filtered.L - original.L,
                     delta_mst=original.mst - filtered.mst,  # MST 1 is lightest
                     moved_px=moved_px)


# How a filter's move is found (``face_moves``), each figure measured on 300 UTKFace adults at 112 px unless said, a
# 64 px filter's faces scaled back up to the crop as the pipeline does:
# * It is read by cv2.phaseCorrelate at the filter's own resolution (``filter_px``): scaled up, a crop's finer detail
#   is the scaling's, and read there a 0.25 px move at 64 px (0.44 px on the crop) had read 0.69 px in the median
#   and been undone by 1 px on 288 faces (at 64 px it reads 0.42).
# * Its peak (the response: the peak's height summed over its 5×5 neighbourhood) must be MOVE_MIN_RESPONSE or more,
#   which another face's rarely is (0.67 at most at 112 px in 1,630 pairs, 0.85 at 64 px, where what it reads does
#   not line the faces up: 1 of 4,890 such pairs was read as moved); a face moved 11 px up and 5 px across peaks at
#   0.78 or more. A weaker reading is taken again at half the crop's side (``_reading_scales``): a heavy blur leaves
#   the move only there (3 px down under a Gaussian of σ 5 px: no face peaked at 0.75 at 112 px, 295 did at 56 px).
# * The move undone is the whole-pixel one (floor, ceiling or none of the reading in each axis) that lines the faces
#   up best under the mask (``_best_whole_move``), and only where it lines them up better than no move does: a
#   filter that restyles without moving (a mosaic, a 3×3 max- or min-pool) reads moves of up to 1.9 px, and the
#   reading rounded had been undone on up to 89 of 300 faces (a 3 px move under a σ 3 px blur had been undone by
#   another amount on 92, by the best of floor, ceiling or none on 14). Undoing a restyle's reading lowers the
#   difference a little (to 0.83–0.99 of no move's, in the median of each of 15 such filters at 64–128 px) and
#   halved it on 15 of their 4,500 faces, while a move of 1 to 1.75 px, bare or through the shipped filter, halved
#   it on every face that read under 2 px (to 0.20 of it in the median through the filter; a 1.05 px move, whose
#   1 px undo leaves a twentieth of it, on 249): so a reading under SMALL_MOVE_PX must halve it
#   (SMALL_MOVE_MAX_DIFFERENCE). No restyle read 2 px or more, so a longer move need only lower it (a zoom, no move
#   either, can: see Limits).
MOVE_MIN_RESPONSE = 0.75
SMALL_MOVE_PX = 2.0
SMALL_MOVE_MAX_DIFFERENCE = 0.5


@dataclass(frozen=True)
class AlignedFaces:
    """Filtered crops moved back onto their references (``aligned_onto``), and how far each had been moved."""

    crops: np.ndarray  # N×H×W×3, as given where no move was found
    moved_px: np.ndarray  # N lengths of the move undone, in crop pixels; 0 where none was found


def face_moves(references: np.ndarray, filtered: np.ndarray, mask: np.ndarray,
               filter_px: int | None = None) -> np.ndarray:
    """Each filtered face's move from its reference (N×2 whole pixels, dy and dx; positive: down and right), found by
    phase correlation of the grey crops at ``filter_px`` (the side the filter made them at, where smaller than the
    crops'; at half the crops' side where the peak there is too weak, ``_reading_scales``) and kept only where undoing
    it lines the faces up under ``mask`` (``_best_whole_move``); (0, 0) where the reading is too weak to believe (a
    face the filter restyled too much to tell, or another picture), where undoing no whole-pixel move lines them up
    better, or where undoing it would bring the crop's edge into ``mask`` (the skin the mask covers is then not all
    inside the filtered crop)."""
    n, h, w = references.shape[:3]
    moves = np.zeros((n, 2), int)
    if not mask.any():  # no skin to line up
        return moves
    scales = _reading_scales(h, w, filter_px)
    windows = _hanning_windows(h, w, filter_px)
    inside, free = np.nonzero(mask), _free_border(mask)
    for i in range(n):
        before, after = _grey(references[i]), _grey(filtered[i])
        reading = _reading(before, after, scales, windows)
        if reading is not None:
            moves[i] = _best_whole_move(before, after, reading, inside, free)
    return moves


@lru_cache(maxsize=16)
def _hanning_windows(h: int, w: int, filter_px: int | None) -> tuple[np.ndarray, ...]:
    """A Hanning window for each of ``_reading_scales``: the crop's edges would correlate, and say "no move". Kept,
    as every frame's faces are read at the same few sizes."""
    windows = tuple(cv2.createHanningWindow(_scaled(h, w, s)[::-1], cv2.CV_32F)
                    for s in _reading_scales(h, w, filter_px))
    for window in windows:
        window.setflags(write=False)
    return windows


def _reading_scales(h: int, w: int, filter_px: int | None) -> list[float]:
    """The scales to read a move at: the filter's own resolution (none above the crop's), then half the crop's where
    that is coarser still."""
    first = 1.0 if filter_px is None else min(1.0, filter_px / max(h, w))
    return [first] if first <= 0.5 else [first, 0.5]


def _scaled(h: int, w: int, scale: float) -> tuple[int, int]:
    return max(2, round(h * scale)), max(2, round(w * scale))


def _reading(before: np.ndarray, after: np.ndarray, scales: list[float],
             windows: list[np.ndarray]) -> tuple[float, float] | None:
    """The filtered face's move (dy, dx, in crop pixels, unrounded) read at the first of ``scales`` whose peak is strong
    enough to believe (MOVE_MIN_RESPONSE), both grey crops shrunk alike (INTER_AREA: their detail above that
    resolution is left out); None where no reading is."""
    h, w = before.shape
    for scale, window in zip(scales, windows):
        size = _scaled(h, w, scale)
        ours, theirs = (g if size == (h, w) else cv2.resize(g, size[::-1], interpolation=cv2.INTER_AREA)
                        for g in (before, after))
        (dx, dy), response = cv2.phaseCorrelate(ours, theirs, window)
        if response >= MOVE_MIN_RESPONSE:
            return dy * h / size[0], dx * w / size[1]
    return None


def _best_whole_move(before: np.ndarray, after: np.ndarray, reading: tuple[float, float],
                     inside: tuple[np.ndarray, np.ndarray], free: tuple[int, int, int, int]) -> tuple[int, int]:
    """Of the whole-pixel moves near ``reading`` (floor, ceiling or none in each axis), the one whose undoing lines the
    grey faces up best under the mask (``_grey_differences``; a tie goes to the shorter move), where it does so better
    than no move, by SMALL_MOVE_MAX_DIFFERENCE for a short reading, and keeps the mask inside the crop; else (0, 0).
    Where the best would bring the crop's edge into the mask, no move is taken rather than the next best, a pixel off
    the face's."""
    near = {(y, x) for y in {math.floor(reading[0]), math.ceil(reading[0]), 0}
            for x in {math.floor(reading[1]), math.ceil(reading[1]), 0}}
    moves = sorted(near, key=lambda move: math.hypot(*move))  # (0, 0) first
    differences = _grey_differences(before, after, np.array(moves), inside)
    best = int(np.argmin(differences))  # the first of equals: the shorter
    needed = SMALL_MOVE_MAX_DIFFERENCE if math.hypot(*reading) < SMALL_MOVE_PX else 1.0
    lined_up = differences[best] < differences[0] and differences[best] <= needed * differences[0]
    return moves[best] if lined_up and _keeps_mask_inside(moves[best], free) else (0, 0)


def _grey_differences(before: np.ndarray, after: np.ndarray, moves: np.ndarray,
                      inside: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """How unlike the grey faces are under the mask (its pixels' rows and columns ``inside``) with ``after`` moved back
    by each of ``moves`` (K×2, dy and dx; the crop's edge repeated where one reaches past it): 1 − r, r their
    correlation there. Contrast-normalised, so that a filter that lightens the face or flattens its contrast does not
    decide which move lines it up."""
    rows, cols = inside
    h, w = after.shape
    reference = _standardised(before[rows, cols].astype(np.float64))
    moved = after[np.clip(rows[None] + moves[:, :1], 0, h - 1), np.clip(cols[None] + moves[:, 1:], 0, w - 1)]
    moved = moved.astype(np.float64)
    spread = moved.std(axis=1)
    correlation = moved @ reference / (len(rows) * np.where(spread > 0, spread, np.inf))  # reference's mean is 0
    return 1.0 - correlation


def _standardised(values: np.ndarray) -> np.ndarray:
    centred = values - values.mean()
    spread = centred.std()
    return centred / spread if spread > 0 else centred


def _grey(rgb: np.ndarray) -> np.ndarray:
    # less its mean: a filter that lightens the whole face would otherwise add a peak at "no move" through the window.
    # float32: half float64's time (0.23 ms a 112 px face), the same moves and responses on 1,000 UTKFace faces
    grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY).astype(np.float32)
    return grey - grey.mean()


def _free_border(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Rows above and below ``mask``'s pixels, and columns left and right of them (the whole side for an empty one)."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if len(rows) == 0:
        return mask.shape[0], mask.shape[0], mask.shape[1], mask.shape[1]
    return rows[0], mask.shape[0] - 1 - rows[-1], cols[0], mask.shape[1] - 1 - cols[-1]


def _keeps_mask_inside(move: tuple[int, int], free: tuple[int, int, int, int]) -> bool:
    """Whether undoing ``move`` (dy, dx) takes every mask pixel from inside the filtered crop: a face moved down by dy
    has its last dy rows filled by the border, which must lie below the mask."""
    top, bottom, left, right = free
    dy, dx = move
    return -top <= dy <= bottom and -left <= dx <= right


def aligned_onto(references: np.ndarray, filtered: np.ndarray, mask: np.ndarray | None = None,
                 filter_px: int | None = None) -> AlignedFaces:
    """The filtered crops (N×H×W×3), each moved back by the whole pixels its filter moved the face from its reference
    (``face_moves``; ``filter_px``: the side the filter made them at, where smaller than the crops'), so that ``mask``
    covers the same skin before and after; a face not moved is given as it is, so its measurement is unchanged. The
    rows or columns the move brings in repeat the crop's edge, outside ``mask``."""
    references, filtered = np.asarray(references), np.asarray(filtered)
    if references.shape != filtered.shape:
        raise ValueError(f"references {references.shape} and filtered {filtered.shape} crops differ in shape")
    if filtered.ndim != 4 or filtered.shape[3] != 3:
        raise ValueError(f"expected N×H×W×3 RGB crops, got shape {filtered.shape}")
    h, w = filtered.shape[1:3]
    mask = face_skin_mask((h, w)) if mask is None else np.asarray(mask, bool)
    moves = face_moves(references, filtered, mask, filter_px)
    crops = filtered.copy() if moves.any() else filtered  # no face moved (the usual case): nothing to copy
    for i in np.flatnonzero(moves.any(axis=1)):
        dy, dx = moves[i]
        back = np.float64([[1, 0, -dx], [0, 1, -dy]])  # whole pixels: nearest is an exact copy
        crops[i] = cv2.warpAffine(filtered[i], back, (w, h), flags=cv2.INTER_NEAREST, borderMode=cv2.BORDER_REPLICATE)
    return AlignedFaces(crops, np.hypot(moves[:, 0], moves[:, 1]))


# A lightness change one can just see: about 1 unit of L* (CIEDE2000's just noticeable difference is about 1, and
# near mid-grey a change of L* alone is that many units of it). ``shift_word`` and the audit's summary call a shift
# "lighter" or "darker" where L* moved at least this much, even where b* moved ITA more.
JUST_NOTICEABLE_L = 1.0


def shift_word(original: SkinTone, filtered: SkinTone, digits: int = 1) -> str:
    """One face's skin shift in a word, for its ΔITA shown to ``digits``: "lighter" or "darker" where L* moved the way
    ITA did and made the move (its part of ΔITA outweighs the part Δb* makes) or moved at least
    ``JUST_NOTICEABLE_L`` (near ITA −90°, very dark skin, ITA barely follows L*, so a darkening moves it mostly by
    b*); "higher ITA" or "lower ITA" otherwise; "same" where the ΔITA shown is 0, "same ITA, L* fell" (or rose) where
    L* moved at least ``JUST_NOTICEABLE_L`` all the same (b* moved with it, along the same angle: the default filter
    took a face's L* 72.71 → 68.06 and had read "+0.0° same"). By ΔITA's sign alone a yellow tint had read "−7.6°
    darker" beside an L* that rose (57.83 → 58.71), and on a dark face "+6.6° lighter" where b* made nearly all of it
    (L* 33.70 → 33.98). The audit's summary words a group's shift by this rule on its intervals
    (``audit.summary.lightness_bears_out``)."""
    if not (original.measurable and filtered.measurable):
        raise ValueError("shift_word needs a face whose skin was measured before and after the filter")
    delta = as_printed(filtered.ita - original.ita, digits)  # the word says no more than the digits beside it
    delta_l = filtered.L - original.L
    if delta == 0:
        return f"same ITA, L* {'rose' if delta_l > 0 else 'fell'}" if abs(delta_l) >= JUST_NOTICEABLE_L else "same"
    from_b = ita_degrees(original.L, filtered.b) - original.ita  # the original's L*, the filtered b*
    from_l = filtered.ita - original.ita - from_b  # the rest, at the filtered b*: ITA grows with L* where b* > 0
    if delta_l * delta > 0 and (abs(from_l) > abs(from_b) or abs(delta_l) >= JUST_NOTICEABLE_L):
        return "lighter" if delta > 0 else "darker"
    return "higher ITA" if delta > 0 else "lower ITA"


def measure_pair(orig_rgb: np.ndarray, filtered_rgb: np.ndarray,
                 mask: np.ndarray | None = None) -> tuple[SkinTone, SkinTone, SkinShift]:
    """Original and filtered crop measured over the same mask, and their shift.

    The mask (the region) is shared, laid on the filtered crop where the filter
    moved the face (``aligned_onto``), and the clipped pixels are paired by count,
    not by place (``measure_skin_tones``'s ``clipped_in``, ``_exposed_as_in``):
    the filtered crop leaves out as many pixels as the original had clipped,
    the original's, or where the filter only moved clipping (a mirror, a warp),
    its own in their stead; clipping beyond the original's counts as the
    filter's doing. The percentile trimming runs on each image
    separately, so a filter that, say, darkens the eyes more than the cheeks
    may trim slightly different pixels. That is intended: each side is trimmed
    the way a single image would be.
    """
    orig_rgb = np.asarray(orig_rgb)
    if orig_rgb.ndim != 3 or orig_rgb.shape[2:] != (3,):
        raise ValueError(f"expected H×W×3 RGB crops, got shape {orig_rgb.shape}")
    return measure_pairs(orig_rgb[None], np.asarray(filtered_rgb)[None], mask)[0]


def measure_pairs(originals: np.ndarray, filtered: np.ndarray,
                  mask: np.ndarray | None = None) -> list[tuple[SkinTone, SkinTone, SkinShift]]:
    """``measure_pair`` for N×H×W×3 batches of originals and their filtered crops, in one measurement."""
    originals, filtered = np.asarray(originals), np.asarray(filtered)
    if originals.shape != filtered.shape:
        raise ValueError(f"original {originals.shape} and filtered {filtered.shape} crops differ in shape")
    aligned = aligned_onto(originals, filtered, mask)
    tones = measure_skin_tones(np.concatenate([originals, aligned.crops]), mask,
                               clipped_in=np.concatenate([originals, originals]))
    n = len(originals)
    return [(o, f, compare_skin(o, f, float(moved))) for o, f, moved in zip(tones[:n], tones[n:], aligned.moved_px)]
