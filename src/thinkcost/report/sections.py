"""The report page's sections, each a function of the data it shows and nothing else: the
summary table (from the column spec, report/columns.py), the plot panels, and the run details.
Page assembly (which sections, in which order, the figures) is report/html.py's job.

Safety: every string from the store is escaped here; figure JSON goes through `script_json`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable
from typing import Any

from .assets import script_json
from .columns import columns_for
from .format import row_dicts, sort_key


# --- summary table -------------------------------------------------------------------------------
def table_html(rows: Iterable[Any]) -> str:
    """The summary table, one row per (variant, strategy); headers sort it (report.js) by each
    cell's data-sort: the column's exact value for numbers, the cell text for text columns."""
    rs = row_dicts(rows)
    cols = columns_for("html", rs)
    esc = html.escape
    head = "".join(
        f'<th class="{c.kind}" data-type="{c.kind}" title="{esc(c.tip)}">{esc(c.header)}</th>' for c in cols
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{c.kind}" data-sort="{esc(sort_key(c.sort(r)) if c.sort else c.cell(r))}">'
            f"{esc(c.cell(r))}</td>"
            for c in cols
        )
        + "</tr>"
        for r in rs
    )
    return (
        '<div class="table-wrap"><table class="summary sortable" id="summary-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


# --- plot panels ---------------------------------------------------------------------------------
# (panel id, title, caption, text when there is nothing to draw), in page order
PANELS = (
    (
        "pareto",
        "Accuracy vs tokens",
        "One point per (variant, strategy) with its 95% accuracy CI; the dotted line is the Pareto "
        "frontier (no other row is both more accurate and cheaper in tokens per problem).",
        "no rows to plot",
    ),
    (
        "ctir",
        "CoT token inflation (CTIR)",
        "Reasoning tokens relative to the reference variant under the same strategy, with 95% "
        "bootstrap CIs: joint = problems both answer correctly; all = every problem. 1 = no inflation.",
        "no rows to plot",
    ),
    (
        "tokens",
        "Reasoning-token distribution",
        "Reasoning tokens of every stored generation, per variant, split by the generation's verdict.",
        "no generations to plot",
    ),
    (
        "curves",
        "Accuracy vs k and vs expected tokens",
        "pass@k and maj@k for every k up to the samples drawn, read off one sample set per problem.",
        "No curves: this run has no independent-sample recipe (temperature > 0 with 2+ samples per "
        "problem, e.g. --strategy maj@8).",
    ),
    (
        "reliability",
        "Calibration",
        "Reliability diagram of the confidences recorded with --confidence: per bin of stated "
        "confidence, the share of samples that were right. On the diagonal = calibrated.",
        "",
    ),
    (
        "robustness",
        "Robustness of exposed reasoning",
        "Share of samples whose answer (solid) or reasoning trace (dotted) contains the injected canary or "
        "the system prompt's secret, per variant and strategy, with Wilson 95% CIs.",
        "",
    ),
)
OPTIONAL = {"reliability", "robustness"}  # panels shown only when the run has their data


def plot_section(pid: str, title: str, caption: str, empty: str, fig: dict[str, Any] | None, js: bool) -> str:
    """One panel: the figure as JSON for the inline plotly.js (`js`), or a note saying why there
    is no plot (no data, or plotly not installed), so an empty panel never looks like a bug."""
    head = f'<section id="sec-{pid}"><h2>{html.escape(title)}</h2>'
    if fig is None:
        return head + f'<p class="note">{html.escape(empty)}</p></section>'
    if not js:
        return (
            head
            + '<p class="note warn">plotly is not installed: plots omitted (pip install plotly).</p></section>'
        )
    return (
        head + f'<p class="note">{html.escape(caption)}</p>'
        f'<div class="plot" id="plot-{pid}" data-figure="fig-{pid}"></div>'
        f'<script type="application/json" id="fig-{pid}">{script_json(fig)}</script></section>'
    )


# --- run details ---------------------------------------------------------------------------------
def meta_section(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    """Run, reference, store, versions, strategies, notes and the spec: what a reader needs to
    trace the page back to the run that made it."""
    esc = html.escape
    items = [
        ("run", f"{meta.get('run_name', '')} ({meta.get('run_id', '')})"),
        ("reference", str(meta.get("reference"))),
        ("store", str(meta.get("store", ""))),
        ("thinkcost", f"{meta.get('thinkcost', '')} · Python {meta.get('python', '')}"),
    ]
    for s in meta.get("strategies") or []:
        items.append((f"strategy {s.get('name')}", f"recipe {s.get('recipe')}, k={s.get('k')}"))
    skipped = meta.get("skipped_rows") or []
    if skipped:
        items.append(("skipped rows", f"{len(skipped)} malformed input row(s) skipped"))
    lis = "".join(f"<li><b>{esc(k)}</b>: {esc(v)}</li>" for k, v in items)
    notes = "".join(
        f'<p class="note">{esc(str(meta[k]))}</p>'
        for k in ("reasoning_note", "note", "base_note")
        if meta.get(k)
    )
    failed = sum(int(r.get("failed") or 0) for r in rows)
    if failed:
        notes += f'<p class="warn">{failed} sample(s) failed on the server and count as wrong: rerun to retry them.</p>'
    spec = json.dumps(meta.get("spec", {}), indent=2, sort_keys=True, default=str)
    return (
        f'<section id="sec-meta"><h2>Run details</h2><ul>{lis}</ul>{notes}'
        f"<details><summary>run spec</summary><pre>{esc(spec)}</pre></details></section>"
    )
