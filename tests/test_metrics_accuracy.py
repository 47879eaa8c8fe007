import math
from itertools import combinations

import pytest
from scipy.stats import binomtest

from thinkcost.metrics.accuracy import pass_at_k, wilson_interval

Z = 1.959963984540054


def test_wilson_17_of_24_by_hand():
    # Written in the other common form: (k + z²/2 ± z*sqrt(k(n-k)/n + z²/4)) / (n + z²).
    # z² = 3.841459; k + z²/2 = 18.920729; k(n-k)/n + z²/4 = 4.958333 + 0.960365 = 5.918698
    # z*sqrt(5.918698) = 4.768272; n + z² = 27.841459
    # low = 14.152457 / 27.841459 = 0.508324 ; high = 23.689001 / 27.841459 = 0.850853
    k, n = 17, 24
    z2 = Z * Z
    root = Z * math.sqrt(k * (n - k) / n + z2 / 4)
    expected = ((k + z2 / 2 - root) / (n + z2), (k + z2 / 2 + root) / (n + z2))
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected[0], abs=1e-12)
    assert high == pytest.approx(expected[1], abs=1e-12)
    assert low == pytest.approx(0.508324, abs=1e-6)
    assert high == pytest.approx(0.850853, abs=1e-6)


@pytest.mark.parametrize("n", [1, 2, 5, 10, 24, 37, 100, 1000])
def test_wilson_matches_scipy_grid(n):
    for k in sorted({0, 1, n // 3, n // 2, n - 1, n}):
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        low, high = wilson_interval(k, n)
        assert low == pytest.approx(ref.low, abs=1e-12), (k, n)
        assert high == pytest.approx(ref.high, abs=1e-12), (k, n)


def test_wilson_other_level_matches_scipy():
    z99 = 2.5758293035489004
    ref = binomtest(7, 30).proportion_ci(confidence_level=0.99, method="wilson")
    low, high = wilson_interval(7, 30, z=z99)
    assert (low, high) == pytest.approx((ref.low, ref.high), abs=1e-12)


def test_wilson_edges():
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(Z**2 / (10 + Z**2))  # closed form at k=0
    low, high = wilson_interval(10, 10)
    assert high == 1.0
    assert low == pytest.approx(10 / (10 + Z**2))  # closed form at k=n
    assert all(math.isnan(x) for x in wilson_interval(0, 0))


@pytest.mark.parametrize("k,n", [(-1, 5), (6, 5), (1, 0)])
def test_wilson_rejects_k_outside_range(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def _pass_at_k_brute(n: int, c: int, k: int) -> float:
    samples = [True] * c + [False] * (n - c)
    subsets = list(combinations(range(n), k))
    return sum(any(samples[i] for i in s) for s in subsets) / len(subsets)


def test_pass_at_k_matches_brute_force():
    for n in range(1, 10):
        for c in range(n + 1):
            for k in range(1, n + 1):
                assert pass_at_k(n, c, k) == pytest.approx(_pass_at_k_brute(n, c, k), abs=1e-12), (n, c, k)


def test_pass_at_1_is_fraction_correct():
    for n, c in [(1, 0), (1, 1), (10, 3), (200, 57)]:
        assert pass_at_k(n, c, 1) == pytest.approx(c / n, abs=1e-12)


def test_pass_at_k_large_n_is_stable():
    # Product form must not overflow where the binomials would be huge.
    value = pass_at_k(2000, 1, 1000)
    assert value == pytest.approx(0.5, abs=1e-12)  # one correct sample lands in half the subsets
    assert pass_at_k(2000, 0, 1000) == 0.0
    assert pass_at_k(2000, 1001, 1000) == 1.0


@pytest.mark.parametrize("n,c,k", [(3, 1, 4), (5, 6, 1), (5, -1, 1), (5, 2, 0)])
def test_pass_at_k_rejects_bad_arguments(n, c, k):
    with pytest.raises(ValueError):
        pass_at_k(n, c, k)
