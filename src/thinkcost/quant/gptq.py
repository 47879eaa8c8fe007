"""GPTQ: quantize a Linear weight column by column, feeding each rounding error forward.

For one layer with calibration inputs X [n, in] the loss of replacing W [out, in] by Q is

    ||X Wᵀ − X Qᵀ||² · 2/n = tr((W − Q) H (W − Q)ᵀ),   H = 2 XᵀX / n     (`proxy_loss`)

and the rows of W are independent given H, so every row is solved at once (vectorized).
The algorithm (Frantar et al. 2022; reference code IST-DASLab/gptq `gptq.py`):

 1. dead columns (diag H = 0, an input that is always 0) get H_ii = 1 and w_i = 0;
    damping adds `damp · mean(diag H)` to the diagonal so H is safely positive definite.
 2. permute the columns into the processing order (`order`: natural, act-order = decreasing
    diag H, reverse, or min-pivot = the greedy pivoted-Cholesky basis walked from its end),
    then U = upper Cholesky of H⁻¹ (H⁻¹ = Uᵀ U). Row j of U holds the optimal (OBS)
    correction of the later columns when column j is fixed, and 1/U_jj² = Var(x_j | columns
    after j): the loss of a unit error on j.
 3. for each column j: q_j = quant(w_j); err = (w_j − q_j) / U_jj; w_{j+1:} −= err · U_{j, j+1:}.
 4. lazy blocks: inside a block of `block_size` columns the updates run column by column,
    rank-1 only within an inner block of INNER_BLOCK (16) columns, then as one matmul to the
    rest of the block; the columns after the block receive the block's summed update as one
    matmul. Same arithmetic, far fewer passes over W (`gptq_sweep`, on Wᵀ so that a column
    is a contiguous row).

Quantization grid (the RTN convention of `rtn.py`): codes z in [0, 2^bits − 1], an integer
zero point per group, q = scale · (z − zero). Scales are rounded to float16 *before* they are
used, so a GPTQ checkpoint that stores fp16 scales reproduces `dequant` bit for bit.

Precision: H is accumulated as float32 Gram products summed into a float64 sum (scaled once), the
damped H is factored and inverted in float64 (its condition number reaches 1e5..1e6 on real
layers, too much for a float32 Cholesky), and the column sweep runs in `cfg.sweep_dtype`
(float32 by default: the sweep only ever adds O(1) corrections to O(1) weights; the tests check
float32 codes equal float64 ones on well-conditioned H and the proxy loss within 1e-6 relative
on ill-conditioned H. Its speed against float64 on real layers is not measured yet).

Ties: torch.round rounds x.5 to even. Weights that come from a GGUF file lie on a coarse
binary grid, so with the symmetric grid the largest weight of a group often sits EXACTLY on
±(2^(bits-1) − ½)·scale. GPTQ sees that value exactly; Babai recomputes it as (w·R)/R and may
land one ulp off, which flips the code. `round_codes` therefore snaps values within a few ulps
of a half-integer onto it before rounding, so every method breaks such ties the same way.

Groups of `group_size` input columns share a scale and zero point:
- group_size 0: one group per output row, from the (dead-zeroed) original W, fixed up front.
- static_groups: groups are consecutive ORIGINAL columns (g_idx[i] = i // group_size), their
  parameters computed up front from the original W, whatever the processing order.
- otherwise (dynamic, as in the reference): groups are consecutive columns in PROCESSING order
  (g_idx[perm[j]] = j // group_size), and a group's parameters are computed from the current,
  error-updated weights when its first column is reached.

`babai.py` shows the same loop is Babai's nearest-plane algorithm run on the reversed order.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import torch

from thinkcost.quant.bits import check_bits
from thinkcost.quant.methods import QUANTIZERS

ORDERS = ("natural", "act-order", "reverse", "min-pivot")
MSE_SHRINKS = tuple(1 - i / 100 for i in range(21))  # range shrink factors 1.00, 0.99, ..., 0.80
MSE_NORM = 2.4  # error exponent of the clipping search, as in the reference `find_params`
FP16_MIN, FP16_MAX = 2.0**-24, 65504.0  # smallest positive (subnormal) and largest float16
SWEEP_DTYPES = {"float32": torch.float32, "float64": torch.float64}
# distance (in grid steps) from x.5 below which a value counts as an exact tie: far above the
# rounding noise of the dtype (~1e-15 resp. ~1e-6 at |x| <= 2^8), far below any real gap
TIE_TOL = {torch.float64: 2.0**-36, torch.float32: 2.0**-20}
INNER_BLOCK = 16  # columns updated rank-1 at a time inside a lazy block; the rest goes by matmul


@dataclass(frozen=True)
class GPTQConfig:
    """Every knob of GPTQ (and Babai) in one validated place; errors name the field and range."""

    bits: int = 4  # quant.bits.FAKE_QUANT_BITS (2..8); codes in [0, 2^bits - 1]
    group_size: int = 128  # 0 = one group per output row (per channel); else must divide in_features
    sym: bool = True  # symmetric grid (zero = 2^(bits-1)) or asymmetric (0 exactly representable)
    order: str = "natural"  # natural | act-order | reverse | min-pivot (see column_order)
    static_groups: bool = False  # groups on original columns, parameters from the original W
    block_size: int = 128  # lazy-update block; changes speed only, never the result
    damp: float = 0.01  # fraction of mean(diag H) added to the diagonal
    mse: bool = False  # search range shrink factors for the lowest |w - q|^2.4 error per group
    clip: bool = True  # clamp codes into [0, 2^bits - 1]; False = unbounded grid (theory tests)
    sweep_dtype: str = "float32"  # precision of the column sweep: float32 | float64 (reference)

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if not isinstance(self.group_size, int) or self.group_size < 0:
            raise ValueError(f"group_size must be an integer >= 0 (0 = per channel), got {self.group_size!r}")
        if self.order not in ORDERS:
            raise ValueError(f"order must be one of {', '.join(ORDERS)}; got {self.order!r}")
        if self.sweep_dtype not in SWEEP_DTYPES:
            raise ValueError(
                f"sweep_dtype must be one of {', '.join(SWEEP_DTYPES)}; got {self.sweep_dtype!r}"
            )
        if not isinstance(self.block_size, int) or self.block_size < 1:
            raise ValueError(f"block_size must be an integer >= 1, got {self.block_size!r}")
        if not (isinstance(self.damp, (int, float)) and math.isfinite(self.damp) and self.damp >= 0):
            raise ValueError(
                f"damp must be a finite number >= 0 (fraction of mean diag H), got {self.damp!r}"
            )


@dataclass
class QuantizedLayer:
    """A quantized weight plus everything a checkpoint writer or an error analysis needs."""

    codes: torch.Tensor  # [out, in] int32, original column order
    scales: torch.Tensor  # [out, n_groups] float32, exactly representable in float16
    zeros: torch.Tensor  # [out, n_groups] int32
    g_idx: torch.Tensor  # [in] int32, group of each input column (original order)
    dequant: torch.Tensor  # [out, in] float32 = scales[:, g_idx] * (codes - zeros[:, g_idx])
    perm: torch.Tensor  # [in] int64, processing order: perm[j] = original column handled j-th
    proxy_loss: float  # tr((W - Q) H (W - Q)ᵀ) with the undamped H
    bits: int
    group_size: int
    sym: bool
    seconds: float


class HessianAccumulator:
    """Running H = 2·XᵀX/n over every input row a layer sees, fed batch by batch from a hook.

    Each batch's XᵀX is a float32 product (`gram_dtype`; half the time of float64, and a batch
    sum of a few thousand rows loses ~1e-6 relative), added block by block straight into a
    float64 sum; `H` scales it once when read. Rescaling a running mean on every batch instead
    cost four passes over an [in, in] float64 matrix per batch (0.2 s per batch for the
    4864-wide down projection) for no precision a float64 sum lacks."""

    def __init__(
        self,
        in_features: int,
        dtype: torch.dtype = torch.float64,
        device: str | None = None,
        gram_dtype: torch.dtype = torch.float32,
    ):
        self.in_features = in_features
        self._sum = torch.zeros(in_features, in_features, dtype=dtype, device=device)  # Σ XᵀX
        self._H: torch.Tensor | None = None
        self.gram_dtype = gram_dtype
        self.nsamples = 0

    @property
    def H(self) -> torch.Tensor:
        """2·XᵀX/n of every row added so far ([in, in], float64); computed once per change."""
        if self._H is None:
            self._H = self._sum * (2 / max(self.nsamples, 1))
        return self._H

    def add_batch(self, x: torch.Tensor) -> None:
        """Add the rows of x [..., in_features] (a batch with NaN/inf is refused, H unchanged)."""
        if x.shape[-1] != self.in_features:
            raise ValueError(f"expected inputs [..., {self.in_features}], got shape {tuple(x.shape)}")
        x = x.reshape(-1, self.in_features).to(device=self._sum.device, dtype=self.gram_dtype)  # [rows, in]
        if x.shape[0] == 0:
            return
        if not torch.isfinite(x).all():  # checked on the rows: a fraction of the [in, in] update
            raise ValueError("NaN in H: the batch has NaN/inf activations (H left unchanged)")
        gram(x, into=self._sum)
        self.nsamples += x.shape[0]
        self._H = None


def gram(x: torch.Tensor, block: int = 1024, into: torch.Tensor | None = None) -> torch.Tensor:
    """xᵀx [in, in] computing only the blocks on and above the diagonal (BLAS has syrk, torch
    has not): with k column blocks that is (k+1)/2k of the full product, 60% for in = 4864.
    With `into`, the product is added to it in place (any float dtype) and it is returned."""
    n = x.shape[1]
    if n <= block:
        return x.T @ x if into is None else into.add_(x.T @ x)
    k = -(-n // block)
    b = -(-n // k)  # k equal blocks
    out = x.new_empty(n, n) if into is None else into
    for i in range(0, n, b):
        part = x[:, i : i + b].T @ x[:, i:]  # rows i..i+b, columns i..n
        if into is None:
            out[i : i + b, i:] = part
            out[i + b :, i : i + b] = part[:, b:].T
        else:
            out[i : i + b, i:] += part
            out[i + b :, i : i + b] += part[:, b:].T
    return out


def proxy_loss(W: torch.Tensor, Q: torch.Tensor, H: torch.Tensor) -> float:
    """tr((W − Q) H (W − Q)ᵀ) in float64: the layer-output error GPTQ minimizes."""
    E = (W.double() - Q.double()).to(H.device)  # [out, in]
    return float(((E @ H.double()) * E).sum())


def round_scale_fp16(scale: torch.Tensor) -> torch.Tensor:
    """Round scales to float16 (clamped into its range) so fp16 checkpoints reproduce our codes."""
    return scale.clamp(FP16_MIN, FP16_MAX).half().to(scale.dtype)


def round_codes(v: torch.Tensor) -> torch.Tensor:
    """torch.round (half to even), with values within TIE_TOL of x.5 snapped onto x.5 first.

    A real tie (a grid-aligned weight on an exact half step) is then broken the same way
    whether its value was computed exactly (GPTQ: the original weight) or with an ulp of
    noise (Babai: (w·R)/R). The check is four small ops; the snap itself runs only on a tie."""
    r = torch.round(v)
    tol = TIE_TOL.get(v.dtype, 0.0)
    near = (v - r).abs_() > 0.5 - tol
    if bool(near.any()):
        h = torch.floor(v) + 0.5
        r = torch.round(torch.where(near, h, v))
    return r


def quantize(x: torch.Tensor, scale: torch.Tensor, zero: torch.Tensor, maxq: int, clip: bool) -> torch.Tensor:
    """Integer codes (as floats) of x on the grid scale·(z − zero); clamped to [0, maxq] if clip."""
    z = round_codes(x / scale) + zero
    return z.clamp(0, maxq) if clip else z


def _grid(xmin: torch.Tensor, xmax: torch.Tensor, bits: int, sym: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero point covering [xmin, xmax] (the RTN rule), scale rounded to fp16."""
    maxq = 2**bits - 1
    scale = (xmax - xmin) / maxq
    scale = round_scale_fp16(torch.where(scale == 0, torch.ones_like(scale), scale))
    zero = torch.full_like(scale, 2 ** (bits - 1)) if sym else round_codes(-xmin / scale).clamp(0, maxq)
    return scale, zero


def find_params(
    x: torch.Tensor, bits: int, sym: bool, mse: bool = False, clip: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Scale and zero of each row of a group x [rows, g]: the RTN range, optionally MSE-shrunk."""
    zero_t = x.new_zeros(())
    xmin = torch.minimum(x.amin(dim=1), zero_t)  # [rows]
    xmax = torch.maximum(x.amax(dim=1), zero_t)
    if sym:
        xmax = torch.maximum(xmax, -xmin)
        xmin = -xmax
    scale, zero = _grid(xmin, xmax, bits, sym)
    if mse:  # shrink the range by p and keep the p with the lowest |w - q|^2.4 (ties keep p = 1)
        maxq = 2**bits - 1
        best = torch.full_like(scale, math.inf)
        for p in MSE_SHRINKS:
            s, z = _grid(p * xmin, p * xmax, bits, sym)
            q = s[:, None] * (quantize(x, s[:, None], z[:, None], maxq, clip) - z[:, None])
            err = (x - q).abs().pow(MSE_NORM).sum(dim=1)
            better = err < best
            best = torch.where(better, err, best)
            scale, zero = torch.where(better, s, scale), torch.where(better, z, zero)
    return scale, zero


def column_order(H: torch.Tensor, order: str) -> torch.Tensor:
    """The column sequence an order name stands for: perm [in], perm[j] = j-th column.

    GPTQ processes natural / act-order / reverse as given. min-pivot is a lattice-basis order
    (the greedy pivoted-Cholesky sequence, see `min_pivot_order`); Babai uses every sequence as
    its basis, and GPTQ walks the min-pivot basis from its last pivot to its first.
    """
    n = H.shape[0]
    if order == "natural":
        return torch.arange(n, device=H.device)
    if order == "reverse":
        return torch.arange(n - 1, -1, -1, device=H.device)
    if order == "act-order":  # largest diag(H) (largest input energy) first, ties by index
        return torch.argsort(torch.diagonal(H), descending=True, stable=True)
    if order == "min-pivot":
        return min_pivot_order(H)
    raise ValueError(f"order must be one of {', '.join(ORDERS)}; got {order!r}")


def min_pivot_order(H: torch.Tensor) -> torch.Tensor:
    """Greedy order: next, the column with the smallest variance given the ones already chosen.

    With x ~ N(0, H), the Schur complement d_j = H_jj − H_jC H_CC⁻¹ H_Cj = Var(x_j | x_C) is
    what is left of column j once the chosen columns C are known; it is the square of the
    pivot r_jj a Cholesky factorization H = Rᵀ R would get with j placed right after C. So this
    is pivoted Cholesky taking the *smallest* pivot each step (O(in³), a matvec per step).

    Lattice intuition (babai.py): with the columns in this order as a lattice basis, the
    Gram–Schmidt lengths are s_j·r_jj, and Babai's nearest-plane error is at most
    (1/4)·Σ s_j² r_jj². The product Π r_jj² = det H is the same for every order, but the sum is
    not: for two columns it is a + b − c²/(first diagonal), smallest when the smaller diagonal
    goes first. Taking the smallest pivot each step greedily minimizes that bound (for equal
    scales), and leaves the long Gram–Schmidt vectors at the end of the basis, where nearest
    plane decides first. GPTQ is nearest plane on its processing order reversed, so GPTQ's
    min-pivot processes this sequence from the END: GPTQ weighs the error of the column it
    handles k-th by Var(x_k | columns handled after k), and walking backwards makes those
    weights exactly the greedy minimal pivots. Processing it from the front instead measured
    worse than natural order, at times worse than RTN.
    """
    n = H.shape[0]
    d = torch.diagonal(H).clone()  # Var(x_j | chosen), updated as columns are chosen
    Rt = H.new_zeros(n, n)  # row k = k-th row of the pivoted factor R (in original column indices)
    chosen = torch.zeros(n, dtype=torch.bool, device=H.device)
    perm = torch.empty(n, dtype=torch.long, device=H.device)
    for k in range(n):
        p = int(torch.argmin(d.masked_fill(chosen, math.inf)))
        if not d[p] > 0:
            raise ValueError("H is not positive definite: a Schur complement vanished; increase damp")
        Rt[k] = (H[p] - Rt[:k, p] @ Rt[:k]) / d[p].sqrt()  # R_k· = new pivot row
        d -= Rt[k] ** 2  # condition every column on the new one
        chosen[p] = True
        perm[k] = p
    return perm


def prepare_problem(
    W: torch.Tensor, H: torch.Tensor, cfg: GPTQConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked float64 copies: (W with dead columns zeroed, H fixed and damped, H as given)."""
    if W.dim() != 2:
        raise ValueError(f"expected a 2-D weight [out_features, in_features], got shape {tuple(W.shape)}")
    n = W.shape[1]
    if tuple(H.shape) != (n, n):
        raise ValueError(f"H must be [{n}, {n}] for a weight with in_features={n}, got {tuple(H.shape)}")
    if cfg.group_size and n % cfg.group_size:
        raise ValueError(f"group_size={cfg.group_size} does not divide in_features={n}")
    H_raw = H.detach().to(device=W.device, dtype=torch.float64)
    if not torch.isfinite(H_raw).all():
        raise ValueError("NaN in H: the Hessian has NaN/inf entries")
    if not torch.isfinite(W).all():
        raise ValueError("W has NaN/inf entries")
    W = W.detach().to(torch.float64, copy=True)
    H = H_raw.clone()
    dead = torch.diagonal(H) == 0  # inputs that are always zero: their weights never matter
    H[dead, dead] = 1
    W[:, dead] = 0
    H.diagonal().add_(cfg.damp * torch.diagonal(H).mean())
    return W, H, H_raw


def group_plan(
    W: torch.Tensor, proc: torch.Tensor, cfg: GPTQConfig
) -> tuple[list[int], torch.Tensor, torch.Tensor, bool]:
    """Group of each processing step, and the up-front scales/zeros when they are fixed.

    Returns (gid, scales, zeros, dynamic): gid[j] = group of the column handled j-th;
    scales/zeros [out, n_groups] (filled later, group by group, when dynamic).
    """
    out_f, n = W.shape
    g = cfg.group_size
    if g == 0:  # per channel: one group, parameters from the whole original row
        scale, zero = find_params(W, cfg.bits, cfg.sym, cfg.mse, cfg.clip)
        return [0] * n, scale[:, None], zero[:, None], False
    if cfg.static_groups:  # groups of original columns, parameters from the original W
        groups = W.reshape(out_f, n // g, g).transpose(0, 1).reshape(-1, g)  # [n_groups*out, g]
        scale, zero = find_params(groups, cfg.bits, cfg.sym, cfg.mse, cfg.clip)
        gid = (proc // g).tolist()
        return (
            gid,
            scale.reshape(n // g, out_f).T.contiguous(),
            zero.reshape(n // g, out_f).T.contiguous(),
            False,
        )
    empty = W.new_zeros(out_f, n // g)
    return [j // g for j in range(n)], empty, empty.clone(), True


def finish_layer(
    Z: torch.Tensor,
    proc: torch.Tensor,
    gid: list[int],
    scales: torch.Tensor,
    zeros: torch.Tensor,
    W_orig: torch.Tensor,
    H_raw: torch.Tensor,
    cfg: GPTQConfig,
    t0: float,
) -> QuantizedLayer:
    """Codes Z [out, in] in processing order -> a QuantizedLayer in original column order."""
    n = Z.shape[1]
    inv = torch.argsort(proc)
    codes = Z[:, inv].to(torch.int32)
    g_idx = torch.empty(n, dtype=torch.int32, device=Z.device)
    g_idx[proc] = torch.tensor(gid, dtype=torch.int32, device=Z.device)
    scales32, zeros32 = scales.float(), zeros.to(torch.int32)
    gl = g_idx.long()
    dequant = scales32[:, gl] * (codes - zeros32[:, gl]).float()
    return QuantizedLayer(
        codes=codes,
        scales=scales32,
        zeros=zeros32,
        g_idx=g_idx,
        dequant=dequant,
        perm=proc.to(torch.int64),
        proxy_loss=proxy_loss(W_orig, dequant, H_raw),
        bits=cfg.bits,
        group_size=cfg.group_size,
        sym=cfg.sym,
        seconds=time.perf_counter() - t0,
    )


def inverse_cholesky_upper(H: torch.Tensor) -> torch.Tensor:
    """U upper triangular with H⁻¹ = Uᵀ U, without forming H⁻¹.

    Cholesky of the index-reversed H, reversed back, gives H = M Mᵀ with M upper; then
    U = M⁻¹ (upper) satisfies Uᵀ U = (M Mᵀ)⁻¹ = H⁻¹. Same U as cholesky(H⁻¹, upper=True),
    several times faster in float64 on CPU.
    """
    L, info = torch.linalg.cholesky_ex(H.flip(0, 1))
    if int(info) != 0:
        raise ValueError("H is not positive definite after damping; increase damp")
    return upper_triangular_inverse(L.flip(0, 1))  # M upper, H = M Mᵀ


def upper_triangular_inverse(M: torch.Tensor, leaf: int = 512) -> torch.Tensor:
    """M⁻¹ for M upper triangular, by halves: [[A, B], [0, C]]⁻¹ = [[A⁻¹, −A⁻¹ B C⁻¹], [0, C⁻¹]].

    A triangular solve against the identity spends n³ flops on zeros; the recursion does the
    n³/3 that matter. The off-diagonal block comes from two triangular solves against B
    (A X = B, then X C = ·), not from products with the inverses, which would multiply the
    zero halves of A⁻¹ and C⁻¹ too (measured at n = 4864, float64: 0.63 s against 0.86 s for
    the products and 1.19 s for one solve against the identity)."""
    n = M.shape[0]
    if n <= leaf:
        return torch.linalg.solve_triangular(M, torch.eye(n, dtype=M.dtype, device=M.device), upper=True)
    k = n // 2
    out = M.new_zeros(n, n)
    out[:k, :k] = upper_triangular_inverse(M[:k, :k], leaf)
    out[k:, k:] = upper_triangular_inverse(M[k:, k:], leaf)
    AB = torch.linalg.solve_triangular(M[:k, :k], M[:k, k:], upper=True)  # A⁻¹ B
    out[:k, k:] = torch.linalg.solve_triangular(M[k:, k:], AB, upper=True, left=False).neg_()
    return out


@QUANTIZERS.register(
    "gptq",
    form="gptq-w{bits}g{group}[-act][-asym]",
    calibration=True,
    orders=ORDERS,
    summary="GPTQ: column by column, each rounding error fed forward through H",
)
@torch.no_grad()
def gptq_quantize(W: torch.Tensor, H: torch.Tensor, cfg: GPTQConfig) -> QuantizedLayer:
    """Quantize W [out, in] to minimize tr((W−Q) H (W−Q)ᵀ): GPTQ with lazy block updates."""
    t0 = time.perf_counter()
    W_orig = W
    W, H, H_raw = prepare_problem(W, H, cfg)
    perm = column_order(H, cfg.order)  # processing order
    if cfg.order == "min-pivot":  # a basis order: GPTQ walks the basis last to first (babai.py)
        perm = perm.flip(0)
    gid, scales, zeros, dynamic = group_plan(W, perm, cfg)
    dt = SWEEP_DTYPES[cfg.sweep_dtype]
    if cfg.order != "natural":  # natural: perm is the identity, no permuted copies
        H, W = H[perm][:, perm], W[:, perm]
    U = inverse_cholesky_upper(H).to(dt)  # [n, n], H⁻¹ = Uᵀ U, float64 factor
    Wt = W.T.to(dt).contiguous()  # [n, out]: column j of W is row j, contiguous
    Z = gptq_sweep(Wt, U, gid, scales.T.to(dt).contiguous(), zeros.T.to(dt).contiguous(), dynamic, cfg)
    scales.copy_(Z[1].T)
    zeros.copy_(Z[2].T)
    return finish_layer(Z[0].T.double(), perm, gid, scales, zeros, W_orig, H_raw, cfg, t0)


def gptq_sweep(
    Wt: torch.Tensor,
    U: torch.Tensor,
    gid: list[int],
    scales: torch.Tensor,
    zeros: torch.Tensor,
    dynamic: bool,
    cfg: GPTQConfig,
    nearest_plane: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The column loop on transposed rows Wt [n, out] (processing order), updated in place.

    Step j rounds row j's current value and feeds e_j into every later row k: Wt[k] −= U[j, k]·e_j.
    GPTQ: the rows are weights, e_j = (w_j − q_j)/U_jj. Nearest plane (babai.py, with U the
    flipped Cholesky factor): the rows are residuals y, the value is y_j/U_jj, e_j = q_j.
    Three levels, the same arithmetic as one column at a time: inside an inner block of
    INNER_BLOCK rows each e_j goes to the next rows at once (rank-1 updates on rows that stay in
    cache); at the end of an inner block its errors go to the rest of the lazy block as one
    matmul; at the end of a lazy block (`cfg.block_size`) to every later row.
    scales/zeros are [n_groups, out] (filled group by group when dynamic). Returns (codes [n,
    out] as floats, scales, zeros).
    """
    n, out_f = Wt.shape
    g, maxq, B = cfg.group_size, 2**cfg.bits - 1, cfg.block_size
    b = min(INNER_BLOCK, B)
    Z = torch.empty_like(Wt)
    d = torch.diagonal(U).tolist()
    for i1 in range(0, n, B):
        i2 = min(i1 + B, n)
        Err = Wt.new_zeros(i2 - i1, out_f)  # e_j of this lazy block, row k = step i1+k
        for k1 in range(i1, i2, b):
            k2 = min(k1 + b, i2)
            for j in range(k1, k2):
                if dynamic and j % g == 0:  # a group starts: parameters from its current values
                    j_end = min(j + g, n)
                    cur = _current_rows(Wt, U, Err, i1, k1, k2, i2, j, j_end)
                    if nearest_plane:  # residuals -> best continuous values: one small solve
                        cur = torch.linalg.solve_triangular(U[j:j_end, j:j_end].T, cur, upper=False)
                    scales[j // g], zeros[j // g] = find_params(cur.T, cfg.bits, cfg.sym, cfg.mse, cfg.clip)
                s, z0 = scales[gid[j]], zeros[gid[j]]  # [out]
                w = Wt[j] / d[j] if nearest_plane else Wt[j]
                q = quantize(w, s, z0, maxq, cfg.clip)
                Z[j] = q
                e = s * (q - z0) if nearest_plane else (w - s * (q - z0)).div_(d[j])
                Err[j - i1] = e
                if j + 1 < k2:
                    Wt[j + 1 : k2].addr_(U[j, j + 1 : k2], e, alpha=-1)  # inner block, rank 1
            if k2 < i2:
                Wt[k2:i2].addmm_(U[k1:k2, k2:i2].T, Err[k1 - i1 : k2 - i1], alpha=-1)
        if i2 < n:
            Wt[i2:].addmm_(U[i1:i2, i2:].T, Err, alpha=-1)  # lazy update of everything after the block
    return Z, scales, zeros


def _current_rows(Wt, U, Err, i1: int, k1: int, k2: int, i2: int, j: int, j_end: int) -> torch.Tensor:
    """Current (fully error-updated) values of columns j..j_end−1 when column j is next.

    Rows before k2 already hold every update; rows k2..i2 lack this inner block's errors so
    far, rows from i2 on lack this whole lazy block's."""
    parts = [Wt[j : min(j_end, k2)]]
    if j_end > k2:
        e_in = Err[k1 - i1 : j - i1]
        hi = min(j_end, i2)
        parts.append(Wt[k2:hi] - U[k1:j, k2:hi].T @ e_in)
    if j_end > i2:
        parts.append(Wt[i2:j_end] - U[i1:j, i2:j_end].T @ Err[: j - i1])
    return parts[0] if len(parts) == 1 else torch.cat(parts)
