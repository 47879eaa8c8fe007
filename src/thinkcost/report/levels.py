"""Difficulty and scaling sections of a report: per-level table and plot (metrics.levels), the fitted
coverage curve (metrics.scaling.coverage_fits) and weak-verifier resampling (verify.weak).

Kept in one module apart from the core panels because all three are optional: a run whose problems
have no level, no independent-sample recipe or no test list shows none of them, and the summary
JSON carries them under meta["levels"], meta["coverage_fits"] and meta["weak_verifier"].
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..metrics.levels import levels_summary
from ..metrics.scaling import DEFAULT_EXTRAPOLATE, coverage_fits, sample_sets, weak_verifier_curves
from ..strategies import Strategy
from .figures import PALETTE, Figure, _layout, plot_text
from .format import finite
from .sections import plot_section


def weak_verdicts(gens: pd.DataFrame, problems: pd.DataFrame, strategies: Sequence[Strategy]) -> dict:
    """(variant, problem_id, recipe, sample) -> first-test-only verdict, for the independent-sample
    recipes of problems that carry a test list (MBPP); {} otherwise. Runs each answer in the sandbox."""
    from ..verify.weak import weak_tests, weak_verdict

    metas = {str(p): m for p, m in zip(problems["problem_id"], problems["meta"], strict=True) if m}
    if not any(weak_tests(m) for m in metas.values()):
        return {}
    out = {}
    for variant, key, groups in sample_sets(gens, strategies):
        for x in groups:
            for pid, sample, answer in zip(x["problem_id"], x["sample"], x["answer_text"], strict=True):
                v = weak_verdict(str(answer or ""), metas.get(str(pid), {}))
                if v is not None:
                    out[(variant, str(pid), key, int(sample))] = v
    return out


def difficulty_meta(
    outs: pd.DataFrame,
    gens: pd.DataFrame,
    problems: pd.DataFrame,
    strategies: Sequence[Strategy],
    reference: str | None,
    *,
    n_boot: int = 2000,
    extrapolate: Sequence[int] = DEFAULT_EXTRAPOLATE,
) -> dict[str, Any]:
    """The optional blocks of summary.json meta; keys absent when there is nothing to show."""
    meta: dict[str, Any] = {}
    levels = levels_summary(outs, problems, reference, n_boot=n_boot)
    if levels:
        meta["levels"] = levels
    fits = coverage_fits(gens, strategies, extrapolate, n_boot=min(n_boot, 1000))
    if fits:
        meta["coverage_fits"] = fits
    weak = weak_verdicts(gens, problems, strategies)
    if weak:
        meta["weak_verifier"] = weak_verifier_curves(gens, strategies, weak)
    return _json_safe(meta)


def _json_safe(x: Any) -> Any:
    """NaN/inf -> None all the way down: summary.json must stay valid JSON."""
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_json_safe(v) for v in x]
    return _clean(x)


def _clean(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


def levels_figure(block: dict[str, Any]) -> Figure:
    """Accuracy vs level (left) and mean reasoning tokens vs level (right), one colour per
    (variant, strategy); the dotted line is the collapse threshold."""
    table = block["table"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in table:
        groups.setdefault((r["variant"], r["strategy"]), []).append(r)
    several = len({s for _, s in groups}) > 1
    data = []
    for i, ((v, s), rs) in enumerate(groups.items()):
        rs = sorted(rs, key=lambda r: r["level"])
        name = plot_text(f"{v} · {s}" if several else v)
        color = PALETTE[i % len(PALETTE)]
        xs = [r["level"] for r in rs]
        common = {"type": "scatter", "mode": "lines+markers", "legendgroup": name, "line": {"color": color}}
        data.append({**common, "name": name, "x": xs, "y": [finite(r["accuracy"]) for r in rs]})
        data.append(
            {
                **common,
                "name": name,
                "showlegend": False,
                "x": xs,
                "y": [finite(r["mean_reasoning_tokens"]) for r in rs],
                "xaxis": "x2",
                "yaxis": "y2",
            }
        )
    levels = sorted({r["level"] for r in table})
    data.append(
        {
            "type": "scatter",
            "mode": "lines",
            "name": f"collapse threshold ({block['threshold']:.0%})",
            "x": [levels[0], levels[-1]],
            "y": [block["threshold"]] * 2,
            "line": {"color": "#7f7f7f", "dash": "dot"},
        }
    )
    layout = _layout("Accuracy and reasoning tokens per level", "level", "accuracy")
    layout["xaxis"]["domain"] = [0, 0.46]
    layout["yaxis"]["tickformat"] = ".0%"
    layout["yaxis"]["range"] = [0, 1.05]
    layout["xaxis2"] = {"title": {"text": "level"}, "domain": [0.54, 1], "anchor": "y2"}
    layout["yaxis2"] = {"title": {"text": "mean reasoning tokens per attempt"}, "anchor": "x2"}
    return {"data": data, "layout": layout}


def coverage_figure(fits: Sequence[dict[str, Any]]) -> Figure:
    """Observed pass@k (markers) and the fitted exp(a k^b) (line, extended to the extrapolated ks)."""
    data = []
    for i, f in enumerate(fits):
        color = PALETTE[i % len(PALETTE)]
        name = plot_text(f"{f['variant']} · {f['recipe']}")
        obs = f["observed"]
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name} pass@k",
                "x": [p["k"] for p in obs],
                "y": [finite(p["coverage"]) for p in obs],
                "marker": {"color": color},
            }
        )
        k_max = max([obs[-1]["k"], *(e["k"] for e in f["extrapolated"])])
        ks = sorted({round(math.exp(j * math.log(k_max) / 60)) for j in range(61)})
        data.append(
            {
                "type": "scatter",
                "mode": "lines",
                "name": f"{name} fit a={f['a']:.3g}, b={f['b']:.3g}",
                "x": ks,
                "y": [math.exp(f["a"] * k ** f["b"]) for k in ks],
                "line": {"color": color},
            }
        )
        ext = f["extrapolated"]
        if ext:
            data.append(
                {
                    "type": "scatter",
                    "mode": "markers",
                    "name": f"{name} extrapolated (95% CI)",
                    "x": [e["k"] for e in ext],
                    "y": [finite(e["coverage"]) for e in ext],
                    "marker": {"color": color, "symbol": "diamond"},
                    "error_y": {
                        "type": "data",
                        "symmetric": False,
                        "array": [(_clean(e["ci"][1]) or e["coverage"]) - e["coverage"] for e in ext],
                        "arrayminus": [e["coverage"] - (_clean(e["ci"][0]) or e["coverage"]) for e in ext],
                    },
                }
            )
    layout = _layout("Coverage (pass@k) and its power-law fit", "k (samples)", "coverage")
    layout["xaxis"]["type"] = "log"
    layout["yaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


def weak_verifier_figure(points: Sequence[dict[str, Any]]) -> Figure:
    """Resample-until-accepted: accuracy (solid) and precision (dashed) against the sample budget k."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for p in points:
        groups.setdefault((p["variant"], p["recipe"]), []).append(p)
    data = []
    for i, ((v, r), ps) in enumerate(groups.items()):
        ps = sorted(ps, key=lambda p: p["k"])
        color = PALETTE[i % len(PALETTE)]
        for metric, dash in (("accuracy", "solid"), ("precision", "dash")):
            data.append(
                {
                    "type": "scatter",
                    "mode": "lines+markers",
                    "name": plot_text(f"{v} · {r} {metric}"),
                    "x": [p["k"] for p in ps],
                    "y": [finite(p[metric]) for p in ps],
                    "line": {"color": color, "dash": dash},
                }
            )
    layout = _layout("Resample until the weak verifier accepts", "sample budget k", "share of problems")
    layout["yaxis"]["tickformat"] = ".0%"
    return {"data": data, "layout": layout}


def _fmt(x: Any, pct: bool = False) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "n/a"
    if pct:
        return f"{x:.0%}"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]], tid: str) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in r) + "</tr>" for r in rows)
    return (
        f'<div class="table-wrap"><table class="summary" id="{tid}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def levels_html(meta: dict[str, Any], js: bool) -> str:
    """The report page's difficulty and scaling sections ("" when the run has none of them)."""
    out = []
    block = meta.get("levels")
    if block:
        collapse = {(c["variant"], c["strategy"]): c for c in block["collapse"]}
        rows = []
        for r in block["table"]:
            c = collapse.get((r["variant"], r["strategy"]), {})
            rows.append(
                [
                    r["variant"],
                    r["strategy"],
                    _fmt(r["level"]),
                    str(r["n"]),
                    _fmt(r["accuracy"], pct=True),
                    _fmt(r["mean_reasoning_tokens"]),
                    f"{_fmt(r['ctir'])} [{_fmt(r['ctir_ci'][0])}, {_fmt(r['ctir_ci'][1])}] (n={r['ctir_n']})",
                    "collapse" if c.get("collapse_level") == r["level"] else "",
                ]
            )
        cap = (
            f"Per difficulty level (the problem's meta level / difficulty / n_steps). Collapse = the first "
            f"level whose accuracy is below {block['threshold']:.0%}. CTIR per level is against "
            f"{meta.get('reference')} under the same strategy, over problems of that level both answer correctly."
        )
        out.append(plot_section("levels", "Accuracy and tokens per level", cap, "", levels_figure(block), js))
        header = [
            "variant",
            "strategy",
            "level",
            "problems",
            "accuracy",
            "reasoning tok",
            "CTIR [95% CI]",
            "",
        ]
        summary = "; ".join(
            f"{c['variant']} · {c['strategy']}: "
            + (
                f"collapses at level {c['collapse_level']}"
                if c["collapse_level"] is not None
                else "no collapse"
            )
            for c in block["collapse"]
        )
        out.append(
            f'<section id="sec-levels-table"><h2>Per-level table</h2><p class="note">{html.escape(summary)}</p>'
            + _table(header, rows, "levels-table")
            + "</section>"
        )
    fits = meta.get("coverage_fits")
    if fits:
        cap = (
            "Coverage = unbiased pass@k from the stored samples, fitted with exp(a·k^b) (Brown et al. 2024); "
            "extrapolated points carry 95% bootstrap intervals over problems. A problem never solved keeps "
            "real coverage below 1, which the fit cannot show: read extrapolations as optimistic."
        )
        out.append(plot_section("coverage-fit", "Coverage fit", cap, "", coverage_figure(fits), js))
    weak = meta.get("weak_verifier")
    if weak:
        cap = (
            "Draw samples in random order until the weak verifier (first test only) accepts one, at most k; "
            "accuracy = the returned answer passes all tests; precision = accuracy among accepted answers."
        )
        out.append(plot_section("weak-verifier", "Weak verifier", cap, "", weak_verifier_figure(weak), js))
    return "".join(out)


def levels_rich(meta: dict[str, Any]) -> list[Any]:
    """Terminal renderables for `thinkcost run` / `thinkcost report`: the per-level table (with the
    collapse points as its caption) and one line per coverage fit; [] when the run has neither."""
    from rich.table import Table

    out: list[Any] = []
    block = meta.get("levels")
    if block:
        caption = "; ".join(
            f"{c['variant']} · {c['strategy']}: "
            + (
                f"collapse at level {c['collapse_level']}"
                if c["collapse_level"] is not None
                else "no collapse"
            )
            for c in block["collapse"]
        )
        t = Table(
            "variant", "strategy", "level", "problems", "accuracy", "reasoning tok", "CTIR (joint)",
            title=f"Per level (collapse = accuracy below {block['threshold']:.0%})", caption=caption,
        )  # fmt: skip
        for r in block["table"]:
            t.add_row(
                r["variant"], r["strategy"], _fmt(r["level"]), str(r["n"]), _fmt(r["accuracy"], pct=True),
                _fmt(r["mean_reasoning_tokens"]), f"{_fmt(r['ctir'])} (n={r['ctir_n']})",
            )  # fmt: skip
        out.append(t)
    for f in meta.get("coverage_fits") or []:
        ext = ", ".join(f"pass@{e['k']} ≈ {_fmt(e['coverage'], pct=True)}" for e in f["extrapolated"])
        out.append(
            f"coverage fit {f['variant']} · {f['recipe']}: exp({f['a']:.3g}·k^{f['b']:.3g}) over k=1..{f['n']}; {ext}"
        )
    return out
