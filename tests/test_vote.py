import math

import pytest

from thinkcost.strategies.vote import Attempt, best_of, majority_vote, normalize_answer


def att(sample: int, answer: str | None, correct: bool = False, tokens: int | None = None) -> Attempt:
    """An attempt that finished after `tokens` completion tokens (default: its sample id)."""
    return Attempt(sample, answer, correct, (sample if tokens is None else tokens, sample))


# --- normalisation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "variants, canonical",
    [
        (["\\frac{1}{2}", "0.5", "1/2", "\\dfrac{1}{2}", "2/4", "0.50"], "1/2"),
        (["1,000", "1000", "1000.0", "$1,000$"], "1000"),
        (["42.", "42", "$42$", " 42 ", "\\text{42}", "+42"], "42"),
        (["-3/4", "-0.75", "\u22120.75"], "-3/4"),
    ],
)
def test_numbers_collide_by_value(variants, canonical):
    assert {normalize_answer(v) for v in variants} == {canonical}


@pytest.mark.parametrize(
    "a, b",
    [("0.5", "0.51"), ("1/2", "1/3"), ("42", "-42"), ("1000", "100"), ("yes", "no"), ("x+1", "x+2")],
)
def test_distinct_values_do_not_collide(a, b):
    assert normalize_answer(a) != normalize_answer(b)


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("  Yes ", "yes"),
        ("$\\text{Yes}$", "yes"),
        ("\\text{ Blue  Whale. }", "blue whale"),
        ("Paris.", "paris"),
        ("$x + 1$", "x + 1"),
        ("x  +\n1", "x + 1"),
    ],
)
def test_text_answers_normalise(raw, expected):
    assert normalize_answer(raw) == expected


@pytest.mark.parametrize("raw", [None, "", "   ", "$$", "."])
def test_empty_answers_normalise_to_none(raw):
    assert normalize_answer(raw) is None


# --- majority vote ----------------------------------------------------------------------------


def test_plain_majority_wins_even_if_it_finished_late():
    v = majority_vote([att(0, "7", False, tokens=5), att(1, "8", True, 90), att(2, "8.0", True, 80)])
    assert v.answer == "8"
    assert v.correct is True
    assert v.chosen.sample == 2  # the earliest-finished attempt with the winning answer
    assert v.counts == {"7": 1, "8": 2}
    assert v.tie is False


def test_two_two_tie_goes_to_the_answer_that_finished_first():
    attempts = [att(0, "5", True, 40), att(1, "6", False, 30), att(2, "5", True, 50), att(3, "6", False, 60)]
    v = majority_vote(attempts)
    assert (v.answer, v.correct, v.chosen.sample, v.tie) == ("6", False, 1, True)
    # Same answers, but now "5" has the earliest finisher.
    attempts[0] = att(0, "5", True, 10)
    v = majority_vote(attempts)
    assert (v.answer, v.correct, v.chosen.sample, v.tie) == ("5", True, 0, True)


def test_tie_break_uses_finish_key_not_sample_id_or_input_order():
    attempts = [att(3, "b", True, 20), att(0, "a", False, 70), att(1, "a", False, 80), att(2, "b", True, 90)]
    v = majority_vote(list(reversed(attempts)))
    assert (v.answer, v.chosen.sample) == ("b", 3)


def test_equal_token_counts_fall_back_to_sample_id():
    # finish_key = (completion_tokens, sample): same length -> lower sample id finished "first".
    v = majority_vote([att(4, "1", False, 10), att(2, "2", True, 10)])
    assert (v.answer, v.chosen.sample, v.tie) == ("2", 2, True)


def test_three_way_tie():
    attempts = [
        att(0, "1", False, 30), att(1, "2", True, 25), att(2, "3", False, 35),
        att(3, "1", False, 50), att(4, "2", True, 45), att(5, "3", False, 20),
    ]  # fmt: skip
    v = majority_vote(attempts)
    assert v.tie is True
    assert v.counts == {"1": 2, "2": 2, "3": 2}
    assert (v.answer, v.chosen.sample, v.correct) == ("3", 5, False)


def test_none_answers_do_not_vote():
    # Three attempts extracted nothing; one answer among the rest still wins.
    attempts = [
        att(0, None, False, 1),
        att(1, None, False, 2),
        att(2, None, False, 3),
        att(3, "9", True, 100),
    ]
    v = majority_vote(attempts)
    assert (v.answer, v.correct, v.chosen.sample, v.tie) == ("9", True, 3, False)
    assert v.counts == {"9": 1}


def test_blank_answers_count_as_none():
    v = majority_vote([att(0, "  ", False, 1), att(1, "3", True, 2)])
    assert (v.answer, v.chosen.sample) == ("3", 1)


def test_all_none_is_wrong_and_chooses_earliest_finisher():
    v = majority_vote([att(0, None, True, 50), att(1, None, False, 20), att(2, "", False, 30)])
    assert v.answer is None
    assert v.correct is False  # nothing was answered, whatever the verdicts say
    assert v.chosen.sample == 1
    assert v.counts == {}
    assert v.tie is False


def test_empty_vote():
    v = majority_vote([])
    assert (v.answer, v.correct, v.chosen, v.counts, v.tie) == (None, False, None, {}, False)


def test_correctness_follows_the_chosen_attempt():
    # Two spellings of one answer with different stored verdicts: the chosen one decides.
    v = majority_vote([att(0, "1/2", False, 10), att(1, "0.5", True, 20)])
    assert (v.answer, v.chosen.sample, v.correct) == ("1/2", 0, False)


# --- best_of ----------------------------------------------------------------------------------


def test_best_of_highest_score():
    attempts = [att(0, "1", False, 10), att(1, "2", True, 20), att(2, "3", False, 30)]
    assert best_of(attempts, [0.1, 0.9, 0.5]).sample == 1
    assert best_of(attempts, [-3.0, -1.0, -2.0]).sample == 1


def test_best_of_none_ranks_below_any_number():
    attempts = [att(0, "1", False, 10), att(1, "2", True, 20), att(2, "3", False, 30)]
    assert best_of(attempts, [None, -1e9, None]).sample == 1
    assert best_of(attempts, [math.nan, None, -5.0]).sample == 2


def test_best_of_ties_go_to_earliest_finisher():
    attempts = [att(0, "1", False, 50), att(1, "2", True, 20), att(2, "3", False, 10)]
    assert best_of(attempts, [0.7, 0.7, 0.2]).sample == 1
    assert best_of(attempts, [None, None, None]).sample == 2


def test_best_of_empty_and_length_mismatch():
    assert best_of([], []) is None
    with pytest.raises(ValueError, match="2 attempts but 1 scores"):
        best_of([att(0, "1"), att(1, "2")], [0.5])
