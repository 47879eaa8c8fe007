"""Step scorers: one interface, `score_steps(question, steps) -> one reward per step`, for the
policy judging itself (`self`) and for process reward models (`prm:MODEL`, see prm_formats).

Why the cost is part of the interface: a PRM reads the question and every step again at each
scoring, and that prefill is compute the search spends. `cost()` returns the tokens the scorer
has read and the seconds it has spent so far, so the search charges each node what scoring it
cost (the store keeps it per step; the report adds it to the strategy's bill).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any, Protocol

from ..errors import UserError


class StepScorer(Protocol):
    name: str
    params: float | None  # parameter count, for FLOP-equivalent tokens (None: same as the policy)

    def score_steps(self, question: str, steps: Sequence[str]) -> list[float]: ...

    def cost(self) -> tuple[int, float]: ...


def aggregate(rewards: Sequence[float], how: str = "last") -> float | None:
    """One reward for a path from its step rewards: the last step's (what PRM beam search uses
    by default), the weakest step's, their product, or their mean."""
    if not rewards:
        return None
    if how == "last":
        return float(rewards[-1])
    if how == "min":
        return float(min(rewards))
    if how == "prod":
        return float(math.prod(rewards))
    if how == "mean":
        return float(sum(rewards) / len(rewards))
    raise UserError(f"aggregation {how!r}: expected one of last, min, prod, mean")


JUDGE_PROMPT = (
    "Here is a math problem and a partial solution.\n\nProblem: {question}\n\nSolution so far:\n{previous}"
    "\n\nNext step:\n{step}\n\nIs this step correct? Answer Yes or No."
)


class SelfScorer:
    """The policy model as its own verifier: P("Yes") (renormalised against "No") to "Is this
    step correct?" after the question and the steps before it. Works offline with the default
    model; each step is judged once (earlier steps of a path were scored when they were made)."""

    name = "self"
    params = None

    def __init__(self, stepper: Any) -> None:
        if not hasattr(stepper, "yes_probability"):
            raise UserError("scorer 'self' needs an in-process policy model (--engine hf)")
        self.stepper = stepper
        self._memo: dict[tuple[str, tuple[str, ...]], float] = {}
        self._tokens = 0
        self._seconds = 0.0

    def cost(self) -> tuple[int, float]:
        return self._tokens, self._seconds

    def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        out = []
        for i in range(len(steps)):
            key = (question, tuple(steps[: i + 1]))
            if key not in self._memo:
                t = time.perf_counter()
                prompt = JUDGE_PROMPT.format(
                    question=question, previous="".join(steps[:i]).strip() or "(none)", step=steps[i].strip()
                )
                p, n = self.stepper.yes_probability([{"role": "user", "content": prompt}])
                self._tokens += n
                self._seconds += time.perf_counter() - t
                self._memo[key] = p
            out.append(self._memo[key])
        return out


class PRMScorer:
    """A process reward model read through its format's adapter (`prm_formats`); all steps of
    a path are scored in one forward pass."""

    def __init__(self, model: str, *, fmt: str | None = None, device: str = "cpu") -> None:
        from .prm_formats import load_prm

        self.reader = load_prm(model, fmt=fmt, device=device)
        self.name = f"prm:{model}"
        self.params = float(sum(p.numel() for p in self.reader.model.parameters()))
        self._tokens = 0
        self._seconds = 0.0

    def cost(self) -> tuple[int, float]:
        return self._tokens, self._seconds

    def score_steps(self, question: str, steps: Sequence[str]) -> list[float]:
        t = time.perf_counter()
        rewards, n = self.reader.score(question, list(steps))
        self._tokens += n
        self._seconds += time.perf_counter() - t
        return rewards


def build_scorer(spec_scorer: str, stepper: Any, *, prm_format: str | None = None, device: str = "cpu"):
    """`self` or `prm:MODEL` -> a scorer."""
    if spec_scorer == "self":
        return SelfScorer(stepper)
    if spec_scorer.startswith("prm:"):
        return PRMScorer(spec_scorer[4:], fmt=prm_format, device=device)
    raise UserError(f"step scorer {spec_scorer!r}: expected self or prm:MODEL")
