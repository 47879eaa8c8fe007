"""Two stores side by side (two models, two dates, two engines): for every (variant, strategy)
row both hold, each metric on both sides and the difference B − A with a paired bootstrap CI.

Why paired over the shared problems: problem difficulty varies far more than the effect of a
model change, so the two sides are compared on the same problems and the same resamples of
them; problems only one store holds would mix "different model" with "different questions",
so they are counted and left out."""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table
from rich.text import Text

from ..errors import UserError
from ..metrics.outcomes import outcomes
from ..metrics.summary import reference_variant
from ..metrics.tokens import check_bootstrap, percentile_interval
from ..store import Store
from .export import resolve_run
from .format import num
from .markdown import markdown_table

# metric -> what it measures; every one is a ratio of sums over the compared problems.
METRICS: dict[str, str] = {
    "accuracy": "share of problems answered correctly (mean score)",
    "reasoning_tokens": "mean reasoning tokens per sample",
    "tokens_per_problem": "generated tokens per problem, every sample the strategy paid for",
    "s_per_problem": "seconds per problem",
    "ctir_all": "reasoning tokens vs the store's own reference variant, over all compared problems",
}
LABELS = {
    "accuracy": "accuracy",
    "reasoning_tokens": "reasoning tok/sample",
    "tokens_per_problem": "tok/problem",
    "s_per_problem": "s/problem",
    "ctir_all": "CTIR all",
}
# metric -> (per-problem numerator column, denominator column; None = count of problems)
_COLUMNS: dict[str, tuple[str, str | None]] = {
    "accuracy": ("score", None),
    "reasoning_tokens": ("reasoning_tokens", "attempts"),
    "tokens_per_problem": ("tokens", None),
    "s_per_problem": ("cost_s", None),
}


@dataclass(frozen=True)
class Side:
    """One store's run as compared."""

    path: str
    run_id: str
    run_name: str
    reference: str | None  # the variant its CTIR is measured against
    problems: int  # problems the run holds


@dataclass(frozen=True)
class Delta:
    """One metric of one (variant, strategy) row: A, B, B − A and its 95% CI over n problems."""

    variant: str
    strategy: str
    metric: str
    n: int
    a: float
    b: float
    delta: float
    low: float
    high: float
    significant: bool  # the CI excludes 0


@dataclass
class Comparison:
    a: Side
    b: Side
    deltas: list[Delta]
    rows_only_a: list[tuple[str, str]]  # (variant, strategy)
    rows_only_b: list[tuple[str, str]]
    shared_problems: int
    only_a_problems: int
    only_b_problems: int
    gold_mismatch: int = 0  # shared ids whose gold answers differ (different data under one id)
    n_boot: int = 2000
    seed: int = 0
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """Plain JSON: NaN as null, rows as objects."""
        d = asdict(self)
        d["deltas"] = [{k: _clean(v) for k, v in x.items()} for x in d["deltas"]]
        d["rows_only_a"] = [{"variant": v, "strategy": s} for v, s in self.rows_only_a]
        d["rows_only_b"] = [{"variant": v, "strategy": s} for v, s in self.rows_only_b]
        return d


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    return x


def paired_bootstrap_delta(
    num_a: np.ndarray,
    den_a: np.ndarray,
    num_b: np.ndarray,
    den_b: np.ndarray,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float, float, float, float]:
    """(A, B, B − A, low, high) for the metric sum(num)/sum(den) on each side, arrays aligned
    by problem. The bootstrap draws one index matrix
    numpy.random.default_rng(seed).integers(0, n, size=(n_boot, n)), applies the same rows to
    both sides (paired), and drops resamples where either denominator sums to 0."""
    check_bootstrap(n_boot, level)
    arrays = [np.asarray(x, dtype=np.float64) for x in (num_a, den_a, num_b, den_b)]
    n = arrays[0].size
    if any(x.size != n for x in arrays):
        raise ValueError("paired_bootstrap_delta: all four arrays must have one value per problem")
    if n == 0:
        return (math.nan,) * 5
    na, da, nb, db = arrays
    a = float(na.sum() / da.sum()) if da.sum() else math.nan
    b = float(nb.sum() / db.sum()) if db.sum() else math.nan
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # [n_boot, n]
    da_boot, db_boot = da[idx].sum(axis=1), db[idx].sum(axis=1)  # [n_boot]
    keep = (da_boot != 0) & (db_boot != 0)
    if not keep.any():
        return (a, b, b - a, math.nan, math.nan)
    diff = nb[idx][keep].sum(axis=1) / db_boot[keep] - na[idx][keep].sum(axis=1) / da_boot[keep]
    low, high = percentile_interval(diff, level)
    return (a, b, b - a, low, high)


def _row(o: pd.DataFrame, variant: str, strategy: str) -> pd.DataFrame:
    return o[(o["variant"] == variant) & (o["strategy"] == strategy)].set_index("problem_id")


def _delta(variant, strategy, metric, ids, parts, n_boot, seed) -> Delta:
    a, b, d, lo, hi = paired_bootstrap_delta(*parts, n_boot=n_boot, seed=seed)
    sig = not (math.isnan(lo) or math.isnan(hi)) and (lo > 0 or hi < 0)
    return Delta(variant, strategy, metric, len(ids), a, b, d, lo, hi, sig)


def compare_outcomes(
    out_a: pd.DataFrame,
    out_b: pd.DataFrame,
    ref_a: str | None,
    ref_b: str | None,
    shared: set[str],
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[list[Delta], list[tuple[str, str]], list[tuple[str, str]]]:
    """Deltas for every (variant, strategy) row in both outcome frames (metrics.outcomes), in
    A's row order, plus the rows only A and only B hold. A row is compared over the problems in
    `shared` that both sides decided; CTIR-all also needs each side's reference decided there,
    and is left out for the reference itself (1 on both sides)."""
    keys_a = list(dict.fromkeys(zip(out_a["variant"], out_a["strategy"], strict=True)))
    keys_b = list(dict.fromkeys(zip(out_b["variant"], out_b["strategy"], strict=True)))
    matched = [k for k in keys_a if k in set(keys_b)]
    deltas: list[Delta] = []
    for v, s in matched:
        oa, ob = _row(out_a, v, s), _row(out_b, v, s)
        ids = sorted(set(oa.index) & set(ob.index) & shared)
        for metric, (num_col, den_col) in _COLUMNS.items():
            parts = []
            for o in (oa, ob):
                x = o.loc[ids]
                den = x[den_col].to_numpy(float) if den_col else np.ones(len(ids))
                parts += [x[num_col].to_numpy(float), den]
            deltas.append(_delta(v, s, metric, ids, parts, n_boot, seed))
        if ref_a is None or ref_b is None or v == ref_a == ref_b:
            continue
        ra, rb = _row(out_a, ref_a, s), _row(out_b, ref_b, s)
        if ra.empty or rb.empty:
            continue
        cids = sorted(set(ids) & set(ra.index) & set(rb.index))
        parts = [
            oa.loc[cids, "reasoning_tokens"].to_numpy(float),
            ra.loc[cids, "reasoning_tokens"].to_numpy(float),
            ob.loc[cids, "reasoning_tokens"].to_numpy(float),
            rb.loc[cids, "reasoning_tokens"].to_numpy(float),
        ]
        deltas.append(_delta(v, s, "ctir_all", cids, parts, n_boot, seed))
    only_a = [k for k in keys_a if k not in set(keys_b)]
    only_b = [k for k in keys_b if k not in set(keys_a)]
    return deltas, only_a, only_b


def load_side(path: str | Path, run_id: str | None = None) -> tuple[Side, pd.DataFrame, pd.DataFrame]:
    """(Side, outcomes in run order, problems) of one store's run, from the store alone."""
    from .build import stored_strategies

    st = Store(path, create=False)
    try:
        rid = resolve_run(st, run_id)
        strategies = stored_strategies(st, rid)
        outs = outcomes(st.generations(rid), strategies, st.scores(rid))
        order = [v["variant"] for v in st.variants(rid)]
        present = [v for v in order if v in set(outs["variant"])]
        present += sorted(set(outs["variant"]) - set(present))
        reference = reference_variant(present)
        vrank = {v: i for i, v in enumerate(present)}
        srank = {s.name: i for i, s in enumerate(strategies)}
        outs = outs.sort_values(
            ["variant", "strategy"],
            key=lambda c: c.map(vrank if c.name == "variant" else srank),
            kind="stable",
        ).reset_index(drop=True)
        name = {r["run_id"]: r["name"] for r in st.runs()}[rid]
        probs = st.problems(rid)
        return Side(str(path), rid, name, reference, len(probs)), outs, probs
    finally:
        st.close()


def compare_stores(
    path_a: str | Path,
    path_b: str | Path,
    run_a: str | None = None,
    run_b: str | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare run `run_a` of store A with run `run_b` of store B (default: each store's
    latest run). Raises UserError for a missing store, an unknown run id, or nothing shared."""
    side_a, out_a, prob_a = load_side(path_a, run_a)
    side_b, out_b, prob_b = load_side(path_b, run_b)
    ids_a, ids_b = set(prob_a["problem_id"]), set(prob_b["problem_id"])
    shared = ids_a & ids_b
    if not shared:
        raise UserError(
            f"no shared problems: {side_a.path} (run {side_a.run_id}) and {side_b.path} (run {side_b.run_id}) "
            f"hold {len(ids_a)} and {len(ids_b)} problems, none with the same id; compare runs of the "
            "same task and seed"
        )
    gold_a = dict(zip(prob_a["problem_id"], prob_a["gold"], strict=True))
    gold_b = dict(zip(prob_b["problem_id"], prob_b["gold"], strict=True))
    deltas, only_a, only_b = compare_outcomes(
        out_a, out_b, side_a.reference, side_b.reference, shared, n_boot=n_boot, seed=seed
    )
    if not deltas:

        def names(keys: list[tuple[str, str]]) -> str:
            return ", ".join(f"{v}/{s}" for v, s in keys) or "none"

        raise UserError(
            f"no (variant, strategy) rows in common: A has {names(only_a)}; B has {names(only_b)}"
        )
    cmp = Comparison(
        a=side_a,
        b=side_b,
        deltas=deltas,
        rows_only_a=only_a,
        rows_only_b=only_b,
        shared_problems=len(shared),
        only_a_problems=len(ids_a - ids_b),
        only_b_problems=len(ids_b - ids_a),
        gold_mismatch=sum(gold_a[i] != gold_b[i] for i in shared),
        n_boot=n_boot,
        seed=seed,
    )
    cmp.notes = comparison_notes(cmp)
    return cmp


# --- display ---------------------------------------------------------------------------------


def comparison_notes(cmp: Comparison) -> list[str]:
    """What a reader needs to trust the table: which runs, over what, and what was left out."""
    a, b = cmp.a, cmp.b
    notes = [
        f"A = {a.run_name} ({a.path}, run {a.run_id}); B = {b.run_name} ({b.path}, run {b.run_id}).",
        f"Δ = B − A over the problems both runs decided, of {cmp.shared_problems} shared; 95% paired "
        f"bootstrap CI ({cmp.n_boot} resamples, seed {cmp.seed}); significant = the CI excludes 0.",
        f"Problems only in A: {cmp.only_a_problems}; only in B: {cmp.only_b_problems} (counted, not used).",
        f"CTIR all is each run's own: A vs {a.reference!r}, B vs {b.reference!r}.",
    ]
    if cmp.rows_only_a:
        notes.append("Rows only in A: " + ", ".join(f"{v} / {s}" for v, s in cmp.rows_only_a) + ".")
    if cmp.rows_only_b:
        notes.append("Rows only in B: " + ", ".join(f"{v} / {s}" for v, s in cmp.rows_only_b) + ".")
    if cmp.gold_mismatch:
        notes.append(
            f"Warning: {cmp.gold_mismatch} shared problem id(s) have different gold answers in A and B."
        )
    return notes


def _fmt(metric: str, x: float, signed: bool = False) -> str:
    """A value (or, `signed`, a difference) in the metric's unit: accuracy in % (differences in
    percentage points), token counts whole (differences to one decimal)."""
    if metric == "accuracy":
        return num(x, "{:+.1f} pp" if signed else "{:.1f}%", scale=100)
    if metric in ("reasoning_tokens", "tokens_per_problem"):
        return num(x, "{:+.1f}" if signed else "{:.0f}")
    return num(x, "{:+.2f}" if signed else "{:.2f}")


CELL_COLUMNS = ("variant", "strategy", "metric", "n", "A", "B", "Δ B−A", "95% CI", "significant")


def comparison_cells(cmp: Comparison) -> list[dict[str, str]]:
    """Formatted cells shared by the terminal table, the Markdown table and the HTML page."""
    out = []
    for d in cmp.deltas:
        ci = "" if math.isnan(d.low) else f"{_fmt(d.metric, d.low, True)} … {_fmt(d.metric, d.high, True)}"
        out.append(
            {
                "variant": d.variant,
                "strategy": d.strategy,
                "metric": LABELS[d.metric],
                "n": str(d.n),
                "A": _fmt(d.metric, d.a),
                "B": _fmt(d.metric, d.b),
                "Δ B−A": _fmt(d.metric, d.delta, True),
                "95% CI": ci,
                "significant": "yes" if d.significant else "no",
            }
        )
    return out


def comparison_table(cmp: Comparison) -> Table:
    cells = comparison_cells(cmp)
    t = Table(title=Text(f"{cmp.a.run_name} (A) vs {cmp.b.run_name} (B)"), caption=Text("\n".join(cmp.notes)))
    for col in CELL_COLUMNS:
        t.add_column(col, justify="left" if col in ("variant", "strategy", "metric") else "right")
    for c in cells:
        style = "bold" if c["significant"] == "yes" else None
        t.add_row(*(Text(v) for v in c.values()), style=style)
    return t


def comparison_markdown(cmp: Comparison) -> str:
    cells = comparison_cells(cmp)
    table = markdown_table(
        CELL_COLUMNS, [list(c.values()) for c in cells], left=("variant", "strategy", "metric")
    )
    title = f"**thinkcost compare: {cmp.a.run_name} (A) vs {cmp.b.run_name} (B)**"
    return f"{title}\n\n{table}\n\n{' '.join(cmp.notes)}\n"


def _figure_html(cmp: Comparison) -> str:
    """Bars of Δ with CI error bars, one panel per metric (units differ), plotly.js inline."""
    try:
        import plotly.graph_objects as go
        from plotly.offline import get_plotlyjs
        from plotly.subplots import make_subplots
    except ImportError:
        raise UserError("the compare page needs plotly: pip install plotly") from None
    metrics = [m for m in METRICS if any(d.metric == m and not math.isnan(d.delta) for d in cmp.deltas)]
    if not metrics:
        return ""
    fig = make_subplots(rows=len(metrics), cols=1, subplot_titles=[f"Δ {LABELS[m]} (B − A)" for m in metrics])
    for i, m in enumerate(metrics, start=1):
        ds = [d for d in cmp.deltas if d.metric == m and not math.isnan(d.delta)]
        scale = 100.0 if m == "accuracy" else 1.0
        ok = [not math.isnan(d.low) for d in ds]
        fig.add_trace(
            go.Bar(
                x=[f"{d.variant} / {d.strategy}" for d in ds],
                y=[scale * d.delta for d in ds],
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": [scale * (d.high - d.delta) if k else 0 for d, k in zip(ds, ok, strict=True)],
                    "arrayminus": [
                        scale * (d.delta - d.low) if k else 0 for d, k in zip(ds, ok, strict=True)
                    ],
                },
                marker_color=["#1f5fa8" if d.significant else "#b0b0b0" for d in ds],
                hovertext=[f"n={d.n}, significant: {'yes' if d.significant else 'no'}" for d in ds],
                showlegend=False,
            ),
            row=i,
            col=1,
        )
        fig.update_yaxes(title_text="pp" if m == "accuracy" else "", zeroline=True, row=i, col=1)
    fig.update_layout(height=280 * len(metrics), margin={"t": 40, "b": 40}, template="plotly_white")
    div = fig.to_html(
        full_html=False,
        include_plotlyjs=False,
        config={"displaylogo": False},
        div_id="thinkcost-compare",  # fixed, so the same comparison writes the same page
        default_height=f"{280 * len(metrics)}px",
    )
    return f"<script>{get_plotlyjs()}</script>\n{div}"


def comparison_html(cmp: Comparison) -> str:
    """A self-contained page (no network): the delta table, notes, and the chart."""
    cells = comparison_cells(cmp)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in CELL_COLUMNS)
    body = "".join(
        f'<tr class="{"sig" if c["significant"] == "yes" else ""}">'
        + "".join(f"<td>{html.escape(v)}</td>" for v in c.values())
        + "</tr>"
        for c in cells
    )
    notes = "".join(f"<li>{html.escape(n)}</li>" for n in cmp.notes)
    title = html.escape(f"{cmp.a.run_name} (A) vs {cmp.b.run_name} (B)")
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>thinkcost compare: {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:nth-child(-n+3){{text-align:left}}
tr.sig td{{font-weight:bold;background:#eef4fb}}</style>
</head><body><h1>thinkcost compare: {title}</h1>
<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><ul>{notes}</ul>
{_figure_html(cmp)}</body></html>"""


def write_comparison_html(cmp: Comparison, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(comparison_html(cmp), encoding="utf-8")
    return path
