"""Self-consistency voting and best-of selection, one set of rules for strategies and curves.

Why one module: the maj@k strategy and the maj@k curve must pick the same answer from the
same attempts, otherwise a curve point at k would not equal the maj@k row of the same run.
Tie-breaking is by finish order (earliest first) because that is what a deployed system sees
first; it is deterministic and needs no random state.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..verify.math_answer import parse_number


@dataclass(frozen=True)
class Attempt:
    """One sample's outcome, as voting and selection see it."""

    sample: int  # sample id
    answer: str | None  # extracted answer (raw string); None if nothing was extracted
    correct: bool  # verdict of this attempt
    # Sorts attempts by when they finished, earliest first. We use (completion_tokens, sample):
    # all samples of a request decode in lockstep, so fewer tokens = finished earlier.
    finish_key: tuple


@dataclass(frozen=True)
class Vote:
    """Outcome of a majority vote. `chosen` is the earliest-finished attempt with the winning
    answer (the one a deployment would return), or the earliest-finished attempt overall when
    no attempt had an answer, or None for no attempts."""

    answer: str | None  # normalised winning answer
    correct: bool
    chosen: Attempt | None
    counts: dict[str, int] = field(default_factory=dict)  # normalised answer -> votes
    tie: bool = False  # the top count was shared by several answers


_WS_RE = re.compile(r"\s+")
_TEXT_WRAP_RE = re.compile(r"^\\(?:text|textbf|textrm|mathrm|mbox)\s*\{(.*)\}$", re.DOTALL)


def _canonical_fraction(value) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


@functools.lru_cache(maxsize=65536)
def normalize_answer(answer: str | None) -> str | None:
    """Canonical form for voting: numbers by exact value ("0.5" == "1/2" == "\\frac{1}{2}",
    "1,000" == "1000"), other text by case/whitespace/latex-wrapper-insensitive form.

    Cached: curves vote over thousands of subsets of the same few strings."""
    if answer is None or not answer.strip():
        return None
    value = parse_number(answer)
    if value is not None:
        return _canonical_fraction(value)
    t = answer
    while True:  # peel wrappers until nothing changes ("$\\text{ Yes. }$" -> "yes")
        before = t
        t = t.strip()
        if len(t) >= 2 and t.startswith("$") and t.endswith("$"):
            t = t[1:-1]
        t = t.strip().rstrip(".")
        m = _TEXT_WRAP_RE.match(t.strip())
        if m:
            t = m.group(1)
        if t == before:
            break
    t = _WS_RE.sub(" ", t).strip().lower()
    return t or None


def _earliest(attempts: Sequence[Attempt]) -> Attempt:
    return min(attempts, key=lambda a: (a.finish_key, a.sample))


def majority_vote(attempts: Sequence[Attempt]) -> Vote:
    """Most common normalised answer; ties go to the answer whose first attempt finished first.

    Attempts with no answer do not vote. If none has an answer the vote is wrong, and the
    earliest-finished attempt stands for it (it is what a deployment would have shown)."""
    if not attempts:
        return Vote(None, False, None, {}, False)
    first_by_answer: dict[str, Attempt] = {}
    counts: dict[str, int] = {}
    for a in attempts:
        key = normalize_answer(a.answer)
        if key is None:
            continue
        counts[key] = counts.get(key, 0) + 1
        prev = first_by_answer.get(key)
        if prev is None or (a.finish_key, a.sample) < (prev.finish_key, prev.sample):
            first_by_answer[key] = a
    if not counts:
        chosen = _earliest(attempts)
        return Vote(None, False, chosen, {}, False)
    top = max(counts.values())
    leaders = [k for k, c in counts.items() if c == top]
    winner = min(leaders, key=lambda k: (first_by_answer[k].finish_key, first_by_answer[k].sample))
    chosen = first_by_answer[winner]
    return Vote(winner, chosen.correct, chosen, counts, len(leaders) > 1)


def best_of(attempts: Sequence[Attempt], scores: Sequence[float | None]) -> Attempt | None:
    """Highest-scoring attempt. None (and NaN) scores rank below every number; ties, and the
    all-missing case, go to the earliest-finished attempt. None for no attempts."""
    if len(attempts) != len(scores):
        raise ValueError(f"best_of: {len(attempts)} attempts but {len(scores)} scores")
    if not attempts:
        return None

    def rank(i: int):
        s = scores[i]
        missing = s is None or math.isnan(s)
        a = attempts[i]
        # min() over: missing last, then higher score first, then earlier finish first
        return (missing, 0.0 if missing else -float(s), a.finish_key, a.sample)

    return attempts[min(range(len(attempts)), key=rank)]
