"""The (gold, model answer, expected verdict) pairs of benchmarks/verify_math.py, and the completions
that carry them.

Every verdict comes from how the pair was built, never from a checker: the numeric families are
generated from Python integers and Fractions (the truth is an exact comparison of the values the
two strings were printed from), the LaTeX kinds are hand-labelled tables (a gold, the answers that
mean the same, the answers that do not). The kinds are those a MATH-500 grader meets. Each answer
is then wrapped in a realistic completion: some reasoning, then a final answer line.

    python benchmarks/verify_math_pairs.py   # counts per kind and verdict
"""

from __future__ import annotations

import re
from collections import Counter
from fractions import Fraction
from typing import NamedTuple


class Pair(NamedTuple):
    """One grading case: `answer` is the final answer as the model writes it (before wrapping)."""

    kind: str
    gold: str
    answer: str
    expected: bool


def _table(kind: str, rows: list[tuple[str, list[str], list[str]]]) -> list[Pair]:
    """Hand-labelled rows (gold, answers equal to it, answers not equal to it) -> pairs."""
    out = []
    for gold, same, different in rows:
        out += [Pair(kind, gold, a, True) for a in same]
        out += [Pair(kind, gold, a, False) for a in different]
    return out


def _decimal(x: Fraction) -> str | None:
    """The exact decimal expansion of x, or None when it does not terminate."""
    q = x.denominator
    for p in (2, 5):
        while q % p == 0:
            q //= p
    if q != 1:
        return None
    places = 0
    while (x * 10**places).denominator != 1:
        places += 1
    return f"{float(x):.{places}f}" if places else str(x.numerator)


def _integers() -> list[Pair]:
    """Plain integers; wrong = off by one, or the digits transposed."""
    out = []
    for v in (0, 3, 7, 12, 18, 24, 36, 42, 57, 64, 81, 99, 100, 128, 210, 365, 512, 729, 840, 997):
        out.append(Pair("integer", str(v), str(v), True))
        out.append(Pair("integer", str(v), str(v + 1), False))
        if v >= 10 and str(v)[::-1] != str(v):
            out.append(Pair("integer", str(v), str(v)[::-1].lstrip("0") or "0", False))
    return out


def _negatives() -> list[Pair]:
    """Negative numbers in ASCII and unicode minus; wrong = the sign dropped, or off by one."""
    out = []
    for v in (2, 5, 9, 14, 27, 48, 63, 120):
        out.append(Pair("negative", f"-{v}", f"-{v}", True))
        out.append(Pair("negative", f"-{v}", f"\u2212{v}", True))
        out.append(Pair("negative", f"-{v}", str(v), False))
        out.append(Pair("negative", f"-{v}", f"-{v + 1}", False))
    return out


def _thousands() -> list[Pair]:
    """Big numbers with thousands separators (comma, LaTeX {,}, MATH's ,\\!, thin space) against the bare digits."""
    out = []
    for v in (1234, 2024, 45000, 98765, 100000, 1000000, 3628800, 123456789):
        plain, comma = str(v), f"{v:,}"
        out.append(Pair("thousands", plain, comma, True))
        out.append(Pair("thousands", plain, comma.replace(",", "{,}"), True))
        out.append(Pair("thousands", comma, plain, True))
        out.append(Pair("thousands", plain, f"{v + 9:,}", False))
        out.append(Pair("thousands", plain, f"{v * 10:,}", False))
    for v in (10080, 2500, 40320, 1000000):  # MATH-500 golds write 10,\!080
        math_style = f"{v:,}".replace(",", ",\\!")
        out.append(Pair("thousands", math_style, str(v), True))
        out.append(Pair("thousands", str(v), math_style, True))
        out.append(Pair("thousands", math_style, f"{v + 100:,}", False))
    out.append(Pair("thousands", "1000000", r"1\,000\,000", True))
    out.append(Pair("thousands", "12345", r"12\,345", True))
    return out


_FRACTIONS = [(1, 2), (3, 4), (2, 3), (5, 6), (7, 8), (1, 3), (11, 12), (5, 4), (9, 7), (13, 20), (3, 8)]


def _fractions() -> list[Pair]:
    """p/q in every fraction notation; exact decimals match, rounded ones do not (0.333 is not 1/3)."""
    out = []
    for p, q in _FRACTIONS:
        x, gold = Fraction(p, q), rf"\frac{{{p}}}{{{q}}}"
        out.append(Pair("fraction", gold, rf"\dfrac{{{p}}}{{{q}}}", True))
        out.append(Pair("fraction", gold, rf"\tfrac{{{p}}}{{{q}}}", True))
        out.append(Pair("fraction", gold, f"{p}/{q}", True))
        out.append(Pair("fraction", gold, rf"\frac{{{2 * p}}}{{{2 * q}}}", True))
        out.append(Pair("fraction", gold, rf"\frac{{{q}}}{{{p}}}", False))
        out.append(Pair("fraction", gold, rf"\frac{{{p + 1}}}{{{q}}}", False))
        exact = _decimal(x)
        if exact is not None:
            out.append(Pair("decimal-vs-fraction", gold, exact, True))
            out.append(Pair("decimal-vs-fraction", exact, rf"\frac{{{p}}}{{{q}}}", True))
            out.append(Pair("decimal-vs-fraction", exact, rf"\frac{{{p + 1}}}{{{q}}}", False))
            out.append(Pair("decimal-vs-fraction", gold, _decimal(x + Fraction(1, 100)), False))
        else:
            for places in (2, 3):
                rounded = f"{float(x):.{places}f}"
                assert Fraction(rounded) != x
                out.append(Pair("decimal-vs-fraction", gold, rounded, False))
    out += _table(
        "decimal-vs-fraction",
        [
            (r"\frac{1}{3}", [r"0.\overline{3}"], ["0.3333"]),
            ("2.5", [r"\frac{5}{2}", "2.50"], ["2.05", r"\frac{2}{5}"]),
            ("0.2", [r"\frac{1}{5}", ".2"], ["0.02", r"\frac{1}{2}"]),
        ],
    )
    return out


# Hand-labelled LaTeX kinds: (gold, answers that equal it, answers that do not).
_SQRT = [
    (
        r"2\sqrt{2}",
        [r"\sqrt{8}", r"2\sqrt2", r"\sqrt{2}\cdot 2", r"2^{3/2}"],
        [r"\sqrt{2}", r"4\sqrt{2}", "2.83"],
    ),
    (
        r"\frac{\sqrt{3}}{2}",
        [r"\frac{\sqrt{3}}{2}", r"\dfrac{\sqrt3}{2}", r"\sqrt{3}/2", r"\frac{3}{2\sqrt{3}}"],
        [r"\frac{\sqrt{2}}{2}", r"\frac{\sqrt{3}}{3}", "0.866"],
    ),
    (r"3\sqrt{5}", [r"\sqrt{45}", r"3\sqrt5"], [r"5\sqrt{3}", r"\sqrt{15}"]),
    (r"\sqrt{10}", [r"\sqrt{10}"], ["10", r"\sqrt{11}"]),
    (r"4+2\sqrt{3}", [r"2\sqrt{3}+4", r"(1+\sqrt{3})^2"], [r"4-2\sqrt{3}", r"6\sqrt{3}"]),
    (r"\frac{\sqrt{2}}{2}", [r"\frac{1}{\sqrt{2}}", r"\frac{\sqrt2}{2}"], [r"\sqrt{2}", "0.707"]),
]
_PI = [
    (r"2\pi", [r"2\pi", r"\pi \cdot 2", r"2 \cdot \pi"], [r"\pi", r"4\pi", "6.28"]),
    (
        r"\frac{\pi}{4}",
        [r"\pi/4", r"\dfrac{\pi}{4}", r"\frac{1}{4}\pi"],
        [r"\frac{\pi}{2}", "0.785", r"\frac{4}{\pi}"],
    ),
    (r"36\pi", [r"36\pi", r"36\pi \text{ square units}"], ["36", r"12\pi"]),
    (r"\frac{4}{3}\pi", [r"\frac{4\pi}{3}"], [r"\frac{3\pi}{4}"]),
    (r"\pi", [r"\pi"], ["3.14", r"\frac{22}{7}"]),
]
_MIXED = [  # a mixed number n\frac{a}{b} means n + a/b, never n * a/b
    (r"2\frac{1}{2}", [r"\frac{5}{2}", "2.5", "5/2"], ["1", r"\frac{3}{2}"]),
    (r"\frac{7}{4}", [r"1\frac{3}{4}"], [r"1\frac{1}{4}", r"\frac{3}{4}"]),
    (r"3\frac{1}{3}", [r"\frac{10}{3}", r"3 \tfrac{1}{3}"], ["3.33", "1"]),
    ("4.75", [r"4\frac{3}{4}"], [r"4\frac{1}{4}"]),
]
_PERCENT = [  # MATH convention: the percent sign is optional, and 25% is also 0.25
    (r"25\%", [r"25\%", "25", "0.25"], [r"20\%", r"2.5\%", r"75\%"]),
    ("40", [r"40\%", "40 percent"], [r"4\%", r"0.4\%"]),
    ("12.5", [r"12.5\%"], [r"12\%", r"1.25\%"]),
    (r"8\%", ["8", "0.08"], ["0.8", r"80\%"]),
]
_UNITS = [
    (
        "12",
        [r"12 \text{ cm}", r"12\text{ cm}^2", r"12\,\mathrm{m}", "12 inches"],
        [r"13 \text{ cm}", r"21 \text{ cm}"],
    ),
    ("5", [r"5 \text{ meters}", r"5\text{ hours}"], [r"6 \text{ hours}", r"50 \text{ meters}"]),
    ("90", [r"90^\circ", r"90^{\circ}", "90\u00b0"], [r"180^\circ", r"45^\circ"]),
    (r"30^\circ", ["30", r"30^{\circ}", r"30 \text{ degrees}"], [r"60^\circ", "150"]),
    ("18.50", [r"\$18.50", "18.5", r"\$18.5"], [r"\$18.05", "1850"]),
    (r"\$42", ["42", r"\$42.00"], [r"\$24", "4.2"]),
    ("7", [r"7\text{ dollars}", r"7 \text{ apples}"], [r"8 \text{ apples}"]),
]
_SCIENTIFIC = [
    (
        "300000",
        [r"3 \times 10^5", r"3\times 10^{5}", r"3 \cdot 10^5", "300{,}000"],
        [r"3 \times 10^4", r"3 \times 10^6", "30000"],
    ),
    ("0.0025", [r"2.5 \times 10^{-3}", r"\frac{1}{400}"], [r"2.5 \times 10^{-2}", r"2.5 \times 10^{3}"]),
    (r"6.02 \times 10^{23}", [r"6.02\cdot 10^{23}", r"602 \times 10^{21}"], [r"6.02 \times 10^{22}"]),
    (r"1.2 \times 10^{4}", ["12000", "12{,}000"], ["1200", r"1.2 \times 10^{5}"]),
    ("1024", [r"2^{10}", "2^10"], [r"2^{11}", r"10^{24}"]),
]
_INTERVALS = [
    ("[1, 2)", ["[1,2)", r"\left[1, 2\right)"], ["[1, 2]", "(1, 2)", "(1, 2]"]),
    (
        r"(-\infty, 3]",
        [r"(-\infty,3]", r"\left(-\infty, 3\right]"],
        [r"(-\infty, 3)", r"[3, \infty)", r"(-\infty, -3]"],
    ),
    (r"(0, \infty)", [r"(0,\infty)", r"(0, +\infty)"], [r"[0, \infty)", r"(1, \infty)"]),
    (
        r"(-\infty, -1) \cup (1, \infty)",
        [r"(-\infty,-1)\cup(1,\infty)", r"(1, \infty) \cup (-\infty, -1)"],
        ["(-1, 1)", r"(-\infty, -1] \cup [1, \infty)", r"(-\infty, 1) \cup (1, \infty)"],
    ),
    ("[-2, 5]", ["[-2,5]"], ["(-2, 5)", "[-5, 2]"]),
    (r"\left(\frac{1}{2}, 3\right]", ["(0.5, 3]", "(1/2, 3]"], ["[0.5, 3]", r"\left(\frac{1}{3}, 3\right]"]),
]
_SETS = [
    (r"\{1, 2, 3\}", [r"\{3, 2, 1\}", r"\{2,1,3\}"], [r"\{1, 2\}", r"\{1, 2, 4\}"]),
    (r"\{-1, 4\}", [r"\{4, -1\}"], [r"\{1, 4\}", r"\{-4, 1\}"]),
    (r"\emptyset", [r"\varnothing", r"\emptyset"], [r"\{0\}"]),
]
_TUPLES = [
    ("(2, 3)", ["(2,3)", r"\left(2, 3\right)", "(x, y) = (2, 3)"], ["(3, 2)", "(2, -3)"]),
    (
        r"\left(\frac{1}{2}, -1\right)",
        [r"(0.5, -1)", r"\left(\frac12, -1\right)"],
        [r"\left(-1, \frac{1}{2}\right)", r"\left(\frac{1}{2}, 1\right)"],
    ),
    ("(1, -2, 3)", ["(1,-2,3)"], ["(1, 2, 3)", "(3, -2, 1)"]),
    ("(-4, 0)", ["(-4,0)"], ["(0, -4)", "(4, 0)"]),
]
_MATRICES = [
    (
        r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}",
        [r"\begin{pmatrix}1\\2\end{pmatrix}", r"\begin{bmatrix} 1 \\ 2 \end{bmatrix}"],
        [r"\begin{pmatrix} 2 \\ 1 \end{pmatrix}", r"\begin{pmatrix} 1 \\ -2 \end{pmatrix}"],
    ),
    (
        r"\begin{pmatrix} 1 & 2 \\ 3 & 4 \end{pmatrix}",
        [r"\begin{pmatrix}1&2\\3&4\end{pmatrix}", r"\begin{bmatrix} 1 & 2 \\ 3 & 4 \end{bmatrix}"],
        [r"\begin{pmatrix} 1 & 3 \\ 2 & 4 \end{pmatrix}", r"\begin{pmatrix} 1 & 2 \\ 3 & 5 \end{pmatrix}"],
    ),
    (
        r"\begin{pmatrix} \frac{1}{2} \\ 0 \\ -3 \end{pmatrix}",
        [r"\begin{pmatrix} 0.5 \\ 0 \\ -3 \end{pmatrix}"],
        [r"\begin{pmatrix} 2 \\ 0 \\ -3 \end{pmatrix}"],
    ),
]
_EQUATIONS = [
    ("3", ["x = 3", "n = 3"], ["x = 4", "x = -3"]),
    ("2x + 1", ["y = 2x + 1", "y = 1 + 2x"], ["y = 2x - 1", "y = x + 2"]),
    (r"y = -\frac{1}{2}x + 4", [r"y = 4 - \frac{x}{2}", "y = -0.5x + 4"], [r"y = \frac{1}{2}x + 4"]),
    ("x^2 + y^2 = 25", ["y^2 + x^2 = 25"], ["x^2 + y^2 = 5"]),
    ("-2", ["k = -2"], ["k = 2"]),
]
_MULTIPLE = [  # "enter all the solutions, separated by commas": the order does not matter
    ("2, 3", ["3, 2", "x = 2, x = 3"], ["2", "2, 4", "2, 3, 4"]),
    ("-1, 5", ["5, -1", "-1,5"], ["1, -5", "-1"]),
    (r"1 \pm \sqrt{2}", [r"1+\sqrt{2}, 1-\sqrt{2}"], [r"1 + \sqrt{2}"]),
    (r"\frac{1}{2}, -3", [r"-3, \frac{1}{2}", "0.5, -3"], [r"\frac{1}{2}, 3"]),
]
_EXPRESSIONS = [
    ("(x+1)^2", ["x^2+2x+1", "(1+x)^2"], ["x^2+1", "(x-1)^2"]),
    ("x^2-1", ["(x-1)(x+1)", "(x+1)(x-1)"], ["(x-1)^2", "x^2+1"]),
    (r"\frac{x+1}{x-1}", [r"\frac{1+x}{x-1}", "(x+1)/(x-1)"], [r"\frac{x-1}{x+1}"]),
    ("2x^3 - 5x + 7", ["7 - 5x + 2x^3"], ["2x^3 + 5x + 7"]),
    ("a^2b", ["ba^2"], ["ab^2"]),
    ("e^2", ["e^{2}"], ["2e"]),
    (r"\infty", [r"\infty"], [r"-\infty"]),
]
_BASES = [  # same base only: a bare "11" for "1011_2" answers a different question ("in base 2")
    ("1011_2", ["1011_{2}", "1011_2"], ["1101_2", "1001_2"]),
    ("2A_{16}", ["2A_{16}"], ["2B_{16}"]),
    ("123_4", ["123_{4}"], ["321_4"]),
    ("5043_6", ["5043_{6}"], ["5034_6"]),
]
_TEXT = [
    (r"\text{(C)}", [r"\text{(C)}", r"\textbf{(C)}"], [r"\text{(B)}", r"\text{(D)}"]),
    (r"\text{Monday}", ["Monday", r"\text{Monday}"], ["Tuesday", r"\text{Sunday}"]),
    (r"\text{even}", [r"\text{even}", "even"], ["odd"]),
    (r"\text{Evelyn}", ["Evelyn"], ["Emily", "Lyneve"]),
    (r"\text{yes}", ["yes"], [r"\text{no}"]),
]


def build() -> list[Pair]:
    """All pairs, in a fixed order (the benchmark shuffles them with its seed)."""
    return (
        _integers()
        + _negatives()
        + _thousands()
        + _fractions()
        + _table("sqrt", _SQRT)
        + _table("pi", _PI)
        + _table("mixed-number", _MIXED)
        + _table("percent", _PERCENT)
        + _table("units", _UNITS)
        + _table("scientific", _SCIENTIFIC)
        + _table("interval", _INTERVALS)
        + _table("set", _SETS)
        + _table("tuple", _TUPLES)
        + _table("matrix", _MATRICES)
        + _table("equation", _EQUATIONS)
        + _table("multiple", _MULTIPLE)
        + _table("expression", _EXPRESSIONS)
        + _table("base", _BASES)
        + _table("text", _TEXT)
    )


PAIRS: list[Pair] = build()

# Reasoning openings: numbers on purpose, so a checker that reads the last number of the text
# instead of the final answer line is caught.
_REASONING = [
    "Let me work through this step by step. First I write down what is given: 3 apples and 4 pears, "
    "so 7 pieces of fruit. Then I set up the equation and simplify.",
    "We start from the definition. Substituting n = 10 gives 2^10 = 1024, which is too large, so we "
    "go back and try the other case, checking each step.",
    "Consider the two cases separately. In the first case the sum is 12 and in the second it is 15; "
    "only the second satisfies the constraint, so we continue with it.",
    "Write the expression over a common denominator and factor. The discriminant is 16 - 12 = 4 > 0, "
    "so both roots are real. Checking the edge cases, nothing changes.",
]
_PLAIN_NUMBER = re.compile(r"[+\-\u2212]?[\d,.]+")


def completion(pair: Pair, i: int) -> str:
    """The pair's answer inside a realistic completion; i picks the reasoning and the final-line style.

    LaTeX answers are always delimited (boxed or $...$), as a model writes them; the undelimited
    "The answer is 42." style is used for plain numbers only.
    """
    a = pair.answer
    styles = [
        f"Therefore, the final answer is $\\boxed{{{a}}}$.",
        f"**Final Answer**\n\\[\n\\boxed{{{a}}}\n\\]",
        f"So the answer is $\\boxed{{{a}}}$. I hope it is correct.",
    ]
    if "$" not in a:
        styles.append(f"The answer is ${a}$.")
    if _PLAIN_NUMBER.fullmatch(a):
        styles += [f"The answer is {a}.", f"Final answer: {a}"]
    return f"{_REASONING[i % len(_REASONING)]}\n\n{styles[(i // len(_REASONING)) % len(styles)]}"


def distinct_key(pair: Pair) -> tuple[str, str]:
    """(gold, answer) with whitespace removed: two pairs that differ only in spacing count as one."""
    return re.sub(r"\s+", "", pair.gold), re.sub(r"\s+", "", pair.answer)


if __name__ == "__main__":
    counts = Counter((p.kind, p.expected) for p in PAIRS)
    for kind in dict.fromkeys(p.kind for p in PAIRS):
        print(f"{kind:>20}: {counts[kind, True]:3d} equal, {counts[kind, False]:3d} not equal")
    print(f"{'total':>20}: {len(PAIRS)} pairs, {len({distinct_key(p) for p in PAIRS})} distinct")
