"""GSM8K: grade-school math word problems whose reference solutions end in ``#### <number>``.

Hub: openai/gsm8k, config "main", split "test" (1319 rows; fields question, answer).
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, RowError, as_text
from thinkcost.types import Problem, Verdict

PROMPT = (
    "Solve the following math word problem. Think step by step, then give the final answer as a "
    "single number in \\boxed{}.\n\nProblem: {question}"
)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)")


def gsm8k_gold(answer: str) -> str | None:
    """The number after the last ``####`` with thousands commas removed, or None when there is none.

    A cell without ``####`` that is itself a number (a hand-made local file) is taken as it is.
    """
    tail = answer.rsplit("####", 1)[1] if "####" in answer else answer
    tail = tail.strip().replace(",", "").rstrip(".").strip()
    return tail if _NUMBER_RE.fullmatch(tail) else None


@TASKS.register("gsm8k")
class GSM8KTask(DataTask):
    """Grade-school math word problems (GSM8K test); the final number is checked with math-verify."""

    name = "gsm8k"
    source = "openai/gsm8k"
    configs = ("main",)
    default_split = "test"
    size = 1319
    metric = "accuracy (math-verify)"
    answer_type = "number"
    columns: ClassVar[dict[str, str]] = {"question": "question", "answer": "answer"}
    required = ("question", "answer")
    template = PROMPT

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        solution = as_text(row["answer"])
        gold = gsm8k_gold(solution)
        if gold is None:
            tail = solution.rsplit("####", 1)[-1].strip()[:40]
            raise RowError("answer", f"expected a number after '####', got {tail!r}")
        question = as_text(row["question"])
        return {"question": question, "gold": gold, "meta": {"question": question}}

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """math-verify equivalence of the model's final answer and the gold number."""
        from thinkcost.verify.math import verify_math

        return verify_math(answer_text, problem.gold)
