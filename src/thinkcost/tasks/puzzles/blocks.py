"""Blocks world: n lettered blocks on three stacks; move one top block at a time to reach a goal
arrangement. Start and goal are drawn from the seed; the optimum comes from breadth-first search
(n is capped at 6: n! * C(n + 2, 2) arrangements, 20,160 at n = 6)."""

from __future__ import annotations

import random
import re
import string
from functools import lru_cache
from typing import Any

from thinkcost.tasks import TASKS
from thinkcost.tasks.puzzles.base import Illegal, Puzzle, PuzzleTask, bfs, move_format
from thinkcost.tasks.puzzles.moves import Tokens

STACKS = 3
_FILLER = {"move", "block", "from", "to", "stack", "->", "\u2192", "on", "onto"}
_LINE = re.compile(
    r"\b(?:block\s*)?([A-L])\b\s*[:,]?\s*(?:from\s*)?(?:stack\s*)?(\d)\s*(?:to|->|\u2192|-|,|onto)\s*(?:stack\s*)?(\d)",
)

State = tuple[tuple[str, ...], ...]  # per stack, blocks bottom to top


def _random_arrangement(blocks: list[str], rng: random.Random) -> State:
    order = blocks[:]
    rng.shuffle(order)
    stacks: list[list[str]] = [[] for _ in range(STACKS)]
    for b in order:
        stacks[rng.randrange(STACKS)].append(b)
    return tuple(tuple(s) for s in stacks)


def _moves(state: State):
    for f in range(STACKS):
        if not state[f]:
            continue
        for t in range(STACKS):
            if t != f:
                s = list(state)
                s[f], s[t] = state[f][:-1], state[t] + (state[f][-1],)
                yield [state[f][-1], f + 1, t + 1], tuple(s)


@lru_cache(maxsize=256)
def _solution(start: State, goal: State) -> tuple[tuple[Any, ...], ...]:
    path = bfs(start, lambda s: s == goal, lambda s: list(_moves(s)))
    assert path is not None  # every arrangement reaches every other
    return tuple(tuple(m) for m in path)


def _placed(state: State, goal: State) -> int:
    """Blocks already in their final place: each one and everything under it as in the goal."""
    count = 0
    for s, g in zip(state, goal, strict=True):
        for a, b in zip(s, g, strict=False):
            if a != b:
                break
            count += 1
    return count


def _show(state: State) -> str:
    return "\n".join(
        f"stack {i + 1} (bottom to top): {', '.join(s) if s else 'empty'}" for i, s in enumerate(state)
    )


class BlocksWorld(Puzzle):
    name = "blocks-world"
    levels = (2, 6)
    default_n = "3..5"

    def instance(self, n: int, rng: random.Random) -> dict[str, Any]:
        blocks = list(string.ascii_uppercase[:n])
        start = _random_arrangement(blocks, rng)
        goal = start
        while goal == start:
            goal = _random_arrangement(blocks, rng)
        return {"n": n, "start": [list(s) for s in start], "goal": [list(s) for s in goal]}

    def prompt(self, inst: dict[str, Any]) -> str:
        start, goal = self.start(inst), self._goal(inst)
        return (
            f"Blocks world. {inst['n']} blocks, lettered, sit on {STACKS} stacks numbered 1 to {STACKS}.\n\n"
            f"Start:\n{_show(start)}\n\nGoal:\n{_show(goal)}\n\nRules:\n1. Move one block at a time.\n"
            "2. Only the top block of a stack can be moved.\n3. A moved block goes on top of another stack "
            "(an empty stack is allowed).\n\nGoal: reach the goal arrangement exactly.\n\n"
            + move_format(
                '[["C", 1, 3], ["B", 2, 1], ...]',
                '[block, from_stack, to_stack], e.g. ["C", 1, 3] moves block C from the top of stack 1 to the top of stack 3',
            )
        )

    def start(self, inst: dict[str, Any]) -> State:
        return tuple(tuple(s) for s in inst["start"])

    def _goal(self, inst: dict[str, Any]) -> State:
        return tuple(tuple(s) for s in inst["goal"])

    def read_move(self, inst: dict[str, Any], tokens: Tokens) -> tuple[str, int, int] | None:
        words = [t for t in tokens if t.lower() not in _FILLER]
        if len(words) != 3 or not (words[0].isalpha() and len(words[0]) == 1):
            return None
        if not (words[1].isdigit() and words[2].isdigit()):
            return None
        return (words[0].upper(), int(words[1]), int(words[2]))

    def read_line(self, line: str) -> Tokens | None:
        m = _LINE.search(line)
        return (m.group(1), m.group(2), m.group(3)) if m else None

    def apply(self, inst: dict[str, Any], state: State, move: tuple[str, int, int]) -> State:
        block, f, t = move
        for s in (f, t):
            if not 1 <= s <= STACKS:
                raise Illegal(f"there is no stack {s}")
        if f == t:
            raise Illegal(f"block {block}: from and to are the same stack {f}")
        src = state[f - 1]
        if not src:
            raise Illegal(f"stack {f} is empty")
        if src[-1] != block:
            raise Illegal(f"block {block} is not on top of stack {f} (block {src[-1]} is)")
        s = list(state)
        s[f - 1], s[t - 1] = src[:-1], state[t - 1] + (block,)
        return tuple(s)

    def is_goal(self, inst: dict[str, Any], state: State) -> bool:
        return state == self._goal(inst)

    def progress(self, inst: dict[str, Any], state: State) -> float:
        """Share of the blocks not in their final place at the start that are in it now (0 if worse)."""
        goal = self._goal(inst)
        if state == goal:
            return 1.0
        base = _placed(self.start(inst), goal)
        return max(0.0, (_placed(state, goal) - base) / (inst["n"] - base))

    def solve(self, inst: dict[str, Any]) -> list[list[Any]]:
        return [list(m) for m in _solution(self.start(inst), self._goal(inst))]


@TASKS.register("blocks-world")
class BlocksWorldTask(PuzzleTask):
    """Blocks world on 3 stacks; option n: blocks (2..6), an int, a range "3..5" or a list."""

    name = "blocks-world"
    puzzle = BlocksWorld()
