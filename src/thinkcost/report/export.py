"""Every stored sample of a run as one flat file (Parquet, CSV or JSONL), for analysis outside
thinkcost: the store is the source of truth, and this is its documented, stable projection
(one row per generation, prompt and gold answer joined in, no JSON blobs to decode)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ..errors import UserError
from ..metrics.repetition import repetition_score
from ..store import Store

# name -> one-line meaning; the order is the column order of the file (and of the README table).
EXPORT_COLUMNS: dict[str, str] = {
    "run_id": "id of the run (hash of the fields that change what a generation is)",
    "run_name": "the run's name",
    "variant": "variant label (base, rtn-w4g32, gguf:Q4_K_M, served:NAME, ...)",
    "recipe": "recipe key the sample was drawn under (greedy, sample:t=0.7,p=0.95, ...)",
    "problem_id": "problem id, stable across runs of the same task and seed",
    "sample": "sample index within the recipe (0 for greedy)",
    "task": "task name",
    "question": "the last user message of the prompt",
    "gold": "reference answer",
    "text": "full completion text",
    "reasoning_text": "the reasoning part of the completion",
    "answer_text": "the answer part of the completion (what was graded)",
    "extracted": "the answer value read from answer_text (null if none)",
    "extract_rule": "extraction rule that matched (boxed, answer-is, last-number, none, failed, ...)",
    "correct": "whether the verdict was correct",
    "verdict_detail": "how the verdict was reached (checker, sandbox status, stderr tail)",
    "prompt_tokens": "prompt length in tokens",
    "completion_tokens": "generated tokens (forced tokens included)",
    "reasoning_tokens": "tokens of the reasoning part",
    "answer_tokens": "tokens of the answer part",
    "finish_reason": "stop, length (hit the cap), cancelled (short-m@k) or error",
    "think_unclosed": "whether the reasoning never ended (no </think> / no final channel)",
    "reasoning_format": "the format that split this row (think-in-prompt, think-in-output, harmony, "
    "server-field, none = heuristic)",
    "token_source": "where the token counts came from: tokenizer (the model's own), usage (server), deltas",
    "latency_s": "seconds until this sample finished",
    "ttft_s": "seconds to the first token",
    "cost_s": "this sample's share of the batch's wall time (shares add up to it)",
    "mean_logprob": "mean log-probability of the model-chosen tokens (null if not recorded)",
    "self_certainty": "mean KL(uniform || p) over model-chosen tokens (null if not recorded)",
    "forced_tokens": "tokens the engine inserted (budget forcing)",
    "interventions": "forced ends of thinking plus 'Wait' insertions",
    "error": "why the request finally failed (null unless finish_reason is error)",
    "attempts": "HTTP attempts the request took (1 for in-process engines)",
    "repetition": "share of repeated word 4-grams in the reasoning text (0 none, near 1 a loop)",
    "created_at": "unix time the sample was stored",
}

SUFFIXES = (".parquet", ".csv", ".jsonl")


def resolve_run(store: Store, run_id: str | None) -> str:
    """The run to read: the given id if the store holds it, else the latest; a clear error otherwise."""
    rid = run_id or store.latest_run_id()
    known = [r["run_id"] for r in store.runs()]
    if rid not in known:
        raise UserError(f"run {rid!r} is not in {str(store.path)!r}; runs: {', '.join(known)}")
    return rid


def _question(messages: list[dict[str, Any]]) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            content = m.get("content", "")
            return content if isinstance(content, str) else str(content)
    return ""


def export_frame(store: Store, run_id: str) -> pd.DataFrame:
    """The run's samples with EXPORT_COLUMNS, ordered by variant (run order), recipe, problem
    (run order) and sample."""
    gens = store.generations(run_id)
    probs = store.problems(run_id)
    name = {r["run_id"]: r["name"] for r in store.runs()}[run_id]
    questions = dict(zip(probs["problem_id"], probs["messages"].map(_question), strict=True))
    rank = {v["variant"]: i for i, v in enumerate(store.variants(run_id))}
    gens = gens.assign(
        _v=gens["variant"].map(lambda v: rank.get(v, len(rank))),
        run_name=name,
        question=gens["problem_id"].map(questions).fillna(""),
        repetition=gens["reasoning_text"].map(repetition_score).astype(float),
        correct=gens["correct"].astype(bool),
        think_unclosed=gens["think_unclosed"].astype(bool),
        # rows stored before formats existed were split by the `none` rules
        reasoning_format=gens["reasoning_format"].fillna("none"),
    )
    gens = gens.sort_values(["_v", "variant", "recipe", "problem_position", "sample"], kind="stable")
    return gens[list(EXPORT_COLUMNS)].reset_index(drop=True)


def _suffix(out: Path) -> str:
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        got = repr(suffix) if suffix else "no suffix"
        raise UserError(f"-o {str(out)!r}: expected a {', '.join(SUFFIXES)} file, got {got}")
    return suffix


def write_frame(df: pd.DataFrame, out: Path) -> Path:
    """Write by suffix: .parquet, .csv or .jsonl (one JSON object per line)."""
    suffix = _suffix(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".parquet":
        df.to_parquet(out, index=False)
    elif suffix == ".csv":
        df.to_csv(out, index=False)
    else:  # stdlib json: exact floats (pandas rounds to 10 digits) and NaN written as null
        records = df.astype(object).where(df.notna(), None).to_dict(orient="records")
        with out.open("w", encoding="utf-8") as f:
            for rec in records:
                f.write(json.dumps(rec, ensure_ascii=False, default=_plain) + "\n")
    return out


def _plain(x: Any) -> Any:
    """numpy scalars -> Python scalars for json."""
    if hasattr(x, "item"):
        return x.item()
    raise TypeError(f"cannot write {type(x).__name__} to JSON")


def export_samples(store_path: str | Path, out: str | Path, run_id: str | None = None) -> Path:
    """Write every sample of the run (default: the latest) to `out`; returns the path written."""
    out = Path(out)
    _suffix(out)  # before touching the store: a typo in -o costs nothing
    store = Store(store_path, create=False)
    try:
        return write_frame(export_frame(store, resolve_run(store, run_id)), out)
    finally:
        store.close()
