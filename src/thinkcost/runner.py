"""Spec -> work items -> engine -> store. Skips what the store already holds, so rerunning
the same command resumes; loads the model only when there is work left. The runner ends at
the store: reports are built from it afterwards (`thinkcost.report.build`)."""

from __future__ import annotations

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

from .episodes import Tally
from .errors import UserError
from .hashing import source_hash
from .models import resolve_model
from .reasoning import format_of
from .spec import RunSpec
from .store import Store
from .strategies import Recipe, Strategy, describe
from .strategies.confidence import CONFIDENCE_INSTRUCTION, sample_confidence, strip_confidence
from .tasks import get_task
from .tasks.shard import parse_shard, select
from .types import Completion, Problem, Verdict

# The verdict of a request that finally failed: not an answer, so never correct.
_FAILED = Verdict(correct=False, extracted=None, rule="failed", detail="request failed")


@dataclass
class Generated:
    """What a run added to its store."""

    run_id: str
    store_path: Path
    generated: int  # samples drawn by this call (0 when everything was stored)
    strategies: list[str]  # the strategies the spec asked for, by name


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


def generate(spec: RunSpec, console: Console | None = None, engine=None) -> Generated:
    """Draw every sample the spec asks for that the store lacks, committing each as it finishes.
    `engine`: an already-built engine to use instead of loading the spec's model (tests inject
    a deterministic scripted engine); variants are then labels, nothing is quantized."""
    from .engines import engine_meta

    console = console or Console()
    task = get_task(spec.task, **spec.task_kwargs())
    strategies = spec.strategies()
    # fails fast if not installed; a served model (openai engine) is only a name on the server
    needs_local = engine is None and engine_meta(spec.engine).needs_local_model
    source = resolve_model(spec.model) if needs_local else None
    shard = parse_shard(spec.shard) if spec.shard else None
    everything = task.problems(spec.limit, spec.seed)
    chosen = select(everything, shard)
    problems = [p for _, p in chosen]
    store = Store(spec.store_path())
    run_id = spec.run_id()
    store.ensure_run(run_id, spec.run_name(), spec.identity())
    check_fingerprints(store, run_id, spec, source)
    store.put_problems(run_id, problems, positions=[i for i, _ in chosen])
    if shard is not None:
        store.put_note(run_id, f"shard:{shard}", {"problems": len(problems), "of": len(everything)})
        console.print(f"[bold]thinkcost[/] shard {shard}: {len(problems)} of {len(everything)} problems")
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
    store.close()
    return Generated(run_id, spec.store_path(), generated, [s.name for s in strategies])


def _generate(
    spec, source, task, items, store: Store, run_id: str, console: Console, total: int, engine
) -> int:
    from .engines import engine_meta
    from .engines.executors import build_backend

    # --executor ray: the same backend contract, its engine replicas on Ray actors (commits stay here)
    backend = build_backend(spec, source, task, console) if engine is None else None
    note = engine_meta(spec.engine).timing_note
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
                info = {**info, "timing_note": note} if note else info
                progress.update(bar, description=f"{variant:>14}")
                store.put_variant(run_id, variant, position, info)
                n += _generate_variant(spec, task, mine, variant, eng, store, run_id, progress, bar)
                if "endpoints" in info:  # an openai fleet: per-endpoint counts and latency
                    notes = store.note(run_id, "endpoints") or {}
                    store.put_note(run_id, "endpoints", {**notes, variant: eng.endpoint_stats()})
    finally:
        if backend is not None:
            backend.close()
    return n


def _generate_variant(spec, task, mine, variant, engine, store: Store, run_id, progress, bar) -> int:
    """Draw one variant's samples, committing each the moment it finishes."""
    if getattr(task, "episodic", False):  # tool use: one engine call per turn (thinkcost.episodes)
        from .episodes import generate_episodes

        return generate_episodes(spec, task, mine, variant, engine, store, run_id, progress, bar)
    tally = Tally(progress, bar)
    searches = [it for it in mine if it.recipe.search is not None]
    if searches:  # step-level searches: one per problem, not "n samples" (thinkcost.search)
        tally.n += _search_variant(spec, task, searches, variant, engine, store, run_id, progress, bar)
        mine = [it for it in mine if it.recipe.search is None]
        if not mine:
            return tally.n
    requests = [
        it.recipe.request(
            it.problem,
            max_new_tokens=spec.max_new_tokens,
            seed=spec.seed,
            sample_ids=it.sample_ids,
            confidence_instruction=CONFIDENCE_INSTRUCTION,
            answer_marker=getattr(task, "answer_marker", None),
        )
        for it in mine
    ]
    call_ids = [uuid.uuid4().hex[:16] for _ in mine]

    def commit(i: int, sample: int, c: Completion) -> None:
        it = mine[i]
        # a stated confidence ("Confidence: 90%") is not part of the answer: the split would take
        # it for the answer line and the last-number fallback would grade the 90
        answer = (
            format_of(c.reasoning_format)
            .split(
                strip_confidence(c.text),
                "length" if c.finish_reason == "cancelled" else c.finish_reason,
                getattr(task, "answer_marker", None),
            )
            .answer
            if it.recipe.verbal
            else _graded_text(task, c)
        )
        verdict = task.verify(it.problem, answer) if c.finish_reason != "error" else _FAILED
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
        tally.add(c, new, f"{it.problem.id}#{sample}")

    engine.generate(requests, on_complete=commit)
    return tally.report(variant, "request(s) failed after retries")


def _graded_text(task, c: Completion) -> str:
    """What the task grades: the answer, except for a task whose reader finds the model's final
    word itself (`grades_whole_text`, the puzzles' move-list reader) when the split is only the
    `none` heuristic's guess and the model ended on its own: a closing sentence after a numbered
    move list would otherwise be graded instead of the list. A length-cut text keeps its empty
    answer (an unfinished draft is not an answer)."""
    if (
        getattr(task, "grades_whole_text", False)
        and c.finish_reason == "stop"
        and format_of(c.reasoning_format).heuristic
    ):
        return c.text
    return c.answer_text


def _search_variant(spec, task, items, variant, engine, store: Store, run_id, progress, bar) -> int:
    """Run each missing (problem, search) and commit its tree, then its answer and PRM bill, so
    a stored answer always has its tree and an interrupted run redoes only unanswered problems."""
    from .device import pick_device
    from .search.run import Searcher
    from .strategies.base import problem_seed

    searcher = Searcher(engine, device=pick_device(spec.device), prm_format=spec.prm_format)
    n = 0
    for it in items:
        p, key = it.problem, it.recipe.key
        out = searcher.run(
            it.recipe.search,
            p,
            temperature=it.recipe.temperature,
            top_p=it.recipe.top_p,
            seed=problem_seed(spec.seed, p.id),
            max_new_tokens=spec.max_new_tokens,
            max_steps=spec.max_steps,
            extract=lambda a, p=p: task.verify(p, a).extracted,
        )
        c = out.completion
        store.put_search_steps(run_id, variant, p.id, key, out.rows())
        store.put_scores(
            run_id,
            [
                (variant, p.id, key, 0, "prm-tokens", float(out.prm_tokens), out.prm_s),
                (variant, p.id, key, 0, "flop-tokens", float(out.flop_tokens), 0.0),
            ],
        )
        if store.put_generation(run_id, variant, p.id, key, 0, c, task.verify(p, c.answer_text), 1):
            n += 1
            progress.update(bar, advance=1)
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
        zip(have["variant"], have["problem_id"], have["recipe"], have["sample"], have["scorer"], strict=True)
    )
    by_id = {p.id: p for p in problems}
    for s in wanted:
        todo = gens[(gens["recipe"] == s.recipe.key) & (gens["sample"] < s.recipe.n)]
        todo = todo[
            [
                (v, pid, k, int(i), s.scorer) not in done
                for v, pid, k, i in zip(
                    todo["variant"], todo["problem_id"], todo["recipe"], todo["sample"], strict=True
                )
            ]
        ]
        if todo.empty:
            continue
        from .device import pick_device

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
