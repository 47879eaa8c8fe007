"""The task protocol; `Problem` and `Verdict` live in `thinkcost.types` (re-exported here)."""

from __future__ import annotations

from typing import Protocol

from ..types import Problem, Verdict

__all__ = ["Problem", "Task", "Verdict"]


class Task(Protocol):
    name: str

    def problems(self, limit: int | None, seed: int) -> list[Problem]: ...

    def verify(self, problem: Problem, answer_text: str) -> Verdict: ...
