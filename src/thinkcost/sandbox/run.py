"""Run a plain Python program as ``__main__`` in a fresh sandbox, judged by how it exits.

This is the general-purpose entry point (and the old grading path, kept for comparison in
``benchmarks/verify_sandbox.py``): its ``passed`` only means "exit code 0", which a program can
always arrange. To grade code against tests use :func:`thinkcost.sandbox.check_program`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from thinkcost.sandbox import kernel, launch, probe
from thinkcost.sandbox.outcome import SETUP_ERROR, TAIL_CHARS, SandboxResult, classify, describe

PROGRAM_NAME = "program.py"


def run_python(
    program: str, *, timeout_s: float = 10.0, memory_mb: int = 1024, max_procs: int | None = None
) -> SandboxResult:
    """Run program as __main__ in a fresh sandbox; never raises, never outlives timeout_s by much.

    max_procs caps live processes through a pids cgroup where one can be created (root, cgroup v1);
    elsewhere it is not enforced (the ``isolation`` label then lacks ``pids-cgroup``).
    """
    start = time.monotonic()
    sandbox = None
    try:
        sandbox = launch.new_sandbox()
        path = os.path.join(sandbox, PROGRAM_NAME)
        with open(path, "w", encoding="utf-8") as f:
            f.write(program)
        run = launch.execute(path, sandbox, probe.layers(), timeout_s, memory_mb, max_procs)
        status = classify(
            run.returncode, run.timed_out, run.stderr, run.maxrss_kb, memory_mb, run.inherited_kb
        )
        detail = describe(status, run.returncode, run.stderr, timeout_s)
        return SandboxResult(
            status, run.returncode, run.seconds, run.stdout, run.stderr, run.isolation, detail
        )
    except Exception as exc:  # the caller must get a result, whatever went wrong in the setup
        return setup_error(exc, start)
    finally:
        if sandbox is not None:
            launch.remove_tree(sandbox)


def setup_error(exc: BaseException, start: float) -> SandboxResult:
    """The ``error`` result for a sandbox that could not even be set up."""
    label = kernel.isolation_label(probe.known_layers(), None)
    detail = f"{type(exc).__name__}: {exc}"
    stderr = f"{SETUP_ERROR}: {detail}"[-TAIL_CHARS:]
    return SandboxResult("error", None, time.monotonic() - start, "", stderr, label, detail)


def run_many(programs: Sequence[str], workers: int = 2, **kw: Any) -> list[SandboxResult]:
    """Run programs on a pool of threads, each launching sandboxed children; results in input order."""
    probe.layers()  # probe once, before the threads race for it
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: run_python(p, **kw), programs))
