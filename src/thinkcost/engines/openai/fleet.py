"""An endpoint pool: which of several OpenAI-compatible servers (serving the same model) gets
the next attempt, and which are out of service. Plain data and functions, no I/O, no clock of
its own (callers pass `now`), so the rules are unit-tested without servers or sleeps.

- Least outstanding requests: a server that decodes one request at a time (llama.cpp) or a
  slower replica builds a queue; sending the next attempt to the shortest queue keeps every
  server busy without modelling their speeds. Ties go to the endpoint that has been sent the
  fewest attempts, then to list order, so sequential traffic still alternates.
- Health: `max_failures` consecutive connection failures (refused, reset, stream cut short,
  timeout) take an endpoint out; an HTTP answer, even an error status, proves it is up and
  resets the count. An endpoint that is out gets one probe attempt (a real request) every
  `probe_s`; when it answers, it is back in. A fleet whose endpoints are all out still picks
  one (the one due soonest), so a dead single server fails through the retry budget as before.
- An attempt that failed on an endpoint goes elsewhere when another endpoint is in service
  (`avoid`), so a sample in flight on a dying server is retried on a live one.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(eq=False)
class Endpoint:
    """One server of the fleet and what it did: counters for the run notes."""

    url: str
    index: int = 0
    outstanding: int = 0  # attempts in flight now
    consecutive_failures: int = 0
    in_service: bool = True
    probe_at: float = 0.0  # when an endpoint that is out may be probed again
    probing: bool = False  # a probe attempt is in flight
    attempts: int = 0  # attempts sent
    completed: int = 0  # attempts that ended with a whole stream
    http_errors: int = 0  # attempts answered with an error status or a bad stream
    connection_failures: int = 0
    outages: int = 0  # times taken out of service
    latency_s: float = 0.0  # summed over completed attempts

    def stats(self) -> dict:
        """What the run notes keep per endpoint."""
        mean = self.latency_s / self.completed if self.completed else None
        return {
            "attempts": self.attempts,
            "completed": self.completed,
            "http_errors": self.http_errors,
            "connection_failures": self.connection_failures,
            "outages": self.outages,
            "in_service": self.in_service,
            "mean_latency_s": None if mean is None else round(mean, 4),
            "total_latency_s": round(self.latency_s, 4),
        }


@dataclass(eq=False)
class Pool:
    """The endpoints of one fleet and the health rule (see the module docstring)."""

    endpoints: list[Endpoint]
    max_failures: int = 3
    probe_s: float = 5.0

    @classmethod
    def of(cls, urls: Sequence[str], max_failures: int = 3, probe_s: float = 5.0) -> Pool:
        if not urls:
            raise ValueError("a fleet needs at least one endpoint")
        if max_failures < 1:
            raise ValueError(f"max_failures: expected >= 1, got {max_failures}")
        eps = [Endpoint(u.rstrip("/"), i) for i, u in enumerate(urls)]
        return cls(eps, max_failures, probe_s)

    def stats(self) -> dict[str, dict]:
        return {e.url: e.stats() for e in self.endpoints}


def choose(pool: Pool, now: float, avoid: Endpoint | None = None) -> Endpoint:
    """The endpoint for the next attempt, without changing anything (see `acquire`).

    An endpoint that is out and due for a probe (no probe in flight, and not where this sample
    just failed) comes first, so it is noticed soon when it is back; otherwise the in-service endpoint with the fewest outstanding
    attempts; `avoid` (where this sample just failed) only when nothing else is in service."""
    due = [
        e
        for e in pool.endpoints
        if not e.in_service and not e.probing and now >= e.probe_at and e is not avoid
    ]
    if due:
        return min(due, key=lambda e: (e.probe_at, e.index))
    live = [e for e in pool.endpoints if e.in_service]
    if avoid is not None and len(live) > 1:
        live = [e for e in live if e is not avoid] or live
    if live:
        return min(live, key=lambda e: (e.outstanding, e.attempts, e.index))
    # all out, none due: the one due soonest (a fleet of one keeps retrying its only server)
    return min(pool.endpoints, key=lambda e: (e.probe_at, e.outstanding, e.index))


def acquire(pool: Pool, now: float, avoid: Endpoint | None = None) -> Endpoint:
    """Choose an endpoint and count the attempt as outstanding on it."""
    e = choose(pool, now, avoid)
    e.outstanding += 1
    e.attempts += 1
    if not e.in_service:
        e.probing = True
    return e


def release(pool: Pool, e: Endpoint, now: float, outcome: str, latency_s: float = 0.0) -> None:
    """Record how an attempt on `e` ended: "ok" (a whole stream), "http" (an answer, but an
    error status or a bad stream: the server is up), "connection" (no answer or a cut-off
    stream), or "cancelled" (we stopped it: says nothing about the server)."""
    e.outstanding -= 1
    was_probe, e.probing = e.probing, False
    if outcome == "cancelled":
        return
    if outcome in ("ok", "http"):
        if outcome == "ok":
            e.completed += 1
            e.latency_s += latency_s
        else:
            e.http_errors += 1
        e.consecutive_failures = 0
        e.in_service = True
        return
    if outcome != "connection":
        raise ValueError(f"unknown outcome {outcome!r}")
    e.connection_failures += 1
    e.consecutive_failures += 1
    if e.in_service and e.consecutive_failures >= pool.max_failures:
        e.in_service = False
        e.outages += 1
        e.probe_at = now + pool.probe_s
    elif not e.in_service and was_probe:
        e.probe_at = now + pool.probe_s
