"""lm-evaluation-harness `--log_samples` output as imported tasks.

Layout (lm-eval 0.4): `--output_path DIR` holds one folder per model (its sanitized name) with
`results_<date>.json` (the run's configs, model name, aggregate scores) and, per task,
`samples_<task>_<date>.jsonl`: one line per (document, filter) with `doc_id`, `doc`, `target`,
`arguments` (the prompt as sent, chat template applied, and the generation kwargs), `resps`
(per request, the list of `repeats` responses), `filtered_resps`, `filter`, and the value of
each per-sample metric under its own name (`"exact_match": 1.0`).

Verdicts are the tool's: the per-sample metric on the chosen filter, correct when it gives full
credit (>= 1). With `repeats` > 1 lm-eval scores only the filtered response (take-first,
majority vote): there is no per-sample verdict to take, so every sample is graded by thinkcost's
numeric checker against lm-eval's target, and the store says so (rule and detail).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..jsonl import read_jsonl
from ..types import Problem, Verdict
from ..verify.math import verify_numeric
from ..verify.math_answer import parse_number
from .common import (
    ImportedProblem,
    ImportedSample,
    ImportedTask,
    as_text,
    check_tasks,
    need,
    read_json,
)

TOOL = "lm-eval"
_DATE = r"\d{4}-\d{2}-\d{2}T[0-9\-.]+"
_RESULTS = re.compile(rf"^results_(?P<date>{_DATE})\.json$")
_SAMPLES = re.compile(rf"^samples_(?P<task>.+)_(?P<date>{_DATE})\.jsonl$")


def read(
    directory: Path,
    *,
    tasks: list[str] | None = None,
    filter_name: str | None = None,
    metric: str | None = None,
) -> list[ImportedTask]:
    """Every task (or those named) of every lm-eval run found under `directory` (the
    --output_path or one model folder)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"lm-eval output {str(directory)!r} is not a directory")
    samples = sorted(p for p in directory.rglob("samples_*.jsonl") if _SAMPLES.match(p.name))
    if not samples:
        raise UserError(
            f"{directory}: no lm-eval samples_<task>_<date>.jsonl files (expected the --output_path of a run "
            "made with --log_samples)"
        )
    found = {p: _SAMPLES.match(p.name)["task"] for p in samples}  # type: ignore[index]
    check_tasks(tasks, list(found.values()), directory)
    out = []
    for path in samples:
        m = _SAMPLES.match(path.name)
        assert m is not None
        if tasks and m["task"] not in tasks:
            continue
        results_path = path.with_name(f"results_{m['date']}.json")
        results = read_json(results_path) if results_path.is_file() else {}
        out.append(_read_task(path, m["task"], results, results_path, filter_name, metric))
    return out


def _read_task(
    path: Path,
    task: str,
    results: dict[str, Any],
    results_path: Path,
    filter_name: str | None,
    metric: str | None,
) -> ImportedTask:
    lines = list(read_jsonl(path))
    if not lines:
        raise UserError(f"{path}: empty samples file")
    filters = list(dict.fromkeys(str(obj.get("filter", "none")) for _, obj in lines))
    chosen = filter_name if filter_name is not None else filters[0]
    if chosen not in filters:
        raise UserError(f"--filter {chosen!r}: {path} holds filters {', '.join(filters)}")
    config = (results.get("configs") or {}).get(task, {}) if isinstance(results.get("configs"), dict) else {}
    gen_kwargs = config.get("generation_kwargs") or {}
    problems: list[ImportedProblem] = []
    seen: set[str] = set()
    metric_used: str | None = None
    regraded = False
    temperature = 0.0
    for n, obj in lines:
        if str(obj.get("filter", "none")) != chosen:
            continue
        where = f"{path}:{n}"
        doc_id = need(obj, "doc_id", where, (int, str))
        pid = str(doc_id)
        if pid in seen:
            raise UserError(f"{where}: doc_id {pid} appears twice for filter {chosen!r}")
        seen.add(pid)
        prompt, kwargs = _arguments(need(obj, "arguments", where, (dict, list)), where)
        resps = need(obj, "resps", where, list)
        if not resps or not isinstance(resps[0], list) or not all(isinstance(r, str) for r in resps[0]):
            raise UserError(f"{where}: field 'resps' should be [[response, ...]] (a generate_until task)")
        texts: list[str] = resps[0]
        names = [x for x in obj.get("metrics", []) if isinstance(x, str)]
        key = metric or (names[0] if names else None)
        if key is None or key not in obj:
            raise UserError(
                f"{where}: no per-sample metric {key or ''!r} in the line (metrics: {', '.join(names) or 'none'}); "
                "choose one with --metric"
            )
        metric_used = key
        value = obj[key]
        if not isinstance(value, (int, float)):
            raise UserError(f"{where}: metric {key!r} should be a number, got {type(value).__name__}")
        target = as_text(obj.get("target", ""))
        filtered = obj.get("filtered_resps") or [None]
        extracted = as_text(filtered[0]) if filtered[0] is not None else None
        verdicts: list[Verdict | None]
        note = ""
        if len(texts) == 1:
            verdicts = [
                Verdict(
                    correct=float(value) >= 1.0,
                    extracted=extracted,
                    rule=f"lm-eval:{key}",
                    detail=f"lm-eval {key}={value} on filter {chosen!r}",
                )
            ]
        else:
            if parse_number(target) is None:
                raise UserError(
                    f"{where}: {len(texts)} responses per document, but lm-eval scored only the filtered one "
                    f"and the target {target!r} is not a number thinkcost can grade each response against"
                )
            regraded = True
            verdicts = [None] * len(texts)
            note = f"graded by thinkcost (lm-eval scored only its filtered response: {key}={value} on filter {chosen!r})"
            if kwargs.get("do_sample"):
                temperature = float(kwargs.get("temperature", 1.0) or 0.0)
        cap = kwargs.get("max_gen_toks", gen_kwargs.get("max_gen_toks"))
        problems.append(
            ImportedProblem(
                problem=Problem(
                    task=task,
                    id=pid,
                    messages=[{"role": "user", "content": prompt}],
                    gold=target,
                    meta={"source": TOOL, "doc": obj.get("doc"), "filter": chosen},
                ),
                samples=[
                    ImportedSample(t, v, grade=None if v is not None else _numeric(target, note))
                    for t, v in zip(texts, verdicts, strict=True)
                ],
                prompt_text=prompt,
                max_new_tokens=int(cap) if isinstance(cap, int) else None,
            )
        )
    model = str(results.get("model_name") or path.parent.name)
    sources = [path] + ([results_path] if results else [])
    source = (
        f"thinkcost numeric check of each response (lm-eval {metric_used} scores one per document)"
        if regraded
        else f"lm-eval {metric_used} on filter {chosen}"
    )
    return ImportedTask(
        tool=TOOL,
        task=task,
        model=model,
        problems=problems,
        sources=sources,
        temperature=temperature,
        verdict_source=source,
        notes={
            "lm_eval_version": results.get("lm_eval_version"),
            "filters": filters,
            "filter": chosen,
            "metric": metric_used,
            "total_evaluation_time_seconds": results.get("total_evaluation_time_seconds"),
        },
    )


def _numeric(target: str, note: str):
    def grade(answer: str) -> Verdict:
        v = verify_numeric(answer, target)
        return Verdict(v.correct, v.extracted, f"thinkcost-numeric:{v.rule}", note)

    return grade


def _arguments(args: Any, where: str) -> tuple[str, dict[str, Any]]:
    """(prompt, generation kwargs) of the first request: lm-eval >= 0.4.3 writes
    {"gen_args_0": {"arg_0": prompt, "arg_1": kwargs}}, older versions [[prompt, kwargs]]."""
    first: Any
    if isinstance(args, dict):
        first = args.get("gen_args_0")
        parts = [first.get("arg_0"), first.get("arg_1")] if isinstance(first, dict) else None
    else:
        parts = list(args[0]) if args and isinstance(args[0], list) else None
    if not parts or not isinstance(parts[0], str):
        raise UserError(
            f"{where}: field 'arguments' does not hold a generation prompt (expected a generate_until task)"
        )
    kwargs = parts[1] if len(parts) > 1 and isinstance(parts[1], dict) else {}
    return parts[0], kwargs
