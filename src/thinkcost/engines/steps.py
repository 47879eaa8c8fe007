"""Step-wise generation: the engine side of search over reasoning steps.

A search (beam, DVTS, particle filtering) extends partial answers one *step* at a time, a step
being the text up to a separator (default "\\n\\n"). Why a protocol of its own and not
`Engine.generate` with a stop string: a request re-sends its whole prompt, so every step would
re-prefill the question plus all earlier steps, and a search's cost would grow with the square
of its depth. A `Stepper` keeps each partial answer's state (the KV cache, in-process) between
steps and forks it when a node is expanded, so extending a node feeds only its new tokens.

State objects are opaque to the search: it only passes them back to the stepper that made them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..types import Completion

DEFAULT_SEPARATOR = "\n\n"


@dataclass
class StepOut:
    """One new step of one child. `finish`: None = ended at the separator (can be extended),
    "stop" = the model ended its answer (EOS), "length" = a token cap was hit."""

    state: Any
    text: str
    tokens: int  # tokens this step generated (what it cost the policy)
    seconds: float  # its share of the expansion's wall time
    finish: str | None
    fed_tokens: int = 0  # tokens the model was fed for it (prefill of a root included)


class Stepper(Protocol):
    """What a search needs from a policy engine."""

    separator: str

    def root(self, messages: list[dict[str, str]]) -> Any:
        """The state of an empty answer to `messages` (nothing decoded yet)."""
        ...

    def expand(
        self, state: Any, k: int, *, seed: int, temperature: float, top_p: float, max_new_tokens: int
    ) -> list[StepOut]:
        """`k` sampled next steps of `state`, each with its own state; `state` stays usable."""
        ...

    def completion(self, state: Any, finish: str, *, completion_tokens: int, cost_s: float) -> Completion:
        """The final answer of a finished state, charged with the whole search's tokens and time."""
        ...
