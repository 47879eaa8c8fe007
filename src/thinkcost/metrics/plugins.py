"""Plugin metrics: one function of a (variant, strategy)'s per-problem outcomes, one registration.

    @METRICS.register("median-tok", header="median tok", fmt="{:.0f}")
    def median_tokens(rows: pd.DataFrame) -> float:
        return float(rows["tokens"].median())

`rows` holds the outcome rows (metrics.outcomes, columns OUTCOME_COLUMNS) of one summary row:
one per problem, over the problems every variant of that strategy decided, so a metric
compares the same problems the built-in columns do. `summarize` puts every registered metric's
value in `VariantSummary.extra[name]`, summary.json carries it, and the report's column spec
(report/columns.py) gives it a column in the terminal table, Markdown and HTML, headed
`header` (default: the name) and printed with `fmt` (a str.format spec, default "{:.2f}";
"{:.0%}" prints a share as a percentage). `tip` is the HTML header's tooltip.

Why per-problem outcomes and not raw generations: they already carry what the strategy decided
and paid for (discarded samples included), so a plugin cannot silently disagree with the table
about which samples count. Heavy metrics register with `METRICS.lazy(...)` in this module.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from ..registry import Registry

METRICS = Registry("metric")


def metric_values(rows: pd.DataFrame, label: str = "") -> dict[str, float]:
    """Every registered metric of one summary row's outcome rows (each gets its own copy, indexed
    0..n-1: a plugin cannot change what the next one reads). NaN when a metric returns None;
    `label` names the row in the error when a metric fails."""
    out: dict[str, float] = {}
    for name in METRICS.names():
        try:
            value: Any = METRICS.get(name)(rows.reset_index(drop=True))
            out[name] = math.nan if value is None else float(value)
        except Exception as e:
            raise RuntimeError(f"metric {name!r} failed on {label or 'a summary row'}: {e!r}") from e
    return out
