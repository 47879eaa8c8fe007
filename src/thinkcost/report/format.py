"""How numbers become text, in every renderer (terminal, Markdown, HTML, compare, figures).

Why one module: a row reaches the renderers in two shapes (a VariantSummary, or a
summary.json object where NaN is null and infinity the string "inf"), and each renderer used
to carry its own copy of "NaN prints as –, infinity as ∞". Two copies drift; one cannot. Every
function here accepts both shapes of a value: float, int, None, or "inf" / "-inf".
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Any

MISSING = "–"  # NaN or no value: an en dash, never "nan" or "None"


def row_dicts(rows: Iterable[Any]) -> list[dict[str, Any]]:
    """VariantSummary rows or ``summary_json()["variants"]`` dicts -> dicts, so every column and
    every panel reads one shape whichever the caller holds."""
    return [r.to_json() if hasattr(r, "to_json") else dict(r) for r in rows]


def number(x: Any) -> float | None:
    """A float to print (infinity kept), or None for NaN / missing / text that is no number."""
    if x is None:
        return None
    if isinstance(x, str):
        return {"inf": math.inf, "-inf": -math.inf}.get(x)
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def finite(x: Any) -> float | None:
    """A plottable float, or None for NaN / infinity / missing ("inf" as summary_json writes it)."""
    f = number(x)
    return f if f is not None and math.isfinite(f) else None


def num(x: Any, fmt: str = "{:.2f}", scale: float = 1) -> str:
    """`fmt` of `scale * x`; "–" for a missing value, "∞" / "-∞" for an infinite one (a format
    spec would print "inf", which reads like a typo in a table)."""
    f = number(x)
    if f is None:
        return MISSING
    if math.isinf(f):
        return "∞" if f > 0 else "-∞"
    return fmt.format(scale * f if scale != 1 else f)


def pct(x: Any, fmt: str = "{:.0f}") -> str:
    """A share (0..1) as a percentage: "12%"; a missing share prints "–%" (the table's habit)."""
    return num(x, fmt, 100) + "%"


def ci(bounds: Sequence[Any] | None, fmt: str = "{:.2f}", scale: float = 1) -> str:
    """ " (low–high)" of a 95% interval, or "" when either bound is unknown (no interval drawn)."""
    lo, hi = (number(bounds[0]), number(bounds[1])) if bounds else (None, None)
    if lo is None or hi is None:
        return ""
    return f" ({num(lo, fmt, scale)}–{num(hi, fmt, scale)})"


def sort_key(x: Any) -> str:
    """A cell's data-sort attribute: the exact value (repr, so sorting never ties on a rounded
    figure), "Infinity" / "-Infinity" as JavaScript's parseFloat reads them, "" (sorts last) for
    a missing value."""
    f = number(x)
    if f is None:
        return ""
    if math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    return repr(f)
