"""Run model-written Python (HumanEval / MBPP style) in a sandboxed child process and score it.

Model code is untrusted: it may loop forever, allocate without bound, fork daemons, open
sockets, or delete files. Every run therefore happens in a separate ``python -I -S -B`` process,
in a fresh temporary directory that is its cwd, HOME and TMPDIR, with a minimal environment,
and every path through :func:`run_python` returns a :class:`SandboxResult` (the caller never
crashes or hangs on the candidate's behalf).

Layers, strongest first. Which ones applied is recorded in ``SandboxResult.isolation``; the
namespace layers are probed once per process and silently skipped where the kernel refuses.

``netns``   a new, empty network namespace (``unshare(CLONE_NEWNET)``): not even loopback is
            up, so no connection to anything, 127.0.0.1 included, can be made. Where it is
            unavailable, ``socket-block`` replaces ``socket.socket``, ``socket.create_connection``
            and ``_socket.socket`` with functions raising PermissionError (Python level only).
``mntns-ro`` a private mount namespace in which every mount is remounted read-only, nosuid and
            nodev, except a bind mount of the sandbox directory (plus /dev/null, zero, full,
            random, urandom, and a small private tmpfs on /dev/shm). The kernel refuses writes
            outside the sandbox directory, whatever route the code takes (ctypes included).
``pidns``   a new PID namespace whose init is a tiny reaper from our bootstrap; when it exits,
            the kernel kills everything left in the namespace, daemons that called setsid()
            included. Without it, the process group is killed and a sweep kills any process
            that still carries the run's random token in its initial environment.
``nocaps``  the capability bounding set is emptied and no_new_privs set before exec, so a root
            child has no capabilities: it cannot undo the mounts, create device nodes, or trace
            a more privileged process; with pidns it cannot even see outside pids to signal.
``pids-cgroup`` with ``max_procs``: a cgroup-v1 pids controller caps the number of processes
            (fork bombs). RLIMIT_NPROC is not used: it counts per uid, and root is exempt.
``rlimits`` RLIMIT_AS = memory_mb, RLIMIT_CPU (backstop to the parent's wall clock, which kills
            the whole process group), RLIMIT_FSIZE (file and output size), RLIMIT_CORE = 0.
``pyguard`` the bootstrap wraps ``open``/``io.open``/``os.open`` for write modes and
            ``os.remove/unlink/rename/replace/rmdir/mkdir/chmod/...`` (hence also
            ``os.makedirs`` and ``shutil.rmtree``) to refuse paths whose realpath is outside the
            sandbox directory, and ``os.kill``/``os.killpg`` to refuse processes outside the
            run's session (without pidns the child could otherwise signal its caller, which has
            the same uid). This is a convenience that turns most accidents into a clean
            PermissionError; it is NOT a security boundary (ctypes or a re-imported ``posix``
            trick bypass it). The boundaries are the separate process, the namespaces, the
            dropped capabilities and the rlimits.

Not done: running the child as an unprivileged uid. Where the interpreter lives under a 0700
home (as here: /root/.pyenv), uid 65534 cannot even exec it; ``mntns-ro`` + ``nocaps`` give
the OS-level write boundary instead. Consequences of the child keeping the parent's uid: it can
READ whatever the parent can (nothing here restricts reads; with no network, stdout is the only
way out), and it can connect to unix socket *files* owned by that uid (read-only mounts do not
cover sockets; the netns isolates only abstract ones).

The pre-exec hook is a ``preexec_fn``, which subprocess calls unsafe in threaded programs (a
lock held by another thread at fork time stays held in the child). Ours imports nothing and
takes no Python-level locks: it calls setrlimit and libc functions loaded at import time on
bytes computed beforehand, which is what lets :func:`run_many` launch from worker threads.
Set THINKCOST_SANDBOX_NAMESPACES=0 to skip the namespace probe and use the portable layers only.

Statuses: ``passed`` exit code 0; ``failed`` an AssertionError traceback, or a non-zero exit
without a traceback (e.g. ``sys.exit(1)`` or unittest's FAILED); ``memory`` MemoryError, or a
SIGKILL/SIGSEGV/SIGBUS after the resident size reached half the limit; ``timeout`` the wall clock
or RLIMIT_CPU ran out; ``crash`` any other exception (SyntaxError included) or signal;
``error`` the sandbox itself could not be set up.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import math
import os
import re
import resource
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import IO, Any

from thinkcost.tasks.base import Verdict

TAIL_CHARS = 2000
FILE_LIMIT_MB = 16  # RLIMIT_FSIZE: largest file (stdout/stderr files included) the child may write
TOKEN_VAR = "THINKCOST_SANDBOX_TOKEN"
_SETUP_ERROR = "THINKCOST-SANDBOX-SETUP-ERROR"
_PROGRAM_NAME = "program.py"
_PIDS_CGROUP = "/sys/fs/cgroup/pids"

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
class SandboxResult:
    """The outcome of one sandboxed run; ``isolation`` names the layers that were applied."""

    status: str  # passed | failed | timeout | crash | memory | error
    returncode: int | None
    seconds: float
    stdout_tail: str
    stderr_tail: str
    isolation: str


@dataclass(frozen=True)
class Layers:
    """Which kernel isolation features this machine grants (probed once, see :func:`layers`)."""

    netns: bool = False
    mntns: bool = False
    pidns: bool = False
    nocaps: bool = False
    pids_cgroup: bool = False


@dataclass(frozen=True)
class _ChildPlan:
    """Everything the pre-exec hook needs, computed in the parent (the hook must not allocate much)."""

    rlimits: tuple[tuple[int, int, int], ...]
    unshare_flags: int = 0
    sandbox: bytes = b""
    mountpoints: tuple[tuple[bytes, int], ...] = ()
    cap_last: int = -1
    cgroup_procs: bytes | None = None


# --------------------------------------------------------------------------- bootstrap (child)

# Runs inside the child as `python -I -S -B -c BOOTSTRAP sandbox program mode`. It installs the
# Python-level guards and runs the program as __main__. In "pidns" mode it first forks the
# namespace's init (a reaper), which forks the program, so the program keeps ordinary signal
# semantics and everything left in the namespace dies with the init.
BOOTSTRAP = r"""
import os, sys

def _guard_fs(root):
    import builtins, io, _io, posix
    realpath = os.path.realpath
    allowed = {"/dev/null"}

    def inside(path, dir_fd=None):
        if isinstance(path, int):
            return True
        p = os.fsdecode(os.fspath(path))
        if dir_fd is not None and not os.path.isabs(p):
            p = os.path.join(os.readlink("/proc/self/fd/%d" % dir_fd), p)
        r = realpath(p)
        return r == root or r.startswith(root + os.sep) or r in allowed

    def refuse(path):
        name = path if isinstance(path, int) else os.fsdecode(os.fspath(path))
        raise PermissionError(13, "sandbox: writing outside the sandbox directory is refused", name)

    real_open = _io.open
    def guarded_open(file, mode="r", *args, **kwargs):
        if any(c in mode for c in "wax+") and not inside(file):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    real_os_open = posix.open
    def guarded_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & write_flags and not inside(path, dir_fd):
            refuse(path)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def wrap(fn, npaths, first_only=False):
        def guarded(*args, **kwargs):
            fds = (kwargs.get("src_dir_fd", kwargs.get("dir_fd")), kwargs.get("dst_dir_fd", kwargs.get("dir_fd")))
            for i, path in enumerate(args[:npaths]):
                if first_only and i == 0:
                    continue
                if not inside(path, fds[i]):
                    refuse(path)
            return fn(*args, **kwargs)
        guarded.__name__ = fn.__name__
        return guarded

    one = ("remove", "unlink", "rmdir", "mkdir", "chmod", "chown", "lchown", "truncate", "utime", "mkfifo", "mknod")
    two = ("rename", "replace", "link")
    for mod in (os, posix):
        for name in one + two:
            if hasattr(posix, name):
                setattr(mod, name, wrap(getattr(posix, name), 2 if name in two else 1))
        mod.symlink = wrap(posix.symlink, 2, first_only=True)
        mod.open = guarded_os_open
    builtins.open = io.open = _io.open = guarded_open

def _block_sockets():
    import socket, _socket
    def blocked(*args, **kwargs):
        raise PermissionError(13, "sandbox: network access is disabled")
    for name in ("socket", "create_connection", "create_server", "socketpair", "fromfd"):
        setattr(socket, name, blocked)
    _socket.socket = _socket.SocketType = blocked

def _guard_kill():
    import posix
    own, real_kill, real_killpg = posix.getsid(0), posix.kill, posix.killpg
    def same_session(pid):
        try:
            return pid == 0 or posix.getsid(abs(pid)) == own
        except OSError:
            return True  # no such process: let the real call raise
    def refuse(pid):
        raise PermissionError(1, "sandbox: signalling processes outside the run is refused", str(pid))
    def kill(pid, sig):
        if not same_session(pid):
            refuse(pid)
        return real_kill(pid, sig)
    def killpg(pgid, sig):
        if not same_session(pgid):
            refuse(pgid)
        return real_killpg(pgid, sig)
    for mod in (os, posix):
        mod.kill, mod.killpg = kill, killpg

def _run_program(root, program, mode):
    try:
        if "sockets" in mode:
            _block_sockets()
        _guard_fs(root)
        _guard_kill()
    except Exception as e:
        print("%s: guard: %r" % (sys.argv[4], e), file=sys.stderr)
        os._exit(70)
    with open(program, "rb") as f:
        source = f.read()
    code = compile(source, program, "exec")
    sys.argv = [program]
    exec(code, {"__name__": "__main__", "__file__": program, "__builtins__": __builtins__})

def _mirror(status):
    import signal
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))

def _reaper(root, program, mode, report):
    child = os.fork()
    if child == 0:
        os.close(report)
        _run_program(root, program, mode)
        sys.exit(0)  # unwinds to the top: normal interpreter shutdown (threads joined, buffers flushed)
    while True:
        pid, status = os.wait()
        if pid == child:
            os.write(report, str(status).encode())
            os._exit(0)

def _main():
    root, program, mode = sys.argv[1:4]
    if "pidns" not in mode:
        _run_program(root, program, mode)
        return
    r, w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(r)
        _reaper(root, program, mode, w)
    os.close(w)
    os.waitpid(init, 0)
    data = os.read(r, 64)
    if not data:
        print("%s: the namespace init died" % sys.argv[4], file=sys.stderr)
        os._exit(70)
    _mirror(int(data))

_main()
"""


# --------------------------------------------------------------------------- pre-exec hook (child)


def _libc_call(result: int, what: str) -> None:
    """Raise OSError for a failed libc call (the message reaches the parent as a setup error)."""
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _readonly_mounts(plan: _ChildPlan) -> None:
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
    os.chdir(plan.sandbox)  # the cwd set before this hook points below the bind mount


def _child_setup(plan: _ChildPlan) -> None:
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


def _plan(layers: Layers, sandbox: str, timeout_s: float, memory_mb: int, cgroup: str | None) -> _ChildPlan:
    flags = (
        (_CLONE_NEWNET if layers.netns else 0)
        | (_CLONE_NEWNS if layers.mntns else 0)
        | (_CLONE_NEWPID if layers.pidns else 0)
    )
    return _ChildPlan(
        rlimits=_rlimits(timeout_s, memory_mb),
        unshare_flags=flags,
        sandbox=sandbox.encode(),
        mountpoints=_mountpoints(sandbox) if layers.mntns else (),
        cap_last=_cap_last() if layers.nocaps else -1,
        cgroup_procs=os.path.join(cgroup, "cgroup.procs").encode() if cgroup else None,
    )


def _isolation_label(layers: Layers, cgroup: str | None) -> str:
    parts = ["netns" if layers.netns else "socket-block"]
    parts += [name for name, on in (("mntns-ro", layers.mntns), ("pidns", layers.pidns)) if on]
    parts += ["nocaps"] if layers.nocaps else []
    parts += ["pids-cgroup"] if cgroup else []
    return "+".join([*parts, "rlimits", "pyguard"])


def _tail(f: IO[bytes]) -> str:
    """The last TAIL_CHARS characters of an output file (read from its end; output may be large)."""
    size = f.seek(0, os.SEEK_END)
    f.seek(max(0, size - 4 * TAIL_CHARS))
    return f.read().decode("utf-8", "replace")[-TAIL_CHARS:]


_EXC_LINE = re.compile(r"([A-Za-z_][\w.]*)(?::|$)")
_EXC_SUFFIXES = ("Error", "Exception", "Exit", "Interrupt", "Iteration", "Warning")


def _exception_name(stderr: str) -> str | None:
    """The type of the final uncaught exception, or None when stderr ends without a traceback.

    The exception line is the first unindented line after the last traceback header (frames are
    indented; a multi-line message continues below it). If the header scrolled out of the tail,
    the last unindented line that names an exception-like type is taken instead.
    """
    lines = stderr.splitlines()
    headers = [i for i, line in enumerate(lines) if line.startswith("Traceback (most recent call last)")]
    if headers:
        for line in lines[headers[-1] + 1 :]:
            m = _EXC_LINE.match(line)
            if m:
                return m.group(1).rsplit(".", 1)[-1]
        return None
    for line in reversed(lines):
        m = _EXC_LINE.match(line)
        if m and m.group(1).endswith(_EXC_SUFFIXES):
            return m.group(1).rsplit(".", 1)[-1]
    return None


def classify(
    returncode: int | None,
    timed_out: bool,
    stderr: str,
    maxrss_kb: int,
    memory_mb: int,
    inherited_kb: int = 0,
) -> str:
    """Map how the child ended to a status (rules in the module docstring).

    `inherited_kb`: the parent's peak resident size when it forked the child. Linux keeps a
    process's peak RSS across exec, and a forked child starts out sharing all of its parent's
    pages, so a child of a big parent (a test run holding models) "peaks" at the parent's size
    before it runs a line. Only a peak above that is evidence the child itself grew."""
    if timed_out:
        return "timeout"
    if returncode is None or _SETUP_ERROR in stderr:
        return "error"
    if returncode == 0:
        return "passed"
    if returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU:
            return "timeout"
        heavy = maxrss_kb > inherited_kb and maxrss_kb * 1024 >= memory_mb * 1024 * 1024 // 2
        if sig in (signal.SIGKILL, signal.SIGSEGV, signal.SIGBUS) and heavy:
            return "memory"
        return "crash"
    name = _exception_name(stderr)
    if name == "MemoryError":
        return "memory"
    if name is None or name == "AssertionError":
        return "failed"
    return "crash"


# ----------------------------------------------------------------- processes: wait, kill, sweep


def _gone(pid: int) -> bool:
    """True when pid no longer runs (absent, or a zombie waiting to be reaped by someone else)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return True
    return state in (b"Z", b"X")


def _token_holders(token: str) -> list[int]:
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


def _sweep(token: str, deadline_s: float = 2.0) -> None:
    """Kill every process of the run that escaped the process group, and wait until it is gone."""
    for _ in range(5):
        pids = [p for p in _token_holders(token) if p != os.getpid()]
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        end = time.monotonic() + deadline_s
        while not all(_gone(p) for p in pids) and time.monotonic() < end:
            time.sleep(0.001)


def _wait_exit(pid: int, timeout_s: float) -> bool:
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


def _finish(proc: subprocess.Popen, token: str, sweep: bool) -> tuple[int | None, int]:
    """Kill what is left of the run, reap the child; returns (returncode, max resident KiB)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # the child is not reaped yet: its pgid cannot be reused
    if sweep:
        _sweep(token)
    try:
        _, status, usage = os.wait4(proc.pid, 0)
    except ChildProcessError:
        return proc.returncode, 0
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


# --------------------------------------------------------------------------- pids cgroup


def _make_cgroup(token: str, max_procs: int) -> str | None:
    """A fresh pids cgroup holding at most max_procs tasks, or None where cgroups are unavailable."""
    path = os.path.join(_PIDS_CGROUP, f"thinkcost-{token}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "pids.max"), "w") as f:
            f.write(str(max_procs))
    except OSError:
        with contextlib.suppress(OSError):
            os.rmdir(path)
        return None
    return path


def _remove_cgroup(path: str | None) -> None:
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


# --------------------------------------------------------------------------- probing


_LAYERS: Layers | None = None
_LAYERS_LOCK = threading.Lock()

_PROBE = """
import ctypes, errno, os, socket
checks = {checks!r}
libc = ctypes.CDLL(None, use_errno=True)
if "mntns" in checks:
    fd = libc.open({outside!r}.encode(), os.O_CREAT | os.O_WRONLY, 0o600)
    assert fd < 0 and ctypes.get_errno() in (errno.EROFS, errno.EACCES, errno.EPERM), "outside write allowed"
if "netns" in checks:
    try:
        socket.create_connection(("127.0.0.1", 9), timeout=1)
    except OSError as e:
        assert e.errno == errno.ENETUNREACH, e
    else:
        raise AssertionError("connected")
if "pidns" in checks:
    assert os.getpid() == 2, os.getpid()
if "nocaps" in checks:
    eff = [l for l in open("/proc/self/status") if l.startswith("CapEff")][0]
    assert int(eff.split()[1], 16) == 0, eff
open("ok", "w").close()
"""


def _probe(candidate: Layers) -> bool:
    """Run a real sandboxed child under candidate and check, from inside, that each layer holds."""
    outside = tempfile.mkdtemp(prefix="thinkcost-probe-")
    sandbox = os.path.realpath(tempfile.mkdtemp(prefix="thinkcost-probe-"))
    checks = [name for name in ("netns", "mntns", "pidns", "nocaps") if getattr(candidate, name)]
    program = _PROBE.format(checks=checks, outside=os.path.join(outside, "escaped"))
    try:
        result = _execute(program, sandbox, candidate, 20.0, 1024, None)
        return result.status == "passed" and not os.path.exists(os.path.join(outside, "escaped"))
    except Exception:  # a layer the kernel refuses makes the launch itself fail
        return False
    finally:
        shutil.rmtree(outside, ignore_errors=True)
        _remove_tree(sandbox)


def _probe_cgroup() -> bool:
    path = _make_cgroup(secrets.token_hex(6), 8)
    _remove_cgroup(path)
    return path is not None


def _detect_layers() -> Layers:
    """Try every layer together; if the kernel refuses, keep the subset that works one by one."""
    if os.environ.get("THINKCOST_SANDBOX_NAMESPACES", "1") == "0" or not sys.platform.startswith("linux"):
        return Layers()
    everything = Layers(netns=True, mntns=True, pidns=True, nocaps=True)
    if not _probe(everything):
        single = {name: _probe(Layers(**{name: True})) for name in ("netns", "mntns", "pidns", "nocaps")}
        everything = Layers(**single)
        if any(single.values()) and not _probe(everything):
            everything = Layers()
    return replace(everything, pids_cgroup=os.geteuid() == 0 and _probe_cgroup())


def layers() -> Layers:
    """The isolation layers available on this machine (probed once per process, thread-safe)."""
    global _LAYERS
    with _LAYERS_LOCK:
        if _LAYERS is None:
            _LAYERS = _detect_layers()
        return _LAYERS


# --------------------------------------------------------------------------- public API


def _env(sandbox: str, token: str) -> dict[str, str]:
    """A minimal environment: nothing of the parent's (keys, proxies, paths) reaches the child."""
    return {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "HOME": sandbox,
        "TMPDIR": sandbox,
        "LANG": "C.UTF-8",
        TOKEN_VAR: token,
    }


def _execute(
    program: str, sandbox: str, lay: Layers, timeout_s: float, memory_mb: int, max_procs: int | None
) -> SandboxResult:
    """Launch, wait with the wall clock, kill everything, classify. Runs inside the temp dir's lifetime."""
    start = time.monotonic()
    token = secrets.token_hex(12)
    cgroup = _make_cgroup(token, max_procs) if max_procs is not None and lay.pids_cgroup else None
    label = _isolation_label(lay, cgroup)
    path = os.path.join(sandbox, _PROGRAM_NAME)
    with open(path, "w", encoding="utf-8") as f:
        f.write(program)
    mode = ",".join(m for m, on in (("pidns", lay.pidns), ("sockets", not lay.netns)) if on) or "plain"
    cmd = [sys.executable, "-I", "-S", "-B", "-c", BOOTSTRAP, sandbox, path, mode, _SETUP_ERROR]
    try:
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            inherited_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            proc = subprocess.Popen(
                cmd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                cwd=sandbox,
                env=_env(sandbox, token),
                start_new_session=True,
                close_fds=True,
                preexec_fn=functools.partial(_child_setup, _plan(lay, sandbox, timeout_s, memory_mb, cgroup)),
            )
            in_time = False
            try:
                in_time = _wait_exit(proc.pid, timeout_s)
            finally:  # whatever happens here (even KeyboardInterrupt), nothing of the run survives
                returncode, maxrss = _finish(proc, token, sweep=not lay.pidns)
            stdout, stderr = _tail(out), _tail(err)
    finally:
        _remove_cgroup(cgroup)
    status = classify(returncode, not in_time, stderr, maxrss, memory_mb, inherited_kb)
    return SandboxResult(status, returncode, time.monotonic() - start, stdout, stderr, label)


def _remove_tree(path: str) -> None:
    """Remove the sandbox dir even if the program made parts of it read-only or unlistable."""
    try:
        shutil.rmtree(path)
    except OSError:
        for root, dirs, _files in os.walk(path):
            for d in dirs:
                with contextlib.suppress(OSError):
                    os.chmod(os.path.join(root, d), 0o700)
        shutil.rmtree(path, ignore_errors=True)


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
        sandbox = os.path.realpath(tempfile.mkdtemp(prefix="thinkcost-sbx-"))
        return _execute(program, sandbox, layers(), timeout_s, memory_mb, max_procs)
    except Exception as exc:  # the caller must get a result, whatever went wrong in the setup
        label = _isolation_label(_LAYERS or Layers(), None)
        detail = f"{_SETUP_ERROR}: {type(exc).__name__}: {exc}"
        return SandboxResult("error", None, time.monotonic() - start, "", detail[-TAIL_CHARS:], label)
    finally:
        if sandbox is not None:
            _remove_tree(sandbox)


def check_program(
    candidate: str,
    tests: str,
    *,
    entry_point: str | None = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
) -> SandboxResult:
    """candidate, then tests, then HumanEval's ``check(entry_point)``; passed iff the exit code is 0."""
    if entry_point is not None and not entry_point.isidentifier():
        return SandboxResult("error", None, 0.0, "", f"bad entry point {entry_point!r}", "none")
    program = candidate + "\n" + tests
    if entry_point is not None:
        program += f"\ncheck({entry_point})\n"
    return run_python(program, timeout_s=timeout_s, memory_mb=memory_mb)


_FENCE_OPEN = re.compile(r"^\s*```+\s*([\w+.#-]*)[^`]*$")
_FENCE_CLOSE = re.compile(r"^(.*?)```+\s*$")
_LANG_ALIASES = {"python": {"python", "py", "python3", "py3"}}


def _fenced_blocks(text: str) -> list[tuple[str, str]]:
    """(language tag, body) of every fenced block in order; an unterminated last block runs to the end."""
    blocks: list[tuple[str, str]] = []
    lang: str | None = None
    body: list[str] = []
    for line in text.splitlines():
        if lang is None:
            m = _FENCE_OPEN.match(line)
            if m:
                lang, body = m.group(1).lower(), []
            continue
        m = _FENCE_CLOSE.match(line)
        if m:
            if m.group(1).strip():
                body.append(m.group(1))  # code``` on the same line as the closing fence
            blocks.append((lang, "\n".join(body)))
            lang = None
        else:
            body.append(line)
    if lang is not None:
        blocks.append((lang, "\n".join(body)))
    return blocks


def extract_code(text: str, language: str = "python") -> str | None:
    """The last block fenced as ``language`` (py/python3 count as python), else the last untagged one."""
    blocks = [(lang, body) for lang, body in _fenced_blocks(text) if body.strip()]
    names = _LANG_ALIASES.get(language, {language})
    for wanted in (lambda lang: lang in names, lambda lang: lang == ""):
        matching = [body for lang, body in blocks if wanted(lang)]
        if matching:
            return matching[-1].strip("\n") + "\n"
    return None


def _compiles(text: str) -> bool:
    """Whether unfenced text is Python at all (compiling never runs it)."""
    try:
        compile(text, "<answer>", "exec")
    except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
        return False
    return True


def verify_code(answer_text: str, tests: str, entry_point: str | None = None, **kw: Any) -> Verdict:
    """Score a model answer: fenced code (or the raw text, if it compiles) against the tests."""
    code = extract_code(answer_text)
    rule = "fenced"
    if code is None and answer_text.strip() and _compiles(answer_text):
        code, rule = answer_text, "raw"
    if code is None:
        return Verdict(correct=False, extracted=None, rule="none", detail="none: no code found")
    result = check_program(code, tests, entry_point=entry_point, **kw)
    detail = f"{result.status}: {result.stderr_tail[-300:]}"
    return Verdict(correct=result.status == "passed", extracted=code, rule=rule, detail=detail)


def run_many(programs: Sequence[str], workers: int = 2, **kw: Any) -> list[SandboxResult]:
    """Run programs on a pool of threads, each launching sandboxed children; results in input order."""
    layers()  # probe once, before the threads race for it
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(lambda p: run_python(p, **kw), programs))
