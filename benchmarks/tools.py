"""Tool-use episodes (`tools` task) on the default model and its RTN variants: accuracy,
calls and turns per episode, outcome counts and tokens per episode, read from the store.

    python benchmarks/tools.py [--limit 32] [--variants base,rtn-w4g32,rtn-w3g32]
        [--max-new-tokens 192] [--store /tmp/tools_bench/s.sqlite]

Rerunning the same command resumes (finished episodes are stored one row each); `--report`
only prints the table of what the store holds.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.pipeline import run
from thinkcost.spec import build_spec
from thinkcost.store import Store


def table(store_path: Path, console: Console) -> list[dict]:
    """Per variant: episodes, accuracy, calls, turns, tokens, seconds and outcome counts."""
    store = Store(store_path, create=False)
    g = store.generations()
    need = {}
    for run_id in g["run_id"].unique():
        probs = store.problems(run_id)
        need |= {pid: m.get("calls") for pid, m in zip(probs["problem_id"], probs["meta"], strict=True)}
    rows = []
    for variant, grp in g.groupby("variant", sort=False):
        details = [json.loads(d) for d in grp["verdict_detail"]]
        outcomes = Counter(d["outcome"] for d in details)
        errors: Counter = Counter()
        for d in details:
            errors.update(d["call_errors"])
        n = len(grp)
        rows.append(
            {
                "variant": variant,
                "episodes": n,
                "accuracy": float(grp["correct"].mean()),
                "calls": sum(d["n_calls"] for d in details) / n,
                "turns": sum(d["turns"] for d in details) / n,
                "tokens": float(grp["completion_tokens"].mean()),
                "reasoning": float(grp["reasoning_tokens"].mean()),
                "prompt": float(grp["prompt_tokens"].mean()),
                "seconds": float(grp["cost_s"].mean()),
                "accuracy_by_calls": {
                    int(k): f"{int(sub['correct'].sum())}/{len(sub)}"
                    for k, sub in grp.groupby(grp["problem_id"].map(need), sort=True)
                },
                "outcomes": dict(outcomes),
                "call_errors": dict(errors),
            }
        )
    t = Table(title=f"tools episodes ({store_path})")
    for c in (
        "variant",
        "n",
        "acc",
        "calls/ep",
        "turns/ep",
        "tok/ep",
        "reason tok/ep",
        "prompt tok/ep",
        "s/ep",
        "correct by calls needed",
        "outcomes",
        "call errors",
    ):
        t.add_column(c)
    for r in rows:
        t.add_row(
            r["variant"], str(r["episodes"]), f"{r['accuracy']:.3f}", f"{r['calls']:.2f}", f"{r['turns']:.2f}",
            f"{r['tokens']:.0f}", f"{r['reasoning']:.0f}", f"{r['prompt']:.0f}", f"{r['seconds']:.1f}",
            " ".join(f"{k}:{v}" for k, v in r["accuracy_by_calls"].items()),
            ", ".join(f"{k} {v}" for k, v in sorted(r["outcomes"].items())),
            ", ".join(f"{k} {v}" for k, v in sorted(r["call_errors"].items())) or "-",
        )  # fmt: skip
    console.print(t)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--engine", default="hf")
    ap.add_argument("--variants", default="base,rtn-w4g32,rtn-w3g32")
    ap.add_argument("--limit", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=192)
    ap.add_argument("--max-turns", type=int, default=6)
    ap.add_argument("--min-calls", type=int, default=1)
    ap.add_argument("--max-calls", type=int, default=4)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--store", type=Path, default=Path("/tmp/tools_bench/s.sqlite"))
    ap.add_argument("--report", action="store_true", help="only print the table of the stored episodes")
    args = ap.parse_args()
    console = Console(width=200)
    if not args.report:
        spec = build_spec(
            {},
            {
                "model": args.model,
                "engine": args.engine,
                "task": "tools",
                "task_options": {
                    "max_turns": args.max_turns,
                    "min_calls": args.min_calls,
                    "max_calls": args.max_calls,
                },
                "variants": args.variants,
                "limit": args.limit,
                "max_new_tokens": args.max_new_tokens,
                "batch_size": args.batch_size,
                "store": args.store,
                "out": args.store.parent / "out",
                "n_boot": 200,
            },
        )
        run(spec, console)
    rows = table(args.store, console)
    (args.store.parent / "tools_table.json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
