"""The `openai` engine: any OpenAI-compatible chat-completions server (vLLM, llama.cpp,
llama-cpp-python, SGLang, hosted APIs) over HTTP. One job per module:

- `stream`: the pure SSE parser and the split / token counts of one sample (no httpx)
- `retry`: which failures are retried, Retry-After, backoff
- `fleet`: the endpoint pool of several servers (least outstanding, health, per-endpoint stats)
- `client`: `OpenAIEngine`, which schedules samples (concurrency, short-m@k, cost sharing)
- `backend`: `OpenAIBackend` (the registered backend), `list_models`, the token counter

The client and backend are imported on first use, so the parser imports without httpx.
"""

from __future__ import annotations

import importlib
from typing import Any

from .stream import Parts, StreamError, StreamParser, build_parts, parse_stream

_LAZY = {"OpenAIEngine": "client", "OpenAIBackend": "backend", "list_models": "backend"}

__all__ = [
    "OpenAIBackend",
    "OpenAIEngine",
    "Parts",
    "StreamError",
    "StreamParser",
    "build_parts",
    "list_models",
    "parse_stream",
]


def __getattr__(name: str) -> Any:
    """Import httpx (via the client or backend module) only when one of their names is used."""
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
