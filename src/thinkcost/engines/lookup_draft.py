"""Draft tokens for speculative greedy decoding, looked up in the row's own text.

Why: on a CPU, a decode step at small batch is bound by reading the weights once, so checking
a few guessed tokens in the same forward pass costs little more than computing one. The guess
is the continuation of the most recent earlier occurrence of the row's last n tokens in its
prompt and generation ("prompt lookup"): word problems restate their numbers and names, and a
looping low-bit model repeats itself exactly, which is where the long, expensive tails are.
A guess never changes the output: the engine keeps a drafted token only when it equals what
the model picks at that position given everything before it, so greedy decoding emits the
same tokens it would one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence


class LookupDraft:
    """An index of the n-grams (n = 1..max_n) of one row's tokens to the position that followed
    their most recent occurrence, kept up to date as tokens are appended (O(max_n) per token)."""

    def __init__(self, ids: Sequence[int], max_n: int = 3, min_n: int = 2) -> None:
        self.ids: list[int] = []
        self.max_n, self.min_n = max_n, min_n
        self._follow: dict[tuple[int, ...], int] = {}
        self.extend(ids)

    def extend(self, ids: Sequence[int]) -> None:
        for tid in ids:
            p = len(self.ids)  # the position tid takes: it follows the n-grams ending at p - 1
            for n in range(self.min_n, self.max_n + 1):
                if p - n >= 0:
                    self._follow[tuple(self.ids[p - n : p])] = p
            self.ids.append(tid)

    def propose(self, k: int) -> list[int]:
        """Up to `k` tokens that followed the latest earlier occurrence of the longest suffix
        (max_n down to min_n tokens) seen before; [] when no suffix occurred before."""
        if k <= 0:
            return []
        ids = self.ids
        for n in range(self.max_n, self.min_n - 1, -1):
            if len(ids) < n:
                continue
            at = self._follow.get(tuple(ids[len(ids) - n :]))
            if at is not None:
                # the text since that occurrence repeats with period len - at: a draft that
                # runs past the end goes on around the loop (a looping row is drafted whole)
                period = len(ids) - at
                out: list[int] = []
                for j in range(k):
                    out.append(ids[at + j] if at + j < len(ids) else out[j - period])
                return out
        return []
