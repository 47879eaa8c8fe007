"""The simulated world the `tools` task's episodes act in: a calculator, a unit converter and
a small product database, each a pure function of its arguments.

Deterministic on purpose: a tool result depends only on the call, never on a clock, a network
or a random draw, so an episode replays exactly and its gold answer is computed by calling the
same functions the model calls. Arithmetic is exact (`Fraction`); results are written as
decimals of at most `DIGITS` places, which is what the model reads back.

Every call returns a `ToolResult`; a call the environment cannot serve (an unknown tool,
arguments that break the schema, an expression that does not evaluate) is a result with an
`error` kind, never an exception: the episode records it and goes on.
"""

from __future__ import annotations

import ast
import json
import random
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

DIGITS = 6  # decimals a tool writes (results are rounded half away from zero)
MAX_EXPR_CHARS = 200
MAX_MAGNITUDE = Fraction(10) ** 15
MAX_EXPONENT = 12


@dataclass(frozen=True)
class ToolResult:
    """What one call produced: `content` (JSON text the model reads) and, for a call the
    environment refused, its kind: "unknown-tool" or "bad-arguments"."""

    content: str
    error: str | None = None
    value: Any = None  # the result as a Python value (gold computation, tests)


def fmt_number(x: Fraction) -> str:
    """`x` as a decimal of at most DIGITS places, trailing zeros dropped ("2.5", "-3", "0.333333")."""
    scale = 10**DIGITS
    n = abs(x) * scale
    q = int(n)
    if n - q >= Fraction(1, 2):
        q += 1
    sign = "-" if x < 0 and q else ""
    whole, frac = divmod(q, scale)
    digits = f"{frac:0{DIGITS}d}".rstrip("0")
    return f"{sign}{whole}.{digits}" if digits else f"{sign}{whole}"


def to_fraction(v: Any) -> Fraction | None:
    """A JSON number (or a numeric string) as an exact fraction; None if it is not a number."""
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return Fraction(v)
    if isinstance(v, float):
        return Fraction(repr(v)) if v == v and abs(v) != float("inf") else None
    if isinstance(v, str):
        try:
            return Fraction(v.strip().replace(",", ""))
        except (ValueError, ZeroDivisionError):
            return None
    return None


# --------------------------------------------------------------------------- calculator


class CalcError(ValueError):
    """An expression the calculator refuses (syntax, an operation it lacks, division by zero)."""


_BINOPS = {ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.FloorDiv, ast.Mod}


def evaluate(expression: str) -> Fraction:
    """Exact value of an arithmetic expression: numbers, + - * / // % **, unary minus and
    parentheses. Parsed to a Python AST and walked node by node, so nothing is ever executed:
    names, calls, attributes and every other node are refused."""
    if not isinstance(expression, str):
        raise CalcError("expression must be a string")
    text = expression.strip().replace("×", "*").replace("÷", "/").replace("^", "**")
    if not text:
        raise CalcError("empty expression")
    if len(text) > MAX_EXPR_CHARS:
        raise CalcError(f"expression longer than {MAX_EXPR_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise CalcError(f"cannot parse {expression!r}") from None
    return _eval(tree.body)


def _eval(node: ast.AST) -> Fraction:
    if isinstance(node, ast.Constant) and type(node.value) in (int, float):
        return _bounded(Fraction(repr(node.value)) if isinstance(node.value, float) else Fraction(node.value))
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        a, b = _eval(node.left), _eval(node.right)
        op = type(node.op)
        if op is ast.Add:
            return _bounded(a + b)
        if op is ast.Sub:
            return _bounded(a - b)
        if op is ast.Mult:
            return _bounded(a * b)
        if op is ast.Pow:
            if b.denominator != 1 or abs(b) > MAX_EXPONENT:
                raise CalcError(f"exponents must be integers of magnitude <= {MAX_EXPONENT}")
            if a == 0 and b < 0:
                raise CalcError("division by zero")
            return _bounded(a ** int(b))
        if b == 0:
            raise CalcError("division by zero")
        if op is ast.Div:
            return _bounded(a / b)
        if op is ast.FloorDiv:
            return Fraction(a // b)
        return _bounded(a % b)
    raise CalcError(f"unsupported element {type(node).__name__} (numbers and + - * / ** only)")


def _bounded(x: Fraction) -> Fraction:
    if abs(x) > MAX_MAGNITUDE:
        raise CalcError("result too large")
    return x


# --------------------------------------------------------------------------- units

# factor to the dimension's base unit (m, kg, s, l), exact
_UNITS: dict[str, tuple[str, Fraction]] = {
    "mm": ("length", Fraction(1, 1000)),
    "cm": ("length", Fraction(1, 100)),
    "m": ("length", Fraction(1)),
    "km": ("length", Fraction(1000)),
    "in": ("length", Fraction("0.0254")),
    "ft": ("length", Fraction("0.3048")),
    "yd": ("length", Fraction("0.9144")),
    "mi": ("length", Fraction("1609.344")),
    "g": ("mass", Fraction(1, 1000)),
    "kg": ("mass", Fraction(1)),
    "oz": ("mass", Fraction("0.45359237") / 16),
    "lb": ("mass", Fraction("0.45359237")),
    "s": ("time", Fraction(1)),
    "min": ("time", Fraction(60)),
    "h": ("time", Fraction(3600)),
    "day": ("time", Fraction(86400)),
    "ml": ("volume", Fraction(1, 1000)),
    "l": ("volume", Fraction(1)),
    "gal": ("volume", Fraction("3.785411784")),
}
# the names a model may write for each unit
_ALIASES = {
    "millimeter": "mm", "millimeters": "mm", "millimetre": "mm", "millimetres": "mm",
    "centimeter": "cm", "centimeters": "cm", "centimetre": "cm", "centimetres": "cm",
    "meter": "m", "meters": "m", "metre": "m", "metres": "m",
    "kilometer": "km", "kilometers": "km", "kilometre": "km", "kilometres": "km",
    "inch": "in", "inches": "in", "foot": "ft", "feet": "ft", "yard": "yd", "yards": "yd",
    "mile": "mi", "miles": "mi",
    "gram": "g", "grams": "g", "kilogram": "kg", "kilograms": "kg", "kgs": "kg",
    "ounce": "oz", "ounces": "oz", "pound": "lb", "pounds": "lb", "lbs": "lb",
    "second": "s", "seconds": "s", "sec": "s", "minute": "min", "minutes": "min",
    "hour": "h", "hours": "h", "hr": "h", "days": "day",
    "milliliter": "ml", "milliliters": "ml", "millilitre": "ml", "liter": "l", "liters": "l",
    "litre": "l", "litres": "l", "gallon": "gal", "gallons": "gal",
}  # fmt: skip
UNIT_NAMES = tuple(_UNITS)


def unit_key(name: Any) -> str | None:
    """The table's key for a unit name as a model may write it ("Miles" -> "mi"); None if unknown."""
    if not isinstance(name, str):
        return None
    k = name.strip().lower().rstrip(".")
    return k if k in _UNITS else _ALIASES.get(k)


def convert_exact(value: Fraction, from_unit: str, to_unit: str) -> Fraction:
    """`value` in `from_unit` expressed in `to_unit` (table keys of one dimension)."""
    (d1, f1), (d2, f2) = _UNITS[from_unit], _UNITS[to_unit]
    if d1 != d2:
        raise ValueError(f"cannot convert {d1} ({from_unit}) to {d2} ({to_unit})")
    return value * f1 / f2


# --------------------------------------------------------------------------- database

_COLOURS = ["red", "blue", "green", "black", "white", "silver", "yellow", "orange"]
_THINGS = ["kettle", "lamp", "backpack", "toaster", "helmet", "teapot", "drill", "blender", "speaker", "tent"]


def _build_products() -> dict[str, dict[str, Any]]:
    """The database: one fixed table, the same for every seed (tasks vary what they ask)."""
    rng = random.Random("thinkcost-tools-db-v1")
    names = [f"{c} {t}" for t in _THINGS for c in _COLOURS]
    rng.shuffle(names)
    out = {}
    for name in names[:40]:
        out[name] = {
            "item": name,
            "price_usd": str(fmt_number(Fraction(rng.randint(500, 25000), 100))),
            "weight_lb": str(fmt_number(Fraction(rng.randint(5, 400), 10))),
            "stock": rng.randint(0, 250),
        }
    return out


PRODUCTS = _build_products()


def product(name: Any) -> dict[str, Any] | None:
    """A product's record by name (case and surrounding space ignored); None if absent."""
    if not isinstance(name, str):
        return None
    return PRODUCTS.get(" ".join(name.lower().split()))


# --------------------------------------------------------------------------- schemas + dispatch

SCHEMAS: list[dict[str, Any]] = [
    {
        "type": "function",
        "function": {
            "name": "calculator",
            "description": "Evaluate an arithmetic expression exactly (numbers, + - * / ** and parentheses).",
            "parameters": {
                "type": "object",
                "properties": {
                    "expression": {
                        "type": "string",
                        "description": "the numbers of the question combined with + - * / ** and parentheses",
                    }
                },
                "required": ["expression"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "convert_units",
            "description": "Convert a quantity between units: mm cm m km in ft yd mi, g kg oz lb, s min h day, ml l gal.",
            "parameters": {
                "type": "object",
                "properties": {
                    "value": {"type": "number"},
                    "from_unit": {"type": "string", "description": "e.g. mi"},
                    "to_unit": {"type": "string", "description": "e.g. km"},
                },
                "required": ["value", "from_unit", "to_unit"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "lookup_product",
            "description": "Look up a product by name: its price in USD, weight in pounds and units in stock.",
            "parameters": {
                "type": "object",
                "properties": {
                    "item": {
                        "type": "string",
                        "description": "the product's colour and kind, as the question names it",
                    }
                },
                "required": ["item"],
            },
        },
    },
]
TOOL_NAMES = tuple(s["function"]["name"] for s in SCHEMAS)


def _bad(msg: str) -> ToolResult:
    return ToolResult(json.dumps({"error": msg}), "bad-arguments")


def _missing_or_extra(args: dict, required: tuple[str, ...]) -> str | None:
    missing = [k for k in required if k not in args]
    extra = [k for k in args if k not in required]
    if missing:
        return f"missing argument(s): {', '.join(missing)}"
    if extra:
        return f"unexpected argument(s): {', '.join(extra)}"
    return None


def call(name: Any, arguments: Any) -> ToolResult:
    """Run one tool call against the environment (never raises)."""
    if name not in TOOL_NAMES:
        return ToolResult(
            json.dumps({"error": f"unknown tool {name!r}; available: {', '.join(TOOL_NAMES)}"}),
            "unknown-tool",
        )
    if not isinstance(arguments, dict):
        return _bad("arguments must be a JSON object")
    if name == "calculator":
        why = _missing_or_extra(arguments, ("expression",))
        if why:
            return _bad(why)
        try:
            v = evaluate(arguments["expression"])
        except CalcError as e:
            return _bad(str(e))
        return ToolResult(json.dumps({"result": fmt_number(v)}), value=v)
    if name == "convert_units":
        why = _missing_or_extra(arguments, ("value", "from_unit", "to_unit"))
        if why:
            return _bad(why)
        x = to_fraction(arguments["value"])
        a, b = unit_key(arguments["from_unit"]), unit_key(arguments["to_unit"])
        if x is None:
            return _bad(f"value must be a number, got {arguments['value']!r}")
        for k, u in (("from_unit", a), ("to_unit", b)):
            if u is None:
                return _bad(f"unknown unit {arguments[k]!r} for {k}; known: {', '.join(UNIT_NAMES)}")
        try:
            v = convert_exact(x, a, b)  # type: ignore[arg-type]
        except ValueError as e:
            return _bad(str(e))
        return ToolResult(json.dumps({"value": fmt_number(v), "unit": b}), value=v)
    why = _missing_or_extra(arguments, ("item",))
    if why:
        return _bad(why)
    rec = product(arguments["item"])
    if rec is None:
        return ToolResult(json.dumps({"error": f"no product named {arguments['item']!r}"}), value=None)
    return ToolResult(json.dumps(rec), value=rec)
