"""HumanEval: 164 hand-written Python functions, graded by running their unit tests in a sandbox.

Hub: openai/openai_humaneval, split "test" (fields task_id, prompt, canonical_solution, test,
entry_point). The model is asked for the complete function in a fenced python block.

Completion rule: when the model's last python block has no ``def <entry_point>(``, it is taken to
be a completion of the HumanEval prompt (the original convention), so the prompt is prepended to it.
The block must then be indented as a function body, exactly as in the original completion format.
An answer with no fenced block at all gets the same treatment when prompt + answer compiles.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, as_text
from thinkcost.types import Problem, Verdict

PROMPT = (
    "Complete the following Python function. Reply with the complete function, signature and any "
    "imports it needs included, in a single ```python code block.\n\n```python\n{question}\n```"
)


def _defines(code: str, entry_point: str) -> bool:
    pattern = rf"^[ \t]*(?:async[ \t]+)?def[ \t]+{re.escape(entry_point)}[ \t]*\("
    return re.search(pattern, code, re.MULTILINE) is not None


def with_signature(answer_text: str, prompt: str, entry_point: str) -> str:
    """The answer as the sandbox should see it, under the completion rule (module docstring).

    The code is the last python block (the sandbox's own rule). When it has no ``def <entry_point>(``,
    it is a completion: the HumanEval prompt is prepended and the result returned as one fenced
    block. An answer without any fence is treated the same way when prompt + answer is valid Python
    (a raw completion, the original HumanEval format); otherwise it is passed on unchanged.
    """
    from thinkcost.verify.code import extract_code

    if not prompt.endswith("\n"):
        prompt += "\n"
    code = extract_code(answer_text)
    if code is None:
        if answer_text.strip() and not _defines(answer_text, entry_point):
            try:
                compile(prompt + answer_text, "<completion>", "exec")  # compiling never runs it
            except (SyntaxError, ValueError, RecursionError, MemoryError, OverflowError):
                return answer_text
            return f"```python\n{prompt}{answer_text.rstrip()}\n```"
        return answer_text
    if _defines(code, entry_point):
        return answer_text
    return f"```python\n{prompt}{code}```"


@TASKS.register("humaneval")
class HumanEvalTask(DataTask):
    """Python function synthesis (HumanEval); pass@1 of the hidden unit tests run in a sandbox."""

    name = "humaneval"
    source = "openai/openai_humaneval"
    default_split = "test"
    size = 164
    metric = "pass@1 (sandboxed tests)"
    answer_type = "code"
    columns: ClassVar[dict[str, str]] = {"question": "prompt", "test": "test", "entry_point": "entry_point"}
    required = ("question", "test", "entry_point")
    placeholders = ("question", "entry_point")
    template = PROMPT

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        prompt = str(row["question"])  # raw: prepended verbatim under the completion rule
        entry_point = as_text(row["entry_point"])
        meta: dict[str, Any] = {"question": prompt, "prompt": prompt, "entry_point": entry_point}
        meta["test"] = str(row["test"])
        if row.get("task_id") is not None:
            meta["source_id"] = as_text(row["task_id"])
        return {
            "question": prompt.strip("\n"),
            "entry_point": entry_point,
            "gold": meta["test"],
            "meta": meta,
        }

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """Run the model's function against the HumanEval tests (`check(entry_point)`) in the sandbox."""
        from thinkcost.verify.code import verify_code

        entry_point = problem.meta["entry_point"]
        code = with_signature(answer_text, problem.meta["prompt"], entry_point)
        return verify_code(code, tests=problem.meta["test"], entry_point=entry_point)
