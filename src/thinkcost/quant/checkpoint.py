"""GPTQ checkpoints in the ecosystem's safetensors layout: export our quantized layers, import any.

One layout is read by AutoGPTQ, GPTQModel, transformers (through optimum + gptqmodel), vLLM and
SGLang. What we write and read, and where each fact was read:

Per quantized Linear `<name>` (in = in_features, out = out_features, G = number of groups):
- `<name>.qweight` int32 [in * bits / 32, out]: codes packed along the INPUT dim, column j
  holding output row j (for 4 bits word k holds codes[j, 8k + i] << 4i). AutoGPTQ
  `qlinear_cuda_old.QuantLinear` (buffer shapes, `pack`), GPTQModel
  `PackableQuantLinear.pack` / `dequantize_weight`, vLLM `GPTQLinearMethod.create_weights`
  (`packed_dim: 0`).
- `<name>.qzeros` int32 [G, out * bits / 32]: zero points packed along the OUTPUT dim (same
  sources; vLLM `packed_dim: 1`).
- `<name>.scales` float16 [G, out] (so export -> import is exact only for scales already
  representable in float16, as gptq.py makes them); `<name>.g_idx` int32 [in], the group of
  each input column (`i // group_size` without act-order); `<name>.bias` float16 if any.
- every other tensor in float16; a tied LM head is not stored (loaders re-tie it).
- dequant: W[j, i] = scales[g_idx[i], j] * (q[i, j] - zero[g_idx[i], j]) (GPTQModel
  `dequantize_weight`, vLLM's torch fallback), transposed to the Linear's [out, in].

Bit layout: the values of one 32-value block are concatenated as little-endian `bits`-bit
fields into a 32*bits-bit integer split into `bits` int32 words, low word first. For 2/4/8 bits
word k holds values k*32/bits + i at bit i*bits. For 3 bits (AutoGPTQ `pack`, the `wf` shift
table [[0,3,..,30,0],[0,1,4,..,31],[0,2,5,..,29,0]]): values 0-9 at bits 0..29 of word 0,
value 10 straddles (bits 30-31 of word 0 = its low 2 bits, bit 0 of word 1 = its high bit),
values 11-20 at bits 1..30 of word 1, value 21 straddles (bit 31 of word 1, bits 0-1 of word
2), values 22-31 at bits 2..31 of word 2.

Zero points, `checkpoint_format`:
- "gptq" (v1, the default everywhere): the stored field is zero - 1 (AutoGPTQ `pack` does
  `zeros -= 1`; every v1 dequant does `zeros = zeros + 1` after unmasking, without a modulo).
  So a zero point of 0 cannot be stored in v1 (it would decode as 2^bits): `pack_qzeros`
  refuses it and points to "gptq_v2". Symmetric quantization (zero = 2^(bits-1)) never hits it.
- "gptq_v2" (GPTQModel >= 0.9): the field is the zero itself. GPTQModel converts between the
  two (`convert_gptq_v1_to_v2_format_module` adds 1 per field: 0x11111111 for 4 bits, ...);
  vLLM's `gptq_gemm(..., use_v2_format)` uses zero_offset 1 for v1 and 0 for v2.

Config (GPTQModel `QuantizeConfig.to_dict` / `from_pretrained`, SGLang `GPTQConfig.from_config`,
transformers `GPTQConfig`, vLLM `GPTQConfig.from_config`): `quantize_config.json` holds bits,
group_size (-1 = one group per output channel), desc_act (act-order: g_idx is a permuted
grouping), sym, damp_percent, true_sequential, static_groups, lm_head, quant_method "gptq",
checkpoint_format, pack_dtype "int32", meta; config.json repeats it as `quantization_config`
(transformers reads that; vLLM reads quantize_config.json, GPTQModel either; newest GPTQModel
also writes the aliases `method` and `format`, which we write and read too).
transformers 5 loads such a checkpoint only through optimum + gptqmodel (`GptqHfQuantizer`),
which this project does not install; `import_gptq` / `load_gptq_into_` are our CPU path.

Shape constraints: in_features must be a multiple of 32 (qweight) and out_features a multiple
of 32 (qzeros), as for the ecosystem's int32 packing; other sizes raise ValueError.
"""

from __future__ import annotations

import copy
import json
import math
from importlib import metadata
from pathlib import Path
from typing import Any, Literal, Protocol

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from thinkcost.errors import UserError
from thinkcost.quant.bits import check_bits

Format = Literal["gptq", "gptq_v2"]
_FORMATS = ("gptq", "gptq_v2")
_QUANT_SUFFIXES = ("qweight", "qzeros", "scales", "g_idx")


class QuantLike(Protocol):
    """What export needs from one quantized Linear (gptq.py's result, or rtn.QuantResult)."""

    codes: torch.Tensor  # [out, in] int in [0, 2^bits - 1], original column order
    scales: torch.Tensor  # [out, n_groups] float, stored as float16
    zeros: torch.Tensor  # [out, n_groups] int
    # optional g_idx: [in] int, group of each input column; contiguous groups if absent


# ---------------------------------------------------------------- bit packing


def _pack_last(values: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack [..., n] ints in [0, 2^bits) along the last dim into [..., n*bits/32] int32 words."""
    lead, n = values.shape[:-1], values.shape[-1]
    v = values.to(torch.int64).reshape(*lead, n // 32, 32)  # one 32-value block per row
    words = []
    for k in range(bits):  # word k holds bits [32k, 32k+32) of the block's 32*bits-bit integer
        lo, hi = 32 * k // bits, min(32, -(-32 * (k + 1) // bits))  # values overlapping word k
        offset = torch.arange(lo, hi, device=v.device) * bits - 32 * k  # field start within the word
        # the fields are disjoint, so their sum is their OR; bits past 31 belong to word k+1
        w = ((v[..., lo:hi] << offset.clamp(min=0)) >> (-offset).clamp(min=0)).sum(-1)
        words.append(w & 0xFFFFFFFF)
    packed = torch.stack(words, dim=-1)  # [..., n/32, bits] as uint32 values
    packed -= (packed >> 31) << 32  # the uint32 bit pattern as a signed int32 value
    return packed.to(torch.int32).reshape(*lead, n // 32 * bits)


def _unpack_last(words: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of `_pack_last`: [..., m] int32 words -> [..., m*32/bits] int32 values."""
    lead, m = words.shape[:-1], words.shape[-1]
    w = (words.to(torch.int64) & 0xFFFFFFFF).reshape(*lead, m // bits, bits)
    nxt = torch.cat([w[..., 1:], torch.zeros_like(w[..., :1])], dim=-1)
    pair = w | (nxt << 32)  # word k with word k+1 above it: a field straddling them is contiguous
    start = torch.arange(32, device=w.device) * bits
    out = (pair[..., start // 32] >> (start % 32)) & (2**bits - 1)  # [..., m/bits, 32]
    return out.to(torch.int32).reshape(*lead, m // bits * 32)


def _check_range(name: str, t: torch.Tensor, lo: int, hi: int, hint: str = "") -> None:
    if t.numel() and (int(t.min()) < lo or int(t.max()) > hi):
        raise ValueError(f"{name} must lie in [{lo}, {hi}], got [{int(t.min())}, {int(t.max())}]{hint}")


def pack_qweight(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Pack [out, in] codes into the ecosystem's qweight [in*bits/32, out] int32 (packed over in)."""
    check_bits(bits, checkpoint=True)
    if codes.dim() != 2:
        raise ValueError(f"codes must be 2-D [out, in], got shape {tuple(codes.shape)}")
    in_f = codes.shape[1]
    if in_f % 32:
        raise ValueError(f"in_features={in_f} must be a multiple of 32 to pack qweight")
    _check_range("codes", codes, 0, 2**bits - 1)
    return _pack_last(codes, bits).t().contiguous()


def unpack_qweight(qweight: torch.Tensor, bits: int, in_features: int) -> torch.Tensor:
    """Unpack qweight [in*bits/32, out] int32 back to codes [out, in] int32."""
    check_bits(bits, checkpoint=True)
    if qweight.dim() != 2 or in_features % 32 or qweight.shape[0] != in_features * bits // 32:
        raise ValueError(
            f"qweight shape {tuple(qweight.shape)} does not fit in_features={in_features} at "
            f"{bits} bits (expected [{in_features * bits // 32}, out], in_features a multiple of 32)"
        )
    return _unpack_last(qweight.t().contiguous(), bits)


def pack_qzeros(zeros: torch.Tensor, bits: int, format: Format = "gptq") -> torch.Tensor:
    """Pack zero points [out, n_groups] into qzeros [n_groups, out*bits/32] int32 (packed over out).

    format "gptq" (v1) stores zero - 1, so zeros must lie in [1, 2^bits]; "gptq_v2" stores zero.
    """
    check_bits(bits, checkpoint=True)
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if zeros.dim() != 2:
        raise ValueError(f"zeros must be 2-D [out, n_groups], got shape {tuple(zeros.shape)}")
    out_f = zeros.shape[0]
    if out_f % 32:
        raise ValueError(f"out_features={out_f} must be a multiple of 32 to pack qzeros")
    z = zeros.to(torch.int64)
    if format == "gptq":
        hint = " (checkpoint_format 'gptq' stores zero-1, so a zero of 0 needs 'gptq_v2')"
        _check_range("zeros", z, 1, 2**bits, hint)
        z = z - 1
    else:
        _check_range("zeros", z, 0, 2**bits - 1)
    return _pack_last(z.t().contiguous(), bits)


def unpack_qzeros(qzeros: torch.Tensor, bits: int, format: Format = "gptq") -> torch.Tensor:
    """Unpack qzeros [n_groups, out*bits/32] to zero points [out, n_groups] int32.

    format "gptq" adds back the v1 offset (field + 1, as every v1 loader does); "gptq_v2"
    returns the stored fields as they are (so it also shows a v1 file's raw zero - 1).
    """
    check_bits(bits, checkpoint=True)
    if format not in _FORMATS:
        raise ValueError(f"format must be one of {_FORMATS}, got {format!r}")
    if qzeros.dim() != 2 or qzeros.shape[1] % bits:
        raise ValueError(f"qzeros shape {tuple(qzeros.shape)} is not [n_groups, out*{bits}/32]")
    z = _unpack_last(qzeros, bits)
    if format == "gptq":
        z = z + 1
    return z.t().contiguous()


def dequantize_packed(
    qweight: torch.Tensor,
    qzeros: torch.Tensor,
    scales: torch.Tensor,
    g_idx: torch.Tensor,
    bits: int,
    format: Format = "gptq",
) -> torch.Tensor:
    """Float32 weight [out, in] of one packed layer: scales[:, g_idx] * (codes - zeros[:, g_idx])."""
    in_f = g_idx.shape[0]
    codes = unpack_qweight(qweight, bits, in_f)  # [out, in]
    zeros = unpack_qzeros(qzeros, bits, format)  # [out, G]
    if scales.dim() != 2 or scales.shape[1] != codes.shape[0] or zeros.shape != scales.t().shape:
        raise ValueError(
            f"scales {tuple(scales.shape)} / qzeros {tuple(qzeros.shape)} do not fit "
            f"qweight {tuple(qweight.shape)} (expected scales [n_groups, {codes.shape[0]}])"
        )
    gi = g_idx.long()
    _check_range("g_idx", gi, 0, scales.shape[0] - 1)
    s = scales.float().t()[:, gi]  # [out, in]
    return s * (codes - zeros[:, gi]).float()


# ---------------------------------------------------------------- export


def _n_groups(in_f: int, group_size: int) -> int:
    return 1 if group_size <= 0 else math.ceil(in_f / group_size)


def _storage_key(t: torch.Tensor) -> tuple:
    return (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), tuple(t.stride()))


def _thinkcost_version() -> str:
    try:
        return metadata.version("thinkcost")
    except metadata.PackageNotFoundError:
        return "unknown"


def _pack_layer(
    name: str, mod: nn.Linear, q: Any, bits: int, group_size: int, desc_act: bool, fmt: Format
) -> dict[str, torch.Tensor]:
    """The four (five with bias) checkpoint tensors of one Linear, after checking every shape."""
    out_f, in_f = mod.weight.shape
    codes, scales, zeros = q.codes, q.scales, q.zeros
    n_groups = _n_groups(in_f, group_size)
    default_g = torch.arange(in_f, dtype=torch.int32) // (group_size if group_size > 0 else in_f)
    g_idx = getattr(q, "g_idx", None)
    g_idx = default_g if g_idx is None else g_idx.to("cpu", torch.int32)
    for what, t, shape in (
        ("codes", codes, (out_f, in_f)),
        ("scales", scales, (out_f, n_groups)),
        ("zeros", zeros, (out_f, n_groups)),
        ("g_idx", g_idx, (in_f,)),
    ):
        if tuple(t.shape) != shape:
            raise ValueError(f"layer {name!r}: {what} has shape {tuple(t.shape)}, expected {shape}")
    _check_range(f"layer {name!r}: g_idx", g_idx, 0, n_groups - 1)
    if not desc_act and not torch.equal(g_idx, default_g):
        raise ValueError(f"layer {name!r}: g_idx is not i // group_size; act-order needs desc_act=True")
    scales16 = scales.detach().to("cpu", torch.float16)
    if not torch.isfinite(scales16).all() or ((scales16 == 0) & (scales != 0)).any():
        raise ValueError(f"layer {name!r}: a scale overflows or underflows float16")
    try:
        tensors = {
            f"{name}.qweight": pack_qweight(codes.detach().cpu(), bits),
            f"{name}.qzeros": pack_qzeros(zeros.detach().cpu(), bits, fmt),
            f"{name}.scales": scales16.t().contiguous(),
            f"{name}.g_idx": g_idx.contiguous(),
        }
    except ValueError as e:
        raise ValueError(f"layer {name!r}: {e}") from None
    if mod.bias is not None:
        tensors[f"{name}.bias"] = mod.bias.detach().to("cpu", torch.float16)
    return tensors


def export_gptq(
    model: nn.Module,
    layers: dict[str, QuantLike],
    out_dir: str | Path,
    *,
    bits: int,
    group_size: int,
    sym: bool,
    desc_act: bool,
    static_groups: bool = False,
    damp_percent: float = 0.01,
    true_sequential: bool = True,
    checkpoint_format: Format = "gptq",
    tokenizer: Any = None,
    meta: dict | None = None,
) -> Path:
    """Write a GPTQ checkpoint other tools (vLLM, GPTQModel, transformers) can serve; return its dir.

    `layers` maps Linear names (model.named_modules) to their codes/scales/zeros(/g_idx);
    group_size 0 or -1 means per output channel. Every other state-dict tensor is stored in
    float16, a tied LM head once (as the embedding).
    """
    check_bits(bits, checkpoint=True)
    if checkpoint_format not in _FORMATS:
        raise ValueError(f"checkpoint_format must be one of {_FORMATS}, got {checkpoint_format!r}")
    if not 0 < damp_percent < 1:
        raise ValueError(f"damp_percent must be in (0, 1) (transformers' GPTQConfig), got {damp_percent}")
    modules = dict(model.named_modules())
    for name in layers:
        if not isinstance(modules.get(name), nn.Linear):
            raise ValueError(f"{name!r} is not a Linear module of this model")

    state = model.state_dict()
    owner: dict[tuple, str] = {}  # storage -> first state-dict name holding it
    for key, t in state.items():
        owner.setdefault(_storage_key(t), key)
    tensors: dict[str, torch.Tensor] = {}
    for name, q in layers.items():
        mod = modules[name]
        if owner[_storage_key(state[f"{name}.weight"])] != f"{name}.weight":
            raise ValueError(f"layer {name!r} shares its weight with another tensor; untie it first")
        tensors.update(_pack_layer(name, mod, q, bits, group_size, desc_act, checkpoint_format))
    skip = {f"{name}.{p}" for name in layers for p in ("weight", "bias")}
    for key, t in state.items():
        if key in skip or owner[_storage_key(t)] != key:  # quantized, or a tied alias
            continue
        t = t.detach().to("cpu")
        tensors[key] = (t.to(torch.float16) if t.is_floating_point() else t).contiguous()

    get_out = getattr(model, "get_output_embeddings", None)
    head_mod = get_out() if callable(get_out) else None
    head = next((name for name, mod in modules.items() if head_mod is not None and mod is head_mod), None)
    gs = group_size if group_size > 0 else -1
    qcfg = {
        "bits": bits,
        "group_size": gs,
        "desc_act": desc_act,
        "sym": sym,
        "damp_percent": damp_percent,
        "true_sequential": true_sequential,
        "static_groups": static_groups,
        "lm_head": head is not None and head in layers,
        "quant_method": "gptq",
        "method": "gptq",
        "checkpoint_format": checkpoint_format,
        "format": checkpoint_format,
        "pack_dtype": "int32",
        "model_file_base_name": "model",
        "meta": {
            "quantizer": [f"thinkcost:{_thinkcost_version()}"],
            "damp_percent": damp_percent,
            "static_groups": static_groups,
            "true_sequential": true_sequential,
        },
    }
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    config = getattr(model, "config", None)
    cfg = copy.deepcopy(config.to_dict()) if config is not None else {}
    cfg.pop("quantization_config", None)  # e.g. the gguf flag of a model loaded from GGUF
    cfg["dtype"] = "float16"
    cfg["quantization_config"] = qcfg
    (out / "config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n")
    (out / "quantize_config.json").write_text(json.dumps(qcfg, indent=2) + "\n")
    info = {"thinkcost_version": _thinkcost_version(), "quantized_layers": sorted(layers), "meta": meta or {}}
    (out / "thinkcost.json").write_text(json.dumps(info, indent=2, default=str) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(out))
    return out


# ---------------------------------------------------------------- import


def _read_quant_config(d: Path) -> tuple[dict, Path]:
    """The quantize config and the file it came from: quantize_config.json, else config.json."""
    for fname in ("quantize_config.json", "config.json"):
        f = d / fname
        if not f.is_file():
            continue
        try:
            data = json.loads(f.read_text())
        except (OSError, ValueError) as e:
            raise UserError(f"{f}: not valid JSON ({e})") from None
        if fname == "config.json":
            data = data.get("quantization_config")
            if data is None:
                continue
        if not isinstance(data, dict):
            raise UserError(f"{f}: the quantization config is not a JSON object")
        return dict(data), f
    raise UserError(
        f"{d}: no quantize config (neither quantize_config.json nor a quantization_config block "
        "in config.json); is this a GPTQ checkpoint?"
    )


def _import(path: str | Path) -> tuple[dict[str, torch.Tensor], dict, set[str]]:
    d = Path(path)
    if not d.is_dir():
        raise UserError(f"GPTQ checkpoint directory {d} does not exist")
    qcfg, cfg_file = _read_quant_config(d)
    method = str(qcfg.get("quant_method") or qcfg.get("method") or "gptq").lower()
    if method != "gptq":
        raise UserError(f"{cfg_file}: quant_method is {method!r}; only 'gptq' checkpoints can be read")
    bits = check_bits(qcfg.get("bits"), field=f"{cfg_file}: bits", checkpoint=True)
    group_size = qcfg.get("group_size", -1)
    if not isinstance(group_size, int) or (group_size <= 0 and group_size != -1):
        raise UserError(f"{cfg_file}: group_size={group_size!r}; expected a positive int or -1")
    fmt = str(qcfg.get("checkpoint_format") or qcfg.get("format") or "gptq").lower()
    if fmt not in _FORMATS:
        raise UserError(f"{cfg_file}: checkpoint_format={fmt!r} is not supported; expected one of {_FORMATS}")
    qcfg["checkpoint_format"] = fmt

    files = sorted(d.glob("*.safetensors"))
    if not files:
        raise UserError(f"{d}: no *.safetensors file")
    raw: dict[str, torch.Tensor] = {}
    origin: dict[str, Path] = {}
    for f in files:
        try:
            part = load_file(str(f))
        except (SafetensorError, OSError) as e:
            raise UserError(f"{f}: cannot read safetensors ({e})") from None
        for k, t in part.items():
            if k in raw:
                raise UserError(f"{f}: tensor {k!r} is also in {origin[k].name}")
            raw[k], origin[k] = t, f

    prefixes = sorted(k[: -len(".qweight")] for k in raw if k.endswith(".qweight"))
    out: dict[str, torch.Tensor] = {}
    for p in prefixes:
        f = origin[f"{p}.qweight"]
        for s in ("qzeros", "scales"):
            if f"{p}.{s}" not in raw:
                raise UserError(f"{f}: layer {p!r} has a qweight but no {s}")
        qweight, qzeros, scales = raw[f"{p}.qweight"], raw[f"{p}.qzeros"], raw[f"{p}.scales"]
        if qweight.dim() != 2 or qweight.shape[0] * 32 % bits:
            raise UserError(f"{f}: {p}.qweight has shape {tuple(qweight.shape)}, not [in*{bits}/32, out]")
        in_f, out_f = qweight.shape[0] * 32 // bits, qweight.shape[1]
        if out_f % 32:
            raise UserError(f"{f}: {p}.qweight has out_features={out_f}, not a multiple of 32 as GPTQ packs")
        n_groups = _n_groups(in_f, group_size)
        g_idx = raw.get(f"{p}.g_idx")
        if g_idx is None:  # the oldest AutoGPTQ files have none: contiguous groups
            g_idx = torch.arange(in_f, dtype=torch.int32) // (group_size if group_size > 0 else in_f)
        expected = {
            "qzeros": (qzeros, (n_groups, out_f * bits // 32)),
            "scales": (scales, (n_groups, out_f)),
            "g_idx": (g_idx, (in_f,)),
        }
        for s, (t, shape) in expected.items():
            if tuple(t.shape) != shape:
                raise UserError(
                    f"{f}: {p}.{s} has shape {tuple(t.shape)}, expected {shape} for qweight "
                    f"{tuple(qweight.shape)} at bits={bits}, group_size={group_size} ({cfg_file.name}); "
                    "per-module overrides (`dynamic`) are not supported"
                )
        if g_idx.numel() and (int(g_idx.min()) < 0 or int(g_idx.max()) >= n_groups):
            raise UserError(f"{f}: {p}.g_idx has values outside [0, {n_groups - 1}]")
        out[f"{p}.weight"] = dequantize_packed(qweight, qzeros, scales, g_idx, bits, fmt)
    quant_keys = {f"{p}.{s}" for p in prefixes for s in _QUANT_SUFFIXES}
    for k, t in raw.items():
        if k in out:
            raise UserError(f"{origin[k]}: {k} is stored both packed and as a plain tensor")
        if k not in quant_keys:
            out[k] = t.float() if t.is_floating_point() else t
    return out, qcfg, set(prefixes)


def import_gptq(path: str | Path) -> tuple[dict[str, torch.Tensor], dict]:
    """Read a GPTQ checkpoint dir as a float32 state dict (quantized layers dequantized) + its config."""
    state, qcfg, _ = _import(path)
    return state, qcfg


@torch.no_grad()
def load_gptq_into_(model: nn.Module, path: str | Path, *, quantized_only: bool = False) -> dict:
    """Load a GPTQ checkpoint's dequantized weights into a same-architecture model, in place.

    Every tensor of the model must come from the checkpoint (a tied LM head may be absent; an
    untied one in the checkpoint unties the model's). With `quantized_only`, only the quantized
    Linear weights are loaded and the rest of the model is kept: that is how a `ckpt:PATH`
    variant is compared with the base it was made from. Returns the quantize config.
    """
    state, qcfg, quantized = _import(path)
    if quantized_only:
        state = {k: v for k, v in state.items() if k.removesuffix(".weight") in quantized}
    d = Path(path)
    model_state = model.state_dict(keep_vars=True)

    extra = sorted(set(state) - set(model_state))
    if extra:
        raise UserError(f"{d}: checkpoint tensors not in this model (another architecture?): {extra[:3]}")
    for k, t in state.items():
        if tuple(t.shape) != tuple(model_state[k].shape):
            raise UserError(
                f"{d}: {k} has shape {tuple(t.shape)} in the checkpoint but {tuple(model_state[k].shape)} "
                "in the model (another architecture?)"
            )

    # The checkpoint may untie what the model ties (a quantized LM head): give it its own tensor.
    seen: dict[tuple, str] = {}
    for k in [k for k in model_state if k in state]:  # model order: the embedding before the head
        t = model_state[k]
        key = _storage_key(t)
        if key in seen and isinstance(t, nn.Parameter):
            mod_name, _, pname = k.rpartition(".")
            mod = model.get_submodule(mod_name)
            setattr(mod, pname, nn.Parameter(t.detach().clone(), requires_grad=t.requires_grad))
            config = getattr(model, "config", None)
            if config is not None and hasattr(config, "tie_word_embeddings"):
                config.tie_word_embeddings = False
        seen.setdefault(key, k)
    model_state = model.state_dict(keep_vars=True)

    loaded = {_storage_key(model_state[k]) for k in state}
    missing = sorted(k for k, t in model_state.items() if k not in state and _storage_key(t) not in loaded)
    if missing and not quantized_only:
        raise UserError(
            f"{d}: the checkpoint lacks {len(missing)} tensors this model needs, e.g. {missing[:3]} "
            f"(it has {len(quantized)} quantized layers); was it exported from this architecture?"
        )
    for k, t in state.items():
        model_state[k].copy_(t.to(model_state[k].dtype))
    return qcfg
