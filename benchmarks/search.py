"""Search guided by step rewards vs repeated sampling on the default model: greedy, maj@8,
wbon@8:self, beam@8/4:self, dvts@8/4:self, pf@8:self on arithmetic with 4-6 operations.
Prints accuracy (Wilson 95% CI), policy tokens, PRM (judge) tokens and seconds per problem,
and the policy cost per step against the step's depth (flat = no re-prefill of the prefix).

Results go to a JSONL file one (strategy, problem) at a time, so a rerun resumes and a
table can be printed from whatever finished (`--report-only`).

    python benchmarks/search.py [--n 32] [--out runs/bench_search] [--report-only]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.metrics.accuracy import wilson_interval
from thinkcost.search.tree import SearchConfig
from thinkcost.strategies.vote import Attempt, majority_vote
from thinkcost.tasks import get_task
from thinkcost.types import Request

BUDGET = 8
NAMES = (
    "greedy",
    f"maj@{BUDGET}",
    f"wbon@{BUDGET}:self",
    f"beam@{BUDGET}/4:self",
    f"dvts@{BUDGET}/4:self",
    f"pf@{BUDGET}:self",
)
# the order problems are worked in: searches first (on 2 shared cores a full row takes hours,
# and the per-step cost figure comes from them)
RUN_ORDER = (NAMES[3], NAMES[5], NAMES[4], NAMES[2], NAMES[0], NAMES[1])


def run_one(name, problem, task, engine, stepper, scorer, args) -> dict:
    from thinkcost.search.beam import beam_search
    from thinkcost.search.dvts import dvts
    from thinkcost.search.particle import particle_filter
    from thinkcost.search.weighted_bon import weighted_best_of_n
    from thinkcost.strategies.base import problem_seed

    seed = problem_seed(args.seed, problem.id)
    if name in ("greedy", f"maj@{BUDGET}"):
        n = 1 if name == "greedy" else BUDGET
        t = 0.7 if n > 1 else 0.0
        req = Request(
            problem.messages,
            max_new_tokens=args.max_new_tokens,
            temperature=t,
            top_p=0.95 if n > 1 else 1.0,
            seed=seed,
            n=n,
        )
        t0 = time.perf_counter()
        comps = engine.generate([req])
        secs = time.perf_counter() - t0
        verdicts = [task.verify(problem, c.answer_text) for c in comps]
        atts = [
            Attempt(i, v.extracted, v.correct, (c.completion_tokens, i))
            for i, (c, v) in enumerate(zip(comps, verdicts, strict=True))
        ]
        ok = majority_vote(atts).correct if n > 1 else atts[0].correct
        return {
            "correct": bool(ok),
            "policy_tokens": sum(c.completion_tokens for c in comps),
            "prm_tokens": 0,
            "seconds": secs,
            "steps": [],
        }
    m = 4 if "/" in name else 1
    cfg = SearchConfig(
        n=BUDGET,
        m=m,
        temperature=0.7,
        top_p=0.95,
        max_steps=args.max_steps,
        max_new_tokens=args.max_new_tokens,
        seed=seed,
        agg="last",
    )
    t0 = time.perf_counter()
    msgs = problem.messages
    if name.startswith("wbon"):
        res = weighted_best_of_n(
            msgs, cfg, stepper, scorer, extract=lambda a: task.verify(problem, a).extracted
        )
    else:
        fn = {"beam": beam_search, "dvts": dvts, "pf": particle_filter}[name.split("@")[0]]
        res = fn(msgs, cfg, stepper, scorer)
    secs = time.perf_counter() - t0
    # the answer text of the chosen path (the states were freed: rebuild it from the path's steps)
    by_id = {n.id: n for n in res.nodes}
    path, node = [], res.final
    while node.parent is not None:
        path.append(node.text)
        node = by_id[node.parent]
    text = "".join(reversed(path))
    split = stepper.fmt.split(text, res.final.finish or "length")
    v = task.verify(problem, split.answer)
    steps = [(n.depth, n.policy_tokens, n.fed_tokens, n.policy_s) for n in res.nodes if n.parent is not None]
    return {
        "correct": bool(v.correct),
        "policy_tokens": res.policy_tokens,
        "prm_tokens": res.prm_tokens,
        "seconds": secs,
        "steps": steps,
    }


def report(rows: list[dict], console: Console) -> None:
    by = defaultdict(dict)
    for r in rows:
        by[r["strategy"]][r["problem"]] = r
    common = set.intersection(*(set(d) for d in by.values())) if by else set()
    t = Table(title=f"search on arithmetic 4-6 ops, {len(common)} problems every strategy finished")
    for h in ("strategy", "accuracy (95% CI)", "policy tok/problem", "PRM tok/problem", "s/problem"):
        t.add_column(h)
    for name in NAMES:
        d = [by[name][p] for p in sorted(common)] if name in by else []
        if not d:
            continue
        k = sum(r["correct"] for r in d)
        lo, hi = wilson_interval(k, len(d))
        t.add_row(
            name,
            f"{k / len(d):.0%} [{lo:.0%}, {hi:.0%}] {k}/{len(d)}",
            f"{sum(r['policy_tokens'] for r in d) / len(d):.0f}",
            f"{sum(r['prm_tokens'] for r in d) / len(d):.0f}",
            f"{sum(r['seconds'] for r in d) / len(d):.1f}",
        )
    console.print(t)
    depth = defaultdict(lambda: [0, 0, 0.0, 0])
    for r in rows:
        for dep, new, fed, secs in r["steps"]:
            if dep == 1:
                continue  # the first step of a root also prefills the prompt
            a = depth[dep]
            a[0] += new
            a[1] += fed
            a[2] += secs
            a[3] += 1
    t2 = Table(title="policy cost per step vs step index (steps after the first; all search strategies)")
    for h in ("step", "steps", "new tok/step", "fed tok/new tok", "ms/new tok"):
        t2.add_column(h)
    for dep in sorted(depth):
        new, fed, secs, cnt = depth[dep]
        if cnt >= 5 and new:
            t2.add_row(str(dep), str(cnt), f"{new / cnt:.1f}", f"{fed / new:.2f}", f"{1000 * secs / new:.1f}")
    console.print(t2)


def per_step(args, console: Console) -> None:
    """One path extended step by step (fixed-size steps) on the default model: tokens fed and
    seconds per new token at each depth, next to what re-sending the prefix would feed."""
    from thinkcost.engines.hf import HFEngine, load_hf
    from thinkcost.engines.hf_steps import HFStepper
    from thinkcost.models import resolve_model

    model, tok = load_hf(resolve_model(args.model))
    stepper = HFStepper.of_engine(HFEngine(model, tok, batch_size=1), separator="\x00never\x00")
    stepper.max_step_tokens = args.step_tokens
    problem = get_task("arithmetic", min_ops=4, max_ops=6).problems(1, args.seed)[0]
    state = stepper.root(problem.messages)
    t = Table(title=f"cost per step vs step index ({args.step_tokens}-token steps, one path, {args.model})")
    for h in ("step", "prefix tok", "fed tok", "re-prefill would feed", "ms/new tok"):
        t.add_column(h)
    for depth in range(1, args.steps + 1):
        before = stepper.forward_tokens
        t0 = time.perf_counter()
        (out,) = stepper.expand(state, 1, seed=depth, temperature=0.7, top_p=0.95, max_new_tokens=10**6)
        secs = time.perf_counter() - t0
        fed = stepper.forward_tokens - before
        t.add_row(
            str(depth),
            str(len(state.ids)),
            str(fed),
            str(len(state.ids) + out.tokens - 1),
            f"{1000 * secs / out.tokens:.0f}",
        )
        console.print(
            f"step {depth}: prefix {len(state.ids)} fed {fed} {1000 * secs / out.tokens:.0f} ms/tok",
            highlight=False,
        )
        state = out.state
    console.print(t)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-new-tokens", type=int, default=320)
    ap.add_argument("--max-steps", type=int, default=16)
    ap.add_argument("--out", type=Path, default=Path("runs/bench_search"))
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--per-step", action="store_true", help="only the cost-per-step measurement")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--step-tokens", type=int, default=16)
    args = ap.parse_args()
    console = Console(width=150)
    if args.per_step:
        per_step(args, console)
        return
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "results.jsonl"
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []
    if not args.report_only:
        from thinkcost.engines.hf import HFEngine, load_hf
        from thinkcost.engines.hf_steps import HFStepper
        from thinkcost.models import resolve_model
        from thinkcost.search.scorers import SelfScorer

        task = get_task("arithmetic", min_ops=4, max_ops=6)
        problems = task.problems(args.n, args.seed)
        done = {(r["strategy"], r["problem"]) for r in rows}
        t = time.perf_counter()
        model, tok = load_hf(resolve_model(args.model))
        console.print(f"loaded {args.model} in {time.perf_counter() - t:.0f}s")
        engine = HFEngine(model, tok, batch_size=BUDGET)
        stepper = HFStepper.of_engine(engine)
        scorer = SelfScorer(stepper)
        with path.open("a") as f:
            for p in problems:
                for name in RUN_ORDER:
                    if (name, p.id) in done:
                        continue
                    r = run_one(name, p, task, engine, stepper, scorer, args) | {
                        "strategy": name,
                        "problem": p.id,
                    }
                    f.write(json.dumps(r) + "\n")
                    f.flush()
                    rows.append(r)
                    console.print(
                        f"{p.id} {name}: correct={r['correct']} tok={r['policy_tokens']} prm={r['prm_tokens']} {r['seconds']:.1f}s"
                    )
    report(rows, console)


if __name__ == "__main__":
    main()
