"""The procedural arithmetic task: determinism, difficulty knob, exact gold answers, option errors."""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction

import pytest

from thinkcost.errors import UserError
from thinkcost.tasks import TASKS, get_task
from thinkcost.tasks.procedural import ArithmeticTask

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


def _eval(node: ast.AST) -> Fraction:
    """Exact evaluation of + - * / over integer literals; anything else is rejected."""
    if isinstance(node, ast.Expression):
        return _eval(node.body)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        return _BINOPS[type(node.op)](_eval(node.left), _eval(node.right))
    raise ValueError(f"unexpected node {ast.dump(node)}")


def _operands(expr: str) -> list[int]:
    return [n.value for n in ast.walk(ast.parse(expr, mode="eval")) if isinstance(n, ast.Constant)]


def _n_binops(expr: str) -> int:
    return sum(isinstance(n, ast.BinOp) for n in ast.walk(ast.parse(expr, mode="eval")))


def test_registered_and_built_by_name() -> None:
    assert "arithmetic" in TASKS.names()
    task = get_task("arithmetic", min_ops=2, max_ops=2)
    assert isinstance(task, ArithmeticTask) and task.name == "arithmetic"
    assert {p.meta["ops"] for p in task.problems(20, seed=1)} == {2}


def test_deterministic_and_independent_of_limit() -> None:
    task = ArithmeticTask()
    a, b = task.problems(10, seed=7), task.problems(10, seed=7)
    assert a == b
    assert task.problems(50, seed=7)[5] == a[5]
    assert task.problems(50, seed=7)[:10] == a
    other = task.problems(10, seed=8)
    assert [p.messages for p in other] != [p.messages for p in a]
    assert [p.id for p in a] == [f"arith-{i:06d}" for i in range(10)]
    assert len(task.problems(None, seed=0)) == 200


def test_messages_ask_for_boxed_answer() -> None:
    p = ArithmeticTask().problems(1, seed=0)[0]
    assert [m["role"] for m in p.messages] == ["system", "user"]
    user = p.messages[1]["content"]
    assert "\\boxed{}" in user and "step by step" in user
    assert user.endswith(p.meta["question"])
    assert p.task == "arithmetic"


@pytest.mark.parametrize(("lo", "hi"), [(1, 3), (2, 5), (4, 4), (1, 6)])
def test_ops_within_range_and_all_counts_used(lo: int, hi: int) -> None:
    probs = ArithmeticTask(min_ops=lo, max_ops=hi).problems(300, seed=3)
    counts = Counter(p.meta["ops"] for p in probs)
    assert set(counts) == set(range(lo, hi + 1))
    for p in probs:
        assert p.meta["difficulty"] == p.meta["ops"] == _n_binops(p.meta["expr"]) == len(p.meta["kinds"])


def test_gold_rederived_from_expression_and_operands_in_text() -> None:
    task = ArithmeticTask(min_ops=1, max_ops=6)
    for p in task.problems(500, seed=11):
        value = _eval(ast.parse(p.meta["expr"], mode="eval"))
        assert value.denominator == 1 and 0 <= value < 10_000, p.meta["expr"]
        assert p.gold == str(int(value)), (p.id, p.meta["expr"], p.gold)
        for n in _operands(p.meta["expr"]):
            assert re.search(rf"(?<![\d,]){n}(?![\d,])", p.meta["question"]), (n, p.meta["question"])


def test_default_mix_is_small_and_varied() -> None:
    probs = ArithmeticTask().problems(200, seed=0)
    kinds = Counter(k for p in probs for k in p.meta["kinds"])
    assert set(kinds) == {"add", "sub", "mul", "div"}
    assert max(int(p.gold) for p in probs) < 1000
    questions = [p.meta["question"] for p in probs]
    assert len(set(questions)) == len(questions)
    assert len({q.split()[0] for q in questions}) >= 10  # many different names
    assert sum("times as many" in q for q in questions) > 0
    assert sum("equal" in q for q in questions) > 0


def test_verify_accepts_gold_and_rejects_off_by_one() -> None:
    task = ArithmeticTask()
    for p in task.problems(30, seed=5):
        good = task.verify(p, f"Step by step ... so the total is \\boxed{{{p.gold}}}.")
        assert (good.correct, good.extracted, good.rule) == (True, p.gold, "boxed")
        bad = task.verify(p, f"\\boxed{{{int(p.gold) + 1}}}")
        assert not bad.correct
    assert not task.verify(p, "").correct


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"min_ops": 0}, "min_ops"),
        ({"max_ops": 7}, "max_ops"),
        ({"min_ops": 4, "max_ops": 2}, "min_ops"),
        ({"min_ops": "2"}, "min_ops"),
        ({"max_ops": 2.5}, "max_ops"),
    ],
)
def test_bad_option_values(options: dict, needle: str) -> None:
    with pytest.raises(UserError, match=needle) as err:
        get_task("arithmetic", **options)
    assert "[1, 6]" in str(err.value) or "<=" in str(err.value)


def test_unknown_task_and_option() -> None:
    with pytest.raises(UserError, match=r"unknown task 'x'; known: .*arithmetic"):
        get_task("x")
    with pytest.raises(UserError, match="'ops'"):
        get_task("arithmetic", ops=3)


@pytest.mark.parametrize("limit", [0, -1])
def test_bad_limit(limit: int) -> None:
    with pytest.raises(UserError, match="limit"):
        ArithmeticTask().problems(limit, seed=0)
