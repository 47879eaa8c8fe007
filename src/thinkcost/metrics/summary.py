"""One row of figures per variant, computed from store rows only (a DataFrame of
generations), so `thinkcost report` rebuilds exactly what `thinkcost run` printed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from .accuracy import wilson_interval
from .efficiency import effective_speedup, per_correct, tokens_per_second
from .plugins import metric_values
from .tokens import RatioCI, ctir, mean_ci


@dataclass
class VariantSummary:
    """One report row: a (variant, strategy) pair. Token figures per attempt (sample) keep
    greedy and sampling rows comparable; per-problem figures are what the strategy costs."""

    name: str
    n: int  # problems
    n_correct: int  # problems whose final answer is correct
    accuracy: float  # mean score (for sample@N: expected accuracy of one sample)
    accuracy_ci: tuple[float, float]
    mean_reasoning_tokens: float  # per attempt
    mean_completion_tokens: float  # per attempt
    ctir: float
    ctir_ci: tuple[float, float]
    ctir_n: int
    ctir_all: float
    ctir_all_ci: tuple[float, float]
    tokens_per_s: float
    s_per_correct: float
    tokens_per_correct: float
    effective_speedup: float
    truncated_share: float  # attempts that hit max_new_tokens
    wall_s: float
    strategy: str = "greedy"
    tokens_per_problem: float = math.nan  # every generated token the strategy spent, per problem
    s_per_problem: float = math.nan
    latency_per_problem: float = math.nan  # time until the problem's last sample finished
    samples_per_problem: float = math.nan
    engine_calls_per_problem: float = math.nan
    cancelled_share: float = 0.0  # attempts stopped early (short-m@k)
    # calibration of the returned answers' confidence (--confidence); None without confidences
    ece: float | None = None
    brier: float | None = None
    auroc: float | None = None
    confidence_missing: float | None = None
    failed: int = 0  # samples whose request finally failed (counted wrong; a rerun retries them)
    forced_tokens_per_problem: float = 0.0
    prm_tokens_per_problem: float = 0.0  # tokens a search's step scorer read (search strategies)
    # policy + PRM tokens weighted by parameter count (= tokens_per_problem without a PRM)
    flop_tokens_per_problem: float = math.nan
    pareto: bool = False  # on the accuracy-vs-tokens-per-problem frontier of all rows
    bits_per_weight: float | None = None  # = bits_per_weight_layers (the name older readers know)
    bits_per_weight_layers: float | None = None  # decoder blocks' Linear weights (README, "b/w")
    bits_per_weight_model: float | None = None  # every parameter, embeddings and head included
    file_bytes: int | None = None  # GGUF variants: size of the file the engine ran
    proxy_loss: float | None = None  # sum of tr((W-Q) H (W-Q)^T) over layers, GPTQ/Babai variants
    quantize_s: float | None = None
    # plugin metrics (metrics.plugins.METRICS) by registered name: one dict, so a new metric
    # needs no field here and old summary.json files (without it) still read
    extra: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        if not d["extra"]:  # no plugin metrics: the summary is byte for byte what it was before them
            del d["extra"]
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [_clean(x) for x in v]
            elif isinstance(v, dict):
                d[k] = {name: _clean(x) for name, x in v.items()}
            else:
                d[k] = _clean(v)
        return d


def _clean(x: Any) -> Any:
    """JSON has no NaN/inf: write null, and keep +inf readable as the string "inf"."""
    if isinstance(x, float):
        if math.isnan(x):
            return None
        if math.isinf(x):
            return "inf" if x > 0 else "-inf"
    return x


def reference_variant(variants: list[str]) -> str | None:
    """The variant CTIR and speed-ups are measured against: `base` when present, else the
    first. One rule for specs, reports and comparisons."""
    return "base" if "base" in variants else (variants[0] if variants else None)


def summarize(
    outcomes: pd.DataFrame,
    variants: list[str],
    reference: str,
    *,
    strategies: list[str] | None = None,
    variant_info: dict[str, dict[str, Any]] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[VariantSummary]:
    """Rows per (strategy, variant) from per-problem outcomes (metrics.outcomes); CTIR and
    speed-up against `reference` under the same strategy; Pareto flags across all rows.

    Within a strategy only problems that every variant present has decided are compared, so a
    half-finished variant never makes the ratios compare different problem sets."""
    names = strategies or list(dict.fromkeys(outcomes["strategy"]))
    out: list[VariantSummary] = []
    for strat in names:
        o = outcomes[(outcomes["strategy"] == strat) & outcomes["variant"].isin(variants)]
        present = [v for v in variants if v in set(o["variant"])]
        if not present:
            continue
        shared = set.intersection(*(set(o.loc[o["variant"] == v, "problem_id"]) for v in present))
        o = o[o["problem_id"].isin(shared)]
        out.extend(_strategy_rows(o, present, reference, strat, variant_info or {}, n_boot, seed))
    mark_pareto(out)
    return out


def _strategy_rows(o, variants, reference, strat, info, n_boot, seed) -> list[VariantSummary]:
    frames = {v: o[o["variant"] == v] for v in variants}
    by = {v: f.set_index("problem_id") for v, f in frames.items()}
    ref = by.get(reference)
    ref_spc = (
        per_correct(float(ref["cost_s"].sum()), float(ref["correct_answers"].sum()))
        if ref is not None
        else math.nan
    )
    rows = []
    for v in variants:
        d = by[v]
        n = len(d)
        credit = float(d["score"].sum())
        right = float(d["correct_answers"].sum())  # correct final answers returned
        attempts = float(d["attempts"].sum())
        tokens = float(d["tokens"].sum())
        if ref is None:
            joint = allp = RatioCI(math.nan, math.nan, math.nan, 0)
        elif v == reference:
            k = int(d["correct"].sum())
            joint = RatioCI(1.0, 1.0, 1.0, k) if n else RatioCI(math.nan, math.nan, math.nan, 0)
            allp = RatioCI(joint.ratio, joint.low, joint.high, n)
        else:
            rt, vt = ref["reasoning_tokens"].to_dict(), d["reasoning_tokens"].to_dict()
            rc, vc = ref["correct"].astype(bool).to_dict(), d["correct"].astype(bool).to_dict()
            joint = ctir(rt, vt, rc, vc, n_boot=n_boot, seed=seed)
            allp = ctir(rt, vt, n_boot=n_boot, seed=seed)
        cost = float(d["cost_s"].sum())
        spc = per_correct(cost, right)
        scores = d["score"].to_numpy(dtype=float)
        binary = bool(((scores == 0) | (scores == 1)).all())
        acc_ci = (
            wilson_interval(int(scores.sum()), n) if binary else mean_ci(scores, n_boot=n_boot, seed=seed)[1:]
        )
        vi = info.get(v, {})
        rows.append(
            VariantSummary(
                name=v,
                n=n,
                n_correct=int(d["correct"].sum()),
                accuracy=credit / n if n else math.nan,
                accuracy_ci=acc_ci,
                mean_reasoning_tokens=float(d["reasoning_tokens"].sum()) / attempts if attempts else math.nan,
                mean_completion_tokens=tokens / attempts if attempts else math.nan,
                ctir=joint.ratio,
                ctir_ci=(joint.low, joint.high),
                ctir_n=joint.n,
                ctir_all=allp.ratio,
                ctir_all_ci=(allp.low, allp.high),
                tokens_per_s=tokens_per_second(tokens, cost),
                s_per_correct=spc,
                tokens_per_correct=per_correct(tokens, right),
                effective_speedup=effective_speedup(ref_spc, spc) if n else math.nan,
                truncated_share=float(d["truncated"].sum()) / attempts if attempts else math.nan,
                wall_s=cost,
                strategy=strat,
                tokens_per_problem=tokens / n if n else math.nan,
                s_per_problem=cost / n if n else math.nan,
                latency_per_problem=float(d["latency_s"].mean()) if n else math.nan,
                samples_per_problem=attempts / n if n else math.nan,
                engine_calls_per_problem=float(d["engine_calls"].mean()) if n else math.nan,
                cancelled_share=float(d["cancelled"].sum()) / attempts if attempts else 0.0,
                failed=int(d["failed"].sum()) if "failed" in d else 0,
                **_calibration(d),
                forced_tokens_per_problem=float(d["forced_tokens"].sum()) / n if n else 0.0,
                prm_tokens_per_problem=float(d["prm_tokens"].sum()) / n if n and "prm_tokens" in d else 0.0,
                flop_tokens_per_problem=(
                    float(d["flop_tokens"].sum()) / n
                    if n and "flop_tokens" in d
                    else tokens / n
                    if n
                    else math.nan
                ),
                **_bits_per_weight(vi),
                file_bytes=vi.get("file_bytes"),
                proxy_loss=vi.get("proxy_loss"),
                quantize_s=vi.get("quantize_s"),
                extra=metric_values(frames[v], f"{v} / {strat}"),
            )
        )
    return rows


def _bits_per_weight(vi: dict[str, Any]) -> dict[str, float | None]:
    """Both b/w figures of a variant's info. A store written before there were two has only
    `bits_per_weight`: the layers figure on the hf engine, but every tensor of the file on the
    llamacpp engine (what gguf_stats counted then), so it is read back as that figure."""
    layers, model = vi.get("bits_per_weight_layers"), vi.get("bits_per_weight_model")
    if layers is None and model is None and vi.get("bits_per_weight") is not None:
        if vi.get("engine") == "llamacpp" or "gguf_type" in vi:
            model = vi["bits_per_weight"]
        else:
            layers = vi["bits_per_weight"]
    return {"bits_per_weight": layers, "bits_per_weight_layers": layers, "bits_per_weight_model": model}


def _calibration(d: pd.DataFrame) -> dict[str, float | None]:
    """ECE (10 equal-width bins), Brier, AUROC and missing share of the returned answers'
    confidences; all None when the run recorded none."""
    if "confidence" not in d or d["confidence"].isna().all():
        return {}
    from .calibration import calibration_summary

    conf = [None if pd.isna(x) else float(x) for x in d["confidence"]]
    cs = calibration_summary(conf, list(d["correct"].astype(bool)), n_bins=10)
    return {
        "ece": cs["ece_width"],
        "brier": cs["brier"],
        "auroc": cs["auroc"],
        "confidence_missing": cs["missing_share"],
    }


def mark_pareto(rows: list[VariantSummary]) -> None:
    """Flag rows no other row beats on both axes (accuracy up, tokens per problem down)."""
    # FLOP-equivalent tokens: a search's PRM reads count (equal to tokens per problem elsewhere)
    pts = [(r.accuracy, _cost_axis(r)) for r in rows]
    for r, (a, t) in zip(rows, pts, strict=True):
        if math.isnan(a) or math.isnan(t):
            r.pareto = False
            continue
        r.pareto = not any(
            (a2 >= a and t2 <= t) and (a2 > a or t2 < t)
            for a2, t2 in pts
            if not (math.isnan(a2) or math.isnan(t2))
        )


def _cost_axis(r: VariantSummary) -> float:
    """The Pareto cost of a row: FLOP-equivalent tokens per problem when known, else tokens."""
    f = r.flop_tokens_per_problem
    return r.tokens_per_problem if f is None or math.isnan(f) else f
