"""Figures per difficulty level: accuracy, reasoning tokens and CTIR vs level, and the collapse point.

Why per level: token inflation depends on difficulty. A quantized model may think as long as the
base on easy problems and loop (or give up early) on hard ones, and reasoning models collapse past
a complexity threshold while spending fewer tokens (Shojaee et al. 2025). A run-wide mean hides both.

A problem's level comes from its stored meta, first key present of LEVEL_KEYS: `level` (puzzles),
`difficulty` (arithmetic: number of operations; MATH-500: its 1..5 level), `n_steps` (procbench).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

from .tokens import ctir

LEVEL_KEYS = ("level", "difficulty", "n_steps")
# Collapse = the first level where accuracy falls below one half: from there on the model fails
# more often than it succeeds. (Shojaee et al. read collapse where accuracy reaches ~0; one half is
# reached earlier and is less sensitive to one lucky answer when a level has few problems.)
COLLAPSE_THRESHOLD = 0.5


def level_of(meta: Mapping[str, Any] | None) -> float | None:
    """The problem's level from its meta (see LEVEL_KEYS), None when it has none."""
    if not meta:
        return None
    for key in LEVEL_KEYS:
        v = meta.get(key)
        if isinstance(v, bool) or v is None:
            continue
        if isinstance(v, (int, float)) and math.isfinite(v):
            return int(v) if float(v).is_integer() else float(v)
    return None


def problem_levels(problems: pd.DataFrame) -> dict[str, int | float]:
    """problem_id -> level for the problems that have one (Store.problems frame)."""
    out = {}
    for pid, meta in zip(problems["problem_id"], problems["meta"], strict=True):
        lv = level_of(meta)
        if lv is not None:
            out[str(pid)] = lv
    return out


def level_table(
    outcomes: pd.DataFrame,
    levels: Mapping[str, int | float],
    reference: str | None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per (strategy, variant, level): problems, accuracy, mean reasoning tokens per attempt,
    and CTIR against `reference` (same strategy, same level, jointly-correct problems) with its CI.

    `outcomes` is metrics.outcomes(); problems without a level are left out. Within a strategy only
    problems every variant decided are compared, as in metrics.summary."""
    if not levels or outcomes.empty:
        return []
    o = outcomes[outcomes["problem_id"].isin(levels.keys())]
    o = o.assign(level=o["problem_id"].map(levels))
    rows: list[dict[str, Any]] = []
    for strat in dict.fromkeys(o["strategy"]):
        s = o[o["strategy"] == strat]
        variants = list(dict.fromkeys(s["variant"]))
        shared = set.intersection(*(set(s.loc[s["variant"] == v, "problem_id"]) for v in variants))
        s = s[s["problem_id"].isin(shared)]
        for level in sorted(set(s["level"])):
            at = s[s["level"] == level]
            ref = at[at["variant"] == reference].set_index("problem_id") if reference in variants else None
            for v in variants:
                d = at[at["variant"] == v].set_index("problem_id")
                attempts = float(d["attempts"].sum())
                if ref is None:
                    ratio = None
                else:
                    ratio = ctir(
                        ref["reasoning_tokens"].to_dict(),
                        d["reasoning_tokens"].to_dict(),
                        ref["correct"].astype(bool).to_dict(),
                        d["correct"].astype(bool).to_dict(),
                        n_boot=n_boot,
                        seed=seed,
                    )
                rows.append(
                    {
                        "strategy": strat,
                        "variant": v,
                        "level": level,
                        "n": len(d),
                        "accuracy": float(d["score"].mean()) if len(d) else math.nan,
                        "mean_reasoning_tokens": float(d["reasoning_tokens"].sum()) / attempts
                        if attempts
                        else math.nan,
                        "ctir": ratio.ratio if ratio else math.nan,
                        "ctir_ci": [ratio.low, ratio.high] if ratio else [math.nan, math.nan],
                        "ctir_n": ratio.n if ratio else 0,
                    }
                )
    return rows


def collapse_points(
    table: Iterable[Mapping[str, Any]], threshold: float = COLLAPSE_THRESHOLD
) -> list[dict[str, Any]]:
    """Per (strategy, variant): the first level (ascending) whose accuracy is below `threshold`,
    None when no level is; `last_ok` is the highest level below it (None if the first already fails)."""
    by: dict[tuple[str, str], list[tuple[Any, float]]] = {}
    for r in table:
        by.setdefault((r["strategy"], r["variant"]), []).append((r["level"], r["accuracy"]))
    out = []
    for (strat, v), pts in by.items():
        pts.sort(key=lambda p: p[0])
        collapse = next((lv for lv, acc in pts if not math.isnan(acc) and acc < threshold), None)
        below = [lv for lv, _ in pts if collapse is None or lv < collapse]
        out.append(
            {
                "strategy": strat,
                "variant": v,
                "threshold": threshold,
                "collapse_level": collapse,
                "last_ok": below[-1] if below else None,
            }
        )
    return out


def levels_summary(
    outcomes: pd.DataFrame,
    problems: pd.DataFrame,
    reference: str | None,
    *,
    threshold: float = COLLAPSE_THRESHOLD,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any] | None:
    """The per-level block of summary.json: {"table", "collapse", "threshold"}; None when no problem
    has a level or all share one (a single level is no curve)."""
    levels = problem_levels(problems)
    if len(set(levels.values())) < 2:
        return None
    table = level_table(outcomes, levels, reference, n_boot=n_boot, seed=seed)
    if not table:
        return None
    return {"threshold": threshold, "table": table, "collapse": collapse_points(table, threshold)}
