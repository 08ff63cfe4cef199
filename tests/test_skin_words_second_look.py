"""The words that describe a filter's skin shift, read a second time against known-effect filters: a blue tint that
darkened every face "did not detectably change skin tone", groups whose L* was not shown to move were "darker", the
app called a yellow tint "darker", and a mirror's differences of 0.00002° were "darker" or "moved far".

The audit's sentences are built from a filter section made by ``filter_audit`` over faces given here (ΔITA, ΔL* and
b* before and after); the app's label from skin tones measured on swatches of the Monk scale through known filters.
"""
from __future__ import annotations

import numpy as np
import pytest

from inference.audit.filter_audit import filter_audit
from inference.audit.summary import ci, summary_lines
from inference.results import FaceResult, FaceView
from inference.skin import MONK_HEX, compare_skin, measure_pair

LIGHT, DARK = 65.0, 35.0  # L* of faces above and below 50, where more yellow lowers ITA and where it raises it
B = 15.0  # the faces' b* before the filter


def _skin(L: float, b: float) -> dict:
    return {"measurable": True, "L": L, "b": b, "category": "tan", "mst": 5}


def _section(d_itas: list[float], d_ls: list[float], b_shift: float, L: float | list[float] = LIGHT) -> dict:
    """A filter section over faces of one group ("x" of grouping "g"): each face's ΔITA and ΔL* given, its b* moved by
    ``b_shift`` give or take a little (the bootstrap needs values that differ), at lightness ``L`` (or each its own)."""
    lightness = L if isinstance(L, list) else [L] * len(d_itas)
    rows = [{"d_ita": d_ita, "d_l": d_l, "d_mst": 0, "skin": _skin(face_l, B),
             "filtered_skin": _skin(face_l, B + b_shift + 0.1 * b_shift * (i % 3)), "clf": {}}
            for i, (d_ita, d_l, face_l) in enumerate(zip(d_itas, d_ls, lightness))]
    return filter_audit(rows, {"g": ["x"] * len(rows)}, [], {})


def _report(fl: dict) -> dict:
    """The least of a report.json summary_lines reads, around a filter section."""
    n = fl["overall"]["n_faces"]
    return {"audit": {"dataset": "folder:x", "labelled": False},
            "images": {"n_images": n, "n_faces": n, "n_with_faces": n, "no_face": [], "unreadable": []},
            "groups": {"primary": "g", "small": {}, "groupings": ["g"]}, "classifiers": {}, "comparisons": [],
            "models": {"classifiers": []}, "focus": {}, "filter": fl, "caveats": ["none"]}


def _skin_lines(fl: dict) -> tuple[str, str]:
    """The overall skin-shift sentence and the group "x"'s part of "ΔITA by g"."""
    lines = summary_lines(_report(fl))
    # "Too few faces for the Wilcoxon test to tell …" where the test cannot reach significance (summary.too_few)
    [overall] = [x for x in lines if x.startswith(("The filter ", "Too few faces ")) and "ΔITA" in x]
    [by_g] = [x for x in lines if x.startswith("ΔITA by g: ")]
    return overall, by_g


def _verdict(overall: str) -> str:
    """The overall sentence's words, before its figures."""
    return overall.partition(": mean ΔITA")[0]


TWELVE = range(12)
DOWN = [-4.0 - 0.3 * i for i in TWELVE]  # every face lower: Wilcoxon p = 2/2¹², significant
EITHER_WAY = [(-1) ** i * (1.0 + 0.1 * i) for i in TWELVE]  # as many up as down: the test shows no move
FLAT = [0.2 * (-1) ** i * (1 + i // 2) for i in TWELVE]  # ΔL* ±0.2, ±0.4, …: its CI covers 0


def test_a_tint_that_moved_lightness_and_yellowness_but_no_ita_says_what_moved():
    # a blue tint RGB × (0.9, 0.95, 1.1): ΔL* -3.29 [-3.38, -3.20] and Δb* -10.48 on every face, ΔITA 0.48 [-2.05,
    # 2.56] (light faces' ITA rose with less yellow, dark faces' fell), and the filter "did not detectably change skin
    # tone"
    fl = _section(EITHER_WAY, [-3.0 - 0.05 * i for i in TWELVE], b_shift=-10.0)
    o = fl["overall"]
    assert o["delta_ita"]["wilcoxon"]["p"] >= 0.05 and o["delta_l"]["mean"]["hi"] < 0 and o["delta_b"]["mean"]["hi"] < 0
    overall, _ = _skin_lines(fl)
    assert overall.startswith(f"The filter did not detectably change skin's ITA overall (less yellow: Δb* "
                              f"{ci(o['delta_b']['mean'])}, while L* fell: ΔL* {ci(o['delta_l']['mean'])}): mean ΔITA "
                              ), overall
    # and where nothing moved, skin tone did not
    still = _section(EITHER_WAY, FLAT, b_shift=0.0)
    assert _skin_lines(still)[0].startswith("The filter did not detectably change skin tone overall: ")


def test_an_ita_shift_whose_lightness_was_not_shown_to_move_is_not_called_darker():
    # a contrast filter's male/Indian group: ΔITA -1.40 [-2.08, -0.95], Holm p < 0.001, beside ΔL* +0.26 [-1.21, 1.45],
    # had been "darker, significant"
    fl = _section(DOWN, FLAT, b_shift=0.05)
    o = fl["overall"]
    dl, db = o["delta_l"]["mean"], o["delta_b"]["mean"]
    assert o["delta_ita"]["wilcoxon"]["p"] < 0.05 and dl["lo"] < 0 < dl["hi"]
    overall, by_g = _skin_lines(fl)
    moved = f"L* was not shown to move: ΔL* {ci(dl)}, Δb* {ci(db)}"
    assert overall.startswith(f"The filter lowered skin's ITA overall ({moved}): mean ΔITA "), overall
    assert f"(lower ITA, {moved}, Holm " in by_g and "darker" not in by_g, by_g


@pytest.mark.parametrize("L, b_shift, word", [(DARK, 8.0, "higher"), (LIGHT, -8.0, "higher"), (LIGHT, 8.0, "lower")])
def test_an_ita_shift_yellowness_made_beside_a_slight_rise_of_lightness_is_not_lighter_or_darker(L, b_shift, word):
    """Yellowness moved ITA while L* rose a little, shown but not visibly (a yellow tint on dark faces: ITA up, L*
    33.70 → 33.98 on one face): "lighter" had been said of it. Where L* rose visibly it is lighter."""
    from inference.skin import JUST_NOTICEABLE_L

    sign = 1 if word == "higher" else -1
    slight = [JUST_NOTICEABLE_L / 4 + 0.01 * i for i in TWELVE]
    fl = _section([-sign * d for d in DOWN], slight, b_shift=b_shift, L=L)
    o = fl["overall"]
    assert o["delta_l"]["mean"]["lo"] > 0 and o["delta_ita_from_b"]["mean"]["lo" if sign > 0 else "hi"] * sign > 0
    overall, by_g = _skin_lines(fl)
    yellowness = "yellower" if b_shift > 0 else "less yellow"
    assert f"({word} ITA, {yellowness}: Δb* " in by_g and "while L* rose: ΔL* " in by_g, by_g
    assert "lighter" not in by_g and "darker" not in by_g and "lighter" not in _verdict(overall), overall
    if sign > 0:  # a rise of L* one can see is lightness, whatever b* did
        visible = _section([-d for d in DOWN], [JUST_NOTICEABLE_L + s for s in slight], b_shift=b_shift, L=L)
        assert "(lighter, Holm " in _skin_lines(visible)[1]


def test_a_rise_of_ita_yellowness_made_more_of_is_not_lighter_where_its_part_is_not_shown_either_way():
    """A yellow tint's male/Black group: ΔITA +2.61, of which Δb* made +1.78 [-1.48, 5.03] (faces either side of
    L* 50, where more yellow raises ITA and where it lowers it), ΔL* +0.49 [0.38, 0.61], had been "lighter"."""
    from inference.skin import JUST_NOTICEABLE_L

    either_side = [DARK if i % 3 else LIGHT for i in TWELVE]  # two dark faces to each light one
    slight = [JUST_NOTICEABLE_L / 4 + 0.01 * i for i in TWELVE]
    fl = _section([-d for d in DOWN], slight, b_shift=8.0, L=either_side)
    o = fl["overall"]
    from_b, delta_ita = o["delta_ita_from_b"]["mean"], o["delta_ita"]["mean"]
    assert from_b["lo"] < 0 < from_b["hi"] and abs(from_b["value"]) > abs(delta_ita["value"] - from_b["value"])
    assert o["delta_l"]["mean"]["lo"] > 0
    _, by_g = _skin_lines(fl)
    assert f"(higher ITA, L* rose: ΔL* {ci(o['delta_l']['mean'])}, Δb* {ci(o['delta_b']['mean'])}, Holm " in by_g, by_g


def test_a_group_mean_printed_as_zero_is_unchanged_and_has_no_minus():
    # a mirror filter's female/Black group: "-0.00 [95% CI -0.00, 0.00]° (darker, …)"
    tiny = [-(1 + i) * 1e-6 * (1 if i % 3 else -0.5) for i in TWELVE]
    _, by_g = _skin_lines(_section(tiny, tiny, b_shift=1e-6))
    assert "x: 0.00 [95% CI 0.00, 0.00]° (unchanged, Holm " in by_g and "-0.00" not in by_g, by_g


def _typical_face_unmoved(n: int, far_move: float) -> dict:
    """``n`` faces the filter left alone but six: five moved ``far_move`` (a little apart, for the exact test) and one
    a hundredth of it the other way. Wilcoxon over the six: p = 4/2⁶ = 0.0625, no move; the mean's CI clear of 0."""
    moved = [far_move * (1 + 0.01 * i) for i in range(5)] + [-far_move / 100]
    d_itas = moved + [0.0] * (n - len(moved))
    return _section(d_itas, [0.0] * n, b_shift=0.0)


def test_a_mean_printed_as_zero_is_no_move_of_a_minority_of_faces():
    # a mirror filter: "did not detectably change skin tone for the typical face (Wilcoxon), yet the mean is above 0
    # with its 95% CI: a minority of faces moved far overall: mean ΔITA 0.00 [95% CI 0.00, 0.00]°"
    fl = _typical_face_unmoved(40, far_move=1e-4)
    mean = fl["overall"]["delta_ita"]["mean"]
    assert mean["lo"] > 0 and fl["overall"]["delta_ita"]["wilcoxon"]["p"] >= 0.05
    overall, _ = _skin_lines(fl)
    assert overall.startswith("The filter did not detectably change skin tone overall: mean ΔITA 0.00 [95% CI 0.00, "
                              "0.00]°"), overall


def test_a_test_shown_significant_over_shifts_printed_as_zero_names_no_move():
    fl = _section([1e-5 * (1 + i) for i in TWELVE], [1e-5] * 12, b_shift=0.0)
    assert fl["overall"]["delta_ita"]["wilcoxon"]["p"] < 0.05
    overall, by_g = _skin_lines(fl)
    assert overall.startswith("The filter did not detectably change skin tone overall: "), overall
    assert "(unchanged, " in by_g, by_g


def test_a_minority_of_faces_moved_far_only_where_the_mean_shows_a_move_beyond_what_resizing_alone_makes():
    from inference.audit.summary import RESIZING_MOVES

    far = RESIZING_MOVES["ita"]  # what resizing a face to a filter's size and back moves its ITA by, no filter's doing
    n = 40
    slight = _skin_lines(_typical_face_unmoved(n, far_move=far))[0]  # 5 faces of 40 moved by it: a mean of far/8
    assert "yet the mean is above 0 with its 95% CI: a minority of faces moved overall" in slight, slight
    # the same five faces moved 8 × as far: the mean reaches far, and the five (fewer than half) moved more than 2 × it
    beyond = _skin_lines(_typical_face_unmoved(n, far_move=8 * far))[0]
    assert "yet the mean is above 0 with its 95% CI: a minority of faces moved far overall" in beyond, beyond


# --- the app's label: one face's word --------------------------------------------------------------------------------

YELLOW_TINT = np.array([1.02, 1.02, 0.85])  # R, G up a little, B down: b* up, L* up slightly


def _swatch_face(hex_colour: str, rng: np.random.Generator) -> np.ndarray:
    """A face crop of one Monk swatch's colour with a little noise, as a camera gives."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)], float)
    return np.clip(rgb + rng.normal(0, 3, (96, 96, 3)), 0, 255).astype(np.uint8)


def _filtered_faces(gains: np.ndarray, offset: float = 0.0) -> list[FaceResult]:
    """Each Monk swatch measured before and after RGB × ``gains`` + ``offset`` (0..255), as the app's faces."""
    rng = np.random.default_rng(0)
    faces = []
    for i, hex_colour in enumerate(MONK_HEX):
        before = _swatch_face(hex_colour, rng)
        after = np.clip(before * gains + offset, 0, 255).round().astype(np.uint8)
        tone, filtered_tone, _ = measure_pair(before, after)
        if tone.measurable and filtered_tone.measurable:
            faces.append(FaceResult(i, (0, 0, 96, 96), np.eye(2, 3), FaceView(before, {}, tone),
                                    FaceView(after, {}, filtered_tone), compare_skin(tone, filtered_tone)))
    return faces


def _delta_label(face: FaceResult) -> str:
    """The label's ΔITA, with its word: "Δ −7.6° lower ITA"."""
    from gui.painter import skin_lines

    return skin_lines(face)[0][-1][0]


def test_the_apps_label_calls_a_yellow_tint_neither_lighter_nor_darker():
    # "L* 57.83 -> 58.71 b* 16.39 -> 26.95 → ITA 25.5° → 17.9° Δ −7.6° darker", and on a dark face whose b* made the
    # shift, "L* 33.70 -> 33.98 → Δ +6.6° lighter"
    pytest.importorskip("PySide6")
    from gui.painter import NEUTRAL, compact_lines, skin_lines

    faces = _filtered_faces(YELLOW_TINT)
    assert any(f.original.skin.L > 50 for f in faces) and any(f.original.skin.L < 50 for f in faces)
    for face in faces:
        label = _delta_label(face)
        expected = "lower ITA" if face.original.skin.L > 50 else "higher ITA"  # ITA = atan((L* − 50)/b*), b* up
        assert label.endswith(expected), (face.original.skin, face.filtered.skin, label)
        assert skin_lines(face)[0][-1][1] == NEUTRAL  # neither lighter's colour nor darker's
        assert [c for t, c in compact_lines(face, None)[0] if t.startswith("ΔITA")] == [NEUTRAL]


@pytest.mark.parametrize("gains, offset, word", [(0.85, 0.0, "darker"), (0.85, 0.15 * 255, "lighter")])
def test_the_apps_label_calls_a_change_of_lightness_lighter_or_darker(gains, offset, word):
    pytest.importorskip("PySide6")
    from inference.skin import JUST_NOTICEABLE_L

    faces = _filtered_faces(np.full(3, gains), offset)
    assert faces
    for face in faces:
        label, moved = _delta_label(face), abs(face.filtered.skin.L - face.original.skin.L)
        if moved >= JUST_NOTICEABLE_L:  # a pale face lifted by less shows b* more than lightness
            assert label.endswith(word), (face.original.skin, face.filtered.skin, label)
