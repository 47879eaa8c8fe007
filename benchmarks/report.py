"""How long the full HTML report takes to build, and how big it is, for 10,000 generations.

Targets: report built in < 10 s and report.html < 20 MB for 10,000 stored generations. The
synthetic store has 4 variants x 500 problems x 5 samples of one sampling recipe (maj@5), with
traces of 200-3000 characters of which some loop (as quantized models do), so the problem
browser's payload, the repetition scan and the plots all work on realistic sizes. Shown next
to the old table-only page for scale.

    python benchmarks/report.py [--problems 500] [--variants 4] [--samples 5] [--max-chars 3000]
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.metrics.scaling import scaling_curves
from thinkcost.report.build import build_report, stored_strategies
from thinkcost.report.html import plotly_js, render_report
from thinkcost.report.table import summary_html
from thinkcost.store import Store
from thinkcost.strategies import SamplingOptions, describe, parse_strategy
from thinkcost.types import Completion, Problem, Verdict

RUN = "bench"
TARGET_S = 10.0
TARGET_MB = 20.0
PROSE = (
    "so we need the sum first then check each term carefully because the remainder matters here "
    "let x be the unknown and solve for it step by step the answer follows from the equation"
)
WORDS = PROSE.split()


def _trace(rng: random.Random, chars: int, loops: bool) -> str:
    """Prose of about `chars` characters; a looping one repeats one sentence to the end."""
    if loops:
        sentence = " ".join(rng.choice(WORDS) for _ in range(8)) + ". "
        head = " ".join(rng.choice(WORDS) for _ in range(20)) + ". "
        return (head + sentence * (chars // len(sentence) + 1))[:chars]
    out, n = [], 0
    while n < chars:
        w = rng.choice(WORDS) if rng.random() > 0.1 else str(rng.randint(0, 999))
        out.append(w)
        n += len(w) + 1
    return " ".join(out)


def build_store(
    path: Path, problems: int, variants: int, samples: int, max_chars: int, seed: int = 0
) -> Store:
    rng = random.Random(seed)
    st = Store(path)
    strategy = f"maj@{samples}"
    st.ensure_run(RUN, "report-benchmark", {"model": "synthetic", "engine": "hf", "strategies": [strategy]})
    st.put_problems(
        RUN,
        [
            Problem(
                "arithmetic", f"p{i}", [{"role": "user", "content": f"What is {i} * 7 + 3?"}], str(i * 7 + 3)
            )
            for i in range(problems)
        ],
    )
    names = ["base", *(f"q{b}" for b in (8, 4, 3, 2, 1)[: variants - 1])]
    opts = SamplingOptions()
    info = describe(parse_strategy(strategy, opts)) | {
        "options": {"temperature": opts.temperature, "top_p": opts.top_p, "wait_words": []}
    }
    st.put_strategy(RUN, strategy, 0, info)
    key = parse_strategy(strategy, opts).recipe.key
    for pos, v in enumerate(names):
        st.put_variant(RUN, v, pos, {"bits_per_weight": 16.0 / (pos + 1)})
        skill, loopiness = 0.8 - 0.12 * pos, 0.03 + 0.06 * pos
        for i in range(problems):
            gold = str(i * 7 + 3)
            for s in range(samples):
                loops = rng.random() < loopiness
                chars = max_chars if loops else rng.randint(200, max_chars)
                ok = not loops and rng.random() < skill
                toks = chars // 4
                c = Completion(
                    _trace(rng, chars, loops), "", gold, 30, toks + 8, toks, 8,
                    "length" if loops else "stop", toks / 40, 0.05, toks / 400,
                )  # fmt: skip
                verdict = Verdict(ok, gold if ok else str(rng.randint(0, 9)), "boxed")
                st.put_generation(RUN, v, f"p{i}", key, s, c, verdict, 8)
    return st


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problems", type=int, default=500)
    ap.add_argument("--variants", type=int, default=4)
    ap.add_argument("--samples", type=int, default=5)
    ap.add_argument("--max-chars", type=int, default=3000)
    args = ap.parse_args()
    console = Console(width=120)
    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        st = build_store(
            Path(tmp) / "bench.sqlite", args.problems, args.variants, args.samples, args.max_chars
        )
        n = st.count(RUN)
        console.print(f"synthetic store: {n:,} generations in {time.perf_counter() - t:.1f}s")
        t = time.perf_counter()  # cold: includes importing plotly and reading plotly.js
        rows, outputs = build_report(st, RUN, Path(tmp) / "out")
        build_s = time.perf_counter() - t
        html_mb = outputs["html"].stat().st_size / 1e6
        meta = json.loads(outputs["json"].read_text())["meta"]
        gens, problems = st.generations(RUN), st.problems(RUN)
        curves = scaling_curves(gens, stored_strategies(st, RUN))
        t = time.perf_counter()
        page = render_report(rows, meta, gens, curves, problems)
        html_s = time.perf_counter() - t
        t = time.perf_counter()
        old = summary_html(rows, meta)
        old_s = time.perf_counter() - t
        st.close()
    plotly_js.cache_clear()
    t = time.perf_counter()
    plotly_js()
    js_s = time.perf_counter() - t
    plotly_mb = len(plotly_js().encode()) / 1e6
    table = Table(title=f"report for {n:,} generations ({args.variants} variants x {args.problems} problems "
                  f"x {args.samples} samples)")  # fmt: skip
    for col in ("page", "build s", "target s", "size MB", "target MB", "ok"):
        table.add_column(col, justify="left" if col == "page" else "right")
    table.add_row(
        "build_report (all outputs)", f"{build_s:.2f}", f"< {TARGET_S:.0f}", f"{html_mb:.2f}", f"< {TARGET_MB:.0f}",
        "yes" if build_s < TARGET_S and html_mb < TARGET_MB else "NO",
    )  # fmt: skip
    table.add_row("render_report (HTML only)", f"{html_s:.2f}", "", f"{len(page.encode()) / 1e6:.2f}", "", "")
    table.add_row("  of which plotly.js inline (read)", f"{js_s:.2f}", "", f"{plotly_mb:.2f}", "", "")
    table.add_row("old table-only page", f"{old_s:.3f}", "", f"{len(old.encode()) / 1e6:.3f}", "", "")
    console.print(table)


if __name__ == "__main__":
    main()
