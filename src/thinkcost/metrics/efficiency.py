"""Cost figures: throughput, cost per correct answer and effective speed-up (design.md)."""

from __future__ import annotations

import math


def tokens_per_second(total_tokens: float, total_seconds: float) -> float:
    """Generation throughput; nan when no time was measured (seconds <= 0)."""
    if total_seconds <= 0:
        return math.nan
    return total_tokens / total_seconds


def per_correct(total: float, n_correct: int) -> float:
    """Total cost (tokens or seconds, discarded samples included) per correct final answer.

    With no correct answer the cost of one is inf, not nan: the spend bought nothing, so a
    correct answer is infinitely expensive, and inf still sorts and compares as "worst".
    """
    if n_correct < 0:
        raise ValueError(f"per_correct: n_correct must be >= 0, got {n_correct}")
    if total < 0:
        raise ValueError(f"per_correct: total must be >= 0, got {total}")
    if n_correct == 0:
        return math.inf
    return total / n_correct


def effective_speedup(base_s_per_correct: float, var_s_per_correct: float) -> float:
    """Speed-up of the variant after token inflation and accuracy loss: base s/correct / variant's.

    Conventions: variant inf (never correct) and base finite -> 0.0; base inf and variant
    finite -> inf; both inf -> nan (nothing to compare); variant 0 -> inf if base > 0, nan if
    base is also 0; nan in -> nan out.
    """
    b, v = float(base_s_per_correct), float(var_s_per_correct)
    if math.isnan(b) or math.isnan(v):
        return math.nan
    if b < 0 or v < 0:
        raise ValueError(f"effective_speedup: seconds per correct must be >= 0, got base={b}, variant={v}")
    if math.isinf(b) and math.isinf(v):
        return math.nan
    if math.isinf(v):
        return 0.0
    if math.isinf(b):
        return math.inf
    if v == 0:
        return math.inf if b > 0 else math.nan
    return b / v
