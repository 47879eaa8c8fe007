"""The self-contained HTML report: one file that opens offline (why: report/assets.py).

This module assembles the page: which figures, which sections in which order. The parts live
where they can be read and tested alone: report/sections.py (summary table from the column
spec, plot panels, run details), report/browser.py (the problem browser's data and controls),
report/figures.py (one plotly figure per panel), report/assets.py (plotly.js, CSS/JS, JSON
inside <script>).

Safety: every string from the store (model text, problem text, variant names) is escaped in
Python or set with textContent in the page; JSON inside <script> has "<" escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from . import figures as F
from .assets import asset, plotly_js
from .browser import TRACE_CHAR_LIMIT, browser_data, browser_section, recipe_choices
from .format import row_dicts
from .levels import levels_html
from .recovery import recovery_html
from .search_trees import search_trees_section
from .sections import OPTIONAL, PANELS, meta_section, plot_section, table_html


def report_figures(
    rows: Iterable[Any], meta: dict[str, Any], gens: pd.DataFrame, curves: Sequence[dict[str, Any]] | None
) -> dict[str, dict[str, Any] | None]:
    """The page's figures by panel id (None: nothing to draw)."""
    rs = row_dicts(rows)
    variants = list(dict.fromkeys(r["name"] for r in rs))
    names = {r["strategy"] for r in rs}
    recipes = [s["recipe"] for s in meta.get("strategies") or [] if s.get("name") in names] or None
    return {
        "pareto": F.pareto_figure(rs) if rs else None,
        "ctir": F.ctir_figure(rs, meta.get("reference")) if rs else None,
        "tokens": F.tokens_figure(gens, variants, recipes) if rs and len(gens) else None,
        "curves": F.curves_figure(curves, variants),
        "reliability": F.reliability_figure(gens, variants) if len(gens) else None,
        "robustness": F.robustness_figure(_robustness_frame(meta)),
    }


def _robustness_frame(meta: dict[str, Any]) -> pd.DataFrame | None:
    rates = meta.get("robustness")
    return pd.DataFrame(rates) if rates else None


def render_report(
    rows: Iterable[Any],
    meta: dict[str, Any],
    gens: pd.DataFrame,
    curves: Sequence[dict[str, Any]] | None = None,
    problems: pd.DataFrame | None = None,
    *,
    trace_chars: int = TRACE_CHAR_LIMIT,
    search_steps: pd.DataFrame | None = None,
) -> str:
    """The whole report page: summary table, plots, problem browser and run details.

    `rows`: VariantSummary rows or summary_json()["variants"] dicts; `gens`: Store.generations;
    `curves`: scaling_curves points; `problems`: Store.problems (questions for the browser)."""
    rs = row_dicts(rows)
    esc = html.escape
    js = plotly_js()
    figs = report_figures(rs, meta, gens, curves)
    variants = list(dict.fromkeys(r["name"] for r in rs)) or list(dict.fromkeys(gens.get("variant", [])))
    data = browser_data(
        gens, problems, variants, meta.get("reference"), recipe_choices(meta, gens), trace_chars
    )
    plots = "".join(
        plot_section(pid, title, cap, empty, figs[pid], bool(js))
        for pid, title, cap, empty in PANELS
        if pid not in OPTIONAL or figs[pid] is not None
    )
    ref = meta.get("reference")
    nav = "".join(
        f'<a href="#{a}">{t}</a>'
        for a, t in (
            ("sec-table", "summary"),
            ("sec-pareto", "accuracy vs tokens"),
            ("sec-ctir", "CTIR"),
            ("sec-tokens", "token distribution"),
            ("sec-curves", "curves"),
            ("browser", "problem browser"),
            ("sec-meta", "run details"),
        )
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>thinkcost: {esc(str(meta.get("run_name", "")))}</title>
<style>{asset("report.css")}</style>
</head><body>
<h1>thinkcost: {esc(str(meta.get("run_name", "")))}</h1>
<p class="muted">{len(rs)} row(s) · reference {esc(str(ref))} · {len(gens):,} stored generations</p>
<nav>{nav}</nav>
<section id="sec-table"><h2>Summary</h2>
<p class="note">One row per (variant, strategy); click a header to sort. CTIR and speed-up are relative to
{esc(str(ref))} under the same strategy; CTIR joint = over problems both answer correctly.</p>
{table_html(rs) if rs else '<p class="note">no rows</p>'}</section>
{recovery_html(meta)}
{plots}
{levels_html(meta, bool(js))}
{browser_section(data)}
{search_trees_section(search_steps, {r["key"]: r["label"] for r in recipe_choices(meta, gens)})}
{meta_section(meta, rs)}
<script>{js}</script>
<script>{asset("report.js")}</script>
</body></html>
"""
