"""Grade a candidate against hidden tests so that ``passed`` means the tests really ran to the end.

Appending the tests to the candidate and calling exit code 0 a pass (the old grading, still
available as ``run_python(candidate + tests)``) lets ``sys.exit(0)``, ``os._exit(0)``, an
``atexit`` handler, ``unittest.main()`` or a printed "OK" pass without a test having run.

How a run is graded
-------------------
1. The parent compiles and instruments the tests (:mod:`.instrument`, cached per test source)
   and puts a per-run random nonce and that code in an *inbox* file descriptor. The candidate
   is ``solution.py`` in the sandbox directory; the tests exist nowhere the candidate can read.
2. In the child, ``child/grader.py`` empties and closes the inbox, installs an audit hook and
   runs, in a worker thread, the candidate as module ``solution`` (never ``__main__``), then the
   tests with their own copy of builtins and frozen views of the modules they import, then
   ``check(entry_point)``.
3. Only when the last test statement has returned does the grader's main thread write
   ``<nonce> passed ...`` to a *result* descriptor (a file only this run has, never stdout) and
   leave through ``os._exit(0)``; otherwise it writes an unauthenticated ``result <status> <detail>``.
4. The parent says ``passed`` only if that line carries this run's nonce, nothing but the
   grader wrote to the result descriptor, and the process exited with code 0. Exit code,
   signal, stderr and the grader's failure report only choose which other status and detail
   to show (:func:`judge`).

Statuses stay passed | failed | timeout | crash | memory | error; ``SandboxResult.detail`` says why:
``failed`` "AssertionError at tests line 2: assert candidate(2, 3) == 5", "exited before the
tests finished: SystemExit(0) while the candidate was loading", "exited before the tests finished
(exit code 0, after os._exit(0))", "refused: the candidate replaced builtins: len", "refused: a
value of type Any reached the tests, and Any.__eq__ is not the standard library's ...";
``crash`` other exceptions ("ValueError: ... at tests line 2: ..."), "killed before the tests
finished (killed by SIGKILL, after os.kill(its own pid, SIGKILL))"; ``memory``; ``timeout``;
``error`` (the sandbox could not start, or the tests themselves do not compile).

What each trick meets (the bracketed names are cases in tests/test_code_grading.py)
------------------------------------------------------------------------------------
- Exiting any way before the end (sys.exit, SystemExit, os._exit, os.abort, atexit, exit in a
  ``__del__`` or a daemon thread, fork and exit in the parent, kill/alarm on itself): no nonce,
  so not passed; ``child/exits.py`` notes the call for the detail [sys-exit-*, raise-systemexit,
  os-exit, atexit-*, del-*, daemon-thread-*, fork-and-exit-in-parent, sigkill-self, sigterm-self,
  abort, alarm-*, keyboard-interrupt, interrupt-main].
- Fake success (printing "passed" or the HumanEval line, writing to every fd 3..20, forged result
  or note lines): counts for nothing; any line but the grader's on the result descriptor fails
  the run [prints-success-lines, writes-passed-to-every-fd, correct-but-writes-to-every-fd,
  plant-a-file-at-the-result-descriptor, test_judge_trusts_only_the_nonce_and_a_clean_exit].
- Its own test runner: the candidate is never ``__main__``; a bare ``unittest.main()`` exits
  before the tests and fails [unittest-*].
- Changing what the tests see (builtins such as len, isinstance, print, AssertionError,
  ``__import__``; attributes or classes of modules the tests import, ``sys.modules`` entries): the
  tests use their own builtins and module views, and the change is reported [builtins-*,
  replace-assertion-error, override-import, patch-assert-helper, sys-modules-fake-math,
  patch-math-isclose]. Redefining ``check``, ``candidate`` or the scan name changes nothing: the
  tests' own definitions come later [redefine-check, define-candidate-and-scan-globally].
- Always-equal values (``__eq__`` returning True, an int subclass, ``__eq__ = bool``,
  ``unittest.mock.ANY``, a lying ``__sub__`` for ``abs(x - y) < eps``, a ``__class__`` property for
  isinstance, a patched ``Counter.__eq__``): every call result, comparison operand and assert
  condition in the tests is scanned (rules in ``child/testside.py``) [always-equal-object,
  int-subclass-lying-eq, eq-is-bool, list-of-always-equal, mock-any, lying-sub-for-abs-tolerance,
  class-property-fools-isinstance, patched-stdlib-counter-eq].
- Skipping test lines with ``sys.settrace``/``setprofile``: refused, and the attempt fails the run
  even if the candidate catches the refusal [settrace-*].
- Finding the nonce or the tests in memory. Frames: ``sys._getframe``, ``tb_frame``,
  ``gi_frame``/``cr_frame``/``ag_frame``, ``sys._current_frames`` are refused; a signal handler
  (CPython hands it the interrupted frame) cannot be installed, since candidate code never runs in
  the main thread, the only one allowed to, and the thread holding the nonce runs nothing of the
  candidate's [getframe, traceback-frame, generator-frame, alarm-handler-that-exits]. The heap:
  ``gc.get_objects``/``get_referrers``/``get_referents`` refused [gc-walk]. Raw memory: ctypes
  (also a fresh ``_ctypes`` through ``_imp``), ``/proc/self/mem`` and ``/proc/<pid>/*`` refused,
  and with the mount namespace /proc is an empty tmpfs [ctypes, fresh-ctypes-module,
  proc-self-mem, proc-self-fd-listing, test_proc_is_hidden_from_graded_runs]. Descriptors and
  files hold nothing [test_the_candidate_cannot_read_the_tests_or_the_nonce]. Crafted bytecode
  (``code.replace``, ``types.FunctionType``, ``__code__`` assignment, ``marshal.loads`` of anything
  but the standard-library .pyc being imported, ``compile`` under a standard-library file name) and
  re-imports of loaded modules are refused [code-replace, crafted-marshal, spoofed-stdlib-file-name,
  reimport-posix-to-drop-wrappers]. Other programs (exec, subprocess, os.system, posix_spawn) are
  refused [exec-nested-interpreter-printing-success, subprocess-nested-interpreter].
- Without kernel layers, the hook alone keeps /proc, writes outside the sandbox (``_io.FileIO``
  bypasses the bootstrap's guard) and directory descriptors for ``dir_fd`` tricks out
  [test_without_kernel_layers_the_grader_still_refuses].

What remains possible (no test claims otherwise)
------------------------------------------------
- CPython's audit hooks are not a sandbox (its documentation says so). Code that corrupts
  interpreter memory without ctypes, through a memory-safety bug in CPython or a C module
  reachable from pure Python, could read the nonce or rewrite the grader. The documented ways
  to build such code are refused; bugs cannot be ruled out.
- ``_posixsubprocess.fork_exec`` starts a program without an audit event, outside the hook.
  With the kernel layers that program has no /proc and no capabilities and cannot read the
  grader's memory; in the portable fallback a root child keeps CAP_SYS_PTRACE and could (the
  grader is made non-dumpable there, which stops only other users' processes).
- ``_imp.create_builtin`` makes a fresh builtin module without an audit event, e.g. a ``gc`` whose
  ``set_debug(DEBUG_SAVEALL)`` would collect dead frames of finished calls into ``gc.garbage``
  (live frames, the runner's and the main thread's, never become garbage). The exit notes can
  be bypassed the same way; they are details only.
- A test that hands the candidate a function it defined (a lambda, a helper) hands over the
  tests' globals, through which the candidate could change what the tests see; HumanEval and
  MBPP tests do not. Names the tests use but do not define (HumanEval's prompt helpers such as
  ``poly``) come from the candidate's namespace, as in the original harness.
- The scan searches list, tuple, set, frozenset, dict and instance ``__dict__``/``__slots__``, at
  most 100,000 objects per value: an always-equal object hidden in a closure, another container
  type, or past that limit is not found. Standard-library dunders are trusted by file and name,
  so one transplanted from another standard-library class would be (``unittest.mock`` excluded).
- Honest code that is refused or crashes: printing tracebacks with the ``traceback`` module or
  ``logging.exception``, ``inspect.stack()``, installing signal handlers, ctypes, gc
  introspection, ``marshal.loads``, subprocesses, or returning objects whose comparison is
  generated outside the standard library (dataclass instances). Tests that change classes of
  the modules they import are reported as the candidate's change.
"""

from __future__ import annotations

import atexit
import marshal
import os
import re
import secrets
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

from thinkcost.sandbox import launch, probe
from thinkcost.sandbox.instrument import TESTS_LABEL, compile_tests
from thinkcost.sandbox.outcome import (
    SETUP_ERROR,
    SandboxResult,
    exception_line,
    exception_name,
    heavy,
    signal_name,
)
from thinkcost.sandbox.run import setup_error

CHILD_DIR = Path(__file__).with_name("child")
GRADER_FILES = ("grader", "testside", "exits")
SOLUTION_NAME = "solution.py"
_CHANNEL_LIMIT = 1 << 16


_CODE_DIR: str | None = None
_CODE_LOCK = threading.Lock()


def grader_code() -> str:
    """Path of the grader's compiled code: the child files, compiled once per process into a 0700 dir.

    Compiling ~600 lines per run would cost the child milliseconds, and cached .pyc files cannot be
    relied on (PYTHONDONTWRITEBYTECODE, read-only installs). Code objects keep the real source paths.
    """
    global _CODE_DIR
    with _CODE_LOCK:
        if _CODE_DIR is None or not os.path.isdir(_CODE_DIR):
            where = tempfile.mkdtemp(prefix="thinkcost-grader-")
            for name in GRADER_FILES:
                source = CHILD_DIR / f"{name}.py"
                code = compile(source.read_bytes(), str(source), "exec", dont_inherit=True)
                (Path(where) / f"{name}.code").write_bytes(marshal.dumps(code))
            atexit.register(shutil.rmtree, where, True)
            _CODE_DIR = where
        return os.path.join(_CODE_DIR, "grader.code")


def check_program(
    candidate: str,
    tests: str,
    *,
    entry_point: str | None = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> SandboxResult:
    """Run candidate (as module ``solution``), then tests, then ``check(entry_point)``; never raises.

    ``passed`` only when the grader saw the last test statement return, reported it with this run's
    nonce, and the process then exited cleanly (module docstring).
    """
    if entry_point is not None and not entry_point.isidentifier():
        return SandboxResult("error", None, 0.0, "", "", "none", f"bad entry point {entry_point!r}")
    start = time.monotonic()
    try:
        compiled = compile_tests(tests, entry_point)
    except (SyntaxError, ValueError) as exc:
        return SandboxResult("error", None, 0.0, "", "", "none", f"the tests do not compile: {exc}")
    sandbox = None
    try:
        program = grader_code()
        lay = probe.layers()
        sandbox = launch.new_sandbox("thinkcost-grade-")
        solution = os.path.join(sandbox, SOLUTION_NAME)
        with open(solution, "w", encoding="utf-8") as f:
            f.write(candidate)
        nonce = secrets.token_hex(16)
        with tempfile.TemporaryFile() as inbox, tempfile.TemporaryFile() as channel:
            inbox.write(nonce.encode() + b"\n" + compiled)
            inbox.flush()
            inbox.seek(0)
            fds = (inbox.fileno(), channel.fileno())
            args = [solution, *map(str, fds)]
            args += [] if lay.mntns else ["undumpable"]
            run = launch.execute(
                program,
                sandbox,
                lay,
                timeout_s,
                memory_mb,
                args=args,
                pass_fds=fds,
                grader=True,
                after_spawn=inbox.close,
            )
            channel.seek(0)
            received = channel.read(_CHANNEL_LIMIT + 1)
        status, detail = judge(run, received, nonce, tests, timeout_s, memory_mb)
        return SandboxResult(
            status, run.returncode, run.seconds, run.stdout, run.stderr, run.isolation, detail
        )
    except Exception as exc:  # the caller must get a result, whatever went wrong in the setup
        return setup_error(exc, start)
    finally:
        if sandbox is not None:
            launch.remove_tree(sandbox)


_REPORTED = ("failed", "crash", "memory", "error")


def _channel(received: bytes, nonce: str) -> tuple[str | None, tuple[str, str] | None, list[str], bool]:
    """(the detail of a pass proven by the nonce, the grader's unproven failure report, notes, foreign lines).

    Only the grader's "<nonce> passed ..." line proves anything. Failure reports carry no nonce
    (see child/grader.py), so a candidate can forge one, which only misdescribes its own failure.
    """
    proof = nonce.encode() + b" passed "
    passed, report, notes, foreign = None, None, [], len(received) > _CHANNEL_LIMIT
    for line in received[:_CHANNEL_LIMIT].split(b"\n"):
        text = line.decode("utf-8", "replace")
        if not line:
            continue
        if line.startswith(proof) and passed is None:
            passed = text[len(proof) :]
        elif line.startswith(b"note "):
            notes.append(text[5:200])
        elif line.startswith(b"result ") and report is None and text.split(" ")[1] in _REPORTED:
            status, _, detail = text[7:].partition(" ")
            report = (status, detail)
        else:
            foreign = True
    return passed, report, notes, foreign


def _test_line(stderr: str, tests: str) -> str:
    """' at tests line N: <source>' for the deepest tests frame in the traceback, if there is one.

    The traceback comes from stderr, which the candidate can also write: this only locates a
    failure the grader already reported with the nonce, it never decides a status.
    """
    found = re.findall(rf'File "{re.escape(TESTS_LABEL)}", line (\d+)', stderr)
    if not found:
        return ""
    number = int(found[-1])
    lines = tests.splitlines()
    text = lines[number - 1].strip() if 0 < number <= len(lines) else "check(<entry point>)"
    return f" at tests line {number}: {text[:160]}"


def _ended(returncode: int, notes: list[str]) -> str:
    """How the process ended, for a detail ('exit code 0, after os._exit(0)')."""
    how = f"exit code {returncode}" if returncode >= 0 else f"killed by {signal_name(-returncode)}"
    return how + (f", after {notes[0]}" if notes else "")


def judge(
    run: launch.Run, received: bytes, nonce: str, tests: str, timeout_s: float, memory_mb: int
) -> tuple[str, str]:
    """(status, detail) of a graded run, from the result channel and how the process ended."""
    passed, report, notes, foreign = _channel(received, nonce)
    if run.timed_out:
        after = " (the tests had passed, but the process did not exit)" if passed is not None else ""
        return "timeout", f"timed out after {timeout_s:g} s{after}"
    if run.returncode is None or (passed is None and report is None and SETUP_ERROR in run.stderr):
        return "error", (exception_line(run.stderr) or "the sandbox could not be set up").replace(
            SETUP_ERROR + ": ", ""
        )
    rc = run.returncode
    if foreign or (passed is not None and report is not None):
        return "failed", "refused: something other than the grader wrote to its result channel"
    if passed is not None:
        if rc == 0:
            return "passed", passed
        return "crash", f"the tests passed, but the process then ended abnormally ({_ended(rc, notes)})"
    if report is not None and rc == 1:  # the grader's own exit after reporting a failure
        status, detail = report
        where = _test_line(run.stderr, tests) if status in ("failed", "crash") else ""
        if where and detail.endswith(" (during the tests)"):
            detail = detail[: -len(" (during the tests)")] + where
        return status, detail
    # No report from the grader: the process ended before the tests did, whatever its exit code says.
    early = f"exited before the tests finished ({_ended(rc, notes)})"
    if rc < 0:
        sig = -rc
        if sig == signal.SIGXCPU:
            return "timeout", f"CPU time limit reached ({_ended(rc, notes)})"
        if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS) and heavy(
            run.maxrss_kb, memory_mb, run.inherited_kb
        ):
            return "memory", f"killed near the memory limit ({_ended(rc, notes)})"
        return "crash", f"killed before the tests finished ({_ended(rc, notes)})"
    name = exception_name(run.stderr) if rc else None
    if name == "MemoryError":
        return "memory", early
    if name not in (None, "AssertionError"):
        return "crash", f"{early}: {exception_line(run.stderr)}"
    return "failed", early
