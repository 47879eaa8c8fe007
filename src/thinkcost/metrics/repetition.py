"""How much of a reasoning trace repeats itself: the share of its word 4-grams that already
occurred earlier in the same trace.

Why words and not model tokens: the report reads only the store, which holds text, and a
loop ("so 3 + 4 = 7. so 3 + 4 = 7. ...") repeats in words as much as in tokens; words also make
the highlighted spans line up with what a reader sees. A trace that loops to the length cap
scores near 1, ordinary prose near 0.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Repetition:
    score: float  # repeated n-grams / all n-grams (0 when the text has fewer than n words)
    ngrams: int
    repeated: int
    spans: tuple[tuple[int, int], ...]  # merged char spans covered by repeated n-grams


def repetition(text: str, n: int = 4) -> Repetition:
    """The n-gram at word position i counts as repeated when the same n words (case-folded)
    occur at some earlier position j < i; overlapping occurrences count."""
    if n < 1:
        raise ValueError(f"n: expected >= 1, got {n}")
    words = [(m.group().casefold(), m.start(), m.end()) for m in _WORD.finditer(text)]
    total = max(0, len(words) - n + 1)
    seen: set[tuple[str, ...]] = set()
    spans: list[tuple[int, int]] = []
    repeated = 0
    for i in range(total):
        gram = tuple(w for w, _, _ in words[i : i + n])
        if gram in seen:
            repeated += 1
            start, end = words[i][1], words[i + n - 1][2]
            if spans and start <= spans[-1][1]:
                spans[-1] = (spans[-1][0], max(spans[-1][1], end))
            else:
                spans.append((start, end))
        else:
            seen.add(gram)
    return Repetition(repeated / total if total else 0.0, total, repeated, tuple(spans))


def repetition_score(text: str, n: int = 4) -> float:
    """Share of repeated word n-grams (see `repetition`)."""
    return repetition(text, n).score
