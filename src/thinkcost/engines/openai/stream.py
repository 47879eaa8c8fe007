"""One SSE chat-completions stream, parsed and turned into the parts of a Completion.

Pure: no I/O, no clock, no httpx, so every server quirk it handles (multi-line events, comments,
error objects, streams cut short, reasoning fields under either name) is unit tested on literal
lines, and a recorded stream can be replayed without a server.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ...reasoning import NONE, THINK_CLOSE, THINK_OPEN, ReasoningFormat, format_of


class StreamError(Exception):
    """A stream that cannot be trusted (truncated, malformed, server error): retry it."""


class StreamParser:
    """Incremental parser of one SSE chat-completions stream. Pure (no I/O, no clock), so
    every server quirk it handles is unit tested on literal lines."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.logprobs: list[float] = []
        # (token text or None, logprob, from a reasoning-only chunk?) per logprob entry: lets the
        # answer's own logprobs be found by character position
        self.logprob_tokens: list[tuple[str | None, float, bool]] = []
        self.deltas = 0  # non-empty content/reasoning deltas (~ tokens on llama.cpp, vLLM)
        self.reasoning_deltas = 0
        self.done = False  # saw `data: [DONE]`
        self._data: list[str] = []
        # structured tool calls, by their index: id, name and the arguments' JSON text in pieces
        self.tool_calls: dict[int, dict[str, str]] = {}

    def feed_line(self, line: str) -> bool:
        """Feed one line (without its newline); True when it completed a non-empty delta."""
        line = line.rstrip("\r")
        if self.done:
            return False
        if not line:  # end of an SSE event: whatever is still pending never parsed
            if self._data:
                raise StreamError(f"malformed JSON in stream: {excerpt(chr(10).join(self._data))}")
            return False
        if not line.startswith("data:"):
            return False  # comments (":"), "event:", "id:", "retry:"
        value = line[5:]
        self._data.append(value[1:] if value.startswith(" ") else value)
        data = "\n".join(self._data)
        if data.strip() == "[DONE]":
            self._data, self.done = [], True
            return False
        try:  # servers send one object per data line; a multi-line event parses once whole
            obj = json.loads(data)
        except ValueError:
            return False
        self._data = []
        if not isinstance(obj, dict):
            raise StreamError(f"malformed JSON in stream: {excerpt(data)}")
        return self.feed_chunk(obj)

    def feed_chunk(self, obj: dict) -> bool:
        if obj.get("error"):
            err = obj["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise StreamError(f"error in stream: {excerpt(str(msg))}")
        if obj.get("usage"):
            self.usage = obj["usage"]
        choices = obj.get("choices") or []
        if not choices:
            return False
        choice = choices[0]
        delta = choice.get("delta") or {}
        c = delta.get("content") or ""
        r = delta.get("reasoning_content") or delta.get("reasoning") or ""
        self.content.append(c)
        self.reasoning.append(r)
        lp = choice.get("logprobs") or {}
        entries = [t for t in lp.get("content") or () if isinstance(t, dict) and "logprob" in t]
        self.logprobs.extend(t["logprob"] for t in entries)
        in_reasoning = bool(r) and not c
        self.logprob_tokens.extend(
            (t["token"] if isinstance(t.get("token"), str) else None, t["logprob"], in_reasoning)
            for t in entries
        )
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        calls = delta.get("tool_calls") or []
        for k, tc in enumerate(calls if isinstance(calls, list) else []):
            if not isinstance(tc, dict):
                continue
            entry = self.tool_calls.setdefault(tc.get("index", k), {"id": "", "name": "", "arguments": ""})
            fn = tc.get("function") or {}
            entry["id"] += tc.get("id") or ""
            entry["name"] += fn.get("name") or ""
            entry["arguments"] += fn.get("arguments") or ""
        if calls and not (c or r):
            self.deltas += 1
            return True
        if c or r:
            self.deltas += 1
            self.reasoning_deltas += bool(r) and not c
            return True
        return False

    def close(self) -> None:
        """The body ended: reject a stream that did not end properly."""
        if self._data and not self.done:
            raise StreamError(f"malformed JSON in stream: {excerpt(chr(10).join(self._data))}")
        if self.finish_reason is None or not self.done:
            raise StreamError("truncated stream")


def tool_call_text(p: StreamParser) -> str:
    """The server's structured tool calls written as the model's native `<tool_call>` blocks,
    so one reader (`tasks.tools.calls`) grades every engine. Arguments that are not valid JSON
    stay a string: the environment reports them as bad arguments."""
    out = []
    for _, tc in sorted(p.tool_calls.items()):
        try:
            args = json.loads(tc["arguments"]) if tc["arguments"].strip() else {}
        except ValueError:
            args = tc["arguments"]
        out.append("<tool_call>\n" + json.dumps({"name": tc["name"], "arguments": args}) + "\n</tool_call>")
    return "\n".join(out)


def excerpt(s: str, n: int = 160) -> str:
    """One line of at most n characters: enough of a bad payload to name it in an error."""
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n] + "..."


@dataclass
class Parts:
    """What one sample produced, split and counted; `source` says where the counts came from."""

    text: str
    reasoning_text: str
    answer_text: str
    think_unclosed: bool
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    source: str  # "tokenizer" | "usage" | "deltas"
    reasoning_format: str = "none"
    answer_logprobs: list[float] | None = None


def build_parts(
    p: StreamParser,
    finish: str,
    count_tokens: Callable[[str], int] | None = None,
    fallback: ReasoningFormat = NONE,
    answer_marker: str | None = None,
) -> Parts:
    """Text, split and token counts of one parsed stream (finish: our finish reason).

    A server-side reasoning field makes the row `server-field`: it is re-wrapped in think tags
    so that re-splitting the stored text gives the same parts; with no content yet after a cut
    (length, cancelled) the think block is left open, as the model never closed it. Without a
    field the content is split by `fallback`, the format detected from the model's own
    tokenizer and template when thinkcost can load them (else the `none` heuristic).

    Token counts prefer the model's own tokenizer (the same counts as every in-process
    engine), then the server's usage, then the streamed deltas (one token per delta on
    llama.cpp and vLLM). Last resort for the reasoning share without a reasoning field: the
    character share, round(completion_tokens * len(reasoning_text) / len(text)).
    """
    content, reasoning = "".join(p.content), "".join(p.reasoning)
    if p.tool_calls:  # structured calls join the content in the native tagged form
        content = "\n".join(x for x in (content.rstrip(), tool_call_text(p)) if x)
    if reasoning:
        unclosed = not content and finish in ("length", "cancelled")
        text = THINK_OPEN + reasoning + ("" if unclosed else THINK_CLOSE + content)
        fmt = format_of("server-field")
    else:
        text, fmt = content, fallback
    split = fmt.split(text, "length" if finish == "cancelled" else finish, answer_marker)
    usage = p.usage if finish != "cancelled" else None
    details = (usage or {}).get("completion_tokens_details") or {}
    if count_tokens is not None:
        completion, source = count_tokens(reasoning + content if reasoning else text), "tokenizer"
        think = count_tokens(split.reasoning) if split.reasoning else 0
        if split.think_unclosed:
            think = completion
    elif usage and usage.get("completion_tokens") is not None:
        completion, source = int(usage["completion_tokens"]), "usage"
        think = int(details["reasoning_tokens"]) if details.get("reasoning_tokens") is not None else None
    else:
        completion, source, think = p.deltas, "deltas", None
    if think is None:
        if reasoning:
            think = round(completion * p.reasoning_deltas / p.deltas) if p.deltas else 0
        else:
            think = round(completion * len(split.reasoning) / len(text)) if text else 0
    return Parts(
        text=text,
        reasoning_text=split.reasoning,
        answer_text=split.answer,
        think_unclosed=split.think_unclosed,
        prompt_tokens=int((p.usage or {}).get("prompt_tokens") or 0),
        completion_tokens=completion,
        reasoning_tokens=min(think, completion),
        source=source,
        reasoning_format=fmt.kind,
        answer_logprobs=_answer_logprobs(p, split.answer_start - (len(text) - len(content)), bool(reasoning)),
    )


def _answer_logprobs(p: StreamParser, answer_start: int, has_field: bool) -> list[float] | None:
    """Logprobs of the tokens of the answer, found by character position in the content (the
    answer starts `answer_start` characters into it). None when the server sent logprobs
    without token texts, so positions cannot be known."""
    entries = [(t, lp) for t, lp, in_reasoning in p.logprob_tokens if not (has_field and in_reasoning)]
    if not entries:
        return None
    if any(t is None for t, _ in entries):
        return None
    out, pos = [], 0
    for tok_text, lp in entries:
        end = pos + len(tok_text)
        if end > max(answer_start, 0) and tok_text.strip():
            out.append(lp)
        pos = end
    return out


def parse_stream(lines: Iterable[str]) -> StreamParser:
    """Parse a whole stream given as lines (tests, replay of recorded streams)."""
    p = StreamParser()
    for line in lines:
        p.feed_line(line)
    p.close()
    return p
