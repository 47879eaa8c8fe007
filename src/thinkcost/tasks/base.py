"""Problems and the verdicts on answers to them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol


@dataclass(frozen=True)
class Problem:
    """One question. `messages` is the chat prompt; `gold` the reference answer as text."""

    task: str
    id: str
    messages: list[dict[str, str]]
    gold: str
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """Whether an answer is right, and how its value was read (for traceability)."""

    correct: bool
    extracted: str | None
    rule: str  # which extraction rule matched: boxed | answer-is | last-number | none
    detail: str | None = None  # how the verdict was reached (checker used, sandbox status, stderr tail)


class Task(Protocol):
    name: str

    def problems(self, limit: int | None, seed: int) -> list[Problem]: ...

    def verify(self, problem: Problem, answer_text: str) -> Verdict: ...
