"""The engines side by side on the default model, in one process (2-core CPU):

1. llamacpp engine vs llama-cpp-python called directly (`Llama.create_completion`), batch 1,
   greedy, the same prompts and GGUF: decode tok/s (target: within 10%).
2. openai engine against llama-cpp-python's OpenAI-compatible server on loopback, at
   concurrency 1 / 4 / 16: requests/s and p50/p95 latency.
3. `thinkcost run --engine llamacpp` with base (F32) vs gguf:Q8_0 vs gguf:Q4_K_M: accuracy,
   decode tok/s, CTIR and effective speed-up per correct answer, bits per weight and file
   size; plus the hf engine's base on the same problems, to show the two engines' greedy
   outputs from the same weights agree.

    python benchmarks/engines.py [--model qwen2.5-coder-0.5b] [--limit 16] [--only direct,server,decode,run]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.table import Table

from thinkcost.engines.llamacpp import LlamaCppBackend, LlamaCppEngine
from thinkcost.models import resolve_model
from thinkcost.pipeline import run
from thinkcost.spec import RunSpec
from thinkcost.store import Store
from thinkcost.tasks import get_task
from thinkcost.types import Request

console = Console(width=150)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(gguf: Path, alias: str, threads: int) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", alias,
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", str(threads),
         "--interrupt_requests", "False"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.time() + 180
    while time.time() < deadline:  # a benchmark may poll; tests wait on the server's own output
        try:
            with urllib.request.urlopen(f"{url}/models", timeout=2) as r:
                json.load(r)
            return proc, url
        except OSError:
            if proc.poll() is not None:
                raise RuntimeError("llama_cpp.server exited") from None
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError("llama_cpp.server did not start")


def bench_direct(gguf: Path, tok, reqs: list[Request], threads: int) -> tuple[float, float, int]:
    """(ours tok/s, direct tok/s, prompts whose greedy text agrees)."""
    import llama_cpp

    eng = LlamaCppEngine(gguf, tok, batch_size=1, threads=threads, max_tokens_per_row=1024)
    eng.generate(reqs[:1])  # warm-up (page cache, thread pool)
    t = time.perf_counter()
    ours = eng.generate(reqs)
    ours_s = time.perf_counter() - t
    ours_n = sum(c.completion_tokens for c in ours)
    eng.close()
    llm = llama_cpp.Llama(str(gguf), n_ctx=1024, n_threads=threads, n_batch=512, verbose=False)
    prompts = [tok.encode(eng.render(r), add_special_tokens=False) for r in reqs]
    llm.create_completion(prompts[0], max_tokens=4, temperature=0.0)
    n = agree = 0
    t = time.perf_counter()
    for p, r, o in zip(prompts, reqs, ours, strict=True):
        llm.reset()
        out = llm.create_completion(p, max_tokens=r.max_new_tokens, temperature=0.0)
        n += out["usage"]["completion_tokens"]
        agree += out["choices"][0]["text"].strip() == o.text.strip()
    direct_s = time.perf_counter() - t
    del llm
    return ours_n / ours_s, n / direct_s, agree


def bench_server(url: str, alias: str, reqs: list[Request], levels=(1, 4, 16)) -> list[dict]:
    from thinkcost.engines.openai import OpenAIEngine

    out = []
    for c in levels:
        eng = OpenAIEngine(
            url,
            alias,
            concurrency=c,
            idle_timeout_s=600,
            attempt_timeout_s=1200,
            extra_body={"repeat_penalty": 1.0},
        )
        t = time.perf_counter()
        comps = eng.generate(reqs)
        wall = time.perf_counter() - t
        eng.close()
        lat = sorted(x.latency_s for x in comps)
        ok = sum(x.finish_reason != "error" for x in comps)
        out.append(
            {
                "concurrency": c,
                "requests": len(reqs),
                "ok": ok,
                "req_per_s": len(reqs) / wall,
                "p50_s": statistics.median(lat),
                "p95_s": lat[min(len(lat) - 1, round(0.95 * (len(lat) - 1)))],
                "tok_per_s": sum(x.completion_tokens for x in comps) / wall,
            }
        )
    return out


def bench_run(args, tmp: Path) -> dict:
    common = dict(model=args.model, limit=args.limit, max_new_tokens=args.tokens_run, batch_size=16)
    results = {}
    for engine, variants in (("llamacpp", ["base", "gguf:Q8_0", "gguf:Q4_K_M"]), ("hf", ["base"])):
        spec = RunSpec(
            engine=engine, variants=variants, store=tmp / f"{engine}.sqlite", out=tmp / engine, **common
        )
        t = time.perf_counter()
        res = run(spec, Console(quiet=True))
        wall = time.perf_counter() - t
        st = Store(tmp / f"{engine}.sqlite")
        gens = st.generations(res.run_id)
        info = {v["variant"]: v for v in st.variants(res.run_id)}
        st.close()
        results[engine] = {"rows": res.rows, "wall": wall, "gens": gens, "info": info}
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--prompts", type=int, default=8, help="prompts for the direct and server parts")
    ap.add_argument("--tokens", type=int, default=64, help="max new tokens in the direct and server parts")
    ap.add_argument("--limit", type=int, default=16, help="problems in the run part")
    ap.add_argument("--tokens-run", type=int, default=320)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", default="direct,server,decode,run")
    args = ap.parse_args()
    parts = set(args.only.split(","))
    src = resolve_model(args.model)
    spec = RunSpec(engine="llamacpp", model=args.model, variants=["base", "gguf:Q4_K_M"])
    backend = LlamaCppBackend(spec, src, None, console)
    t = time.perf_counter()
    q4 = backend.variant_path("gguf:Q4_K_M")
    console.print(f"GGUFs ready in {time.perf_counter() - t:.0f}s (cached after the first time): {q4}")
    tok = backend._tokenizer()
    problems = get_task("arithmetic").problems(args.prompts, 0)
    reqs = [Request(p.messages, max_new_tokens=args.tokens) for p in problems]

    if "direct" in parts:
        ours, direct, agree = bench_direct(q4, tok, reqs, args.threads)
        t = Table(
            "engine (Q4_K_M, batch 1, greedy)",
            "tok/s",
            "ratio",
            title="1. llamacpp engine vs llama-cpp-python direct",
        )
        t.add_row("llama-cpp-python Llama.create_completion", f"{direct:.1f}", "1.00")
        t.add_row("thinkcost llamacpp engine", f"{ours:.1f}", f"{ours / direct:.2f}")
        console.print(t)
        console.print(f"same greedy text on {agree}/{len(reqs)} prompts")

    if "server" in parts:
        proc, url = start_server(q4, "thinkcost-bench", args.threads)
        try:
            rows = bench_server(url, "thinkcost-bench", reqs * 2)
        finally:
            proc.terminate()
            proc.wait(30)
        t = Table(
            "concurrency",
            "requests",
            "ok",
            "req/s",
            "p50 s",
            "p95 s",
            "tok/s",
            title="2. openai engine vs llama_cpp.server (Q4_K_M)",
        )
        for r in rows:
            t.add_row(str(r["concurrency"]), str(r["requests"]), str(r["ok"]), f"{r['req_per_s']:.2f}",
                      f"{r['p50_s']:.1f}", f"{r['p95_s']:.1f}", f"{r['tok_per_s']:.1f}")  # fmt: skip
        console.print(t)

    if "decode" in parts:
        t = Table(
            "variant",
            "b/w",
            "file MB",
            "batch-1 tok/s",
            "vs F32",
            title="4. batch-1 decode (bandwidth-bound), greedy, llamacpp engine",
        )
        base_tps = None
        for v in ("base", "gguf:Q8_0", "gguf:Q4_K_M"):
            path = backend.variant_path(v)
            eng = LlamaCppEngine(path, tok, batch_size=1, threads=args.threads, max_tokens_per_row=1024)
            short = [Request(r.prompt_messages, max_new_tokens=32) for r in reqs[:4]]
            eng.generate(short[:1])
            t0 = time.perf_counter()
            n = sum(c.completion_tokens for c in eng.generate(short))
            tps = n / (time.perf_counter() - t0)
            eng.close()
            base_tps = base_tps or tps
            from thinkcost.quant.gguf_files import gguf_stats

            st = gguf_stats(path)
            t.add_row(
                v,
                f"{st.bits_per_weight:.2f}",
                f"{st.file_bytes / 1e6:.0f}",
                f"{tps:.1f}",
                f"{tps / base_tps:.2f}x",
            )
        console.print(t)

    if "run" in parts:
        with tempfile.TemporaryDirectory() as d:
            res = bench_run(args, Path(d))
        t = Table("engine", "variant", "b/w", "file MB", "accuracy", "reasoning tok", "CTIR joint", "decode tok/s",
                  "s/correct", "speed-up", title=f"3. thinkcost run, {args.limit} arithmetic problems, greedy, batch 16")  # fmt: skip
        for engine, r in res.items():
            for row in r["rows"]:
                info = r["info"].get(row.name, {})
                mb = info.get("file_bytes")
                t.add_row(engine, row.name, f"{row.bits_per_weight or 32:.2f}", f"{mb / 1e6:.0f}" if mb else "-",
                          f"{row.accuracy:.0%} ({row.n_correct}/{row.n})", f"{row.mean_reasoning_tokens:.0f}",
                          f"{row.ctir:.2f} (n={row.ctir_n})", f"{row.tokens_per_s:.1f}", f"{row.s_per_correct:.1f}",
                          f"{row.effective_speedup:.2f}x")  # fmt: skip
        console.print(t)
        for engine, r in res.items():
            console.print(f"{engine}: run wall {r['wall']:.0f}s")
        a = res["llamacpp"]["gens"]
        b = res["hf"]["gens"]
        a = a[a["variant"] == "base"].set_index("problem_id")
        b = b[b["variant"] == "base"].set_index("problem_id")
        same_text = same_answer = same_start = 0
        for pid in b.index:
            x, y = a.loc[pid], b.loc[pid]
            same_text += x["text"] == y["text"]
            same_answer += x["extracted"] == y["extracted"]
            same_start += tok.encode(x["text"])[:16] == tok.encode(y["text"])[:16]
        n = len(b.index)
        console.print(
            f"base F32 on llamacpp vs hf (same weights): identical text {same_text}/{n}, same first 16 tokens "
            f"{same_start}/{n}, same extracted answer {same_answer}/{n}"
        )


if __name__ == "__main__":
    main()
