"""The summary's words on groups too small for their test, on the highest error rates, and on faces that are not
independent, read as a statistician reads them.

Under 6 faces that moved, the exact signed-rank test cannot give p < 0.05 (its least p is 2/2ⁿ: 0.0625 at 5), and
under 6 values the median has no interval; a group of 3 faces that all moved about +13° had read "not significant
(though the mean's 95% CI lies above 0: a minority of faces moved far, not the typical face)", and a whole audit of
5 faces all about +10° "did not detectably change skin's ITA for the typical face". Groups of 1 or 2 faces were "not
significant" where no test could be. "Highest FPR" named one misclassified face as "male/Others (100.0%)" beside the
accuracy's "(0.0% [95% CI 0.0%, 94.9%], n=1, small group)" for the same face. And every test took photos of one
person as independent faces.

Filter sections are built by ``filter_audit`` over faces given here, classifier metrics by ``classifier_metrics``.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from inference.audit.classifier_audit import classifier_metrics, p_female_distribution
from inference.audit.filter_audit import filter_audit
from inference.audit.report import caveats
from inference.audit.stats import holm
from inference.audit.summary import ALPHA, group_test_words, least_holm_p, least_p, summary_lines
from tests.test_skin_words_second_look import _report  # the least of a report.json summary_lines reads

ARCHITECTURE = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"
WIDE = [(-1) ** i * (1.0 + 0.1 * i) for i in range(12)]  # a group of as many up as down: p well above 0.05


def _skin() -> dict:
    return {"measurable": True, "L": 65.0, "b": 15.0, "category": "tan", "mst": 5}


def _face(d_ita: float, dp: float | None = None) -> dict:
    """One face of a filter section: its ΔITA (ΔL* a tenth of it, b* unmoved) and, given, its ΔP(female) from "m"."""
    clf = {} if dp is None else {"m": {"dp": dp, "pred_ref": "male", "pred_f": "male", "flip": False}}
    return {"d_ita": d_ita, "d_l": d_ita / 10, "d_mst": 0, "skin": _skin(), "filtered_skin": _skin(), "clf": clf}


def _section(groups: dict[str, list[float]], dps: dict[str, list[float]] | None = None) -> dict:
    """A filter section of grouping "g", each group's faces' ΔITA given (and their ΔP(female) from "m", given)."""
    faces = [_face(v, (dps or {}).get(g, [None] * len(vs))[i]) for g, vs in groups.items() for i, v in enumerate(vs)]
    return filter_audit(faces, {"g": [g for g, vs in groups.items() for _ in vs]}, ["m"] if dps else [], {})


def _ita_part(fl: dict, group: str) -> str:
    """A group's part of "ΔITA by g"."""
    [line] = [x for x in summary_lines(_report(fl)) if x.startswith("ΔITA by g: ")]
    return next(p for p in line[len("ΔITA by g: "):].rstrip(".").split("; ") if p.startswith(f"{group}: "))


def _overall_skin(fl: dict) -> str:
    [line] = [x for x in summary_lines(_report(fl)) if "mean ΔITA" in x]
    return line


# --- 1. a group too small for its test --------------------------------------------------------------------------------

@pytest.mark.parametrize("moved", [[12.0, 13.0, 14.0], [11.0, 13.0, 14.0, 15.0, 16.0]])
def test_a_small_group_whose_faces_all_moved_is_too_few_for_the_test_not_a_minoritys_move(moved):
    """The review's repro: ΔITA [12, 13, 14] (and n = 5) in one of 4 groups."""
    fl = _section({"x": moved, "a": WIDE, "b": WIDE, "c": WIDE})
    w = fl["by"]["g"]["x"]["delta_ita"]["wilcoxon"]
    assert w["p"] == least_p(w) == 2 / 2 ** len(moved) >= ALPHA  # every face one way: the least p there is
    part = _ita_part(fl, "x")
    k = len(moved)
    least = least_holm_p(fl["by"]["g"], "x", lambda cell: cell["delta_ita"]["wilcoxon"])
    # since schema 18 a group whose least p is not below α is left out of Holm's family: its least p is its own
    assert least == least_p(w) and w["holm_family"] is False and w["p_holm"] is None
    assert (f"p = {least:.3f}, too few faces to reach significance (the least p possible with {k} faces is "
            f"{least:.3f}, so it is left out of Holm's family), though ITA rose on all {k} faces and the mean's 95% CI "
            "lies above 0)") in part, part
    assert "minority" not in part and "typical face" not in part and "not significant" not in part, part


@pytest.mark.parametrize("n", [1, 2])
def test_a_group_of_one_or_two_faces_is_not_called_not_significant(n):
    fl = _section({"x": [15.0 + i for i in range(n)], "a": WIDE})
    part = _ita_part(fl, "x")
    on = {1: "the one face", 2: "both faces"}[n]
    assert f"too few faces to reach significance (the least p possible with {n} face" in part, part
    assert "left out of Holm's family" in part, part
    assert f"though ITA rose on {on})" in part and "not significant" not in part, part


def test_holms_factor_can_make_six_faces_too_few_though_alone_they_are_significant():
    """Six faces all down: p = 2/2⁶ = 0.031 on their own, significant; among 3 groups Holm multiplies it by 3."""
    six = [-1.0 - 0.2 * i for i in range(6)]
    alone = _section({"x": six})
    assert "Holm p = 0.031, significant" in _ita_part(alone, "x")
    among = _section({"x": six, "a": WIDE, "b": WIDE})
    part = _ita_part(among, "x")
    assert ("too few faces to reach significance (the least Holm p possible with 6 faces here is 0.094), though ITA "
            "fell on all 6 faces and the mean's and the median's 95% CIs lie below 0, median ") in part, part


def test_the_least_holm_p_is_holm_over_the_groups_with_the_groups_p_at_its_least():
    # six faces moved (least p 2/2⁶ < α), so x is in Holm's family; a group of 4 (least p 0.125) is left out of it
    fl = _section({"x": [12.0, 13.0, 14.0, 15.0, 16.0, -0.5], "a": WIDE, "b": [1.0 + 0.1 * i for i in range(8)],
                   "out": [12.0, 13.0, 14.0, -0.5]})
    by = fl["by"]["g"]
    test_of = lambda cell: cell["delta_ita"]["wilcoxon"]  # noqa: E731
    ps = [2 / 2 ** 6, test_of(by["a"])["p"], test_of(by["b"])["p"]]
    assert least_holm_p(by, "x", test_of) == pytest.approx(holm(ps)[0])
    assert least_holm_p(by, "out", test_of) == least_p(test_of(by["out"])) == 2 / 2 ** 4  # out of it: its own
    assert least_p({"n_nonzero": 0, "n": 5}) is None  # no face moved: the faces show no move, they are not too few


def test_a_group_of_enough_faces_keeps_not_significant():
    part = _ita_part(_section({"x": WIDE, "a": WIDE}), "x")
    assert "not significant" in part and "too few" not in part, part


def test_the_minority_words_need_a_median_interval():
    """``group_test_words`` without the group's least Holm p (the reviewer's call): 3 faces all up, no median
    interval, had been "a minority of faces moved far, not the typical face"."""
    fl = _section({"x": [12.0, 13.0, 14.0], "a": WIDE, "b": WIDE, "c": WIDE})
    shift = fl["by"]["g"]["x"]["delta_ita"]
    # left out of Holm's family (least p 2/2³ ≥ α: schema 18), its own p is what its words are read by
    assert shift["median"]["lo"] is None and shift["wilcoxon"]["p_holm"] is None and shift["wilcoxon"]["p"] >= ALPHA
    assert group_test_words(shift, 4) == " (though the mean's 95% CI lies above 0)"


# --- 2. an audit too small for its test --------------------------------------------------------------------------------

def test_an_audit_of_five_faces_that_all_moved_is_too_few_not_unchanged_for_the_typical_face():
    fl = _section({"x": [9.0, 10.0, 11.0, 12.0, 10.5]}, {"x": [-0.30, -0.31, -0.29, -0.33, -0.32]})
    overall = _overall_skin(fl)
    assert overall.startswith("Too few faces for the Wilcoxon test to tell whether the filter changed skin's ITA "
                              "overall ("), overall  # ΔL* and Δb* follow, in brackets
    assert ", though ITA rose on all 5 faces and the mean's 95% CI lies above 0: mean ΔITA " in overall, overall
    assert ("(Wilcoxon p = 0.062, too few faces to reach significance (the least p possible with 5 faces is 0.062); "
            "rank-biserial +1.00)") in overall, overall
    assert "minority" not in overall and "typical face" not in overall and "not significant" not in overall
    [p_line] = [x for x in summary_lines(_report(fl)) if x.startswith("m: ") and "ΔP(female)" in x]
    # its mean's interval is left to stats (another method for a bounded ΔP may change it): the words before it only
    assert p_line.startswith("m: too few faces for the Wilcoxon test to tell whether the filter changed P(female), "
                             "though P(female) fell on all 5 faces"), p_line
    assert "minority" not in p_line and "not significant" not in p_line, p_line


def test_a_few_faces_that_moved_among_many_that_did_not_are_a_minority_where_the_median_shows_it():
    """35 faces unmoved and 5 moved far: the test drops the zeros and cannot reach significance on 5, while the
    median's interval ([0, 0]) shows that the typical face did not move."""
    fl = _section({"x": [8.0 + 0.1 * i for i in range(5)] + [0.0] * 35})
    overall = _overall_skin(fl)
    assert overall.startswith("Too few faces for the Wilcoxon test to tell whether the filter changed skin's ITA "
                              "overall ("), overall
    assert ("), though ITA rose on all 5 faces that moved (35 of 40 did not) and the mean's 95% CI lies above 0 while "
            "the median's includes it: a minority of faces moved far, not the typical face: mean ΔITA ") in overall
    assert "the least p possible with the 5 faces that moved (of 40) is 0.062" in overall, overall


# --- 3. the highest error rates named as the accuracy is -----------------------------------------------------------------

def _classifier_report(spec: dict[str, tuple[int, int]]) -> dict:
    """A labelled report of one classifier "m" over groups of gender_race: each group's faces and how many it
    called right."""
    rows, labels = [], []
    for g, (n, right) in spec.items():
        gender = g.split("/")[0]
        other = "male" if gender == "female" else "female"
        for i in range(n):
            pred = gender if i < right else other
            rows.append({"face": 0, "gender": gender, "clf": {"m": {"p": 0.9 if pred == "female" else 0.1,
                                                                    "pred": pred}}})
            labels.append(g)
    metrics = classifier_metrics(rows, {"gender_race": labels}, ["m"])["m"]
    n = len(rows)
    return {"audit": {"dataset": "utkface", "labelled": True},
            "images": {"n_images": n, "n_faces": n, "n_with_faces": n, "no_face": [], "unreadable": []},
            "groups": {"primary": "gender_race", "small": {}, "groupings": ["gender_race"]},
            "classifiers": {"m": {"metrics": metrics, "p_female": {"overall": p_female_distribution(
                [r["clf"]["m"]["p"] for r in rows])}}},
            "comparisons": [], "labels": None, "models": {"classifiers": []}, "focus": {}, "filter": None,
            "caveats": ["none"]}


def _by_line(r: dict) -> str:
    [line] = [x for x in summary_lines(r) if x.startswith("m by gender_race: ")]
    return line


def test_the_highest_fpr_names_its_interval_n_and_small_group_as_the_lowest_accuracy_does():
    """The review's repro: one male/Others face, misclassified."""
    r = _classifier_report({"female/White": (300, 291), "male/White": (300, 291), "female/Black": (150, 142),
                            "male/Black": (150, 146), "male/Others": (1, 0), "female/Others": (2, 2)})
    line = _by_line(r)
    assert "lowest accuracy for male/Others (0.0% [95% CI 0.0%, 94.9%], n=1, small group)" in line, line
    assert ("Highest FPR (annotated male called female): male/Others (100.0% [95% CI 5.1%, 100.0%], n=1, small "
            "group);") in line, line
    fnr = r["classifiers"]["m"]["metrics"]["by"]["gender_race"]["female/Black"]["fnr"]
    assert "highest FNR (annotated female called male): female/Black (5.3% [95% CI " in line, line
    assert f", n={fnr['n']})." in line, line


def test_an_error_rate_every_group_shares_is_said_so():
    r = _classifier_report({"female/White": (20, 20), "male/White": (20, 20), "female/Black": (20, 20),
                            "male/Black": (20, 19)})
    line = _by_line(r)
    assert "highest FNR (annotated female called male): every group alike (0.0%)." in line, line
    assert "Highest FPR (annotated male called female): male/Black (5.0% [95% CI " in line, line


# --- 4. faces that are not independent ----------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["utkface", "fairface", "celeba", "folder"])
def test_the_caveats_say_the_tests_take_faces_as_independent_which_photos_of_one_person_are_not(kind):
    [said] = [c for c in caveats(kind) if "independent" in c]
    assert "one person" in said and "one video" in said and "group photo" in said, said
    assert "significance is overstated" in said, said


def test_the_architecture_does_not_reason_that_different_photographs_are_independent_faces():
    text = " ".join(ARCHITECTURE.read_text(encoding="utf-8").split())
    assert "its faces are different photographs" not in text
    assert "different photographs are not different people" in text


# --- 5. a Holm family of one, and McNemar groups with no discordant face ---------------------------------------------

def _one_real_group_report() -> dict:
    """The review's one_group.py: female/White (12 faces, Wilcoxon p = 0.233) alone in Holm's family beside three
    groups of 2–4 faces, whose least p is not below α."""
    from inference.audit.report import build_report
    from tests.test_audit_holm_family import _row

    big = [5.0, 5.2, 4.8, 5.1, 4.9, 5.3, 4.7, 5.4, 4.6, 5.5, -6.0, -7.0]
    rows, i = [], 0
    for gender, race, shifts in (("female", "White", big), ("male", "White", [1.0, -2.0, 3.0]),
                                 ("female", "Black", [2.0, 1.5]), ("male", "Black", [0.5, -0.5, 1.0, 2.0])):
        for d in shifts:
            rows.append(_row(i, gender, race, d, right=True))
            i += 1
    audit = {"dataset": "folder:x", "kind": "folder", "split": None, "min_age": None, "limit": None, "detect": False,
             "detector": "aligned", "max_faces": None, "groups_csv": None, "cam_class": "predicted",
             "filter_condition": None}
    model = {"file": "m.onnx", "sha256": "0" * 64, "card": {}, "labels": ["male", "female"], "input_size": [32, 32]}
    models = {"classifiers": [{**model, "name": n} for n in ("a", "b")], "crop_size": 112,
              "filter": {**model, "name": "f", "file": "f.onnx", "direction": "", "method": "", "conditions": []}}
    return build_report(audit=audit, models=models, images=[
        {"file": r["file"], "error": None, "n_faces": 1, "gender": r["gender"], "race": r["race"],
         "age_band": r["age_band"], "group": None} for r in rows], rows=rows, labelled=True, names=["a", "b"],
        has_filter=True, filter_training={}, extra_images={})


def test_a_group_alone_in_holms_family_is_not_said_to_be_adjusted_by_holm_over_1_groups():
    """"Holm p = 0.233, not significant (…: the test, adjusted by Holm over the 1 groups, does not reach
    significance)": a family of one adjusts nothing, and its own p 0.233 was not significant before any adjustment."""
    r = _one_real_group_report()
    w = r["filter"]["by"]["gender_race"]["female/White"]["delta_ita"]["wilcoxon"]
    assert w["holm_family"] is True and w["holm_family_size"] == 1 and w["p_holm"] == w["p"] >= ALPHA, w
    [line] = [x for x in r["summary"] if x.startswith("ΔITA by gender_race: ")]
    part = next(p for p in line.split("; ") if p.startswith("female/White: "))
    assert "Holm p = 0.233, not significant (though the mean's and the median's 95% CIs lie above 0" in part, part
    assert part.endswith(": the Wilcoxon test does not reach significance))"), part
    assert "adjusted by Holm" not in part and "1 groups" not in part, part


@pytest.mark.parametrize("n_tested, said", [(1, ": the Wilcoxon test does not reach significance)"),
                                            (2, ": the test, adjusted by Holm over the 2 groups, does not reach "
                                                "significance)")])
def test_holms_adjustment_is_blamed_only_where_it_made_the_difference(n_tested, said):
    """Own p below α, Holm's over 2 groups not: the adjustment is why; in a family of one it cannot be."""
    from inference.audit.summary import _not_shown_beside_the_mean

    median = {"value": 2.0, "lo": 1.0, "hi": 3.0}
    words = _not_shown_beside_the_mean(1, median, n_tested, "", 0.03)
    assert words.endswith(said), words
    assert "1 groups" not in words, words


def _comparison(a, b, groups) -> str:
    from inference.audit.classifier_audit import paired_accuracy
    from inference.audit.summary import comparison_line

    [c] = paired_accuracy({"m1": a, "m2": b}, {"g": groups})
    return comparison_line(c, "g")


def test_groups_where_both_classifiers_got_the_same_faces_right_are_not_too_few_faces():
    """"8 of the 8 gender_race groups had too few faces right by only one of the two … to reach significance"
    where no group had a face right by only one: there is no difference to find, not too little data."""
    import numpy as np

    a = np.random.default_rng(0).random(40) < 0.8
    line = _comparison(a, a.copy(), ["X"] * 20 + ["Y"] * 20)
    assert "too few" not in line, line
    assert "The two classifiers got the same faces right in 2 of the 2 g groups" in line, line
    assert " No g group differs detectably." in line and "after Holm" not in line, line  # the family is empty


def test_a_group_with_no_discordant_face_is_counted_apart_from_one_with_too_few():
    """evaluate_json.py: X with 8 discordant faces (in Holm's family), Y with none, Z with 3 (too few)."""
    import numpy as np

    a = np.random.default_rng(0).random(64) < 0.9
    b = a.copy()
    b[:8] = ~b[:8]  # X: 8 faces right by only one
    b[52:55] = ~b[52:55]  # Z: 3
    line = _comparison(a, b, ["X"] * 40 + ["Y"] * 4 + ["Z"] * 20)
    assert " No g group differs detectably after Holm." in line, line  # X was weighed by Holm
    assert "The two classifiers got the same faces right in 1 of the 3 g groups" in line, line
    assert "1 of the 3 g groups had too few faces right by only one of the two (5 or fewer)" in line, line
