"""GPQA Diamond: 198 graduate-level multiple-choice science questions written to resist lookup.

Hub: Idavidrein/gpqa, config "gpqa_diamond", split "train" (gated: accept the terms on the hub and
log in). The dataset stores the correct answer and three incorrect ones in separate columns, so the
order shown to the model is ours to choose: each problem shuffles them with its own RNG seeded by
(seed, problem id), which keeps a problem's order fixed for a seed however many problems are asked for.
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, as_text
from thinkcost.tasks.templating import render
from thinkcost.types import Problem, Verdict

LETTERS = "ABCD"
PROMPT = (
    "Answer the following multiple-choice question. Think step by step, then end your response "
    'with a line of the form "Answer: X", where X is one of A, B, C or D.\n\n{question}\n\n{options}'
)
_CHOICES = ("correct", "incorrect1", "incorrect2", "incorrect3")


def shuffle_options(choices: list[str], seed: int, pid: str) -> tuple[list[str], list[int], str]:
    """(options in display order, permutation, gold letter); choices[0] is the correct answer.

    permutation[i] is the index into `choices` of the option shown under LETTERS[i].
    """
    permutation = list(range(len(choices)))
    random.Random(f"{seed}:{pid}").shuffle(permutation)
    options = [choices[i] for i in permutation]
    return options, permutation, LETTERS[permutation.index(0)]


@TASKS.register("gpqa-diamond")
class GPQADiamondTask(DataTask):
    """Graduate-level science multiple choice (GPQA Diamond), options shuffled per problem; letter checked."""

    name = "gpqa-diamond"
    source = "Idavidrein/gpqa"
    configs = ("gpqa_diamond",)
    default_split = "train"
    size = 198
    metric = "accuracy (choice letter)"
    answer_type = "choice"
    columns: ClassVar[dict[str, str]] = {
        "question": "Question",
        "correct": "Correct Answer",
        "incorrect1": "Incorrect Answer 1",
        "incorrect2": "Incorrect Answer 2",
        "incorrect3": "Incorrect Answer 3",
    }
    required = ("question", *_CHOICES)
    placeholders = ("question", "options")
    template = PROMPT

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        question = as_text(row["question"])
        meta: dict[str, Any] = {"question": question}
        if row.get("Record ID") is not None:
            meta["source_id"] = as_text(row["Record ID"])
        return {"question": question, "choices": [as_text(row[c]) for c in _CHOICES], "meta": meta}

    def build(self, pid: str, record: dict[str, Any], seed: int) -> Problem:
        """The prompt lists the options as "A) ..." in this problem's seeded order."""
        options, permutation, gold_letter = shuffle_options(record["choices"], seed, pid)
        listing = "\n".join(f"{letter}) {text}" for letter, text in zip(LETTERS, options, strict=True))
        meta = {
            **record["meta"],
            "options": options,
            "permutation": permutation,
            "gold_letter": gold_letter,
            "correct_answer": record["choices"][0],
        }
        prompt = render(self.prompt, {"question": record["question"], "options": listing})
        return self.make_problem(pid, prompt, gold_letter, meta)

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """The letter the model chose (or the option text it quoted) against the gold letter."""
        from thinkcost.verify.choice import verify_choice

        return verify_choice(answer_text, problem.meta["gold_letter"], problem.meta["options"])
