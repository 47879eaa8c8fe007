"""Arithmetic word problems generated offline from a seed, with exact gold answers.

The default task: it needs no download, its verifier is exact, and its difficulty (number of
operations) is a knob. Problem i depends only on (seed, i), never on how many are asked for.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from thinkcost.errors import UserError
from thinkcost.tasks import TASKS
from thinkcost.tasks.base import seeded_problems
from thinkcost.types import Problem, Verdict
from thinkcost.verify import math as math_verify

DEFAULT_LIMIT = 200
OPS_RANGE = (1, 6)
MAX_VALUE = 999  # every intermediate value stays below 1000
MAX_PRODUCT = 500  # multiplications stay small enough for a 0.5B model to do in its head
SYSTEM_PROMPT = "You are a helpful assistant."
PROMPT = (
    "Solve the following problem. Think step by step, then give the final answer as a single "
    "number in \\boxed{}.\n\nProblem: "
)

_FEMALE = ["Mia", "Emma", "Olivia", "Sofia", "Ava", "Chloe", "Priya", "Hana", "Lena", "Zara"]
_MALE = ["Liam", "Noah", "Lucas", "Ethan", "Leo", "Omar", "Ravi", "Kenji", "Diego", "Sam"]
_NAMES = [(n, "f") for n in _FEMALE] + [(n, "m") for n in _MALE]
_OBJECTS = [
    "apples",
    "marbles",
    "stickers",
    "pencils",
    "cookies",
    "books",
    "coins",
    "cards",
    "shells",
    "stamps",
    "balloons",
    "crayons",
    "eggs",
    "beads",
    "oranges",
]
_CONTAINERS = [("box", "boxes"), ("bag", "bags"), ("jar", "jars"), ("basket", "baskets"), ("pack", "packs")]
_HELPERS = ["friend", "sister", "brother", "neighbor", "cousin", "teacher"]
# Phrasings per operation. {n}/{s}/{p}: owner's name, he/she, his/her; {h}: a helper; {k}: operand.
_STEP = {
    "add": [
        "Then {n} buys {k} more {obj}.",
        "{P} {h} gives {n} {k} more {obj}.",
        "After that, {n} finds {k} more {obj}.",
    ],
    "sub": [
        "Then {n} gives {k} {obj} to {p} {h}.",
        "After that, {n} loses {k} {obj}.",
        "{n} sells {k} of {p} {obj}.",
    ],
    "mul": [
        "By the end of the week, {n} has {k} times as many {obj} as before.",
        "Then {n} gets more {obj} until {s} has {k} times as many as before.",
    ],
    "div": [
        "{n} splits {p} {obj} into {k} equal groups and keeps only one group.",
        "{n} puts {p} {obj} into {k} {boxes} with the same number in each {box} and keeps only one {box}.",
    ],
}
# The count passes to a new person ({new}); {than} is " now" once the old owner's count changed.
_COMPARE = {
    "add": "{new} has {k} more {obj} than {n} has{than}.",
    "sub": "{new} has {k} fewer {obj} than {n} has{than}.",
    "mul": "{new} has {k} times as many {obj} as {n} has{than}.",
}
_SHARE = "{n} shares all of {p} {obj} equally among {k} {h}s."
_WEIGHTS = {"add": 3, "sub": 3, "mul": 2, "div": 2}


@dataclass(frozen=True)
class _Person:
    name: str
    subj: str  # he / she
    poss: str  # his / her


def _person(entry: tuple[str, str]) -> _Person:
    female = entry[1] == "f"
    return _Person(entry[0], "she" if female else "he", "her" if female else "his")


def _divisors(value: int, min_quotient: int) -> list[int]:
    return [k for k in range(2, 11) if value % k == 0 and value // k >= min_quotient]


def generate(rng: random.Random, n_ops: int) -> tuple[str, str, int, list[str]]:
    """One story with exactly n_ops operations: (question, expression, answer, op kinds)."""
    people = [_person(e) for e in rng.sample(_NAMES, 8)]
    owner, others = people[0], people[1:]
    obj = rng.choice(_OBJECTS)
    box, boxes = rng.choice(_CONTAINERS)
    kinds: list[str] = []
    timed = False  # has the owner's count changed over time (so "now" makes sense)?
    if rng.random() < 0.35:
        if rng.random() < 0.5:
            a, b = rng.randint(2, 9), rng.randint(2, 12)
            value, expr, kinds = a * b, f"({a} * {b})", ["mul"]
            lines = [f"{owner.name} has {a} {boxes} with {b} {obj} in each {box}."]
        else:
            a, b = rng.randint(2, 30), rng.randint(2, 30)
            value, expr, kinds = a + b, f"({a} + {b})", ["add"]
            lines = [f"{owner.name} collects {a} {obj} on Monday and {b} {obj} on Tuesday."]
    else:
        value = rng.randint(2, 50)
        expr = str(value)
        lines = [f"{owner.name} has {value} {obj}."]
    question = f"How many {obj} does {{who}} have{{now}}?"

    while len(kinds) < n_ops:
        last = len(kinds) == n_ops - 1
        feasible = {
            "add": value + 2 <= MAX_VALUE,
            "sub": value >= 3,
            "mul": value * 2 <= MAX_PRODUCT,
            "div": bool(_divisors(value, 1 if last else 2)),
        }
        names = [op for op in _WEIGHTS if feasible[op]]
        op = rng.choices(names, weights=[_WEIGHTS[o] for o in names])[0]
        compare = op != "div" and rng.random() < 0.3 and bool(others)
        h = rng.choice(_HELPERS)
        if op == "add":
            k = rng.randint(2, min(50, MAX_VALUE - value))
            value, expr = value + k, f"({expr} + {k})"
        elif op == "sub":
            k = rng.randint(2, min(50, value - 1))
            value, expr = value - k, f"({expr} - {k})"
        elif op == "mul":
            k = rng.randint(2, min(5, MAX_PRODUCT // value))
            value, expr = value * k, f"({expr} * {k})"
        else:
            k = rng.choice(_divisors(value, 1 if last else 2))
            value, expr = value // k, f"({expr} / {k})"
        fields = dict(n=owner.name, s=owner.subj, p=owner.poss, P=owner.poss.capitalize(), h=h, k=k, obj=obj)
        if compare:
            new = others.pop(0)
            lines.append(_COMPARE[op].format(new=new.name, than=" now" if timed else "", **fields))
            owner, timed = new, False
        elif op == "div" and last and rng.random() < 0.5:
            lines.append(_SHARE.format(**fields))
            question = f"How many {obj} does each {h} get?"
            timed = True
        else:
            lines.append(rng.choice(_STEP[op]).format(box=box, boxes=boxes, **fields))
            timed = True
        kinds.append(op)
    text = " ".join([*lines, question.format(who=owner.name, now=" now" if timed else "")])
    return text, expr, value, kinds


@TASKS.register("arithmetic")
class ArithmeticTask:
    """Procedural word problems with min_ops..max_ops operations (add, subtract, multiply, exact divide)."""

    name = "arithmetic"
    source = "procedural (offline, seeded)"
    size = "unbounded"
    metric = "accuracy (exact numeric)"
    answer_type = "number"

    def __init__(self, min_ops: int = 1, max_ops: int = 3) -> None:
        lo, hi = OPS_RANGE
        for opt, v in (("min_ops", min_ops), ("max_ops", max_ops)):
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise UserError(f"arithmetic option {opt}={v!r} must be an integer in [{lo}, {hi}]")
        if min_ops > max_ops:
            raise UserError(f"arithmetic option min_ops={min_ops} must be <= max_ops={max_ops}")
        self.min_ops, self.max_ops = min_ops, max_ops

    def problem(self, index: int, seed: int = 0) -> Problem:
        """Problem number `index` for `seed`; its own RNG makes it independent of the list length."""
        rng = random.Random(f"{seed}:{index}")
        n_ops = rng.randint(self.min_ops, self.max_ops)
        text, expr, value, kinds = generate(rng, n_ops)
        return Problem(
            task=self.name,
            id=f"arith-{index:06d}",
            messages=[
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": PROMPT + text},
            ],
            gold=str(value),
            meta={"ops": n_ops, "difficulty": n_ops, "expr": expr, "kinds": kinds, "question": text},
        )

    def problems(self, limit: int | None = None, seed: int = 0) -> list[Problem]:
        """The first `limit` problems (default 200) of the sequence fixed by `seed`."""
        return seeded_problems("arithmetic", self.problem, limit, seed, DEFAULT_LIMIT)

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """Exact numeric check of the extracted final answer against the generated gold."""
        return math_verify.verify_numeric(answer_text, problem.gold)
