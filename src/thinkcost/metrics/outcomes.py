"""Per-problem outcomes of each strategy, decided from stored samples only.

Every strategy's decision and its cost are recomputed here from the store, so a report can be
rebuilt from the file alone and maj@4 is read off the same samples as maj@8. The cost of a
problem is every sample the strategy paid for: voted-down, cancelled (short-m@k) and
budget-forced ones included."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..strategies.base import Strategy
from ..strategies.vote import Attempt

OUTCOME_COLUMNS = (
    "variant",
    "strategy",
    "problem_id",
    "answer",
    "correct",
    "score",
    "correct_answers",
    "chosen",
    "attempts",
    "tokens",
    "reasoning_tokens",
    "answer_tokens",
    "chosen_reasoning_tokens",
    "cost_s",
    "latency_s",
    "engine_calls",
    "truncated",
    "cancelled",
    "failed",
    "forced_tokens",
    "interventions",
    "confidence",
    "prm_tokens",  # tokens a step-level search's scorer read (search strategies; 0 elsewhere)
    "flop_tokens",  # policy tokens + PRM tokens weighted by PRM/policy parameter count
)

_DEFAULTS: dict[str, Any] = {
    "latency_s": 0.0,
    "call_id": "",
    "forced_tokens": 0,
    "interventions": 0,
    "self_certainty": None,
    "mean_logprob": None,
    "answer_text": "",
    "extracted": None,
    "answer_tokens": 0,
    "confidence": None,
}


def attempts_of(group: pd.DataFrame) -> list[Attempt]:
    """Store rows -> vote attempts; finish order = (completion tokens, sample id)."""
    return [
        Attempt(
            sample=int(s),
            answer=None if pd.isna(x) else str(x),
            correct=bool(c),
            finish_key=(int(t), int(s)),
        )
        for s, x, c, t in zip(
            group["sample"], group["extracted"], group["correct"], group["completion_tokens"], strict=True
        )
    ]


def _with_defaults(gens: pd.DataFrame) -> pd.DataFrame:
    missing = {c: v for c, v in _DEFAULTS.items() if c not in gens.columns}
    return gens.assign(**missing) if missing else gens


def outcomes(
    gens: pd.DataFrame, strategies: Sequence[Strategy], scores: pd.DataFrame | None = None
) -> pd.DataFrame:
    """One row per (variant, strategy, problem) whose samples are all stored; see OUTCOME_COLUMNS."""
    gens = _with_defaults(gens)
    rm = _rm_scores(scores)
    rows: list[dict[str, Any]] = []
    for strat in strategies:
        key, k = strat.recipe.key, strat.recipe.n
        g = gens[(gens["recipe"] == key) & (gens["sample"] < k)]
        if g.empty:
            continue
        for (variant, pid), grp in g.groupby(["variant", "problem_id"], sort=False):
            grp = grp.sort_values("sample")
            if len(grp) < k:  # a half-drawn problem (interrupted run) is not decided yet
                continue
            attempts = attempts_of(grp)
            columns: dict[str, list[Any]] = {
                "finish_reason": list(grp["finish_reason"]),
                "mean_logprob": [_opt(x) for x in grp["mean_logprob"]],
                "self_certainty": [_opt(x) for x in grp["self_certainty"]],
                "answer_text": list(grp["answer_text"]),
            }
            rm_s = 0.0
            if strat.scorer and strat.scorer.startswith("rm:"):
                vals = [rm.get((variant, pid, key, int(s), strat.scorer)) for s in grp["sample"]]
                columns["rm"] = [v[0] if v else None for v in vals]
                rm_s = sum(v[1] for v in vals if v)
            d = strat.decide(attempts, columns)
            used = grp[grp["sample"].isin(d.used)]
            prm = rm.get((variant, pid, key, 0, "prm-tokens")) if strat.recipe.search else None
            flop = rm.get((variant, pid, key, 0, "flop-tokens")) if strat.recipe.search else None
            chosen = grp[grp["sample"] == d.chosen]
            rows.append(
                {
                    "variant": variant,
                    "strategy": strat.name,
                    "problem_id": pid,
                    "answer": d.answer,
                    "correct": bool(d.correct),
                    "score": float(d.score),
                    "correct_answers": float(d.score) * d.answers,
                    "chosen": d.chosen,
                    "attempts": len(used),
                    "tokens": int(used["completion_tokens"].sum()),
                    "reasoning_tokens": int(used["reasoning_tokens"].sum()),
                    "answer_tokens": int(used["answer_tokens"].sum()),
                    "chosen_reasoning_tokens": int(chosen["reasoning_tokens"].iloc[0]) if len(chosen) else 0,
                    "cost_s": float(used["cost_s"].sum()) + rm_s,
                    "latency_s": float(used["latency_s"].max()) if len(used) else 0.0,
                    "engine_calls": max(1, int(used["call_id"].nunique())) if len(used) else 0,
                    "truncated": int((used["finish_reason"] == "length").sum()),
                    "cancelled": int((used["finish_reason"] == "cancelled").sum()),
                    # requests that finally failed (server engines): wrong, and retried by a rerun
                    "failed": int((used["finish_reason"] == "error").sum()),
                    "forced_tokens": int(used["forced_tokens"].sum()),
                    "interventions": int(used["interventions"].sum()),
                    # the stated/logprob confidence of the answer the strategy returns
                    "confidence": _opt(chosen["confidence"].iloc[0]) if len(chosen) else None,
                    "prm_tokens": int(prm[0] or 0) if prm else 0,
                    "flop_tokens": float(flop[0])
                    if flop and flop[0] is not None
                    else float(used["completion_tokens"].sum()),
                }
            )
    return pd.DataFrame(rows, columns=list(OUTCOME_COLUMNS))


def _opt(x: Any) -> float | None:
    return None if x is None or pd.isna(x) else float(x)


def _rm_scores(scores: pd.DataFrame | None) -> dict[tuple, tuple[float | None, float]]:
    if scores is None or scores.empty:
        return {}
    return {
        (r.variant, r.problem_id, r.recipe, int(r.sample), r.scorer): (_opt(r.value), float(r.seconds))
        for r in scores.itertuples(index=False)
    }
