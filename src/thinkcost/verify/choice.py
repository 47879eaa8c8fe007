"""Read the chosen option of a multiple-choice question out of model text.

Rules, tried in order (the rule name is kept in the Verdict for traceability):
  boxed        the last non-empty ``\\boxed{...}`` holds a letter ("B", "(B)", "\\text{B}", "B) 42")
  boxed-text   ... or the text of exactly one option
  answer-is    the last answer statement ("Answer: B", "The answer is **(B)**", "I choose B", "C is correct")
  answer-text  ... or, after it, the text of exactly one option
  last-line    the last line is a letter on its own or leads it: "B", "**B**", "[B]", "B.", "B) 42", "Option B"
  bold         the last bold capital letter anywhere: "**B**", "**(B)**"
  option-text  the last line names exactly one option's text
  none         nothing found

A bare capital letter in prose is never an answer: "A farmer has ..." has to be an answer
statement, a line of its own, bold, boxed or bracketed to count. Lower-case letters count only
where they cannot be a word: after an answer marker and ending the clause ("answer: b"), or
bracketed ("(b)"). When the model writes an option's text instead of its letter, it counts only
when exactly one option matches.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

from thinkcost.types import Verdict
from thinkcost.verify.math_answer import last_boxed

_COPULA = r"(?:\*\*)?\s*(?:\b(?:is|would\s+be|should\s+be|must\s+be)\b\s*:?|[:：=])"
_ANSWER_RE = re.compile(
    r"\b(?:(?:final|correct|right|best)\s+)?answer(?:\s+(?:choice|option|letter))?"
    rf"(?:\s+to\s+[^.\n:]{{1,60}}?)?{_COPULA}"
    rf"|\b(?:correct|right|best|final)\s+(?:option|choice|letter){_COPULA}"
    r"|\b(?:I|we)(?:'d|\s+would|\s+will)?\s+(?:choose|pick|select|go\s+with)\b",
    re.IGNORECASE,
)
# "C is correct", "(B) is the answer": the letter before the statement. Capital letters only, and
# "incorrect" does not match; an article is never followed by "is".
_IS_RIGHT_RE = re.compile(
    r"(?<![\w(\[])[(\[]?(?:\*\*)?(?P<letter>[A-Z])(?:\*\*)?[)\]]?(?:\*\*)?"
    r"\s+is\s+(?:the\s+)?(?:correct|right|best|answer)\b"
)
_MARKUP_RE = re.compile(
    r"\\(?:boxed|fbox|text|textbf|textrm|mathrm|mathbf|mbox)\s*\{|\\[()\[\]]|\*\*|__|[{}$`]"
)
# A letter heading a cleaned string: optional "option", optional brackets, then what follows.
_LEAD_RE = re.compile(
    r"(?:(?P<word>option|choice|letter)\s+)?(?P<open>[(\[])?\s*(?P<letter>[A-Za-z])(?:\s*(?P<close>[)\]]))?(?P<rest>.*)",
    re.IGNORECASE | re.DOTALL,
)
_BOLD_RE = re.compile(r"\*\*\s*[(\[]?\s*([A-Z])\s*[)\].:]?\s*\*\*|\\textbf\{\s*\(?([A-Z])\)?\s*\}")
_ENUM_RE = re.compile(r"\s*(?:\*\*)?\s*[(\[]?[A-Za-z][)\].:](?:\s|$)")
_CLAUSE_END = ".,;:!?"


def extract_choice(
    text: str, options: Sequence[str] | None = None, letters: str = "ABCD"
) -> tuple[str | None, str]:
    """The chosen letter (upper case) and the rule that found it; (None, "none") when no rule applies."""
    if not isinstance(text, str) or not text.strip():
        return None, "none"
    letters = letters.upper()
    options = [o for o in options or [] if isinstance(o, str)][: len(letters)]
    boxed = last_boxed(text)
    if boxed is not None:
        letter = _letter(_clean(boxed), letters, "boxed")
        if letter:
            return letter, "boxed"
        letter = _option(boxed, options, letters)
        if letter:
            return letter, "boxed-text"
    statements = [*_ANSWER_RE.finditer(text), *_IS_RIGHT_RE.finditer(text)]
    for m in sorted(statements, key=lambda m: m.start(), reverse=True):
        if m.re is _IS_RIGHT_RE:
            if m.group("letter") in letters:
                return m.group("letter"), "answer-is"
            continue
        rest = text[m.end() :].split("\n", 1)[0]
        letter = _letter(_clean(rest), letters, "answer")
        if letter:
            return letter, "answer-is"
        letter = _option(rest, options, letters)
        if letter:
            return letter, "answer-text"
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not _enumerates_options(lines):
        letter = _letter(_clean(lines[-1]), letters, "line")
        if letter:
            return letter, "last-line"
    for m in reversed(list(_BOLD_RE.finditer(text))):
        letter = m.group(1) or m.group(2)
        if letter in letters:
            return letter, "bold"
    letter = _option(lines[-1], options, letters)
    if letter:
        return letter, "option-text"
    return None, "none"


def verify_choice(answer_text: str, gold_letter: str, options: Sequence[str] | None = None) -> Verdict:
    """Grade a multiple-choice completion against the gold letter, recording what was read and how."""
    gold = _clean(str(gold_letter or "")).strip("()[]. ").upper()
    n = max(len(options or []), 4, string.ascii_uppercase.find(gold) + 1 if len(gold) == 1 else 0)
    letters = string.ascii_uppercase[: min(n, 26)]
    letter, rule = extract_choice(answer_text, options, letters)
    return Verdict(letter is not None and letter == gold, letter, rule, detail="choice")


def _clean(s: str) -> str:
    """Drop LaTeX wrappers, math delimiters and markdown emphasis; squeeze whitespace."""
    return " ".join(_MARKUP_RE.sub(" ", s).split())


def _letter(s: str, letters: str, context: str) -> str | None:
    """The letter `s` begins with, if it reads as a choice in this context (boxed | answer | line).

    Bracketed ("(b)", "b)") or named ("option b") letters count in any case, though a named one
    on a line of prose ("Option A is tempting, but") does not. Otherwise a capital
    counts when nothing follows or the clause ends (line), or also before a space (answer, boxed:
    "The answer is B because"); a lower-case one only when nothing but clause punctuation follows.
    """
    m = _LEAD_RE.match(s)
    if m is None:
        return None
    letter, rest = m.group("letter"), m.group("rest")
    if letter.upper() not in letters or (m.group("open") and not m.group("close")):
        return None
    if rest[:1].isalnum():  # "Bob", "a2": part of a word
        return None
    ends = not rest or (rest[0] in _CLAUSE_END and (len(rest) == 1 or rest[1].isspace()))
    if m.group("close") or (m.group("word") and (ends or context != "line")):
        return letter.upper()
    if letter.islower():
        return letter.upper() if (ends and context != "line") or not rest.strip() else None
    if ends or context == "boxed" or (context == "answer" and rest[0].isspace()):
        return letter
    return None


def _enumerates_options(lines: list[str]) -> bool:
    """Whether the text ends with a list of options ("C) 3" / "D) 4"), whose last item is no answer."""
    return len(lines) >= 2 and all(_ENUM_RE.match(ln) for ln in lines[-2:])


def _norm(s: str) -> str:
    """Option text compared without case, markup, spacing and trailing punctuation."""
    return _clean(s).lower().rstrip(_CLAUSE_END + " ").strip()


def _option(s: str, options: Sequence[str], letters: str) -> str | None:
    """The letter of the one option whose text `s` is, or else names as whole words; None if 0 or >1."""
    said = _norm(s)
    texts = [_norm(o) for o in options]
    if not said or not any(texts):
        return None
    exact = [i for i, t in enumerate(texts) if t and t == said]
    if len(exact) == 1:
        return letters[exact[0]]
    if exact:
        return None
    named = [i for i, t in enumerate(texts) if t and re.search(rf"(?<!\w){re.escape(t)}(?!\w)", said)]
    # "x + 1" names both "x" and "x + 1": the longer one is meant.
    named = [i for i in named if not any(i != j and texts[i] in texts[j] for j in named)]
    return letters[named[0]] if len(named) == 1 else None
