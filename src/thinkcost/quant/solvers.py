"""Per-layer solvers by method name, for the jobs that quantize one layer at a time with its
calibration Hessian (`thinkcost quantize`, the quantizer benchmarks): a calibration method's own
solve, or a weight-only method's grid scored with H. Kept apart from the registry
(`quant.methods`) because it needs the GPTQ layer type, which registers itself there."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from thinkcost.errors import UserError
from thinkcost.quant.methods import QUANTIZERS, method_names, quantizer_meta

LayerSolver = Callable[..., Any]  # (W [out, in], H [in, in], cfg: GPTQConfig) -> QuantizedLayer


def layer_solver(method: str) -> LayerSolver:
    """Method `method` as (W, H, cfg) -> QuantizedLayer, what `thinkcost quantize` logs and exports:
    a calibration method as registered, a weight-only one through `grid_layer`."""
    solve = QUANTIZERS.get(method)
    if quantizer_meta(method).calibration:
        return solve
    return functools.partial(grid_layer, solve, method)


def grid_layer(solve: Callable[..., Any], method: str, W, H, cfg) -> Any:
    """A weight-only method's grid, as a GPTQ checkpoint stores it, scored with H.

    The checkpoint holds fp16 scales, so the scales are rounded to fp16 first and every weight
    is rounded to the nearest level of that grid: the codes then export exactly. For RTN these
    are its own codes but where the fp16 rounding moves a half-way point. The method's result
    must carry the grid (`scales`, `zeros` per group, as rtn.QuantResult does)."""
    import time

    import torch

    from .gptq import QuantizedLayer, proxy_loss

    t = time.perf_counter()
    res = solve(W, cfg.bits, cfg.group_size, cfg.sym)
    if not (hasattr(res, "scales") and hasattr(res, "zeros")):
        raise UserError(
            f"quantizer {method!r} gives no scales and zeros per group: it has no GPTQ checkpoint form"
        )
    scales = res.scales.half().float()
    n_in = W.shape[1]
    g = cfg.group_size or n_in
    g_idx = torch.arange(n_in, dtype=torch.int32) // g
    maxq = 2**cfg.bits - 1
    s_full, z_full = scales[:, g_idx.long()], res.zeros[:, g_idx.long()]
    codes = torch.clamp(torch.round(W / s_full) + z_full, 0, maxq).to(torch.int32)
    dequant = s_full * (codes - z_full)
    return QuantizedLayer(
        codes=codes,
        scales=scales,
        zeros=res.zeros.to(torch.int32),
        g_idx=g_idx,
        dequant=dequant,
        perm=torch.arange(n_in),
        proxy_loss=proxy_loss(W, dequant, H),
        bits=cfg.bits,
        group_size=cfg.group_size,
        sym=cfg.sym,
        seconds=time.perf_counter() - t,
    )


class _Solvers(Mapping[str, LayerSolver]):
    """`SOLVERS[name]`: the registry seen as name -> layer solver (for scripts and tests)."""

    def __getitem__(self, name: str) -> LayerSolver:
        if name not in QUANTIZERS:
            raise KeyError(name)
        return layer_solver(name)

    def __iter__(self) -> Iterator[str]:
        return iter(method_names())

    def __len__(self) -> int:
        return len(method_names())


SOLVERS: Mapping[str, LayerSolver] = _Solvers()
