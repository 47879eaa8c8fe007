"""Tower of Hanoi with n disks: the optimal solution has 2^n - 1 moves, so n is a clean knob."""

from __future__ import annotations

import random
import re
from typing import Any

from thinkcost.tasks import TASKS
from thinkcost.tasks.puzzles.base import Illegal, Puzzle, PuzzleTask, move_format
from thinkcost.tasks.puzzles.moves import Tokens

PEGS = ("A", "B", "C")
_FILLER = {"move", "disk", "from", "to", "peg", "->", "\u2192", "on", "onto"}
_WITH_DISK = re.compile(
    r"(?:disk\s*)?(\d+)\s*[:,]?\s*(?:from\s*)?(?:peg\s*)?\b([ABC])\b\s*(?:to|->|\u2192|-|,)?\s*(?:peg\s*)?\b([ABC])\b",
    re.IGNORECASE,
)
_PEGS_ONLY = re.compile(r"\b([ABC])\b\s*(?:to|->|\u2192)\s*(?:peg\s*)?\b([ABC])\b")

State = tuple[tuple[int, ...], ...]  # per peg, disks bottom to top


def distance_to_goal(state: State, target: int) -> int:
    """Fewest moves from any legal state to all disks on `target` (exact): from the largest disk
    down, a disk off the current target costs 2^(d-1) and moves the target to the third peg."""
    where = {d: p for p, peg in enumerate(state) for d in peg}
    moves, t = 0, target
    for d in sorted(where, reverse=True):
        p = where[d]
        if p != t:
            moves += 2 ** (d - 1)
            t = 3 - p - t
    return moves


def _solve(n: int, src: int, dst: int, out: list[tuple[int, int, int]]) -> None:
    if n == 0:
        return
    via = 3 - src - dst
    _solve(n - 1, src, via, out)
    out.append((n, src, dst))
    _solve(n - 1, via, dst, out)


class Hanoi(Puzzle):
    name = "hanoi"
    levels = (1, 12)
    default_n = "3..6"

    def instance(self, n: int, rng: random.Random) -> dict[str, Any]:
        src, dst = rng.sample(range(3), 2)  # which pegs start and end vary, the puzzle does not
        return {"n": n, "source": src, "target": dst}

    def prompt(self, inst: dict[str, Any]) -> str:
        n, src, dst = inst["n"], PEGS[inst["source"]], PEGS[inst["target"]]
        disks = "disk 1" if n == 1 else f"{n} disks numbered 1 (smallest) to {n} (largest)"
        return (
            f"Tower of Hanoi. There are three pegs, A, B and C, and {disks}. At the start all disks "
            f"are stacked on peg {src}, largest at the bottom and smallest on top; the other pegs are "
            "empty.\n\nRules:\n1. Move one disk at a time.\n2. Only the top disk of a peg can be moved.\n"
            "3. A disk may never be placed on top of a smaller disk.\n\n"
            f"Goal: move all {n} disk(s) to peg {dst}, in the same order (largest at the bottom).\n\n"
            + move_format(
                '[[1, "A", "C"], [2, "A", "B"], ...]',
                f'[disk, from_peg, to_peg], e.g. [1, "{src}", "{dst}"] moves disk 1 from peg {src} to peg {dst}',
            )
        )

    def start(self, inst: dict[str, Any]) -> State:
        pegs: list[tuple[int, ...]] = [(), (), ()]
        pegs[inst["source"]] = tuple(range(inst["n"], 0, -1))
        return tuple(pegs)

    def read_move(self, inst: dict[str, Any], tokens: Tokens) -> tuple[int | None, int, int] | None:
        words = [t for t in tokens if t.lower() not in _FILLER]
        if len(words) == 3 and words[0].isdigit():
            disk, rest = int(words[0]), words[1:]
        elif len(words) == 2:
            disk, rest = None, words  # [from, to]: the disk is whatever is on top
        else:
            return None
        pegs = [r.upper() for r in rest]
        if any(p not in PEGS for p in pegs):
            return None
        return (disk, PEGS.index(pegs[0]), PEGS.index(pegs[1]))

    def read_line(self, line: str) -> Tokens | None:
        m = _WITH_DISK.search(line)
        if m:
            return (m.group(1), m.group(2), m.group(3))
        m = _PEGS_ONLY.search(line)
        return (m.group(1), m.group(2)) if m else None

    def apply(self, inst: dict[str, Any], state: State, move: tuple[int | None, int, int]) -> State:
        disk, f, t = move
        label = f"disk {disk}" if disk is not None else "top disk"
        if f == t:
            raise Illegal(f"{label}: from and to are the same peg {PEGS[f]}")
        if not state[f]:
            raise Illegal(f"peg {PEGS[f]} is empty")
        top = state[f][-1]
        if disk is not None and top != disk:
            raise Illegal(f"disk {disk} is not on top of peg {PEGS[f]} (disk {top} is)")
        if state[t] and state[t][-1] < top:
            raise Illegal(f"disk {top} cannot go on smaller disk {state[t][-1]} (peg {PEGS[t]})")
        pegs = list(state)
        pegs[f] = state[f][:-1]
        pegs[t] = state[t] + (top,)
        return tuple(pegs)

    def is_goal(self, inst: dict[str, Any], state: State) -> bool:
        return len(state[inst["target"]]) == inst["n"]

    def progress(self, inst: dict[str, Any], state: State) -> float:
        """1 - (exact moves still needed) / (2^n - 1)."""
        return 1.0 - distance_to_goal(state, inst["target"]) / (2 ** inst["n"] - 1)

    def solve(self, inst: dict[str, Any]) -> list[list[Any]]:
        out: list[tuple[int, int, int]] = []
        _solve(inst["n"], inst["source"], inst["target"], out)
        return [[d, PEGS[f], PEGS[t]] for d, f, t in out]


@TASKS.register("hanoi")
class HanoiTask(PuzzleTask):
    """Tower of Hanoi; option n: disks (1..12), an int, a range "2..6" or a list."""

    name = "hanoi"
    puzzle = Hanoi()
