"""Accuracy-vs-k and accuracy-vs-tokens curves (pass@k, maj@k) for every k <= n, read off
one stored set of n samples per problem by subset averaging, never by generating again."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..strategies.base import Strategy
from .accuracy import pass_at_k
from .curves import (
    accept_until_verified,
    expected_tokens_curve,
    fit_coverage_power_law,
    maj_at_k_curve,
    pass_at_k_curve,
)
from .outcomes import attempts_of
from .tokens import check_bootstrap, percentile_interval

DEFAULT_EXTRAPOLATE = (100, 1000)


def sample_sets(gens: pd.DataFrame, strategies: Sequence[Strategy]):
    """(variant, recipe key, [per-problem sample frames, each its first n]) for each independent-
    sample recipe: temperature > 0, no short-m@k stopping, n = fewest samples any problem has."""
    recipes = {
        s.recipe.key: s.recipe for s in strategies if s.recipe.temperature > 0 and s.recipe.stop_after is None
    }
    for key in recipes:
        g = gens[gens["recipe"] == key]
        for variant, gv in g.groupby("variant", sort=False):
            groups = [grp.sort_values("sample") for _, grp in gv.groupby("problem_id", sort=False)]
            n = min((len(x) for x in groups), default=0)
            if n >= 2:
                yield variant, key, [x.iloc[:n] for x in groups]


def coverage_fit(
    correct_by_problem: Sequence[Sequence[bool]],
    extrapolate: Sequence[int] = DEFAULT_EXTRAPOLATE,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any] | None:
    """coverage(k) = exp(a k^b) fitted to the unbiased pass@k curve (k = 1..n) of one sample set,
    with percentile bootstrap CIs over problems for a, b and the extrapolated coverage at each k
    of `extrapolate`. None when the curve cannot be fitted (see fit_coverage_power_law).

    The bootstrap resamples problems (numpy default_rng(seed).integers(0, P, (n_boot, P))); a
    resample whose curve cannot be fitted is dropped, and `boot_fitted` says how many were kept."""
    check_bootstrap(n_boot, level)
    sizes = {len(c) for c in correct_by_problem}
    if not correct_by_problem or len(sizes) != 1:
        raise ValueError(
            "coverage_fit: every problem needs the same number of samples (at least one problem)"
        )
    n = sizes.pop()
    ks = list(range(1, n + 1))
    per = np.array(
        [[pass_at_k(n, sum(map(bool, c)), k) for k in ks] for c in correct_by_problem], dtype=np.float64
    )  # [P, n]
    curve = per.mean(axis=0)  # [n]
    fit = fit_coverage_power_law(ks, curve.tolist())
    if fit is None:
        return None
    idx = np.random.default_rng(seed).integers(0, len(per), size=(n_boot, len(per)))  # [n_boot, P]
    boot = [fit_coverage_power_law(ks, per[row].mean(axis=0).tolist()) for row in idx]
    kept = [f for f in boot if f is not None]

    def ci(values: list[float]) -> list[float]:
        return list(percentile_interval(np.array(values), level)) if values else [math.nan, math.nan]

    return {
        "a": fit.a,
        "b": fit.b,
        "a_ci": ci([f.a for f in kept]),
        "b_ci": ci([f.b for f in kept]),
        "n": n,
        "problems": len(per),
        "points": fit.points,
        "boot_fitted": len(kept),
        "observed": [
            {"k": k, "coverage": float(c), "fitted": fit.coverage(k)} for k, c in zip(ks, curve, strict=True)
        ],
        "extrapolated": [
            {"k": int(k), "coverage": fit.coverage(k), "ci": ci([f.coverage(k) for f in kept])}
            for k in extrapolate
        ],
    }


def coverage_fits(
    gens: pd.DataFrame,
    strategies: Sequence[Strategy],
    extrapolate: Sequence[int] = DEFAULT_EXTRAPOLATE,
    *,
    n_boot: int = 1000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One coverage_fit per (variant, independent-sample recipe) of a run (summary.json "coverage_fits")."""
    out = []
    for variant, key, groups in sample_sets(gens, strategies):
        fit = coverage_fit(
            [list(x["correct"].astype(bool)) for x in groups], extrapolate, n_boot=n_boot, seed=seed
        )
        if fit is not None:
            out.append({"variant": variant, "recipe": key, **fit})
    return out


def weak_verifier_curves(
    gens: pd.DataFrame, strategies: Sequence[Strategy], weak: dict[tuple[str, str, str, int], bool]
) -> list[dict[str, Any]]:
    """accept_until_verified points per (variant, recipe, k): `weak` maps (variant, problem_id,
    recipe, sample) -> the weak verifier's verdict; the stored verdict is the strong one.
    Sample sets with a sample the weak verifier did not judge are skipped, not guessed."""
    points = []
    for variant, key, groups in sample_sets(gens, strategies):
        w_all, s_all = [], []
        for x in groups:
            w = [
                weak.get((variant, pid, key, int(sm)))
                for pid, sm in zip(x["problem_id"], x["sample"], strict=True)
            ]
            if any(v is None for v in w):
                break
            w_all.append([bool(v) for v in w])
            s_all.append(list(x["correct"].astype(bool)))
        else:
            for k, p in accept_until_verified(w_all, s_all).items():
                points.append({"variant": variant, "recipe": key, "k": k, "problems": len(groups), **p})
    return points


def scaling_curves(gens: pd.DataFrame, strategies: Sequence[Strategy], seed: int = 0) -> list[dict[str, Any]]:
    """One point per (variant, sample recipe, k): pass@k, maj@k and expected tokens per problem.

    Only independent-sample recipes qualify (temperature > 0, no short-m@k stopping). Each
    problem contributes its first n samples, n = the fewest any problem of that variant has."""
    points: list[dict[str, Any]] = []
    for variant, key, groups in sample_sets(gens, strategies):
        n = len(groups[0])
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
