"""Budget forcing (Muennighoff et al. 2025, s1), as decoding modifiers of any strategy.

`bf-cap:B`: once the reasoning reaches B tokens, the engine ends it (think-close for think
models, then "Final answer:") and lets the model answer in a bounded number of tokens.
`bf-wait:N`: the first N times the model tries to end its reasoning, the end is suppressed
and "Wait" appended, buying more thinking."""

from __future__ import annotations

from dataclasses import replace

from .base import MODIFIERS, SamplingOptions, Strategy, positive_int


@MODIFIERS.register(
    "bf-cap", form="bf-cap:B", help="end the reasoning after B tokens and make it answer", order=0
)
def apply_cap(strategy: Strategy, arg: str | None, options: SamplingOptions) -> Strategy:
    budget = positive_int(arg, "B in bf-cap:B (reasoning tokens)", f"bf-cap:{arg}")
    return replace(strategy, recipe=replace(strategy.recipe, think_budget=budget))


@MODIFIERS.register(
    "bf-wait", form="bf-wait:N", help="replace the first N ends of reasoning with Wait", order=1
)
def apply_wait(strategy: Strategy, arg: str | None, options: SamplingOptions) -> Strategy:
    n = positive_int(arg, "N in bf-wait:N (times to append 'Wait')", f"bf-wait:{arg}")
    return replace(strategy, recipe=replace(strategy.recipe, max_waits=n))
