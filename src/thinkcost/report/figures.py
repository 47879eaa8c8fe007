"""Plotly figure dicts (``{"data": [...], "layout": {...}}``) for the HTML report, one pure
function per panel.

Why dicts and not plotly.graph_objects: the page embeds them as JSON for the inline plotly.js,
and tests can assert the plotted numbers (accuracy per row, CI bounds, token lists, frontier
points) without rendering pixels. Every number that cannot be plotted (NaN, infinity, missing)
becomes ``None``, which plotly.js draws as a gap and JSON can carry.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from .format import finite, row_dicts

PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)
CORRECT_COLOR = "#2ca02c"
WRONG_COLOR = "#d62728"

Figure = dict[str, Any]


def plot_text(s: Any) -> str:
    """Plotly renders names and labels as pseudo-HTML (<b>, <a href>): escape model- or
    user-chosen names so they show as typed and never become markup."""
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def row_label(row: dict[str, Any]) -> str:
    return f"{row['name']} · {row['strategy']}"


def _layout(title: str, xtitle: str, ytitle: str, **extra: Any) -> dict[str, Any]:
    return {
        "title": {"text": title},
        "xaxis": {"title": {"text": xtitle}, "automargin": True},
        "yaxis": {"title": {"text": ytitle}, "automargin": True},
        "margin": {"l": 60, "r": 20, "t": 50, "b": 60},
        "height": 460,
        "hovermode": "closest",
        "legend": {"orientation": "h", "y": -0.2},
        **extra,
    }


def _error_bars(values: Sequence[float | None], cis: Sequence[Sequence[Any]]) -> dict[str, Any]:
    """Asymmetric error bars whose ends are exactly the CI bounds (None where unknown)."""
    plus, minus = [], []
    for v, ci in zip(values, cis, strict=True):
        lo, hi = (finite(ci[0]), finite(ci[1])) if ci else (None, None)
        plus.append(hi - v if v is not None and hi is not None else None)
        minus.append(v - lo if v is not None and lo is not None else None)
    return {"type": "data", "symmetric": False, "array": plus, "arrayminus": minus, "thickness": 1.2}


def _strategies(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["strategy"] for r in rows))


def _variants(rows: list[dict[str, Any]]) -> list[str]:
    return list(dict.fromkeys(r["name"] for r in rows))


# --- panel 2: accuracy vs tokens per problem, Pareto frontier -------------------------------------
def _with_cost_axis(r: dict[str, Any]) -> dict[str, Any]:
    """The Pareto x axis: FLOP-equivalent tokens (a search's PRM reads included) where a row has
    them, as `mark_pareto` ranks; older rows keep tokens per problem."""
    f = finite(r.get("flop_tokens_per_problem"))
    return {**r, "tokens_per_problem": f} if f is not None else r


def pareto_figure(rows: Iterable[Any]) -> Figure:
    """One point per (variant, strategy) row, one trace per strategy, with 95% CI bars on
    accuracy; the frontier line joins the rows flagged ``pareto`` (accuracy up, tokens per
    problem down), in order of tokens per problem, the same axis `mark_pareto` ranks on."""
    rs = [_with_cost_axis(r) for r in row_dicts(rows)]
    data: list[dict[str, Any]] = []
    for i, strat in enumerate(_strategies(rs)):
        sub = [r for r in rs if r["strategy"] == strat]
        ys = [finite(r["accuracy"]) for r in sub]
        data.append(
            {
                "type": "scatter",
                "mode": "markers+text",
                "name": plot_text(strat),
                "x": [finite(r["tokens_per_problem"]) for r in sub],
                "y": ys,
                "text": [plot_text(r["name"]) for r in sub],
                "textposition": "top center",
                "error_y": _error_bars(ys, [r["accuracy_ci"] for r in sub]),
                "marker": {"size": 10, "color": PALETTE[i % len(PALETTE)]},
                "hovertemplate": "%{text} · " + plot_text(strat) + "<br>accuracy %{y:.1%}"
                "<br>%{x:,.0f} tokens/problem<extra></extra>",
            }
        )
    front = sorted(
        (r for r in rs if r.get("pareto") and finite(r["tokens_per_problem"]) is not None),
        key=lambda r: finite(r["tokens_per_problem"]),
    )
    data.append(
        {
            "type": "scatter",
            "mode": "lines+markers",
            "name": "Pareto frontier",
            "x": [finite(r["tokens_per_problem"]) for r in front],
            "y": [finite(r["accuracy"]) for r in front],
            "text": [plot_text(row_label(r)) for r in front],
            "line": {"color": "#444", "dash": "dot", "width": 2},
            "marker": {"symbol": "circle-open", "size": 18, "color": "#444", "line": {"width": 2}},
            "hovertemplate": "frontier: %{text}<extra></extra>",
        }
    )
    layout = _layout(
        "Accuracy vs reasoning cost",
        "mean tokens per problem (every sample the strategy paid for, a search's PRM reads weighted by "
        "parameter count; the frontier is drawn on this axis)",
        "accuracy (95% CI)",
    )
    layout["yaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


# --- panel 3: CTIR with confidence intervals -----------------------------------------------------
def ctir_figure(rows: Iterable[Any], reference: str | None = None) -> Figure:
    """CTIR per variant with 95% bootstrap CI bars: joint (problems both the variant and the
    reference answer correctly) and all problems, one pair of traces per strategy. A dashed
    line at 1 marks "as many tokens as the reference"."""
    rs = row_dicts(rows)
    variants = _variants(rs)
    data: list[dict[str, Any]] = []
    kinds = (
        ("joint", "ctir", "ctir_ci", "problems both answer correctly"),
        ("all", "ctir_all", "ctir_all_ci", "all problems"),
    )
    strategies = _strategies(rs)
    for si, strat in enumerate(strategies):
        sub = [r for r in rs if r["strategy"] == strat]
        for ki, (kind, key, ci_key, what) in enumerate(kinds):
            ys = [finite(r[key]) for r in sub]
            name = f"{kind}: {what}" + (f" · {strat}" if len(strategies) > 1 else "")
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": plot_text(name),
                    "x": [plot_text(r["name"]) for r in sub],
                    "y": ys,
                    "customdata": [
                        [
                            finite(r[ci_key][0]),
                            finite(r[ci_key][1]),
                            r.get("ctir_n") if kind == "joint" else r["n"],
                        ]
                        for r in sub
                    ],
                    "error_y": _error_bars(ys, [r[ci_key] for r in sub]),
                    "marker": {
                        "size": 10,
                        "symbol": "circle" if kind == "joint" else "diamond",
                        "color": PALETTE[(2 * si + ki) % len(PALETTE)],
                    },
                    "hovertemplate": "%{x}<br>CTIR %{y:.3f} (%{customdata[0]:.3f}–%{customdata[1]:.3f})"
                    "<br>n=%{customdata[2]}<extra>" + plot_text(name) + "</extra>",
                }
            )
    ref = f" vs {reference}" if reference else ""
    layout = _layout(
        f"CoT token inflation ratio{ref} (95% bootstrap CI)",
        "variant",
        f"CTIR: reasoning tokens{ref}, same strategy",
        scattermode="group",
        shapes=[
            {
                "type": "line",
                "xref": "paper",
                "x0": 0,
                "x1": 1,
                "yref": "y",
                "y0": 1,
                "y1": 1,
                "line": {"color": "#888", "dash": "dash", "width": 1},
            }
        ],
    )
    layout["xaxis"]["type"] = "category"
    layout["xaxis"]["categoryorder"] = "array"
    layout["xaxis"]["categoryarray"] = [plot_text(v) for v in variants]
    return {"data": data, "layout": layout}


# --- panel 4: distribution of reasoning tokens ----------------------------------------------------
def token_samples(
    gens: pd.DataFrame, variants: Sequence[str], recipes: Sequence[str] | None = None
) -> pd.DataFrame:
    """The generations the distribution panel plots: chosen variants and recipes, failed
    requests (finish_reason "error", no tokens) left out. Columns: category, correct, tokens."""
    g = gens[gens["variant"].isin(list(variants))]
    if recipes is not None:
        g = g[g["recipe"].isin(list(recipes))]
    if "finish_reason" in g:
        g = g[g["finish_reason"] != "error"]
    several = g["recipe"].nunique() > 1
    cat = g["variant"] + (" · " + g["recipe"] if several else "")
    return pd.DataFrame(
        {
            "category": cat.to_numpy(),
            "variant": g["variant"].to_numpy(),
            "recipe": g["recipe"].to_numpy(),
            "correct": g["correct"].astype(bool).to_numpy(),
            "tokens": g["reasoning_tokens"].astype(int).to_numpy(),
        }
    )


def tokens_figure(
    gens: pd.DataFrame, variants: Sequence[str], recipes: Sequence[str] | None = None
) -> Figure:
    """Box plots of reasoning tokens per generation, per variant (and per sample recipe when a
    run has several), split into correct and incorrect answers: inflation often hides in the
    wrong answers, which loop to the cap."""
    s = token_samples(gens, variants, recipes)
    order = [c for v in variants for c in dict.fromkeys(s.loc[s["variant"] == v, "category"])]
    data = []
    for flag, name, color in ((True, "correct", CORRECT_COLOR), (False, "incorrect", WRONG_COLOR)):
        sub = s[s["correct"] == flag]
        data.append(
            {
                "type": "box",
                "name": name,
                "x": [plot_text(c) for c in sub["category"]],
                "y": [int(t) for t in sub["tokens"]],
                "marker": {"color": color, "size": 3},
                "boxpoints": "outliers",
                "boxmean": True,
                "hovertemplate": "%{x}<br>%{y} reasoning tokens<extra>" + name + "</extra>",
            }
        )
    layout = _layout(
        "Reasoning tokens per generation, by verdict",
        "variant",
        "reasoning tokens (one generation)",
        boxmode="group",
    )
    layout["xaxis"]["type"] = "category"
    layout["xaxis"]["categoryorder"] = "array"
    layout["xaxis"]["categoryarray"] = [plot_text(c) for c in order]
    return {"data": data, "layout": layout}


# --- panel 5: pass@k / maj@k curves --------------------------------------------------------------
def curve_groups(
    curves: Sequence[dict[str, Any]], variants: Sequence[str] | None = None
) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Curve points per (variant, recipe), sorted by k; groups in `variants` order (the table's)
    when given, else in order of appearance."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in curves:
        groups.setdefault((p["variant"], p["recipe"]), []).append(p)
    rank = {v: i for i, v in enumerate(variants or [])}
    keys = sorted(groups, key=lambda g: rank.get(g[0], len(rank)))  # stable: ties keep appearance
    return {g: sorted(groups[g], key=lambda p: p["k"]) for g in keys}


def curves_figure(
    curves: Sequence[dict[str, Any]] | None, variants: Sequence[str] | None = None
) -> Figure | None:
    """pass@k and maj@k against k (left) and against expected tokens per problem (right), one
    colour per (variant, recipe); solid = pass@k, dashed = maj@k. None when the run has no
    independent-sample recipe (nothing to draw)."""
    groups = curve_groups(curves or [], variants)
    if not groups:
        return None
    several = len({r for _, r in groups}) > 1
    data = []
    for i, ((variant, recipe), ps) in enumerate(groups.items()):
        label = plot_text(f"{variant} · {recipe}" if several else variant)
        color = PALETTE[i % len(PALETTE)]
        toks = [finite(p["tokens_per_problem"]) for p in ps]
        for metric, dash in (("pass_at_k", "solid"), ("maj_at_k", "dash")):
            ys = [finite(p[metric]) for p in ps]
            name = f"{label} {metric.replace('_at_', '@')}"
            common = {
                "type": "scatter",
                "mode": "lines+markers",
                "name": name,
                "legendgroup": name,
                "line": {"color": color, "dash": dash},
                "marker": {"color": color, "size": 6},
                "y": ys,
            }
            data.append(
                common
                | {
                    "x": [p["k"] for p in ps],
                    "hovertemplate": "k=%{x}<br>%{y:.1%}<extra>" + name + "</extra>",
                }
            )
            data.append(
                common
                | {
                    "x": toks,
                    "xaxis": "x2",
                    "yaxis": "y2",
                    "showlegend": False,
                    "customdata": [p["k"] for p in ps],
                    "hovertemplate": "k=%{customdata}<br>%{x:,.0f} tokens/problem<br>%{y:.1%}<extra>"
                    + name
                    + "</extra>",
                }
            )
    layout = _layout(
        "Accuracy vs samples (pass@k solid, maj@k dashed)", "k (samples per problem)", "accuracy"
    )
    layout["xaxis"]["domain"] = [0, 0.46]
    if max(p["k"] for ps in groups.values() for p in ps) <= 16:
        layout["xaxis"]["dtick"] = 1
    layout["yaxis"] |= {"tickformat": ".0%"}
    layout["xaxis2"] = {
        "domain": [0.54, 1],
        "anchor": "y2",
        "title": {"text": "expected tokens per problem"},
        "automargin": True,
    }
    layout["yaxis2"] = {"anchor": "x2", "tickformat": ".0%", "matches": "y", "automargin": True}
    return {"data": data, "layout": layout}


# --- optional panels: calibration (--confidence runs), robustness (injection/extraction tasks) ----
def reliability_figure(gens: pd.DataFrame, variants: Sequence[str], n_bins: int = 10) -> Figure | None:
    """Reliability diagram per (variant, recipe): mean stated confidence vs accuracy in 10
    equal-width bins, with the diagonal of perfect calibration. None when no sample has a
    confidence (the run did not ask for one)."""
    from ..metrics.calibration import reliability

    if "confidence" not in gens or gens["confidence"].isna().all():
        return None
    data: list[dict[str, Any]] = [
        {"type": "scatter", "mode": "lines", "x": [0, 1], "y": [0, 1], "name": "perfect calibration",
         "line": {"dash": "dot", "color": "#999"}}
    ]  # fmt: skip
    for (variant, recipe), g in gens.groupby(["variant", "recipe"], sort=False):
        if variant not in variants or g["confidence"].isna().all():
            continue
        conf = [None if pd.isna(x) else float(x) for x in g["confidence"]]
        bins = [b for b in reliability(conf, list(g["correct"].astype(bool)), n_bins=n_bins) if b["count"]]
        data.append(
            {
                "type": "scatter",
                "mode": "lines+markers",
                "name": plot_text(f"{variant} · {recipe}"),
                "x": [b["confidence"] for b in bins],
                "y": [b["accuracy"] for b in bins],
                "text": [f"{b['count']} samples" for b in bins],
            }
        )
    layout = _layout("Reliability diagram", "mean stated confidence (bin)", "accuracy (bin)")
    layout["xaxis"]["range"] = [0, 1]
    layout["yaxis"]["range"] = [0, 1]
    return {"data": data, "layout": layout}


def robustness_figure(rates: pd.DataFrame | None) -> Figure | None:
    """Attack success (secret/canary in the answer) and leaks in the reasoning per variant, with
    Wilson 95% CIs, against the strategy (reasoning budget): does longer thinking or fewer bits
    make a model easier to attack?"""
    if rates is None or len(rates) == 0:
        return None
    data = []
    for part, label, dash in (
        ("attack", "in the answer", "solid"),
        ("reasoning_leak", "in the reasoning", "dot"),
    ):
        for variant, g in rates.groupby("variant", sort=False):
            vals = [finite(x) for x in g[f"{part}_rate"]]
            cis = list(zip(g[f"{part}_ci_low"], g[f"{part}_ci_high"], strict=True))
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": plot_text(f"{variant} · {label}"),
                    "x": [plot_text(s) for s in g["strategy"]],
                    "y": vals,
                    "error_y": _error_bars(vals, cis),
                    "line": {"dash": dash},
                }
            )
    layout = _layout("Attack success vs strategy", "strategy (recipe: budget)", "share of samples (95% CI)")
    layout["yaxis"]["range"] = [0, 1.05]
    return {"data": data, "layout": layout}
