"""A preallocated key/value cache in which every row of a batch has its own length.

Why not transformers' DynamicCache: it grows by concatenation, so every decode step copies
the whole cache of every layer (O(length) bytes per step, O(length²) per sequence), and all
rows share one length. Here each layer's keys and values live in one tensor allocated for
the batch's longest possible sequence; a step writes its new entries in place at each row's
own offset, so rows can advance by different numbers of tokens (speculative drafts accepted
in part) and slots past a row's length are simply overwritten by its next step.

The caller owns the attention mask: `mask(T)` gives the 4-D boolean mask of a step of T new
positions (a key is visible when it is one of the row's real tokens so far, or one of this
step's positions at or before the query), which transformers passes to attention as-is.

Duck-typed to what transformers' attention layers call on a cache (`update`); the model never
asks it for a sequence length because the engine passes position ids and the mask itself.
"""

from __future__ import annotations

import torch


class RowCache:
    """Keys/values of `n_layers` layers, shape [B, kv_heads, capacity, head_dim] each."""

    is_compileable = False

    def __init__(self, prompt_mask: torch.Tensor, capacity: int, n_layers: int, dtype, device) -> None:
        self.batch, self.prompt_len = prompt_mask.shape
        self.capacity = capacity
        self.n_layers = n_layers
        self.dtype, self.device = dtype, device
        self.k: list[torch.Tensor | None] = [
            None
        ] * n_layers  # allocated on first write (shape from the layer)
        self.v: list[torch.Tensor | None] = [None] * n_layers
        # which slots hold one of the row's real tokens (left padding of the prompt: False)
        self.valid = torch.zeros(self.batch, capacity, dtype=torch.bool, device=device)
        self.valid[:, : self.prompt_len] = prompt_mask.bool()
        self.lengths = torch.zeros(self.batch, dtype=torch.long, device=device)  # slots written per row
        self._step = 0  # new positions of the step in flight
        self._index: torch.Tensor | None = None
        self._uniform: int | None = 0
        self._width = 0

    # -- one forward step ------------------------------------------------------------------------

    def begin(self, t: int) -> torch.Tensor:
        """Prepare a step of `t` new positions per row; returns its attention mask [B, 1, t, W]."""
        if int(self.lengths.max()) + t > self.capacity:
            raise RuntimeError(
                f"RowCache: {int(self.lengths.max()) + t} slots needed, capacity {self.capacity}"
            )
        self._step = t
        offs = torch.arange(t, device=self.device)
        self._index = self.lengths[:, None] + offs[None, :]  # [B, t] slot of each new position
        first = int(self.lengths[0])
        self._uniform = first if bool((self.lengths == first).all()) else None  # one offset: slice writes
        self._width = int(self.lengths.max()) + t  # slots attention reads: longest history + t
        return self.mask(t)

    def mask(self, t: int) -> torch.Tensor:
        """The 4-D mask of the step `begin` prepared: [B, 1, t, W], W = its `_width`."""
        w = self._width
        slots = torch.arange(w, device=self.device)
        hist = self.valid[:, :w] & (slots[None, :] < self.lengths[:, None])  # [B, W] real history
        # new position q of row r sees slots lengths[r] .. lengths[r] + q, except prompt padding
        lo = self.lengths[:, None, None]
        q = torch.arange(t, device=self.device)[None, :, None]
        s = slots[None, None, :]
        pad = (s < self.prompt_len) & ~self.valid[:, None, :w]
        new = (s >= lo) & (s <= lo + q) & ~pad  # [B, t, W]
        # a padding query sees itself only: a row of attention with no key at all would be NaN,
        # and NaN values would leak through the zero weights real queries give padding
        own = s == lo + q
        return (hist[:, None, :] | new | own)[:, None, :, :]

    def update(self, key: torch.Tensor, value: torch.Tensor, layer_idx: int, *args, **kwargs):
        """Write this step's keys/values ([B, H, t, D]) at each row's offset; return the layer's
        cache up to the step's width (what attention reads, masked by `mask`)."""
        if self.k[layer_idx] is None:
            b, h, _, d = key.shape
            self.k[layer_idx] = torch.zeros(b, h, self.capacity, d, dtype=key.dtype, device=key.device)
            self.v[layer_idx] = torch.zeros(b, h, self.capacity, d, dtype=value.dtype, device=value.device)
        kc, vc = self.k[layer_idx], self.v[layer_idx]
        t = key.shape[2]
        if self._uniform is not None:  # every row at one offset: a slice write
            start = self._uniform
            kc[:, :, start : start + t] = key
            vc[:, :, start : start + t] = value
        else:
            idx = self._index[:, None, :, None].expand(-1, key.shape[1], -1, key.shape[3])
            kc.scatter_(2, idx, key)
            vc.scatter_(2, idx, value)
        return kc[:, :, : self._width], vc[:, :, : self._width]

    def advance(self, accepted: torch.Tensor) -> None:
        """After a step: row r keeps its first `accepted[r]` new positions as history; the rest
        of the step's slots are overwritten by its next step."""
        slots = self._index
        keep = torch.arange(self._step, device=self.device)[None, :] < accepted[:, None]
        keep &= slots >= self.prompt_len  # prompt slots: the prompt mask says which are real
        rows = torch.arange(self.batch, device=self.device)[:, None].expand_as(slots)
        self.valid[rows[keep], slots[keep]] = True
        self.lengths += accepted

    def select(self, idx: torch.Tensor) -> None:
        """Keep only the rows `idx` (finished rows leave the batch)."""
        for cache in (self.k, self.v):
            for i, t in enumerate(cache):
                if t is not None:
                    cache[i] = t.index_select(0, idx)
        self.valid = self.valid.index_select(0, idx)
        self.lengths = self.lengths.index_select(0, idx)
        self.batch = len(idx)

    # what some transformers code paths may ask of a cache object
    def get_seq_length(self, layer_idx: int = 0) -> int:
        return int(self.lengths.max())

    def __len__(self) -> int:
        return self.n_layers
