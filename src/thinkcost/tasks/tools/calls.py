"""Tool calls read out of a model's text, in the native formats models are trained on.

Qwen2.5 (and Hermes-style templates) emit each call as
`<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`; the openai engine turns a
server's structured `tool_calls` into the same tags, so one reader serves every engine.

Small models are sloppy, and a reader that rejects a usable call measures the parser, not the
model, so within a `<tool_call>` block it accepts: any surrounding whitespace, a code fence
around the JSON, several objects in one block or a list of them, `parameters` for `arguments`,
arguments given as a JSON string (OpenAI's wire form), Python-literal quoting, and a block the
cap cut before its closing tag. Without any tag, a JSON object that has both a "name" and an
"arguments" key, bare or in a code fence, is read as a call too (form "untagged").

What cannot be read is reported, never raised: a tagged block whose body is not a call, or
text that spells out "name" and "arguments" keys but does not parse, is a malformed call.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

_OPEN = re.compile(r"<\s*tool_call\s*>", re.I)
_CLOSE = re.compile(r"<\s*/\s*tool_call\s*>", re.I)
_FENCE = re.compile(r"^\s*```[\w-]*[ \t]*\n?(?P<body>.*?)\n?[ \t]*```\s*$", re.S)
_KEYS = re.compile(r"""["']name["']\s*:.*["'](?:arguments|parameters)["']\s*:""", re.S)


@dataclass(frozen=True)
class Call:
    """One tool call: its name and arguments as the model wrote them (not yet validated)."""

    name: Any
    arguments: Any
    raw: str = ""


@dataclass
class Parsed:
    """Every call found in one text, and the pieces that looked like calls but were not."""

    calls: list[Call] = field(default_factory=list)
    malformed: list[str] = field(default_factory=list)
    form: str | None = None  # "tagged" | "untagged" | None (no call attempted)
    prose: str = ""  # the text outside the calls


def _loads(text: str) -> Any:
    """JSON, else a Python literal (single quotes, True/None); raises ValueError if neither."""
    try:
        return json.loads(text)
    except ValueError:
        pass
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise ValueError("not JSON") from None


def _objects(body: str) -> list[Any] | None:
    """The JSON values in `body` (one, several in a row, or none): None when it does not parse."""
    body = body.strip()
    m = _FENCE.match(body)
    if m:
        body = m.group("body").strip()
    if not body:
        return None
    try:
        v = _loads(body)
        return v if isinstance(v, list) else [v]
    except ValueError:
        pass
    out, pos, dec = [], 0, json.JSONDecoder()
    while pos < len(body):
        while pos < len(body) and body[pos] in " \t\r\n,;":
            pos += 1
        if pos >= len(body):
            break
        try:
            v, pos = dec.raw_decode(body, pos)
        except ValueError:
            return None
        out.append(v)
    return out or None


def _as_call(obj: Any, raw: str) -> Call | None:
    """A call from one decoded object, or None if the object is not shaped like a call."""
    if not isinstance(obj, dict):
        return None
    if "function" in obj and isinstance(obj["function"], dict) and "name" not in obj:
        obj = obj["function"]  # {"type": "function", "function": {...}}
    if "name" not in obj:
        return None
    args = obj.get("arguments", obj.get("parameters", {}))
    if isinstance(args, str):
        with contextlib.suppress(
            ValueError
        ):  # else kept as the string: the environment calls it bad arguments
            args = _loads(args) if args.strip() else {}
    return Call(obj["name"], args, raw)


def parse_calls(text: str) -> Parsed:
    """All tool calls in `text` (module docstring for what is tolerated)."""
    out = Parsed()
    if not isinstance(text, str) or not text:
        return out
    prose: list[str] = []
    pos = 0
    for m in _OPEN.finditer(text):
        if m.start() < pos:
            continue  # an opening tag inside the previous block's body
        prose.append(text[pos : m.start()])
        close = _CLOSE.search(text, m.end())
        nxt = _OPEN.search(text, m.end())
        end = close.start() if close else len(text)
        if nxt and nxt.start() < end:  # a new call opened before this one closed
            end = nxt.start()
        body = text[m.end() : end]
        pos = close.end() if close and close.start() == end else end
        out.form = "tagged"
        objs = _objects(body)
        calls = [_as_call(o, body.strip()) for o in objs] if objs else []
        if calls and all(c is not None for c in calls):
            out.calls.extend(c for c in calls if c is not None)
        else:
            out.malformed.append(body.strip())
    if out.form == "tagged":
        prose.append(text[pos:])
        out.prose = "".join(prose).strip()
        return out
    out.calls = _bare_calls(text)  # untagged: JSON shaped like a call, bare or fenced
    if out.calls:
        out.form = "untagged"
        out.prose = text
    elif _KEYS.search(text):
        out.form, out.prose = "untagged", text
        out.malformed.append(text.strip()[-400:])
    else:
        out.prose = text
    return out


def _bare_calls(text: str) -> list[Call]:
    """JSON objects written inline that carry both a "name" and an "arguments" key."""
    dec, out, pos = json.JSONDecoder(), [], 0
    while True:
        i = text.find("{", pos)
        if i == -1:
            return out
        try:
            v, end = dec.raw_decode(text, i)
        except ValueError:
            pos = i + 1
            continue
        if isinstance(v, dict) and "name" in v and ("arguments" in v or "parameters" in v):
            c = _as_call(v, text[i:end])
            if c is not None:
                out.append(c)
            pos = end
        else:
            pos = i + 1


def render_call(name: str, arguments: Any) -> str:
    """A call in the tagged form (what the openai engine writes for a server's structured call)."""
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": arguments}) + "\n</tool_call>"
