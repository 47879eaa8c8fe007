"""What makes an attempt worth retrying, and how long to wait before the next one.

Servers fail in many small ways (429, 5xx, resets, streams cut short, garbage lines), so every
attempt either yields a whole, well-terminated stream or is retried from scratch with full-jitter
backoff (or after the server's Retry-After, capped); a sample that still fails comes back with
finish_reason "error", never dropped, so a benchmark run does not die with one flaky request and
a rerun can redraw it. A 4xx other than 408 and 429 is the request's fault: retrying cannot help.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time

import httpx

from .stream import excerpt


class Retry(Exception):
    """A failed attempt that another attempt may fix; `retry_after` is the server's wish, if any."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


class Fatal(Exception):
    """A failed attempt that every retry would repeat (a bad request, a bad URL)."""


def retry_after(value: str | None) -> float | None:
    """Seconds asked for by a Retry-After header (a number or an HTTP date); None if absent or unreadable."""
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


def http_failure(status: int, body: str, retry_after_header: str | None) -> Retry | Fatal:
    """A non-200 answer, named by the server's own error message: 408, 429 and 5xx are retried."""
    try:
        err = json.loads(body).get("error", body)
        body = err.get("message", body) if isinstance(err, dict) else str(err)
    except (ValueError, AttributeError):
        pass
    reason = f"HTTP {status}: {excerpt(body)}"
    if status in (408, 429) or status >= 500:
        return Retry(reason, retry_after(retry_after_header))
    return Fatal(reason)


def failure_of(e: Exception, attempt_timeout_s: float) -> Retry | Fatal | None:
    """What an exception out of one attempt means; None: not a failure of the attempt (re-raise it)."""
    if isinstance(e, (Retry, Fatal)):
        return e
    if isinstance(e, asyncio.TimeoutError):
        return Retry(f"attempt deadline of {attempt_timeout_s:g} s exceeded")
    if isinstance(e, httpx.TimeoutException):
        return Retry(f"timeout ({type(e).__name__})")
    if isinstance(e, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return Fatal(f"{type(e).__name__}: {e}")
    if isinstance(e, httpx.TransportError):
        return Retry(f"connection error ({type(e).__name__})")
    return None


def backoff_wait(attempt: int, e: Retry, rng: random.Random, base_s: float, max_s: float) -> float:
    """Seconds to wait after failed attempt number `attempt` (1-based): the server's Retry-After,
    capped at max_s, else full jitter, uniform in [0, min(max_s, base_s * 2**(attempt - 1))]."""
    if e.retry_after is not None:
        return min(e.retry_after, max_s)
    return rng.uniform(0, min(max_s, base_s * 2 ** (attempt - 1)))
