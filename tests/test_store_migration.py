"""A store written by thinkcost 0.1 (tests/data/store_v01, made by its make.py with the 0.1
code) opens with today's code, is migrated in place (the recipe key column was called
`strategy`), and reports the same figures 0.1 reported for it."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from thinkcost.report.build import build_report
from thinkcost.store import SCHEMA_VERSION, Store

DATA = Path(__file__).parent / "data" / "store_v01"


@pytest.fixture
def old_store(tmp_path) -> Path:
    path = tmp_path / "v01.sqlite"
    shutil.copyfile(DATA / "v01.sqlite", path)
    return path


def _columns(path: Path, table: str) -> list[str]:
    db = sqlite3.connect(path)
    try:
        return [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
    finally:
        db.close()


def test_the_fixture_is_a_0_1_store():
    cols = _columns(DATA / "v01.sqlite", "generations")
    assert "strategy" in cols and "recipe" not in cols and "reasoning_format" not in cols


def test_opening_migrates_in_place_and_twice_changes_nothing(old_store):
    before = sqlite3.connect(old_store).execute("SELECT COUNT(*) FROM generations").fetchone()[0]
    Store(old_store).close()
    Store(old_store).close()
    for table in ("generations", "scores"):
        cols = _columns(old_store, table)
        assert "recipe" in cols and "strategy" not in cols
    db = sqlite3.connect(old_store)
    assert db.execute("SELECT COUNT(*) FROM generations").fetchone()[0] == before
    assert db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == str(
        SCHEMA_VERSION
    )
    keys = {r[0] for r in db.execute("SELECT DISTINCT recipe FROM generations")}
    assert keys == {"greedy", "greedy+bf-cap:6", "sample:t=0.7,p=0.95", "short-1@4:t=0.7,p=0.95"}


def test_report_equals_what_0_1_reported(old_store, tmp_path):
    st = Store(old_store)
    _, outputs = build_report(st, st.latest_run_id(), tmp_path / "out")
    st.close()
    new = json.loads(outputs["json"].read_text())["variants"]
    old = json.loads((DATA / "v01_report.json").read_text())
    assert len(new) == len(old) == 8
    for o, n in zip(old, new, strict=True):
        for key, value in o.items():  # every figure 0.1 reported, unchanged; new fields may be added
            assert n[key] == value, (o["name"], o["strategy"], key)


def test_markdown_table_equals_what_0_1_printed(old_store, tmp_path):
    from thinkcost.report.markdown import rows_to_markdown

    st = Store(old_store)
    rows, outputs = build_report(st, st.latest_run_id(), tmp_path / "out")
    meta = json.loads(outputs["json"].read_text())["meta"]
    st.close()
    table = [line for line in rows_to_markdown(rows, meta).splitlines() if line.startswith("|")]
    old = [line for line in (DATA / "v01_report.md").read_text().splitlines() if line.startswith("|")]
    assert table == old
