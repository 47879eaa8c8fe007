"""The variant as a student: its grids read from the quantizer (RTN, GPTQ/Babai) or from a GPTQ
checkpoint, the model's quantized Linears swapped for fake-quant layers on those grids, and the
way back (plain Linears + grids) for export."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant.methods import QUANTIZERS, VariantSpec, quantizer_meta
from thinkcost.recover.fakequant import FakeQuantLinear, LayerGrid


def _head(model: nn.Module) -> nn.Module | None:
    get_out = getattr(model, "get_output_embeddings", None)
    return get_out() if callable(get_out) else None


def _quantized_linears(model: nn.Module, spec: VariantSpec) -> list[tuple[str, nn.Linear]]:
    """The Linears a variant quantizes: all but the LM head, unless `-head` (as quant.apply)."""
    head = _head(model)
    return [
        (n, m)
        for n, m in model.named_modules()
        if isinstance(m, nn.Linear) and (spec.include_lm_head or m is not head)
    ]


@torch.no_grad()
def variant_grids(
    model: nn.Module, spec: VariantSpec, calib: torch.Tensor | None = None
) -> dict[str, LayerGrid]:
    """Codes/scales/zeros/groups of every quantized Linear of `spec`, from the base weights in
    `model` (a calibration method quantizes the model in place through quant.apply, as the hf
    engine does, so the grids are those of the variant `thinkcost run` evaluates)."""
    if spec.method == "base":
        raise UserError("--variant base has nothing to recover: pick a quantized variant")
    if spec.method == "ckpt":
        return checkpoint_grids(spec.path)
    if spec.method not in QUANTIZERS:
        raise UserError(f"--variant {spec.name!r}: unknown method {spec.method!r}")
    assert spec.bits is not None and spec.group_size is not None
    if quantizer_meta(spec.method).calibration:
        from thinkcost.quant.apply import quantize_model_

        info = quantize_model_(model, spec, calib)
        return {
            name: LayerGrid(
                r.codes.to(torch.int32),
                r.scales.float(),
                r.zeros.to(torch.int32),
                r.g_idx.to(torch.int32),
                spec.bits,
            )
            for name, r in info["layers"].items()
        }
    solve = QUANTIZERS.get(spec.method)
    grids = {}
    for name, mod in _quantized_linears(model, spec):
        if spec.group_size and mod.in_features % spec.group_size:
            raise UserError(
                f"variant {spec.name!r}: group size {spec.group_size} does not divide "
                f"in_features={mod.in_features} of layer {name!r}"
            )
        r = solve(mod.weight, spec.bits, spec.group_size, spec.sym)
        g = spec.group_size or mod.in_features
        g_idx = torch.arange(mod.in_features, dtype=torch.int32) // g
        grids[name] = LayerGrid(
            r.codes.to(torch.int32), r.scales.float(), r.zeros.to(torch.int32), g_idx, spec.bits
        )
    return grids


def checkpoint_grids(path: str | Path | None) -> dict[str, LayerGrid]:
    """The grids stored in a GPTQ checkpoint directory (`ckpt:DIR`)."""
    from thinkcost.quant.checkpoint import import_gptq, unpack_qweight, unpack_qzeros

    _, qcfg = import_gptq(str(path))  # validates every layer's shapes and the config
    bits, fmt = int(qcfg["bits"]), qcfg["checkpoint_format"]
    raw: dict[str, torch.Tensor] = {}
    for f in sorted(Path(str(path)).glob("*.safetensors")):
        raw.update(load_file(str(f)))
    grids = {}
    for key in sorted(k for k in raw if k.endswith(".qweight")):
        name = key.removesuffix(".qweight")
        scales = raw[f"{name}.scales"].float().t().contiguous()  # [out, G]
        in_f = raw[key].shape[0] * 32 // bits
        g_idx = raw.get(f"{name}.g_idx")
        if g_idx is None:
            gs = int(qcfg.get("group_size", -1))
            g_idx = torch.arange(in_f, dtype=torch.int32) // (gs if gs > 0 else in_f)
        grids[name] = LayerGrid(
            codes=unpack_qweight(raw[key], bits, in_f),
            scales=scales,
            zeros=unpack_qzeros(raw[f"{name}.qzeros"], bits, fmt),
            g_idx=g_idx.to(torch.int32),
            bits=bits,
        )
    return grids


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, attr = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, attr, new)


def make_student_(
    model: nn.Module,
    grids: dict[str, LayerGrid],
    *,
    learn_scales: bool = False,
    lora_rank: int = 0,
    lora_alpha: float | None = None,
    seed: int = 0,
) -> dict[str, FakeQuantLinear]:
    """Swap each quantized Linear for a FakeQuantLinear on its grid, in place; freeze the rest
    (a `ckpt:` variant keeps the base model's other tensors, so training them would be lost)."""
    for p in model.parameters():
        p.requires_grad_(False)
    head = _head(model)
    out = {}
    for i, (name, grid) in enumerate(sorted(grids.items())):
        mod = model.get_submodule(name)
        if not isinstance(mod, nn.Linear) or tuple(mod.weight.shape) != tuple(grid.codes.shape):
            raise UserError(f"quantized layer {name!r} does not match the model (another architecture?)")
        fq = FakeQuantLinear(
            grid,
            mod.bias,
            learn_scales=learn_scales,
            lora_rank=lora_rank,
            lora_alpha=lora_alpha,
            seed=seed + i,
        ).to(mod.weight.device)
        _set_module(model, name, fq)
        out[name] = fq
        if mod is head and hasattr(model.config, "tie_word_embeddings"):
            model.config.tie_word_embeddings = False
    return out


@torch.no_grad()
def unmake_student_(model: nn.Module) -> dict[str, LayerGrid]:
    """Replace every FakeQuantLinear by a plain Linear holding its exported weight (scales in
    float16, codes re-rounded on that grid); returns the grids to write."""
    grids = {}
    for name, mod in list(model.named_modules()):
        if not isinstance(mod, FakeQuantLinear):
            continue
        mod.merge_()
        grid = mod.to_grid()
        lin = nn.Linear(mod.in_features, mod.out_features, bias=mod.bias is not None)
        lin.weight = nn.Parameter(grid.dequant().to(mod.weight.device), requires_grad=False)
        if mod.bias is not None:
            lin.bias = nn.Parameter(mod.bias.detach().clone(), requires_grad=False)
        _set_module(model, name, lin)
        grids[name] = grid
    return grids


def student_state(layers: dict[str, FakeQuantLinear]) -> dict[str, torch.Tensor]:
    """The trainable state of the student (what a training checkpoint must keep)."""
    return {
        f"{n}.{k}": p.detach().clone()
        for n, m in layers.items()
        for k, p in m.named_parameters()
        if p.requires_grad
    }
