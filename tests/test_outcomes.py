"""Per-problem outcomes and (variant, strategy) rows from store-shaped rows, checked by hand."""

from __future__ import annotations

import math
import random

import pandas as pd
import pytest

from thinkcost.metrics.outcomes import outcomes
from thinkcost.metrics.summary import VariantSummary, mark_pareto, summarize
from thinkcost.strategies import parse_strategy


def gen(
    variant,
    pid,
    key,
    sample,
    extracted,
    correct,
    tokens,
    *,
    finish="stop",
    cost=1.0,
    call="c",
    reasoning=None,
):
    return {
        "variant": variant,
        "problem_id": pid,
        "recipe": key,
        "sample": sample,
        "extracted": extracted,
        "correct": int(correct),
        "completion_tokens": tokens,
        "reasoning_tokens": reasoning if reasoning is not None else tokens - 2,
        "answer_tokens": 2,
        "finish_reason": finish,
        "cost_s": cost,
        "latency_s": cost * 2,
        "call_id": call,
        "answer_text": extracted or "",
        "mean_logprob": -0.1 * sample,
        "self_certainty": None,
        "forced_tokens": 0,
        "interventions": 0,
    }


MAJ = parse_strategy("maj@3")
KEY = MAJ.recipe.key


def test_every_sample_the_strategy_paid_for_is_counted():
    rows = [
        gen("base", "p1", KEY, 0, "4", True, 10, cost=1.0, call="a"),
        gen("base", "p1", KEY, 1, "5", False, 20, cost=2.0, call="a"),
        gen("base", "p1", KEY, 2, "4", True, 30, finish="length", cost=3.0, call="b"),
        gen("base", "p1", KEY, 3, "5", False, 40, cost=4.0, call="b"),  # beyond k=3: not paid by maj@3
        gen("base", "p2", KEY, 0, "1", True, 10),  # only one of three samples: not decided yet
    ]
    o = outcomes(pd.DataFrame(rows), [MAJ, parse_strategy("maj@2"), parse_strategy("maj@4")])
    m3 = o[o["strategy"] == "maj@3"].iloc[0]
    assert list(o["problem_id"]) == ["p1", "p1", "p1"]
    assert (m3["answer"], m3["correct"], m3["attempts"], m3["tokens"]) == ("4", True, 3, 60)
    assert m3["reasoning_tokens"] == 54 and m3["cost_s"] == 6.0 and m3["latency_s"] == 6.0
    assert m3["engine_calls"] == 2 and m3["truncated"] == 1
    m2 = o[o["strategy"] == "maj@2"].iloc[0]
    assert m2["answer"] == "4" and m2["tokens"] == 30  # 1-1 tie -> "4" finished first (10 tokens)
    m4 = o[o["strategy"] == "maj@4"].iloc[0]
    assert m4["answer"] == "4" and m4["tokens"] == 100  # 2-2 tie, "4" finished first


def test_short_m_at_k_counts_cancelled_tokens():
    s = parse_strategy("short-1@3")
    k = s.recipe.key
    rows = [
        gen("base", "p1", k, 0, None, False, 12, finish="cancelled"),
        gen("base", "p1", k, 1, "7", True, 12),
        gen("base", "p1", k, 2, None, False, 11, finish="cancelled"),
    ]
    o = outcomes(pd.DataFrame(rows), [s]).iloc[0]
    assert (
        o["answer"] == "7"
        and o["correct"]
        and o["tokens"] == 35
        and o["cancelled"] == 2
        and o["attempts"] == 3
    )


def test_rows_per_strategy_compare_against_the_reference_under_the_same_strategy():
    g, m = parse_strategy("greedy"), MAJ
    rows = []
    for v, toks, ok in (("base", [10, 20], [1, 1]), ("q", [15, 40], [1, 1])):
        for i, (t, c) in enumerate(zip(toks, ok, strict=True)):
            rows.append(gen(v, f"p{i}", "greedy", 0, "1", c, t, reasoning=t))
            for smp in range(3):  # maj@3 samples: twice the tokens of greedy
                rows.append(gen(v, f"p{i}", KEY, smp, "1", c, 2 * t, reasoning=2 * t, cost=0.5))
    out = summarize(outcomes(pd.DataFrame(rows), [g, m]), ["base", "q"], "base", n_boot=200)
    by = {(r.name, r.strategy): r for r in out}
    assert by[("q", "greedy")].ctir == pytest.approx(55 / 30)
    assert by[("q", "maj@3")].ctir == pytest.approx(55 / 30)  # same ratio: per-strategy reference
    mb = by[("base", "maj@3")]
    assert mb.tokens_per_problem == pytest.approx(3 * 2 * 15) and mb.mean_reasoning_tokens == pytest.approx(
        30
    )
    assert mb.samples_per_problem == 3 and mb.s_per_problem == pytest.approx(1.5)
    assert mb.tokens_per_correct == pytest.approx(90) and mb.s_per_correct == pytest.approx(1.5)
    # all rows are 100% accurate: only the cheapest (base greedy) is on the frontier
    assert [k for k, r in by.items() if r.pareto] == [("base", "greedy")]


def test_sample_at_n_accuracy_is_the_share_of_correct_samples_with_a_bootstrap_ci():
    s = parse_strategy("sample@4")
    rows = [gen("base", f"p{i}", s.recipe.key, j, "1", j < i, 10) for i in range(5) for j in range(4)]
    (r,) = summarize(outcomes(pd.DataFrame(rows), [s]), ["base"], "base", n_boot=500)
    assert r.accuracy == pytest.approx((0 + 1 + 2 + 3 + 4) / 20)
    assert r.accuracy_ci[0] < r.accuracy < r.accuracy_ci[1]
    assert r.tokens_per_correct == pytest.approx(200 / 10)


def _row(acc, tok):
    nan = math.nan
    return VariantSummary(
        "v",
        1,
        0,
        acc,
        (nan, nan),
        nan,
        nan,
        nan,
        (nan, nan),
        0,
        nan,
        (nan, nan),
        nan,
        nan,
        nan,
        nan,
        nan,
        0.0,
        tokens_per_problem=tok,
    )


def test_pareto_flags_match_a_brute_force_dominance_check():
    rnd = random.Random(0)
    for _ in range(50):
        pts = [
            (rnd.choice([0.1, 0.2, 0.5, 0.9]), rnd.choice([10.0, 20.0, 30.0]))
            for _ in range(rnd.randint(1, 8))
        ]
        rows = [_row(a, t) for a, t in pts]
        mark_pareto(rows)
        for (i, p), r in zip(enumerate(pts), rows, strict=True):
            dominated = any(q[0] >= p[0] and q[1] <= p[1] and q != p for j, q in enumerate(pts) if j != i)
            assert r.pareto == (not dominated)
    rows = [_row(math.nan, 1.0), _row(0.5, 2.0)]
    mark_pareto(rows)
    assert [r.pareto for r in rows] == [False, True]
