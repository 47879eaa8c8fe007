"""Scaling out: the same work on more servers, measured side by side in one run.

    python benchmarks/scale.py --part fleet [--problems 32] [--tokens 64] [--threads 1]
    python benchmarks/scale.py --part all
    python benchmarks/scale.py --part cost --tok-s 2500   # the README's cost model, arithmetic only

Parts (one function each, dispatched by `--part`):
- fleet: the `openai` engine's fleet client on 1 vs 2 llama-cpp-python servers (SmolLM2-135M,
  `--threads` each, greedy): generations/s and tokens/s of both and their ratio (target >= 1.8x).
  Each server is warmed up first; the client keeps two requests per server outstanding, so a
  server never waits for the client between requests. `--rounds` alternates 1 and 2 servers
  (1, 2, 1, 2, ...) so load from other processes hits both alike; the ratio is of the totals.
  The load average is printed: on a shared machine other work takes cores from the servers.
- ray: the hf engine in-process on 1 thread vs `--executor ray` with 2 single-thread replicas on a
  local 2-CPU Ray cluster (same requests, `--batch-size`): seconds per generation of both and the
  Ray overhead per generation, replica-seconds over in-process seconds (target <= 5%).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))  # the tests' server helper

from llama_server import serve, smollm_gguf
from thinkcost.engines.openai import OpenAIEngine
from thinkcost.strategies import parse_strategy
from thinkcost.tasks import get_task
from thinkcost.types import Request

ALIAS = "smollm2-135m"
NEUTRAL = {"repeat_penalty": 1.0}  # llama-cpp-python's default 1.1 changes even greedy output


def _requests(n: int, tokens: int, seed: int) -> list[Request]:
    """Greedy requests for the first n arithmetic problems, as `thinkcost run` builds them."""
    task = get_task("arithmetic")
    recipe = parse_strategy("greedy").recipe
    return [recipe.request(p, max_new_tokens=tokens, seed=seed) for p in task.problems(n, seed)]


def _drive(urls: list[str], reqs: list[Request], per_server: int) -> dict:
    eng = OpenAIEngine(urls if len(urls) > 1 else urls[0], ALIAS, concurrency=per_server * len(urls),
                       extra_body=NEUTRAL)  # fmt: skip
    eng.generate(reqs[:1] * len(urls))  # warm-up: one request per server (least outstanding spreads them)
    eng = OpenAIEngine(urls if len(urls) > 1 else urls[0], ALIAS, concurrency=per_server * len(urls),
                       extra_body=NEUTRAL)  # fmt: skip
    t = time.perf_counter()
    out = eng.generate(reqs)
    wall = time.perf_counter() - t
    failed = sum(c.finish_reason == "error" for c in out)
    if failed:
        raise RuntimeError(f"{failed} generations failed: {next(c.error for c in out if c.error)}")
    tokens = sum(c.completion_tokens for c in out)
    per = {u: s["completed"] for u, s in eng.endpoint_stats().items()}
    return {"servers": len(urls), "wall_s": wall, "gens": len(out), "tokens": tokens, "per_server": per}


def _total(runs: list[dict]) -> dict:
    out = dict(runs[0], wall_s=sum(r["wall_s"] for r in runs), gens=sum(r["gens"] for r in runs))
    out["tokens"] = sum(r["tokens"] for r in runs)
    out["per_server"] = {u: sum(r["per_server"][u] for r in runs) for u in runs[0]["per_server"]}
    return out


def _load() -> float:
    return os.getloadavg()[0]


def bench_fleet(args: argparse.Namespace) -> dict:
    """1 vs 2 llama-cpp-python servers through the fleet client; prints and returns the figures."""
    reqs = _requests(args.problems, args.tokens, args.seed)
    gguf = smollm_gguf()
    server = dict(n_threads=args.threads, extra_args=("--model_alias", ALIAS))
    with contextlib.ExitStack() as stack:
        urls = [stack.enter_context(serve(gguf, **server)) for _ in range(2)]
        load0 = _load()
        rounds = [(_drive(urls[:1], reqs, args.per_server), _drive(urls, reqs, args.per_server))
                  for _ in range(args.rounds)]  # fmt: skip
        load1 = _load()
    one, two = (_total([r[i] for r in rounds]) for i in (0, 1))
    table = Table(title=f"fleet: {args.problems} problems, {args.tokens} max new tokens, "
                  f"{args.threads} thread(s) per server, greedy")  # fmt: skip
    for col in ("servers", "wall s", "generations/s", "tokens/s", "generations per server"):
        table.add_column(col, justify="right")
    for r in (one, two):
        table.add_row(
            str(r["servers"]),
            f"{r['wall_s']:.2f}",
            f"{r['gens'] / r['wall_s']:.2f}",
            f"{r['tokens'] / r['wall_s']:.1f}",
            " / ".join(str(v) for v in r["per_server"].values()),
        )
    ratio_g = (two["gens"] / two["wall_s"]) / (one["gens"] / one["wall_s"])
    ratio_t = (two["tokens"] / two["wall_s"]) / (one["tokens"] / one["wall_s"])
    console = Console()
    console.print(table)
    for k, (a, b) in enumerate(rounds):
        console.print(f"round {k + 1}: {a['wall_s']:.2f} s on 1 server, {b['wall_s']:.2f} s on 2: "
                      f"{a['wall_s'] / b['wall_s']:.2f}x")  # fmt: skip
    console.print(f"load average (1 min) before / after: {load0:.2f} / {load1:.2f} on {os.cpu_count()} cores")
    console.print(
        f"throughput ratio, 2 servers / 1: {ratio_g:.2f}x generations/s, {ratio_t:.2f}x tokens/s "
        f"(target >= 1.8x; same {two['tokens']} vs {one['tokens']} tokens: greedy)"
    )
    return {"one": one, "two": two, "ratio_generations": ratio_g, "ratio_tokens": ratio_t}


def _timed(engine, reqs: list[Request]) -> tuple[float, int]:
    engine.generate(reqs[:2])  # warm-up (with Ray: one chunk per replica)
    t = time.perf_counter()
    out = engine.generate(reqs)
    return time.perf_counter() - t, sum(c.completion_tokens for c in out)


def bench_ray(args: argparse.Namespace) -> dict:
    """In-process hf engine on 1 thread vs `--executor ray` with 2 single-thread replicas (hf,
    SmolLM2-135M, greedy, same requests and batch size): seconds per generation of both, and
    the Ray overhead per generation = (Ray wall x replicas) / in-process wall - 1, i.e. what a
    generation costs a replica beyond what it costs in-process (dispatch, pickling, polling).
    Model loading and replica start-up are not timed (paid once per run)."""
    import ray
    import torch

    from thinkcost.engines.executors.ray_pool import RayBackend
    from thinkcost.engines.hf import HFBackend
    from thinkcost.models import resolve_model
    from thinkcost.spec import build_spec

    workers = 2
    quiet = Console(quiet=True)
    spec = build_spec({}, {"model": ALIAS, "engine": "hf", "variants": "base", "threads": 1,
                           "batch_size": args.batch_size, "max_new_tokens": args.tokens})  # fmt: skip
    source, task = resolve_model(ALIAS), get_task("arithmetic")
    reqs = _requests(args.problems, args.tokens, args.seed)
    torch.set_num_threads(1)
    local = HFBackend(spec, source, task, quiet)
    eng, _ = local.prepare("base", lambda s: None)
    load0 = _load()
    local_wall, local_tokens = _timed(eng, reqs)
    local.close()
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="WARNING", log_to_driver=False)
    try:
        pool = RayBackend(
            spec.model_copy(update={"executor": "ray", "ray_workers": workers}), source, task, quiet
        )
        eng, _ = pool.prepare("base", lambda s: None)
        ray_wall, ray_tokens = _timed(eng, reqs)
        pool.close()
    finally:
        ray.shutdown()
    load1 = _load()
    n = len(reqs)
    overhead = ray_wall * workers / local_wall - 1
    table = Table(title=f"ray: {n} problems, {args.tokens} max new tokens, batch size {args.batch_size}, "
                  "1 thread per replica, greedy")  # fmt: skip
    for col in ("executor", "replicas", "wall s", "s / generation", "replica-s / generation", "tokens"):
        table.add_column(col, justify="right")
    table.add_row("local", "1", f"{local_wall:.2f}", f"{local_wall / n:.3f}", f"{local_wall / n:.3f}",
                  str(local_tokens))  # fmt: skip
    table.add_row("ray", str(workers), f"{ray_wall:.2f}", f"{ray_wall / n:.3f}",
                  f"{ray_wall * workers / n:.3f}", str(ray_tokens))  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"load average (1 min) before / after: {load0:.2f} / {load1:.2f} on {os.cpu_count()} cores")
    console.print(f"speed-up {local_wall / ray_wall:.2f}x; Ray overhead per generation {overhead:+.1%} "
                  f"(target <= 5%; same tokens: {ray_tokens == local_tokens})")  # fmt: skip
    return {"local_wall_s": local_wall, "ray_wall_s": ray_wall, "overhead": overhead, "generations": n}


def bench_cost(args: argparse.Namespace) -> dict:
    """The cost model of a study, from its size and a per-GPU throughput you measured (the
    report's tok/s of a short run on your GPU): generations, tokens, GPU-hours, and the GPUs
    (and 8-GPU nodes) that finish it in a day. Arithmetic only: nothing is run."""
    generations = args.study_problems * args.study_variants * args.study_samples
    tokens = generations * args.tokens_per_generation
    gpu_hours = tokens / (args.tok_s * 3600)
    gpus_per_day = max(1, -(-gpu_hours // 24))
    table = Table(title="cost model (throughput is your input, not a measurement)")
    for col in ("problems x variants x samples", "generations", "tokens", "tok/s per GPU", "GPU-hours",
                "GPUs for one day", "hours on one 8-GPU node"):  # fmt: skip
        table.add_column(col, justify="right")
    table.add_row(
        f"{args.study_problems} x {args.study_variants} x {args.study_samples}",
        f"{generations:,}",
        f"{tokens / 1e6:.0f} M",
        f"{args.tok_s:,.0f}",
        f"{gpu_hours:.1f}",
        f"{gpus_per_day:.0f}",
        f"{gpu_hours / 8:.1f}",
    )
    Console().print(table)
    return {"generations": generations, "tokens": tokens, "gpu_hours": gpu_hours}


PARTS = {"fleet": bench_fleet, "ray": bench_ray}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=[*PARTS, "cost", "all"], default="all")
    ap.add_argument("--problems", type=int, default=32)
    ap.add_argument("--tokens", type=int, default=64, help="max new tokens per generation")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads per server")
    ap.add_argument("--per-server", type=int, default=2, help="requests kept outstanding per server")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--rounds", type=int, default=1, help="alternating 1-server / 2-server rounds")
    ap.add_argument("--batch-size", type=int, default=8, help="ray part: batch size of both executors")
    cost = ap.add_argument_group("cost part (arithmetic only; not in --part all)")
    cost.add_argument("--tok-s", type=float, default=2500.0, help="aggregate generated tokens/s per GPU")
    cost.add_argument("--study-problems", type=int, default=500, help="e.g. MATH-500")
    cost.add_argument("--study-variants", type=int, default=8)
    cost.add_argument("--study-samples", type=int, default=16, help="samples per problem (maj@16)")
    cost.add_argument("--tokens-per-generation", type=int, default=3500)
    args = ap.parse_args(argv)
    if args.part == "cost":
        bench_cost(args)
        return
    for name, fn in PARTS.items():
        if args.part in (name, "all"):
            fn(args)


if __name__ == "__main__":
    main()
