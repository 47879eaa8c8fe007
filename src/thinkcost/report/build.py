"""The report stage: summary rows, curves and files of one run, from the store alone (a report
can be rebuilt from a store file, and two stores compared, without the run that wrote them)."""

from __future__ import annotations

import json
import platform
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import __version__
from ..metrics.outcomes import outcomes
from ..metrics.reasoning_split import reasoning_formats, reasoning_note
from ..metrics.robustness import attack_rates, secret_of
from ..metrics.summary import VariantSummary, reference_variant, summarize
from ..models import PACKAGED
from ..store import Store
from ..strategies import Strategy, describe, strategies_from_records

# Stores written before engines recorded their timing note with each variant (thinkcost 0.1):
# the note those runs' reports showed, by engine name.
_LEGACY_TIMING_NOTES = {
    "hf": "RTN/GPTQ/Babai variants on the hf engine are fake-quantized (dequantized float weights): their "
    "tokens/s is the base model's, so the effective speed-up shows only the cost of extra tokens and lost "
    "accuracy. Use --engine llamacpp with gguf:TYPE variants for real low-bit kernels.",
    "llamacpp": "gguf:TYPE variants run on llama.cpp's quantized kernels, all quantized from one F32 GGUF "
    "holding the base weights: tokens/s and the effective speed-up are real for this CPU.",
    "openai": "Timings are the server's as seen by the client (network and queueing included).",
    "vllm": "Timings are vLLM's on its GPU host.",
}


def stored_strategies(store: Store, run_id: str) -> list[Strategy]:
    """The run's strategies, re-parsed from what the store recorded."""
    return strategies_from_records(store.strategies(run_id))


def timing_note(variant_info: dict[str, dict[str, Any]], spec: dict[str, Any]) -> str:
    """How to read the run's timings: what its engine recorded with each variant (distinct
    notes joined), or, for stores written before that, the note of the engine it names."""
    notes = list(dict.fromkeys(v["timing_note"] for v in variant_info.values() if v.get("timing_note")))
    return " ".join(notes) if notes else _LEGACY_TIMING_NOTES.get(spec.get("engine", "hf"), "")


# Figures a variant imported from another tool may lack (thinkcost.importers): its rows store 0
# for them, and the variant records `timed: false` / `token_counts: false`, so they read n/a.
_SECONDS = (
    "tokens_per_s",
    "s_per_correct",
    "effective_speedup",
    "wall_s",
    "s_per_problem",
    "latency_per_problem",
)
_TOKENS = ("mean_reasoning_tokens", "mean_completion_tokens", "ctir", "ctir_all", "tokens_per_s")
_TOKENS += ("tokens_per_correct", "tokens_per_problem")


def unmeasured(row: VariantSummary, variant_info: dict[str, Any]) -> VariantSummary:
    """The row with what its variant did not measure (seconds, token counts) as NaN, not 0."""
    nan = float("nan")
    fields: dict[str, Any] = {}
    if variant_info.get("timed") is False:
        fields |= dict.fromkeys(_SECONDS, nan)
    if variant_info.get("token_counts") is False:
        fields |= dict.fromkeys(_TOKENS, nan) | {"ctir_ci": (nan, nan), "ctir_all_ci": (nan, nan)}
    return replace(row, **fields) if fields else row


def build_report(
    store: Store,
    run_id: str,
    out_dir: Path,
    variants: list[str] | None = None,
    reference: str | None = None,
    n_boot: int = 2000,
    strategies: list[str] | None = None,
    extrapolate: tuple[int, ...] = (100, 1000),
) -> tuple[list[VariantSummary], dict[str, Path]]:
    """Summary rows per (variant, strategy), curves and files, from the store alone."""
    from ..metrics.scaling import scaling_curves
    from .table import write_outputs

    stored = store.variants(run_id)
    names = variants or [v["variant"] for v in stored]
    info = {v["variant"]: v for v in stored}
    gens = store.generations(run_id)
    known = stored_strategies(store, run_id)
    chosen = [s for s in known if strategies is None or s.name in strategies]
    outs = outcomes(gens, chosen, store.scores(run_id))
    present = [v for v in names if v in set(outs["variant"])]
    reference = reference if reference in present else reference_variant(present)
    rows = (
        summarize(
            outs, present, reference, strategies=[s.name for s in chosen], variant_info=info, n_boot=n_boot
        )
        if present
        else []
    )
    rows = [unmeasured(r, info.get(r.name, {})) for r in rows]
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
        "note": timing_note(info, runs[run_id]["spec"]),
    }
    from .recovery import recovery_rows

    recovery = recovery_rows(outs[outs["variant"].isin(present)], info, reference, n_boot) if present else []
    if recovery:  # base + PTQ + a recovered checkpoint of it (thinkcost recover): the recovery table
        meta["recovery"] = [r.to_json() for r in recovery]
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
    problems = store.problems(run_id)
    if any(secret_of(m) for m in problems["meta"]):  # robustness tasks: attack success / leaks
        rates = attack_rates(gens[gens["variant"].isin(present)], problems)
        meta["robustness"] = json.loads(rates.to_json(orient="records"))
    curves = scaling_curves(gens[gens["variant"].isin(present)], chosen)
    from .levels import difficulty_meta  # per-level table, coverage fit, weak verifier (when present)

    meta.update(
        difficulty_meta(
            outs[outs["variant"].isin(present)],
            gens[gens["variant"].isin(present)],
            problems,
            chosen,
            reference,
            n_boot=n_boot,
            extrapolate=extrapolate,
        )
    )
    outputs = write_outputs(
        out_dir, rows, meta, gens, curves=curves, problems=problems, search_steps=store.search_steps(run_id)
    )
    return rows, outputs
