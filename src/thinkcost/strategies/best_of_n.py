"""`bon@K:SCORER`, best-of-N: K samples, return the one a scorer ranks highest.

Scorers: `logprob` (mean log-probability of the sample's own tokens), `self-certainty`
(mean KL(uniform || p) over its tokens, Kang et al. 2025), `verbal` (the confidence the
model states after its answer; the prompt asks for it, so these samples are drawn apart),
`oracle` (the verifier itself: the score is correctness, so bon@K:oracle = pass@K, an
upper bound no deployable scorer reaches), `rm:MODEL` (a Hugging Face sequence-
classification reward model scoring (prompt, completion))."""

from __future__ import annotations

import re
from typing import Any

from ..errors import UserError
from .base import SELECTORS, Decision, Recipe, SamplingOptions, Strategy, first_attempts, positive_int
from .confidence import parse_verbal_confidence
from .vote import Attempt, best_of

SCORERS = ("logprob", "self-certainty", "verbal", "oracle", "rm:MODEL")


def scores_for(scorer: str, attempts: list[Attempt], columns: dict[str, list[Any]]) -> list[float | None]:
    """Per-attempt scores (None = missing, ranks last)."""
    n = len(attempts)
    if scorer == "logprob":
        return list(columns.get("mean_logprob", [None] * n))
    if scorer == "self-certainty":
        return list(columns.get("self_certainty", [None] * n))
    if scorer == "verbal":
        return [parse_verbal_confidence(t or "") for t in columns.get("answer_text", [""] * n)]
    if scorer == "oracle":
        return [float(a.correct) for a in attempts]
    return list(columns.get("rm", [None] * n))


@SELECTORS.register(
    "bon",
    form="bon@K:SCORER",
    help="best of K by SCORER: logprob, self-certainty, verbal, oracle or rm:MODEL",
    order=3,
)
def parse_bon(text: str, options: SamplingOptions) -> Strategy:
    m = re.fullmatch(r"bon@(\d*):(.+)", text)
    if m is None:
        raise UserError(f"strategy {text!r}: expected bon@K:SCORER with SCORER one of {', '.join(SCORERS)}")
    k = positive_int(m.group(1), "K in bon@K", text)
    scorer = m.group(2)
    if scorer.startswith("rm:"):
        if not scorer[3:].strip():
            raise UserError(f"strategy {text!r}: rm:MODEL needs a model id or local path after 'rm:'")
    elif scorer not in SCORERS:
        raise UserError(f"strategy {text!r}: unknown scorer {scorer!r}; expected one of {', '.join(SCORERS)}")
    recipe = Recipe(n=k, temperature=options.temperature, top_p=options.top_p, verbal=scorer == "verbal")
    kind = "rm" if scorer.startswith("rm:") else scorer

    def decide(attempts: list[Attempt], columns: dict[str, list[Any]]) -> Decision:
        mine = first_attempts(attempts, k)
        idx = [i for i, a in enumerate(attempts) if a.sample < k]
        cols = {c: [v[i] for i in idx] for c, v in columns.items()}
        best = best_of(mine, scores_for(kind, mine, cols))
        used = tuple(a.sample for a in mine)
        if best is None:
            return Decision(None, False, 0.0, None, used)
        return Decision(best.answer, best.correct, float(best.correct), best.sample, used)

    return Strategy(f"bon@{k}:{scorer}", recipe, decide, scorer=scorer)
