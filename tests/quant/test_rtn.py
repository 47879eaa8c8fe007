import numpy as np
import pytest
import torch

from thinkcost.quant import QUANTIZERS
from thinkcost.quant.rtn import quantize_rtn


def reference_rtn(w: np.ndarray, bits: int, group_size: int, sym: bool):
    """Loop-per-group numpy RTN in the GPTQ convention, all in float32."""
    maxq = 2**bits - 1
    out_f, in_f = w.shape
    g = group_size or in_f
    codes = np.zeros_like(w, dtype=np.int64)
    dq = np.zeros_like(w)
    scales = np.zeros((out_f, in_f // g), dtype=np.float32)
    zeros = np.zeros((out_f, in_f // g), dtype=np.int64)
    for r in range(out_f):
        for k in range(in_f // g):
            grp = w[r, k * g : (k + 1) * g]
            lo, hi = min(grp.min(), np.float32(0)), max(grp.max(), np.float32(0))
            if sym:
                a = max(-lo, hi)
                lo, hi = -a, a
            scale = np.float32(hi - lo) / np.float32(maxq)
            if scale == 0:
                scale = np.float32(1)
            zero = np.float32(2 ** (bits - 1)) if sym else np.round(-lo / scale)
            q = np.clip(np.round(grp / scale) + zero, 0, maxq)
            codes[r, k * g : (k + 1) * g] = q.astype(np.int64)
            dq[r, k * g : (k + 1) * g] = scale * (q - zero)
            scales[r, k], zeros[r, k] = scale, int(zero)
    return codes, dq, scales, zeros


def make_weight(seed: int = 0, out_f: int = 12, in_f: int = 256) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out_f, in_f, generator=g) * 0.05
    w[0, 3] = 0.9  # outlier
    w[1, :128] = w[1, :128].abs()  # a row half all-positive: sym must still mirror the grid
    w[2, :] = -w[2, :].abs()  # an all-negative row
    return w


def expand(t: torch.Tensor, group_size: int, in_f: int) -> torch.Tensor:
    return t.repeat_interleave(group_size or in_f, dim=1)


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("group_size", [0, 32, 128])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_matches_numpy_reference(bits, group_size, sym):
    w = make_weight(seed=bits * 1000 + group_size)
    res = quantize_rtn(w, bits, group_size, sym)
    codes, dq, scales, zeros = reference_rtn(w.numpy(), bits, group_size, sym)
    np.testing.assert_array_equal(res.codes.numpy(), codes)
    np.testing.assert_allclose(res.dequant.numpy(), dq, rtol=0, atol=1e-6)
    np.testing.assert_allclose(res.scales.numpy(), scales, rtol=1e-6, atol=0)
    np.testing.assert_array_equal(res.zeros.numpy(), zeros)
    assert (res.bits, res.group_size, res.sym) == (bits, group_size, sym)


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("group_size", [0, 32, 128])
@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_error_bound_codes_range_and_shapes(bits, group_size, sym):
    w = make_weight(seed=7)
    res = quantize_rtn(w, bits, group_size, sym)
    n_groups = 1 if group_size == 0 else w.shape[1] // group_size
    assert res.codes.shape == w.shape and res.dequant.shape == w.shape
    assert res.scales.shape == res.zeros.shape == (w.shape[0], n_groups)
    assert res.codes.dtype == torch.int32 and res.zeros.dtype == torch.int32
    assert int(res.codes.min()) >= 0 and int(res.codes.max()) <= 2**bits - 1
    assert int(res.zeros.min()) >= 0 and int(res.zeros.max()) <= 2**bits - 1
    scale = expand(res.scales, group_size, w.shape[1])
    zero = expand(res.zeros, group_size, w.shape[1])
    assert torch.equal(res.dequant, scale * (res.codes - zero).float())
    err = (w - res.dequant).abs()
    # float32 rounding of w / scale and scale * (q - zero) adds a few ulps of |w|, not of scale
    assert torch.all(err <= scale / 2 + 4 * torch.finfo(torch.float32).eps * w.abs())
    assert torch.all(err <= scale * 0.5001)


@pytest.mark.parametrize("sym", [True, False])
def test_more_bits_much_smaller_error(sym):
    w = make_weight(seed=3)
    err3 = (w - quantize_rtn(w, 3, 32, sym).dequant).abs().mean()
    err8 = (w - quantize_rtn(w, 8, 32, sym).dequant).abs().mean()
    assert err8 < err3 / 20


def test_smaller_groups_smaller_error():
    w = make_weight(seed=4)
    err_pc = (w - quantize_rtn(w, 4, 0).dequant).abs().mean()
    err_g32 = (w - quantize_rtn(w, 4, 32).dequant).abs().mean()
    assert err_g32 < err_pc


@pytest.mark.parametrize("sym", [True, False])
@pytest.mark.parametrize("group_size", [0, 32])
def test_all_zero_group_dequantizes_to_zero(sym, group_size):
    w = make_weight(seed=5)
    w[4, :] = 0.0
    w[5, 32:64] = 0.0
    res = quantize_rtn(w, 4, group_size, sym)
    assert torch.isfinite(res.dequant).all() and torch.isfinite(res.scales).all()
    assert torch.all(res.dequant[4] == 0)
    assert torch.all(res.dequant[5, 32:64] == 0) or group_size == 0
    assert torch.all(res.scales[4] == 1)


def test_sym_zero_point_is_midpoint_and_zero_is_exact():
    w = make_weight(seed=6)
    w[:, 10] = 0.0
    for bits in (2, 4, 8):
        for sym in (True, False):
            res = quantize_rtn(w, bits, 32, sym)
            assert torch.all(res.dequant[:, 10] == 0)
        assert torch.all(quantize_rtn(w, bits, 32, True).zeros == 2 ** (bits - 1))


def test_does_not_modify_input_and_accepts_other_dtypes():
    w = make_weight(seed=8)
    before = w.clone()
    res = quantize_rtn(w.double(), 4, 32)
    assert torch.equal(w, before)
    assert res.dequant.dtype == torch.float32
    assert torch.equal(res.codes, quantize_rtn(w, 4, 32).codes)


@pytest.mark.parametrize("bits", [0, 1, 9, 16])
def test_bad_bits(bits):
    with pytest.raises(ValueError, match="bits"):
        quantize_rtn(make_weight(), bits, 32)


def test_group_size_must_divide_in_features():
    with pytest.raises(ValueError, match=r"in_features=256.*group_size=48"):
        quantize_rtn(make_weight(), 4, 48)


def test_rejects_non_2d():
    with pytest.raises(ValueError, match="2-D"):
        quantize_rtn(torch.zeros(4, 4, 4), 4, 0)


def test_registered():
    assert "rtn" in QUANTIZERS
    assert QUANTIZERS.get("rtn") is quantize_rtn
