"""Weight layout and row padding for the Linear layers of a CPU float32 decode.

Why: measured on this project's 2-core AVX-512 machines (torch 2.13, MKL 2024.2), the decode
step of a 0.5B model is ~70% Linear matmuls, and MKL's kernel for `x @ W.T` with a few rows
is much slower when W is stored row-major ([out, in], as transformers loads it) than when it
is stored column-major (W.T contiguous): all Linear layers of Qwen2.5-0.5B at 16 rows took
220 vs 148 ms, at 8 rows 198 vs 130 ms. At 16 rows and more the two layouts give bit-identical
results at every layer shape of that model (tested up to 700 rows, measured to 1,600), so the
change costs nothing in exactness for full batches and prefills. That is a property of a
shape, not of every shape, so each layer is converted only where a probe on this machine finds
the two layouts bit-identical at 16 to 64 rows and each row independent of the others
(`layout_is_exact`).

Below 16 rows MKL takes other paths whose rounding depends on the row count, so a row's
logits used to change as its batch emptied. `pad_rows` pads the input of every converted
Linear to 16 rows in that range: each row is then computed exactly as in a full batch (the
probe checked that a row of a 16..64-row product does not depend on the others), which makes a run's tail
agree bit for bit with its full-batch steps and costs no more than the row-major product of
4 rows did. One row is left alone: the single-row path is a matrix-vector product at memory
bandwidth (65 ms), 2.5x cheaper than a padded one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

PAD_ROWS = 16  # MKL's row count from which the two layouts agree and rows are independent
PROBE_ROWS = (16, 17, 24, 33, 48, 64)
_LAYER_MARK = "thinkcost_column_major"
_EXACT: dict[tuple[int, int, bool], bool] = {}


def layout_is_exact(
    out_features: int,
    in_features: int,
    bias: bool,
    weight: torch.Tensor | None = None,
    column: torch.Tensor | None = None,
) -> bool:
    """Whether this machine's GEMM gives bit-identical products for this Linear shape in both
    layouts at every probed row count (16 to 64), and each row of a product the same whatever
    the other rows (what padding a tail step to 16 rows relies on). Not true of every shape: at SmolLM2's down
    projection (1536 -> 576) MKL rounds differently between 17 and 48 rows, so such a layer
    stays row-major. Decided once per shape and process (the kernel path depends on the shape,
    not the values), on the layer's own weight and its column-major copy when given (no extra
    allocation: the vocabulary head is 0.5 GB), else on random ones."""
    key = (out_features, in_features, bias)
    if key not in _EXACT:
        g = torch.Generator().manual_seed(out_features * 7919 + in_features)
        if weight is None:
            weight = torch.randn(out_features, in_features, generator=g)
        if column is None:
            column = weight.t().contiguous().t()
        b = torch.randn(out_features, generator=g) if bias else None
        x = torch.randn(max(PROBE_ROWS), in_features, generator=g)
        outs = {n: F.linear(x[:n], column, b) for n in PROBE_ROWS}
        top = max(PROBE_ROWS)
        _EXACT[key] = all(
            torch.equal(F.linear(x[:n], weight, b), outs[n])  # the layouts agree
            and torch.equal(outs[n], outs[top][:n])  # and a row does not depend on the others
            for n in PROBE_ROWS
        )
    return _EXACT[key]


def wants_column_major(model: nn.Module) -> bool:
    """The layout helps where it was measured: float32 weights on the CPU."""
    p = next(model.parameters())
    return p.device.type == "cpu" and p.dtype == torch.float32


@torch.no_grad()
def column_major_(model: nn.Module) -> int:
    """Store the Linear weights of `model` column-major in place (same shape and values,
    `weight.T` contiguous) where `layout_is_exact` holds for their shape; returns how many
    were converted. Idempotent: a converted weight is no longer contiguous and is skipped, and
    a shape the probe rejected is not copied again. An LM head tied to the input embeddings is
    left as it is (the embedding lookup reads its rows). Restoring and quantizing write weights
    with `copy_`, which keeps the layout."""
    emb = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    tied = {emb.weight.data_ptr()} if emb is not None and hasattr(emb, "weight") else set()
    n = 0
    for mod in model.modules():
        if not isinstance(mod, nn.Linear):
            continue
        w, bias = mod.weight, mod.bias is not None
        if w.dim() != 2 or not w.is_contiguous() or w.data_ptr() in tied:
            continue
        if _EXACT.get((w.shape[0], w.shape[1], bias)) is False:
            continue
        col = w.data.t().contiguous().t()
        if not layout_is_exact(w.shape[0], w.shape[1], bias, w.data, col):
            continue
        w.data = col
        setattr(mod, _LAYER_MARK, True)
        n += 1
    return n


@torch.no_grad()
def row_major_(model: nn.Module) -> int:
    """Undo `column_major_` (benchmarks measure the layout before and after on one model)."""
    n = 0
    for mod in _converted(model):
        mod.weight.data = mod.weight.data.contiguous()
        setattr(mod, _LAYER_MARK, False)
        n += 1
    return n


def _converted(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, nn.Linear) and getattr(m, _LAYER_MARK, False)]


def is_column_major(model: nn.Module) -> bool:
    """Whether any Linear of `model` holds its weight column-major (what `pad_rows` pads)."""
    return bool(_converted(model))


@contextmanager
def pad_rows(model: nn.Module, rows: int = PAD_ROWS) -> Iterator[None]:
    """While inside: a column-major Linear called with 2..rows-1 rows computes them as `rows`
    rows (zeros below) and returns only the real ones. Hooks, removed on exit, so the model is
    unchanged for every other caller; row-major layers (`layout_is_exact` said no) are left
    alone, padding would only slow them down."""
    shapes: list[torch.Size] = []

    def pre(mod: nn.Module, args: tuple) -> tuple | None:
        x = args[0]
        n = x.numel() // x.shape[-1] if x.shape[-1] else 0
        if not 1 < n < rows:
            shapes.append(None)
            return None
        shapes.append(x.shape)
        flat = x.reshape(n, x.shape[-1])
        return (torch.cat([flat, flat.new_zeros(rows - n, x.shape[-1])]), *args[1:])

    def post(mod: nn.Module, args: tuple, out: torch.Tensor) -> torch.Tensor | None:
        shape = shapes.pop()
        if shape is None:
            return None
        n = shape.numel() // shape[-1]
        return out[:n].reshape(*shape[:-1], out.shape[-1])

    handles = []
    for mod in _converted(model):
        handles.append(mod.register_forward_pre_hook(pre))
        handles.append(mod.register_forward_hook(post))
    try:
        yield
    finally:
        for h in handles:
            h.remove()
