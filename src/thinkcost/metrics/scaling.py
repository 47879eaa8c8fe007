"""Accuracy-vs-k and accuracy-vs-tokens curves (pass@k, maj@k) for every k <= n, read off
one stored set of n samples per problem by subset averaging, never by generating again."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from ..strategies.base import Strategy
from .curves import expected_tokens_curve, maj_at_k_curve, pass_at_k_curve
from .outcomes import attempts_of


def scaling_curves(gens: pd.DataFrame, strategies: Sequence[Strategy], seed: int = 0) -> list[dict[str, Any]]:
    """One point per (variant, sample recipe, k): pass@k, maj@k and expected tokens per problem.

    Only independent-sample recipes qualify (temperature > 0, no short-m@k stopping). Each
    problem contributes its first n samples, n = the fewest any problem of that variant has."""
    recipes = {
        s.recipe.key: s.recipe for s in strategies if s.recipe.temperature > 0 and s.recipe.stop_after is None
    }
    points: list[dict[str, Any]] = []
    for key in recipes:
        g = gens[gens["recipe"] == key]
        for variant, gv in g.groupby("variant", sort=False):
            groups = [grp.sort_values("sample") for _, grp in gv.groupby("problem_id", sort=False)]
            n = min((len(x) for x in groups), default=0)
            if n < 2:
                continue
            groups = [x.iloc[:n] for x in groups]
            ks = list(range(1, n + 1))
            passk = pass_at_k_curve([list(x["correct"].astype(bool)) for x in groups], ks)
            majk = maj_at_k_curve([attempts_of(x) for x in groups], ks, seed=seed)
            toks = expected_tokens_curve([list(x["completion_tokens"].astype(float)) for x in groups], ks)
            for k in ks:
                points.append(
                    {
                        "variant": variant,
                        "recipe": key,
                        "n": n,
                        "problems": len(groups),
                        "k": k,
                        "pass_at_k": passk[k],
                        "maj_at_k": majk[k].accuracy,
                        "maj_exact": majk[k].exact,
                        "tokens_per_problem": toks[k],
                    }
                )
    return points
