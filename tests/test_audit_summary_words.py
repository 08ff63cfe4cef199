"""The summary's words beside the figures printed with them, read as a researcher reads them.

A ΔP(female) the Wilcoxon test called significant stood beside a mean whose 95% CI straddled 0 ("the filter made
faces look more male: mean ΔP(female) -0.010 [95% CI -0.024, 0.004]"), the Holm line named groups with no direction,
and a group's ΔITA "3.13 [95% CI 0.40, 5.85]°" was "not significant" with no word of why; the copies of photographs
counted over the whole dataset were told as if of the 40 images audited; the schema said the terminal prints every
sentence of the summary, while it leaves the per-group ones to the report.

Filter sections are built by ``filter_audit`` over faces given here; each test first checks that the section shows
the disagreement it is about, so that the words are read where they matter.
"""
from __future__ import annotations

import re
from pathlib import Path

from inference.audit.filter_audit import filter_audit
from inference.audit.summary import (ALPHA, ITA_DIGITS, P_DIGITS, _clear_of_zero, _effect, ci, is_detail, median_ci,
                                     pval, summary_lines)

SCHEMA = Path(__file__).resolve().parents[1] / "docs" / "audit_schema.md"
TYPICAL, FEW = 30, 3  # faces that moved a little one way, and the few that moved far the other


def _skin() -> dict:
    return {"measurable": True, "L": 65.0, "b": 15.0, "category": "tan", "mst": 5}


def _face(d_ita: float, dp: float | None = None) -> dict:
    """One face of a filter section: its ΔITA (ΔL* a tenth of it, b* unmoved) and, given, its ΔP(female) from "m"."""
    clf = {} if dp is None else {"m": {"dp": dp, "pred_ref": "male", "pred_f": "male", "flip": False}}
    return {"d_ita": d_ita, "d_l": d_ita / 10, "d_mst": 0, "skin": _skin(), "filtered_skin": _skin(), "clf": clf}


def _section(groups: dict[str, list[dict]], names: list[str]) -> dict:
    faces = [f for fs in groups.values() for f in fs]
    return filter_audit(faces, {"g": [g for g, fs in groups.items() for _ in fs]}, names, {})


def _report(fl: dict | None, images: dict | None = None, audit: dict | None = None) -> dict:
    """The least of a report.json summary_lines reads, around a filter section."""
    n = fl["overall"]["n_faces"] if fl else 1
    return {"audit": {"dataset": "folder:x", "labelled": False, **(audit or {})},
            "images": {"n_images": n, "n_faces": n, "n_with_faces": n, "no_face": [], "unreadable": [],
                       **(images or {})},
            "groups": {"primary": "g", "small": {}, "groupings": ["g"]}, "classifiers": {}, "comparisons": [],
            "models": {"classifiers": []}, "focus": {}, "filter": fl, "caveats": ["none"]}


def _typical_down_few_far_up(step: float, far: float) -> list[float]:
    """Most values a little below 0, a few far above, so that the median lies below 0 and the mean near it."""
    return [-step * (1 + 0.05 * i) for i in range(TYPICAL)] + [far * (1 + 0.01 * i) for i in range(FEW)]


def _straddles(interval: dict, digits: int) -> bool:
    return interval["lo"] is not None and _clear_of_zero(interval, digits) == 0


# --- 1. words beside the interval printed with them ------------------------------------------------------------------

P_SHIFTS = _typical_down_few_far_up(0.01, 0.12)  # ΔP(female): the typical face a little more male, a few far less


def _p_section(groups: dict[str, list[float]]) -> dict:
    return _section({g: [_face(0.0, dp) for dp in dps] for g, dps in groups.items()}, ["m"])


def test_a_significant_p_female_shift_beside_a_mean_interval_across_0_is_said_to_be_the_typical_faces():
    """"the filter made faces look more male: mean ΔP(female) -0.010 [95% CI -0.024, 0.004] (Wilcoxon p = 0.047,
    significant)": the words followed the test of the typical face, the interval the mean."""
    fl = _p_section({"x": P_SHIFTS})
    d = fl["overall"]["classifiers"]["m"]["delta_p_female"]
    assert d["wilcoxon"]["p"] < ALPHA and _straddles(d["mean"], P_DIGITS)
    assert _clear_of_zero(d["median"], P_DIGITS) == -1
    [line] = [x for x in summary_lines(_report(fl)) if x.startswith("m: the filter")]
    assert line.startswith("m: the filter made faces look more male for the typical face (the median's 95% CI lies "
                           "below 0, the mean's includes it): "), line
    assert f"mean ΔP(female) {ci(d['mean'], P_DIGITS)}, median {ci(d['median'], P_DIGITS)} (Wilcoxon " in line, line


def test_a_significant_test_beside_two_intervals_across_0_is_called_borderline():
    """The same run's figures: p = 0.047 beside a mean's and a median's interval that both include 0."""
    small = 10.0 ** -P_DIGITS
    mean = {"value": -10 * small, "lo": -24 * small, "hi": 4 * small}
    median = {"value": -2 * small, "lo": -4 * small, "hi": small / 100}  # prints as 0: not clear of it
    words = _effect(ALPHA / 2, mean["value"], "more female", "more male", "unchanged", -0.2, mean, median, P_DIGITS)
    assert words == "more male by the Wilcoxon test (borderline: neither the mean's nor the median's 95% CI clears 0)"
    # the mean's interval clear of 0 on the test's side needs no word
    clear = {**mean, "hi": -small}
    assert _effect(ALPHA / 2, mean["value"], "more female", "more male", "unchanged", -0.2, clear, median,
                   P_DIGITS) == "more male"


def test_a_median_interval_clear_of_0_is_printed_and_read_so_though_its_bound_is_under_the_last_digit():
    """"male/White, more female by the Wilcoxon test (borderline: neither the mean's nor the median's 95% CI clears
    0): … median 0.002 [95% CI 0.000, 0.003]": the interval was 0.000352 to 0.003337, clear of 0, and the words read
    its lower bound rounded to 0."""
    unit = 10.0 ** -P_DIGITS  # the last printed digit of a ΔP(female)
    up = [unit * (1 + i) / 20 for i in range(TYPICAL)]  # the typical face up by a fraction of it
    fl = _p_section({"x": up + [-sum(up) / FEW * (1 + 0.01 * i) for i in range(FEW)]})  # a few far down: mean ~0
    d = fl["overall"]["classifiers"]["m"]["delta_p_female"]
    assert d["wilcoxon"]["p"] < ALPHA and _straddles(d["mean"], P_DIGITS), d
    assert d["median"]["lo"] > 0 and _straddles(d["median"], P_DIGITS), d["median"]  # clear, but prints 0.000
    typical = "more female for the typical face (the median's 95% CI lies above 0, the mean's includes it): "
    lines = summary_lines(_report(fl))
    [overall] = [x for x in lines if x.startswith("m: the filter")]
    [holm] = [x for x in lines if "is significant after Holm in g groups" in x]
    assert overall.startswith(f"m: the filter made faces look {typical}"), overall
    assert f": x, {typical}" in holm, holm
    for line in (overall, holm):
        assert f", median {median_ci(d['median'], P_DIGITS)}" in line, line
        lo = re.search(r"median \S+ \[95% CI (\S+),", line).group(1)
        assert float(lo) > 0, line


def test_the_holm_line_says_which_way_each_group_moved_with_its_mean_and_median():
    """"ΔP(female) is significant after Holm in gender_race groups: female/White (-0.028 [95% CI -0.058, 0.002])":
    no direction, and an interval across 0 beside "significant"."""
    fl = _p_section({"x": P_SHIFTS, "y": [(-1) ** i * 0.01 * (1 + 0.1 * i) for i in range(TYPICAL)]})
    by = fl["by"]["g"]
    x, y = (by[g]["classifiers"]["m"]["delta_p_female"] for g in "xy")
    assert x["wilcoxon"]["p_holm"] < ALPHA <= y["wilcoxon"]["p_holm"] and _straddles(x["mean"], P_DIGITS)
    [line] = [x for x in summary_lines(_report(fl)) if "is significant after Holm in g groups" in x]
    assert line == (f"m: ΔP(female) is significant after Holm in g groups: x, more male for the typical face (the "
                    f"median's 95% CI lies below 0, the mean's includes it): mean {ci(x['mean'], P_DIGITS)}, "
                    f"median {ci(x['median'], P_DIGITS)}, Holm {pval(x['wilcoxon']['p_holm'])}."), line


def _ita_part(fl: dict, group: str) -> str:
    """A group's part of "ΔITA by g"."""
    [line] = [x for x in summary_lines(_report(fl)) if x.startswith("ΔITA by g: ")]
    return next(p for p in line[len("ΔITA by g: "):].rstrip(".").split("; ") if p.startswith(f"{group}: "))


def test_a_groups_mean_interval_clear_of_0_beside_no_significance_after_holm_says_why():
    """"female/White: 3.13 [95% CI 0.40, 5.85]° (lighter, Holm p = 0.225, not significant)": the raw test was
    significant, Holm across the groups was not, and the interval is not adjusted for them."""
    # eight faces, all down but the second smallest: the raw test significant (p = 6/256), not after Holm over three
    # groups (0.070), which eight faces all down (2/256 × 3) would reach; six all down could not (summary.too_few)
    down = [(1.0 if i == 1 else -1.0) * (1.0 + 0.2 * i) for i in range(8)]
    groups = {"a": down, "b": [-d for d in down], "c": [(-1) ** i * (1.0 + 0.1 * i) for i in range(6)]}
    fl = _section({g: [_face(v) for v in vs] for g, vs in groups.items()}, [])
    a = fl["by"]["g"]["a"]["delta_ita"]
    assert a["wilcoxon"]["p"] < ALPHA <= a["wilcoxon"]["p_holm"] and _clear_of_zero(a["mean"], ITA_DIGITS) == -1
    part = _ita_part(fl, "a")
    assert (f"not significant (the mean's 95% CI lies below 0 but is not adjusted for the {len(groups)} groups, "
            "as Holm is)") in part, part


def test_a_groups_mean_interval_clear_of_0_where_the_typical_face_did_not_move_says_a_minority_moved():
    either_way = [(-1) ** i * (0.3 + 0.01 * i) for i in range(34)]  # the typical face unmoved
    fl = _section({"x": [_face(v) for v in either_way + [-6.0 - 0.1 * i for i in range(6)]]}, [])
    x = fl["by"]["g"]["x"]["delta_ita"]
    assert x["wilcoxon"]["p_holm"] >= ALPHA and _clear_of_zero(x["mean"], ITA_DIGITS) == -1
    part = _ita_part(fl, "x")
    assert "not significant (though the mean's 95% CI lies below 0: a minority of faces moved" in part, part


def _most_and_the_rest(most: float, rest: float, n: int) -> list[float]:
    """Two thirds of ``n`` faces near ``most``, the rest near ``rest`` (a little apart, for the test)."""
    k = 2 * n // 3
    return [most * (1 + 0.001 * i) for i in range(k)] + [rest * (1 + 0.001 * i) for i in range(n - k)]


def _three_groups(x: list[float]) -> dict:
    """A section of the group ``x`` and two others, so that Holm adjusts over three."""
    others = {"a": [(-1) ** i * (1.0 + 0.1 * i) for i in range(12)], "b": [(-1) ** i * 0.5 for i in range(12)]}
    return _section({g: [_face(v) for v in vs] for g, vs in {"x": x, **others}.items()}, [])


def test_a_groups_mean_and_median_intervals_above_0_beside_no_significance_are_not_called_a_minoritys_move():
    """female/Asian: "2.08 [95% CI 0.04, 4.11]° (…, Holm p = 0.539, not significant (though the mean's 95% CI lies
    above 0: a minority of faces moved far, not the typical face)", its median 1.82 [95% CI 0.15, 3.01]° clear of 0
    too. Here two thirds of the faces moved up a little and the rest down a little further: both intervals lie above
    0 while the signed ranks lean down."""
    fl = _three_groups(_most_and_the_rest(1.0, -1.1, 100))
    x = fl["by"]["g"]["x"]["delta_ita"]
    assert ALPHA <= x["wilcoxon"]["p"] <= x["wilcoxon"]["p_holm"], x["wilcoxon"]
    assert _clear_of_zero(x["mean"], ITA_DIGITS) == _clear_of_zero(x["median"], ITA_DIGITS) == 1
    part = _ita_part(fl, "x")
    assert ("not significant (though the mean's and the median's 95% CIs lie above 0, median "
            f"{median_ci(x['median'], ITA_DIGITS)}°: the Wilcoxon test does not reach significance)") in part, part
    assert "adjusted by Holm" not in part, part  # its own p is not below 0.05: Holm's adjustment is not why
    assert "minority" not in part, part


def test_a_groups_mean_interval_above_0_and_median_interval_below_it_says_which_way_the_typical_face_moved():
    """"a minority of faces moved, not the typical face" beside a median shown to have moved the other way."""
    fl = _three_groups(_most_and_the_rest(-1.0, 3.0, 200))
    x = fl["by"]["g"]["x"]["delta_ita"]
    assert ALPHA <= x["wilcoxon"]["p"] <= x["wilcoxon"]["p_holm"], x["wilcoxon"]
    assert _clear_of_zero(x["mean"], ITA_DIGITS) == -_clear_of_zero(x["median"], ITA_DIGITS) == 1
    part = _ita_part(fl, "x")
    assert (f"not significant (though the mean's 95% CI lies above 0, the median's lies below it, median "
            f"{median_ci(x['median'], ITA_DIGITS)}°: the typical face's ITA fell, a minority of faces moved the other "
            "way)") in part, part


def test_a_groups_significant_shift_beside_a_mean_interval_across_0_gives_the_typical_faces_median():
    fl = _section({"x": [_face(v) for v in _typical_down_few_far_up(1.0, 8.0)]}, [])
    x = fl["by"]["g"]["x"]["delta_ita"]
    assert x["wilcoxon"]["p_holm"] < ALPHA and _straddles(x["mean"], ITA_DIGITS)
    assert _clear_of_zero(x["median"], ITA_DIGITS) == -1
    part = _ita_part(fl, "x")
    assert (f"significant (the typical face's ITA fell: median {ci(x['median'])}°, though the mean's 95% CI "
            "includes 0)") in part, part


# --- 2. copies counted over the whole dataset ------------------------------------------------------------------------

COPIES = {"copies_counted_once": [{"file": "a_again.jpg", "same_bytes_as": "a.jpg"}],
          "near_identical": [["b.jpg", "b_recropped.jpg"]], "label_conflicts": [["c.jpg", "c_as_a_man.jpg"]]}


def _copies_line(audit: dict, n_images: int) -> str:
    lines = summary_lines(_report(None, {**COPIES, "n_images": n_images}, audit))
    [line] = [x for x in lines if "more than once" in x]
    return line


def test_copies_counted_over_the_whole_dataset_are_not_told_as_the_audited_images_own():
    """A 40-image audit said "225 byte-identical copies were left out … 766 images … were kept" though report.json
    does not say that any of them is among its 40."""
    n = 40
    line = _copies_line({"split": "test", "min_age": 18, "limit": n}, n)
    assert line.startswith(f"In the whole dataset, not only the {n} image(s) audited (--split test, --min-age 18, "
                           f"--limit {n}), some photographs are stored more than once: "), line
    assert line.endswith("which does not say which of them are among the audited images (faces.csv names those)."), line


def test_copies_of_an_audit_of_every_image_are_the_audited_images_own():
    """No option narrowed the audit, or a limit above the images there were: the dataset is what was audited."""
    for audit in ({}, {"limit": 100}):
        assert _copies_line(audit, 40).startswith("The dataset stores some photographs more than once: ")


# --- 3. what the terminal leaves out --------------------------------------------------------------------------------

def test_the_terminal_leaves_out_the_per_group_lines_and_the_caveats_and_the_schema_says_so():
    """The schema said "The terminal prints the same sentences", while ``is_detail`` leaves the per-group ΔITA and
    Holm lines and the caveats to the report."""
    fl = _p_section({"x": P_SHIFTS, "y": [(-1) ** i * 0.01 * (1 + 0.1 * i) for i in range(TYPICAL)]})
    lines = summary_lines(_report(fl))
    left_out = [x for x in lines if is_detail(x)]
    assert {x.partition(" ")[0] for x in left_out} == {"ΔITA", "m:", "Caveats:"}, left_out
    assert any("is significant after Holm in" in x for x in left_out)
    assert not any(x.startswith(("The filter ", "m: the filter")) for x in left_out)
    section = SCHEMA.read_text(encoding="utf-8").partition("### `summary`")[2].partition("\n### ")[0]
    claims_every_sentence = "The terminal prints the same sentences." in section
    assert not claims_every_sentence, "docs/audit_schema.md says the terminal prints every sentence of the summary"
    assert "is_detail" in section, "docs/audit_schema.md's summary section names no sentence the terminal leaves out"
