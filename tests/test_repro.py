"""`thinkcost repro`: the divergence/spread arithmetic against hand-computed cases, the run-id
contract of `RunSpec.tag`, and one real repro on the small packaged model."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from rich.console import Console

import thinkcost.runner
from scripted_engine import ScriptedEngine
from thinkcost import repro as rp
from thinkcost.errors import UserError
from thinkcost.spec import RunSpec
from thinkcost.store import Store

# run_id() of RunSpec() before `tag` existed: stores written earlier must keep resolving.
DEFAULT_RUN_ID = "4db6cce168693266"


def _chars(text: str) -> list[int]:
    """A stand-in tokenizer: one token per character."""
    return [ord(c) for c in text]


# --- pure functions --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([1, 2, 3], [1, 2, 4], 2),
        ([1, 2], [1, 2, 3], 2),  # one is a prefix of the other: diverges where the shorter ends
        ([], [1], 0),
        ([5], [6], 0),
        ([7, 8], [7, 8], 2),
    ],
)
def test_common_prefix(a, b, expected):
    assert rp.common_prefix(a, b) == expected


def test_quantiles_by_hand():
    # sorted [0, 2, 4, 10]: median (2+4)/2 = 3; p90 at rank 0.9*3 = 2.7 -> 4 + 0.7*(10-4) = 8.2
    q = rp.quantiles([10, 0, 4, 2])
    assert q["median"] == 3.0
    assert q["p90"] == pytest.approx(8.2)
    assert rp.quantiles([]) == {"median": None, "p90": None}


def test_divergence_by_hand():
    ref = [_chars(t) for t in ["abc", "abd", "xyz", "same"]]
    new = [_chars(t) for t in ["abc", "abX", "xy", "Same"]]
    d = rp.divergence(ref, new)
    assert d["n"] == 4
    assert d["differing"] == 3
    assert d["share_differing"] == 0.75
    assert d["first_divergence"] == [2, 2, 0]
    assert d["first_divergence_median"] == 2.0
    assert d["first_divergence_p90"] == pytest.approx(2.0)  # sorted [0,2,2]: rank 1.8 -> 2


def test_divergence_identical_sequences_has_no_index():
    d = rp.divergence([[1], [2, 3]], [[1], [2, 3]])
    assert d["share_differing"] == 0.0
    assert d["first_divergence"] == []
    assert d["first_divergence_median"] is None and d["first_divergence_p90"] is None


def test_divergence_needs_aligned_lists():
    with pytest.raises(ValueError):
        rp.divergence([[1]], [[1], [2]])


def test_spread_by_hand():
    s = rp.spread([0.5, 0.75, 1.0])
    assert s["mean"] == 0.75
    assert s["std"] == pytest.approx(math.sqrt((0.25**2 + 0 + 0.25**2) / 3))
    assert (s["min"], s["max"], s["range"]) == (0.5, 1.0, 0.5)
    assert rp.spread([3.0])["std"] == 0.0
    assert rp.spread([])["std"] is None


def test_parse_lists():
    assert rp.parse_dtypes("float32, bfloat16") == ["float32", "bfloat16"]
    assert rp.parse_batch_sizes("1,4,16") == [1, 4, 16]
    for bad in ("", "float8", "float32,float32"):
        with pytest.raises(UserError, match="--dtypes"):
            rp.parse_dtypes(bad)
    for bad in ("", "1,x", "0", "1,1"):
        with pytest.raises(UserError, match="--batch-sizes"):
            rp.parse_batch_sizes(bad)


# --- identity ----------------------------------------------------------------------------------
def test_no_tag_keeps_existing_run_ids():
    spec = RunSpec()
    assert "tag" not in spec.identity()
    assert spec.run_id() == DEFAULT_RUN_ID


def test_tag_changes_run_id():
    ids = {RunSpec(tag=t).run_id() for t in ("repro:bs=1", "repro:bs=4")}
    assert len(ids) == 2 and DEFAULT_RUN_ID not in ids


def test_setting_specs_get_their_own_runs(tmp_path):
    spec = RunSpec(model="smollm2-135m", store=tmp_path / "s.sqlite", out=tmp_path / "out")
    a = rp.setting_spec(spec, "float32", 1, tmp_path / "out")
    b = rp.setting_spec(spec, "float32", 4, tmp_path / "out")
    assert (a.variants, a.batch_size, a.tag, a.store_path()) == (["base"], 1, "repro:bs=1", spec.store_path())
    assert a.run_id() != b.run_id()
    assert a.out_dir() != b.out_dir()


# --- refusals and skips ------------------------------------------------------------------------
def test_only_greedy(tmp_path):
    spec = RunSpec(strategy="maj@4", store=tmp_path / "s.sqlite")
    with pytest.raises(UserError, match="greedy"):
        rp.repro(spec, ["float32"], [1], Console(quiet=True))
    assert not (tmp_path / "s.sqlite").exists()  # refused before anything ran


def test_failing_setting_becomes_skip_reason(monkeypatch, tmp_path):
    def boom(spec, console, engine=None):
        raise RuntimeError("\"addmm_impl_cpu_\" not implemented for 'Half'\nmore")

    monkeypatch.setattr(thinkcost.runner, "generate", boom)
    s = rp.setting_spec(RunSpec(store=tmp_path / "s.sqlite"), "float16", 1, tmp_path)
    reason = rp._run_setting(s, Console(quiet=True))
    assert reason == "RuntimeError: \"addmm_impl_cpu_\" not implemented for 'Half'"


def test_user_error_is_not_a_skip(monkeypatch, tmp_path):
    def bad(spec, console, engine=None):
        raise UserError("model not installed")

    monkeypatch.setattr(thinkcost.runner, "generate", bad)
    s = rp.setting_spec(RunSpec(store=tmp_path / "s.sqlite"), "float32", 1, tmp_path)
    with pytest.raises(UserError):
        rp._run_setting(s, Console(quiet=True))


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--dtypes", "float8"], "--dtypes"), (["--batch-sizes", "1,x"], "--batch-sizes")],
)
def test_cli_bad_lists_one_line(args, needle, tmp_path):
    p = subprocess.run(
        [sys.executable, "-m", "thinkcost.cli", "repro", *args, "--store", str(tmp_path / "s.sqlite")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 2, (p.stdout, p.stderr)
    assert len(p.stderr.strip().splitlines()) == 1 and needle in p.stderr
    assert "Traceback" not in p.stderr


# --- end to end --------------------------------------------------------------------------------
def _no_tokenizer(text: str) -> list[int]:
    raise AssertionError("repro re-tokenized text although every row stores its token ids")


def test_repro_scripted_engine_through_the_store(tmp_path):
    """Batch 4 "rounds differently" on the last token: every problem differs at token 3 of
    the stored ids (no re-tokenization: the tokenizer passed in fails if called)."""

    def engine_for(s: RunSpec) -> ScriptedEngine:
        last = " 4" if s.batch_size == 1 else " 5"
        return ScriptedEngine(lambda req, i: ["The", " answer", " is", last], batch_size=s.batch_size)

    spec = RunSpec(limit=3, max_new_tokens=16, store=tmp_path / "s.sqlite", out=tmp_path / "out")
    result = rp.repro(
        spec, ["float32"], [1, 4], Console(quiet=True), engine_for=engine_for, tokenize=_no_tokenizer
    )
    ref, other = result.settings
    assert (ref.share_differing, ref.first_divergence_median) == (0.0, None)
    assert other.share_differing == 1.0
    assert other.first_divergence == [3, 3, 3]
    assert (other.first_divergence_median, other.first_divergence_p90) == (3.0, 3.0)
    assert result.spread["accuracy"]["range"] == abs(ref.accuracy - other.accuracy)
    st = Store(spec.store_path(), create=False)
    assert {r["run_id"] for r in st.runs()} == {ref.run_id, other.run_id}
    assert st.note(ref.run_id, "repro")["settings"][1]["batch_size"] == 4
    assert st.note(other.run_id, "repro") is None
    st.close()
    assert (tmp_path / "out" / "repro.json").is_file()


def test_repro_compares_token_ids_not_retokenized_text(tmp_path):
    """Same text, different tokens: batch 4 emits " answer" as " ans" + "wer". Re-tokenizing
    the decoded texts would call the runs identical; the stored ids show the divergence at
    token 1."""

    def engine_for(s: RunSpec) -> ScriptedEngine:
        pieces = ["The", " answer", " is", " 4"] if s.batch_size == 1 else ["The", " ans", "wer", " is", " 4"]
        return ScriptedEngine(lambda req, i: pieces, batch_size=s.batch_size)

    spec = RunSpec(limit=2, max_new_tokens=16, store=tmp_path / "s.sqlite", out=tmp_path / "out")
    result = rp.repro(spec, ["float32"], [1, 4], Console(quiet=True), engine_for=engine_for, tokenize=_chars)
    ref, other = result.settings
    st = Store(spec.store_path(), create=False)
    texts = {r.run_id: set(st.generations(r.run_id)["text"]) for r in (ref, other)}
    assert texts[ref.run_id] == texts[other.run_id] == {"The answer is 4"}
    assert st.note(ref.run_id, "repro")["compared"] == "generated token ids"
    st.close()
    assert other.share_differing == 1.0 and other.first_divergence == [1, 1]


@pytest.mark.slow
def test_repro_default_model_end_to_end(tmp_path):
    """The default model, two settings (~3 min on 2 cores: two model loads plus the GGUF
    tokenizer); `pytest -m slow` runs it."""
    spec = RunSpec(
        limit=2,
        max_new_tokens=16,
        device="cpu",
        store=tmp_path / "repro.sqlite",
        out=tmp_path / "out",
    )
    result = rp.repro(spec, ["float32"], [1, 4], Console(quiet=True))

    assert [(s.dtype, s.batch_size) for s in result.settings] == [("float32", 1), ("float32", 4)]
    ref, other = result.settings
    assert result.reference == "float32/bs=1" and result.reference_run_id == ref.run_id
    assert ref.skipped is None and other.skipped is None
    assert ref.share_differing == 0.0 and ref.first_divergence == []
    assert 0.0 <= other.share_differing <= 1.0
    assert set(result.spread) == {"accuracy", "mean_reasoning_tokens"}

    st = Store(spec.store_path(), create=False)
    runs = {r["run_id"]: r for r in st.runs()}
    assert set(runs) == {ref.run_id, other.run_id}
    assert {runs[r]["spec"]["tag"] for r in runs} == {"repro:bs=1", "repro:bs=4"}
    for r in (ref, other):
        g = st.generations(r.run_id)
        assert len(g) == 2 and set(g["batch_size"]) == {r.batch_size}
    note = st.note(ref.run_id, "repro")
    st.close()
    assert note["seed"] == 0 and note["dtypes"] == ["float32"] and note["batch_sizes"] == [1, 4]
    assert [s["run_id"] for s in note["settings"]] == [ref.run_id, other.run_id]

    saved = json.loads((tmp_path / "out" / "repro.json").read_text())
    assert saved == json.loads(json.dumps(result.to_json()))
