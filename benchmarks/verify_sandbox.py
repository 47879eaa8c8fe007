"""Sandboxed executions per second: serial vs a pool of worker threads (run_many), in one run.

Each execution is a full sandbox: temp dir, isolated interpreter, namespaces/rlimits where the
machine grants them, kill and cleanup. The programs are small HumanEval-like candidates with a
check(); about a third are wrong, so both the passing and the failing path are timed. Both modes
run the same programs and must agree on every status.

    python benchmarks/verify_sandbox.py [--n 40] [--workers 2]
"""

from __future__ import annotations

import argparse
import time

from thinkcost.verify.code import SandboxResult, check_program, layers, run_many

# (entry point, correct body, buggy body, check body)
_TASKS = [
    ("add", "return a + b", "return a - b", "assert f(2, 3) == 5\n    assert f(-1, 1) == 0"),
    ("rev", "return s[::-1]", "return s", "assert f('abc') == 'cba'\n    assert f('') == ''"),
    (
        "is_prime",
        "return n > 1 and all(n % d for d in range(2, int(n**0.5) + 1))",
        "return n % 2 == 1",
        "assert f(7) and f(2) and not f(9) and not f(1)",
    ),
    (
        "fib",
        "x, y = 0, 1\n    for _ in range(n):\n        x, y = y, x + y\n    return x",
        "return n",
        "assert [f(i) for i in range(8)] == [0, 1, 1, 2, 3, 5, 8, 13]",
    ),
    ("uniq", "return sorted(set(xs))", "return xs", "assert f([3, 1, 3, 2]) == [1, 2, 3]"),
    (
        "vowels",
        "return sum(c in 'aeiou' for c in s.lower())",
        "return len(s)",
        "assert f('Hello World') == 3",
    ),
    (
        "max_sub",
        "best = cur = xs[0]\n    for x in xs[1:]:\n        cur = max(x, cur + x)\n        best = max(best, cur)\n    return best",
        "return max(xs)",
        "assert f([-2, 1, -3, 4, -1, 2, 1, -5, 4]) == 6",
    ),
    (
        "pal",
        "t = [c.lower() for c in s if c.isalnum()]\n    return t == t[::-1]",
        "return s == s[::-1]",
        "assert f('A man, a plan, a canal: Panama') and not f('abc')",
    ),
]


def _programs(n: int) -> list[tuple[str, str, str]]:
    """n (candidate, tests, entry point) triples; every third candidate is the buggy one."""
    out = []
    for i in range(n):
        name, good, bad, check = _TASKS[i % len(_TASKS)]
        body = bad if i % 3 == 2 else good
        args = "s" if name in ("rev", "vowels", "pal") else "xs" if name in ("uniq", "max_sub") else "n"
        args = "a, b" if name == "add" else args
        candidate = f"def {name}({args}):\n    {body}\n"
        tests = f"def check(f):\n    {check}\n"
        out.append((candidate, tests, name))
    return out


def _as_program(candidate: str, tests: str, entry: str) -> str:
    return f"{candidate}\n{tests}\ncheck({entry})\n"


def _serial(items: list[tuple[str, str, str]], timeout_s: float) -> tuple[list[SandboxResult], float]:
    start = time.perf_counter()
    results = [check_program(c, t, entry_point=e, timeout_s=timeout_s) for c, t, e in items]
    return results, time.perf_counter() - start


def _pooled(
    items: list[tuple[str, str, str]], workers: int, timeout_s: float
) -> tuple[list[SandboxResult], float]:
    start = time.perf_counter()
    results = run_many([_as_program(*it) for it in items], workers=workers, timeout_s=timeout_s)
    return results, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--timeout", type=float, default=10.0)
    args = ap.parse_args()
    layers()  # the one-off probe is not part of either timing
    items = _programs(args.n)
    check_program(*items[0][:2], entry_point=items[0][2])  # warm the page cache for the interpreter
    serial, t_serial = _serial(items, args.timeout)
    pooled, t_pool = _pooled(items, args.workers, args.timeout)
    statuses = [r.status for r in serial]
    assert statuses == [r.status for r in pooled], "serial and pooled runs disagree"
    r_serial, r_pool = args.n / t_serial, args.n / t_pool
    print(f"isolation: {serial[0].isolation}")
    print(
        f"programs: {args.n} ({statuses.count('passed')} passed, {statuses.count('failed')} failed, "
        f"{len(statuses) - statuses.count('passed') - statuses.count('failed')} other)"
    )
    print(f"{'mode':<12} {'seconds':>8} {'exec/s':>8} {'ms/exec':>8}")
    print(f"{'serial':<12} {t_serial:8.2f} {r_serial:8.1f} {1000 * t_serial / args.n:8.1f}")
    print(f"{f'pool x{args.workers}':<12} {t_pool:8.2f} {r_pool:8.1f} {1000 * t_pool / args.n:8.1f}")
    print(f"pool/serial throughput ratio: {r_pool / r_serial:.2f}x")


if __name__ == "__main__":
    main()
