"""Refusals of the engines that cannot steer decoding token by token (openai, vllm).

Budget forcing (bf-cap, bf-wait) and the wait-penalty decide at every token; they run on the hf
and llamacpp engines. An engine that only sees text refuses them up front, before any work is
done, instead of silently running a different method.
"""

from __future__ import annotations

from collections.abc import Callable

from ..types import Request

# (Request field, is it used, method, what a text-only engine cannot do), in the order checked
TOKEN_CONTROLS: tuple[tuple[str, Callable[[Request], bool], str, str], ...] = (
    ("think_budget", lambda r: r.think_budget is not None, "bf-cap", "force the end of thinking"),
    ("max_waits", lambda r: r.max_waits > 0, "bf-wait", "replace the end of thinking with 'Wait'"),
    ("penalty", lambda r: r.penalty > 0, "wait-penalty", "change the logits"),
)


def unsupported(req: Request, engine: str, *, say_what: bool = False) -> str | None:
    """Why `engine` refuses this request (None: it can serve it); `say_what` names what it cannot do."""
    for name, used, method, what in TOKEN_CONTROLS:
        if used(req):
            needs = f"Request.{name}: {method} needs an engine that controls decoding (hf or llamacpp)"
            return f"{needs}; the {engine} engine cannot {what}" if say_what else f"{needs}, not {engine}"
    return None
