"""Kernel isolation for one child: rlimits, namespaces, read-only mounts and dropped capabilities.

Everything the pre-exec hook needs is computed in the parent (:func:`plan`) so that the hook
itself (:func:`child_setup`) imports nothing and takes no Python-level lock: it only calls
setrlimit and libc functions loaded at import time on bytes prepared beforehand. That is what
makes ``preexec_fn`` safe to use from worker threads (a lock held by another thread at fork time
would stay held in the child). The layers themselves are described in :mod:`thinkcost.sandbox`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import re
import resource
from dataclasses import dataclass

FILE_LIMIT_MB = 16  # RLIMIT_FSIZE: largest file (stdout/stderr/result files included) the child may write

_CLONE_NEWNS, _CLONE_NEWPID, _CLONE_NEWNET = 0x00020000, 0x20000000, 0x40000000
_MS_RDONLY, _MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 1, 2, 4, 8
_MS_REMOUNT, _MS_NOATIME, _MS_NODIRATIME, _MS_BIND = 32, 1024, 2048, 4096
_MS_REC, _MS_PRIVATE, _MS_RELATIME, _MS_STRICTATIME = 1 << 14, 1 << 18, 1 << 21, 1 << 24
_KEPT_MOUNT_FLAGS = {
    "noexec": _MS_NOEXEC,
    "noatime": _MS_NOATIME,
    "nodiratime": _MS_NODIRATIME,
    "relatime": _MS_RELATIME,
    "strictatime": _MS_STRICTATIME,
}
_SAFE_DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom")
_PR_CAPBSET_DROP, _PR_SET_NO_NEW_PRIVS = 24, 38

_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]


@dataclass(frozen=True)
class Layers:
    """Which kernel isolation features this machine grants (probed once, see :func:`thinkcost.sandbox.layers`)."""

    netns: bool = False
    mntns: bool = False
    pidns: bool = False
    nocaps: bool = False
    pids_cgroup: bool = False


@dataclass(frozen=True)
class ChildPlan:
    """Everything the pre-exec hook needs, computed in the parent (the hook must not allocate much)."""

    rlimits: tuple[tuple[int, int, int], ...]
    unshare_flags: int = 0
    sandbox: bytes = b""
    mountpoints: tuple[tuple[bytes, int], ...] = ()
    cap_last: int = -1
    cgroup_procs: bytes | None = None
    hide_proc: bool = False  # graded runs: an empty /proc, so no /proc/self/mem, fd or environ


# --------------------------------------------------------------------------- pre-exec hook (child)


def _libc_call(result: int, what: str) -> None:
    """Raise OSError for a failed libc call (the message reaches the parent as a setup error)."""
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _readonly_mounts(plan: ChildPlan) -> None:
    """In the fresh mount namespace: keep the sandbox (and harmless devices) writable, nothing else."""
    _libc_call(_LIBC.mount(None, b"/", None, _MS_REC | _MS_PRIVATE, None), "make / private")
    _libc_call(_LIBC.mount(plan.sandbox, plan.sandbox, None, _MS_BIND, None), "bind sandbox")
    flags = _MS_REMOUNT | _MS_BIND | _MS_NOSUID | _MS_NODEV
    _libc_call(_LIBC.mount(None, plan.sandbox, None, flags, None), "remount sandbox")
    for dev in _SAFE_DEVICES:
        path = dev.encode()
        if _LIBC.mount(path, path, None, _MS_BIND, None) == 0:
            _LIBC.mount(None, path, None, _MS_REMOUNT | _MS_BIND | _MS_RDONLY | _MS_NOSUID, None)
    for path, kept in plan.mountpoints:
        rc = _LIBC.mount(None, path, None, flags | _MS_RDONLY | kept, None)
        if rc != 0 and path == b"/":
            _libc_call(rc, "remount / read-only")
    _LIBC.mount(b"tmpfs", b"/dev/shm", b"tmpfs", _MS_NOSUID | _MS_NODEV | _MS_NOEXEC, b"size=64m")
    if plan.hide_proc:
        hidden = _MS_RDONLY | _MS_NOSUID | _MS_NODEV | _MS_NOEXEC
        _libc_call(_LIBC.mount(b"tmpfs", b"/proc", b"tmpfs", hidden, b"size=4k,mode=555"), "hide /proc")
    os.chdir(plan.sandbox)  # the cwd set before this hook points below the bind mount


def child_setup(plan: ChildPlan) -> None:
    """Pre-exec hook: limits, namespaces, read-only mounts, dropped capabilities (in that order)."""
    for res, soft, hard in plan.rlimits:
        resource.setrlimit(res, (soft, hard))
    if plan.cgroup_procs is not None:
        fd = os.open(plan.cgroup_procs, os.O_WRONLY)
        try:
            os.write(fd, b"0")
        finally:
            os.close(fd)
    if plan.unshare_flags:
        _libc_call(_LIBC.unshare(plan.unshare_flags), "unshare")
    if plan.unshare_flags & _CLONE_NEWNS:
        _readonly_mounts(plan)
    if plan.cap_last >= 0:
        for cap in range(plan.cap_last + 1):
            _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
        _libc_call(_LIBC.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "no_new_privs")


# --------------------------------------------------------------------------- parent side


def _unescape_mount_path(path: str) -> str:
    """/proc/self/mountinfo writes space, tab, newline and backslash as octal escapes."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), path)


def _mountpoints(sandbox: str) -> tuple[tuple[bytes, int], ...]:
    """Every mount point (deduplicated) with the flags a bind remount must keep, root first."""
    seen: dict[str, int] = {}
    with open("/proc/self/mountinfo") as f:
        for line in f:
            parts = line.split()
            path, options = _unescape_mount_path(parts[4]), parts[5].split(",")
            if path == sandbox or path.startswith(sandbox + os.sep):
                continue
            seen[path] = sum(_KEPT_MOUNT_FLAGS.get(o, 0) for o in options)
    return tuple((p.encode(), seen[p]) for p in sorted(seen, key=len))


def _cap_last() -> int:
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def _rlimits(timeout_s: float, memory_mb: int) -> tuple[tuple[int, int, int], ...]:
    """CPU seconds slightly above the wall clock (the parent normally acts first)."""
    cpu = math.ceil(timeout_s) + 1
    mem = memory_mb * 1024 * 1024
    fsize = FILE_LIMIT_MB * 1024 * 1024
    return (
        (resource.RLIMIT_AS, mem, mem),
        (resource.RLIMIT_CPU, cpu, cpu + 1),
        (resource.RLIMIT_FSIZE, fsize, fsize),
        (resource.RLIMIT_CORE, 0, 0),
    )


def plan(
    layers: Layers,
    sandbox: str,
    timeout_s: float,
    memory_mb: int,
    cgroup: str | None,
    hide_proc: bool = False,
) -> ChildPlan:
    """The pre-exec plan for one run under the given layers (`hide_proc` needs the mount namespace)."""
    flags = (
        (_CLONE_NEWNET if layers.netns else 0)
        | (_CLONE_NEWNS if layers.mntns else 0)
        | (_CLONE_NEWPID if layers.pidns else 0)
    )
    return ChildPlan(
        rlimits=_rlimits(timeout_s, memory_mb),
        unshare_flags=flags,
        sandbox=sandbox.encode(),
        mountpoints=_mountpoints(sandbox) if layers.mntns else (),
        cap_last=_cap_last() if layers.nocaps else -1,
        cgroup_procs=os.path.join(cgroup, "cgroup.procs").encode() if cgroup else None,
        hide_proc=hide_proc and layers.mntns,
    )


def isolation_label(layers: Layers, cgroup: str | None, grader: bool = False) -> str:
    """The ``SandboxResult.isolation`` string: the layers that were applied, strongest first."""
    parts = ["netns" if layers.netns else "socket-block"]
    parts += [name for name, on in (("mntns-ro", layers.mntns), ("pidns", layers.pidns)) if on]
    parts += ["proc-hidden"] if grader and layers.mntns else []
    parts += ["nocaps"] if layers.nocaps else []
    parts += ["pids-cgroup"] if cgroup else []
    return "+".join([*parts, "rlimits", "pyguard", *(["audit-hook"] if grader else [])])
