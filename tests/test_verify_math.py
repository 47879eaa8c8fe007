"""Answer extraction rules, exact number parsing, and the numeric verdict."""

from __future__ import annotations

from fractions import Fraction

import pytest

from thinkcost.verify.math import verify_numeric
from thinkcost.verify.math_answer import extract_answer, numbers_equal, parse_number


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"so $x = \boxed{\frac{1}{2}}$", (r"\frac{1}{2}", "boxed")),
        (r"\boxed{3} first, then \boxed{5}", ("5", "boxed")),
        (r"\fbox{7}", ("7", "boxed")),
        (r"\boxed{12} because 3 times 4", ("12", "boxed")),
        (r"\boxed{ 1,250 }", ("1,250", "boxed")),
        (r"\boxed{\{1, 2\}}", (r"\{1, 2\}", "boxed")),
        # an empty box (e.g. echoing the instructions) is not an answer
        (r"I will put it in \boxed{}. The answer is 42.", ("42", "answer-is")),
        (r"\boxed{8} ... then the template \boxed{}", ("8", "boxed")),
        # an unterminated box is ignored, the next rule applies
        (r"The answer is 9. \boxed{9", ("9", "answer-is")),
        (r"we get 4 and 6 so \boxed{10", ("10", "last-number")),
        ("The answer is 42.", ("42", "answer-is")),
        ("the ANSWER is: 17 apples", ("17", "answer-is")),
        ("So the final answer is $\\frac{3}{4}$.", (r"\frac{3}{4}", "answer-is")),
        ("**Answer:** 1,250", ("1,250", "answer-is")),
        ("**Final Answer**: $36$", ("36", "answer-is")),
        ("Answer: 3\nThen I checked 4 + 4 = 8.", ("3", "answer-is")),
        ("The answer is 5. Wait, no. The answer is 6.", ("6", "answer-is")),
        ("The answer is $12.", ("12", "answer-is")),
        # a marker followed by words is skipped; the last number is used
        ("The answer is not obvious. 3 + 4 = 7", ("7", "last-number")),
        ("First 12 apples, then 30, finally 45 in total", ("45", "last-number")),
        ("The result is \u22124", ("\u22124", "last-number")),
        ("x = -4", ("-4", "last-number")),
        ("17 - 5", ("5", "last-number")),
        ("ages 3-4", ("4", "last-number")),
        ("It costs 3.75 dollars", ("3.75", "last-number")),
        ("There are 1,000 of them", ("1,000", "last-number")),
        ("half is 7/2", ("7/2", "last-number")),
        # a letter or bracket before a number is not its sign
        ("I paid a 5", ("5", "last-number")),
        ("so we get B 7", ("7", "last-number")),
        ("The answer is [3]", ("3", "last-number")),
        ("The answer is $[1,2)$.", ("[1,2)", "answer-is")),
        # a closed $...$ span of math is the whole answer, even when it starts with a digit
        ("The answer is $3\\sqrt5$.", ("3\\sqrt5", "answer-is")),
        ("The answer is $2 \\cdot \\pi$.", ("2 \\cdot \\pi", "answer-is")),
        ("The answer is $4\\frac{3}{4}$.", ("4\\frac{3}{4}", "answer-is")),
        ("The answer is $7 - 5x + 2x^3$.", ("7 - 5x + 2x^3", "answer-is")),
        ("The answer is $0.5, -3$.", ("0.5, -3", "answer-is")),
        ("The answer is $12 \\text{ cm}$.", ("12 \\text{ cm}", "answer-is")),
        # ... but $ signs around words are currency: the number after the first one is the answer
        ("The answer is $12, which is $3 more than before.", ("12", "answer-is")),
        ("no digits here at all", (None, "none")),
        ("", (None, "none")),
    ],
)
def test_extract_answer(text: str, expected: tuple[str | None, str]) -> None:
    assert extract_answer(text) == expected


EQUAL = [
    ("3.50", "7/2"),
    ("3.5", "7/2"),
    ("1,000", "1000"),
    ("12,345.5", "24691/2"),
    ("\u22124", "-4"),
    ("\u20134", "-4"),
    ("+7", "7"),
    ("$12", "12"),
    ("\\$12.00", "12"),
    ("50%", "50"),
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac{3}{4}", "0.75"),
    ("\\tfrac{6}{3}", "2"),
    ("-\\frac{1}{4}", "-0.25"),
    ("\\frac12", "1/2"),
    ("12 \\text{ apples}", "12"),
    ("12 apples", "12"),
    ("x = 5", "5"),
    ("42.", "42"),
    ("007", "7"),
    ("0.1", "1/10"),
    ("$1{,}250$", "1250"),
    ("10,\\!080", "10080"),  # MATH's thousands separator
    ("1\\,000\\,000", "1000000"),  # a thin space between digit groups
    ("12\\,345.5", "24691/2"),
    ("90\u00b0", "90"),
]
NOT_EQUAL = [
    ("3.5", "3.51"),
    ("1,000", "100"),
    ("-4", "4"),
    ("1/3", "0.33"),
    ("12", "13"),
    ("2", "two"),
    ("1,00", "100"),  # not a valid thousands grouping
    ("1/0", "0"),
    ("abc", "abc"),  # not numbers at all
    ("", ""),
    ("3 + 4", "7"),
    ("12 apples and 3 pears", "12"),
    ("10,\\!08", "1008"),  # not a thousands grouping
    ("1\\,0000", "10000"),
]


@pytest.mark.parametrize(("a", "b"), EQUAL)
def test_numbers_equal(a: str, b: str) -> None:
    assert numbers_equal(a, b)
    assert numbers_equal(b, a)


@pytest.mark.parametrize(("a", "b"), NOT_EQUAL)
def test_numbers_not_equal(a: str, b: str) -> None:
    assert not numbers_equal(a, b)


@pytest.mark.parametrize(
    ("s", "value"),
    [
        ("1,000", Fraction(1000)),
        ("12,345.5", Fraction(24691, 2)),
        ("\u22123.25", Fraction(-13, 4)),
        ("\\frac{-3}{4}", Fraction(-3, 4)),
        ("1.5/3", Fraction(1, 2)),
        ("0", Fraction(0)),
        ("1e3", None),
        ("three", None),
        ("1/0", None),
        ("\\sqrt{2}", None),
    ],
)
def test_parse_number(s: str, value: Fraction | None) -> None:
    assert parse_number(s) == value


def test_verify_numeric_records_value_and_rule() -> None:
    v = verify_numeric("3 * 4 = 12, so \\boxed{12}.", "12")
    assert (v.correct, v.extracted, v.rule) == (True, "12", "boxed")
    v = verify_numeric("The answer is 13.", "12")
    assert (v.correct, v.extracted, v.rule) == (False, "13", "answer-is")
    v = verify_numeric("Total: 3.50 dollars", "7/2")
    assert (v.correct, v.rule) == (True, "last-number")


def test_verify_numeric_unparseable_or_empty() -> None:
    assert verify_numeric("", "5") == verify_numeric("   ", "5")
    v = verify_numeric("", "5")
    assert (v.correct, v.extracted, v.rule) == (False, None, "none")
    v = verify_numeric("I do not know.", "5")
    assert (v.correct, v.extracted, v.rule) == (False, None, "none")
    v = verify_numeric("\\boxed{x^2}", "5")
    assert (v.correct, v.extracted, v.rule) == (False, "x^2", "boxed")
