"""Multi-turn tool-use episodes: the runner's loop for tasks that are answered by acting.

A tool episode does not fit one `engine.generate` call: the model calls a tool, reads its
result, and goes on. Here every live episode of a variant advances one turn per `generate`
call (all of them batched together), tool calls are read from each turn's text
(`tasks.tools.calls`), run in the task's environment, and their results appended as `tool`
messages. The tool schemas travel in the prompt messages (a `tools` key that
`reasoning.render_prompt` hands to the chat template as `tools=`; the openai engine sends
them as the request's `tools` field), so every engine speaks the model's native format.

An episode ends with a final answer (a turn without a call), at the turn limit, when a turn
is cut by the token cap without a call, when the engine fails, or, with `on_error="stop"`, at
the first malformed call, unknown tool or bad arguments (with `continue`, the default, the
error goes back to the model as the tool's answer and it may retry). None of these raise.

Each finished episode is committed as ONE generations row (so resume skips it): `text` is
the transcript (every turn's output with the tool responses between them), token counts,
seconds and cost are summed over turns (prompt tokens too: each turn re-reads the whole
conversation), and `verdict_detail` is JSON with the outcome, the calls and their results.
A call turn's reasoning tokens are the tokens before its first call: the call is an action,
not thinking. Episodes still running when a crash hits are drawn again on the rerun.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from dataclasses import dataclass, field, replace
from typing import Any

from rich.markup import escape

from .errors import UserError
from .reasoning import format_of
from .store import Store
from .strategies.confidence import CONFIDENCE_INSTRUCTION
from .tasks.tools.calls import Parsed, parse_calls
from .types import Completion, Problem, Request, Verdict

MALFORMED_REPLY = (
    "Your tool call could not be read. Write each call as <tool_call>\n"
    '{"name": <tool name>, "arguments": <JSON object>}\n</tool_call>'
)
RESULT_CHARS = 300  # of each tool result kept in the verdict detail


@dataclass
class Episode:
    """One (problem, sample) conversation while it runs."""

    item: int  # index of its work item
    sample: int
    problem: Problem
    request: Request
    messages: list[dict[str, Any]]
    turns: list[Completion] = field(default_factory=list)
    reasoning: list[int] = field(default_factory=list)  # reasoning tokens per turn (our split)
    answer_tokens: list[int] = field(default_factory=list)  # the rest of each turn's own tokens
    pieces: list[str] = field(default_factory=list)  # transcript parts
    calls: list[dict[str, Any]] = field(default_factory=list)
    errors: Counter = field(default_factory=Counter)
    forms: Counter = field(default_factory=Counter)
    outcome: str | None = None  # set when the episode ends
    answer: str = ""
    verdict: Verdict | None = None


def _tool_calls_field(turn: int, calls) -> list[dict[str, Any]]:
    return [
        {
            "id": f"call_{turn}_{k}",
            "type": "function",
            "function": {"name": str(c.name), "arguments": json.dumps(c.arguments)},
        }
        for k, c in enumerate(calls)
    ]


def _count(engine: Any, text: str, completion: Completion) -> int:
    """Tokens of `text` (a prefix of a turn's output) with the engine's tokenizer when it has
    one, else by the character share of the turn's token count."""
    tok = getattr(engine, "tok", None)
    if not text:
        return 0
    if tok is not None and callable(getattr(tok, "encode", None)):
        try:
            n = len(tok.encode(text, add_special_tokens=False))
        except TypeError:
            n = len(tok.encode(text))
        return min(n, completion.completion_tokens)
    full = completion.text or ""
    return round(completion.completion_tokens * len(text) / len(full)) if full else 0


def _call_text(c: Completion) -> str:
    """Where a turn's calls are: after the reasoning when the model marks it (think tags,
    harmony), else anywhere in the text (the `none` split is only a guess)."""
    return c.text if format_of(c.reasoning_format).heuristic else c.answer_text


def _reasoning_before_call(engine: Any, c: Completion, parsed: Parsed) -> int:
    if not format_of(c.reasoning_format).heuristic:
        return c.reasoning_tokens
    text = c.text or ""
    starts = [text.find(x.raw) for x in parsed.calls if x.raw and x.raw in text]
    tag = text.lower().find("<tool_call")
    cut = min([p for p in [*starts, tag] if p >= 0], default=len(text))
    return _count(engine, text[:cut].rstrip(), c)


def step(task: Any, engine: Any, e: Episode, c: Completion, turn: int) -> None:
    """Fold one turn's completion into its episode: run its calls or end the episode."""
    e.turns.append(c)
    e.pieces.append(c.text)
    if c.finish_reason == "error":
        e.reasoning.append(0)
        e.answer_tokens.append(0)
        e.outcome, e.verdict = "error", Verdict(False, None, "failed", detail=None)
        return
    parsed = parse_calls(_call_text(c))
    if parsed.form:
        e.forms[parsed.form] += 1
    single = getattr(task, "single_turn", False)
    if not parsed.calls and not parsed.malformed:  # a final answer (or a turn cut short)
        e.reasoning.append(c.reasoning_tokens)
        e.answer_tokens.append(c.answer_tokens)
        e.answer = c.answer_text
        if single:
            e.outcome = "no-call"
            e.verdict = task.verify_calls(e.problem, [])
        else:
            e.outcome = "answer" if c.finish_reason != "length" else "length"
            e.verdict = task.verify(e.problem, c.answer_text)
        return
    e.reasoning.append(_reasoning_before_call(engine, c, parsed))
    # the call is the turn's output: its tokens are answer tokens (an EOS is neither, as in engines)
    e.answer_tokens.append(c.answer_tokens + c.reasoning_tokens - e.reasoning[-1])
    if single:  # BFCL-style: the first turn's calls are the answer, nothing is executed
        for x in parsed.calls:
            e.calls.append({"turn": turn, "name": x.name, "arguments": x.arguments})
        if parsed.malformed:
            e.errors["malformed-call"] += len(parsed.malformed)
        e.outcome = "called" if not parsed.malformed else "malformed-call"
        e.verdict = task.verify_calls(e.problem, parsed.calls if not parsed.malformed else None)
        return
    msg: dict[str, Any] = {"role": "assistant", "content": c.text}
    if parsed.calls:
        msg["tool_calls"] = _tool_calls_field(turn, parsed.calls)
    replies: list[dict[str, Any]] = []
    first_error = None
    for k, x in enumerate(parsed.calls):
        r = task.execute(e.problem, x)
        e.calls.append(
            {
                "turn": turn,
                "name": x.name,
                "arguments": x.arguments,
                "error": r.error,
                "result": r.content[:RESULT_CHARS],
            }
        )
        if r.error:
            e.errors[r.error] += 1
            first_error = first_error or r.error
        replies.append(
            {"role": "tool", "tool_call_id": f"call_{turn}_{k}", "name": str(x.name), "content": r.content}
        )
        e.pieces.append(f"\n<tool_response>\n{r.content}\n</tool_response>\n")
    if parsed.malformed:
        e.errors["malformed-call"] += len(parsed.malformed)
        first_error = first_error or "malformed-call"
        replies.append({"role": "user", "content": MALFORMED_REPLY})
        e.pieces.append(f"\n<user>\n{MALFORMED_REPLY}\n</user>\n")
    e.messages = [*e.messages, msg, *replies]
    if first_error and getattr(task, "on_error", "continue") == "stop":
        e.outcome = first_error
        e.verdict = Verdict(False, None, "none")


def summed(e: Episode) -> Completion:
    """The episode as one completion: the transcript, with tokens and seconds over all turns."""
    t = e.turns
    last = t[-1]
    completion = sum(c.completion_tokens for c in t)
    reasoning = min(sum(e.reasoning), completion)
    lps = [x for c in t for x in (c.logprobs or [])]
    ids = [x for c in t for x in (c.token_ids or [])] if all(c.token_ids is not None for c in t) else None
    certs = [c.self_certainty for c in t if c.self_certainty is not None]
    return Completion(
        text="".join(e.pieces),
        reasoning_text="\n".join(c.reasoning_text for c in t if c.reasoning_text),
        answer_text=e.answer,
        prompt_tokens=sum(c.prompt_tokens for c in t),
        completion_tokens=completion,
        reasoning_tokens=reasoning,
        answer_tokens=min(sum(e.answer_tokens), completion - reasoning),
        finish_reason="error" if e.outcome == "error" else last.finish_reason,
        latency_s=sum(c.latency_s for c in t),
        ttft_s=t[0].ttft_s,
        cost_s=sum(c.cost_s for c in t),
        think_unclosed=last.think_unclosed,
        logprobs=lps or None,
        forced_tokens=sum(c.forced_tokens for c in t),
        interventions=sum(c.interventions for c in t),
        self_certainty=sum(certs) / len(certs) if certs else None,
        error=next((c.error for c in t if c.error), None),
        attempts=sum(c.attempts for c in t),
        reasoning_format=t[0].reasoning_format,
        answer_logprobs=last.answer_logprobs if e.answer else None,
        token_ids=ids,
        token_source=t[0].token_source,
    )


def detail(e: Episode) -> str:
    """The verdict detail: how the episode went, as JSON (reports and debugging read it)."""
    v = e.verdict
    return json.dumps(
        {
            "outcome": e.outcome,
            "turns": len(e.turns),
            "n_calls": len(e.calls),
            "calls": e.calls,
            "call_errors": dict(e.errors),
            "forms": dict(e.forms),
            "tokens_per_turn": [c.completion_tokens for c in e.turns],
            **({"check": v.detail} if v is not None and v.detail else {}),
        },
        default=str,
    )


def run(task: Any, engine: Any, episodes: list[Episode], on_done) -> None:
    """Advance all episodes turn by turn (one batched `generate` per turn) until each ends;
    `on_done(episode)` fires as each one ends, so it is committed at once."""
    max_turns = 1 if getattr(task, "single_turn", False) else task.max_turns
    live = list(episodes)
    for turn in range(max_turns):
        if not live:
            return
        reqs = [replace(e.request, prompt_messages=e.messages) for e in live]
        outs = engine.generate(reqs)
        for e, c in zip(live, outs, strict=True):
            step(task, engine, e, c, turn)
            if e.outcome is not None:
                on_done(e)
        live = [e for e in live if e.outcome is None]
    for e in live:
        e.outcome, e.verdict = "turn-limit", Verdict(False, None, "none")
        on_done(e)


def start(items, spec, task) -> list[Episode]:
    """One episode per (work item, sample id) still missing from the store."""
    out = []
    for i, it in enumerate(items):
        if it.recipe.stop_after is not None:
            raise UserError(
                f"strategy short-m@k cannot run on the episodic task {task.name!r} "
                "(its samples stop each other mid-episode); use greedy, sample@N or maj@K"
            )
        if getattr(it.recipe, "search", None) is not None:
            raise UserError(f"step-level search strategies cannot run on the episodic task {task.name!r}")
        for sid in it.sample_ids:
            req = it.recipe.request(
                it.problem,
                max_new_tokens=spec.max_new_tokens,
                seed=spec.seed,
                sample_ids=(sid,),
                confidence_instruction=CONFIDENCE_INSTRUCTION,
            )
            out.append(Episode(i, sid, it.problem, req, list(req.prompt_messages)))
    return out


@dataclass
class Tally:
    """What one variant's commits add up to: rows newly stored (the return value of a
    generation branch), the tokens/seconds behind the bar's tok/s, and the failures to report
    once at the end (stored with their reason, so a rerun retries them)."""

    progress: Any
    bar: Any
    n: int = 0
    tokens: int = 0
    secs: float = 0.0
    failed: list[str] = field(default_factory=list)

    def add(self, c: Completion, new: bool, where: str) -> None:
        if c.finish_reason == "error":
            self.failed.append(f"{where}: {c.error}")
        self.tokens += c.completion_tokens
        self.secs += c.cost_s
        if new:
            self.n += 1
            self.progress.update(self.bar, advance=1, tps=f"{self.tokens / max(self.secs, 1e-9):.1f} tok/s")

    def report(self, variant: str, what: str) -> int:
        if self.failed:
            self.progress.console.print(
                f"[yellow]{escape(variant)}: {len(self.failed)} {what}[/] (stored with their reason; "
                f"rerun the same command to retry them); first: {escape(self.failed[0])}"
            )
        return self.n


def generate_episodes(spec, task, items, variant, engine, store: Store, run_id, progress, bar) -> int:
    """The runner's branch for episodic tasks: run the items' episodes, one row per episode."""
    episodes = start(items, spec, task)
    call_ids = [uuid.uuid4().hex[:16] for _ in items]
    tally = Tally(progress, bar)

    def commit(e: Episode) -> None:
        it = items[e.item]
        c = summed(e)
        v = e.verdict or Verdict(False, None, "none")
        v = Verdict(v.correct, v.extracted, v.rule, detail=detail(e))
        new = store.put_generation(
            run_id,
            variant,
            e.problem.id,
            it.recipe.key,
            e.sample,
            c,
            v,
            spec.batch_size,
            call_id=call_ids[e.item],
        )
        tally.add(c, new, f"{e.problem.id}#{e.sample}")

    run(task, engine, episodes, commit)
    return tally.report(variant, "episode(s) failed in the engine")
