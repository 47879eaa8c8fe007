"""The pairs of benchmarks/verify_math.py: at least 300, all distinct, every kind with both verdicts,
labels that follow from the values (never from our checker), realistic completions."""

from __future__ import annotations

import importlib.util
import re
import sys
from fractions import Fraction
from pathlib import Path

import pytest

BENCH = Path(__file__).parents[1] / "benchmarks"
KINDS = {
    "integer",
    "negative",
    "thousands",
    "fraction",
    "decimal-vs-fraction",
    "sqrt",
    "pi",
    "mixed-number",
    "percent",
    "units",
    "scientific",
    "interval",
    "set",
    "tuple",
    "matrix",
    "equation",
    "multiple",
    "expression",
    "base",
    "text",
}


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("verify_math_pairs", BENCH / "verify_math_pairs.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # NamedTuple needs its module importable
    spec.loader.exec_module(module)
    return module


def test_at_least_300_distinct_pairs(bench):
    assert len(bench.PAIRS) >= 300
    keys = [bench.distinct_key(p) for p in bench.PAIRS]
    assert len(set(keys)) == len(keys), [k for k in keys if keys.count(k) > 1][:5]


def test_every_kind_has_right_and_wrong_answers(bench):
    assert {p.kind for p in bench.PAIRS} == KINDS
    for kind in KINDS:
        verdicts = {p.expected for p in bench.PAIRS if p.kind == kind}
        assert verdicts == {True, False}, kind
    n_true = sum(p.expected for p in bench.PAIRS)
    assert min(n_true, len(bench.PAIRS) - n_true) >= 0.4 * len(bench.PAIRS)


def _plain_value(s: str) -> Fraction | None:
    """Python's own reading of a plain number or p/q (commas, unicode minus, LaTeX \\frac{p}{q})."""
    s = s.replace("\u2212", "-").replace("{,}", "").replace(",\\!", "").replace(",", "")
    m = re.fullmatch(r"\\[dt]?frac\{(-?\d+)\}\{(\d+)\}", s)
    if m:
        return Fraction(int(m.group(1)), int(m.group(2)))
    try:
        return Fraction(s)
    except ValueError:
        return None


def test_labels_of_plain_numbers_follow_from_their_values(bench):
    # an independent check of the labels where Python can read both sides
    checked = 0
    for p in bench.PAIRS:
        g, a = _plain_value(p.gold), _plain_value(p.answer)
        if g is not None and a is not None:
            assert (g == a) is p.expected, p
            checked += 1
    assert checked >= 150


def test_completions_end_with_the_answer_on_a_final_line(bench):
    texts = [bench.completion(p, i) for i, p in enumerate(bench.PAIRS)]
    assert len(set(zip(texts, (p.gold for p in bench.PAIRS), strict=True))) == len(texts)
    for p, text in zip(bench.PAIRS, texts, strict=True):
        reasoning, final = text.rsplit("\n\n", 1)
        assert len(reasoning) > 80 and p.answer in final
        assert "boxed" in final or "answer" in final.lower()
    styles = {re.sub(r"\s+", " ", t.rsplit("\n\n", 1)[1].split("$")[0][:12]) for t in texts}
    assert len(styles) >= 4  # boxed, **Final Answer**, "The answer is", "Final answer:"
