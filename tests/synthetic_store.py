"""Stores with known contents, written through the real Store API, for report/compare/export tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from thinkcost.store import Store
from thinkcost.types import Completion, Problem, Verdict


@dataclass(frozen=True)
class Sample:
    variant: str
    problem_id: str
    correct: bool
    reasoning_tokens: int
    cost_s: float
    strategy: str = "greedy"  # recipe key
    sample: int = 0
    answer_tokens: int = 5
    reasoning_text: str = ""


def problem(pid: str) -> Problem:
    return Problem(
        task="arithmetic",
        id=pid,
        messages=[
            {"role": "system", "content": "Answer in \\boxed{}."},
            {"role": "user", "content": f"What is {pid} | plus one?"},
        ],
        gold=f"gold-{pid}",
        meta={"level": 1},
    )


def build_store(
    path: Path,
    samples: list[Sample],
    problem_ids: list[str],
    *,
    run_id: str = "run1",
    name: str = "demo",
    strategies: tuple[str, ...] = ("greedy",),
    engine: str = "openai",
    variant_info: dict[str, dict] | None = None,
) -> Path:
    """One run holding `problem_ids` and `samples`; variants in order of first appearance."""
    st = Store(path)
    st.ensure_run(run_id, name, {"model": "m", "task": "arithmetic", "engine": engine})
    st.put_problems(run_id, [problem(p) for p in problem_ids])
    for i, s in enumerate(strategies):
        st.put_strategy(run_id, s, i, {"options": {"temperature": 0.7, "top_p": 0.95}})
    for i, v in enumerate(dict.fromkeys(s.variant for s in samples)):
        st.put_variant(run_id, v, i, {"engine": engine, **(variant_info or {}).get(v, {})})
    for s in samples:
        reasoning = s.reasoning_text or " ".join(["step"] * 3)
        answer = "\\boxed{1}" if s.correct else "\\boxed{0}"
        c = Completion(
            text=f"<think>{reasoning}</think>{answer}",
            reasoning_text=reasoning,
            answer_text=answer,
            prompt_tokens=20,
            completion_tokens=s.reasoning_tokens + s.answer_tokens,
            reasoning_tokens=s.reasoning_tokens,
            answer_tokens=s.answer_tokens,
            finish_reason="stop",
            latency_s=s.cost_s,
            ttft_s=0.01,
            cost_s=s.cost_s,
            logprobs=[-0.5, -1.5],
        )
        v = Verdict(s.correct, "1" if s.correct else "0", "boxed", "math-verify")
        st.put_generation(run_id, s.variant, s.problem_id, s.strategy, s.sample, c, v, 1)
    st.close()
    return path
