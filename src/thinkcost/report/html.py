"""The self-contained HTML report: one file that opens offline.

Why one file: a report gets mailed, attached to issues and opened years later; it must not
depend on a CDN or on the store next to it. So plotly.js is inlined, figure data is plain JSON
in the page, and the problem browser's traces (the bulk of the bytes) travel as gzip+base64
JSON that the page decompresses with the browser's own DecompressionStream the first time the
browser is used. Traces are cut at `TRACE_CHAR_LIMIT` characters so 10,000 generations stay
well under 20 MB; the full text is in generations.parquet.

Safety: every string from the store (model text, problem text, variant names) is escaped in
Python or set with textContent in the page; JSON inside <script> has "<" escaped.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
import math
from collections.abc import Iterable, Sequence
from importlib import resources
from typing import Any

import pandas as pd

from ..metrics.repetition import repetition
from . import figures as F

TRACE_CHAR_LIMIT = 8000
TRUNCATION_NOTE = "truncated: full text in generations.parquet / `thinkcost export`"
PLOT_IDS = ("pareto", "ctir", "tokens", "curves")


# --- assets --------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly Python package (no network), read once
    per process; "" when plotly is not installed (the page then says so instead of plotting)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return ""
    return get_plotlyjs()


@functools.lru_cache(maxsize=2)
def _asset(name: str) -> str:
    return resources.files("thinkcost.report").joinpath("templates", name).read_text(encoding="utf-8")


def script_json(obj: Any) -> str:
    """JSON safe to place inside <script type="application/json">: no "</script>" can occur."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def encode_payload(obj: Any) -> str:
    """gzip + base64 of compact JSON (mtime 0: the same data gives the same bytes)."""
    raw = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")
    return base64.b64encode(gzip.compress(raw, compresslevel=6, mtime=0)).decode("ascii")


def decode_payload(text: str) -> Any:
    """Inverse of `encode_payload` (tests and tools read the page's browser data with it)."""
    return json.loads(gzip.decompress(base64.b64decode(text)).decode("utf-8"))


# --- problem browser data ------------------------------------------------------------------------
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
    """Stored recipes (the store's `strategy` column) in strategy order, each labelled with the
    strategies that read it, e.g. "sample:t=0.7,p=0.95 (maj@5, sample@5)"."""
    present = set(gens["strategy"]) if "strategy" in gens else set()
    names: dict[str, list[str]] = {}
    for s in meta.get("strategies") or []:
        if s.get("recipe") in present:
            names.setdefault(s["recipe"], []).append(s.get("name", s["recipe"]))
    for key in gens["strategy"].drop_duplicates() if "strategy" in gens else []:
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
    g = gens[(gens["sample"] == 0) & gens["variant"].isin(list(variants)) & gens["strategy"].isin(keys)]
    traces: dict[str, dict[str, dict[str, Any]]] = {k: {} for k in keys}
    for row in g.to_dict("records"):
        traces[row["strategy"]].setdefault(row["variant"], {})[str(row["problem_id"])] = trace_entry(
            row, limit
        )
    return {
        "reference": reference,
        "variants": list(variants),
        "recipes": list(recipes),
        "limit": limit,
        "note": TRUNCATION_NOTE,
        "problems": _problem_list(problems, g, limit),
        "traces": traces,
    }


# --- summary table -------------------------------------------------------------------------------
def _fmt(x: Any, fmt: str = "{:.2f}") -> str:
    if x == "inf":
        return "∞"
    f = F.finite(x)
    return "–" if f is None else fmt.format(f)


def _sort(x: Any) -> str:
    if x in ("inf", "-inf"):
        return "Infinity" if x == "inf" else "-Infinity"
    f = F.finite(x)
    return "" if f is None else repr(f)


def _ci(ci: Sequence[Any] | None, fmt: str = "{:.2f}", scale: float = 1.0) -> str:
    lo, hi = (F.finite(ci[0]), F.finite(ci[1])) if ci else (None, None)
    if lo is None or hi is None:
        return ""
    return f" ({fmt.format(lo * scale)}–{fmt.format(hi * scale)})"


def _pct(x: Any) -> float | None:
    f = F.finite(x)
    return None if f is None else 100 * f


def _bpw(r: dict[str, Any], part: str) -> Any:
    """The "layers" or "model" b/w of a row. A summary.json from before there were two figures
    has only `bits_per_weight`: the layers figure, but every tensor on GGUF rows (file_bytes set)."""
    if "bits_per_weight_layers" in r or "bits_per_weight_model" in r:
        return r.get(f"bits_per_weight_{part}")
    return r.get("bits_per_weight") if (part == "model") == bool(r.get("file_bytes")) else None


# (header, tooltip, kind, text(row), sort value(row)); kind "num" sorts numerically.
COLUMNS: list[tuple[str, str, str, Any, Any]] = [
    ("variant", "model variant", "text", lambda r: r["name"], lambda r: r["name"]),
    ("strategy", "decoding strategy", "text", lambda r: r["strategy"], lambda r: r["strategy"]),
    (
        "b/w layers",
        "bits per weight of the decoder blocks' Linear weights (q/k/v/o/gate/up/down), scales included",
        "num",
        lambda r: _fmt(_bpw(r, "layers")),
        lambda r: _sort(_bpw(r, "layers")),
    ),
    (
        "b/w model",
        "bits per weight over every parameter: embeddings, norms, LM head (file size for GGUF variants)",
        "num",
        lambda r: (
            _fmt(_bpw(r, "model")) + (f" · {r['file_bytes'] / 1e6:.0f} MB" if r.get("file_bytes") else "")
        ),
        lambda r: _sort(_bpw(r, "model")),
    ),
    ("n", "problems compared", "num", lambda r: str(r["n"]), lambda r: _sort(r["n"])),
    (
        "accuracy (95% CI)",
        "accuracy with Wilson / bootstrap 95% CI; correct final answers / problems",
        "num",
        lambda r: (
            _fmt(_pct(r["accuracy"]), "{:.0f}")
            + "%"
            + _ci(r["accuracy_ci"], "{:.0f}", 100)
            + f" {r['n_correct']}/{r['n']}"
        ),
        lambda r: _sort(r["accuracy"]),
    ),
    (
        "reasoning tok",
        "mean reasoning tokens per sample",
        "num",
        lambda r: _fmt(r["mean_reasoning_tokens"], "{:.0f}"),
        lambda r: _sort(r["mean_reasoning_tokens"]),
    ),
    (
        "tok/problem",
        "every token the strategy generated, per problem",
        "num",
        lambda r: _fmt(r["tokens_per_problem"], "{:.0f}"),
        lambda r: _sort(r["tokens_per_problem"]),
    ),
    (
        "CTIR joint (95% CI)",
        "reasoning-token ratio vs the reference over problems both answer correctly",
        "num",
        lambda r: _fmt(r["ctir"]) + _ci(r["ctir_ci"]) + f" n={r['ctir_n']}",
        lambda r: _sort(r["ctir"]),
    ),
    (
        "CTIR all (95% CI)",
        "reasoning-token ratio vs the reference over all problems",
        "num",
        lambda r: _fmt(r["ctir_all"]) + _ci(r["ctir_all_ci"]),
        lambda r: _sort(r["ctir_all"]),
    ),
    (
        "hit cap",
        "samples that hit max_new_tokens",
        "num",
        lambda r: _fmt(_pct(r["truncated_share"]), "{:.0f}") + "%",
        lambda r: _sort(r["truncated_share"]),
    ),
    (
        "tok/s",
        "generated tokens per second",
        "num",
        lambda r: _fmt(r["tokens_per_s"], "{:.1f}"),
        lambda r: _sort(r["tokens_per_s"]),
    ),
    (
        "tok/correct",
        "tokens per correct answer",
        "num",
        lambda r: _fmt(r["tokens_per_correct"], "{:.0f}"),
        lambda r: _sort(r["tokens_per_correct"]),
    ),
    (
        "s/correct",
        "seconds per correct answer",
        "num",
        lambda r: _fmt(r["s_per_correct"], "{:.1f}"),
        lambda r: _sort(r["s_per_correct"]),
    ),
    (
        "speed-up",
        "reference's s/correct over this row's",
        "num",
        lambda r: _fmt(r["effective_speedup"]) + "×",
        lambda r: _sort(r["effective_speedup"]),
    ),
    (
        "frontier",
        "on the accuracy-vs-tokens-per-problem Pareto frontier",
        "text",
        lambda r: "★" if r.get("pareto") else "",
        lambda r: "★" if r.get("pareto") else "",
    ),
    (
        "failed",
        "samples whose request finally failed (counted wrong; a rerun retries them)",
        "num",
        lambda r: str(r.get("failed", 0)),
        lambda r: _sort(r.get("failed", 0)),
    ),
]


def table_html(rows: Iterable[Any]) -> str:
    """The summary table, one row per (variant, strategy); headers sort it (report.js)."""
    rs = F.row_dicts(rows)
    cols = [c for c in COLUMNS if c[0] != "failed" or any(r.get("failed") for r in rs)]
    esc = html.escape
    head = "".join(
        f'<th class="{kind}" data-type="{kind}" title="{esc(tip)}">{esc(name)}</th>'
        for name, tip, kind, _, _ in cols
    )
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="{kind}" data-sort="{esc(str(key(r)))}">{esc(text(r))}</td>'
            for _, _, kind, text, key in cols
        )
        + "</tr>"
        for r in rs
    )
    return (
        '<div class="table-wrap"><table class="summary sortable" id="summary-table">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


# --- page ----------------------------------------------------------------------------------------
def report_figures(
    rows: Iterable[Any], meta: dict[str, Any], gens: pd.DataFrame, curves: Sequence[dict[str, Any]] | None
) -> dict[str, dict[str, Any] | None]:
    """The page's figures by panel id (None: nothing to draw)."""
    rs = F.row_dicts(rows)
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


_PANELS = (
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
_OPTIONAL = {"reliability", "robustness"}  # panels shown only when the run has their data


def _plot_section(
    pid: str, title: str, caption: str, empty: str, fig: dict[str, Any] | None, js: bool
) -> str:
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


def _meta_section(meta: dict[str, Any], rows: list[dict[str, Any]]) -> str:
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


def render_report(
    rows: Iterable[Any],
    meta: dict[str, Any],
    gens: pd.DataFrame,
    curves: Sequence[dict[str, Any]] | None = None,
    problems: pd.DataFrame | None = None,
    *,
    trace_chars: int = TRACE_CHAR_LIMIT,
) -> str:
    """The whole report page: summary table, plots, problem browser and run details.

    `rows`: VariantSummary rows or summary_json()["variants"] dicts; `gens`: Store.generations;
    `curves`: scaling_curves points; `problems`: Store.problems (questions for the browser)."""
    rs = F.row_dicts(rows)
    esc = html.escape
    js = plotly_js()
    figs = report_figures(rs, meta, gens, curves)
    variants = list(dict.fromkeys(r["name"] for r in rs)) or list(dict.fromkeys(gens.get("variant", [])))
    data = browser_data(
        gens, problems, variants, meta.get("reference"), recipe_choices(meta, gens), trace_chars
    )
    plots = "".join(
        _plot_section(pid, title, cap, empty, figs[pid], bool(js))
        for pid, title, cap, empty in _PANELS
        if pid not in _OPTIONAL or figs[pid] is not None
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
<style>{_asset("report.css")}</style>
</head><body>
<h1>thinkcost: {esc(str(meta.get("run_name", "")))}</h1>
<p class="muted">{len(rs)} row(s) · reference {esc(str(ref))} · {len(gens):,} stored generations</p>
<nav>{nav}</nav>
<section id="sec-table"><h2>Summary</h2>
<p class="note">One row per (variant, strategy); click a header to sort. CTIR and speed-up are relative to
{esc(str(ref))} under the same strategy; CTIR joint = over problems both answer correctly.</p>
{table_html(rs) if rs else '<p class="note">no rows</p>'}</section>
{plots}
{browser_section(data)}
{_meta_section(meta, rs)}
<script>{js}</script>
<script>{_asset("report.js")}</script>
</body></html>
"""
