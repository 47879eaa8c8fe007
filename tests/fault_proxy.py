"""A fault-injecting HTTP/1.1 proxy for testing clients of an OpenAI-compatible server.

    from fault_proxy import FaultProxy

    with FaultProxy(upstream_base_url, ["500", None, "reset"]) as proxy:
        engine = OpenAIEngine(proxy.base_url, ...)   # POST k gets plan[k]; later ones pass
        ...
    proxy.log, proxy.max_inflight

`plan` maps the k-th incoming POST (0-based, arrival order) to a fault or None (pass
through): a list (None past its end) or a callable k -> fault. GETs pass through uncounted.

Faults:
- "delay:S"    hold the request S seconds, then forward it; a client that gives up first
               (its timeout) is noticed and the request is never forwarded
- "500"        answer 500 with a JSON error body
- "429:RA"     answer 429 with `Retry-After: RA`
- "404", ...   any other status code (":RA" adds a Retry-After), with a JSON error body
- "reset"      read the request, then abort the connection with an RST (SO_LINGER 0)
- "truncate"   forward, but end the body after its first two SSE events (a clean close:
               the client sees a stream without finish_reason or [DONE])
- "malformed"  200 text/event-stream whose data line is not JSON, then close

Every answer carries `Connection: close` and a close-delimited body, so each request comes on
a fresh connection and a truncated body is not also a broken chunked encoding. The upstream
response is streamed through as it arrives. When the client goes away (closes its end), the
upstream request is cancelled, so the server does not keep decoding for nobody.

The proxy runs an asyncio server in a background thread with its own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
import threading
from collections.abc import Callable, Sequence
from http import HTTPStatus
from urllib.parse import urlsplit

import httpx

Plan = Callable[[int], "str | None"] | Sequence["str | None"]
HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "host",
    "proxy-connection",
    "te",
    "upgrade",
}


class FaultProxy:
    def __init__(self, upstream_base: str, plan: Plan = ()) -> None:
        u = urlsplit(upstream_base)
        self.upstream_origin = f"{u.scheme}://{u.netloc}"
        self.prefix = u.path.rstrip("/")
        self.plan = plan
        self.log: list[dict] = []  # one entry per incoming request, in arrival order
        self.inflight = 0
        self.max_inflight = 0  # most POSTs open at the same time
        self.posts = 0
        self.base_url = ""
        self._tasks: set[asyncio.Task] = set()

    def fault_for(self, k: int) -> str | None:
        if callable(self.plan):
            return self.plan(k)
        return self.plan[k] if k < len(self.plan) else None

    # --- lifecycle -----------------------------------------------------------------------------

    def __enter__(self) -> FaultProxy:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=10)
        return self

    def __exit__(self, *exc) -> None:
        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _start(self) -> None:
        self._client = httpx.AsyncClient(timeout=httpx.Timeout(300.0))
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.base_url = f"http://127.0.0.1:{port}{self.prefix}"

    async def _stop(self) -> None:
        self._server.close()
        for t in list(self._tasks):
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    # --- one connection ------------------------------------------------------------------------

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        entry: dict = {}
        try:
            method, path, headers, body = await _read_request(reader)
            entry.update(method=method, path=path, index=None, fault=None, outcome="")
            self.log.append(entry)
            if method != "POST":
                await self._forward(reader, writer, method, path, headers, body, entry)
                return
            entry["index"] = k = self.posts
            self.posts += 1
            entry["fault"] = fault = self.fault_for(k)
            self.inflight += 1
            self.max_inflight = max(self.max_inflight, self.inflight)
            entry["open"] = True
            try:
                await self._post(reader, writer, method, path, headers, body, fault, entry)
            finally:
                self._closed(entry)
        except (asyncio.IncompleteReadError, ConnectionError):
            entry["outcome"] = entry.get("outcome") or "client gone"
        except asyncio.CancelledError:  # the proxy is shutting down
            entry["outcome"] = entry.get("outcome") or "proxy stopped"
        except Exception as e:  # upstream down, bad request line: recorded, connection closed
            entry["outcome"] = f"proxy error: {e!r}"
        finally:
            self._tasks.discard(task)
            if not writer.transport.is_closing():
                writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _closed(self, entry: dict) -> None:
        """A POST stops counting as in flight the moment the client closes its end (seen in
        the same loop step as its EOF, before a follow-up connection can be read) or its
        answer is complete."""
        if entry.pop("open", False):
            self.inflight -= 1

    async def _post(self, reader, writer, method, path, headers, body, fault, entry) -> None:
        kind, _, arg = (fault or "").partition(":")
        if not fault:
            await self._forward(reader, writer, method, path, headers, body, entry)
        elif kind == "delay":
            if await _client_gone(reader, float(arg), lambda: self._closed(entry)):
                entry["outcome"] = "client gone"
                return
            await self._forward(reader, writer, method, path, headers, body, entry)
        elif kind.isdigit():  # "500", "429:RA", any other status
            msg = {"error": {"message": f"injected fault {kind}"}}
            _respond(
                writer, int(kind), HTTPStatus(int(kind)).phrase, {"Retry-After": arg} if arg else {}, msg
            )
            entry["outcome"] = f"injected {kind}"
        elif kind == "reset":
            sock = writer.get_extra_info("socket")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
            entry["outcome"] = "reset"
        elif kind == "truncate":
            await self._forward(reader, writer, method, path, headers, body, entry, max_events=2)
        elif kind == "malformed":
            writer.write(_head(200, "OK", {"Content-Type": "text/event-stream"}))
            writer.write(b'data: {"choices": [{"delta": {"content": "x"\n\n')
            entry["outcome"] = "malformed"
        else:
            raise ValueError(f"unknown fault {fault!r}")
        await writer.drain()

    async def _forward(self, reader, writer, method, path, headers, body, entry, max_events=None) -> None:
        """Stream the upstream answer through; stop early when the client closes its end."""
        fwd = asyncio.ensure_future(self._pipe(writer, method, path, headers, body, entry, max_events))
        gone = asyncio.ensure_future(_eof(reader, lambda: self._closed(entry)))
        try:
            await asyncio.wait({fwd, gone}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for t in (fwd, gone):
                t.cancel()
            await asyncio.gather(fwd, gone, return_exceptions=True)
        if fwd.cancelled() or not fwd.done():
            entry["outcome"] = "client gone"
        elif fwd.exception() is not None:
            raise fwd.exception()  # type: ignore[misc]

    async def _pipe(self, writer, method, path, headers, body, entry, max_events) -> None:
        fwd_headers = {k: v for k, v in headers.items() if k.lower() not in HOP}
        url = self.upstream_origin + path
        async with self._client.stream(method, url, headers=fwd_headers, content=body) as resp:
            out = {k: v for k, v in resp.headers.items() if k.lower() not in HOP}
            writer.write(_head(resp.status_code, resp.reason_phrase, out))
            entry["status"] = resp.status_code
            seen = b""
            async for chunk in resp.aiter_raw():
                if max_events is not None:
                    seen += chunk
                    parts = seen.split(b"\n\n")
                    if len(parts) > max_events:
                        writer.write(chunk[: len(chunk) - len(b"\n\n".join(parts[max_events:]))])
                        await writer.drain()
                        entry["outcome"] = f"truncated after {max_events} events"
                        return
                writer.write(chunk)
                await writer.drain()
        entry["outcome"] = "forwarded"


async def _read_request(reader: asyncio.StreamReader) -> tuple[str, str, dict[str, str], bytes]:
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    lines = head.split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip()] = v.strip()
    n = int(next((v for k, v in headers.items() if k.lower() == "content-length"), "0"))
    body = await reader.readexactly(n) if n else b""
    return method, path, headers, body


async def _eof(reader: asyncio.StreamReader, on_eof: Callable[[], None]) -> None:
    """Returns when the client closes its end (it sends nothing after its request)."""
    while await reader.read(4096):
        pass
    on_eof()


async def _client_gone(reader: asyncio.StreamReader, wait_s: float, on_eof: Callable[[], None]) -> bool:
    """Wait up to `wait_s`; True as soon as the client closes its end."""
    try:
        await asyncio.wait_for(_eof(reader, on_eof), wait_s)
    except asyncio.TimeoutError:
        return False
    return True


def _head(status: int, reason: str, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", *(f"{k}: {v}" for k, v in headers.items()), "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _respond(writer: asyncio.StreamWriter, status: int, reason: str, headers: dict[str, str], obj) -> None:
    body = json.dumps(obj).encode()
    h = {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers}
    writer.write(_head(status, reason, h) + body)
