"""Weight quantization as a Closest Vector Problem, solved by Babai's nearest-plane algorithm.

The lattice view (one output row w [in]; all rows run together, vectorized).
Write H = Rᵀ R with R UPPER triangular (R = the Cholesky factor `cholesky(H, upper=True)`,
i.e. Rᵀ is the usual lower factor). Then

    (w − q) H (w − q)ᵀ = ||R (w − q)ᵀ||².

With fixed per-column scales s and integer zero points, q_i = s_i (z_i − zero_i), so
R qᵀ = Σ_i c_i b_i with integers c_i = z_i − zero_i and basis vectors b_i = s_i · R[:, i]
(the columns of B = R · diag(s)). Minimizing the loss = finding the lattice point of B closest
to the target t = R wᵀ: a Closest Vector Problem.

Why this factor: B is upper triangular, so its Gram–Schmidt vectors (taken first to last) are
b_i* = s_i R_ii e_i — read off the diagonal, no orthogonalization needed — and the
coordinate of any vector along b_i* is its i-th entry divided by s_i R_ii.

Babai's nearest plane goes from the LAST basis vector to the FIRST: project the residual
target y onto b_i*, round to the nearest integer c_i, subtract c_i b_i from y. Here:
    c_i = round(y_i / (s_i R_ii)),   y −= c_i s_i R[:, i]      (only y_1..y_i change).
With clip=True the code z_i = c_i + zero_i is clamped into [0, 2^bits − 1] before the
subtraction: that is no longer exact Babai (the nearest plane may be off the box), but it is
the box-constrained greedy every real quantizer needs.

Error bound (clip=False). After step i, y_i is the rounding remainder, |y_i| ≤ s_i R_ii / 2,
and later steps (k < i) never touch entry i because b_k has zeros below row k. So the final
residual e = R (w − q)ᵀ has |e_i| ≤ s_i R_ii / 2 for every i, i.e. e = Σ ε_i b_i* with
|ε_i| ≤ 1/2, and

    (w − q) H (w − q)ᵀ = ||e||² ≤ (1/4) Σ_i s_i² R_ii²        (`babai_error_bound`)

R_ii² = Var(x_i | x_1..x_{i−1}) for x ~ N(0, H): the basis order changes the bound.

Equivalence with GPTQ (tested in tests/quant/test_babai.py). Entry i of y, when it is rounded,
divided by R_ii, is the best continuous value of weight i given the codes already fixed
(columns after i) and all columns before i free to compensate — exactly the error-updated
weight GPTQ rounds when it processes the columns in the opposite direction. Hence:

    babai_quantize(order = π)  ==  gptq_quantize(processing order = reversed π)

same codes, scales, zeros, g_idx, perm: Babai "natural" == GPTQ "reverse", Babai "reverse" ==
GPTQ "natural", and Babai "min-pivot" == GPTQ "min-pivot" (GPTQ walks that basis backwards by
definition); with any group mode, MSE search, and with or without clip (clip clamps the same
value in both). Only floating-point rounding differs: in float64 no code flips, in the tests or
on SmolLM2's 30 blocks, once exact ties are snapped (`gptq.round_codes`: grid-aligned GGUF
weights put a group's largest |w| exactly on −7.5 steps, which GPTQ sees exactly and Babai an
ulp off). A float32 sweep flips the odd near-tie code between the two; use sweep_dtype float64
where bit equality matters.

Blocked. Flipped into decision order, R becomes an upper factor V and the residual rows are fed
forward exactly like GPTQ's weights (`gptq_sweep` with nearest_plane=True): rank-1 updates only
inside an inner block, matmuls for the rest. Only the Cholesky factor is needed, no inverse.

Orders and groups follow GPTQ's rules with "processing order" = the order codes are decided,
i.e. the basis order reversed: `QuantizedLayer.perm` is that decision order (basis[::-1]),
dynamic groups are consecutive decided columns (so contiguous basis indices), and a dynamic
group's parameters come from the current best continuous values of its columns, obtained from
the residual by one small triangular solve R_GG x_G = y_G.
"""

from __future__ import annotations

import time

import torch

from thinkcost.quant.gptq import (
    ORDERS,
    SWEEP_DTYPES,
    GPTQConfig,
    QuantizedLayer,
    column_order,
    finish_layer,
    gptq_sweep,
    group_plan,
    prepare_problem,
)
from thinkcost.quant.methods import QUANTIZERS


@QUANTIZERS.register(
    "babai",
    form="babai-w{bits}g{group}[-natural|-act|-reverse|-min-pivot][-asym]",
    calibration=True,
    orders=ORDERS,
    summary="Babai's nearest plane in the lattice of H's Cholesky factor",
)
@torch.no_grad()
def babai_quantize(W: torch.Tensor, H: torch.Tensor, cfg: GPTQConfig) -> QuantizedLayer:
    """Quantize W [out, in] by Babai's nearest plane in the lattice of H's Cholesky factor."""
    t0 = time.perf_counter()
    W_orig = W
    W, H, H_raw = prepare_problem(W, H, cfg)
    basis = column_order(H, cfg.order)  # basis[i] = original column of basis vector b_i
    proc = basis.flip(0)  # nearest plane decides the last basis vector first
    gid_proc, scales, zeros, dynamic = group_plan(W, proc, cfg)

    if cfg.order != "natural":  # natural: the basis is the identity, no permuted copies
        H, W = H[basis][:, basis], W[:, basis]
    R, info = torch.linalg.cholesky_ex(H, upper=True)  # H = Rᵀ R, R upper
    if int(info) != 0:
        raise ValueError("H is not positive definite after damping; increase damp")
    dt = SWEEP_DTYPES[cfg.sweep_dtype]
    # decision order p = n-1-i: flipped, R becomes V = R[::-1, ::-1]ᵀ (upper), and the residual
    # y = R wᵀ (all rows at once) becomes the rows Yt[p] = y[:, n-1-p]; the step y −= c_i b_i is
    # then Yt[k] −= V[p, k]·(s·c_p) for k > p, the same feed-forward as GPTQ's (gptq_sweep)
    V = R.flip(0).flip(1).T.contiguous().to(dt)
    Yt = (W @ R.T).flip(1).T.to(dt).contiguous()  # [n, out]
    Z, S, Zr = gptq_sweep(
        Yt, V, gid_proc, scales.T.to(dt).contiguous(), zeros.T.to(dt).contiguous(), dynamic, cfg, True
    )
    scales.copy_(S.T)
    zeros.copy_(Zr.T)
    return finish_layer(Z.T.double(), proc, gid_proc, scales, zeros, W_orig, H_raw, cfg, t0)


@torch.no_grad()
def babai_error_bound(H: torch.Tensor, layer: QuantizedLayer, damp: float = 0.01) -> torch.Tensor:
    """Per-row bound (1/4)·Σ_i s_i² R_ii² on the loss of an unclipped Babai (or GPTQ) layer.

    Valid for any layer made by sequential nearest rounding with error feedback and clip=False:
    Babai, or GPTQ whose processing order `layer.perm` is the reversed basis. R is the upper
    Cholesky factor (H = Rᵀ R) of H prepared as the quantizer did it (dead columns, `damp`),
    in basis order; s_i is the scale of column i. It bounds the loss in that damped H, hence
    also `proxy_loss` (undamped H ⪯ damped H). Returns float64 [out].
    """
    n = layer.codes.shape[1]
    cfg = GPTQConfig(bits=layer.bits, group_size=layer.group_size, sym=layer.sym, damp=damp)
    _, Hd, _ = prepare_problem(torch.zeros(1, n, dtype=torch.float64, device=H.device), H, cfg)
    basis = layer.perm.flip(0).to(H.device)
    R = torch.linalg.cholesky(Hd[basis][:, basis], upper=True)
    s = layer.scales.double().to(H.device)[:, layer.g_idx.long()][:, basis]  # [out, n] basis order
    return 0.25 * (s**2 * torch.diagonal(R) ** 2).sum(dim=1)
