"""The store: rows committed at once, resume without loss or duplicates, runs never mix."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from thinkcost.errors import UserError
from thinkcost.store import Store
from thinkcost.tasks import get_task
from thinkcost.types import Completion, Verdict


def _completion(text: str = "x \\boxed{3}") -> Completion:
    return Completion(text, "x ", "\\boxed{3}", 10, 6, 2, 4, "stop", 0.5, 0.1, 0.2)


def test_generation_roundtrip_and_insert_is_idempotent(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    probs = get_task("arithmetic").problems(3, 0)
    st.ensure_run("r1", "demo", {"model": "m"})
    st.put_problems("r1", probs)
    st.put_generation("r1", "base", probs[0].id, "greedy", 0, _completion(), Verdict(True, "3", "boxed"), 4)
    st.put_generation(
        "r1", "base", probs[0].id, "greedy", 0, _completion("other"), Verdict(False, None, "none"), 4
    )
    df = st.generations("r1")
    assert len(df) == 1 and df.loc[0, "text"] == "x \\boxed{3}" and df.loc[0, "correct"] == 1
    assert df.loc[0, "gold"] == probs[0].gold
    assert st.done_keys("r1", "base", "greedy") == {(probs[0].id, 0)}


def test_two_runs_in_one_file_never_mix(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    probs = get_task("arithmetic").problems(2, 0)
    for rid in ("a", "b"):
        st.ensure_run(rid, rid, {"seed": rid})
        st.put_problems(rid, probs)
    st.put_generation("a", "base", probs[0].id, "greedy", 0, _completion(), Verdict(True, "3", "boxed"), 1)
    assert st.done_keys("b", "base", "greedy") == set()
    assert len(st.generations("b")) == 0 and len(st.generations("a")) == 1


def test_unwritable_or_missing_store_is_a_user_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a dir")
    with pytest.raises(UserError, match="cannot open store"):
        Store(blocker / "s.sqlite")
    with pytest.raises(UserError, match="does not exist"):
        Store(tmp_path / "missing.sqlite", create=False)


def _count(path: Path) -> int:
    try:
        with sqlite3.connect(path, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_sigkill_mid_run_loses_nothing_and_rerun_resumes_without_duplicates(tmp_path):
    """A real run (SmolLM2, batch 1) is SIGKILLed once rows exist; the rerun completes it."""
    store = tmp_path / "s.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "thinkcost.cli",
        "run",
        "--model",
        "smollm2-135m",
        "--variants",
        "base,rtn-w4g32",
        "--limit",
        "4",
        "--max-new-tokens",
        "24",
        "--batch-size",
        "1",
        "--store",
        str(store),
        "--out",
        str(tmp_path / "out"),
    ]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    try:
        while proc.poll() is None and _count(store) < 3:
            time.sleep(0.05)  # polling for a condition, not waiting for time to pass
        assert proc.poll() is None, "run finished before it could be killed; make it longer"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    with sqlite3.connect(store) as db:
        before = {
            tuple(r[:3]): r[3:]
            for r in db.execute("SELECT variant, problem_id, sample, text, created_at FROM generations")
        }
    assert 3 <= len(before) < 8
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    with sqlite3.connect(store) as db:
        rows = db.execute("SELECT variant, problem_id, sample, text, created_at FROM generations").fetchall()
    keys = [tuple(r[:3]) for r in rows]
    assert len(keys) == len(set(keys)) == 8  # 2 variants x 4 problems, no duplicates
    after = {tuple(r[:3]): r[3:] for r in rows}
    for k, v in before.items():
        assert after[k] == v  # rows that finished before the kill were kept, not regenerated
    assert "8 generations" not in done.stdout  # the rerun did only what was missing


def test_duplicate_insert_reports_false_and_new_columns_round_trip(tmp_path):
    st = Store(tmp_path / "s.sqlite")
    probs = get_task("arithmetic").problems(1, 0)
    st.ensure_run("r1", "demo", {"model": "m"})
    st.put_problems("r1", probs)
    c = _completion()
    c.self_certainty, c.forced_tokens, c.interventions = 7.5, 3, 2
    v = Verdict(True, "3", "boxed")
    assert st.put_generation("r1", "base", probs[0].id, "k", 0, c, v, 4, call_id="abc") is True
    assert st.put_generation("r1", "base", probs[0].id, "k", 0, c, v, 4, call_id="zzz") is False
    row = st.generations("r1").iloc[0]
    assert (row["self_certainty"], row["forced_tokens"], row["interventions"], row["call_id"]) == (
        7.5,
        3,
        2,
        "abc",
    )
    st.put_strategy("r1", "maj@4", 0, {"recipe": "sample", "options": {"temperature": 0.5}})
    assert st.strategies("r1") == [{"name": "maj@4", "recipe": "sample", "options": {"temperature": 0.5}}]
    st.put_scores("r1", [("base", probs[0].id, "k", 0, "rm:x", 0.25, 0.01)])
    sc = st.scores("r1")
    assert list(sc["value"]) == [0.25] and list(sc["scorer"]) == ["rm:x"]


def test_a_schema_1_store_is_upgraded_in_place_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.sqlite"
    db = sqlite3.connect(path)
    old_cols = (
        "run_id TEXT, variant TEXT, problem_id TEXT, strategy TEXT, sample INTEGER, text TEXT, "
        "reasoning_text TEXT, answer_text TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, "
        "reasoning_tokens INTEGER, answer_tokens INTEGER, finish_reason TEXT, think_unclosed INTEGER, "
        "latency_s REAL, ttft_s REAL, cost_s REAL, batch_size INTEGER, extracted TEXT, extract_rule TEXT, "
        "correct INTEGER, mean_logprob REAL, created_at REAL, "
        "PRIMARY KEY (run_id, variant, problem_id, strategy, sample)"
    )
    db.execute(f"CREATE TABLE generations ({old_cols})")
    db.execute(
        "INSERT INTO generations VALUES ('r', 'base', 'p', 'greedy', 0, 't', '', 't', 1, 2, 1, 1, 'stop', 0, "
        "0.1, 0.1, 0.1, 1, '3', 'boxed', 1, -0.5, 0)"
    )
    db.commit()
    db.close()
    st = Store(path)
    cols = {r[1] for r in st.db.execute("PRAGMA table_info(generations)")}
    assert {"self_certainty", "forced_tokens", "interventions", "call_id"} <= cols
    row = st.db.execute("SELECT text, forced_tokens, call_id FROM generations").fetchone()
    assert tuple(row) == ("t", 0, "")
