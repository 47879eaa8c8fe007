"""SQLite store: every finished generation is committed the moment it exists, so a crash or
kill loses nothing that finished and a rerun skips what is stored. Metrics and reports read
only this file."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
import zlib
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from .errors import UserError
from .types import Completion, Problem, Verdict

SCHEMA_VERSION = 6

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS variants (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    variant TEXT NOT NULL,
    position INTEGER NOT NULL,
    info_json TEXT NOT NULL,
    PRIMARY KEY (run_id, variant)
);
CREATE TABLE IF NOT EXISTS problems (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    problem_id TEXT NOT NULL,
    position INTEGER NOT NULL,
    task TEXT NOT NULL,
    messages_json TEXT NOT NULL,
    gold TEXT NOT NULL,
    meta_json TEXT NOT NULL,
    PRIMARY KEY (run_id, problem_id)
);
CREATE TABLE IF NOT EXISTS generations (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    variant TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    recipe TEXT NOT NULL,
    sample INTEGER NOT NULL,
    text TEXT NOT NULL,
    reasoning_text TEXT NOT NULL,
    answer_text TEXT NOT NULL,
    prompt_tokens INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    reasoning_tokens INTEGER NOT NULL,
    answer_tokens INTEGER NOT NULL,
    finish_reason TEXT NOT NULL,
    think_unclosed INTEGER NOT NULL,
    latency_s REAL NOT NULL,
    ttft_s REAL NOT NULL,
    cost_s REAL NOT NULL,
    batch_size INTEGER NOT NULL,
    extracted TEXT,
    extract_rule TEXT NOT NULL,
    correct INTEGER NOT NULL,
    mean_logprob REAL,
    created_at REAL NOT NULL,
    self_certainty REAL,
    forced_tokens INTEGER NOT NULL DEFAULT 0,
    interventions INTEGER NOT NULL DEFAULT 0,
    call_id TEXT NOT NULL DEFAULT '',
    verdict_detail TEXT,
    error TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    confidence REAL,
    reasoning_format TEXT,
    token_ids BLOB,
    token_source TEXT,
    PRIMARY KEY (run_id, variant, problem_id, recipe, sample)
);
CREATE TABLE IF NOT EXISTS strategies (
    run_id TEXT NOT NULL REFERENCES runs(run_id),
    name TEXT NOT NULL,
    position INTEGER NOT NULL,
    info_json TEXT NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS scores (
    run_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    recipe TEXT NOT NULL,
    sample INTEGER NOT NULL,
    scorer TEXT NOT NULL,
    value REAL,
    seconds REAL NOT NULL,
    PRIMARY KEY (run_id, variant, problem_id, recipe, sample, scorer)
);
CREATE TABLE IF NOT EXISTS search_steps (
    run_id TEXT NOT NULL,
    variant TEXT NOT NULL,
    problem_id TEXT NOT NULL,
    recipe TEXT NOT NULL,
    node INTEGER NOT NULL,
    parent INTEGER,
    depth INTEGER NOT NULL,
    text TEXT NOT NULL,
    policy_tokens INTEGER NOT NULL,
    fed_tokens INTEGER NOT NULL,
    policy_s REAL NOT NULL,
    prm_tokens INTEGER NOT NULL,
    prm_s REAL NOT NULL,
    step_reward REAL,
    reward REAL,
    finish TEXT,
    survived INTEGER NOT NULL,
    PRIMARY KEY (run_id, variant, problem_id, recipe, node)
);
"""
# schema 6 added search_steps (one row per node of a step-level search tree); CREATE TABLE IF
# NOT EXISTS above is its migration: an older store gains the empty table when opened.
SEARCH_STEP_COLUMNS = (
    "node",
    "parent",
    "depth",
    "text",
    "policy_tokens",
    "fed_tokens",
    "policy_s",
    "prm_tokens",
    "prm_s",
    "step_reward",
    "reward",
    "finish",
    "survived",
)

# Columns added after schema 1, with their definitions, so an older store is upgraded in place.
_ADDED_COLUMNS = {
    "self_certainty": "REAL",
    "forced_tokens": "INTEGER NOT NULL DEFAULT 0",
    "interventions": "INTEGER NOT NULL DEFAULT 0",
    "call_id": "TEXT NOT NULL DEFAULT ''",
    "verdict_detail": "TEXT",
    "error": "TEXT",
    "attempts": "INTEGER NOT NULL DEFAULT 1",
    "confidence": "REAL",
    "reasoning_format": "TEXT",  # NULL in rows stored before formats: they were split by the `none` rules
    "token_ids": "BLOB",  # zlib-compressed little-endian uint32 ids (see encode_token_ids)
    "token_source": "TEXT",
}

GENERATION_COLUMNS = (
    "run_id",
    "variant",
    "problem_id",
    "recipe",
    "sample",
    "text",
    "reasoning_text",
    "answer_text",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "answer_tokens",
    "finish_reason",
    "think_unclosed",
    "latency_s",
    "ttft_s",
    "cost_s",
    "batch_size",
    "extracted",
    "extract_rule",
    "correct",
    "mean_logprob",
    "created_at",
    "self_certainty",
    "forced_tokens",
    "interventions",
    "call_id",
    "verdict_detail",
    "error",
    "attempts",
    "confidence",
    "reasoning_format",
    "token_ids",
    "token_source",
)


# What a generation *is*; the other columns say when, where and how fast it was drawn (merge
# compares these, and two executors must agree on them).
CONTENT_COLUMNS = (
    "text",
    "reasoning_text",
    "answer_text",
    "prompt_tokens",
    "completion_tokens",
    "reasoning_tokens",
    "answer_tokens",
    "finish_reason",
    "think_unclosed",
    "extracted",
    "extract_rule",
    "correct",
    "forced_tokens",
    "interventions",
    "reasoning_format",
    "token_ids",
)


def encode_token_ids(ids: list[int] | None) -> bytes | None:
    """Generated token ids, compactly: uint32 little-endian, zlib-compressed (~1-2 bytes/token)."""
    if ids is None:
        return None
    a = array("I", ids)
    if sys.byteorder == "big":  # pragma: no cover - stored little-endian everywhere
        a.byteswap()
    return zlib.compress(a.tobytes(), 6)


def decode_token_ids(blob: bytes | None) -> list[int] | None:
    """Inverse of `encode_token_ids`; None for rows stored without ids."""
    if blob is None:
        return None
    a = array("I")
    a.frombytes(zlib.decompress(blob))
    if sys.byteorder == "big":  # pragma: no cover
        a.byteswap()
    return a.tolist()


def _migrate(db: sqlite3.Connection) -> None:
    """Bring an older store up to this schema in place: schema < 5 called the recipe key column
    `strategy` (it never held a strategy name); later columns are added with their defaults."""
    for table in ("generations", "scores"):
        cols = {r[1] for r in db.execute(f"PRAGMA table_info({table})")}
        if "strategy" in cols and "recipe" not in cols:
            db.execute(f"ALTER TABLE {table} RENAME COLUMN strategy TO recipe")
    have = {r[1] for r in db.execute("PRAGMA table_info(generations)")}
    for col, decl in _ADDED_COLUMNS.items():
        if col not in have:
            db.execute(f"ALTER TABLE generations ADD COLUMN {col} {decl}")


class Store:
    """One SQLite file holding any number of runs; rows of different runs never mix."""

    def __init__(self, path: str | Path, *, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise UserError(f"store {str(self.path)!r} does not exist")
        try:
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.db = sqlite3.connect(self.path, timeout=30)
            self.db.execute("PRAGMA journal_mode=WAL")  # readers never block the writer
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.executescript(_SCHEMA)
            _migrate(self.db)
            self.db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
            self.db.commit()
        except (OSError, sqlite3.Error) as e:
            raise UserError(
                f"cannot open store {str(self.path)!r}: {e}; choose a writable --store path"
            ) from None
        self.db.row_factory = sqlite3.Row

    def close(self) -> None:
        self.db.close()

    # --- writing -------------------------------------------------------------------------
    def ensure_run(self, run_id: str, name: str, spec: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?)",
            (run_id, name, json.dumps(spec, sort_keys=True), time.time()),
        )
        self.db.commit()

    def put_variant(self, run_id: str, variant: str, position: int, info: dict[str, Any]) -> None:
        """Variant facts (bits, seconds to quantize, ...); the latest write wins."""
        self.db.execute(
            "INSERT INTO variants VALUES (?, ?, ?, ?) ON CONFLICT(run_id, variant) "
            "DO UPDATE SET info_json = excluded.info_json",
            (run_id, variant, position, json.dumps(info, sort_keys=True)),
        )
        self.db.commit()

    def put_problems(
        self, run_id: str, problems: Iterable[Problem], start: int = 0, positions: Iterable[int] | None = None
    ) -> None:
        """`positions`: each problem's place in the full list (a shard holds some of them, and
        keeps their places so merged shards order like one run); default start, start+1, ..."""
        problems = list(problems)
        places = list(positions) if positions is not None else [start + i for i in range(len(problems))]
        self.db.executemany(
            "INSERT OR IGNORE INTO problems VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (run_id, p.id, k, p.task, json.dumps(p.messages), p.gold, json.dumps(p.meta))
                for k, p in zip(places, problems, strict=True)
            ],
        )
        self.db.commit()

    def put_generation(
        self,
        run_id: str,
        variant: str,
        problem_id: str,
        recipe: str,
        sample: int,
        c: Completion,
        verdict: Verdict,
        batch_size: int,
        call_id: str = "",
        confidence: float | None = None,
    ) -> bool:
        """Commit one finished generation at once: this is the unit a crash cannot lose.
        Returns False when the row was already stored (a resumed group re-drawn whole). A row
        stored as failed (finish_reason "error") is replaced by the retry's result."""
        mean_lp = sum(c.logprobs) / len(c.logprobs) if c.logprobs else None
        row = (
            run_id,
            variant,
            problem_id,
            recipe,
            sample,
            c.text,
            c.reasoning_text,
            c.answer_text,
            c.prompt_tokens,
            c.completion_tokens,
            c.reasoning_tokens,
            c.answer_tokens,
            c.finish_reason,
            int(c.think_unclosed),
            c.latency_s,
            c.ttft_s,
            c.cost_s,
            batch_size,
            verdict.extracted,
            verdict.rule,
            int(verdict.correct),
            mean_lp,
            time.time(),
            c.self_certainty,
            c.forced_tokens,
            c.interventions,
            call_id,
            verdict.detail,
            c.error,
            c.attempts,
            confidence,
            c.reasoning_format,
            encode_token_ids(c.token_ids),
            c.token_source,
        )
        self.db.execute(
            "DELETE FROM generations WHERE run_id=? AND variant=? AND problem_id=? AND recipe=? "
            "AND sample=? AND finish_reason='error'",
            (run_id, variant, problem_id, recipe, sample),
        )
        cur = self.db.execute(
            f"INSERT OR IGNORE INTO generations ({','.join(GENERATION_COLUMNS)}) "
            f"VALUES ({','.join('?' * len(GENERATION_COLUMNS))})",
            row,
        )
        self.db.commit()
        return cur.rowcount == 1

    def put_note(self, run_id: str, key: str, value: Any) -> None:
        """Run-level facts a report shows (e.g. rows skipped as malformed)."""
        self.db.execute(
            "INSERT OR REPLACE INTO meta VALUES (?, ?)", (f"{run_id}:{key}", json.dumps(value, default=str))
        )
        self.db.commit()

    def note(self, run_id: str, key: str) -> Any:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (f"{run_id}:{key}",)).fetchone()
        return json.loads(row[0]) if row else None

    def put_strategy(self, run_id: str, name: str, position: int, info: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT INTO strategies VALUES (?, ?, ?, ?) ON CONFLICT(run_id, name) "
            "DO UPDATE SET info_json = excluded.info_json",
            (run_id, name, position, json.dumps(info, sort_keys=True)),
        )
        self.db.commit()

    def put_scores(
        self, run_id: str, rows: Iterable[tuple[str, str, str, int, str, float | None, float]]
    ) -> None:
        """(variant, problem_id, recipe key, sample, scorer, value, seconds) per scored sample."""
        self.db.executemany(
            "INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?, ?, ?, ?, ?)", [(run_id, *r) for r in rows]
        )
        self.db.commit()

    def put_search_steps(
        self, run_id: str, variant: str, problem_id: str, recipe: str, rows: Iterable[tuple]
    ) -> None:
        """A search's tree, one row per node (SEARCH_STEP_COLUMNS order). Committed before the
        search's generation row, so a stored answer always has its tree."""
        self.db.executemany(
            f"INSERT OR REPLACE INTO search_steps VALUES ({', '.join('?' * (4 + len(SEARCH_STEP_COLUMNS)))})",
            [(run_id, variant, problem_id, recipe, *r) for r in rows],
        )
        self.db.commit()

    def search_steps(self, run_id: str):
        """Every stored search-tree node of a run as a DataFrame (empty without searches)."""
        import pandas as pd

        return pd.read_sql_query(
            "SELECT * FROM search_steps WHERE run_id = ? ORDER BY variant, problem_id, recipe, node",
            self.db,
            params=(run_id,),
        )

    # --- reading -------------------------------------------------------------------------
    def runs(self) -> list[dict[str, Any]]:
        rows = self.db.execute("SELECT * FROM runs ORDER BY created_at").fetchall()
        return [dict(r) | {"spec": json.loads(r["spec_json"])} for r in rows]

    def problems(self, run_id: str):
        """The run's problems (problem_id, position, task, messages, gold, meta) as a DataFrame."""
        import pandas as pd

        rows = self.db.execute(
            "SELECT problem_id, position, task, messages_json, gold, meta_json FROM problems "
            "WHERE run_id=? ORDER BY position",
            (run_id,),
        ).fetchall()
        return pd.DataFrame(
            [
                {
                    "problem_id": r["problem_id"],
                    "position": r["position"],
                    "task": r["task"],
                    "messages": json.loads(r["messages_json"]),
                    "gold": r["gold"],
                    "meta": json.loads(r["meta_json"]),
                }
                for r in rows
            ],
            columns=["problem_id", "position", "task", "messages", "gold", "meta"],
        )

    def latest_run_id(self) -> str:
        row = self.db.execute("SELECT run_id FROM runs ORDER BY created_at DESC LIMIT 1").fetchone()
        if row is None:
            raise UserError(f"store {str(self.path)!r} holds no runs")
        return row["run_id"]

    def done_keys(self, run_id: str, variant: str, recipe: str) -> set[tuple[str, int]]:
        """Samples a rerun must not draw again; failed ones (finish_reason "error") are retried."""
        rows = self.db.execute(
            "SELECT problem_id, sample FROM generations WHERE run_id=? AND variant=? AND recipe=? "
            "AND finish_reason != 'error'",
            (run_id, variant, recipe),
        )
        return {(r[0], r[1]) for r in rows}

    def strategies(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT name, info_json FROM strategies WHERE run_id=? ORDER BY position", (run_id,)
        ).fetchall()
        return [{"name": r["name"], **json.loads(r["info_json"])} for r in rows]

    def scores(self, run_id: str):
        import pandas as pd

        return pd.read_sql_query(
            "SELECT run_id, variant, problem_id, recipe, sample, scorer, value, seconds "
            "FROM scores WHERE run_id = ?",
            self.db,
            params=(run_id,),
        )

    def variants(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.db.execute(
            "SELECT variant, info_json FROM variants WHERE run_id=? ORDER BY position", (run_id,)
        ).fetchall()
        return [{"variant": r["variant"], **json.loads(r["info_json"])} for r in rows]

    def generations(self, run_id: str | None = None, *, token_ids: bool = False):
        """All generations (of one run, or all runs) as a pandas DataFrame. The compressed
        token ids are left out unless asked for (`token_ids=True`: a list per row, or None)."""
        import pandas as pd

        cols = ", ".join(f"g.{c}" for c in GENERATION_COLUMNS if token_ids or c != "token_ids")
        q = (
            f"SELECT {cols}, p.position AS problem_position, p.gold, p.task FROM generations g "
            "JOIN problems p ON p.run_id = g.run_id AND p.problem_id = g.problem_id"
        )
        args: tuple = ()
        if run_id is not None:
            q += " WHERE g.run_id = ?"
            args = (run_id,)
        q += " ORDER BY g.run_id, g.variant, p.position, g.sample"
        df = pd.read_sql_query(q, self.db, params=args)
        if token_ids:
            df["token_ids"] = [decode_token_ids(b) for b in df["token_ids"]]
        return df

    def count(self, run_id: str, variant: str | None = None) -> int:
        """Stored generations of a run (of one variant, when given)."""
        if variant is None:
            return self.db.execute("SELECT COUNT(*) FROM generations WHERE run_id=?", (run_id,)).fetchone()[0]
        return self.db.execute(
            "SELECT COUNT(*) FROM generations WHERE run_id=? AND variant=?", (run_id, variant)
        ).fetchone()[0]
