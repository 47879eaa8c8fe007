"""`thinkcost import TOOL DIR`: runs made by other evaluation tools as a thinkcost store.

One reader per tool (lm_eval, evalscope) turns its files into `ImportedTask`s; one writer
(common.write_task) counts tokens with the model's tokenizer, splits reasoning from the answer
and commits the rows, one thinkcost run per task. `thinkcost report STORE` then works as on a
store written by `thinkcost run`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import UserError
from ..store import Store
from .common import FORMATS, Imported, ImportedTask, load_tokenizer, write_task

TOOLS = ("lm-eval", "evalscope")

__all__ = ["FORMATS", "TOOLS", "Imported", "import_run", "read_tool"]


def read_tool(
    tool: str,
    directory: Path,
    *,
    tasks: list[str] | None = None,
    filter_name: str | None = None,
    metric: str | None = None,
) -> list[ImportedTask]:
    """The tasks a tool's output directory holds (no store, no tokenizer)."""
    if tool == "lm-eval":
        from . import lm_eval

        return lm_eval.read(directory, tasks=tasks, filter_name=filter_name, metric=metric)
    if tool == "evalscope":
        from . import evalscope

        if filter_name is not None or metric is not None:
            raise UserError(
                "--filter and --metric are lm-eval options; evalscope reviews carry their main score"
            )
        return evalscope.read(directory, tasks=tasks)
    raise UserError(f"import: unknown tool {tool!r}; expected one of {', '.join(TOOLS)}")


def import_run(
    tool: str,
    directory: str | Path,
    store_path: str | Path,
    *,
    tokenizer: str | None = None,
    variant: str = "base",
    name: str | None = None,
    reasoning_format: str = "auto",
    tasks: list[str] | None = None,
    filter_name: str | None = None,
    metric: str | None = None,
) -> list[Imported]:
    """Import every task (or the named ones) of a tool's output into `store_path`; idempotent."""
    if not variant or not variant.strip():
        raise UserError("--variant: expected a non-empty name")
    if reasoning_format not in FORMATS:
        raise UserError(f"--reasoning-format: expected one of {', '.join(FORMATS)}, got {reasoning_format!r}")
    found = read_tool(tool, Path(directory), tasks=tasks, filter_name=filter_name, metric=metric)
    if name is not None and len(found) > 1:
        raise UserError(f"--name: {directory} holds {len(found)} tasks; pick one with --task to name its run")
    tok = load_tokenizer(tokenizer) if tokenizer else None
    store = Store(store_path)
    try:
        return [
            write_task(
                store,
                t,
                variant=variant,
                tokenizer=tokenizer,
                tok=tok,
                reasoning_format=reasoning_format,
                name=name,
            )
            for t in found
        ]
    finally:
        store.close()
