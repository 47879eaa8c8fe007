"""The vllm engine up to and around the vLLM call, on CPU. vLLM cannot run here (no GPU, not
installed), so a stand-in `vllm` module records what thinkcost hands it — the `LLM(...)`
arguments, each request's `SamplingParams` — and answers in vLLM's output shapes
(`RequestOutput.outputs[0].token_ids / finish_reason / logprobs`, `finished`). This fake exists
only because the real part cannot run here; the GPU test in test_engine_vllm.py runs the real one.
What is checked: one request per sample with the other engines' seed formula (so a resumed
sample is the same draw), short-m@k aborts the siblings, token counts come from token ids,
finish reasons map, and the backend hands vLLM the exported Hugging Face dir."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import dataclass, field

import pytest

from thinkcost.engines import vllm_engine
from thinkcost.engines.vllm_engine import VLLMBackend, VLLMEngine
from thinkcost.types import Request

MSGS = [{"role": "user", "content": "What is 2 + 2?"}]


@dataclass
class SamplingParams:
    n: int = 1
    temperature: float = 1.0
    top_p: float = 1.0
    max_tokens: int = 16
    seed: int | None = None
    stop: list[str] | None = None
    logprobs: int | None = None
    skip_special_tokens: bool = True


@dataclass
class _Logprob:
    logprob: float


@dataclass
class _Seq:
    token_ids: list[int] = field(default_factory=list)
    finish_reason: str | None = None
    logprobs: list[dict] = field(default_factory=list)


@dataclass
class _Out:
    request_id: str
    outputs: list[_Seq]
    finished: bool


class FakeEngine:
    """vLLM's step loop: one token per live request per step. Request with seed s emits the
    text "The answer is {s % 5}." padded with s % 3 words "so", then EOS (or stops at max_tokens)."""

    def __init__(self, tok) -> None:
        self.tok = tok
        self.live: dict[str, tuple[list[int], SamplingParams, _Seq]] = {}
        self.added: list[tuple[str, list[int], SamplingParams]] = []
        self.aborted: list[str] = []

    def _script(self, p: SamplingParams) -> list[int]:
        words = " so" * (p.seed % 3)
        ids = self.tok.encode(f"Let me see{words}. The answer is {p.seed % 5}.", add_special_tokens=False)
        return [*ids, self.tok.eos_token_id]

    def add_request(self, rid, prompt, params) -> None:
        self.added.append((rid, list(prompt["prompt_token_ids"]), params))
        self.live[rid] = (self._script(params), params, _Seq())

    def has_unfinished_requests(self) -> bool:
        return bool(self.live)

    def abort_request(self, rids) -> None:
        for r in rids:
            self.aborted.append(r)
            self.live.pop(r, None)

    def step(self) -> list[_Out]:
        outs = []
        for rid, (script, p, seq) in list(self.live.items()):
            t = script[len(seq.token_ids)]
            seq.token_ids.append(t)
            seq.logprobs.append({t: _Logprob(-0.5)})
            done = t == self.tok.eos_token_id or len(seq.token_ids) >= p.max_tokens
            if done:
                seq.finish_reason = "stop" if t == self.tok.eos_token_id else "length"
                del self.live[rid]
            outs.append(_Out(rid, [_Seq(list(seq.token_ids), seq.finish_reason, list(seq.logprobs))], done))
        return outs


class FakeLLM:
    made: list[dict] = []  # noqa: RUF012 - what each LLM(...) was given, for the test to read

    def __init__(self, tok=None, **kwargs) -> None:
        FakeLLM.made.append(kwargs)
        if tok is None:
            from transformers import AutoTokenizer

            tok = AutoTokenizer.from_pretrained(kwargs["tokenizer"])
        self.tok = tok
        self.llm_engine = FakeEngine(tok)

    def get_tokenizer(self):
        return self.tok


@pytest.fixture
def fake_vllm(monkeypatch):
    mod = types.SimpleNamespace(SamplingParams=SamplingParams, LLM=FakeLLM, __version__="fake")
    monkeypatch.setitem(sys.modules, "vllm", mod)
    monkeypatch.setattr(vllm_engine, "_import_vllm", lambda: mod)
    FakeLLM.made.clear()
    return mod


def test_one_request_per_sample_with_the_shared_seed_formula(fake_vllm, smollm_tok):
    eng = VLLMEngine(FakeLLM(tok=smollm_tok))
    four = eng.generate([Request(MSGS, n=4, max_new_tokens=40, temperature=0.7, top_p=0.9, seed=5)])
    added = eng.llm.llm_engine.added
    assert len(added) == 4
    for i, (_, prompt, p) in enumerate(added):
        assert p.n == 1 and p.seed == 5 * 1_000_003 + i and p.max_tokens == 40
        assert p.temperature == 0.7 and p.top_p == 0.9 and p.logprobs == 0 and p.stop is None
        assert prompt == eng.render(Request(MSGS))  # the chat template rendered by thinkcost
    # a resumed run that needs only sample 2 gets the same draw as sample 2 of the four
    alone = eng.generate(
        [Request(MSGS, sample_ids=(2,), max_new_tokens=40, temperature=0.7, top_p=0.9, seed=5)]
    )
    assert alone[0].text == four[2].text
    assert eng.llm.llm_engine.added[-1][2].seed == 5 * 1_000_003 + 2


def test_outputs_map_to_completions_counted_from_token_ids(fake_vllm, smollm_tok):
    eng = VLLMEngine(FakeLLM(tok=smollm_tok))
    (c,) = eng.generate([Request(MSGS, max_new_tokens=40, seed=0)])
    expected = smollm_tok.encode("Let me see. The answer is 0.", add_special_tokens=False)
    assert c.finish_reason == "stop" and c.text == smollm_tok.decode(expected)
    assert c.completion_tokens == len(expected) + 1  # the EOS is generated, so it is counted
    assert c.token_ids == expected and c.prompt_tokens == len(eng.render(Request(MSGS)))
    assert c.reasoning_format == "none" and c.reasoning_tokens + c.answer_tokens == len(expected)
    assert c.logprobs == [-0.5] * (len(expected) + 1)
    (cut,) = eng.generate([Request(MSGS, max_new_tokens=3, seed=0)])
    assert cut.finish_reason == "length" and cut.completion_tokens == 3 and cut.token_ids == expected[:3]


def test_short_m_at_k_aborts_the_siblings_once_m_finished(fake_vllm, smollm_tok):
    eng = VLLMEngine(FakeLLM(tok=smollm_tok))
    # seed 0: sample i's vLLM seed is i, so sample i pads i % 3 words: sample 0 and 3 are shortest
    out = eng.generate([Request(MSGS, n=3, stop_after=1, max_new_tokens=40, seed=0)])
    reasons = [c.finish_reason for c in out]
    assert reasons == ["stop", "cancelled", "cancelled"]
    assert sorted(eng.llm.llm_engine.aborted) == sorted(r for r, *_ in eng.llm.llm_engine.added[1:])
    # lockstep: the siblings stopped when sample 0 finished, each with a prefix of its own draw
    eng2 = VLLMEngine(FakeLLM(tok=smollm_tok))
    full = eng2.generate([Request(MSGS, n=3, max_new_tokens=40, seed=0)])
    for i in (1, 2):
        assert 0 < out[i].completion_tokens <= out[0].completion_tokens < full[i].completion_tokens
        assert full[i].token_ids[: len(out[i].token_ids)] == out[i].token_ids


def test_the_backend_hands_vllm_the_exported_model_dir(fake_vllm, smollm, tmp_path, monkeypatch):
    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path / "home"))
    from rich.console import Console

    from thinkcost.models import resolve_model
    from thinkcost.spec import build_spec
    from thinkcost.tasks import get_task

    spec = build_spec({}, {"engine": "vllm", "model": "smollm2-135m", "dtype": "bfloat16", "seed": 3})
    backend = VLLMBackend(spec, resolve_model("smollm2-135m"), get_task("arithmetic"), Console(quiet=True))
    eng, info = backend.prepare("base", lambda _s: None)
    (kw,) = FakeLLM.made
    assert kw["dtype"] == "bfloat16" and kw["seed"] == 3 and kw["enable_prefix_caching"] is True
    export_dir = tmp_path / "home" / "hf-export"
    assert kw["model"].startswith(str(export_dir)) and kw["tokenizer"] == kw["model"]
    cfg = json.loads((__import__("pathlib").Path(kw["model"]) / "config.json").read_text())
    assert cfg["architectures"] == ["LlamaForCausalLM"]
    assert info["export_mode"] == "float" and info["vllm"] == "fake" and info["reasoning_format"] == "none"
    from thinkcost.engines.hf import HFEngine

    assert eng.vocab.eos_ids == HFEngine(*smollm).eos_ids  # vLLM stops where the hf engine stops
    backend.close()
    backend.prepare("base", lambda _s: None)  # a second run reuses the cached export
    assert FakeLLM.made[1]["model"] == kw["model"]
