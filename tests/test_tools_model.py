"""The default model in real tool episodes (slow: minutes on a CPU; run with -m slow): the
hf engine renders the schemas through Qwen2.5's own template, the model's native calls run in
the environment, and every episode ends in a recorded outcome."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from thinkcost.pipeline import run
from thinkcost.spec import build_spec
from thinkcost.store import Store

OUTCOMES = {"answer", "length", "turn-limit", "error", "malformed-call", "unknown-tool", "bad-arguments"}


@pytest.mark.slow
def test_default_model_runs_tool_episodes(tmp_path):
    spec = build_spec(
        {},
        {
            "task": "tools",
            "task_options": {"min_calls": 1, "max_calls": 2, "max_turns": 3},
            "limit": 4,
            "variants": "base",
            "max_new_tokens": 96,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 100,
        },
    )
    run(spec, Console(quiet=True))
    g = Store(tmp_path / "s.sqlite", create=False).generations()
    assert len(g) == 4
    details = [json.loads(d) for d in g["verdict_detail"]]
    assert {d["outcome"] for d in details} <= OUTCOMES
    assert sum(d["n_calls"] for d in details) >= 1  # the model used its native call format
    assert all(p > 300 for p in g["prompt_tokens"])  # the schemas were in the prompt
