"""The record types every layer shares, at the ground floor: what an engine is asked
(`Request`) and returns (`Completion`), a benchmark question (`Problem`) and the grade of an
answer (`Verdict`). Nothing heavy is imported here, so opening a store or building a report
never loads torch, transformers or httpx. Token counts in a `Completion` always come from the
model's own tokenizer, so reasoning-token figures are comparable across variants of one model."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .reasoning import THINK_CLOSE, THINK_OPEN

__all__ = ["THINK_CLOSE", "THINK_OPEN", "Completion", "OnComplete", "Problem", "Request", "Verdict"]


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
    # Which sample indices to draw (default 0..n-1). Sample i is seeded by (seed, i) alone, so a
    # resumed run can draw only the missing samples and still get the same ones.
    sample_ids: tuple[int, ...] | None = None
    # short-m@k: once this many of this request's samples have finished, the engine stops
    # decoding the rest; they come back with finish_reason "cancelled" and their partial tokens.
    stop_after: int | None = None
    # bf-cap: after this many reasoning tokens the end of thinking is forced (think-close token
    # for models that have one, then `force_text`), and at most `answer_budget` more tokens follow.
    think_budget: int | None = None
    answer_budget: int = 64
    force_text: str = "\n\nFinal answer:"
    # bf-wait: up to `max_waits` times, an attempt to end the reasoning (think-close, or EOS for
    # models without think tags) is replaced by `wait_text` and decoding continues.
    max_waits: int = 0
    wait_text: str = "\nWait"
    # wait-penalty: subtracted from the logits of each of `penalty_words`: a one-token form in
    # every context, a later token of a multi-token form only right after its earlier tokens.
    penalty: float = 0.0
    penalty_words: tuple[str, ...] = ()
    # The task's own answer form (a regex, e.g. `moves\s*=\s*\[`): for models without think
    # tags it marks where the answer starts, like "Final answer:" (thinkcost.reasoning, rule 3).
    answer_marker: str | None = None

    @property
    def samples(self) -> tuple[int, ...]:
        return self.sample_ids if self.sample_ids is not None else tuple(range(self.n))

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
        if self.sample_ids is not None and (
            not self.sample_ids
            or len(set(self.sample_ids)) != len(self.sample_ids)
            or min(self.sample_ids) < 0
        ):
            raise ValueError(f"Request.sample_ids: expected distinct ids >= 0, got {self.sample_ids}")
        if self.stop_after is not None and not 1 <= self.stop_after <= len(self.samples):
            raise ValueError(
                f"Request.stop_after: expected 1..{len(self.samples)} (the samples drawn), got {self.stop_after}"
            )
        if self.think_budget is not None and self.think_budget < 1:
            raise ValueError(f"Request.think_budget: expected >= 1, got {self.think_budget}")
        if self.answer_budget < 1:
            raise ValueError(f"Request.answer_budget: expected >= 1, got {self.answer_budget}")
        if self.max_waits < 0:
            raise ValueError(f"Request.max_waits: expected >= 0, got {self.max_waits}")
        if self.penalty < 0:
            raise ValueError(f"Request.penalty: expected >= 0, got {self.penalty}")


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
    finish_reason: str  # "stop" | "length" | "cancelled" (short-m@k stopped it) | "error"
    latency_s: float
    ttft_s: float
    cost_s: float
    think_unclosed: bool = False
    logprobs: list[float] | None = field(default=None, repr=False)  # model-chosen tokens only
    forced_tokens: int = 0  # tokens the engine inserted (budget forcing); included in completion_tokens
    interventions: int = 0  # forced ends of thinking + "Wait" insertions
    # Mean over model-chosen tokens of KL(uniform || p) = -log V - mean_j log p_j (Kang et al. 2025).
    self_certainty: float | None = None
    # finish_reason "error": why the request finally failed (after retries). Stored, never dropped;
    # a rerun draws such samples again.
    error: str | None = None
    attempts: int = 1  # HTTP attempts it took (server engines); 1 for in-process engines
    # The reasoning format that split this text (`thinkcost.reasoning`); "none" = heuristic split.
    reasoning_format: str = "none"
    # Logprobs of the model-chosen tokens of the answer only (its own token positions: no EOS,
    # no forced tokens, nothing of the reasoning); None when the engine gives no logprobs.
    answer_logprobs: list[float] | None = field(default=None, repr=False)
    # The generated token ids (EOS and tokens after a stop string excluded), when the engine
    # sees them: repro compares ids, never re-tokenized text.
    token_ids: list[int] | None = field(default=None, repr=False)
    # Where the token counts came from: "tokenizer" (the model's own, in or out of process),
    # "usage" (the server's figures), "deltas" (one per streamed chunk).
    token_source: str = "tokenizer"


# on_complete(request_index, sample_id, completion): called the moment a sequence finishes
# (or is cancelled), so the caller can commit it before the rest of the batch is done.
OnComplete = Callable[[int, int, "Completion"], None]
