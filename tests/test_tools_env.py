"""The simulated tool environment and the `tools` task: exact answers checked against
independent computations, refusals as results (never exceptions), seeded determinism."""

from __future__ import annotations

import json
import subprocess
import sys
from fractions import Fraction

import pytest

from thinkcost.errors import UserError
from thinkcost.tasks import get_task
from thinkcost.tasks.tools import env
from thinkcost.tasks.tools.calls import Call


@pytest.mark.parametrize(
    "expr, value",
    [
        ("2 + 3 * 4", Fraction(14)),
        ("(2 + 3) * 4", Fraction(20)),
        ("1/3 + 1/6", Fraction(1, 2)),
        ("-2 ** 2", Fraction(-4)),  # Python's precedence: -(2**2)
        ("2 ^ 10", Fraction(1024)),
        ("0.1 + 0.2", Fraction(3, 10)),  # exact, not 0.30000000000000004
        ("7 // 2 + 7 % 2", Fraction(4)),
        ("3 × 4 ÷ 6", Fraction(2)),
        ("12.5 * 4 - 1e2", Fraction(-50)),
    ],
)
def test_calculator_is_exact(expr, value):
    assert env.evaluate(expr) == value
    assert json.loads(env.call("calculator", {"expression": expr}).content) == {
        "result": env.fmt_number(value)
    }


@pytest.mark.parametrize(
    "expr",
    [
        "__import__('os').system('true')",
        "abs(-3)",
        "x + 1",
        "(1).real",
        "[1, 2]",
        "lambda: 1",
        "1 if 1 else 2",
        "2 ** 100",
        "2 ** 0.5",
        "1 / 0",
        "5 % 0",
        "0 ** -1",
        "9" * 20,
        "1 + " * 100 + "1",
        "",
        "2 +",
        "'a' * 3",
        "True + 1",
    ],
)
def test_calculator_refuses_without_raising(expr):
    r = env.call("calculator", {"expression": expr})
    assert r.error == "bad-arguments" and "error" in json.loads(r.content)


def test_number_formatting_rounds_half_away_from_zero():
    assert [env.fmt_number(Fraction(x)) for x in ("2.5", "-3", "1/3", "2/3", "-0.0000004", "0.0000005")] == [
        "2.5", "-3", "0.333333", "0.666667", "0", "0.000001",
    ]  # fmt: skip


def test_unit_conversion_against_the_definitions():
    # definitions: 1 mi = 1609.344 m, 1 lb = 0.45359237 kg, 1 US gal = 231 in^3 = 3.785411784 l
    assert env.convert_exact(Fraction(1), "mi", "km") == Fraction("1.609344")
    assert env.convert_exact(Fraction(1), "lb", "kg") == Fraction("0.45359237")
    assert env.convert_exact(Fraction(1), "gal", "ml") == (Fraction("2.54") ** 3) * 231
    assert env.convert_exact(Fraction(16), "oz", "lb") == 1
    assert env.convert_exact(Fraction(1), "day", "min") == 1440
    for a in env.UNIT_NAMES:  # a round trip is the identity within every dimension
        for b in env.UNIT_NAMES:
            try:
                there = env.convert_exact(Fraction(7, 3), a, b)
            except ValueError:
                continue
            assert env.convert_exact(there, b, a) == Fraction(7, 3)
    r = env.call("convert_units", {"value": 10, "from_unit": "Miles", "to_unit": "kilometers"})
    assert json.loads(r.content) == {"value": "16.09344", "unit": "km"} and r.error is None


@pytest.mark.parametrize(
    "args",
    [
        {"value": 1, "from_unit": "mi", "to_unit": "kg"},
        {"value": 1, "from_unit": "furlong", "to_unit": "m"},
        {"value": "ten", "from_unit": "mi", "to_unit": "km"},
        {"value": True, "from_unit": "mi", "to_unit": "km"},
        {"value": 1, "from_unit": "mi"},
        {"value": 1, "from_unit": "mi", "to_unit": "km", "precision": 2},
    ],
)
def test_conversion_refusals(args):
    assert env.call("convert_units", args).error == "bad-arguments"


def test_database_lookup_and_refusals():
    name = sorted(env.PRODUCTS)[0]
    rec = json.loads(env.call("lookup_product", {"item": "  " + name.upper() + " "}).content)
    assert rec == env.PRODUCTS[name] and set(rec) == {"item", "price_usd", "weight_lb", "stock"}
    missing = env.call("lookup_product", {"item": "golden unicorn"})
    assert missing.error is None and "no product" in json.loads(missing.content)["error"]
    assert env.call("lookup_product", {"name": name}).error == "bad-arguments"
    assert env.call("lookup_product", ["red lamp"]).error == "bad-arguments"
    assert env.call("search_web", {"q": "x"}).error == "unknown-tool"
    assert env.call(None, {}).error == "unknown-tool"


def test_database_is_the_same_in_a_fresh_process():
    code = (
        "import json; from thinkcost.tasks.tools import env; print(json.dumps(env.PRODUCTS, sort_keys=True))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert json.loads(out) == env.PRODUCTS and len(env.PRODUCTS) == 40


def test_schemas_are_openai_function_tools():
    for s in env.SCHEMAS:
        f = s["function"]
        assert s["type"] == "function" and f["parameters"]["type"] == "object"
        assert set(f["parameters"]["required"]) == set(f["parameters"]["properties"])


def test_problems_are_seeded_and_independent_of_the_limit():
    t = get_task("tools")
    a, b = t.problems(20, 0), t.problems(5, 0)
    assert a[:5] == b and a == get_task("tools").problems(20, 0)
    assert [p.messages for p in t.problems(20, 1)] != [p.messages for p in a]
    assert {p.meta["calls"] for p in t.problems(40, 0)} == {1, 2, 3, 4}
    only3 = get_task("tools", min_calls=3, max_calls=3).problems(10, 0)
    assert all(p.meta["difficulty"] == 3 and len(p.meta["chain"]) == 3 for p in only3)


def test_gold_answers_against_independent_arithmetic():
    t = get_task("tools", min_calls=1, max_calls=4)
    checked = 0
    for p in t.problems(60, 3):
        q, chain = p.meta["question"], p.meta["chain"]
        items = [c["arguments"]["item"] for c in chain if c["name"] == "lookup_product"]
        price = [Fraction(env.PRODUCTS[i]["price_usd"]) for i in items]
        weight = [Fraction(env.PRODUCTS[i]["weight_lb"]) for i in items]
        lb = Fraction("0.45359237")
        if q.startswith("What do "):
            want = int(q.split()[2]) * price[0]
        elif q.startswith("How many USD more"):
            want = price[0] - price[1]
        elif q.startswith("What is the total price"):
            want = sum(price)
        elif q.startswith("How much does"):
            want = weight[0] * lb
        elif q.startswith("How many kilograms do"):
            want = sum(weight) * lb
        elif q.startswith("What is the total weight"):
            want = int(q.split(" of ")[1].split()[0]) * weight[0] * lb
        elif "in stock" in q:
            want = Fraction(env.PRODUCTS[items[0]]["stock"])
        else:
            continue
        assert abs(Fraction(p.meta["exact"]) - want) < Fraction(1, 10**6), q
        assert abs(Fraction(p.gold) - want) <= Fraction(p.meta["tolerance"]), q
        checked += 1
    assert checked >= 30


def test_verify_tolerance_and_execute():
    t = get_task("tools")
    p = next(p for p in t.problems(40, 0) if p.meta["tolerance"] == "0.005")
    exact = Fraction(p.meta["exact"])
    assert t.verify(p, f"\\boxed{{{env.fmt_number(exact)}}}").correct
    assert t.verify(p, f"\\boxed{{{float(exact + Fraction(4, 1000)):.4f}}}").correct
    assert not t.verify(p, f"\\boxed{{{float(exact + Fraction(6, 1000)):.4f}}}").correct
    assert not t.verify(p, "no number").correct
    q = next(p for p in t.problems(40, 0) if p.meta["tolerance"] == "0")
    assert (
        t.verify(q, f"\\boxed{{{q.gold}}}").correct
        and not t.verify(q, f"\\boxed{{{int(q.gold) + 1}}}").correct
    )
    first = p.meta["chain"][0]
    assert t.execute(p, Call(first["name"], first["arguments"])).error is None


@pytest.mark.parametrize(
    "opts",
    [
        {"min_calls": 0},
        {"max_calls": 5},
        {"min_calls": 3, "max_calls": 2},
        {"max_turns": 0},
        {"on_error": "x"},
    ],
)
def test_bad_options_are_user_errors(opts):
    with pytest.raises(UserError):
        get_task("tools", **opts)
