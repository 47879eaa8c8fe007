"""The student of quantization-aware distillation: every quantized Linear of a variant as a
fake-quantized layer on that variant's own grid (codes, scales, zero points, groups).

Forward, per weight w of column i and row j, with g = g_idx[i]:

    q = clamp(round(w / s[j, g]) + z[j, g], 0, maxq)        maxq = 2^bits - 1
    w_q = s[j, g] * (q - z[j, g])

the formula of rtn.py and gptq.py, computed elementwise in the same order, so a student whose
latent weight is the variant's dequantized weight reproduces the variant bit for bit (dq / s
lands within float error of an integer, and round() takes it back). Backward is the
straight-through estimator: round() passes its gradient unchanged, clamp() stops it outside the
grid, so dL/dw = dL/dw_q where w / s + z lies in [0, maxq] and 0 elsewhere. With learnable
scales the same rule gives LSQ's scale gradient, (q - z) - w / s inside the grid and
(q - z) at a clamped bound.

LoRA mode keeps the latent weight frozen and learns a low-rank delta B @ A *inside* the fake
quantization (w = w0 + B A * alpha / r, then quantized), so merging the adapter and re-rounding
on the grid reproduces the trained student exactly; an adapter added after the quantized layer
(PEFT's layout) would mostly round away when merged.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass
class LayerGrid:
    """One quantized Linear of a variant, in the form a GPTQ checkpoint stores it."""

    codes: torch.Tensor  # [out, in] int32 in [0, 2^bits - 1]
    scales: torch.Tensor  # [out, n_groups] float32
    zeros: torch.Tensor  # [out, n_groups] int32
    g_idx: torch.Tensor  # [in] int32, group of each input column
    bits: int

    def dequant(self) -> torch.Tensor:
        """[out, in] float32 weight: scales[:, g_idx] * (codes - zeros[:, g_idx])."""
        gi = self.g_idx.long()
        return self.scales.float()[:, gi] * (self.codes - self.zeros[:, gi]).float()


class _FakeQuant(torch.autograd.Function):
    """Fake quantization with straight-through gradients, as one op: it saves only its inputs
    (no [out, in] intermediate), which keeps a 0.5B student's backward within a few GB.

    Inputs are grouped views, w [out, G, g] and s, z [out, G, 1]. Backward (STE, LSQ):
    dw = grad where round(w/s) + z lies in [0, maxq], else 0;
    ds = sum over the group of grad * ((q - z) - w/s inside the grid, (q - z) at a bound)."""

    @staticmethod
    def forward(ctx, w, s, z, maxq: int):
        q = torch.clamp(torch.round(w / s) + z, 0, maxq)
        ctx.save_for_backward(w, s, z)
        ctx.maxq = maxq
        return s * (q - z)

    @staticmethod
    def backward(ctx, grad):
        w, s, z = ctx.saved_tensors
        r = torch.round(w / s) + z
        inside = (r >= 0) & (r <= ctx.maxq)
        gw = grad * inside if ctx.needs_input_grad[0] else None
        gs = None
        if ctx.needs_input_grad[1]:
            q = torch.clamp(r, 0, ctx.maxq)
            gs = (grad * (q - z - torch.where(inside, w / s, torch.zeros_like(w)))).sum(-1, keepdim=True)
        return gw, gs, None, None


def _contiguous(g_idx: torch.Tensor, n_groups: int) -> int:
    """Group size when group g holds columns [g*size, (g+1)*size), else 0."""
    n = g_idx.numel()
    if n % n_groups:
        return 0
    size = n // n_groups
    return size if torch.equal(g_idx, torch.arange(n, device=g_idx.device) // size) else 0


def fake_quant(
    w: torch.Tensor, scales: torch.Tensor, zeros: torch.Tensor, g_idx: torch.Tensor, maxq: int
) -> torch.Tensor:
    """Quantize-dequantize w [out, in] on the grid (scales, zeros [out, G], g_idx [in]) with
    straight-through gradients; act-order groupings are gathered into contiguous ones first."""
    out_f, in_f = w.shape
    n_groups = scales.shape[1]
    size = _contiguous(g_idx, n_groups)
    if size:
        wq = _FakeQuant.apply(w.reshape(out_f, n_groups, size), scales[..., None], zeros[..., None], maxq)
        return wq.reshape(out_f, in_f)
    perm = torch.argsort(g_idx, stable=True)  # columns sorted by group; every group the same size
    size = in_f // n_groups
    wp = w[:, perm].reshape(out_f, n_groups, size)
    wq = _FakeQuant.apply(wp, scales[..., None], zeros[..., None], maxq).reshape(out_f, in_f)
    return wq[:, torch.argsort(perm)]


def grid_codes(w: torch.Tensor, s: torch.Tensor, z: torch.Tensor, maxq: int) -> torch.Tensor:
    """Integer codes of `w` on grid (s, z) (full [out, in] scale/zero maps): what export stores."""
    return torch.clamp(torch.round(w / s) + z, 0, maxq).to(torch.int32)


class FakeQuantLinear(nn.Module):
    """A Linear whose weight is fake-quantized on a fixed grid; see the module docstring."""

    def __init__(
        self,
        grid: LayerGrid,
        bias: torch.Tensor | None,
        *,
        learn_scales: bool = False,
        lora_rank: int = 0,
        lora_alpha: float | None = None,
        seed: int = 0,
    ) -> None:
        super().__init__()
        out_f, in_f = grid.codes.shape
        self.in_features, self.out_features, self.bits = in_f, out_f, grid.bits
        self.maxq = 2**grid.bits - 1
        self.weight = nn.Parameter(grid.dequant(), requires_grad=lora_rank == 0)  # latent weight
        scales = grid.scales.detach().float().clone()
        self.scales = nn.Parameter(scales, requires_grad=learn_scales)
        self.register_buffer("zeros", grid.zeros.detach().float().clone())
        self.register_buffer("g_idx", grid.g_idx.detach().to(torch.long).clone())
        self.bias = None if bias is None else nn.Parameter(bias.detach().float().clone(), requires_grad=False)
        self.lora_rank = lora_rank
        if lora_rank:
            gen = torch.Generator().manual_seed(seed)
            # A ~ Kaiming-uniform-like, B = 0: the adapter starts as an exact no-op
            bound = 1.0 / in_f**0.5
            self.lora_A = nn.Parameter((torch.rand(lora_rank, in_f, generator=gen) * 2 - 1) * bound)
            self.lora_B = nn.Parameter(torch.zeros(out_f, lora_rank))
            self.lora_scale = (lora_alpha if lora_alpha is not None else lora_rank) / lora_rank

    def latent(self) -> torch.Tensor:
        """The weight before quantization: the latent weight, plus the adapter in LoRA mode."""
        if self.lora_rank:
            return self.weight + (self.lora_B @ self.lora_A) * self.lora_scale
        return self.weight

    def quantized_weight(self) -> torch.Tensor:
        return fake_quant(self.latent(), self.scales, self.zeros, self.g_idx, self.maxq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.quantized_weight(), self.bias)

    @torch.no_grad()
    def merge_(self) -> None:
        """Fold the adapter into the latent weight (LoRA mode); the forward is unchanged up to
        float rounding of the sum, which re-rounding on the grid absorbs."""
        if self.lora_rank:
            self.weight.copy_(self.latent())
            self.lora_B.zero_()

    @torch.no_grad()
    def to_grid(self) -> LayerGrid:
        """The layer as a GPTQ checkpoint stores it: scales rounded to float16 (what the file
        holds), codes re-rounded on that grid. Call `round_scales_fp16_` first for a student
        whose forward then equals the checkpoint's exactly."""
        s16 = self.scales.detach().half().float()
        s, z = s16[:, self.g_idx], self.zeros[:, self.g_idx]
        return LayerGrid(
            codes=grid_codes(self.latent(), s, z, self.maxq),
            scales=s16,
            zeros=self.zeros.to(torch.int32),
            g_idx=self.g_idx.to(torch.int32),
            bits=self.bits,
        )

    @torch.no_grad()
    def round_scales_fp16_(self) -> None:
        """Put the scales on float16 values, as the exported checkpoint stores them."""
        self.scales.copy_(self.scales.half().float())

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, bits={self.bits}, lora_rank={self.lora_rank}"
