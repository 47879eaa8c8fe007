"""GPTQ/Babai variants on a real model (SmolLM2-135M): an exported checkpoint, loaded back as
`ckpt:PATH`, reproduces the in-run quantized weights exactly, and restore gives the base back."""

from __future__ import annotations

import torch

from thinkcost.quant import parse_variant
from thinkcost.quant.apply import quantize_model_, restore_linear_weights_, snapshot_linear_weights
from thinkcost.quant.calibration import calibration_windows, texts_from_task
from thinkcost.quant.checkpoint import export_gptq
from thinkcost.tasks import get_task


def _linear_weights(model) -> dict[str, torch.Tensor]:
    return {n: m.weight.detach().clone() for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}


def test_gptq_checkpoint_roundtrip_and_babai_on_real_model(smollm, tmp_path):
    model, tok = smollm
    calib = calibration_windows(texts_from_task(get_task("arithmetic"), tok, 16, 0), tok, 4, 32, seed=0)
    snap = snapshot_linear_weights(model)
    base = _linear_weights(model)
    try:
        info = quantize_model_(model, parse_variant("gptq-w4g32"), calib)
        assert info["n_layers"] == 30 * 7 and info["bits_per_weight_effective"] == 5.0
        gptq_w = _linear_weights(model)
        changed = [n for n in gptq_w if not torch.equal(gptq_w[n], base[n])]
        assert len(changed) == 30 * 7 and "lm_head" not in changed
        export_gptq(model, info["layers"], tmp_path / "ck", bits=4, group_size=32, sym=True, desc_act=False)

        restore_linear_weights_(model, snap)
        assert all(torch.equal(w, base[n]) for n, w in _linear_weights(model).items())
        quantize_model_(model, parse_variant(f"ckpt:{tmp_path / 'ck'}"))
        for n, w in _linear_weights(model).items():
            assert torch.equal(w, gptq_w[n]), n  # fp16 scales: the checkpoint is exact

        restore_linear_weights_(model, snap)
        babai = quantize_model_(model, parse_variant("babai-w4g32-reverse"), calib)
        assert babai["n_layers"] == 30 * 7 and babai["order"] == "reverse"
        assert babai["proxy_loss"] > 0
    finally:
        restore_linear_weights_(model, snap)


def test_babai_reverse_is_gptq_natural_bit_for_bit_on_real_model(smollm):
    """The equivalence on real weights, dynamic groups (w4g32), every layer code for code.

    It once failed here and not on synthetic H: SmolLM2's weights are dequantized from a GGUF
    grid, so a group's largest |w| often sits exactly on −7.5 scale steps (the fp16 scale
    2·max|w|/15 is exact). GPTQ (natural) rounds that first weight exactly (→ −8, half to even);
    Babai (reverse) recomputes it as (w·R)/R, one ulp off, and rounded to −7: one code, then the
    whole row, then every later block differed. `round_codes` snaps such ties before rounding.
    Run in float64, the precision the equivalence is exact in (float32 noise flips near-ties);
    the first 8 blocks held 5 of the mismatching ones."""
    import copy

    from thinkcost.quant.babai import babai_quantize
    from thinkcost.quant.gptq import GPTQConfig, gptq_quantize
    from thinkcost.quant.sequential import quantize_sequential_

    tok = smollm[1]
    calib = calibration_windows(texts_from_task(get_task("arithmetic"), tok, 16, 0), tok, 4, 32, seed=0)
    results = {}
    for label, fn, order in (("gptq", gptq_quantize, "natural"), ("babai", babai_quantize, "reverse")):
        model = copy.deepcopy(smollm[0])
        model.model.layers = model.model.layers[:8]
        cfg = GPTQConfig(bits=4, group_size=32, order=order, sweep_dtype="float64")
        results[label] = quantize_sequential_(model, calib, lambda W, H, _n, fn=fn, cfg=cfg: fn(W, H, cfg))
    assert len(results["gptq"]) == 8 * 7
    for name, a in results["gptq"].items():
        b = results["babai"][name]
        assert torch.equal(a.codes, b.codes), f"{name}: {int((a.codes != b.codes).sum())} codes differ"
        assert torch.equal(a.scales, b.scales) and torch.equal(a.zeros, b.zeros), name
        assert torch.equal(a.dequant, b.dequant), name


def test_babai_proxy_loss_below_rtn_on_model_hessians(smollm):
    import copy

    from thinkcost.quant.gptq import GPTQConfig
    from thinkcost.quant.sequential import quantize_sequential_
    from thinkcost.quant.solvers import SOLVERS

    model, tok = copy.deepcopy(smollm[0]), smollm[1]
    model.model.layers = model.model.layers[:4]  # four real blocks are enough for the claim
    calib = calibration_windows(texts_from_task(get_task("arithmetic"), tok, 16, 0), tok, 4, 32, seed=0)
    totals = {"rtn": 0.0, "gptq": 0.0, "babai": 0.0}
    cfg = GPTQConfig(bits=3, group_size=32)

    def solve(W, H, _name):
        for m in totals:
            r = SOLVERS[m](W, H, cfg)
            totals[m] += r.proxy_loss
            if m == "gptq":
                keep = r
        return keep

    quantize_sequential_(model, calib, solve)
    assert totals["gptq"] < 0.8 * totals["rtn"]
    assert totals["babai"] < 0.8 * totals["rtn"]
