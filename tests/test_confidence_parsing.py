"""Adversarial table for verbal-confidence parsing (the rules are in thinkcost.strategies.confidence)."""

import pytest

from thinkcost.strategies.confidence import parse_verbal_confidence, strip_confidence
from thinkcost.verify.math_answer import extract_answer

CASES = [
    # the plain forms
    ("Confidence: 85%", 0.85),
    ("confidence 0.8", 0.8),
    ("Confidence: 85/100", 0.85),
    ("**Confidence:** 70 %", 0.70),
    ("**Confidence**: 70%", 0.70),
    ("__Confidence__: 0.7", 0.70),
    ("I am 90% confident", 0.90),
    ("Confidence in my answer: 85%", 0.85),
    ("Confidence: 85 out of 100", 0.85),
    # decimal point vs integer: <= 1 is a probability, (1, 100] a percent, "1" alone is certainty
    ("Confidence: 1", 1.0),
    ("Confidence: 1.0", 1.0),
    ("Confidence: 1%", 0.01),
    ("Confidence: 50.5", 0.505),
    # sentence punctuation after the number
    ("confidence: 0.85.", 0.85),
    ("Confidence: 85.", 0.85),
    ("confidence: 85%.", 0.85),
    # LaTeX and unicode percent signs
    ("\\text{Confidence:} 85\\%", 0.85),
    ("Confidence: $85\\%$", 0.85),
    ("Confidence: 0.5\\%", 0.005),
    ("Confidence: 85\u066a", 0.85),
    # malformed numbers are not read
    ("Confidence: 8 5%", None),
    ("I am 8 5% confident", None),
    ("Confidence: 0,85", None),
    ("Confidence: 1e-1", None),
    # words -> missing
    ("Confidence: high", None),
    ("I am very confident.", None),
    ("Confidence: very high (about ninety percent)", None),
    # out of range -> missing, never clipped
    ("Confidence: 120%", None),
    ("Confidence: -5", None),
    ("I am 120% confident", None),
    # numbers that belong to the answer, with no confidence keyword
    ("The answer is 42.", None),
    ("The answer is 42%.", None),
    ("The answer is \\boxed{0.85}.", None),
    ("Answer: 35% of the students.\nConfidence: 60%", 0.60),
    ("Confidence: 90%\nThe answer is 42, i.e. 42% of 150.", 0.90),
    ("overconfidence: 85%", None),
    # a confidence keyword inside the reasoning, then the real statement: the last one wins
    ("My confidence: 30% at first, but let me recheck.\nThe answer is 7.\nConfidence: 80%", 0.80),
    ("I'm 90% confident that step 2 holds.\nThe answer is 5.\n**Confidence:** 0.6", 0.60),
    ("Confidence: 85%\nOn reflection, confidence: high", None),
]


@pytest.mark.parametrize("text, expected", CASES)
def test_parse(text, expected):
    got = parse_verbal_confidence(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_table_has_at_least_twenty_cases():
    assert len(CASES) >= 20


@pytest.mark.parametrize(
    "text, answer",
    [
        ("42\nConfidence: 90%", "42"),
        ("The result is 17.\nI am 95% confident.", "17"),
        ("x = 3\n**Confidence:** 0.7", "3"),
        ("12 apples, confidence: 80%, maybe 13", "13"),
    ],
)
def test_strip_confidence_lets_the_last_number_be_the_answer(text, answer):
    assert extract_answer(strip_confidence(text))[0] == answer


def test_without_stripping_the_confidence_is_read_as_the_answer():
    assert extract_answer("42\nConfidence: 90%")[0] == "90"


def test_strip_confidence_keeps_text_without_statements():
    text = "The answer is 42%. I am confident."
    assert strip_confidence(text) == text
    assert strip_confidence("") == ""
