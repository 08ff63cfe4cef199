"""The audit's intervals stay inside the range a quantity cannot leave, and a median's interval is the
distribution-free one between two order statistics, or none where too few values allow one.

A t interval over three ITAs had read [-192.9, 250.3] in an unlabelled audit's skin table (ITA lies within
±90°), and the bootstrap had given the median of three values an interval that covered it about three times in four.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from scipy import stats

from inference.audit import html
from inference.audit.report import _skin_section, skin_summary
from inference.audit.stats import (CONFIDENCE, ITA_RANGE, L_RANGE, UNIT_RANGE, difference_range, mean_or_median_ci,
                                   median_ci)


def spread_across(bounds: tuple[float, float], n: int = 3) -> list[float]:
    """``n`` values reaching from near one end of ``bounds`` to near the other: the widest spread a mean can have."""
    lo, hi = bounds
    margin = (hi - lo) / 180
    return list(np.linspace(lo + margin, hi - margin, n))


def measured_face(ita: float, light: float) -> dict:
    """An audit row whose skin was measured at ITA ``ita`` and L* ``light``."""
    return {"skin": {"measurable": True, "ita": ita, "L": light, "mst": 5, "category": "tan"}}


@pytest.mark.parametrize("bounds", [ITA_RANGE, L_RANGE, UNIT_RANGE, difference_range(ITA_RANGE),
                                    difference_range(L_RANGE), difference_range(UNIT_RANGE)])
def test_a_mean_of_values_spread_across_their_range_has_an_interval_inside_it(bounds):
    got = mean_or_median_ci(spread_across(bounds), "mean", bounds)
    assert bounds[0] <= got["lo"] < got["value"] < got["hi"] <= bounds[1]


def test_the_differences_ranges_are_twice_the_quantities():
    assert difference_range(ITA_RANGE) == (-180.0, 180.0)
    assert difference_range(L_RANGE) == (-100.0, 100.0)
    assert difference_range(UNIT_RANGE) == (-1.0, 1.0)


def test_the_skin_tables_mean_ita_and_l_stay_inside_their_ranges():
    itas = [-89.0, 89.0, 0.0]  # a t interval alone reaches far past ±90°
    lights = [1.0, 99.0, 50.0]
    got = skin_summary([measured_face(a, b) for a, b in zip(itas, lights)], "skin")
    ita, light = got["ita"]["mean"], got["L"]["mean"]
    assert ITA_RANGE[0] <= ita["lo"] < ita["hi"] <= ITA_RANGE[1]
    assert L_RANGE[0] <= light["lo"] < light["hi"] <= L_RANGE[1]


@pytest.mark.parametrize("n", [3, 4, 5])
def test_a_median_of_fewer_than_six_distinct_values_has_no_interval(n):
    values = list(np.arange(n, dtype=float))
    got = mean_or_median_ci(values, "median")
    assert got == {"value": float(np.median(values)), "lo": None, "hi": None, "n": n}


@pytest.mark.parametrize("n", [6, 7, 11, 40, 101])
def test_a_median_of_six_or_more_values_has_the_order_statistic_interval(n):
    values = np.random.default_rng(n).lognormal(0, 1, n)
    expected = stats.quantile_test(values, q=np.median(values), p=0.5).confidence_interval(CONFIDENCE)
    got = mean_or_median_ci(values, "median")
    assert got == {"value": float(np.median(values)), "lo": float(expected.low), "hi": float(expected.high), "n": n}
    assert got["lo"] in values and got["hi"] in values  # order statistics: inside any range the values cannot leave


def test_the_median_interval_counts_only_finite_values():
    values = [4.0, 1.0, 5.0, 2.0, 3.0, 6.0]
    assert mean_or_median_ci(values + [None, float("nan")], "median") == median_ci(np.array(values))


def test_equal_values_keep_their_zero_width_median_interval():
    """An identity filter's zero shifts: every value is the median, whatever their number from three on."""
    assert mean_or_median_ci([0.0] * 4, "median") == {"value": 0.0, "lo": 0.0, "hi": 0.0, "n": 4}


def interval_in(cell: str) -> tuple[float, float]:
    """The bounds of a table cell's "value [95% CI lo, hi]"."""
    lo, hi = re.search(r"\[95% CI (-?[\d.]+), (-?[\d.]+)\]", cell).groups()
    return float(lo), float(hi)


def test_the_html_skin_table_keeps_a_small_groups_means_in_range_and_gives_its_median_alone():
    itas, lights = [-89.0, 89.0, 0.0, 10.0], [1.0, 99.0, 50.0, 60.0]
    rows = [measured_face(a, b) for a, b in zip(itas, lights)]
    skin = _skin_section(rows, {"skin_tone": ["tan"] * len(rows)}, has_filter=False)
    parts: list[str] = []
    html._skin_section({"skin": skin}, parts)
    for row in re.findall(r"<tr>(.*?)</tr>", parts[0])[1:]:  # all faces, then the group: the same four faces
        _, _, _, mean_ita, median_ita, mean_l, _ = re.findall(r"<td>(.*?)</td>", row)
        assert ITA_RANGE[0] <= interval_in(mean_ita)[0] < interval_in(mean_ita)[1] <= ITA_RANGE[1]
        assert L_RANGE[0] <= interval_in(mean_l)[0] < interval_in(mean_l)[1] <= L_RANGE[1]
        assert median_ita == format(float(np.median(itas)), ".1f")  # no "[95% CI …]": four values give none


def test_a_filters_mean_shifts_stay_inside_the_ranges_a_shift_can_reach():
    """ΔITA, ΔL* and ΔP(female) of three faces pulled to both ends: their t intervals had reached past ±180°, ±100
    and ±1."""
    from inference.audit.filter_audit import group_shift

    shifts = [(-179.0, -99.0, -0.99), (179.0, 99.0, 0.99), (0.0, 0.0, 0.0)]
    skin = {"measurable": True, "b": 10.0}
    rows = [{"d_ita": ita, "d_l": lightness, "d_mst": 0, "skin": skin, "filtered_skin": skin,
             "clf": {"m": {"dp": p, "flip": False}}} for ita, lightness, p in shifts]
    out = group_shift(rows, ["m"])
    for interval, bounds in ((out["delta_ita"]["mean"], difference_range(ITA_RANGE)),
                             (out["delta_l"]["mean"], difference_range(L_RANGE)),
                             (out["classifiers"]["m"]["delta_p_female"]["mean"], difference_range(UNIT_RANGE))):
        assert bounds[0] <= interval["lo"] <= interval["hi"] <= bounds[1], (interval, bounds)
