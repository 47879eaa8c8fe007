"""`thinkcost quantize`: quantize a model with any registered method (RTN, GPTQ, Babai, ...;
quant/methods.py) and write a GPTQ checkpoint, logging each layer's proxy loss and time (so
methods and column orders can be compared)."""

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
        from .quant.methods import column_orders, method_names, quantizer_meta

        methods, orders = method_names(), column_orders()
        if self.method not in methods:
            raise UserError(f"--method: expected one of {', '.join(methods)}, got {self.method!r}")
        if self.order not in orders:
            raise UserError(f"--order: expected one of {', '.join(orders)}, got {self.order!r}")
        supported = quantizer_meta(self.method).orders  # () = no column order: --order is ignored
        if supported and self.order not in supported:
            raise UserError(f"--order: {self.method} supports {', '.join(supported)}, got {self.order!r}")
        check_bits(self.bits, field="--bits", checkpoint=True)  # the job ends in a checkpoint export
        if self.group_size < 0:
            raise UserError(
                f"--group-size: expected 0 (per channel) or a positive divisor, got {self.group_size}"
            )
        for flag, value, least in (
            ("--calib", self.calib_samples, 1),
            ("--seq-len", self.calib_seq_len, 8),
            ("--seed", self.seed, 0),
        ):
            if value < least:
                raise UserError(f"{flag}: expected an integer >= {least}, got {value}")
        if self.out.exists() and any(self.out.iterdir()):
            raise UserError(f"-o {str(self.out)!r} exists and is not empty; choose a new directory")


def _contiguous(g_idx, group_size: int) -> bool:
    import torch

    n = g_idx.numel()
    return bool(torch.equal(g_idx.long(), torch.arange(n) // (group_size or n)))


def run_quantize(job: QuantizeJob, console: Console) -> list[dict]:
    """Load, calibrate, quantize block by block, export; returns one log row per layer."""
    job.check()  # before loading or calibrating anything
    from .engines.hf import load_hf
    from .quant.calibration import build_calibration
    from .quant.checkpoint import export_gptq
    from .quant.gptq import GPTQConfig
    from .quant.sequential import quantize_sequential_
    from .quant.solvers import layer_solver
    from .tasks import get_task

    source = resolve_model(job.model)
    with console.status(f"loading {job.model}"):
        model, tok = load_hf(source, dtype=job.dtype)
    calib = build_calibration(
        get_task(job.task),
        tok,
        n_samples=job.calib_samples,
        seq_len=job.calib_seq_len,
        calib_file=job.calib_file,
        seed=job.seed,
    )
    cfg = GPTQConfig(
        bits=job.bits,
        group_size=job.group_size,
        sym=job.sym,
        order=job.order,
        mse=job.mse,
        static_groups=job.static_groups,
    )
    solve = layer_solver(job.method)
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
