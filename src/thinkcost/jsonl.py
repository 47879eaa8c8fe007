"""One reader for the JSON-lines files users hand us (calibration text, teacher traces, BFCL
entries, other tools' logs), so every one of them reports a bad line the same way: the file,
the line number and what was wrong, as a UserError instead of a traceback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import UserError


def read_jsonl(path: str | Path, what: str = "") -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) per non-empty line of `path`, in file order.

    `what` names the file's role in the missing-file message (e.g. "--data"). Lines are split on
    "\\n" only: `str.splitlines` would also break at U+2028 inside a JSON string."""
    p = Path(path)
    label = f"{what} {str(p)!r}" if what else str(p)
    if not p.is_file():
        raise UserError(f"{label} does not exist")
    try:
        data = p.read_bytes()
    except OSError as e:
        raise UserError(f"{label}: cannot read ({e.strerror or e})") from None
    for n, raw in enumerate(data.split(b"\n"), 1):
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UserError(f"{p}:{n}: not UTF-8 text") from None
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise UserError(f"{p}:{n}: malformed JSON line ({e.msg} at column {e.colno})") from None
        if not isinstance(obj, dict):
            raise UserError(f"{p}:{n}: expected a JSON object, got {type(obj).__name__}")
        yield n, obj
