"""Sharded runs (`--shard I/N`) and `thinkcost merge`: shards partition the problems for any N;
merging is idempotent and commutative, refuses a key whose content differs, and the report of
merged shards equals the report of one unsharded run."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
from rich.console import Console

from cli_run import cli, one_line_error
from scripted_engine import ScriptedEngine
from thinkcost.errors import UserError
from thinkcost.merge import merge_stores
from thinkcost.report.build import build_report
from thinkcost.report.markdown import rows_to_markdown
from thinkcost.runner import generate
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.tasks import get_task
from thinkcost.tasks.shard import Shard, parse_shard, select, shard_of

LIMIT = 12
GOLD = {p.messages[-1]["content"]: p.gold for p in get_task("arithmetic").problems(LIMIT, 0)}
STRATEGIES = "greedy,maj@4,short-1@4,bf-cap:6"


def _script(worse: bool):
    """Problem k, sample s: thinks k + s (+3 when "quantized") steps; some answers are wrong."""

    def script(req, sid):
        content = req.prompt_messages[-1]["content"]
        k = sorted(GOLD).index(next(c for c in GOLD if content.startswith(c)))
        right = (k + sid) % 3 != 0 and not (worse and k % 4 == 1)
        answer = GOLD[content] if right else "-1"
        return (
            ["Let", " me", " add", "."]
            + [" step"] * (k + sid + (3 if worse else 0))
            + [
                "\nThe",
                " answer",
                " is",
                f" {answer}",
                ".",
            ]
        )

    return script


class OneRequestAtATime:
    """The scripted engine fed one request at a time (a short-m@k group still races as one)."""

    name = "scripted"

    def __init__(self, script) -> None:
        self.inner = ScriptedEngine(script, batch_size=4)

    def generate(self, requests, on_complete) -> None:
        for k, req in enumerate(requests):
            self.inner.generate([req], on_complete=lambda _i, sample, c, k=k: on_complete(k, sample, c))

    def close(self) -> None:
        self.inner.close()


def _run(tmp_path: Path, store: str, shard: str | None = None) -> Path:
    """base then rtn-w4g32 (scripted: a label), one store, one request at a time so a row's
    fake seconds do not depend on which other problems share its batch (that differs between
    shards; with a real engine timings differ between any two runs anyway)."""
    for variants, worse in (("base", False), ("base,rtn-w4g32", True)):
        spec = build_spec(
            {},
            {
                "variants": variants,
                "strategy": STRATEGIES,
                "limit": LIMIT,
                "max_new_tokens": 30,
                "store": tmp_path / store,
                "out": tmp_path / "out",
                "n_boot": 200,
                "batch_size": 4,
                "shard": shard,
            },
        )
        generate(spec, Console(quiet=True), engine=OneRequestAtATime(_script(worse)))
    return tmp_path / store


def _report(store: Path, out: Path):
    st = Store(store)
    rows, outputs = build_report(st, st.latest_run_id(), out)
    st.close()
    doc = json.loads(outputs["json"].read_text())
    table = [line for line in rows_to_markdown(rows, doc["meta"]).splitlines() if line.startswith("|")]
    return doc["variants"], table


def _dump(path: Path) -> dict[str, list]:
    """Every row of every table, sorted: two stores with equal dumps hold the same data."""
    db = sqlite3.connect(path)
    try:
        return {
            t: sorted(map(repr, db.execute(f"SELECT * FROM {t}").fetchall()))
            for t in ("runs", "variants", "problems", "generations", "strategies", "scores", "meta")
        }
    finally:
        db.close()


def _altered(src: Path, dst: Path, update: str, one_row: bool = False):
    """A copy of store `src` at `dst` with an UPDATE applied: to every row, or (`one_row`) to
    the first generation by problem id, whose key (variant, problem, recipe, sample) is returned."""
    shutil.copyfile(src, dst)
    db = sqlite3.connect(dst)
    try:
        if not one_row:
            db.execute(update)
            db.commit()
            return None
        key = db.execute(
            "SELECT variant, problem_id, recipe, sample FROM generations ORDER BY problem_id LIMIT 1"
        ).fetchone()
        db.execute(update + " WHERE variant=? AND problem_id=? AND recipe=? AND sample=?", key)
        db.commit()
        return key
    finally:
        db.close()


# --- shards -------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 5, 8])
def test_shards_partition_the_problems_for_any_n(n):
    problems = get_task("arithmetic").problems(200, 0)
    chosen = [select(problems, Shard(i, n)) for i in range(1, n + 1)]
    ids = [p.id for part in chosen for _, p in part]
    assert sorted(ids) == sorted(p.id for p in problems)  # union is everything, no problem twice
    assert len(ids) == len(set(ids))
    for part in chosen:  # positions are those of the full list
        assert all(problems[i].id == p.id for i, p in part)
    if n > 1:
        assert all(part for part in chosen)  # 200 problems: no shard is empty


def test_a_shard_depends_on_the_problem_id_alone():
    import hashlib

    for pid in ("arith-0", "gsm8k/17", "ünïcode-3"):
        expected = int.from_bytes(hashlib.sha256(pid.encode()).digest()[:8], "big") % 7
        assert shard_of(pid, 7) == expected
    small = get_task("arithmetic").problems(20, 0)
    large = get_task("arithmetic").problems(60, 0)
    # a larger limit only adds problems to a shard
    assert {p.id for _, p in select(small, Shard(2, 3))} <= {p.id for _, p in select(large, Shard(2, 3))}


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1/0", "2", "a/b", "1/2/3", ""])
def test_a_bad_shard_is_refused_with_what_is_expected(bad):
    with pytest.raises(ValueError, match=r"I/N|1\.\.N"):
        parse_shard(bad)
    with pytest.raises(UserError, match="field 'shard'"):
        build_spec({}, {"shard": bad})


def test_the_shard_is_not_part_of_the_run_id():
    assert build_spec({}, {"shard": "1/2"}).run_id() == build_spec({}, {}).run_id()


# --- merge ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    d = tmp_path_factory.mktemp("shards")
    whole = _run(d, "whole.sqlite")
    a = _run(d, "a.sqlite", "1/2")
    b = _run(d, "b.sqlite", "2/2")
    return d, whole, a, b


def test_each_shard_store_holds_only_its_problems(runs):
    _, whole, a, b = runs
    ids = {}
    for name, path in (("a", a), ("b", b), ("whole", whole)):
        st = Store(path)
        ids[name] = set(st.problems(st.latest_run_id())["problem_id"])
        st.close()
    assert ids["a"] and ids["b"] and not ids["a"] & ids["b"]
    assert ids["a"] | ids["b"] == ids["whole"]


def test_merged_shards_report_exactly_what_one_process_reports(runs, tmp_path):
    _, whole, a, b = runs
    merged = tmp_path / "merged.sqlite"
    result = merge_stores(merged, [a, b])
    assert result.added == Store(whole).count(Store(whole).latest_run_id())
    assert _report(merged, tmp_path / "m") == _report(whole, tmp_path / "w")
    # and the merged store is a complete run: rerunning the unsharded command draws nothing
    spec = build_spec(
        {},
        {
            "variants": "base,rtn-w4g32",
            "strategy": STRATEGIES,
            "limit": LIMIT,
            "max_new_tokens": 30,
            "store": merged,
            "out": tmp_path / "o",
            "n_boot": 200,
            "batch_size": 4,
        },
    )
    assert generate(spec, Console(quiet=True), engine=OneRequestAtATime(_script(True))).generated == 0


def test_merging_twice_changes_nothing_and_order_does_not_matter(runs, tmp_path):
    _, _, a, b = runs
    ab, ba = tmp_path / "ab.sqlite", tmp_path / "ba.sqlite"
    merge_stores(ab, [a, b])
    first = _dump(ab)
    again = merge_stores(ab, [a, b])
    assert again.added == 0 and _dump(ab) == first
    merge_stores(ab, [b])  # merging a part again: also nothing
    assert _dump(ab) == first
    merge_stores(ba, [b, a])
    assert _dump(ba) == first
    # one input at a time into a growing OUT is the same as all at once
    inc = tmp_path / "inc.sqlite"
    merge_stores(inc, [b])
    merge_stores(inc, [a])
    assert _dump(inc) == first


def test_the_same_sample_in_two_stores_is_kept_once_the_earlier_copy(runs, tmp_path):
    _, _, a, _ = runs
    late = tmp_path / "late.sqlite"
    _altered(a, late, "UPDATE generations SET created_at = created_at + 1000, latency_s = latency_s + 5")
    out = tmp_path / "o.sqlite"
    merge_stores(out, [late, a])
    assert _dump(out)["generations"] == _dump(a)["generations"]


def test_a_finished_row_replaces_a_failed_one_whatever_the_order(runs, tmp_path):
    _, _, a, _ = runs
    failed = tmp_path / "failed.sqlite"
    _altered(
        a,
        failed,
        "UPDATE generations SET finish_reason='error', text='', error='timeout', created_at=0",
        True,
    )
    for order in ([failed, a], [a, failed]):
        out = tmp_path / f"o{len(str(order[0]))}.sqlite"
        out.unlink(missing_ok=True)
        merge_stores(out, order)
        assert _dump(out)["generations"] == _dump(a)["generations"]


def test_a_key_with_different_content_is_refused_naming_the_key_and_out_is_untouched(runs, tmp_path):
    _, _, a, b = runs
    out = tmp_path / "o.sqlite"
    merge_stores(out, [b])
    before = _dump(out)
    other = tmp_path / "other.sqlite"
    _, pid, recipe, sample = _altered(
        a, other, "UPDATE generations SET text = text || ' (another model)'", True
    )
    with pytest.raises(UserError) as e:
        merge_stores(out, [a, other])
    msg = str(e.value)
    assert f"problem {pid!r}" in msg and f"recipe {recipe!r}" in msg and f"sample {sample}" in msg
    assert "text differ" in msg and str(other) in msg
    assert _dump(out) == before
    assert not (tmp_path / "o.sqlite.merging").exists()


def test_differing_variant_facts_are_kept_and_listed(runs, tmp_path):
    _, _, a, b = runs
    b2 = tmp_path / "b2.sqlite"
    _altered(
        b, b2, "UPDATE variants SET info_json = json_set(info_json, '$.load_s', 3.5) WHERE variant='base'"
    )
    ab, ba = tmp_path / "ab.sqlite", tmp_path / "ba.sqlite"
    assert merge_stores(ab, [a, b2]).differing == 1
    merge_stores(ba, [b2, a])
    assert _dump(ab) == _dump(ba)
    st = Store(ab)
    run_id = st.latest_run_id()
    (entry,) = st.note(run_id, "merge:differing")
    assert entry["table"] == "variants" and entry["key"] == "base" and len(entry["values"]) == 2
    assert any(v.get("load_s") == 3.5 for v in entry["values"])
    st.close()
    first = _dump(ab)
    merge_stores(ab, [a, b2])
    assert _dump(ab) == first


def test_stores_of_different_runs_are_refused(runs, tmp_path):
    _, _, a, _ = runs
    other = tmp_path / "other.sqlite"
    spec = build_spec(
        {},
        {
            "variants": "base",
            "strategy": "greedy",
            "limit": 2,
            "max_new_tokens": 31,
            "store": other,
            "out": tmp_path / "o",
        },
    )
    generate(spec, Console(quiet=True), engine=ScriptedEngine(_script(False)))
    with pytest.raises(UserError, match="share no run"):
        merge_stores(tmp_path / "m.sqlite", [a, other])


def test_merge_cli_merges_and_says_bad_input_in_one_line(runs, tmp_path):
    _, whole, a, b = runs
    out = tmp_path / "cli.sqlite"
    p = cli("merge", str(out), str(a), str(b))
    assert p.returncode == 0, p.stderr
    assert "merged 2 store(s)" in p.stdout
    st = Store(out)
    assert st.count(st.latest_run_id()) == Store(whole).count(Store(whole).latest_run_id())
    st.close()
    one_line_error(
        cli("merge", str(out), str(tmp_path / "missing.sqlite")), "missing.sqlite", "does not exist"
    )
    one_line_error(cli("merge", str(out), str(out)), "OUT itself")


def test_two_real_workers_of_a_sharded_cli_run_merge_into_the_unsharded_run(tmp_path):
    """SmolLM2 on the hf engine, as a user runs it: two `--shard` workers at once, `merge`,
    `report`. Texts, token counts and grades equal the one-process run's; only timings differ."""
    import subprocess
    import sys

    common = [
        "run",
        "--model",
        "smollm2-135m",
        "--variants",
        "base",
        "--strategy",
        "greedy,maj@2",
        "--limit",
        "6",
        "--max-new-tokens",
        "12",
        "--n-boot",
        "100",
    ]
    one = cli(*common, "--store", str(tmp_path / "one.sqlite"), "--out", str(tmp_path / "one"))
    assert one.returncode == 0, one.stderr
    workers = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "thinkcost.cli",
                *common,
                "--shard",
                f"{i}/2",
                "--store",
                str(tmp_path / f"w{i}.sqlite"),
                "--out",
                str(tmp_path / f"w{i}"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (1, 2)
    ]
    for w in workers:
        _, err = w.communicate(timeout=300)
        assert w.returncode == 0, err
    merged = tmp_path / "merged.sqlite"
    p = cli("merge", str(merged), str(tmp_path / "w1.sqlite"), str(tmp_path / "w2.sqlite"))
    assert p.returncode == 0, p.stderr
    cols = [
        "variant",
        "problem_id",
        "recipe",
        "sample",
        "text",
        "completion_tokens",
        "reasoning_tokens",
        "answer_tokens",
        "extracted",
        "correct",
        "problem_position",
    ]
    frames = []
    for path in (tmp_path / "one.sqlite", merged):
        st = Store(path)
        frames.append(st.generations(st.latest_run_id())[cols].reset_index(drop=True))
        st.close()
    assert len(frames[0]) == 6 * 3
    assert frames[0].equals(frames[1])
    again = cli(*common, "--store", str(merged), "--out", str(tmp_path / "again"))
    assert again.returncode == 0 and "everything is already in" in again.stdout, again.stdout
