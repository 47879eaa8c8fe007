"""The `thinkcost` command: run, report, compare, export, quantize, tasks, doctor.
User mistakes print one line and exit 2."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.text import Text

from .cli_options import spec_command
from .errors import UserError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=False,
    pretty_exceptions_enable=False,
    help="Measure the true cost of a correct answer: accuracy, reasoning tokens, CoT token inflation, "
    "seconds per correct answer, across quantized variants of a model.",
)
console = Console()
if not console.is_terminal:  # logs and CI: wide enough that the summary table never folds
    console = Console(width=200)
err_console = Console(stderr=True)


@app.command()
@spec_command()
def run(spec_file: Path | None, overrides: dict[str, Any]) -> None:
    """Evaluate a model and its variants; resumes from the store if interrupted."""
    from .pipeline import run as run_spec
    from .report.table import rich_table
    from .spec import build_spec, load_spec_file

    file_values = load_spec_file(spec_file) if spec_file else {}
    spec = build_spec(file_values, overrides, origin=str(spec_file) if spec_file else "options")
    result = run_spec(spec, console)
    meta = json.loads(Path(result.outputs["json"]).read_text())["meta"] if "json" in result.outputs else {}
    console.print(rich_table(result.rows, spec.run_name(), spec.reference, [meta.get("reasoning_note", "")]))
    _print_robustness(result.outputs.get("json"))
    for kind, path in result.outputs.items():
        if kind != "html":
            console.print(f"{kind:>8}: {path}", soft_wrap=True, markup=False)
    console.print(f"   store: {result.store_path}", soft_wrap=True, markup=False)
    if "html" in result.outputs:
        console.print(f"  report: {result.outputs['html']}", soft_wrap=True, markup=False)


# what a greedy reproducibility run can vary besides dtype and batch size
_REPRO_FIELDS = ("model", "task", "task_options", "data", "fields", "prompt", "limit", "max_new_tokens")
_REPRO_FIELDS += ("seed", "device", "engine", "thinking", "store", "out")


@app.command()
@spec_command(_REPRO_FIELDS)
def repro(
    spec_file: Path | None,
    overrides: dict[str, Any],
    dtypes: Annotated[
        str, typer.Option(help="comma list of float32, bfloat16, float16; the first is the reference")
    ] = "float32,bfloat16,float16",
    batch_sizes: Annotated[
        str, typer.Option(help="comma list of batch sizes; the first is the reference")
    ] = "1,4,16",
) -> None:
    """Re-run one greedy spec per dtype and batch size: share of problems whose text differs from
    the reference, where it first diverges (tokens), and the spread of accuracy and reasoning tokens."""
    from .repro import parse_batch_sizes, parse_dtypes
    from .repro import repro as run_repro
    from .spec import build_spec, load_spec_file

    dtype_list, sizes = parse_dtypes(dtypes), parse_batch_sizes(batch_sizes)
    file_values = load_spec_file(spec_file) if spec_file else {}
    spec = build_spec(file_values, overrides, origin=str(spec_file) if spec_file else "options")
    result = run_repro(spec, dtype_list, sizes, console)
    console.print(result.table())
    console.print(f"    json: {result.out_path}", soft_wrap=True, markup=False)
    console.print(f"   store: {result.store_path}", soft_wrap=True, markup=False)


def _print_robustness(summary_path: Path | None) -> None:
    """Injection/extraction runs: the attack table after the main one (from summary.json)."""
    from .report.table import robustness_table

    if summary_path is None or not Path(summary_path).is_file():
        return
    records = json.loads(Path(summary_path).read_text())["meta"].get("robustness")
    if records:
        console.print(robustness_table(records))
    recovery = json.loads(Path(summary_path).read_text())["meta"].get("recovery")
    if recovery:
        from .report.recovery import recovery_table_rich

        console.print(recovery_table_rich(recovery))


def _extrapolate_ks(text: str) -> tuple[int, ...]:
    """--extrapolate-k "100,1000" -> (100, 1000); a clear error for anything but positive integers."""
    parts = [x.strip() for x in text.split(",") if x.strip()]
    if not parts or not all(x.isdigit() and int(x) >= 1 for x in parts):
        raise UserError(
            f"--extrapolate-k: expected a comma list of integers >= 1, e.g. 100,1000; got {text!r}"
        )
    return tuple(int(x) for x in parts)


@app.command()
def report(
    store: Annotated[Path, typer.Argument(help="a store written by `thinkcost run`")],
    format: Annotated[
        str, typer.Option("--format", help="table, json or md (GitHub-flavoured Markdown)")
    ] = "table",
    run_id: Annotated[str | None, typer.Option("--run", help="run id (default: the latest run)")] = None,
    out: Annotated[Path | None, typer.Option(help="also write JSON/Parquet/HTML here")] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write the HTML report to this .html file")
    ] = None,
    extrapolate_k: Annotated[
        str,
        typer.Option("--extrapolate-k", help="comma list of k the fitted coverage curve is extrapolated to"),
    ] = "100,1000",
) -> None:
    """Rebuild the summary from a store file alone."""
    import shutil
    import tempfile

    from .report.build import build_report
    from .report.export import resolve_run
    from .report.markdown import rows_to_markdown
    from .report.table import rich_table, summary_json
    from .store import Store

    if format not in ("table", "json", "md"):
        raise UserError(f"--format: expected table, json or md, got {format!r}")
    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"-o {str(output)!r}: expected an .html file (use --out DIR for all outputs)")
    st = Store(store, create=False)
    rid = resolve_run(st, run_id)
    with tempfile.TemporaryDirectory() as tmp:
        rows, outputs = build_report(st, rid, out or Path(tmp), extrapolate=_extrapolate_ks(extrapolate_k))
        meta = json.loads(outputs["json"].read_text())["meta"]
        if output is not None:
            output.parent.mkdir(parents=True, exist_ok=True)
            if output.resolve() != outputs["html"].resolve():
                shutil.copyfile(outputs["html"], output)
    if format == "json":
        sys.stdout.write(json.dumps(summary_json(rows, meta)["variants"], indent=2) + "\n")
    elif format == "md":
        sys.stdout.write(rows_to_markdown(rows, meta))
    else:
        console.print(rich_table(rows, meta["run_name"], meta["reference"], [meta.get("reasoning_note", "")]))
        if meta.get("robustness"):
            from .report.table import robustness_table

            console.print(robustness_table(meta["robustness"]))
        if meta.get("recovery"):
            from .report.recovery import recovery_table_rich

            console.print(recovery_table_rich(meta["recovery"]))
        from .report.levels import levels_rich

        for part in levels_rich(meta):
            console.print(part, markup=False)
    if output is not None:  # stderr for json/md, so stdout stays pure
        (console if format == "table" else err_console).print(
            f"report: {output}", soft_wrap=True, markup=False
        )


@app.command()
def compare(
    store_a: Annotated[Path, typer.Argument(help="store A (the baseline)")],
    store_b: Annotated[Path, typer.Argument(help="store B (deltas are B - A)")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="write a self-contained diff page (.html)")
    ] = None,
    format: Annotated[str, typer.Option("--format", help="table, md or json")] = "table",
    run_a: Annotated[str | None, typer.Option("--run-a", help="run id in A (default: latest)")] = None,
    run_b: Annotated[str | None, typer.Option("--run-b", help="run id in B (default: latest)")] = None,
    n_boot: Annotated[int, typer.Option("--n-boot", help="bootstrap resamples")] = 2000,
    seed: Annotated[int, typer.Option(help="bootstrap seed")] = 0,
) -> None:
    """Two stores side by side: A, B and B - A per row and metric, with paired bootstrap 95% CIs."""
    from .report.compare import compare_stores, comparison_markdown, comparison_table, write_comparison_html

    if format not in ("table", "md", "json"):
        raise UserError(f"--format: expected table, md or json, got {format!r}")
    if output is not None and output.suffix.lower() not in (".html", ".htm"):
        raise UserError(f"-o {str(output)!r}: expected an .html file")
    if n_boot < 1:
        raise UserError(f"--n-boot: expected >= 1, got {n_boot}")
    cmp = compare_stores(store_a, store_b, run_a=run_a, run_b=run_b, n_boot=n_boot, seed=seed)
    if output is not None:
        write_comparison_html(cmp, output)
    if format == "json":
        sys.stdout.write(json.dumps(cmp.to_json(), indent=2) + "\n")
    elif format == "md":
        sys.stdout.write(comparison_markdown(cmp))
    else:
        console.print(comparison_table(cmp))
    if output is not None:
        (console if format == "table" else err_console).print(f"diff: {output}", soft_wrap=True, markup=False)


@app.command()
def merge(
    out: Annotated[Path, typer.Argument(help="the merged store (created, or merged into when it exists)")],
    stores: Annotated[list[Path], typer.Argument(help="stores of the same run: one per shard or worker")],
) -> None:
    """Merge the stores of one run's workers (`--shard I/N`) into one; merging again changes nothing."""
    from .merge import merge_stores

    result = merge_stores(out, list(stores))
    for run_id, n in result.runs.items():
        console.print(f"run {run_id}: {n} generations", markup=False)
    console.print(
        f"merged {len(stores)} store(s) into {out}: {result.added} new generation(s)"
        + (
            f"; {result.differing} fact(s) differed between workers (note merge:differing)"
            if result.differing
            else ""
        ),
        soft_wrap=True,
        markup=False,
    )


@app.command("import")
def import_(
    tool: Annotated[str, typer.Argument(help="the tool that made the run: lm-eval or evalscope")],
    directory: Annotated[
        Path,
        typer.Argument(help="its output: lm-eval --output_path (with --log_samples), evalscope work dir"),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="the store to write (created or added to)")],
    tokenizer: Annotated[
        str | None,
        typer.Option(
            help="the model's tokenizer (packaged name, .gguf, dir or hub id); without it, no token counts"
        ),
    ] = None,
    variant: Annotated[
        str, typer.Option(help="the variant these rows belong to (base, rtn-w4, ...)")
    ] = "base",
    name: Annotated[str | None, typer.Option(help="run name (default TOOL:TASK)")] = None,
    reasoning_format: Annotated[
        str,
        typer.Option(
            "--reasoning-format",
            help="auto, think-in-output, think-in-prompt (the template opened <think>) or none",
        ),
    ] = "auto",
    task: Annotated[
        list[str] | None, typer.Option("--task", help="import only this task (repeatable)")
    ] = None,
    filter_name: Annotated[
        str | None, typer.Option("--filter", help="lm-eval: the filter whose scores to use")
    ] = None,
    metric: Annotated[
        str | None, typer.Option(help="lm-eval: the per-sample metric (default its first)")
    ] = None,
) -> None:
    """Turn another tool's run into a store: reasoning split, token counts, the tool's verdicts."""
    from .importers import import_run

    done = import_run(
        tool,
        directory,
        output,
        tokenizer=tokenizer,
        variant=variant,
        name=name,
        reasoning_format=reasoning_format,
        tasks=task or None,
        filter_name=filter_name,
        metric=metric,
    )
    for r in done:
        console.print(
            f"run {r.run_id} ({tool} task {r.task}, variant {r.variant}, {r.strategy}): {r.problems} problems, "
            f"{r.added} new generation(s), {r.stored} stored",
            soft_wrap=True,
            markup=False,
        )
    console.print(f"store: {output} (thinkcost report {output} --run RUN)", soft_wrap=True, markup=False)


@app.command()
def export(
    store: Annotated[Path, typer.Argument(help="a store written by `thinkcost run`")],
    output: Annotated[Path, typer.Option("-o", "--output", help="file to write: .parquet, .csv or .jsonl")],
    run_id: Annotated[str | None, typer.Option("--run", help="run id (default: the latest run)")] = None,
) -> None:
    """Every sample of a run as one flat file (columns: see README, "Exporting samples")."""
    from .report.export import export_samples

    path = export_samples(store, output, run_id=run_id)
    console.print(f"samples: {path}", soft_wrap=True, markup=False)


@app.command("export-model")
def export_model(
    model: Annotated[str, typer.Argument(help="packaged name, local .gguf, local dir, or hub id")],
    out_dir: Annotated[Path, typer.Argument(help="directory to write (a Hugging Face model dir)")],
    variant: Annotated[
        str, typer.Option(help="base, rtn-wBgG[-asym][-head], or ckpt:PATH (a GPTQ checkpoint)")
    ] = "base",
    dtype: Annotated[
        str | None,
        typer.Option(help="float16, bfloat16 or float32 (default: float16 for ckpt:PATH, else bfloat16)"),
    ] = None,
    dequantize: Annotated[
        bool, typer.Option("--dequantize", help="ckpt:PATH: write float weights instead of packed GPTQ")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="replace OUT_DIR if it is not empty")] = False,
) -> None:
    """Write a model variant as a Hugging Face model dir that vLLM, SGLang, TGI and transformers load."""
    from .quant.export_model import export_model as run_export

    with console.status(f"exporting {model} ({variant})") as st:
        result = run_export(
            model,
            out_dir,
            variant=variant,
            dtype=dtype,
            dequantize=dequantize,
            force=force,
            status=lambda msg: st.update(f"exporting {model} ({variant}): {msg}"),
        )
    console.print(f"{result.info['what']}", soft_wrap=True, markup=False)
    console.print(f"model dir: {result.path}  (e.g. vllm serve {result.path})", soft_wrap=True, markup=False)


def _checkpoint_bits_help() -> str:
    """`quantize --bits` help from quant.bits (torch-free), so it cannot drift from the check."""
    from .quant.bits import allowed_bits_text

    return f"{allowed_bits_text(checkpoint=True)}: the widths a GPTQ checkpoint can pack"


def _quantize_choices_help(option: str) -> str:
    """`quantize --method/--order` help from the quantizer registry, so it cannot drift from the check."""
    from .quant.methods import column_orders, method_names

    words = method_names() if option == "method" else column_orders()
    return ", ".join(words[:-1]) + f" or {words[-1]}" if len(words) > 1 else "".join(words)


class _QuantizeCommand(typer.core.TyperCommand):
    """Writes the `--method`/`--order` help from the registry when help is shown: listing the
    methods imports them (torch), which no other command, nor `thinkcost --help`, should pay."""

    def format_help(self, ctx: Any, formatter: Any) -> None:
        for p in self.params:
            if p.name in ("method", "order"):
                p.help = _quantize_choices_help(p.name)
        super().format_help(ctx, formatter)


@app.command(cls=_QuantizeCommand)
def quantize(
    out: Annotated[Path, typer.Option("-o", "--out", help="checkpoint directory to write")],
    model: Annotated[
        str, typer.Option(help="packaged name, local .gguf, local dir, or hub id")
    ] = "qwen2.5-coder-0.5b",
    method: Annotated[str, typer.Option(help="quantization method")] = "gptq",
    bits: Annotated[int, typer.Option(help=_checkpoint_bits_help())] = 4,
    group_size: Annotated[int, typer.Option(help="columns per scale; 0 = per output channel")] = 128,
    order: Annotated[str, typer.Option(help="column order")] = "natural",
    asym: Annotated[bool, typer.Option("--asym", help="asymmetric (zero point per group)")] = False,
    mse: Annotated[bool, typer.Option("--mse", help="search a clipping range per group (MSE)")] = False,
    static_groups: Annotated[
        bool, typer.Option("--static-groups", help="group scales fixed on the original column order")
    ] = False,
    calib: Annotated[int, typer.Option(help="calibration windows")] = 32,
    seq_len: Annotated[int, typer.Option(help="tokens per calibration window")] = 256,
    calib_file: Annotated[Path | None, typer.Option(help="text or JSONL calibration data")] = None,
    seed: Annotated[int, typer.Option(help="calibration seed")] = 0,
) -> None:
    """Quantize a model and write a GPTQ checkpoint (qweight/qzeros/scales/g_idx)."""
    from rich.table import Table

    from .quantize import QuantizeJob, run_quantize

    job = QuantizeJob(
        model=model,
        method=method,
        bits=bits,
        group_size=group_size,
        out=out,
        sym=not asym,
        order=order,
        calib_samples=calib,
        calib_seq_len=seq_len,
        calib_file=calib_file,
        seed=seed,
        mse=mse,
        static_groups=static_groups,
    )
    log = run_quantize(job, console)
    t = Table("layer", "shape", "proxy loss", "seconds", title=f"{method} w{bits}g{group_size} ({order})")
    for r in log:
        t.add_row(r["layer"], r["shape"], f"{r['proxy_loss']:.4g}", f"{r['seconds']:.2f}")
    t.add_row(
        "total", "", f"{sum(r['proxy_loss'] for r in log):.4g}", f"{sum(r['seconds'] for r in log):.1f}"
    )
    console.print(t)
    console.print(f"checkpoint: {out}  (use it as variant ckpt:{out})", markup=False)


@app.command()
def recover(
    variant: Annotated[
        str, typer.Option(help="quantized variant to repair: rtn-w3g32, gptq-w4g128, ckpt:PATH")
    ],
    out: Annotated[Path, typer.Option("-o", "--out", help="output dir (checkpoint/, logs; rerun resumes)")],
    model: Annotated[str, typer.Option(help="base model (the teacher)")] = "qwen2.5-coder-0.5b",
    mode: Annotated[
        str, typer.Option(help="qat (all quantized weights) or lora (adapters, low memory)")
    ] = "qat",
    loss: Annotated[str, typer.Option(help="kd = KL(teacher||student); kd+ce adds cross-entropy")] = "kd",
    steps: Annotated[int, typer.Option(help="optimizer steps")] = 100,
    batch_size: Annotated[int, typer.Option(help="traces per step")] = 4,
    lr: Annotated[float, typer.Option(help="learning rate")] = 1e-5,
    learn_scales: Annotated[
        bool, typer.Option("--learn-scales", help="learn the group scales (LSQ)")
    ] = False,
    lora_rank: Annotated[int, typer.Option(help="adapter rank (--mode lora)")] = 16,
    task: Annotated[str, typer.Option(help="task whose training split is used")] = "arithmetic",
    train: Annotated[int, typer.Option("--train", help="training problems (generated traces)")] = 256,
    train_seed: Annotated[int | None, typer.Option(help="seed of the training split")] = None,
    eval_limit: Annotated[int, typer.Option(help="evaluated problems the data must not overlap")] = 200,
    seed: Annotated[int, typer.Option(help="evaluation seed (as `thinkcost run --seed`)")] = 0,
    from_store: Annotated[Path | None, typer.Option(help="teacher traces: correct rows of a store")] = None,
    store_variant: Annotated[str, typer.Option(help="the store's teacher variant")] = "base",
    data: Annotated[
        Path | None, typer.Option(help="teacher traces: JSONL {id, messages, completion}")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(help="cap of generated teacher traces")] = 512,
    checkpoint_every: Annotated[int, typer.Option(help="steps between resumable checkpoints")] = 25,
    backend: Annotated[str, typer.Option(help="thinkcost or torchao (its QATConfig flow)")] = "thinkcost",
    traces_cache: Annotated[
        Path | None, typer.Option(help="generated traces file, shared by recoveries of several variants")
    ] = None,
) -> None:
    """Repair a quantized variant by distillation from the base model; writes a GPTQ checkpoint."""
    from .recover.job import RecoverJob, run_recover
    from .recover.train import TrainConfig

    cfg = TrainConfig(
        mode=mode,
        loss=loss,
        steps=steps,
        batch_size=batch_size,
        lr=lr,
        learn_scales=learn_scales,
        lora_rank=lora_rank,
        checkpoint_every=checkpoint_every,
    )
    job = RecoverJob(
        model=model,
        variant=variant,
        out=out,
        train=cfg,
        task=task,
        eval_limit=eval_limit,
        eval_seed=seed,
        train_problems=train,
        train_seed=train_seed,
        from_store=from_store,
        store_variant=store_variant,
        data=data,
        max_new_tokens=max_new_tokens,
        backend=backend,
        traces_cache=traces_cache,
    )
    res = run_recover(job, console)
    console.print(
        f"recovered {variant}: loss {res['first_loss']:.4f} -> {res['final_loss']:.4f} in {res['train_s']:.0f}s "
        f"(peak {res['peak_rss_gb']:.1f} GB)",
        markup=False,
    )
    console.print(f"checkpoint: {res['checkpoint']}  (use it as variant {res['variant_name']})", markup=False)


@app.command()
def tasks() -> None:
    """List the tasks and their options."""
    from rich.table import Table

    from .tasks import TASKS

    t = Table("task", "source", "size", "metric", "answer", "description")
    for n in TASKS.names():
        cls = TASKS.get(n)
        doc = (cls.__doc__ or "").strip().splitlines()
        t.add_row(
            n,
            str(getattr(cls, "source", "")),
            str(getattr(cls, "size", "")),
            str(getattr(cls, "metric", "")),
            str(getattr(cls, "answer_type", "")),
            doc[0] if doc else "",
        )
    console.print(t)


@app.command()
def doctor(
    bench: Annotated[
        bool,
        typer.Option("--bench", help="measure memory bandwidth and matmul GFLOP/s (roofline figures; ~10 s)"),
    ] = False,
) -> None:
    """Versions, device, and whether the packaged models are installed."""
    import importlib.metadata
    import platform

    from . import __version__
    from .models import PACKAGED, cache_dir, is_installed

    lines = [f"thinkcost {__version__}", f"python {platform.python_version()} ({platform.machine()})"]
    for mod in ("torch", "transformers", "gguf", "numpy", "pandas", "pyarrow", "pydantic", "typer", "rich"):
        try:
            lines.append(f"{mod} {importlib.metadata.version(mod)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"{mod} MISSING")
    try:
        import torch

        dev = f"cuda ({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "cpu"
        lines.append(f"device {dev}, {torch.get_num_threads()} threads")
    except ImportError:
        pass
    engines = {"llamacpp": "llama-cpp-python", "openai": "httpx", "vllm": "vllm"}
    for engine, dist in engines.items():
        try:
            lines.append(f"engine {engine}: {dist} {importlib.metadata.version(dist)}")
        except importlib.metadata.PackageNotFoundError:
            lines.append(f"engine {engine}: {dist} not installed (pip install 'thinkcost[{engine}]')")
    for m in PACKAGED.values():
        state = "installed" if is_installed(m) else f"not installed ({m.install_hint})"
        lines.append(f"model {m.name}: {state}")
    lines.append(f"cache {cache_dir()}")
    for line in lines:
        console.print(line, markup=False)  # "thinkcost[vllm]" is an install hint, not a style
    if bench:
        _bench()


def _bench() -> None:
    """Measure and save the roofline's denominators, which benchmarks read back."""
    from rich.table import Table

    from .roofline import measure_machine, save_machine

    with console.status("measuring memory bandwidth and matmul throughput"):
        fig = measure_machine()
    t = Table(title=f"machine roofline figures ({fig.threads} torch threads)")
    for col in ("what", "shape", "figure"):
        t.add_column(col, justify="right")
    read = f"sum over {fig.buffer_bytes >> 20} MiB"
    t.add_row("memory read bandwidth", read, f"{fig.bandwidth_gbs:.1f} GB/s")
    for m in fig.matmuls:
        t.add_row(f"matmul {m.dtype}", f"{m.label}: [{m.m}x{m.k}] @ [{m.k}x{m.n}]", f"{m.gflops:.1f} GFLOP/s")
    for dtype in dict.fromkeys(m.dtype for m in fig.matmuls):
        t.add_row(f"peak {dtype}", "best shape", f"{fig.peak_gflops(dtype):.1f} GFLOP/s")
    console.print(t)
    console.print(f"saved: {save_machine(fig)}", soft_wrap=True, markup=False)


def main() -> None:
    """Entry point: user errors become one line on stderr and exit code 2, never a traceback."""
    try:
        app(standalone_mode=False)
    except UserError as e:
        # A Text, not a markup string: rich would eat "[hub]" in "pip install 'thinkcost[hub]'".
        err_console.print(Text.assemble(("error:", "red"), f" {e}"), highlight=False, soft_wrap=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except typer.Abort:
        err_console.print("aborted")
        sys.exit(130)
    except KeyboardInterrupt:
        err_console.print("interrupted: finished generations are in the store; rerun to resume")
        sys.exit(130)
    except Exception as e:
        # click usage errors (typer may vendor its own click, so match by shape, not by class)
        show = getattr(e, "show", None)
        if callable(show) and isinstance(getattr(e, "exit_code", None), int):
            show()
            sys.exit(e.exit_code)
        raise


if __name__ == "__main__":
    main()
