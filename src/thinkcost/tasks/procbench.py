"""ProcBench (Fujisawa et al., 2024): follow an explicit multi-step procedure on strings, lists or
integers, with the gold state after every step.

Hub: ifujisawa/procbench, one config per task type "task01".."task23" (240 problems each, 2 to 25
steps), split "train"; fields prompt, task_name, example_name, problem_name and
label = {init, intermediate, final}. By default all 23 configs are loaded in order (5520 rows);
``config="task07"`` picks one task type. ``intermediate`` holds the states after steps 1..n-1 and
``final`` the state after step n, so the gold step sequence is intermediate + [final].

A local file in another layout maps its columns with fields, e.g.
``fields="question=prompt,steps=steps,final=final"`` for rows {"prompt", "steps": [...], "final"}.

States are compared exactly after normalising: case, whitespace, quotes, markdown emphasis, a
trailing period, the brackets around a list and the spaces after its commas
(``['a', 'b']`` == ``[a,b]`` == ``a, b``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from thinkcost.tasks import TASKS
from thinkcost.tasks.dataset import DataTask, RowError, as_list
from thinkcost.types import Problem, Verdict

PROMPT = (
    "{question}\n\nFollow the procedure exactly, one step at a time. After each step, write the "
    'resulting state on its own line as "Step k: <state>" (k = 1, 2, ...). Then write the final '
    'state on its own line as "Final: <state>".'
)
_LEAD = r"^[ \t>*_#-]*"  # list bullets, quote marks and markdown emphasis before the label
_STEP_RE = re.compile(_LEAD + r"step[ \t]*(\d+)[ \t*_]*[:：](.*)$", re.IGNORECASE | re.MULTILINE)
_FINAL_RE = re.compile(
    _LEAD + r"final(?:[ \t]+(?:state|answer))?[ \t*_]*[:：](.*)$", re.IGNORECASE | re.MULTILINE
)


def state_text(value: Any) -> str:
    """A gold state as text: lists as ``[a, b]`` (without Python quotes), everything else via str."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(state_text(v) for v in value) + "]"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def normalize_state(text: str) -> str:
    """The comparison key of a state (see the module docstring for what is ignored)."""
    t = re.sub(r"\*\*|__|`", "", text).strip().casefold().rstrip(".").strip()
    if len(t) >= 2 and t[0] + t[-1] in ("[]", "()"):
        t = t[1:-1]
    t = re.sub(r"['\"]", "", t)
    t = re.sub(r"\s*,\s*", ",", t)
    return re.sub(r"\s+", " ", t).strip()


def _step_lines(answer_text: str) -> dict[int, str]:
    """Step number -> stated state; a step written twice counts with its last version."""
    return {int(m.group(1)): m.group(2).strip() for m in _STEP_RE.finditer(answer_text)}


def extract_final(answer_text: str) -> tuple[str | None, str]:
    """(final state, rule): the last "Final:" line, else the highest-numbered "Step k:" line."""
    finals = [m.group(1).strip() for m in _FINAL_RE.finditer(answer_text or "")]
    if finals and finals[-1]:
        return finals[-1], "final"
    steps = _step_lines(answer_text or "")
    if steps:
        return steps[max(steps)], "last-step"
    return None, "none"


def score_steps(answer_text: str, gold_steps: Sequence[Any]) -> tuple[int, int]:
    """(steps whose stated state matches the gold, number of gold steps).

    Step k of the answer is its "Step k:" line; when the last step has no line of its own, the
    "Final:" line stands for it (the final state is the state after the last step).
    """
    stated = _step_lines(answer_text or "")
    final, rule = extract_final(answer_text or "")
    n = len(gold_steps)
    correct = 0
    for k, gold in enumerate(gold_steps, start=1):
        pred = stated.get(k)
        if pred is None and k == n and rule == "final":
            pred = final
        if pred is not None and normalize_state(pred) == normalize_state(state_text(gold)):
            correct += 1
    return correct, n


@TASKS.register("procbench")
class ProcBenchTask(DataTask):
    """Procedure following (ProcBench): final state exact after normalising; per-step accuracy in detail."""

    name = "procbench"
    source = "ifujisawa/procbench"
    configs = tuple(f"task{i:02d}" for i in range(1, 24))
    default_split = "train"
    size = 5520
    metric = "final-state accuracy (normalised exact match)"
    answer_type = "steps"
    columns: ClassVar[dict[str, str]] = {
        "question": "prompt",
        "steps": "label.intermediate",
        "final": "label.final",
    }
    required = ("question", "final")
    template = PROMPT

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        if "steps" not in row or row["steps"] is None:
            raise RowError("steps", "missing (the gold states after each step but the last)")
        steps = [state_text(s) for s in as_list(row["steps"])]
        question = str(row["question"]).strip()
        meta: dict[str, Any] = {"question": question, "steps": steps, "n_steps": len(steps) + 1}
        for key in ("task_name", "problem_name"):
            if row.get(key) is not None:
                meta[key] = str(row[key])
        return {"question": question, "gold": state_text(row["final"]), "meta": meta}

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """Correct when the final state matches; detail records how many step states matched."""
        final, rule = extract_final(answer_text or "")
        correct = final is not None and normalize_state(final) == normalize_state(problem.gold)
        k, n = score_steps(answer_text or "", [*problem.meta["steps"], problem.gold])
        return Verdict(correct, final, rule, detail=f"steps {k}/{n}")
