"""GitHub-flavoured Markdown tables, for model cards and pull requests: the same cells as the
terminal table (rows_for_display: the "table" view of report/columns.py), so a pasted table
never disagrees with `thinkcost report`.

Cells escape `\\` and `|` with a backslash (GFM renders both literally), which is what lets
`parse_markdown_table` read the exact cell strings back."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from ..metrics.summary import VariantSummary
from .table import rows_for_display

_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")


def escape_cell(text: str) -> str:
    """One table cell: backslash and pipe escaped, newlines as <br> (a row is one line)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", "<br>")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]], left: Sequence[str] = ()) -> str:
    """A GFM table; columns named in `left` are left-aligned, the rest (numbers) right-aligned."""
    lines = [
        "| " + " | ".join(escape_cell(h) for h in header) + " |",
        "|" + "|".join(" :--- " if h in left else " ---: " for h in header) + "|",
    ]
    lines += ["| " + " | ".join(escape_cell(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def rows_to_markdown(rows: list[VariantSummary], meta: dict[str, Any]) -> str:
    """Title (run name and id), the summary table, and a short caption: the reference, what the
    columns mean, and the run's notes (engine, base checkpoint, skipped rows, failed samples)."""
    cells = rows_for_display(rows)
    title = f"**thinkcost: {meta.get('run_name', '')}**"
    if meta.get("run_id"):
        title += f" (run `{meta['run_id']}`)"
    if cells:
        header = list(cells[0])
        table = markdown_table(header, [list(c.values()) for c in cells], left=("variant", "strategy"))
    else:
        table = "_no finished rows in this run_"
    caption = [
        f"CTIR and speed-up vs `{meta.get('reference')}` under the same strategy; CTIR joint = over "
        "problems both answer correctly; 95% confidence intervals in parentheses."
    ]
    if any(r.strategy != "greedy" for r in rows):
        caption.append("★ = on the accuracy-vs-tokens-per-problem frontier.")
    failed = sum(r.failed for r in rows)
    if failed:
        caption.append(f"{failed} sample(s) failed on the server and count as wrong.")
    skipped = meta.get("skipped_rows") or []
    if skipped:
        caption.append(f"{len(skipped)} malformed data row(s) skipped.")
    caption += [str(meta[k]) for k in ("reasoning_note", "note", "base_note") if meta.get(k)]
    from .recovery import recovery_markdown

    recovery = recovery_markdown(meta.get("recovery") or [])
    tail = f"\n{recovery}\n" if recovery else ""
    return f"{title}\n\n{table}\n\n{' '.join(caption)}\n{tail}"


def _split_row(line: str) -> list[str]:
    """Cells of one table line, honouring backslash escapes, unescaped and stripped."""
    line = line.strip()
    if line.startswith("|"):
        line = line[1:]
    cells, cur, i = [], [], 0
    while i < len(line):
        ch = line[i]
        if ch == "\\" and i + 1 < len(line) and line[i + 1] in "\\|":
            cur.append(line[i + 1])
            i += 2
            continue
        if ch == "|":
            cells.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    if "".join(cur).strip():  # text after the last pipe (a row without a closing pipe)
        cells.append("".join(cur))
    return [c.strip().replace("<br>", "\n") for c in cells]


def parse_markdown_table(md: str) -> list[dict[str, str]]:
    """The first GFM table in `md` as one dict per body row (header -> cell text)."""
    lines = md.splitlines()
    for i in range(len(lines) - 1):
        if lines[i].lstrip().startswith("|") and _SEPARATOR.match(lines[i + 1].strip()):
            header = _split_row(lines[i])
            out = []
            for line in lines[i + 2 :]:
                if not line.lstrip().startswith("|"):
                    break
                out.append(dict(zip(header, _split_row(line), strict=True)))
            return out
    return []
