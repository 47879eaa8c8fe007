"""The float-weight cache: a warm load gives exactly what transformers' own de-quantization
gives, a changed source or de-quantizer never reads a stale entry, a half-written entry is
never read, and in-place edits of a mapped model never reach the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from thinkcost import weight_cache as wc
from thinkcost.hashing import content_hash
from thinkcost.models import ModelSource, resolve_model, sha256_file

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def gguf_copy(tmp_path_factory) -> ModelSource:
    """The packaged SmolLM2 GGUF copied to a private dir (tests edit it)."""
    try:
        src = resolve_model("smollm2-135m")
    except Exception as e:  # pragma: no cover - environment without the package
        pytest.skip(f"smollm2-135m not installed: {e}")
    d = tmp_path_factory.mktemp("gguf")
    shutil.copy(Path(src.path) / src.gguf_file, d / "m.gguf")
    return ModelSource(label="m", path=str(d), gguf_file="m.gguf")


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    """One cache home for the module (an entry is written once, by the first test's cold load)."""
    mp = pytest.MonkeyPatch()
    d = tmp_path_factory.mktemp("home")
    mp.setenv("THINKCOST_HOME", str(d))
    yield d
    mp.undo()


@pytest.fixture(scope="module")
def reference(gguf_copy):
    return _fresh(gguf_copy)


def _fresh(source: ModelSource):
    """transformers' own de-quantization, no cache involved: the reference."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(source.path, gguf_file=source.gguf_file)
    model = AutoModelForCausalLM.from_pretrained(source.path, gguf_file=source.gguf_file, dtype=torch.float32)
    return model.eval(), tok


def test_warm_load_equals_fresh_dequantization_tensor_for_tensor(gguf_copy, home, reference):
    ref, ref_tok = reference
    wc.load_cached("m", gguf_copy)  # cold: de-quantizes and writes the entry
    entry = wc.entry_for("m", gguf_copy, "float32")
    assert entry is not None and entry.complete
    model, tok = wc.load_cached("m", gguf_copy)  # warm: maps the file
    assert getattr(model, "thinkcost_weights_file", None) == str(entry.weights)
    a, b = ref.state_dict(), model.state_dict()
    assert set(a) == set(b)
    for k in a:
        assert a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]), k
    assert {k for k, _ in ref.named_buffers()} == {k for k, _ in model.named_buffers()}
    for k, buf in ref.named_buffers():
        assert torch.equal(buf, dict(model.named_buffers())[k]), k
    # the tokenizer and chat template survive the round trip
    text = "Tom has 3 apples.\n\n  Wait — 象 <|im_end|> 12.5%"
    assert ref_tok(text).input_ids == tok(text).input_ids
    msgs = [{"role": "user", "content": "What is 2 + 3?"}]
    assert ref_tok.apply_chat_template(
        msgs, tokenize=False, add_generation_prompt=True
    ) == tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
    assert (ref_tok.eos_token_id, ref_tok.pad_token_id) == (tok.eos_token_id, tok.pad_token_id)
    enc = ref_tok(["hello there", "a b c d"], return_tensors="pt", padding=True)
    with torch.no_grad():
        assert torch.equal(ref(**enc).logits, model.eval()(**enc).logits)
    assert ref.config.tie_word_embeddings == model.config.tie_word_embeddings
    if ref.config.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()


def test_changed_source_or_dequantizer_is_a_new_entry(gguf_copy, home, tmp_path, monkeypatch):
    first = wc.entry_for("m", gguf_copy, "float32")
    model_a, _ = wc.load_cached("m", gguf_copy)
    w_a = model_a.model.norm.weight.detach().clone()
    # a different file under the same name: flip bytes of the last tensor's data (still parses)
    d = tmp_path / "edited"
    d.mkdir()
    edited = d / "m.gguf"
    shutil.copy(Path(gguf_copy.path) / gguf_copy.gguf_file, edited)
    src_b = ModelSource(label="m", path=str(d), gguf_file="m.gguf")
    assert content_hash(edited) == first.source_sha256
    with open(edited, "r+b") as f:
        f.seek(-64, 2)
        tail = f.read(64)
        f.seek(-64, 2)
        f.write(bytes(x ^ 0x01 for x in tail))
    second = wc.entry_for("m", src_b, "float32")
    assert second.key != first.key and second.source_sha256 != first.source_sha256
    model_b, _ = wc.load_cached("m", src_b)  # cold: its own entry, from the edited file
    assert second.complete
    changed = [k for k, v in model_b.state_dict().items() if not torch.equal(v, model_a.state_dict()[k])]
    assert changed, "the edit should change some weight"
    assert torch.equal(model_a.model.norm.weight, w_a)
    # another dtype or another transformers version: another key
    assert wc.entry_for("m", gguf_copy, "bfloat16").key != first.key
    monkeypatch.setattr(wc, "_versions", lambda: {"transformers": "99.0", "gguf": "x", "torch": "y"})
    assert wc.entry_for("m", gguf_copy, "float32").key != first.key


def test_a_half_written_entry_is_never_read(gguf_copy, home, reference, monkeypatch):
    entry = wc.entry_for("m", gguf_copy, "float32")
    shutil.rmtree(entry.dir, ignore_errors=True)
    entry.dir.mkdir(parents=True)
    (entry.dir / "model.safetensors").write_bytes(b"\x08\x00\x00\x00\x00\x00\x00\x00{}      ")
    assert not entry.complete  # no manifest: the writer died before finishing
    shutil.rmtree(entry.dir)
    calls = []
    monkeypatch.setattr(wc, "_load_transformers", lambda s, d: calls.append(s) or reference)
    wc.load_cached("m", gguf_copy)  # de-quantizes again (the stand-in), writes a complete entry
    assert calls and entry.complete
    model, _ = wc.load_cached("m", gguf_copy)
    assert len(calls) == 1  # and the next load reads it
    assert torch.equal(model.model.norm.weight, reference[0].model.norm.weight)
    assert not any(p.name.startswith(entry.dir.name + ".partial") for p in entry.dir.parent.iterdir())


def test_in_place_edits_of_a_mapped_model_never_reach_the_file(gguf_copy, home):
    from thinkcost.quant import parse_variant
    from thinkcost.quant.apply import quantize_model_, restore_linear_weights_, snapshot_linear_weights

    wc.load_cached("m", gguf_copy)
    entry = wc.entry_for("m", gguf_copy, "float32")
    before = sha256_file(entry.weights)
    model, _ = wc.load_cached("m", gguf_copy)
    snap = snapshot_linear_weights(model)
    assert isinstance(snap, wc.MappedSnapshot)  # no second in-memory copy
    orig = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_model_(model, parse_variant("rtn-w3g32"), None)
    assert not torch.equal(
        model.model.layers[0].mlp.down_proj.weight, orig["model.layers.0.mlp.down_proj.weight"]
    )
    # the file is untouched (private map), so a fresh load and the snapshot still hold the base
    entry.weights.touch()  # same bytes: only a content change may matter
    assert sha256_file(entry.weights) == before
    fresh, _ = wc.load_entry(entry)
    assert torch.equal(
        fresh.model.layers[0].mlp.down_proj.weight, orig["model.layers.0.mlp.down_proj.weight"]
    )
    restore_linear_weights_(model, snap)
    for k, v in model.state_dict().items():
        assert torch.equal(v, orig[k]), k


def test_unwritable_cache_falls_back_to_a_plain_load(gguf_copy, tmp_path, monkeypatch, reference):
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("x")
    monkeypatch.setenv("THINKCOST_HOME", str(blocker))  # mkdir under a file fails with OSError
    messages = []

    class Console:
        def print(self, msg, **_):
            messages.append(msg)

    monkeypatch.setattr(wc, "_load_transformers", lambda s, d: reference)
    model, _ = wc.load_cached("m", gguf_copy, console=Console())
    assert model is reference[0]
    assert messages and "not written" in messages[0]


def test_map_safetensors_reads_what_safetensors_wrote(tmp_path):
    from safetensors.torch import load_file, save_file

    tensors = {
        "a": torch.randn(3, 5),
        "b": torch.arange(7, dtype=torch.int64),
        "c": torch.randn(2, 2).to(torch.bfloat16),
        "d": torch.randn(4).to(torch.float16),
    }
    path = tmp_path / "t.safetensors"
    save_file(tensors, str(path))
    ref = load_file(str(path))
    for writable in (False, True):
        got = dict(wc.map_safetensors(path, writable=writable))
        assert set(got) == set(ref)
        for k in ref:
            assert got[k].dtype == ref[k].dtype and torch.equal(got[k], ref[k]), k
    got = dict(wc.map_safetensors(path, writable=True))
    got["a"].add_(1.0)  # private map: memory changes, the file does not
    assert torch.equal(load_file(str(path))["a"], tensors["a"])
