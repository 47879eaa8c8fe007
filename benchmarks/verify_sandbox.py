"""Graded executions per second: the old path (one program, judged by its exit code) vs the harness.

Old: ``run_python(candidate + tests + "check(entry)")``, passed iff the exit code is 0 (what
``check_program`` did before it could not be gamed; ``sys.exit(0)`` passed). New:
``check_program(candidate, tests, entry_point=...)``, passed iff the grader saw the tests finish.
Each execution is a full sandbox (temp dir, isolated interpreter, every isolation layer the machine
grants, kill and cleanup). The programs are small HumanEval-like candidates; a third are wrong, so
both the passing and the failing path are timed. Rounds alternate old/new so that load on a shared
machine hits both alike; the best round of each is reported, and both must agree on every status.

    python benchmarks/verify_sandbox.py [--n 40] [--rounds 5] [--workers 1]

With ``--workers N`` both paths run on a pool of N threads (each launching sandboxed children).
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ThreadPoolExecutor

from thinkcost.sandbox import SandboxResult, check_program, layers, run_python

# (entry point, arguments, correct body, buggy body, check body)
_TASKS = [
    ("add", "a, b", "return a + b", "return a - b", "assert f(2, 3) == 5\n    assert f(-1, 1) == 0"),
    ("rev", "s", "return s[::-1]", "return s", "assert f('abc') == 'cba'\n    assert f('') == ''"),
    (
        "is_prime",
        "n",
        "return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))",
        "return n % 2 == 1",
        "assert f(7) and f(2) and not f(9) and not f(1)",
    ),
    (
        "fib",
        "n",
        "x, y = 0, 1\n    for _ in range(n):\n        x, y = y, x + y\n    return x",
        "return n",
        "assert [f(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]",
    ),
    ("uniq", "xs", "return sorted(set(xs))", "return xs", "assert f([3, 1, 3, 2]) == [1, 2, 3]"),
    (
        "vowels",
        "s",
        "return sum(c in 'aeiou' for c in s.lower())",
        "return len(s)",
        "assert f('Hello World') == 3",
    ),
    (
        "max_sub",
        "xs",
        "best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best",
        "return max(xs)",
        "assert f([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6",
    ),
    (
        "pal",
        "s",
        "t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]",
        "return s == s[::-1]",
        "assert f('A man, a plan, a canal: Panama') and not f('abc')",
    ),
]


def programs(n: int) -> list[tuple[str, str, str]]:
    """n (candidate, tests, entry point) triples; every third candidate is the buggy one."""
    out = []
    for i in range(n):
        name, args, good, bad, check = _TASKS[i % len(_TASKS)]
        candidate = f"def {name}({args}):\n    {bad if i % 3 == 2 else good}\n"
        out.append((candidate, f"def check(f):\n    {check}\n", name))
    return out


def old_one(item: tuple[str, str, str], timeout_s: float) -> SandboxResult:
    """The pre-harness grading: one concatenated program, judged by its exit code."""
    candidate, tests, entry = item
    return run_python(f"{candidate}\n{tests}\ncheck({entry})\n", timeout_s=timeout_s)


def new_one(item: tuple[str, str, str], timeout_s: float) -> SandboxResult:
    """The grading harness."""
    candidate, tests, entry = item
    return check_program(candidate, tests, entry_point=entry, timeout_s=timeout_s)


def run_all(grade, items: list[tuple[str, str, str]], timeout_s: float, workers: int) -> list[SandboxResult]:
    """Grade every item, serially or on a pool of threads; results in input order."""
    if workers <= 1:
        return [grade(item, timeout_s) for item in items]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda item: grade(item, timeout_s), items))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40, help="programs per round")
    ap.add_argument(
        "--rounds", type=int, default=5, help="alternating old/new rounds; the best of each counts"
    )
    ap.add_argument("--workers", type=int, default=1, help="threads launching children (1: serial)")
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    layers()  # the one-off probe is not part of either timing
    items = programs(args.n)
    run_all(old_one, items[:2], args.timeout, 1)  # warm the page cache, the grader's code and test caches
    run_all(new_one, items[:2], args.timeout, 1)
    best = {"old": float("inf"), "new": float("inf")}
    statuses: dict[str, list[str]] = {}
    for _ in range(args.rounds):
        for mode, grade in (("old", old_one), ("new", new_one)):
            start = time.perf_counter()
            results = run_all(grade, items, args.timeout, args.workers)
            best[mode] = min(best[mode], time.perf_counter() - start)
            statuses[mode] = [r.status for r in results]
    assert statuses["old"] == statuses["new"], "the old path and the harness disagree"
    print(f"isolation (new): {results[0].isolation}")
    print(
        f"programs: {args.n} per round, {args.rounds} rounds, {statuses['new'].count('passed')} passed, "
        f"{'serial' if args.workers <= 1 else f'{args.workers} workers'}"
    )
    print(f"{'path':<34} {'best s':>7} {'exec/s':>7} {'ms/exec':>8}")
    for mode, label in (("old", "old: run_python, exit code"), ("new", "new: check_program, harness")):
        rate = args.n / best[mode]
        print(f"{label:<34} {best[mode]:7.2f} {rate:7.1f} {1000 * best[mode] / args.n:8.1f}")
    print(
        f"new/old throughput ratio: {best['old'] / best['new']:.3f} (new is {100 * (best['new'] / best['old'] - 1):+.1f}% time)"
    )


if __name__ == "__main__":
    main()
