"""Reasoning-token figures: the CoT Token Inflation Ratio (CTIR) and bootstrap means.

CTIR of variant q against base b = mean reasoning tokens of q / that of b, over the problems
both answer correctly (design.md, "Key definitions"), with a paired bootstrap interval.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_NAN = math.nan


@dataclass(frozen=True)
class RatioCI:
    """A ratio of means with its bootstrap interval; n = problems it is computed over."""

    ratio: float
    low: float
    high: float
    n: int


def check_bootstrap(n_boot: int, level: float) -> None:
    """Reject a bootstrap that cannot give an interval (shared by every bootstrap in thinkcost, so
    `ctir`, `mean_ci` and `thinkcost compare` fail with the same message)."""
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level}")


def percentile_interval(samples: np.ndarray, level: float) -> tuple[float, float]:
    """(low, high) percentile interval of bootstrap resample statistics at confidence `level`:
    one definition of the interval for every bootstrap CI thinkcost prints."""
    alpha = 1.0 - level
    lo, hi = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    return float(lo), float(hi)


def _shared_ids(
    base_tokens: Mapping[str, float],
    var_tokens: Mapping[str, float],
    base_correct: Mapping[str, bool] | None,
    var_correct: Mapping[str, bool] | None,
) -> list[str]:
    """Problem ids present in both token maps (and jointly correct if verdicts are given), sorted."""
    if (base_correct is None) != (var_correct is None):
        raise ValueError("ctir: pass both base_correct and var_correct, or neither")
    ids = set(base_tokens) & set(var_tokens)
    if base_correct is not None and var_correct is not None:
        # A problem with no verdict cannot count as correct.
        ids = {i for i in ids if base_correct.get(i, False) and var_correct.get(i, False)}
    return sorted(ids)  # sorted so the bootstrap does not depend on dict order


def ctir(
    base_tokens: Mapping[str, float],
    var_tokens: Mapping[str, float],
    base_correct: Mapping[str, bool] | None = None,
    var_correct: Mapping[str, bool] | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> RatioCI:
    """CoT Token Inflation Ratio mean(var)/mean(base), jointly-correct if verdicts are given, paired bootstrap CI.

    The bootstrap resamples problems (one index matrix [n_boot, n] from
    numpy.random.default_rng(seed).integers(0, n, size=(n_boot, n))), applies the same indices
    to base and variant, and drops resamples whose base mean is 0.
    """
    check_bootstrap(n_boot, level)
    ids = _shared_ids(base_tokens, var_tokens, base_correct, var_correct)
    n = len(ids)
    if n == 0:
        return RatioCI(_NAN, _NAN, _NAN, 0)
    b = np.array([base_tokens[i] for i in ids], dtype=np.float64)  # [n]
    v = np.array([var_tokens[i] for i in ids], dtype=np.float64)  # [n]
    b_sum = b.sum()
    if b_sum == 0:
        return RatioCI(_NAN, _NAN, _NAN, n)
    # Ratio of sums == ratio of means (same n); avoids one rounding step, so v = c*b gives exactly c.
    ratio = float(v.sum() / b_sum)

    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # [n_boot, n]
    b_boot = b[idx].sum(axis=1)  # [n_boot]
    v_boot = v[idx].sum(axis=1)  # [n_boot]
    keep = b_boot != 0
    if not keep.any():
        return RatioCI(ratio, _NAN, _NAN, n)
    low, high = percentile_interval(v_boot[keep] / b_boot[keep], level)
    return RatioCI(ratio, low, high, n)


def per_problem_ratio(base_tokens: Mapping[str, float], var_tokens: Mapping[str, float]) -> dict[str, float]:
    """var/base reasoning tokens for each shared problem (base == 0 skipped): where inflation happens."""
    return {
        pid: float(var_tokens[pid]) / float(b)
        for pid, b in base_tokens.items()
        if pid in var_tokens and b != 0
    }


def mean_ci(
    values: Sequence[float], *, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high) with a bootstrap percentile CI, e.g. for mean reasoning tokens; nan if empty."""
    check_bootstrap(n_boot, level)
    x = np.asarray(values, dtype=np.float64)  # [n]
    n = x.size
    if n == 0:
        return (_NAN, _NAN, _NAN)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))  # [n_boot, n]
    low, high = percentile_interval(x[idx].mean(axis=1), level)
    return (float(x.mean()), low, high)
