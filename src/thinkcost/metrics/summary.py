"""One row of figures per variant, computed from store rows only (a DataFrame of
generations), so `thinkcost report` rebuilds exactly what `thinkcost run` printed."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import pandas as pd

from .accuracy import wilson_interval
from .efficiency import effective_speedup, per_correct, tokens_per_second
from .tokens import RatioCI, ctir


@dataclass
class VariantSummary:
    name: str
    n: int
    n_correct: int
    accuracy: float
    accuracy_ci: tuple[float, float]
    mean_reasoning_tokens: float
    mean_completion_tokens: float
    ctir: float
    ctir_ci: tuple[float, float]
    ctir_n: int
    ctir_all: float
    ctir_all_ci: tuple[float, float]
    tokens_per_s: float
    s_per_correct: float
    tokens_per_correct: float
    effective_speedup: float
    truncated_share: float
    wall_s: float
    bits_per_weight: float | None = None
    proxy_loss: float | None = None  # sum of tr((W-Q) H (W-Q)^T) over layers, GPTQ/Babai variants
    quantize_s: float | None = None

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        for k, v in d.items():
            if isinstance(v, tuple):
                d[k] = [_clean(x) for x in v]
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


def summarize(
    gens: pd.DataFrame,
    variants: list[str],
    reference: str,
    *,
    strategy: str = "greedy",
    variant_info: dict[str, dict[str, Any]] | None = None,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[VariantSummary]:
    """Per-variant figures over sample 0 of `strategy`; CTIR and speed-up against `reference`.

    Only problems that every listed variant has answered are compared, so a half-finished
    variant never makes the ratios compare different problem sets."""
    g = gens[(gens["strategy"] == strategy) & (gens["sample"] == 0)]
    g = g[g["variant"].isin(variants)]
    shared = None
    for v in variants:
        ids = set(g.loc[g["variant"] == v, "problem_id"])
        shared = ids if shared is None else shared & ids
    g = g[g["problem_id"].isin(shared or set())]
    by = {v: g[g["variant"] == v].set_index("problem_id") for v in variants}
    ref = by[reference]
    ref_spc = per_correct(float(ref["cost_s"].sum()), int(ref["correct"].sum())) if len(ref) else math.nan
    info = variant_info or {}
    out = []
    for v in variants:
        d = by[v]
        n, k = len(d), int(d["correct"].sum())
        if v == reference:
            same = RatioCI(1.0, 1.0, 1.0, k) if n else RatioCI(math.nan, math.nan, math.nan, 0)
            joint, allp = same, RatioCI(same.ratio, same.low, same.high, n)
        else:
            rt, vt = ref["reasoning_tokens"].to_dict(), d["reasoning_tokens"].to_dict()
            rc, vc = ref["correct"].astype(bool).to_dict(), d["correct"].astype(bool).to_dict()
            joint = ctir(rt, vt, rc, vc, n_boot=n_boot, seed=seed)
            allp = ctir(rt, vt, n_boot=n_boot, seed=seed)
        cost = float(d["cost_s"].sum())
        spc = per_correct(cost, k)
        out.append(
            VariantSummary(
                name=v,
                n=n,
                n_correct=k,
                accuracy=k / n if n else math.nan,
                accuracy_ci=wilson_interval(k, n),
                mean_reasoning_tokens=float(d["reasoning_tokens"].mean()) if n else math.nan,
                mean_completion_tokens=float(d["completion_tokens"].mean()) if n else math.nan,
                ctir=joint.ratio,
                ctir_ci=(joint.low, joint.high),
                ctir_n=joint.n,
                ctir_all=allp.ratio,
                ctir_all_ci=(allp.low, allp.high),
                tokens_per_s=tokens_per_second(float(d["completion_tokens"].sum()), cost),
                s_per_correct=spc,
                tokens_per_correct=per_correct(float(d["completion_tokens"].sum()), k),
                effective_speedup=effective_speedup(ref_spc, spc) if n else math.nan,
                truncated_share=float((d["finish_reason"] == "length").mean()) if n else math.nan,
                wall_s=cost,
                bits_per_weight=info.get(v, {}).get("bits_per_weight"),
                proxy_loss=info.get(v, {}).get("proxy_loss"),
                quantize_s=info.get(v, {}).get("quantize_s"),
            )
        )
    return out
