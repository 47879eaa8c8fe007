"""Inference-time strategies by name. Each module registers itself; `parse_strategy` turns a
spec string such as `maj@8+wait-penalty:2` into a Strategy (recipe + decision rule)."""

from __future__ import annotations

from . import best_of_n, budget_forcing, self_consistency, short_m_at_k, single, wait_penalty  # noqa: F401
from .base import (
    DEFAULT_WAIT_WORDS,
    MODIFIERS,
    SELECTORS,
    Decision,
    Recipe,
    SamplingOptions,
    Strategy,
    describe,
    parse_strategy,
    strategies_from_records,
)

__all__ = [
    "DEFAULT_WAIT_WORDS",
    "MODIFIERS",
    "SELECTORS",
    "Decision",
    "Recipe",
    "SamplingOptions",
    "Strategy",
    "describe",
    "parse_strategy",
    "strategies_from_records",
]
