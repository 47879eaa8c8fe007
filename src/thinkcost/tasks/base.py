"""The task protocol; `Problem` and `Verdict` live in `thinkcost.types` (re-exported here)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from ..errors import UserError
from ..types import Problem, Verdict

__all__ = ["Problem", "Task", "Verdict"]


class Task(Protocol):
    name: str

    def problems(self, limit: int | None, seed: int) -> list[Problem]: ...

    def verify(self, problem: Problem, answer_text: str) -> Verdict: ...


def check_limit(task: str, limit: object) -> None:
    """A `--limit` is a positive integer (bool is an int in Python, and is refused)."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        raise UserError(f"{task}: limit={limit!r} must be an integer >= 1")


def seeded_problems(
    task: str, problem: Callable[[int, int], Problem], limit: int | None, seed: int, default: int
) -> list[Problem]:
    """The first `limit` (default `default`) problems of a generated task's sequence for `seed`:
    problem i depends on (seed, i) alone, so a longer list extends a shorter one."""
    limit = default if limit is None else limit
    check_limit(task, limit)
    return [problem(i, seed) for i in range(limit)]
