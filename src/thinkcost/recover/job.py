"""`thinkcost recover`: load the base model (teacher) and a copy of it as the variant's
fake-quant student, get teacher traces on problems that are never evaluated, distil, and
write the result as a GPTQ checkpoint that `thinkcost run --variants ckpt:DIR` evaluates."""

from __future__ import annotations

import copy
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from thinkcost.errors import UserError
from thinkcost.recover.train import TrainConfig

BACKENDS = ("thinkcost", "torchao")


@dataclass
class RecoverJob:
    model: str
    variant: str
    out: Path
    train: TrainConfig = field(default_factory=TrainConfig)
    task: str = "arithmetic"
    eval_limit: int = 200  # the evaluated problems the training data must not overlap
    eval_seed: int = 0
    train_problems: int = 256
    train_seed: int | None = None
    from_store: Path | None = None
    store_variant: str = "base"
    data: Path | None = None
    max_new_tokens: int = 512
    gen_batch_size: int = 8
    calib_samples: int = 32
    calib_seq_len: int = 256
    dtype: str = "float32"
    backend: str = "thinkcost"
    traces_cache: Path | None = None  # tokenized generated traces (default: in the output dir)

    def check(self) -> None:
        """Every flag before anything is loaded."""
        from thinkcost.quant.methods import parse_variant

        self.train.check()
        spec = parse_variant(self.variant)
        if spec.method == "base":
            raise UserError(
                "--variant base has nothing to recover: pick a quantized variant (e.g. rtn-w3g32)"
            )
        if self.backend not in BACKENDS:
            raise UserError(f"--backend: expected one of {', '.join(BACKENDS)}, got {self.backend!r}")
        if self.backend == "torchao":
            torchao_unavailable()
        if self.from_store is not None and self.data is not None:
            raise UserError("--from-store and --data are two sources of traces: give one")
        for flag, v in (("--train", self.train_problems), ("--eval-limit", self.eval_limit)):
            if v < 1:
                raise UserError(f"{flag}: expected an integer >= 1, got {v}")
        if self.out.exists() and not self.out.is_dir():
            raise UserError(f"-o {str(self.out)!r} is a file; expected a directory")
        if self.out.is_dir() and any(self.out.iterdir()) and not (self.out / "recover_job.json").is_file():
            raise UserError(
                f"-o {str(self.out)!r} exists, is not empty and holds no recover run; choose a new directory"
            )

    def record(self) -> dict[str, Any]:
        d = asdict(self)
        return json.loads(json.dumps(d, default=str))


def torchao_unavailable() -> None:
    """--backend torchao: say exactly why it cannot run here (checked before any load)."""
    try:
        import torchao  # noqa: F401
        from torchao.quantization.qat import QATConfig  # noqa: F401
    except Exception as e:  # ImportError, or torchao failing against this torch
        raise UserError(
            f"--backend torchao: torchao's QAT flow (QATConfig) is not importable here ({type(e).__name__}: "
            f"{e}); install it with `pip install 'thinkcost[torchao]'` on a torch it supports"
        ) from None
    raise UserError(
        "--backend torchao: its QATConfig fake-quantizes on torchao's own grid (scales from the latent "
        "weights at every step, no GPTQ codes), so it cannot start from the variant's exact weights nor "
        "export the GPTQ checkpoint `ckpt:DIR` needs; this version supports --backend thinkcost only"
    )


def _console_progress(console: Console):
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=console,
    )


def get_traces(job: RecoverJob, teacher, tok, task, console: Console) -> tuple[list, dict]:
    """Teacher traces (cached in the output dir, so a rerun does not generate again)."""
    from thinkcost.reasoning import render_prompt
    from thinkcost.recover import data

    cache = job.traces_cache or job.out / "traces.jsonl"
    evaluated = task.problems(job.eval_limit, job.eval_seed)
    eos = "<|im_end|>" if "<|im_end|>" in tok.get_vocab() else tok.eos_token

    def render(m):
        return render_prompt(tok, m)

    if job.from_store is not None:
        traces = data.traces_from_store(
            job.from_store,
            tok,
            render,
            evaluated,
            variant=job.store_variant,
            eos=eos,
            limit=job.train_problems,
        )
        return traces, {"source": f"store {job.from_store}", "n_traces": len(traces)}
    if job.data is not None:
        traces = data.traces_from_file(job.data, tok, render, evaluated, eos=eos)
        return traces, {"source": f"file {job.data}", "n_traces": len(traces)}
    if not hasattr(task, "problem"):
        raise UserError(
            f"task {job.task!r} has no seeded generator: give its train split with --data or --from-store"
        )
    problems, dropped = data.training_problems(
        task, job.train_problems, job.eval_seed, evaluated, job.train_seed
    )
    info = {
        "source": "generated",
        "train_problems": len(problems),
        "dropped_as_evaluated": dropped,
        "train_seed": job.train_seed
        if job.train_seed is not None
        else job.eval_seed + data.TRAIN_SEED_OFFSET,
    }
    if cache.is_file():
        traces = data.read_traces(cache)
        return traces, info | {"n_traces": len(traces), "cached": True}
    from thinkcost.engines.hf import HFEngine

    engine = HFEngine(teacher, tok, batch_size=job.gen_batch_size)
    with console.status(f"teacher traces on {len(problems)} training problems"):
        kept = data.generate_traces(engine, task, problems, job.max_new_tokens)
    traces = [data.encode(tok, render, p.id, p.messages, c.text, eos) for p, c in kept]
    data.write_traces(cache, traces)
    return traces, info | {"n_traces": len(traces)}


def run_recover(job: RecoverJob, console: Console) -> dict[str, Any]:
    """The whole recovery; returns a summary (also written to recover.json in the output dir)."""
    job.check()
    from thinkcost.engines.hf import load_hf
    from thinkcost.models import resolve_model
    from thinkcost.quant.methods import parse_variant
    from thinkcost.recover.export import export_student
    from thinkcost.recover.student import make_student_, variant_grids
    from thinkcost.recover.train import train
    from thinkcost.tasks import get_task

    spec = parse_variant(job.variant)
    task = get_task(job.task)
    job.out.mkdir(parents=True, exist_ok=True)
    record = job.record()
    rec_file = job.out / "recover_job.json"
    if rec_file.is_file() and json.loads(rec_file.read_text()) != record:
        raise UserError(
            f"-o {str(job.out)!r} holds a recover run with other flags; rerun them or pick a new directory"
        )
    rec_file.write_text(json.dumps(record, indent=2) + "\n")
    t0 = time.perf_counter()
    source = resolve_model(job.model)
    with console.status(f"loading {job.model}"):
        teacher, tok = load_hf(source, dtype=job.dtype)
    traces, data_info = get_traces(job, teacher, tok, task, console)
    calib = None
    if spec.needs_calibration:
        from thinkcost.quant.calibration import build_calibration

        calib = build_calibration(
            task, tok, n_samples=job.calib_samples, seq_len=job.calib_seq_len, seed=job.eval_seed
        )
    student = copy.deepcopy(teacher)
    with console.status(f"quantizing the student ({job.variant})"):
        grids = variant_grids(student, spec, calib)
    make_student_(
        student,
        grids,
        learn_scales=job.train.learn_scales,
        lora_rank=job.train.adapter_rank,
        lora_alpha=job.train.lora_alpha,
        seed=job.train.seed,
    )
    fingerprint = {
        "model": job.model,
        "variant": job.variant,
        "traces": len(traces),
        "data": data_info.get("source"),
    }
    t_train = time.perf_counter()
    with _console_progress(console) as progress:
        log = train(teacher, student, traces, job.train, job.out, fingerprint=fingerprint, progress=progress)
    train_s = time.perf_counter() - t_train
    ckpt = job.out / "checkpoint"
    meta = {
        "recovered_from": job.variant,
        "model": job.model,
        "mode": job.train.mode,
        "loss": job.train.loss,
        "steps": job.train.steps,
        "traces": len(traces),
        "data": data_info,
        "final_loss": log[-1]["loss"] if log else None,
    }
    export_student(student, ckpt, spec, tokenizer=tok, meta=meta)
    summary = {
        **meta,
        "checkpoint": str(ckpt),
        "variant_name": f"ckpt:{ckpt}",
        "train_s": train_s,
        "total_s": time.perf_counter() - t0,
        "peak_rss_gb": peak_rss_gb(),
        "first_loss": log[0]["loss"] if log else None,
    }
    (job.out / "recover.json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    return summary


def peak_rss_gb() -> float:
    """Peak resident memory of this process (Linux: ru_maxrss is in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
