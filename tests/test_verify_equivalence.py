"""verify_math: equivalent answers in different notations, near misses, and the per-check deadline."""

from __future__ import annotations

import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from thinkcost.types import Verdict
from thinkcost.verify import checker_pool
from thinkcost.verify.checker_pool import close_math_workers
from thinkcost.verify.math import verify_math

GUARD_S = 180  # generous: only there so that a regression fails the test instead of hanging the suite
# 9^(9^9) has ~370 million digits: sympy would compute it for hours, in C for much of the time.
HUGE = r"\boxed{9^{9^{9}}}"

CASES = [
    # fractions and decimals
    (r"\boxed{\frac{1}{2}}", "0.5", True),
    (r"\boxed{\dfrac{1}{2}}", "0.5", True),
    (r"\boxed{0.5}", r"\frac{1}{2}", True),
    (r"\boxed{\frac{3}{2}}", "1.5", True),
    ("Answer: 7/2", "3.5", True),
    (r"\boxed{\frac{1}{2}}", r"\frac{1}{3}", False),
    (r"\boxed{0.333}", r"\frac{1}{3}", False),
    (r"\boxed{0.333}", "1/3", False),
    # assignments, thousands separators, currency
    ("The answer is $x=3$.", "3", True),
    (r"\boxed{x = 3}", "3", True),
    (r"\boxed{y = 2x + 1}", "2x+1", True),
    ("There are 1,000 of them.", "1000", True),
    (r"The total is \$1,250.", "1250", True),
    (r"\boxed{1,000,000}", "10^6", True),
    (r"\boxed{10,\!080}", "10080", True),
    (r"\boxed{1\,000\,000}", "1000000", True),
    (r"\boxed{10,\!800}", "10080", False),
    ("There are 1,000 of them.", "100", False),
    # intervals and sets
    (r"\boxed{[1,2)}", "[1, 2)", True),
    (r"\boxed{[1,2)}", "(1,2)", False),
    (r"\boxed{(-\infty, 3]}", r"(-\infty,3]", True),
    (r"\boxed{(-\infty, 3]}", r"(-\infty,3)", False),
    (r"\boxed{\{1,2\}}", r"\{2,1\}", True),
    (r"\boxed{1, 2}", r"\{1,2\}", True),
    (r"\boxed{\{1,2\}}", r"\{1,3\}", False),
    # radicals, pi, powers, expressions
    (r"\boxed{\sqrt{2}/2}", r"\frac{\sqrt{2}}{2}", True),
    (r"\boxed{\frac{\sqrt{3}}{3}}", r"\frac{1}{\sqrt{3}}", True),
    (r"\boxed{3\sqrt{3}}", r"\sqrt{27}", True),
    (r"\boxed{2\pi}", r"\pi \cdot 2", True),
    (r"\boxed{\pi}", "3.14", False),
    (r"\boxed{2^{10}}", "1024", True),
    (r"\boxed{3 \times 10^{5}}", "300000", True),
    (r"\boxed{x^2+2x+1}", "(x+1)^2", True),
    (r"\boxed{x^2+1}", "(x+1)^2", False),
    # "The answer is $...$": the whole math span, not its leading number
    (r"The answer is $2\pi$.", r"2\pi", True),
    (r"The answer is $3\sqrt5$.", r"3\sqrt{5}", True),
    (r"The answer is $3\sqrt5$.", "3", False),
    (r"The answer is $-3, \frac{1}{2}$.", r"\frac{1}{2}, -3", True),
    (r"The answer is $4\frac{3}{4}$.", "4.75", True),
    (r"\boxed{\infty}", r"\infty", True),
    (r"\boxed{-\infty}", r"\infty", False),
    # percent, units, degrees
    (r"\boxed{50\%}", "50", True),
    (r"\boxed{10\%}", "0.1", True),
    (r"\boxed{10\%}", "0.2", False),
    ("The length is 5 cm.", "5", True),
    (r"\boxed{5 \text{ cm}}", "5", True),
    (r"\boxed{5\,\mathrm{cm}}", "5", True),
    (r"\boxed{5 \text{ cm}^2}", "5", True),
    (r"\boxed{30^\circ}", "30", True),
    (r"\boxed{45^{\circ}}", r"45^\circ", True),
    ("The angle is $90\u00b0$.", "90", True),
    ("The answer is $90\u00b0$.", "45", False),
    # signs
    ("The answer is \u22124.", "-4", True),
    (r"\boxed{-\frac{3}{4}}", "-0.75", True),
    (r"\boxed{-5}", "5", False),
    # large numbers
    (r"\boxed{123456789012345678901234567890}", "123456789012345678901234567890", True),
    (r"\boxed{123456789012345678901234567890}", "123456789012345678901234567891", False),
    # non-math text and words
    (r"\boxed{\text{(B)}}", r"\text{(B)}", True),
    (r"\boxed{\text{(B)}}", r"\text{(C)}", False),
    (r"\boxed{Evelyn}", r"\text{Evelyn}", True),
    (r"\boxed{silent}", r"\text{listen}", False),  # not a product of the same six symbols
    # matrices
    (r"\boxed{\begin{pmatrix}1\\2\end{pmatrix}}", r"\begin{pmatrix} 1 \\ 2 \end{pmatrix}", True),
    (r"\boxed{\begin{pmatrix}1\\2\end{pmatrix}}", r"\begin{pmatrix}2\\1\end{pmatrix}", False),
    # no answer at all
    ("I am not sure.", "5", False),
]


@pytest.fixture
def guard() -> Iterator[None]:
    """Fail a main-thread test that runs past GUARD_S (verify_math itself never uses SIGALRM)."""

    def expire(signum, frame):
        pytest.fail(f"verify_math did not return within {GUARD_S}s")

    old = signal.signal(signal.SIGALRM, expire)
    signal.alarm(GUARD_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def in_thread(fn: Callable[[], Verdict]) -> Verdict:
    """Run fn in a worker thread (where math-verify's own signal timeout cannot work), guarded."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn).result(timeout=GUARD_S)


@pytest.mark.parametrize(("answer", "gold", "expected"), CASES)
def test_equivalence(answer: str, gold: str, expected: bool) -> None:
    assert verify_math(answer, gold).correct is expected


def test_table_is_large_and_balanced() -> None:
    assert len(CASES) >= 40
    assert sum(not ok for _, _, ok in CASES) >= 15


def test_detail_names_the_checker() -> None:
    v = verify_math(r"\boxed{\dfrac{1}{2}}", "0.5")
    assert (v.correct, v.extracted, v.rule, v.detail) == (True, r"\dfrac{1}{2}", "boxed", "numeric")
    v = verify_math("So the answer is $[1,2)$.", "[1, 2)")
    assert (v.correct, v.extracted, v.rule, v.detail) == (True, "[1,2)", "answer-is", "math-verify")
    assert verify_math("I am not sure.", "5") == Verdict(False, None, "none", detail="no answer")
    assert verify_math("", "5") == Verdict(False, None, "none", detail="no answer")


def test_exact_numbers_skip_the_float_tolerance() -> None:
    # math-verify rounds to 6 places and would accept this; two exact numbers are compared exactly
    v = verify_math(r"\boxed{0.333333}", r"\frac{1}{3}")
    assert (v.correct, v.detail) == (False, "numeric")


def test_bad_input_gives_a_verdict() -> None:
    v = verify_math(r"\boxed{\frac{1}{2}", "0.5")  # unterminated box: the last number is read instead
    assert (v.correct, v.extracted, v.rule) == (True, r"\frac{1}{2}", "last-number")
    v = verify_math(r"\boxed{)(][\frac{}{}}", r"\sqrt{")
    assert (v.correct, v.rule) == (False, "boxed")
    assert v.detail is not None and v.detail.startswith("math-verify")
    assert verify_math(r"\boxed{7}", None).correct is False  # type: ignore[arg-type]


def test_timeout_must_be_positive() -> None:
    with pytest.raises(ValueError, match="timeout_s"):
        verify_math(r"\boxed{1}", "1", timeout_s=0)


def test_timeout_in_main_thread(guard: None) -> None:
    assert threading.current_thread() is threading.main_thread()
    host_handler = signal.getsignal(signal.SIGALRM)
    v = verify_math(HUGE, "5", timeout_s=1.0)
    assert v == Verdict(False, "9^{9^{9}}", "boxed", detail="timeout")
    assert signal.getsignal(signal.SIGALRM) is host_handler  # the host's alarm is left alone
    # the killed checker is replaced: the next check gets a real verdict
    v = verify_math(r"\boxed{[1,2)}", "[1, 2)")
    assert (v.correct, v.detail) == (True, "math-verify")


def test_timeout_in_worker_thread() -> None:
    v = in_thread(lambda: verify_math(HUGE, "5", timeout_s=1.0))
    assert v == Verdict(False, "9^{9^{9}}", "boxed", detail="timeout")
    v = in_thread(lambda: verify_math(r"\boxed{2\pi}", r"\pi \cdot 2"))
    assert (v.correct, v.detail) == (True, "math-verify")


def test_many_threads_at_once_each_get_their_own_verdict() -> None:
    jobs = [
        (r"\boxed{\{1,2\}}", r"\{2,1\}", True, "math-verify"),
        (HUGE, "5", False, "timeout"),
        (r"\boxed{[1,2)}", "(1,2)", False, "math-verify"),
        (r"\boxed{\sqrt{2}/2}", r"\frac{\sqrt{2}}{2}", True, "math-verify"),
        (r"\boxed{0.5}", "1/2", True, "numeric"),
        (r"\boxed{x^2+1}", "(x+1)^2", False, "math-verify"),
    ]
    with ThreadPoolExecutor(4) as pool:
        futures = [
            pool.submit(verify_math, a, g, timeout_s=1.0 if a == HUGE else 30.0) for a, g, _, _ in jobs
        ]
        got = [(f.result(timeout=GUARD_S).correct, f.result().detail) for f in futures]
    assert got == [(ok, detail) for _, _, ok, detail in jobs]


def test_workers_restart_after_close() -> None:
    assert verify_math(r"\boxed{\{1,2\}}", r"\{2,1\}").correct
    close_math_workers()
    assert verify_math(r"\boxed{\{1,2\}}", r"\{2,1\}").correct


def test_missing_math_verify_is_a_verdict_not_an_exception(tmp_path, monkeypatch) -> None:
    (tmp_path / "math_verify.py").write_text("raise ImportError('not installed, for this test')\n")
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the checker process imports this one first
    monkeypatch.setattr(checker_pool, "_POOL", None)  # a fresh pool, restored after the test
    started = []
    popen = subprocess.Popen
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a) or popen(*a, **k))
    expected = Verdict(False, "[1,2)", "boxed", detail="math-verify error: ImportError")
    assert verify_math(r"\boxed{[1,2)}", "[1, 2)") == expected
    assert verify_math(r"\boxed{[1,2)}", "[1, 2)") == expected
    assert len(started) == 1  # remembered, not retried for every check
    assert verify_math(r"\boxed{0.5}", "1/2").correct  # exact numbers never need math-verify
