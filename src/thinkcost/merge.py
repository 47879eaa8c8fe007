"""`thinkcost merge OUT A B ...`: the stores of one run's workers (shards, machines) as one.

Merging is a set union keyed like the store itself, so it is idempotent (merging the same
stores again changes nothing) and commutative (the order of the inputs does not matter):
- a generation (run, variant, problem, recipe, sample) is one row. Two stores holding it with
  the same content (text, token counts, ids, verdict) are the same sample drawn twice: the
  earlier one is kept. Different content under one key is refused — it would mean two
  different models or settings under one run id — with one line naming the key. A failed row
  (finish_reason "error") gives way to a finished one, as a rerun would replace it;
- problems and reward scores are the same: equal rows merge, different rows are refused;
- variant facts, strategies and run notes are kept. Facts that differ between workers (seconds
  to load or quantize, per-endpoint counts) are not a conflict: the smallest JSON is kept,
  whichever store it came from, and every distinct value is recorded in the note
  `merge:differing`, so nothing a worker recorded is lost.
OUT is written to a temporary file and moved into place, so an interrupted merge leaves OUT as
it was. When OUT exists it is one of the inputs.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

from .errors import UserError
from .store import CONTENT_COLUMNS, GENERATION_COLUMNS, Store

_KEY = ("run_id", "variant", "problem_id", "recipe", "sample")
_PROBLEM_COLUMNS = ("position", "task", "messages_json", "gold", "meta_json")
_SCORE_KEY = ("run_id", "variant", "problem_id", "recipe", "sample", "scorer")


@dataclass
class Merged:
    """What `merge_stores` did."""

    out: Path
    runs: dict[str, int] = field(default_factory=dict)  # run id -> generations in OUT
    added: int = 0  # generations OUT did not hold before
    differing: int = 0  # facts kept with more than one value among the inputs


def merge_stores(out: str | Path, inputs: list[str | Path]) -> Merged:
    out = Path(out)
    if not inputs:
        raise UserError("merge: name at least one store to merge into OUT")
    paths = [Path(p) for p in inputs]
    for p in paths:
        if not p.is_file():
            raise UserError(f"merge: store {str(p)!r} does not exist")
        if p.resolve() == out.resolve():
            raise UserError(f"merge: {str(p)!r} is OUT itself; OUT is always merged into, name it once")
    for p in paths:
        Store(p, create=False).close()  # brings an older store to this schema (in place), or a clear error
    tmp = out.with_name(out.name + ".merging")
    tmp.unlink(missing_ok=True)
    if out.is_file():
        src = sqlite3.connect(out)
        dst = sqlite3.connect(tmp)
        src.backup(dst)  # consistent copy, WAL included
        src.close()
        dst.close()
    Store(tmp).close()  # schema (and migration of an old OUT)
    db = sqlite3.connect(tmp)
    before = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    try:
        _check_runs(db, paths, out)
        for p in paths:
            db.execute("ATTACH DATABASE ? AS src", (str(p),))
            try:
                _merge_generations(db, p)
                _merge_problems(db, p)
                _merge_scores(db, p)
                _merge_search_steps(db)
                _merge_runs(db)
            finally:
                db.commit()
                db.execute("DETACH DATABASE src")
        differing = _merge_facts(db, [out, *paths] if out.is_file() else paths)
        db.commit()
        result = Merged(out, differing=differing)
        for run_id, n in db.execute(
            "SELECT run_id, COUNT(*) FROM generations GROUP BY run_id ORDER BY run_id"
        ):
            result.runs[run_id] = n
        result.added = db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] - before
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.execute("PRAGMA journal_mode=DELETE")
    except BaseException:
        db.close()
        _remove(tmp)
        raise
    db.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("-wal", "-shm"):
        Path(str(out) + suffix).unlink(missing_ok=True)
    os.replace(tmp, out)
    _remove(tmp, keep_main=True)
    return result


def _remove(path: Path, keep_main: bool = False) -> None:
    for suffix in ("-wal", "-shm", "-journal") + (() if keep_main else ("",)):
        Path(str(path) + suffix).unlink(missing_ok=True)


def _check_runs(db: sqlite3.Connection, paths: list[Path], out: Path) -> None:
    """Every input holds runs, the same run id means the same settings, and the inputs share a
    run (stores of different runs have different settings: merging them is almost surely a slip)."""
    seen: dict[str, tuple[str, Path]] = {
        r[0]: (r[1], out) for r in db.execute("SELECT run_id, spec_json FROM runs")
    }
    sets = []
    for p in paths:
        con = sqlite3.connect(p)
        rows = con.execute("SELECT run_id, spec_json FROM runs").fetchall()
        con.close()
        if not rows:
            raise UserError(f"merge: store {str(p)!r} holds no runs")
        for run_id, spec_json in rows:
            if run_id in seen and json.loads(seen[run_id][0]) != json.loads(spec_json):
                raise UserError(
                    f"merge: run {run_id} has different settings in {str(p)!r} and {str(seen[run_id][1])!r}"
                )
            seen.setdefault(run_id, (spec_json, p))
        sets.append((p, {r[0] for r in rows}))
    common = set.intersection(*(s for _, s in sets))
    if not common:
        listing = "; ".join(f"{str(p)!r}: {', '.join(sorted(s))}" for p, s in sets)
        raise UserError(
            f"merge: the stores share no run ({listing}); stores of one run (same settings, e.g. the "
            "shards of one command) merge, stores of different settings are compared (`thinkcost compare`)"
        )


def _differ(a: str, b: str, cols: tuple[str, ...]) -> str:
    return " OR ".join(f"{a}.{c} IS NOT {b}.{c}" for c in cols)


def _join(a: str, b: str, key: tuple[str, ...]) -> str:
    return " AND ".join(f"{a}.{k} = {b}.{k}" for k in key)


def _merge_generations(db: sqlite3.Connection, p: Path) -> None:
    on = _join("m", "s", _KEY)
    clash = db.execute(
        f"SELECT {', '.join('s.' + k for k in _KEY)}, "
        + ", ".join(f"s.{c} IS NOT m.{c}" for c in CONTENT_COLUMNS)
        + f" FROM src.generations s JOIN main.generations m ON {on} "
        "WHERE s.finish_reason != 'error' AND m.finish_reason != 'error' "
        f"AND ({_differ('s', 'm', CONTENT_COLUMNS)}) LIMIT 1"
    ).fetchone()
    if clash:
        key = dict(zip(_KEY, clash[: len(_KEY)], strict=True))
        cols = [c for c, d in zip(CONTENT_COLUMNS, clash[len(_KEY) :], strict=True) if d]
        raise UserError(
            f"merge: {str(p)!r} holds a different generation for run {key['run_id']} variant "
            f"{key['variant']!r} problem {key['problem_id']!r} recipe {key['recipe']!r} sample "
            f"{key['sample']} ({', '.join(cols)} differ); were they made by different models or code?"
        )
    # the row to keep: finished over failed, then the earlier, then the smaller call id (a tie
    # broken the same way whatever the order of the inputs)
    better = (
        "((s.finish_reason != 'error') > (m.finish_reason != 'error') OR "
        "((s.finish_reason != 'error') = (m.finish_reason != 'error') AND "
        "(s.created_at < m.created_at OR (s.created_at = m.created_at AND s.call_id < m.call_id))))"
    )
    db.execute(
        f"DELETE FROM main.generations AS m WHERE EXISTS (SELECT 1 FROM src.generations s WHERE {on} AND {better})"
    )
    cols = ", ".join(GENERATION_COLUMNS)
    db.execute(f"INSERT OR IGNORE INTO main.generations ({cols}) SELECT {cols} FROM src.generations")


def _merge_problems(db: sqlite3.Connection, p: Path) -> None:
    on = _join("m", "s", ("run_id", "problem_id"))
    clash = db.execute(
        f"SELECT s.run_id, s.problem_id FROM src.problems s JOIN main.problems m ON {on} "
        f"WHERE {_differ('s', 'm', _PROBLEM_COLUMNS)} LIMIT 1"
    ).fetchone()
    if clash:
        raise UserError(
            f"merge: {str(p)!r} holds a different problem {clash[1]!r} for run {clash[0]} (prompt, gold "
            "answer or position differ); was the dataset file changed between workers?"
        )
    db.execute("INSERT OR IGNORE INTO main.problems SELECT * FROM src.problems")


def _merge_scores(db: sqlite3.Connection, p: Path) -> None:
    on = _join("m", "s", _SCORE_KEY)
    clash = db.execute(
        f"SELECT s.variant, s.problem_id, s.recipe, s.sample, s.scorer FROM src.scores s "
        f"JOIN main.scores m ON {on} WHERE s.value IS NOT m.value LIMIT 1"
    ).fetchone()
    if clash:
        raise UserError(
            f"merge: {str(p)!r} holds a different {clash[4]} score for variant {clash[0]!r} problem "
            f"{clash[1]!r} recipe {clash[2]!r} sample {clash[3]}"
        )
    db.execute(
        f"DELETE FROM main.scores AS m WHERE EXISTS (SELECT 1 FROM src.scores s WHERE {on} AND s.seconds < m.seconds)"
    )
    db.execute("INSERT OR IGNORE INTO main.scores SELECT * FROM src.scores")


def _merge_search_steps(db: sqlite3.Connection) -> None:
    """Search trees: shards search disjoint problems, and the same problem's tree is the same in
    two stores exactly when its generation row is (that merge refuses differing rows)."""
    db.execute("INSERT OR IGNORE INTO main.search_steps SELECT * FROM src.search_steps")


def _merge_runs(db: sqlite3.Connection) -> None:
    db.execute(
        "UPDATE main.runs AS m SET created_at = s.created_at FROM src.runs s "
        "WHERE s.run_id = m.run_id AND s.created_at < m.created_at"
    )
    db.execute("INSERT OR IGNORE INTO main.runs SELECT * FROM src.runs")


def _merge_facts(db: sqlite3.Connection, stores: list[Path]) -> int:
    """Variant facts, strategies and notes of every store (OUT's own included); each key gets the
    smallest of its values, and keys with several values are listed in `<run>:merge:differing`."""
    values: dict[tuple[str, str, str], set[str]] = {}  # (table, run id, key) -> JSON values
    positions: dict[tuple[str, str, str], int] = {}
    run_ids = {r[0] for r in db.execute("SELECT run_id FROM runs")}
    for path in stores:
        con = sqlite3.connect(path)
        try:
            for table, name in (("variants", "variant"), ("strategies", "name")):
                for run_id, key, pos, info in con.execute(
                    f"SELECT run_id, {name}, position, info_json FROM {table}"
                ):
                    values.setdefault((table, run_id, key), set()).add(info)
                    positions[(table, run_id, key)] = min(pos, positions.get((table, run_id, key), pos))
            for key, value in con.execute("SELECT key, value FROM meta WHERE key != 'schema_version'"):
                run_id, _, note = key.partition(":")
                if run_id in run_ids and note != "merge:differing":
                    values.setdefault(("meta", run_id, note), set()).add(value)
        finally:
            con.close()
    differing: dict[str, list[dict]] = {}
    for (table, run_id, key), vals in sorted(values.items()):
        keep = min(vals)
        if table == "meta":
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{run_id}:{key}", keep))
        else:
            name = "variant" if table == "variants" else "name"
            db.execute(
                f"INSERT INTO {table} VALUES (?, ?, ?, ?) ON CONFLICT(run_id, {name}) DO UPDATE SET "
                "position = excluded.position, info_json = excluded.info_json",
                (run_id, key, positions[(table, run_id, key)], keep),
            )
        if len(vals) > 1:
            differing.setdefault(run_id, []).append(
                {"table": table, "key": key, "values": [json.loads(v) for v in sorted(vals)]}
            )
    old = {
        k.partition(":")[0]: json.loads(v)
        for k, v in db.execute("SELECT key, value FROM meta WHERE key LIKE '%:merge:differing'")
    }
    for run_id in set(differing) | set(old):
        entries = {json.dumps(e, sort_keys=True) for e in differing.get(run_id, []) + old.get(run_id, [])}
        db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)",
            (f"{run_id}:merge:differing", json.dumps([json.loads(e) for e in sorted(entries)])),
        )
    return sum(len(v) for v in differing.values())
