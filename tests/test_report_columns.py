"""report/columns.py: one column spec, two views. The header lists below are the tables as they
were before the spec existed; a change to them is a change to every report."""

from __future__ import annotations

import math

import pytest

from thinkcost.metrics.summary import VariantSummary
from thinkcost.report.columns import COLUMNS, Column, columns_for, display_cells, multi_strategy
from thinkcost.report.markdown import parse_markdown_table, rows_to_markdown
from thinkcost.report.sections import table_html


def _row(name: str, **kw) -> VariantSummary:
    d = dict(
        name=name, n=10, n_correct=7, accuracy=0.7, accuracy_ci=(0.4, 0.9), mean_reasoning_tokens=123.4,
        mean_completion_tokens=130.0, ctir=1.2, ctir_ci=(1.0, 1.5), ctir_n=6, ctir_all=1.1,
        ctir_all_ci=(0.9, 1.3), tokens_per_s=45.6, s_per_correct=3.3, tokens_per_correct=176.0,
        effective_speedup=0.95, truncated_share=0.125, wall_s=12.0,
    )  # fmt: skip
    return VariantSummary(**(d | kw))


GREEDY_TABLE = [
    "variant", "accuracy (95% CI)", "reasoning tok", "CTIR joint (95% CI)", "CTIR all (95% CI)",
    "hit cap", "tok/s", "tok/correct", "s/correct", "speed-up",
]  # fmt: skip
HTML = [
    "variant", "strategy", "b/w layers", "b/w model", "n", "accuracy (95% CI)", "reasoning tok",
    "tok/problem", "CTIR joint (95% CI)", "CTIR all (95% CI)", "hit cap", "tok/s", "tok/correct",
    "s/correct", "speed-up", "frontier",
]  # fmt: skip


def _headers(view, rows):
    return [c.header for c in columns_for(view, [r.to_json() for r in rows])]


def test_each_view_shows_the_columns_it_always_showed():
    greedy = [_row("base"), _row("q")]
    assert _headers("table", greedy) == GREEDY_TABLE
    assert _headers("html", greedy) == HTML
    multi = [_row("base", strategy="maj@4", pareto=True, failed=2), _row("q")]
    assert _headers("table", multi) == [
        "variant", "strategy", "accuracy (95% CI)", "reasoning tok", "tok/problem", "CTIR joint (95% CI)",
        "CTIR all (95% CI)", "hit cap", "tok/s", "tok/correct", "s/correct", "speed-up", "frontier",
    ]  # fmt: skip
    assert _headers("html", multi) == [*HTML, "failed"]
    calibrated = [_row("base", ece=0.05, brier=0.2, auroc=0.7, confidence_missing=0.1), _row("q")]
    assert _headers("table", calibrated) == [*GREEDY_TABLE, "ECE", "Brier", "AUROC", "no conf."]
    assert _headers("html", calibrated) == HTML


def test_one_spec_gives_the_views_the_same_cell_where_both_show_a_column():
    rows = [_row("base", strategy="maj@4", ctir=math.nan, s_per_correct=math.inf), _row("q")]
    table = display_cells(rows, "table")
    page = table_html(rows)
    for cells in table:
        for header, text in cells.items():
            if header != "variant":  # the table view adds the b/w label the page has columns for
                assert f">{text}</td>" in page
    assert table[0]["s/correct"] == "∞" and table[0]["CTIR joint (95% CI)"] == "– (1.00–1.50) n=6"
    assert parse_markdown_table(rows_to_markdown(rows, {"reference": "base"})) == table


def test_a_missing_share_prints_a_dash_instead_of_failing():
    """A calibrated run where one row recorded no confidences (None), which crashed the table."""
    rows = [_row("base", ece=0.05, confidence_missing=0.1), _row("q", ece=None, confidence_missing=None)]
    assert [c["no conf."] for c in display_cells(rows)] == ["10%", "–%"]


def test_a_registered_column_takes_its_place_in_every_view():
    col = Column("calls", lambda r: f"{r['engine_calls_per_problem']:.1f}", lambda r: r["engine_calls_per_problem"],
                 "engine calls per problem", table=multi_strategy)  # fmt: skip
    COLUMNS.register("calls", order=COLUMNS.meta("reasoning-tok")["order"] + 1)(col)
    try:
        rows = [_row("base", strategy="maj@4", engine_calls_per_problem=2.0)]
        for view in ("table", "html"):
            headers = _headers(view, rows)
            assert headers[headers.index("reasoning tok") + 1] == "calls"
        assert display_cells(rows)[0]["calls"] == "2.0"
        assert 'data-sort="2.0">2.0</td>' in table_html(rows)
        assert "calls" not in _headers("table", [_row("base")])  # greedy-only: not shown there
    finally:
        COLUMNS.unregister("calls")
    with pytest.raises(ValueError, match="unknown view"):
        col.shown("pdf", [])
