"""Name -> implementation maps, so specs can say `hf`, `arithmetic` or `rtn` and a new
backend, task, strategy or quantizer plugs in with one module plus one registration.

Two ways to register, one registry:

- `@REG.register("name", **meta)` on the implementation, in its own module (light plugins:
  tasks, strategies, a user's own engine in a test or a script);
- `REG.lazy("name", "package.module:attr", **meta)`, one line in the kind's package, for
  plugins whose module is heavy (engines import torch, llama.cpp or httpx): the module is
  imported the first time `get("name")` asks for it, so listing names, reading `meta` (CLI
  help, spec validation) or opening a store never pays for it.

`meta` holds what callers need to know without importing the plugin (a one-line summary,
the form a user writes, ...)."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class Registry:
    """A named dict filled by a decorator or by lazy entries; lookups fail with the known names."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, Any] = {}
        self._lazy: dict[str, str] = {}  # name -> "module:attr", until first use
        self._meta: dict[str, dict[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in self._items or name in self._lazy:
                raise ValueError(f"{self.kind} {name!r} registered twice")
            self._items[name] = obj
            self._meta[name] = dict(meta)
            return obj

        return deco

    def lazy(self, name: str, target: str, **meta: Any) -> None:
        """Register `target` ("package.module:attr") under `name`, imported on first `get`."""
        if name in self._items or name in self._lazy:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        if ":" not in target:
            raise ValueError(f"{self.kind} {name!r}: expected 'module:attr', got {target!r}")
        self._lazy[name] = target
        self._meta[name] = dict(meta)

    def unregister(self, name: str) -> None:
        """Remove an entry (tests that register a toy plugin clean up after themselves)."""
        self._items.pop(name, None)
        self._lazy.pop(name, None)
        self._meta.pop(name, None)

    def get(self, name: str) -> Any:
        if name in self._lazy:
            module, attr = self._lazy.pop(name).split(":")
            self._items[name] = getattr(importlib.import_module(module), attr)
        try:
            return self._items[name]
        except KeyError:
            raise KeyError(
                f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}"
            ) from None

    def meta(self, name: str) -> dict[str, Any]:
        """What the registration declared about `name` (empty when it declared nothing)."""
        if name not in self:
            self.get(name)  # raises the KeyError with the known names
        return self._meta.get(name, {})

    def names(self) -> list[str]:
        return sorted({*self._items, *self._lazy})

    def __contains__(self, name: object) -> bool:
        return name in self._items or name in self._lazy


def import_submodules(package: str, path: list[str]) -> None:
    """Import every module of a plugin package, so a module dropped into it registers itself:
    adding a task or a strategy is that module alone (modules starting with `_` are skipped).
    The modules must import nothing heavy at import time (torch, transformers: inside functions)."""
    import pkgutil

    for info in pkgutil.iter_modules(path):
        if not info.name.startswith("_"):
            importlib.import_module(f"{package}.{info.name}")
