"""Spec -> work items -> engine -> store. Skips what the store already holds, so rerunning
the same command resumes; loads the model only when there is work left."""

from __future__ import annotations

import dataclasses
import json
import platform
import time
import uuid
from dataclasses import asdict, dataclass, is_dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from . import __version__
from .engines.base import Completion
from .errors import UserError
from .hashing import source_hash
from .metrics.outcomes import outcomes
from .metrics.summary import VariantSummary, summarize
from .models import PACKAGED, resolve_model
from .reasoning import format_of
from .spec import RunSpec
from .store import Store
from .strategies import Recipe, SamplingOptions, Strategy, describe, parse_strategy
from .strategies.confidence import CONFIDENCE_INSTRUCTION, sample_confidence, strip_confidence
from .tasks import get_task
from .tasks.base import Problem, Verdict

# The verdict of a request that finally failed: not an answer, so never correct.
_FAILED = Verdict(correct=False, extracted=None, rule="failed", detail="request failed")


@dataclass
class RunResult:
    run_id: str
    store_path: Path
    rows: list[VariantSummary]
    outputs: dict[str, Path]
    generated: int


@dataclass
class WorkItem:
    """Samples still to draw for one (variant, recipe, problem)."""

    variant: str
    recipe: Recipe
    problem: Problem
    sample_ids: tuple[int, ...]


def plan_recipes(strategies: list[Strategy]) -> dict[str, Recipe]:
    """One recipe per key, drawing as many samples as its most demanding strategy needs."""
    recipes: dict[str, Recipe] = {}
    for s in strategies:
        r = s.recipe
        if r.key in recipes and recipes[r.key].n >= r.n:
            continue
        recipes[r.key] = r
    return recipes


def plan_work(store: Store, run_id: str, spec: RunSpec, problems: list[Problem], recipes) -> list[WorkItem]:
    """What the store lacks. Independent samples are drawn individually (sample i is seeded by
    i alone); a short-m@k group is drawn whole, since its samples stop each other."""
    items = []
    for v in spec.variants:
        for key, r in recipes.items():
            done = store.done_keys(run_id, v, key)
            for p in problems:
                missing = tuple(i for i in range(r.n) if (p.id, i) not in done)
                if missing and r.stop_after is not None:
                    missing = tuple(range(r.n))
                if missing:
                    items.append(WorkItem(v, r, p, missing))
    return items


def run(spec: RunSpec, console: Console | None = None, engine=None) -> RunResult:
    """`engine`: an already-built engine to use instead of loading the spec's model (tests
    inject a deterministic scripted engine); variants are then labels, nothing is quantized."""
    console = console or Console()
    task = get_task(spec.task, **spec.task_kwargs())
    strategies = spec.strategies()
    # fails fast if not installed; a served model (openai engine) is only a name on the server
    source = resolve_model(spec.model) if engine is None and spec.engine != "openai" else None
    problems = task.problems(spec.limit, spec.seed)
    store = Store(spec.store_path())
    run_id = spec.run_id()
    store.ensure_run(run_id, spec.run_name(), spec.identity())
    check_fingerprints(store, run_id, spec, source)
    store.put_problems(run_id, problems)
    skipped = [asdict(b) if is_dataclass(b) else b for b in getattr(task, "skipped", None) or []]
    if skipped:
        store.put_note(run_id, "skipped_rows", skipped)
        first = skipped[0]
        console.print(
            f"[yellow]skipped {len(skipped)} malformed row(s)[/] (--skip-bad-rows); first: "
            + escape(
                ", ".join(
                    f"{k}={v}" for k, v in (first.items() if isinstance(first, dict) else [("row", first)])
                )
            )
        )
    options = {
        "temperature": spec.temperature,
        "top_p": spec.top_p,
        "wait_words": list(spec.wait_words),
        "confidence": spec.confidence,
    }
    for i, s in enumerate(strategies):
        store.put_strategy(run_id, s.name, i, describe(s) | {"options": options})
    recipes = plan_recipes(strategies)
    items = plan_work(store, run_id, spec, problems, recipes)
    total = sum(len(it.sample_ids) for it in items)
    generated = 0
    if total:
        stored = store.count(run_id)
        console.print(
            f"[bold]thinkcost[/] {escape(spec.run_name())}: {total} samples to draw "
            f"({len(recipes)} recipe(s) for {escape(', '.join(s.name for s in strategies))}; {stored} already in "
            f"{escape(str(spec.store_path()))})"
        )
        generated = _generate(spec, source, task, items, store, run_id, console, total, engine)
    else:
        console.print(
            f"[bold]thinkcost[/] {escape(spec.run_name())}: everything is already in {escape(str(spec.store_path()))}"
        )
    _score_with_reward_models(spec, strategies, store, run_id, problems, console)
    rows, outputs = build_report(
        store,
        run_id,
        spec.out_dir(),
        variants=spec.variants,
        reference=spec.reference,
        strategies=[s.name for s in strategies],
    )
    store.close()
    return RunResult(run_id, spec.store_path(), rows, outputs, generated)


def _generate(
    spec, source, task, items, store: Store, run_id: str, console: Console, total: int, engine
) -> int:
    from .engines import ENGINES

    backend = ENGINES.get(spec.engine)(spec, source, task, console) if engine is None else None
    n = 0
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[tps]}"),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=console, transient=False) as progress:
            bar = progress.add_task("generating", total=total, tps="")
            for position, variant in enumerate(spec.variants):
                mine = [it for it in items if it.variant == variant]
                if not mine:
                    continue
                info: dict[str, Any] = {"engine": spec.engine}
                eng = engine
                if backend is not None:

                    def status(text: str, v=variant) -> None:
                        progress.update(bar, description=f"{v:>14} ({text})")

                    eng, info = backend.prepare(variant, status)
                progress.update(bar, description=f"{variant:>14}")
                store.put_variant(run_id, variant, position, info)
                n += _generate_variant(spec, task, mine, variant, eng, store, run_id, progress, bar)
    finally:
        if backend is not None:
            backend.close()
    return n


def _generate_variant(spec, task, mine, variant, engine, store: Store, run_id, progress, bar) -> int:
    """Draw one variant's samples, committing each the moment it finishes."""
    n, tokens, secs = 0, 0, 0.0
    failed: list[str] = []
    requests = [
        it.recipe.request(
            it.problem,
            max_new_tokens=spec.max_new_tokens,
            seed=spec.seed,
            sample_ids=it.sample_ids,
            confidence_instruction=CONFIDENCE_INSTRUCTION,
        )
        for it in mine
    ]
    call_ids = [uuid.uuid4().hex[:16] for _ in mine]

    def commit(i: int, sample: int, c: Completion) -> None:
        nonlocal n, tokens, secs
        it = mine[i]
        # a stated confidence ("Confidence: 90%") is not part of the answer: the split would take
        # it for the answer line and the last-number fallback would grade the 90
        answer = (
            format_of(c.reasoning_format)
            .split(strip_confidence(c.text), "length" if c.finish_reason == "cancelled" else c.finish_reason)
            .answer
            if it.recipe.verbal
            else c.answer_text
        )
        verdict = task.verify(it.problem, answer) if c.finish_reason != "error" else _FAILED
        if c.finish_reason == "error":
            failed.append(f"{it.problem.id}#{sample}: {c.error}")
        new = store.put_generation(
            run_id,
            variant,
            it.problem.id,
            it.recipe.key,
            sample,
            c,
            verdict,
            spec.batch_size,
            call_id=call_ids[i],
            confidence=sample_confidence(
                "verbal" if it.recipe.verbal else spec.confidence, c.answer_text, c.answer_logprobs
            )
            if c.finish_reason != "error"
            else None,
        )
        tokens += c.completion_tokens
        secs += c.cost_s
        if new:
            n += 1
            progress.update(bar, advance=1, tps=f"{tokens / max(secs, 1e-9):.1f} tok/s")

    engine.generate(requests, on_complete=commit)
    if failed:
        progress.console.print(
            f"[yellow]{escape(variant)}: {len(failed)} request(s) failed after retries[/] (stored with their "
            f"reason; rerun the same command to retry them); first: {escape(str(failed[0]))}"
        )
    return n


def _score_with_reward_models(spec, strategies, store: Store, run_id: str, problems, console) -> None:
    """bon@k:rm:MODEL: score every stored sample the strategy reads that has no score yet."""
    wanted = [s for s in strategies if s.scorer and s.scorer.startswith("rm:")]
    if not wanted:
        return
    from .strategies.reward_model import RewardModel

    gens = store.generations(run_id)
    have = store.scores(run_id)
    done = set(
        zip(
            have["variant"], have["problem_id"], have["strategy"], have["sample"], have["scorer"], strict=True
        )
    )
    by_id = {p.id: p for p in problems}
    for s in wanted:
        todo = gens[(gens["strategy"] == s.recipe.key) & (gens["sample"] < s.recipe.n)]
        todo = todo[
            [
                (v, pid, k, int(i), s.scorer) not in done
                for v, pid, k, i in zip(
                    todo["variant"], todo["problem_id"], todo["strategy"], todo["sample"], strict=True
                )
            ]
        ]
        if todo.empty:
            continue
        from .engines.hf import pick_device

        with console.status(f"loading reward model {s.scorer[3:]}"):
            rm = RewardModel(s.scorer[3:], device=pick_device(spec.device))
        for (v, pid), grp in todo.groupby(["variant", "problem_id"], sort=False):
            t = time.perf_counter()
            values = rm.score(by_id[pid].messages, list(grp["text"]))
            each = (time.perf_counter() - t) / len(grp)
            store.put_scores(
                run_id,
                [
                    (v, pid, s.recipe.key, int(i), s.scorer, float(x), each)
                    for i, x in zip(grp["sample"], values, strict=True)
                ],
            )


def variant_fingerprint(spec: RunSpec, model_sha256: str | None, variant: str) -> dict[str, Any]:
    """What a variant's rows depend on beyond the run id: the content hash of the model it is
    built from and whatever its engine declares (a checkpoint's files, calibration settings)."""
    from .engines import ENGINES

    fp: dict[str, Any] = {"model_sha256": model_sha256} if model_sha256 else {}
    declare = getattr(ENGINES.get(spec.engine), "fingerprint", None)
    if declare is not None:
        fp |= declare(spec, variant)
    return fp


def check_fingerprints(store: Store, run_id: str, spec: RunSpec, source) -> None:
    """Refuse, before any work, to add rows to a variant whose inputs changed since its stored
    rows were made (a rewritten checkpoint, other calibration data): that would silently mix
    two different models under one name. Records the fingerprint of every variant."""
    model_sha = source_hash(spec.model, source) if source is not None else None
    for v in spec.variants:
        fp = variant_fingerprint(spec, model_sha, v)
        old = store.note(run_id, f"fingerprint:{v}")
        if old is not None and old != fp and store.count(run_id, v):
            key = next(k for k in sorted(set(old) | set(fp)) if old.get(k) != fp.get(k))
            raise UserError(
                f"variant {v!r}: {key} changed since its rows were stored ({_short(old.get(key))} -> "
                f"{_short(fp.get(key))}); use another --name or --store for the new one, or delete {store.path}"
            )
        if old != fp:
            store.put_note(run_id, f"fingerprint:{v}", fp)


def _short(x: Any) -> str:
    s = "unset" if x is None else str(x)
    return s[:12] if len(s) == 64 else s  # sha256 digests: their first 12 hex digits


def build_calibration(spec: RunSpec, task, tok):
    """Token windows for GPTQ/Babai: the task's own prompts unless a file is given."""
    from .quant.calibration import calibration_windows, texts_from_file, texts_from_task

    if spec.calib_file is not None:
        texts = texts_from_file(spec.calib_file)
    else:
        texts = texts_from_task(task, tok, n_texts=max(64, spec.calib_samples * 2), seed=spec.seed)
    return calibration_windows(texts, tok, spec.calib_samples, spec.calib_seq_len, spec.seed)


def stored_strategies(store: Store, run_id: str) -> list[Strategy]:
    """The run's strategies, re-parsed from what the store recorded (stores written before
    strategies existed hold greedy rows only)."""
    out = []
    for info in store.strategies(run_id):
        opts = info.get("options", {})
        options = SamplingOptions(
            temperature=opts.get("temperature", 0.7),
            top_p=opts.get("top_p", 0.95),
            wait_words=tuple(opts.get("wait_words", SamplingOptions().wait_words)),
        )
        s = parse_strategy(info["name"], options)
        if opts.get("confidence") == "verbal":  # as RunSpec.strategies(): the prompt asked for it
            s = dataclasses.replace(s, recipe=dataclasses.replace(s.recipe, verbal=True))
        out.append(s)
    return out or [parse_strategy("greedy")]


_ENGINE_NOTES = {
    "hf": "RTN/GPTQ/Babai variants on the hf engine are fake-quantized (dequantized float weights): their "
    "tokens/s is the base model's, so the effective speed-up shows only the cost of extra tokens and lost "
    "accuracy. Use --engine llamacpp with gguf:TYPE variants for real low-bit kernels.",
    "llamacpp": "gguf:TYPE variants run on llama.cpp's quantized kernels, all quantized from one F32 GGUF "
    "holding the base weights: tokens/s and the effective speed-up are real for this CPU.",
    "openai": "Timings are the server's as seen by the client (network and queueing included).",
    "vllm": "Timings are vLLM's on its GPU host.",
}


def build_report(
    store: Store,
    run_id: str,
    out_dir: Path,
    variants: list[str] | None = None,
    reference: str | None = None,
    n_boot: int = 2000,
    strategies: list[str] | None = None,
) -> tuple[list[VariantSummary], dict[str, Path]]:
    """Summary rows per (variant, strategy), curves and files, from the store alone."""
    from .metrics.scaling import scaling_curves
    from .report.table import write_outputs

    stored = store.variants(run_id)
    names = variants or [v["variant"] for v in stored]
    info = {v["variant"]: v for v in stored}
    gens = store.generations(run_id)
    known = stored_strategies(store, run_id)
    chosen = [s for s in known if strategies is None or s.name in strategies]
    outs = outcomes(gens, chosen, store.scores(run_id))
    present = [v for v in names if v in set(outs["variant"])]
    reference = (
        reference if reference in present else ("base" if "base" in present else (present or [None])[0])
    )
    rows = (
        summarize(
            outs, present, reference, strategies=[s.name for s in chosen], variant_info=info, n_boot=n_boot
        )
        if present
        else []
    )
    runs = {r["run_id"]: r for r in store.runs()}
    meta: dict[str, Any] = {
        "run_id": run_id,
        "run_name": runs[run_id]["name"],
        "spec": runs[run_id]["spec"],
        "reference": reference,
        "strategies": [describe(s) for s in chosen],
        "skipped_rows": store.note(run_id, "skipped_rows") or [],
        "store": str(store.path),
        "thinkcost": __version__,
        "python": platform.python_version(),
        "note": _ENGINE_NOTES.get(runs[run_id]["spec"].get("engine", "hf"), ""),
    }
    from .metrics.reasoning_split import reasoning_formats, reasoning_note

    formats = reasoning_formats(gens[gens["variant"].isin(present)], info, present)
    meta["reasoning_formats"] = formats
    if formats:
        meta["reasoning_note"] = reasoning_note(formats)
    model_name = runs[run_id]["spec"].get("model", "")
    if model_name in PACKAGED or str(model_name).endswith(".gguf"):
        meta["base_note"] = (
            "base is a GGUF checkpoint (for the packaged default: mostly Q5_0/Q4_K) dequantized to float; "
            "ratios are relative to an already low-bit model. Use an fp16/bf16 hub model for research runs."
        )
    task_name = runs[run_id]["spec"].get("task")
    if task_name in ("injection", "extraction"):  # attack success / leaks per (variant, recipe)
        from .metrics.robustness import attack_rates

        rates = attack_rates(gens[gens["variant"].isin(present)], store.problems(run_id))
        meta["robustness"] = json.loads(rates.to_json(orient="records"))
    curves = scaling_curves(gens[gens["variant"].isin(present)], chosen)
    outputs = write_outputs(out_dir, rows, meta, gens, curves=curves, problems=store.problems(run_id))
    return rows, outputs
