"""Calibration of stated confidence: does "80% sure" mean right 80% of the time?

Every function takes per-sample confidences (a probability in [0, 1]; None or NaN = the model
stated none) and per-sample correctness. A missing confidence is excluded from the scores and
counted by `missing_share` instead of being imputed, because any imputed value (0, 0.5, the
mean) would be a calibration claim the model never made. `n_scored` is the number of samples
with a confidence; every score is NaN when it is 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np

from ..strategies.confidence import logprob_confidence  # noqa: F401 - the formula lives with its reader

BinStrategy = Literal["width", "mass"]
Confidences = Sequence[float | None] | np.ndarray
Outcomes = Sequence[bool] | np.ndarray


def _as_arrays(conf: Confidences, correct: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """(confidence as float with NaN = missing, correct as bool), validated to match."""
    c = np.array([np.nan if x is None else x for x in conf], dtype=float)
    y = np.asarray(correct)
    if c.ndim != 1 or y.ndim != 1 or len(c) != len(y):
        raise ValueError(f"conf and correct must be 1-d and equally long, got {c.shape} and {y.shape}")
    if len(y) and not np.isin(y, [0, 1]).all():
        raise ValueError("correct must hold booleans (or 0/1)")
    scored = c[~np.isnan(c)]
    if ((scored < 0) | (scored > 1)).any():
        raise ValueError("confidences must lie in [0, 1] (None or NaN for missing)")
    return c, y.astype(bool)


def _scored(conf: Confidences, correct: Outcomes) -> tuple[np.ndarray, np.ndarray]:
    """Only the samples with a stated confidence."""
    c, y = _as_arrays(conf, correct)
    keep = ~np.isnan(c)
    return c[keep], y[keep]


def missing_share(conf: Confidences) -> float:
    """Fraction of samples with no stated confidence; NaN for no samples."""
    c = np.array([np.nan if x is None else x for x in conf], dtype=float)
    return float(np.isnan(c).mean()) if len(c) else math.nan


def _bin_groups(c: np.ndarray, n_bins: int, strategy: BinStrategy) -> list[tuple[np.ndarray, float, float]]:
    """(indices, lo, hi) per bin.

    width: bin i is [i/B, (i+1)/B), the last bin is closed at 1. The edges are computed as
        i/B (not linspace), so a confidence written 0.3 falls in bin 3 of 10, not bin 2.
    mass: samples sorted by confidence (stable, so ties keep input order) and cut into B groups
        whose sizes differ by at most one, larger groups first (numpy.array_split). Tied
        confidences may be cut into neighbouring groups: the cut is by rank, which keeps the
        group sizes equal, the point of equal-mass bins. lo/hi are the smallest/largest
        confidence in the group. Fewer than B samples give fewer (non-empty) groups.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    if strategy == "width":
        edges = np.arange(n_bins + 1) / n_bins
        idx = np.clip(np.searchsorted(edges, c, side="right") - 1, 0, n_bins - 1)
        return [(np.flatnonzero(idx == i), float(edges[i]), float(edges[i + 1])) for i in range(n_bins)]
    if strategy == "mass":
        order = np.argsort(c, kind="stable")
        groups = [g for g in np.array_split(order, n_bins) if len(g)]
        return [(g, float(c[g].min()), float(c[g].max())) for g in groups]
    raise ValueError(f"strategy must be 'width' or 'mass', got {strategy!r}")


def reliability(
    conf: Confidences, correct: Outcomes, n_bins: int = 10, strategy: BinStrategy = "width"
) -> list[dict]:
    """Per bin: lo, hi, count, confidence (mean), accuracy - the points of a reliability diagram.

    Equal-width bins are all returned, empty ones with count 0 and NaN means, so a diagram keeps
    its x grid; equal-mass bins are the non-empty groups. Counts sum to n_scored.
    """
    c, y = _scored(conf, correct)
    rows = []
    for idx, lo, hi in _bin_groups(c, n_bins, strategy):
        n = len(idx)
        rows.append(
            {
                "lo": lo,
                "hi": hi,
                "count": n,
                "confidence": float(c[idx].mean()) if n else math.nan,
                "accuracy": float(y[idx].mean()) if n else math.nan,
            }
        )
    return rows


def ece(conf: Confidences, correct: Outcomes, n_bins: int = 10, strategy: BinStrategy = "width") -> float:
    """Expected calibration error: sum over bins of (bin share) * |accuracy - mean confidence|."""
    rows = reliability(conf, correct, n_bins, strategy)
    n = sum(r["count"] for r in rows)
    if n == 0:
        return math.nan
    return float(sum(r["count"] / n * abs(r["accuracy"] - r["confidence"]) for r in rows if r["count"]))


def brier(conf: Confidences, correct: Outcomes) -> float:
    """Mean squared error of confidence against the 0/1 outcome (lower is better; 0.25 = always 0.5)."""
    c, y = _scored(conf, correct)
    return float(np.mean((c - y) ** 2)) if len(c) else math.nan


def _average_ranks(x: np.ndarray) -> np.ndarray:
    """1-based ranks with ties sharing their average rank."""
    _, inverse, counts = np.unique(x, return_inverse=True, return_counts=True)
    first = np.cumsum(counts) - counts + 1  # rank of each distinct value's first member
    return (first + (counts - 1) / 2)[inverse]


def auroc(conf: Confidences, correct: Outcomes) -> float:
    """P(a random correct sample has higher confidence than a random incorrect one), ties count 1/2.

    This is how well confidence separates right from wrong answers, independent of its scale
    (a model can be perfectly discriminating and badly calibrated). NaN when either class is empty.
    Computed as the Mann-Whitney U statistic from average ranks, O(n log n).
    """
    c, y = _scored(conf, correct)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    rank_sum = float(_average_ranks(c)[y].sum())
    return (rank_sum - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)


def calibration_summary(conf: Confidences, correct: Outcomes, n_bins: int = 10) -> dict:
    """All the calibration numbers for one set of samples, for a report row."""
    c, _ = _as_arrays(conf, correct)
    return {
        "ece_width": ece(conf, correct, n_bins, "width"),
        "ece_mass": ece(conf, correct, n_bins, "mass"),
        "brier": brier(conf, correct),
        "auroc": auroc(conf, correct),
        "missing_share": missing_share(conf),
        "n": len(c),
        "n_scored": int((~np.isnan(c)).sum()),
    }
