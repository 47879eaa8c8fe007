"""Read a final answer out of model text and decide whether it equals the gold answer.

Extraction rules, tried in order (the rule name is kept in the Verdict for traceability):
  boxed       the last non-empty, closed ``\\boxed{...}`` / ``\\fbox{...}`` (braces matched)
  answer-is   the last "the answer is X" / "final answer: X" / "Answer: X"
  last-number the last number anywhere in the text
  none        nothing found

Two verdicts build on it. `verify_numeric` compares exact numbers only (the arithmetic task).
`verify_math` compares exact numbers first and hands anything else (LaTeX, intervals, sets,
expressions) to the math-verify library, in a separate process under a deadline, because
sympy can hang on adversarial input and math-verify's own timeout only works in the main thread.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import queue
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

from thinkcost.types import Verdict

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


def verify_numeric(answer_text: str, gold: str) -> Verdict:
    """Grade a completion against a numeric gold answer, recording what was read and by which rule."""
    if not answer_text or not answer_text.strip():
        return Verdict(False, None, "none")
    extracted, rule = extract_answer(answer_text)
    correct = extracted is not None and numbers_equal(extracted, gold)
    return Verdict(correct, extracted, rule)


# --------------------------------------------------------------------------- symbolic verdict

_WORKER_START_TIMEOUT_S = 120.0  # importing sympy on a loaded machine; not part of any check's deadline
_WORKER_MEMORY_BYTES = 4 << 30  # address-space cap, so a runaway check cannot swap the host
_MAX_WORKERS = max(1, min(4, os.cpu_count() or 1))
_PERCENT_RE = re.compile(r"%|\bpercent\b", re.IGNORECASE)
# A plain word answer ("Evelyn", "yes") would be read by sympy as a product of symbols, so anagrams
# would compare equal; as \text{...} it stays one symbol.
_WORD_RE = re.compile(r"[A-Za-z]{3,}(?:[ '\-][A-Za-z]+)*\.?")


def verify_math(answer_text: str, gold: str, *, timeout_s: float = 5.0) -> Verdict:
    """Grade a completion against a math gold answer (number, LaTeX, interval, set, expression).

    Our extraction picks the answer (its string and rule are kept). Two exact numbers are compared
    exactly, without math-verify ("0.333" is not 1/3). Anything else goes to math-verify, given at
    most `timeout_s` seconds; an overrun is a wrong answer with detail "timeout", never a hang.
    `detail` names the checker that decided: numeric | math-verify | timeout | math-verify error: <type>.
    """
    if not timeout_s > 0:  # also rejects NaN
        raise ValueError(f"timeout_s must be a positive number of seconds, got {timeout_s!r}")
    extracted, rule = extract_answer(answer_text if isinstance(answer_text, str) else "")
    if extracted is None:
        return Verdict(False, None, "none", detail="no answer")
    gold = "" if gold is None else str(gold)
    x, y = parse_number(extracted), parse_number(gold)
    if x is not None and y is not None:
        return Verdict(_same_number(x, extracted, y, gold), extracted, rule, detail="numeric")
    correct, detail = _symbolic_equal(extracted, gold, timeout_s)
    return Verdict(correct, extracted, rule, detail=detail)


def _same_number(x: Fraction, x_text: str, y: Fraction, y_text: str) -> bool:
    """Exact equality, where a number written with a percent sign may stand for itself or its hundredth.

    Gold answers drop the sign ("50") or convert it ("0.5") about equally often; "50%" matches both.
    """
    xs = {x, x / 100} if _PERCENT_RE.search(x_text) else {x}
    ys = {y, y / 100} if _PERCENT_RE.search(y_text) else {y}
    return not xs.isdisjoint(ys)


def close_math_workers() -> None:
    """Stop the idle checker processes now (they also stop when this process exits)."""
    with _POOL_LOCK:
        pool = _POOL if os.getpid() == _POOL_PID else None
    if pool is not None:
        pool.close()


def _symbolic_equal(answer: str, gold: str, timeout_s: float) -> tuple[bool, str]:
    """math-verify's verdict on one pair, run in a checker process under a deadline."""
    pool = _worker_pool()
    try:
        worker = pool.acquire()
    except _WorkerError as e:
        return False, f"math-verify error: {e.kind}"
    try:
        return worker.check(gold, answer, timeout_s)
    finally:
        pool.release(worker)


class _WorkerError(Exception):
    """A checker process could not start; `kind` names why (an exception type name)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _CheckWorker:
    """A child Python process that runs math-verify on request; killed when a check overruns.

    A process is the one deadline that holds in every context: math-verify's own timeout uses
    signal.alarm, which raises ValueError outside the main thread, counts whole seconds, takes over
    the host's SIGALRM handler and cannot interrupt a computation stuck in C. Killing a process can.
    """

    def __init__(self) -> None:
        src = str(Path(__file__).resolve().parents[2])  # so the child imports this same thinkcost
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-c", "from thinkcost.verify.math import _serve; _serve()"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env=env,
            )
        except OSError as e:
            raise _WorkerError(type(e).__name__) from e
        self._replies: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(self._proc.stdout,), daemon=True).start()
        try:
            hello = self._replies.get(timeout=_WORKER_START_TIMEOUT_S) or {}
        except queue.Empty:
            hello = {}
        if not hello.get("ready"):
            self.close()
            raise _WorkerError(str(hello.get("error", "WorkerStart")))

    def _pump(self, stdout) -> None:
        """Move replies to a queue (so that waiting for one can have a deadline on any platform).

        Only JSON objects are replies: anything printed before the child guards its stdout is dropped.
        """
        try:
            for line in stdout:
                try:
                    msg = json.loads(line)
                except ValueError:
                    continue
                if isinstance(msg, dict):
                    self._replies.put(msg)
        except (OSError, ValueError):  # closed under us by close()
            pass
        self._replies.put(None)

    @property
    def alive(self) -> bool:
        return self._proc.poll() is None

    def check(self, gold: str, answer: str, timeout_s: float) -> tuple[bool, str]:
        """(correct, detail) for one pair; kills this process when no reply comes within timeout_s."""
        request = json.dumps({"gold": gold, "answer": answer}).encode("ascii") + b"\n"
        try:
            self._proc.stdin.write(request)
            self._proc.stdin.flush()
            reply = self._replies.get(timeout=timeout_s)
        except queue.Empty:
            self.close()
            return False, "timeout"
        except OSError as e:  # the process is gone (broken pipe)
            self.close()
            return False, f"math-verify error: {type(e).__name__}"
        if reply is None or "correct" not in reply:  # it exited mid-check (crash) or lost the thread
            self.close()
            return False, "math-verify error: WorkerExited"
        return bool(reply["correct"]), str(reply.get("detail", "math-verify"))

    def close(self) -> None:
        """Kill the process (it may be stuck in C, so no polite request) and release its pipes."""
        if self._proc.poll() is None:
            self._proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._proc.wait(timeout=10)
        for pipe in (self._proc.stdin, self._proc.stdout):
            with contextlib.suppress(OSError):
                pipe.close()


class _WorkerPool:
    """Checker processes shared by all threads: at most `size` exist; a caller beyond that waits for one."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._idle: list[_CheckWorker] = []
        self._live = 0
        self._cond = threading.Condition()
        self._missing: str | None = None  # math-verify is not importable: no use starting more children

    def acquire(self) -> _CheckWorker:
        with self._cond:
            while True:
                if self._missing:
                    raise _WorkerError(self._missing)
                while self._idle:
                    worker = self._idle.pop()
                    if worker.alive:
                        return worker
                    worker.close()
                    self._live -= 1
                if self._live < self._size:
                    self._live += 1
                    break
                self._cond.wait()
        try:  # start outside the lock: other threads keep using idle workers meanwhile
            return _CheckWorker()
        except BaseException as e:
            with self._cond:
                self._live -= 1
                if isinstance(e, _WorkerError) and e.kind in ("ImportError", "ModuleNotFoundError"):
                    self._missing = e.kind
                self._cond.notify_all()
            raise

    def release(self, worker: _CheckWorker) -> None:
        with self._cond:
            if worker.alive:
                self._idle.append(worker)
            else:
                self._live -= 1
            self._cond.notify()

    def close(self) -> None:
        with self._cond:
            idle, self._idle = self._idle, []
            self._live -= len(idle)
            self._cond.notify_all()
        for worker in idle:
            worker.close()


_POOL: _WorkerPool | None = None
_POOL_PID: int | None = None
_POOL_LOCK = threading.Lock()


def _worker_pool() -> _WorkerPool:
    """This process's pool; a forked child gets its own, since the parent's pipes are not its to use."""
    global _POOL, _POOL_PID
    with _POOL_LOCK:
        if _POOL is None or os.getpid() != _POOL_PID:
            _POOL, _POOL_PID = _WorkerPool(_MAX_WORKERS), os.getpid()
            atexit.register(_POOL.close)
        return _POOL


# --------------------------------------------------------------- inside the checker process


def _serve() -> None:
    """Checker process main loop: one JSON request per stdin line, one JSON reply per stdout line."""
    import signal

    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a library print must not corrupt the reply channel
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it kills us
    _exit_with_parent()
    _limit_memory()
    try:
        check = _math_verify_checker()
    except Exception as e:  # math-verify missing or broken: say so once, then stop
        _send(out, {"error": type(e).__name__})
        return
    _send(out, {"ready": True})
    for line in sys.stdin.buffer:
        try:
            req = json.loads(line)
            correct, detail = check(str(req["gold"]), str(req["answer"]))
        except Exception as e:
            correct, detail = False, f"math-verify error: {type(e).__name__}"
        _send(out, {"correct": correct, "detail": detail})


def _send(out, msg: dict) -> None:
    out.write(json.dumps(msg).encode("ascii") + b"\n")
    out.flush()


def _exit_with_parent() -> None:
    """Stop when the parent dies, even mid-check (stdin EOF is only seen between checks)."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()


def _limit_memory() -> None:
    """Cap the address space, so a huge intermediate fails with MemoryError instead of swapping the host."""
    try:
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        cap = _WORKER_MEMORY_BYTES if hard == resource.RLIM_INFINITY else min(hard, _WORKER_MEMORY_BYTES)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):  # not POSIX, or not allowed: run uncapped
        pass


def _for_math_verify(s: str) -> str:
    """Wrap an answer so math-verify reads all of it as one LaTeX answer (multi-line, stray $ and all)."""
    s = s.strip()
    if _WORD_RE.fullmatch(s):
        s = f"\\text{{{s.rstrip('.')}}}"
    return f"\\boxed{{{s}}}"


def _math_verify_checker() -> Callable[[str, str], tuple[bool, str]]:
    """math-verify's comparison with its signal timeouts off (the parent's deadline replaces them)."""
    import logging

    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    for name in ("math_verify", "latex2sympy2_extended"):  # it warns that its timeouts are off
        logging.getLogger(name).setLevel(logging.CRITICAL)
    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]

    def read(s: str) -> list:
        return parse(_for_math_verify(s), extraction_config=config, parsing_timeout=None, raise_on_error=True)

    def check(gold: str, answer: str) -> tuple[bool, str]:
        # Pair by pair, so that one comparison raising does not hide another that succeeds.
        error = None
        for g in read(gold):
            for a in read(answer):
                try:
                    if verify(g, a, timeout_seconds=None, raise_on_error=True):
                        return True, "math-verify"
                except Exception as e:
                    error = error or e
        return False, "math-verify" if error is None else f"math-verify error: {type(error).__name__}"

    check("1", "\\frac{2}{2}")  # load the LaTeX grammar now, not inside the first check's deadline
    return check
