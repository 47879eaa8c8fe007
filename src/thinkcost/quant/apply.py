"""Turn a variant name into a quantized model, in place, and back again.

The runner loads the base model once, takes `snapshot_linear_weights`, and for each variant
calls `restore_linear_weights_` then `quantize_model_`: no reload between variants.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant.rtn import quantize_rtn


@dataclass(frozen=True)
class VariantSpec:
    """One precision of a model, parsed once from its name so later code never re-parses it."""

    name: str
    method: str  # "base" | "rtn" | "gptq" | "babai" | "ckpt"
    bits: int | None = None
    group_size: int | None = None  # 0 = per output channel
    sym: bool = True
    include_lm_head: bool = False
    order: str = "natural"  # column order for gptq/babai: natural | act-order | reverse | min-pivot
    path: str | None = None  # ckpt:PATH

    @property
    def needs_calibration(self) -> bool:
        return self.method in ("gptq", "babai")


# name -> spec. A new method adds one (regex, builder, form) row; a builder raises
# ValueError with the reason when the name has the right shape but a bad value.
_Builder = Callable[[str, re.Match[str]], VariantSpec]


def _base(name: str, m: re.Match[str]) -> VariantSpec:
    return VariantSpec(name=name, method="base")


def _rtn(name: str, m: re.Match[str]) -> VariantSpec:
    bits, group = int(m["bits"]), int(m["group"])
    if not 2 <= bits <= 8:
        raise ValueError("bits must be 2..8")
    return VariantSpec(
        name=name,
        method="rtn",
        bits=bits,
        group_size=group,
        sym=m["asym"] is None,
        include_lm_head=m["head"] is not None,
    )


_VARIANTS: list[tuple[re.Pattern[str], _Builder, str]] = [
    (re.compile(r"base"), _base, "base"),
    (
        re.compile(r"rtn-w(?P<bits>\d+)g(?P<group>\d+)(?P<asym>-asym)?(?P<head>-head)?"),
        _rtn,
        "rtn-w{bits}g{group}[-asym][-head]",
    ),
]


def _wg(m: re.Match[str]) -> tuple[int, int]:
    bits, group = int(m["bits"]), int(m["group"])
    if not 2 <= bits <= 8:
        raise ValueError("bits must be 2..8")
    return bits, group


def _gptq(name: str, m: re.Match[str]) -> VariantSpec:
    bits, group = _wg(m)
    order = "act-order" if m["act"] else "natural"
    return VariantSpec(
        name=name, method="gptq", bits=bits, group_size=group, sym=m["asym"] is None, order=order
    )


_ORDERS = {
    "natural": "natural",
    "act": "act-order",
    "act-order": "act-order",
    "reverse": "reverse",
    "min-pivot": "min-pivot",
}


def _babai(name: str, m: re.Match[str]) -> VariantSpec:
    bits, group = _wg(m)
    order = _ORDERS.get(m["order"] or "natural")
    if order is None:
        raise ValueError(f"order must be one of {', '.join(sorted(set(_ORDERS)))}")
    return VariantSpec(
        name=name, method="babai", bits=bits, group_size=group, sym=m["asym"] is None, order=order
    )


def _ckpt(name: str, m: re.Match[str]) -> VariantSpec:
    return VariantSpec(name=name, method="ckpt", path=m["path"])


_VARIANTS += [
    (
        re.compile(r"gptq-w(?P<bits>\d+)g(?P<group>\d+)(?P<act>-act)?(?P<asym>-asym)?"),
        _gptq,
        "gptq-w{bits}g{group}[-act][-asym]",
    ),
    (
        re.compile(r"babai-w(?P<bits>\d+)g(?P<group>\d+)(?:-(?P<order>[a-z-]+?))?(?P<asym>-asym)?"),
        _babai,
        "babai-w{bits}g{group}[-natural|-act|-reverse|-min-pivot][-asym]",
    ),
    (re.compile(r"ckpt:(?P<path>.+)"), _ckpt, "ckpt:PATH"),
]


def parse_variant(name: str) -> VariantSpec:
    """Validate a variant name from a spec or flag, failing with one line that shows the forms."""
    expected = "expected " + " or ".join(form for _, _, form in _VARIANTS)
    for pattern, build, _ in _VARIANTS:
        m = pattern.fullmatch(name)
        if m is not None:
            try:
                return build(name, m)
            except ValueError as e:
                raise UserError(f"unknown variant {name!r}: {e}; {expected}") from None
    raise UserError(f"unknown variant {name!r}; {expected}")


def _head_name(model: nn.Module) -> str | None:
    """Name of the LM head module: the output embedding if the model says so, else `lm_head`."""
    head = None
    get_out = getattr(model, "get_output_embeddings", None)
    if callable(get_out):
        head = get_out()
    for name, mod in model.named_modules():
        if (head is not None and mod is head) or (head is None and name == "lm_head"):
            return name
    return None


def _input_embedding_weight(model: nn.Module) -> torch.Tensor | None:
    get_in = getattr(model, "get_input_embeddings", None)
    emb = get_in() if callable(get_in) else None
    return getattr(emb, "weight", None)


def _is_tied(head: nn.Module, emb_weight: torch.Tensor | None) -> bool:
    if emb_weight is None:
        return False
    w = head.weight
    return w is emb_weight or (w.data_ptr() == emb_weight.data_ptr() and w.shape == emb_weight.shape)


def _set_tie_flag(model: nn.Module, tied: bool) -> None:
    """Keep config.tie_word_embeddings truthful, so a save or re-tie does not undo our (un)tie."""
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "tie_word_embeddings"):
        config.tie_word_embeddings = tied


def _linears(model: nn.Module, spec: VariantSpec) -> list[tuple[str, nn.Linear]]:
    head = _head_name(model)
    return [
        (name, mod)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and (spec.include_lm_head or name != head)
    ]


@torch.no_grad()
def quantize_model_(
    model: nn.Module,
    spec: VariantSpec,
    calib: torch.Tensor | None = None,
    on_block: Callable[[int, int], None] | None = None,
) -> dict:
    """Replace Linear weights by their quantized-then-dequantized values, in place.

    Weights stay float: we measure what the precision does to reasoning, not kernel speed.
    RTN touches every Linear but the LM head (unless `-head`); GPTQ/Babai run block by block
    over the transformer blocks on `calib` token ids; `ckpt:PATH` loads a GPTQ checkpoint's
    quantized Linear weights into the model. Returns {n_layers, n_weights,
    bits_per_weight_effective, seconds, ...}. The effective bits count one fp16 scale and one
    fp16 zero per group: bits + 32 / group_size, with group_size = in_features for
    per-channel; averaged over the quantized weights. None for `base`.
    """
    t0 = time.perf_counter()
    if spec.method == "base":
        return {"n_layers": 0, "n_weights": 0, "bits_per_weight_effective": None, "seconds": 0.0}
    if spec.method == "ckpt":
        from .checkpoint import load_gptq_into_

        qcfg = load_gptq_into_(model, spec.path, quantized_only=True)
        bits, group = int(qcfg["bits"]), int(qcfg.get("group_size", -1))
        return {
            "n_layers": None,
            "n_weights": None,
            "checkpoint": spec.path,
            "quantize_config": qcfg,
            "bits_per_weight_effective": bits + (32 / group if group > 0 else 0.0),
            "seconds": time.perf_counter() - t0,
        }
    if spec.needs_calibration:
        return _quantize_hessian_(model, spec, calib, on_block, t0)
    if spec.method != "rtn":
        raise UserError(f"variant {spec.name!r}: method {spec.method!r} cannot be applied in place")
    assert spec.bits is not None and spec.group_size is not None

    layers = _linears(model, spec)
    for name, mod in layers:  # check all before touching any, so a failure leaves the base model
        if spec.group_size and mod.in_features % spec.group_size:
            raise UserError(
                f"variant {spec.name!r}: group size {spec.group_size} does not divide "
                f"in_features={mod.in_features} of layer {name!r}; pick a divisor or g0 (per channel)"
            )

    head = _head_name(model)
    if spec.include_lm_head and head is not None:
        head_mod = model.get_submodule(head)
        if _is_tied(head_mod, _input_embedding_weight(model)):
            old = head_mod.weight
            head_mod.weight = nn.Parameter(old.detach().clone(), requires_grad=old.requires_grad)
            _set_tie_flag(model, False)

    n_weights, total_bits = 0, 0.0
    for _, mod in layers:
        res = quantize_rtn(mod.weight, spec.bits, spec.group_size, spec.sym)
        mod.weight.copy_(res.dequant.to(mod.weight.dtype))
        numel = mod.weight.numel()
        n_weights += numel
        total_bits += numel * (spec.bits + 32 / (spec.group_size or mod.in_features))
    return {
        "n_layers": len(layers),
        "n_weights": n_weights,
        "bits_per_weight_effective": total_bits / n_weights if n_weights else None,
        "seconds": time.perf_counter() - t0,
    }


def _quantize_hessian_(model, spec: VariantSpec, calib, on_block, t0: float) -> dict:
    """GPTQ / Babai through the sequential block-wise driver."""
    from .gptq import GPTQConfig
    from .methods import SOLVERS
    from .sequential import quantize_sequential_

    if calib is None:
        raise UserError(f"variant {spec.name!r} needs calibration data")
    cfg = GPTQConfig(bits=spec.bits, group_size=spec.group_size, sym=spec.sym, order=spec.order)
    for name, mod in model.named_modules():
        if isinstance(mod, nn.Linear) and spec.group_size and mod.in_features % spec.group_size:
            raise UserError(
                f"variant {spec.name!r}: group size {spec.group_size} does not divide "
                f"in_features={mod.in_features} of layer {name!r}; pick a divisor or g0 (per channel)"
            )
    solve = SOLVERS[spec.method]
    layers = quantize_sequential_(model, calib, lambda W, H, _name: solve(W, H, cfg), on_block=on_block)
    n_weights = sum(r.codes.numel() for r in layers.values())
    total_bits = sum(
        r.codes.numel() * (spec.bits + 32 / (spec.group_size or r.codes.shape[1])) for r in layers.values()
    )
    return {
        "n_layers": len(layers),
        "n_weights": n_weights,
        "bits_per_weight_effective": total_bits / n_weights if n_weights else None,
        "proxy_loss": float(sum(r.proxy_loss for r in layers.values())),
        "calib_shape": list(calib.shape),
        "order": spec.order,
        "seconds": time.perf_counter() - t0,
        "layers": layers,
    }


def snapshot_linear_weights(model: nn.Module) -> dict[str, torch.Tensor]:
    """Copy (to CPU) every Linear weight quantize_model_ may touch, keyed `<module>.weight`.

    An LM head tied to the input embeddings is left out: its weight *is* the embedding table,
    which we never modify, and restore re-ties it.
    """
    head = _head_name(model)
    emb = _input_embedding_weight(model)
    return {
        f"{name}.weight": mod.weight.detach().to("cpu", copy=True)
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and not (name == head and _is_tied(mod, emb))
    }


@torch.no_grad()
def restore_linear_weights_(model: nn.Module, snapshot: dict[str, torch.Tensor]) -> None:
    """Put back the weights of `snapshot_linear_weights`, re-tying an LM head that was tied."""
    head = _head_name(model)
    seen = set()
    for name, mod in model.named_modules():
        if not isinstance(mod, nn.Linear):
            continue
        key = f"{name}.weight"
        if key in snapshot:
            mod.weight.copy_(snapshot[key])
            seen.add(key)
        elif name == head and (emb := _input_embedding_weight(model)) is not None:
            if not _is_tied(mod, emb):
                mod.weight = emb
                _set_tie_flag(model, True)
        else:
            raise ValueError(f"snapshot has no weight for Linear {name!r}: it was taken from another model")
    if extra := sorted(set(snapshot) - seen):
        raise ValueError(f"snapshot weights not in this model: {extra[:3]}")
