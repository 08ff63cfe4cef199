"""The skin-shift words read a third time: a group of one or two faces was still "darker" by ΔITA's sign alone, the
ship gate called a yellow tint "lightness moved (lighter)" beside the summary's "higher ITA", a ΔP(female) printed
0.000 made faces "look more female", the app said "+0.0° same" of a face whose L* fell several units, and the app's
captions read "+ΔITA = lighter".

Sections are built by ``filter_audit`` over faces given here, with the helpers of the second look
(``test_skin_words_second_look``); one face's word from skin tones written down (``SkinTone``).
"""
from __future__ import annotations

import pytest

from inference.audit.filter_audit import filter_audit
from inference.audit.gate import filter_gate, lightness_words
from inference.audit.summary import ITA_DIGITS, P_DIGITS, ci, group_direction_words, summary_lines
from inference.results import SkinTone
from inference.skin import JUST_NOTICEABLE_L, ita_category, ita_degrees, shift_word
from tests.test_skin_words_second_look import B, DARK, DOWN, LIGHT, TWELVE, _report, _section, _skin, _skin_lines

SLIGHT = [JUST_NOTICEABLE_L / 4 + 0.01 * i for i in TWELVE]  # L* up, shown, but not visibly


# --- a group too small for an interval -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [1, 2])
@pytest.mark.parametrize("d_l", [JUST_NOTICEABLE_L / 4, -4 * JUST_NOTICEABLE_L])
def test_a_group_of_one_or_two_faces_is_not_called_lighter_or_darker(n, d_l):
    """A yellow tint's female/Asian face (ΔITA -16.86°, ΔL* +1.04, Δb* +16; the app's label "lower ITA") read
    "darker" in a 20-face audit: with no ΔL* interval the rule could not say no, and ΔITA's sign spoke. A group that
    small shows nothing, whichever way L* went, so its ITA is "lower", beside the ΔL* and Δb* it had."""
    fl = _section([DOWN[i] for i in range(n)], [d_l + 0.01 * i for i in range(n)], b_shift=8.0)
    s = fl["by"]["g"]["x"]
    dl, db = s["delta_l"]["mean"], s["delta_b"]["mean"]
    assert dl["lo"] is None and dl["value"] is not None  # measured, with no interval
    _, by_g = _skin_lines(fl)
    # one or two faces can never be rejected: left out of Holm's family (schema 18), the group's own p follows
    assert f"(lower ITA, too few faces to tell whether L* moved: ΔL* {ci(dl)}, Δb* {ci(db)}, p = " in by_g, by_g
    assert "left out of Holm's family" in by_g, by_g
    assert "darker" not in by_g, by_g


# --- one rule for the summary and the ship gate ----------------------------------------------------------------------

def _gate_and_summary(fl: dict) -> tuple[str, str]:
    """The ship gate's words on group "x"'s ΔITA row, and the summary's word for that group."""
    gate = filter_gate(fl, max_delta_ita=2.0, max_delta_p=None)
    [row] = [r for r in gate["rows"] if r["measure"] == "delta_ita" and r["group"] == "x"]
    s = fl["by"]["g"]["x"]
    return lightness_words(row), group_direction_words(s, s["delta_ita"]["mean"]["value"])


CASES = {  # (ΔITA of each face, ΔL* of each face, Δb*, L* of the faces)
    # a yellow tint on dark faces: ITA up, made by b*; L* up by less than one can see (male/Black: ΔITA +2.61, ΔL*
    # +0.49 [+0.38, +0.61], Δb* +6.96: the gate had read "lightness moved (lighter)", the summary "higher ITA")
    "yellow tint, dark faces": ([-d for d in DOWN], SLIGHT, 8.0, DARK),
    # and on light faces: ITA down while L* rose
    "yellow tint, light faces": (DOWN, SLIGHT, 8.0, LIGHT),
    # L* up visibly: lighter, whatever b* did
    "lightened": ([-d for d in DOWN], [JUST_NOTICEABLE_L + s for s in SLIGHT], 8.0, DARK),
    # L* up, b* unmoved: L* made the move, though under a unit
    "lightened slightly": ([-d for d in DOWN], SLIGHT, 0.0, LIGHT),
    # L* not shown to move
    "ita alone": (DOWN, [0.2 * (-1) ** i * (1 + i // 2) for i in TWELVE], 0.05, LIGHT),
}


@pytest.mark.parametrize("case", CASES)
def test_the_ship_gate_and_the_summary_call_a_groups_ita_shift_by_one_rule(case):
    d_itas, d_ls, b_shift, L = CASES[case]
    gate_words, summary_word = _gate_and_summary(_section(d_itas, d_ls, b_shift=b_shift, L=L))
    for word in ("lighter", "darker"):
        said_by_summary = summary_word == word
        assert (f"lightness moved ({word})" in gate_words) == said_by_summary, (case, gate_words, summary_word)
    for word in ("higher ITA", "lower ITA"):
        assert gate_words.startswith("; ΔL* ") and (f": {word}, not " in gate_words) == summary_word.startswith(word), (
            case, gate_words, summary_word)


def test_the_gate_says_a_yellow_tints_rise_of_ita_is_not_lighter_and_why():
    d_itas, d_ls, b_shift, L = CASES["yellow tint, dark faces"]
    gate_words, summary_word = _gate_and_summary(_section(d_itas, d_ls, b_shift=b_shift, L=L))
    assert summary_word.startswith("higher ITA, "), summary_word
    assert gate_words.endswith(f": higher ITA, not lighter: L* rose by under {JUST_NOTICEABLE_L:g} unit, and b* made "
                               "more of the move"), gate_words


def test_the_gate_prints_delta_l_to_the_digits_its_words_read():
    """The gate's words read ΔL* as the summary prints it (to 0.01); printed to three figures beside them, a CI of
    [+0.003, +0.009] would sit beside "lightness not shown to move"."""
    tiny = [0.003 + 0.0005 * i for i in TWELVE]
    gate_words, _ = _gate_and_summary(_section(DOWN, tiny, b_shift=0.05))
    fl_l = _section(DOWN, tiny, b_shift=0.05)["by"]["g"]["x"]["delta_l"]["mean"]
    assert fl_l["lo"] > 0  # clear of 0 as measured, not as printed
    assert "ΔL* +0.01 [+0.00, +0.01]" in gate_words and "lightness not shown to move" in gate_words, gate_words


def test_a_rise_of_l_printed_as_a_visible_one_is_not_said_to_be_under_it():
    """A yellow tint's group whose mean ΔL* of 0.996 printed "ΔL* +1.00" beside "L* rose by under 1 unit": the
    words read ΔL* as measured, the figure beside them as printed."""
    just_under = JUST_NOTICEABLE_L - 0.4 * 10 ** -ITA_DIGITS  # prints as JUST_NOTICEABLE_L
    d_itas, _, b_shift, L = CASES["yellow tint, dark faces"]
    d_ls = [just_under + 0.01 * (i - (len(TWELVE) - 1) / 2) for i in TWELVE]  # their mean: just_under
    fl = _section(d_itas, d_ls, b_shift=b_shift, L=L)
    dl = fl["by"]["g"]["x"]["delta_l"]["mean"]
    assert dl["value"] < JUST_NOTICEABLE_L and ci(dl).startswith(f"{JUST_NOTICEABLE_L:.{ITA_DIGITS}f} "), ci(dl)
    gate_words, summary_word = _gate_and_summary(fl)
    assert gate_words.endswith(": lightness moved (lighter)") and summary_word == "lighter", (gate_words, summary_word)


# --- ΔP(female) words follow its printed digits -----------------------------------------------------------------------

def test_a_delta_p_printed_as_zero_makes_no_face_look_more_female():
    """A filter brightening a 2×2 corner: every face's P(female) up by 1e-5, the test significant, and "the filter made
    faces look more female: mean ΔP(female) 0.000 [95% CI 0.000, 0.000]"."""
    tiny = 10.0 ** -(P_DIGITS + 2)
    rows = [{"d_ita": 0.0, "d_l": 0.0, "d_mst": 0, "skin": _skin(LIGHT, B), "filtered_skin": _skin(LIGHT, B),
             "clf": {"m": {"dp": tiny * (1 + 0.1 * i), "pred_ref": "male", "pred_f": "male", "flip": False}}}
            for i in TWELVE]
    fl = filter_audit(rows, {"g": ["x"] * len(rows)}, ["m"], {})
    d = fl["overall"]["classifiers"]["m"]["delta_p_female"]
    # the mean prints as 0.000 (its interval, the betting one on 12 faces, is wide: [-0.295, 0.295])
    assert d["wilcoxon"]["p"] < 0.05 and ci(d["mean"], P_DIGITS).startswith("0.000 [95% CI ")
    [line] = [x for x in summary_lines(_report(fl)) if x.startswith("m: ") and "mean ΔP(female)" in x]
    assert line.startswith("m: the filter did not detectably change P(female): mean ΔP(female) "), line


# --- one face's word --------------------------------------------------------------------------------------------------

def _tone(L: float, b: float) -> SkinTone:
    ita = ita_degrees(L, b)
    return SkinTone(measurable=True, n_pixels=1000, L=L, a=10.0, b=b, ita=ita, ita_category=ita_category(ita), mst=5)


@pytest.mark.parametrize("sign, word", [(1, "lighter"), (-1, "darker")])
def test_a_face_whose_l_made_its_ita_shift_is_lighter_or_darker_though_it_moved_under_a_unit(sign, word):
    """L* alone moved (b* unchanged), by half a just noticeable difference: its part of ΔITA is all of it. Reading
    "lighter" off ``abs(ΔL*) >= 1`` alone had passed every test."""
    before = _tone(LIGHT, 15.0)
    after = _tone(LIGHT + sign * JUST_NOTICEABLE_L / 2, 15.0)
    assert round(after.ita - before.ita, 1) != 0
    assert shift_word(before, after) == word


@pytest.mark.parametrize("sign, moved", [(-1, "fell"), (1, "rose")])
def test_a_face_whose_ita_shows_no_move_while_l_moved_visibly_says_so(sign, moved):
    """The default filter took a face's L* 72.71 → 68.06 and b* with it, along the same angle: "Δ +0.0° same"."""
    pytest.importorskip("PySide6")
    from gui.painter import NEUTRAL, skin_lines
    from inference.results import FaceResult, FaceView
    from inference.skin import compare_skin

    before = _tone(LIGHT, 15.0)
    L = LIGHT + sign * 4 * JUST_NOTICEABLE_L
    after = _tone(L, 15.0 * (L - 50) / (LIGHT - 50))  # the same ITA
    assert shift_word(before, after) == f"same ITA, L* {moved}"
    face = FaceResult(0, (0, 0, 96, 96), None, FaceView(None, {}, before), FaceView(None, {}, after),
                      compare_skin(before, after))
    text, colour = skin_lines(face)[0][-1]
    assert text.endswith(f"° same ITA, L* {moved}") and colour == NEUTRAL, text
    # a move of L* one cannot see is no move
    still = _tone(LIGHT + sign * JUST_NOTICEABLE_L / 2, 15.0 * (LIGHT + sign * JUST_NOTICEABLE_L / 2 - 50) / (LIGHT - 50))
    assert shift_word(before, still) == "same"


# --- the app's captions and legend ------------------------------------------------------------------------------------

def test_no_caption_of_the_app_calls_a_positive_delta_ita_lighter():
    pytest.importorskip("PySide6")
    from gui.painter import HIGHER_ITA
    from gui.plots import HIST_ITA_CAPTION, ITA_CAPTION
    from gui.recording import SIGN_CONVENTION
    from gui.session_summary import SUMMARY_NOTE

    for caption in (ITA_CAPTION, HIST_ITA_CAPTION, SUMMARY_NOTE):
        assert "lighter" not in caption, caption
    assert "+ = higher ITA" in HIST_ITA_CAPTION and HIGHER_ITA in SUMMARY_NOTE
    assert "positive delta_ita = higher ITA" in SIGN_CONVENTION, SIGN_CONVENTION


def test_the_legend_names_every_colour_a_delta_ita_is_drawn_in():
    """painter.shift_colour draws "higher ITA" / "lower ITA" in a neutral colour the help's legend had not named."""
    pytest.importorskip("PySide6")
    from gui.frame_view import HELP_HTML
    from gui.painter import shift_colour

    for word in ("lighter", "darker", "higher ITA", "lower ITA", "same", "same ITA, L* fell"):
        assert f"color:{shift_colour(word).name()}" in HELP_HTML, word
