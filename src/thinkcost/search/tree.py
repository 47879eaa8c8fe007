"""The search tree every strategy grows, and the bookkeeping they share.

Why one tree type for all four strategies: the store keeps every node (its step, parent,
tokens, PRM cost, reward, whether it survived), the report charges the whole tree to the
strategy and the browser draws it, so beam, DVTS, particle filtering and weighted best-of-N
differ only in which nodes they expand and keep.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..engines.steps import StepOut, Stepper
from .scorers import StepScorer, aggregate

AGGREGATIONS = ("last", "min", "prod", "mean")


@dataclass(frozen=True)
class SearchConfig:
    n: int  # beams / particles / samples
    m: int = 1  # expansions per kept beam (beam, dvts)
    temperature: float = 0.7
    top_p: float = 0.95
    max_steps: int = 40
    max_new_tokens: int = 512  # per answer path
    seed: int = 0
    agg: str = "last"
    pf_temperature: float = 1.0  # softmax temperature of particle resampling


@dataclass
class Node:
    id: int
    parent: int | None
    depth: int
    text: str = ""
    policy_tokens: int = 0
    policy_s: float = 0.0
    fed_tokens: int = 0  # tokens the policy was fed for this step (its KV-cache reuse shows here)
    prm_tokens: int = 0
    prm_s: float = 0.0
    step_reward: float | None = None
    reward: float | None = None  # aggregated over the path
    finish: str | None = None  # None: can be extended; "stop" | "length"
    survived: bool = False  # kept by the search after being scored (or chosen at the end)
    state: Any = field(default=None, repr=False)

    @property
    def done(self) -> bool:
        return self.finish is not None


@dataclass
class SearchResult:
    final: Node
    nodes: list[Node]
    final_state: Any = field(default=None, repr=False)  # the stepper's state of the answer

    @property
    def policy_tokens(self) -> int:
        return sum(n.policy_tokens for n in self.nodes)

    @property
    def prm_tokens(self) -> int:
        return sum(n.prm_tokens for n in self.nodes)

    @property
    def seconds(self) -> float:
        return sum(n.policy_s + n.prm_s for n in self.nodes)


class Tree:
    """Nodes by id; expands through the stepper and scores through the scorer, recording cost."""

    def __init__(
        self, messages: list[dict[str, str]], config: SearchConfig, stepper: Stepper, scorer: StepScorer
    ) -> None:
        self.messages = messages
        self.question = next((m["content"] for m in reversed(messages) if m.get("role") == "user"), "")
        self.config = config
        self.stepper = stepper
        self.scorer = scorer
        self.root = Node(0, None, 0, state=stepper.root(messages))
        self.nodes = [self.root]

    def path(self, node: Node) -> list[Node]:
        out = []
        while node.parent is not None:
            out.append(node)
            node = self.nodes[node.parent]
        return out[::-1]

    def steps(self, node: Node) -> list[str]:
        return [n.text for n in self.path(node)]

    def tokens_so_far(self, node: Node) -> int:
        return sum(n.policy_tokens for n in self.path(node))

    def expand(self, node: Node, k: int, *, score: bool = True) -> list[Node]:
        """`k` children of `node`, scored unless told not to (wbon scores whole answers once)."""
        c = self.config
        seed = zlib.crc32(f"{c.seed}:{node.id}:{len(self.nodes)}".encode())
        outs: list[StepOut] = self.stepper.expand(
            node.state,
            k,
            seed=seed,
            temperature=c.temperature,
            top_p=c.top_p,
            max_new_tokens=c.max_new_tokens,
        )
        kids = []
        for o in outs:
            child = Node(
                len(self.nodes),
                node.id,
                node.depth + 1,
                text=o.text,
                policy_tokens=o.tokens,
                policy_s=o.seconds,
                fed_tokens=o.fed_tokens,
                finish=o.finish,
                state=o.state,
            )
            if child.finish is None and child.depth >= c.max_steps:
                child.finish = "length"
            self.nodes.append(child)
            kids.append(child)
            if score:
                self.score(child)
        return kids

    def score(self, node: Node) -> None:
        """Reward of `node`'s last step, and the aggregate over its path."""
        before = self.scorer.cost()
        rewards = self.scorer.score_steps(self.question, self.steps(node))
        after = self.scorer.cost()
        node.prm_tokens += after[0] - before[0]
        node.prm_s += after[1] - before[1]
        node.step_reward = rewards[-1] if rewards else None
        node.reward = aggregate(rewards, self.config.agg)

    def result(self, final: Node) -> SearchResult:
        final.survived = True
        state = final.state
        for n in self.nodes:
            n.state = None  # free the caches: the tree outlives the search in the store
        return SearchResult(final, self.nodes, state)


def best(nodes: list[Node]) -> Node:
    """Highest reward; ties (and missing rewards, ranked last) go to the earliest node."""
    return max(nodes, key=lambda n: (-math.inf if n.reward is None else n.reward, -n.id))


def top(nodes: list[Node], k: int) -> list[Node]:
    return sorted(nodes, key=lambda n: (-math.inf if n.reward is None else n.reward, -n.id), reverse=True)[:k]


Extract = Callable[[str], str | None]
