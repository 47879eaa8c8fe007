"""`tools-bfcl`: single-turn function calling from a BFCL-style file (`--data PATH`).

The Berkeley Function-Calling Leaderboard stores one JSON object per line: `id`, `question`
(a list of turns, each a list of chat messages; a plain string is accepted too), `function`
(the function docs: name, description, `parameters` with BFCL's types `dict`, `float`,
`tuple`, `any`), and, in a separate "possible answer" file, `ground_truth`: a list of
`{function name: {parameter: [acceptable values]}}`, where `""` among the values marks a
parameter that may be left out. Here the ground truth may sit in the row itself, or in the
file given as the `answers` option (rows joined by `id`).

The model sees the functions through its chat template's `tools=` (BFCL types translated to
JSON schema) and answers in its native call format; its calls are graded by AST match as
BFCL does (own implementation of its rules): the same number of calls, each with the right
name, its required parameters present, no parameter the function or the answer lacks, values
of the declared type (an int is a valid float) and among the acceptable ones, strings
compared ignoring case, spaces and `,./-_*^`. `parallel` ids match calls in any order;
`irrelevance` ids (or an empty ground truth) are right only without any call.
"""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

from thinkcost.errors import UserError
from thinkcost.jsonl import read_jsonl
from thinkcost.tasks import TASKS
from thinkcost.types import Problem, Verdict

from .calls import Call, parse_calls

_SCHEMA_TYPES = {"dict": "object", "float": "number", "tuple": "array", "any": "string"}
_STRIP = re.compile(r"[ ,./\-_*^]")


def standardize(s: str) -> str:
    """BFCL's string normal form: no spaces or `,./-_*^`, lower case, single quotes as double."""
    return _STRIP.sub("", s).lower().replace("'", '"')


def to_json_schema(node: Any) -> Any:
    """BFCL's parameter types as JSON schema (`dict` -> object, `float` -> number, ...)."""
    if isinstance(node, dict):
        out = {k: to_json_schema(v) for k, v in node.items()}
        if isinstance(node.get("type"), str):
            out["type"] = _SCHEMA_TYPES.get(node["type"], node["type"])
        return out
    if isinstance(node, list):
        return [to_json_schema(v) for v in node]
    return node


def _type_ok(value: Any, kind: str | None, items: str | None = None) -> bool:
    if kind in (None, "any"):
        return True
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind in ("float", "number"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "string":
        return isinstance(value, str)
    if kind == "boolean":
        return isinstance(value, bool)
    if kind in ("array", "tuple"):
        return isinstance(value, (list, tuple)) and all(_type_ok(v, items) for v in value)
    if kind in ("dict", "object"):
        return isinstance(value, dict)
    return True


def _norm(v: Any) -> Any:
    """A value in comparable form: strings standardized, containers element by element."""
    if isinstance(v, str):
        return standardize(v)
    if isinstance(v, (list, tuple)):
        return [_norm(x) for x in v]
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    return v


def _dict_ok(value: dict, options: list[Any]) -> bool:
    """A dict argument against acceptable dicts whose values are lists of acceptable values."""
    for opt in options:
        if not isinstance(opt, dict):
            continue
        if all(k in opt and _norm(v) in [_norm(x) for x in opt[k]] for k, v in value.items()) and all(
            k in value or "" in vals for k, vals in opt.items()
        ):
            return True
    return False


def _value_ok(value: Any, options: list[Any], kind: str | None) -> bool:
    nested = any(isinstance(o, dict) and all(isinstance(x, list) for x in o.values()) for o in options)
    if kind in ("dict", "object") and isinstance(value, dict) and nested:
        return _dict_ok(value, options)
    return _norm(value) in [_norm(o) for o in options if o != ""]


def match_call(func: dict[str, Any] | None, call: Call, expected: dict[str, Any]) -> str | None:
    """Why `call` does not match one ground-truth entry `{name: {param: [values]}}` (None: it matches)."""
    (name, params), = expected.items()  # fmt: skip
    if not isinstance(call.name, str) or call.name not in (name, name.replace(".", "_")):
        return f"wrong function {call.name!r} (expected {name!r})"
    if not isinstance(call.arguments, dict):
        return f"arguments of {name} are not an object"
    schema = (func or {}).get("parameters") or {}
    props = schema.get("properties") or {}
    for p in schema.get("required") or []:
        if p not in call.arguments:
            return f"missing required parameter {p!r}"
    for p, v in call.arguments.items():
        if p not in props or p not in params:
            return f"unexpected parameter {p!r}"
        kind = props[p].get("type")
        items = (props[p].get("items") or {}).get("type") if isinstance(props[p].get("items"), dict) else None
        if not _type_ok(v, kind, items):
            return f"parameter {p!r}: {v!r} is not of type {kind}"
        if not _value_ok(v, params[p], kind):
            return f"parameter {p!r}: {v!r} is not one of {params[p]!r}"
    for p, vals in params.items():
        if p not in call.arguments and "" not in vals:
            return f"missing parameter {p!r}"
    return None


def ast_match(
    functions: list[dict[str, Any]], calls: list[Call], truth: list[dict[str, Any]], any_order: bool
) -> str | None:
    """Why the calls do not match the ground truth (None: they do). In order, or, for parallel
    calls, under some one-to-one assignment of calls to expected entries."""
    if not truth:
        return None if not calls else f"expected no call, got {len(calls)}"
    if len(calls) != len(truth):
        return f"expected {len(truth)} call(s), got {len(calls)}"
    by_name = {f.get("name"): f for f in functions}
    funcs = [by_name.get(next(iter(t))) for t in truth]
    if not any_order:
        for f, c, t in zip(funcs, calls, truth, strict=True):
            why = match_call(f, c, t)
            if why:
                return why
        return None
    first = None
    for perm in itertools.permutations(range(len(calls))):
        whys = [match_call(f, calls[j], t) for f, j, t in zip(funcs, perm, truth, strict=True)]
        bad = [w for w in whys if w]
        if not bad:
            return None
        first = first or bad[0]
    return first


def _messages(q: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(q, str):
        return [{"role": "user", "content": q}]
    if isinstance(q, list) and q and all(isinstance(t, list) for t in q):
        q = q[0]  # the first turn (single-turn categories have only one)
    if (
        isinstance(q, list)
        and q
        and all(isinstance(m, dict) and isinstance(m.get("content"), str) and m.get("role") for m in q)
    ):
        return [{"role": m["role"], "content": m["content"]} for m in q]
    raise UserError(f"{where}: field 'question' must be a string or a list of chat messages")


@TASKS.register("tools-bfcl")
class BfclTask:
    """BFCL-style function calling from a local JSONL file (--data), graded by AST match."""

    name = "tools-bfcl"
    source = "local BFCL-style JSONL (--data)"
    size = "the file's rows"
    metric = "accuracy (AST match of function name + arguments)"
    answer_type = "tool calls"
    episodic = True
    single_turn = True  # the first turn's calls are the answer; nothing is executed
    max_turns = 1

    def __init__(self, data: str | None = None, answers: str | None = None) -> None:
        if not data:
            raise UserError("task tools-bfcl needs --data PATH (a BFCL-style JSONL file)")
        self.path = Path(data)
        truth: dict[str, Any] = {}
        if answers:
            for n, row in read_jsonl(Path(answers), "tools-bfcl option answers"):
                if "id" not in row or "ground_truth" not in row:
                    raise UserError(f"{answers}:{n}: expected fields 'id' and 'ground_truth'")
                truth[str(row["id"])] = row["ground_truth"]
        self._problems = [self._problem(n, row, truth) for n, row in read_jsonl(self.path, "--data")]
        if not self._problems:
            raise UserError(f"{self.path}: no rows")

    def _problem(self, n: int, row: dict[str, Any], truth: dict[str, Any]) -> Problem:
        where = f"{self.path}:{n}"
        pid = str(row.get("id", f"bfcl-{n:06d}"))
        funcs = row.get("function")
        if isinstance(funcs, dict):
            funcs = [funcs]
        if not isinstance(funcs, list) or not all(
            isinstance(f, dict) and isinstance(f.get("name"), str) for f in funcs
        ):
            raise UserError(f"{where}: field 'function' must be a list of function docs with a 'name'")
        gt = row.get("ground_truth", truth.get(pid))
        if gt is None:
            raise UserError(f"{where}: no 'ground_truth' for id {pid!r} (in the row or in the answers file)")
        if isinstance(gt, dict):
            gt = [gt]
        if not isinstance(gt, list) or not all(
            isinstance(t, dict) and len(t) == 1 and isinstance(next(iter(t.values())), dict) for t in gt
        ):
            raise UserError(f"{where}: 'ground_truth' must be a list of {{function: {{param: [values]}}}}")
        for t in gt:
            for p, vals in next(iter(t.values())).items():
                if not isinstance(vals, list):
                    raise UserError(
                        f"{where}: ground truth of parameter {p!r} must be a list of acceptable values"
                    )
        messages = _messages(row.get("question"), where)
        tools = [{"type": "function", "function": to_json_schema(f)} for f in funcs]
        messages[0] = {**messages[0], "tools": tools}
        category = "irrelevance" if pid.startswith("irrelevance") else pid.rsplit("_", 1)[0]
        return Problem(
            task=self.name,
            id=pid,
            messages=messages,
            gold=json.dumps(gt),
            meta={"functions": funcs, "category": category, "parallel": "parallel" in category},
        )

    def problems(self, limit: int | None = None, seed: int = 0) -> list[Problem]:
        """The file's rows in order (the first `limit`)."""
        return self._problems[:limit] if limit else list(self._problems)

    def verify_calls(self, problem: Problem, calls: list[Call] | None) -> Verdict:
        """AST match of the calls (None: the model wrote a call that could not be read)."""
        if calls is None:
            return Verdict(False, None, "ast", detail="malformed call")
        extracted = json.dumps([{"name": c.name, "arguments": c.arguments} for c in calls], default=str)
        truth = json.loads(problem.gold)
        if problem.meta["category"] == "irrelevance":
            truth = []
        why = ast_match(problem.meta["functions"], calls, truth, problem.meta["parallel"])
        return Verdict(why is None, extracted, "ast", detail=why)

    def verify(self, problem: Problem, answer_text: str) -> Verdict:
        """Grade a whole text (a row drawn outside an episode): its calls, AST-matched."""
        parsed = parse_calls(answer_text)
        return self.verify_calls(problem, None if parsed.malformed else parsed.calls)
