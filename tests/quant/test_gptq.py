import itertools

import numpy as np
import pytest
import torch

from thinkcost.quant.gptq import (
    ORDERS,
    GPTQConfig,
    HessianAccumulator,
    find_params,
    gptq_quantize,
    gram,
    min_pivot_order,
    prepare_problem,
    proxy_loss,
)
from thinkcost.quant.rtn import quantize_rtn


def correlated_problem(out_f: int, in_f: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """W [out, in] float32 and H = 2XᵀX/n for X = Z·A·diag(c): mixed inputs of unequal energy."""
    g = torch.Generator().manual_seed(seed)
    Z = torch.randn(4 * in_f, in_f, generator=g, dtype=torch.float64)
    A = torch.randn(in_f, in_f, generator=g, dtype=torch.float64) / in_f**0.5  # mixing
    c = torch.exp(torch.randn(in_f, generator=g, dtype=torch.float64))  # channel energies
    X = (Z @ A) * c
    W = torch.randn(out_f, in_f, generator=g) * 0.05
    return W, 2 * X.T @ X / X.shape[0]


def expand(t: torch.Tensor, g_idx: torch.Tensor) -> torch.Tensor:
    return t[:, g_idx.long()]


def rtn_scales_fp16(W: torch.Tensor, bits: int, group_size: int, sym: bool) -> torch.Tensor:
    """RTN's scale rule evaluated in float64 and rounded once to float16, as GPTQ must do."""
    x = W.double().reshape(W.shape[0], -1, group_size or W.shape[1])
    lo, hi = x.amin(2).clamp(max=0), x.amax(2).clamp(min=0)
    if sym:
        hi = torch.maximum(hi, -lo)
        lo = -hi
    s = (hi - lo) / (2**bits - 1)
    return torch.where(s == 0, 1.0, s).half().float()


def check_layer(res, W: torch.Tensor, cfg: GPTQConfig) -> None:
    """Shapes, dtypes, code range, permutation, g_idx rule and the exact dequant formula."""
    out_f, n = W.shape
    n_groups = n // cfg.group_size if cfg.group_size else 1
    assert res.codes.shape == res.dequant.shape == W.shape
    assert res.scales.shape == res.zeros.shape == (out_f, n_groups)
    assert res.codes.dtype == res.zeros.dtype == res.g_idx.dtype == torch.int32
    assert res.scales.dtype == res.dequant.dtype == torch.float32 and res.perm.dtype == torch.int64
    assert torch.equal(torch.sort(res.perm).values, torch.arange(n))
    if cfg.clip:
        assert int(res.codes.min()) >= 0 and int(res.codes.max()) <= 2**cfg.bits - 1
    assert torch.equal(res.scales, res.scales.half().float()), "scales must be exact in float16"
    if cfg.group_size == 0:
        expected_g = torch.zeros(n, dtype=torch.int32)
    elif cfg.static_groups:
        expected_g = torch.arange(n, dtype=torch.int32) // cfg.group_size
    else:  # g_idx[perm[j]] = j // group_size
        expected_g = torch.empty(n, dtype=torch.int32)
        expected_g[res.perm] = torch.arange(n, dtype=torch.int32) // cfg.group_size
    assert torch.equal(res.g_idx, expected_g)
    dq = expand(res.scales, res.g_idx) * (res.codes - expand(res.zeros, res.g_idx)).float()
    assert torch.equal(res.dequant, dq)
    assert res.proxy_loss >= 0 and np.isfinite(res.proxy_loss) and res.seconds >= 0


# --- Hessian ------------------------------------------------------------------------------


def test_hessian_accumulator_matches_direct_formula():
    g = torch.Generator().manual_seed(0)
    batches = [
        torch.randn(3, 16, generator=g),
        torch.randn(2, 5, 16, generator=g),
        torch.randn(64, 16, generator=g),
    ]
    X = torch.cat([b.reshape(-1, 16) for b in batches]).double()
    expected = 2 * X.T @ X / X.shape[0]
    exact = HessianAccumulator(16, gram_dtype=torch.float64)
    for b in batches:
        exact.add_batch(b)
    torch.testing.assert_close(exact.H, expected, rtol=1e-12, atol=1e-12)
    acc = HessianAccumulator(16)  # default: float32 batch products, float64 sum
    for b in batches:
        acc.add_batch(b)
    assert acc.nsamples == 3 + 10 + 64 and acc.H.dtype == torch.float64
    torch.testing.assert_close(acc.H, expected, rtol=0, atol=1e-6 * float(expected.diagonal().max()))

    acc.add_batch(torch.zeros(0, 16))  # an empty batch changes nothing
    assert acc.nsamples == 77
    before = acc.H.clone()
    bad = torch.randn(4, 16)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match="NaN in H"):
        acc.add_batch(bad)
    assert torch.equal(acc.H, before) and acc.nsamples == 77
    with pytest.raises(ValueError, match="16"):
        acc.add_batch(torch.randn(4, 15))


@pytest.mark.parametrize("n", [64, 1000, 2500])
def test_gram_by_triangular_blocks_is_the_full_product(n):
    """Only the blocks on and above the diagonal are multiplied; the result must still be xᵀx."""
    x = torch.randn(40, n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    G = gram(x, block=512)
    torch.testing.assert_close(G, x.T @ x, rtol=1e-12, atol=1e-10)


def test_gram_into_adds_to_a_float64_sum():
    """The accumulating form writes blocks into an existing sum: the sum plus xᵀx, both halves."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(30, 2500, generator=g)
    base = torch.randn(2500, 2500, generator=g, dtype=torch.float64)
    acc = base.clone()
    assert gram(x, block=512, into=acc) is acc
    torch.testing.assert_close(acc, base + (x.T @ x).double(), rtol=1e-6, atol=1e-4)


def test_hessian_accumulator_wide_layer_matches_direct_formula():
    """A 1100-wide input takes the blocked path (two column blocks) in every batch."""
    g = torch.Generator().manual_seed(4)
    batches = [torch.randn(40, 1100, generator=g), torch.randn(2, 7, 1100, generator=g)]
    X = torch.cat([b.reshape(-1, 1100) for b in batches]).double()
    acc = HessianAccumulator(1100, gram_dtype=torch.float64)
    for b in batches:
        acc.add_batch(b)
    torch.testing.assert_close(acc.H, 2 * X.T @ X / X.shape[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape", [(8, 1500), (1500, 40)])
def test_proxy_loss_wide_and_tall_layers_equal_the_output_error(shape):
    """Wide (down projection) and tall (gate/up) layers alike."""
    g = torch.Generator().manual_seed(5)
    out_f, n = shape
    X = torch.randn(n + 20, n, generator=g, dtype=torch.float64)
    W, Q = torch.randn(out_f, n, generator=g), torch.randn(out_f, n, generator=g)
    direct = float(((X @ (W.double() - Q.double()).T) ** 2).sum() * 2 / X.shape[0])
    assert proxy_loss(W, Q, 2 * X.T @ X / X.shape[0]) == pytest.approx(direct, rel=1e-10)


def test_proxy_loss_is_the_layer_output_error():
    g = torch.Generator().manual_seed(1)
    X = torch.randn(50, 8, generator=g, dtype=torch.float64)
    W, Q = torch.randn(4, 8, generator=g), torch.randn(4, 8, generator=g)
    direct = float(((X @ (W.double() - Q.double()).T) ** 2).sum() * 2 / 50)
    assert proxy_loss(W, Q, 2 * X.T @ X / 50) == pytest.approx(direct, rel=1e-12)


# --- H = identity is RTN ---------------------------------------------------------------------


def dyadic_weight(out_f: int, in_f: int, bits: int, group_size: int, sym: bool, seed: int) -> torch.Tensor:
    """Weights whose RTN scale is exactly 2^-6 in every group, so fp16 rounding changes nothing."""
    g = torch.Generator().manual_seed(seed)
    maxq, step = 2**bits - 1, 2.0**-6
    gs = group_size or in_f
    W = torch.empty(out_f, in_f)
    for r, k in itertools.product(range(out_f), range(in_f // gs)):
        if sym:
            lo, hi = -maxq / 2 * step, maxq / 2 * step
        else:
            m = int(torch.randint(1, maxq, (1,), generator=g))
            lo, hi = -m * step, (maxq - m) * step
        grp = lo + (hi - lo) * torch.rand(gs, generator=g)
        i, j = torch.randperm(gs, generator=g)[:2].tolist()
        grp[i] = hi if sym and torch.rand(1, generator=g) < 0.5 else lo  # the extremes are present
        grp[j] = hi
        W[r, k * gs : (k + 1) * gs] = grp
    return W


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("group_size", [0, 32])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_identity_hessian_gives_rtn_codes_exactly(bits, group_size, sym):
    """With H = I there is nothing to compensate: GPTQ must return RTN's codes, scales, zeros."""
    W = dyadic_weight(6, 128, bits, group_size, sym, seed=bits + group_size)
    rtn = quantize_rtn(W, bits, group_size, sym)
    assert torch.all(rtn.scales == 2.0**-6)
    for order in ("natural", "act-order"):
        cfg = GPTQConfig(bits=bits, group_size=group_size, sym=sym, order=order)
        res = gptq_quantize(W, torch.eye(128), cfg)
        check_layer(res, W, cfg)
        assert torch.equal(res.codes, rtn.codes)
        assert torch.equal(res.scales, rtn.scales) and torch.equal(res.zeros, rtn.zeros)
        assert torch.equal(res.dequant, rtn.dequant)


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("group_size", [0, 32])
def test_identity_hessian_generic_weights_is_rtn_with_fp16_scales(group_size, sym):
    """Generic weights: scales are RTN's rounded to fp16; codes are RTN's formula on those scales."""
    g = torch.Generator().manual_seed(3)
    W = torch.randn(16, 128, generator=g) * 0.05
    W[0, 5] = 0.7
    rtn = quantize_rtn(W, 3, group_size, sym)
    cfg = GPTQConfig(bits=3, group_size=group_size, sym=sym, static_groups=True)
    res = gptq_quantize(W, torch.eye(128), cfg)
    check_layer(res, W, cfg)
    assert torch.equal(res.scales, rtn_scales_fp16(W, 3, group_size, sym))
    torch.testing.assert_close(res.scales, rtn.scales, rtol=2**-10, atol=0)  # within 1 fp16 ulp
    s, z = expand(res.scales, res.g_idx).double(), expand(res.zeros, res.g_idx).double()
    expected = torch.clamp(torch.round(W.double() / s) + z, 0, 7)
    assert torch.equal(res.codes, expected.to(torch.int32))
    if sym:
        assert torch.equal(res.zeros, rtn.zeros)
    # fp16 rounding of the scale moves a weight by at most one grid step
    assert torch.all((res.dequant - rtn.dequant).abs() <= expand(rtn.scales, res.g_idx) * 1.01)


def test_diagonal_hessian_with_act_order_and_static_groups_is_rtn():
    """A diagonal H has no cross terms, so any order leaves RTN unchanged when groups are fixed."""
    W = dyadic_weight(5, 64, 4, 16, False, seed=11)
    H = torch.diag(torch.rand(64, generator=torch.Generator().manual_seed(2)) + 0.1)
    cfg = GPTQConfig(bits=4, group_size=16, sym=False, order="act-order", static_groups=True)
    res = gptq_quantize(W, H, cfg)
    assert torch.equal(res.perm, torch.argsort(torch.diagonal(H), descending=True))
    assert torch.equal(res.codes, quantize_rtn(W, 4, 16, sym=False).codes)


# --- an independent slow GPTQ ---------------------------------------------------------------


def reference_gptq(W, H, bits, group_size, sym, order, static_groups, damp=0.01):
    """Obviously-correct GPTQ in numpy float64: no blocks, one column and one full update at a time."""
    W, H = W.astype(np.float64).copy(), H.astype(np.float64).copy()
    n, maxq = W.shape[1], 2**bits - 1
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0
    H += damp * np.mean(np.diag(H)) * np.eye(n)

    def params(x):
        lo, hi = np.minimum(x.min(1), 0), np.maximum(x.max(1), 0)
        if sym:
            hi = np.maximum(hi, -lo)
            lo = -hi
        s = (hi - lo) / maxq
        s[s == 0] = 1
        s = np.clip(s, 2.0**-24, 65504).astype(np.float16).astype(np.float64)
        z = np.full_like(s, 2 ** (bits - 1)) if sym else np.clip(np.round(-lo / s), 0, maxq)
        return s, z

    perm = np.arange(n) if order == "natural" else np.argsort(-np.diag(H), kind="stable")
    g = group_size or n
    fixed = [params(W[:, k * g : (k + 1) * g]) for k in range(n // g)]  # original column groups
    Wp, Hp = W[:, perm], H[np.ix_(perm, perm)]
    U = np.linalg.cholesky(np.linalg.inv(Hp)).T  # upper, inv(H) = Uᵀ U
    codes = np.zeros(W.shape, dtype=np.int64)
    for j in range(n):
        if group_size == 0:
            s, z = fixed[0]
        elif static_groups:
            s, z = fixed[perm[j] // g]
        elif j % g == 0:
            s, z = params(Wp[:, j : j + g])  # current, error-updated weights
        c = np.clip(np.round(Wp[:, j] / s) + z, 0, maxq)
        err = (Wp[:, j] - s * (c - z)) / U[j, j]
        Wp[:, j:] -= np.outer(err, U[j, j:])
        codes[:, perm[j]] = c
    return codes


@pytest.mark.parametrize(
    "group_size, static_groups, sym, order",
    [
        (0, False, True, "natural"),
        (32, False, True, "natural"),
        (32, False, False, "act-order"),
        (32, True, True, "act-order"),
        (32, True, False, "natural"),
        (0, False, False, "act-order"),
    ],
)
def test_matches_slow_reference_for_every_block_size(group_size, static_groups, sym, order):
    """Lazy block updates are an implementation detail: block 128, 48, 7, 1 all match the reference."""
    W, H = correlated_problem(24, 160, seed=5)
    H[7, :] = H[:, 7] = 0  # a dead input column
    expected = reference_gptq(W.numpy(), H.numpy(), 3, group_size, sym, order, static_groups)
    for block in (128, 48, 7, 1):
        cfg = GPTQConfig(3, group_size, sym, order, static_groups, block_size=block)
        res = gptq_quantize(W, H, cfg)
        check_layer(res, W, cfg)
        np.testing.assert_array_equal(res.codes.numpy(), expected, err_msg=f"block_size={block}")
        assert torch.all(res.dequant[:, 7] == 0)


# --- GPTQ against RTN on correlated inputs ---------------------------------------------------


@pytest.mark.parametrize("shape", [(64, 128), (96, 256), (128, 64)])
def test_proxy_loss_beats_rtn_on_correlated_inputs(shape):
    W, H = correlated_problem(*shape, seed=1)
    ratios = {}
    for bits, gs, sym, order in itertools.product((3, 4), (0, 32), (True, False), ORDERS):
        rtn_loss = proxy_loss(W, quantize_rtn(W, bits, gs, sym).dequant, H)
        cfg = GPTQConfig(bits=bits, group_size=gs, sym=sym, order=order)
        res = gptq_quantize(W, H, cfg)
        check_layer(res, W, cfg)
        ratios[bits, gs, sym, order] = res.proxy_loss / rtn_loss
        assert res.proxy_loss == pytest.approx(proxy_loss(W, res.dequant, H))
    w3 = {k: v for k, v in ratios.items() if k[0] == 3}
    print(f"\n{shape} GPTQ/RTN at w3: worst {max(w3.values()):.3f}, mean {np.mean(list(w3.values())):.3f}")
    assert max(ratios.values()) <= 1.0, ratios
    assert max(w3.values()) <= 0.8, w3


def test_orders_valid_and_act_order_min_pivot_beat_natural():
    """Every order gives a valid layer; on average over seeds act-order and min-pivot beat natural."""
    losses = {o: [] for o in ORDERS}
    for seed in range(4):
        W, H = correlated_problem(48, 128, seed=100 + seed)
        for order in ORDERS:
            cfg = GPTQConfig(bits=3, group_size=32, order=order)
            res = gptq_quantize(W, H, cfg)
            check_layer(res, W, cfg)
            losses[order].append(res.proxy_loss)
    mean = {o: float(np.mean(v)) for o, v in losses.items()}
    print(
        "\nmean w3g32 proxy loss by order:",
        {o: round(v, 4) for o, v in mean.items()},
        "best:",
        min(mean, key=mean.get),
    )
    assert mean["act-order"] < mean["natural"] and mean["min-pivot"] < mean["natural"]


def test_order_permutations():
    W, H = correlated_problem(8, 64, seed=2)
    _, Hd, _ = prepare_problem(W, H, GPTQConfig(group_size=16))
    perms = {o: gptq_quantize(W, H, GPTQConfig(bits=4, group_size=16, order=o)).perm for o in ORDERS}
    assert torch.equal(perms["natural"], torch.arange(64))
    assert torch.equal(perms["reverse"], torch.arange(63, -1, -1))
    diag = torch.diagonal(H)[perms["act-order"]]
    assert torch.all(diag[:-1] >= diag[1:])
    # GPTQ walks the min-pivot basis from its last pivot to its first
    assert torch.equal(perms["min-pivot"], min_pivot_order(Hd).flip(0))


def brute_force_min_pivot(H: np.ndarray) -> list[int]:
    """At each step, the column with the smallest Schur complement H_jj − H_jC H_CC⁻¹ H_Cj."""
    chosen: list[int] = []
    rest = list(range(H.shape[0]))
    while rest:

        def cond_var(j):
            if not chosen:
                return H[j, j]
            hc = H[np.ix_([j], chosen)]
            return H[j, j] - (hc @ np.linalg.solve(H[np.ix_(chosen, chosen)], hc.T)).item()

        best = min(rest, key=cond_var)
        chosen.append(best)
        rest.remove(best)
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_min_pivot_is_the_greedy_schur_complement_order(seed):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(40, 9, generator=g, dtype=torch.float64) @ torch.randn(
        9, 9, generator=g, dtype=torch.float64
    )
    H = X.T @ X
    assert min_pivot_order(H).tolist() == brute_force_min_pivot(H.numpy())


# --- groups, act-order, MSE ------------------------------------------------------------------


@pytest.mark.parametrize("static_groups", [False, True])
@pytest.mark.parametrize("sym", [True, False])
def test_act_order_groups(static_groups, sym):
    W, H = correlated_problem(32, 128, seed=4)
    cfg = GPTQConfig(bits=4, group_size=32, sym=sym, order="act-order", static_groups=static_groups)
    res = gptq_quantize(W, H, cfg)
    check_layer(res, W, cfg)
    if not static_groups:  # groups really follow the processing order, not the original one
        assert not torch.equal(res.g_idx, torch.arange(128, dtype=torch.int32) // 32)
    else:  # static scales come from the original W, exactly as RTN would take them
        assert torch.equal(res.scales, rtn_scales_fp16(W, 4, 32, sym))


def test_mse_search_shrinks_and_never_hurts():
    g = torch.Generator().manual_seed(6)
    x = torch.randn(40, 32, generator=g, dtype=torch.float64)
    x[:, 0] *= 6  # outliers make shrinking worthwhile
    for bits, sym in itertools.product((2, 3, 4), (True, False)):
        maxq = 2**bits - 1

        def err(s, z, bits=bits, maxq=maxq):
            q = torch.clamp(torch.round(x / s[:, None]) + z[:, None], 0, maxq)
            return (x - s[:, None] * (q - z[:, None])).abs().pow(2.4).sum(1)

        s0, z0 = find_params(x, bits, sym)
        s1, z1 = find_params(x, bits, sym, mse=True)
        assert torch.all(s1 <= s0) and torch.any(s1 < s0)
        assert torch.all(err(s1, z1) <= err(s0, z0))
    W, H = correlated_problem(32, 64, seed=6)
    res = gptq_quantize(W, H, GPTQConfig(bits=3, group_size=32, mse=True))
    check_layer(res, W, GPTQConfig(bits=3, group_size=32))


def test_dead_columns_and_all_zero_rows():
    W, H = correlated_problem(8, 64, seed=8)
    W[3] = 0
    H[:, :5] = 0
    H[:5, :] = 0
    for sym in (True, False):
        res = gptq_quantize(W, H, GPTQConfig(bits=4, group_size=16, sym=sym, order="act-order"))
        assert torch.all(res.dequant[:, :5] == 0) and torch.all(res.dequant[3] == 0)
        assert torch.all(res.scales[3] == 1) and np.isfinite(res.proxy_loss)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"bits": 1}, "bits"),
        ({"bits": 9}, "bits"),
        ({"group_size": -1}, "group_size"),
        ({"damp": -0.01}, "damp"),
        ({"damp": float("nan")}, "damp"),
        ({"order": "random"}, "order"),
        ({"block_size": 0}, "block_size"),
    ],
)
def test_bad_config_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        GPTQConfig(**kwargs)


def test_bad_inputs():
    W, H = correlated_problem(4, 48, seed=0)
    with pytest.raises(ValueError, match=r"group_size=32 does not divide in_features=48"):
        gptq_quantize(W, H, GPTQConfig(group_size=32))
    bad = H.clone()
    bad[2, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN in H"):
        gptq_quantize(W, bad, GPTQConfig(group_size=16))
    with pytest.raises(ValueError, match=r"H must be \[48, 48\]"):
        gptq_quantize(W, H[:40, :40], GPTQConfig(group_size=16))
    with pytest.raises(ValueError, match="positive definite"):
        gptq_quantize(W, -H, GPTQConfig(group_size=16, damp=0.0))
