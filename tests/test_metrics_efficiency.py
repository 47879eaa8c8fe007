import math

import pytest

from thinkcost.metrics.efficiency import effective_speedup, per_correct, tokens_per_second


def test_tokens_per_second():
    assert tokens_per_second(1000, 4.0) == 250.0
    assert math.isnan(tokens_per_second(1000, 0.0))
    assert math.isnan(tokens_per_second(1000, -1.0))


def test_per_correct_counts_all_spend():
    # 3 samples of 100 tokens each, only 2 correct: the wrong sample's tokens still count.
    assert per_correct(300, 2) == 150.0
    assert per_correct(12.5, 5) == 2.5


def test_per_correct_zero_correct_is_inf():
    assert per_correct(300, 0) == math.inf
    assert per_correct(0, 0) == math.inf


def test_per_correct_rejects_negative():
    with pytest.raises(ValueError):
        per_correct(10, -1)
    with pytest.raises(ValueError):
        per_correct(-10, 1)


def test_effective_speedup_plain():
    # Variant is 2x faster per token but inflates tokens 1.25x: 10 s vs 6.25 s per correct -> 1.6x.
    assert effective_speedup(10.0, 6.25) == pytest.approx(1.6)
    assert effective_speedup(5.0, 10.0) == 0.5


def test_effective_speedup_conventions():
    assert effective_speedup(10.0, math.inf) == 0.0
    assert effective_speedup(math.inf, 10.0) == math.inf
    assert math.isnan(effective_speedup(math.inf, math.inf))
    assert effective_speedup(10.0, 0.0) == math.inf
    assert math.isnan(effective_speedup(0.0, 0.0))
    assert math.isnan(effective_speedup(math.nan, 1.0))
    assert math.isnan(effective_speedup(1.0, math.nan))


def test_effective_speedup_composes_with_per_correct():
    base = per_correct(100.0, 10)  # 10 s per correct
    never = per_correct(100.0, 0)  # variant never right
    assert effective_speedup(base, never) == 0.0
    assert effective_speedup(never, base) == math.inf


def test_effective_speedup_rejects_negative():
    with pytest.raises(ValueError):
        effective_speedup(-1.0, 1.0)
