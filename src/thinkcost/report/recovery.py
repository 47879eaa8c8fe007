"""The recovery table section: which variants of a run are recovered checkpoints (their
`thinkcost.json` says `recovered_from`), and the table of metrics.recovery as Markdown, HTML
and a terminal table."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any

from ..metrics.recovery import RecoveryRow, recovery_table

_HEADER = (
    "",
    "variant",
    "strategy",
    "accuracy",
    "CTIR joint",
    "CTIR all",
    "hit cap",
    "s/correct",
    "eff. speed-up",
    "acc. gap recovered",
    "token gap recovered",
)


def recovered_from(variant: str, info: dict[str, Any]) -> str | None:
    """The PTQ variant a `ckpt:` variant was recovered from, from its info or its checkpoint's
    metadata files; None for any other variant."""
    if info.get("recovered_from"):
        return str(info["recovered_from"])
    path = info.get("checkpoint") or (variant[5:] if variant.startswith("ckpt:") else None)
    if not path:
        return None
    for name, pick in (
        ("thinkcost.json", lambda d: (d.get("meta") or {}).get("recovered_from")),
        ("quantize_config.json", lambda d: (d.get("meta") or {}).get("recovered_from")),
    ):
        f = Path(path) / name
        try:
            found = pick(json.loads(f.read_text()))
        except (OSError, ValueError, AttributeError):
            continue
        if found:
            return str(found)
    return None


def recovery_rows(
    outs, variant_info: dict[str, dict[str, Any]], reference: str | None, n_boot: int = 2000
) -> list[RecoveryRow]:
    """The recovery table of one run's outcomes (empty when it has no recovered variant)."""
    sources = {v: src for v, i in variant_info.items() if (src := recovered_from(v, i))}
    if not sources or reference is None:
        return []
    return recovery_table(outs, sources, reference=reference, n_boot=n_boot)


def recovery_rows_of_store(store, run_id: str, n_boot: int = 2000) -> list[RecoveryRow]:
    """recovery_rows straight from a store (benchmarks, scripts)."""
    from ..metrics.outcomes import outcomes
    from ..metrics.summary import reference_variant
    from ..strategies import strategies_from_records

    info = {v["variant"]: v for v in store.variants(run_id)}
    outs = outcomes(
        store.generations(run_id), strategies_from_records(store.strategies(run_id)), store.scores(run_id)
    )
    return recovery_rows(outs, info, reference_variant(list(info)), n_boot)


def _num(x: Any, fmt: str) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, float) and math.isinf(x):
        return "∞"
    return format(x, fmt)


def recovery_cells(row: RecoveryRow | dict[str, Any]) -> list[str]:
    """One table line's cells (a row or its to_json dict)."""
    r = row.to_json() if isinstance(row, RecoveryRow) else row
    return [
        r["kind"],
        r["variant"],
        r["strategy"],
        _num(r["accuracy"], ".1%"),
        _num(r["ctir"], ".2f") + (f" (n={r['ctir_n']})" if r.get("ctir_n") is not None else ""),
        _num(r["ctir_all"], ".2f"),
        _num(r["hit_cap"], ".0%"),
        _num(r["s_per_correct"], ".2f"),
        _num(r["effective_speedup"], ".2f") + ("×" if r["effective_speedup"] is not None else ""),
        _num(r["accuracy_gap_recovered"], ".0%"),
        _num(r["token_gap_recovered"], ".0%"),
    ]


CAPTION = (
    "Recovery table: every row against base under greedy on the same problems. Share of the gap "
    "recovered: accuracy (acc − acc PTQ) / (acc base − acc PTQ); tokens (CTIR-all PTQ − CTIR-all) / "
    "(CTIR-all PTQ − 1); 100% = back to base, 0% = PTQ, – = no gap."
)


def recovery_markdown(rows: list[RecoveryRow] | list[dict[str, Any]]) -> str:
    """The recovery table as GitHub Markdown, with its caption; "" when there are no rows.
    Cells escape `\\` and `|` with a backslash, as report/markdown.py does."""
    if not rows:
        return ""

    def line(cells) -> str:
        return "| " + " | ".join(c.replace("\\", "\\\\").replace("|", "\\|") for c in cells) + " |"

    align = "|" + "|".join(" :--- " if i < 3 else " ---: " for i in range(len(_HEADER))) + "|"
    table = "\n".join([line(_HEADER), align, *(line(recovery_cells(r)) for r in rows)])
    return f"**Recovery**\n\n{table}\n\n{CAPTION}"


def recovery_html(meta: dict[str, Any]) -> str:
    """The report page's recovery section ("" when the run has no recovered variant)."""
    rows = meta.get("recovery") or []
    if not rows:
        return ""
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in _HEADER)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in recovery_cells(r)) + "</tr>" for r in rows)
    return (
        f'<section id="sec-recovery"><h2>Recovery</h2><p class="note">{esc(CAPTION)}</p>'
        f'<div class="table-wrap"><table class="summary" id="recovery-table"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div></section>"
    )


def recovery_table_rich(rows: list[dict[str, Any]]):
    """The recovery table for the terminal (`thinkcost run` / `thinkcost report`)."""
    from rich.table import Table

    t = Table(*_HEADER, title="Recovery (vs base, greedy)", caption=CAPTION)
    for r in rows:
        t.add_row(*recovery_cells(r))
    return t
