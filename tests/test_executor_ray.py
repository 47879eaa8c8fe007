"""`--executor ray` on a local 2-CPU Ray cluster with the hf engine on SmolLM2-135M: the same
rows as the in-process run, and a replica that dies mid-run loses nothing (its in-flight
samples are re-queued; the driver alone writes the store)."""

from __future__ import annotations

import io

import pytest
import torch
from rich.console import Console

from thinkcost.runner import generate
from thinkcost.spec import build_spec
from thinkcost.store import CONTENT_COLUMNS, Store

ray = pytest.importorskip("ray")

from thinkcost.engines.executors import ray_pool  # noqa: E402 - needs ray only when used

LIMIT = 6
# What a generation is (timings, call ids and creation times are how it was drawn, not what);
# token ids are compared through the texts and counts.
COLUMNS = [
    "variant",
    "problem_id",
    "recipe",
    "sample",
    *(c for c in CONTENT_COLUMNS if c != "token_ids"),
    "mean_logprob",
]


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()


def _spec(tmp_path, name, **kw):
    return build_spec(
        {},
        {
            "model": "smollm2-135m",
            "engine": "hf",
            "variants": "base",
            "strategy": "greedy",
            "limit": LIMIT,
            "max_new_tokens": 12,
            "batch_size": 1,  # one sample per batch either way: no padding, so rows match exactly
            "threads": 1,
            "name": name,
            "store": tmp_path / f"{name}.sqlite",
            "out": tmp_path / name,
            **kw,
        },
    )


def _rows(spec):
    store = Store(spec.store_path())
    try:
        g = store.generations(spec.run_id())
    finally:
        store.close()
    return g[COLUMNS].sort_values(["variant", "problem_id", "recipe", "sample"]).reset_index(drop=True)


def _quiet():
    return Console(file=io.StringIO(), width=200)


@pytest.fixture(scope="module")
def local_rows(tmp_path_factory):
    spec = _spec(tmp_path_factory.mktemp("local"), "local")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each replica runs: float reductions in the same order
    try:
        assert generate(spec, console=_quiet()).generated == LIMIT
    finally:
        torch.set_num_threads(threads)
    return _rows(spec)


def test_ray_executor_stores_the_rows_of_the_in_process_run(cluster, local_rows, tmp_path):
    spec = _spec(tmp_path, "ray", executor="ray", ray_workers=2)
    assert generate(spec, console=_quiet()).generated == LIMIT
    rows = _rows(spec)
    assert len(rows) == LIMIT
    assert rows.equals(local_rows)


def test_a_replica_killed_mid_run_loses_nothing(cluster, local_rows, tmp_path, monkeypatch):
    # the first replica dies (os._exit) with its second chunk generated but not yet returned,
    # and a third queued behind it: both are re-queued, on the survivor or a fresh replica
    monkeypatch.setattr(ray_pool, "EXIT_AFTER_CHUNKS", 1)
    spec = _spec(tmp_path, "ray-kill", executor="ray", ray_workers=2)
    console = _quiet()
    assert generate(spec, console=console).generated == LIMIT
    assert "an engine replica died" in console.file.getvalue()
    rows = _rows(spec)
    assert not rows.duplicated(["variant", "problem_id", "recipe", "sample"]).any()
    assert rows.equals(local_rows)
    monkeypatch.setattr(ray_pool, "EXIT_AFTER_CHUNKS", None)
    assert generate(spec, console=_quiet()).generated == 0  # resume: nothing was lost
