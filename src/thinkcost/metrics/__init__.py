"""Pure metric functions over per-problem values; they never touch the store or a model."""

from thinkcost.metrics.accuracy import pass_at_k, wilson_interval
from thinkcost.metrics.efficiency import effective_speedup, per_correct, tokens_per_second
from thinkcost.metrics.tokens import RatioCI, ctir, mean_ci, per_problem_ratio

__all__ = [
    "RatioCI",
    "ctir",
    "effective_speedup",
    "mean_ci",
    "pass_at_k",
    "per_correct",
    "per_problem_ratio",
    "tokens_per_second",
    "wilson_interval",
]
