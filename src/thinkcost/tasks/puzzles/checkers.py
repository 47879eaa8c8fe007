"""Checker jumping: n red and n blue checkers swap sides on a row of 2n + 1 squares.

Every solution has the same length, (n + 1)^2 - 1 moves: each red must pass each blue exactly
once, only by a jump (n^2 jumps of 2 squares), and the remaining displacement of 2n(n + 1)
squares is covered by 2n slides. So a legal move list that reaches the goal is also optimal.
"""

from __future__ import annotations

import random
import re
from functools import lru_cache
from typing import Any

from thinkcost.tasks import TASKS
from thinkcost.tasks.puzzles.base import Illegal, Puzzle, PuzzleTask, move_format
from thinkcost.tasks.puzzles.moves import Tokens

_FILLER = {"move", "from", "to", "position", "square", "pos", "->", "\u2192", "jump", "slide", "checker"}
_LINE = re.compile(
    r"\b(R|B|red|blue)\b\s*(?:checker\s*)?[:,]?\s*(?:from\s*)?(?:position\s*|square\s*)?(\d+)\s*"
    r"(?:to|->|\u2192|-|,)\s*(?:position\s*|square\s*)?(\d+)",
    re.IGNORECASE,
)


def _start(n: int, red_left: bool) -> str:
    left, right = ("R", "B") if red_left else ("B", "R")
    return left * n + "_" + right * n


def _goal(n: int, red_left: bool) -> str:
    return _start(n, not red_left)


def _legal_moves(state: str, red_left: bool) -> list[tuple[str, int, int]]:
    out = []
    for i, c in enumerate(state):
        if c == "_":
            continue
        step = 1 if (c == "R") == red_left else -1  # each colour moves only towards the other side
        j = i + step
        if 0 <= j < len(state) and state[j] == "_":
            out.append((c, i, j))
        k = i + 2 * step
        if 0 <= k < len(state) and state[k] == "_" and state[j] not in ("_", c):
            out.append((c, i, k))
    return out


def _move(state: str, f: int, t: int) -> str:
    s = list(state)
    s[f], s[t] = "_", s[f]
    return "".join(s)


@lru_cache(maxsize=32)
def _solution(n: int, red_left: bool) -> tuple[tuple[str, int, int], ...]:
    """A solution by depth-first search with dead-state memo (every solution is optimal, see above)."""
    goal, dead = _goal(n, red_left), set()
    path: list[tuple[str, int, int]] = []

    def dfs(s: str) -> bool:
        if s == goal:
            return True
        if s in dead:
            return False
        for c, f, t in sorted(_legal_moves(s, red_left), key=lambda m: -abs(m[2] - m[1])):  # jumps first
            path.append((c, f, t))
            if dfs(_move(s, f, t)):
                return True
            path.pop()
        dead.add(s)
        return False

    if not dfs(_start(n, red_left)):  # pragma: no cover - the puzzle is solvable for every n
        raise RuntimeError(f"checker jumping n={n} has no solution")
    return tuple(path)


class CheckerJumping(Puzzle):
    name = "checker-jumping"
    levels = (1, 10)
    default_n = "2..5"

    def instance(self, n: int, rng: random.Random) -> dict[str, Any]:
        return {"n": n, "red_left": rng.random() < 0.5}

    def prompt(self, inst: dict[str, Any]) -> str:
        n, red_left = inst["n"], inst["red_left"]
        start, goal = _start(n, red_left), _goal(n, red_left)
        size = 2 * n + 1
        lc, rc = ("red", "blue") if red_left else ("blue", "red")
        return (
            f"Checker jumping. A row of {size} squares, numbered 0 to {size - 1} from left to right, holds "
            f"{n} red checker(s) (R) and {n} blue checker(s) (B) with one empty square (_):\n"
            f"start: {' '.join(start)}\ngoal:  {' '.join(goal)}\n\nRules:\n"
            f"1. {lc.capitalize()} checkers move only to the right, {rc} checkers only to the left.\n"
            "2. A checker may slide one square forward into the empty square.\n"
            "3. A checker may jump forward over exactly one checker of the other colour into the empty "
            "square.\n4. One checker moves at a time; checkers never move backwards or jump their own "
            "colour.\n\nGoal: swap the two colours, as shown in the goal row.\n\n"
            + move_format(
                '[["R", 0, 1], ["B", 2, 0], ...]',
                '[colour, from_square, to_square], e.g. ["R", 0, 1] moves the red checker on square 0 to square 1',
            )
        )

    def start(self, inst: dict[str, Any]) -> str:
        return _start(inst["n"], inst["red_left"])

    def read_move(self, inst: dict[str, Any], tokens: Tokens) -> tuple[str | None, int, int] | None:
        words = [t for t in tokens if t.lower() not in _FILLER]
        colour = None
        if words and words[0].lower() in ("r", "b", "red", "blue"):
            colour = words.pop(0)[0].upper()
        if len(words) != 2 or not all(w.isdigit() for w in words):
            return None
        return (colour, int(words[0]), int(words[1]))

    def read_line(self, line: str) -> Tokens | None:
        m = _LINE.search(line)
        return (m.group(1), m.group(2), m.group(3)) if m else None

    def apply(self, inst: dict[str, Any], state: str, move: tuple[str | None, int, int]) -> str:
        colour, f, t = move
        if not (0 <= f < len(state) and 0 <= t < len(state)):
            raise Illegal(f"square {f if not 0 <= f < len(state) else t} is off the board")
        if state[f] == "_":
            raise Illegal(f"square {f} is empty")
        if colour is not None and state[f] != colour:
            raise Illegal(f"square {f} holds {state[f]}, not {colour}")
        if (state[f], f, t) not in _legal_moves(state, inst["red_left"]):
            raise Illegal(f"{state[f]} cannot move from {f} to {t}")
        return _move(state, f, t)

    def is_goal(self, inst: dict[str, Any], state: str) -> bool:
        return state == _goal(inst["n"], inst["red_left"])

    def progress(self, inst: dict[str, Any], state: str) -> float:
        """Share of the total forward displacement, 2n(n + 1) squares, that the checkers have made."""
        n, red_left = inst["n"], inst["red_left"]
        start = _start(n, red_left)
        done = 0
        for colour in "RB":
            now = sorted(i for i, c in enumerate(state) if c == colour)
            then = sorted(i for i, c in enumerate(start) if c == colour)
            done += sum(abs(a - b) for a, b in zip(now, then, strict=True))
        return done / (2 * n * (n + 1))

    def solve(self, inst: dict[str, Any]) -> list[list[Any]]:
        return [list(m) for m in _solution(inst["n"], inst["red_left"])]


@TASKS.register("checker-jumping")
class CheckerJumpingTask(PuzzleTask):
    """Checker jumping; option n: checkers per colour (1..10), an int, a range "2..6" or a list."""

    name = "checker-jumping"
    puzzle = CheckerJumping()
