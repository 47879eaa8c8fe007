"""llama.cpp engine and GGUF variants on the real SmolLM2 weights.

The F32 GGUF must hold exactly the hf engine's base weights, every gguf:TYPE variant is
quantized from it, and the engine must make the same decisions as the hf engine (same greedy
tokens from the same weights, same strategy mechanics)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from thinkcost.errors import UserError
from thinkcost.models import resolve_model
from thinkcost.types import Request

llama_cpp = pytest.importorskip("llama_cpp")

from thinkcost.engines.llamacpp import LlamaCppBackend, LlamaCppEngine, _sample  # noqa: E402
from thinkcost.quant.gguf_files import float_gguf, gguf_stats, quantize_gguf  # noqa: E402

PROMPTS = [
    "What is 12 + 7?",
    "Name a fruit that is yellow.",
    "What is the capital of France?",
    "Count from one to five.",
    "Write one sentence about the sea.",
    "What is 3 times 4?",
]


def _msgs(q: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": q}]


@pytest.fixture(scope="module")
def smol_gguf():
    src = resolve_model("smollm2-135m")
    from pathlib import Path

    return Path(src.path) / src.gguf_file


@pytest.fixture(scope="module")
def f32(smol_gguf, tmp_path_factory):
    return float_gguf(smol_gguf, tmp_path_factory.mktemp("gguf") / "smol-F32.gguf")


@pytest.fixture(scope="module")
def q8(f32):
    return quantize_gguf(f32, "Q8_0", f32.with_name("smol-Q8_0.gguf"))


@pytest.fixture(scope="module")
def engine(f32, smollm_tok):
    eng = LlamaCppEngine(f32, smollm_tok, batch_size=4, max_tokens_per_row=256, threads=2)
    yield eng
    eng.close()


def test_f32_gguf_holds_exactly_the_hf_base_weights(f32, smollm):
    import torch
    from transformers import AutoModelForCausalLM

    base, _ = smollm
    again = AutoModelForCausalLM.from_pretrained(str(f32.parent), gguf_file=f32.name, dtype=torch.float32)
    a, b = base.state_dict(), again.state_dict()
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_f32_gguf_keeps_metadata_and_marks_itself_f32(f32, smol_gguf):
    from gguf import GGUFReader

    src, out = GGUFReader(str(smol_gguf)), GGUFReader(str(f32))
    skip = {"general.file_type", "GGUF.kv_count"}
    for name, field in src.fields.items():
        if name in skip:
            continue
        assert name in out.fields, name
        assert out.fields[name].contents() == field.contents(), name
    assert out.fields["general.file_type"].contents() == 0  # ALL_F32
    assert {t.tensor_type.name for t in out.tensors} == {"F32"}
    assert [t.name for t in out.tensors] == [t.name for t in src.tensors]


def test_float_gguf_is_cached_by_source(f32, smol_gguf):
    before = f32.stat().st_mtime_ns
    assert float_gguf(smol_gguf, f32) == f32
    assert f32.stat().st_mtime_ns == before


def test_stats_match_an_independent_count_from_block_sizes(f32, q8):
    from gguf import GGML_QUANT_SIZES, GGUFReader

    for path in (f32, q8):
        r = GGUFReader(str(path))
        bits = 0
        n = 0
        for t in r.tensors:
            block, type_size = GGML_QUANT_SIZES[t.tensor_type]
            n += int(t.n_elements)
            bits += int(t.n_elements) // block * type_size * 8
        st = gguf_stats(path)
        assert st.n_params == n
        assert st.bits_per_weight == pytest.approx(bits / n)
        assert st.file_bytes == path.stat().st_size
        assert sum(st.types.values()) == len(r.tensors)
        assert sum(st.type_params.values()) == pytest.approx(1.0)
    assert gguf_stats(f32).bits_per_weight == 32.0
    assert 8.0 < gguf_stats(q8).bits_per_weight < 9.0  # Q8_0: 34 bytes per 32 weights, norms in F32


LAYER_WEIGHTS = ("attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down")


def test_layers_and_model_bits_match_an_independent_count(smol_gguf, f32, q8, smollm):
    """Both figures against a count by hand from gguf-py's reader: each tensor's type -> GGML block
    size, layers = the blocks' Linear weights (blk.N.<attn_*|ffn_*>.weight), model = every tensor.
    The layers are the very weights the hf engine's figure counts (its blocks' seven projections)."""
    from gguf import GGML_QUANT_SIZES, GGUFReader
    from torch import nn

    model, _ = smollm
    hf_layers = sum(
        m.weight.numel() for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"
    )
    for path in (smol_gguf, f32, q8):
        tot = {"layers": [0, 0], "model": [0, 0]}
        for t in GGUFReader(str(path)).tensors:
            block, type_size = GGML_QUANT_SIZES[t.tensor_type]
            n = int(t.n_elements)
            parts = t.name.split(".")
            is_layer = parts[0] == "blk" and parts[2] in LAYER_WEIGHTS and parts[-1] == "weight"
            for part in ("layers", "model") if is_layer else ("model",):
                tot[part][0] += n // block * type_size * 8
                tot[part][1] += n
        st = gguf_stats(path)
        assert st.bits_per_weight_layers == pytest.approx(tot["layers"][0] / tot["layers"][1])
        assert st.bits_per_weight_model == pytest.approx(tot["model"][0] / tot["model"][1])
        assert tot["layers"][1] == hf_layers == 30 * (2 * 576 * 576 + 2 * 576 * 192 + 3 * 576 * 1536)
    assert gguf_stats(f32).bits_per_weight_layers == gguf_stats(f32).bits_per_weight_model == 32.0
    assert gguf_stats(q8).bits_per_weight_layers == 8.5  # Q8_0 everywhere in the blocks: 34 bytes / 32
    assert gguf_stats(q8).bits_per_weight_model > 8.5  # F32 norms, and no lower-bit tensor outside
    packaged = gguf_stats(smol_gguf)  # Q4_1 blocks (20 bytes / 32), a Q8_0 embedding, F32 norms
    assert packaged.bits_per_weight_layers == 5.0 and 5.0 < packaged.bits_per_weight_model < 8.5


def test_unknown_gguf_type_names_the_known_ones(f32, tmp_path):
    with pytest.raises(UserError, match=r"gguf:Q9_Z.*Q4_K_M"):
        quantize_gguf(f32, "Q9_Z", tmp_path / "x.gguf")


def test_greedy_agrees_with_the_hf_engine_on_the_same_weights(engine, smollm):
    from thinkcost.engines.hf import HFEngine

    model, tok = smollm
    reqs = [Request(_msgs(q), max_new_tokens=24) for q in PROMPTS]
    ours = engine.generate(reqs)
    ref = HFEngine(model, tok, batch_size=4).generate(reqs)
    same_start = 0
    for a, b in zip(ours, ref, strict=True):
        ta = tok.encode(a.text, add_special_tokens=False)[:12]
        tb = tok.encode(b.text, add_special_tokens=False)[:12]
        same_start += ta == tb
        assert a.prompt_tokens == b.prompt_tokens  # the same rendered prompt, same tokenizer
        # logprob of each chosen token: same model, float numerics differ only slightly
        n = min(len(a.logprobs), len(b.logprobs), 8)
        if ta == tb:
            assert np.allclose(a.logprobs[:n], b.logprobs[:n], atol=0.05)
    assert same_start >= len(PROMPTS) - 1


def test_logprob_and_self_certainty_are_those_of_the_raw_distribution(engine):
    """Recompute from llama.cpp's own logits for the first generated token."""
    req = Request(_msgs(PROMPTS[0]), max_new_tokens=1)
    (c,) = engine.generate([req])
    ids = engine.tok.encode(engine.render(req), add_special_tokens=False)
    engine.lc.llama_memory_clear(engine.mem, True)
    logits = engine._decode([(t, j, 0, j == len(ids) - 1) for j, t in enumerate(ids)])[0].astype(np.float64)
    logp = logits - (logits.max() + math.log(np.exp(logits - logits.max()).sum()))
    tid = int(logits.argmax())
    assert c.logprobs[0] == pytest.approx(logp[tid], abs=1e-4)
    assert c.self_certainty == pytest.approx(-math.log(len(logits)) - logp.mean(), abs=1e-3)


def test_a_sample_is_the_same_drawn_alone_or_with_its_siblings(engine):
    base = dict(max_new_tokens=16, temperature=0.9, top_p=0.95, seed=7)
    four = engine.generate([Request(_msgs("Tell me a number."), n=4, **base)])
    alone = engine.generate([Request(_msgs("Tell me a number."), sample_ids=(2,), **base)])
    assert alone[0].text == four[2].text
    assert len({c.text for c in four}) > 1  # different ids, different draws


def test_short_m_at_k_cancels_siblings_whose_text_is_a_prefix_of_their_full_run(engine):
    base = dict(max_new_tokens=40, temperature=0.9, seed=3)
    msgs = _msgs("Write two sentences about cats.")
    full = engine.generate([Request(msgs, n=3, **base)])
    short = engine.generate([Request(msgs, n=3, stop_after=1, **base)])
    finished = [c for c in short if c.finish_reason != "cancelled"]
    cancelled = [c for c in short if c.finish_reason == "cancelled"]
    assert len(finished) >= 1
    shortest = min(c.completion_tokens for c in full)
    for c, f in zip(short, full, strict=True):
        if c.finish_reason == "cancelled":
            assert f.text.startswith(c.text)
            assert c.completion_tokens == shortest  # cut the step the first sample ended
    if min(c.completion_tokens for c in full) < max(c.completion_tokens for c in full):
        assert cancelled


def test_bf_cap_forces_the_answer_and_bounds_the_length(engine):
    req = Request(
        _msgs("Explain slowly how to add 17 and 25."), max_new_tokens=200, think_budget=8, answer_budget=6
    )
    (c,) = engine.generate([req])
    assert "Final answer:" in c.text
    assert c.forced_tokens > 0 and c.interventions == 1
    assert c.completion_tokens <= 8 + c.forced_tokens + 6


def test_sampling_is_the_top_p_nucleus():
    """Only tokens of the nucleus are ever drawn, with the nucleus' renormalised frequencies."""
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05], dtype=np.float32))
    rng = np.random.Generator(np.random.PCG64(0))
    draws = np.array([_sample(logits, 1.0, 0.8, rng) for _ in range(4000)])
    assert set(draws.tolist()) <= {0, 1}  # 0.5 + 0.3 reaches 0.8: token 2 is outside
    assert (draws == 0).mean() == pytest.approx(0.5 / 0.8, abs=0.03)


def test_a_batch_that_cannot_fit_the_kv_cache_is_refused_up_front(f32, smollm_tok):
    eng = LlamaCppEngine(f32, smollm_tok, batch_size=2, n_ctx=64, threads=2)
    try:
        with pytest.raises(ValueError, match="KV cells"):
            eng.generate([Request(_msgs("hi"), max_new_tokens=100)])
    finally:
        eng.close()


def test_backend_refuses_foreign_variants_and_non_gguf_models():
    LlamaCppBackend.check_variant("gguf:Q4_K_M")
    LlamaCppBackend.check_variant("base")
    with pytest.raises(UserError, match="engine hf"):
        LlamaCppBackend.check_variant("rtn-w4g32")
    from thinkcost.models import ModelSource
    from thinkcost.spec import RunSpec

    spec = RunSpec(engine="llamacpp", variants=["base"])
    with pytest.raises(UserError, match="GGUF"):
        LlamaCppBackend(spec, ModelSource("x", "org/x"), None, None)


def test_a_llamacpp_run_stores_real_variant_facts_and_resumes(tmp_path, monkeypatch):
    from rich.console import Console

    from thinkcost.pipeline import run
    from thinkcost.spec import RunSpec
    from thinkcost.store import Store

    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path / "home"))
    spec = RunSpec(
        engine="llamacpp",
        model="smollm2-135m",
        variants=["base", "gguf:Q8_0"],
        limit=3,
        max_new_tokens=24,
        batch_size=4,
        threads=2,
        store=tmp_path / "s.sqlite",
        out=tmp_path / "out",
    )
    first = run(spec, Console(quiet=True))
    assert first.generated == 6
    st = Store(tmp_path / "s.sqlite")
    info = {v["variant"]: v for v in st.variants(first.run_id)}
    assert info["base"]["bits_per_weight"] == 32.0 and info["base"]["gguf_type"] == "F32"
    assert 8.0 < info["gguf:Q8_0"]["bits_per_weight"] < 9.0
    q8_info = info["gguf:Q8_0"]
    assert q8_info["bits_per_weight"] == q8_info["bits_per_weight_layers"] == 8.5  # blocks all Q8_0
    assert q8_info["bits_per_weight_model"] > 8.5 and info["base"]["bits_per_weight_model"] == 32.0
    assert info["gguf:Q8_0"]["file_bytes"] < info["base"]["file_bytes"] / 3
    assert (tmp_path / "home" / "gguf" / "SmolLM2-135M-Instruct.Q4_1-F32.gguf").is_file()
    st.close()
    again = run(spec, Console(quiet=True))
    assert again.generated == 0
    assert {r.name for r in again.rows} == {"base", "gguf:Q8_0"}
