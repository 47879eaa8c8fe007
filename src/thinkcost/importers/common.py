"""What every importer hands the writer, and the writer: a run made by another tool becomes a
thinkcost store, so CTIR, cost per correct answer and the HTML report work on runs already
paid for.

A reader (`lm_eval`, `evalscope`) turns the tool's files into `ImportedTask`s: problems with the
prompt as the tool sent it, the generated texts, and the tool's own verdicts. The writer then
does what an engine would have done at generation time, with the model's own tokenizer: the
reasoning split (thinkcost.reasoning) and the token counts. Two things the tool did not record
are stored as unknown rather than invented: timings (0 in the row, and the variant says
`timed: false`, so the report shows seconds columns as n/a), and, without `--tokenizer`, token
counts (0, `token_source` "unavailable", variant `token_counts: false`). Whitespace counts would
be easy and wrong: design.md forbids them.

Identity: the run id covers the tool, the task, the tokenizer, the reasoning format, the verdict
source and the run name, so the imports of a base model and of its quantized variant (each its
own `--variant`) land in one run and CTIR compares them. Each variant records the sha256 of the
files it was read from; importing the same files again changes nothing, and importing other
files under a variant that already holds rows is refused instead of mixing two runs' rows.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import UserError
from ..reasoning import KINDS, THINK_CLOSE, THINK_OPEN, ReasoningFormat, detect_format, format_of
from ..store import Store
from ..strategies import describe
from ..strategies.base import SamplingOptions, parse_strategy
from ..types import Completion, Problem, Verdict

# --reasoning-format: auto, or a stored format a tool's text can carry
FORMATS = ("auto", "think-in-output", "think-in-prompt", "none")


@dataclass(frozen=True)
class ImportedSample:
    """One generation as the tool stored it, with the tool's verdict; or, where the tool gave
    none for this sample, `grade`: a grader of the answer part (after the reasoning split)."""

    text: str
    verdict: Verdict | None
    finish_reason: str = "stop"
    grade: Callable[[str], Verdict] | None = None
    latency_s: float | None = None  # the tool's own per-sample time, when it recorded one


@dataclass(frozen=True)
class ImportedProblem:
    problem: Problem
    samples: list[ImportedSample]
    # the prompt exactly as the tool fed it to the model (a rendered chat template included), when
    # the tool recorded it; else the prompt is rendered from `problem.messages` for counting
    prompt_text: str | None = None
    max_new_tokens: int | None = None  # the tool's generation cap: reaching it means "length"


@dataclass
class ImportedTask:
    """One task of one tool run: the unit that becomes one thinkcost run."""

    tool: str
    task: str
    model: str  # the model as the tool named it
    problems: list[ImportedProblem]
    sources: list[Path]  # every file read: the variant's fingerprint
    temperature: float = 0.0
    verdict_source: str = ""  # e.g. "exact_match on filter strict"
    # the tool kept the reasoning apart from the answer (wrapped into the text as <think>R</think>)
    reasoning_field: bool = False
    # set when every sample carries the tool's own latency: how to read those seconds
    timing_note: str | None = None
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def samples_per_problem(self) -> int:
        return max((len(p.samples) for p in self.problems), default=1)


@dataclass(frozen=True)
class Imported:
    """What one task's import wrote."""

    run_id: str
    task: str
    variant: str
    problems: int
    added: int  # generations not stored before (0 on a re-import)
    stored: int  # generations of this variant in the run now
    strategy: str


def check_tasks(wanted: list[str] | None, found: list[str], directory: Path) -> None:
    unknown = [t for t in wanted or [] if t not in found]
    if unknown:
        raise UserError(
            f"--task {', '.join(unknown)}: not in {directory}; it holds {', '.join(sorted(set(found)))}"
        )


def read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    except json.JSONDecodeError as e:
        raise UserError(f"{path}:{e.lineno}: malformed JSON ({e.msg} at column {e.colno})") from None
    if not isinstance(obj, dict):
        raise UserError(f"{path}: expected a JSON object, got {type(obj).__name__}")
    return obj


def need(obj: dict[str, Any], key: str, where: str, kind: type | tuple[type, ...] = object) -> Any:
    """obj[key], or a UserError naming where it was expected and what type."""
    if key not in obj:
        raise UserError(f"{where}: missing field {key!r}")
    value = obj[key]
    if not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise UserError(f"{where}: field {key!r} should be {names}, got {type(value).__name__}")
    return value


def as_text(x: Any) -> str:
    """A tool's target / prediction as text: strings as they are, anything else as JSON."""
    return x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, default=str)


def files_hash(paths: list[Path]) -> str:
    h = hashlib.sha256()
    for p in sorted(paths, key=lambda p: p.name):
        h.update(p.name.encode() + b"\0" + hashlib.sha256(p.read_bytes()).hexdigest().encode() + b"\n")
    return h.hexdigest()


# --------------------------------------------------------------------------- tokenizer


@functools.cache
def load_tokenizer(name: str) -> Any:
    """The model's tokenizer: a packaged model name or .gguf (through resolve_model), a local dir,
    or a hub id; an unreachable hub is one clean UserError (models.load_pretrained). Loaded once
    per process: a GGUF's tokenizer takes seconds to read, and one import may name it per task."""
    from transformers import AutoTokenizer

    from ..models import PACKAGED, load_pretrained, resolve_model

    p = Path(name).expanduser()
    if name in PACKAGED or p.suffix == ".gguf":
        src = resolve_model(name)
        return load_pretrained(
            AutoTokenizer.from_pretrained, src.path, "--tokenizer", gguf_file=src.gguf_file
        )
    if p.is_dir():
        try:
            return AutoTokenizer.from_pretrained(str(p))
        except (OSError, ValueError) as e:
            raise UserError(
                f"--tokenizer {name!r}: no tokenizer could be loaded from this dir ({e})"
            ) from None
    if p.exists() or name.count("/") != 1 or name.startswith((".", "/", "~")):
        raise UserError(
            f"--tokenizer {name!r}: expected a packaged model name ({', '.join(PACKAGED)}), a .gguf file, "
            "a model dir or a hub id org/name"
        )
    return load_pretrained(AutoTokenizer.from_pretrained, name, "--tokenizer")


def _encode(tok: Any, text: str) -> list[int]:
    return list(tok(text, add_special_tokens=False)["input_ids"]) if text else []


def _tokens_covering(tok: Any, ids: list[int], n_chars: int) -> int:
    """Fewest leading tokens whose decoded text reaches `n_chars` characters (as the engines count
    reasoning tokens: the tokens up to where the answer starts)."""
    if n_chars <= 0:
        return 0
    lo, hi = 0, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(tok.decode(ids[:mid], skip_special_tokens=False)) >= n_chars:
            hi = mid
        else:
            lo = mid + 1
    return lo


# --------------------------------------------------------------------------- reasoning format


def choose_format(kind: str, task: ImportedTask, tok: Any) -> ReasoningFormat:
    """`--reasoning-format`: a fixed kind, or auto: think-in-prompt when the recorded prompts end
    inside an opened think block (the template opened it), else what the tokenizer's template says,
    else server-field when the tool kept the reasoning in its own field, else think-in-output when
    the texts carry think tags, else the `none` heuristic."""
    if kind not in FORMATS:
        raise UserError(f"--reasoning-format: expected one of {', '.join(FORMATS)}, got {kind!r}")
    if kind != "auto":
        return format_of(kind)
    prompts = [p.prompt_text for p in task.problems if p.prompt_text]
    if prompts and all(_ends_open(t) for t in prompts):
        return ReasoningFormat("think-in-prompt", "the recorded prompts end inside an opened <think> block")
    if task.reasoning_field:
        return format_of("server-field")
    if tok is not None and not prompts:
        fmt = detect_format(tok, "auto", "--tokenizer")
        if fmt.kind in ("think-in-prompt", "think-in-output"):
            return fmt
    if any(THINK_OPEN in s.text for p in task.problems for s in p.samples):
        return ReasoningFormat("think-in-output", "the imported texts open <think> blocks themselves")
    return format_of("none")


def _ends_open(prompt: str) -> bool:
    i = prompt.rfind(THINK_OPEN)
    return i != -1 and prompt.find(THINK_CLOSE, i) == -1


def _prompt_text(tok: Any, p: ImportedProblem) -> str:
    if p.prompt_text is not None:
        return p.prompt_text
    if callable(getattr(tok, "apply_chat_template", None)) and getattr(tok, "chat_template", None):
        return tok.apply_chat_template(p.problem.messages, add_generation_prompt=True, tokenize=False)
    return "\n".join(str(m.get("content", "")) for m in p.problem.messages)


def completion_of(
    s: ImportedSample, prompt: str, fmt: ReasoningFormat, tok: Any, cap: int | None
) -> Completion:
    """What an engine would have returned for this text: split and (with a tokenizer) counted;
    seconds are the tool's own latency, or 0 when it recorded none (the variant says so)."""
    secs = s.latency_s or 0.0
    if tok is None:
        sp = fmt.split(s.text, s.finish_reason)
        return Completion(
            text=s.text,
            reasoning_text=sp.reasoning,
            answer_text=sp.answer,
            prompt_tokens=0,
            completion_tokens=0,
            reasoning_tokens=0,
            answer_tokens=0,
            finish_reason=s.finish_reason,
            latency_s=secs,
            ttft_s=0.0,
            cost_s=secs,
            think_unclosed=sp.think_unclosed,
            reasoning_format=fmt.kind,
            token_source="unavailable",
        )
    ids = _encode(tok, s.text)
    finish = (
        "length" if cap is not None and len(ids) >= cap and s.finish_reason == "stop" else s.finish_reason
    )
    sp = fmt.split(s.text, finish)
    n_reason = len(ids) if sp.think_unclosed else min(len(ids), _tokens_covering(tok, ids, sp.answer_start))
    return Completion(
        text=s.text,
        reasoning_text=sp.reasoning,
        answer_text=sp.answer,
        prompt_tokens=len(_encode(tok, prompt)),
        completion_tokens=len(ids),
        reasoning_tokens=n_reason,
        answer_tokens=len(ids) - n_reason,
        finish_reason=finish,
        latency_s=secs,
        ttft_s=0.0,
        cost_s=secs,
        think_unclosed=sp.think_unclosed,
        reasoning_format=fmt.kind,
        token_ids=ids,
        token_source="tokenizer",
    )


# --------------------------------------------------------------------------- writer


def write_task(
    store: Store,
    task: ImportedTask,
    *,
    variant: str,
    tokenizer: str | None,
    tok: Any,
    reasoning_format: str = "auto",
    name: str | None = None,
) -> Imported:
    """Commit one imported task as a thinkcost run (module docstring: identity and unknowns)."""
    if not task.problems:
        raise UserError(f"{task.tool} task {task.task!r}: no samples to import in {task.sources[0]}")
    if reasoning_format not in KINDS and reasoning_format != "auto":
        raise UserError(f"--reasoning-format: expected one of {', '.join(FORMATS)}, got {reasoning_format!r}")
    fmt = choose_format(reasoning_format, task, tok)
    k = task.samples_per_problem
    temperature = task.temperature if k > 1 else 0.0
    strategy = parse_strategy(
        "greedy" if k == 1 else f"maj@{k}", SamplingOptions(temperature=temperature, top_p=1.0)
    )
    run_name = name or f"{task.tool}:{task.task}"
    identity = {
        "engine": f"import:{task.tool}",
        "tool": task.tool,
        "task": task.task,
        "model": task.model,
        "tokenizer": tokenizer,
        "reasoning_format": reasoning_format,
        "verdicts": task.verdict_source,
        "name": run_name,
    }
    run_id = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]
    fingerprint = {
        "sources_sha256": files_hash(task.sources),
        "sources": sorted(p.name for p in task.sources),
    }
    old = store.note(run_id, f"fingerprint:{variant}")
    if old is not None and old != fingerprint and store.count(run_id, variant):
        raise UserError(
            f"variant {variant!r} of run {run_id} already holds rows imported from other files "
            f"({', '.join(old.get('sources', []))}); import these as another --variant, or into another store"
        )
    _check_problems(store, run_id, task)
    store.ensure_run(run_id, run_name, identity)
    store.put_note(run_id, f"fingerprint:{variant}", fingerprint)
    store.put_note(
        run_id, f"import:{variant}", {"tool": task.tool, "files": [str(p) for p in task.sources]} | task.notes
    )
    store.put_problems(
        run_id, [p.problem for p in task.problems], positions=[i for i, _ in enumerate(task.problems)]
    )
    timed = task.timing_note is not None
    timing = (
        task.timing_note
        if timed
        else f"Imported from {task.tool}: it records no per-sample timings, so seconds per correct answer, "
        "tokens/s and the effective speed-up are n/a."
    )
    if tok is None:
        timing += " No --tokenizer was given, so token counts (and CTIR) are n/a."
    stored_variants = [v["variant"] for v in store.variants(run_id)]
    store.put_variant(
        run_id,
        variant,
        stored_variants.index(variant) if variant in stored_variants else len(stored_variants),
        {
            "engine": f"import:{task.tool}",
            "model": task.model,
            "imported_from": task.tool,
            "timed": timed,
            "token_counts": tok is not None,
            "timing_note": timing,
            "reasoning_format": fmt.kind,
            "reasoning_format_why": fmt.why,
        },
    )
    store.put_strategy(
        run_id,
        strategy.name,
        0,
        describe(strategy)
        | {"options": {"temperature": temperature, "top_p": 1.0, "wait_words": [], "confidence": None}},
    )
    added = 0
    for p in task.problems:
        prompt = _prompt_text(tok, p) if tok is not None else ""
        for i, s in enumerate(p.samples):
            c = completion_of(s, prompt, fmt, tok, p.max_new_tokens)
            verdict = s.verdict
            if verdict is None:
                assert s.grade is not None, "an imported sample needs a verdict or a grader"
                verdict = s.grade(c.answer_text)
            added += store.put_generation(
                run_id, variant, p.problem.id, strategy.recipe.key, i, c, verdict, 1
            )
    return Imported(
        run_id=run_id,
        task=task.task,
        variant=variant,
        problems=len(task.problems),
        added=added,
        stored=store.count(run_id, variant),
        strategy=strategy.name,
    )


def _check_problems(store: Store, run_id: str, task: ImportedTask) -> None:
    """A second variant's files must hold the same questions (same ids, prompts and answers), or
    CTIR would compare different problems under one id."""
    stored = store.problems(run_id)
    if stored.empty:
        return
    have = {r.problem_id: (r.messages, r.gold) for r in stored.itertuples()}
    for p in task.problems:
        old = have.get(p.problem.id)
        if old is not None and old != (p.problem.messages, p.problem.gold):
            raise UserError(
                f"{task.tool} task {task.task!r}: problem {p.problem.id!r} has another prompt or answer than "
                f"the one stored in run {run_id}; import it with another --name"
            )
