"""Step-level search strategies: `wbon@K:SCORER`, `beam@N/M:SCORER`, `dvts@N/M:SCORER`,
`pf@N:SCORER`, each optionally followed by `:agg=last|min|prod|mean` (how step rewards become a
path's reward) and, for pf, `:t=T` (the resampling softmax temperature). SCORER is `self` (the
policy judges its own steps) or `prm:MODEL` (a process reward model; format detected or set
with --prm-format).

Why a recipe of its own: a search is not "n samples, then a rule". Its engine work depends on
the scores along the way, so it stores one row per problem (the final answer, charged with
every token of the tree) and the tree in `search_steps`; the runner dispatches these recipes to
`thinkcost.search` instead of the sampling path. The recipe key carries the canonical form, so
two spellings of one search share rows and any change of N, M, scorer or aggregation does not.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import UserError
from .base import SELECTORS, Decision, Recipe, SamplingOptions, Strategy, positive_float, positive_int
from .vote import Attempt

AGGREGATIONS = ("last", "min", "prod", "mean")
KINDS = ("wbon", "beam", "dvts", "pf")


@dataclass(frozen=True)
class SearchForm:
    kind: str
    n: int
    m: int
    scorer: str
    agg: str = "last"
    pf_temperature: float = 1.0

    @property
    def canonical(self) -> str:
        head = f"{self.kind}@{self.n}/{self.m}" if self.kind in ("beam", "dvts") else f"{self.kind}@{self.n}"
        out = f"{head}:{self.scorer}"
        if self.agg != "last":
            out += f":agg={self.agg}"
        if self.kind == "pf" and self.pf_temperature != 1.0:
            out += f":t={self.pf_temperature:g}"
        return out


def parse_search_form(text: str) -> SearchForm:
    """`beam@8/4:self:agg=min` -> SearchForm; errors name the part and what was expected."""
    m = re.fullmatch(r"(wbon|beam|dvts|pf)@([^:]*):(.+)", text)
    if m is None:
        raise UserError(
            f"strategy {text!r}: expected wbon@K:SCORER, beam@N/M:SCORER, dvts@N/M:SCORER or pf@N:SCORER"
        )
    kind, size, rest = m.groups()
    if kind in ("beam", "dvts"):
        nm = size.split("/")
        if len(nm) != 2:
            raise UserError(f"strategy {text!r}: expected {kind}@N/M (N beams, M expansions each)")
        n = positive_int(nm[0], f"N in {kind}@N/M", text)
        width = positive_int(nm[1], f"M in {kind}@N/M", text)
        if width > n or n % width:
            raise UserError(f"strategy {text!r}: M must divide N (N/M beams are kept), got N={n}, M={width}")
    else:
        n = positive_int(size, f"the budget in {kind}@N", text)
        width = 1
    parts = rest.split(":")
    opts = {}
    while len(parts) > 1 and "=" in parts[-1]:
        key, _, val = parts.pop().partition("=")
        opts[key] = val
    scorer = ":".join(parts)
    if scorer != "self" and not (scorer.startswith("prm:") and scorer[4:].strip()):
        raise UserError(f"strategy {text!r}: scorer {scorer!r}: expected self or prm:MODEL")
    agg = opts.pop("agg", "last")
    if agg not in AGGREGATIONS:
        raise UserError(f"strategy {text!r}: agg={agg!r}: expected one of {', '.join(AGGREGATIONS)}")
    pf_t = 1.0
    if "t" in opts:
        if kind != "pf":
            raise UserError(f"strategy {text!r}: t= (resampling temperature) applies to pf@N only")
        pf_t = positive_float(opts.pop("t"), "t (resampling temperature)", text)
    if opts:
        raise UserError(
            f"strategy {text!r}: unknown option(s) {', '.join(sorted(opts))}; expected agg=, t= (pf)"
        )
    return SearchForm(kind, n, width, scorer, agg, pf_t)


def _decide(attempts: list[Attempt], columns: dict[str, list[Any]]) -> Decision:
    """The search already chose: its one stored row is the answer."""
    mine = [a for a in attempts if a.sample == 0]
    if not mine:
        return Decision(None, False, 0.0, None, ())
    a = mine[0]
    return Decision(a.answer, a.correct, float(a.correct), 0, (0,))


def _parser(kind: str):
    def parse(text: str, options: SamplingOptions) -> Strategy:
        form = parse_search_form(text)
        recipe = Recipe(n=1, temperature=options.temperature, top_p=options.top_p, search=form.canonical)
        return Strategy(form.canonical, recipe, _decide, scorer=form.scorer)

    return parse


_HELP = {
    "wbon": ("wbon@K:SCORER", "weighted best of K step-scored samples (sum of rewards per answer)"),
    "beam": ("beam@N/M:SCORER", "PRM beam search: N candidates, the N/M best expanded M ways per step"),
    "dvts": ("dvts@N/M:SCORER", "diverse verifier tree search: N/M independent greedy subtrees of width M"),
    "pf": ("pf@N:SCORER", "particle filtering: N particles resampled by softmax(reward/t) each step"),
}
for _i, _kind in enumerate(KINDS):
    SELECTORS.register(
        _kind, form=_HELP[_kind][0], help=_HELP[_kind][1] + "; SCORER self|prm:MODEL[:agg=A]", order=20 + _i
    )(_parser(_kind))
