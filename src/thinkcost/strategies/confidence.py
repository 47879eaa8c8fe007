"""Verbal confidence: the probability a model states that its own answer is right.

Read strictly: only an explicit number tied to a confidence statement counts. A missing or
worded confidence ("high", "very confident") is None, never a guess, so bon@k:verbal ranks it
last and calibration metrics count it as missing instead of inventing a value. The last
statement wins, because models restate and revise; a later unreadable statement ("Revised
confidence: low") therefore cancels an earlier number.

What counts as a statement:
  labeled   "confidence" (optionally "level/score/estimate/rating", "(0-100)", "in my answer"),
            then an optional separator and filler words, then the number: "Confidence: 85%",
            "**Confidence:** 70 %", "__Confidence__: 0.7", "confidence 0.8", "My confidence is
            65%", "\\text{Confidence:} 85\\%". Markdown/LaTeX decoration ("*", "_", "$", braces)
            around the label or the number is skipped.
  suffix    a percent followed by confident/sure/certain: "I am 90% confident". The percent is
            required, since a bare number before "certain" is usually a count.
A number with no confidence label (the answer's own "42" or "35%") is never read.

How a number becomes a probability:
  - a percent sign (ASCII, fullwidth, Arabic, small; "\\%" too) or "percent": NN/100;
  - "N/D" or "N out of D": N/D;
  - a bare number <= 1 is a probability ("0.85", ".9", "1" = certain, "0" = none), a bare number
    in (1, 100] is a percent ("85", "72.5"). Decided: "1" alone is read as probability 1, not 1%,
    because a model that drops the "%" asked for ("Confidence: NN%") and writes exactly 1 more
    often means certainty; the instruction asks for integer percents, so 1% is written "1%".
  - out of range (> 100%, N > D, any negative sign) is None, never clipped.
Malformed numbers are not read at all (None for that statement): ranges ("80-90%"), digits split
by a space ("8 5%"), a decimal comma ("0,85"), exponent notation ("1e-1"). A trailing sentence
period ("confidence: 0.85.") is not part of the number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

CONFIDENCE_INSTRUCTION = (
    'After your final answer, add one last line of the form "Confidence: NN%", where NN is an '
    "integer from 0 to 100 giving the probability that your answer is correct."
)

_PCT = "%\uff05\u066a\ufe6a"  # percent signs: ASCII, fullwidth, Arabic, small
_SIGN = r"(?P<sign>[-\u2212\u2013](?=\.?\d))?"  # a minus glued to the number; "- 85%" is a separator
# The number must not start a range ("80-90%": ambiguous, so no statement is read from it).
# Nor may it be malformed: digits split by spaces ("8 5%"), a decimal comma ("0,85"), an exponent.
_NUMBER = (
    r"(?P<num>\d+(?:\.\d+)?|\.\d+)(?!\d)(?!\s*[-\u2013\u2014]\s*\d)"
    r"(?![ \t\u00a0\u2009\u202f]+\d)(?!,\d)(?![eE][-+\u2212]?\d)"
)
_UNIT = rf"(?:[\s$]*\\?(?P<pct>[{_PCT}]|percent\b)|\s*(?:/|\bout\s+of\b)\s*(?P<den>\d+(?:\.\d+)?)(?!\d))?"
# "Confidence: 85%", "**Confidence level:** 0.9", "confidence = 85/100", "(confidence 70)",
# "Confidence (0-100): 85", "confidence of about 90%". A worded value needs a separator
# ("Confidence: high"), so prose such as "with confidence in" is not a statement.
# The label is a whole word, but markdown underscores may touch it ("__Confidence__").
_LABEL = (
    r"(?<![^\W_])confidence(?![^\W_])(?:\s+(?:level|score|estimate|rating))?"
    r"(?:\s+in\s+(?:(?:my|the|this)\s+)?(?:final\s+)?answer)?(?:\s*\([^()\n]{0,20}\))?"
)
_FILL = r"[\s*_${}]*"  # markdown bold/italics, LaTeX math and \text{...} braces
_SEP = rf"(?:[:=]|[-\u2013\u2014](?=\s)){_FILL}"
_LABELED_NUM_RE = re.compile(
    rf"{_LABEL}{_FILL}(?:{_SEP})?(?:(?:is|of|at|about|around|approximately|~|≈){_FILL})*{_SIGN}{_NUMBER}{_UNIT}",
    re.IGNORECASE,
)
_LABELED_WORD_RE = re.compile(rf"{_LABEL}{_FILL}{_SEP}(?P<word>[^\W\d_]+)", re.IGNORECASE)
# "I am 80% confident", "90 percent sure": the percent is required here, since a bare number
# before "certain" is usually a count ("3 certain cases").
_SUFFIX_RE = re.compile(
    rf"{_SIGN}{_NUMBER}\s*\\?(?P<pct>[{_PCT}]|percent\b)\s*(?:confident|sure|certain)\b",
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


_SPLIT_DIGITS_RE = re.compile(r"\d[ \t\u00a0\u2009\u202f]+$")


def _statements(text: str) -> list[tuple[int, int, bool, float | None]]:
    """Every confidence statement as (start, end, is_number, value), in no particular order."""
    found: list[tuple[int, int, bool, float | None]] = []
    found.extend((m.start(), m.end(), True, _value(m)) for m in _LABELED_NUM_RE.finditer(text))
    for m in _SUFFIX_RE.finditer(text):
        # "8 5% sure": the 5 is the tail of a split number, not a statement of its own.
        split = _SPLIT_DIGITS_RE.search(text[max(0, m.start() - 16) : m.start()])
        found.append((m.start(), m.end(), True, None if split else _value(m)))
    found.extend((m.start(), m.end(), False, None) for m in _LABELED_WORD_RE.finditer(text))
    return found


def parse_verbal_confidence(text: str) -> float | None:
    """Stated confidence in [0, 1] from the answer part of a completion; None if absent,
    worded, or out of range. The last statement counts."""
    if not text:
        return None
    # The latest statement wins; where a worded and a numeric reading start at the same label
    # ("Confidence: about 90%"), the number wins.
    found = _statements(text)
    if not found:
        return None
    return max(found, key=lambda s: (s[0], s[2]))[3]


def strip_confidence(text: str) -> str:
    """The text with every confidence statement cut out.

    Answer extraction falls back to the last number in the text, which after "42\nConfidence: 90%"
    is the 90; grading the stripped text reads the 42.
    """
    if not text:
        return text or ""
    spans = sorted((s[0], s[1]) for s in _statements(text))
    out, pos = [], 0
    for start, end in spans:
        if start >= pos:
            out.append(text[pos:start])
        pos = max(pos, end)
    out.append(text[pos:])
    return "".join(out)


CONFIDENCE_MODES = ("none", "verbal", "logprob")


def sample_confidence(mode: str, answer_text: str, answer_logprobs: list[float] | None) -> float | None:
    """The confidence stored with a generation under `--confidence MODE`: the stated one
    (verbal), or exp(mean log-probability) of the answer's own model-chosen tokens (logprob;
    the engine finds them by position, so neither the EOS, nor tokens forced by budget
    forcing, nor the end of the reasoning enter the mean). None when there is nothing to read."""
    if mode == "verbal":
        return parse_verbal_confidence(answer_text)
    if mode == "logprob":
        if not answer_logprobs:
            return None
        return logprob_confidence(list(answer_logprobs))
    return None


def logprob_confidence(answer_logprobs: Sequence[float]) -> float | None:
    """exp(mean log-probability of the answer tokens): the geometric-mean token probability.

    The product of token probabilities (the sequence probability) shrinks with answer length, so
    "1234" would look less certain than "7" at equal per-token certainty; the geometric mean is
    length-normalised and still in [0, 1]. None for an empty answer (no tokens, no evidence).
    """
    lp = [float(x) for x in answer_logprobs]
    if not lp:
        return None
    if any(math.isnan(x) or x > 1e-6 for x in lp):
        raise ValueError("log-probabilities must be <= 0 and not NaN")
    return float(min(1.0, math.exp(sum(lp) / len(lp))))
