"""Run untrusted Python (model-written code) in a sandboxed child process, and grade it against tests.

Model code may loop forever, allocate without bound, fork daemons, open sockets, delete files, or
game its grader. Every run happens in a separate ``python -I -S -B`` process, in a fresh
temporary directory that is its cwd, HOME and TMPDIR, with a minimal environment; every entry
point returns a :class:`SandboxResult` (the caller never crashes or hangs on the candidate's behalf).

Modules: :mod:`.kernel` (rlimits, namespaces, mounts, capabilities: the pre-exec plan),
:mod:`.processes` (wait, kill, sweep), :mod:`.cgroup`, :mod:`.probe` (which layers this machine
grants), :mod:`.launch` (one child, start to cleanup), :mod:`.outcome` (statuses),
:mod:`.run` (a plain program, judged by its exit), :mod:`.harness` (grading: judged by a nonce
the tests' end alone can produce), ``child/`` (the files that run inside the child).

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
``proc-hidden`` graded runs only, with mntns: an empty read-only tmpfs over /proc, so the
            candidate has no /proc/self/mem (its own memory, where the grader's nonce lives).
``pidns``   a new PID namespace whose init is a tiny reaper from the bootstrap; when it exits,
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
``audit-hook`` graded runs only: see :mod:`.harness`.

Not done: running the child as an unprivileged uid. Where the interpreter lives under a 0700
home (as here: /root/.pyenv), uid 65534 cannot even exec it; ``mntns-ro`` + ``nocaps`` give
the OS-level write boundary instead. Consequences of the child keeping the parent's uid: it can
READ whatever the parent can (nothing here restricts reads; with no network, stdout is the only
way out), and it can connect to unix socket *files* owned by that uid (read-only mounts do not
cover sockets; the netns isolates only abstract ones).

The pre-exec hook is a ``preexec_fn``, which subprocess calls unsafe in threaded programs (a
lock held by another thread at fork time stays held in the child). Ours imports nothing and
takes no Python-level locks (see :mod:`.kernel`), which is what lets :func:`run_many` launch
from worker threads. This package imports nothing of thinkcost outside itself.
"""

from thinkcost.sandbox.harness import check_program
from thinkcost.sandbox.kernel import FILE_LIMIT_MB, Layers
from thinkcost.sandbox.outcome import TAIL_CHARS, SandboxResult, classify
from thinkcost.sandbox.probe import layers
from thinkcost.sandbox.processes import TOKEN_VAR
from thinkcost.sandbox.run import run_many, run_python

__all__ = [
    "FILE_LIMIT_MB",
    "TAIL_CHARS",
    "TOKEN_VAR",
    "Layers",
    "SandboxResult",
    "check_program",
    "classify",
    "layers",
    "run_many",
    "run_python",
]
