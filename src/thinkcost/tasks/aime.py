"""AIME 2024 and AIME 2025: 30 integer-answer olympiad problems per year.

Hubs: aime24 reads HuggingFaceH4/aime_2024 (split "train"; fields id, problem, solution, answer,
url, year). aime25 reads opencompass/AIME2025, configs "AIME2025-I" and "AIME2025-II" (split
"test"; fields question, answer), both loaded in that order: it is the copy OpenCompass and NeMo
evaluate on, and it keeps the two exam papers apart (``config="AIME2025-II"`` picks one).
"""

from __future__ import annotations

from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, RowError, as_text
from thinkcost.tasks.math500 import MATH_PROMPT
from thinkcost.types import Problem, Verdict


class _AimeTask(DataTask):
    """Shared by both years: the gold must be an integer (AIME answers are 0..999)."""

    size = 30
    metric = "accuracy (math-verify)"
    answer_type = "number"
    required = ("question", "answer")
    template = MATH_PROMPT

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        answer = as_text(row["answer"])
        try:
            gold = str(int(answer))  # "033" -> "33": the integer is what is graded
        except ValueError:
            raise RowError("answer", f"expected an integer answer, got {answer[:40]!r}") from None
        question = as_text(row["question"])
        meta: dict[str, Any] = {"question": question}
        if row.get("id") is not None:
            meta["source_id"] = as_text(row["id"])
        return {"question": question, "gold": gold, "meta": meta}

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """math-verify equivalence of the model's final answer and the gold integer."""
        from thinkcost.verify.math import verify_math

        return verify_math(answer_text, problem.gold)


@TASKS.register("aime24")
class Aime24Task(_AimeTask):
    """AIME 2024 (I and II, 30 problems); integer answers checked with math-verify."""

    name = "aime24"
    source = "HuggingFaceH4/aime_2024"
    default_split = "train"
    columns: ClassVar[dict[str, str]] = {"question": "problem", "answer": "answer"}


@TASKS.register("aime25")
class Aime25Task(_AimeTask):
    """AIME 2025 (I then II, 30 problems); integer answers checked with math-verify."""

    name = "aime25"
    source = "opencompass/AIME2025"
    configs = ("AIME2025-I", "AIME2025-II")
    default_split = "test"
    columns: ClassVar[dict[str, str]] = {"question": "question", "answer": "answer"}
