"""The de-quantized float weights of a GGUF model, cached once as safetensors and memory-mapped
on every later load.

Why: transformers de-quantizes a GGUF to float on every `from_pretrained` (~40 s for the
default 0.5B model on 2 cores), and a study loads the same model in every process. The float
copy is written once to `$THINKCOST_HOME/float-weights/<key>/` (model.safetensors, config,
tokenizer, and a manifest written last, so a half-written entry is never read), keyed by the
GGUF's content hash, the dtype and the versions of the libraries that did the de-quantization:
a changed file or a changed de-quantizer is a new entry, never a stale one.

A warm load maps the file instead of reading it: every tensor is a view into one private
(copy-on-write) `mmap` of the safetensors file, so loading costs the page faults of the bytes
actually touched, and `snapshot()` (what a backend restores variants from) is a second,
read-only map of the same file: pages shared with the OS cache, no second anonymous copy of
the weights in memory.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from .hashing import content_hash
from .models import PACKAGED, ModelSource, cache_dir, load_pretrained

FORMAT = 1  # bump when the layout of an entry changes
_WEIGHTS = "model.safetensors"
_MANIFEST = "manifest.json"
_DTYPES = {
    "F32": "float32",
    "F16": "float16",
    "BF16": "bfloat16",
    "F64": "float64",
    "I64": "int64",
    "I32": "int32",
}


@dataclass(frozen=True)
class CacheEntry:
    """Where one model's float copy lives and what it was made from."""

    dir: Path
    key: str
    source_sha256: str
    dtype: str

    @property
    def weights(self) -> Path:
        return self.dir / _WEIGHTS

    @property
    def complete(self) -> bool:
        return (self.dir / _MANIFEST).is_file() and self.weights.is_file()


def _versions() -> dict[str, str]:
    out = {}
    for pkg in ("transformers", "gguf", "torch"):
        try:
            out[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            out[pkg] = "none"
    return out


def entry_for(name: str, source: ModelSource, dtype: str) -> CacheEntry | None:
    """The cache entry a GGUF source maps to (None for a source that is not a GGUF: a float
    transformers dir loads fast already and has nothing to de-quantize)."""
    if not source.gguf_file:
        return None
    gguf = Path(source.path) / source.gguf_file
    packaged = PACKAGED.get(name)
    if packaged and packaged.sha256 and gguf.resolve() == (cache_dir() / f"{name}.gguf").resolve():
        digest = packaged.sha256  # verified when the parts were assembled (models.packaged_gguf)
    else:
        digest = content_hash(gguf)  # cached by (path, size, mtime, inode)
    import hashlib

    versions = _versions()
    key_src = json.dumps({"format": FORMAT, "sha256": digest, "dtype": dtype, **versions}, sort_keys=True)
    key = hashlib.sha256(key_src.encode()).hexdigest()[:20]
    return CacheEntry(cache_dir() / "float-weights" / key, key, digest, dtype)


def load_cached(name: str, source: ModelSource, dtype: str = "float32", console=None):
    """(model, tokenizer) for `source`, from the float cache when it holds the entry, else
    de-quantized by transformers and written to the cache for the next load.

    The caller moves the model to its device and calls `.eval()`. Falls back to a plain load
    when the cache directory cannot be written (read-only home): slower, never wrong."""
    entry = entry_for(name, source, dtype)
    if entry is None:
        return _load_transformers(source, dtype)
    if entry.complete:
        return load_entry(entry)
    model, tok = _load_transformers(source, dtype)
    try:
        write_entry(entry, model, tok, source)
    except OSError as e:
        if console is not None:
            console.print(
                f"float-weight cache not written ({e}); the next load de-quantizes again", markup=False
            )
    return model, tok


def _load_transformers(source: ModelSource, dtype: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tok = load_pretrained(AutoTokenizer.from_pretrained, source.path, "model", **kw)
    model = load_pretrained(
        AutoModelForCausalLM.from_pretrained, source.path, "model", dtype=getattr(torch, dtype), **kw
    )
    return model, tok


def write_entry(entry: CacheEntry, model, tokenizer, source: ModelSource) -> None:
    """Write model + tokenizer as a cache entry: into a temporary sibling dir, renamed into
    place when complete (a crash leaves only a `.partial` dir that the next write replaces)."""
    import copy

    from safetensors.torch import save_file

    tmp = entry.dir.with_name(entry.dir.name + f".partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        state = _unshared_state(model)
        save_file(state, str(tmp / _WEIGHTS), metadata={"format": "pt"})
        config = copy.deepcopy(model.config)
        if hasattr(config, "quantization_config"):  # the GGUF flag: these weights are plain floats
            delattr(config, "quantization_config")
        config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        manifest = {
            "format": FORMAT,
            "source": str(Path(source.path) / (source.gguf_file or "")),
            "source_sha256": entry.source_sha256,
            "dtype": entry.dtype,
            "versions": _versions(),
            "tensors": len(state),
            "tied": sorted(set(model.state_dict()) - set(state)),
            "created_at": time.time(),
        }
        (tmp / _MANIFEST).write_text(json.dumps(manifest, indent=1))
        if entry.dir.exists():  # another process finished first: theirs is as good as ours
            shutil.rmtree(tmp, ignore_errors=True)
            return
        tmp.rename(entry.dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _unshared_state(model) -> dict[str, Any]:
    """The state dict with each storage once (a tied LM head shares the embedding's storage,
    which safetensors refuses to write twice); the model re-ties it on load."""
    seen: set[tuple[int, int, tuple[int, ...]]] = set()
    out = {}
    for k, v in model.state_dict().items():
        view = (v.untyped_storage().data_ptr(), v.data_ptr(), tuple(v.shape))
        if view in seen:  # the same tensor under a second name (tied weights)
            continue
        seen.add(view)
        out[k] = v.detach().contiguous()
    return out


def load_entry(entry: CacheEntry):
    """(model, tokenizer) from a complete entry: the model built on the meta device, its
    parameters assigned as views into a private map of the weights file."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    config = AutoConfig.from_pretrained(entry.dir)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, dtype=getattr(torch, entry.dtype))
    state = dict(map_safetensors(entry.weights, writable=True))
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    tied = set(json.loads((entry.dir / _MANIFEST).read_text()).get("tied", []))
    if unexpected or set(missing) - tied:
        raise RuntimeError(
            f"float-weight cache {entry.dir}: does not fit the model (missing {missing}, unexpected {unexpected}); delete it"
        )
    model.tie_weights()
    model.thinkcost_weights_file = str(entry.weights)  # where MappedSnapshot can restore from
    # buffers that are not saved (rotary inv_freq) are still on meta: recompute them on CPU
    _materialise_buffers(model, config)
    tok = AutoTokenizer.from_pretrained(entry.dir)
    return model, tok


def _materialise_buffers(model, config) -> None:
    """Non-persistent buffers (rotary `inv_freq`) are not in the state dict: a meta-device
    model has none, so rebuild each module that owns one on CPU and take its buffers."""
    import torch

    for name, mod in model.named_modules():
        for bname, buf in list(mod.named_buffers(recurse=False)):
            if buf is None or not buf.is_meta:
                continue
            fresh = _rebuild(mod, config)
            if fresh is None:
                raise RuntimeError(f"cannot rebuild buffer {name}.{bname} of a cached model")
            value = dict(fresh.named_buffers(recurse=False))[bname]
            mod.register_buffer(bname, value.to(torch.device("cpu")), persistent=False)
            for attr in ("original_inv_freq",):
                if hasattr(fresh, attr):
                    setattr(mod, attr, getattr(fresh, attr))


def _rebuild(mod, config):
    import torch

    try:
        with torch.device("cpu"):
            return type(mod)(config=config)
    except TypeError:
        return None


def map_safetensors(path: Path, writable: bool = False) -> Iterator[tuple[str, Any]]:
    """(name, tensor) for every tensor of a safetensors file, each a view into one `mmap` of the
    file (no bytes read until touched). `writable` maps it private copy-on-write, so in-place
    edits (quantizing a variant) change memory, never the file; read-only otherwise."""
    import torch

    path = Path(path)
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    base = 8 + n
    size = path.stat().st_size
    storage = torch.UntypedStorage.from_file(str(path), shared=False, nbytes=size) if writable else None
    if storage is None:
        storage = _readonly_storage(path, size)
    for name, info in header.items():
        dtype = getattr(torch, _DTYPES[info["dtype"]])
        start, end = info["data_offsets"]
        itemsize = torch.empty((), dtype=dtype).element_size()
        offset = base + start
        if offset % itemsize:
            raise RuntimeError(f"{path}: tensor {name} is not aligned for {dtype}")
        t = torch.empty(0, dtype=dtype)
        t.set_(storage, offset // itemsize, tuple(info["shape"]))
        if t.numel() * itemsize != end - start:
            raise RuntimeError(f"{path}: tensor {name} has {end - start} bytes for shape {info['shape']}")
        yield name, t


def _readonly_storage(path: Path, size: int):
    """A read-only shared map of `path` as a torch storage (numpy's memmap owns the mapping)."""
    import numpy as np
    import torch

    mm = np.memmap(path, dtype=np.uint8, mode="r", shape=(size,))
    import warnings

    with warnings.catch_warnings():  # torch warns that the buffer is not writable: it is never written
        warnings.simplefilter("ignore")
        return torch.frombuffer(mm, dtype=torch.uint8).untyped_storage()


class MappedSnapshot(Mapping):
    """The Linear weights of a cached model as a read-only mapping of its weights file: what a
    backend restores each variant from, without holding a second copy of them in memory."""

    def __init__(self, path: Path, keys: set[str]) -> None:
        self._tensors = {k: t for k, t in map_safetensors(path) if k in keys}

    def __getitem__(self, key: str):
        return self._tensors[key]

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)
