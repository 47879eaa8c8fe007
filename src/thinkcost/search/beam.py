"""PRM beam search (`beam@N/M`): N candidates per step; the N/M best by aggregated reward
survive and each is expanded M ways. Finished answers leave the beam; the search ends when N
answers have finished, nothing is left to extend, or `max_steps` is reached. The answer is the
finished path with the best reward."""

from __future__ import annotations

from ..engines.steps import Stepper
from .scorers import StepScorer
from .tree import SearchConfig, SearchResult, Tree, best, top


def beam_search(
    messages: list[dict[str, str]], config: SearchConfig, stepper: Stepper, scorer: StepScorer
) -> SearchResult:
    tree = Tree(messages, config, stepper, scorer)
    keep = max(1, config.n // config.m)
    active = tree.expand(tree.root, config.n)
    finished = []
    while True:
        finished += [n for n in active if n.done]
        active = [n for n in active if not n.done]
        if len(finished) >= config.n or not active:
            break
        kept = top(active, keep)
        nxt = []
        for b in kept:
            b.survived = True
            nxt += tree.expand(b, config.m)
        active = nxt
    return tree.result(best(finished or active))
