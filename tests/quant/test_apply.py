import re

import pytest
import torch
import transformers
from tiny_models import tiny_qwen2
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant import VariantSpec, parse_variant
from thinkcost.quant.apply import quantize_model_, restore_linear_weights_, snapshot_linear_weights
from thinkcost.quant.rtn import quantize_rtn

# ---------------------------------------------------------------- parse_variant


@pytest.mark.parametrize(
    ("name", "method", "bits", "group", "sym", "head"),
    [
        ("base", "base", None, None, True, False),
        ("rtn-w4g32", "rtn", 4, 32, True, False),
        ("rtn-w3g128-asym", "rtn", 3, 128, False, False),
        ("rtn-w8g0", "rtn", 8, 0, True, False),
        ("rtn-w2g64-head", "rtn", 2, 64, True, True),
        ("rtn-w4g128-asym-head", "rtn", 4, 128, False, True),
    ],
)
def test_parse_variant_good(name, method, bits, group, sym, head):
    assert parse_variant(name) == VariantSpec(
        name=name, method=method, bits=bits, group_size=group, sym=sym, include_lm_head=head
    )


@pytest.mark.parametrize(
    "name",
    [
        "rtn-w4",
        "rtn-w4g",
        "rtn-wxg32",
        "RTN-w4g32",
        "rtn-w4g32-head-asym",
        "rtn-w4g32-sym",
        "gptq-w4g128-foo",
        "babai-w3g32-sideways",
        "ckpt:",
        "base-head",
        "",
        " base",
        "rtn-w4g-32",
    ],
)
def test_parse_variant_bad(name):
    with pytest.raises(UserError) as exc:
        parse_variant(name)
    msg = str(exc.value)
    assert repr(name) in msg
    assert "rtn-w{bits}g{group}[-asym][-head]" in msg
    assert "\n" not in msg


@pytest.mark.parametrize(("name", "bits"), [("rtn-w9g32", 9), ("rtn-w1g32", 1), ("gptq-w9g128", 9)])
def test_parse_variant_bad_bits_says_why(name, bits):
    """A well-formed name with a bad width: the quant.bits wording, naming the variant."""
    with pytest.raises(UserError) as exc:
        parse_variant(name)
    assert str(exc.value) == f"variant {name!r}: expected 2, 3, 4, 5, 6, 7 or 8 bits, got {bits}"


def test_variant_spec_is_frozen():
    spec = parse_variant("rtn-w4g32")
    with pytest.raises(AttributeError):
        spec.bits = 3


# ---------------------------------------------------------------- quantize_model_ on a real tiny model


def tiny_model(tie: bool = True, seed: int = 0) -> transformers.PreTrainedModel:
    return tiny_qwen2(tie=tie, seed=seed)


INPUT_IDS = torch.randint(0, 256, (2, 12), generator=torch.Generator().manual_seed(1))


@torch.no_grad()
def logits(model: nn.Module) -> torch.Tensor:
    return model(input_ids=INPUT_IDS).logits


def state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def body_linears(model: nn.Module) -> dict[str, nn.Linear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, nn.Linear) and n != "lm_head"}


def test_quantizes_every_linear_but_head():
    model = tiny_model()
    before = state(model)
    emb = model.model.embed_tokens.weight.detach().clone()
    summary = quantize_model_(model, parse_variant("rtn-w4g32"))

    layers = body_linears(model)
    assert len(layers) == 14
    for name, mod in layers.items():
        orig = before[f"{name}.weight"]
        assert not torch.equal(mod.weight, orig), name
        assert torch.equal(mod.weight, quantize_rtn(orig, 4, 32).dequant), name
        if mod.bias is not None:  # biases stay float
            assert torch.equal(mod.bias, before[f"{name}.bias"])
    assert torch.equal(model.model.embed_tokens.weight, emb)
    assert torch.equal(model.lm_head.weight, emb)
    assert model.lm_head.weight is model.model.embed_tokens.weight  # still tied
    for k, v in model.state_dict().items():  # norms etc. untouched
        if not any(k == f"{n}.weight" for n in layers):
            assert torch.equal(v, before[k]), k

    n_weights = sum(m.weight.numel() for m in layers.values())
    assert summary["n_layers"] == 14
    assert summary["n_weights"] == n_weights
    assert summary["bits_per_weight_effective"] == pytest.approx(4 + 32 / 32)
    assert summary["seconds"] >= 0


def test_per_channel_effective_bits_weighted_by_layer_size():
    model = tiny_model()
    summary = quantize_model_(model, parse_variant("rtn-w3g0-asym"))
    layers = body_linears(model).values()
    total = sum(m.weight.numel() * (3 + 32 / m.in_features) for m in layers)
    assert summary["bits_per_weight_effective"] == pytest.approx(total / summary["n_weights"])


def test_head_variant_quantizes_head_but_not_embeddings():
    model = tiny_model(tie=True)
    emb = model.model.embed_tokens.weight.detach().clone()
    summary = quantize_model_(model, parse_variant("rtn-w4g32-head"))
    assert summary["n_layers"] == 15
    assert model.lm_head.weight is not model.model.embed_tokens.weight
    assert torch.equal(model.model.embed_tokens.weight, emb)
    assert torch.equal(model.lm_head.weight, quantize_rtn(emb, 4, 32).dequant)
    assert model.config.tie_word_embeddings is False


def test_head_variant_on_untied_model():
    model = tiny_model(tie=False)
    head, emb = model.lm_head.weight.detach().clone(), model.model.embed_tokens.weight.detach().clone()
    quantize_model_(model, parse_variant("rtn-w4g32-asym-head"))
    assert torch.equal(model.lm_head.weight, quantize_rtn(head, 4, 32, sym=False).dequant)
    assert torch.equal(model.model.embed_tokens.weight, emb)


def test_base_variant_is_a_no_op():
    model = tiny_model()
    before = state(model)
    summary = quantize_model_(model, parse_variant("base"))
    assert summary["n_layers"] == 0 and summary["bits_per_weight_effective"] is None
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_8_bits_keeps_outputs_close_and_2_bits_does_not():
    model = tiny_model()
    ref = logits(model)
    snap = snapshot_linear_weights(model)

    def rel_err(variant: str) -> float:
        restore_linear_weights_(model, snap)
        quantize_model_(model, parse_variant(variant))
        return float((logits(model) - ref).norm() / ref.norm())

    err8, err2 = rel_err("rtn-w8g32"), rel_err("rtn-w2g32")
    assert err8 < 0.02
    assert err8 < err2 / 10


def test_group_not_dividing_in_features_raises_and_leaves_model_alone():
    model = tiny_model()
    before = state(model)
    with pytest.raises(
        UserError, match=r"group size 48 does not divide in_features=64 of layer 'model\.layers\.0\."
    ):
        quantize_model_(model, parse_variant("rtn-w4g48"))
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


# ---------------------------------------------------------------- snapshot / restore


@pytest.mark.parametrize("tie", [True, False])
def test_snapshot_restore_round_trip_after_each_variant(tie):
    model = tiny_model(tie=tie)
    before, ref = state(model), logits(model)
    snap = snapshot_linear_weights(model)
    assert ("lm_head.weight" in snap) is (not tie)  # a tied head is the embedding table itself

    for variant in ["rtn-w3g32-head", "rtn-w4g0-asym", "rtn-w2g64-asym-head", "base"]:
        restore_linear_weights_(model, snap)
        quantize_model_(model, parse_variant(variant))
        if variant != "base":
            assert not torch.equal(logits(model), ref)
        restore_linear_weights_(model, snap)
        after = model.state_dict()
        assert after.keys() == before.keys()
        assert all(torch.equal(after[k], before[k]) for k in before), variant
        assert torch.equal(logits(model), ref), variant
        assert (model.lm_head.weight is model.model.embed_tokens.weight) is tie
        assert model.config.tie_word_embeddings is tie


def test_snapshot_is_a_copy_on_cpu():
    model = tiny_model()
    snap = snapshot_linear_weights(model)
    w = model.model.layers[0].mlp.up_proj.weight
    assert snap["model.layers.0.mlp.up_proj.weight"].data_ptr() != w.data_ptr()
    assert all(t.device.type == "cpu" for t in snap.values())


def test_restore_rejects_snapshot_of_another_model():
    snap = snapshot_linear_weights(tiny_model())
    other = nn.Sequential()
    other.add_module("proj", nn.Linear(4, 4))
    with pytest.raises(ValueError, match="proj"):
        restore_linear_weights_(other, snap)


# ---------------------------------------------------------------- plain modules without HF helpers


class Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Linear(32, 32)
        self.lm_head = nn.Linear(32, 10, bias=False)


def test_plain_module_falls_back_to_lm_head_name():
    torch.manual_seed(0)
    model = Plain()
    head = model.lm_head.weight.detach().clone()
    body = model.body.weight.detach().clone()
    snap = snapshot_linear_weights(model)
    assert quantize_model_(model, parse_variant("rtn-w4g16"))["n_layers"] == 1
    assert torch.equal(model.lm_head.weight, head)
    assert torch.equal(model.body.weight, quantize_rtn(body, 4, 16).dequant)
    quantize_model_(model, parse_variant("rtn-w4g16-head"))
    assert not torch.equal(model.lm_head.weight, head)
    restore_linear_weights_(model, snap)
    assert torch.equal(model.lm_head.weight, head) and torch.equal(model.body.weight, body)


@pytest.mark.parametrize(
    ("name", "method", "bits", "group", "sym", "order"),
    [
        ("gptq-w4g128", "gptq", 4, 128, True, "natural"),
        ("gptq-w3g32-act-asym", "gptq", 3, 32, False, "act-order"),
        ("babai-w3g32", "babai", 3, 32, True, "natural"),
        ("babai-w4g0-min-pivot", "babai", 4, 0, True, "min-pivot"),
        ("babai-w2g64-reverse-asym", "babai", 2, 64, False, "reverse"),
    ],
)
def test_parse_hessian_variants(name, method, bits, group, sym, order):
    v = parse_variant(name)
    assert (v.method, v.bits, v.group_size, v.sym, v.order) == (method, bits, group, sym, order)
    assert v.needs_calibration


def test_parse_checkpoint_variant():
    v = parse_variant("ckpt:/models/q w3")
    assert v.method == "ckpt" and v.path == "/models/q w3" and not v.needs_calibration


# ---------------------------------------------------------------- the two bits-per-weight figures

PROJ = re.compile(r"model\.layers\.\d+\.(self_attn\.[qkvo]_proj|mlp\.(gate|up|down)_proj)\.weight")
DTYPE_BITS = {torch.float32: 32, torch.bfloat16: 16, torch.float16: 16}


def brute_force_bits(
    model: nn.Module, bits: int | None, group: int | None, head: bool
) -> tuple[float, float]:
    """(layers, model) b/w by hand: every parameter once (a tied one by its storage), the seven
    projections of each block (and the head with -head) at bits + 32/group, the rest at its dtype."""
    seen: set[int] = set()
    tot = {"layers": [0.0, 0], "model": [0.0, 0]}
    for name, p in model.named_parameters(remove_duplicate=False):
        if p.data_ptr() in seen:
            continue
        seen.add(p.data_ptr())
        quantized = bits is not None and (PROJ.fullmatch(name) or (head and name == "lm_head.weight"))
        b = bits + 32 / (group or p.shape[1]) if quantized else DTYPE_BITS[p.dtype]
        for part in ("layers", "model") if PROJ.fullmatch(name) else ("model",):
            tot[part][0] += b * p.numel()
            tot[part][1] += p.numel()
    return tot["layers"][0] / tot["layers"][1], tot["model"][0] / tot["model"][1]


@pytest.mark.parametrize(
    ("name", "tie", "dtype"),
    [
        ("base", True, torch.float32),
        ("base", False, torch.bfloat16),
        ("rtn-w4g32", True, torch.float32),
        ("rtn-w4g32", False, torch.float32),
        ("rtn-w3g0-asym", True, torch.float32),
        ("rtn-w4g32-head", True, torch.float32),
        ("rtn-w5g32-head", False, torch.float32),
        ("rtn-w8g32", True, torch.bfloat16),
    ],
)
def test_both_bits_per_weight_figures_match_a_brute_force_count(name, tie, dtype):
    model = tiny_model(tie=tie).to(dtype)
    spec = parse_variant(name)
    info = quantize_model_(model, spec)
    layers, whole = brute_force_bits(model, spec.bits, spec.group_size, spec.include_lm_head)
    assert info["bits_per_weight_layers"] == pytest.approx(layers)
    assert info["bits_per_weight_model"] == pytest.approx(whole)
    if spec.method == "base":
        assert layers == whole == DTYPE_BITS[dtype]  # the base holds every weight in its dtype
    elif spec.group_size:
        assert info["bits_per_weight_layers"] == pytest.approx(spec.bits + 32 / spec.group_size)


def test_whole_model_counts_a_tied_embedding_once():
    tied = quantize_model_(tiny_model(tie=True), parse_variant("rtn-w4g32"))
    untied = quantize_model_(tiny_model(tie=False), parse_variant("rtn-w4g32"))
    assert tied["bits_per_weight_layers"] == untied["bits_per_weight_layers"] == 5.0
    m = tiny_model(tie=True)
    n_all = sum(p.numel() for p in m.parameters())  # parameters() yields the tied table once
    n_layers = sum(p.numel() for n, p in m.named_parameters() if PROJ.fullmatch(n))
    assert tied["bits_per_weight_model"] == pytest.approx((5 * n_layers + 32 * (n_all - n_layers)) / n_all)
    assert untied["bits_per_weight_model"] > tied["bits_per_weight_model"]  # one more float32 matrix


def test_gptq_and_its_checkpoint_report_the_same_figures_as_rtn(tmp_path):
    from thinkcost.quant.checkpoint import export_gptq

    calib = torch.randint(0, 256, (2, 16), generator=torch.Generator().manual_seed(0))
    rtn = quantize_model_(tiny_model(), parse_variant("rtn-w4g32"))
    model = tiny_model()
    snap = snapshot_linear_weights(model)
    gptq = quantize_model_(model, parse_variant("gptq-w4g32"), calib)
    export_gptq(model, gptq["layers"], tmp_path / "ck", bits=4, group_size=32, sym=True, desc_act=False)
    restore_linear_weights_(model, snap)
    ckpt = quantize_model_(model, parse_variant(f"ckpt:{tmp_path / 'ck'}"))
    for key in ("bits_per_weight_layers", "bits_per_weight_model", "bits_per_weight_effective"):
        assert gptq[key] == pytest.approx(rtn[key]), key
        assert ckpt[key] == pytest.approx(rtn[key]), key
    assert ckpt["n_layers"] == gptq["n_layers"] == 14
