"""Weighted best-of-N (`wbon@K`): K answers sampled step by step without pruning, each scored
once when finished (its aggregated step rewards); the answer whose samples' rewards sum highest
wins (Li et al. 2023's weighted vote). Samples with no extractable answer do not vote."""

from __future__ import annotations

from collections import defaultdict

from ..engines.steps import Stepper
from .scorers import StepScorer
from .tree import Extract, SearchConfig, SearchResult, Tree, best


def weighted_best_of_n(
    messages: list[dict[str, str]],
    config: SearchConfig,
    stepper: Stepper,
    scorer: StepScorer,
    extract: Extract,
) -> SearchResult:
    tree = Tree(messages, config, stepper, scorer)
    live = tree.expand(tree.root, config.n, score=False)
    finished = []
    while live:
        finished += [n for n in live if n.done]
        nxt = []
        for n in live:
            if not n.done:
                nxt += tree.expand(n, 1, score=False)
        live = nxt
    votes: dict[str, float] = defaultdict(float)
    members: dict[str, list] = defaultdict(list)
    for n in finished:
        tree.score(n)
        key = extract(
            tree.stepper.completion(n.state, n.finish or "length", completion_tokens=0, cost_s=0).answer_text
        )
        if key is not None and n.reward is not None:
            votes[key] += n.reward
            members[key].append(n)
    if not votes:
        return tree.result(best(finished))
    winner = max(votes, key=lambda k: (votes[k], -min(x.id for x in members[k])))
    return tree.result(best(members[winner]))
