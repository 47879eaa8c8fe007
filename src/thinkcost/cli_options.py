"""`thinkcost run`'s options, generated from `RunSpec`: one flag per spec field, with the field's
description as help and its `panel` as the help section, so a field added to the spec is a flag
at once and the two can never disagree (the CLI used to be a hand copy of the fields)."""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from .spec import RunSpec

SPEC_FILE = inspect.Parameter(
    "spec_file",
    inspect.Parameter.POSITIONAL_OR_KEYWORD,
    default=None,
    annotation=Annotated[Path | None, typer.Argument(help="YAML/JSON spec; flags override its keys")],
)


def flag_of(field: str) -> str:
    """The command-line flag of a spec field (`max_new_tokens` -> `--max-new-tokens`)."""
    extra = RunSpec.model_fields[field].json_schema_extra or {}
    return str(extra.get("cli") or "--" + field.replace("_", "-"))


def _cli_type(annotation: Any) -> type:
    """What the flag parses: paths, ints, floats and flags as such; lists, dicts and literals as
    text that the spec's validators parse (comma lists, JSON objects, names)."""
    args = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    for t in (bool, int, float, Path):
        if t in args:
            return t
    return str


def _parameter(field: str) -> inspect.Parameter:
    info = RunSpec.model_fields[field]
    extra = info.json_schema_extra or {}
    typ = _cli_type(info.annotation)
    option = typer.Option(flag_of(field), help=info.description or "", rich_help_panel=extra.get("panel"))
    return inspect.Parameter(
        field, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=Annotated[typ | None, option]
    )


def spec_command(fields: Sequence[str] | None = None) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorate a command `fn(spec_file, overrides, **own_options)`: the command line gets the
    spec file argument, one option per RunSpec field (all, or `fields`), and `fn`'s own
    options; `overrides` maps each field to its flag's value (None when not given)."""
    names = list(fields) if fields is not None else list(RunSpec.model_fields)

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        own = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in inspect.signature(fn, eval_str=True).parameters.values()
            if p.name not in ("spec_file", "overrides")
        ]

        @functools.wraps(fn)
        def command(**kw: Any) -> Any:
            overrides = {n: kw.pop(n) for n in names}
            return fn(spec_file=kw.pop("spec_file", None), overrides=overrides, **kw)

        params = [SPEC_FILE, *(_parameter(n) for n in names), *own]
        command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
        del command.__wrapped__  # typer must read this signature, not fn's
        return command

    return deco
