"""`short-M@K` (Hassid et al. 2025, "Don't Overthink it"): start K samples, stop all of them
as soon as M have finished, majority-vote among those M. The stop is real (the engine
cancels the unfinished sequences), and the cancelled samples' tokens are part of its cost.

Finish order is (completion tokens, sample id): the K samples decode in lockstep, so fewer
tokens means finished earlier; if more than M finish on the same step, the M with the lowest
sample ids vote and the others still count as spent."""

from __future__ import annotations

import re
from typing import Any

from ..errors import UserError
from .base import SELECTORS, Decision, Recipe, SamplingOptions, Strategy
from .self_consistency import vote_decision
from .vote import Attempt


@SELECTORS.register(
    "short", form="short-M@K", help="K samples raced; vote over the first M to finish", order=4
)
def parse_short(text: str, options: SamplingOptions) -> Strategy:
    m = re.fullmatch(r"short-(\d+)@(\d+)", text)
    if m is None:
        raise UserError(f"strategy {text!r}: expected short-M@K with integers 1 <= M <= K, e.g. short-1@8")
    first, k = int(m.group(1)), int(m.group(2))
    if not 1 <= first <= k:
        raise UserError(f"strategy {text!r}: expected 1 <= M <= K, got M={first}, K={k}")
    recipe = Recipe(n=k, temperature=options.temperature, top_p=options.top_p, stop_after=first)

    def decide(attempts: list[Attempt], columns: dict[str, list[Any]]) -> Decision:
        finish = columns.get("finish_reason", ["stop"] * len(attempts))
        done = sorted(
            (a for a, f in zip(attempts, finish, strict=True) if f != "cancelled"), key=lambda a: a.finish_key
        )
        return vote_decision(done[:first], tuple(a.sample for a in attempts))

    return Strategy(f"short-{first}@{k}", recipe, decide)
