"""MBPP: short Python programming problems, each with three assert tests.

Hub: google-research-datasets/mbpp, config "sanitized", split "test" (257 rows; fields source_file,
task_id, prompt, code, test_imports, test_list) -- the hand-verified subset with clearer task
statements. ``config="full"`` reads the original 500-problem test split, whose statement column is
"text". As is standard, the prompt shows the first test so the model knows the function's name and
signature; all tests (with their imports) are run in the sandbox.
"""

from __future__ import annotations

from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, RowError, as_list, as_text
from thinkcost.types import Problem, Verdict

PROMPT = (
    "{question}\nYour code should pass this test:\n\n```python\n{example}\n```\n\n"
    "Write the complete Python function in a single ```python code block."
)


@TASKS.register("mbpp")
class MBPPTask(DataTask):
    """Basic Python programming problems (MBPP sanitized test); pass@1 of the asserts run in a sandbox."""

    name = "mbpp"
    source = "google-research-datasets/mbpp"
    configs = ("sanitized",)
    default_split = "test"
    size = 257
    metric = "pass@1 (sandboxed tests)"
    answer_type = "code"
    columns: ClassVar[dict[str, str]] = {
        "question": "prompt",
        "tests": "test_list",
        "imports": "test_imports",
    }
    required = ("question", "tests")
    placeholders = ("question", "example", "tests")
    template = PROMPT

    def columns_for(self, config: str | None) -> dict[str, str]:
        """The full config names its statement column "text"; sanitized names it "prompt"."""
        return {**self.columns, "question": "text"} if config == "full" else dict(self.columns)

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        tests = [as_text(t) for t in as_list(row["tests"]) if as_text(t)]
        if not tests:
            raise RowError("tests", "no test asserts")
        imports = [as_text(t) for t in as_list(row.get("imports")) if as_text(t)]
        question = as_text(row["question"])
        test_code = "\n".join(imports + tests)
        meta: dict[str, Any] = {"question": question, "tests": test_code, "test_list": tests}
        meta["test_imports"] = imports
        if row.get("task_id") is not None:
            meta["source_id"] = as_text(row["task_id"])
        return {
            "question": question,
            "example": tests[0],
            "tests": "\n".join(tests),
            "gold": test_code,
            "meta": meta,
        }

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """Run the model's code followed by the test imports and asserts in the sandbox."""
        from thinkcost.verify.code import verify_code

        return verify_code(answer_text, tests=problem.meta["tests"])
