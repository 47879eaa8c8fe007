"""What every engine takes and returns. Token counts always come from the model's own
tokenizer, so reasoning-token figures are comparable across variants of one model."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"


@dataclass(frozen=True)
class Request:
    """One prompt to complete; decoding knobs validated once, here."""

    prompt_messages: list[dict[str, str]]
    max_new_tokens: int = 512
    temperature: float = 0.0
    top_p: float = 1.0
    seed: int = 0
    n: int = 1
    stop: tuple[str, ...] = ()
    think_budget: int | None = None

    def __post_init__(self) -> None:
        if not self.prompt_messages:
            raise ValueError("Request.prompt_messages: expected at least one message")
        if self.max_new_tokens < 1:
            raise ValueError(f"Request.max_new_tokens: expected >= 1, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"Request.temperature: expected >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"Request.top_p: expected in (0, 1], got {self.top_p}")
        if self.n < 1:
            raise ValueError(f"Request.n: expected >= 1, got {self.n}")


@dataclass
class Completion:
    """One generated sequence with its cost. `cost_s` is this sequence's share of the batch's
    wall time (shares add up to the wall time), `latency_s` the time until it finished."""

    text: str
    reasoning_text: str
    answer_text: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    finish_reason: str  # "stop" | "length"
    latency_s: float
    ttft_s: float
    cost_s: float
    think_unclosed: bool = False
    logprobs: list[float] | None = field(default=None, repr=False)


class Engine(Protocol):
    """A backend that turns requests into completions (batched as it sees fit)."""

    name: str

    def generate(self, requests: list[Request]) -> list[Completion]: ...

    def close(self) -> None: ...
