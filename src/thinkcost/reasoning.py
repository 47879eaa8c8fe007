"""Where reasoning ends and the answer begins, decided once per (model, chat template).

The split decides which tokens count as "reasoning tokens" (the CTIR numerator) and which text
is graded, so it cannot be guessed per generation from the generated text alone: a model whose
template opens `<think>` in the *prompt* (DeepSeek-R1-Distill, QwQ, Qwen3 in some templates)
only ever emits `</think>`, and a generation cut off by the cap has no tag at all. The format
is therefore read off the rendered prompt and the tokenizer (`detect_format`), stored with
every generation, and every consumer (the split, stop strings, budget forcing, wait-penalty,
the robustness leak metric) asks the same `ReasoningFormat` object.

Formats:

- ``think-in-output``: the model opens `<think>` itself (Qwen3 thinking on). Inside the block
  is reasoning, after `</think>` the answer; an unclosed block (cap hit) is all reasoning with
  an empty answer; no block at all means the model answered without thinking (reasoning empty).
  A template that renders a closed, empty think block (Qwen3 thinking off) lands here too: the
  model answers directly.
- ``think-in-prompt``: the template opened the block. Everything up to `</think>` is reasoning;
  no `</think>` means the reasoning never ended: all reasoning, answer empty.
- ``harmony`` (gpt-oss): messages on channels; `analysis` (and `commentary`) is reasoning, the
  `final` channel is the answer; no final message means the answer is empty. Channel markers
  are special tokens, so these texts are decoded with special tokens kept.
- ``server-field``: an OpenAI-compatible server returned the reasoning in a separate field
  (`reasoning_content` / `reasoning`); the stored text wraps it as `<think>R</think>answer`.
- ``none``: no think tags in tokenizer or template. A heuristic, and labelled as one in reports:

  1. `<think>...</think>` in the text: as think-in-output (an unclosed block is all reasoning).
  2. `</think>` alone: everything before it is reasoning.
  3. No tags: the answer starts at the line holding the last final-answer marker (`\\boxed{`,
     "final answer", "the answer is", "Answer:"); everything before is reasoning.
  4. No marker but a fenced code block: the answer starts at the opening fence of the last
     block (code tasks: the program is the answer, the prose before it is reasoning).
  5. Neither: if the generation was cut by the length cap, it is all reasoning and the answer
     is empty; otherwise the last non-empty line is the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import UserError

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
# gpt-oss "harmony" markers (special tokens of its tokenizer)
H_START, H_CHANNEL, H_MESSAGE, H_END = "<|start|>", "<|channel|>", "<|message|>", "<|end|>"
_H_TERMINATORS = ("<|end|>", "<|start|>", "<|return|>", "<|call|>")
_H_FINAL = H_CHANNEL + "final"
_H_MSG = re.compile(r"<\|channel\|>(?P<channel>[A-Za-z_]+)[^<]*(?:<\|constrain\|>[^<]*)?<\|message\|>")

_FENCE = re.compile(r"^[ \t]*```", re.M)
_MARKER = re.compile(r"\\boxed\s*\{|\\fbox\s*\{|final answer|the answer is|^\s*\**answer\**\s*:", re.I | re.M)

KINDS = ("think-in-output", "think-in-prompt", "harmony", "server-field", "none")
THINKING = ("auto", "on", "off")


@dataclass(frozen=True)
class Split:
    reasoning: str
    answer: str
    think_unclosed: bool
    answer_start: int  # char offset in the text where the answer begins (len(text) if empty)


@dataclass(frozen=True)
class ReasoningFormat:
    """How one model's generations divide into reasoning and answer (module docstring).
    `why` records how it was decided, so a report can say it."""

    kind: str = "none"
    why: str = (
        "no think tags in the tokenizer or chat template; the answer starts at the last final-answer marker"
    )

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"ReasoningFormat.kind: expected one of {', '.join(KINDS)}, got {self.kind!r}")

    @property
    def heuristic(self) -> bool:
        """True when the split is a guess from answer markers, not a boundary the model marked."""
        return self.kind == "none"

    @property
    def keep_special(self) -> bool:
        """Decode with special tokens kept: harmony's channel markers are special tokens."""
        return self.kind == "harmony"

    @property
    def end_text(self) -> str | None:
        """The token text with which the model itself ends its reasoning (bf-wait replaces it);
        None: no such token (the `none` format: the end of the generation is the end)."""
        return {"think-in-output": THINK_CLOSE, "think-in-prompt": THINK_CLOSE, "harmony": H_END}.get(
            self.kind
        )

    @property
    def close_text(self) -> str:
        """What budget forcing inserts to end the reasoning (before its `force_text`)."""
        if self.kind == "harmony":
            return H_END + H_START + "assistant" + H_CHANNEL + "final" + H_MESSAGE
        return THINK_CLOSE if self.kind in ("think-in-output", "think-in-prompt") else ""

    def split(self, text: str, finish_reason: str = "stop", answer_marker: str | None = None) -> Split:
        """(reasoning, answer) of a generated text by this format's rules. `answer_marker` (a
        regex, multiline): the task's own answer form (`moves = [`), an extra final-answer
        marker for the `none` heuristic; formats with a model-marked boundary ignore it."""
        if self.kind == "think-in-prompt":
            return _split_think_in_prompt(text)
        if self.kind in ("think-in-output", "server-field"):
            return _split_think_in_output(text)
        if self.kind == "harmony":
            return _split_harmony(text)
        return split_reasoning(text, finish_reason, answer_marker)

    def reasoning_open(self, text: str) -> bool:
        """True when the end of `text` lies inside reasoning the model marked and has not yet
        closed: a stop string found there must not end the generation."""
        if self.kind == "think-in-prompt":
            return THINK_CLOSE not in text
        if self.kind == "harmony":
            return _H_FINAL not in text
        return _open_think(text)

    def still_reasoning(self, text: str) -> bool:
        """Is a generation that produced `text` still reasoning (bf-cap decides once, at the
        budget)? For `none`, reasoning lasts until the first final-answer marker."""
        if self.kind == "think-in-output":
            return _open_think(text)
        if self.kind == "none":
            return THINK_CLOSE not in text and _MARKER.search(text) is None
        return self.reasoning_open(text)


NONE = ReasoningFormat()
_FIXED = {
    "think-in-output": "the model opens <think> itself",
    "think-in-prompt": "the chat template opens <think> in the prompt",
    "harmony": "harmony channels (analysis = reasoning, final = answer)",
    "server-field": "the server returned the reasoning in its own field",
}


def format_of(kind: str | None) -> ReasoningFormat:
    """The format object of a stored kind name (None: rows stored before formats existed,
    which were split by the `none` rules)."""
    if kind is None or kind == "none":
        return NONE
    if kind not in KINDS:
        raise ValueError(f"unknown reasoning format {kind!r}; known: {', '.join(KINDS)}")
    return ReasoningFormat(kind, _FIXED[kind])


# --------------------------------------------------------------------------- the splits


def _open_think(text: str) -> bool:
    i = text.rfind(THINK_OPEN)
    return i != -1 and text.find(THINK_CLOSE, i) == -1


def open_think_at(text: str, pos: int) -> bool:
    """True when position `pos` lies inside a `<think>` block not yet closed before it."""
    return _open_think(text[:pos])


def _split_think_in_prompt(text: str) -> Split:
    # a model that repeats the opening tag the template already wrote: the tag is not reasoning
    lead = len(text) - len(text.lstrip())
    skip = lead + len(THINK_OPEN) if text[lead:].startswith(THINK_OPEN) else 0
    j = text.find(THINK_CLOSE, skip)
    if j == -1:
        return Split(text[skip:], "", True, len(text))
    start = j + len(THINK_CLOSE)
    return Split(text[skip:j], text[start:].strip(), False, start)


def _split_think_in_output(text: str) -> Split:
    i = text.find(THINK_OPEN)
    if i == -1:
        j = text.find(THINK_CLOSE)
        if j == -1:  # the model answered without thinking
            return Split("", text.strip(), False, 0)
        start = j + len(THINK_CLOSE)
        return Split(text[:j], text[start:].strip(), False, start)
    j = text.find(THINK_CLOSE, i)
    if j == -1:
        return Split(text[i + len(THINK_OPEN) :], "", True, len(text))
    start = j + len(THINK_CLOSE)
    return Split(text[i + len(THINK_OPEN) : j], text[start:].strip(), False, start)


def _harmony_body(text: str, start: int) -> str:
    """A message's content: from `start` to the next terminator (or the end)."""
    ends = [p for p in (text.find(t, start) for t in _H_TERMINATORS) if p != -1]
    return text[start : min(ends)] if ends else text[start:]


def _split_harmony(text: str) -> Split:
    reasoning: list[str] = []
    final: tuple[int, str] | None = None
    for m in _H_MSG.finditer(text):
        body = _harmony_body(text, m.end())
        if m.group("channel") == "final":
            final = (m.end(), body)
        elif final is None:
            reasoning.append(body)
    if final is None:  # no final message: the reasoning never ended
        if not reasoning and H_CHANNEL not in text:
            reasoning = [text]  # no channel header at all: everything is pre-answer output
        return Split("\n".join(reasoning), "", True, len(text))
    return Split("\n".join(reasoning), final[1].strip(), False, final[0])


def split_reasoning(text: str, finish_reason: str = "stop", answer_marker: str | None = None) -> Split:
    """The `none` format's heuristic split (module docstring, rules 1-5); a task's
    `answer_marker` counts as one more final-answer marker in rule 3 (the later match wins)."""
    i = text.find(THINK_OPEN)
    if i != -1:
        j = text.find(THINK_CLOSE, i)
        if j == -1:
            return Split(text[i + len(THINK_OPEN) :], "", True, len(text))
        start = j + len(THINK_CLOSE)
        return Split(text[i + len(THINK_OPEN) : j], text[start:].strip(), False, start)
    j = text.find(THINK_CLOSE)  # templates that open <think> in the prompt emit only the close
    if j != -1:
        start = j + len(THINK_CLOSE)
        return Split(text[:j], text[start:].strip(), False, start)
    last = None
    for last in _MARKER.finditer(text):  # noqa: B007 - we want the last match
        pass
    if answer_marker:
        for own in re.finditer(answer_marker, text, re.I | re.M):
            if last is None or own.start() > last.start():
                last = own
    if last is not None:
        start = text.rfind("\n", 0, last.start()) + 1
        return Split(text[:start], text[start:].strip(), False, start)
    fences = [m.start() for m in _FENCE.finditer(text)]
    if fences:
        # an even count means the last block is closed: it opens at the second-to-last fence
        start = fences[-2] if len(fences) % 2 == 0 else fences[-1]
        if len(fences) % 2 == 0 or finish_reason != "length":
            return Split(text[:start], text[start:].strip(), False, start)
    if finish_reason == "length":
        return Split(text, "", False, len(text))
    stripped = text.rstrip()
    start = stripped.rfind("\n") + 1
    return Split(text[:start], stripped[start:].strip(), False, start)


# --------------------------------------------------------------------------- detection

# A probe conversation: its rendered generation prompt (the text after the user turn) shows
# whether the template opens, closes or skips a think block.
_PROBE_TEXT = "What is 2 + 3? (thinkcost format probe)"
_PROBE = [{"role": "user", "content": _PROBE_TEXT}]


def template_kwargs(thinking: str) -> dict[str, Any]:
    """Extra `apply_chat_template` arguments for `--thinking` (Qwen3's `enable_thinking`)."""
    if thinking not in THINKING:
        raise UserError(f"--thinking: expected one of {', '.join(THINKING)}, got {thinking!r}")
    return {} if thinking == "auto" else {"enable_thinking": thinking == "on"}


TOOLS_KEY = "tools"  # a prompt message may carry the tool schemas (OpenAI form) under this key
_TOOLS_FALLBACK = (
    "You can call these tools (JSON schemas):\n{schemas}\n\nTo call one, reply with\n<tool_call>\n"
    '{{"name": <tool name>, "arguments": <JSON object>}}\n</tool_call>\n'
    "and wait for its result. Answer directly once you have what you need."
)


def prompt_tools(messages: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict] | None]:
    """The messages without their `tools` key, and the tool schemas it carried (None: no tools).

    Why in the messages: a prompt is one list of messages everywhere (problems, requests, the
    store), so tools ride along with it to every engine without a new field in each; the
    local engines render them through the chat template here, the openai engine sends them
    as the request's `tools`. Assistant messages also lose `tool_calls`: their content is the
    model's own text, calls included, and templates would write the calls a second time."""
    tools = None
    out = []
    for m in messages:
        if TOOLS_KEY in m or "tool_calls" in m:
            if tools is None and m.get(TOOLS_KEY):
                tools = list(m[TOOLS_KEY])
            m = {k: v for k, v in m.items() if k not in (TOOLS_KEY, "tool_calls")}
        out.append(m)
    return out, tools


def _template_takes_tools(tok: Any) -> bool:
    t = getattr(tok, "chat_template", None)
    return isinstance(t, str) and "tools" in t


def render_prompt(tok: Any, messages: list[dict[str, str]], thinking: str = "auto") -> str:
    """The chat template applied as the model was trained to see it, with the thinking switch.
    Tool schemas carried in the messages (`prompt_tools`) go to the template's `tools=`; a
    template that has no tools section gets them as text in its system message instead."""
    messages, tools = prompt_tools(messages)
    kw = template_kwargs(thinking)
    if tools and _template_takes_tools(tok):
        kw["tools"] = tools
    elif tools:
        import json

        text = _TOOLS_FALLBACK.format(schemas="\n".join(json.dumps(t) for t in tools))
        if messages and messages[0].get("role") == "system":
            messages = [{**messages[0], "content": f"{messages[0]['content']}\n\n{text}"}, *messages[1:]]
        else:
            messages = [{"role": "system", "content": text}, *messages]
    return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False, **kw)


def single_token_id(tok: Any, text: str) -> int | None:
    """The id of `text` when the tokenizer holds it as one token (an unknown token maps to the
    unk id or None, and a real one must decode back to the text), else None."""
    conv = getattr(tok, "convert_tokens_to_ids", None)
    if conv is None:
        return None
    tid = conv(text)
    if not isinstance(tid, int) or tid < 0 or tid == getattr(tok, "unk_token_id", None):
        return None
    if tok.decode([tid], skip_special_tokens=False).strip() != text:
        return None
    return tid


def _has_template(tok: Any) -> bool:
    return callable(getattr(tok, "apply_chat_template", None)) and bool(getattr(tok, "chat_template", None))


def detect_format(tok: Any, thinking: str = "auto", label: str = "the model") -> ReasoningFormat:
    """Decide the reasoning format of a (tokenizer, chat template) pair from the rendered
    prompt of a probe conversation (module docstring). `thinking` on/off sets the template's
    switch; asking for it on a template without one is a user error, not a silent no-op."""
    kw = template_kwargs(thinking)
    prompt = ""
    if _has_template(tok):
        prompt = render_prompt(tok, _PROBE, thinking)
        if kw:
            flipped = tok.apply_chat_template(
                _PROBE, add_generation_prompt=True, tokenize=False, enable_thinking=not kw["enable_thinking"]
            )
            if flipped == prompt:
                raise UserError(
                    f"--thinking {thinking}: the chat template of {label} has no thinking switch "
                    "(it renders the same prompt with enable_thinking on and off); use --thinking auto"
                )
    elif kw:
        raise UserError(f"--thinking {thinking}: {label} has no chat template to switch thinking in")
    tail = prompt[prompt.rfind(_PROBE_TEXT) + len(_PROBE_TEXT) :] if _PROBE_TEXT in prompt else prompt
    if single_token_id(tok, H_CHANNEL) is not None and (H_START + "assistant") in tail:
        return ReasoningFormat("harmony", "the chat template renders harmony channels (gpt-oss)")
    i, j = tail.rfind(THINK_OPEN), tail.rfind(THINK_CLOSE)
    if i != -1 and j < i:
        return ReasoningFormat("think-in-prompt", "the chat template opens <think> in the prompt")
    if i != -1 and j > i:
        return ReasoningFormat(
            "think-in-output", "the chat template renders a closed, empty think block (thinking off)"
        )
    if single_token_id(tok, THINK_CLOSE) is not None:
        return ReasoningFormat("think-in-output", "the tokenizer has <think> tags; the model opens them")
    return NONE
