"""Multiple-choice extraction: explicit answers in every common format, and prose that must not count."""

from __future__ import annotations

import pytest

from thinkcost.verify.choice import extract_choice, verify_choice

OPTIONS = ["Paris", "London", "Rome", "Berlin"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # letter formats
        ("(B)", ("B", "last-line")),
        ("B)", ("B", "last-line")),
        ("B", ("B", "last-line")),
        ("B.", ("B", "last-line")),
        ("[B]", ("B", "last-line")),
        ("**B**", ("B", "last-line")),
        ("Option B", ("B", "last-line")),
        ("Answer: B", ("B", "answer-is")),
        ("The answer is **B**", ("B", "answer-is")),
        ("The correct answer is (C) because 3 > 2.", ("C", "answer-is")),
        ("**Answer:** D", ("D", "answer-is")),
        ("The best option is: Option C.", ("C", "answer-is")),
        ("I choose D.", ("D", "answer-is")),
        ("The answer to this question is [A].", ("A", "answer-is")),
        (r"So \boxed{B}.", ("B", "boxed")),
        (r"$\boxed{\text{B}}$", ("B", "boxed")),
        (r"\boxed{(C) 12}", ("C", "boxed")),
        ("answer: b", ("B", "answer-is")),
        ("The answer is (c).", ("C", "answer-is")),
        # the last explicit statement wins over earlier mentions
        ("A is wrong since 2 < 3. B fails too. C works.\nAnswer: C", ("C", "answer-is")),
        ("The answer is A. Wait, I misread. The answer is D.", ("D", "answer-is")),
        ("Option A is tempting but **(C)** is right", ("C", "answer-is")),
        ("Option A is tempting, but **(C)** fits every condition.\nDone.", ("C", "bold")),
        (r"The answer is B. Double-checking: \boxed{D}", ("D", "boxed")),
        ("Reasoning...\nFinal Answer\n\nB) 42", ("B", "last-line")),
        ("Checking (A): no. (B): no. (C): yes.\nSo C is correct.", ("C", "answer-is")),
        ("B is the answer.", ("B", "answer-is")),
        ("Answer: B. Wait, actually C is correct.", ("C", "answer-is")),
        ("Option A is incorrect.", (None, "none")),
        # letters outside the allowed range are not choices
        ("Answer: E", (None, "none")),
        # the article "A" and other words in prose never count
        ("A farmer has 3 cows and buys 2 more.", (None, "none")),
        ("A train leaves at 3pm.\nA car follows it.", (None, "none")),
        ("The answer is a prime number, I think.", (None, "none")),
        ("To answer, a student must add them.", (None, "none")),
        ("Bob and Carol disagree.", (None, "none")),
        # a restated option list is not an answer
        ("The options are\nA) 1\nB) 2\nC) 3\nD) 4", (None, "none")),
        ("", (None, "none")),
        ("   \n ", (None, "none")),
    ],
)
def test_extract_choice_letters(text: str, expected: tuple[str | None, str]) -> None:
    assert extract_choice(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is Rome.", ("C", "answer-text")),
        ("The answer is: rome", ("C", "answer-text")),
        ("The answer is   BERLIN  !", ("D", "answer-text")),
        (r"\boxed{\text{London}}", ("B", "boxed-text")),
        ("Thinking about capitals...\nParis", ("A", "option-text")),
        ("After all that, it must be Paris.", ("A", "option-text")),
        # ambiguous option text: two options named -> no answer
        ("The answer is Paris or Rome.", (None, "none")),
        ("Either London or Berlin.", (None, "none")),
        # a letter still beats option text
        ("The answer is B (London).", ("B", "answer-is")),
    ],
)
def test_extract_choice_option_text(text: str, expected: tuple[str | None, str]) -> None:
    assert extract_choice(text, OPTIONS) == expected


def test_option_text_prefers_the_longer_named_option() -> None:
    options = ["x", "x + 1", "2x", "x - 1"]
    assert extract_choice("The answer is x + 1.", options) == ("B", "answer-text")
    assert extract_choice("The answer is x.", options) == ("A", "answer-text")


def test_identical_option_texts_are_ambiguous() -> None:
    assert extract_choice("The answer is 12.", ["12", "15", "12", "9"]) == (None, "none")


def test_letters_parameter_widens_the_range() -> None:
    assert extract_choice("Answer: E", letters="ABCDE") == ("E", "answer-is")
    assert extract_choice("Answer: e", letters="abcde") == ("E", "answer-is")


def test_verify_choice_records_letter_and_rule() -> None:
    v = verify_choice("Thus the answer is (B).", "B")
    assert (v.correct, v.extracted, v.rule) == (True, "B", "answer-is")
    v = verify_choice("Thus the answer is (B).", "(c)")
    assert (v.correct, v.extracted) == (False, "B")
    v = verify_choice("It is Berlin.", "D", OPTIONS)
    assert (v.correct, v.extracted, v.rule) == (True, "D", "option-text")
    v = verify_choice("A farmer sells eggs.", "A")
    assert (v.correct, v.extracted, v.rule) == (False, None, "none")


def test_verify_choice_gold_beyond_d_without_options() -> None:
    v = verify_choice("Answer: E", "E")
    assert (v.correct, v.extracted) == (True, "E")
