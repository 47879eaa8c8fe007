"""Particle filtering (`pf@N`, Puri et al. 2025): N particles advance one step at a time; after
each step they are resampled with replacement, particle i drawn with probability
softmax(reward_i / temperature). Unlike beam search the choice is random, so a low-reward
prefix keeps a chance proportional to its reward (the PRM is treated as a noisy likelihood,
not an oracle). Finished particles stay in the pool (they can be resampled, not extended). The
answer is the final pool's highest-reward particle."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Sequence

import numpy as np

from ..engines.steps import Stepper
from .scorers import StepScorer
from .tree import Node, SearchConfig, SearchResult, Tree, best


def softmax_weights(rewards: Sequence[float | None], temperature: float) -> np.ndarray:
    """Resampling probabilities; a missing reward counts as the lowest present one."""
    present = [r for r in rewards if r is not None]
    low = min(present) if present else 0.0
    x = np.array([low if r is None else r for r in rewards], dtype=float) / temperature
    x -= x.max()
    w = np.exp(x)
    return w / w.sum()


def resample(rewards: Sequence[float | None], temperature: float, rng: np.random.Generator) -> list[int]:
    """len(rewards) indices drawn with replacement by `softmax_weights`."""
    w = softmax_weights(rewards, temperature)
    return [int(i) for i in rng.choice(len(w), size=len(w), replace=True, p=w)]


def particle_filter(
    messages: list[dict[str, str]], config: SearchConfig, stepper: Stepper, scorer: StepScorer
) -> SearchResult:
    tree = Tree(messages, config, stepper, scorer)
    rng = np.random.default_rng(zlib.crc32(f"pf:{config.seed}".encode()))
    particles: list[Node] = tree.expand(tree.root, config.n)
    while True:
        picks = resample([p.reward for p in particles], config.pf_temperature, rng)
        particles = [particles[i] for i in picks]
        for p in particles:
            p.survived = True
        if all(p.done for p in particles):
            break
        counts = Counter(p.id for p in particles if not p.done)
        nxt = [p for p in particles if p.done]
        for nid, c in counts.items():
            nxt += tree.expand(tree.nodes[nid], c)
        particles = nxt
    return tree.result(best(particles))
