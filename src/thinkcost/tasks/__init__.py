"""Tasks by name: each module registers itself in TASKS; specs and the CLI go through get_task."""

from __future__ import annotations

import inspect
from typing import Any

from thinkcost.errors import UserError
from thinkcost.registry import Registry, import_submodules
from thinkcost.tasks.base import Task

TASKS = Registry("task")


def get_task(name: str, **options: Any) -> Task:
    """Build a registered task from its spec name and options, with errors a user can act on."""
    if name not in TASKS:
        raise UserError(f"unknown task {name!r}; known: {', '.join(TASKS.names()) or 'none'}")
    factory = TASKS.get(name)
    params = inspect.signature(factory).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    allowed = [p for p in params if params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    for key in options:
        if not takes_any and key not in params:
            raise UserError(f"task {name!r} has no option {key!r}; options: {', '.join(allowed) or 'none'}")
    return factory(**options)


# Every module of this package is imported, so each registers its task(s): procedural ->
# arithmetic, robustness -> injection and extraction (offline, seeded); the others read a
# dataset (tasks/dataset.py). A new task is a new module here with its @TASKS.register.
import_submodules(__name__, __path__)
