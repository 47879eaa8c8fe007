"""Verbal confidence: the probability a model states that its own answer is right.

Read strictly: only an explicit number tied to a confidence statement counts. A missing or
worded confidence ("high") is None, never a guess, so bon@k:verbal ranks it last instead of
inventing a value. The last statement wins, because models restate and revise.
"""

from __future__ import annotations

import re

CONFIDENCE_INSTRUCTION = (
    'After your final answer, add one last line of the form "Confidence: NN%", where NN is an '
    "integer from 0 to 100 giving the probability that your answer is correct."
)

_PCT = "%\uff05\u066a\ufe6a"  # percent signs: ASCII, fullwidth, Arabic, small
_SIGN = r"(?P<sign>[-\u2212\u2013](?=\.?\d))?"  # a minus glued to the number; "- 85%" is a separator
# The number must not start a range ("80-90%": ambiguous, so no statement is read from it).
_NUMBER = r"(?P<num>\d+(?:\.\d+)?|\.\d+)(?!\d)(?!\s*[-\u2013\u2014]\s*\d)"
_UNIT = rf"(?:\s*(?P<pct>[{_PCT}]|percent\b)|\s*(?:/|\bout\s+of\b)\s*(?P<den>\d+(?:\.\d+)?)(?!\d))?"
# "Confidence: 85%", "**Confidence level:** 0.9", "confidence = 85/100", "(confidence 70)",
# "Confidence (0-100): 85", "confidence of about 90%". A worded value needs a separator
# ("Confidence: high"), so prose such as "with confidence in" is not a statement.
_LABEL = r"\bconfidence(?:\s+(?:level|score|estimate|rating))?(?:\s*\([^()\n]{0,20}\))?"
_FILL = r"[\s*_]*"
_SEP = rf"(?:[:=]|[-\u2013\u2014](?=\s)){_FILL}"
_LABELED_NUM_RE = re.compile(
    rf"{_LABEL}{_FILL}(?:{_SEP})?(?:(?:is|of|at|about|around|approximately|~|≈){_FILL})*{_SIGN}{_NUMBER}{_UNIT}",
    re.IGNORECASE,
)
_LABELED_WORD_RE = re.compile(rf"{_LABEL}{_FILL}{_SEP}(?P<word>[^\W\d_]+)", re.IGNORECASE)
# "I am 80% confident", "90 percent sure": the percent is required here, since a bare number
# before "certain" is usually a count ("3 certain cases").
_SUFFIX_RE = re.compile(
    rf"{_SIGN}{_NUMBER}\s*(?P<pct>[{_PCT}]|percent\b)\s*(?:confident|sure|certain)\b",
    re.IGNORECASE,
)


def _value(m: re.Match) -> float | None:
    """The probability a numeric match states, or None when it is out of range."""
    if m.group("sign"):
        return None
    num = float(m.group("num"))
    den = m.groupdict().get("den")
    if den is not None:
        d = float(den)
        return num / d if d > 0 and num <= d else None
    if m.group("pct") or num > 1:  # a % sign forces percent; a bare number > 1 is a percent
        return num / 100 if num <= 100 else None
    return num


def parse_verbal_confidence(text: str) -> float | None:
    """Stated confidence in [0, 1] from the answer part of a completion; None if absent,
    worded, or out of range. The last statement counts."""
    if not text:
        return None
    # (start, is_number, value): the latest statement wins; where a worded and a numeric
    # reading start at the same label ("Confidence: about 90%"), the number wins.
    found: list[tuple[int, bool, float | None]] = []
    for rx in (_LABELED_NUM_RE, _SUFFIX_RE):
        found.extend((m.start(), True, _value(m)) for m in rx.finditer(text))
    found.extend((m.start(), False, None) for m in _LABELED_WORD_RE.finditer(text))
    if not found:
        return None
    return max(found, key=lambda s: (s[0], s[1]))[2]
