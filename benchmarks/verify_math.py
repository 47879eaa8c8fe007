"""Checks per second of our verify_math against raw math-verify, side by side, on the same pairs.

Ours: our extraction, an exact-number fast path, and math-verify in a checker process under a
deadline (works in any thread, and a hung check is killed). Raw: math-verify's own
``verify(parse(gold), parse(completion))`` in this process, in the main thread, with its default
signal-based timeouts; and the same with the gold wrapped in ``$...$``, since parse() finds no
bare LaTeX gold (so plain raw is fast partly because it fails). The pairs (benchmarks/
verify_math_pairs.py) are distinct (gold, answer) cases of every kind a MATH-500 grader meets, each
with a verdict known from how it was built, wrapped in realistic completions (reasoning, then a
final answer line), shuffled. All sides run over the same list in alternating rounds; the best
round of each is reported, with the agreement of their verdicts and with the expected ones.

    python benchmarks/verify_math.py [--rounds 3] [--seed 0] [--limit N]
"""

from __future__ import annotations

import argparse
import logging
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # verify_math_pairs, next to this file

from thinkcost.verify.math import verify_math
from verify_math_pairs import PAIRS, Pair, completion


def build_pairs(limit: int | None, seed: int) -> list[tuple[str, str, Pair]]:
    """(completion, gold, pair) for every distinct pair (or the first `limit` after shuffling)."""
    out = [(completion(p, i), p.gold, p) for i, p in enumerate(PAIRS)]
    random.Random(seed).shuffle(out)
    return out[:limit]


def run_ours(pairs: list[tuple[str, str, Pair]]) -> list[bool]:
    return [verify_math(text, gold).correct for text, gold, _ in pairs]


def run_raw(pairs: list[tuple[str, str, Pair]]) -> list[bool]:
    from math_verify import parse, verify

    return [bool(verify(parse(gold), parse(text))) for text, gold, _ in pairs]


def run_raw_wrapped(pairs: list[tuple[str, str, Pair]]) -> list[bool]:
    """Raw, with the gold in $...$ as math-verify expects: a bare LaTeX gold is not found by parse()."""
    from math_verify import parse, verify

    return [bool(verify(parse(f"${gold}$"), parse(text))) for text, gold, _ in pairs]


def timed(fn, pairs: list[tuple[str, str, Pair]]) -> tuple[float, list[bool]]:
    t = time.perf_counter()
    verdicts = fn(pairs)
    return time.perf_counter() - t, verdicts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0, help="order of the pairs")
    ap.add_argument("--limit", type=int, default=None, help="only the first N shuffled pairs (default all)")
    args = ap.parse_args()
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    pairs = build_pairs(args.limit, args.seed)

    t = time.perf_counter()
    run_ours(pairs[:1])  # starts the checker process; not part of the per-check cost
    start_s = time.perf_counter() - t
    run_raw(pairs[:1])  # imports math-verify and builds its regexes in this process
    details = [verify_math(text, gold).detail for text, gold, _ in pairs]
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
    expected = [p.expected for _, _, p in pairs]
    n_true = sum(expected)
    best_ours, best_raw, best_wrapped = min(ours_s), min(raw_s), min(wrapped_s)
    agree = sum(a == b for a, b in zip(ours, raw, strict=True))
    agree_wrapped = sum(a == b for a, b in zip(ours, wrapped, strict=True))

    def right(verdicts: list[bool]) -> int:
        return sum(v == e for v, e in zip(verdicts, expected, strict=True))

    kinds = len({p.kind for _, _, p in pairs})
    print(
        f"pairs: {n} distinct ({n_true} equal, {n - n_true} not equal; {kinds} kinds, shuffled),"
        f" rounds: {args.rounds}, best round reported"
    )
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
        f"matches the expected verdict: ours {right(ours)}/{n}, raw {right(raw)}/{n},"
        f" raw-wrapped {right(wrapped)}/{n}"
    )
    wrong = Counter()
    for (_, _, p), a, b, w in zip(pairs, ours, raw, wrapped, strict=True):
        for side, v in (("ours", a), ("raw", b), ("raw-wrapped", w)):
            wrong[side, p.kind] += v != p.expected
    for kind in sorted({p.kind for _, _, p in pairs}):
        total = sum(p.kind == kind for _, _, p in pairs)
        cells = ", ".join(f"{side} {total - wrong[side, kind]}" for side in ("ours", "raw", "raw-wrapped"))
        print(f"  {kind:>20} ({total:3d}): right {cells}")
    for (_, _, p), a, b, w in zip(pairs, ours, raw, wrapped, strict=True):
        if a != p.expected:
            print(
                f"  ours wrong: {p.answer!r} vs gold {p.gold!r} ({p.kind}): ours {a}, raw {b},"
                f" raw-wrapped {w}, expected {p.expected}"
            )


if __name__ == "__main__":
    main()
