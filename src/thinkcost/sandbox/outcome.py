"""What a sandboxed run ended as: the result type, and the rules that turn an exit into a status.

Statuses users see: ``passed`` | ``failed`` | ``timeout`` | ``crash`` | ``memory`` | ``error``.
For a plain program (:func:`thinkcost.sandbox.run_python`): ``passed`` exit code 0; ``failed`` an
AssertionError traceback, or a non-zero exit without a traceback (``sys.exit(1)``, unittest's
FAILED); ``memory`` MemoryError, or a SIGKILL/SIGSEGV/SIGBUS after the resident size reached half
the limit; ``timeout`` the wall clock or RLIMIT_CPU ran out; ``crash`` any other exception
(SyntaxError included) or signal; ``error`` the sandbox itself could not be set up. Graded runs
(:mod:`thinkcost.sandbox.harness`) use the same words but never trust the exit code alone.
"""

from __future__ import annotations

import os
import re
import signal
from dataclasses import dataclass
from typing import IO

TAIL_CHARS = 2000
SETUP_ERROR = "THINKCOST-SANDBOX-SETUP-ERROR"


@dataclass(frozen=True)
class SandboxResult:
    """The outcome of one sandboxed run; ``isolation`` names the layers that were applied.

    ``detail`` is one line for people: why the status is what it is (the exception, the exit code,
    or for graded runs e.g. "exited before the tests finished (exit code 0, after os._exit(0))").
    """

    status: str  # passed | failed | timeout | crash | memory | error
    returncode: int | None
    seconds: float
    stdout_tail: str
    stderr_tail: str
    isolation: str
    detail: str = ""


def tail(f: IO[bytes]) -> str:
    """The last TAIL_CHARS characters of an output file (read from its end; output may be large)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * TAIL_CHARS))
    return f.read().decode("utf-8", "replace")[-TAIL_CHARS:]


_EXC_LINE = re.compile(r"([A-Za-z_][\w.]*)(?::|$)")
_EXC_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Iteration", "Warning")


def _exception_index(lines: list[str]) -> int | None:
    """Index of the final uncaught exception's line (see :func:`exception_name`)."""
    headers = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if headers:
        for i in range(headers[-1] + 1, len(lines)):
            if _EXC_LINE.match(lines[i]):
                return i
        return None
    for i in range(len(lines) - 1, -1, -1):
        m = _EXC_LINE.match(lines[i])
        if m and m.group(1).endswith(_EXC_SUFFIXES):
            return i
    return None


def exception_name(stderr: str) -> str | None:
    """The type of the final uncaught exception, or None when stderr ends without a traceback.

    The exception line is the first unindented line after the last traceback header (frames are
    indented; a multi-line message continues below it). If the header scrolled out of the tail,
    the last unindented line that names an exception-like type is taken instead.
    """
    lines = stderr.splitlines()
    i = _exception_index(lines)
    if i is None:
        return None
    m = _EXC_LINE.match(lines[i])
    return m.group(1).rsplit(".", 1)[-1] if m else None


def exception_line(stderr: str) -> str | None:
    """The final exception's line as printed ("KeyError: 'k'"), for a one-line detail."""
    lines = stderr.splitlines()
    i = _exception_index(lines)
    return lines[i].strip()[:300] if i is not None else None


def signal_name(sig: int) -> str:
    """SIGKILL for 9; the number itself for signals Python does not name."""
    try:
        return signal.Signals(sig).name
    except ValueError:
        return f"signal {sig}"


def heavy(maxrss_kb: int, memory_mb: int, inherited_kb: int) -> bool:
    """Whether the child itself grew to half the memory limit (evidence a signal death was memory).

    `inherited_kb`: the parent's peak resident size when it forked the child. Linux keeps a
    process's peak RSS across exec, and a forked child starts out sharing all of its parent's
    pages, so a child of a big parent (a test run holding models) "peaks" at the parent's size
    before it runs a line. Only a peak above that is evidence the child itself grew.
    """
    return maxrss_kb > inherited_kb and maxrss_kb * 1024 >= memory_mb * 1024 * 1024 // 2


def classify(
    returncode: int | None,
    timed_out: bool,
    stderr: str,
    maxrss_kb: int,
    memory_mb: int,
    inherited_kb: int = 0,
) -> str:
    """Map how a plain program ended to a status (rules in the module docstring)."""
    if timed_out:
        return "timeout"
    if returncode is None or SETUP_ERROR in stderr:
        return "error"
    if returncode == 0:
        return "passed"
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "timeout"
        if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS) and heavy(
            maxrss_kb, memory_mb, inherited_kb
        ):
            return "memory"
        return "crash"
    name = exception_name(stderr)
    if name == "MemoryError":
        return "memory"
    if name is None or name == "AssertionError":
        return "failed"
    return "crash"


def describe(status: str, returncode: int | None, stderr: str, timeout_s: float) -> str:
    """A one-line detail for a plain program's status."""
    if status == "timeout":
        return f"timed out after {timeout_s:g} s"
    if status == "error":
        return (exception_line(stderr) or stderr.strip()[-300:] or "the sandbox could not be set up").replace(
            SETUP_ERROR + ": ", ""
        )
    if returncode is not None and returncode < 0:
        return f"killed by {signal_name(-returncode)}"
    line = exception_line(stderr) if returncode else None
    return line or f"exit code {returncode}"
