"""`tools`: seeded questions that need 1-4 tool calls in the simulated environment (`env`).

Each problem is answered in a multi-turn episode (`thinkcost.episodes`): the model sees the
tool schemas through its chat template's `tools=` argument, calls tools in its native format,
reads their results as `tool` messages, and ends with a final answer in \\boxed{}. The gold
answer comes from running the canonical call chain through the same environment, so it is
exactly what a model that calls the tools correctly can read off their results.

Problem i depends only on (seed, i). `meta["difficulty"]` is the number of calls the
canonical chain needs, so per-level reports split by it.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction
from typing import Any

from thinkcost.errors import UserError
from thinkcost.tasks import TASKS
from thinkcost.tasks.base import seeded_problems
from thinkcost.types import Problem, Verdict
from thinkcost.verify.math import extract_answer

from . import env
from .calls import Call

DEFAULT_LIMIT = 64
ON_ERROR = ("continue", "stop")
SYSTEM_PROMPT = (
    "You are a helpful assistant with access to tools. Use the tools to look facts up and to "
    "compute instead of guessing. When you know the result, reply with the final answer as a "
    "single number in \\boxed{}."
)


def _price(name: str) -> Fraction:
    return Fraction(env.PRODUCTS[name]["price_usd"])


def _chain(*calls: tuple[str, dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"name": n, "arguments": a} for n, a in calls]


def _run(chain: list[dict[str, Any]]) -> Any:
    """The value of the last call of a canonical chain (it must succeed: a generator bug otherwise)."""
    r = None
    for c in chain:
        r = env.call(c["name"], c["arguments"])
        assert r.error is None, (c, r)
    assert r is not None
    return r.value


def _one(rng: random.Random, calls: int) -> tuple[str, list[dict[str, Any]], Fraction, int]:
    """(question, canonical chain, exact answer, decimals asked for) of a `calls`-call problem."""
    items = sorted(env.PRODUCTS)
    a, b, c = rng.sample(items, 3)
    kind = rng.randrange(3) if calls == 1 else rng.randrange(2)
    if calls == 1 and kind == 0:
        x, y, z = rng.randint(120, 9999), rng.randint(12, 999), rng.randint(100, 99999)
        op = rng.choice(["-", "+"])
        expr = f"{x} * {y} {op} {z}"
        chain = _chain(("calculator", {"expression": expr}))
        return f"What is {expr}?", chain, _run(chain), 0
    if calls == 1 and kind == 1:
        pairs = [("mi", "km", "miles", "kilometers"), ("lb", "kg", "pounds", "kilograms"),
                 ("gal", "l", "gallons", "liters"), ("ft", "m", "feet", "meters"),
                 ("in", "cm", "inches", "centimeters"), ("oz", "g", "ounces", "grams")]  # fmt: skip
        f, t, fw, tw = rng.choice(pairs)
        v = Fraction(rng.randint(15, 2000), 10)
        chain = _chain(("convert_units", {"value": float(v), "from_unit": f, "to_unit": t}))
        return f"How many {tw} are {env.fmt_number(v)} {fw}?", chain, _run(chain), 2
    if calls == 1:
        chain = _chain(("lookup_product", {"item": a}))
        return f"How many units of the {a} are in stock?", chain, Fraction(_run(chain)["stock"]), 0
    if calls == 2 and kind == 0:
        n = rng.randint(3, 19)
        p = env.PRODUCTS[a]["price_usd"]
        chain = _chain(("lookup_product", {"item": a}), ("calculator", {"expression": f"{n} * {p}"}))
        return f"What do {n} units of the {a} cost in total, in USD?", chain, _run(chain), 2
    if calls == 2:
        w = env.PRODUCTS[a]["weight_lb"]
        chain = _chain(
            ("lookup_product", {"item": a}),
            ("convert_units", {"value": float(w), "from_unit": "lb", "to_unit": "kg"}),
        )
        return f"How much does the {a} weigh in kilograms?", chain, _run(chain), 2
    if calls == 3 and kind == 0:
        if _price(a) < _price(b):
            a, b = b, a
        pa, pb = env.PRODUCTS[a]["price_usd"], env.PRODUCTS[b]["price_usd"]
        chain = _chain(
            ("lookup_product", {"item": a}),
            ("lookup_product", {"item": b}),
            ("calculator", {"expression": f"{pa} - {pb}"}),
        )
        return f"How many USD more does the {a} cost than the {b}?", chain, _run(chain), 2
    if calls == 3:
        n = rng.randint(3, 12)
        w = env.PRODUCTS[a]["weight_lb"]
        total = env.fmt_number(n * Fraction(w))
        chain = _chain(
            ("lookup_product", {"item": a}),
            ("calculator", {"expression": f"{n} * {w}"}),
            ("convert_units", {"value": float(Fraction(total)), "from_unit": "lb", "to_unit": "kg"}),
        )
        return f"What is the total weight in kilograms of {n} units of the {a}?", chain, _run(chain), 2
    if kind == 0:
        ps = [env.PRODUCTS[x]["price_usd"] for x in (a, b, c)]
        chain = _chain(
            *(("lookup_product", {"item": x}) for x in (a, b, c)),
            ("calculator", {"expression": " + ".join(ps)}),
        )
        q = f"What is the total price in USD of one {a}, one {b} and one {c}?"
        return q, chain, _run(chain), 2
    wa, wb = env.PRODUCTS[a]["weight_lb"], env.PRODUCTS[b]["weight_lb"]
    total = env.fmt_number(Fraction(wa) + Fraction(wb))
    chain = _chain(
        ("lookup_product", {"item": a}),
        ("lookup_product", {"item": b}),
        ("calculator", {"expression": f"{wa} + {wb}"}),
        ("convert_units", {"value": float(Fraction(total)), "from_unit": "lb", "to_unit": "kg"}),
    )
    return f"How many kilograms do one {a} and one {b} weigh together?", chain, _run(chain), 2


def _check_int(task: str, opt: str, v: Any, lo: int, hi: int) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise UserError(f"{task} option {opt}={v!r} must be an integer in [{lo}, {hi}]")
    return v


@TASKS.register("tools")
class ToolsTask:
    """Multi-turn tool use (calculator, unit conversion, product database): 1-4 calls per question."""

    name = "tools"
    source = "procedural (offline, seeded), simulated tools"
    size = "unbounded"
    metric = "accuracy (final number; 2-decimal answers within 0.005)"
    answer_type = "number"
    episodic = True  # answered in a multi-turn episode (thinkcost.episodes), not one generation

    def __init__(
        self, min_calls: int = 1, max_calls: int = 4, max_turns: int = 6, on_error: str = "continue"
    ) -> None:
        self.min_calls = _check_int("tools", "min_calls", min_calls, 1, 4)
        self.max_calls = _check_int("tools", "max_calls", max_calls, 1, 4)
        if min_calls > max_calls:
            raise UserError(f"tools option min_calls={min_calls} must be <= max_calls={max_calls}")
        self.max_turns = _check_int("tools", "max_turns", max_turns, 1, 32)
        if on_error not in ON_ERROR:
            raise UserError(f"tools option on_error={on_error!r}: expected one of {', '.join(ON_ERROR)}")
        self.on_error = on_error

    def problem(self, index: int, seed: int = 0) -> Problem:
        """Problem `index` for `seed`, from its own RNG (independent of how many are asked for)."""
        rng = random.Random(f"tools:{seed}:{index}")
        calls = rng.randint(self.min_calls, self.max_calls)
        question, chain, exact, decimals = _one(rng, calls)
        ask = " Give the answer rounded to 2 decimal places." if decimals else ""
        tol = "0.005" if decimals else "0"
        gold = env.fmt_number(round(exact, decimals)) if decimals else env.fmt_number(exact)
        return Problem(
            task=self.name,
            id=f"tools-{index:06d}",
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT, "tools": env.SCHEMAS},  # type: ignore[dict-item]
                {"role": "user", "content": question + ask},
            ],
            gold=gold,
            meta={
                "difficulty": calls,
                "calls": calls,
                "chain": chain,
                "exact": str(exact),
                "tolerance": tol,
                "question": question,
            },
        )

    def problems(self, limit: int | None = None, seed: int = 0) -> list[Problem]:
        """The first `limit` problems (default 64) of the sequence fixed by `seed`."""
        return seeded_problems("tools", self.problem, limit, seed, DEFAULT_LIMIT)

    def tools(self, problem: Problem) -> list[dict[str, Any]]:
        """The schemas the model is offered (OpenAI function-tool form)."""
        return env.SCHEMAS

    def execute(self, problem: Problem, c: Call) -> env.ToolResult:
        """Run one call in the simulated environment."""
        return env.call(c.name, c.arguments)

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """The final answer's number against the exact value, within the stated tolerance."""
        extracted, rule = extract_answer(answer_text or "")
        x = env.to_fraction(extracted) if extracted is not None else None
        if x is None:
            return Verdict(False, extracted, rule if extracted is not None else "none")
        exact, tol = Fraction(problem.meta["exact"]), Fraction(problem.meta["tolerance"])
        return Verdict(abs(x - exact) <= tol, extracted, rule)

    @staticmethod
    def describe_chain(problem: Problem) -> str:
        """The canonical calls as one JSON line (reports, debugging)."""
        return json.dumps(problem.meta["chain"])
