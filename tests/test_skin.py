"""Skin tone measurement: known colours, Monk swatches, paired shifts, edge cases, real faces."""
from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from skimage.color import lab2rgb, rgb2lab

from inference.results import SkinTone
from inference.skin import (
    MIN_B,
    MONK_HEX,
    compare_skin,
    face_skin_mask,
    ita_category,
    ita_degrees,
    measure_pair,
    measure_skin_tone,
    measure_skin_tones,
    nearest_monk,
    srgb_to_lab,
)
from tests.conftest import UTK_ROOT, utk_images


def ita_reference(L: float, b: float) -> float:
    """The textbook formula, written out independently of the module."""
    return math.atan((L - 50.0) / b) * 180.0 / math.pi


def reference_lab_mean(rgb: np.ndarray) -> tuple[int, np.ndarray]:
    """The method of inference/skin.py's docstring, one face at a time, written out independently:
    (pixels kept, their mean Lab)."""
    lab = rgb2lab(rgb[face_skin_mask(rgb.shape[:2])].reshape(-1, 1, 3) / 255.0).reshape(-1, 3)
    lab = lab[(lab[:, 0] >= 5) & (lab[:, 0] <= 98)]
    keep = np.ones(len(lab), bool)
    for channel, pct in ((0, (10, 90)), (1, (5, 95)), (2, (5, 95))):
        if len(lab):
            lo, hi = np.percentile(lab[:, channel], pct)
            keep &= (lab[:, channel] >= lo) & (lab[:, channel] <= hi)
    return int(keep.sum()), lab[keep].mean(axis=0) if keep.any() else np.full(3, np.nan)


def lab_patch(L: float, a: float, b: float, size: int = 128) -> np.ndarray:
    rgb = lab2rgb(np.array([[[L, a, b]]], float))
    pixel = np.round(np.clip(rgb, 0, 1) * 255).astype(np.uint8)
    return np.broadcast_to(pixel, (size, size, 3)).copy()


def face_like(skin_lab=(62.0, 14.0, 20.0), size: int = 160, seed: int = 0) -> np.ndarray:
    """A crude frontal face: background, hair, a noisy skin ellipse, dark eyes, red lips."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size]
    u, v = (x + 0.5) / size, (y + 0.5) / size
    lab = np.empty((size, size, 3))
    lab[:] = (55.0, -2.0, -12.0)  # bluish grey background
    face = ((u - 0.5) / 0.36) ** 2 + ((v - 0.5) / 0.45) ** 2 <= 1
    lab[face] = skin_lab
    lab[face] += rng.normal(0.0, (1.5, 1.0, 1.0), size=(int(face.sum()), 3))
    lab[(v < 0.17) | ((v < 0.35) & ~face)] = (14.0, 2.0, 4.0)  # hair
    for cx in (0.35, 0.65):
        lab[((u - cx) / 0.07) ** 2 + ((v - 0.40) / 0.03) ** 2 <= 1] = (22.0, 1.0, 0.0)
    lab[((u - 0.5) / 0.12) ** 2 + ((v - 0.70) / 0.035) ** 2 <= 1] = (45.0, 38.0, 16.0)
    return to_uint8(lab)


def to_uint8(lab: np.ndarray) -> np.ndarray:
    return np.round(np.clip(lab2rgb(lab), 0, 1) * 255).astype(np.uint8)


def shift_lightness(rgb: np.ndarray, delta_l: float) -> np.ndarray:
    lab = rgb2lab(rgb / 255.0)
    lab[..., 0] += delta_l
    return to_uint8(lab)


# --- colour science -------------------------------------------------------------


@pytest.mark.parametrize("lab", [(78.0, 8.0, 18.0), (66.0, 12.0, 20.0), (55.0, 14.0, 22.0),
                                 (45.0, 14.0, 24.0), (32.0, 10.0, 16.0)])
def test_uniform_patch_ita_matches_chosen_lab(lab):
    tone = measure_skin_tone(lab_patch(*lab))
    assert tone.measurable
    assert tone.ita == pytest.approx(ita_reference(lab[0], lab[2]), abs=0.5)
    assert tone.L == pytest.approx(lab[0], abs=0.5)
    assert tone.b == pytest.approx(lab[2], abs=0.5)


def test_srgb_to_lab_is_cielab_not_opencv_encoding():
    assert srgb_to_lab(np.array([255, 255, 255], np.uint8)) == pytest.approx([100.0, 0.0, 0.0], abs=0.01)
    assert srgb_to_lab(np.zeros((2, 2, 3), np.uint8)) == pytest.approx(np.zeros((2, 2, 3)), abs=1e-6)
    # uint8 and the same colour as float in [0, 1] agree
    rgb = np.array([[160, 126, 86]], np.uint8)
    assert srgb_to_lab(rgb) == pytest.approx(srgb_to_lab(rgb / 255.0))


def test_8bit_colours_get_skimages_lab():
    # uint8 crops take per-channel XYZ tables instead of rgb2lab's per-pixel curve: the same numbers
    rgb = np.random.default_rng(0).integers(0, 256, (200_000, 3), dtype=np.uint8)
    np.testing.assert_allclose(srgb_to_lab(rgb), rgb2lab(rgb.reshape(-1, 1, 3) / 255.0).reshape(-1, 3), rtol=0, atol=1e-9)


def test_ita_uses_arctan2_where_b_is_zero():
    assert ita_degrees(70.0, 0.0) == pytest.approx(90.0)
    assert ita_degrees(65.0, 15.0) == pytest.approx(45.0)
    assert np.allclose(ita_degrees(np.array([50.0, 60.0]), np.array([10.0, 10.0])), [0.0, 45.0])


@pytest.mark.parametrize("ita, category", [
    (80.0, "very light"), (55.01, "very light"), (55.0, "light"), (41.01, "light"),
    (41.0, "intermediate"), (28.01, "intermediate"), (28.0, "tan"), (10.01, "tan"),
    (10.0, "brown"), (-29.99, "brown"), (-30.0, "dark"), (-70.0, "dark"),
    (float("nan"), "not measurable"),
])
def test_ita_category_boundaries(ita, category):
    assert ita_category(ita) == category


@pytest.mark.parametrize("mst", range(1, 11))
def test_monk_swatch_maps_to_itself(mst):
    h = MONK_HEX[mst - 1]
    patch = np.broadcast_to(np.array([int(h[i:i + 2], 16) for i in (1, 3, 5)], np.uint8), (96, 96, 3)).copy()
    tone = measure_skin_tone(patch)
    assert tone.measurable
    assert tone.mst == mst
    assert nearest_monk((tone.L, tone.a, tone.b)) == mst


# --- paired comparison ----------------------------------------------------------


def test_darkening_lowers_ita_and_l_by_the_expected_amount():
    L0, a0, b0 = 62.0, 14.0, 20.0
    face = face_like((L0, a0, b0))
    original, filtered, shift = measure_pair(face, shift_lightness(face, -5.0))
    assert original.measurable and filtered.measurable
    # the trimmed mean sees the skin, not the hair, eyes, lips or background
    assert original.L == pytest.approx(L0, abs=0.5)
    assert original.ita == pytest.approx(ita_reference(L0, b0), abs=0.7)
    assert shift.delta_l == pytest.approx(-5.0, abs=0.3)
    expected = ita_reference(L0 - 5.0, b0) - ita_reference(L0, b0)  # about -11.5°
    assert shift.delta_ita == pytest.approx(expected, abs=0.7)
    assert shift.delta_mst is not None and shift.delta_mst <= 0


def test_scaling_rgb_shifts_as_the_skin_colour_predicts():
    L0, a0, b0 = 58.0, 13.0, 19.0
    face = face_like((L0, a0, b0), seed=1)
    skin_rgb = np.clip(lab2rgb(np.array([[[L0, a0, b0]]])), 0, 1)
    for factor in (0.8, 1.15):
        scaled = np.round(np.clip(face * factor, 0, 255)).astype(np.uint8)
        _, _, shift = measure_pair(face, scaled)
        L1, _, b1 = rgb2lab(np.clip(skin_rgb * factor, 0, 1))[0, 0]
        assert shift.delta_l == pytest.approx(L1 - L0, abs=0.5)
        assert shift.delta_ita == pytest.approx(ita_reference(L1, b1) - ita_reference(L0, b0), abs=1.0)
        assert np.sign(shift.delta_ita) == np.sign(factor - 1) == np.sign(shift.delta_l)


def test_brightening_gives_positive_shift():
    face = face_like((50.0, 15.0, 22.0), seed=2)
    _, _, shift = measure_pair(face, shift_lightness(face, 6.0))
    assert shift.delta_l == pytest.approx(6.0, abs=0.3)
    assert shift.delta_ita > 5.0
    assert shift.delta_mst >= 0


def _half_of_the_skin(face: np.ndarray) -> np.ndarray:
    """The mask's pixels on the left of the face: 40-60 % of the skin measured."""
    mask = face_skin_mask(face.shape[:2])
    mask[:, face.shape[1] // 2 :] = False
    return mask


@pytest.mark.parametrize("value, sign", [(0, -1), (255, 1)])
def test_skin_a_filter_crushes_to_black_or_blows_out_counts_as_darker_or_lighter(value, sign):
    """Clipped pixels hold no skin colour in a photo, so they are left out; but a filter that blackens half a face
    had its black half left out too (and read as doing nothing, or as lighter), one that blows it out likewise."""
    L0, b0 = 62.0, 20.0
    face = face_like((L0, 14.0, b0), seed=3)
    damaged = face.copy()
    damaged[_half_of_the_skin(face)] = value
    original, filtered, shift = measure_pair(face, damaged)
    assert original.measurable and filtered.measurable
    assert sign * shift.delta_l > 10.0 and sign * shift.delta_ita > 15.0
    # the same pixels are counted on both sides: the filter's clipped pixels are not dropped
    assert filtered.n_pixels > original.n_pixels / 2


def test_pixels_the_original_had_clipped_stay_out_of_the_filtered_face_too():
    """A filter that only repaints what the photo had clipped (a specular highlight) did nothing to the skin."""
    face = face_like((62.0, 14.0, 20.0), seed=4)
    glare = _half_of_the_skin(face)
    face[glare] = 255
    repainted = face.copy()
    repainted[glare] = face_like((40.0, 14.0, 20.0), seed=4)[glare]  # a darker skin where the glare was
    original, filtered, shift = measure_pair(face, repainted)
    assert original.measurable and filtered.measurable
    assert shift.delta_ita == 0.0 and shift.delta_l == 0.0


def _hair_on_one_side(face: np.ndarray) -> np.ndarray:
    """``face`` with near-black hair over the outer part of the skin mask's left side only: asymmetric clipping."""
    face = face.copy()
    mask = _half_of_the_skin(face)
    mask[:, face.shape[1] * 3 // 8:] = False
    face[mask] = 2
    return face


def test_a_filter_that_only_moves_pixels_changes_no_skin_tone():
    """Clipped pixels were left out of the filtered face by the original's positions: a mirror, which changes no
    colour, had the mirrored hair counted as skin it crushed (a mirrored face read up to 41° darker)."""
    face = _hair_on_one_side(face_like((45.0, 14.0, 24.0), seed=5))
    mirrored = np.ascontiguousarray(face[:, ::-1])
    assert (mirrored != face).any()
    _, _, shift = measure_pair(face, mirrored)
    assert shift.delta_ita == pytest.approx(0.0, abs=1e-9) and shift.delta_l == pytest.approx(0.0, abs=1e-9)


def test_clipping_beyond_the_originals_counts_when_some_also_moved():
    """The filter's own crushing still counts where it moved the photo's clipped pixels as well: only as many of its
    clipped pixels as the original's left out."""
    face = _hair_on_one_side(face_like((62.0, 14.0, 20.0), seed=6))
    moved_and_crushed = np.ascontiguousarray(face[:, ::-1])
    moved_and_crushed[_half_of_the_skin(face)] = 0  # the other side now blackened as well
    _, only_moved, _ = measure_pair(face, np.ascontiguousarray(face[:, ::-1]))
    _, crushed, shift = measure_pair(face, moved_and_crushed)
    assert shift.delta_l < -10.0 and crushed.L < only_moved.L - 10.0


def test_clipped_in_must_match_the_crops():
    faces = np.stack([face_like(), face_like(seed=1)])
    with pytest.raises(ValueError, match="differ in shape"):
        measure_skin_tones(faces, clipped_in=faces[:1])
    assert measure_skin_tones(faces, clipped_in=faces) == measure_skin_tones(faces)


def test_identity_filter_gives_zero_shift():
    face = face_like()
    _, _, shift = measure_pair(face, face.copy())
    assert shift.delta_ita == 0.0 and shift.delta_l == 0.0 and shift.delta_mst == 0


def test_compare_skin_signs_and_unmeasurable():
    light = SkinTone(True, 500, L=65.0, a=10.0, b=18.0, ita=39.8, ita_category="intermediate", mst=6)
    dark = SkinTone(True, 500, L=45.0, a=12.0, b=20.0, ita=-14.0, ita_category="brown", mst=7)
    shift = compare_skin(dark, light)  # the "filter" lightened
    assert shift.delta_ita > 0 and shift.delta_l == pytest.approx(20.0) and shift.delta_mst == 1
    none = compare_skin(light, SkinTone(False, 3))
    assert none.delta_ita is None and none.delta_l is None and none.delta_mst is None


# --- edge cases ----------------------------------------------------------------


@pytest.mark.parametrize("image", [np.zeros((128, 128, 3), np.uint8), np.full((4, 4, 3), 180, np.uint8),
                                   np.zeros((4, 4, 3), np.uint8), np.full((128, 128, 3), 255, np.uint8)],
                         ids=["black", "tiny", "tiny-black", "white"])
def test_unmeasurable_images(image):
    tone = measure_skin_tone(image)
    assert not tone.measurable
    assert tone.mst == 0 and math.isnan(tone.ita) and tone.ita_category == "not measurable"
    _, _, shift = measure_pair(image, image)
    assert shift.delta_ita is None


def test_patch_smaller_than_min_pixels_is_not_measurable():
    skin = lab_patch(60.0, 12.0, 20.0, size=12)  # 144 pixels < 200
    assert not measure_skin_tone(skin).measurable
    assert not measure_skin_tone(skin, mask=np.ones((12, 12), bool)).measurable
    big = lab_patch(60.0, 12.0, 20.0, size=128)
    small_region = np.zeros((128, 128), bool)
    small_region[60:70, 60:75] = True  # 150 pixels on a full-size crop
    assert not measure_skin_tone(big, mask=small_region).measurable
    small_region[60:80, 60:75] = True  # 300 pixels
    assert measure_skin_tone(big, mask=small_region).measurable


def test_small_but_sane_crop_is_measurable():
    tone = measure_skin_tone(lab_patch(60.0, 12.0, 20.0, size=40))  # 1600 px, mask ~200
    assert tone.measurable
    assert tone.ita == pytest.approx(ita_reference(60.0, 20.0), abs=0.5)


def test_mask_is_geometric_nonempty_and_off_the_border():
    a = face_skin_mask((160, 160), face_like(seed=0))
    b = face_skin_mask((160, 160), np.zeros((160, 160, 3), np.uint8))
    assert a.dtype == bool and a.shape == (160, 160)
    assert np.array_equal(a, b)
    assert 0.05 < a.mean() < 0.5
    border = max(1, 160 // 10)
    assert not a[:border].any() and not a[-border:].any()
    assert not a[:, :border].any() and not a[:, -border:].any()
    # the centre of the eye band and of the mouth are excluded, the cheeks are kept
    assert not a[int(0.35 * 160), int(0.35 * 160)] and not a[int(0.70 * 160), 80]
    assert a[int(0.55 * 160), int(0.35 * 160)] and a[int(0.55 * 160), int(0.65 * 160)]
    a[:] = False  # a copy: callers cannot spoil the cached mask
    assert face_skin_mask((160, 160)).any()


# --- real faces ----------------------------------------------------------------


def test_utkface_black_faces_measure_darker_than_white_faces():
    medians = {}
    for race in ("0", "1"):  # 0 White, 1 Black; utk_images fails (not skips) naming UTK_ROOT if it is missing
        paths = utk_images(20, race=race, min_age=18)
        assert len(paths) == 20, f"fewer than 20 adult race-{race} images in {UTK_ROOT}"
        tones = []
        for path in paths:
            bgr = cv2.imread(str(path))
            assert bgr is not None, f"cannot read {path}"
            tone = measure_skin_tone(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if np.array_equal(bgr[..., 0], bgr[..., 1]) and np.array_equal(bgr[..., 1], bgr[..., 2]):
                # UTKFace holds some black-and-white photos: no colour, so no skin tone
                assert not tone.measurable, f"{path.name} is greyscale but was measured"
                continue
            spread = max(int(np.abs(bgr[..., i].astype(int) - bgr[..., j]).max()) for i, j in ((0, 1), (1, 2)))
            if spread <= 16:  # and some are toned (sepia): b* ≈ 2, measured or not by a hair
                continue
            assert tone.measurable, f"{path.name} not measurable ({tone.n_pixels} px)"
            assert 1 <= tone.mst <= 10
            tones.append(tone)
        medians[race] = float(np.median([t.ita for t in tones]))
    assert medians["1"] < medians["0"], medians


def test_a_batch_measures_each_face_as_it_would_alone():
    faces = [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (128, 128), interpolation=cv2.INTER_AREA)
             for race in "01234" for p in utk_images(8, race=race)]
    glare = faces[0].copy()
    glare[40:60, 40:80] = 255  # blown out inside the mask: this face is trimmed on its own
    half_dark = faces[1].copy()
    half_dark[:, :64] = 0
    grey = np.full((128, 128, 3), 128, np.uint8)
    batch = np.stack([glare, *faces[2:20], half_dark, np.zeros((128, 128, 3), np.uint8), grey, face_like(size=128), *faces[20:]])
    together = measure_skin_tones(batch)
    alone = [measure_skin_tone(face) for face in batch]
    assert len(together) == len(batch)
    # every path is exercised: faces trimmed with the batch, faces trimmed alone, and unmeasurable ones
    lab = srgb_to_lab(batch[:, face_skin_mask((128, 128))])
    cut = ((lab[..., 0] < 5) | (lab[..., 0] > 98)).any(axis=1)
    assert cut.any() and (~cut).sum() > 20 and sum(not t.measurable for t in alone) >= 2
    for i, (t, a) in enumerate(zip(together, alone)):
        assert (t.measurable, t.n_pixels, t.mst, t.ita_category) == (a.measurable, a.n_pixels, a.mst, a.ita_category), i
        n, mean = reference_lab_mean(batch[i])
        assert t.n_pixels == n, i
        if a.measurable:
            assert [t.L, t.a, t.b, t.ita] == pytest.approx([a.L, a.a, a.b, a.ita], abs=1e-9), i
            assert [t.L, t.a, t.b] == pytest.approx(list(mean), abs=1e-9), i
    assert measure_skin_tones(batch[::-1])[0] == together[-1]
    nowhere = measure_skin_tones(batch[:3], mask=np.zeros((128, 128), bool))
    assert [(t.measurable, t.n_pixels) for t in nowhere] == [(False, 0)] * 3
    assert measure_skin_tones(batch[:0]) == []


def test_greyscale_face_is_not_measurable():
    grey = cv2.cvtColor(cv2.cvtColor(cv2.imread(str(utk_images(1)[0])), cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2RGB)
    tone = measure_skin_tone(grey)
    assert not tone.measurable and tone.mst == 0


def test_a_colour_cast_with_no_yellow_has_no_skin_tone_and_every_ita_stays_within_90_degrees():
    faces = np.stack([cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB), (112, 112),
                                 interpolation=cv2.INTER_AREA) for race in "01234" for p in utk_images(20, race=race)])
    tones = measure_skin_tones(faces)
    assert sum(t.measurable for t in tones) >= 90
    # a blue cast: plenty of chroma (a*, b* far from 0) but b* < 0, where arctan2 left (−90°, 90°)
    cast = faces.astype(np.float32)
    cast[..., 0] *= 0.75
    cast[..., 2] = np.minimum(cast[..., 2] * 1.6 + 30, 255)
    cast_tones = measure_skin_tones(np.rint(cast).astype(np.uint8))
    lab = [srgb_to_lab(c[face_skin_mask((112, 112))]).mean(axis=0) for c in np.rint(cast).astype(np.uint8)]
    blue = [i for i, m in enumerate(lab) if m[2] < -3 and np.hypot(m[1], m[2]) > 5]
    assert len(blue) >= 50, "the cast should turn most faces blue"
    assert not any(cast_tones[i].measurable for i in blue)
    for t in tones + cast_tones:
        if t.measurable:
            assert t.b >= MIN_B and -90 < t.ita < 90 and 1 <= t.mst <= 10
    # the wrap that made a 10-unit change in L* read as a 242° shift
    assert abs(ita_degrees(55, -3) - ita_degrees(45, -3)) > 180  # why b* ≤ 0 must never be measured


def test_a_references_clipped_pixels_found_from_luminance_are_those_lab_finds():
    """``clipped_in`` is read from luminance alone (cheaper than its full Lab): for every 8-bit colour it leaves out
    exactly the pixels the crops' own Lab would."""
    from inference.skin import _exposed, _exposed_pixels

    every = np.stack(np.meshgrid(*[np.arange(256, dtype=np.uint8)] * 3, indexing="ij"), -1).reshape(-1, 3)
    for part in np.array_split(every, 8):
        np.testing.assert_array_equal(_exposed_pixels(part), _exposed(srgb_to_lab(part)))
