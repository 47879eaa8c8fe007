"""pass@k, maj@k and expected cost for every k <= n from ONE set of n samples per problem.

Why not regenerate per k: k samples drawn for maj@k are distributed exactly like a uniformly
random k-subset of n samples drawn the same way, so averaging over subsets of one sample set
estimates every point of the curve with less noise (and no extra compute) than fresh runs,
and the points of one curve are computed from the same samples, so they are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import combinations

import numpy as np

from ..strategies.vote import Attempt, majority_vote
from .accuracy import pass_at_k


@dataclass(frozen=True)
class CurvePoint:
    """maj@k averaged over problems. `exact` is True when every problem's value is the exact
    subset average (no resampling); `subsets` is the number of k-subsets voted on, summed over
    problems (C(n, k) each when exact, n_resamples each otherwise)."""

    k: int
    accuracy: float
    exact: bool
    subsets: int


def _check_problems(sizes: Sequence[int], what: str) -> None:
    if not sizes:
        raise ValueError(f"{what}: no problems given")


def _resolve_ks(ks: Iterable[int] | None, sizes: Sequence[int], what: str) -> list[int]:
    """Sorted unique ks; default 1..min n. Any k above some problem's n is an error, not a
    silent skip, because a mean over a changing set of problems is not a curve."""
    if ks is None:
        return list(range(1, min(sizes) + 1))
    out = sorted(set(ks))
    for k in out:
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise ValueError(f"{what}: k must be an integer >= 1, got {k!r}")
    for i, n in enumerate(sizes):
        if out and out[-1] > n:
            raise ValueError(f"{what}: k={out[-1]} exceeds n={n} samples of problem {i}")
    return [int(k) for k in out]


def pass_at_k_curve(
    correct_by_problem: Sequence[Sequence[bool]], ks: Iterable[int] | None = None
) -> dict[int, float]:
    """k -> mean over problems of the unbiased pass@k estimator, each problem with its own n."""
    sizes = [len(c) for c in correct_by_problem]
    _check_problems(sizes, "pass_at_k_curve")
    counts = [sum(bool(x) for x in c) for c in correct_by_problem]
    return {
        k: sum(pass_at_k(n, c, k) for n, c in zip(sizes, counts, strict=True)) / len(sizes)
        for k in _resolve_ks(ks, sizes, "pass_at_k_curve")
    }


def _maj_at_k_one(
    attempts: Sequence[Attempt], k: int, max_subsets: int, n_resamples: int, rng_seed: list[int]
) -> tuple[float, bool, int]:
    """(expected vote correctness over k-subsets, exact?, subsets voted on) for one problem."""
    n = len(attempts)
    if math.comb(n, k) <= max_subsets:
        hits = total = 0
        for subset in combinations(attempts, k):
            hits += majority_vote(subset).correct
            total += 1
        return hits / total, True, total
    # Uniform k-subsets: the first k of a uniformly random permutation (argsort of iid uniforms).
    rng = np.random.default_rng(rng_seed)
    picks = np.argsort(rng.random((n_resamples, n)), axis=1)[:, :k]
    hits = sum(majority_vote([attempts[j] for j in row]).correct for row in picks.tolist())
    return hits / n_resamples, False, n_resamples


def maj_at_k_curve(
    attempts_by_problem: Sequence[Sequence[Attempt]],
    ks: Iterable[int] | None = None,
    *,
    max_subsets: int = 5000,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[int, CurvePoint]:
    """k -> expected correctness of `majority_vote` over a uniformly random k-subset of each
    problem's n attempts, averaged over problems.

    Exact (all C(n, k) subsets) when C(n, k) <= max_subsets, else the mean over n_resamples
    random subsets. Each (problem, k) draws from its own stream seeded by (seed, problem, k), so
    a point does not change when other ks or later problems are added. Subsets keep the
    attempts' own finish_keys, so ties break as they would have in a real k-sample run."""
    if n_resamples < 1:
        raise ValueError(f"maj_at_k_curve: n_resamples must be >= 1, got {n_resamples}")
    sizes = [len(a) for a in attempts_by_problem]
    _check_problems(sizes, "maj_at_k_curve")
    out: dict[int, CurvePoint] = {}
    for k in _resolve_ks(ks, sizes, "maj_at_k_curve"):
        acc = 0.0
        exact = True
        subsets = 0
        for i, attempts in enumerate(attempts_by_problem):
            value, was_exact, used = _maj_at_k_one(attempts, k, max_subsets, n_resamples, [seed, i, k])
            acc += value
            exact &= was_exact
            subsets += used
        out[k] = CurvePoint(k, acc / len(sizes), exact, subsets)
    return out


def expected_tokens_curve(
    tokens_by_problem: Sequence[Sequence[float]], ks: Iterable[int] | None = None
) -> dict[int, float]:
    """k -> mean over problems of the expected tokens of k samples, k * (mean tokens/sample).

    Exact, no enumeration needed: by linearity of expectation each of the n samples lands in a
    uniformly random k-subset with probability k/n, so E[sum of its tokens] = (k/n) * total."""
    sizes = [len(t) for t in tokens_by_problem]
    _check_problems(sizes, "expected_tokens_curve")
    for i, n in enumerate(sizes):
        if n == 0:
            raise ValueError(f"expected_tokens_curve: problem {i} has no samples")
    means = [sum(t) / len(t) for t in tokens_by_problem]
    return {k: k * sum(means) / len(means) for k in _resolve_ks(ks, sizes, "expected_tokens_curve")}


@dataclass(frozen=True)
class PowerLawFit:
    """coverage(k) = exp(a * k^b) (Brown et al. 2024, "Large Language Monkeys"): a < 0 and b < 0
    when coverage rises towards 1 with k. `points` = the (k, coverage) pairs the fit used."""

    a: float
    b: float
    points: int

    def coverage(self, k: float) -> float:
        return math.exp(self.a * k**self.b)


def fit_coverage_power_law(ks: Sequence[float], coverage: Sequence[float]) -> PowerLawFit | None:
    """Least-squares fit of log(-log c) = log(-a) + b log k, a line in log-log space.

    Why the double log: the model is linear there, so the fit is closed-form, exact on exact data
    and needs no starting point. Points with c <= 0 or c >= 1 have no double log and are left out
    (a problem set solved at every k carries no slope); fewer than 2 usable distinct ks -> None."""
    if len(ks) != len(coverage):
        raise ValueError(f"fit_coverage_power_law: {len(ks)} ks but {len(coverage)} coverage values")
    pts = [(float(k), float(c)) for k, c in zip(ks, coverage, strict=True) if k > 0 and 0 < c < 1]
    if len({k for k, _ in pts}) < 2:
        return None
    x = np.log([k for k, _ in pts])  # [m]
    y = np.log(-np.log([c for _, c in pts]))  # [m]
    b, log_neg_a = np.polyfit(x, y, 1)
    return PowerLawFit(a=-float(np.exp(log_neg_a)), b=float(b), points=len(pts))


def accept_until_verified(
    weak_by_problem: Sequence[Sequence[bool]],
    strong_by_problem: Sequence[Sequence[bool]],
    ks: Iterable[int] | None = None,
) -> dict[int, dict[str, float]]:
    """ "Resample until the verifier accepts" with budget k, in expectation over sample order.

    Each problem's n samples are drawn in a uniformly random order until the weak verifier accepts
    one (or k are spent); that sample is returned. With A weak-accepted and B accepted-and-truly-
    correct samples: P(some accepted within k) = 1 - C(n-A, k)/C(n, k), and the returned sample is
    uniform over the A accepted ones (by symmetry), so it is correct with probability B/A.
    Per k: accepted (share of problems with an accepted answer), accuracy (returned and truly
    correct), precision (accuracy / accepted: what "the verifier said yes" is worth) and samples
    (expected draws per problem, sum over j < k of C(n-A, j)/C(n, j))."""
    if len(weak_by_problem) != len(strong_by_problem):
        raise ValueError("accept_until_verified: weak and strong verdicts cover different problems")
    sizes = [len(w) for w in weak_by_problem]
    _check_problems(sizes, "accept_until_verified")
    stats = []
    for i, (w, s) in enumerate(zip(weak_by_problem, strong_by_problem, strict=True)):
        if len(w) != len(s):
            raise ValueError(
                f"accept_until_verified: problem {i} has {len(w)} weak but {len(s)} strong verdicts"
            )
        a = sum(bool(x) for x in w)
        b = sum(bool(x) and bool(y) for x, y in zip(w, s, strict=True))
        stats.append((len(w), a, b))
    out: dict[int, dict[str, float]] = {}
    for k in _resolve_ks(ks, sizes, "accept_until_verified"):
        accepted = correct = draws = 0.0
        for n, a, b in stats:
            p_acc = 1.0 - math.comb(n - a, k) / math.comb(n, k)
            accepted += p_acc
            correct += p_acc * (b / a) if a else 0.0
            draws += sum(math.comb(n - a, j) / math.comb(n, j) for j in range(k))
        m = len(stats)
        out[k] = {
            "accepted": accepted / m,
            "accuracy": correct / m,
            "precision": correct / accepted if accepted else math.nan,
            "samples": draws / m,
        }
    return out
