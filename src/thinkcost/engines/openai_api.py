"""The `openai` engine: any OpenAI-compatible chat-completions server (vLLM, llama.cpp,
llama-cpp-python, SGLang, hosted APIs) over HTTP.

Design decisions:

- One streamed HTTP request per (request, sample): the server batches as it sees fit, and
  streaming gives time to first token, the partial text short-m@k needs when it cancels a
  sample, and a per-chunk idle timeout (a hung server is noticed within `idle_timeout_s`).
- Servers fail in many small ways (429, 5xx, resets, streams cut short, garbage lines), so
  every attempt either yields a whole, well-terminated stream or is retried from scratch with
  full-jitter backoff; a sample that still fails comes back with finish_reason "error", never
  dropped, so a benchmark run does not die with one flaky request and a rerun can redraw it.
- Cost is time-sharing: while k samples are in flight, each is charged 1/k of the wall time,
  so the costs of one `generate` call add up to the wall time it kept the server busy.
- The engine only sees text, never logits, so bf-cap, bf-wait and wait-penalty are refused
  up front instead of silently running a different method.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import random
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
from rich.markup import escape

from ..errors import UserError
from ..reasoning import (
    NONE,
    THINK_CLOSE,
    THINK_OPEN,
    ReasoningFormat,
    detect_format,
    format_of,
    template_kwargs,
)
from ..types import Completion, OnComplete, Request


class StreamError(Exception):
    """A stream that cannot be trusted (truncated, malformed, server error): retry it."""


class StreamParser:
    """Incremental parser of one SSE chat-completions stream. Pure (no I/O, no clock), so
    every server quirk it handles is unit tested on literal lines."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.finish_reason: str | None = None
        self.usage: dict | None = None
        self.logprobs: list[float] = []
        # (token text or None, logprob, from a reasoning-only chunk?) per logprob entry: lets the
        # answer's own logprobs be found by character position
        self.logprob_tokens: list[tuple[str | None, float, bool]] = []
        self.deltas = 0  # non-empty content/reasoning deltas (~ tokens on llama.cpp, vLLM)
        self.reasoning_deltas = 0
        self.done = False  # saw `data: [DONE]`
        self._data: list[str] = []

    def feed_line(self, line: str) -> bool:
        """Feed one line (without its newline); True when it completed a non-empty delta."""
        line = line.rstrip("\r")
        if self.done:
            return False
        if not line:  # end of an SSE event: whatever is still pending never parsed
            if self._data:
                raise StreamError(f"malformed JSON in stream: {_excerpt(chr(10).join(self._data))}")
            return False
        if not line.startswith("data:"):
            return False  # comments (":"), "event:", "id:", "retry:"
        value = line[5:]
        self._data.append(value[1:] if value.startswith(" ") else value)
        data = "\n".join(self._data)
        if data.strip() == "[DONE]":
            self._data, self.done = [], True
            return False
        try:  # servers send one object per data line; a multi-line event parses once whole
            obj = json.loads(data)
        except ValueError:
            return False
        self._data = []
        if not isinstance(obj, dict):
            raise StreamError(f"malformed JSON in stream: {_excerpt(data)}")
        return self.feed_chunk(obj)

    def feed_chunk(self, obj: dict) -> bool:
        if obj.get("error"):
            err = obj["error"]
            msg = err.get("message", err) if isinstance(err, dict) else err
            raise StreamError(f"error in stream: {_excerpt(str(msg))}")
        if obj.get("usage"):
            self.usage = obj["usage"]
        choices = obj.get("choices") or []
        if not choices:
            return False
        choice = choices[0]
        delta = choice.get("delta") or {}
        c = delta.get("content") or ""
        r = delta.get("reasoning_content") or delta.get("reasoning") or ""
        self.content.append(c)
        self.reasoning.append(r)
        lp = choice.get("logprobs") or {}
        entries = [t for t in lp.get("content") or () if isinstance(t, dict) and "logprob" in t]
        self.logprobs.extend(t["logprob"] for t in entries)
        in_reasoning = bool(r) and not c
        self.logprob_tokens.extend(
            (t["token"] if isinstance(t.get("token"), str) else None, t["logprob"], in_reasoning)
            for t in entries
        )
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        if c or r:
            self.deltas += 1
            self.reasoning_deltas += bool(r) and not c
            return True
        return False

    def close(self) -> None:
        """The body ended: reject a stream that did not end properly."""
        if self._data and not self.done:
            raise StreamError(f"malformed JSON in stream: {_excerpt(chr(10).join(self._data))}")
        if self.finish_reason is None or not self.done:
            raise StreamError("truncated stream")


def _excerpt(s: str, n: int = 160) -> str:
    s = " ".join(s.split())
    return s if len(s) <= n else s[:n] + "..."


@dataclass
class Parts:
    """What one sample produced, split and counted; `source` says where the counts came from."""

    text: str
    reasoning_text: str
    answer_text: str
    think_unclosed: bool
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    source: str  # "tokenizer" | "usage" | "deltas"
    reasoning_format: str = "none"
    answer_logprobs: list[float] | None = None


def build_parts(
    p: StreamParser,
    finish: str,
    count_tokens: Callable[[str], int] | None = None,
    fallback: ReasoningFormat = NONE,
) -> Parts:
    """Text, split and token counts of one parsed stream (finish: our finish reason).

    A server-side reasoning field makes the row `server-field`: it is re-wrapped in think tags
    so that re-splitting the stored text gives the same parts; with no content yet after a cut
    (length, cancelled) the think block is left open, as the model never closed it. Without a
    field the content is split by `fallback`, the format detected from the model's own
    tokenizer and template when thinkcost can load them (else the `none` heuristic).

    Token counts prefer the model's own tokenizer (the same counts as every in-process
    engine), then the server's usage, then the streamed deltas (one token per delta on
    llama.cpp and vLLM). Last resort for the reasoning share without a reasoning field: the
    character share, round(completion_tokens * len(reasoning_text) / len(text)).
    """
    content, reasoning = "".join(p.content), "".join(p.reasoning)
    if reasoning:
        unclosed = not content and finish in ("length", "cancelled")
        text = THINK_OPEN + reasoning + ("" if unclosed else THINK_CLOSE + content)
        fmt = format_of("server-field")
    else:
        text, fmt = content, fallback
    split = fmt.split(text, "length" if finish == "cancelled" else finish)
    usage = p.usage if finish != "cancelled" else None
    details = (usage or {}).get("completion_tokens_details") or {}
    if count_tokens is not None:
        completion, source = count_tokens(reasoning + content if reasoning else text), "tokenizer"
        think = count_tokens(split.reasoning) if split.reasoning else 0
        if split.think_unclosed:
            think = completion
    elif usage and usage.get("completion_tokens") is not None:
        completion, source = int(usage["completion_tokens"]), "usage"
        think = int(details["reasoning_tokens"]) if details.get("reasoning_tokens") is not None else None
    else:
        completion, source, think = p.deltas, "deltas", None
    if think is None:
        if reasoning:
            think = round(completion * p.reasoning_deltas / p.deltas) if p.deltas else 0
        else:
            think = round(completion * len(split.reasoning) / len(text)) if text else 0
    return Parts(
        text=text,
        reasoning_text=split.reasoning,
        answer_text=split.answer,
        think_unclosed=split.think_unclosed,
        prompt_tokens=int((p.usage or {}).get("prompt_tokens") or 0),
        completion_tokens=completion,
        reasoning_tokens=min(think, completion),
        source=source,
        reasoning_format=fmt.kind,
        answer_logprobs=_answer_logprobs(p, split.answer_start - (len(text) - len(content)), bool(reasoning)),
    )


def _answer_logprobs(p: StreamParser, answer_start: int, has_field: bool) -> list[float] | None:
    """Logprobs of the tokens of the answer, found by character position in the content (the
    answer starts `answer_start` characters into it). None when the server sent logprobs
    without token texts, so positions cannot be known."""
    entries = [(t, lp) for t, lp, in_reasoning in p.logprob_tokens if not (has_field and in_reasoning)]
    if not entries:
        return None
    if any(t is None for t, _ in entries):
        return None
    out, pos = [], 0
    for tok_text, lp in entries:
        end = pos + len(tok_text)
        if end > max(answer_start, 0) and tok_text.strip():
            out.append(lp)
        pos = end
    return out


class _Retry(Exception):
    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class _Fatal(Exception):
    pass


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:  # an HTTP date
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


@dataclass(eq=False)
class _Sample:
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


@dataclass(eq=False)
class _Group:
    m: int
    samples: list[_Sample]
    finished: int = 0


# (field, is it used, method, what this engine cannot do): refused, never silently ignored
_UNSUPPORTED = (
    ("think_budget", lambda r: r.think_budget is not None, "bf-cap", "force the end of thinking"),
    ("max_waits", lambda r: r.max_waits > 0, "bf-wait", "replace the end of thinking with 'Wait'"),
    ("penalty", lambda r: r.penalty > 0, "wait-penalty", "change the logits"),
)


class OpenAIEngine:
    """Chat completions against an OpenAI-compatible server (see the module docstring)."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
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
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"concurrency: expected >= 1, got {concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries: expected >= 0, got {max_retries}")
        self.base_url = base_url.rstrip("/")
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
            for name, used, method, why in _UNSUPPORTED:
                if used(r):
                    raise ValueError(
                        f"request {k}: Request.{name}: {method} needs an engine that controls decoding "
                        f"(hf or llamacpp); the openai engine cannot {why}"
                    )
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
                try:
                    await asyncio.wait_for(self._attempt(s), self.attempt_timeout_s)
                    return
                except _Fatal as e:
                    return self._finish(s, "error", f"{e} (not retryable)")
                except _Retry as e:
                    reason, retry_after = e.reason, e.retry_after
                except asyncio.TimeoutError:
                    reason, retry_after = f"attempt deadline of {self.attempt_timeout_s:g} s exceeded", None
                except httpx.TimeoutException as e:
                    reason, retry_after = f"timeout ({type(e).__name__})", None
                except (httpx.UnsupportedProtocol, httpx.InvalidURL) as e:
                    return self._finish(s, "error", f"{type(e).__name__}: {e} (not retryable)")
                except httpx.TransportError as e:
                    reason, retry_after = f"connection error ({type(e).__name__})", None
                s.parser = StreamParser()  # a failed attempt's partial output is discarded
                if s.attempts > self.max_retries:
                    return self._finish(s, "error", f"{reason} after {s.attempts} attempts")
                k = s.attempts - 1
                if retry_after is not None:
                    wait = min(retry_after, self.max_backoff_s)
                else:
                    wait = self.rng.uniform(0, min(self.max_backoff_s, self.backoff_s * 2**k))
                log = {"request": s.index, "sample": s.sample_id, "attempt": s.attempts}
                self.retry_log.append({**log, "reason": reason, "wait_s": wait})
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
        body = {
            "model": self.model,
            "messages": r.prompt_messages,
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
        if self.template_kwargs:
            body["chat_template_kwargs"] = dict(self.template_kwargs)
        return body | self.extra_body

    async def _attempt(self, s: _Sample) -> None:
        t_send = time.perf_counter()
        s.ttft = 0.0
        url = f"{self.base_url}/chat/completions"
        async with self._client.stream("POST", url, json=self._body(s)) as resp:
            if resp.status_code != 200:
                body = (await resp.aread()).decode("utf-8", "replace")
                try:
                    err = json.loads(body).get("error", body)
                    body = err.get("message", body) if isinstance(err, dict) else str(err)
                except (ValueError, AttributeError):
                    pass
                reason = f"HTTP {resp.status_code}: {_excerpt(body)}"
                if resp.status_code in (408, 429) or resp.status_code >= 500:
                    raise _Retry(reason, _retry_after(resp.headers.get("retry-after")))
                raise _Fatal(reason)
            try:
                async for line in resp.aiter_lines():
                    if s.parser.feed_line(line) and not s.ttft:
                        s.ttft = time.perf_counter() - t_send
                    if s.parser.done:
                        break
                s.parser.close()
            except StreamError as e:
                raise _Retry(str(e)) from None
            except httpx.TransportError as e:
                if isinstance(e, httpx.TimeoutException):
                    raise
                raise _Retry(f"truncated stream ({type(e).__name__})") from None
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
            parts = build_parts(s.parser, finish, self.count_tokens, self.fmt)
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

    def close(self) -> None:
        """Nothing to release: each generate call opens and closes its own connection pool."""


def list_models(base_url: str, api_key: str | None = None, timeout_s: float = 10.0) -> list[str]:
    """Model ids the server offers: a cheap check, before a run starts, that the URL points
    at an OpenAI-compatible server, with one clear line when it does not."""
    url = f"{base_url.rstrip('/')}/models"
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        resp = httpx.get(url, headers=headers, timeout=timeout_s)
    except httpx.HTTPError as e:
        raise UserError(
            f"cannot reach an OpenAI-compatible server at {url}: {type(e).__name__}: {e}"
        ) from None
    if resp.status_code != 200:
        raise UserError(f"{url} answered HTTP {resp.status_code}: {_excerpt(resp.text)}")
    try:
        data = resp.json()["data"]
        return [str(m["id"]) for m in data]
    except (ValueError, KeyError, TypeError):
        raise UserError(
            f"{url} did not answer like an OpenAI API (expected {{'data': [{{'id': ...}}]}}): "
            f"{_excerpt(resp.text)}"
        ) from None


def parse_stream(lines: Iterable[str]) -> StreamParser:
    """Parse a whole stream given as lines (tests, replay of recorded streams)."""
    p = StreamParser()
    for line in lines:
        p.feed_line(line)
    p.close()
    return p


class OpenAIBackend:
    """A model served over HTTP: `base` is the served `--model`, `served:NAME` another model on
    the same server (e.g. a quantized copy), so CTIR compares them like local variants.

    Token counts come from the model's own tokenizer when thinkcost can load it (`--tokenizer`,
    or `--model` itself when it names a packaged model, a .gguf or a local dir); otherwise from
    the server's usage figures or, failing those, its streamed deltas (recorded per variant)."""

    variants_help = "base (the served --model) or served:NAME (another model on the same server)"

    @staticmethod
    def check_variant(name: str) -> None:
        if name != "base" and not (name.startswith("served:") and len(name) > len("served:")):
            raise UserError(
                f"variant {name!r} cannot run on the openai engine: expected {OpenAIBackend.variants_help}"
            )

    def __init__(self, spec, source, task, console) -> None:
        import os

        self.spec = spec
        self.console = console
        self.api_key = None
        if spec.api_key_env:
            self.api_key = os.environ.get(spec.api_key_env)
            if not self.api_key:
                raise UserError(f"--api-key-env {spec.api_key_env}: that environment variable is not set")
        self.served = list_models(spec.base_url, self.api_key)
        self.count_tokens, self.tokenizer_source, tok = _token_counter(spec)
        # content without a server reasoning field splits by the model's own template, if known
        self.fmt = detect_format(tok, spec.thinking, label=spec.tokenizer or spec.model) if tok else NONE

    def prepare(self, variant: str, status: Callable[[str], None]) -> tuple[OpenAIEngine, dict]:
        model = self.spec.model if variant == "base" else variant[len("served:") :]
        if self.served and model not in self.served:
            listed = escape(f"{variant}: the server lists {', '.join(self.served[:5])}, not {model!r}")
            self.console.print(f"[yellow]{listed}; trying anyway[/]")
        eng = OpenAIEngine(
            self.spec.base_url,
            model,
            api_key=self.api_key,
            concurrency=self.spec.concurrency,
            idle_timeout_s=self.spec.request_timeout_s,
            attempt_timeout_s=max(600.0, self.spec.request_timeout_s * 5),
            max_retries=self.spec.max_retries,
            count_tokens=self.count_tokens,
            rng_seed=self.spec.seed,
            extra_body=self.spec.extra_body,
            fmt=self.fmt,
            thinking=self.spec.thinking,
        )
        info = {
            "engine": "openai",
            "base_url": self.spec.base_url,
            "served_model": model,
            "concurrency": self.spec.concurrency,
            "extra_body": self.spec.extra_body,
            "token_counts": self.tokenizer_source or "server usage or streamed deltas",
            "model": self.spec.model,
            # rows whose server sent a reasoning field are "server-field"; the rest split by this
            "reasoning_format": self.fmt.kind,
            "reasoning_format_why": self.fmt.why
            if self.tokenizer_source
            else "no local tokenizer (--tokenizer): content without a reasoning field is split heuristically",
        }
        return eng, info

    def close(self) -> None:
        return None


def _token_counter(spec) -> tuple[Callable[[str], int] | None, str | None, Any]:
    """The model's own tokenizer as a counter (and the tokenizer), when it can be loaded locally."""
    from pathlib import Path

    from ..models import PACKAGED, load_pretrained, resolve_model

    name = spec.tokenizer or spec.model
    local = name in PACKAGED or name.endswith(".gguf") or Path(name).expanduser().is_dir()
    if not (spec.tokenizer or local):
        return None, None, None
    from transformers import AutoTokenizer

    src = resolve_model(name)
    kw = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    try:
        tok = load_pretrained(AutoTokenizer.from_pretrained, src.path, "--tokenizer", **kw)
    except OSError as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise UserError(f"--tokenizer {name!r}: cannot load it ({first})") from None
    return (lambda text: len(tok.encode(text, add_special_tokens=False))), f"tokenizer of {name}", tok
