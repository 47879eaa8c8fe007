"""Sandbox bootstrap: the first Python code of every sandboxed child.

Run as ``python -I -S -B bootstrap.py SANDBOX PROGRAM MODE MARKER [ARGS...]`` by
:mod:`thinkcost.sandbox.launch`; it imports nothing of thinkcost (``-I`` keeps this directory off
``sys.path``). MODE is a comma list:

``sockets`` replace socket creation with functions raising PermissionError (no netns here);
``pidns``   fork the namespace's init (a reaper), which forks the program, so the program keeps
            ordinary signal semantics and everything left in the namespace dies with the init;
``grader``  PROGRAM is the grading harness, compiled by the parent (``grader.code``: a marshalled
            code object, so the child does not compile 600 lines per run); it gets a private copy
            of builtins, so nothing a candidate does to ``builtins`` reaches the harness's own code.

Before the program runs it installs the Python-level guards ("pyguard": refuse writes outside
SANDBOX and signals to processes outside the run's session). They turn accidents into clean
PermissionErrors; they are not a security boundary (the kernel layers are). MARKER prefixes any
message about a failed setup, so the parent can tell it from the program's own output.
"""

import os
import sys


def _guard_fs(root):
    import _io
    import builtins
    import io
    import posix

    realpath = os.path.realpath
    allowed = {"/dev/null"}

    def inside(path, dir_fd=None):
        if isinstance(path, int):
            return True
        p = os.fsdecode(os.fspath(path))
        if dir_fd is not None and not os.path.isabs(p):
            p = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), p)
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
            fds = (
                kwargs.get("src_dir_fd", kwargs.get("dir_fd")),
                kwargs.get("dst_dir_fd", kwargs.get("dir_fd")),
            )
            for i, path in enumerate(args[:npaths]):
                if first_only and i == 0:
                    continue
                if not inside(path, fds[i]):
                    refuse(path)
            return fn(*args, **kwargs)

        guarded.__name__ = fn.__name__
        return guarded

    one = (
        "remove",
        "unlink",
        "rmdir",
        "mkdir",
        "chmod",
        "chown",
        "lchown",
        "truncate",
        "utime",
        "mkfifo",
        "mknod",
    )
    two = ("rename", "replace", "link")
    for mod in (os, posix):
        for name in one + two:
            if hasattr(posix, name):
                setattr(mod, name, wrap(getattr(posix, name), 2 if name in two else 1))
        mod.symlink = wrap(posix.symlink, 2, first_only=True)
        mod.open = guarded_os_open
    builtins.open = io.open = _io.open = guarded_open


def _block_sockets():
    import _socket
    import socket

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


def _load(program, mode):
    """The program's code object: compiled here, or (grader) unmarshalled from the parent's cache."""
    with open(program, "rb") as f:
        data = f.read()
    if "grader" in mode:
        import marshal

        return marshal.loads(data)
    return compile(data, program, "exec")


def _run_program(root, program, mode, marker, args):
    try:
        if "sockets" in mode:
            _block_sockets()
        _guard_fs(root)
        _guard_kill()
    except Exception as e:
        print(f"{marker}: guard: {e!r}", file=sys.stderr)
        os._exit(70)
    code = _load(program, mode)
    import builtins

    own = dict(vars(builtins)) if "grader" in mode else builtins
    sys.argv = [program, *args]
    exec(code, {"__name__": "__main__", "__file__": program, "__builtins__": own})


def _close_all_but(keep):
    """Drop every inherited descriptor above stderr except `keep` (a reaper holds nothing of the run).

    Where /proc is hidden (graded runs) nothing can reach another process's descriptors through
    /proc/<pid>/fd, so there is nothing to do (and a blind close of 65536 numbers costs milliseconds).
    """
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        return
    for fd in fds:
        if fd > 2 and fd != keep:
            try:  # noqa: SIM105 (contextlib would cost every child an import)
                os.close(fd)
            except OSError:
                pass


def _mirror(status):
    import signal

    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:  # noqa: SIM105 (contextlib would cost every child an import)
            signal.signal(sig, signal.SIG_DFL)
        except (OSError, ValueError):
            pass
        os.kill(os.getpid(), sig)
        os._exit(128 + sig)
    os._exit(os.waitstatus_to_exitcode(status))


def _reaper(root, program, mode, marker, args, report):
    child = os.fork()
    if child == 0:
        os.close(report)
        _run_program(root, program, mode, marker, args)
        sys.exit(0)  # unwinds to the top: normal interpreter shutdown (threads joined, buffers flushed)
    _close_all_but(report)
    while True:
        pid, status = os.wait()
        if pid == child:
            os.write(report, str(status).encode())
            os._exit(0)


def _main():
    root, program, mode, marker = sys.argv[1:5]
    args = sys.argv[5:]
    if "pidns" not in mode:
        _run_program(root, program, mode, marker, args)
        return
    r, w = os.pipe()
    init = os.fork()
    if init == 0:
        os.close(r)
        _reaper(root, program, mode, marker, args, w)
    os.close(w)
    _close_all_but(r)
    os.waitpid(init, 0)
    data = os.read(r, 64)
    if not data:
        print(f"{marker}: the namespace init died", file=sys.stderr)
        os._exit(70)
    _mirror(int(data))


if __name__ == "__main__":
    _main()
