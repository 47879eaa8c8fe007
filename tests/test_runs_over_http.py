"""`thinkcost run --engine openai` end to end against llama-cpp-python's real server on
loopback: its answers agree with the in-process llamacpp engine on the same GGUF, and behind
a fault-injecting proxy every sample ends up stored exactly once, completed or failed with its
reason, and a rerun retries exactly the failed ones."""

from __future__ import annotations

import pytest
from rich.console import Console

from fault_proxy import FaultProxy
from llama_server import needs_llama_server, serve, smollm_gguf
from thinkcost.pipeline import run
from thinkcost.spec import RunSpec
from thinkcost.store import Store

needs_llama_server()

from thinkcost.quant.gguf_files import float_gguf, quantize_gguf  # noqa: E402

ALIAS = "smollm2-135m"  # the packaged name: thinkcost loads its tokenizer to count tokens
# llama-cpp-python's server applies repeat_penalty 1.1 by default, even to greedy decoding
NEUTRAL = {"repeat_penalty": 1.0}


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A thinkcost home whose GGUF cache already holds SmolLM2's F32 and Q8_0 files, named
    as the llamacpp engine names them (so it finds them instead of converting again)."""
    home = tmp_path_factory.mktemp("home")
    src = smollm_gguf()
    f32 = float_gguf(src, home / "gguf" / f"{src.stem}-F32.gguf")
    q8 = quantize_gguf(f32, "Q8_0", home / "gguf" / f"{src.stem}-Q8_0.gguf")
    return home, q8


@pytest.fixture(scope="module")
def server(home):
    _, q8 = home
    with serve(q8, n_threads=1, extra_args=("--model_alias", ALIAS)) as url:
        yield url


def _spec(tmp_path, name: str, **kw) -> RunSpec:
    base = dict(model=ALIAS, variants=["base"], limit=5, max_new_tokens=40, seed=0)
    return RunSpec(store=tmp_path / f"{name}.sqlite", out=tmp_path / name, **(base | kw))


def _gens(result):
    st = Store(result.store_path)
    g = st.generations(result.run_id)
    st.close()
    return g


def test_openai_engine_answers_like_the_in_process_llamacpp_engine(tmp_path, monkeypatch, home, server):
    monkeypatch.setenv("THINKCOST_HOME", str(home[0]))
    http = run(
        _spec(tmp_path, "http", engine="openai", base_url=server, concurrency=2, extra_body=NEUTRAL),
        Console(quiet=True),
    )
    local = run(
        _spec(tmp_path, "local", engine="llamacpp", variants=["gguf:Q8_0"], batch_size=1, threads=1),
        Console(quiet=True),
    )
    a = _gens(http).set_index("problem_id")
    b = _gens(local).set_index("problem_id")
    assert len(a) == len(b) == 5
    assert set(a["finish_reason"]) <= {"stop", "length"}
    same_text = sum(a.loc[p, "text"].strip() == b.loc[p, "text"].strip() for p in b.index)
    same_answer = sum(a.loc[p, "extracted"] == b.loc[p, "extracted"] for p in b.index)
    # llama.cpp's logits depend slightly on how tokens are batched (server: one request at a
    # time; in process: four rows per step), so greedy texts may part late on a rare problem
    assert same_text >= 4, (list(a["text"]), list(b["text"]))
    assert same_answer >= 4
    for p in b.index:
        if a.loc[p, "text"].strip() == b.loc[p, "text"].strip():
            # reasoning tokens from the model's own tokenizer on both sides; the server's
            # streamed deltas omit the EOS token the in-process engine counts
            assert a.loc[p, "reasoning_tokens"] == b.loc[p, "reasoning_tokens"]
            assert abs(int(a.loc[p, "completion_tokens"]) - int(b.loc[p, "completion_tokens"])) <= 1


def test_faults_are_retried_or_stored_as_failed_and_a_rerun_retries_them(tmp_path, home, server):
    # one request at a time, so the k-th POST is known: sample order = problem order
    plan = [
        None,  # p0 ok
        "500",  # p1 attempt 1
        "500",  # p1 attempt 2 -> failed (max_retries=1)
        "reset",  # p2 attempt 1
        None,  # p2 ok
        "429:1",  # p3 attempt 1 (Retry-After honoured)
        None,  # p3 ok
        "truncate",  # p4 attempt 1
        "malformed",  # p4 attempt 2 -> failed
    ]
    with FaultProxy(server, plan) as proxy:
        spec = _spec(
            tmp_path, "faults", engine="openai", base_url=proxy.base_url, concurrency=1, max_retries=1
        )
        first = run(spec, Console(quiet=True))
        assert proxy.max_inflight <= 1
        g = _gens(first).sort_values("problem_id")
        assert len(g) == 5 and not g.duplicated(["problem_id", "sample"]).any()
        failed = g[g["finish_reason"] == "error"]
        assert len(failed) == 2
        reasons = " | ".join(failed["error"])
        assert "500" in reasons and "malformed" in reasons.lower()
        assert set(failed["attempts"]) == {2}
        assert not failed["correct"].any()
        done = g[g["finish_reason"] != "error"]
        assert len(done) == 3 and done["error"].isna().all()
        assert sorted(done["attempts"]) == [1, 2, 2]
        assert sum(r.failed for r in first.rows) == 2

        # the rerun (the plan is spent: the proxy is healthy now) draws exactly the two failed samples
        again = run(
            _spec(tmp_path, "faults", engine="openai", base_url=proxy.base_url, concurrency=1),
            Console(quiet=True),
        )
    assert again.run_id == first.run_id
    assert again.generated == 2
    g2 = _gens(again)
    assert len(g2) == 5 and (g2["finish_reason"] != "error").all()
    assert sum(r.failed for r in again.rows) == 0
    # another server is another run: its rows are never mixed with these (the base URL is identity)
    other = _spec(tmp_path, "faults", engine="openai", base_url=server, concurrency=1)
    assert other.run_id() != first.run_id


def test_openai_spec_errors_name_the_field():
    from thinkcost.errors import UserError
    from thinkcost.spec import build_spec

    with pytest.raises(UserError, match="base_url"):
        build_spec({}, {"engine": "openai"})
    with pytest.raises(UserError, match=r"bf-cap.*--engine hf or llamacpp"):
        build_spec({}, {"engine": "openai", "base_url": "http://x/v1", "strategy": "bf-cap:64"})
    with pytest.raises(UserError, match="concurrency must be >= 4"):
        build_spec(
            {}, {"engine": "openai", "base_url": "http://x/v1", "strategy": "short-1@4", "concurrency": 2}
        )
    with pytest.raises(UserError, match="served:NAME"):
        build_spec({}, {"engine": "openai", "base_url": "http://x/v1", "variants": "rtn-w4g32"})


def test_an_unreachable_server_is_one_clear_error(tmp_path):
    from llama_server import free_port
    from thinkcost.errors import UserError

    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(UserError, match=url.replace(".", r"\.")):
        run(_spec(tmp_path, "down", engine="openai", base_url=url), Console(quiet=True))
