"""Turn a variant name into a quantized model, in place, and back again.

The runner loads the base model once, takes `snapshot_linear_weights`, and for each variant
calls `restore_linear_weights_` then `quantize_model_`: no reload between variants.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import torch
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant.methods import QUANTIZERS, VariantSpec, parse_variant, quantizer_meta

__all__ = [  # VariantSpec and parse_variant live in methods.py; importing them from here still works
    "VariantSpec",
    "parse_variant",
    "quantize_model_",
    "restore_linear_weights_",
    "snapshot_linear_weights",
]


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
    The method's solve function comes from the registry (quant/methods.py): a weight-only one
    (RTN) touches every Linear but the LM head (unless `-head`); a calibration one (GPTQ/Babai)
    runs block by block over the transformer blocks on `calib` token ids. `ckpt:PATH` loads a
    GPTQ checkpoint's quantized Linear weights into the model. Returns {n_layers, n_weights,
    bits_per_weight_effective, bits_per_weight_layers, bits_per_weight_model, seconds, ...}.
    A quantized weight costs its bits plus one fp16 scale and one fp16 zero per group:
    bits + 32 / group_size, with group_size = in_features for per-channel. "effective" averages
    that over the quantized weights (None for `base`); "layers" and "model" are the two figures
    of `bits_per_weight_figures`, which every variant has (base included).
    """
    t0 = time.perf_counter()
    if spec.method == "base":
        return {"n_layers": 0, "n_weights": 0, "bits_per_weight_effective": None, "seconds": 0.0} | (
            bits_per_weight_figures(model, {})
        )
    if spec.method == "ckpt":
        from .checkpoint import load_gptq_into_

        qcfg = load_gptq_into_(model, spec.path, quantized_only=True)
        bits, group = int(qcfg["bits"]), int(qcfg.get("group_size", -1))
        stored = {
            f"{name}.weight": bits + 32 / (group if group > 0 else model.get_submodule(name).in_features)
            for name in _checkpoint_layers(spec.path)
        }
        return {
            "n_layers": len(stored),
            "n_weights": sum(model.get_parameter(k).numel() for k in stored),
            "checkpoint": spec.path,
            "quantize_config": qcfg,
            "bits_per_weight_effective": _mean_bits(model, stored),
            "seconds": time.perf_counter() - t0,
        } | bits_per_weight_figures(model, stored)
    if spec.method not in QUANTIZERS:
        raise UserError(f"variant {spec.name!r}: unknown method {spec.method!r}")
    solve = QUANTIZERS.get(spec.method)
    if quantizer_meta(spec.method).calibration:
        return _quantize_hessian_(model, spec, solve, calib, on_block, t0)
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

    stored: dict[str, float] = {}
    for name, mod in layers:
        # row-major whatever the engine stores (engines.linear_layout): same rounding as always
        res = solve(mod.weight.contiguous(), spec.bits, spec.group_size, spec.sym)
        mod.weight.copy_(res.dequant.to(mod.weight.dtype))
        stored[f"{name}.weight"] = spec.bits + 32 / (spec.group_size or mod.in_features)
    return {
        "n_layers": len(layers),
        "n_weights": sum(mod.weight.numel() for _, mod in layers),
        "bits_per_weight_effective": _mean_bits(model, stored),
        "seconds": time.perf_counter() - t0,
    } | bits_per_weight_figures(model, stored)


def _quantize_hessian_(model, spec: VariantSpec, solve, calib, on_block, t0: float) -> dict:
    """A calibration method (GPTQ, Babai, ...) through the sequential block-wise driver."""
    from .gptq import GPTQConfig
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
    layers = quantize_sequential_(model, calib, lambda W, H, _name: solve(W, H, cfg), on_block=on_block)
    stored = {
        f"{name}.weight": spec.bits + 32 / (spec.group_size or r.codes.shape[1]) for name, r in layers.items()
    }
    return {
        "n_layers": len(layers),
        "n_weights": sum(r.codes.numel() for r in layers.values()),
        "bits_per_weight_effective": _mean_bits(model, stored),
        **bits_per_weight_figures(model, stored),
        "proxy_loss": float(sum(r.proxy_loss for r in layers.values())),
        "calib_shape": list(calib.shape),
        "order": spec.order,
        "seconds": time.perf_counter() - t0,
        "layers": layers,
    }


def _checkpoint_layers(path: str | None) -> set[str]:
    """Names of the Linear layers a GPTQ checkpoint stores packed (read from the headers only)."""
    from safetensors import safe_open

    names: set[str] = set()
    for f in sorted(Path(str(path)).glob("*.safetensors")):
        with safe_open(str(f), "pt") as h:
            keys = h.keys()  # a safe_open handle is not itself iterable
        names |= {k.removesuffix(".qweight") for k in keys if k.endswith(".qweight")}
    return names


def _mean_bits(model: nn.Module, stored: dict[str, float]) -> float | None:
    """Bits per weight averaged over the quantized weights only (`bits_per_weight_effective`)."""
    sizes = {k: model.get_parameter(k).numel() for k in stored}
    n = sum(sizes.values())
    return sum(stored[k] * sizes[k] for k in stored) / n if n else None


def bits_per_weight_figures(model: nn.Module, stored: dict[str, float]) -> dict[str, float | None]:
    """The two bits-per-weight figures of a variant, defined alike for hf and GGUF variants.

    Two, because one number cannot say both "how finely are the quantized layers stored" and
    "how big is the model": RTN counts only the Linear weights it touches, a GGUF file counts
    every tensor (embeddings, norms, a head at 6-8 bits), and the two used to be compared.
    - `bits_per_weight_layers`: over the weights of the Linear layers inside the decoder blocks
      (q/k/v/o/gate/up/down; GGUF's blk.*.attn_*/ffn_* weights).
    - `bits_per_weight_model`: over every parameter (embeddings, norms, biases, LM head; a tied
      embedding counted once, as `named_parameters` yields it once).
    `stored` maps a parameter name to the bits per weight it is stored at once quantized; every
    other parameter counts at the width of the dtype it is held in (32 for float32).
    """
    from .sequential import decoder_blocks

    try:
        prefix, blocks = decoder_blocks(model)
    except UserError:  # no block stack we recognise: no layers figure
        prefix, blocks = "", nn.ModuleList()
    in_layers = {
        f"{prefix}.{i}.{name}.weight"
        for i, block in enumerate(blocks)
        for name, mod in block.named_modules()
        if isinstance(mod, nn.Linear)
    }
    bits = {"layers": 0.0, "model": 0.0}
    count = {"layers": 0, "model": 0}
    for name, p in model.named_parameters():
        b = stored.get(name, p.element_size() * 8) * p.numel()
        for part in ("layers", "model") if name in in_layers else ("model",):
            bits[part] += b
            count[part] += p.numel()
    return {f"bits_per_weight_{k}": bits[k] / count[k] if count[k] else None for k in bits}


def snapshot_linear_weights(model: nn.Module) -> Mapping[str, torch.Tensor]:
    """Every Linear weight quantize_model_ may touch, keyed `<module>.weight`: a CPU copy, or a
    read-only map of the float-weight cache file the model was loaded from (no second copy).

    An LM head tied to the input embeddings is left out: its weight *is* the embedding table,
    which we never modify, and restore re-ties it.
    """
    head = _head_name(model)
    emb = _input_embedding_weight(model)
    mods = {
        f"{name}.weight": mod
        for name, mod in model.named_modules()
        if isinstance(mod, nn.Linear) and not (name == head and _is_tied(mod, emb))
    }
    mapped = getattr(model, "thinkcost_weights_file", None)
    if mapped is not None:  # loaded from the float-weight cache: restore from the file itself
        from ..weight_cache import MappedSnapshot

        snap = MappedSnapshot(mapped, set(mods))
        if set(snap) == set(mods) and all(snap[k].shape == m.weight.shape for k, m in mods.items()):
            return snap
    return {k: mod.weight.detach().to("cpu", copy=True) for k, mod in mods.items()}


@torch.no_grad()
def restore_linear_weights_(model: nn.Module, snapshot: Mapping[str, torch.Tensor]) -> None:
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
