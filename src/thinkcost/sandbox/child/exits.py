"""Notes on self-termination, so a user sees *how* a candidate ended its run (loaded by ``grader.py``).

``os._exit``, ``os.abort``, ``os.kill``/``os.killpg`` of its own process or group,
``signal.raise_signal``, ``signal.pthread_kill``, ``signal.alarm``/``setitimer`` and
``_thread.interrupt_main`` first write ``note <call>`` to the result channel, then do what they
were asked. The notes are for the detail only: they carry no nonce, a candidate can write fake
ones or reach the real functions (``os._exit.__closure__``, a fresh ``posix`` module), and the
verdict never depends on them: without the grader's nonce line a run cannot pass.
"""

import _signal
import _thread
import os
import posix


def _signame(sig):
    for name in dir(_signal):
        if name.startswith("SIG") and not name.startswith("SIG_") and getattr(_signal, name) == sig:
            return name
    return str(sig)


def install(result_fd):
    """Wrap the self-terminating calls in os, posix, _signal and _thread."""

    def note(text):
        try:  # noqa: SIM105 (contextlib would cost every child an import)
            posix.write(result_fd, ("note " + text + "\n").encode("utf-8", "replace"))
        except Exception:
            pass

    real_exit, real_abort, real_kill, real_killpg = posix._exit, posix.abort, os.kill, os.killpg

    def _exit(code):
        note(f"os._exit({code!r})")
        real_exit(code)

    def abort():
        note("os.abort()")
        real_abort()

    def kill(pid, sig):
        if pid in (0, posix.getpid()):
            note(f"os.kill(its own pid, {_signame(sig)})")
        return real_kill(pid, sig)

    def killpg(pgid, sig):
        if pgid in (0, posix.getpgrp()):
            note(f"os.killpg(its own group, {_signame(sig)})")
        return real_killpg(pgid, sig)

    for mod in (os, posix):
        mod._exit, mod.abort, mod.kill, mod.killpg = _exit, abort, kill, killpg

    real_raise, real_pthread_kill = _signal.raise_signal, _signal.pthread_kill
    real_alarm, real_setitimer, real_interrupt = _signal.alarm, _signal.setitimer, _thread.interrupt_main

    def raise_signal(sig):
        note(f"signal.raise_signal({_signame(sig)})")
        return real_raise(sig)

    def pthread_kill(thread_id, sig):
        note(f"signal.pthread_kill(a thread of its own, {_signame(sig)})")
        return real_pthread_kill(thread_id, sig)

    def alarm(seconds):
        if seconds:
            note(f"signal.alarm({seconds!r})")
        return real_alarm(seconds)

    def setitimer(which, seconds, interval=0.0):
        if seconds:
            note(f"signal.setitimer({which!r}, {seconds!r})")
        return real_setitimer(which, seconds, interval)

    def interrupt_main(signum=_signal.SIGINT):
        note("_thread.interrupt_main()")
        return real_interrupt(signum)

    _signal.raise_signal, _signal.pthread_kill = raise_signal, pthread_kill
    _signal.alarm, _signal.setitimer, _thread.interrupt_main = alarm, setitimer, interrupt_main
