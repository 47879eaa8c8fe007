"""A quantizer plugin is one registration: a toy method registered here becomes a variant form
(`toy-w4g32`), a `thinkcost quantize` method and an hf-engine variant, with no other edit.

The toy truncates every weight to a signed power of two, sign(w)·2^floor(log2|w|), keeping
2^(bits-1) exponents per group: those below the group's largest are raised to the lowest one.
Its weights are checked against a plain-Python computation of that rule (math.frexp, exact)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from tiny_models import tiny_qwen2
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant import QUANTIZERS, VariantSpec, parse_variant
from thinkcost.quant.apply import quantize_model_
from thinkcost.quant.solvers import SOLVERS, layer_solver

TOY = {"form": "toy-w{bits}g{group}[-head]", "calibration": False, "summary": "signed powers of two"}


@dataclass(frozen=True)
class ToyResult:
    dequant: torch.Tensor  # [out, in]


def toy_quantize(w: torch.Tensor, bits: int, group_size: int, sym: bool = True) -> ToyResult:
    """sign(w)·2^(e-1) with e = frexp exponent, clamped to the top 2^(bits-1) of its group."""
    out_f, in_f = w.shape
    g = group_size or in_f
    x = w.detach().float().reshape(out_f, in_f // g, g)  # [out, n_groups, g]
    e = torch.frexp(x).exponent  # |x| = m·2^e, m in [0.5, 1)
    top = torch.frexp(x.abs().amax(dim=2, keepdim=True)).exponent  # [out, n_groups, 1]
    e = torch.maximum(e, top - (2 ** (bits - 1) - 1))
    q = torch.sign(x) * torch.ldexp(torch.ones_like(x), e - 1)
    return ToyResult(dequant=q.reshape(out_f, in_f))


def toy_reference(w: torch.Tensor, bits: int, group_size: int) -> torch.Tensor:
    """The same rule, one weight at a time in Python floats."""
    rows = w.detach().double().tolist()
    g = group_size or len(rows[0])
    out = []
    for row in rows:
        q = []
        for k in range(0, len(row), g):
            group = row[k : k + g]
            top = math.frexp(max(abs(v) for v in group))[1]
            for v in group:
                e = max(math.frexp(v)[1], top - (2 ** (bits - 1) - 1))
                q.append(0.0 if v == 0 else math.copysign(math.ldexp(1.0, e - 1), v))
        out.append(q)
    return torch.tensor(out, dtype=torch.float32)


@pytest.fixture
def toy_calls():
    """Register the toy (recording every call) next to the built-ins; unregister it afterwards."""
    calls: list[tuple[torch.Tensor, torch.Tensor]] = []

    def toy(w: torch.Tensor, bits: int, group_size: int, sym: bool = True) -> ToyResult:
        res = toy_quantize(w, bits, group_size, sym)
        calls.append((w.detach().float().clone(), res.dequant))
        return res

    QUANTIZERS.register("toy", **TOY)(toy)
    yield calls
    QUANTIZERS.unregister("toy")


def body_linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"}


def test_the_toy_rule_matches_its_reference():
    w = torch.randn(8, 64, generator=torch.Generator().manual_seed(0)) * 0.05
    w[0, :5] = 0  # zeros stay zeros
    for bits, group in ((4, 32), (2, 16), (3, 0)):
        assert torch.equal(toy_quantize(w, bits, group).dequant, toy_reference(w, bits, group))


def test_its_form_is_a_variant_grammar_while_registered(toy_calls):
    spec = parse_variant("toy-w4g32")
    assert spec == VariantSpec(name="toy-w4g32", method="toy", bits=4, group_size=32)
    assert not spec.needs_calibration
    assert parse_variant("toy-w3g0-head").include_lm_head
    with pytest.raises(UserError, match=r"^variant 'toy-w9g32': expected 2, 3, 4, 5, 6, 7 or 8 bits, got 9$"):
        parse_variant("toy-w9g32")
    with pytest.raises(UserError) as exc:
        parse_variant("toy-w4g32-asym")  # the form declares no -asym
    assert "rtn-w{bits}g{group}[-asym][-head] or " in str(exc.value)
    assert "toy-w{bits}g{group}[-head] or ckpt:PATH" in str(exc.value)

    QUANTIZERS.unregister("toy")
    with pytest.raises(UserError) as exc:
        parse_variant("toy-w4g32")
    assert "toy" not in str(exc.value).split(";")[1]


@pytest.mark.parametrize(
    ("variant", "tie"), [("toy-w4g32", True), ("toy-w2g16-head", True), ("toy-w3g0", False)]
)
def test_quantize_model_applies_it_to_the_linears_it_names(toy_calls, variant, tie):
    model = tiny_qwen2(tie=tie)
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    spec = parse_variant(variant)
    info = quantize_model_(model, spec)

    targets = body_linears(model) | ({"lm_head": model.lm_head} if spec.include_lm_head else {})
    for name, mod in targets.items():
        assert torch.equal(mod.weight, toy_reference(before[f"{name}.weight"], spec.bits, spec.group_size)), (
            name
        )
    assert len(toy_calls) == info["n_layers"] == len(targets)
    emb = model.get_input_embeddings().weight
    assert torch.equal(emb, before["model.embed_tokens.weight"])  # never quantized, even when the head is
    if not spec.include_lm_head:
        assert torch.equal(model.lm_head.weight, before["lm_head.weight"])
    else:
        assert model.lm_head.weight is not emb and not model.config.tie_word_embeddings  # untied first
    if spec.group_size:  # the cost every weight-only method is charged: bits + fp16 scale and zero per group
        assert info["bits_per_weight_layers"] == pytest.approx(spec.bits + 32 / spec.group_size)


def test_thinkcost_quantize_accepts_it_and_refuses_a_checkpoint_it_cannot_hold(toy_calls, tmp_path):
    from thinkcost.cli import _quantize_choices_help
    from thinkcost.quantize import QuantizeJob

    assert _quantize_choices_help("method") == "rtn, gptq, babai or toy"
    assert _quantize_choices_help("order") == "natural, act-order, reverse or min-pivot"
    QuantizeJob(model="smollm2-135m", method="toy", bits=4, group_size=32, out=tmp_path / "ck").check()
    assert "toy" in SOLVERS and list(SOLVERS)[:3] == ["rtn", "gptq", "babai"]
    W, H = torch.randn(4, 32), torch.eye(32, dtype=torch.float64)
    from thinkcost.quant.gptq import GPTQConfig

    with pytest.raises(UserError, match="'toy' gives no scales and zeros per group"):
        layer_solver("toy")(W, H, GPTQConfig(bits=4, group_size=32))

    QUANTIZERS.unregister("toy")
    with pytest.raises(UserError, match=r"^--method: expected one of rtn, gptq, babai, got 'toy'$"):
        QuantizeJob(model="smollm2-135m", method="toy", bits=4, group_size=32, out=tmp_path / "ck").check()


def _byte_tokenizer():
    """A byte-level tokenizer (256 bytes + 2 specials) with a ChatML template: no model files needed."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    raw = Tokenizer(models.BPE(vocab={c: i for i, c in enumerate(alphabet)}, merges=[]))
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<|im_end|>", pad_token="<|im_end|>")
    tok.add_special_tokens({"additional_special_tokens": ["<|im_start|>"]})
    tok.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    return tok


def test_an_hf_engine_run_quantizes_with_it(toy_calls, tmp_path):
    """`thinkcost run --variants base,toy-w4g32` on the tiny model saved to a directory: the spec
    accepts the variant, the hf backend quantizes the base weights with the toy, the store says so."""
    from rich.console import Console

    from thinkcost.runner import generate
    from thinkcost.spec import build_spec
    from thinkcost.store import Store

    tok = _byte_tokenizer()
    model = tiny_qwen2(tie=False)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    model.config.eos_token_id = model.config.pad_token_id = tok.eos_token_id
    model.save_pretrained(tmp_path / "tiny")
    tok.save_pretrained(tmp_path / "tiny")
    base = {n: m.weight.detach().clone() for n, m in body_linears(model).items()}

    overrides = {"model": str(tmp_path / "tiny"), "variants": "base,toy-w4g32", "limit": 2}
    overrides |= {"max_new_tokens": 4, "batch_size": 2, "device": "cpu", "store": tmp_path / "s.sqlite"}
    done = generate(build_spec({}, overrides), Console(quiet=True))

    assert len(toy_calls) == len(base)  # once per body Linear, on the base weights, in module order
    for (name, w), (seen, q) in zip(base.items(), toy_calls, strict=True):
        assert torch.equal(seen, w), name
        assert torch.equal(q, toy_reference(w, 4, 32)), name
    store = Store(done.store_path)
    toy = {v["variant"]: v for v in store.variants(done.run_id)}["toy-w4g32"]
    assert store.count(done.run_id, "toy-w4g32") == store.count(done.run_id, "base") == 2
    store.close()
    assert (toy["method"], toy["bits"], toy["group_size"], toy["order"]) == ("toy", 4, 32, None)
    assert toy["bits_per_weight_layers"] == pytest.approx(4 + 32 / 32)
