"""The problem browser: per problem, sample 0 of the reference next to another variant.

Why its data is compressed: the traces are the bulk of a report's bytes, so they travel as
gzip+base64 JSON that the page decompresses with the browser's own DecompressionStream the
first time the browser is used. Traces are cut at `TRACE_CHAR_LIMIT` characters so 10,000
generations stay well under 20 MB; the full text is in generations.parquet.

Safety: the controls are rendered here with every string escaped; the page sets trace text
with textContent only (report.js), never as HTML.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from ..metrics.repetition import repetition

TRACE_CHAR_LIMIT = 8000
TRUNCATION_NOTE = "truncated: full text in generations.parquet / `thinkcost export`"


def encode_payload(obj: Any) -> str:
    """gzip + base64 of compact JSON (mtime 0: the same data gives the same bytes)."""
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def decode_payload(text: str) -> Any:
    """Inverse of `encode_payload` (tests and tools read the page's browser data with it)."""
    return json.loads(gzip.decompress(base64.b64decode(text)).decode("utf-8"))


# --- data ----------------------------------------------------------------------------------------
def question_of(messages: Any) -> str:
    """The last user message of a chat prompt (the question; earlier turns are few-shot)."""
    if isinstance(messages, str):
        return messages
    msgs = [m for m in (messages or []) if isinstance(m, dict)]
    users = [str(m.get("content", "")) for m in msgs if m.get("role") == "user"]
    return users[-1] if users else "\n\n".join(str(m.get("content", "")) for m in msgs)


def marked_parts(text: str, spans: Iterable[tuple[int, int]], limit: int) -> list[str]:
    """`text[:limit]` split into alternating plain / repeated pieces, starting with plain.
    Pieces, not offsets, because Python counts code points and JavaScript UTF-16 units."""
    shown = text[:limit]
    parts: list[str] = []
    at = 0
    for start, end in spans:
        if start >= limit:
            break
        end = min(end, limit)
        parts += [shown[at:start], shown[start:end]]
        at = end
    parts.append(shown[at:])
    return parts


def _opt_str(x: Any) -> str | None:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return str(x)


def _int(x: Any) -> int | None:
    try:
        return None if pd.isna(x) else int(x)
    except (TypeError, ValueError):
        return None


def trace_entry(row: dict[str, Any], limit: int = TRACE_CHAR_LIMIT) -> dict[str, Any]:
    """One stored generation as the browser shows it: text cut at `limit` with repeated word
    4-grams marked, verdict and token counts. The repetition score covers the shown text only:
    scanning whole 100k-character traces would dominate the build time (the page says so)."""
    text = str(row.get("text") or "")
    shown = text[:limit]
    rep = repetition(shown)
    return {
        "parts": marked_parts(shown, rep.spans, limit),
        "chars": len(text),
        "truncated": len(text) > limit,
        "extracted": _opt_str(row.get("extracted")),
        "correct": bool(row.get("correct")),
        "rule": _opt_str(row.get("extract_rule")) or "",
        "reasoning_tokens": _int(row.get("reasoning_tokens")),
        "answer_tokens": _int(row.get("answer_tokens")),
        "completion_tokens": _int(row.get("completion_tokens")),
        "finish_reason": _opt_str(row.get("finish_reason")) or "",
        "error": _opt_str(row.get("error")),
        "repetition": round(rep.score, 4),
        "repeated": rep.repeated,
        "ngrams": rep.ngrams,
    }


def recipe_choices(meta: dict[str, Any], gens: pd.DataFrame) -> list[dict[str, str]]:
    """Stored recipes (the store's `recipe` column) in strategy order, each labelled with the
    strategies that read it, e.g. "sample:t=0.7,p=0.95 (maj@5, sample@5)"."""
    present = set(gens["recipe"]) if "recipe" in gens else set()
    names: dict[str, list[str]] = {}
    for s in meta.get("strategies") or []:
        if s.get("recipe") in present:
            names.setdefault(s["recipe"], []).append(s.get("name", s["recipe"]))
    for key in gens["recipe"].drop_duplicates() if "recipe" in gens else []:
        names.setdefault(key, [])
    return [{"key": k, "label": f"{k} ({', '.join(v)})" if v else k} for k, v in names.items()]


def _problem_list(problems: pd.DataFrame | None, gens: pd.DataFrame, limit: int) -> list[dict[str, Any]]:
    pids = set(gens["problem_id"])
    out = []
    if problems is not None and len(problems):
        for p in problems.itertuples(index=False):
            if p.problem_id in pids:
                q = question_of(p.messages)
                out.append(
                    {
                        "id": str(p.problem_id),
                        "task": str(p.task),
                        "question": q[:limit],
                        "chars": len(q),
                        "truncated": len(q) > limit,
                        "gold": str(p.gold),
                    }
                )
        return out
    order = gens.sort_values("problem_position") if "problem_position" in gens else gens
    for pid, g in order.groupby("problem_id", sort=False):
        first = g.iloc[0]
        out.append(
            {
                "id": str(pid),
                "task": str(first.get("task", "")),
                "question": "(question not available: no problems table was given)",
                "chars": 0,
                "truncated": False,
                "gold": str(first.get("gold", "")),
            }
        )
    return out


def browser_data(
    gens: pd.DataFrame,
    problems: pd.DataFrame | None,
    variants: Sequence[str],
    reference: str | None,
    recipes: Sequence[dict[str, str]],
    limit: int = TRACE_CHAR_LIMIT,
) -> dict[str, Any]:
    """Everything the problem browser shows: problems, and sample 0 of each (recipe, variant,
    problem) as `trace_entry` under traces[recipe][variant][problem_id]."""
    keys = [r["key"] for r in recipes]
    g = gens[(gens["sample"] == 0) & gens["variant"].isin(list(variants)) & gens["recipe"].isin(keys)]
    traces: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in keys}
    for row in g.to_dict("records"):
        traces[row["recipe"]].setdefault(row["variant"], {})[str(row["problem_id"])] = trace_entry(row, limit)
    return {
        "reference": reference,
        "variants": list(variants),
        "recipes": list(recipes),
        "limit": limit,
        "note": TRUNCATION_NOTE,
        "problems": _problem_list(problems, g, limit),
        "traces": traces,
    }


# --- markup --------------------------------------------------------------------------------------
def _options(items: Iterable[tuple[str, str]], selected: str | None = None) -> str:
    return "".join(
        f'<option value="{html.escape(v)}"{" selected" if v == selected else ""}>{html.escape(label)}</option>'
        for v, label in items
    )


def _problem_label(i: int, p: dict[str, Any]) -> str:
    q = " ".join(p["question"].split())
    return f"{i + 1}. {p['id']}: {q[:90]}{'…' if len(q) > 90 else ''}"


def browser_section(data: dict[str, Any]) -> str:
    """Controls rendered server-side (escaped); the traces come from the compressed payload."""
    if not data["problems"]:
        return '<section id="browser"><h2>Problem browser</h2><p class="note">no stored generations</p></section>'
    ref = data["reference"]
    others = [v for v in data["variants"] if v != ref]
    recipes = data["recipes"]
    hide_recipe = " hidden" if len(recipes) < 2 else ""
    return f"""<section id="browser"><h2>Problem browser</h2>
<p class="note">Sample 0 of each variant; the reference ({html.escape(str(ref))}) on the left. Repeated word
4-grams are <mark>highlighted</mark>. Traces longer than {data["limit"]:,} characters are {html.escape(TRUNCATION_NOTE)}.</p>
<div class="controls">
<label>problem <select id="pb-problem">{_options((str(i), _problem_label(i, p)) for i, p in enumerate(data["problems"]))}</select></label>
<button type="button" id="pb-prev">◀</button><button type="button" id="pb-next">▶</button>
<label>variant <select id="pb-variant">{_options(((v, v) for v in others or data["variants"]), (others or [ref])[0])}</select></label>
<label{hide_recipe}>recipe <select id="pb-recipe">{_options((r["key"], r["label"]) for r in recipes)}</select></label>
<label><input type="checkbox" id="pb-differ"> only problems where the verdicts differ</label>
<span class="muted" id="pb-count"></span> <span class="muted" id="pb-status"></span>
</div>
<div class="qbox"><div><b>problem</b> <span id="pb-pid"></span> · <b>gold answer</b>: <span id="pb-gold"></span></div>
<pre id="pb-question"></pre><div class="note" id="pb-qtrunc"></div></div>
<div class="grid2"><div class="panel" id="pb-left"></div><div class="panel" id="pb-right"></div></div>
<script type="application/octet-stream" id="browser-data">{encode_payload(data)}</script>
</section>"""
