"""What every puzzle task shares: the complexity option, problem generation, and the replay verdict.

A puzzle (hanoi.py, checkers.py, river.py, blocks.py) only knows its rules: how to build an
instance of size n, how to read one move from tokens, how to apply it (or say why it is illegal),
when the goal is reached and how far along a state is. `PuzzleTask` turns that into a task:
problems that span the levels of the `n` option, and a verifier that replays the model's moves.

Why a simulator and not a gold string: a puzzle has many correct solutions (any legal move list
that ends at the goal), and a wrong one says more than "wrong": where it first broke a rule and how
much of the way it got (Shojaee et al. 2025 read collapse off exactly these two numbers).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from thinkcost.errors import UserError
from thinkcost.tasks.base import seeded_problems
from thinkcost.tasks.puzzles.moves import Tokens, read_moves
from thinkcost.types import Problem, Verdict

DEFAULT_LIMIT = 20
SYSTEM_PROMPT = "You are a helpful assistant."
EXTRACTED_CHARS = 2000  # the verdict keeps the start of a very long move list, not all of it


class Illegal(Exception):
    """A move that breaks a rule; the message says which (it lands in the verdict detail)."""


@dataclass(frozen=True)
class Replay:
    """The result of replaying a move list from the start state.

    first_illegal: index (0-based) of the first move that is unreadable or breaks a rule, None
    if all are legal. progress: the best share of the way to the goal reached by the legal prefix
    (0 at the start, 1 at the goal; each puzzle documents its measure)."""

    solved: bool
    moves: int
    legal: int
    first_illegal: int | None
    reason: str | None
    progress: float


class Puzzle:
    """The rules of one puzzle family; subclasses fill the hooks below."""

    name: ClassVar[str]
    levels: ClassVar[tuple[int, int]]  # allowed n, inclusive
    default_n: ClassVar[str]

    def instance(self, n: int, rng: random.Random) -> dict[str, Any]:
        """A JSON-able instance of size n (start, goal, names); `rng` picks the variation."""
        raise NotImplementedError

    def prompt(self, inst: dict[str, Any]) -> str:
        """Rules, start, goal and the exact move format, as the user message."""
        raise NotImplementedError

    def start(self, inst: dict[str, Any]) -> Any:
        raise NotImplementedError

    def read_move(self, inst: dict[str, Any], tokens: Tokens) -> Any | None:
        """Tokens of one list item -> a move, or None when they do not name one."""
        raise NotImplementedError

    def read_line(self, line: str) -> Tokens | None:
        """One prose/numbered line -> tokens for read_move, or None when it names no move."""
        raise NotImplementedError

    def apply(self, inst: dict[str, Any], state: Any, move: Any) -> Any:
        """The state after `move`; raises Illegal(reason) when a rule forbids it."""
        raise NotImplementedError

    def is_goal(self, inst: dict[str, Any], state: Any) -> bool:
        raise NotImplementedError

    def progress(self, inst: dict[str, Any], state: Any) -> float:
        """How far `state` is along the way to the goal, in [0, 1]."""
        raise NotImplementedError

    def solve(self, inst: dict[str, Any]) -> list[list[Any]]:
        """One shortest solution, in the answer format (the gold, and the tests' reference)."""
        raise NotImplementedError

    def optimal_length(self, inst: dict[str, Any]) -> int:
        return len(self.solve(inst))


def replay(puzzle: Puzzle, inst: dict[str, Any], moves: Sequence[Any | None]) -> Replay:
    """Apply `moves` (None = unreadable) from the start; stop at the first illegal one.

    Moves after the goal is reached are still replayed and must be legal: an answer that
    reaches the goal and then walks away from it is not a solution."""
    state = puzzle.start(inst)
    best = puzzle.progress(inst, state)
    for i, move in enumerate(moves):
        if move is None:
            return Replay(False, len(moves), i, i, "unreadable move", best)
        try:
            state = puzzle.apply(inst, state, move)
        except Illegal as e:
            return Replay(False, len(moves), i, i, str(e), best)
        best = max(best, puzzle.progress(inst, state))
    solved = puzzle.is_goal(inst, state)
    return Replay(solved, len(moves), len(moves), None, None if solved else "goal not reached", best)


def parse_levels(value: Any, task: str, bounds: tuple[int, int]) -> list[int]:
    """The `n` option: 5, "5", "2..6" (inclusive range) or a list [2, 4, 6] -> sorted levels."""
    lo, hi = bounds
    what = f"{task} option n={value!r}"
    expected = f"an integer in [{lo}, {hi}], a range like '{lo}..{min(hi, lo + 4)}', or a list of integers"
    if isinstance(value, bool):
        raise UserError(f"{what}: expected {expected}")
    if isinstance(value, int):
        levels = [value]
    elif isinstance(value, str):
        m = re.fullmatch(r"\s*(\d+)\s*(?:(?:\.\.|-)\s*(\d+)\s*)?", value)
        if m is None:
            raise UserError(f"{what}: expected {expected}")
        a = int(m.group(1))
        b = int(m.group(2)) if m.group(2) else a
        if a > b:
            raise UserError(f"{what}: the range is empty ({a} > {b})")
        levels = list(range(a, b + 1))
    elif (
        isinstance(value, (list, tuple))
        and value
        and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    ):
        levels = sorted(set(value))
    else:
        raise UserError(f"{what}: expected {expected}")
    bad = [x for x in levels if not lo <= x <= hi]
    if bad:
        raise UserError(f"{what}: level {bad[0]} is outside [{lo}, {hi}]")
    return levels


class PuzzleTask:
    """A puzzle as a task: problem i has level levels[i % len(levels)], so any limit spreads
    evenly over the levels, and its instance depends only on (task, seed, i, level)."""

    puzzle: ClassVar[Puzzle]
    source = "procedural (offline, seeded)"
    size = "unbounded"
    metric = "accuracy (move-list simulator)"
    answer_type = "move list"
    # The prompt asks for `moves = [...]` at the end: for a model without think tags that line
    # starts the answer (the heuristic split's last-line fallback would drop the list).
    answer_marker = r"\bmoves\s*[:=]\s*\["
    # and when the split is only that heuristic's guess, the move reader (last assignment, last
    # list, last numbered block) reads the whole text: "1. [3, "C", "A"]\n2. ..." then a closing
    # sentence has no marker line, and the last-line fallback would grade the sentence
    grades_whole_text = True

    def __init__(self, n: Any = None) -> None:
        p = self.puzzle
        self.name = p.name
        self.levels = parse_levels(p.default_n if n is None else n, p.name, p.levels)

    def problem(self, index: int, seed: int = 0) -> Problem:
        level = self.levels[index % len(self.levels)]
        inst = self.puzzle.instance(level, random.Random(f"{self.name}:{seed}:{index}:{level}"))
        gold = self.puzzle.solve(inst)
        return Problem(
            task=self.name,
            id=f"{self.name}-n{level}-{index:05d}",
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": self.puzzle.prompt(inst)},
            ],
            gold=json.dumps(gold),
            meta={"level": level, "n": level, "optimal_length": len(gold), "instance": inst},
        )

    def problems(self, limit: int | None = None, seed: int = 0) -> list[Problem]:
        """The first `limit` problems (default 20) for `seed`."""
        return seeded_problems(self.name, self.problem, limit, seed, DEFAULT_LIMIT)

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """Replay the answer's move list; detail (JSON) = moves, first illegal index, progress."""
        return verify_moves(
            self.puzzle, problem.meta["instance"], answer_text, problem.meta.get("optimal_length")
        )


def verify_moves(
    puzzle: Puzzle, inst: dict[str, Any], answer_text: str, optimal: int | None = None
) -> Verdict:
    """The verdict of one answer: parse, replay, and record where it broke and how far it got."""
    parsed = read_moves(answer_text, puzzle.read_line)
    moves = [None if t is None else puzzle.read_move(inst, t) for t in parsed.moves]
    r = Replay(False, 0, 0, None, "no move list found", 0.0) if not moves else replay(puzzle, inst, moves)
    detail = {
        "solved": r.solved,
        "moves": r.moves,
        "legal": r.legal,
        "first_illegal": r.first_illegal,
        "reason": r.reason,
        "progress": round(r.progress, 4),
        "optimal": optimal,
        "shape": parsed.shape,
    }
    extracted = json.dumps([list(t) if t is not None else None for t in parsed.moves]) if moves else None
    if extracted is not None and len(extracted) > EXTRACTED_CHARS:
        extracted = extracted[:EXTRACTED_CHARS] + "..."
    return Verdict(r.solved, extracted, "move-list" if moves else "none", json.dumps(detail))


def move_format(example: str, item: str) -> str:
    """The answer-format paragraph every puzzle prompt ends with (one wording, so results compare)."""
    return (
        f"Write each move as {item}. Think it through, then end your answer with the complete "
        f"list of moves, in order, on one line in exactly this form:\nmoves = {example}"
    )


def bfs(start: Any, goal: Callable[[Any], bool], neighbours: Callable[[Any], Sequence[tuple[Any, Any]]]):
    """A shortest move list from `start` to a goal state (None if unreachable): breadth-first
    search over hashable states; `neighbours(s)` -> [(move, next_state)]. The reference solver."""
    from collections import deque

    if goal(start):
        return []
    parent: dict[Any, tuple[Any, Any] | None] = {start: None}
    queue = deque([start])
    while queue:
        s = queue.popleft()
        for move, t in neighbours(s):
            if t in parent:
                continue
            parent[t] = (s, move)
            if goal(t):
                path = []
                cur = t
                while parent[cur] is not None:
                    prev, mv = parent[cur]
                    path.append(mv)
                    cur = prev
                return path[::-1]
            queue.append(t)
    return None
