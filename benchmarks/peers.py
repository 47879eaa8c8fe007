"""thinkcost vs lm-evaluation-harness on the same job: the first N arithmetic problems (default
seed), the packaged default model de-quantized to float32, greedy, the same cap and batch size.

lm-eval (0.4.13, HF backend: batched `model.generate`) runs a local-file task written here
(JSONL + a task YAML with `dataset_path: json`, `generate_until`, the model's chat template and
the task's system prompt) in its own venv, so it cannot change this environment; thinkcost runs
as `thinkcost run --engine hf --strategy greedy` in a subprocess. Both answers are graded with
thinkcost's own reasoning split and extractor. Printed: wall and generation seconds of each,
their ratios, tok/s, accuracy, answer agreement where both extract a number, and whether the
two saw identical prompts (rendered text and token ids).

    python -m venv --system-site-packages /work/venvs/lmeval
    /work/venvs/lmeval/bin/pip install lm-eval==0.4.13 accelerate torch==2.13.0
    python benchmarks/peers.py            # 64 problems
    python benchmarks/peers.py --n 8      # smoke run

Only the standard library is imported at module level: the same file is the lm-eval worker
(`--lm-eval-worker DIR`), run by the venv's python, which must not import thinkcost.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TASK = "thinkcost_arithmetic"
STOP = ["<|im_end|>", "<|endoftext|>"]


# --------------------------------------------------------------------------- lm-eval side


def lm_eval_worker(work: Path) -> None:
    """Inside the lm-eval venv: load the model through lm-eval's HFLM, run the local task, and
    write what every request saw and produced (prompt string and ids, raw generated ids, text)
    plus load and generate seconds to `work/lm_eval_result.json`."""
    t0 = time.perf_counter()
    job = json.loads((work / "job.json").read_text())
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    t_import = time.perf_counter()
    lm = HFLM(
        pretrained=job["dir"],
        gguf_file=job["gguf"],
        dtype="float32",
        batch_size=job["batch_size"],
        device="cpu",
    )
    t_load = time.perf_counter()

    # Record each batch's strings and the model's raw output: the generated ids (not a
    # re-tokenization of the text) are what tok/s counts and what token agreement compares.
    seen: dict[str, dict] = {}
    pending: list[str] = []
    gen_s = 0.0
    batch_encode, model_generate = lm.tok_batch_encode, lm._model_generate

    def tok_batch_encode(strings, *a, **kw):
        pending[:] = list(strings)
        return batch_encode(strings, *a, **kw)

    def generate(context, max_length, stop, **kw):
        nonlocal gen_s
        t = time.perf_counter()
        out = model_generate(context=context, max_length=max_length, stop=stop, **kw)
        gen_s += time.perf_counter() - t
        mask = kw["attention_mask"].bool()
        for k, ctx in enumerate(pending):
            seen[ctx] = {
                "prompt_ids": context[k][mask[k]].tolist(),
                "raw": out[k, context.shape[1] :].tolist(),
            }
        return out

    lm.tok_batch_encode, lm._model_generate = tok_batch_encode, generate
    res = simple_evaluate(
        model=lm,
        tasks=[TASK],
        task_manager=TaskManager(include_path=str(work / "task")),
        apply_chat_template=True,
        system_instruction=job["system"],
        predict_only=True,
        log_samples=True,
    )
    t_eval = time.perf_counter()
    gc = lm.model.generation_config.eos_token_id
    eos = set(gc if isinstance(gc, list) else [gc]) | {lm.tokenizer.convert_tokens_to_ids(t) for t in STOP}
    eos.discard(None)
    samples = []
    for s in res["samples"][TASK]:
        ctx = s["arguments"][0][0]
        got = seen[ctx]
        raw = got["raw"]
        end = next((i + 1 for i, t in enumerate(raw) if t in eos), None)
        samples.append(
            {
                "id": s["doc"]["id"],
                "context": ctx,
                "text": s["resps"][0][0],
                "prompt_ids": got["prompt_ids"],
                "ids": raw[:end] if end else raw,  # the eos that ended it included, as thinkcost counts
                "finish": "stop" if end else "length",
            }
        )
    out = {
        "import_s": t_import - t0,
        "load_s": t_load - t_import,
        "eval_s": t_eval - t_load,
        "generate_s": gen_s,
        "samples": samples,
    }
    (work / "lm_eval_result.json").write_text(json.dumps(out))


def write_lm_eval_task(work: Path, problems, max_new_tokens: int) -> str:
    """The problems as JSONL and a task config (JSON is YAML) reading them; -> the system prompt."""
    systems = {p.messages[0]["content"] for p in problems if p.messages[0]["role"] == "system"}
    if len(systems) != 1 or any(len(p.messages) != 2 for p in problems):
        raise SystemExit("peers: expected every problem to be one system + one user message")
    data = work / "problems.jsonl"
    with data.open("w") as f:
        for p in problems:
            f.write(json.dumps({"id": p.id, "prompt": p.messages[1]["content"], "gold": p.gold}) + "\n")
    task = {
        "task": TASK,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(data)}},
        "test_split": "test",
        "output_type": "generate_until",
        "doc_to_text": "prompt",
        "doc_to_target": "gold",
        "generation_kwargs": {
            "until": STOP,
            "max_gen_toks": max_new_tokens,
            "do_sample": False,
            "temperature": 0.0,
        },
        "metric_list": [{"metric": "exact_match"}],
    }
    (work / "task").mkdir(exist_ok=True)
    (work / "task" / f"{TASK}.yaml").write_text(json.dumps(task, indent=2))
    return systems.pop()


def run_lm_eval(args, work: Path, source, system: str) -> dict:
    job = {"dir": source.path, "gguf": source.gguf_file, "batch_size": args.batch_size, "system": system}
    (work / "job.json").write_text(json.dumps(job))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(work / "hf_datasets"),  # not the shared cache of other runs
        "TOKENIZERS_PARALLELISM": "false",
    }
    cmd = [args.lm_eval_python, str(Path(__file__).resolve()), "--lm-eval-worker", str(work)]
    t = time.perf_counter()
    with open(work / "lm_eval.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=env).returncode
    wall = time.perf_counter() - t
    if rc != 0:
        tail = (work / "lm_eval.log").read_text()[-3000:]
        raise SystemExit(f"peers: lm-eval worker failed (exit {rc}); log {work / 'lm_eval.log'}:\n{tail}")
    return {**json.loads((work / "lm_eval_result.json").read_text()), "wall_s": wall}


# --------------------------------------------------------------------------- thinkcost side


def run_thinkcost(args, work: Path) -> dict:
    """`thinkcost run` on a fresh store; its rows (text, token ids, grading) come from the store."""
    from thinkcost.store import Store

    store_path = work / "thinkcost.sqlite"
    cmd = [sys.executable, "-c", "from thinkcost.cli import main; main()", "run"]
    cmd += ["--model", args.model, "--variants", "base", "--engine", "hf", "--strategy", "greedy"]
    cmd += ["--task", "arithmetic", "--limit", str(args.n), "--seed", str(args.seed)]
    cmd += ["--batch-size", str(args.batch_size), "--max-new-tokens", str(args.max_new_tokens)]
    cmd += ["--store", str(store_path), "--out", str(work / "thinkcost_out")]
    t = time.perf_counter()
    with open(work / "thinkcost.log", "w") as log:
        rc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t
    if rc != 0:
        tail = (work / "thinkcost.log").read_text()[-3000:]
        raise SystemExit(f"peers: thinkcost run failed (exit {rc}); log {work / 'thinkcost.log'}:\n{tail}")
    store = Store(store_path)
    try:
        rows = store.generations(store.latest_run_id(), token_ids=True)
    finally:
        store.close()
    # each row's cost_s is its share of its batch's step time: they add up to the decode loop's time
    return {"wall_s": wall, "generate_s": float(rows["cost_s"].sum()), "rows": rows}


# --------------------------------------------------------------------------- comparison


def compare(args, problems, lme: dict, tc: dict, tok, console) -> dict:
    import pandas as pd
    from rich.table import Table

    from thinkcost.reasoning import format_of, render_prompt
    from thinkcost.tasks import get_task

    task = get_task("arithmetic")
    by_id = {p.id: p for p in problems}
    lm_rows = {s["id"]: s for s in lme["samples"]}
    tc_rows = {r.problem_id: r for r in tc["rows"].itertuples()}
    if set(lm_rows) != set(by_id) or set(tc_rows) != set(by_id):
        raise SystemExit("peers: the two runs did not answer the same problems")

    # the prompts: thinkcost renders with its own render_prompt; lm-eval logged its context
    same_text = sum(render_prompt(tok, by_id[i].messages) == lm_rows[i]["context"] for i in by_id)
    same_ids = sum(
        tok(render_prompt(tok, by_id[i].messages), add_special_tokens=False).input_ids
        == lm_rows[i]["prompt_ids"]
        for i in by_id
    )
    same_len = sum(int(tc_rows[i].prompt_tokens) == len(lm_rows[i]["prompt_ids"]) for i in by_id)
    first = problems[0].id
    console.rule("first rendered prompt, thinkcost")
    console.print(render_prompt(tok, by_id[first].messages), markup=False, highlight=False)
    console.rule("first rendered prompt, lm-eval")
    console.print(lm_rows[first]["context"], markup=False, highlight=False)
    console.rule()

    both = agree = same_tokens = same_texts = lm_correct = lm_extracted = 0
    for i, p in by_id.items():
        r, s = tc_rows[i], lm_rows[i]
        # the format thinkcost decided for this model (NULL: a row stored before formats existed)
        fmt = format_of(None if pd.isna(r.reasoning_format) else r.reasoning_format)
        v = task.verify(p, fmt.split(s["text"], s["finish"]).answer)
        lm_correct += v.correct
        lm_extracted += v.extracted is not None
        tc_extracted = None if pd.isna(r.extracted) else r.extracted
        if v.extracted is not None and tc_extracted is not None:
            both += 1
            agree += v.extracted == tc_extracted
        lm_ids = s["ids"][:-1] if s["finish"] == "stop" else s["ids"]  # thinkcost stores ids without the eos
        same_tokens += list(r.token_ids or []) == lm_ids
        same_texts += r.text == s["text"]
    n = len(problems)
    tc_tokens = int(tc["rows"]["completion_tokens"].sum())
    lm_tokens = sum(len(s["ids"]) for s in lme["samples"])
    table = Table(
        title=f"{n} arithmetic problems, {args.model} float32, greedy, cap {args.max_new_tokens}, "
        f"batch {args.batch_size}"
    )
    for col in ("harness", "wall s", "generate s", "tokens", "tok/s", "correct", "answer extracted"):
        table.add_column(col, justify="right")
    for name, wall, gen, toks, corr, ext in (
        ("lm-eval 0.4.13 hf", lme["wall_s"], lme["generate_s"], lm_tokens, lm_correct, lm_extracted),
        (
            "thinkcost hf",
            tc["wall_s"],
            tc["generate_s"],
            tc_tokens,
            int(tc["rows"]["correct"].sum()),
            int(tc["rows"]["extracted"].notna().sum()),
        ),
    ):
        table.add_row(
            name, f"{wall:.1f}", f"{gen:.1f}", str(toks), f"{toks / gen:.1f}", f"{corr}/{n}", f"{ext}/{n}"
        )
    console.print(table)
    figures = {
        "n": n,
        "wall_ratio": lme["wall_s"] / tc["wall_s"],
        "generate_ratio": lme["generate_s"] / tc["generate_s"],
        "lm_eval": {k: lme[k] for k in ("wall_s", "import_s", "load_s", "eval_s", "generate_s")},
        "thinkcost": {"wall_s": tc["wall_s"], "generate_s": tc["generate_s"]},
        "tokens": {"lm_eval": lm_tokens, "thinkcost": tc_tokens},
        "correct": {"lm_eval": lm_correct, "thinkcost": int(tc["rows"]["correct"].sum())},
        "both_extracted": both,
        "answers_agree": agree,
        "identical_token_ids": same_tokens,
        "identical_texts": same_texts,
        "prompts_identical_text": same_text,
        "prompts_identical_ids": same_ids,
        "prompt_token_counts_equal": same_len,
    }
    console.print(
        f"wall time lm-eval / thinkcost: {figures['wall_ratio']:.2f}x "
        f"(lm-eval load {lme['load_s']:.1f}s + imports {lme['import_s']:.1f}s); "
        f"generation time ratio: {figures['generate_ratio']:.2f}x\n"
        f"answers agree on {agree}/{both} problems where both extract a number; identical generated "
        f"token ids {same_tokens}/{n}, identical texts {same_texts}/{n}\n"
        f"prompts: rendered text identical {same_text}/{n}, token ids identical {same_ids}/{n}, "
        f"thinkcost's stored prompt token counts equal lm-eval's {same_len}/{n}"
    )
    return figures


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=64, help="problems (the first N of the arithmetic task)")
    ap.add_argument("--model", default="qwen2.5-coder-0.5b")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-new-tokens", type=int, default=320)
    ap.add_argument("--lm-eval-python", default="/work/venvs/lmeval/bin/python")
    ap.add_argument("--threads", type=int, help="OMP_NUM_THREADS for both (default: torch's own choice)")
    ap.add_argument("--work", type=Path, help="keep inputs, logs and stores here (default: a temp dir)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--lm-eval-worker", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.lm_eval_worker:
        lm_eval_worker(args.lm_eval_worker)
        return
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)  # both children
    if not Path(args.lm_eval_python).exists():
        raise SystemExit(
            f"peers: {args.lm_eval_python} not found: install lm-eval in a venv (see the docstring)"
        )

    from rich.console import Console
    from transformers import AutoTokenizer

    from thinkcost.models import resolve_model
    from thinkcost.tasks import get_task

    console = Console()
    source = resolve_model(args.model)
    problems = get_task("arithmetic").problems(args.n, args.seed)
    with tempfile.TemporaryDirectory(prefix="peers-") as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        system = write_lm_eval_task(work, problems, args.max_new_tokens)
        console.print(f"work dir {work}; lm-eval first, then thinkcost (one at a time: they share the CPU)")
        lme = run_lm_eval(args, work, source, system)
        console.print(f"lm-eval done: {lme['wall_s']:.1f}s")
        tc = run_thinkcost(args, work)
        console.print(f"thinkcost done: {tc['wall_s']:.1f}s")
        kw = {"gguf_file": source.gguf_file} if source.gguf_file else {}
        tok = AutoTokenizer.from_pretrained(source.path, **kw)
        figures = compare(args, problems, lme, tc, tok, console)
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
