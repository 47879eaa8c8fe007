"""math-verify in child processes under a deadline: a pool of checker workers shared by all threads.

verify.math hands every pair that is not two exact numbers to `symbolic_equal`. A check that overruns
its deadline kills its worker and is a verdict ("timeout"), never a hang (why a process and not
math-verify's own timeout: see _CheckWorker). The parent's side comes first (pool, workers,
deadlines), then the child's: `_serve`, its main loop, and the math-verify comparison it runs.
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
from pathlib import Path

_WORKER_START_TIMEOUT_S = 120.0  # importing sympy on a loaded machine; not part of any check's deadline
_WORKER_MEMORY_BYTES = 4 << 30  # address-space cap, so a runaway check cannot swap the host
_MAX_WORKERS = max(1, min(4, os.cpu_count() or 1))
# A plain word answer ("Evelyn", "yes") would be read by sympy as a product of symbols, so anagrams
# would compare equal; as \text{...} it stays one symbol.
_WORD_RE = re.compile(r"[A-Za-z]{3,}(?:[ '\-][A-Za-z]+)*\.?")


def close_math_workers() -> None:
    """Stop the idle checker processes now (they also stop when this process exits)."""
    with _POOL_LOCK:
        pool = _POOL if os.getpid() == _POOL_PID else None
    if pool is not None:
        pool.close()


def symbolic_equal(answer: str, gold: str, timeout_s: float) -> tuple[bool, str]:
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
                [sys.executable, "-c", "from thinkcost.verify.checker_pool import _serve; _serve()"],
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
