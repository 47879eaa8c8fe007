"""Decode throughput of the hf engine vs a plain sequential `model.generate` loop, and the
harness overhead of a full `thinkcost run` (store, verification, progress, report) over the
time the model itself computes. Prints ratios measured side by side in one process, and each
row's share of this machine's decode roofline (thinkcost.roofline; machine figures from
`thinkcost doctor --bench`, measured here when it has not run).

    python benchmarks/engine_throughput.py [--model qwen2.5-coder-0.5b] [--tokens 64] [--prompts 16]
"""

from __future__ import annotations

import argparse
import functools
import tempfile
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from thinkcost.engines.hf import HFEngine, load_hf
from thinkcost.models import resolve_model
from thinkcost.pipeline import run
from thinkcost.roofline import ModelShape, load_machine, measure_machine, percent_of_roofline, roofline
from thinkcost.spec import build_spec
from thinkcost.tasks import get_task
from thinkcost.types import Request


def sequential_generate(model, tok, engine: HFEngine, reqs: list[Request]) -> tuple[int, float]:
    """The baseline users write first: one prompt at a time through `model.generate`."""
    n, t = 0, time.perf_counter()
    for r in reqs:
        enc = tok(engine.render(r), return_tensors="pt", add_special_tokens=False)
        out = model.generate(**enc, max_new_tokens=r.max_new_tokens, do_sample=False)
        n += out.shape[1] - enc.input_ids.shape[1]
    return n, time.perf_counter() - t


def engine_generate(engine: HFEngine, reqs: list[Request]) -> tuple[int, float]:
    t = time.perf_counter()
    outs = engine.generate(reqs)
    return sum(o.completion_tokens for o in outs), time.perf_counter() - t


class ForwardTimer:
    """Wraps model.forward to add up the seconds the model itself computes."""

    def __init__(self, model) -> None:
        self.model, self.inner, self.seconds = model, model.forward, 0.0

    def __enter__(self):
        @functools.wraps(self.inner)  # keeps the signature the engine inspects
        def timed(*a, **kw):
            t = time.perf_counter()
            try:
                return self.inner(*a, **kw)
            finally:
                self.seconds += time.perf_counter() - t

        self.model.forward = timed
        return self

    def __exit__(self, *exc) -> None:
        self.model.forward = self.inner


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--tokens", type=int, default=64, help="max new tokens in the throughput runs")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--e2e-limit", type=int, default=16)
    ap.add_argument("--e2e-tokens", type=int, default=256)
    ap.add_argument("--only", choices=["throughput", "overhead"], help="run one half")
    args = ap.parse_args()
    console = Console()
    console.print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, model {args.model}")
    t = time.perf_counter()
    model, tok = load_hf(resolve_model(args.model))
    console.print(f"load: {time.perf_counter() - t:.1f}s")
    problems = get_task("arithmetic").problems(args.prompts, 0)
    reqs = [Request(p.messages, max_new_tokens=args.tokens) for p in problems]

    if args.only != "overhead":
        throughput(model, tok, reqs, args, console)
    if args.only != "throughput":
        overhead(model, tok, args, console)


def roofline_percent(model, tok, reqs, console):
    """-> f(batch, tokens generated, tok/s) giving "% of roofline" at the mean decode context
    (prompt + half the mean completion) and the nominal batch (an upper bound: rows that
    finish early shrink the real batch)."""
    machine = load_machine()
    if machine is None:
        console.print("no `thinkcost doctor --bench` figures saved: measuring the machine now")
        machine = measure_machine()
    console.print(
        f"roofline: {machine.bandwidth_gbs:.1f} GB/s read, matmul peak "
        + ", ".join(
            f"{d} {machine.peak_gflops(d):.0f}" for d in dict.fromkeys(m.dtype for m in machine.matmuls)
        )
        + f" GFLOP/s ({machine.threads} threads, {machine.measured_at})"
    )
    shape = ModelShape.from_config(model.config)
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    engine = HFEngine(model, tok, 1)
    prompt = sum(len(tok(engine.render(r), add_special_tokens=False).input_ids) for r in reqs) / len(reqs)

    def percent(batch: int, tokens: int, tps: float) -> str:
        roof = roofline(shape, machine, min(batch, len(reqs)), prompt + tokens / len(reqs) / 2, dtype)
        return f"{percent_of_roofline(tps, roof):.0f}% of {roof.tok_s:.0f} ({roof.bound})"

    return percent


def throughput(model, tok, reqs, args, console) -> None:
    table = Table(title=f"decode throughput, {args.prompts} prompts x <= {args.tokens} new tokens (greedy)")
    for col in ("method", "batch", "tokens", "seconds", "tok/s", "vs sequential", "% of roofline"):
        table.add_column(col, justify="right")
    percent = roofline_percent(model, tok, reqs, console)
    seq_n, seq_s = sequential_generate(model, tok, HFEngine(model, tok, 1), reqs)
    seq_tps = seq_n / seq_s
    table.add_row(
        "model.generate loop",
        "1",
        str(seq_n),
        f"{seq_s:.1f}",
        f"{seq_tps:.1f}",
        "1.00x",
        percent(1, seq_n, seq_tps),
    )
    for bs in (1, 4, 16):
        n, s = engine_generate(HFEngine(model, tok, bs), reqs)
        table.add_row(
            "thinkcost hf",
            str(bs),
            str(n),
            f"{s:.1f}",
            f"{n / s:.1f}",
            f"{n / s / seq_tps:.2f}x",
            percent(bs, n, n / s),
        )
    console.print(table)


def overhead(model, tok, args, console) -> None:
    with tempfile.TemporaryDirectory() as tmp, ForwardTimer(model) as timer:
        spec = build_spec(
            {},
            {
                "model": args.model,
                "variants": ["base"],
                "limit": args.e2e_limit,
                "max_new_tokens": args.e2e_tokens,
                "store": Path(tmp) / "b.sqlite",
                "out": Path(tmp) / "out",
            },
        )
        import thinkcost.engines.hf as hf

        real_load = hf.load_hf
        hf.load_hf = lambda *a, **k: (model, tok)  # reuse the loaded model: time the harness, not disk
        try:
            t = time.perf_counter()
            res = run(spec, Console(quiet=True))
            e2e = time.perf_counter() - t
        finally:
            hf.load_hf = real_load
    tokens = res.rows[0].mean_completion_tokens * res.rows[0].n
    console.print(
        f"end-to-end `thinkcost run` (1 variant, {args.e2e_limit} problems, batch 16): {e2e:.1f}s for "
        f"{tokens:.0f} tokens; model forward time {timer.seconds:.1f}s; "
        f"harness overhead {100 * (e2e / timer.seconds - 1):.1f}%"
    )


if __name__ == "__main__":
    main()
