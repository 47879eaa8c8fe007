"""The grading harness inside the sandboxed child: a run passes only if the tests really ran to the end.

Started by ``bootstrap.py`` in ``grader`` mode (private builtins; the parent compiled this file
and its siblings into ``*.code`` files) with ``SOLUTION INBOX_FD RESULT_FD [undumpable]``. The
parent side, the threat model and what remains possible are in :mod:`thinkcost.sandbox.harness`.
In order, this file:

1. reads the inbox (a per-run random nonce and the tests, compiled and instrumented by the
   parent), truncates and closes it: neither exists anywhere the candidate can read;
2. compiles the candidate, and prepares the tests with ``testside.py`` (instrumented code,
   module views, pristine builtins, snapshots); ``exits.py`` adds notes on self-termination;
3. installs an audit hook (:func:`_make_hook`): frames, heap walking, tracing, ctypes, code
   construction, other programs and /proc/<pid> are refused from then on, for the rest of the
   process; refusals that only an adversary needs are recorded and fail the run;
4. runs the candidate as module ``solution`` (never ``__main__``), then the tests and
   ``check(entry_point)``, in a worker thread: CPython lets only the main thread install signal
   handlers, which would otherwise receive the interrupted frame;
5. the main thread, which alone holds the nonce, waits; when the worker is done it writes
   ``<nonce> passed ...`` to the result descriptor if the tests passed, else an unauthenticated
   ``result <status> <detail>`` (a nonce written on failure could be read back by a candidate
   that planted its own file at the descriptor's number, and replayed), then calls ``os._exit``
   at once (no atexit handlers, no waiting for the candidate's threads). It runs no other code
   after step 3, so nothing the candidate wrote (``__del__``, signal handlers, patched streams)
   ever runs in the thread whose frame holds the nonce.
"""

import _signal
import _thread
import builtins
import os
import posix
import sys

_read, _write, _close, _exit, _getcwd = posix.read, posix.write, posix.close, posix._exit, posix.getcwd
_ftruncate, _set_inheritable = posix.ftruncate, posix.set_inheritable
_start_thread, _new_lock, _ident = _thread.start_new_thread, _thread.allocate_lock, _thread.get_ident
_FileIO = sys.modules["_io"].FileIO
_unmarshal = sys.modules["marshal"].loads
_exit_code = SystemExit.__dict__["code"].__get__
_getframe = sys._getframe
_traceback = BaseException.__dict__["__traceback__"].__get__
_tname = type.__dict__["__name__"].__get__
_MODULE = type(sys)


class Refusal(BaseException):
    """Raised into the tests when they receive an always-equal value (not an Exception: tests cannot swallow it)."""


class GradingRefusal(PermissionError):
    """An operation the grader does not allow."""


class FrameUnavailable(ValueError):
    """sys._getframe: a ValueError, which typing, namedtuple, enum and logging already handle."""


class FrameAttributeUnavailable(AttributeError):
    """A frame attribute (tb_frame, gi_frame, ...): getattr(obj, name, default) callers fall back."""


class ImportRefused(ImportError):
    """A module that could read or rewrite interpreter memory, or a re-import of a loaded one."""


_FRAME_ATTRS = frozenset(("tb_frame", "gi_frame", "cr_frame", "ag_frame"))
_FRAME_EVENTS = frozenset(("sys._getframe", "sys._getframemodulename"))
_RECORDED = {
    "sys.settrace": "sys.settrace (a trace function can skip test lines)",
    "sys.setprofile": "sys.setprofile (profile hooks see the tests' frames)",
    "sys.monitoring.register_callback": "sys.monitoring callbacks",
    "sys._current_frames": "sys._current_frames (the grader's frames)",
    "sys._current_exceptions": "sys._current_exceptions (the grader's frames)",
    "gc.get_objects": "gc.get_objects (walking the heap)",
    "gc.get_referrers": "gc.get_referrers (walking the heap)",
    "gc.get_referents": "gc.get_referents (walking the heap)",
    "sys.addaudithook": "sys.addaudithook",
    "code.__new__": "building code objects (code.__new__, code.replace)",
    "function.__new__": "building functions from code objects (types.FunctionType)",
    "os.exec": "starting another program (os.exec*)",
    "os.posix_spawn": "starting another program (os.posix_spawn)",
    "os.spawn": "starting another program (os.spawn*)",
    "os.system": "starting another program (os.system)",
    "subprocess.Popen": "starting another program (subprocess)",
    "setopencodehook": "io.open_code hooks",
    "marshal.load": "marshal.load",
}
_DENIED_IMPORTS = frozenset(
    (
        "ctypes",
        "_ctypes",
        "_ctypes_test",
        "_testcapi",
        "_testinternalcapi",
        "_testbuffer",
        "_testmultiphase",
        "_testsinglephase",
        "_testimportmultiple",
        "_testclinic",
        "_xxsubinterpreters",
        "_xxinterpchannels",
        "_xxtestfuzz",
    )
)
_PATH_EVENTS = frozenset(("open", "os.listdir", "os.scandir", "os.chdir"))
# events that change the file system -> how many leading arguments are paths
_CHANGES = {
    "os.remove": 1, "os.rmdir": 1, "os.mkdir": 1, "os.chmod": 1, "os.chown": 1, "os.truncate": 1,
    "os.utime": 1, "os.setxattr": 1, "os.removexattr": 1, "os.rename": 2, "os.link": 2, "os.symlink": 2,
}  # fmt: skip
_WRITE_FLAGS = posix.O_WRONLY | posix.O_RDWR | posix.O_CREAT | posix.O_TRUNC | posix.O_APPEND
_DEVICES = frozenset(("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random"))
_OTHER_EVENTS = ("object.__getattr__", "object.__setattr__", "import", "marshal.loads", "compile")
_WATCHED = frozenset((*_FRAME_EVENTS, *_RECORDED, *_PATH_EVENTS, *_CHANGES, *_OTHER_EVENTS))


# --------------------------------------------------------------------------- audit hook


def _is_a(value, cls):
    """isinstance by identity along the real MRO: `in` or isinstance could run a metaclass's __eq__ or
    a __class__ property, i.e. candidate code, and inside the hook nothing the candidate does is audited."""
    return any(base is cls for base in type.__dict__["__mro__"].__get__(type(value)))


def _text(value):
    """value as an exact str without running any of its code (str/bytes subclasses included), else None."""
    if type(value) is str:
        return value
    if _is_a(value, str):
        return str.__str__(value)
    if _is_a(value, bytes):
        return bytes.decode(value, "utf-8", "surrogateescape")
    return None


def _normal(path, cwd):
    """The absolute path with '.', '..' and repeated slashes resolved lexically."""
    parts = []
    for part in (path if path[:1] == "/" else cwd + "/" + path).split("/"):
        if part == "..":
            if parts:
                parts.pop()
        elif part and part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _in_proc(path):
    """A process's own /proc directory (its memory, descriptors, environment), not /proc itself."""
    parts = path.split("/")
    return (
        len(parts) > 2 and parts[1] == "proc" and (parts[2].isdigit() or parts[2] in ("self", "thread-self"))
    )


def _same_bytes(path, data, skip=0):
    """Whether data is exactly the content of path after `skip` bytes (read with the real FileIO)."""
    try:
        with _FileIO(path, "r") as f:
            content = f.readall()[skip:]
    except OSError:
        return False
    if _is_a(data, str):
        return str.encode(str.__str__(data), "utf-8", "surrogatepass") == content
    try:
        return memoryview(data).tobytes() == content
    except TypeError:  # an AST, or anything else that is not the file's bytes
        return False


def _make_hook(sandbox, stdlib, refusals, preloaded):
    """The audit hook; its state lives only in this closure, which nothing can reach once installed.

    Besides the refusals above it keeps file-system changes, write opens and ``os.open`` (the
    only way to get a directory descriptor for ``dir_fd`` tricks) inside the sandbox directory,
    compared lexically: the kernel enforces this with the mount namespace; this holds it at the
    Python level where there is none (``_io.FileIO`` would bypass the bootstrap's guard).
    """
    busy = set()  # threads inside the hook (the hook's own file reads raise events too)
    coroutine = sys.modules["types"].coroutine.__code__  # the one stdlib caller of code.replace
    last_pyc = {}  # thread -> the last .pyc it opened: marshal.loads must be reading exactly that file
    stdlib_dir, inside_dir = stdlib + "/", sandbox + "/"

    def refuse(what, kind=GradingRefusal):
        refusals.append(what + " is not allowed while grading")
        raise kind("thinkcost grading sandbox: " + what + " is not allowed while grading")

    def deny(path):
        message = (
            "thinkcost grading sandbox: outside the sandbox directory files may only be read with open()"
        )
        raise GradingRefusal(13, message, path)

    def inside(path):
        return path == sandbox or path.startswith(inside_dir)

    def paths(args, count):
        cwd = _getcwd()
        out = []
        for raw in args[:count]:
            text = _text(raw)
            if text is not None:
                out.append(_normal(text, cwd))
        return out

    def check_path(event, args):
        found = paths(args, 1)
        if not found:
            return
        path = found[0]
        if _in_proc(path):
            refuse(event + " of " + path + " (the grader's own memory and descriptors)")
        if event != "open":
            return
        flags = args[2] if len(args) > 2 and type(args[2]) is int else 0
        if (flags & _WRITE_FLAGS or args[1] is None) and not inside(path) and path not in _DEVICES:
            deny(path)  # a write, or os.open (dir_fd) outside the sandbox
        if path.endswith(".pyc"):
            last_pyc[_ident()] = path

    def from_types_coroutine():
        """types.coroutine sets CO_ITERABLE_COROUTINE on a function (asyncio, unittest.mock import it)."""
        return _getframe(3).f_code is coroutine  # 0: this, 1: check, 2: hook, 3: whoever raised the event

    def check(event, args):
        if event in _FRAME_EVENTS:
            raise FrameUnavailable("thinkcost grading sandbox: frames are not available while grading")
        if event == "object.__getattr__":
            if args[1] in _FRAME_ATTRS:
                raise FrameAttributeUnavailable(
                    "thinkcost grading sandbox: frames are not available while grading"
                )
        elif event == "object.__setattr__":
            if args[1] == "__code__" and not from_types_coroutine():
                refuse("replacing a function's __code__")
        elif event in _RECORDED:
            if event != "code.__new__" or not from_types_coroutine():
                refuse(_RECORDED[event])
        elif event == "import":
            name = _text(args[0])
            if name in _DENIED_IMPORTS:
                refuse("importing " + name, ImportRefused)
            if name in preloaded:
                refuse("re-importing the already loaded module " + name, ImportRefused)
        elif event in _PATH_EVENTS:
            check_path(event, args)
        elif event in _CHANGES:
            changed = paths(args, _CHANGES[event])
            if event == "os.symlink" and len(changed) == 2 and _text(args[0])[:1] != "/":
                changed[0] = _normal(changed[1].rpartition("/")[0] + "/" + _text(args[0]), "/")
            for path in changed:
                if _in_proc(path):
                    refuse(event + " of " + path + " (the grader's own memory and descriptors)")
                if not inside(path):
                    deny(path)
        elif event == "marshal.loads":
            path = last_pyc.pop(_ident(), None)
            if path is None or not path.startswith(stdlib_dir) or not _same_bytes(path, args[0], 16):
                refuse("marshal.loads of anything but a standard-library .pyc (crafted bytecode)")
        elif event == "compile":  # denied, not recorded: Python's traceback printer re-parses source lines
            name = _text(args[1])
            if name is not None and name.startswith(stdlib_dir) and not _same_bytes(name, args[0]):
                raise GradingRefusal(
                    "thinkcost grading sandbox: only the standard library compiles under its file names"
                )

    def hook(event, args):
        if event not in _WATCHED and not event.startswith("ctypes."):
            return
        me = _ident()
        if me in busy:
            return
        busy.add(me)
        try:
            if event.startswith("ctypes."):
                refuse("ctypes (" + event + ")")
            check(event, args)
        finally:
            busy.discard(me)

    return hook


# --------------------------------------------------------------------------- grading (worker thread)


def _message(exc):
    try:
        text = str(exc)
    except BaseException:
        text = "<unprintable>"
    return text.replace("\n", " ")[:300]


def _show(exc, err, excepthook):
    """The traceback on stderr, as Python would print it, minus the grader's own frame."""
    if issubclass(type(exc), SystemExit):
        return
    try:
        sys.stderr = err
        tb = _traceback(exc)
        excepthook(type(exc), exc, tb.tb_next if tb is not None else None)
    except BaseException:
        pass


def _outcome(exc, when):
    kind = type(exc)
    if kind is Refusal:
        return "failed", "refused: " + _message(exc)
    if issubclass(kind, SystemExit):
        try:
            code = repr(_exit_code(exc))[:80]
        except BaseException:
            code = "?"
        return "failed", f"exited before the tests finished: SystemExit({code}) {when}"
    if issubclass(kind, KeyboardInterrupt):
        return "failed", f"interrupted before the tests finished: KeyboardInterrupt {when}"
    if issubclass(kind, MemoryError):
        return "memory", f"MemoryError {when}"
    message = _message(exc)
    head = _tname(kind) + (": " + message if message else "")
    return ("failed" if kind is AssertionError else "crash"), f"{head} ({when})"


def _attempt(code, namespace, when, err, excepthook):
    """None if code ran to its end, else the (status, detail) its exception means."""
    try:
        exec(code, namespace)
    except BaseException as exc:
        _show(exc, err, excepthook)
        return _outcome(exc, when)
    return None


def _grade(code, module, tests, refusals, err, excepthook):
    """(status, detail) of the candidate, then the tests, then check(entry_point)."""
    outcome = _attempt(code, module.__dict__, "while the candidate was loading", err, excepthook)
    if outcome is None:
        problem = refusals[0] if refusals else tests["check"]()
        if problem:
            return "failed", "refused: " + problem
        namespace = tests["namespace"](module.__dict__)
        outcome = _attempt(tests["code"], namespace, "during the tests", err, excepthook)
        outcome = outcome or ("passed", "all tests ran to the end")
    if refusals:
        return "failed", "refused: " + refusals[0]
    problem = tests["check"]() if outcome[0] == "passed" else None
    return ("failed", "refused: " + problem) if problem else outcome


def _runner(code, module, tests, refusals, box, done, streams, excepthook):
    try:
        status, detail = _grade(code, module, tests, refusals, streams[1], excepthook)
    except BaseException as exc:  # a bug of ours, or a candidate that broke the grader's own objects
        status, detail = "error", "the grader failed: " + _tname(type(exc))
    try:
        for stream in streams:
            try:  # noqa: SIM105 (contextlib would cost every child an import)
                stream.flush()
            except BaseException:
                pass
        line = (status + " " + detail.replace("\n", " ")[:1000] + "\n").encode("utf-8", "replace")
        box.append((status == "passed", line))
    finally:
        done.release()


# --------------------------------------------------------------------------- set-up (main thread)


def _take_inbox(fd):
    """nonce, instrumented test code, modules the tests import; emptied and closed before any candidate code."""
    chunks = []
    while True:
        chunk = _read(fd, 1 << 16)
        if not chunk:
            break
        chunks.append(chunk)
    try:
        _ftruncate(fd, 0)
    finally:
        _close(fd)
    nonce, blob = b"".join(chunks).split(b"\n", 1)
    code, imports = _unmarshal(blob)
    return nonce.decode(), code, imports


def _load_sibling(name, pristine):
    """Run a sibling file (compiled by the parent, next to ours) in its own namespace, not in sys.modules."""
    with open(os.path.join(os.path.dirname(__file__), name + ".code"), "rb") as f:
        code = _unmarshal(f.read())
    ns = {"__name__": "thinkcost_" + name, "__file__": code.co_filename, "__builtins__": dict(pristine)}
    exec(code, ns)
    return ns


def _undumpable():
    """prctl(PR_SET_DUMPABLE, 0): other processes of the same uid cannot read this one's memory.

    Only needed without the mount namespace (which hides /proc from the whole run); _ctypes is
    dropped from sys.modules again, and every ctypes call is refused once the hook is in.
    """
    import _ctypes

    try:
        prctl = _ctypes.dlsym(_ctypes.dlopen(None), "prctl")
        _ctypes.call_function(prctl, (4, 0))
    finally:
        sys.modules.pop("_ctypes", None)


def _reporter(result_fd):
    """Report a set-up failure (no candidate code has run yet) and exit; failures carry no nonce."""

    def report(status, detail):
        _write(result_fd, f"result {status} {detail}".replace("\n", " ").encode("utf-8", "replace") + b"\n")
        _exit(1)

    return report


def main(argv):
    """Grade SOLUTION against the tests from the inbox; reports on RESULT_FD and exits."""
    solution, inbox_fd, result_fd = argv[0], int(argv[1]), int(argv[2])
    nonce, tests, imports = _take_inbox(inbox_fd)
    _set_inheritable(result_fd, False)
    report = _reporter(result_fd)

    if "undumpable" in argv[3:]:
        _undumpable()
    with open(solution, "rb") as f:
        source = f.read()
    try:
        code = compile(source, solution, "exec", dont_inherit=True)
    except (SyntaxError, ValueError, OverflowError, MemoryError, RecursionError) as exc:
        _show(exc, sys.stderr, sys.__excepthook__)
        report("crash", f"{_tname(type(exc))}: {exc} (the candidate does not compile)")
    pristine = dict(vars(builtins))
    stdlib = os.path.dirname(os.__file__)
    refusals = []
    try:
        prepare = _load_sibling("testside", pristine)["prepare"]
        prepared = prepare(tests, imports, pristine, vars(builtins), stdlib, Refusal, refusals.append)
    except Exception as exc:
        report("error", f"the tests could not be prepared: {_tname(type(exc))}: {exc}")
    import types  # noqa: F401  (types.py reads a tb_frame at import time, which the hook would refuse)

    module = _MODULE("solution")
    module.__file__ = solution
    sys.modules["solution"] = module
    sys.argv = [solution]  # what a script would see (unittest.main() parses it)
    _load_sibling("exits", pristine)["install"](result_fd)
    _signal.signal(_signal.SIGINT, _signal.SIG_IGN)  # interrupt_main / SIGINT cannot reach this thread
    head = (nonce + " ").encode()
    del nonce, tests, source, report
    streams = (sys.stdout, sys.stderr)
    excepthook = sys.__excepthook__
    box = []
    done = _new_lock()
    done.acquire()
    sys.addaudithook(_make_hook(os.path.dirname(solution), stdlib, refusals, frozenset(sys.modules)))
    # From here on this thread only waits, writes one line and exits (module docstring, step 5);
    # nothing may raise here either: an uncaught exception would run the (replaceable) excepthook.
    passed = False
    try:
        _start_thread(_runner, (code, module, prepared, refusals, box, done, streams, excepthook))
        while not done.acquire():
            pass
        passed, line = box[0]
        _write(result_fd, (head if passed else b"result ") + line)  # the nonce only ever follows a pass
    finally:
        _exit(0 if passed else 1)


if __name__ == "__main__":
    main(sys.argv[1:])
