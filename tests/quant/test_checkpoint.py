import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import transformers
from safetensors.torch import load_file, save_file
from tiny_models import tiny_qwen2
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant.checkpoint import (
    dequantize_packed,
    export_gptq,
    import_gptq,
    load_gptq_into_,
    pack_qweight,
    pack_qzeros,
    unpack_qweight,
    unpack_qzeros,
)
from thinkcost.quant.rtn import quantize_rtn

BITS = (2, 3, 4, 8)


def _as_int32(u: int) -> int:
    """A uint32 bit pattern as the signed value an int32 tensor holds."""
    return u - 2**32 if u >= 2**31 else u


# ---------------------------------------------------------------- packing


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize(("out_f", "in_f"), [(1, 32), (5, 96), (48, 64), (96, 320)])
def test_qweight_round_trip(bits, out_f, in_f):
    g = torch.Generator().manual_seed(bits * 1000 + in_f)
    codes = torch.randint(0, 2**bits, (out_f, in_f), generator=g, dtype=torch.int32)
    codes[0, :2] = torch.tensor([0, 2**bits - 1])  # both extremes, incl. the sign bit of a word
    q = pack_qweight(codes, bits)
    assert q.dtype == torch.int32 and q.shape == (in_f * bits // 32, out_f)
    assert torch.equal(unpack_qweight(q, bits, in_f), codes)


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("fmt", ["gptq", "gptq_v2"])
@pytest.mark.parametrize(("out_f", "n_groups"), [(32, 1), (64, 3), (96, 7)])
def test_qzeros_round_trip(bits, fmt, out_f, n_groups):
    g = torch.Generator().manual_seed(bits * 100 + n_groups)
    lo = 1 if fmt == "gptq" else 0
    zeros = torch.randint(lo, 2**bits + lo, (out_f, n_groups), generator=g, dtype=torch.int32)
    q = pack_qzeros(zeros, bits, fmt)
    assert q.dtype == torch.int32 and q.shape == (n_groups, out_f * bits // 32)
    assert torch.equal(unpack_qzeros(q, bits, fmt), zeros)


def test_pack_rejects_bad_sizes_and_values():
    with pytest.raises(ValueError, match="in_features=48"):
        pack_qweight(torch.zeros(32, 48, dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="out_features=40"):
        pack_qzeros(torch.ones(40, 2, dtype=torch.int32), 4)
    with pytest.raises(ValueError, match="bits"):
        pack_qweight(torch.zeros(32, 32, dtype=torch.int32), 5)
    with pytest.raises(ValueError, match=r"\[0, 7\]"):
        pack_qweight(torch.full((32, 32), 8, dtype=torch.int32), 3)
    with pytest.raises(ValueError, match="in_features=64"):
        unpack_qweight(torch.zeros(4, 32, dtype=torch.int32), 4, 64)


def test_pack_round_trips_a_real_layer_size():
    # no wall-clock bound here (it failed on a loaded shared host); both directions take ~0.1 s
    codes = torch.randint(0, 8, (4864, 896), dtype=torch.int32)
    back = unpack_qweight(pack_qweight(codes, 3), 3, 896)
    assert torch.equal(back, codes)


def test_4bit_layout_matches_an_explicit_loop():
    g = torch.Generator().manual_seed(0)
    codes = torch.randint(0, 16, (3, 64), generator=g)
    expected = torch.zeros(8, 3, dtype=torch.int32)
    for j in range(3):  # word k of column j holds codes[j, 8k+i] << 4i
        for k in range(8):
            word = sum(int(codes[j, 8 * k + i]) << (4 * i) for i in range(8))
            expected[k, j] = _as_int32(word)
    assert torch.equal(pack_qweight(codes, 4), expected)
    # the nibble order by hand: codes 1..8 -> 0x87654321 (a negative int32)
    c = torch.zeros(1, 32, dtype=torch.int32)
    c[0, :8] = torch.arange(1, 9)
    assert int(pack_qweight(c, 4)[0, 0]) == _as_int32(0x87654321)


def _bitstring_pack(values: list[int], bits: int) -> list[int]:
    """Concatenate little-endian `bits`-bit fields into one integer, cut into 32-bit words."""
    big = sum(v << (bits * i) for i, v in enumerate(values))
    return [_as_int32((big >> (32 * t)) & 0xFFFFFFFF) for t in range(len(values) * bits // 32)]


@pytest.mark.parametrize("bits", BITS)
def test_layout_matches_a_bit_string_for_weights_and_zeros(bits):
    g = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 2**bits, (4, 64), generator=g)
    q = pack_qweight(codes, bits)
    for j in range(4):
        for b in range(2):  # 32-value block b of row j -> words bits*b .. bits*b + bits-1
            words = _bitstring_pack(codes[j, 32 * b : 32 * b + 32].tolist(), bits)
            assert q[bits * b : bits * b + bits, j].tolist() == words
    zeros = torch.randint(0, 2**bits, (64, 2), generator=g)  # [out, n_groups], packed along out
    qz = pack_qzeros(zeros, bits, "gptq_v2")
    for grp in range(2):
        for b in range(2):
            words = _bitstring_pack(zeros[32 * b : 32 * b + 32, grp].tolist(), bits)
            assert qz[grp, bits * b : bits * b + bits].tolist() == words


def test_3bit_straddling_values():
    # value 10 sits in bits 30-31 of word 0 and bit 0 of word 1; value 21 in bit 31 of word 1
    # and bits 0-1 of word 2 (AutoGPTQ's `pack`, its `wf` table)
    c = torch.zeros(1, 32, dtype=torch.int32)
    c[0, 10] = 0b111
    assert pack_qweight(c, 3)[:, 0].tolist() == [_as_int32(0b11 << 30), 0b1, 0]
    c[0, 10], c[0, 21] = 0, 0b101
    assert pack_qweight(c, 3)[:, 0].tolist() == [0, _as_int32(1 << 31), 0b10]


# ---------------------------------------------------------------- v1 zero offset


@pytest.mark.parametrize("bits", BITS)
def test_v1_stores_zero_minus_one_and_dequant_restores_it(bits):
    g = torch.Generator().manual_seed(bits)
    out_f, in_f, gs = 32, 64, 32
    zeros = torch.randint(1, 2**bits, (out_f, 2), generator=g, dtype=torch.int32)
    qz = pack_qzeros(zeros, bits, "gptq")
    assert torch.equal(unpack_qzeros(qz, bits, "gptq_v2"), zeros - 1)  # the raw stored fields
    assert torch.equal(qz, pack_qzeros(zeros - 1, bits, "gptq_v2"))

    codes = torch.randint(0, 2**bits, (out_f, in_f), generator=g, dtype=torch.int32)
    scales = torch.rand(out_f, 2, generator=g).half()
    g_idx = torch.arange(in_f, dtype=torch.int32) // gs
    ref = scales.float()[:, g_idx.long()] * (codes - zeros[:, g_idx.long()]).float()
    qw = pack_qweight(codes, bits)
    w = dequantize_packed(qw, qz, scales.t().contiguous(), g_idx, bits, "gptq")
    assert torch.equal(w, ref)
    w_wrong = dequantize_packed(qw, qz, scales.t().contiguous(), g_idx, bits, "gptq_v2")
    assert not torch.equal(w_wrong, ref)


def test_symmetric_4bit_v1_zeros_are_the_familiar_0x77777777():
    qz = pack_qzeros(torch.full((32, 1), 8, dtype=torch.int32), 4, "gptq")
    assert qz.tolist() == [[0x77777777] * 4]


def test_v1_cannot_store_a_zero_point_of_zero():
    zeros = torch.ones(32, 1, dtype=torch.int32)
    zeros[3, 0] = 0
    with pytest.raises(ValueError, match="gptq_v2"):
        pack_qzeros(zeros, 4, "gptq")
    assert torch.equal(unpack_qzeros(pack_qzeros(zeros, 4, "gptq_v2"), 4, "gptq_v2"), zeros)


# ---------------------------------------------------------------- export / import


@dataclass
class Q:
    codes: torch.Tensor
    scales: torch.Tensor
    zeros: torch.Tensor
    g_idx: torch.Tensor


def tiny_model(seed: int = 0, tie: bool = True) -> transformers.Qwen2ForCausalLM:
    return tiny_qwen2(tie=tie, seed=seed)


def quantize_layers(model, bits, group_size, sym, act_order, include_head=False):
    """RTN per Linear (in a random column order for act-order), scales exact in float16.

    Returns {name: Q} and {name: dequantized weight}, dequant = scales[:, g_idx] * (codes - zeros[:, g_idx]).
    """
    gen = torch.Generator().manual_seed(bits)
    layers, dequant = {}, {}
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear) or (name == "lm_head" and not include_head):
            continue
        w = mod.weight.detach()
        in_f = w.shape[1]
        perm = torch.randperm(in_f, generator=gen) if act_order else torch.arange(in_f)
        res = quantize_rtn(w[:, perm], bits, group_size, sym)  # groups of permuted columns
        codes = torch.empty_like(res.codes)
        codes[:, perm] = res.codes
        g_idx = torch.empty(in_f, dtype=torch.int32)
        g_idx[perm] = (torch.arange(in_f) // (group_size or in_f)).to(torch.int32)
        scales = res.scales.half().float()
        gi = g_idx.long()
        layers[name] = Q(codes=codes, scales=scales, zeros=res.zeros, g_idx=g_idx)
        dequant[name] = scales[:, gi] * (codes - res.zeros[:, gi]).float()
    return layers, dequant


def reference_model(model, dequant):
    """The model a loader should rebuild: dequantized Linears, every other tensor through float16."""
    ref = tiny_model(seed=123, tie=model.config.tie_word_embeddings)
    with torch.no_grad():
        for k, t in model.state_dict().items():
            ref.state_dict()[k].copy_(t.half().float())
        for name, w in dequant.items():
            ref.get_submodule(name).weight.copy_(w)
    return ref


@pytest.mark.parametrize("act_order", [False, True])
@pytest.mark.parametrize("bits", BITS)
def test_export_import_is_exact_on_a_real_model(tmp_path, bits, act_order):
    model = tiny_model()
    layers, dequant = quantize_layers(model, bits, 32, sym=True, act_order=act_order)
    out = export_gptq(
        model, layers, tmp_path / "ckpt", bits=bits, group_size=32, sym=True, desc_act=act_order
    )

    state, qcfg = import_gptq(out)
    assert qcfg["bits"] == bits and qcfg["desc_act"] is act_order and qcfg["checkpoint_format"] == "gptq"
    assert set(dequant) == {k.removesuffix(".weight") for k in state if k.endswith("proj.weight")}
    for name, w in dequant.items():
        assert torch.equal(state[f"{name}.weight"], w), name
    original = model.state_dict()
    assert "lm_head.weight" not in state  # tied: stored once, as the embedding
    assert set(state) == set(original) - {"lm_head.weight"}
    for k, t in state.items():
        assert t.dtype == torch.float32
        if k.removesuffix(".weight") not in dequant:
            assert torch.equal(t, original[k].half().float()), k

    fresh = tiny_model(seed=7)
    assert load_gptq_into_(fresh, out)["bits"] == bits
    assert fresh.lm_head.weight is fresh.model.embed_tokens.weight  # still tied
    for name, w in dequant.items():
        assert torch.equal(fresh.get_submodule(name).weight, w), name
    ids = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        want = reference_model(model, dequant)(ids).logits
        got = fresh(ids).logits
    assert torch.equal(got, want)


@pytest.mark.parametrize("bits", [3, 4])
def test_asymmetric_per_channel_round_trips_in_v2(tmp_path, bits):
    model = tiny_model(seed=2)
    layers, dequant = quantize_layers(model, bits, 0, sym=False, act_order=False)
    out = export_gptq(
        model,
        layers,
        tmp_path,
        bits=bits,
        group_size=0,
        sym=False,
        desc_act=False,
        checkpoint_format="gptq_v2",
    )
    state, qcfg = import_gptq(out)
    assert qcfg["group_size"] == -1 and qcfg["checkpoint_format"] == "gptq_v2" and qcfg["sym"] is False
    for name, w in dequant.items():
        assert torch.equal(state[f"{name}.weight"], w), name


def test_v1_export_refuses_a_zero_point_of_zero(tmp_path):
    model = tiny_model()
    layers, _ = quantize_layers(model, 4, 32, sym=False, act_order=False)
    name = next(iter(layers))
    layers[name].zeros[0, 0] = 0
    with pytest.raises(ValueError, match=rf"{name}.*gptq_v2"):
        export_gptq(model, layers, tmp_path, bits=4, group_size=32, sym=False, desc_act=False)


def test_export_rejects_act_order_g_idx_without_desc_act(tmp_path):
    model = tiny_model()
    layers, _ = quantize_layers(model, 4, 32, sym=True, act_order=True)
    with pytest.raises(ValueError, match="desc_act"):
        export_gptq(model, layers, tmp_path, bits=4, group_size=32, sym=True, desc_act=False)


def test_checkpoint_files_follow_the_ecosystem_layout(tmp_path):
    model = tiny_model()
    layers, _ = quantize_layers(model, 3, 32, sym=True, act_order=True)

    class Tok:
        def save_pretrained(self, d):
            Path(d, "tokenizer.json").write_text("{}")

    out = export_gptq(
        model,
        layers,
        tmp_path,
        bits=3,
        group_size=32,
        sym=True,
        desc_act=True,
        tokenizer=Tok(),
        meta={"run": 1},
    )
    t = load_file(str(out / "model.safetensors"))
    p = "model.layers.0.mlp.down_proj"  # Linear(128 -> 64)
    assert t[f"{p}.qweight"].dtype == torch.int32 and t[f"{p}.qweight"].shape == (128 * 3 // 32, 64)
    assert t[f"{p}.qzeros"].dtype == torch.int32 and t[f"{p}.qzeros"].shape == (4, 64 * 3 // 32)
    assert t[f"{p}.scales"].dtype == torch.float16 and t[f"{p}.scales"].shape == (4, 64)
    assert t[f"{p}.g_idx"].dtype == torch.int32 and t[f"{p}.g_idx"].shape == (128,)
    assert f"{p}.weight" not in t
    assert t["model.layers.0.self_attn.q_proj.bias"].dtype == torch.float16
    assert t["model.embed_tokens.weight"].dtype == torch.float16
    assert "lm_head.weight" not in t

    qcfg = json.loads((out / "quantize_config.json").read_text())
    config = json.loads((out / "config.json").read_text())
    assert config["quantization_config"] == qcfg
    # what vLLM's GPTQConfig.from_config and GPTQModel's QuantizeConfig read
    read_by_loaders = {
        "bits",
        "group_size",
        "desc_act",
        "sym",
        "lm_head",
        "checkpoint_format",
        "quant_method",
    }
    assert read_by_loaders | {
        "damp_percent",
        "true_sequential",
        "static_groups",
        "pack_dtype",
        "meta",
    } <= set(qcfg)
    assert (qcfg["quant_method"], qcfg["checkpoint_format"], qcfg["lm_head"]) == ("gptq", "gptq", False)
    # transformers: the block parses into its own GPTQConfig (loading the weights needs optimum +
    # gptqmodel, which thinkcost does not install), and AutoConfig reads the directory
    hf_q = transformers.GPTQConfig.from_dict(config["quantization_config"])
    assert (hf_q.bits, hf_q.group_size, hf_q.desc_act, hf_q.sym, hf_q.format) == (3, 32, True, True, "gptq")
    auto = transformers.AutoConfig.from_pretrained(out)
    assert auto.quantization_config["quant_method"] == "gptq" and auto.model_type == "qwen2"
    assert json.loads((out / "thinkcost.json").read_text())["meta"] == {"run": 1}
    assert (out / "tokenizer.json").is_file()


def test_gguf_style_quantization_config_is_replaced(tmp_path):
    model = tiny_model()
    model.config.quantization_config = {"quant_method": "gguf"}
    layers, _ = quantize_layers(model, 4, 32, sym=True, act_order=False)
    out = export_gptq(model, layers, tmp_path, bits=4, group_size=32, sym=True, desc_act=False)
    assert json.loads((out / "config.json").read_text())["quantization_config"]["quant_method"] == "gptq"


def test_quantized_untied_head_unties_the_target_model(tmp_path):
    model = tiny_model()
    model.lm_head.weight = nn.Parameter(model.lm_head.weight.detach().clone())
    model.config.tie_word_embeddings = False
    layers, dequant = quantize_layers(model, 4, 32, sym=True, act_order=False, include_head=True)
    out = export_gptq(model, layers, tmp_path, bits=4, group_size=32, sym=True, desc_act=False)
    assert json.loads((out / "quantize_config.json").read_text())["lm_head"] is True

    fresh = tiny_model(seed=5)  # tied
    load_gptq_into_(fresh, out)
    assert fresh.lm_head.weight is not fresh.model.embed_tokens.weight
    assert torch.equal(fresh.lm_head.weight, dequant["lm_head"])
    assert torch.equal(fresh.model.embed_tokens.weight, model.model.embed_tokens.weight.half().float())
    assert fresh.config.tie_word_embeddings is False


def test_export_refuses_a_tied_head_as_a_quantized_layer(tmp_path):
    model = tiny_model()
    layers, _ = quantize_layers(model, 4, 32, sym=True, act_order=False, include_head=True)
    with pytest.raises(ValueError, match="untie"):
        export_gptq(model, layers, tmp_path, bits=4, group_size=32, sym=True, desc_act=False)


# ---------------------------------------------------------------- import errors


@pytest.fixture
def ckpt(tmp_path) -> Path:
    model = tiny_model()
    layers, _ = quantize_layers(model, 4, 32, sym=True, act_order=False)
    return export_gptq(model, layers, tmp_path / "ckpt", bits=4, group_size=32, sym=True, desc_act=False)


def test_import_missing_dir(tmp_path):
    with pytest.raises(UserError, match="nope"):
        import_gptq(tmp_path / "nope")


def test_import_bad_bits(ckpt):
    f = ckpt / "quantize_config.json"
    f.write_text(json.dumps({**json.loads(f.read_text()), "bits": 5}))
    with pytest.raises(UserError, match=r"quantize_config\.json: bits: expected 2, 3, 4 or 8 bits.*got 5$"):
        import_gptq(ckpt)


def test_import_falls_back_to_config_json_then_fails_without_either(ckpt):
    (ckpt / "quantize_config.json").unlink()
    assert import_gptq(ckpt)[1]["bits"] == 4
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["quantization_config"]["bits"] = 7
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"config\.json: bits: expected 2, 3, 4 or 8 bits.*got 7$"):
        import_gptq(ckpt)
    del cfg["quantization_config"]
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(UserError, match=r"quantize_config\.json"):
        import_gptq(ckpt)


def test_import_shape_mismatch_names_file_and_tensor(ckpt):
    f = ckpt / "model.safetensors"
    t = load_file(str(f))
    key = "model.layers.1.mlp.up_proj.scales"
    t[key] = t[key][:1].contiguous()
    save_file(t, str(f))
    with pytest.raises(UserError, match=rf"model\.safetensors.*{key}.*\(1, 128\)"):
        import_gptq(ckpt)


def test_load_is_strict_about_missing_layers_and_other_architectures(ckpt):
    f = ckpt / "model.safetensors"
    t = load_file(str(f))
    good = dict(t)
    p = "model.layers.0.mlp.gate_proj"
    for s in ("qweight", "qzeros", "scales", "g_idx"):
        del t[f"{p}.{s}"]
    save_file(t, str(f))
    import_gptq(ckpt)  # the file itself is consistent
    with pytest.raises(UserError, match=rf"lacks.*{p}\.weight"):
        load_gptq_into_(tiny_model(), ckpt)

    save_file(good, str(f))
    other = tiny_qwen2(hidden=96, tie=False)
    with pytest.raises(UserError, match="shape"):
        load_gptq_into_(other, ckpt)
