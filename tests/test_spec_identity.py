"""The run id covers every setting that changes a generation, and a variant whose inputs
changed cannot add rows to its old ones.

Each RunSpec field is declared in `spec.IDENTITY`; the declarations are checked by behaviour:
changing a "run" field changes the run id, changing any other field does not, and changing a
"variant" field changes the fingerprint of the variants it affects."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.errors import UserError
from thinkcost.hashing import content_hash, path_hash
from thinkcost.pipeline import run
from thinkcost.runner import variant_fingerprint
from thinkcost.spec import IDENTITY, RunSpec

DATA = Path(__file__).parent / "data" / "gsm8k.jsonl"
# run_id() of RunSpec() as stored by every earlier version: defaults must keep resolving to it
DEFAULT_RUN_ID = "4db6cce168693266"

# A valid value different from the default, for every field (and base kwargs where one is needed).
ALTERNATIVES: dict[str, tuple[dict, object]] = {
    "name": ({}, "other-name"),
    "model": ({}, "smollm2-135m"),
    "variants": ({}, ["base", "rtn-w4g32"]),
    "task": ({}, "gsm8k"),
    "task_options": ({}, {"min_ops": 2, "max_ops": 3}),
    "data": ({"task": "gsm8k"}, str(DATA)),
    "fields": ({"task": "gsm8k", "data": str(DATA)}, {"question": "question", "answer": "answer"}),
    "skip_bad_rows": ({"task": "gsm8k", "data": str(DATA)}, True),
    "prompt": ({"task": "gsm8k", "data": str(DATA)}, "Q: {question}\nA:"),
    "limit": ({}, 3),
    "strategy": ({}, ["greedy", "maj@4"]),
    "temperature": ({}, 0.3),
    "top_p": ({}, 0.5),
    "wait_words": ({}, ["Hmm"]),
    "confidence": ({}, "logprob"),
    "max_new_tokens": ({}, 64),
    "max_steps": ({}, 8),
    "prm_format": ({}, "qwen"),
    "batch_size": ({}, 3),
    "draft_tokens": ({}, 0),
    "seed": ({}, 7),
    "engine": ({}, "llamacpp"),
    "base_url": ({}, "http://127.0.0.1:8000/v1"),
    "endpoints": ({}, DATA.parent / "endpoints.txt"),
    "api_key_env": ({}, "MY_KEY"),
    "concurrency": ({}, 3),
    "request_timeout_s": ({}, 5.0),
    "max_retries": ({}, 1),
    "tokenizer": ({}, "smollm2-135m"),
    "extra_body": ({}, {"repeat_penalty": 1.0}),
    "threads": ({}, 1),
    "dtype": ({}, "bfloat16"),
    "device": ({}, "cpu"),
    "store": ({}, Path("elsewhere.sqlite")),
    "out": ({}, Path("elsewhere")),
    "n_boot": ({}, 500),
    "calib_samples": ({}, 8),
    "calib_seq_len": ({}, 64),
    "calib_file": ({}, DATA),
    "tag": ({}, "repro:bs=4"),
    "thinking": ({}, "off"),
    "shard": ({}, "2/3"),
    "executor": ({}, "ray"),
    "ray_address": ({"executor": "ray"}, "auto"),
    "ray_workers": ({"executor": "ray"}, 2),
}


def test_every_field_is_declared():
    """A field added to RunSpec without a declaration (or an alternative here) fails this."""
    assert set(IDENTITY) == set(RunSpec.model_fields)
    assert set(ALTERNATIVES) == set(RunSpec.model_fields)
    assert all(v in ("run", "variant") or len(v) > 10 for v in IDENTITY.values())  # a reason, not a flag


def test_defaults_keep_the_run_id_of_earlier_versions():
    assert RunSpec().run_id() == DEFAULT_RUN_ID


@pytest.mark.parametrize("field", sorted(RunSpec.model_fields))
def test_declaration_matches_behaviour(field):
    base_kw, value = ALTERNATIVES[field]
    if field == "engine":
        base_kw = {"variants": ["base"]}
    a = RunSpec(**base_kw)
    b = RunSpec(**(base_kw | {field: value}))
    assert getattr(a, field) != getattr(b, field)
    role = IDENTITY[field]
    assert (a.run_id() != b.run_id()) == (role == "run"), f"{field} is declared {role!r}"
    if role == "variant":
        for v in ("gptq-w4g128", "babai-w3g64"):
            assert variant_fingerprint(a, None, v) != variant_fingerprint(b, None, v)
        assert variant_fingerprint(a, None, "base") == variant_fingerprint(b, None, "base") == {}


def test_a_changed_data_file_is_another_run(tmp_path):
    f = tmp_path / "rows.jsonl"
    f.write_text(DATA.read_text())
    before = RunSpec(task="gsm8k", data=str(f)).run_id()
    lines = DATA.read_text().splitlines()
    f.write_text("\n".join(lines[:-1]) + "\n")
    assert RunSpec(task="gsm8k", data=str(f)).run_id() != before


# --------------------------------------------------------------------------- content hashes


def test_content_hash_of_files_and_dirs_tracks_content(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path / "home"))
    d = tmp_path / "ckpt"
    d.mkdir()
    (d / "model.safetensors").write_bytes(b"\x00" * 100)
    (d / "config.json").write_text("{}")
    h1 = content_hash(d)
    assert content_hash(d) == h1  # cached, same answer
    assert json.loads((tmp_path / "home" / "hashes.json").read_text())  # the cache was written
    (d / "model.safetensors").write_bytes(b"\x00" * 99 + b"\x01")  # same size, new content
    st = (d / "model.safetensors").stat()
    os.utime(d / "model.safetensors", ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert content_hash(d) != h1
    (d / "extra.bin").write_bytes(b"1")
    assert len({h1, content_hash(d)}) == 2
    assert path_hash(tmp_path / "missing") is None


# --------------------------------------------------------------------------- fingerprints on resume


def _run(tmp_path, variants, **kw):
    spec = RunSpec(
        variants=variants,
        limit=2,
        max_new_tokens=8,
        store=tmp_path / "s.sqlite",
        out=tmp_path / "out",
        n_boot=100,
        **kw,
    )
    return run(spec, Console(quiet=True), engine=ScriptedEngine(lambda r, i: ["The", " answer", " is", " 1"]))


def test_rewritten_checkpoint_is_refused_naming_the_variant(tmp_path, monkeypatch):
    monkeypatch.setenv("THINKCOST_HOME", str(tmp_path / "home"))
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "model.safetensors").write_bytes(b"weights v1")
    variant = f"ckpt:{ckpt}"
    _run(tmp_path, ["base", variant])
    _run(tmp_path, ["base", variant])  # unchanged: resumes without complaint
    (ckpt / "model.safetensors").write_bytes(b"weights v2 (re-exported)")
    with pytest.raises(UserError) as e:
        _run(tmp_path, ["base", variant])
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"variant {variant!r}: checkpoint_sha256 changed since its rows were stored")
    assert "another --name or --store" in msg
    _run(tmp_path, ["base"])  # the untouched variant still resumes


def test_other_calibration_data_is_refused(tmp_path):
    _run(tmp_path, ["base", "gptq-w4g128"], calib_samples=32)
    with pytest.raises(UserError, match=r"variant 'gptq-w4g128': calib_samples changed .*\(32 -> 16\)"):
        _run(tmp_path, ["base", "gptq-w4g128"], calib_samples=16)
    _run(tmp_path, ["base", "rtn-w4g32"], calib_samples=16)  # RTN does not calibrate: unaffected


def test_a_fingerprint_without_rows_is_simply_replaced(tmp_path, monkeypatch):
    """A variant listed before but never generated (killed before its turn) holds no rows: a
    changed input is then a fresh start for it, not an error."""
    from thinkcost.store import Store

    _run(tmp_path, ["base"])
    st = Store(tmp_path / "s.sqlite")
    rid = st.latest_run_id()
    st.put_note(rid, "fingerprint:gptq-w4g128", {"calib_samples": 99})
    st.close()
    _run(tmp_path, ["base", "gptq-w4g128"])
    st = Store(tmp_path / "s.sqlite")
    assert st.note(rid, "fingerprint:gptq-w4g128")["calib_samples"] == 32
    st.close()
