"""The code sandbox: escapes must fail and be recorded, and the test run must never crash or hang.

Escape tests run twice: with the isolation layers this machine grants (namespaces where the
kernel allows them) and with the portable fallback (socket-block, Python guard, process-group
kill plus token sweep), forced by replacing the probed layers.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path

import pytest

from thinkcost import sandbox
from thinkcost.sandbox import Layers, check_program, classify, launch, probe, run_many, run_python
from thinkcost.verify.code import extract_code, verify_code


@pytest.fixture(params=["detected", "fallback"])
def mode(request, monkeypatch) -> str:
    """Run a test under the probed layers, then under none of the kernel layers."""
    if request.param == "fallback":
        monkeypatch.setattr(probe, "layers", lambda: Layers())
    return request.param


def _needs(layer: str) -> None:
    if not getattr(probe.layers(), layer):
        pytest.skip(f"{layer} is not available on this machine")


def _cwd_of(result) -> Path:
    """The sandbox directory a program printed as 'CWD <path>'."""
    line = next(x for x in result.stdout_tail.splitlines() if x.startswith("CWD "))
    return Path(line[4:])


# ----------------------------------------------------------------------------- outcomes


def test_passing_program_reports_stdout_and_isolation():
    r = run_python("import os\nprint('CWD', os.getcwd())\nprint('hello')", timeout_s=2)
    assert r.status == "passed" and r.returncode == 0
    assert "hello" in r.stdout_tail
    assert "rlimits" in r.isolation and "pyguard" in r.isolation
    assert not _cwd_of(r).exists()  # the temp dir is removed after the run


def test_failing_assertion_is_failed_with_stderr_tail():
    r = run_python("def f():\n    return 1\nassert f() == 2, 'wrong answer'", timeout_s=2)
    assert r.status == "failed" and r.returncode == 1
    assert "AssertionError: wrong answer" in r.stderr_tail


def test_syntax_error_is_a_crash():
    r = run_python("def broken(:\n    pass", timeout_s=2)
    assert r.status == "crash"
    assert "SyntaxError" in r.stderr_tail


def test_other_exception_is_a_crash_and_plain_nonzero_exit_is_failed():
    assert run_python("raise ValueError('x')", timeout_s=2).status == "crash"
    r = run_python("import sys\nsys.exit(3)", timeout_s=2)
    assert (r.status, r.returncode) == ("failed", 3)


def test_infinite_loop_times_out_and_temp_dir_is_removed():
    r = run_python("import os\nprint('CWD', os.getcwd(), flush=True)\nwhile True:\n    pass", timeout_s=1)
    assert r.status == "timeout"
    assert not _cwd_of(r).exists()


def test_crash_still_removes_temp_dir():
    prog = "import os, signal\nprint('CWD', os.getcwd(), flush=True)\nos.kill(os.getpid(), signal.SIGSEGV)"
    r = run_python(prog, timeout_s=2)
    assert r.status == "crash" and r.returncode == -signal.SIGSEGV
    assert not _cwd_of(r).exists()


@pytest.mark.parametrize(
    "prog",
    ["x = bytearray(2 * 1024**3)", "chunks = []\nwhile True:\n    chunks.append(bytearray(10**6))"],
    ids=["one-block", "gradual"],
)
def test_allocating_past_the_limit_is_memory(prog):
    r = run_python(prog, timeout_s=5, memory_mb=256)
    assert r.status == "memory", r.stderr_tail


def test_file_size_is_bounded():
    prog = f"with open('big', 'wb') as f:\n    f.write(b'x' * ({sandbox.FILE_LIMIT_MB} + 1) * 2**20)"
    r = run_python(prog, timeout_s=5)
    assert r.status == "crash" and "File too large" in r.stderr_tail


def test_environment_is_minimal(monkeypatch):
    monkeypatch.setenv("THINKCOST_TEST_SECRET", "hunter2")
    r = run_python("import os\nprint(sorted(os.environ))\nprint(os.environ['HOME'] == os.getcwd())")
    assert "THINKCOST_TEST_SECRET" not in r.stdout_tail
    assert r.stdout_tail.splitlines()[-1] == "True"


def test_setup_failure_is_an_error_result_not_an_exception(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no space left")

    monkeypatch.setattr(launch.tempfile, "mkdtemp", broken)
    r = run_python("print(1)")
    assert r.status == "error" and "no space left" in r.stderr_tail


# ----------------------------------------------------------------------------- escapes


def test_write_outside_is_refused(mode, tmp_path):
    targets = [tmp_path / "escaped.txt", tmp_path / "newdir" / "sub"]
    prog = (
        "import os, sys\nerrors = 0\n"
        f"try:\n    open({str(targets[0])!r}, 'w').write('pwned')\nexcept PermissionError:\n    errors += 1\n"
        f"try:\n    os.makedirs({str(targets[1])!r})\nexcept PermissionError:\n    errors += 1\n"
        "print('REFUSED', errors)\nopen('inside.txt', 'w').write('fine')\n"
    )
    r = run_python(prog, timeout_s=2)
    assert r.status == "passed", r.stderr_tail
    assert "REFUSED 2" in r.stdout_tail
    assert not targets[0].exists() and not (tmp_path / "newdir").exists()


def test_delete_outside_is_refused(mode, tmp_path):
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "leaf").write_text("x")
    prog = (
        "import os, shutil\n"
        f"os.remove({str(sentinel)!r})\n"  # raises PermissionError: the run crashes here
    )
    assert run_python(prog, timeout_s=2).status == "crash"
    for call in (f"shutil.rmtree({str(tree)!r})", f"os.rename({str(sentinel)!r}, 'stolen')"):
        r = run_python(f"import os, shutil\n{call}", timeout_s=2)
        assert r.status == "crash" and "PermissionError" in r.stderr_tail
    assert sentinel.read_text() == "keep me"
    assert (tree / "sub" / "leaf").exists()


def test_kernel_refuses_outside_writes_that_bypass_the_python_guard(tmp_path):
    """ctypes skips the Python guard; the read-only mount namespace must still hold."""
    _needs("mntns")
    sentinel = tmp_path / "sentinel.txt"
    sentinel.write_text("keep me")
    target = tmp_path / "escaped.txt"
    prog = (
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"fd = libc.open({str(target).encode()!r}, os.O_CREAT | os.O_WRONLY, 0o600)\n"
        f"rc = libc.unlink({str(sentinel).encode()!r})\n"
        "print('RESULT', fd, rc, ctypes.get_errno())\n"
    )
    r = run_python(prog, timeout_s=2)
    assert r.status == "passed", r.stderr_tail
    assert "RESULT -1 -1" in r.stdout_tail
    assert not target.exists() and sentinel.read_text() == "keep me"


def test_child_has_no_capabilities_and_its_own_pid_namespace():
    _needs("nocaps")
    _needs("pidns")
    prog = (
        "import os\nstatus = open('/proc/self/status').read().splitlines()\n"
        "print([l.split()[1] for l in status if l.startswith('CapEff')][0], os.getpid())\n"
    )
    r = run_python(prog, timeout_s=2)
    assert r.stdout_tail.split() == ["0000000000000000", "2"]


def test_loopback_connection_fails(mode):
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(5)
        server.setblocking(False)
        port = server.getsockname()[1]
        prog = (
            "import socket\n"
            f"s = socket.create_connection(('127.0.0.1', {port}), timeout=1)\n"
            "s.sendall(b'hello')\nprint('CONNECTED')\n"
        )
        r = run_python(prog, timeout_s=2)
        assert r.status == "crash" and "CONNECTED" not in r.stdout_tail
        expected = "netns" if mode == "detected" and probe.layers().netns else "socket-block"
        assert expected in r.isolation
        with pytest.raises(BlockingIOError):  # the handshake would have completed before the exit
            server.accept()
    finally:
        server.close()


def test_signalling_the_caller_is_refused(monkeypatch):
    """Without a PID namespace the caller is visible (same uid); the guard refuses to signal it."""
    monkeypatch.setattr(probe, "layers", lambda: Layers())
    prog = "import os\ntry:\n    os.kill(os.getppid(), 0)\nexcept PermissionError:\n    print('REFUSED')\n"
    r = run_python(prog, timeout_s=2)
    assert r.status == "passed" and "REFUSED" in r.stdout_tail


_DAEMON = """
import os, time
r, w = os.pipe()
if os.fork() == 0:
    os.setsid()  # leaves the process group: a killpg alone would miss it
    if os.fork() == 0:
        start = open("/proc/self/stat").read().rsplit(")", 1)[1].split()[19]
        os.write(w, (os.readlink("/proc/self") + " " + start).encode())
        time.sleep(60)
    os._exit(0)
os.close(w)
print("GRANDCHILD", os.read(r, 64).decode(), flush=True)
"""


def _still_running(pid: int, start: str) -> bool:
    """The same process (pid and start time) is alive and not a zombie."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return fields[19] == start and fields[0] not in ("Z", "X")


def test_daemonised_grandchild_is_killed(mode):
    r = run_python(_DAEMON, timeout_s=2)
    assert r.status == "passed", r.stderr_tail
    line = next(x for x in r.stdout_tail.splitlines() if x.startswith("GRANDCHILD"))
    pid, start = int(line.split()[1]), line.split()[2]
    for _ in range(200):  # bounded: SIGKILL delivery is asynchronous, normally already done
        if not _still_running(pid, start):
            break
        time.sleep(0.01)
    else:
        os.kill(pid, signal.SIGKILL)
        pytest.fail(f"grandchild {pid} outlived the run")


def test_max_procs_caps_forks():
    if not probe.layers().pids_cgroup:
        pytest.skip("no pids cgroup on this machine")
    prog = (
        "import os\nmade = 0\nfor _ in range(20):\n    try:\n        pid = os.fork()\n"
        "    except BlockingIOError:\n        break\n    if pid == 0:\n        os.read(os.pipe()[0], 1)\n"
        "    made += 1\nprint('FORKED', made)\n"
    )
    r = run_python(prog, timeout_s=2, max_procs=6)
    assert r.status == "passed" and "pids-cgroup" in r.isolation
    assert int(r.stdout_tail.split()[-1]) < 20


# ----------------------------------------------------------------------------- pool, classify


def test_run_many_keeps_input_order():
    programs = [f"import time\ntime.sleep({0.05 * (5 - i)})\nprint({i})" for i in range(6)]
    programs[2] = "assert False"
    results = run_many(programs, workers=2, timeout_s=2)
    assert [r.status for r in results] == ["passed", "passed", "failed", "passed", "passed", "passed"]
    assert [r.stdout_tail.strip() for r in results if r.status == "passed"] == ["0", "1", "3", "4", "5"]


@pytest.mark.parametrize(
    ("returncode", "timed_out", "stderr", "maxrss_kb", "expected"),
    [
        (0, False, "", 0, "passed"),
        (-9, True, "", 0, "timeout"),
        (-signal.SIGXCPU, False, "", 0, "timeout"),
        (-9, False, "", 200 * 1024, "memory"),
        (-11, False, "", 10 * 1024, "crash"),
        (1, False, "Traceback (most recent call last):\n  File 'x'\nMemoryError", 0, "memory"),
        (1, False, "Traceback (most recent call last):\n  File 'x'\nAssertionError: a\nmore", 0, "failed"),
        (1, False, "Traceback (most recent call last):\n  File 'x'\nKeyError: 'k'", 0, "crash"),
        (1, False, "FAILED (failures=1)", 0, "failed"),
        (None, False, "", 0, "error"),
    ],
)
def test_classify(returncode, timed_out, stderr, maxrss_kb, expected):
    assert classify(returncode, timed_out, stderr, maxrss_kb, memory_mb=256) == expected


# ----------------------------------------------------------------------------- extraction, verdicts


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Try:\n```python\na = 1\n```\nBetter:\n```python\na = 2\n```\nDone.", "a = 2\n"),
        ("```py\nx = 1\n```\n```\nplain = 1\n```", "x = 1\n"),
        ("```Python3\nx = 3\n```", "x = 3\n"),
        ("```\nplain = 1\n```", "plain = 1\n"),
        ("```bash\nls\n```", None),
        ("Here it is:\n```python\ndef f():\n    return 1\n", "def f():\n    return 1\n"),
        ("```python\nx = 1```", "x = 1\n"),
        ("no code at all", None),
        ("```python\n\n```", None),
    ],
    ids=[
        "last-of-several",
        "tag-beats-untagged",
        "tag-case",
        "untagged",
        "other-language",
        "unterminated",
        "same-line-close",
        "none",
        "empty",
    ],
)
def test_extract_code(text, expected):
    assert extract_code(text) == expected


_HUMANEVAL_TESTS = """
def check(candidate):
    assert candidate(2, 3) == 5
    assert candidate(-1, 1) == 0
"""


def test_verify_code_humaneval_style():
    right = verify_code(
        "Sure:\n```python\ndef add(a, b):\n    return a + b\n```", _HUMANEVAL_TESTS, "add", timeout_s=2
    )
    assert right.correct and right.rule == "fenced" and right.detail.startswith("passed")
    wrong = verify_code(
        "```python\ndef add(a, b):\n    return a - b\n```", _HUMANEVAL_TESTS, "add", timeout_s=2
    )
    assert not wrong.correct and wrong.detail.startswith("failed") and "AssertionError" in wrong.detail
    raw = verify_code("def add(a, b):\n    return a + b\n", _HUMANEVAL_TESTS, "add", timeout_s=2)
    assert raw.correct and raw.rule == "raw"
    prose = verify_code("I think the answer is to add them.", _HUMANEVAL_TESTS, "add")
    assert (prose.correct, prose.extracted, prose.rule) == (False, None, "none")


def test_check_program_rejects_a_bad_entry_point():
    r = check_program("x = 1", "", entry_point="os.system('ls')")
    assert r.status == "error"


def test_a_signal_death_is_not_blamed_on_memory_the_child_inherited_from_its_parent():
    """A child forked from a big parent starts with the parent's resident pages, and Linux keeps
    that peak across exec: only growth beyond the parent's peak counts as evidence."""
    seg = -signal.SIGSEGV
    assert classify(seg, False, "", maxrss_kb=600_000, memory_mb=256, inherited_kb=800_000) == "crash"
    assert classify(seg, False, "", maxrss_kb=900_000, memory_mb=256, inherited_kb=800_000) == "memory"
    assert classify(seg, False, "", maxrss_kb=200_000, memory_mb=256, inherited_kb=10_000) == "memory"
