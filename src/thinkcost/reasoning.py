"""Where reasoning ends and the answer begins. The split decides which tokens count as
"reasoning tokens" (the CTIR numerator), so it is one function with one set of rules:

1. `<think>...</think>`: inside is reasoning, after `</think>` is the answer.
2. `<think>` never closed (budget or length cap hit): all reasoning, answer empty, so the
   trace is never graded as if it were an answer.
3. No think tags: the answer starts at the line holding the last final-answer marker
   (`\\boxed{`, "final answer", "the answer is"); everything before is reasoning.
4. No marker but a fenced code block: the answer starts at the opening fence of the last
   block (code tasks: the program is the answer, the prose before it is reasoning).
5. Neither: if the generation was cut by the length cap, it is all reasoning and the answer
   is empty; otherwise the last non-empty line is the answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
_FENCE = re.compile(r"^[ \t]*```", re.M)
_MARKER = re.compile(r"\\boxed\s*\{|\\fbox\s*\{|final answer|the answer is|^\s*\**answer\**\s*:", re.I | re.M)


@dataclass(frozen=True)
class Split:
    reasoning: str
    answer: str
    think_unclosed: bool
    answer_start: int  # char offset in the text where the answer begins (len(text) if empty)


def open_think_at(text: str, pos: int) -> bool:
    """True when position `pos` lies inside a `<think>` block not yet closed before it."""
    head = text[:pos]
    i = head.rfind(THINK_OPEN)
    return i != -1 and head.find(THINK_CLOSE, i) == -1


def split_reasoning(text: str, finish_reason: str = "stop") -> Split:
    """Split a completion into (reasoning, answer) by the rules in the module docstring."""
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
