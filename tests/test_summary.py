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
            "recipe": "greedy",
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


def test_both_bits_per_weight_figures_reach_rows_json_labels_and_html():
    """New stores carry both figures; old ones (only `bits_per_weight`) still render, read back as
    the figure that engine then meant: layers on hf, every tensor of the file on llamacpp."""
    from thinkcost.report.html import table_html
    from thinkcost.report.table import rows_for_display, summary_json

    names = ["base", "rtn-w4g32", "gguf:Q8_0", "old-rtn", "old-gguf"]
    df = pd.DataFrame([r for v in names for r in _rows(v, [100, 120], [1, 0], [1.0, 1.0])])
    info = {
        "base": {"bits_per_weight": 32.0, "bits_per_weight_layers": 32.0, "bits_per_weight_model": 32.0},
        "rtn-w4g32": {"bits_per_weight": 5.0, "bits_per_weight_layers": 5.0, "bits_per_weight_model": 12.43},
        "gguf:Q8_0": {
            "engine": "llamacpp",
            "bits_per_weight": 8.5,
            "bits_per_weight_layers": 8.5,
            "bits_per_weight_model": 8.513,
            "file_bytes": 676e6,
        },
        "old-rtn": {"engine": "hf", "bits_per_weight": 4.0},
        "old-gguf": {"engine": "llamacpp", "gguf_type": "Q4_K_M", "bits_per_weight": 6.2, "file_bytes": 5e8},
    }
    rows = {r.name: r for r in summarize(df, names, "base", variant_info=info, n_boot=50)}
    assert (rows["rtn-w4g32"].bits_per_weight_layers, rows["rtn-w4g32"].bits_per_weight_model) == (5.0, 12.43)
    assert rows["rtn-w4g32"].bits_per_weight == 5.0  # the old name keeps meaning the layers figure
    assert (rows["old-rtn"].bits_per_weight_layers, rows["old-rtn"].bits_per_weight_model) == (4.0, None)
    assert (rows["old-gguf"].bits_per_weight_layers, rows["old-gguf"].bits_per_weight_model) == (None, 6.2)

    labels = [c["variant"] for c in rows_for_display(list(rows.values()))]
    assert labels == [
        "base (32.00 b/w layers, 32.0 model)",
        "rtn-w4g32 (5.00 b/w layers, 12.4 model)",
        "gguf:Q8_0 (8.50 b/w layers, 8.5 model, 676 MB)",
        "old-rtn (4.00 b/w layers)",
        "old-gguf (6.20 b/w model, 500 MB)",
    ]
    js = {v["name"]: v for v in summary_json(list(rows.values()), {})["variants"]}
    q8 = js["gguf:Q8_0"]
    assert q8["bits_per_weight_layers"] == 8.5 and q8["bits_per_weight_model"] == 8.513
    page = table_html(rows.values())
    assert ">b/w layers</th>" in page and ">b/w model</th>" in page
    assert ">12.43</td>" in page and ">6.20 · 500 MB</td>" in page
    old_json = [{**js["old-gguf"]}]  # a summary.json written before the two figures
    for k in ("bits_per_weight_layers", "bits_per_weight_model"):
        del old_json[0][k]
    old_json[0]["bits_per_weight"] = 6.2
    old_page = table_html(old_json)
    assert ">6.20 · 500 MB</td>" in old_page and old_page.count(">6.20") == 1  # not in the layers column
