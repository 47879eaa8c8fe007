"""The `openai` engine's client: schedules the samples of a `generate` call over HTTP.

- One streamed HTTP request per (request, sample): the server batches as it sees fit, and
  streaming gives time to first token, the partial text short-m@k needs when it cancels a
  sample, and a per-chunk idle timeout (a hung server is noticed within `idle_timeout_s`).
- At most `concurrency` connections are open at once; a short-m@k group takes all its slots
  together, so its samples race, and the first m to finish cancel the others.
- Failed attempts are retried as `retry` decides; a sample that still fails is a completion
  with finish_reason "error".
- Cost is time-sharing: while k samples are in flight, each is charged 1/k of the wall time,
  so the costs of one `generate` call add up to the wall time it kept the server busy.
- The engine only sees text, never logits, so bf-cap, bf-wait and wait-penalty are refused
  up front instead of silently running a different method (`text_only`).
- Several base URLs form a fleet (`fleet`): each attempt goes to the endpoint with the fewest
  outstanding attempts, endpoints that stop answering are taken out and probed back in, and an
  attempt that failed on one endpoint is retried on another. One URL is a fleet of one, which
  always sends to its only server: the same behaviour as before fleets existed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import httpx

from ...reasoning import NONE, ReasoningFormat, template_kwargs
from ...types import Completion, OnComplete, Request
from ..text_only import unsupported
from . import fleet
from .retry import Retry, backoff_wait, failure_of, http_failure
from .stream import Parts, StreamError, StreamParser, build_parts


@dataclass(eq=False)
class _Sample:
    """One sample of one request, across its attempts."""

    index: int
    req: Request
    sample_id: int
    group: _Group | None = None
    task: asyncio.Task | None = None
    parser: StreamParser = field(default_factory=StreamParser)
    attempts: int = 0
    t_start: float = 0.0
    share0: float = 0.0
    ttft: float = 0.0
    cancel_requested: bool = False
    slot: bool = False  # holds a concurrency slot
    completion: Completion | None = None
    endpoint: fleet.Endpoint | None = None  # where the current attempt goes
    failed_on: fleet.Endpoint | None = None  # where the last attempt failed


@dataclass(eq=False)
class _Group:
    """The samples of a short-m@k request: once m have finished, the rest are cancelled."""

    m: int
    samples: list[_Sample]
    finished: int = 0


class OpenAIEngine:
    """Chat completions against an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        *,
        api_key: str | None = None,
        concurrency: int = 8,
        idle_timeout_s: float = 60.0,
        attempt_timeout_s: float = 600.0,
        max_retries: int = 5,
        backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        count_tokens: Callable[[str], int] | None = None,
        rng_seed: int = 0,
        extra_body: dict | None = None,
        fmt: ReasoningFormat = NONE,
        thinking: str = "auto",
        max_endpoint_failures: int = 3,
        probe_s: float = 5.0,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency: expected >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries: expected >= 0, got {max_retries}")
        urls = [base_url] if isinstance(base_url, str) else list(base_url)
        # the pool outlives generate calls: an endpoint found dead stays out for the next call
        self.pool = fleet.Pool.of(urls, max_endpoint_failures, probe_s)
        self.base_url = self.pool.endpoints[0].url
        self.model = model
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.concurrency = concurrency
        self.idle_timeout_s = idle_timeout_s
        self.attempt_timeout_s = attempt_timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.count_tokens = count_tokens
        self.rng = random.Random(rng_seed)
        # server-specific knobs sent with every request (e.g. llama-cpp-python applies
        # repeat_penalty 1.1 unless told otherwise, which changes even greedy output)
        self.extra_body = dict(extra_body or {})
        # how content without a server reasoning field splits (the model's own template, if known)
        self.fmt = fmt
        self.template_kwargs = template_kwargs(thinking)  # vLLM / SGLang: chat_template_kwargs
        self.retry_log: list[dict] = []  # retries of the last generate call
        self.token_count_source: str | None = None  # where the last completion's counts came from

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        """All completions in request order, each request's samples in `req.samples` order;
        `on_complete` fires once per sample as it finishes, is cancelled or finally fails.
        Raises ValueError before sending anything for requests this engine cannot serve."""
        self._validate(requests)
        self.retry_log = []
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._run(requests, on_complete))
        # called from async code: our own loop in a worker thread keeps generate() synchronous
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            return pool.submit(lambda: asyncio.run(self._run(requests, on_complete))).result()

    def _validate(self, requests: Sequence[Request]) -> None:
        for k, r in enumerate(requests):
            why = unsupported(r, "openai", say_what=True)
            if why:
                raise ValueError(f"request {k}: {why}")
            if r.stop_after is not None and len(r.samples) > self.concurrency:
                raise ValueError(
                    f"request {k}: stop_after needs all {len(r.samples)} samples in flight at once, "
                    f"but concurrency is {self.concurrency}"
                )

    async def _run(self, requests: Sequence[Request], on_complete: OnComplete | None) -> list[Completion]:
        self._on_complete = on_complete
        self._sem = asyncio.Semaphore(self.concurrency)
        self._gate = asyncio.Lock()
        self._inflight = 0
        self._share = 0.0  # integral of dt / (samples in flight): a sample's cost is its increase
        self._t_share = time.perf_counter()
        samples: list[_Sample] = []
        jobs = []
        timeout = httpx.Timeout(self.idle_timeout_s)
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=timeout, limits=limits, headers=self.headers) as client:
            self._client = client
            for k, req in enumerate(requests):
                group = [_Sample(k, req, i) for i in req.samples]
                samples.extend(group)
                if req.stop_after is not None:
                    jobs.append(self._run_group(_Group(req.stop_after, group)))
                else:
                    jobs.extend(self._run_sample(s) for s in group)
            await asyncio.gather(*jobs)
        out = [s.completion for s in samples]
        assert all(c is not None for c in out), "a sample got no completion"
        return out  # type: ignore[return-value]

    def _tick(self, delta: int) -> float:
        now = time.perf_counter()
        if self._inflight:
            self._share += (now - self._t_share) / self._inflight
        self._t_share = now
        self._inflight += delta
        return now

    def _start(self, s: _Sample) -> None:
        s.t_start = self._tick(+1)
        s.share0 = self._share
        s.slot = True

    async def _acquire(self, k: int) -> None:
        """Take k slots at once. The FIFO gate keeps a short-m@k group from interleaving with
        other requests: its samples all start together (they must race), without deadlock."""
        async with self._gate:
            for _ in range(k):
                await self._sem.acquire()

    def _release(self, s: _Sample) -> None:
        """Free the slot once the HTTP stream is closed (the completion is recorded a bit
        earlier), so the connections open at the server never outnumber `concurrency`."""
        if s.slot:
            s.slot = False
            self._sem.release()

    async def _run_group(self, g: _Group) -> None:
        await self._acquire(len(g.samples))
        for s in g.samples:
            s.group = g
            self._start(s)
            s.task = asyncio.ensure_future(self._attempts(s))
        results = await asyncio.gather(*(s.task for s in g.samples), return_exceptions=True)
        for s, r in zip(g.samples, results, strict=True):
            if isinstance(r, asyncio.CancelledError) and s.cancel_requested:
                self._finish(s, "cancelled")  # cancelled before its first step ran
            elif isinstance(r, BaseException):
                raise r
        for s in g.samples:
            self._release(s)

    async def _run_sample(self, s: _Sample) -> None:
        await self._acquire(1)
        self._start(s)
        await self._attempts(s)

    async def _attempts(self, s: _Sample) -> None:
        try:
            while True:
                s.attempts += 1
                s.parser = StreamParser()
                s.endpoint = ep = fleet.acquire(self.pool, time.perf_counter(), s.failed_on)
                t0, outcome = time.perf_counter(), "cancelled"
                try:
                    await asyncio.wait_for(self._attempt(s), self.attempt_timeout_s)
                    outcome = "ok"
                    return
                except Exception as e:
                    failure = failure_of(e, self.attempt_timeout_s)
                    if failure is None:
                        raise
                    outcome = "connection" if _connection_failure(e) else "http"
                    s.failed_on = ep
                finally:
                    now = time.perf_counter()
                    fleet.release(self.pool, ep, now, outcome, now - t0)
                if not isinstance(failure, Retry):
                    return self._finish(s, "error", f"{failure} (not retryable)")
                s.parser = StreamParser()  # a failed attempt's partial output is discarded
                if s.attempts > self.max_retries:
                    return self._finish(s, "error", f"{failure.reason} after {s.attempts} attempts")
                wait = backoff_wait(s.attempts, failure, self.rng, self.backoff_s, self.max_backoff_s)
                log = {"request": s.index, "sample": s.sample_id, "attempt": s.attempts}
                if len(self.pool.endpoints) > 1:
                    log["endpoint"] = ep.url
                self.retry_log.append({**log, "reason": failure.reason, "wait_s": wait})
                await asyncio.sleep(wait)
        except asyncio.CancelledError:
            if not s.cancel_requested:
                raise
            task = asyncio.current_task()
            if task is not None and hasattr(task, "uncancel"):
                task.uncancel()  # we asked for it (short-m@k): the sample ends normally
            self._finish(s, "cancelled")
        finally:
            self._release(s)

    def _body(self, s: _Sample) -> dict:
        r = s.req
        messages, tools = wire_messages(r.prompt_messages)
        body = {
            "model": self.model,
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": r.max_new_tokens,
            "temperature": r.temperature,
            "top_p": r.top_p,
            "seed": r.seed * 1_000_003 + s.sample_id,  # as the hf engine: (seed, sample id) alone
            "logprobs": True,
        }
        if r.stop:
            body["stop"] = list(r.stop)
        if tools:
            body["tools"] = tools
        if self.template_kwargs:
            body["chat_template_kwargs"] = dict(self.template_kwargs)
        return body | self.extra_body

    async def _attempt(self, s: _Sample) -> None:
        t_send = time.perf_counter()
        s.ttft = 0.0
        assert s.endpoint is not None
        url = f"{s.endpoint.url}/chat/completions"
        async with self._client.stream("POST", url, json=self._body(s)) as resp:
            if resp.status_code != 200:
                body = (await resp.aread()).decode("utf-8", "replace")
                raise http_failure(resp.status_code, body, resp.headers.get("retry-after"))
            try:
                async for line in resp.aiter_lines():
                    if s.parser.feed_line(line) and not s.ttft:
                        s.ttft = time.perf_counter() - t_send
                    if s.parser.done:
                        break
                s.parser.close()
            except StreamError as e:
                raise _retry(str(e), cut=str(e).startswith("truncated")) from None
            except httpx.TransportError as e:
                if isinstance(e, httpx.TimeoutException):
                    raise
                raise _retry(f"truncated stream ({type(e).__name__})", cut=True) from None
            # finish before leaving the stream context: closing it awaits, and a short-m@k cancel
            # landing there must not turn a finished sample into a cancelled one
            fr = s.parser.finish_reason
            self._finish(s, fr if fr in ("stop", "length") else "stop")

    def _finish(self, s: _Sample, finish: str, error: str | None = None) -> None:
        """Record a sample's one completion (idempotent) and charge its cost."""
        if s.completion is not None:
            return
        now = self._tick(-1)
        cost = self._share - s.share0
        if finish == "error":
            s.parser, s.ttft = StreamParser(), 0.0
            parts = Parts("", "", "", False, 0, 0, 0, "none", self.fmt.kind)
        else:
            parts = build_parts(s.parser, finish, self.count_tokens, self.fmt, s.req.answer_marker)
            self.token_count_source = parts.source
        fields = {k: v for k, v in vars(parts).items() if k != "source"}
        s.completion = Completion(
            **fields,
            answer_tokens=parts.completion_tokens - parts.reasoning_tokens,
            finish_reason=finish,
            latency_s=now - s.t_start,
            ttft_s=s.ttft,
            cost_s=cost,
            logprobs=list(s.parser.logprobs) or None,
            error=error,
            attempts=s.attempts,
            token_source=parts.source,
        )
        g = s.group
        if g is not None and finish in ("stop", "length"):
            g.finished += 1
            if g.finished >= g.m:
                for other in g.samples:
                    if other.completion is None and other.task is not None and not other.cancel_requested:
                        other.cancel_requested = True
                        other.task.cancel()
        if self._on_complete is not None:
            self._on_complete(s.index, s.sample_id, s.completion)

    def endpoint_stats(self) -> dict[str, dict]:
        """Per-endpoint attempts, outcomes and latency since this engine was made."""
        return self.pool.stats()

    def close(self) -> None:
        """Nothing to release: each generate call opens and closes its own connection pool."""


_CALL_BLOCK = re.compile(r"<tool_call>.*?(?:</tool_call>|$)", re.S)


def wire_messages(messages: list[dict]) -> tuple[list[dict], list[dict] | None]:
    """Prompt messages in the chat-completions wire form, and the tools they carry: the
    schemas leave the messages for the request's `tools` field; an assistant turn that called
    tools sends them as structured `tool_calls`, its content without the `<tool_call>` blocks
    this engine wrote for them (`stream.tool_call_text`); a tool result keeps its call id."""
    tools = None
    out = []
    for m in messages:
        if m.get("tools") and tools is None:
            tools = list(m["tools"])
        m = {k: v for k, v in m.items() if k != "tools"}
        if m.get("role") == "assistant" and m.get("tool_calls"):
            m["content"] = _CALL_BLOCK.sub("", m.get("content") or "").strip() or None
        elif m.get("role") == "tool":
            m = {k: v for k, v in m.items() if k in ("role", "content", "tool_call_id")}
        out.append(m)
    return out, tools


def _retry(reason: str, cut: bool) -> Retry:
    """A retryable failure; `cut`: the connection broke (counts against the endpoint's health)."""
    r = Retry(reason)
    r.connection = cut  # type: ignore[attr-defined]
    return r


def _connection_failure(e: Exception) -> bool:
    """No answer, or one cut short: the endpoint may be down. An HTTP status or a garbled but
    complete stream proves the server is up (`fleet.release`)."""
    if isinstance(e, Retry):
        return bool(getattr(e, "connection", False))
    return isinstance(e, (httpx.TransportError, asyncio.TimeoutError))
