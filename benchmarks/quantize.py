"""Quantizer benchmark on the default model, measured side by side in one run.

1. Proxy loss tr((W-Q) H (W-Q)^T) summed over all layers, per method and column order, on the
   SAME Hessians (one sequential pass; each layer is solved by every method, and the GPTQ
   natural-order result is propagated), printed relative to RTN; plus the solve time.
2. Wall time of a full GPTQ quantization with thinkcost vs GPTQModel (the anchor), and the
   anchor's proxy loss on our Hessians, if GPTQModel is installed in a side venv
   (`--anchor-python venv/bin/python`; it needs torch>=2.14, which thinkcost does not pin).
3. With `--run`: `thinkcost run` accuracy / reasoning tokens / CTIR for rtn vs gptq vs babai at
   w4g32 and w3g32 on the arithmetic task (resumable store under runs/).

   With `--old REV`: the same full quantization with thinkcost's GPTQ as of git revision REV
   (its gptq.py + sequential.py, loaded from git), in the same process, for a before/after.

    python benchmarks/quantize.py [--bits 3] [--group 32] [--calib 32] [--seq-len 256] [--blocks 0]
        [--anchor-python /work/venvs/gptqmodel/bin/python] [--old HEAD] [--sweep float32] [--run]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
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


def old_quantizer(rev: str):
    """(quantize_sequential_, gptq_quantize, GPTQConfig) of thinkcost as of git revision `rev`."""
    root = Path(__file__).resolve().parents[1]

    def load(name: str, path: str, **extra) -> types.ModuleType:
        src = subprocess.run(
            ["git", "show", f"{rev}:{path}"], cwd=root, check=True, capture_output=True, text=True
        )
        text = src.stdout.replace("@QUANTIZERS.register(", "@_no_register(")  # no second "gptq"
        text = text.replace(
            "from .gptq import HessianAccumulator", "HessianAccumulator = _old_gptq.HessianAccumulator"
        )
        mod = types.ModuleType(name)
        mod.__dict__.update(
            _no_register=lambda *a, **k: lambda f: f, __name__=name, __package__="thinkcost.quant", **extra
        )
        sys.modules[name] = mod  # dataclasses look their module up there
        exec(compile(text, f"{rev}:{path}", "exec"), mod.__dict__)
        return mod

    g = load("old_gptq", "src/thinkcost/quant/gptq.py")
    seq = load("old_sequential", "src/thinkcost/quant/sequential.py", _old_gptq=g)
    return seq.quantize_sequential_, g.gptq_quantize, g.GPTQConfig


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
    ap.add_argument("--blocks", type=int, default=4, help="blocks for the per-method comparison (0: skip it)")
    ap.add_argument("--old", help="git revision whose GPTQ to time side by side (e.g. HEAD)")
    ap.add_argument("--sweep", default="float32", help="sweep_dtype of the new GPTQ: float32 | float64")
    ap.add_argument(
        "--layers", type=int, default=0, help="quantize only the first N blocks (0: all), all three alike"
    )
    args = ap.parse_args()
    console = Console(width=140)
    model, tok = load_hf(resolve_model(args.model))
    calib = build_calibration(get_task("arithmetic"), tok, n_samples=args.calib, seq_len=args.seq_len, seed=0)
    if args.layers:  # a shorter model for every quantizer alike (GPTQModel gets it saved so)
        model.model.layers = model.model.layers[: args.layers]
        model.config.num_hidden_layers = args.layers
        if getattr(model.config, "layer_types", None):
            model.config.layer_types = model.config.layer_types[: args.layers]
    base_state = {k: v.clone() for k, v in model.state_dict().items()}
    console.print(
        f"{args.model}, w{args.bits}g{args.group}, calibration {tuple(calib.shape)} from task prompts"
    )

    if args.blocks:
        method_table(model, calib, base_state, args, console)
    full_runs(model, tok, calib, base_state, args, console)


def method_table(model, calib, base_state, args, console: Console) -> None:
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


def full_runs(model, tok, calib, base_state, args, console: Console) -> None:
    """Full sequential GPTQ: new thinkcost, GPTQModel, old thinkcost; one process, one table.

    Every loss is measured on the new run's Hessians, so the three are scored alike."""
    hessians: dict[str, torch.Tensor] = {}
    ours: dict[str, float] = {}
    h32: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id -> (H, kept alive; its float32 copy)
    cfg = GPTQConfig(args.bits, args.group, sweep_dtype=args.sweep)

    def gptq_keep_h(W, H, name):
        if id(H) not in h32:  # shared (q/k/v, gate/up): the same tensor, stored once
            h32.clear()  # a new block: the previous block's H are no longer passed in
            h32[id(H)] = (H, H.float())
        hessians[name] = h32[id(H)][1]
        res = gptq_quantize(W, H, cfg)
        ours[name] = res.proxy_loss
        return res

    model.load_state_dict(base_state)
    t0, c0 = time.perf_counter(), time.process_time()
    quantize_sequential_(model, calib, gptq_keep_h)
    ours_s, ours_cpu = time.perf_counter() - t0, time.process_time() - c0
    ours_loss = sum(ours.values())
    rows = [("thinkcost (new)", ours_s, ours_cpu, ours_loss)]
    console.print(
        f"thinkcost GPTQ w{args.bits}g{args.group} (sweep {args.sweep}), full sequential quantization: "
        f"{ours_s:.1f}s wall, {ours_cpu:.1f} CPU s, proxy loss {ours_loss:.5g}",
        highlight=False,
    )

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
                sec, cpu = anchor["quantize_s"], anchor["quantize_cpu_s"]
                rows.append((f"GPTQModel {anchor['version']}", sec, cpu, anchor_loss))
                console.print(
                    f"GPTQModel: {sec:.1f}s wall, {cpu:.1f} CPU s, proxy loss {anchor_loss:.5g}",
                    highlight=False,
                )
    if args.old:
        old_seq, old_gptq, old_cfg = old_quantizer(args.old)
        old: dict[str, float] = {}

        def old_solve(W, H, name):
            res = old_gptq(W, H, old_cfg(args.bits, args.group))
            old[name] = proxy_loss(base_state[f"{name}.weight"].float(), res.dequant, hessians[name])
            return res

        model.load_state_dict(base_state)
        t0, c0 = time.perf_counter(), time.process_time()
        old_seq(model, calib, old_solve)
        rows.append(
            (f"thinkcost ({args.old})", time.perf_counter() - t0, time.process_time() - c0, sum(old.values()))
        )
        console.print(
            f"thinkcost {args.old}: {rows[-1][1]:.1f}s wall, {rows[-1][2]:.1f} CPU s", highlight=False
        )
    t = Table(title=f"full sequential GPTQ w{args.bits}g{args.group}, one run, losses on the same Hessians")
    for c in ("quantizer", "wall s", "CPU s", "proxy loss", "wall / new", "CPU / new", "loss / new"):
        t.add_column(c, justify="right")
    for label, sec, cpu, loss in rows:
        t.add_row(
            label,
            f"{sec:.1f}",
            f"{cpu:.1f}",
            f"{loss:.5g}",
            f"{sec / ours_s:.3f}x",
            f"{cpu / ours_cpu:.3f}x",
            f"{loss / ours_loss:.4f}x",
        )
    console.print(t)
    for label, sec, cpu, loss in rows[1:]:  # CPU seconds are the fair figure on a shared host
        console.print(
            f"thinkcost new / {label}: CPU time {ours_cpu / cpu:.3f}x, wall {ours_s / sec:.3f}x, "
            f"proxy loss {ours_loss / loss:.4f}x",
            highlight=False,
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
