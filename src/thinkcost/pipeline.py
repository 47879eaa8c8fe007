"""`thinkcost run` as one call: generate into the store, then build the report from it. The
two stages stay separate layers (the runner never imports the report); this is where they meet."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from .metrics.summary import VariantSummary
from .report.build import build_report
from .runner import generate
from .spec import RunSpec
from .store import Store


@dataclass
class RunResult:
    run_id: str
    store_path: Path
    rows: list[VariantSummary]
    outputs: dict[str, Path]
    generated: int


def run(spec: RunSpec, console: Console | None = None, engine=None) -> RunResult:
    """Generate what the store lacks, then write the report (summary.json, generations.parquet,
    report.html) of the spec's variants and strategies. `engine`: see `runner.generate`."""
    g = generate(spec, console, engine)
    store = Store(g.store_path)
    try:
        rows, outputs = build_report(
            store,
            g.run_id,
            spec.out_dir(),
            variants=spec.variants,
            reference=spec.reference,
            strategies=g.strategies,
        )
    finally:
        store.close()
    return RunResult(g.run_id, g.store_path, rows, outputs, g.generated)
