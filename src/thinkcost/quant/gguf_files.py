"""GGUF files for the llama.cpp engine: one float F32 GGUF per base model, and `gguf:TYPE`
variants quantized from it by llama.cpp's own quantizer.

Why F32 and why from the dequantized base: the `hf` engine's base is the packaged GGUF
dequantized to float32 by the same `gguf` routines used here, so the F32 file holds exactly
the weights the hf engine runs (tested tensor by tensor). Every `gguf:TYPE` variant is then
quantized from that one file, never requantized from an already low-bit file, so variants
differ from base only by llama.cpp's quantization, on either engine.

Why report bits per weight: llama.cpp falls back to other types for tensors whose rows do not
fit a K-quant block (Qwen2.5-0.5B's 896-wide rows), so a "Q3_K_S" file is not 3.4 bits per
weight. `gguf_stats` reads the real types and sizes back from the written file, and gives the
two figures hf variants also have (quant.apply.bits_per_weight_figures): over the decoder
blocks' Linear weights (`blk.N.attn_q/k/v/qkv/output.weight`, `blk.N.ffn_gate/up/down.weight`),
and over every tensor of the file.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import UserError

# The header fields every GGUF reader synthesises; the writer adds its own.
_SYNTHETIC = ("GGUF.version", "GGUF.tensor_count", "GGUF.kv_count", "general.architecture")
# GGUF names of the decoder blocks' Linear weights (llama.cpp's tensor naming, gguf-py MODEL_TENSOR)
LAYER_TENSOR = re.compile(r"blk\.\d+\.(attn_(q|k|v|qkv|output)|ffn_(gate|up|down))\.weight")


@dataclass(frozen=True)
class GGUFStats:
    """What a GGUF file really is: size, parameters, bits per weight and tensor types."""

    path: str
    file_bytes: int
    tensor_bytes: int
    n_params: int
    bits_per_weight_model: float  # every tensor: tensor bytes * 8 / parameters (llama.cpp's BPW)
    bits_per_weight_layers: float | None  # the LAYER_TENSOR weights only; None if the file has none
    types: dict[str, int]  # tensor type -> number of tensors
    type_params: dict[str, float]  # tensor type -> share of parameters

    @property
    def bits_per_weight(self) -> float:
        """The whole-file figure, under the name this class always had (llama.cpp's BPW)."""
        return self.bits_per_weight_model

    def as_dict(self) -> dict:
        return asdict(self)


def gguf_stats(path: str | Path) -> GGUFStats:
    """Size, types and both bits-per-weight figures, read back from the file llama.cpp wrote."""
    from gguf import GGUFReader

    r = GGUFReader(str(path))
    counts: Counter[str] = Counter()
    params: Counter[str] = Counter()
    n = nbytes = layer_n = layer_bytes = 0
    for t in r.tensors:
        name = t.tensor_type.name
        counts[name] += 1
        params[name] += int(t.n_elements)
        n += int(t.n_elements)
        nbytes += int(t.n_bytes)  # the reader's size from the type's GGML block size
        if LAYER_TENSOR.fullmatch(t.name):
            layer_n += int(t.n_elements)
            layer_bytes += int(t.n_bytes)
    return GGUFStats(
        path=str(path),
        file_bytes=Path(path).stat().st_size,
        tensor_bytes=nbytes,
        n_params=n,
        bits_per_weight_model=nbytes * 8 / max(n, 1),
        bits_per_weight_layers=layer_bytes * 8 / layer_n if layer_n else None,
        types=dict(sorted(counts.items())),
        type_params={k: v / max(n, 1) for k, v in sorted(params.items())},
    )


def _source_key(src: Path) -> dict:
    st = src.stat()
    return {"source": str(src.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _cached(dst: Path, key: dict) -> bool:
    side = dst.with_name(dst.name + ".json")
    if not (dst.is_file() and side.is_file()):
        return False
    try:
        return json.loads(side.read_text()).get("key") == key
    except (OSError, ValueError):
        return False


def _mark(dst: Path, key: dict, info: dict) -> None:
    dst.with_name(dst.name + ".json").write_text(json.dumps({"key": key, **info}, indent=1))


def float_gguf(src: str | Path, dst: str | Path) -> Path:
    """Write `src` with every tensor dequantized to F32 (metadata copied), unless `dst` already
    holds that conversion of this very source file. Written under a temporary name and
    renamed, so a crash never leaves a half file that looks finished."""
    from gguf import GGMLQuantizationType, GGUFReader, GGUFValueType, GGUFWriter, LlamaFileType
    from gguf.quants import dequantize

    src, dst = Path(src), Path(dst)
    if not src.is_file():
        raise UserError(f"GGUF file {str(src)!r} does not exist")
    key = _source_key(src)
    if _cached(dst, key):
        return dst
    t0 = time.perf_counter()
    r = GGUFReader(str(src))
    arch = r.fields["general.architecture"].contents()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".partial")
    w = GGUFWriter(str(tmp), arch)
    for name, field in r.fields.items():
        if name in _SYNTHETIC:
            continue
        if name == "general.file_type":
            w.add_uint32(name, int(LlamaFileType.ALL_F32))
            continue
        vtype = field.types[0]
        sub = field.types[-1] if vtype == GGUFValueType.ARRAY else None
        w.add_key_value(name, field.contents(), vtype, sub_type=sub)
    shapes = []
    for t in r.tensors:
        shape = tuple(int(x) for x in reversed(t.shape))  # GGML order (ne0 first) -> numpy order
        shapes.append(shape)
        w.add_tensor_info(
            t.name, shape, np.dtype(np.float32), int(np.prod(shape)) * 4, raw_dtype=GGMLQuantizationType.F32
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    for t, shape in zip(r.tensors, shapes, strict=True):
        data = dequantize(t.data, t.tensor_type).astype(np.float32, copy=False).reshape(shape)
        w.write_tensor_data(np.ascontiguousarray(data))
    w.close()
    os.replace(tmp, dst)
    _mark(dst, key, {"seconds": time.perf_counter() - t0})
    return dst


def ftype_names() -> list[str]:
    """Quantization types llama.cpp's quantizer accepts, by the names users know (Q4_K_M, ...)."""
    import llama_cpp

    pre = "LLAMA_FTYPE_MOSTLY_"
    return sorted(n[len(pre) :] for n in dir(llama_cpp) if n.startswith(pre))


def quantize_gguf(f32: str | Path, qtype: str, dst: str | Path, threads: int | None = None) -> Path:
    """`f32` quantized to `qtype` (e.g. Q8_0, Q4_K_M, Q3_K_S) by llama.cpp, cached by source."""
    from ..llamacpp_lib import import_llama_cpp

    llama_cpp = import_llama_cpp()  # a clear error if absent; llama.cpp's logging silenced
    f32, dst = Path(f32), Path(dst)
    attr = f"LLAMA_FTYPE_MOSTLY_{qtype.upper()}"
    if not hasattr(llama_cpp, attr):
        raise UserError(f"variant gguf:{qtype}: unknown GGUF type; known: {', '.join(ftype_names())}")
    key = {**_source_key(f32), "type": qtype.upper()}
    if _cached(dst, key):
        return dst
    t0 = time.perf_counter()
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(dst.name + ".partial")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = getattr(llama_cpp, attr)
    params.nthread = threads or os.cpu_count() or 1
    rc = llama_cpp.llama_model_quantize(str(f32).encode(), str(tmp).encode(), params)
    if rc != 0 or not tmp.is_file():
        raise UserError(f"variant gguf:{qtype}: llama.cpp's quantizer failed (code {rc}) on {f32}")
    os.replace(tmp, dst)
    _mark(dst, key, {"seconds": time.perf_counter() - t0})
    return dst


def quantize_seconds(path: str | Path) -> float | None:
    """How long the cached file took to write (from its sidecar), for the variant info."""
    side = Path(path).with_name(Path(path).name + ".json")
    try:
        return float(json.loads(side.read_text())["seconds"])
    except (OSError, ValueError, KeyError):
        return None
