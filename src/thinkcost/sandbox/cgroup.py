"""A pids cgroup per run: caps the number of live processes (fork bombs) where cgroup v1 allows it.

RLIMIT_NPROC is not used: it counts per uid, and root is exempt.
"""

from __future__ import annotations

import contextlib
import os
import time

PIDS_CGROUP = "/sys/fs/cgroup/pids"


def make(token: str, max_procs: int) -> str | None:
    """A fresh pids cgroup holding at most max_procs tasks, or None where cgroups are unavailable."""
    path = os.path.join(PIDS_CGROUP, f"thinkcost-{token}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(max_procs))
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return None
    return path


def remove(path: str | None) -> None:
    """rmdir fails with EBUSY while the last tasks finish exiting; retry briefly, then give up."""
    if path is None:
        return
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        try:
            os.rmdir(path)
            return
        except FileNotFoundError:
            return
        except OSError:
            time.sleep(0.002)
