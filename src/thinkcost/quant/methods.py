"""Per-layer solvers by method name, all with one signature: (W, H, config) -> QuantizedLayer.

RTN ignores H when choosing codes but is scored with it, so every method's proxy loss
tr((W-Q) H (W-Q)^T) is comparable layer by layer."""

from __future__ import annotations

import time

import torch

from .babai import babai_quantize
from .gptq import GPTQConfig, QuantizedLayer, gptq_quantize, proxy_loss
from .rtn import quantize_rtn


def rtn_layer(W: torch.Tensor, H: torch.Tensor, cfg: GPTQConfig) -> QuantizedLayer:
    """RTN with scales rounded through fp16 (so it exports exactly), scored with H."""
    t = time.perf_counter()
    res = quantize_rtn(W, cfg.bits, cfg.group_size, cfg.sym)
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


SOLVERS = {"rtn": rtn_layer, "gptq": gptq_quantize, "babai": babai_quantize}
