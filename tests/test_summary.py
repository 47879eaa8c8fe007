"""Per-variant summary over store rows, checked against figures computed by hand."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from thinkcost.metrics.outcomes import outcomes
from thinkcost.metrics.summary import summarize as _summarize
from thinkcost.strategies import parse_strategy


def summarize(gens, variants, reference, **kw):
    """Greedy rows through the same path a run takes: store rows -> outcomes -> summary."""
    return _summarize(outcomes(gens, [parse_strategy("greedy")]), variants, reference, **kw)


def _rows(variant, toks, correct, cost, finish=None):
    return [
        {
            "variant": variant,
            "problem_id": f"p{i}",
            "strategy": "greedy",
            "sample": 0,
            "reasoning_tokens": t,
            "completion_tokens": t + 10,
            "correct": int(c),
            "cost_s": s,
            "finish_reason": (finish or ["stop"] * len(toks))[i],
        }
        for i, (t, c, s) in enumerate(zip(toks, correct, cost, strict=True))
    ]


def test_summary_matches_hand_computation():
    base = _rows("base", [100, 200, 300, 400], [1, 1, 0, 1], [1.0, 2.0, 3.0, 4.0])
    q = _rows(
        "q", [150, 200, 600, 100], [1, 0, 1, 1], [1.5, 2.0, 6.0, 1.0], ["stop", "stop", "length", "stop"]
    )
    df = pd.DataFrame(base + q)
    b, v = summarize(df, ["base", "q"], "base", n_boot=500)
    assert (b.n, b.n_correct, v.n_correct) == (4, 3, 3)
    assert b.accuracy == 0.75
    assert v.mean_reasoning_tokens == (150 + 200 + 600 + 100) / 4
    # jointly correct: p0 and p3 -> (150 + 100) / (100 + 400)
    assert v.ctir == pytest.approx(250 / 500) and v.ctir_n == 2
    assert v.ctir_all == pytest.approx(1050 / 1000)
    assert v.ctir_ci[0] <= v.ctir <= v.ctir_ci[1]
    assert b.ctir == 1.0
    assert v.tokens_per_s == pytest.approx((1050 + 40) / 10.5)
    assert b.s_per_correct == pytest.approx(10 / 3) and v.s_per_correct == pytest.approx(10.5 / 3)
    assert v.effective_speedup == pytest.approx((10 / 3) / (10.5 / 3))
    assert v.tokens_per_correct == pytest.approx(1090 / 3)
    assert v.truncated_share == 0.25 and b.truncated_share == 0


def test_only_problems_every_variant_answered_are_compared():
    base = _rows("base", [100, 200, 300], [1, 1, 1], [1.0, 1.0, 1.0])
    q = _rows("q", [100, 400], [1, 1], [1.0, 1.0])  # p2 not generated yet (run interrupted)
    b, v = summarize(pd.DataFrame(base + q), ["base", "q"], "base", n_boot=200)
    assert b.n == v.n == 2
    assert v.ctir == pytest.approx(500 / 300)


def test_zero_correct_variant_costs_infinity_and_speedup_zero():
    base = _rows("base", [10, 10], [1, 0], [1.0, 1.0])
    q = _rows("q", [10, 10], [0, 0], [1.0, 1.0])
    _, v = summarize(pd.DataFrame(base + q), ["base", "q"], "base", n_boot=200)
    assert math.isinf(v.s_per_correct) and v.effective_speedup == 0.0
    assert math.isnan(v.ctir) and v.ctir_n == 0
    assert v.to_json()["s_per_correct"] == "inf" and v.to_json()["ctir"] is None
