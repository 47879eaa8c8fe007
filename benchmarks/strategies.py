"""maj@k vs short-m@k on the default model and task, side by side in one process, plus the
saving of reading every maj@k / pass@k point off one sample set instead of regenerating.

Targets (Hassid et al. 2025): short-m@k uses >= 30% less wall time and >= 30% fewer tokens
than maj@k at accuracy within 2 points. Each strategy gets its own store, all share one
loaded model and engine, so the ratios compare decoding work only.

    python benchmarks/strategies.py [--limit 16] [--k 8] [--max-new-tokens 320]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.engines.hf import HFEngine, load_hf
from thinkcost.metrics.scaling import scaling_curves
from thinkcost.models import resolve_model
from thinkcost.pipeline import run
from thinkcost.report.build import stored_strategies
from thinkcost.spec import build_spec
from thinkcost.store import Store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--k", type=int, default=8)
    ap.add_argument("--max-new-tokens", type=int, default=320)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--dtype", default="float32")
    args = ap.parse_args()
    console = Console(width=150)
    k = args.k
    names = [f"maj@{k}", f"short-1@{k}", f"short-3@{k}"]
    t = time.perf_counter()
    model, tok = load_hf(resolve_model(args.model), dtype=args.dtype)
    console.print(f"loaded {args.model} in {time.perf_counter() - t:.0f}s")
    engine = HFEngine(model, tok, batch_size=args.batch_size)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = build_spec(
                {},
                {
                    "model": args.model,
                    "variants": "base",
                    "strategy": name,
                    "limit": args.limit,
                    "max_new_tokens": args.max_new_tokens,
                    "batch_size": args.batch_size,
                    "dtype": args.dtype,
                    "store": Path(tmp) / f"{name}.sqlite",
                    "out": Path(tmp) / name,
                },
            )
            t = time.perf_counter()
            res = run(spec, console, engine=engine)
            wall = time.perf_counter() - t
            (row,) = res.rows
            results[name] = (row, wall, spec)
        curve_gain = _curve_saving(results[f"maj@{k}"][2], console)

    maj, maj_wall, _ = results[f"maj@{k}"]
    tab = Table(
        title=f"{args.model}, arithmetic, {args.limit} problems, k={k}, T=0.7, top-p 0.95, batch {args.batch_size}"
    )
    for col in (
        "strategy",
        "accuracy",
        "Δ acc (points)",
        "tokens/problem",
        "tokens vs maj",
        "wall s",
        "wall vs maj",
        "cancelled",
    ):
        tab.add_column(col, justify="right")
    for name, (row, wall, _) in results.items():
        tab.add_row(
            name,
            f"{100 * row.accuracy:.1f}% ({row.n_correct}/{row.n})",
            f"{100 * (row.accuracy - maj.accuracy):+.1f}",
            f"{row.tokens_per_problem:.0f}",
            f"{row.tokens_per_problem / maj.tokens_per_problem:.2f}×",
            f"{wall:.1f}",
            f"{wall / maj_wall:.2f}×",
            f"{100 * row.cancelled_share:.0f}%",
        )
    console.print(tab)
    console.print(
        f"maj@k curves for k=1..{k} from one set of {k} samples: {curve_gain[0]:.0f} tokens/problem drawn, "
        f"vs {curve_gain[1]:.0f} to regenerate each k: {curve_gain[1] / curve_gain[0]:.2f}× fewer tokens; "
        f"curves computed from the store in {curve_gain[2]:.2f}s"
    )


def _curve_saving(spec, console) -> tuple[float, float, float]:
    """(tokens drawn once, tokens to draw k samples separately for every k, seconds to compute)."""
    store = Store(spec.store_path(), create=False)
    gens = store.generations(spec.run_id())
    t = time.perf_counter()
    points = scaling_curves(gens, stored_strategies(store, spec.run_id()))
    secs = time.perf_counter() - t
    store.close()
    once = max(p["tokens_per_problem"] for p in points)
    regen = sum(p["tokens_per_problem"] for p in points)
    tab = Table(title="accuracy vs k from one sample set")
    for col in ("k", "pass@k", "maj@k", "tokens/problem"):
        tab.add_column(col, justify="right")
    for p in points:
        tab.add_row(
            str(p["k"]),
            f"{100 * p['pass_at_k']:.1f}%",
            f"{100 * p['maj_at_k']:.1f}%",
            f"{p['tokens_per_problem']:.0f}",
        )
    console.print(tab)
    return once, regen, secs


if __name__ == "__main__":
    main()
