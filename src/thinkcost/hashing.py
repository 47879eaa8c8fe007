"""Content hashes of what a run loads (model files, checkpoints, data files), so a rerun can
tell that an input changed under the same name instead of mixing rows of two models."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .models import PACKAGED, ModelSource, cache_dir, sha256_file


def content_hash(path: Path) -> str:
    """sha256 of a file, or of a directory's files (relative names and contents, sorted), so a
    variant can tell that what it loads changed. Cached in `$THINKCOST_HOME/hashes.json` by
    (path, size, mtime, inode): a multi-GB checkpoint is read once, not on every rerun."""
    path = Path(path).resolve()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    cache_file = cache_dir() / "hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    digests = []
    changed = False
    for f in files:
        st = f.stat()
        key = str(f)
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = cache.get(key)
        if hit is None or hit[0] != stamp:
            hit = [stamp, sha256_file(f)]
            cache[key] = hit
            changed = True
        digests.append((str(f.relative_to(path)) if f != path else f.name, hit[1]))
    if changed:
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_suffix(".json.partial")
            tmp.write_text(json.dumps(cache))
            tmp.replace(cache_file)
        except OSError:  # a read-only cache only costs re-hashing next time
            pass
    if path.is_file():
        return digests[0][1]
    h = hashlib.sha256()
    for name, digest in digests:
        h.update(f"{name}\0{digest}\n".encode())
    return h.hexdigest()


def path_hash(path: str | Path | None) -> str | None:
    """Content hash of a local file or directory a variant loads; None when it is absent (the
    engine reports a missing path itself)."""
    if path is None or not Path(path).expanduser().exists():
        return None
    return content_hash(Path(path).expanduser())


def source_hash(name: str, source: ModelSource) -> str:
    """What identifies the weights, tokenizer and chat template a run loads: the verified
    sha256 of a packaged model, the content hash of a local file or dir, or `hub:ID` for a hub
    id (its revision is the hub's to pin; use a local dir to fix it)."""
    if name in PACKAGED and PACKAGED[name].sha256:
        return PACKAGED[name].sha256
    local = Path(source.path) / source.gguf_file if source.gguf_file else Path(source.path)
    if local.exists():
        return content_hash(local)
    return f"hub:{source.path}"
