"""Benchmark of `thinkcost recover`: measure the damage of w3g32 PTQ, repair it by distillation
from the base model, and measure the repair with the same numbers (the recovery table).

    python benchmarks/recover.py                      # issue targets: 256 train / 64 eval problems
    python benchmarks/recover.py --train 48 --eval 24 --variants rtn-w3g32   # what 2 shared cores allow

Phases (one store, one run; rerunning the script resumes every phase):
1. `thinkcost run` base + PTQ variants, greedy; PTQ variants again with wait-penalty (the decoding
   mitigation).
2. `thinkcost recover` per PTQ variant, in a subprocess (its own peak memory), all on the same
   teacher traces of training problems from a disjoint seed range.
3. `thinkcost run` the recovered `ckpt:DIR` variants; the report's recovery table and a JSON
   summary (accuracy, CTIR, training wall time, peak memory) are printed and written.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console

from thinkcost.pipeline import run
from thinkcost.spec import build_spec


def run_spec(args, variants: list[str], strategy: str, console: Console):
    spec = build_spec(
        {},
        {
            "name": "recover-bench",
            "model": args.model,
            "variants": variants,
            "strategy": [strategy],
            "limit": args.eval,
            "seed": args.seed,
            "max_new_tokens": args.max_new_tokens,
            "batch_size": args.gen_batch,
            "store": args.out / "bench.sqlite",
            "out": args.out / f"report-{strategy.replace(':', '_')}",
        },
    )
    return run(spec, console)


def recover(args, variant: str, console: Console) -> dict:
    out = args.out / f"recovered-{variant}"
    if (out / "recover.json").is_file():
        return json.loads((out / "recover.json").read_text())
    cmd = [
        sys.executable,
        "-m",
        "thinkcost.cli",
        "recover",
        "--model",
        args.model,
        "--variant",
        variant,
        "-o",
        str(out),
        "--mode",
        args.mode,
        "--loss",
        args.loss,
        "--train",
        str(args.train),
        "--eval-limit",
        str(args.eval),
        "--seed",
        str(args.seed),
        "--steps",
        str(args.steps),
        "--batch-size",
        str(args.batch_size),
        "--lr",
        str(args.lr),
        "--max-new-tokens",
        str(args.max_new_tokens),
        "--checkpoint-every",
        "5",
        "--traces-cache",
        str(args.out / "traces.jsonl"),
    ]
    console.print(" ".join(cmd), markup=False)
    t = time.perf_counter()
    subprocess.run(cmd, check=True)
    res = json.loads((out / "recover.json").read_text())
    res["wall_s"] = time.perf_counter() - t
    (out / "recover.json").write_text(json.dumps(res, indent=2) + "\n")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--variants", default="rtn-w3g32,gptq-w3g32")
    ap.add_argument("--train", type=int, default=256, help="training problems (teacher traces)")
    ap.add_argument("--eval", type=int, default=64, help="held-out evaluated problems")
    ap.add_argument("--mode", default="lora")
    ap.add_argument("--loss", default="kd")
    ap.add_argument("--steps", type=int, default=0, help="optimizer steps (0: one epoch over the traces)")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--penalty", default="2")
    ap.add_argument("--max-new-tokens", type=int, default=384)
    ap.add_argument("--gen-batch", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("runs/recover-bench"))
    args = ap.parse_args()
    console = Console(width=200)
    args.out.mkdir(parents=True, exist_ok=True)
    ptq = args.variants.split(",")
    t0 = time.perf_counter()

    console.rule("1. base and PTQ, greedy and wait-penalty")
    run_spec(args, ["base", *ptq], "greedy", console)
    run_spec(args, ptq, f"wait-penalty:{args.penalty}", console)

    console.rule("2. recover")
    if not args.steps:
        est = args.train * 0.7  # the teacher answers ~70% correctly; exact count known after generation
        args.steps = max(1, int(est) // args.batch_size)
    recovered = {v: recover(args, v, console) for v in ptq}

    console.rule("3. recovered variants")
    ckpts = [r["variant_name"] for r in recovered.values()]
    res = run_spec(args, ["base", *ptq, *ckpts], "greedy", console)
    from thinkcost.report.build import build_report
    from thinkcost.report.recovery import recovery_markdown
    from thinkcost.store import Store

    st = Store(res.store_path)
    try:
        build_report(st, res.run_id, args.out / "report-all")
        from thinkcost.report.recovery import recovery_rows_of_store

        table = recovery_rows_of_store(st, res.run_id)
    finally:
        st.close()
    md = recovery_markdown(table)
    console.print(md, markup=False)
    summary = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "recovered": recovered,
        "recovery_table": [r.to_json() for r in table],
        "total_s": time.perf_counter() - t0,
    }
    (args.out / "recover_bench.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    (args.out / "recovery_table.md").write_text(md + "\n")
    console.print(f"written {args.out / 'recover_bench.json'}", markup=False)


if __name__ == "__main__":
    main()
