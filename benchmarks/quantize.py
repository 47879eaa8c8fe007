"""Quantizer benchmark on the default model, measured side by side in one run.

1. Proxy loss tr((W-Q) H (W-Q)^T) summed over all layers, per method and column order, on the
   SAME Hessians (one sequential pass; each layer is solved by every method, and the GPTQ
   natural-order result is propagated), printed relative to RTN; plus the solve time.
2. Wall time of a full GPTQ quantization with thinkcost vs GPTQModel (the anchor), and the
   anchor's proxy loss on our Hessians, if GPTQModel is installed in a side venv
   (`--anchor-python venv/bin/python`; it needs torch>=2.14, which thinkcost does not pin).
3. With `--run`: `thinkcost run` accuracy / reasoning tokens / CTIR for rtn vs gptq vs babai at
   w4g32 and w3g32 on the arithmetic task (resumable store under runs/).

    python benchmarks/quantize.py [--bits 3] [--group 32] [--calib 32] [--seq-len 256]
        [--anchor-python /work/venv-gptqmodel/bin/python] [--run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from thinkcost.engines.hf import load_hf, save_hf
from thinkcost.models import resolve_model
from thinkcost.quant.babai import babai_quantize
from thinkcost.quant.calibration import build_calibration
from thinkcost.quant.checkpoint import import_gptq
from thinkcost.quant.gptq import ORDERS, GPTQConfig, gptq_quantize, proxy_loss
from thinkcost.quant.sequential import quantize_sequential_
from thinkcost.quant.solvers import layer_solver
from thinkcost.tasks import get_task


def compare_methods(model, calib, bits: int, group: int, console: Console):
    """One sequential pass; every layer solved by every method on the same H."""
    losses: dict[str, float] = defaultdict(float)
    seconds: dict[str, float] = defaultdict(float)
    solvers = {"rtn": (layer_solver("rtn"), "natural")}
    solvers |= {f"gptq/{o}": (gptq_quantize, o) for o in ORDERS}
    solvers["babai/natural"] = (babai_quantize, "natural")  # equals gptq/reverse, a check at scale

    def solve(W, H, _name):
        keep = None
        for label, (fn, order) in solvers.items():
            t = time.perf_counter()
            res = fn(W, H, GPTQConfig(bits=bits, group_size=group, order=order))
            seconds[label] += time.perf_counter() - t
            losses[label] += float(res.proxy_loss)
            if label == "gptq/natural":
                keep = res
        return keep

    with console.status("sequential pass, all methods per layer"):
        quantize_sequential_(model, calib, solve)
    return losses, seconds


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--bits", type=int, default=3)
    ap.add_argument("--group", type=int, default=32)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--anchor-python", default=os.environ.get("GPTQMODEL_PYTHON"))
    ap.add_argument("--run", action="store_true", help="also run the accuracy/CTIR comparison")
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--blocks", type=int, default=4, help="blocks used for the per-method comparison")
    args = ap.parse_args()
    console = Console(width=140)
    model, tok = load_hf(resolve_model(args.model))
    calib = build_calibration(get_task("arithmetic"), tok, n_samples=args.calib, seq_len=args.seq_len, seed=0)
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    console.print(
        f"{args.model}, w{args.bits}g{args.group}, calibration {tuple(calib.shape)} from task prompts"
    )

    all_blocks = model.model.layers
    model.model.layers = all_blocks[: args.blocks]  # every method x order on the first blocks
    losses, seconds = compare_methods(model, calib, args.bits, args.group, console)
    model.model.layers = all_blocks
    model.load_state_dict(base_state)
    t = Table(
        title=f"proxy loss summed over blocks 0..{args.blocks - 1}, same Hessians, w{args.bits}g{args.group}"
    )
    for c in ("method/order", "proxy loss", "vs RTN", "solve seconds"):
        t.add_column(c, justify="right")
    for label in losses:
        t.add_row(
            label, f"{losses[label]:.4g}", f"{losses[label] / losses['rtn']:.3f}x", f"{seconds[label]:.1f}"
        )
    console.print(t)
    best = min((k for k in losses if k != "rtn"), key=losses.get)
    console.print(f"lowest proxy loss: {best}")

    hessians: dict[str, torch.Tensor] = {}
    ours: dict[str, float] = {}

    def gptq_keep_h(W, H, name):
        hessians[name] = H.float()
        res = gptq_quantize(W, H, GPTQConfig(args.bits, args.group))
        ours[name] = res.proxy_loss
        return res

    model.load_state_dict(base_state)
    t0 = time.perf_counter()
    quantize_sequential_(model, calib, gptq_keep_h)
    ours_s = time.perf_counter() - t0
    console.print(f"thinkcost GPTQ w{args.bits}g{args.group}, full sequential quantization: {ours_s:.1f}s")

    if args.anchor_python:
        model.load_state_dict(base_state)
        with tempfile.TemporaryDirectory() as tmp:
            save_hf(model, tok, f"{tmp}/base")
            Path(f"{tmp}/calib.json").write_text(json.dumps(calib.tolist()))
            p = subprocess.run(
                [
                    args.anchor_python,
                    str(Path(__file__).with_name("anchor_gptqmodel.py")),
                    f"{tmp}/base",
                    f"{tmp}/calib.json",
                    f"{tmp}/anchor",
                    str(args.bits),
                    str(args.group),
                ],
                capture_output=True,
                text=True,
                env={**os.environ, "GPTQMODEL_CPU_WORKERS": "2"},
            )
            if p.returncode != 0:
                console.print(f"[red]GPTQModel failed:[/] {p.stderr[-1500:]}")
            else:
                anchor = json.loads(p.stdout.strip().splitlines()[-1])
                state, _ = import_gptq(f"{tmp}/anchor")
                anchor_loss = sum(
                    proxy_loss(base_state[f"{n}.weight"].float(), state[f"{n}.weight"], H)
                    for n, H in hessians.items()
                )
                ours_loss = sum(ours.values())
                console.print(
                    f"GPTQModel {anchor['version']}: quantize {anchor['quantize_s']:.1f}s, proxy loss on our "
                    f"Hessians {anchor_loss:.4g}.  thinkcost/GPTQModel: time {ours_s / anchor['quantize_s']:.2f}x, "
                    f"proxy loss {ours_loss / anchor_loss:.3f}x"
                )
    if args.run:
        variants = ["base"] + [f"{m}-w{b}g32" for b in (4, 3) for m in ("rtn", "gptq", "babai")]
        cmd = [
            sys.executable,
            "-m",
            "thinkcost.cli",
            "run",
            "--variants",
            ",".join(variants),
            "--limit",
            str(args.limit),
            "--name",
            "quantizers",
            "--model",
            args.model,
        ]
        subprocess.run(cmd, check=True)


if __name__ == "__main__":
    main()
