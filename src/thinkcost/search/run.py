"""One search per problem, for the runner: build the stepper and scorer once per variant, run
the strategy's search function, and hand back what the store keeps (the final answer as a
`Completion` charged with the whole tree, the tree's rows, the PRM bill).

Why the final row carries every policy token and second of the tree: cost per correct answer
and the Pareto frontier read generation rows, so a search that pruned 30 branches must pay for
them there, exactly as maj@k pays for its voted-down samples.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..engines.steps import DEFAULT_SEPARATOR, Stepper
from ..errors import UserError
from ..strategies.search import SearchForm, parse_search_form
from ..types import Completion, Problem
from .beam import beam_search
from .dvts import dvts
from .particle import particle_filter
from .scorers import build_scorer
from .tree import SearchConfig, SearchResult
from .weighted_bon import weighted_best_of_n

DEFAULT_MAX_STEPS = 40


@dataclass
class Searched:
    completion: Completion
    result: SearchResult
    prm_tokens: int
    prm_s: float
    flop_tokens: float  # policy tokens + PRM tokens * (PRM parameters / policy parameters)

    def rows(self) -> list[tuple]:
        """search_steps rows (store.SEARCH_STEP_COLUMNS order)."""
        return [
            (
                n.id,
                n.parent,
                n.depth,
                n.text,
                n.policy_tokens,
                n.fed_tokens,
                n.policy_s,
                n.prm_tokens,
                n.prm_s,
                n.step_reward,
                n.reward,
                n.finish,
                int(n.survived),
            )
            for n in self.result.nodes
        ]


def stepper_for(engine: Any, separator: str = DEFAULT_SEPARATOR) -> Stepper:
    """The stepper of an engine: one it offers itself (`engine.stepper(separator)`: test
    engines, future engines) or the in-process hf implementation (engines/hf_steps)."""
    own = getattr(engine, "stepper", None)
    if callable(own):
        return own(separator)
    if getattr(engine, "name", None) == "hf" and hasattr(engine, "model"):
        from ..engines.hf_steps import HFStepper

        return HFStepper.of_engine(engine, separator)
    raise UserError(
        f"engine {getattr(engine, 'name', type(engine).__name__)!r} cannot run step-wise search "
        "(wbon/beam/dvts/pf strategies); use --engine hf"
    )


class Searcher:
    """A variant's engine as a stepper, with one scorer per scorer name (loaded on first use)."""

    def __init__(self, engine: Any, *, device: str = "cpu", prm_format: str | None = None) -> None:
        self.stepper = stepper_for(engine, DEFAULT_SEPARATOR)
        self.device = device
        self.prm_format = prm_format
        self._scorers: dict[str, Any] = {}
        model = getattr(self.stepper, "model", None)
        self.policy_params = float(sum(p.numel() for p in model.parameters())) if model is not None else None

    def scorer(self, name: str):
        if name not in self._scorers:
            self._scorers[name] = build_scorer(
                name, self.stepper, prm_format=self.prm_format, device=self.device
            )
        return self._scorers[name]

    def run(
        self,
        form: SearchForm | str,
        problem: Problem,
        *,
        temperature: float,
        top_p: float,
        seed: int,
        max_new_tokens: int,
        max_steps: int | None,
        extract: Callable[[str], str | None],
    ) -> Searched:
        form = parse_search_form(form) if isinstance(form, str) else form
        scorer = self.scorer(form.scorer)
        config = SearchConfig(
            n=form.n,
            m=form.m,
            temperature=temperature,
            top_p=top_p,
            max_steps=max_steps or DEFAULT_MAX_STEPS,
            max_new_tokens=max_new_tokens,
            seed=seed,
            agg=form.agg,
            pf_temperature=form.pf_temperature,
        )
        if form.kind == "wbon":
            res = weighted_best_of_n(problem.messages, config, self.stepper, scorer, extract)
        else:
            fn = {"beam": beam_search, "dvts": dvts, "pf": particle_filter}[form.kind]
            res = fn(problem.messages, config, self.stepper, scorer)
        final_state = res.final_state
        comp = self.stepper.completion(
            final_state, res.final.finish or "length", completion_tokens=res.policy_tokens, cost_s=res.seconds
        )
        prm_s = sum(n.prm_s for n in res.nodes)
        ratio = 1.0
        if scorer.params is not None and self.policy_params:
            ratio = scorer.params / self.policy_params
        return Searched(comp, res, res.prm_tokens, prm_s, res.policy_tokens + res.prm_tokens * ratio)
