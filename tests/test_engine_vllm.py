"""vLLM engine: what can be checked without vLLM (variants, refusals) always runs; the real
engine runs only where vLLM and a GPU are present (CI has neither: those tests skip)."""

from __future__ import annotations

import importlib.util

import pytest

from thinkcost.engines.vllm_engine import VLLMBackend, unsupported
from thinkcost.errors import UserError
from thinkcost.spec import build_spec
from thinkcost.types import Request

MSGS = [{"role": "user", "content": "What is 2 + 2?"}]


def test_variants_are_base_or_a_checkpoint():
    VLLMBackend.check_variant("base")
    VLLMBackend.check_variant("ckpt:/tmp/gptq-w4g128")
    with pytest.raises(UserError, match="vllm engine"):
        VLLMBackend.check_variant("gguf:Q4_K_M")


def test_token_level_controls_are_refused_with_the_field_named():
    assert unsupported(Request(MSGS), "vllm") is None
    assert "think_budget" in unsupported(Request(MSGS, think_budget=8), "vllm")
    assert "max_waits" in unsupported(Request(MSGS, max_waits=1), "vllm")
    assert "penalty" in unsupported(Request(MSGS, penalty=1.0, penalty_words=("Wait",)), "vllm")
    with pytest.raises(UserError, match=r"bf-wait.*--engine hf or llamacpp"):
        build_spec({}, {"engine": "vllm", "strategy": "maj@4+bf-wait:1"})


def test_default_variants_follow_the_engine():
    assert build_spec({}, {"engine": "vllm"}).variants == ["base"]
    assert build_spec({}, {"engine": "llamacpp"}).variants == ["base", "gguf:Q8_0", "gguf:Q4_K_M"]
    assert build_spec({}, {}).variants[0] == "base" and len(build_spec({}, {}).variants) == 4


def _gpu() -> bool:
    if importlib.util.find_spec("vllm") is None:
        return False
    import torch

    return torch.cuda.is_available()


@pytest.mark.skipif(not _gpu(), reason="needs vLLM and a CUDA GPU")
def test_vllm_samples_are_per_sample_seeded_and_short_m_at_k_aborts(tmp_path):
    import vllm

    from thinkcost.engines.vllm_engine import VLLMEngine

    llm = vllm.LLM(model="HuggingFaceTB/SmolLM2-135M-Instruct", seed=0, enable_prefix_caching=True)
    eng = VLLMEngine(llm)
    base = dict(max_new_tokens=24, temperature=0.9, seed=5)
    four = eng.generate([Request(MSGS, n=4, **base)])
    alone = eng.generate([Request(MSGS, sample_ids=(2,), **base)])
    assert alone[0].text == four[2].text
    short = eng.generate([Request(MSGS, n=4, stop_after=1, **base)])
    assert (
        sum(c.finish_reason == "cancelled" for c in short) >= 1
        or len({c.completion_tokens for c in short}) == 1
    )
