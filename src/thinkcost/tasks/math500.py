"""MATH-500: the 500-problem subset of the MATH competition set used by "Let's Verify Step by Step".

Hub: HuggingFaceH4/MATH-500, split "test" (500 rows; fields problem, solution, answer, subject,
level, unique_id). Answers are LaTeX, so equivalence is decided by math-verify.
"""

from __future__ import annotations

from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, as_text
from thinkcost.types import Problem, Verdict

# The prompt DeepSeek-R1 recommends for math; reasoning models are tuned to it.
MATH_PROMPT = "{question}\n\nPlease reason step by step, and put your final answer within \\boxed{}."


@TASKS.register("math500")
class Math500Task(DataTask):
    """Competition math problems (MATH-500); LaTeX answers checked for equivalence with math-verify."""

    name = "math500"
    source = "HuggingFaceH4/MATH-500"
    default_split = "test"
    size = 500
    metric = "accuracy (math-verify)"
    answer_type = "latex"
    columns: ClassVar[dict[str, str]] = {"question": "problem", "answer": "answer"}
    required = ("question", "answer")
    template = MATH_PROMPT

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        question = as_text(row["question"])
        meta: dict[str, Any] = {"question": question}
        for key in ("subject", "unique_id"):
            if row.get(key) is not None:
                meta[key] = as_text(row[key])
        level = as_text(row.get("level", ""))
        if level.isdigit():  # 1..5 in MATH; kept as the difficulty, as the arithmetic task does
            meta["difficulty"] = int(level)
        return {"question": question, "gold": as_text(row["answer"]), "meta": meta}

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """math-verify equivalence of the model's final answer and the gold LaTeX."""
        from thinkcost.verify.math import verify_math

        return verify_math(answer_text, problem.gold)
