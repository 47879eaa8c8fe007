"""River crossing (the actors-and-agents form of "jealous husbands"): n actors a1..an and their
agents A1..An cross a river in a boat that holds k people.

Safety rule, on each bank and in the boat: an actor may not be with another actor's agent unless
the actor's own agent is there too. Capacity follows Shojaee et al. (2025): k = 2 for n <= 3,
k = 3 for n <= 5, k = 4 beyond (with k = 2, n >= 4 has no solution; with k = 3, n >= 6 has none).
The optimum comes from breadth-first search, cached per (n, k); n is capped at 6 to keep that
search quick.
"""

from __future__ import annotations

import contextlib
import random
import re
from functools import lru_cache
from itertools import combinations
from typing import Any

from thinkcost.tasks import TASKS
from thinkcost.tasks.puzzles.base import Illegal, Puzzle, PuzzleTask, bfs, move_format
from thinkcost.tasks.puzzles.moves import Tokens

_NAME = re.compile(r"^([Aa])_?(\d+)$")
_IN_LINE = re.compile(r"\b([Aa])_?(\d+)\b")

State = tuple[frozenset[str], int]  # (people on the left bank, boat side: 0 left, 1 right)


def capacity(n: int) -> int:
    return 2 if n <= 3 else 3 if n <= 5 else 4


def people(n: int) -> list[str]:
    return [f"A{i}" for i in range(1, n + 1)] + [f"a{i}" for i in range(1, n + 1)]


def safe(group: frozenset[str] | set[str]) -> bool:
    """No actor is with another agent unless their own agent is present."""
    agents = {p[1:] for p in group if p[0] == "A"}
    return not agents or all(p[1:] in agents for p in group if p[0] == "a")


def _step(n: int, state: State, boat: frozenset[str]) -> State:
    left, side = state
    everyone = frozenset(people(n))
    here = left if side == 0 else everyone - left
    if not boat:
        raise Illegal("the boat cannot cross empty")
    if len(boat) > capacity(n):
        raise Illegal(f"the boat holds at most {capacity(n)} people, got {len(boat)}")
    missing = sorted(boat - here)
    if missing:
        raise Illegal(f"{missing[0]} is not on the {'left' if side == 0 else 'right'} bank with the boat")
    if not safe(boat):
        raise Illegal("an actor is in the boat with another agent without their own agent")
    new_left = left - boat if side == 0 else left | boat
    for bank, name in ((new_left, "left"), (everyone - new_left, "right")):
        if not safe(bank):
            raise Illegal(f"an actor is left on the {name} bank with another agent without their own agent")
    return (frozenset(new_left), 1 - side)


@lru_cache(maxsize=16)
def _solution(n: int) -> tuple[tuple[str, ...], ...]:
    k = capacity(n)
    everyone = frozenset(people(n))

    def neighbours(s: State):
        left, side = s
        here = sorted(left if side == 0 else everyone - left)
        out = []
        for size in range(1, k + 1):
            for boat in combinations(here, size):
                with contextlib.suppress(Illegal):
                    out.append((boat, _step(n, s, frozenset(boat))))
        return out

    path = bfs((everyone, 0), lambda s: not s[0], neighbours)
    if path is None:  # pragma: no cover - capacity() keeps every n solvable
        raise RuntimeError(f"river crossing n={n} has no solution")
    return tuple(path)


class RiverCrossing(Puzzle):
    name = "river-crossing"
    levels = (2, 6)
    default_n = "2..4"

    def instance(self, n: int, rng: random.Random) -> dict[str, Any]:
        return {"n": n, "k": capacity(n)}

    def prompt(self, inst: dict[str, Any]) -> str:
        n, k = inst["n"], inst["k"]
        actors = ", ".join(f"a{i}" for i in range(1, n + 1))
        agents = ", ".join(f"A{i}" for i in range(1, n + 1))
        return (
            f"River crossing. {n} actors ({actors}) and their {n} agents ({agents}; A1 is the agent of a1, "
            f"and so on) stand on the left bank of a river with a boat that holds at most {k} people.\n\n"
            "Rules:\n1. The boat cannot cross empty; whoever is in it crosses with it.\n"
            "2. Trips alternate: the first goes from the left bank to the right bank, the next back, and so "
            "on.\n3. An actor may never be in the presence of another actor's agent unless the actor's own "
            "agent is also present: this holds on both banks and in the boat (people in the boat are not "
            "on either bank while it crosses).\n\nGoal: everyone on the right bank.\n\n"
            + move_format(
                '[["A1", "a1"], ["A1"], ...]',
                'the list of the people in the boat for one trip, e.g. ["A1", "a1"]',
            )
        )

    def start(self, inst: dict[str, Any]) -> State:
        return (frozenset(people(inst["n"])), 0)

    def read_move(self, inst: dict[str, Any], tokens: Tokens) -> frozenset[str] | None:
        names = []
        for t in tokens:
            m = _NAME.match(t.strip())
            if m is None:
                if t.lower() in ("and", "&", "+"):
                    continue
                return None
            names.append(m.group(1) + str(int(m.group(2))))
        if not names or len(set(names)) != len(names):
            return None
        return frozenset(names)

    def read_line(self, line: str) -> Tokens | None:
        got = [m.group(1) + m.group(2) for m in _IN_LINE.finditer(line)]
        return tuple(got) if got else None

    def apply(self, inst: dict[str, Any], state: State, move: frozenset[str]) -> State:
        unknown = sorted(move - set(people(inst["n"])))
        if unknown:
            raise Illegal(f"there is no {unknown[0]}")
        return _step(inst["n"], state, move)

    def is_goal(self, inst: dict[str, Any], state: State) -> bool:
        return not state[0]

    def progress(self, inst: dict[str, Any], state: State) -> float:
        """Share of the 2n people on the right bank."""
        return 1.0 - len(state[0]) / (2 * inst["n"])

    def solve(self, inst: dict[str, Any]) -> list[list[Any]]:
        return [list(m) for m in _solution(inst["n"])]


@TASKS.register("river-crossing")
class RiverCrossingTask(PuzzleTask):
    """River crossing; option n: actor/agent pairs (2..6), an int, a range "2..4" or a list."""

    name = "river-crossing"
    puzzle = RiverCrossing()
