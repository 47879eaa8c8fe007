"""The recover student: STE gradients, bit-identity with the variant at step 0, and the export
round trip (GPTQ checkpoint forward == student forward), LoRA merge included."""

from __future__ import annotations

import copy

import pytest
import torch

from recover_models import tiny_qwen2
from thinkcost.quant.apply import quantize_model_
from thinkcost.quant.checkpoint import load_gptq_into_
from thinkcost.quant.methods import parse_variant
from thinkcost.recover.export import export_student, finalize_
from thinkcost.recover.fakequant import FakeQuantLinear, LayerGrid, fake_quant
from thinkcost.recover.student import checkpoint_grids, make_student_, variant_grids

X = torch.randint(0, 96, (2, 9), generator=torch.Generator().manual_seed(5))
CALIB = torch.randint(0, 96, (4, 32), generator=torch.Generator().manual_seed(6))


def logits(model, x=X):
    with torch.no_grad():
        return model(input_ids=x).logits


def _grid(out=4, inp=64, g=32, bits=3, seed=0):
    gen = torch.Generator().manual_seed(seed)
    w = torch.randn(out, inp, generator=gen, dtype=torch.float64)
    s = torch.rand(out, inp // g, generator=gen, dtype=torch.float64) * 0.3 + 0.2
    z = torch.full((out, inp // g), 2.0 ** (bits - 1), dtype=torch.float64)
    g_idx = torch.arange(inp) // g
    return w, s, z, g_idx, 2**bits - 1


def test_ste_weight_gradient_is_the_in_grid_mask():
    w, s, z, g_idx, maxq = _grid()
    c = torch.randn(w.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    wp = w.clone().requires_grad_(True)
    (c * fake_quant(wp, s, z, g_idx, maxq)).sum().backward()
    code = torch.round(w / s[:, g_idx]) + z[:, g_idx]
    inside = (code >= 0) & (code <= maxq)
    assert 0 < int(inside.sum()) < w.numel()  # both cases occur
    assert torch.equal(wp.grad, c * inside)


def test_lsq_scale_gradient_matches_finite_differences_of_the_ste_surrogate():
    """With rounding frozen at its current offset (what the STE assumes), the function of s is
    smooth; its central finite difference must equal the analytic LSQ gradient."""
    w, s, z, g_idx, maxq = _grid(seed=2)
    c = torch.randn(w.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    code = torch.round(w / s[:, g_idx]) + z[:, g_idx]
    assert bool(((code < 0) | (code > maxq)).any())  # the clamped branch is exercised
    c = c * ((code != 0) & (code != maxq))  # a code exactly on a bound sits on the surrogate's kink
    sp = s.clone().requires_grad_(True)
    (c * fake_quant(w, sp, z, g_idx, maxq)).sum().backward()
    delta = torch.round(w / s[:, g_idx]) - w / s[:, g_idx]  # frozen rounding offset

    def surrogate(s_):
        sf = s_[:, g_idx]
        return (c * sf * (torch.clamp(w / sf + delta + z[:, g_idx], 0, maxq) - z[:, g_idx])).sum()

    eps = 1e-7
    fd = torch.zeros_like(s)
    for j in range(s.shape[0]):
        for g in range(s.shape[1]):
            e = torch.zeros_like(s)
            e[j, g] = eps
            fd[j, g] = (surrogate(s + e) - surrogate(s - e)) / (2 * eps)
    assert torch.allclose(sp.grad, fd, rtol=1e-5, atol=1e-6)


def test_act_order_grouping_equals_the_elementwise_formula():
    w, s, z, _, maxq = _grid(seed=4)
    g_idx = torch.randperm(64, generator=torch.Generator().manual_seed(0)) % 2  # 32 columns per group
    ref = s[:, g_idx] * (torch.clamp(torch.round(w / s[:, g_idx]) + z[:, g_idx], 0, maxq) - z[:, g_idx])
    assert torch.equal(fake_quant(w, s, z, g_idx, maxq), ref)


@pytest.mark.parametrize("variant", ["rtn-w3g32", "gptq-w3g32", "rtn-w4g32-asym"])
def test_student_at_step_zero_is_the_variant_bit_for_bit(variant):
    base = tiny_qwen2()
    spec = parse_variant(variant)
    ref = copy.deepcopy(base)
    quantize_model_(ref, spec, CALIB)  # what `thinkcost run --variants VARIANT` evaluates
    student = copy.deepcopy(base)
    layers = make_student_(student, variant_grids(student, spec, CALIB))
    assert len(layers) == 14  # 7 Linears per block, 2 blocks, head left alone
    ref_mods = dict(ref.named_modules())
    for name, fq in layers.items():
        assert torch.equal(fq.quantized_weight(), ref_mods[name].weight)
    assert torch.equal(logits(student), logits(ref))


@pytest.mark.parametrize("variant", ["rtn-w3g32", "gptq-w3g32", "rtn-w4g32-asym"])
def test_exported_checkpoint_forward_equals_the_student_forward(tmp_path, variant):
    base = tiny_qwen2()
    spec = parse_variant(variant)
    student = copy.deepcopy(base)
    layers = make_student_(student, variant_grids(student, spec, CALIB))
    with torch.no_grad():  # a trained student: latent weights moved off the grid
        for fq in layers.values():
            fq.weight.add_(torch.randn_like(fq.weight) * 0.01)
    finalize_(student)
    expected = logits(student)
    export_student(student, tmp_path / "ck", spec, meta={"recovered_from": variant})
    loaded = copy.deepcopy(base)
    load_gptq_into_(loaded, tmp_path / "ck", quantized_only=True)  # how `ckpt:DIR` is evaluated
    assert torch.equal(logits(loaded), expected)
    assert torch.equal(logits(student), expected)  # the student now holds the exported Linears
    # and a `ckpt:` variant becomes a student on exactly the stored grid
    again = copy.deepcopy(base)
    make_student_(again, checkpoint_grids(tmp_path / "ck"))
    assert torch.equal(logits(again), expected)


def test_lora_merge_and_requantize_round_trip(tmp_path):
    base = tiny_qwen2()
    spec = parse_variant("gptq-w3g32")
    student = copy.deepcopy(base)
    grids = variant_grids(student, spec, CALIB)
    layers = make_student_(student, grids, lora_rank=4, seed=1)
    before = logits(student)
    # a zero adapter is an exact no-op: the student is still the variant
    assert all(not fq.weight.requires_grad and fq.lora_A.requires_grad for fq in layers.values())
    with torch.no_grad():
        for fq in layers.values():
            fq.lora_B.normal_(0, 0.05, generator=torch.Generator().manual_seed(2))
    trained = logits(student)
    assert not torch.equal(trained, before)
    # merging folds B A into the latent weight; the quantized forward is unchanged
    q_before = {n: fq.quantized_weight() for n, fq in layers.items()}
    for fq in layers.values():
        fq.merge_()
    for n, fq in layers.items():
        assert torch.equal(fq.quantized_weight(), q_before[n])
        assert torch.count_nonzero(fq.lora_B) == 0
    export_student(student, tmp_path / "ck", spec)
    loaded = copy.deepcopy(base)
    load_gptq_into_(loaded, tmp_path / "ck", quantized_only=True)
    assert torch.equal(logits(loaded), trained)  # GPTQ scales are fp16 already: nothing moves
    # re-quantized codes = the merged weights rounded on the variant's own grid
    stored = checkpoint_grids(tmp_path / "ck")
    for n, g in stored.items():
        assert torch.equal(g.scales, grids[n].scales) and torch.equal(g.zeros, grids[n].zeros)
        assert torch.equal(g.dequant(), q_before[n])


def test_fake_quant_layer_reproduces_a_grid_with_learnable_scales():
    g = LayerGrid(
        codes=torch.randint(0, 8, (32, 64), generator=torch.Generator().manual_seed(0), dtype=torch.int32),
        scales=torch.rand(32, 2, generator=torch.Generator().manual_seed(1)) + 0.1,
        zeros=torch.full((32, 2), 4, dtype=torch.int32),
        g_idx=(torch.arange(64) // 32).to(torch.int32),
        bits=3,
    )
    fq = FakeQuantLinear(g, None, learn_scales=True)
    assert torch.equal(fq.quantized_weight(), g.dequant())
    assert fq.scales.requires_grad and fq.weight.requires_grad
