"""`--executor ray`: engine replicas on Ray actors, driven by the one process that writes the store.

Each actor (`_Replica`) builds the spec's engine backend itself (the same `ENGINES`
registration the local path uses: hf, llamacpp or vllm), prepares the current variant and
generates the chunks of requests it is sent, returning `(request index, sample id,
completion)` triples. `RayBackend` looks like any other backend to the runner: `prepare`
returns an engine whose `generate(requests, on_complete)` spreads the requests over the
replicas in chunks (at most `batch_size` samples, small enough that every replica gets work),
keeps two chunks queued per replica so none idles, collects results with `ray.wait` as they
finish and calls `on_complete` in the driver, where the runner commits them. A chunk is
committed whole or not at all, so a replica that dies (killed, out of memory, node lost) loses
only its in-flight chunks: they are re-queued, and a fresh replica takes the dead one's place.
Samples are seeded by their own id, so a re-drawn sample is the sample that was lost.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Sequence
from typing import Any

from ...errors import UserError
from ...types import Completion, OnComplete, Request

# Chunks queued on each replica: one decoding, one waiting, so a replica never idles between them.
DEPTH = 2

# Test hook (fault injection): the first replica of a pool exits (os._exit) when it has
# generated its chunk number EXIT_AFTER_CHUNKS + 1, before returning it. None: off.
EXIT_AFTER_CHUNKS: int | None = None


def _ray():
    try:
        import ray
    except ImportError:
        raise UserError('--executor ray needs Ray: pip install "thinkcost[ray]"') from None
    return ray


class _Replica:
    """One engine replica inside a Ray actor (threads: torch's and llama.cpp's CPU threads)."""

    def __init__(self, spec, source, task, threads: int, exit_after_chunks: int | None = None) -> None:
        import torch
        from rich.console import Console

        from .. import ENGINES

        torch.set_num_threads(threads)
        self.backend = ENGINES.get(spec.engine)(spec, source, task, Console(quiet=True))
        self.engine = None
        self.exit_after = exit_after_chunks
        self.chunks = 0

    def prepare(self, variant: str) -> dict:
        self.engine, info = self.backend.prepare(variant, lambda text: None)
        return info

    def generate(self, requests: list[Request]) -> list[tuple[int, int, Completion]]:
        got: list[tuple[int, int, Completion]] = []
        self.engine.generate(requests, on_complete=lambda k, i, c: got.append((k, i, c)))
        self.chunks += 1
        if self.exit_after is not None and self.chunks > self.exit_after:
            os._exit(1)  # fault injection: die with a finished chunk the driver never gets
        return got


class _Slot:
    """A live actor handle (compared by identity)."""

    def __init__(self, actor) -> None:
        self.actor = actor


class RayBackend:
    """The spec's engine backend, replicated over Ray actors (see the module docstring)."""

    def __init__(self, spec, source, task, console) -> None:
        ray = _ray()
        self.ray = ray
        self.console = console
        self.spec = spec
        self.started = not ray.is_initialized()
        if self.started:
            ray.init(address=spec.ray_address, include_dashboard=False, logging_level=logging.WARNING)
        res = ray.cluster_resources()
        gpu = spec.device.startswith("cuda") or (spec.device == "auto" and res.get("GPU", 0) >= 1)
        self.threads = spec.threads or 1
        n = spec.ray_workers or (int(res.get("GPU", 0)) if gpu else int(res.get("CPU", 1) // self.threads))
        self.workers = max(1, n)
        self.actor_cls = ray.remote(_Replica).options(
            num_cpus=self.threads, num_gpus=1 if gpu else 0, max_restarts=0
        )
        self.args = (spec.model_copy(update={"threads": self.threads}), source, task, self.threads)
        self.restarts_left = 2 * self.workers
        self.variant: str | None = None
        self.ready: list[_Slot] = []
        self.preparing: dict[Any, _Slot] = {}  # prepare() ref -> its replica
        self.dead: set[_Slot] = set()
        first = EXIT_AFTER_CHUNKS
        for _ in range(self.workers):
            self.ready.append(_Slot(self.actor_cls.remote(*self.args, exit_after_chunks=first)))
            first = None

    # --- the backend contract -------------------------------------------------------------
    def prepare(self, variant: str, status) -> tuple[_PoolEngine, dict]:
        status(f"{self.workers} ray replica(s)")
        self.variant = variant
        slots, self.ready = [*self.ready, *self.preparing.values()], []
        self.preparing = {s.actor.prepare.remote(variant): s for s in slots}
        info = None
        while self.preparing:
            info = self._settle_one(list(self.preparing)) or info
        if info is None:
            raise UserError("ray: every engine replica died while preparing; see the Ray logs above")
        info = {**info, "executor": "ray", "ray_workers": self.workers, "threads_per_worker": self.threads}
        return _PoolEngine(self), info

    def close(self) -> None:
        for s in [*self.ready, *self.preparing.values()]:
            self.ray.kill(s.actor)
        self.ready, self.preparing = [], {}
        if self.started:
            self.ray.shutdown()

    # --- scheduling -----------------------------------------------------------------------
    def _settle_one(self, refs: list) -> dict | None:
        """Wait for one prepare() to finish: the replica joins the ready ones (its variant info
        returned) or, dead, is replaced."""
        [ref], _ = self.ray.wait(refs, num_returns=1)
        slot = self.preparing.pop(ref)
        try:
            info = self.ray.get(ref)
        except self.ray.exceptions.RayActorError as e:
            self._lost(slot, e)
            return None
        self.ready.append(slot)
        return info

    def _lost(self, slot: _Slot, error: Exception) -> None:
        """A replica died: forget it and start a fresh one on the current variant."""
        if slot in self.dead:
            return  # already handled (each of its in-flight chunks reports the same death)
        self.dead.add(slot)
        if slot in self.ready:
            self.ready.remove(slot)
        why = str(error).strip().splitlines()[0][:160] if str(error).strip() else type(error).__name__
        if self.restarts_left <= 0:
            self.console.print(f"ray: an engine replica died ({why}); no restarts left", markup=False)
            return
        self.restarts_left -= 1
        self.console.print(
            f"ray: an engine replica died ({why}); its in-flight samples are re-queued on a fresh replica",
            markup=False,
        )
        fresh = _Slot(self.actor_cls.remote(*self.args))
        self.preparing[fresh.actor.prepare.remote(self.variant)] = fresh

    def chunks(self, requests: Sequence[Request]) -> list[list[int]]:
        """Request indices per chunk: whole requests (a short-m@k group races in one batch), at
        most `batch_size` samples unless one request alone has more, and small enough that
        every replica gets at least DEPTH chunks."""
        total = sum(len(r.samples) for r in requests)
        size = max(1, min(self.spec.batch_size, -(-total // (DEPTH * self.workers))))
        out: list[list[int]] = []
        cur: list[int] = []
        n = 0
        for k, r in enumerate(requests):
            if cur and n + len(r.samples) > size:
                out.append(cur)
                cur, n = [], 0
            cur.append(k)
            n += len(r.samples)
        if cur:
            out.append(cur)
        return out

    def generate(self, requests: Sequence[Request], on_complete: OnComplete | None) -> list[Completion]:
        ray = self.ray
        chunks = self.chunks(requests)
        todo = deque(range(len(chunks)))
        inflight: dict[Any, tuple[_Slot, int]] = {}  # generate() ref -> (replica, chunk)
        got: dict[tuple[int, int], Completion] = {}
        while todo or inflight:
            for slot in self.ready:
                load = sum(1 for s, _ in inflight.values() if s is slot)
                while todo and load < DEPTH:
                    c = todo.popleft()
                    inflight[slot.actor.generate.remote([requests[k] for k in chunks[c]])] = (slot, c)
                    load += 1
            if not inflight and not self.preparing:
                raise UserError("ray: every engine replica died and none could be restarted; rerun to resume")
            [ref], _ = ray.wait([*inflight, *self.preparing], num_returns=1)
            if ref in self.preparing:
                self._settle_one([ref])
                continue
            slot, c = inflight.pop(ref)
            try:
                results = ray.get(ref)
            except ray.exceptions.RayActorError as e:
                self._lost(slot, e)
                todo.appendleft(c)
                continue
            for local, sample, completion in results:
                k = chunks[c][local]
                got[(k, sample)] = completion
                if on_complete is not None:
                    on_complete(k, sample, completion)
        return [got[(k, i)] for k, r in enumerate(requests) for i in r.samples if (k, i) in got]


class _PoolEngine:
    """The engine protocol over a `RayBackend`'s replicas (the current variant)."""

    def __init__(self, backend: RayBackend) -> None:
        self.backend = backend
        self.name = f"ray:{backend.spec.engine}"

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        return self.backend.generate(requests, on_complete)

    def close(self) -> None:
        pass
