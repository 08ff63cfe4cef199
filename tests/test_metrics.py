"""Proportion intervals (inference/metrics.py, modified Wilson): exact at the ends, as cards and reports print them."""
import numpy as np
import pytest

from inference.metrics import modified_wilson, poisson_end_count, proportion


@pytest.mark.parametrize("n", [1, 3, 7, 10, 85, 1733])
def test_the_bounds_are_exactly_0_and_1_at_the_ends(n):
    """A group with no errors read 'lo 5.55e-17' (or 'hi 0.9999999999999999') in the card: float noise."""
    assert modified_wilson(0, n)[0] == 0.0 and modified_wilson(n, n)[1] == 1.0
    assert 0.0 < modified_wilson(0, n)[1] < 1.0 and 0.0 < modified_wilson(n, n)[0] < 1.0
    for k in range(0, n + 1, max(1, n // 7)):
        lo, hi = modified_wilson(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_interior_values_are_the_textbook_wilson_interval():
    assert 3 > poisson_end_count(7) and 7 - 3 > poisson_end_count(7)  # 3 of 7: past the Poisson counts on both sides
    assert modified_wilson(3, 7) == pytest.approx((0.1582199, 0.7495416), abs=1e-6)  # the textbook Wilson interval
    assert proportion(0, 3) == {"value": 0.0, "lo": 0.0, "hi": pytest.approx(0.5614970), "n": 3}


def test_a_faces_mean_over_consecutive_frames_has_an_interval_that_covers_it_though_frames_are_alike():
    """The app's session summary gave each tracked face a t interval over its frames, as if each frame were a new
    sample: on a camera's frames, each nearly the one before, it covered the true mean a quarter of the time and
    narrowed with the seconds recorded. Batch means over runs of consecutive frames cover it; on independent
    values they match the plain interval's coverage."""
    from scipy.signal import lfilter

    from inference.metrics import mean_ci, series_mean_ci

    rng = np.random.default_rng(0)

    def coverage(rho: float, n: int, interval) -> float:
        start = rho * rng.normal(size=(300, 1))  # stationary from the first frame, as a face is when its track starts
        series = lfilter([1.0], [1.0, -rho], rng.normal(size=(300, n)) * np.sqrt(1 - rho ** 2), axis=1, zi=start)[0]
        return float(np.mean([(ci := interval(x))["lo"] <= 0 <= ci["hi"] for x in series]))

    assert coverage(0.95, 3000, series_mean_ci) > 0.9 and coverage(0.95, 3000, mean_ci) < 0.5
    assert coverage(0.8, 300, series_mean_ci) > 0.9 and coverage(0.8, 300, mean_ci) < 0.6
    assert 0.9 < coverage(0.0, 300, series_mean_ci) < 0.99
    x = rng.normal(size=300)
    ci = series_mean_ci(x)
    assert ci["value"] == pytest.approx(x.mean()) and ci["n"] == 300 and ci["batches"] == 7
    assert series_mean_ci([0.5])["n"] == 1 and np.isnan(series_mean_ci([0.5])["lo"])
    assert series_mean_ci([2.0] * 10)["lo"] == series_mean_ci([2.0] * 10)["hi"] == 2.0
