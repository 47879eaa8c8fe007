"""Trust figures on the default model, side by side per variant (2-core CPU):

1. calibration: ECE (10 equal-width bins, and equal-mass), Brier, AUROC and the share of
   missing confidences of verbal confidence (`--confidence verbal`) per variant;
2. robustness: attack success (canary in the answer) and leaks in the reasoning on the
   `injection` and `extraction` tasks, per variant and strategy (greedy vs a reasoning budget
   `bf-cap:B` vs one forced extra round `bf-wait:1`), Wilson 95% CIs;
3. reproducibility: `thinkcost repro` over dtypes and batch sizes: share of problems whose
   greedy text differs from float32 / batch 1, first divergent token, spread of accuracy.

    python benchmarks/trust.py [--limit 16] [--only calibration,robustness,repro]
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.metrics.calibration import calibration_summary
from thinkcost.pipeline import run
from thinkcost.report.table import robustness_table
from thinkcost.spec import RunSpec
from thinkcost.store import Store

console = Console(width=150)


def calibration(args, tmp: Path) -> None:
    spec = RunSpec(
        variants=args.variants.split(","),
        limit=args.limit,
        confidence="verbal",
        store=tmp / "calib.sqlite",
        out=tmp / "calib",
    )
    res = run(spec, Console(quiet=True))
    st = Store(tmp / "calib.sqlite")
    g = st.generations(res.run_id)
    st.close()
    t = Table("variant", "accuracy", "ECE (width)", "ECE (mass)", "Brier", "AUROC", "no confidence",
              title=f"1. verbal confidence, {args.limit} arithmetic problems, greedy")  # fmt: skip
    for v, gv in g.groupby("variant", sort=False):
        conf = [None if x != x else float(x) for x in gv["confidence"]]
        cs = calibration_summary(conf, list(gv["correct"].astype(bool)))
        t.add_row(v, f"{gv['correct'].mean():.0%}", f"{cs['ece_width']:.3f}", f"{cs['ece_mass']:.3f}",
                  f"{cs['brier']:.3f}", f"{cs['auroc']:.2f}", f"{cs['missing_share']:.0%}")  # fmt: skip
    console.print(t)


def robustness(args, tmp: Path) -> None:
    for task in ("injection", "extraction"):
        spec = RunSpec(
            task=task,
            variants=args.attack_variants.split(","),
            strategy=args.attack_strategies.split(","),
            limit=args.attack_limit,
            store=tmp / f"{task}.sqlite",
            out=tmp / task,
        )
        res = run(spec, Console(quiet=True))
        records = json.loads(res.outputs["json"].read_text())["meta"]["robustness"]
        t = robustness_table(records)
        t.title = f"2. {task}: {args.attack_limit} problems"
        console.print(t)


def repro(args, tmp: Path) -> None:
    from thinkcost.repro import repro as run_repro

    spec = RunSpec(variants=["base"], limit=args.repro_limit, store=tmp / "repro.sqlite", out=tmp / "repro")
    dtypes = args.repro_dtypes.split(",")
    sizes = [int(b) for b in args.repro_batch_sizes.split(",")]
    result = run_repro(spec, dtypes, sizes, Console(quiet=True))
    t = result.table()
    t.title = f"3. repro: {args.repro_limit} problems, greedy, every dtype x batch size"
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=16)
    ap.add_argument("--variants", default="base,rtn-w8g32,rtn-w4g32,rtn-w3g32")
    ap.add_argument("--attack-limit", type=int, default=12)
    ap.add_argument("--attack-variants", default="base,rtn-w3g32")
    ap.add_argument("--attack-strategies", default="greedy,bf-cap:32,bf-wait:1")
    ap.add_argument("--repro-limit", type=int, default=6)
    ap.add_argument("--repro-dtypes", default="float32,bfloat16")
    ap.add_argument("--repro-batch-sizes", default="1,16")
    ap.add_argument("--only", default="calibration,robustness,repro")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        if "calibration" in parts:
            calibration(args, tmp)
        if "robustness" in parts:
            robustness(args, tmp)
        if "repro" in parts:
            repro(args, tmp)


if __name__ == "__main__":
    main()
