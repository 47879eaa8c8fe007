"""One answer per sample: `greedy` (one deterministic sample) and `sample@N` (N independent
samples, each scored on its own: the strategy's accuracy is the expected accuracy of one
sample, pass@1, and its cost is all N)."""

from __future__ import annotations

import re
from typing import Any

from ..errors import UserError
from .base import SELECTORS, Decision, Recipe, SamplingOptions, Strategy, positive_int
from .vote import Attempt


def decide_greedy(attempts: list[Attempt], columns: dict[str, list[Any]]) -> Decision:
    first = next((a for a in attempts if a.sample == 0), None)
    if first is None:
        return Decision(None, False, 0.0, None, ())
    return Decision(first.answer, first.correct, float(first.correct), 0, (0,))


@SELECTORS.register("greedy", form="greedy", help="one greedy sample", order=0)
def parse_greedy(text: str, options: SamplingOptions) -> Strategy:
    if text != "greedy":
        raise UserError(f"strategy {text!r}: greedy takes no argument (did you mean maj@K or sample@N?)")
    return Strategy("greedy", Recipe(), decide_greedy)


@SELECTORS.register("sample", form="sample@N", help="N samples, scored as their mean accuracy", order=1)
def parse_sample(text: str, options: SamplingOptions) -> Strategy:
    m = re.fullmatch(r"sample@(\S*)", text)
    n = positive_int(m.group(1) if m else None, "N in sample@N", text)
    recipe = Recipe(n=n, temperature=options.temperature, top_p=options.top_p)

    def decide(attempts: list[Attempt], columns: dict[str, list[Any]]) -> Decision:
        mine = [a for a in attempts if a.sample < n]
        if not mine:
            return Decision(None, False, 0.0, None, ())
        score = sum(a.correct for a in mine) / len(mine)
        first = mine[0]
        # "correct" (used to pick jointly-correct problems for CTIR) = most samples are right.
        used = tuple(a.sample for a in mine)
        return Decision(first.answer, score > 0.5, score, first.sample, used, answers=len(mine))

    return Strategy(f"sample@{n}", recipe, decide)
