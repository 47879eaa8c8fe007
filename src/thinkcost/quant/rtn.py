"""Round-to-nearest (RTN) weight quantization: the baseline every smarter quantizer must beat.

Convention (the one of IST-DASLab/gptq `quant.py`, so GPTQ checkpoints store our codes as is):
codes are unsigned integers in [0, maxq] with maxq = 2^bits - 1, and every group of weights
has a float `scale` and an integer `zero`:

    q       = clamp(round(w / scale) + zero, 0, maxq)
    dequant = scale * (q - zero)

- symmetric:  xmax = max|w| over the group, xmin = -xmax, scale = (xmax - xmin) / maxq,
  zero = 2^(bits-1). The grid is [-2^(bits-1), 2^(bits-1) - 1] * scale; the two extreme
  weights land half a step inside it, so no weight is clipped by more than scale/2.
  (GPTQ keeps xmin = 0 when a group has no negative weight; we always mirror, so the grid is
  the same for every group and negative weights never fall off it.)
- asymmetric: xmin = min(w, 0), xmax = max(w, 0), scale = (xmax - xmin) / maxq,
  zero = round(-xmin / scale), so 0 is exactly representable.
- an all-zero group gets scale 1, so its codes are `zero` and it dequantizes to exact zeros.

round() is round-half-to-even (torch and numpy agree), and everything is float32.
A group is `group_size` consecutive input columns of one output row; group_size 0 means one
group per row (per-channel).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from thinkcost.quant.bits import check_bits
from thinkcost.quant.methods import QUANTIZERS


@dataclass(frozen=True)
class QuantResult:
    """Everything a checkpoint writer or an error analysis needs from one quantized matrix."""

    codes: torch.Tensor  # [out, in] int32 in [0, 2^bits - 1]
    scales: torch.Tensor  # [out, n_groups] float32
    zeros: torch.Tensor  # [out, n_groups] int32
    dequant: torch.Tensor  # [out, in] float32, scale * (codes - zero)
    bits: int
    group_size: int  # 0 = per output channel
    sym: bool


def check_rtn_args(bits: int, group_size: int, in_features: int) -> None:
    """Reject a bit width or group size before any work, with the sizes in the message."""
    check_bits(bits)
    if group_size < 0:
        raise ValueError(f"group_size must be >= 0 (0 = per channel), got {group_size}")
    if group_size and in_features % group_size:
        raise ValueError(f"in_features={in_features} is not divisible by group_size={group_size}")


@QUANTIZERS.register(
    "rtn",
    form="rtn-w{bits}g{group}[-asym][-head]",
    calibration=False,
    summary="round to nearest, per group; no calibration",
)
def quantize_rtn(w: torch.Tensor, bits: int, group_size: int, sym: bool = True) -> QuantResult:
    """Quantize a [out, in] weight to `bits`-bit codes per group: the no-calibration baseline."""
    if w.dim() != 2:
        raise ValueError(f"expected a 2-D weight [out_features, in_features], got shape {tuple(w.shape)}")
    out_f, in_f = w.shape
    check_rtn_args(bits, group_size, in_f)
    g = group_size or in_f
    maxq = 2**bits - 1

    x = w.detach().float().reshape(out_f, in_f // g, g)  # [out, n_groups, g]
    zero_t = torch.zeros((), dtype=x.dtype, device=x.device)
    xmin = torch.minimum(x.amin(dim=2), zero_t)  # [out, n_groups]
    xmax = torch.maximum(x.amax(dim=2), zero_t)
    if sym:
        xmax = torch.maximum(xmax, -xmin)
        xmin = -xmax
    scale = (xmax - xmin) / maxq
    scale = torch.where(scale == 0, torch.ones_like(scale), scale)
    zero = torch.full_like(scale, 2 ** (bits - 1)) if sym else torch.round(-xmin / scale)

    s, z = scale.unsqueeze(2), zero.unsqueeze(2)  # [out, n_groups, 1]
    q = torch.clamp(torch.round(x / s) + z, 0, maxq)
    dq = s * (q - z)
    return QuantResult(
        codes=q.reshape(out_f, in_f).to(torch.int32),
        scales=scale,
        zeros=zero.to(torch.int32),
        dequant=dq.reshape(out_f, in_f),
        bits=bits,
        group_size=group_size,
        sym=sym,
    )
