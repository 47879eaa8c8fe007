import itertools

import numpy as np
import pytest
import torch

from thinkcost.quant.babai import babai_error_bound, babai_quantize
from thinkcost.quant.gptq import GPTQConfig, find_params, gptq_quantize, min_pivot_order, prepare_problem

REVERSED = {"natural": "reverse", "reverse": "natural", "min-pivot": "min-pivot"}


def random_hessian(n: int, cond: float, seed: int) -> torch.Tensor:
    """H = Q diag(λ) Qᵀ with a random rotation Q and λ log-spaced over [1/cond, 1]: cond(H) = cond."""
    g = torch.Generator().manual_seed(seed)
    Q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    lam = torch.logspace(0, -np.log10(cond), n, dtype=torch.float64)
    return (Q * lam) @ Q.T


def weight(out_f: int, in_f: int, seed: int) -> torch.Tensor:
    return torch.randn(out_f, in_f, generator=torch.Generator().manual_seed(seed)) * 0.05


def assert_same_layer(a, b) -> None:
    assert torch.equal(a.codes, b.codes), f"{int((a.codes != b.codes).sum())} codes differ"
    assert torch.equal(a.scales, b.scales) and torch.equal(a.zeros, b.zeros)
    assert torch.equal(a.g_idx, b.g_idx) and torch.equal(a.perm, b.perm)
    assert torch.equal(a.dequant, b.dequant)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("fixed_scales", ["per-channel", "static-g16"])
@pytest.mark.parametrize("cond, damp", [(10.0, 0.01), (1e6, 0.0)])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_gptq_reverse_is_babai_natural(bits, cond, damp, fixed_scales, seed):
    """Theorem: for H ≻ 0, fixed scales and the unbounded grid (clip=False),

        gptq_quantize(order="reverse") and babai_quantize(order="natural")
        return the same integer codes (and GPTQ "natural" == Babai "reverse").

    Proof sketch. Let H = Rᵀ R, R upper. Babai's nearest plane on the basis b_i = s_i R[:, i]
    decides i = n..1 and rounds y_i / (s_i R_ii), where y = R (w − q_fixed)ᵀ restricted to the
    undecided entries. y_i / R_ii is the minimizer over x_i of the loss when the codes after i
    are fixed and every column before i is free (rows 1..i−1 of R(w − x) can then be zeroed).
    GPTQ processing columns n..1 rounds its error-updated weight, which is that same
    conditional minimizer (the OBS update is the exact optimal compensation). Same value,
    same scale, same rounding, by induction on the step — so the same codes.
    Checked in float64 on a well-conditioned H and on cond(H) = 1e6 without damping; no tie
    needs breaking (fp16-rounded scales make exact .5 ties practically impossible).
    """
    n = 64
    H, W = random_hessian(n, cond, seed), weight(24, n, seed)
    gs, static = (0, False) if fixed_scales == "per-channel" else (16, True)
    for babai_order, gptq_order in (("natural", "reverse"), ("reverse", "natural")):
        cfg = dict(bits=bits, group_size=gs, static_groups=static, damp=damp, clip=False)
        a = gptq_quantize(W, H, GPTQConfig(order=gptq_order, **cfg))
        b = babai_quantize(W, H, GPTQConfig(order=babai_order, **cfg))
        assert_same_layer(a, b)
        assert a.proxy_loss == b.proxy_loss


@pytest.mark.parametrize(
    "order, group_size, static_groups, sym, clip, mse",
    [
        ("natural", 16, False, True, True, False),  # dynamic groups
        ("natural", 16, False, False, False, False),
        ("reverse", 16, False, False, True, True),
        ("min-pivot", 16, False, True, True, False),
        ("min-pivot", 0, False, False, True, True),
        ("natural", 16, True, False, True, False),
    ],
)
def test_equivalence_extends_to_dynamic_groups_clip_and_mse(order, group_size, static_groups, sym, clip, mse):
    """The induction above never uses fixed scales or the unbounded grid: dynamic group
    parameters are computed from the same conditional minimizers, and clamping a code is the
    same operation in both. So the equivalence holds for every mode (codes, scales, zeros)."""
    H, W = random_hessian(96, 1e3, seed=7), weight(32, 96, seed=7)
    cfg = dict(bits=3, group_size=group_size, static_groups=static_groups, sym=sym, clip=clip, mse=mse)
    a = gptq_quantize(W, H, GPTQConfig(order=REVERSED[order], **cfg))
    b = babai_quantize(W, H, GPTQConfig(order=order, **cfg))
    assert_same_layer(a, b)


def textbook_babai(F: np.ndarray, s: np.ndarray, w: np.ndarray, zero: np.ndarray) -> np.ndarray:
    """Nearest plane with explicit Gram–Schmidt on an arbitrary (non-triangular) generator F.

    Lattice basis b_i = s_i F[:, i] (any F with FᵀF = H gives an isometric lattice), target F w.
    Returns integer codes c + zero, one row per weight row.
    """
    codes = np.zeros(w.shape, dtype=np.int64)
    for r in range(w.shape[0]):
        B = F * s[r]  # [m, n] columns = basis
        Bs = np.zeros_like(B)  # Gram–Schmidt vectors, first to last
        for i in range(B.shape[1]):
            v = B[:, i].copy()
            for k in range(i):
                v -= (Bs[:, k] @ B[:, i]) / (Bs[:, k] @ Bs[:, k]) * Bs[:, k]
            Bs[:, i] = v
        y = F @ w[r]
        for i in reversed(range(B.shape[1])):
            c = np.round((y @ Bs[:, i]) / (Bs[:, i] @ Bs[:, i]))
            y -= c * B[:, i]
            codes[r, i] = c + zero[r]
    return codes


@pytest.mark.parametrize("sym", [True, False])
def test_babai_matches_textbook_nearest_plane(sym):
    """Independent check: Gram–Schmidt done by hand on the data matrix, not on a Cholesky factor."""
    g = torch.Generator().manual_seed(3)
    n, rows = 12, 5
    X = torch.randn(30, n, generator=g, dtype=torch.float64) @ torch.randn(
        n, n, generator=g, dtype=torch.float64
    )
    H = X.T @ X
    W = weight(rows, n, seed=3)
    damp = 0.01
    res = babai_quantize(W, H, GPTQConfig(bits=3, group_size=0, sym=sym, damp=damp, clip=False))
    # the damped H = FᵀF with F = [X; sqrt(δ) I]
    delta = damp * float(torch.diagonal(H).mean())
    F = np.vstack([X.numpy(), np.sqrt(delta) * np.eye(n)])
    s, z = find_params(W.double(), 3, sym)
    assert torch.equal(res.scales[:, 0], s.float()) and torch.equal(res.zeros[:, 0], z.int())
    expected = textbook_babai(F, np.repeat(s.numpy()[:, None], n, 1), W.double().numpy(), z.numpy())
    np.testing.assert_array_equal(res.codes.numpy(), expected)


@pytest.mark.parametrize("seed", range(4))
def test_error_bound_holds_per_row_without_clipping(seed):
    """||w − q||²_H ≤ (1/4) Σ s_i² R_ii² for every row, Babai or GPTQ, any group mode, clip=False."""
    n = 64
    H, W = random_hessian(n, 10.0 ** (seed + 1), seed), weight(16, n, seed)
    ratios = []
    for order, (gs, static), bits in itertools.product(
        ("natural", "min-pivot", "act-order"), [(0, False), (16, True), (16, False)], (2, 4)
    ):
        cfg = GPTQConfig(bits=bits, group_size=gs, static_groups=static, order=order, clip=False)
        for layer in (babai_quantize(W, H, cfg), gptq_quantize(W, H, cfg)):
            E = W.double() - layer.dequant.double()
            per_row = ((E @ H) * E).sum(1)
            bound = babai_error_bound(H, layer, cfg.damp)
            assert torch.all(per_row <= bound), (order, gs, static, bits)
            ratios.append(float(per_row.sum() / bound.sum()))
    print(f"\nloss / Babai bound: mean {np.mean(ratios):.3f}, max {max(ratios):.3f}")
    assert max(ratios) > 0.1  # the bound is not vacuous: the loss gets within 10x of it


def test_clipping_can_exceed_the_bound():
    """With clip=True at 2 bits codes are clamped: the bound is for the unbounded grid only."""
    H, W = random_hessian(64, 1e6, seed=2), weight(16, 64, seed=2)  # feedback pushes far off-grid
    cfg = GPTQConfig(bits=2, group_size=0, damp=0.0, clip=True)
    layer = babai_quantize(W, H, cfg)
    E = W.double() - layer.dequant.double()
    assert torch.any(((E @ H) * E).sum(1) > babai_error_bound(H, layer, 0.0))


def test_min_pivot_basis_minimizes_the_bound_greedily():
    """The min-pivot basis gives a smaller Babai bound than the natural one (equal scales)."""
    H = random_hessian(48, 1e3, seed=5)
    _, Hd, _ = prepare_problem(torch.zeros(1, 48), H, GPTQConfig(group_size=0))
    p = min_pivot_order(Hd)
    sums = {
        name: float((torch.diagonal(torch.linalg.cholesky(Hd[perm][:, perm])) ** 2).sum())
        for name, perm in {"natural": torch.arange(48), "min-pivot": p, "reversed": p.flip(0)}.items()
    }
    assert sums["min-pivot"] < sums["natural"] and sums["min-pivot"] < sums["reversed"]


def test_babai_layer_is_consistent():
    H, W = random_hessian(32, 100.0, seed=1), weight(8, 32, seed=1)
    cfg = GPTQConfig(bits=4, group_size=8, order="natural")
    res = babai_quantize(W, H, cfg)
    assert torch.equal(res.perm, torch.arange(31, -1, -1))  # decision order = basis reversed
    expected_g = torch.empty(32, dtype=torch.int32)
    expected_g[res.perm] = torch.arange(32, dtype=torch.int32) // 8
    assert torch.equal(res.g_idx, expected_g)
    gi = res.g_idx.long()
    assert torch.equal(res.dequant, res.scales[:, gi] * (res.codes - res.zeros[:, gi]).float())
    assert int(res.codes.min()) >= 0 and int(res.codes.max()) <= 15
    with pytest.raises(ValueError, match="group_size=5 does not divide"):
        babai_quantize(W, H, GPTQConfig(group_size=5))
