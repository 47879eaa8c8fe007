"""Reasoning under controlled difficulty: the default model and its RTN w4/w3 variants on Tower of
Hanoi with n = 2..6 disks (accuracy, reasoning tokens and CTIR per level, collapse point per
variant), plus one coverage curve exp(a k^b) fitted to a maj@16 sample set.

Runs through the CLI (`thinkcost run`), so the stores and reports are exactly what a user gets;
a rerun resumes from the stores. `--report-only` reads stores that already exist.

    python benchmarks/puzzles.py [--limit 10] [--max-new-tokens 512] [--maj-limit 8] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import subprocess
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.report.build import build_report
from thinkcost.report.export import resolve_run
from thinkcost.store import Store


def _run(args: list[str]) -> None:
    subprocess.run(["thinkcost", "run", *args], check=True)


def _report(store: Path, out: Path) -> dict:
    st = Store(store, create=False)
    try:
        _, paths = build_report(st, resolve_run(st, None), out)
    finally:
        st.close()
    return json.loads(paths["json"].read_text())["meta"]


def _fmt(x, pct=False) -> str:
    if x is None:
        return "n/a"
    return f"{x:.0%}" if pct else f"{x:.2f}" if isinstance(x, float) else str(x)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dir", type=Path, default=Path("runs"))
    ap.add_argument("--levels", default="2..6")
    ap.add_argument("--limit", type=int, default=10, help="hanoi problems (spread evenly over the levels)")
    ap.add_argument("--max-new-tokens", type=int, default=512)
    ap.add_argument("--variants", default="base,rtn-w4g32,rtn-w3g32")
    ap.add_argument("--maj-limit", type=int, default=8, help="arithmetic problems of the maj@16 sample set")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    hanoi, maj = args.dir / "puzzles-hanoi.sqlite", args.dir / "puzzles-maj16.sqlite"
    if not args.report_only:
        _run(
            [
                *(
                    "--name",
                    "puzzles-hanoi",
                    "--engine",
                    "hf",
                    "--variants",
                    args.variants,
                    "--task",
                    "hanoi",
                ),
                *("--task-options", json.dumps({"n": args.levels}), "--limit", str(args.limit)),
                *("--max-new-tokens", str(args.max_new_tokens), "--batch-size", str(args.limit)),
                *("--store", str(hanoi), "--out", str(args.dir / "puzzles-hanoi")),
            ]
        )
        _run(
            [
                *("--name", "puzzles-maj16", "--engine", "hf", "--variants", "base", "--task", "arithmetic"),
                *("--task-options", '{"min_ops": 1, "max_ops": 2}', "--limit", str(args.maj_limit)),
                *("--strategy", "maj@16", "--max-new-tokens", "200", "--batch-size", "16"),
                *("--store", str(maj), "--out", str(args.dir / "puzzles-maj16")),
            ]
        )
    console = Console(width=140)
    if hanoi.exists():
        meta = _report(hanoi, args.dir / "puzzles-hanoi")
        block = meta.get("levels") or {"table": [], "collapse": []}
        t = Table(
            "variant",
            "level",
            "problems",
            "accuracy",
            "reasoning tok",
            "CTIR (joint)",
            title="hanoi per level",
        )
        for r in block["table"]:
            t.add_row(
                r["variant"],
                str(r["level"]),
                str(r["n"]),
                _fmt(r["accuracy"], True),
                _fmt(r["mean_reasoning_tokens"]),
                f"{_fmt(r['ctir'])} (n={r['ctir_n']})",
            )
        console.print(t)
        for c in block["collapse"]:
            console.print(
                f"{c['variant']}: collapse level {c['collapse_level']} (threshold {c['threshold']:.0%})"
            )
    if maj.exists():
        meta = _report(maj, args.dir / "puzzles-maj16")
        for f in meta.get("coverage_fits") or []:
            ext = ", ".join(
                f"k={e['k']}: {e['coverage']:.1%} [{_fmt(e['ci'][0], True)}, {_fmt(e['ci'][1], True)}]"
                for e in f["extrapolated"]
            )
            obs = f["observed"]
            console.print(
                f"coverage fit {f['variant']} ({f['problems']} problems, n={f['n']}): a={f['a']:.3f} "
                f"[{_fmt(f['a_ci'][0])}, {_fmt(f['a_ci'][1])}], b={f['b']:.3f} [{_fmt(f['b_ci'][0])}, "
                f"{_fmt(f['b_ci'][1])}]; pass@1 {obs[0]['coverage']:.1%}, pass@{obs[-1]['k']} "
                f"{obs[-1]['coverage']:.1%}; extrapolated {ext}"
            )


if __name__ == "__main__":
    main()
