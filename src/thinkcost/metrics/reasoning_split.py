"""Which reasoning format split each variant's rows, from the store alone, so a report can say
whether "reasoning tokens" were marked by the model (think tags, harmony channels, a server
field) or guessed from answer markers (the `none` heuristic)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from ..reasoning import format_of


def reasoning_formats(
    gens: pd.DataFrame, variant_info: dict[str, dict[str, Any]], variants: list[str] | None = None
) -> dict[str, dict]:
    """{variant: {"formats": {kind: rows}, "heuristic_rows": n, "why": ...}} in `variants` order
    (default: as the rows come). Rows stored before formats existed (NULL) were split by the
    `none` rules and count as such."""
    if gens.empty:
        return {}
    kinds = (
        gens["reasoning_format"] if "reasoning_format" in gens.columns else pd.Series(None, index=gens.index)
    )
    kinds = kinds.where(kinds.notna(), "none")
    by_variant = dict(tuple(kinds.groupby(gens["variant"], sort=False)))
    out: dict[str, dict] = {}
    for variant in variants or list(by_variant):
        if variant not in by_variant:
            continue
        counts = {str(k): int(v) for k, v in by_variant[variant].value_counts().items()}
        info = variant_info.get(variant, {})
        out[str(variant)] = {
            "formats": counts,
            "heuristic_rows": counts.get("none", 0),
            "why": info.get("reasoning_format_why") or format_of(info.get("reasoning_format")).why,
        }
    return out


def reasoning_note(formats: dict[str, dict]) -> str:
    """One clause per distinct split, naming the variants: what the report's reasoning figures
    rest on, e.g. "Reasoning split: base, rtn-w4g32: none (heuristic) — no think tags ..."."""
    groups: dict[str, list[str]] = {}
    for variant, f in formats.items():
        many = len(f["formats"]) > 1
        kinds = ", ".join(
            f"{k}{' (heuristic)' if k == 'none' else ''}" + (f" {n} rows" if many else "")
            for k, n in f["formats"].items()
        )
        groups.setdefault(f"{kinds} — {f['why']}", []).append(variant)
    return "Reasoning split: " + "; ".join(f"{', '.join(vs)}: {desc}" for desc, vs in groups.items()) + "."
