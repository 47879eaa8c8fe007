"""Greedy float32 decode of the hf engine, before -> after, side by side in one process.

Five loops on the same prompts, model and cap, at each batch size, interleaved round by round
(so a noisy neighbour slows them alike): `model.generate` (what lm-eval's HF backend calls),
the 0.2 loop (benchmarks/baseline_hf_loop.py: DynamicCache, full log-softmax every step), the
new loop one token at a time (per-row preallocated cache, two reductions instead of a
log-softmax), and the new loop with looked-up drafts, and the same with the Linear weights stored column-major
and 2-15 rows computed as 16 (engines/linear_layout; the default on CPU float32). Prints tok/s, the speed-up
over the 0.2 loop and whether every output equals the 0.2 loop's token for token.

    python benchmarks/decode.py [--model qwen2.5-coder-0.5b] [--prompts 16] [--tokens 128]
                                [--batch 1,4,16] [--rounds 2] [--threads N] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))

from baseline_hf_loop import HFEngine as BaselineEngine
from thinkcost.engines.hf import HFEngine, load_hf
from thinkcost.engines.linear_layout import column_major_, row_major_
from thinkcost.models import resolve_model
from thinkcost.tasks import get_task
from thinkcost.types import Request


def run_generate(model, tok, reqs, batch: int) -> tuple[list[str], int]:
    """Plain batched `model.generate`, left padded, in chunks of `batch`."""
    eng = HFEngine(model, tok, layout="keep")
    texts, n = [], 0
    for i in range(0, len(reqs), batch):
        chunk = reqs[i : i + batch]
        enc = tok(
            [eng.render(r) for r in chunk],
            return_tensors="pt",
            padding=True,
            padding_side="left",
            add_special_tokens=False,
        )
        out = model.generate(
            **enc, max_new_tokens=chunk[0].max_new_tokens, do_sample=False, pad_token_id=tok.pad_token_id
        )
        for row in out[:, enc.input_ids.shape[1] :]:
            ids = [int(t) for t in row if int(t) != tok.pad_token_id]
            cut = next((k + 1 for k, t in enumerate(ids) if t in eng.eos_ids), len(ids))
            texts.append(tok.decode(ids[:cut], skip_special_tokens=True))
            n += cut
    return texts, n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=16)
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--batch", default="1,4,16")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--skip-generate", action="store_true")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console()
    model, tok = load_hf(resolve_model(args.model))
    problems = get_task("arithmetic").problems(args.prompts)
    reqs = [Request(p.messages, max_new_tokens=args.tokens) for p in problems]
    # (layout the loop runs on, loop): the weights are re-laid out before the clock starts
    keep = dict(layout="keep")
    loops = {
        "0.2 loop (before)": ("row", lambda b: _engine(BaselineEngine(model, tok, batch_size=b), reqs)),
        "new, 1 token/step, row-major": (
            "row",
            lambda b: _engine(HFEngine(model, tok, batch_size=b, max_draft=0, **keep), reqs),
        ),
        "new + drafts, row-major": (
            "row",
            lambda b: _engine(HFEngine(model, tok, batch_size=b, **keep), reqs),
        ),
        "new + drafts + column-major (default)": (
            "col",
            lambda b: _engine(HFEngine(model, tok, batch_size=b), reqs),
        ),
    }
    if not args.skip_generate:
        loops["model.generate"] = ("row", lambda b: run_generate(model, tok, reqs, b))
    batches = [int(b) for b in args.batch.split(",")]
    _engine(HFEngine(model, tok, batch_size=2, layout="keep"), reqs[:2])  # warm-up
    best: dict[tuple[str, int], float] = {}
    texts: dict[tuple[str, int], list[str]] = {}
    tokens: dict[tuple[str, int], int] = {}
    for _ in range(args.rounds):
        for b in batches:
            for name, (layout, fn) in loops.items():
                (column_major_ if layout == "col" else row_major_)(model)
                t = time.perf_counter()
                out, n = fn(b)
                dt = time.perf_counter() - t
                key = (name, b)
                best[key] = min(best.get(key, float("inf")), dt)
                texts[key], tokens[key] = out, n
    table = Table(
        title=f"greedy float32 decode, {args.model}, {len(reqs)} prompts x <= {args.tokens} tokens, "
        f"{torch.get_num_threads()} threads"
    )
    for col in ("batch", "loop", "tokens", "seconds", "tok/s", "vs 0.2 loop", "same text as 0.2"):
        table.add_column(col, justify="right" if col not in ("loop",) else "left")
    rows = []
    for b in batches:
        base = ("0.2 loop (before)", b)
        for name in loops:
            key = (name, b)
            tps = tokens[key] / best[key]
            ratio = best[base] / best[key]
            same = sum(x == y for x, y in zip(texts[key], texts[base], strict=True))
            table.add_row(
                str(b),
                name,
                str(tokens[key]),
                f"{best[key]:.1f}",
                f"{tps:.1f}",
                f"{ratio:.2f}x",
                f"{same}/{len(reqs)}",
            )
            rows.append(
                {
                    "batch": b,
                    "loop": name,
                    "tokens": tokens[key],
                    "seconds": best[key],
                    "tok_s": tps,
                    "speedup_vs_before": ratio,
                    "same_text": same,
                    "n": len(reqs),
                }
            )
    console.print(table)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


def _engine(engine, reqs) -> tuple[list[str], int]:
    outs = engine.generate(reqs)
    return [o.text for o in outs], sum(o.completion_tokens for o in outs)


if __name__ == "__main__":
    main()
