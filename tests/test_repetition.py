"""Repeated 4-gram share against a brute force over all earlier positions."""

from __future__ import annotations

import random

import pytest

from thinkcost.metrics.repetition import repetition, repetition_score


def _brute(text: str, n: int) -> tuple[int, int]:
    w = [x.casefold() for x in text.split()]
    grams = [tuple(w[i : i + n]) for i in range(len(w) - n + 1)]
    rep = sum(any(grams[j] == grams[i] for j in range(i)) for i in range(len(grams)))
    return rep, len(grams)


def test_matches_brute_force_on_random_texts():
    rng = random.Random(0)
    for _ in range(300):
        vocab = ["a", "b", "c", "D", "d"][: rng.randint(1, 5)]
        text = " ".join(rng.choice(vocab) for _ in range(rng.randint(0, 30)))
        for n in (1, 2, 4):
            r = repetition(text, n)
            rep, total = _brute(text, n)
            assert (r.repeated, r.ngrams) == (rep, total)
            assert r.score == pytest.approx(rep / total if total else 0.0)


def test_known_cases_and_spans():
    assert repetition_score("") == 0.0
    assert repetition_score("one two three") == 0.0  # fewer words than n
    assert repetition_score("the cat sat on the mat") == 0.0
    loop = "so 3 + 4 = 7. " * 5
    assert repetition_score(loop) == pytest.approx(21 / 27)  # 30 words: the first 6 of 27 grams are new
    text = "x y z w x y z w"
    r = repetition(text)
    assert r.repeated == 1 and r.ngrams == 5
    assert [text[a:b] for a, b in r.spans] == ["x y z w"]
    with pytest.raises(ValueError):
        repetition("a", 0)
