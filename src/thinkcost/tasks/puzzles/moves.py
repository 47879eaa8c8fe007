"""Reading a move list out of a model's answer, tolerant of how small models write lists.

Three shapes, tried in this order on the answer text:

1. a ``moves = [[...], ...]`` assignment (the format every puzzle prompt asks for; the last one
   wins, so a model that corrects itself is read at its final word);
2. otherwise the last bracketed list of lists (``[[1, "A", "C"], [2, "A", "B"]]``, quotes optional);
3. otherwise one move per line: numbered lines (``1. ...``, ``Step 2: ...``, ``- ...``) or lines that
   start with "move", each read by the puzzle's own line reader (``move disk 1 from A to C``), or
   as a list item when the line holds one (``1. [3, "C", "A"]``).

A list is read into token lists (``["1", "A", "C"]``); the puzzle turns tokens into a move. A
token list it cannot read stays in the list as ``None``, so the simulator reports that index as
the first illegal move instead of silently skipping it (skipping would replay a different
solution than the one the model wrote).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

Tokens = tuple[str, ...]

_ASSIGN = re.compile(r"\bmoves\s*[:=]\s*\[", re.IGNORECASE)
_LINE_MARK = re.compile(
    r"^\s*(?:(?:step|move)\s*(?P<n>\d+)\s*[:.)-]|(?P<m>\d+)\s*[.):-]|[-*\u2022])\s*(?P<body>.*)$",
    re.IGNORECASE,
)
_MOVE_LINE = re.compile(r"^\s*(?P<body>move\b.*)$", re.IGNORECASE)
_QUOTES = "\"'`\u201c\u201d\u2018\u2019"


@dataclass(frozen=True)
class MoveList:
    """Token lists in the order written; `shape` says which rule read them (for the verdict)."""

    moves: list[Tokens | None]
    shape: str  # assignment | list | lines | none


def _balanced_end(text: str, start: int) -> int | None:
    """Index just past the bracket matching text[start] == "[" (None if it never closes)."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
            if depth == 0:
                return i + 1
    return None


def _split_items(inner: str) -> list[str]:
    """Top-level comma-separated items of a list body (brackets nest, quoted commas stay)."""
    items, depth, quote, cur = [], 0, "", []
    for ch in inner:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = ""
            continue
        if ch in "\"'":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append("".join(cur))
            cur = []
            continue
        cur.append(ch)
    if "".join(cur).strip():
        items.append("".join(cur))
    return items


def _tokens(item: str) -> Tokens:
    """One list item -> its tokens: `[1, "A", "C"]`, `(1, A, C)` and `"1 A C"` all give (1, A, C)."""
    body = item.strip()
    if body[:1] in "[(" and body[-1:] in "])":
        body = body[1:-1]
    parts = []
    for piece in _split_items(body):
        piece = piece.strip().strip(_QUOTES).strip()
        parts.extend(p for p in re.split(r"[\s,]+", piece) if p)
    return tuple(parts)


def _uncomment(text: str) -> str:
    """`text` without line comments (`# ...`, `// ...` to the end of the line) outside quotes:
    models write lists as Python, one commented move per line, and a comment's words and
    brackets are not moves."""
    out, quote, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if quote:
            quote = "" if ch == quote or ch == "\n" else quote
        elif ch in "\"'":
            quote = ch
        elif ch == "#" or text.startswith("//", i):
            j = text.find("\n", i)
            i = len(text) if j == -1 else j
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _read_list(text: str, start: int) -> list[Tokens] | None:
    """The list of lists opening at text[start] ("["), or None if it does not close or is flat."""
    text = _uncomment(text[start:])
    end = _balanced_end(text, 0)
    if end is None:
        return None
    items = _split_items(text[1 : end - 1])
    if not items:
        return []
    return [_tokens(x) for x in items]


def _last_list_of_lists(text: str) -> list[Tokens] | None:
    """The last `[[...], ...]` in the text: scanned from the end so trailing prose is ignored."""
    for m in reversed(list(re.finditer(r"\[\s*[\[(]", text))):
        got = _read_list(text, m.start())
        if got:
            return got
    return None


_BRACKETED = re.compile(r"^\s*(?P<item>\[[^\[\]]*\]|\([^()]*\))\s*[,;.]?\s*$")


def _line_move(body: str, read_line: Callable[[str], Tokens | None]) -> Tokens | None:
    """One marked line's move: a bracketed item (`1. [3, "C", "A"]`) is read like a list item,
    anything else by the puzzle's own prose reader."""
    m = _BRACKETED.match(_uncomment(body))
    return _tokens(m.group("item")) if m else read_line(body)


def _lines(text: str, read_line: Callable[[str], Tokens | None]) -> list[Tokens | None]:
    """Moves from the last block of numbered / bulleted / "move ..." lines. An unreadable marked
    line inside the block stays as None; lines without a marker end nothing (prose between moves),
    a paragraph of prose or a numbering that restarts at 1 does (a plan, then the final list)."""
    blocks: list[list[Tokens | None]] = []
    current: list[Tokens | None] = []
    gap = 0
    for line in text.splitlines():
        m = _LINE_MARK.match(line) or _MOVE_LINE.match(line)
        if m is None:
            gap += 1 if line.strip() else 0
            if gap > 2 and current:  # a paragraph of prose ends the block
                blocks.append(current)
                current = []
            continue
        gap = 0
        number = m.groupdict().get("n") or m.groupdict().get("m")
        if number is not None and int(number) == 1 and current:  # numbering restarts: a new list
            blocks.append(current)
            current = []
        current.append(_line_move(m.group("body"), read_line))
    if current:
        blocks.append(current)
    # the last block with at least one readable move: a numbered plan in prose before it is not the answer
    for block in reversed(blocks):
        if any(x is not None for x in block):
            return block
    return []


def read_moves(text: str, read_line: Callable[[str], Tokens | None]) -> MoveList:
    """The move list in `text` (see the module docstring for the shapes and their precedence)."""
    text = text or ""
    assigns = list(_ASSIGN.finditer(text))
    for m in reversed(assigns):
        got = _read_list(text, m.end() - 1)
        if got is not None:
            return MoveList(list(got), "assignment")
    got = _last_list_of_lists(text)
    if got:
        return MoveList(list(got), "list")
    lines = _lines(text, read_line)
    if lines:
        return MoveList(lines, "lines")
    return MoveList([], "none")
