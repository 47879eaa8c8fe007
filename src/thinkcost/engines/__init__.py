"""Generation backends, by the name used in specs (`--engine`)."""

from ..registry import Registry

ENGINES = Registry("engine")
