"""The recovery table: how much of what quantization cost a repair gets back, read from the
per-problem outcomes (metrics.outcomes) of one run that holds base, a PTQ variant, that
variant under decoding mitigations (wait-penalty, budget forcing) and a recovered checkpoint.

Every row is measured against `base` under its reference strategy (greedy) on the same
problems, so a mitigation row is compared with the undamaged model, not with base under the
mitigation. "Share of the gap recovered":
- accuracy: (acc_row - acc_PTQ) / (acc_base - acc_PTQ)
- tokens:   (CTIR_all_PTQ - CTIR_all_row) / (CTIR_all_PTQ - 1)   (CTIR_all of base is 1)
1 = back to base, 0 = no better than PTQ, < 0 = worse; NaN when PTQ shows no gap to recover.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass

import pandas as pd

from .efficiency import effective_speedup, per_correct
from .tokens import ctir

MITIGATIONS = ("wait-penalty", "bf-cap", "bf-wait")  # strategy words that are decoding mitigations


@dataclass(frozen=True)
class RecoveryRow:
    """One line of the recovery table."""

    group: str  # the recovered variant this block of rows belongs to
    kind: str  # base | PTQ | PTQ + <strategy> | recovered
    variant: str
    strategy: str
    n: int
    accuracy: float
    ctir: float  # joint: problems both this row and base answer correctly
    ctir_n: int
    ctir_all: float
    hit_cap: float  # share of attempts that hit max_new_tokens
    s_per_correct: float
    effective_speedup: float
    accuracy_gap_recovered: float
    token_gap_recovered: float

    def to_json(self) -> dict:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


def is_mitigation(strategy: str) -> bool:
    return any(w in strategy for w in MITIGATIONS)


def _share(row: float, ptq: float, target: float) -> float:
    gap = target - ptq
    if math.isnan(row) or math.isnan(gap) or gap == 0:
        return math.nan
    return (row - ptq) / gap


def recovery_table(
    outs: pd.DataFrame,
    recovered_from: Mapping[str, str],
    *,
    reference: str = "base",
    reference_strategy: str = "greedy",
    n_boot: int = 2000,
    seed: int = 0,
) -> list[RecoveryRow]:
    """Rows per recovered variant whose PTQ source and `reference` are in `outs`: base, PTQ,
    PTQ under each mitigation strategy, recovered; all on the problems every row decided."""
    out: list[RecoveryRow] = []
    key = list(zip(outs["variant"], outs["strategy"], strict=True))
    present = set(key)
    for rec, ptq in recovered_from.items():
        base_k, ptq_k, rec_k = (
            (reference, reference_strategy),
            (ptq, reference_strategy),
            (rec, reference_strategy),
        )
        if not {base_k, ptq_k, rec_k} <= present:
            continue
        mitig = sorted({s for v, s in present if v == ptq and s != reference_strategy and is_mitigation(s)})
        lines = [
            ("base", base_k),
            ("PTQ", ptq_k),
            *((f"PTQ + {s}", (ptq, s)) for s in mitig),
            ("recovered", rec_k),
        ]
        frames = {
            k: outs[(outs["variant"] == k[0]) & (outs["strategy"] == k[1])].set_index("problem_id")
            for _, k in lines
        }
        shared = sorted(set.intersection(*(set(f.index) for f in frames.values())))
        frames = {k: f.loc[shared] for k, f in frames.items()}
        b = frames[base_k]
        b_tok, b_ok = b["reasoning_tokens"].to_dict(), b["correct"].astype(bool).to_dict()
        b_spc = per_correct(float(b["cost_s"].sum()), float(b["correct_answers"].sum()))
        figs = {}
        for _, k in lines:
            d = frames[k]
            tok, ok = d["reasoning_tokens"].to_dict(), d["correct"].astype(bool).to_dict()
            joint = ctir(b_tok, tok, b_ok, ok, n_boot=n_boot, seed=seed)
            allp = ctir(b_tok, tok, n_boot=n_boot, seed=seed)
            n = len(d)
            attempts = float(d["attempts"].sum())
            spc = per_correct(float(d["cost_s"].sum()), float(d["correct_answers"].sum()))
            figs[k] = {
                "n": n,
                "accuracy": float(d["score"].sum()) / n if n else math.nan,
                "ctir": joint.ratio,
                "ctir_n": joint.n,
                "ctir_all": allp.ratio,
                "hit_cap": float(d["truncated"].sum()) / attempts if attempts else math.nan,
                "s_per_correct": spc,
                "effective_speedup": effective_speedup(b_spc, spc) if n else math.nan,
            }
        p, base = figs[ptq_k], figs[base_k]
        for kind, k in lines:
            f = figs[k]
            is_base = k == base_k
            out.append(
                RecoveryRow(
                    group=rec,
                    kind=kind,
                    variant=k[0],
                    strategy=k[1],
                    **f,
                    accuracy_gap_recovered=math.nan
                    if is_base
                    else _share(f["accuracy"], p["accuracy"], base["accuracy"]),
                    token_gap_recovered=math.nan if is_base else _share(f["ctir_all"], p["ctir_all"], 1.0),
                )
            )
    return out
