"""Which problems a worker of a sharded run draws (`--shard I/N`).

A problem belongs to shard `sha256(problem id) mod N`, so the split depends on nothing but the
id: every worker computes it alone, the shards of any N are disjoint and together are the full
problem list, and a larger --limit only adds problems to shards. The unit is the problem, never
the sample, so a short-m@k group (whose samples stop each other) or a search stays on one worker.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from ..types import Problem

_FORM = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


@dataclass(frozen=True)
class Shard:
    """Shard `index` (1-based, as `--shard 1/4` reads) of `count`."""

    index: int
    count: int

    def __str__(self) -> str:
        return f"{self.index}/{self.count}"

    def holds(self, problem_id: str) -> bool:
        return shard_of(problem_id, self.count) == self.index - 1


def parse_shard(text: str) -> Shard:
    """'2/4' -> Shard(2, 4); anything else is a ValueError saying what is expected."""
    m = _FORM.match(str(text))
    if not m:
        raise ValueError(f"expected I/N, e.g. 1/4 (shard I of N, counting from 1); got {text!r}")
    i, n = int(m.group(1)), int(m.group(2))
    if n < 1 or not 1 <= i <= n:
        raise ValueError(f"shard {text!r}: I must be in 1..N (shards count from 1), N at least 1")
    return Shard(i, n)


def shard_of(problem_id: str, count: int) -> int:
    """0-based shard of a problem id among `count`: a stable hash, the same on every machine."""
    digest = hashlib.sha256(problem_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % count


def select(problems: Iterable[Problem], shard: Shard | None) -> list[tuple[int, Problem]]:
    """(position in the full list, problem) of the problems this shard draws; all without a
    shard. Positions stay those of the unsharded run, so merged shards order like one run."""
    return [(i, p) for i, p in enumerate(problems) if shard is None or shard.holds(p.id)]
