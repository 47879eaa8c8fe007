"""The README's "how to add an engine / task / strategy" recipes are true: each toy plugin below
is one piece of code in this file plus one registration, and runs end to end through the real
spec validation, runner, store and report, with no other edit anywhere. (Metrics and quantizers
have their own: tests/test_plugin_metric.py, tests/quant/test_plugin_quantizer.py.)"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.engines import ENGINES
from thinkcost.errors import UserError
from thinkcost.pipeline import run
from thinkcost.spec import RunSpec
from thinkcost.strategies import SELECTORS, Decision, Recipe, Strategy
from thinkcost.strategies.base import positive_int, strategy_forms
from thinkcost.tasks import TASKS
from thinkcost.types import Problem, Verdict

# --------------------------------------------------------------------------- a task


class ParityTask:
    """Is n even or odd? (a toy task: seeded problems, an exact verifier)"""

    name = "toy-parity"

    def problems(self, limit: int | None, seed: int) -> list[Problem]:
        return [
            Problem(self.name, f"n{i}", [{"role": "user", "content": f"Is {seed * 100 + i} even or odd?"}],
                    "even" if (seed * 100 + i) % 2 == 0 else "odd")
            for i in range(limit or 10)
        ]  # fmt: skip

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        words = re.findall(r"\b(even|odd)\b", answer_text.lower())
        got = words[-1] if words else None
        return Verdict(got == problem.gold, got, "last-word" if got else "none")


# --------------------------------------------------------------------------- a strategy


def parse_last(text: str, options) -> Strategy:
    """`last@K`: K samples, the last one is the answer (a toy rule: it ignores the others)."""
    k = positive_int(text.removeprefix("last@") if text.startswith("last@") else None, "K in last@K", text)

    def decide(attempts, columns: dict[str, list[Any]]) -> Decision:
        mine = [a for a in attempts if a.sample < k]
        if not mine:
            return Decision(None, False, 0.0, None, ())
        last = mine[-1]
        return Decision(
            last.answer, last.correct, float(last.correct), last.sample, tuple(a.sample for a in mine)
        )

    return Strategy(f"last@{k}", Recipe(n=k, temperature=options.temperature, top_p=options.top_p), decide)


# --------------------------------------------------------------------------- an engine


class EchoBackend:
    """A backend without a model: answers "odd" for sample 0 and "even" otherwise. It proves the
    runner needs nothing but the registered class (no engine name appears in spec or runner)."""

    variants_help = "base or loud"

    @staticmethod
    def check_variant(name: str) -> None:
        if name not in ("base", "loud"):
            raise UserError(f"variant {name!r} cannot run on the echo engine: expected base or loud")

    @staticmethod
    def fingerprint(spec, variant: str) -> dict:
        return {}

    def __init__(self, spec, source, task, console) -> None:
        self.spec = spec
        assert source is None  # needs_local_model=False: the runner resolved nothing

    def prepare(self, variant: str, status):
        def script(req, sid):
            word = "odd" if sid == 0 else "even"
            return [
                "Thinking",
                ".",
                "\nThe",
                " answer",
                " is",
                f" {word.upper() if variant == 'loud' else word}",
            ]

        return ScriptedEngine(script, batch_size=self.spec.batch_size), {"engine": "echo", "variant": variant}

    def close(self) -> None:
        pass


@pytest.fixture
def plugins():
    TASKS.register("toy-parity")(ParityTask)
    SELECTORS.register("last", form="last@K", help="the last of K samples")(parse_last)
    ENGINES.register(
        "echo", summary="a scripted echo", default_variants=("base", "loud"), needs_local_model=False
    )(EchoBackend)
    yield
    TASKS.unregister("toy-parity")
    SELECTORS.unregister("last")
    ENGINES.unregister("echo")


def test_toy_task_strategy_and_engine_run_end_to_end(plugins, tmp_path):
    assert "last@K (the last of K samples)" in strategy_forms() or "last@K" in strategy_forms()
    spec = RunSpec(
        engine="echo",
        task="toy-parity",
        strategy=["greedy", "last@3"],
        limit=4,
        store=tmp_path / "s.sqlite",
        out=tmp_path / "out",
        n_boot=100,
    )
    assert spec.variants == ["base", "loud"]  # the engine's registered defaults
    res = run(spec, Console(quiet=True))
    rows = {(r.name, r.strategy): r for r in res.rows}
    # greedy = sample 0 = "odd": right on the odd problems n1, n3; last@3 = sample 2 = "even"
    assert rows[("base", "greedy")].n_correct == 2 and rows[("base", "last@3")].n_correct == 2
    assert rows[("loud", "greedy")].n_correct == 2  # the verifier reads case-insensitively
    summary = json.loads(res.outputs["json"].read_text())
    assert {v["strategy"] for v in summary["variants"]} == {"greedy", "last@3"}
    assert res.generated == 2 * 4 * (1 + 3)


def test_unregistered_plugins_are_unknown_names(tmp_path):
    with pytest.raises(UserError, match="unknown engine 'echo'"):
        from thinkcost.spec import build_spec

        build_spec({}, {"engine": "echo"})
    with pytest.raises(UserError, match="unknown task 'toy-parity'"):
        build_spec({}, {"task": "toy-parity"})
    with pytest.raises(UserError, match="unknown strategy 'last@3'"):
        build_spec({}, {"strategy": "last@3"})
