"""EvalScope (ModelScope's evaluation framework) outputs as imported tasks.

Layout (evalscope 1.x, its `--work-dir`, or one timestamped run folder under it):
`reviews/<model>/<dataset>_<subset>.jsonl` holds one line per generated sample: `index` (the
sample id), `target` (accepted answers), `messages` (the prompt and the model's reply), and
`sample_score` with `group_id` (the problem), `generation_index` (the repeat) and `score`:
`value` (metric name -> value), `main_score_name`, `extracted_prediction`. The matching
`predictions/<model>/<same name>.jsonl` has the model output per `index`: its `stop_reason` and
`perf_metrics.latency` (seconds for that sample). `configs/task_config.yaml` records the
generation settings and the number of repeats.

Verdicts are the tool's: the main score of the review, correct when it gives full credit (>= 1).
Latency is evalscope's own per-sample figure; with `eval_batch_size` > 1 requests overlapped, so
their sum (seconds per correct answer) is an upper bound of the wall time, and the report says so.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import UserError
from ..jsonl import read_jsonl
from ..reasoning import THINK_CLOSE, THINK_OPEN
from ..types import Problem, Verdict
from .common import ImportedProblem, ImportedSample, ImportedTask, as_text, check_tasks, need

TOOL = "evalscope"


def read(directory: Path, *, tasks: list[str] | None = None) -> list[ImportedTask]:
    """Every (model, dataset subset) review file found under `directory` (or those named: the
    file's name without .jsonl, e.g. gsm8k_main)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise UserError(f"evalscope output {str(directory)!r} is not a directory")
    reviews = sorted(p for p in directory.rglob("*.jsonl") if p.parent.parent.name == "reviews")
    if not reviews:
        raise UserError(
            f"{directory}: no evalscope reviews/<model>/<dataset>.jsonl files (expected an evalscope work dir "
            "with predictions/ and reviews/)"
        )
    check_tasks(tasks, [p.stem for p in reviews], directory)
    return [_read_task(p) for p in reviews if not tasks or p.stem in tasks]


def _config(root: Path) -> dict[str, Any]:
    path = root / "configs" / "task_config.yaml"
    if not path.is_file():
        return {}
    import yaml

    try:
        cfg = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise UserError(f"{path}: cannot read the evalscope task config ({e})") from None
    return cfg if isinstance(cfg, dict) else {}


def _predictions(path: Path) -> dict[int, tuple[int, dict[str, Any]]]:
    out: dict[int, tuple[int, dict[str, Any]]] = {}
    if path.is_file():
        for n, obj in read_jsonl(path):
            out[need(obj, "index", f"{path}:{n}", int)] = (n, obj)
    return out


def _reply(messages: list[Any], where: str) -> tuple[list[dict[str, str]], str, bool]:
    """(prompt messages, the model's reply, whether the reply had a reasoning part)."""
    msgs = []
    thought = ""
    for m in messages:
        thought = ""  # the reply's (the last message's) reasoning is what counts
        if not isinstance(m, dict) or not isinstance(m.get("role"), str):
            raise UserError(f"{where}: field 'messages' should hold {{role, content}} objects")
        content = m.get("content")
        if not isinstance(content, str):  # multi-part content: reasoning parts, then the text parts
            parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
            thought = "".join(str(p.get("reasoning", "")) for p in parts if p.get("type") == "reasoning")
            text = "".join(str(p.get("text", "")) for p in parts if p.get("type", "text") == "text")
            # as a server's reasoning field is stored (reasoning.py, server-field): <think>R</think>answer
            content = f"{THINK_OPEN}{thought}{THINK_CLOSE}{text}" if thought else text
        msgs.append({"role": m["role"], "content": content})
    if not msgs or msgs[-1]["role"] != "assistant":
        raise UserError(
            f"{where}: field 'messages' does not end with the model's reply (an assistant message)"
        )
    return msgs[:-1], msgs[-1]["content"], bool(thought)


def _read_task(path: Path) -> ImportedTask:
    root = path.parent.parent.parent
    model = path.parent.name
    cfg = _config(root)
    preds_path = root / "predictions" / model / path.name
    preds = _predictions(preds_path)
    groups: dict[int, list[tuple[int, ImportedSample]]] = {}
    prompts: dict[int, tuple[list[dict[str, str]], str, str]] = {}
    reasoning_field = False
    batch = int((cfg.get("generation_config") or {}).get("batch_size") or cfg.get("eval_batch_size") or 1)
    for n, obj in read_jsonl(path):
        where = f"{path}:{n}"
        index = need(obj, "index", where, int)
        sc = need(obj, "sample_score", where, dict)
        score = need(sc, "score", f"{where} sample_score", dict)
        values = need(score, "value", f"{where} sample_score.score", dict)
        main = score.get("main_score_name") or (next(iter(values)) if values else None)
        if main not in values or not isinstance(values[main], (int, float, bool)):
            raise UserError(f"{where}: sample_score.score.value has no numeric main score {main!r}")
        value = float(values[main])
        group = sc.get("group_id", index)
        gen = sc.get("generation_index", 0)
        if not isinstance(group, int) or not isinstance(gen, int):
            raise UserError(f"{where}: sample_score group_id and generation_index should be integers")
        prompt, text, thought = _reply(need(obj, "messages", where, list), where)
        reasoning_field = reasoning_field or thought
        targets = obj.get("target") or []
        gold = as_text(targets[0]) if isinstance(targets, list) and len(targets) == 1 else as_text(targets)
        extracted = score.get("extracted_prediction")
        finish, latency = "stop", None
        if index in preds:
            _, pred = preds[index]
            choices = ((pred.get("model_output") or {}).get("choices")) or [{}]
            if choices[0].get("stop_reason") in ("max_tokens", "model_length"):
                finish = "length"
            perf = (pred.get("model_output") or {}).get("perf_metrics") or {}
            if isinstance(perf.get("latency"), (int, float)):
                latency = float(perf["latency"])
        verdict = Verdict(
            correct=value >= 1.0,
            extracted=None if extracted is None else as_text(extracted),
            rule=f"evalscope:{main}",
            detail=f"evalscope {main}={value:g}",
        )
        old = prompts.setdefault(group, (prompt, gold, where))
        if (old[0], old[1]) != (prompt, gold):
            raise UserError(f"{where}: group {group} has another prompt or target than at {old[2]}")
        groups.setdefault(group, []).append((gen, ImportedSample(text, verdict, finish, latency_s=latency)))
    problems = []
    task = path.stem
    for group in sorted(groups):
        samples = sorted(groups[group], key=lambda x: x[0])
        gens = [g for g, _ in samples]
        if gens != list(range(len(gens))):
            raise UserError(
                f"{path}: problem {group} has generation indices {gens}, expected 0..{len(gens) - 1} (a partial run?)"
            )
        prompt, gold, _ = prompts[group]
        problems.append(
            ImportedProblem(
                problem=Problem(task=task, id=str(group), messages=prompt, gold=gold, meta={"source": TOOL}),
                samples=[s for _, s in samples],
                max_new_tokens=_int((cfg.get("generation_config") or {}).get("max_tokens")),
            )
        )
    counts = {len(p.samples) for p in problems}
    if len(counts) > 1:
        raise UserError(
            f"{path}: problems hold different numbers of samples ({sorted(counts)}); a partial run?"
        )
    gen_cfg = cfg.get("generation_config") or {}
    temperature = float(gen_cfg.get("temperature") or 0.0) if gen_cfg.get("do_sample", True) else 0.0
    timed = bool(problems) and all(s.latency_s is not None for p in problems for s in p.samples)
    return ImportedTask(
        tool=TOOL,
        task=task,
        model=str(cfg.get("model_id") or model),
        problems=problems,
        sources=[path] + ([preds_path] if preds_path.is_file() else []),
        temperature=temperature,
        verdict_source=f"evalscope main score of {path.name}",
        reasoning_field=reasoning_field,
        timing_note=(
            "Timings are evalscope's per-sample latencies"
            + (
                f"; it ran {batch} requests at once, so their sum overstates the wall time"
                if batch > 1
                else ""
            )
            + "."
        )
        if timed
        else None,
        notes={"evalscope_version": cfg.get("evalscope_version"), "repeats": cfg.get("repeats")},
    )


def _int(x: Any) -> int | None:
    return x if isinstance(x, int) and not isinstance(x, bool) else None
