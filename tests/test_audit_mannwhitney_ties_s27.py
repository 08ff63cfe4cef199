"""Focus pairwise Mann–Whitney with tied values: the p comes from the exact permutation null of U (mid-ranks, any
split of the pooled values equally likely), not SciPy's normal approximation, wherever counting it is affordable.

The approximation had given [0, 0, 0] against [1, 1, 1] p = 0.047, below the 2/C(6, 3) = 0.1 that the most extreme
of the 20 equally likely splits has: significant on a split that turns up one time in ten under the null."""
import itertools
import warnings
from math import comb

import numpy as np
import pytest
from scipy import stats

from inference.audit.stats import ALPHA, MANN_WHITNEY, mann_whitney_least_p, mann_whitney_method, pairwise_mannwhitney


def only_pair(a, b) -> dict:
    [pair] = pairwise_mannwhitney({"a": a, "b": b})
    return pair


def splits(pooled: np.ndarray, n_a: int):
    """Every split of ``pooled`` into n_a and the rest, by position: the permutation null's equally likely outcomes."""
    for idx in itertools.combinations(range(len(pooled)), n_a):
        mask = np.zeros(len(pooled), bool)
        mask[list(idx)] = True
        yield pooled[mask], pooled[~mask]


def rank_sum(x, y):
    return stats.rankdata(np.concatenate([x, y]))[:len(x)].sum()


def test_three_zeros_against_three_ones_is_the_most_extreme_of_twenty_splits_and_not_significant():
    pair = only_pair([0.0, 0.0, 0.0], [1.0, 1.0, 1.0])
    assert pair["p"] == pytest.approx(2 / comb(6, 3)) and pair["p"] >= ALPHA
    assert pair["method"] == MANN_WHITNEY["permutation"] == "Mann–Whitney U, exact permutation (ties kept)"
    assert pair["least_p"] == pytest.approx(0.1) and pair["holm_family"] is False and pair["p_holm"] is None


def test_given_the_pooled_values_no_split_is_rejected_more_often_than_alpha():
    """The conditional size over the permutation null: all C(6, 3) = 20 splits of [0, 0, 0, 1, 1, 1] into 3 and 3,
    of which the approximation rejected 2 (10 %), and all C(33, 3) = 5,456 of thirty-one 0's and two 1's into 3 and 30,
    of which it rejected the 17.6 % that put one 1 among the 3 (a split's p depends only on how many 1's it puts
    there, so each count is tested once and weighed by its number of splits)."""
    pooled = np.array([0, 0, 0, 1, 1, 1.0])
    ps = [only_pair(a, b)["p"] for a, b in splits(pooled, 3)]
    assert len(ps) == 20 and np.mean(np.array(ps) < ALPHA) <= ALPHA
    rejected = 0
    for ones in range(3):
        a, b = np.r_[np.zeros(3 - ones), np.ones(ones)], np.r_[np.zeros(28 + ones), np.ones(2 - ones)]
        rejected += comb(2, ones) * comb(31, 3 - ones) * (only_pair(a, b)["p"] < ALPHA)
    assert rejected / comb(33, 3) <= ALPHA


def test_a_null_simulation_of_rare_tied_values_in_small_groups_rejects_at_most_alpha():
    """3 faces against 30, each value 1 with probability 0.05, else 0 (both groups the same: H0 true). The normal
    approximation rejected 7.5 % of 4,000 such draws and 140 of these 2,000 (7.0 %), beyond α + 3 binomial SDs
    (6.5 %)."""
    rng = np.random.default_rng(20240601)
    draws = 2000
    rejected = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(draws):
            a, b = (rng.random(3) < 0.05).astype(float), (rng.random(30) < 0.05).astype(float)
            rejected += only_pair(a, b)["p"] < ALPHA
    assert rejected / draws <= ALPHA + 3 * np.sqrt(ALPHA * (1 - ALPHA) / draws)


@pytest.mark.parametrize("a, b", [
    ([0.0, 1.0, 1.0, 2.0], [1.0, 2.0, 2.0, 3.0, 0.0]),
    ([0.2, 0.2, 0.5], [0.2, 0.9, 1.0, 1.0]),
    ([1.0, 1.0, 1.0, 1.0, 0.3], [1.0, 0.1, 0.2, 1.0, 1.0, 0.4]),  # CAM focus tied at 1.0
    ([0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 1.0]),  # one group of 3 against 9
])
def test_the_tied_p_is_scipys_permutation_test_enumerating_every_split(a, b):
    """Two-sided as the project's other exact nulls and ``scipy.stats.permutation_test``: twice the nearer tail."""
    exact = stats.permutation_test((np.array(a), np.array(b)), rank_sum, permutation_type="independent",
                                   n_resamples=10 ** 6, alternative="two-sided")
    assert exact.null_distribution.size == comb(len(a) + len(b), len(a))  # every split, none drawn at random
    pair = only_pair(a, b)
    assert pair["method"] == MANN_WHITNEY["permutation"] and pair["p"] == pytest.approx(exact.pvalue, rel=1e-9)
    assert pair["U"] == pytest.approx(stats.mannwhitneyu(a, b).statistic)  # the statistic itself is unchanged


@pytest.mark.parametrize("a, b", [
    ([1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.5, 8.0, 9.0]),
    ([0.31, 0.72, 0.55], [0.4, 0.9, 0.12, 0.66, 0.8, 0.05]),
    ([1.0, 2.0, 3.0], list(np.arange(20.0) + 0.5)),
])
def test_untied_small_groups_keep_scipys_exact_p(a, b):
    pair = only_pair(a, b)
    assert pair["method"] == MANN_WHITNEY["exact"]
    assert pair["p"] == pytest.approx(stats.mannwhitneyu(a, b, alternative="two-sided", method="exact").pvalue)
    # and the tie-aware count agrees with it where nothing is tied: the two exact nulls are one
    assert mann_whitney_least_p(np.array(a), np.array(b), "permutation") == pytest.approx(
        mann_whitney_least_p(np.array(a), np.array(b), "exact"))


@pytest.mark.parametrize("pooled, n_a", [
    ([0.0, 0.0, 0.0, 1.0, 1.0, 1.0], 3),
    ([0.0, 0.0, 1.0, 1.0, 1.0, 2.0, 2.0], 3),
    ([0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 2.0, 3.0], 2),
    ([0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.9, 0.9], 4),
])
def test_the_least_p_is_at_most_the_p_of_every_split_and_is_reached(pooled, n_a):
    pooled = np.array(pooled)
    ps = [only_pair(a, b)["p"] for a, b in splits(pooled, n_a)]
    # the permutation null counted here by hand: each split's rank sum against those of all the splits
    sums = np.array([rank_sum(a, b) for a, b in splits(pooled, n_a)])
    enumerated = [min(1.0, 2 * min(np.mean(sums <= s + 1e-9), np.mean(sums >= s - 1e-9))) for s in sums]
    assert ps == pytest.approx(enumerated)
    least = mann_whitney_least_p(pooled[:n_a], pooled[n_a:], mann_whitney_method(pooled[:n_a], pooled[n_a:]))
    assert least <= min(ps) + 1e-12 and least == pytest.approx(min(enumerated))
    assert {only_pair(a, b)["least_p"] for a, b in splits(pooled, n_a)} == {least}  # the same for every split


def test_past_the_affordable_size_tied_values_keep_the_normal_approximation():
    from inference.audit.stats import PERMUTATION_UP_TO

    rng = np.random.default_rng(3)
    big_a, big_b = rng.integers(0, 5, 60).astype(float), rng.integers(0, 5, 60).astype(float)
    assert 60 * 120 > PERMUTATION_UP_TO
    pair = only_pair(big_a, big_b)
    assert pair["method"] == MANN_WHITNEY["asymptotic"]
    assert pair["p"] == pytest.approx(stats.mannwhitneyu(big_a, big_b, method="asymptotic").pvalue)
    # at the bound itself (50 × 100 = 5,000) the tie-aware count still runs
    assert mann_whitney_method(big_a[:50], big_b[:50]) == "permutation" and 50 * 100 == PERMUTATION_UP_TO


def test_every_value_tied_gives_p_one_and_can_never_be_rejected():
    pair = only_pair([0.4, 0.4, 0.4], [0.4, 0.4])
    assert pair["p"] == 1.0 and pair["least_p"] == 1.0 and pair["holm_family"] is False
