"""Spec -> work items -> engine -> store. Skips what the store already holds, so rerunning
the same command resumes; loads the model only when there is work left."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from . import __version__
from .engines.base import Completion, Request
from .metrics.summary import VariantSummary, summarize
from .models import PACKAGED, resolve_model
from .quant import parse_variant
from .quant.apply import quantize_model_, restore_linear_weights_, snapshot_linear_weights
from .spec import RunSpec
from .store import Store
from .tasks import get_task
from .tasks.base import Problem


@dataclass
class RunResult:
    run_id: str
    store_path: Path
    rows: list[VariantSummary]
    outputs: dict[str, Path]
    generated: int


def pick_device(device: str) -> str:
    import torch

    if device != "auto":
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


def requests_for(problems: list[Problem], spec: RunSpec) -> list[Request]:
    """Greedy: one deterministic sample per problem."""
    return [
        Request(p.messages, max_new_tokens=spec.max_new_tokens, temperature=0.0, seed=spec.seed)
        for p in problems
    ]


def run(spec: RunSpec, console: Console | None = None) -> RunResult:
    console = console or Console()
    task = get_task(spec.task, **spec.task_options)
    source = resolve_model(spec.model)  # fails fast (one line) if the model is not installed
    problems = task.problems(spec.limit, spec.seed)
    store = Store(spec.store_path())
    run_id = spec.run_id()
    store.ensure_run(run_id, spec.run_name(), spec.identity())
    store.put_problems(run_id, problems)
    todo = {}
    for v in spec.variants:
        done = store.done_keys(run_id, v, spec.strategy)
        todo[v] = [p for p in problems if (p.id, 0) not in done]
    total = sum(len(x) for x in todo.values())
    generated = 0
    if total:
        console.print(
            f"[bold]thinkcost[/] {spec.run_name()}: {total} generations to do "
            f"({len(problems) * len(spec.variants) - total} already in {spec.store_path()})"
        )
        generated = _generate(spec, source, task, todo, store, run_id, console, total)
    else:
        console.print(f"[bold]thinkcost[/] {spec.run_name()}: everything is already in {spec.store_path()}")
    rows, outputs = build_report(
        store, run_id, spec.out_dir(), variants=spec.variants, reference=spec.reference
    )
    store.close()
    return RunResult(run_id, spec.store_path(), rows, outputs, generated)


def _generate(spec, source, task, todo, store: Store, run_id: str, console: Console, total: int) -> int:
    from .engines.hf import HFEngine, load_hf

    device = pick_device(spec.device)
    with console.status(f"loading {spec.model} ({spec.dtype}, {device})"):
        t = time.perf_counter()
        model, tok = load_hf(source, dtype=spec.dtype, device=device)
        load_s = time.perf_counter() - t
    console.print(f"loaded {spec.model} in {load_s:.0f}s")
    snapshot = snapshot_linear_weights(model)
    calib = None
    if any(parse_variant(v).needs_calibration and todo[v] for v in spec.variants):
        calib = build_calibration(spec, task, tok)
    engine = HFEngine(model, tok, batch_size=spec.batch_size)
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
    with Progress(*columns, console=console, transient=False) as progress:
        bar = progress.add_task("generating", total=total, tps="")
        for position, variant in enumerate(spec.variants):
            problems = todo[variant]
            if not problems:
                continue
            restore_linear_weights_(model, snapshot)
            vspec = parse_variant(variant)
            progress.update(bar, description=f"{variant:>14} (quantizing)")
            qinfo = quantize_model_(
                model,
                vspec,
                calib,
                on_block=lambda i, k, v=variant: progress.update(bar, description=f"{v:>14} (block {i}/{k})"),
            )
            progress.update(bar, description=f"{variant:>14}")
            info = {
                "method": vspec.method,
                "bits": vspec.bits,
                "group_size": vspec.group_size,
                "sym": vspec.sym,
                "order": vspec.order if vspec.needs_calibration else None,
                "bits_per_weight": qinfo.get("bits_per_weight_effective"),
                "proxy_loss": qinfo.get("proxy_loss"),
                "checkpoint": qinfo.get("checkpoint"),
                "quantize_s": qinfo.get("seconds"),
                "device": device,
                "dtype": spec.dtype,
                "model": spec.model,
                "model_source": source.gguf_file or source.path,
            }
            store.put_variant(run_id, variant, position, info)
            tokens, secs = 0, 0.0

            def commit(i: int, sample: int, c: Completion, problems=problems, variant=variant) -> None:
                nonlocal n, tokens, secs
                p = problems[i]
                store.put_generation(
                    run_id,
                    variant,
                    p.id,
                    spec.strategy,
                    sample,
                    c,
                    task.verify(p, c.answer_text),
                    spec.batch_size,
                )
                n += 1
                tokens += c.completion_tokens
                secs += c.cost_s
                progress.update(bar, advance=1, tps=f"{tokens / max(secs, 1e-9):.1f} tok/s")

            engine.generate(requests_for(problems, spec), on_complete=commit)
    restore_linear_weights_(model, snapshot)
    return n


def build_calibration(spec: RunSpec, task, tok):
    """Token windows for GPTQ/Babai: the task's own prompts unless a file is given."""
    from .quant.calibration import calibration_windows, texts_from_file, texts_from_task

    if spec.calib_file is not None:
        texts = texts_from_file(spec.calib_file)
    else:
        texts = texts_from_task(task, tok, n_texts=max(64, spec.calib_samples * 2), seed=spec.seed)
    return calibration_windows(texts, tok, spec.calib_samples, spec.calib_seq_len, spec.seed)


def build_report(
    store: Store,
    run_id: str,
    out_dir: Path,
    variants: list[str] | None = None,
    reference: str | None = None,
    n_boot: int = 2000,
) -> tuple[list[VariantSummary], dict[str, Path]]:
    """Summary rows + files, from the store alone."""
    from .report.table import write_outputs

    stored = store.variants(run_id)
    names = variants or [v["variant"] for v in stored]
    info = {v["variant"]: v for v in stored}
    gens = store.generations(run_id)
    present = [v for v in names if v in set(gens["variant"])]
    reference = (
        reference if reference in present else ("base" if "base" in present else (present or [None])[0])
    )
    rows = summarize(gens, present, reference, variant_info=info, n_boot=n_boot) if present else []
    runs = {r["run_id"]: r for r in store.runs()}
    meta: dict[str, Any] = {
        "run_id": run_id,
        "run_name": runs[run_id]["name"],
        "spec": runs[run_id]["spec"],
        "reference": reference,
        "store": str(store.path),
        "thinkcost": __version__,
        "python": platform.python_version(),
        "note": "RTN variants are fake-quantized (dequantized float weights): their tokens/s is the base "
        "model's, so the effective speed-up shows only the cost of extra tokens and lost accuracy.",
    }
    model_name = runs[run_id]["spec"].get("model", "")
    if model_name in PACKAGED or str(model_name).endswith(".gguf"):
        meta["base_note"] = (
            "base is a GGUF checkpoint (for the packaged default: mostly Q5_0/Q4_K) dequantized to float; "
            "ratios are relative to an already low-bit model. Use an fp16/bf16 hub model for research runs."
        )
    outputs = write_outputs(out_dir, rows, meta, gens)
    return rows, outputs
