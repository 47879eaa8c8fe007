"""The engine protocol: a backend that turns `Request`s into `Completion`s (both in
`thinkcost.types`, re-exported here for engine authors)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..types import THINK_CLOSE, THINK_OPEN, Completion, OnComplete, Request

__all__ = ["THINK_CLOSE", "THINK_OPEN", "Completion", "Engine", "OnComplete", "Request"]


class Engine(Protocol):
    """A backend that turns requests into completions (batched as it sees fit)."""

    name: str

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]: ...

    def close(self) -> None: ...
