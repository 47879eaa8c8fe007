"""`thinkcost quantize`: quantize a model with RTN, GPTQ or Babai and write a GPTQ checkpoint,
logging each layer's proxy loss and time (so methods and column orders can be compared)."""

from __future__ import annotations

import csv
import time
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .errors import UserError
from .models import resolve_model
from .quant.bits import check_bits

METHODS = ("rtn", "gptq", "babai")
ORDERS = ("natural", "act-order", "reverse", "min-pivot")


@dataclass
class QuantizeJob:
    model: str
    method: str
    bits: int
    group_size: int
    out: Path
    sym: bool = True
    order: str = "natural"
    calib_samples: int = 32
    calib_seq_len: int = 256
    calib_file: Path | None = None
    task: str = "arithmetic"
    seed: int = 0
    dtype: str = "float32"
    mse: bool = False
    static_groups: bool = False

    def check(self) -> None:
        """Every flag, before the model is loaded: a typo must not cost a load and a calibration."""
        if self.method not in METHODS:
            raise UserError(f"--method: expected one of {', '.join(METHODS)}, got {self.method!r}")
        if self.order not in ORDERS:
            raise UserError(f"--order: expected one of {', '.join(ORDERS)}, got {self.order!r}")
        check_bits(self.bits, field="--bits", checkpoint=True)  # the job ends in a checkpoint export
        if self.group_size < 0:
            raise UserError(
                f"--group-size: expected 0 (per channel) or a positive divisor, got {self.group_size}"
            )
        if self.out.exists() and any(self.out.iterdir()):
            raise UserError(f"-o {str(self.out)!r} exists and is not empty; choose a new directory")


def _contiguous(g_idx, group_size: int) -> bool:
    import torch

    n = g_idx.numel()
    return bool(torch.equal(g_idx.long(), torch.arange(n) // (group_size or n)))


def run_quantize(job: QuantizeJob, console: Console) -> list[dict]:
    """Load, calibrate, quantize block by block, export; returns one log row per layer."""
    job.check()  # before importing torch, loading or calibrating anything
    from .engines.hf import load_hf
    from .quant.checkpoint import export_gptq
    from .quant.gptq import GPTQConfig
    from .quant.methods import SOLVERS
    from .quant.sequential import quantize_sequential_
    from .spec import build_spec
    from .tasks import get_task

    source = resolve_model(job.model)
    with console.status(f"loading {job.model}"):
        model, tok = load_hf(source, dtype=job.dtype)
    spec = build_spec(
        {},
        {
            "model": job.model,
            "task": job.task,
            "seed": job.seed,
            "calib_samples": job.calib_samples,
            "calib_seq_len": job.calib_seq_len,
            "calib_file": job.calib_file,
        },
    )
    from .runner import build_calibration

    calib = build_calibration(spec, get_task(job.task), tok)
    cfg = GPTQConfig(
        bits=job.bits,
        group_size=job.group_size,
        sym=job.sym,
        order=job.order,
        mse=job.mse,
        static_groups=job.static_groups,
    )
    solve = SOLVERS[job.method]
    log: list[dict] = []

    def solver(W, H, name):
        t = time.perf_counter()
        res = solve(W, H, cfg)
        log.append(
            {
                "layer": name,
                "shape": f"{W.shape[0]}x{W.shape[1]}",
                "proxy_loss": float(res.proxy_loss),
                "seconds": time.perf_counter() - t,
            }
        )
        return res

    t0 = time.perf_counter()
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        from .quant.sequential import decoder_blocks

        bar = progress.add_task(
            f"{job.method} w{job.bits}g{job.group_size}", total=len(decoder_blocks(model)[1])
        )
        layers = quantize_sequential_(
            model, calib, solver, on_block=lambda i, n: progress.update(bar, completed=i)
        )
    total_s = time.perf_counter() - t0
    export_gptq(
        model,
        layers,
        job.out,
        static_groups=job.static_groups,
        # asymmetric groups may have a zero point of 0, which the v1 layout cannot hold
        checkpoint_format="gptq" if job.sym else "gptq_v2",
        bits=job.bits,
        group_size=job.group_size,
        sym=job.sym,
        # any grouping that is not "consecutive columns" must ship g_idx as act-order does
        desc_act=any(not _contiguous(r.g_idx, job.group_size) for r in layers.values()),
        tokenizer=tok,
        meta={
            "method": job.method,
            "order": job.order,
            "calib": list(calib.shape),
            "seconds": total_s,
            "model": job.model,
            "proxy_loss_total": sum(r["proxy_loss"] for r in log),
        },
    )
    with open(job.out / "quant_log.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["layer", "shape", "proxy_loss", "seconds"])
        w.writeheader()
        w.writerows(log)
    return log
