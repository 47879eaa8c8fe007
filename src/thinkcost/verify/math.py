"""Decide whether a completion's final answer equals a math gold answer.

Both graders read the answer with verify.math_answer (the extraction rules, whose name each Verdict
keeps, and exact numbers). `verify_numeric` compares exact numbers only (the arithmetic task).
`verify_math` compares exact numbers first and hands anything else (LaTeX, intervals, sets,
expressions) to the math-verify library through verify.checker_pool, in a separate process under a
deadline, because sympy can hang on adversarial input and math-verify's own timeout only works in
the main thread.
"""

from __future__ import annotations

import re
from fractions import Fraction

from thinkcost.types import Verdict
from thinkcost.verify.checker_pool import symbolic_equal
from thinkcost.verify.math_answer import extract_answer, numbers_equal, parse_number

_PERCENT_RE = re.compile(r"%|\bpercent\b", re.IGNORECASE)


def verify_numeric(answer_text: str, gold: str) -> Verdict:
    """Grade a completion against a numeric gold answer, recording what was read and by which rule."""
    if not answer_text or not answer_text.strip():
        return Verdict(False, None, "none")
    extracted, rule = extract_answer(answer_text)
    correct = extracted is not None and numbers_equal(extracted, gold)
    return Verdict(correct, extracted, rule)


def verify_math(answer_text: str, gold: str, *, timeout_s: float = 5.0) -> Verdict:
    """Grade a completion against a math gold answer (number, LaTeX, interval, set, expression).

    Our extraction picks the answer (its string and rule are kept). Two exact numbers are compared
    exactly, without math-verify ("0.333" is not 1/3). Anything else goes to math-verify, given at
    most `timeout_s` seconds; an overrun is a wrong answer with detail "timeout", never a hang.
    `detail` names the checker that decided: numeric | math-verify | timeout | math-verify error: <type>.
    """
    if not timeout_s > 0:  # also rejects NaN
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    extracted, rule = extract_answer(answer_text if isinstance(answer_text, str) else "")
    if extracted is None:
        return Verdict(False, None, "none", detail="no answer")
    gold = "" if gold is None else str(gold)
    x, y = parse_number(extracted), parse_number(gold)
    if x is not None and y is not None:
        return Verdict(_same_number(x, extracted, y, gold), extracted, rule, detail="numeric")
    correct, detail = symbolic_equal(extracted, gold, timeout_s)
    return Verdict(correct, extracted, rule, detail=detail)


def _same_number(x: Fraction, x_text: str, y: Fraction, y_text: str) -> bool:
    """Exact equality, where a number written with a percent sign may stand for itself or its hundredth.

    Gold answers drop the sign ("50") or convert it ("0.5") about equally often; "50%" matches both.
    """
    xs = {x, x / 100} if _PERCENT_RE.search(x_text) else {x}
    ys = {y, y / 100} if _PERCENT_RE.search(y_text) else {y}
    return not xs.isdisjoint(ys)
