"""`thinkcost export-model`: the packaged model (and its variants) as a Hugging Face model dir that
transformers reloads to the same weights, tokens and chat template as the hf engine."""

from __future__ import annotations

import json

import pytest
import torch

from cli_run import cli, one_line_error
from export_helpers import rtn_checkpoint
from thinkcost.engines.hf import HFEngine
from thinkcost.quant.checkpoint import import_gptq
from thinkcost.quant.export_model import export_model
from thinkcost.reasoning import render_prompt
from thinkcost.types import Request

MSGS = [{"role": "user", "content": "What is 7 + 5? Answer with a number."}]


def _reload(path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(str(path)).eval(), AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="module")
def base_dir(tmp_path_factory, smollm):
    return export_model("smollm2-135m", tmp_path_factory.mktemp("exp") / "base", dtype="float32").path


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory, smollm):
    model, tok = smollm
    return rtn_checkpoint(model, tok, tmp_path_factory.mktemp("ck") / "ckpt")


def test_base_export_is_a_plain_hf_dir(base_dir):
    names = {p.name for p in base_dir.iterdir()}
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= names
    assert {"tokenizer_config.json", "thinkcost_export.json"} <= names
    cfg = json.loads((base_dir / "config.json").read_text())
    assert "quantization_config" not in cfg and cfg["architectures"] == ["LlamaForCausalLM"]
    assert "chat_template" in json.loads((base_dir / "tokenizer_config.json").read_text())
    gen = json.loads((base_dir / "generation_config.json").read_text())
    assert not {"temperature", "top_p", "top_k", "do_sample", "repetition_penalty"} & set(gen)
    info = json.loads((base_dir / "thinkcost_export.json").read_text())
    assert info["mode"] == "float" and info["dtype"] == "float32" and "dequantized" in info["what"]


def test_reloaded_export_has_the_same_logits_tokens_and_template(base_dir, smollm):
    model, tok = smollm
    m2, t2 = _reload(base_dir)
    assert render_prompt(t2, MSGS, "auto") == render_prompt(tok, MSGS, "auto")
    ids = tok(render_prompt(tok, MSGS, "auto"), return_tensors="pt", add_special_tokens=False).input_ids
    assert torch.equal(
        ids, t2(render_prompt(t2, MSGS, "auto"), return_tensors="pt", add_special_tokens=False).input_ids
    )
    with torch.no_grad():
        assert torch.allclose(model(ids).logits, m2(ids).logits, atol=1e-5, rtol=0)  # float32: same weights
    gen = json.loads((base_dir / "generation_config.json").read_text())
    hf = HFEngine(model, tok)
    assert set(gen["eos_token_id"]) == hf.eos_ids  # vLLM will stop where the hf engine stops
    req = Request(MSGS, max_new_tokens=24)
    a, b = hf.generate([req])[0], HFEngine(m2, t2).generate([req])[0]
    assert a.text == b.text and a.completion_tokens == b.completion_tokens


def test_packed_gptq_export_keeps_the_checkpoint_tensors(ckpt, tmp_path):
    res = export_model("smollm2-135m", tmp_path / "q", variant=f"ckpt:{ckpt}")
    assert res.mode == "gptq" and res.info["dtype"] == "float16"
    cfg = json.loads((res.path / "config.json").read_text())
    assert cfg["quantization_config"]["quant_method"] == "gptq" and cfg["quantization_config"]["bits"] == 4
    assert (res.path / "quantize_config.json").is_file() and (res.path / "generation_config.json").is_file()
    got, qcfg = import_gptq(res.path)
    want, _ = import_gptq(ckpt)
    assert got.keys() == want.keys() and qcfg["group_size"] == 32
    for k in want:
        assert torch.equal(got[k], want[k]), k  # float16 in, float16 out: unchanged


def test_dequantized_checkpoint_export_equals_the_dequantized_checkpoint(ckpt, tmp_path, smollm):
    res = export_model(
        "smollm2-135m", tmp_path / "dq", variant=f"ckpt:{ckpt}", dequantize=True, dtype="float32"
    )
    assert res.mode == "float" and res.info["quantize"]["n_layers"] == 30 * 7
    m2, _ = _reload(res.path)
    state, want_base = m2.state_dict(), smollm[0].state_dict()
    deq, _ = import_gptq(ckpt)
    quantized = {k for k in deq if ".layers." in k and k.endswith("proj.weight")}
    assert len(quantized) == 30 * 7
    for k in quantized:
        assert torch.equal(state[k], deq[k]), k
    for k in ("model.embed_tokens.weight", "model.norm.weight", "model.layers.0.input_layernorm.weight"):
        assert torch.equal(state[k], want_base[k]), k  # quantized_only: the rest is the base, as on hf


def test_rtn_variant_export_is_the_fake_quantized_model(tmp_path, smollm):
    from thinkcost.quant.apply import quantize_model_, restore_linear_weights_, snapshot_linear_weights
    from thinkcost.quant.methods import parse_variant

    res = export_model("smollm2-135m", tmp_path / "r", variant="rtn-w4g32", dtype="float32")
    m2, _ = _reload(res.path)
    model = smollm[0]
    snap = snapshot_linear_weights(model)
    try:
        quantize_model_(model, parse_variant("rtn-w4g32"))
        k = "model.layers.3.mlp.down_proj.weight"
        assert torch.equal(m2.state_dict()[k], model.state_dict()[k])
    finally:
        restore_linear_weights_(model, snap)


def test_export_model_errors_name_the_field(tmp_path, ckpt):
    """Each bad input is a UserError naming what to fix, before anything is written; three of
    them through the CLI as a user sees them (one line, exit 2, no traceback)."""
    from thinkcost.errors import UserError

    full = tmp_path / "full"
    full.mkdir()
    (full / "x").write_text("x")
    out = tmp_path / "o"
    cases = [
        (("gpt-17", out), {}, ["unknown model 'gpt-17'"]),
        (("smollm2-135m", full), {}, ["OUT_DIR", "not empty", "--force"]),
        (("smollm2-135m", out), {"variant": "awq"}, ["--variant", "unknown variant 'awq'"]),
        (
            ("smollm2-135m", out),
            {"variant": "gptq-w4g32"},
            ["--variant", "calibration", "thinkcost quantize"],
        ),
        (("smollm2-135m", out), {"variant": "ckpt:/nonexistent"}, ["--variant", "does not exist"]),
        (("smollm2-135m", out), {"dtype": "int8"}, ["--dtype", "float16, bfloat16 or float32"]),
        (
            ("smollm2-135m", out),
            {"variant": f"ckpt:{ckpt}", "dtype": "float32"},
            ["--dtype float32", "--dequantize"],
        ),
        (("smollm2-135m", out), {"dequantize": True}, ["--dequantize", "ckpt:PATH"]),
        (("smollm2-135m", ckpt), {"variant": f"ckpt:{ckpt}", "force": True}, ["OUT_DIR", "checkpoint"]),
    ]
    for args, kw, needles in cases:
        with pytest.raises(UserError) as e:
            export_model(*args, **kw)
        for n in needles:
            assert n in str(e.value), (args, kw, str(e.value))
    one_line_error(cli("export-model", "gpt-17", str(out)), "unknown model 'gpt-17'")
    one_line_error(cli("export-model", "smollm2-135m", str(full)), "OUT_DIR", "not empty", "--force")
    one_line_error(cli("export-model", "smollm2-135m", str(out), "--dtype", "int8"), "--dtype")
    assert (full / "x").is_file() and not out.exists()
