"""`thinkcost repro`: how reproducible is a greedy run? Greedy decoding is deterministic in
exact arithmetic, but dtype and batch size change the float rounding, so the argmax can flip
and the text diverges from there on. Each (dtype, batch size) setting runs as its own run in
the same store (the batch size enters the run id through `RunSpec.tag`), so every figure here
can be re-run and re-read from the store."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from .errors import UserError
from .spec import RunSpec
from .store import Store

DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_DTYPES = list(DTYPES)
DEFAULT_BATCH_SIZES = [1, 4, 16]

EngineFor = Callable[[RunSpec], Any]


# --- pure computations ---------------------------------------------------------------------
def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Index of the first differing token = length of the shared prefix (the shorter length
    when one list is a prefix of the other)."""
    n = 0
    for x, y in zip(a, b, strict=False):
        if x != y:
            break
        n += 1
    return n


def quantiles(values: Sequence[float]) -> dict[str, float | None]:
    """Median and p90 (linear interpolation, numpy's default) of the divergence indices;
    None when nothing diverged, so "no divergence" never reads as "diverged at token 0"."""
    if not values:
        return {"median": None, "p90": None}
    arr = np.asarray(values, dtype=float)
    return {"median": float(np.median(arr)), "p90": float(np.percentile(arr, 90))}


def divergence(ref: Sequence[Sequence[int]], other: Sequence[Sequence[int]]) -> dict[str, Any]:
    """Per-problem comparison of a setting's generated token ids with the reference's (same
    order). The ids are those the model emitted (stored with each row), so "token 12" is the
    12th token the model chose, never a re-tokenization of decoded text."""
    if len(ref) != len(other):
        raise ValueError(f"expected as many sequences as reference sequences, got {len(other)} vs {len(ref)}")
    firsts = [common_prefix(r, t) for r, t in zip(ref, other, strict=True) if list(r) != list(t)]
    q = quantiles(firsts)
    return {
        "n": len(other),
        "differing": len(firsts),
        "share_differing": len(firsts) / len(other) if other else None,
        "first_divergence": firsts,
        "first_divergence_median": q["median"],
        "first_divergence_p90": q["p90"],
    }


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """Spread of one metric across settings. Population std (ddof=0): the settings are all
    there are, not a sample from a larger set."""
    if not values:
        return {"mean": None, "std": None, "min": None, "max": None, "range": None}
    lo, hi = min(values), max(values)
    return {
        "mean": statistics.fmean(values),
        "std": statistics.pstdev(values),
        "min": lo,
        "max": hi,
        "range": hi - lo,
    }


def parse_dtypes(text: str) -> list[str]:
    """`float32,bfloat16` -> list; unknown or repeated names are a one-line user error."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    if not items:
        raise UserError(f"--dtypes: expected a comma list of {', '.join(DTYPES)}, got {text!r}")
    bad = [x for x in items if x not in DTYPES]
    if bad:
        raise UserError(f"--dtypes: unknown dtype {bad[0]!r}; expected {', '.join(DTYPES)}")
    if len(set(items)) != len(items):
        raise UserError(f"--dtypes: duplicate dtypes in {text!r}")
    return items


def parse_batch_sizes(text: str) -> list[int]:
    """`1,4,16` -> list of positive ints; anything else is a one-line user error."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        sizes = [int(x) for x in items]
    except ValueError:
        raise UserError(
            f"--batch-sizes: expected a comma list of integers such as 1,4,16, got {text!r}"
        ) from None
    if not sizes or any(b < 1 or b > 4096 for b in sizes):
        raise UserError(f"--batch-sizes: expected integers in 1..4096, got {text!r}")
    if len(set(sizes)) != len(sizes):
        raise UserError(f"--batch-sizes: duplicate sizes in {text!r}")
    return sizes


# --- result --------------------------------------------------------------------------------
@dataclass
class SettingResult:
    """One (dtype, batch size) run; `skipped` holds the reason when it could not run."""

    dtype: str
    batch_size: int
    run_id: str
    accuracy: float | None = None
    mean_reasoning_tokens: float | None = None
    share_differing: float | None = None
    first_divergence_median: float | None = None
    first_divergence_p90: float | None = None
    first_divergence: list[int] = field(default_factory=list)
    skipped: str | None = None

    @property
    def label(self) -> str:
        return f"{self.dtype}/bs={self.batch_size}"


@dataclass
class ReproResult:
    reference: str  # label of the setting every other is compared with
    reference_run_id: str
    seed: int
    store_path: Path
    settings: list[SettingResult]
    spread: dict[str, dict[str, float | None]]
    out_path: Path | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "reference": self.reference,
            "reference_run_id": self.reference_run_id,
            "seed": self.seed,
            "store": str(self.store_path),
            "settings": [asdict(s) for s in self.settings],
            "spread": self.spread,
        }

    def table(self) -> Table:
        t = Table(
            "dtype",
            "batch",
            "run id",
            "accuracy",
            "reasoning tok",
            "differ",
            "1st div. median",
            "1st div. p90",
            "note",
            title=f"greedy reproducibility vs {self.reference}",
        )
        for s in self.settings:
            t.add_row(
                s.dtype,
                str(s.batch_size),
                s.run_id,
                _fmt(s.accuracy, ".3f"),
                _fmt(s.mean_reasoning_tokens, ".1f"),
                _fmt(s.share_differing, ".0%"),
                _fmt(s.first_divergence_median, ".1f"),
                _fmt(s.first_divergence_p90, ".1f"),
                "reference" if s.label == self.reference else (f"skipped: {s.skipped}" if s.skipped else ""),
            )
        t.caption = "spread across settings: " + "; ".join(
            f"{name} std {_fmt(sp['std'], '.4g')}, range {_fmt(sp['range'], '.4g')}"
            for name, sp in self.spread.items()
        )
        return t


def _fmt(x: float | None, spec: str) -> str:
    return "-" if x is None else format(x, spec)


# --- running -------------------------------------------------------------------------------
def _greedy_key(spec: RunSpec) -> str:
    """The one recipe key repro reads; anything but a single greedy strategy is refused, since
    sampled runs differ by design and would say nothing about numerical reproducibility."""
    strategies = spec.strategies()
    recipes = [s.recipe for s in strategies]
    if len(recipes) != 1 or recipes[0].temperature != 0 or recipes[0].n != 1:
        raise UserError(f"repro: expected the single strategy greedy, got {', '.join(spec.strategy)}")
    if spec.engine != "hf":
        raise UserError(f"repro: dtypes apply to the hf engine only; got --engine {spec.engine}")
    return recipes[0].key


def setting_spec(spec: RunSpec, dtype: str, batch_size: int, out_dir: Path) -> RunSpec:
    """The spec of one setting: the reference variant only, its own tag (so rows of different
    batch sizes never mix) and its own output dir, in the same store."""
    values = spec.model_dump() | {
        "variants": [spec.reference],
        "dtype": dtype,
        "batch_size": batch_size,
        "tag": f"repro:bs={batch_size}",
        "name": f"{spec.run_name()}-repro-{dtype}-bs{batch_size}",
        "store": spec.store_path(),
        "out": out_dir / f"{dtype}-bs{batch_size}",
    }
    return RunSpec(**values)


def unsupported(dtype: str, device: str) -> str | None:
    """A reason to skip a dtype the device cannot run, known before loading anything."""
    import torch

    from .device import pick_device

    dev = pick_device(device)
    if dtype == "bfloat16" and dev.startswith("cuda") and not torch.cuda.is_bf16_supported():
        return "bfloat16 is not supported on this GPU"
    return None


def _run_setting(s: RunSpec, console: Console, engine_for: EngineFor | None = None) -> str | None:
    """Run one setting; a failure that is not the user's (e.g. float16 kernels missing on CPU)
    becomes a skip reason, so one dtype never loses the others."""
    from . import runner

    reason = unsupported(s.dtype, s.device) if engine_for is None else None
    if reason:
        return reason
    try:
        runner.generate(s, console, engine=None if engine_for is None else engine_for(s))
    except UserError:
        raise
    except Exception as e:  # recorded as the setting's skip reason
        first = (str(e).strip().splitlines() or [""])[0]
        return f"{type(e).__name__}: {first}"[:200]
    return None


def _ids_and_metrics(
    store: Store, run_id: str, variant: str, key: str, tokenize: Callable[[str], list[int]] | None
) -> tuple[dict[str, list[int]], float, float, bool]:
    """Generated token ids by problem id, accuracy and mean reasoning tokens of one stored run,
    and whether any row lacked stored ids (a store written before ids were kept: those rows'
    texts are re-tokenized with `tokenize`, the one approximation left)."""
    g = store.generations(run_id, token_ids=True)
    g = g[(g["variant"] == variant) & (g["recipe"] == key) & (g["sample"] == 0)]
    if g.empty:
        raise UserError(f"repro: run {run_id} holds no greedy generations")
    ids: dict[str, list[int]] = {}
    retokenized = False
    for pid, text, tids in zip(g["problem_id"], g["text"], g["token_ids"], strict=True):
        if tids is None:
            if tokenize is None:
                raise UserError(f"repro: run {run_id} has rows without stored token ids and no tokenizer")
            tids, retokenized = tokenize(text), True
        ids[pid] = list(tids)
    return ids, float(g["correct"].mean()), float(g["reasoning_tokens"].mean()), retokenized


def load_tokenizer(model: str) -> Callable[[str], list[int]]:
    """The model's own tokenizer (tokenizer only, no weights), as text -> token ids: only for
    rows stored before token ids were kept."""
    from transformers import AutoTokenizer

    from .models import resolve_model

    src = resolve_model(model)
    kw = {"gguf_file": src.gguf_file} if src.gguf_file else {}
    tok = AutoTokenizer.from_pretrained(src.path, **kw)
    return lambda text: tok.encode(text, add_special_tokens=False)


def _lazy_tokenizer(model: str) -> Callable[[str], list[int]]:
    """`load_tokenizer`, loaded on first use: stores with token ids never need it."""
    loaded: list[Callable[[str], list[int]]] = []

    def tokenize(text: str) -> list[int]:
        if not loaded:
            loaded.append(load_tokenizer(model))
        return loaded[0](text)

    return tokenize


def repro(
    spec: RunSpec,
    dtypes: list[str],
    batch_sizes: list[int],
    console: Console,
    *,
    engine_for: EngineFor | None = None,
    tokenize: Callable[[str], list[int]] | None = None,
) -> ReproResult:
    """Run `spec` (greedy) under every (dtype, batch size) and compare each with the first
    setting that ran (float32 / batch 1 with the defaults). `engine_for` (setting spec ->
    engine) and `tokenize` replace the real model and tokenizer, so tests can script outputs."""
    key = _greedy_key(spec)
    if not dtypes or not batch_sizes:
        raise UserError("repro: expected at least one dtype and one batch size")
    out_dir = spec.out_dir()
    specs = [setting_spec(spec, d, b, out_dir) for d in dtypes for b in batch_sizes]
    results = []
    for s in specs:
        console.print(f"[bold]repro[/] {s.dtype} batch {s.batch_size} (run {s.run_id()})")
        results.append(
            SettingResult(s.dtype, s.batch_size, s.run_id(), skipped=_run_setting(s, console, engine_for))
        )
    ran = [r for r in results if r.skipped is None]
    if not ran:
        raise UserError(f"repro: every setting failed; first: {results[0].skipped}")
    store = Store(spec.store_path())
    try:
        compared = _compare(store, ran, spec.reference, key, tokenize or _lazy_tokenizer(spec.model))
        ref = ran[0]
        store.put_note(
            ref.run_id,
            "repro",
            {
                "seed": spec.seed,
                "model": spec.model,
                "task": spec.task,
                "limit": spec.limit,
                "max_new_tokens": spec.max_new_tokens,
                "dtypes": dtypes,
                "batch_sizes": batch_sizes,
                "reference": ref.label,
                "compared": compared,
                "settings": [
                    {"dtype": r.dtype, "batch_size": r.batch_size, "run_id": r.run_id, "skipped": r.skipped}
                    for r in results
                ],
            },
        )
    finally:
        store.close()
    result = ReproResult(
        reference=ran[0].label,
        reference_run_id=ran[0].run_id,
        seed=spec.seed,
        store_path=spec.store_path(),
        settings=results,
        spread={
            "accuracy": spread([r.accuracy for r in ran if r.accuracy is not None]),
            "mean_reasoning_tokens": spread(
                [r.mean_reasoning_tokens for r in ran if r.mean_reasoning_tokens is not None]
            ),
        },
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    result.out_path = out_dir / "repro.json"
    result.out_path.write_text(json.dumps(result.to_json(), indent=2) + "\n")
    return result


def _compare(
    store: Store, ran: list[SettingResult], variant: str, key: str, tokenize: Callable[[str], list[int]]
) -> str:
    """Fill each setting's metrics and divergence from the store, against ran[0]. Only problems
    both runs hold are compared (a problem missing from one run is not a divergence). Returns
    what was compared: stored token ids, or re-tokenized text for rows stored without ids."""
    ref_ids, _, _, approx = _ids_and_metrics(store, ran[0].run_id, variant, key, tokenize)
    for r in ran:
        ids, r.accuracy, r.mean_reasoning_tokens, retok = _ids_and_metrics(
            store, r.run_id, variant, key, tokenize
        )
        approx = approx or retok
        common = [pid for pid in ref_ids if pid in ids]
        d = divergence([ref_ids[p] for p in common], [ids[p] for p in common])
        r.share_differing = d["share_differing"]
        r.first_divergence = d["first_divergence"]
        r.first_divergence_median = d["first_divergence_median"]
        r.first_divergence_p90 = d["first_divergence_p90"]
    return "re-tokenized text (rows stored without token ids)" if approx else "generated token ids"
