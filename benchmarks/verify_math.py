"""Checks per second of our verify_math against raw math-verify, side by side, on the same pairs.

Ours: our extraction, an exact-number fast path, and math-verify in a checker process under a
deadline (works in any thread, and a hung check is killed). Raw: math-verify's own
``verify(parse(gold), parse(completion))`` in this process, in the main thread, with its default
signal-based timeouts; and the same with the gold wrapped in ``$...$``, since parse() finds no
bare LaTeX gold (so plain raw is fast partly because it fails). The pairs are realistic completions (reasoning, then a final answer) mixing
plain numbers and LaTeX, repeated and shuffled. Both sides run over the same list in alternating
rounds; the best round of each is reported, with the agreement of their verdicts.

    python benchmarks/verify_math.py [--pairs 300] [--rounds 3] [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import time

from thinkcost.verify.math import verify_math

# (final answer as the model writes it, gold, expected verdict) — a mix of the equivalence table's kinds.
ANSWERS = [
    ("The answer is 42.", "42", True),
    (r"So the total is $\boxed{1,250}$.", "1250", True),
    (r"\boxed{\frac{3}{4}}", "0.75", True),
    ("Answer: 7/2", "3.5", True),
    (r"Thus $x = \boxed{-4}$.", "-4", True),
    ("She has 18 apples left.", "18", True),
    ("The answer is 17.", "71", False),
    (r"\boxed{0.333}", r"\frac{1}{3}", False),
    (r"\boxed{50\%}", "50", True),
    (r"\boxed{12 \text{ cm}}", "12", True),
    ("Final answer: 3.50", "7/2", True),
    (r"\boxed{2}", "3", False),
    (r"\boxed{[1,2)}", "[1, 2)", True),
    (r"\boxed{[1,2)}", "(1,2)", False),
    (r"\boxed{\{1,2\}}", r"\{2,1\}", True),
    (r"\boxed{\sqrt{2}/2}", r"\frac{\sqrt{2}}{2}", True),
    (r"\boxed{2\pi}", r"\pi \cdot 2", True),
    (r"\boxed{\frac{\sqrt{3}}{3}}", r"\frac{1}{\sqrt{3}}", True),
    (r"\boxed{x^2+2x+1}", "(x+1)^2", True),
    (r"\boxed{x^2+1}", "(x+1)^2", False),
    (r"\boxed{(-\infty, 3]}", r"(-\infty,3]", True),
    (r"\boxed{30^\circ}", "30", True),
    (r"\boxed{1,000,000}", "10^6", True),
    (r"\boxed{3\sqrt{3}}", r"\sqrt{27}", True),
    (r"\boxed{\text{(B)}}", r"\text{(B)}", True),
    (r"\boxed{y = 2x + 1}", "2x+1", True),
    (r"\boxed{\begin{pmatrix}1\\2\end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", True),
    (r"\boxed{\pi}", "3.14", False),
]
REASONING = (
    "Let me work through this step by step. First I write down what is given, then I set up the "
    "equation and simplify: 3 + 4 = 7, and 7 * 2 = 14. Checking the edge cases, nothing changes.\n\n"
)


def build_pairs(n: int, seed: int) -> list[tuple[str, str]]:
    """n (completion, gold) pairs: every answer kind, repeated, shuffled."""
    pairs = [(REASONING + answer, gold) for answer, gold, _ in ANSWERS]
    out = (pairs * (n // len(pairs) + 1))[:n]
    random.Random(seed).shuffle(out)
    return out


def run_ours(pairs: list[tuple[str, str]]) -> list[bool]:
    return [verify_math(completion, gold).correct for completion, gold in pairs]


def run_raw(pairs: list[tuple[str, str]]) -> list[bool]:
    from math_verify import parse, verify

    return [bool(verify(parse(gold), parse(completion))) for completion, gold in pairs]


def run_raw_wrapped(pairs: list[tuple[str, str]]) -> list[bool]:
    """Raw, with the gold in $...$ as math-verify expects: a bare LaTeX gold is not found by parse()."""
    from math_verify import parse, verify

    return [bool(verify(parse(f"${gold}$"), parse(completion))) for completion, gold in pairs]


def timed(fn, pairs: list[tuple[str, str]]) -> tuple[float, list[bool]]:
    t = time.perf_counter()
    verdicts = fn(pairs)
    return time.perf_counter() - t, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    pairs = build_pairs(args.pairs, args.seed)

    t = time.perf_counter()
    run_ours(pairs[:1])  # starts the checker process; not part of the per-check cost
    start_s = time.perf_counter() - t
    run_raw(pairs[:1])  # imports math-verify and builds its regexes in this process
    details = [verify_math(c, g).detail for c, g in pairs]
    numeric = sum(d == "numeric" for d in details)

    ours_s, raw_s, wrapped_s = [], [], []
    for _ in range(args.rounds):  # alternate, so that drift in machine load hits all sides alike
        s, ours = timed(run_ours, pairs)
        ours_s.append(s)
        s, raw = timed(run_raw, pairs)
        raw_s.append(s)
        s, wrapped = timed(run_raw_wrapped, pairs)
        wrapped_s.append(s)

    n = len(pairs)
    best_ours, best_raw, best_wrapped = min(ours_s), min(raw_s), min(wrapped_s)
    agree = sum(a == b for a, b in zip(ours, raw, strict=True))
    agree_wrapped = sum(a == b for a, b in zip(ours, wrapped, strict=True))
    expected = {(REASONING + a, g): ok for a, g, ok in ANSWERS}
    ours_right = sum(v == expected[p] for v, p in zip(ours, pairs, strict=True))
    raw_right = sum(v == expected[p] for v, p in zip(raw, pairs, strict=True))
    wrapped_right = sum(v == expected[p] for v, p in zip(wrapped, pairs, strict=True))

    print(f"pairs: {n} ({len(ANSWERS)} distinct, shuffled), rounds: {args.rounds}, best round reported")
    print(f"checker process start (once, excluded): {start_s:.2f} s")
    for name, runs in (
        ("ours  verify_math                ", ours_s),
        ("raw   verify(parse(g), parse(c)) ", raw_s),
        ("raw   verify(parse($g$),parse(c))", wrapped_s),
    ):
        print(f"{name}: {n / min(runs):8.1f} checks/s  (median round {n / statistics.median(runs):.1f})")
    print(f"ratio ours/raw: {best_raw / best_ours:.2f}x   ours/raw-wrapped: {best_wrapped / best_ours:.2f}x")
    print(f"decided by the numeric fast path: {numeric}/{n} ({100 * numeric / n:.0f}%)")
    print(f"agreement ours vs raw: {agree}/{n} ({100 * agree / n:.1f}%)")
    print(f"agreement ours vs raw-wrapped: {agree_wrapped}/{n} ({100 * agree_wrapped / n:.1f}%)")
    print(
        f"matches the expected verdict: ours {ours_right}/{n}, raw {raw_right}/{n}, raw-wrapped {wrapped_right}/{n}"
    )
    seen = set()
    for pair, a, b, w in zip(pairs, ours, raw, wrapped, strict=True):
        if not a == b == w and pair not in seen:
            seen.add(pair)
            answer = pair[0][len(REASONING) :]
            print(
                f"  disagree: {answer!r} vs gold {pair[1]!r}: ours {a}, raw {b}, raw-wrapped {w},"
                f" expected {expected[pair]}"
            )


if __name__ == "__main__":
    main()
