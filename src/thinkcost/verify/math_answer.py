"""Read a final answer out of model text, and read numbers written as text exactly.

Extraction rules, tried in order (the rule name is kept in the Verdict for traceability):
  boxed       the last non-empty, closed ``\\boxed{...}`` / ``\\fbox{...}`` (braces matched)
  answer-is   the last "the answer is X" / "final answer: X" / "Answer: X"
  last-number the last number anywhere in the text
  none        nothing found

Plain text work with no checker behind it, so voting, multiple-choice grading and the graders in
verify.math share one reading of "the answer" and of "the same number".
"""

from __future__ import annotations

import re
from fractions import Fraction

_MINUS = "-\u2212\u2013"  # ASCII hyphen, unicode minus, en dash (models write all three)
_SIGN = rf"[+{re.escape(_MINUS)}]"  # escaped: a bare "+-" inside [...] is a range that takes in letters
_DEC = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+"
_FRAC_ARG = rf"\s*{_SIGN}?\s*\d+(?:\.\d+)?\s*"
_FRAC = rf"\\[dt]?frac\s*(?:\{{{_FRAC_ARG}\}}\s*\{{{_FRAC_ARG}\}}|\d\s*\d)"
# A number token in free text: latex fraction, or decimal (thousands commas ok) with optional /int.
_NUM_RE = re.compile(rf"(?P<sign>{_SIGN}\s*)?(?P<body>{_FRAC}|(?<![\w.])(?:{_DEC})(?:/\d+)?(?!\d))")

_BOX_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")
_ANSWER_RE = re.compile(r"\banswer\b(?:\*\*)?\s*(?:is\b\s*:?|[:：])", re.IGNORECASE)
_MATH_OPEN = {"$": "$", "\\(": "\\)", "\\[": "\\]"}

# parse_number: the whole string must be one number, optionally followed by a unit word.
_PARSE_RE = re.compile(
    r"(?P<sign>[+-])?\s*(?:"
    r"\\[dt]?frac\s*(?:\{\s*(?P<fn>-?\d+(?:\.\d+)?)\s*\}\s*\{\s*(?P<fd>-?\d+(?:\.\d+)?)\s*\}"
    r"|(?P<fn1>\d)\s*(?P<fd1>\d))"
    rf"|(?P<dec>{_DEC})(?:\s*/\s*(?P<den>\d+))?"
    r")\s*(?:[A-Za-z][A-Za-z\s.'’-]*)?"
)
_TEXT_CMD_RE = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mbox)\s*\{([^{}]*)\}")
_LATEX_CMD_RE = re.compile(r"\\[A-Za-z]+(?:\s*\{[A-Za-z*]*\})?")
_WORDS_RE = re.compile(r"[A-Za-z]{3,}")
# Thousands separators inside a number, as LaTeX writes them: 10,\!000 (MATH), 1\,000\,000 (thin space).
_LATEX_THOUSANDS_RE = re.compile(r"(?<=\d)(?:,\\!|\\,|\\!)(?=\d{3}(?!\d))")


def last_boxed(text: str) -> str | None:
    """Contents of the last closed, non-empty box; an unterminated box is skipped."""
    found: list[str] = []
    for m in _BOX_RE.finditer(text):
        depth, i = 1, m.end()
        while i < len(text) and depth:
            c = text[i]
            if c == "\\":  # escaped char such as \{ does not count as a brace
                i += 2
                continue
            depth += (c == "{") - (c == "}")
            i += 1
        if depth == 0:
            content = text[m.end() : i - 1].strip()
            if content:
                found.append(content)
    return found[-1] if found else None


def _number_tokens(text: str) -> list[str]:
    """Numbers in reading order; a +/- right after an operand is an operator, not a sign."""
    out = []
    for m in _NUM_RE.finditer(text):
        token = m.group(0)
        if m.group("sign"):
            before = text[: m.start()]
            glued = before[-1:].isalnum()  # "COVID-19", "3-4": a hyphen, not a sign
            operand = before.rstrip()[-1:] in tuple("0123456789)]}")  # "17 - 5": an operator
            if glued or operand or m.group("sign")[0] == "+":
                token = m.group("body")
        out.append(token.strip())
    return out


def _after_answer_marker(rest: str) -> str | None:
    """The number (or delimited math) right after an answer marker, or None."""
    rest = rest.lstrip(" \t*:")
    for open_, close in _MATH_OPEN.items():
        if rest.startswith(open_):
            body = rest[len(open_) :]
            end = body.find(close)
            inner = body[:end].strip() if end >= 0 else ""
            m = _NUM_RE.match(body.lstrip())
            # "$12." or "$12, which is $3 more" is dollars: keep the number; "$3\sqrt5$" is math: keep it all
            dollars = end < 0 or (parse_number(inner) is None and _is_prose(inner))
            if m and dollars:
                return _number_tokens(body.lstrip()[: m.end()])[0]
            return inner or None
    m = _NUM_RE.match(rest)
    return _number_tokens(rest[: m.end()])[0] if m else None


def _is_prose(s: str) -> bool:
    """Whether a $-delimited span holds words (so its $ signs are currency), not only LaTeX math."""
    t = _TEXT_CMD_RE.sub(" ", s)  # units such as \text{ cm} are math
    t = _LATEX_CMD_RE.sub(" ", t)  # \sqrt, \pi, \cdot, \begin{pmatrix}
    return _WORDS_RE.search(t) is not None


def extract_answer(text: str) -> tuple[str | None, str]:
    """The final answer in a completion and the rule that found it: boxed, answer-is, last-number, none."""
    if not text:
        return None, "none"
    boxed = last_boxed(text)
    if boxed is not None:
        return boxed, "boxed"
    for m in reversed(list(_ANSWER_RE.finditer(text))):
        line = text[m.end() :].split("\n", 1)[0]
        value = _after_answer_marker(line)
        if value:
            return value, "answer-is"
    numbers = _number_tokens(text)
    if numbers:
        return numbers[-1], "last-number"
    return None, "none"


def parse_number(s: str) -> Fraction | None:
    """The exact value of a number written as text (commas, signs, latex fractions, units); else None."""
    if s is None:
        return None
    t = _TEXT_CMD_RE.sub(r" \1 ", s)
    for old, new in (
        ("\\$", ""),
        ("$", ""),
        ("\\%", "%"),
        ("{,}", ","),
        ("**", ""),
        ("~", " "),
        ("\\left", ""),
        ("\\right", ""),
        ("\\(", ""),
        ("\\)", ""),
        ("\\[", ""),
        ("\\]", ""),
        ("\u2212", "-"),
        ("\u2013", "-"),
        ("\u00b0", " "),  # 90° is 90 degrees: a unit, like "cm"
    ):
        t = t.replace(old, new)
    t = _LATEX_THOUSANDS_RE.sub(",", t)
    t = re.sub(r"\\[,;:! ]", " ", t)
    if "=" in t:  # "x = 5" -> "5"
        t = t.rsplit("=", 1)[1]
    t = t.strip().rstrip(".").strip()
    if t.endswith("%"):
        t = t[:-1].strip()
    m = _PARSE_RE.fullmatch(t)
    if m is None:
        return None
    if m.group("dec") is not None:
        value = Fraction(m.group("dec").replace(",", ""))
        den = m.group("den")
    else:
        value = Fraction(m.group("fn") or m.group("fn1"))
        den = m.group("fd") or m.group("fd1")
    if den is not None:
        if Fraction(den) == 0:
            return None
        value /= Fraction(den)
    return -value if m.group("sign") == "-" else value


def numbers_equal(a: str, b: str) -> bool:
    """Exact equality of two numbers written as text ("3.50" == "7/2"); False if either is not a number."""
    x, y = parse_number(a), parse_number(b)
    return x is not None and y is not None and x == y
