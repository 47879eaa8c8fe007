"""Diverse verifier tree search (`dvts@N/M`, Beeching et al. 2024): N/M independent subtrees,
each a greedy PRM search of width M (expand its leaf M ways, keep the best child). Splitting
the budget keeps the beams from collapsing onto one prefix, which plain beam search does once
one step scores high. The answer is the best finished leaf over all subtrees."""

from __future__ import annotations

from ..engines.steps import Stepper
from .scorers import StepScorer
from .tree import SearchConfig, SearchResult, Tree, best


def dvts(
    messages: list[dict[str, str]], config: SearchConfig, stepper: Stepper, scorer: StepScorer
) -> SearchResult:
    tree = Tree(messages, config, stepper, scorer)
    leaves = [tree.root] * max(1, config.n // config.m)
    while any(not leaf.done for leaf in leaves):
        for i, leaf in enumerate(leaves):
            if leaf.done:
                continue
            kid = best(tree.expand(leaf, config.m))
            kid.survived = True
            leaves[i] = kid
    return tree.result(best(leaves))
