"""`maj@K`, self-consistency (Wang et al. 2023): K samples, majority vote over normalised
extracted answers, ties to the answer whose first sample finished earliest."""

from __future__ import annotations

import re
from typing import Any

from .base import SELECTORS, Decision, Recipe, SamplingOptions, Strategy, first_attempts, positive_int
from .vote import Attempt, majority_vote


def vote_decision(attempts: list[Attempt], used: tuple[int, ...]) -> Decision:
    v = majority_vote(attempts)
    chosen = v.chosen.sample if v.chosen is not None else None
    return Decision(v.answer, v.correct, float(v.correct), chosen, used)


@SELECTORS.register("maj", form="maj@K", help="majority vote over K samples", order=2)
def parse_maj(text: str, options: SamplingOptions) -> Strategy:
    m = re.fullmatch(r"maj@(\S*)", text)
    k = positive_int(m.group(1) if m else None, "K in maj@K", text)

    def decide(attempts: list[Attempt], columns: dict[str, list[Any]]) -> Decision:
        mine = first_attempts(attempts, k)
        return vote_decision(mine, tuple(a.sample for a in mine))

    return Strategy(f"maj@{k}", Recipe(n=k, temperature=options.temperature, top_p=options.top_p), decide)
