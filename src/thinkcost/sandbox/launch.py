"""Launch one sandboxed child, wait for it with a wall clock, kill everything it left, collect output.

The child is ``python -I -S -B child/bootstrap.py SANDBOX PROGRAM MODE MARKER [ARGS...]`` (see
``child/bootstrap.py``), started in a fresh session with the pre-exec plan of
:mod:`thinkcost.sandbox.kernel`, a minimal environment and only the file descriptors named in
``pass_fds``. Whatever happens here, even a KeyboardInterrupt in the caller, nothing of the run
survives :func:`execute`.
"""

from __future__ import annotations

import contextlib
import functools
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from thinkcost.sandbox import cgroup, kernel, processes
from thinkcost.sandbox.kernel import Layers
from thinkcost.sandbox.outcome import SETUP_ERROR, tail

BOOTSTRAP = str(Path(__file__).with_name("child") / "bootstrap.py")


@dataclass(frozen=True)
class Run:
    """How a child ended, before anyone decided what that means (see outcome / harness)."""

    returncode: int | None
    timed_out: bool
    stdout: str
    stderr: str
    maxrss_kb: int
    inherited_kb: int
    seconds: float
    isolation: str


def env(sandbox: str, token: str) -> dict[str, str]:
    """A minimal environment: nothing of the parent's (keys, proxies, paths) reaches the child."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": sandbox,
        "TMPDIR": sandbox,
        "LANG": "C.UTF-8",
        processes.TOKEN_VAR: token,
    }


def execute(
    program: str,
    sandbox: str,
    lay: Layers,
    timeout_s: float,
    memory_mb: int,
    max_procs: int | None = None,
    *,
    args: Sequence[str] = (),
    pass_fds: Sequence[int] = (),
    grader: bool = False,
    after_spawn: Callable[[], None] | None = None,
) -> Run:
    """Run the program file at `program` in `sandbox` under `lay`; never leaves a process behind.

    `grader`: the program is the grading harness, loaded from its cached bytecode and given a
    private copy of builtins, and /proc is hidden where the mount namespace allows. `after_spawn` runs once the child exists (e.g. to close the parent's
    copy of a descriptor only the child should read).
    """
    start = time.monotonic()
    token = secrets.token_hex(12)
    group = cgroup.make(token, max_procs) if max_procs is not None and lay.pids_cgroup else None
    label = kernel.isolation_label(lay, group, grader)
    flags = (("pidns", lay.pidns), ("sockets", not lay.netns), ("grader", grader))
    mode = ",".join(m for m, on in flags if on) or "plain"
    cmd = [sys.executable, "-I", "-S", "-B", BOOTSTRAP, sandbox, program, mode, SETUP_ERROR, *args]
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            inherited_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=sandbox,
                env=env(sandbox, token),
                start_new_session=True,
                close_fds=True,
                pass_fds=tuple(pass_fds),
                preexec_fn=functools.partial(
                    kernel.child_setup,
                    kernel.plan(lay, sandbox, timeout_s, memory_mb, group, hide_proc=grader),
                ),
            )
            in_time = False
            try:
                if after_spawn is not None:
                    after_spawn()
                in_time = processes.wait_exit(proc.pid, timeout_s)
            finally:  # whatever happens here (even KeyboardInterrupt), nothing of the run survives
                returncode, maxrss = processes.finish(proc, token, sweep_escaped=not lay.pidns)
            stdout, stderr = tail(out), tail(err)
    finally:
        cgroup.remove(group)
    return Run(returncode, not in_time, stdout, stderr, maxrss, inherited_kb, time.monotonic() - start, label)


def remove_tree(path: str) -> None:
    """Remove the sandbox dir even if the program made parts of it read-only or unlistable."""
    try:
        shutil.rmtree(path)
    except OSError:
        for root, dirs, _files in os.walk(path):
            for d in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, d), 0o700)
        shutil.rmtree(path, ignore_errors=True)


def new_sandbox(prefix: str = "thinkcost-sbx-") -> str:
    """A fresh private directory for one run (its realpath: the bind mount needs the real path)."""
    return os.path.realpath(tempfile.mkdtemp(prefix=prefix))
