"""Where an engine runs (`--executor`): `local` builds the spec's engine backend in this
process; `ray` (`ray_pool`) builds one replica of it inside each Ray actor and gives the runner
a backend with the same `prepare(variant, status) -> (engine, info)` / `close()` contract, so
the runner drives (and commits) both the same way and stays the only store writer."""

from __future__ import annotations

from typing import Any


def build_backend(spec: Any, source: Any, task: Any, console: Any) -> Any:
    """The engine backend `spec.executor` asks for: the registered one, or a Ray pool of it."""
    if getattr(spec, "executor", "local") == "ray":
        from .ray_pool import RayBackend

        return RayBackend(spec, source, task, console)
    from .. import ENGINES

    return ENGINES.get(spec.engine)(spec, source, task, console)
