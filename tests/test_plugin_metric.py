"""A plugin metric end to end (metrics/plugins.py): one function registered from this file, a real
run on the scripted engine, and its values, recomputed here from the store's rows, in summary.json,
the terminal table, the Markdown table and the HTML page."""

from __future__ import annotations

import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.metrics.outcomes import outcomes
from thinkcost.metrics.plugins import METRICS
from thinkcost.metrics.summary import summarize
from thinkcost.pipeline import run
from thinkcost.report.columns import display_cells
from thinkcost.report.markdown import parse_markdown_table, rows_to_markdown
from thinkcost.report.table import rich_table, rows_for_display
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.strategies import parse_strategy
from thinkcost.tasks import get_task

LIMIT = 4
NAME, HEADER, FMT = "median-tok", "median tok", "{:.1f}"


def median_tokens(rows: pd.DataFrame) -> float:
    """The toy metric: median tokens a strategy spent per problem."""
    return float(rows["tokens"].median())


@pytest.fixture
def metric():
    METRICS.register(NAME, header=HEADER, fmt=FMT, tip="median tokens per problem")(median_tokens)
    try:
        yield NAME
    finally:
        METRICS.unregister(NAME)


def _script():
    """Problem k, sample s thinks k + 2s tokens and answers right; so the median differs by strategy."""
    prompts = sorted(p.messages[-1]["content"] for p in get_task("arithmetic").problems(LIMIT, 0))
    gold = {p.messages[-1]["content"]: p.gold for p in get_task("arithmetic").problems(LIMIT, 0)}

    def script(req, sid):
        content = next(c for c in prompts if req.prompt_messages[-1]["content"].startswith(c))
        k = prompts.index(content)
        return (
            ["Step", "."] + [" more"] * (k + 2 * sid) + ["\nThe", " answer", " is", f" {gold[content]}", "."]
        )

    return script


def _expected(store_path: Path, run_id: str, strategies: list[dict]) -> dict[str, float]:
    """Independently of outcomes/summarize: per strategy, every stored sample it reads (recipe key,
    sample < k), completion tokens summed per problem, then the median over problems."""
    st = Store(store_path, create=False)
    try:
        gens = st.generations(run_id)
    finally:
        st.close()
    out = {}
    for s in strategies:
        g = gens[(gens["recipe"] == s["recipe"]) & (gens["sample"] < s["k"])]
        out[s["name"]] = float(g.groupby("problem_id")["completion_tokens"].sum().median())
    return out


def _terminal_cells(table) -> list[dict[str, str]]:
    """The rendered rich table read back: header -> cell text per body row."""
    console = Console(width=300, record=True, file=io.StringIO())
    console.print(table)
    lines = console.export_text().splitlines()
    header = next(line for line in lines if "┃" in line)
    names = [c.strip() for c in header.strip().strip("┃").split("┃")]
    body = [line for line in lines if line.strip().startswith("│")]
    return [dict(zip(names, (c.strip() for c in b.strip().strip("│").split("│")), strict=True)) for b in body]


class _SummaryTable(HTMLParser):
    """Headers and (text, data-sort) cells of the page's #summary-table."""

    def __init__(self) -> None:
        super().__init__()
        self.inside, self.cell = False, None
        self.headers: list[str] = []
        self.rows: list[list[tuple[str, str]]] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table" and a.get("id") == "summary-table":
            self.inside = True
        elif self.inside and tag == "tr":
            self.rows.append([])
        elif self.inside and tag in ("th", "td"):
            self.cell = [tag, "", a.get("data-sort")]

    def handle_data(self, data):
        if self.cell is not None:
            self.cell[1] += data

    def handle_endtag(self, tag):
        if tag == "table":
            self.inside = False
        elif self.cell is not None and tag == self.cell[0]:
            kind, text, sort = self.cell
            if kind == "th":
                self.headers.append(text)
            else:
                self.rows[-1].append((text, sort))
            self.cell = None


def test_a_registered_metric_reaches_json_terminal_markdown_and_html(tmp_path, metric):
    spec = build_spec(
        {},
        {
            "variants": "base",
            "strategy": "greedy,maj@3",
            "limit": LIMIT,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 200,
        },
    )
    res = run(spec, Console(quiet=True), engine=ScriptedEngine(_script()))
    summary = json.loads(res.outputs["json"].read_text())
    want = _expected(res.store_path, res.run_id, summary["meta"]["strategies"])
    assert want == {"greedy": 9.5, "maj@3": 34.5}  # the script's tokens, by hand: 8 + k + 2s + 1 (EOS)
    text = {s: FMT.format(v) for s, v in want.items()}

    # summary.json
    assert {v["strategy"]: v["extra"][NAME] for v in summary["variants"]} == want
    assert {r.strategy: r.extra[NAME] for r in res.rows} == want

    # the terminal table: the cells, and the table as printed
    cells = {c["strategy"]: c for c in rows_for_display(res.rows)}
    assert {s: c[HEADER] for s, c in cells.items()} == text
    assert list(cells["greedy"]).index(HEADER) == list(cells["greedy"]).index("frontier") - 1
    printed = _terminal_cells(rich_table(res.rows, "run", "base"))
    assert {c["strategy"]: c[HEADER] for c in printed} == text

    # Markdown
    md = parse_markdown_table(rows_to_markdown(res.rows, summary["meta"]))
    assert {c["strategy"]: c[HEADER] for c in md} == text

    # HTML: the page's summary table shows the text and sorts by the exact value
    page = _SummaryTable()
    page.feed(res.outputs["html"].read_text(encoding="utf-8"))
    col, strat = page.headers.index(HEADER), page.headers.index("strategy")
    assert page.headers[col + 1] == "frontier"
    got = {row[strat][0]: row[col] for row in page.rows if row}
    assert got == {s: (text[s], repr(v)) for s, v in want.items()}
    assert f'title="median tokens per problem">{HEADER}</th>' in res.outputs["html"].read_text()


def _rows(tokens: list[int]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "variant": "base",
                "problem_id": f"p{i}",
                "recipe": "greedy",
                "sample": 0,
                "reasoning_tokens": t,
                "completion_tokens": t + 1,
                "correct": 1,
                "cost_s": 1.0,
                "finish_reason": "stop",
            }
            for i, t in enumerate(tokens)
        ]
    )


def _summary(tokens: list[int]):
    return summarize(outcomes(_rows(tokens), [parse_strategy("greedy")]), ["base"], "base", n_boot=20)


def test_without_a_registered_metric_rows_and_columns_are_unchanged(metric):
    with_metric = _summary([1, 2, 10])
    assert with_metric[0].extra == {NAME: 3.0}
    METRICS.unregister(NAME)  # the fixture's own unregister is then a no-op
    assert _summary([1, 2, 10])[0].extra == {}
    # rows that still carry the value get no column once nothing describes how to print it
    assert HEADER not in display_cells(with_metric)[0]


def test_a_metric_header_cannot_shadow_a_column_and_a_failing_metric_names_itself(metric):
    METRICS.register("shadow", header="tok/s")(lambda rows: 1.0)
    try:
        rows = _summary([1, 2])
        with pytest.raises(ValueError, match="tok/s"):
            display_cells(rows)
    finally:
        METRICS.unregister("shadow")

    def broken(rows):
        return rows["no such column"].sum()

    METRICS.register("broken")(broken)
    try:
        with pytest.raises(RuntimeError, match="metric 'broken' failed on base / greedy"):
            _summary([1, 2])
    finally:
        METRICS.unregister("broken")
