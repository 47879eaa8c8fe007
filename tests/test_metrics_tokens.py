import math

import numpy as np
import pytest

from thinkcost.metrics.tokens import RatioCI, ctir, mean_ci, per_problem_ratio


def _random_pair(n: int, seed: int) -> tuple[dict[str, float], dict[str, float]]:
    rng = np.random.default_rng(seed)
    base = rng.integers(50, 400, size=n)
    var = np.round(base * rng.uniform(1.0, 1.6, size=n))
    return (
        {f"p{i}": float(x) for i, x in enumerate(base)},
        {f"p{i}": float(x) for i, x in enumerate(var)},
    )


def test_ctir_hand_example_jointly_correct():
    base = {"a": 100, "b": 200, "c": 300, "d": 400}
    var = {"a": 150, "b": 260, "c": 900, "d": 100}
    base_ok = {"a": True, "b": True, "c": True, "d": False}
    var_ok = {"a": True, "b": True, "c": False, "d": True}
    # Jointly correct: a, b -> (150 + 260)/2 / ((100 + 200)/2) = 410/300
    r = ctir(base, var, base_ok, var_ok)
    assert r.n == 2
    assert r.ratio == pytest.approx(410 / 300)
    # All shared problems: (150+260+900+100) / (100+200+300+400) = 1410/1000
    r_all = ctir(base, var)
    assert r_all.n == 4
    assert r_all.ratio == pytest.approx(1.41)


def test_ctir_ignores_keys_in_one_map_only():
    base = {"a": 100, "b": 200, "only_base": 5}
    var = {"a": 120, "b": 220, "only_var": 10_000}
    r = ctir(base, var)
    assert r.n == 2
    assert r.ratio == pytest.approx(340 / 300)


def test_ctir_missing_verdict_is_not_correct():
    base = {"a": 100, "b": 200}
    var = {"a": 150, "b": 100}
    r = ctir(base, var, {"a": True, "b": True}, {"a": True})
    assert r.n == 1
    assert r.ratio == pytest.approx(1.5)


def test_ctir_requires_both_or_no_verdicts():
    with pytest.raises(ValueError):
        ctir({"a": 1}, {"a": 1}, {"a": True}, None)


def test_ctir_empty_and_zero_base_give_nan():
    r = ctir({"a": 1.0}, {"b": 1.0})
    assert r.n == 0 and all(math.isnan(x) for x in (r.ratio, r.low, r.high))
    r = ctir({"a": 0.0, "b": 0.0}, {"a": 5.0, "b": 3.0})
    assert r.n == 2 and all(math.isnan(x) for x in (r.ratio, r.low, r.high))
    r = ctir({"a": 1.0}, {"a": 1.0}, {"a": False}, {"a": True})
    assert r.n == 0 and math.isnan(r.ratio)


def test_ctir_identical_is_exactly_one():
    base, _ = _random_pair(300, 1)
    r = ctir(base, dict(base))
    assert (r.ratio, r.low, r.high) == (1.0, 1.0, 1.0)


def test_ctir_constant_inflation_is_exact():
    base, _ = _random_pair(300, 2)
    var = {k: 1.5 * v for k, v in base.items()}
    r = ctir(base, var)
    assert (r.ratio, r.low, r.high) == (1.5, 1.5, 1.5)


def test_ctir_ci_contains_point_estimate():
    base, var = _random_pair(200, 3)
    r = ctir(base, var)
    assert r.low < r.ratio < r.high
    assert r.low > 1.0 and r.high < 1.6


def test_ctir_ci_narrows_with_n():
    widths = []
    for n in (20, 200, 2000):
        base, var = _random_pair(n, 4)
        r = ctir(base, var)
        widths.append(r.high - r.low)
    assert widths[0] > widths[1] > widths[2] > 0
    assert widths[0] / widths[2] > 5  # ~sqrt(100) = 10 in theory


def test_ctir_reproducible_by_seed():
    base, var = _random_pair(100, 5)
    assert ctir(base, var, seed=7) == ctir(base, var, seed=7)
    a, b = ctir(base, var, seed=7), ctir(base, var, seed=8)
    assert a.ratio == b.ratio
    assert (a.low, a.high) != (b.low, b.high)


def test_ctir_independent_of_dict_order():
    base, var = _random_pair(50, 6)
    shuffled = dict(reversed(list(base.items())))
    assert ctir(base, var) == ctir(shuffled, var)


def _ctir_brute(base, var, *, n_boot, seed, level):
    """Loop implementation: same id order (sorted) and same index draws as the documented contract."""
    ids = sorted(set(base) & set(var))
    n = len(ids)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    ratios = []
    for row in idx:
        b_mean = sum(base[ids[j]] for j in row) / n
        v_mean = sum(var[ids[j]] for j in row) / n
        if b_mean == 0:
            continue
        ratios.append(v_mean / b_mean)
    ratios.sort()

    # Linear-interpolation percentile written out (numpy's default "linear" method).
    def pct(q):
        pos = q * (len(ratios) - 1)
        lo = math.floor(pos)
        hi = min(lo + 1, len(ratios) - 1)
        return ratios[lo] + (ratios[hi] - ratios[lo]) * (pos - lo)

    alpha = 1 - level
    point = (sum(var[i] for i in ids) / n) / (sum(base[i] for i in ids) / n)
    return point, pct(alpha / 2), pct(1 - alpha / 2)


@pytest.mark.parametrize("level", [0.95, 0.8])
def test_ctir_matches_brute_force_bootstrap(level):
    base, var = _random_pair(40, 9)
    r = ctir(base, var, n_boot=500, seed=3, level=level)
    point, low, high = _ctir_brute(base, var, n_boot=500, seed=3, level=level)
    assert r.ratio == pytest.approx(point, rel=1e-12)
    assert r.low == pytest.approx(low, rel=1e-12)
    assert r.high == pytest.approx(high, rel=1e-12)


def test_ctir_drops_zero_base_resamples():
    # With one nonzero base among many zeros, some resamples have base mean 0; they must be
    # dropped (not produce inf/nan) and the brute force agrees.
    base = {"a": 10.0, "b": 0.0, "c": 0.0}
    var = {"a": 20.0, "b": 5.0, "c": 0.0}
    r = ctir(base, var, n_boot=300, seed=1)
    _point, low, high = _ctir_brute(base, var, n_boot=300, seed=1, level=0.95)
    assert r.ratio == pytest.approx(2.5)
    assert math.isfinite(r.low) and math.isfinite(r.high)
    assert (r.low, r.high) == pytest.approx((low, high), rel=1e-12)


def test_ctir_at_scale_is_centred_on_the_true_ratio():
    base, var = _random_pair(1000, 10)
    r = ctir(base, var, n_boot=2000)
    assert r.n == 1000
    assert r.low <= r.ratio <= r.high


def test_ctir_validates_arguments():
    with pytest.raises(ValueError):
        ctir({"a": 1}, {"a": 1}, n_boot=0)
    with pytest.raises(ValueError):
        ctir({"a": 1}, {"a": 1}, level=1.0)


def test_ratio_ci_is_frozen():
    r = RatioCI(1.0, 0.9, 1.1, 3)
    with pytest.raises(AttributeError):
        r.ratio = 2.0  # type: ignore[misc]


def test_per_problem_ratio():
    base = {"a": 100, "b": 0, "c": 50, "only_base": 1}
    var = {"a": 150, "b": 10, "c": 25, "only_var": 1}
    assert per_problem_ratio(base, var) == {"a": 1.5, "c": 0.5}


def test_mean_ci():
    values = [float(x) for x in np.random.default_rng(0).normal(100, 15, size=400)]
    mean, low, high = mean_ci(values)
    assert mean == pytest.approx(sum(values) / len(values))
    assert low < mean < high
    # Bootstrap SE of the mean ≈ sample sd / sqrt(n): 95% width ≈ 2*1.96*sd/sqrt(n).
    sd = float(np.std(values, ddof=1))
    assert high - low == pytest.approx(2 * 1.96 * sd / math.sqrt(400), rel=0.15)
    assert mean_ci(values, seed=1) == mean_ci(values, seed=1)
    assert mean_ci(values, seed=1) != mean_ci(values, seed=2)


def test_mean_ci_edges():
    assert all(math.isnan(x) for x in mean_ci([]))
    assert mean_ci([3.0, 3.0, 3.0]) == (3.0, 3.0, 3.0)
