"""Waiting for a sandboxed child, and making sure nothing it started outlives the run.

The child is left unreaped until everything else is dead, so neither its pid nor its process
group id can be reused while we still signal them. Processes that left the group (``setsid``)
are found by the run's random token in their initial environment, which survives fork, setsid
and chdir (the sweep is only needed where no PID namespace kills them for us).
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time

TOKEN_VAR = "THINKCOST_SANDBOX_TOKEN"


def _gone(pid: int) -> bool:
    """True when pid no longer runs (absent, or a zombie waiting to be reaped by someone else)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in (b"Z", b"X")


def token_holders(token: str) -> list[int]:
    """Pids whose initial environment carries this run's token (survives fork, setsid, chdir)."""
    needle = f"{TOKEN_VAR}={token}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def sweep(token: str, deadline_s: float = 2.0) -> None:
    """Kill every process of the run that escaped the process group, and wait until it is gone."""
    for _ in range(5):
        pids = [p for p in token_holders(token) if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + deadline_s
        while not all(_gone(p) for p in pids) and time.monotonic() < end:
            time.sleep(0.001)


def wait_exit(pid: int, timeout_s: float) -> bool:
    """Block until pid exits (left unreaped, so its pid cannot be reused); False on timeout."""
    fired = threading.Event()

    def kill_group() -> None:
        fired.set()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)

    timer = threading.Timer(timeout_s, kill_group)
    timer.daemon = True
    timer.start()
    try:
        while True:
            try:
                os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)
                break
            except InterruptedError:
                continue
            except ChildProcessError:
                break
    finally:
        timer.cancel()
    return not fired.is_set()


def finish(proc: subprocess.Popen, token: str, sweep_escaped: bool) -> tuple[int | None, int]:
    """Kill what is left of the run, reap the child; returns (returncode, max resident KiB)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the child is not reaped yet: its pgid cannot be reused
    if sweep_escaped:
        sweep(token)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        return proc.returncode, 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss
