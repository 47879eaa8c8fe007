"""The fast paths of GPTQ and Babai against their references: the float32 column sweep against
float64, the blocked nearest plane against the textbook loop, tie-breaking, shared Hessians."""

from __future__ import annotations

import pytest
import torch
from test_babai import assert_same_layer, random_hessian, weight
from tiny_models import tiny_qwen2

from thinkcost.quant.babai import babai_quantize
from thinkcost.quant.gptq import (
    GPTQConfig,
    column_order,
    find_params,
    gptq_quantize,
    group_plan,
    prepare_problem,
    quantize,
    round_codes,
    upper_triangular_inverse,
)
from thinkcost.quant.sequential import quantize_sequential_

F64 = {"sweep_dtype": "float64"}


def textbook_nearest_plane(W: torch.Tensor, H: torch.Tensor, cfg: GPTQConfig) -> torch.Tensor:
    """Babai as first written: one basis vector at a time, every residual entry updated at once,
    float64, no blocks. Returns the codes [out, in] in original column order."""
    W, Hd, _ = prepare_problem(W, H, cfg)
    n, maxq, g = W.shape[1], 2**cfg.bits - 1, cfg.group_size
    basis = column_order(Hd, cfg.order)
    gid_proc, scales, zeros, dynamic = group_plan(W, basis.flip(0), cfg)
    R = torch.linalg.cholesky(Hd[basis][:, basis], upper=True)
    y = W[:, basis] @ R.T
    Z = torch.empty_like(y)
    for i in range(n - 1, -1, -1):
        p = n - 1 - i
        if dynamic and p % g == 0:
            G = slice(i - g + 1, i + 1)
            x = torch.linalg.solve_triangular(R[G, G], y[:, G].T, upper=True).T
            scales[:, p // g], zeros[:, p // g] = find_params(x, cfg.bits, cfg.sym, cfg.mse, cfg.clip)
        s, z0 = scales[:, gid_proc[p]], zeros[:, gid_proc[p]]
        Z[:, i] = quantize(y[:, i] / R[i, i], s, z0, maxq, cfg.clip)
        y[:, : i + 1] -= ((Z[:, i] - z0) * s)[:, None] * R[: i + 1, i][None, :]
    codes = torch.empty_like(Z)
    codes[:, basis] = Z
    return codes.to(torch.int32)


MODES = [  # (order, group_size, static_groups, sym, clip, mse)
    ("natural", 16, False, True, True, False),  # dynamic groups
    ("reverse", 16, False, False, True, True),
    ("act-order", 16, False, True, True, False),
    ("min-pivot", 0, False, False, True, False),
    ("natural", 16, True, False, False, False),
]


@pytest.mark.parametrize("order, group_size, static_groups, sym, clip, mse", MODES)
def test_blocked_babai_is_the_textbook_loop(order, group_size, static_groups, sym, clip, mse):
    """Blocked (lazy 128 / inner 16, and odd sizes) == unblocked (block 1) == the textbook loop,
    in float64 (the reference precision): codes, scales, zeros, g_idx, perm, dequant."""
    H, W = random_hessian(96, 1e3, seed=4), weight(16, 96, seed=4)
    kw = dict(bits=3, group_size=group_size, static_groups=static_groups, sym=sym, clip=clip, mse=mse)
    cfg = GPTQConfig(order=order, block_size=1, **kw, **F64)
    unblocked = babai_quantize(W, H, cfg)
    assert torch.equal(unblocked.codes, textbook_nearest_plane(W, H, cfg))
    for block in (128, 40, 7):
        blocked = babai_quantize(W, H, GPTQConfig(order=order, block_size=block, **kw, **F64))
        assert_same_layer(blocked, unblocked)


@pytest.mark.parametrize("method", [gptq_quantize, babai_quantize])
@pytest.mark.parametrize("order, group_size, static_groups, sym, clip, mse", MODES)
def test_float32_sweep_gives_the_float64_codes_on_well_conditioned_h(
    method, order, group_size, static_groups, sym, clip, mse
):
    """cond(H) = 10: float32 noise (~1e-6 of a grid step) never reaches a rounding boundary."""
    H, W = random_hessian(128, 10.0, seed=8), weight(32, 128, seed=8)
    kw = dict(
        bits=4, group_size=group_size, static_groups=static_groups, sym=sym, clip=clip, mse=mse, order=order
    )
    ref = method(W, H, GPTQConfig(**kw, **F64))
    fast = method(W, H, GPTQConfig(**kw))
    assert_same_layer(fast, ref)
    assert fast.proxy_loss == ref.proxy_loss


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("method", [gptq_quantize, babai_quantize])
def test_float32_sweep_proxy_loss_on_ill_conditioned_h(method, seed):
    """cond(H) = 1e6 (a real layer's range) with the default 1% damping: the float64 Cholesky keeps
    the float32 sweep on the reference; the total loss agrees to 1e-6 relative."""
    H, W = random_hessian(192, 1e6, seed=seed), weight(32, 192, seed=seed)
    for kw in (dict(group_size=32), dict(group_size=32, order="act-order"), dict(group_size=0)):
        ref = method(W, H, GPTQConfig(bits=3, **kw, **F64))
        fast = method(W, H, GPTQConfig(bits=3, **kw))
        assert abs(fast.proxy_loss - ref.proxy_loss) <= 1e-6 * ref.proxy_loss, kw


def test_exact_ties_are_broken_alike_whatever_the_noise():
    """x.5 is rounded half to even, also when the value arrives an ulp or two off (Babai computes
    the first decided weight as (w·R)/R); values clearly off the tie round as usual."""
    for dt, ulp in ((torch.float64, 2.0**-50), (torch.float32, 2.0**-21)):
        v = torch.tensor([-7.5, -7.5 + ulp, -7.5 - ulp, 2.5 + ulp, 2.5 - ulp, 0.5 + ulp, 3.5 - ulp], dtype=dt)
        assert round_codes(v).tolist() == [-8, -8, -8, 2, 2, 0, 4]
        far = torch.tensor([2.5 + 1e-3, 2.5 - 1e-3, -0.4, 1.2], dtype=dt)
        assert round_codes(far).tolist() == torch.round(far).tolist() == [3, 2, 0, 1]


@pytest.mark.parametrize("sweep", ["float64", "float32"])
def test_grid_aligned_weights_gptq_natural_is_babai_reverse(sweep):
    """The SmolLM2 mismatch in miniature: weights on a binary grid (as dequantized from a GGUF
    file) make the symmetric grid hit exact ties (max |w| = 7.5 steps). Both methods must still
    agree code for code, dynamic groups included."""
    g = torch.Generator().manual_seed(0)
    n = 96
    W = torch.randint(-60, 61, (40, n), generator=g).float() / 512  # on a 2^-9 grid
    W[:, ::32] = 15 / 2 * 8 / 512  # every group's largest |w|: scale 2·|w|/15 = 8/512, fp16-exact
    W[::2, ::32] *= -1  # the negative tie (−7.5 → −8, code 0) is the one that matters
    H = random_hessian(n, 1e3, seed=1)
    for group_size, static in ((32, False), (32, True), (0, False)):
        kw = dict(bits=4, group_size=group_size, static_groups=static, sweep_dtype=sweep)
        a = gptq_quantize(W, H, GPTQConfig(order="natural", **kw))
        b = babai_quantize(W, H, GPTQConfig(order="reverse", **kw))
        assert_same_layer(a, b)
        if group_size:
            assert int((a.codes[::2, 0] == 0).sum()) == 20  # −7.5 steps rounded half to even: −8


def test_upper_triangular_inverse_by_halves():
    A = torch.randn(300, 300, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    M = torch.linalg.cholesky(A @ A.T + 300 * torch.eye(300, dtype=torch.float64), upper=True)
    inv = upper_triangular_inverse(M, leaf=64)
    assert torch.equal(inv, torch.triu(inv))
    torch.testing.assert_close(inv @ M, torch.eye(300, dtype=torch.float64), rtol=0, atol=1e-12)


def test_layers_reading_one_tensor_share_one_hessian():
    """q/k/v read one normed tensor, gate/up another: one accumulator each, equal to the H of
    their own inputs; o_proj and down_proj keep their own."""
    model = tiny_qwen2(seed=2, layers=2)
    calib = torch.randint(0, 256, (6, 16), generator=torch.Generator().manual_seed(3))
    seen: dict[str, torch.Tensor] = {}
    got: dict[str, list[torch.Tensor]] = {}
    names = ("q_proj", "k_proj", "v_proj", "o_proj")
    mods = {f"self_attn.{n}": getattr(model.model.layers[0].self_attn, n) for n in names}
    mods |= {f"mlp.{n}": getattr(model.model.layers[0].mlp, n) for n in ("gate_proj", "up_proj", "down_proj")}
    hooks = [
        # pre-hooks, registered first: they see every input, also where the Hessian pass stops
        m.register_forward_pre_hook(lambda _m, inp, k=k: got.setdefault(k, []).append(inp[0].detach()))
        for k, m in mods.items()
    ]

    def solve(W, H, name):
        seen[name] = H
        for h in hooks:
            h.remove()
        return gptq_quantize(W, H, GPTQConfig(bits=4, group_size=16))

    quantize_sequential_(model, calib, solve, chunk=4)
    p = "model.layers.0."
    assert seen[p + "self_attn.q_proj"] is seen[p + "self_attn.k_proj"] is seen[p + "self_attn.v_proj"]
    assert seen[p + "mlp.gate_proj"] is seen[p + "mlp.up_proj"]
    assert seen[p + "self_attn.o_proj"] is not seen[p + "self_attn.q_proj"]
    for k, xs in got.items():
        x = torch.cat([t.reshape(-1, t.shape[-1]) for t in xs]).double()
        torch.testing.assert_close(seen[p + k], 2 * x.T @ x / x.shape[0], rtol=1e-5, atol=1e-6)
