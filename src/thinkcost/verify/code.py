"""Grade model-written Python (HumanEval / MBPP style): find the code in an answer, run it against the tests.

The running happens in :mod:`thinkcost.sandbox` (an isolated child process; grading there passes
only when the tests really ran to the end, see :mod:`thinkcost.sandbox.harness`). This module
adds what is specific to model answers: which fenced block is the code, and the Verdict.
The sandbox's public names are re-exported here for existing callers.
"""

from __future__ import annotations

import re
from typing import Any

from thinkcost.sandbox import (
    FILE_LIMIT_MB,
    Layers,
    SandboxResult,
    check_program,
    classify,
    layers,
    run_many,
    run_python,
)
from thinkcost.types import Verdict

__all__ = [
    "FILE_LIMIT_MB",
    "Layers",
    "SandboxResult",
    "check_program",
    "classify",
    "extract_code",
    "layers",
    "run_many",
    "run_python",
    "verify_code",
]

_FENCE_OPEN = re.compile(r"^\s*```+\s*([\w+.#-]*)[^`]*$")
_FENCE_CLOSE = re.compile(r"^(.*?)```+\s*$")
_LANG_ALIASES = {"python": {"python", "py", "python3", "py3"}}


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block in order; an unterminated last block runs to the end."""
    blocks: list[tuple[str, str]] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if lang is None:
            m = _FENCE_OPEN.match(line)
            if m:
                lang, body = m.group(1).lower(), []
            continue
        m = _FENCE_CLOSE.match(line)
        if m:
            if m.group(1).strip():
                body.append(m.group(1))  # code``` on the same line as the closing fence
            blocks.append((lang, "\n".join(body)))
            lang = None
        else:
            body.append(line)
    if lang is not None:
        blocks.append((lang, "\n".join(body)))
    return blocks


def extract_code(text: str, language: str = "python") -> str | None:
    """The last block fenced as ``language`` (py/python3 count as python), else the last untagged one."""
    blocks = [(lang, body) for lang, body in _fenced_blocks(text) if body.strip()]
    names = _LANG_ALIASES.get(language, {language})
    for wanted in (lambda lang: lang in names, lambda lang: lang == ""):
        matching = [body for lang, body in blocks if wanted(lang)]
        if matching:
            return matching[-1].strip("\n") + "\n"
    return None


def _compiles(text: str) -> bool:
    """Whether unfenced text is Python at all (compiling never runs it)."""
    try:
        compile(text, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def verify_code(answer_text: str, tests: str, entry_point: str | None = None, **kw: Any) -> Verdict:
    """Score a model answer: fenced code (or the raw text, if it compiles) against the tests."""
    code = extract_code(answer_text)
    rule = "fenced"
    if code is None and answer_text.strip() and _compiles(answer_text):
        code, rule = answer_text, "raw"
    if code is None:
        return Verdict(correct=False, extracted=None, rule="none", detail="none: no code found")
    result = check_program(code, tests, entry_point=entry_point, **kw)
    detail = f"{result.status}: {result.detail}"
    return Verdict(correct=result.status == "passed", extracted=code, rule=rule, detail=detail)
