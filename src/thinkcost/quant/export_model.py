"""`thinkcost export-model`: a model and one of its variants as a standard Hugging Face model dir.

vLLM, SGLang and TGI read such a directory; none of them reads the packaged GGUF with its
tokenizer reliably. What gets written:

- `config.json`, `generation_config.json`, `model.safetensors`, the tokenizer (`tokenizer.json`,
  `tokenizer_config.json` carrying the chat template, and transformers 5's `chat_template.jinja`),
  and `thinkcost_export.json` saying what was done.
- `base` and weight-only variants (`rtn-...`): float weights in `dtype` ("float" mode). `base` of a
  packaged model is its GGUF as transformers dequantizes it (a 4-5-bit checkpoint in float: say so
  in reports); an `rtn-...` variant is that base, fake-quantized, in float.
- `ckpt:PATH` (a GPTQ checkpoint, e.g. from `thinkcost quantize`): its packed tensors (qweight,
  qzeros, scales, g_idx) copied unchanged with `quantization_config` in config.json and
  `quantize_config.json` ("gptq" mode): the layout vLLM's GPTQ kernels load (see checkpoint.py).
  Those kernels run in float16 (gptq_marlin also bfloat16), so float32 is refused there.
  With `dequantize=True` the checkpoint is loaded into the base model instead, as the hf engine
  runs it, and written as float weights ("float" mode).
- calibration variants (`gptq-...`, `babai-...`) are refused: their weights depend on calibration
  data; make a checkpoint with `thinkcost quantize` and export `ckpt:DIR`.

`generation_config.json` carries no sampling defaults (vLLM would apply them) and lists every end
token the hf engine stops at as `eos_token_id`, so vLLM stops where the hf engine does.
`cached_export` keeps one export per (model, variant, dtype) in the cache for the vllm engine.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from thinkcost.errors import UserError
from thinkcost.models import ModelSource, cache_dir, load_pretrained, resolve_model
from thinkcost.quant.methods import VariantSpec, parse_variant

EXPORT_VERSION = 1  # bump when what an export holds changes: cached exports are then rebuilt
DTYPES = ("float16", "bfloat16", "float32")
MARKER = "thinkcost_export.json"
# end-of-turn tokens the hf engine also stops at (engines/hf.py `_eos_ids`), when the vocab has them
END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>")


@dataclass(frozen=True)
class ExportResult:
    path: Path
    mode: str  # "float" | "gptq"
    info: dict[str, Any]


def _version() -> str:
    try:
        return metadata.version("thinkcost")
    except metadata.PackageNotFoundError:
        return "unknown"


def default_dtype(variant: str, dequantize: bool = False) -> str:
    """float16 for a packed GPTQ export (what vLLM's GPTQ kernels run), else bfloat16."""
    return "float16" if variant.startswith("ckpt:") and not dequantize else "bfloat16"


def check_export(variant: str, dtype: str, dequantize: bool = False) -> VariantSpec:
    """Every argument but the model and the directory, before anything is loaded."""
    if dtype not in DTYPES:
        raise UserError(f"--dtype: expected {', '.join(DTYPES[:-1])} or {DTYPES[-1]}, got {dtype!r}")
    try:
        vspec = parse_variant(variant)
    except UserError as e:
        raise UserError(f"--variant: {e}") from None
    if vspec.method == "ckpt":
        assert vspec.path is not None
        if not Path(vspec.path).expanduser().is_dir():
            raise UserError(f"--variant {variant!r}: checkpoint directory {vspec.path!r} does not exist")
        if not dequantize and dtype == "float32":
            raise UserError(
                f"--dtype float32: vLLM's GPTQ kernels run in float16 (or bfloat16), so a packed "
                f"{variant!r} export cannot be float32; pass --dtype float16, or --dequantize for float weights"
            )
    elif dequantize:
        raise UserError(f"--dequantize applies to ckpt:PATH variants only, got --variant {variant!r}")
    elif vspec.needs_calibration:
        raise UserError(
            f"--variant {variant!r} needs calibration data: write a checkpoint with "
            f"`thinkcost quantize --method {vspec.method} -o DIR` and export --variant ckpt:DIR"
        )
    return vspec


def _check_out_dir(out: Path, force: bool, sources: list[Path]) -> None:
    if out.exists() and not out.is_dir():
        raise UserError(f"OUT_DIR {str(out)!r} exists and is not a directory")
    resolved = out.resolve()
    for s in sources:
        s = s.resolve()
        if resolved == s or resolved in s.parents:
            raise UserError(
                f"OUT_DIR {str(out)!r} holds the model or checkpoint being exported; choose another"
            )
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(
            f"OUT_DIR {str(out)!r} exists and is not empty; choose a new directory or pass --force"
        )


def export_model(
    model: str,
    out_dir: str | Path,
    *,
    variant: str = "base",
    dtype: str | None = None,
    dequantize: bool = False,
    force: bool = False,
    status: Callable[[str], None] | None = None,
    _extra_info: dict[str, Any] | None = None,
) -> ExportResult:
    """Write `model` at `variant` as a Hugging Face model dir (see the module docstring)."""
    dtype = dtype or default_dtype(variant, dequantize)
    vspec = check_export(variant, dtype, dequantize)
    out = Path(out_dir).expanduser()
    source = resolve_model(model)
    ckpt = Path(vspec.path).expanduser() if vspec.path else None
    _check_out_dir(out, force, [p for p in (Path(source.path), ckpt) if p is not None and p.exists()])
    say = status or (lambda _msg: None)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))  # same disk: rename is atomic
    try:
        info: dict[str, Any] = {
            "thinkcost_version": _version(),
            "export_version": EXPORT_VERSION,
            "model": model,
            "model_source": str(Path(source.path) / source.gguf_file) if source.gguf_file else source.path,
            "variant": variant,
            "dtype": dtype,
        } | (_extra_info or {})
        if vspec.method == "ckpt" and not dequantize:
            assert ckpt is not None
            info |= _write_gptq(ckpt, source, tmp, dtype, say)
            mode = "gptq"
        else:
            info |= _write_float(source, vspec, tmp, dtype, say)
            mode = "float"
        info["mode"] = mode
        (tmp / MARKER).write_text(json.dumps(info, indent=2, default=str) + "\n")
        _public(tmp)
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return ExportResult(out, mode, info)


# ---------------------------------------------------------------- float weights


def _public(d: Path) -> None:
    """mkdtemp makes the dir (and some writers their files) private: give them the umask's modes."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    d.chmod(0o777 & ~mask)
    for f in d.iterdir():
        if f.is_file():
            f.chmod(0o666 & ~mask)


def _load(source: ModelSource):
    """float32 model + tokenizer; a GGUF through the float-weight cache (de-quantized once)."""
    from thinkcost.weight_cache import load_cached

    model, tok = load_cached(source.label, source, "float32")
    return model.eval(), tok


def _load_tokenizer(source: ModelSource):
    from transformers import AutoTokenizer

    kw = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    return load_pretrained(AutoTokenizer.from_pretrained, source.path, "model", **kw)


def _write_float(source: ModelSource, vspec: VariantSpec, out: Path, dtype: str, say) -> dict[str, Any]:
    import copy

    import torch
    from transformers import AutoModelForCausalLM

    from thinkcost.quant.apply import quantize_model_

    say("loading")
    model, tok = _load(source)
    say("quantizing")
    qinfo = quantize_model_(model, vspec)
    # A GGUF-loaded model refuses save_pretrained: build a plain one from its config (minus the
    # GGUF flag) in the target dtype and copy the weights in (load_state_dict casts them).
    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, dtype))
    fresh.load_state_dict(model.state_dict())
    say("writing")
    fresh.save_pretrained(str(out))
    _write_tokenizer(tok, out)
    _write_generation_config(out, tok, model.generation_config)
    base_note = (
        "the GGUF dequantized by transformers (itself a 4-5-bit checkpoint), "
        if source.gguf_file
        else "the model's own weights, "
    )
    what = {
        "base": f"float weights: {base_note}cast to {dtype}",
        "ckpt": f"float weights: the GPTQ checkpoint dequantized into {base_note}cast to {dtype}",
    }.get(vspec.method, f"float weights: {base_note}fake-quantized by {vspec.name}, cast to {dtype}")
    keep = ("n_layers", "n_weights", "bits_per_weight_layers", "bits_per_weight_model", "quantize_config")
    return {"what": what, "quantize": {k: qinfo[k] for k in keep if k in qinfo}}


# ---------------------------------------------------------------- packed GPTQ


def _write_gptq(ckpt: Path, source: ModelSource, out: Path, dtype: str, say) -> dict[str, Any]:
    import torch
    from safetensors.torch import load_file, save_file

    from thinkcost.quant.checkpoint import import_gptq

    say("reading checkpoint")
    _, qcfg = import_gptq(ckpt)  # every check of the reader: a broken checkpoint fails here, named
    tensors: dict[str, torch.Tensor] = {}
    for f in sorted(ckpt.glob("*.safetensors")):
        tensors.update(load_file(str(f)))
    packed = {k.rsplit(".", 1)[0] for k in tensors if k.endswith(".qweight")}
    target = getattr(torch, dtype)
    for k, t in tensors.items():
        prefix, _, leaf = k.rpartition(".")
        if prefix in packed and leaf in ("qweight", "qzeros", "scales", "g_idx"):
            continue  # the packed layout as the kernels read it (scales stay float16)
        if t.is_floating_point():
            tensors[k] = t.to(target).contiguous()
    say("writing")
    save_file(tensors, str(out / "model.safetensors"), metadata={"format": "pt"})
    cfg_file = ckpt / "config.json"
    if not cfg_file.is_file():
        raise UserError(f"{ckpt}: no config.json; a checkpoint written by `thinkcost quantize` has one")
    cfg = json.loads(cfg_file.read_text())
    cfg["quantization_config"] = {**cfg.get("quantization_config", {}), **qcfg}
    cfg["dtype"] = cfg["torch_dtype"] = dtype
    (out / "config.json").write_text(json.dumps(cfg, indent=2, default=str) + "\n")
    (out / "quantize_config.json").write_text(json.dumps(qcfg, indent=2, default=str) + "\n")
    if (ckpt / "tokenizer.json").is_file() or (ckpt / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(str(ckpt))
    else:
        tok = _load_tokenizer(source)
    _write_tokenizer(tok, out)
    gen = None
    if (ckpt / "generation_config.json").is_file():
        from transformers import GenerationConfig

        gen = GenerationConfig.from_pretrained(str(ckpt))
    _write_generation_config(out, tok, gen, cfg)
    return {
        "what": f"packed GPTQ tensors copied from {ckpt} (quantization_config in config.json); "
        f"the other tensors cast to {dtype}",
        "checkpoint": str(ckpt),
        "quantize_config": qcfg,
        "quantized_layers": len(packed),
    }


# ---------------------------------------------------------------- tokenizer and generation config


def _write_tokenizer(tok: Any, out: Path) -> None:
    """The tokenizer, with its chat template also inside tokenizer_config.json: transformers 5 writes
    it to chat_template.jinja only, which older loaders (TGI, older vLLM) do not read."""
    tok.save_pretrained(str(out))
    template = getattr(tok, "chat_template", None)
    cfg_file = out / "tokenizer_config.json"
    if isinstance(template, str) and cfg_file.is_file():
        cfg = json.loads(cfg_file.read_text())
        if "chat_template" not in cfg:
            cfg["chat_template"] = template
            cfg_file.write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")


def end_token_ids(tok: Any, gen_eos: Any = None) -> list[int]:
    """Every token generation ends at: the generation config's, the tokenizer's, and the usual
    end-of-turn markers the vocab has (the set the hf engine stops at)."""
    ids: set[int] = set()
    for src in (gen_eos, tok.eos_token_id):
        if isinstance(src, int):
            ids.add(src)
        elif src:
            ids.update(int(x) for x in src)
    for t in END_TOKENS:
        tid = tok.convert_tokens_to_ids(t)
        if isinstance(tid, int) and tid != tok.unk_token_id:
            ids.add(tid)
    return sorted(ids)


def _write_generation_config(out: Path, tok: Any, gen: Any = None, cfg: dict | None = None) -> None:
    """Token ids only: no sampling defaults, which vLLM would apply to requests."""
    cfg = cfg or {}
    gen_eos = getattr(gen, "eos_token_id", None) if gen is not None else cfg.get("eos_token_id")
    bos = getattr(gen, "bos_token_id", None) if gen is not None else cfg.get("bos_token_id")
    pad = getattr(gen, "pad_token_id", None) if gen is not None else cfg.get("pad_token_id")
    data = {
        "bos_token_id": bos if bos is not None else tok.bos_token_id,
        "eos_token_id": end_token_ids(tok, gen_eos),
        "pad_token_id": pad if pad is not None else tok.pad_token_id,
        "transformers_version": _installed("transformers"),
    }
    data = {k: v for k, v in data.items() if v is not None}
    (out / "generation_config.json").write_text(json.dumps(data, indent=2) + "\n")


def _installed(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


# ---------------------------------------------------------------- cache for the vllm engine


def export_key(model: str, variant: str, dtype: str, dequantize: bool = False) -> str:
    """What an export depends on: the model's files, the variant (a checkpoint's files), the dtype."""
    from thinkcost.hashing import path_hash

    source = resolve_model(model)
    src = Path(source.path) / source.gguf_file if source.gguf_file else Path(source.path)
    if src.exists():
        st = src.stat()
        what: Any = [str(src.resolve()), st.st_size, st.st_mtime_ns] if src.is_file() else path_hash(str(src))
    else:
        what = source.path  # a hub id: its cached snapshot
    ck = path_hash(variant[5:]) if variant.startswith("ckpt:") else None
    blob = json.dumps([EXPORT_VERSION, what, variant, ck, dtype, dequantize], default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_export(
    model: str,
    variant: str,
    dtype: str,
    *,
    dequantize: bool = False,
    status: Callable[[str], None] | None = None,
) -> ExportResult:
    """The export of (model, variant, dtype) under the cache dir, written on first use."""
    check_export(variant, dtype, dequantize)
    key = export_key(model, variant, dtype, dequantize)
    label = resolve_model(model).label
    out = cache_dir() / "hf-export" / f"{label}-{key}"
    marker = out / MARKER
    if marker.is_file():
        info = json.loads(marker.read_text())
        if info.get("key") == key:
            return ExportResult(out, info.get("mode", "float"), info)
    return export_model(
        model,
        out,
        variant=variant,
        dtype=dtype,
        dequantize=dequantize,
        force=True,
        status=status,
        _extra_info={"key": key},
    )
