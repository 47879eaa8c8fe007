"""Block-wise calibration: block i+1 is calibrated on the outputs of the quantized block i."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from tiny_models import tiny_qwen2

from thinkcost.quant.calibration import calibration_windows, texts_from_file
from thinkcost.quant.rtn import quantize_rtn
from thinkcost.quant.sequential import quantize_sequential_


def _tiny(seed: int = 0):
    return tiny_qwen2(seed=seed, layers=3)


def _hessian(x: torch.Tensor) -> torch.Tensor:
    x = x.reshape(-1, x.shape[-1]).double()
    return 2 * x.T @ x / x.shape[0]


def _recording_solver(seen: dict):
    def solve(W, H, name):
        seen[name] = H.clone()
        dq = quantize_rtn(W, 2, 0).dequant  # 2 bits: a change large enough to show up downstream
        return SimpleNamespace(dequant=dq, proxy_loss=0.0, codes=dq, seconds=None)

    return solve


def _inputs_to(model, module_name: str, calib: torch.Tensor) -> torch.Tensor:
    got = []
    h = model.get_submodule(module_name).register_forward_hook(
        lambda _m, inp, _o: got.append(inp[0].detach())
    )
    with torch.inference_mode():
        model(input_ids=calib, use_cache=False)
    h.remove()
    return torch.cat(got)


def test_block_inputs_come_from_already_quantized_blocks():
    model = _tiny()
    calib = torch.randint(0, 256, (6, 16), generator=torch.Generator().manual_seed(1))
    original_h = _hessian(_inputs_to(model, "model.layers.2.self_attn.q_proj", calib))
    seen: dict = {}
    quantize_sequential_(model, calib, _recording_solver(seen), chunk=4)
    # the quantized model's own activations are what block 2 was calibrated on
    final_inputs = _inputs_to(model, "model.layers.2.self_attn.q_proj", calib)
    got = seen["model.layers.2.self_attn.q_proj"].double()
    assert torch.allclose(got, _hessian(final_inputs), rtol=1e-4, atol=1e-5)
    assert not torch.allclose(got, original_h, rtol=1e-2, atol=1e-3)
    # every Linear inside the blocks went through the solver; the LM head did not
    assert len(seen) == 3 * 7 and not any("lm_head" in k for k in seen)


def test_first_block_hessian_is_of_the_embedded_inputs():
    model = _tiny(3)
    calib = torch.randint(0, 256, (5, 12), generator=torch.Generator().manual_seed(2))
    expected = _hessian(_inputs_to(model, "model.layers.0.mlp.gate_proj", calib))
    seen: dict = {}
    quantize_sequential_(model, calib, _recording_solver(seen), chunk=2)  # chunking must not matter
    assert torch.allclose(seen["model.layers.0.mlp.gate_proj"].double(), expected, rtol=1e-4, atol=1e-5)


def test_calibration_windows_are_seeded_and_shaped(smollm_tok, tmp_path):
    f = tmp_path / "c.txt"
    f.write_text("The cat sat on the mat.\n\nTwo plus two is four.\n\nA third paragraph of text here.")
    texts = texts_from_file(f)
    assert len(texts) == 3
    a = calibration_windows(texts, smollm_tok, 4, 8, seed=0)
    b = calibration_windows(texts, smollm_tok, 4, 8, seed=0)
    c = calibration_windows(texts, smollm_tok, 4, 8, seed=1)
    assert a.shape == (4, 8) and torch.equal(a, b) and not torch.equal(a, c)


def test_calibration_file_errors_name_file_and_line(tmp_path):
    from thinkcost.errors import UserError

    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "ok"}\n{"txt": "no"}\n')
    with pytest.raises(UserError, match=r"c\.jsonl:2: expected an object with a string field 'text'"):
        texts_from_file(f)
    f.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(UserError, match=r"c\.jsonl:2: malformed JSON line"):
        texts_from_file(f)


def test_hessian_pass_stops_at_the_last_linear_without_losing_rows():
    """After the first chunk the Hessian pass ends at the down projection's input: its H (and
    every other layer's) must still hold every chunk's rows, and the down projection runs only
    where its output is needed (first chunk, and the output pass of all but the last block)."""
    model = _tiny(4)
    calib = torch.randint(0, 256, (5, 12), generator=torch.Generator().manual_seed(5))
    names = [
        f"model.layers.{i}.{n}"
        for i in range(3)
        for n in ("self_attn.q_proj", "self_attn.o_proj", "mlp.down_proj")
    ]
    expected = {n: _hessian(_inputs_to(model, n, calib)) for n in names}
    calls = {i: 0 for i in range(3)}
    for i in range(3):
        model.model.layers[i].mlp.down_proj.register_forward_hook(  # counts finished forwards
            lambda *_a, i=i: calls.__setitem__(i, calls[i] + 1)
        )
    seen: dict = {}

    def keep(W, H, name):  # weights unchanged: every H is the original model's
        seen[name] = H.clone()
        return SimpleNamespace(dequant=W.clone(), proxy_loss=0.0, codes=W, seconds=None)

    quantize_sequential_(model, calib, keep, chunk=2)  # 3 chunks
    for n in names:
        assert torch.allclose(seen[n].double(), expected[n], rtol=1e-4, atol=1e-5), n
    assert calls == {0: 1 + 3, 1: 1 + 3, 2: 1}
