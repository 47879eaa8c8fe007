"""Inference-time strategies by name. Each module of this package registers itself; `parse_strategy` turns a
spec string such as `maj@8+wait-penalty:2` into a Strategy (recipe + decision rule)."""

from __future__ import annotations

from ..registry import import_submodules
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

# every module of the package registers its selector or modifier: a new strategy is one module
import_submodules(__name__, __path__)

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
