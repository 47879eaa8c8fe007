"""Server fleets for the `openai` engine: the endpoint pool's rules (least outstanding, out after
repeated connection failures, probed back in), the spec's fleet fields and run identity, and
two real llama-cpp-python servers behind fault proxies, one killed mid-run: every sample is
stored exactly once and the rerun draws nothing."""

from __future__ import annotations

import os
import random
import signal

import pytest
from rich.console import Console

from thinkcost.engines.openai import fleet
from thinkcost.errors import UserError
from thinkcost.spec import RunSpec, build_spec

URLS = [f"http://127.0.0.1:{8000 + i}/v1" for i in range(4)]


# --- the pool ------------------------------------------------------------------------------------


def _brute_choice(pool: fleet.Pool, now: float, avoid=None) -> fleet.Endpoint:
    """The rule written out plainly: due probes first, then the least outstanding in service
    (ties: fewest attempts, then list order), avoiding `avoid` when there is another."""
    eps = pool.endpoints
    due = [e for e in eps if not e.in_service and not e.probing and now >= e.probe_at and e is not avoid]
    if due:
        return sorted(due, key=lambda e: (e.probe_at, e.index))[0]
    live = [e for e in eps if e.in_service]
    if len(live) > 1 and avoid in live:
        live.remove(avoid)
    if live:
        best = min(e.outstanding for e in live)
        tied = [e for e in live if e.outstanding == best]
        fewest = min(e.attempts for e in tied)
        return next(e for e in tied if e.attempts == fewest)
    return sorted(eps, key=lambda e: (e.probe_at, e.outstanding, e.index))[0]


def test_least_outstanding_matches_brute_force():
    rng = random.Random(0)
    for trial in range(200):
        pool = fleet.Pool.of(URLS[: rng.randint(1, 4)], max_failures=rng.randint(1, 3), probe_s=2.0)
        held: list[fleet.Endpoint] = []
        now = 0.0
        for _ in range(60):
            now += rng.random()
            if held and rng.random() < 0.5:
                e = held.pop(rng.randrange(len(held)))
                fleet.release(pool, e, now, rng.choice(["ok", "http", "connection", "cancelled"]), 0.1)
            else:
                avoid = rng.choice([None, *pool.endpoints])
                want = _brute_choice(pool, now, avoid)
                got = fleet.acquire(pool, now, avoid)
                assert got is want, trial
                held.append(got)
            assert all(e.outstanding == sum(h is e for h in held) for e in pool.endpoints)


def test_requests_spread_and_follow_the_shortest_queue():
    pool = fleet.Pool.of(URLS[:2])
    a, b = pool.endpoints
    picks = [fleet.acquire(pool, 0.0) for _ in range(4)]
    assert picks == [a, b, a, b]
    fleet.release(pool, a, 1.0, "ok", 0.5)
    assert fleet.acquire(pool, 1.0) is a  # a has one outstanding, b two
    # sequential traffic alternates too (ties go to the endpoint sent fewer attempts)
    pool = fleet.Pool.of(URLS[:2])
    seq = []
    for _ in range(4):
        e = fleet.acquire(pool, 0.0)
        seq.append(e.index)
        fleet.release(pool, e, 0.0, "ok", 0.1)
    assert seq == [0, 1, 0, 1]


def test_out_after_repeated_connection_failures_and_back_after_an_answer():
    pool = fleet.Pool.of(URLS[:2], max_failures=3, probe_s=5.0)
    a, b = pool.endpoints
    for _ in range(2):
        e = fleet.acquire(pool, 0.0, avoid=a)
        assert e is b
        fleet.release(pool, e, 0.0, "connection")
    assert b.in_service and b.consecutive_failures == 2
    b.outstanding += 1
    fleet.release(pool, b, 0.0, "http")  # it answered (an error status): up, count reset
    assert b.in_service and b.consecutive_failures == 0
    for _ in range(3):
        b.outstanding += 1
        fleet.release(pool, b, 10.0, "connection")
    assert not b.in_service and b.outages == 1 and b.probe_at == 15.0
    # while out and not due, everything goes to a
    assert all(fleet.acquire(pool, 12.0) is a for _ in range(5))
    # once due, one probe goes to b; the others still to a
    probe = fleet.acquire(pool, 15.0)
    assert probe is b and b.probing
    assert fleet.acquire(pool, 15.0) is a
    fleet.release(pool, b, 16.0, "connection")  # the probe failed: next probe later
    assert not b.in_service and b.probe_at == 21.0
    assert fleet.acquire(pool, 21.0) is b
    fleet.release(pool, b, 21.5, "ok", 0.5)  # it answered: back in
    assert b.in_service and b.consecutive_failures == 0 and b.completed == 1
    assert b.stats()["mean_latency_s"] == 0.5 and b.stats()["connection_failures"] == 6


def test_a_failed_attempt_goes_elsewhere_and_a_fleet_of_one_never_gives_up():
    pool = fleet.Pool.of(URLS[:3])
    a, b, _c = pool.endpoints
    assert fleet.choose(pool, 0.0, avoid=a) is b
    one = fleet.Pool.of(URLS[:1], max_failures=1)
    (only,) = one.endpoints
    for t in range(5):  # out, probing, failing: still the one server to try
        e = fleet.acquire(one, float(t), avoid=only)
        assert e is only
        fleet.release(one, e, float(t), "connection")
    assert not only.in_service


def test_cancelled_attempts_say_nothing_about_health():
    pool = fleet.Pool.of(URLS[:1], max_failures=1)
    e = fleet.acquire(pool, 0.0)
    fleet.release(pool, e, 0.0, "cancelled")
    assert e.in_service and e.outstanding == 0 and e.connection_failures == 0
    with pytest.raises(ValueError, match="outcome"):
        fleet.release(pool, fleet.acquire(pool, 0.0), 0.0, "bogus")


# --- the spec ------------------------------------------------------------------------------------


def _openai(**kw) -> RunSpec:
    return RunSpec(engine="openai", variants=["base"], model="smollm2-135m", **kw)


def test_fleet_run_id_ignores_its_endpoints_and_one_url_is_as_before(tmp_path):
    single = _openai(base_url=URLS[0])
    assert single.identity()["base_url"] == URLS[0] and not single.is_fleet()
    two = _openai(base_url=",".join(URLS[:2]))
    three = _openai(base_url=URLS[:3])  # a YAML list
    f = tmp_path / "eps.txt"
    f.write_text(f"# fleet\n{URLS[3]}\n\n{URLS[0]}  # again\n")
    from_file = _openai(endpoints=f)
    mixed = _openai(base_url=URLS[1], endpoints=f)
    assert two.is_fleet() and from_file.is_fleet()
    assert "base_url" not in two.identity()
    assert len({two.run_id(), three.run_id(), from_file.run_id(), mixed.run_id()}) == 1
    assert two.run_id() != single.run_id()  # documented: a fleet does not resume one server's run
    assert mixed.endpoint_urls() == [URLS[1], URLS[3], URLS[0]]
    assert three.base_url == ",".join(URLS[:3])


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "no endpoint URLs"),
        ("# only a comment\n\n", "no endpoint URLs"),
        (f"{URLS[0]}\n127.0.0.1:8001/v1\n", ":2: expected an http(s) URL"),
        ("ftp://x/v1\n", ":1: expected an http(s) URL"),
    ],
)
def test_bad_endpoints_files_are_one_clear_error(tmp_path, text, needle):
    f = tmp_path / "eps.txt"
    f.write_text(text)
    with pytest.raises(UserError, match="endpoints") as e:
        build_spec({}, {"engine": "openai", "endpoints": f})
    assert str(f) in str(e.value) and needle in str(e.value)
    with pytest.raises(UserError, match="does-not-exist"):
        build_spec({}, {"engine": "openai", "endpoints": tmp_path / "does-not-exist.txt"})
    with pytest.raises(UserError, match="expected http"):
        build_spec({}, {"engine": "openai", "base_url": f"{URLS[0]},localhost:9/v1"})


def test_the_cli_refuses_a_bad_endpoints_file(tmp_path):
    from cli_run import cli, one_line_error

    f = tmp_path / "eps.txt"
    f.write_text("not a url\n")
    p = cli("run", "--engine", "openai", "--endpoints", str(f), "--variants", "base")
    one_line_error(p, str(f), ":1:")


def test_endpoints_that_serve_other_models_are_refused():
    from thinkcost.engines.openai.backend import _check_fleet_model

    _check_fleet_model({URLS[0]: ["m"], URLS[1]: ["m", "x"]}, "m", "base")
    _check_fleet_model({URLS[0]: ["a"], URLS[1]: []}, "m", "base")  # none lists it: warned, tried
    with pytest.raises(UserError, match=r"disagree.*8001.*lists other"):
        _check_fleet_model({URLS[0]: ["m"], URLS[1]: ["other"]}, "m", "base")


# --- two real servers, one killed mid-run ----------------------------------------------------------


def test_a_server_killed_mid_run_loses_no_sample_and_the_rerun_draws_nothing(tmp_path):
    from fault_proxy import FaultProxy
    from llama_server import needs_llama_server, serve, smollm_gguf
    from thinkcost.pipeline import run
    from thinkcost.store import Store

    needs_llama_server()
    alias = "smollm2-135m"
    procs = []
    args = ("--model_alias", alias)
    with (
        serve(smollm_gguf(), n_threads=1, extra_args=args) as url_a,
        serve(smollm_gguf(), n_threads=1, extra_args=args, on_start=procs.append) as url_b,
    ):
        (proc_b,) = procs

        def kill_b_on_its_second_request(k: int) -> None:
            if k == 1:  # its first request is in flight: the server dies under it
                os.killpg(proc_b.pid, signal.SIGKILL)
                proc_b.wait()
            return None

        with FaultProxy(url_a) as pa, FaultProxy(url_b, kill_b_on_its_second_request) as pb:
            kw = dict(
                engine="openai",
                model=alias,
                variants=["base"],
                base_url=[pa.base_url, pb.base_url],
                limit=6,
                max_new_tokens=16,
                concurrency=4,
                extra_body={"repeat_penalty": 1.0},
                store=tmp_path / "fleet.sqlite",
                out=tmp_path / "fleet",
            )
            first = run(RunSpec(**kw), Console(quiet=True))
            assert pb.posts >= 2  # b was sent work, then died
            st = Store(first.store_path)
            g = st.generations(first.run_id)
            note = st.note(first.run_id, "endpoints")
            st.close()
            assert len(g) == 6 and not g.duplicated(["problem_id", "sample"]).any()
            assert (g["finish_reason"] != "error").all(), list(g["error"])
            assert first.generated == 6
            stats = note["base"]
            assert set(stats) == {pa.base_url, pb.base_url}
            b = stats[pb.base_url]
            assert b["connection_failures"] >= 1 and b["attempts"] >= 2
            assert stats[pa.base_url]["completed"] + b["completed"] == 6
            # every failed attempt was retried: attempts stored per sample add up
            assert int(g["attempts"].sum()) == sum(s["attempts"] for s in stats.values())
            assert int(g["attempts"].sum()) > 6

            again = run(RunSpec(**kw), Console(quiet=True))
    assert again.run_id == first.run_id
    assert again.generated == 0
