"""What a strategy is: a generation recipe (what the engine is asked for) plus a decision rule
(how the attempts become one final answer).

Why two halves: strategies that ask for the same samples share them. maj@4, maj@8, bon@8 and
sample@8 at one temperature all read the same stored samples (maj@4 the first four), so
adding a strategy to a run costs only the samples it needs beyond what is stored, and every
k <= n curve comes from one sample set. The recipe's `key` is what the store's `strategy`
column holds; the strategy's `name` is what the user wrote and what report rows are keyed by.

Grammar: one selection strategy, then decoding modifiers joined with "+":
`greedy`, `sample@N`, `maj@K`, `bon@K:SCORER`, `short-M@K`, each optionally followed by
`+bf-cap:B`, `+bf-wait:N`, `+wait-penalty:ALPHA`; a modifier alone applies to greedy
(`bf-cap:256` = `greedy+bf-cap:256`).
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..errors import UserError
from ..registry import Registry
from ..types import Problem, Request
from .vote import Attempt

DEFAULT_WAIT_WORDS = ("Wait", "wait", "Hmm", "Alternatively", "But wait")


@dataclass(frozen=True)
class SamplingOptions:
    """Spec-level knobs a strategy string does not carry."""

    temperature: float = 0.7
    top_p: float = 0.95
    wait_words: tuple[str, ...] = DEFAULT_WAIT_WORDS


@dataclass(frozen=True)
class Recipe:
    """What the engine is asked for, per problem. Equal keys = interchangeable samples."""

    n: int = 1
    temperature: float = 0.0
    top_p: float = 1.0
    stop_after: int | None = None  # short-m@k: m
    think_budget: int | None = None  # bf-cap
    max_waits: int = 0  # bf-wait
    penalty: float = 0.0  # wait-penalty
    penalty_words: tuple[str, ...] = ()
    verbal: bool = False  # prompt asks for a stated confidence
    search: str | None = None  # a step-level search (strategies/search.py): its canonical form

    @property
    def key(self) -> str:
        """Everything that changes what a sample is, and nothing else (not n: sample i is the
        same sample whether 4 or 8 are drawn, except under short-m@k where k shapes the run)."""
        if self.search is not None:  # one row per problem: the search's final answer
            return f"search:{self.search};t={_fmt(self.temperature)},p={_fmt(self.top_p)}"
        if self.temperature == 0:
            head = "greedy"
        else:
            head = f"sample:t={_fmt(self.temperature)},p={_fmt(self.top_p)}"
        if self.stop_after is not None:
            head = f"short-{self.stop_after}@{self.n}:t={_fmt(self.temperature)},p={_fmt(self.top_p)}"
        parts = [head]
        if self.verbal:
            parts.append("verbal")
        if self.think_budget is not None:
            parts.append(f"bf-cap:{self.think_budget}")
        if self.max_waits:
            parts.append(f"bf-wait:{self.max_waits}")
        if self.penalty:
            words = "" if self.penalty_words == DEFAULT_WAIT_WORDS else f"[{_words_hash(self.penalty_words)}]"
            parts.append(f"wait-penalty:{_fmt(self.penalty)}{words}")
        return "+".join(parts)

    def request(
        self,
        problem: Problem,
        *,
        max_new_tokens: int,
        seed: int,
        sample_ids: Sequence[int] | None = None,
        confidence_instruction: str = "",
        answer_marker: str | None = None,
    ) -> Request:
        """The engine request for one problem (all its samples in one call); `answer_marker`
        is the task's own answer form (`Request.answer_marker`)."""
        messages = problem.messages
        if self.verbal and confidence_instruction:
            messages = _append_to_last_user(messages, confidence_instruction)
        ids = tuple(sample_ids) if sample_ids is not None else tuple(range(self.n))
        return Request(
            messages,
            max_new_tokens=max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p if self.temperature > 0 else 1.0,
            seed=problem_seed(seed, problem.id),
            n=len(ids),
            sample_ids=ids,
            stop_after=self.stop_after,
            think_budget=self.think_budget,
            max_waits=self.max_waits,
            penalty=self.penalty,
            penalty_words=self.penalty_words if self.penalty else (),
            answer_marker=answer_marker,
        )


@dataclass(frozen=True)
class Decision:
    """One problem's outcome under a strategy. `score` is the credit in [0, 1]: 0/1 for
    strategies that return one answer, the share of correct samples for sample@n."""

    answer: str | None
    correct: bool
    score: float
    chosen: int | None  # sample id of the attempt returned as the final answer
    used: tuple[int, ...]  # every sample id the strategy paid for (voted down, cancelled, ...)
    answers: int = 1  # final answers returned (sample@N returns N): cost per correct answer divides by
    # score * answers correct answers


# decide(attempts, columns) -> Decision. `attempts` are this recipe's stored samples of one
# problem, sorted by sample id; `columns` holds per-attempt values aligned with them
# ("finish_reason", "mean_logprob", "self_certainty", "answer_text", "rm" scores, ...).
Decide = Callable[[list[Attempt], dict[str, list[Any]]], Decision]


@dataclass(frozen=True)
class Strategy:
    name: str
    recipe: Recipe
    decide: Decide
    scorer: str | None = None  # bon@k's scorer, for the runner (rm: needs a model) and reports
    needs: tuple[str, ...] = field(default=())  # per-attempt scores the decision reads

    @property
    def k(self) -> int:
        return self.recipe.n


# --- registry --------------------------------------------------------------------------------
# A selection strategy registers `parse(text, options) -> Strategy` under its head word (`maj`,
# `short`, ...), with `form=` (how a user writes it: "maj@K") and `help=`; a modifier registers
# `apply(strategy, arg, options) -> Strategy` the same way. The parser, the error messages and
# the CLI/spec help all read these registrations, so a new strategy is its module alone.
SELECTORS = Registry("strategy")
MODIFIERS = Registry("strategy modifier")


def strategy_forms() -> str:
    """Every selector's and modifier's written form, for help texts and errors."""
    sel = ", ".join(SELECTORS.meta(n).get("form", n) for n in _by_registration(SELECTORS))
    mod = ", ".join(MODIFIERS.meta(n).get("form", n + ":X") for n in _by_registration(MODIFIERS))
    return f"{sel}, or a modifier ({mod}) alone or after '+'"


def strategy_help() -> str:
    """One line per registered form with what it does (the `--strategy` help)."""
    lines = []
    for reg in (SELECTORS, MODIFIERS):
        for n in _by_registration(reg):
            meta = reg.meta(n)
            lines.append(
                f"{meta.get('form', n)} ({meta['help']})" if meta.get("help") else meta.get("form", n)
            )
    return "; ".join(lines)


def _by_registration(reg: Registry) -> list[str]:
    """Names in the order their modules list them (`order=` in the metadata), then by name."""
    return sorted(reg.names(), key=lambda n: (reg.meta(n).get("order", 100), n))


def parse_strategy(text: str, options: SamplingOptions | None = None) -> Strategy:
    """`maj@4+wait-penalty:2` -> Strategy; errors name the part and the accepted forms."""
    options = options or SamplingOptions()
    name = text.strip()
    if not name:
        raise UserError(f"strategy: expected a name; forms: {strategy_forms()}")
    parts = [p.strip() for p in name.split("+")]
    first = parts[0]
    if _modifier_name(first) is not None:  # a modifier alone applies to greedy
        parts = ["greedy", *parts]
        first = "greedy"
    strategy = _selector(first, options)
    seen: set[str] = set()
    for part in parts[1:]:
        mod = _modifier_name(part)
        if mod is None:
            raise UserError(
                f"strategy {name!r}: {part!r} is not a modifier; after '+' use one of "
                f"{', '.join(m + ':X' for m in MODIFIERS.names())}"
            )
        if mod in seen:
            raise UserError(f"strategy {name!r}: modifier {mod!r} given twice")
        seen.add(mod)
        arg = part[len(mod) + 1 :] if part.startswith(mod + ":") else None
        strategy = MODIFIERS.get(mod)(strategy, arg, options)
    return replace(strategy, name=canonical_name(strategy.name, parts[1:]))


def canonical_name(head: str, modifiers: Sequence[str]) -> str:
    return "+".join([head, *modifiers])


def _modifier_name(part: str) -> str | None:
    for m in MODIFIERS.names():
        if part == m or part.startswith(m + ":"):
            return m
    return None


def _selector(part: str, options: SamplingOptions) -> Strategy:
    """The registered selector whose head word starts `part` (the longest, so a head that
    extends another never loses to it), then not followed by a letter or digit."""
    heads = sorted(SELECTORS.names(), key=len, reverse=True)
    head = next((h for h in heads if part.startswith(h) and not part[len(h) : len(h) + 1].isalnum()), None)
    if head is None:
        raise UserError(f"unknown strategy {part!r}; expected {strategy_forms()}")
    return SELECTORS.get(head)(part, options)


def positive_int(text: str | None, what: str, strategy: str, low: int = 1) -> int:
    if text is None or not re.fullmatch(r"\d+", text) or int(text) < low:
        raise UserError(f"strategy {strategy!r}: {what} must be an integer >= {low}, got {text!r}")
    return int(text)


def positive_float(text: str | None, what: str, strategy: str) -> float:
    try:
        x = float(text) if text is not None else math.nan
    except ValueError:
        x = math.nan
    if not math.isfinite(x) or x <= 0:
        raise UserError(f"strategy {strategy!r}: {what} must be a number > 0, got {text!r}")
    return x


def problem_seed(seed: int, problem_id: str) -> int:
    """Each problem its own sampling stream, stable across runs, resumes and strategies."""
    return zlib.crc32(f"{seed}:{problem_id}".encode())


def first_attempts(attempts: list[Attempt], k: int) -> list[Attempt]:
    """The samples with ids < k: maj@4 reads samples 0-3 of a set drawn for maj@8."""
    return [a for a in attempts if a.sample < k]


def _fmt(x: float) -> str:
    return f"{x:g}"


def _words_hash(words: Sequence[str]) -> str:
    return f"{zlib.crc32(chr(0).join(words).encode()):08x}"


def _append_to_last_user(messages: list[dict[str, str]], text: str) -> list[dict[str, str]]:
    out = [dict(m) for m in messages]
    for m in reversed(out):
        if m.get("role") == "user":
            m["content"] = f"{m['content']}\n\n{text}"
            return out
    return [*out, {"role": "user", "content": text}]


def describe(strategy: Strategy) -> dict[str, Any]:
    """What the store records about a strategy, so a report can explain every row."""
    r = strategy.recipe
    return {
        "name": strategy.name,
        "recipe": r.key,
        "k": r.n,
        "temperature": r.temperature,
        "top_p": r.top_p,
        "stop_after": r.stop_after,
        "think_budget": r.think_budget,
        "max_waits": r.max_waits,
        "penalty": r.penalty,
        "penalty_words": list(r.penalty_words),
        "scorer": strategy.scorer,
    }


def strategies_from_records(records: list[dict[str, Any]]) -> list[Strategy]:
    """Strategies re-parsed from what a store recorded of them (`describe` + options); stores
    written before strategies existed hold greedy rows only."""
    out = []
    for info in records:
        opts = info.get("options", {})
        options = SamplingOptions(
            temperature=opts.get("temperature", 0.7),
            top_p=opts.get("top_p", 0.95),
            wait_words=tuple(opts.get("wait_words", SamplingOptions().wait_words)),
        )
        s = parse_strategy(info["name"], options)
        if opts.get("confidence") == "verbal":  # as RunSpec.strategies(): the prompt asked for it
            s = replace(s, recipe=replace(s.recipe, verbal=True))
        out.append(s)
    return out or [parse_strategy("greedy")]
