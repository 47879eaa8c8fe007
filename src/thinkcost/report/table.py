"""The terminal table and the JSON/Parquet/HTML files of a run's summary."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from rich.table import Table
from rich.text import Text

from ..metrics.summary import VariantSummary
from .columns import display_cells
from .format import ci, pct

JSON_KEYS = (
    "name",
    "strategy",
    "n",
    "accuracy",
    "accuracy_ci",
    "mean_reasoning_tokens",
    "ctir",
    "ctir_ci",
    "ctir_all",
    "tokens_per_s",
    "s_per_correct",
    "effective_speedup",
    "tokens_per_problem",
    "tokens_per_correct",
    "pareto",
)


def rows_for_display(rows: Iterable[Any]) -> list[dict[str, str]]:
    """Formatted cells of the terminal table and the Markdown export (the column spec's "table"
    view, report/columns.py): header -> text, one dict per row."""
    return display_cells(rows, "table")


def rich_table(rows: list[VariantSummary], title: str, reference: str, notes: Sequence[str] = ()) -> Table:
    """The summary table; `notes` (e.g. the reasoning split the figures rest on) go under it."""
    cells = rows_for_display(rows)
    failed = sum(getattr(r, "failed", 0) for r in rows)
    caption = (
        f"CTIR and speed-up vs {reference!r} under the same strategy; CTIR joint = over problems "
        "both answer correctly; ★ = on the accuracy-vs-tokens-per-problem frontier"
    )
    if failed:
        caption += f"\n{failed} sample(s) failed on the server and count as wrong: rerun to retry them"
    for note in notes:
        if note:
            caption += "\n" + note
    t = Table(title=Text(title), caption=Text(caption))  # names and labels are data, never markup
    for col in cells[0] if cells else []:
        t.add_column(col, justify="left" if col == "variant" else "right", no_wrap=col == "variant")
    for c in cells:
        t.add_row(*(Text(v) for v in c.values()))
    return t


def summary_json(
    rows: list[VariantSummary], meta: dict[str, Any], curves: list[dict] | None = None
) -> dict[str, Any]:
    """`variants` holds one object per (variant, strategy) row, the main keys first; `pareto`
    lists the frontier rows (accuracy vs tokens per problem); `curves` the pass@k / maj@k points."""
    objs = []
    for r in rows:
        d = r.to_json()
        objs.append({k: d[k] for k in JSON_KEYS} | {k: v for k, v in d.items() if k not in JSON_KEYS})
    frontier = [
        {
            "variant": r.name,
            "strategy": r.strategy,
            "accuracy": r.accuracy,
            "tokens_per_problem": r.tokens_per_problem,
        }
        for r in sorted((r for r in rows if r.pareto), key=lambda r: r.tokens_per_problem)
    ]
    return {"meta": meta, "variants": objs, "pareto": frontier, "curves": curves or []}


def write_outputs(
    out_dir: Path,
    rows: list[VariantSummary],
    meta: dict[str, Any],
    gens,
    curves: list[dict] | None = None,
    problems=None,
    search_steps=None,
) -> dict[str, Path]:
    """summary.json, generations.parquet (every sample, loadable in pandas) and report.html
    (the self-contained page: table, plots and problem browser; `problems` = Store.problems
    gives the browser its questions)."""
    from .html import render_report

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "summary.json",
        "parquet": out_dir / "generations.parquet",
        "html": out_dir / "report.html",
    }
    paths["json"].write_text(json.dumps(summary_json(rows, meta, curves), indent=2))
    gens.to_parquet(paths["parquet"], index=False)
    paths["html"].write_text(
        render_report(rows, meta, gens, curves, problems, search_steps=search_steps), encoding="utf-8"
    )
    return paths


def summary_html(rows: list[VariantSummary], meta: dict[str, Any]) -> str:
    """The minimal table-only page (what report.html was before the full report; kept as the
    size baseline of benchmarks/report.py and for callers that want just the table)."""
    cells = rows_for_display(rows)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in (cells[0] if cells else []))
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in c.values()) + "</tr>" for c in cells
    )
    notes = "".join(f"<li><b>{html.escape(str(k))}</b>: {html.escape(str(v))}</li>" for k, v in meta.items())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>thinkcost report</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child{{text-align:left}}</style>
</head><body><h1>thinkcost: {html.escape(str(meta.get("run_name", "")))}</h1>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><ul>{notes}</ul></body></html>"""


def robustness_table(records: list[dict[str, Any]]) -> Table:
    """Attack success (canary/secret in the answer) and leaks in the reasoning per (variant,
    strategy), Wilson 95% CIs: printed after the main table for injection/extraction runs."""
    t = Table(
        "variant",
        "strategy",
        "samples",
        "attack in answer (95% CI)",
        "leak in reasoning (95% CI)",
        "leak anywhere",
        title="robustness of exposed reasoning",
    )
    for r in records:

        def cell(part: str, r=r) -> str:
            n = r.get(part + "_n", r["n"])
            if not n:
                return "n/a (heuristic split)"
            bounds = (r[part + "_ci_low"], r[part + "_ci_high"])
            return f"{pct(r[part + '_rate'])}{ci(bounds, '{:.0f}', 100)} {r[part]}/{n}"

        t.add_row(
            *(
                Text(x)
                for x in (
                    r["variant"],
                    r["strategy"],
                    str(r["n"]),
                    cell("attack"),
                    cell("reasoning_leak"),
                    cell("leak_any"),
                )
            )
        )
    return t
