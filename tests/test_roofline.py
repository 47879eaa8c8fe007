"""The roofline's counts checked against what a real (tiny, random) transformers model has and
does — its own parameter count, torch's FLOP counter over one decode step, the tensors in its KV
cache — and its math against hand-worked numbers."""

from __future__ import annotations

import json
import math

import pytest
import torch
import transformers
from torch.utils.flop_counter import FlopCounterMode

from thinkcost.errors import UserError
from thinkcost.roofline import (
    BENCH_FILE,
    MachineFigures,
    MatmulFigure,
    ModelShape,
    load_machine,
    measure_machine,
    percent_of_roofline,
    roofline,
    save_machine,
)


def tiny(kind: str = "qwen2", tied: bool = False, kv_heads: int = 2):
    torch.manual_seed(0)
    common = dict(
        hidden_size=48,
        intermediate_size=80,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=kv_heads,
        vocab_size=97,
        tie_word_embeddings=tied,
        attn_implementation="eager",  # plain bmm: torch's FLOP counter sees the attention products
    )
    if kind == "qwen2":
        return transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**common)).eval()
    return transformers.LlamaForCausalLM(transformers.LlamaConfig(head_dim=8, **common)).eval()


CASES = [("qwen2", False, 2), ("qwen2", True, 1), ("llama", False, 4), ("llama", True, 2)]


@pytest.mark.parametrize("kind,tied,kv", CASES)
def test_parameter_count_matches_the_model(kind, tied, kv):
    model = tiny(kind, tied, kv)
    shape = ModelShape.from_config(model.config)
    assert shape.qkv_bias == (kind == "qwen2")
    assert shape.parameters() == model.num_parameters()
    # bytes a step reads: every parameter once, except an untied embedding table (only rows)
    read = sum(p.numel() for n, p in model.named_parameters() if tied or "embed_tokens" not in n)
    assert shape.weights_read_per_step() == read


@pytest.mark.parametrize("kind,tied,kv", CASES)
def test_decode_flops_and_kv_match_torch_counters(kind, tied, kv):
    model = tiny(kind, tied, kv)
    shape = ModelShape.from_config(model.config)
    batch, context = 3, 11  # prefill 10 tokens, then one decode step attends to 11
    ids = torch.randint(0, 97, (batch, context))
    with torch.no_grad():
        cache = model(ids[:, :-1], use_cache=True).past_key_values
        counter = FlopCounterMode(display=False)
        with counter:
            model(ids[:, -1:], cache=cache, use_cache=True)
    assert counter.get_total_flops() == batch * shape.flops_per_token(context)
    kv_elements = sum(layer.keys.numel() + layer.values.numel() for layer in cache.layers)
    assert kv_elements == batch * shape.kv_values(context)


def test_qwen25_05b_config_gives_its_published_parameter_count():
    # Qwen2.5-0.5B(-Instruct), tied embeddings: 494,032,768 parameters on its model card.
    shape = ModelShape(896, 4864, 24, 14, 2, 151936, 64, tied=True, qkv_bias=True)
    assert shape.parameters() == 494_032_768


def machine(bw_gbs: float, **peaks: float) -> MachineFigures:
    mms = [MatmulFigure(d, "made-up", 1, 1, 1, g) for d, g in peaks.items()]
    mms.append(MatmulFigure("float32", "slower shape", 1, 1, 1, min(peaks.values()) / 2))
    return MachineFigures(threads=2, bandwidth_gbs=bw_gbs, matmuls=tuple(mms))


# hidden 4, intermediate 8, 1 layer, 2 heads of dim 2, 1 kv head, vocab 10, tied, no bias:
# block weights q,o 2*16 + k,v 2*8 + mlp 3*32 = 144; matmul weights 144 + lm_head 40 = 184;
# parameters 40 (embedding) + 144 + 8 (norms) + 4 (final norm) = 196 (all read: tied)
# KV values per token 2 * 1 * 1 * 2 = 4; FLOPs per token 2*184 + 4*1*2*2*ctx = 368 + 16 ctx
HAND = ModelShape(4, 8, 1, 2, 1, 10, 2, tied=True, qkv_bias=False)


def test_hand_worked_counts():
    assert HAND.block_matmul_weights() == 144
    assert HAND.matmul_weights() == 184
    assert HAND.parameters() == HAND.weights_read_per_step() == 196
    assert HAND.kv_values(10) == 40
    assert HAND.flops_per_token(10) == 368 + 160


def test_batch_one_is_bandwidth_bound():
    m = machine(1e-6, float32=1e-6)  # 1000 bytes/s, 1000 FLOP/s
    r = roofline(HAND, m, batch=1, context=10)
    # bytes 196*4 + 40*4 = 944 -> 0.944 s; FLOPs 528 -> 0.528 s
    assert r.bytes_per_step == 944 and r.flops_per_step == 528
    assert r.bound == "bandwidth"
    assert math.isclose(r.step_s, 0.944) and math.isclose(r.tok_s, 1 / 0.944)


def test_large_batch_is_compute_bound_at_the_best_measured_peak():
    m = machine(1e-6, float32=1e-6)
    r = roofline(HAND, m, batch=8, context=10)
    # bytes 784 + 8*160 = 2064 -> 2.064 s; FLOPs 8*528 = 4224 -> 4.224 s (peak, not the slower shape)
    assert r.bound == "compute"
    assert math.isclose(r.step_s, 4.224) and math.isclose(r.tok_s, 8 / 4.224)
    assert math.isclose(percent_of_roofline(r.tok_s / 4, r), 25.0)


def test_dtype_and_quantized_weights_change_the_bytes():
    m = machine(1e-6, float32=1.0, bfloat16=1.0)  # compute free: the bytes decide
    bf16 = roofline(HAND, m, batch=1, context=10, dtype="bfloat16")
    assert bf16.bytes_per_step == 196 * 2 + 40 * 2
    q4 = roofline(HAND, m, batch=2, context=10, bits_per_weight=4)
    assert q4.bytes_per_step == 196 * 0.5 + 2 * 40 * 4  # 4-bit weights, float32 KV
    assert math.isclose(q4.tok_s, 2 / (q4.bytes_per_step / 1000))


def test_roofline_rejects_what_it_cannot_price():
    m = machine(10.0, float32=50.0)
    with pytest.raises(ValueError, match=r"bfloat16.*measured: float32"):
        roofline(HAND, m, 1, 10, dtype="bfloat16")
    with pytest.raises(ValueError, match="dtype"):
        roofline(HAND, m, 1, 10, dtype="int8")
    with pytest.raises(ValueError, match="batch"):
        roofline(HAND, m, 0, 10)


def test_bench_file_round_trip_and_bad_files(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path))
    assert load_machine() is None
    fig = machine(12.5, float32=80.0, bfloat16=300.0)
    path = save_machine(fig)
    assert path == tmp_path / BENCH_FILE
    assert load_machine() == fig
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "version": 0}))
    assert load_machine() is None  # older layout: re-measure, never misread
    path.write_text("{not json")
    with pytest.raises(UserError, match=f"{BENCH_FILE}.*doctor --bench"):
        load_machine()
    path.write_text(json.dumps({**data, "matmuls": [{"dtype": "float32"}]}))
    with pytest.raises(UserError, match="not a thinkcost machine benchmark"):
        load_machine()


def test_measure_machine_small_and_restores_threads():
    before = torch.get_num_threads()
    fig = measure_machine(threads=1, buffer_bytes=8 << 20, shapes=(("t", 8, 32, 16),))
    assert torch.get_num_threads() == before
    assert fig.threads == 1 and fig.buffer_bytes == 8 << 20
    assert [(m.dtype, m.m, m.k, m.n) for m in fig.matmuls] == [
        ("float32", 8, 32, 16),
        ("bfloat16", 8, 32, 16),
    ]
    assert fig.bandwidth_gbs > 0 and all(m.gflops > 0 for m in fig.matmuls)
    assert MachineFigures.from_json(json.loads(json.dumps(fig.to_json()))) == fig


def test_doctor_bench_prints_and_saves_the_figures(tmp_path, monkeypatch, capsys):
    import thinkcost.roofline as roofline_mod
    from thinkcost.cli import app

    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path))
    fig = machine(12.5, float32=80.0, bfloat16=300.0)
    monkeypatch.setattr(roofline_mod, "measure_machine", lambda: fig)
    app(["doctor", "--bench"], standalone_mode=False)
    out = capsys.readouterr().out
    assert "12.5 GB/s" in out and "300.0 GFLOP/s" in out and "peak float32" in out
    assert load_machine(tmp_path / BENCH_FILE) == fig
