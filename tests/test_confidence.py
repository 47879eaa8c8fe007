import re

import pytest

from thinkcost.strategies.confidence import CONFIDENCE_INSTRUCTION, parse_verbal_confidence

CASES = [
    # the documented forms
    ("Confidence: 85%", 0.85),
    ("confidence: 0.85", 0.85),
    ("Confidence = 85/100", 0.85),
    ("confidence level: 85 %", 0.85),
    ("**Confidence:** 90", 0.90),
    ("I am 80% confident", 0.80),
    ("The answer is 12 (confidence 70)", 0.70),
    # probability vs percent
    ("Confidence: 1", 1.0),
    ("Confidence: 1%", 0.01),
    ("Confidence: 0.5%", 0.005),
    ("Confidence: 100%", 1.0),
    ("Confidence: 100", 1.0),
    ("Confidence: 0%", 0.0),
    ("Confidence: 0", 0.0),
    ("Confidence: .9", 0.9),
    ("Confidence: 72.5%", 0.725),
    ("Confidence: 9/10", 0.9),
    ("Confidence: 3 out of 4", 0.75),
    ("confidence score: 0.35", 0.35),
    ("CONFIDENCE: 60 percent", 0.60),
    ("Confidence: about 90%", 0.90),
    ("My confidence is 65%.", 0.65),
    ("Confidence (0-100): 85", 0.85),
    ("Confidence - 40%", 0.40),
    ("Confidence: **75%**", 0.75),
    ("I'm 95 % sure it is 4.", 0.95),
    # out of range / negative -> None, never clipped
    ("Confidence: 150%", None),
    ("Confidence: 150", None),
    ("Confidence: -5%", None),
    ("Confidence: \u22125%", None),
    ("Confidence: 12/10", None),
    ("I am 120% confident", None),
    # words and mentions without a number -> None
    ("Confidence: high", None),
    ("Confidence: low.", None),
    ("Confidence: NN%", None),
    ("I am confident the answer is 42.", None),
    ("With some confidence, the total is 17 apples and 30%.", None),
    ("The answer is \\boxed{85}.", None),
    ("", None),
    # numbers in the answer that are not the confidence
    ("The answer is 42.\nConfidence: 90%", 0.90),
    ("Confidence: 90%\nThe answer is 42, i.e. 42% of 150.", 0.90),
    ("There are 3 certain cases and 40 sure bets. Confidence: 20%", 0.20),
    ("After 25% off the price is $30 (confidence 55)", 0.55),
    # ranges are ambiguous -> None
    ("Confidence: 80-90%", None),
    ("I'm 80-90% confident", None),
    # several statements: the last one wins, even when it is unreadable
    ("Confidence: 80%\nOn reflection, Confidence: 60%", 0.60),
    ("I am 30% confident. Final confidence: 0.9", 0.90),
    ("Confidence: 0.9\nActually I am 40% sure.", 0.40),
    ("Confidence: 80%\nRevised confidence: low", None),
    ("Confidence: 80%\nRevised confidence: 130%", None),
    # unicode percent signs and whitespace
    ("Confidence:\u00a085\u202f\uff05", 0.85),
    ("Confidence\u2009:\u200970\u066a", 0.70),
    ("confidence:\t\t45\ufe6a", 0.45),
    ("Confidence: \uff18\uff15%", 0.85),  # fullwidth digits
]


@pytest.mark.parametrize("text, expected", CASES)
def test_parse_verbal_confidence(text, expected):
    got = parse_verbal_confidence(text)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-12)


def test_table_is_big_enough():
    assert len(CASES) >= 25


def test_instruction_is_one_sentence_that_asks_for_the_parsed_format():
    assert CONFIDENCE_INSTRUCTION.count(". ") == 0 and CONFIDENCE_INSTRUCTION.endswith(".")
    assert "Confidence: NN%" in CONFIDENCE_INSTRUCTION
    assert "0" in CONFIDENCE_INSTRUCTION and "100" in CONFIDENCE_INSTRUCTION
    # A model that follows it literally is read correctly.
    example = re.sub("NN", "73", "The answer is 12.\nConfidence: NN%")
    assert parse_verbal_confidence(example) == pytest.approx(0.73)
