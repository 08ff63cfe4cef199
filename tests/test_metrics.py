"""Wilson intervals (inference/metrics.py): exact at the ends, as cards and reports print them."""
import pytest

from inference.metrics import proportion, wilson


@pytest.mark.parametrize("n", [1, 3, 7, 10, 85, 1733])
def test_wilson_bounds_are_exactly_0_and_1_at_the_ends(n):
    """A group with no errors read 'lo 5.55e-17' (or 'hi 0.9999999999999999') in the card: float noise."""
    assert wilson(0, n)[0] == 0.0 and wilson(n, n)[1] == 1.0
    assert 0.0 < wilson(0, n)[1] < 1.0 and 0.0 < wilson(n, n)[0] < 1.0
    for k in range(0, n + 1, max(1, n // 7)):
        lo, hi = wilson(k, n)
        assert 0.0 <= lo <= k / n <= hi <= 1.0


def test_wilson_interior_values_are_unchanged():
    assert wilson(1, 7) == pytest.approx((0.0256796, 0.5131278), abs=1e-6)  # the textbook Wilson interval
    assert proportion(0, 3) == {"value": 0.0, "lo": 0.0, "hi": pytest.approx(0.5614970), "n": 3}
