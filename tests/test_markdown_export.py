"""`report --format md` (cells round-trip to exactly what the terminal table shows) and
`thinkcost export` (every stored sample, documented columns, values equal to the store's)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from cli_run import cli as _cli
from cli_run import one_line_error as _one_line_error
from synthetic_store import Sample, build_store
from thinkcost.errors import UserError
from thinkcost.metrics.repetition import repetition_score
from thinkcost.report.build import build_report
from thinkcost.report.export import EXPORT_COLUMNS, export_samples
from thinkcost.report.markdown import markdown_table, parse_markdown_table, rows_to_markdown
from thinkcost.report.table import rows_for_display
from thinkcost.store import Store

IDS = [f"p{i}" for i in range(6)]
SAMPLE_KEY = "sample:t=0.7,p=0.95"


def _greedy_store(path):
    rows = [
        Sample(v, p, i % 3 != 0, 50 + 10 * i, 0.5 + i)
        for v in ("base", "we|ird\\v")
        for i, p in enumerate(IDS)
    ]
    return build_store(
        path, rows, IDS, variant_info={"we|ird\\v": {"bits_per_weight": 4.5, "file_bytes": 3e8}}
    )


def _multi_store(path):
    rows = []
    for v, shift in (("base", 0), ("q", 40)):
        for i, p in enumerate(IDS):
            rows.append(Sample(v, p, i < 4, 100 + shift + i, 1.0))
            for k in range(2):
                text = " ".join(["so 3 + 4 = 7."] * (k + 2)) if v == "q" else f"think about {p} now"
                rows.append(
                    Sample(
                        v,
                        p,
                        k == 0 or i < 2,
                        80 + shift * k,
                        0.7,
                        strategy=SAMPLE_KEY,
                        sample=k,
                        reasoning_text=text,
                    )
                )
    return build_store(path, rows, IDS, strategies=("greedy", "sample@2"), name="multi")


@pytest.mark.parametrize("make", [_greedy_store, _multi_store])
def test_markdown_cells_round_trip_to_rows_for_display(tmp_path, make):
    st = Store(make(tmp_path / "s.sqlite"), create=False)
    rows, outputs = build_report(st, "run1", tmp_path / "out")
    meta = json.loads(outputs["json"].read_text())["meta"]
    md = rows_to_markdown(rows, meta)
    want = rows_for_display(rows)
    assert parse_markdown_table(md) == want
    assert list(parse_markdown_table(md)[0]) == list(want[0])  # column order too
    assert f"thinkcost: {meta['run_name']}" in md and "vs `base`" in md
    assert meta["note"] in md  # the engine's note is part of the caption
    if make is _multi_store:
        assert {c["frontier"] for c in want} == {"★", ""}
    else:
        assert "we\\|ird\\\\v (4.50 b/w layers, 300 MB)" in md


def test_markdown_table_escapes_and_parses_back():
    cells = [["a|b", "back\\slash", ""], ["x", "two\nlines", "  "]]
    md = (
        "intro text\n\n"
        + markdown_table(["h|1", "h2", "h3"], cells, left=("h|1",))
        + "\n\ncaption | not a row\n"
    )
    assert md.splitlines()[3].startswith("| :--- | ---: |")
    assert parse_markdown_table(md) == [
        {"h|1": "a|b", "h2": "back\\slash", "h3": ""},
        {"h|1": "x", "h2": "two\nlines", "h3": ""},
    ]
    assert parse_markdown_table("no table here") == []


def _store_frame(path):
    st = Store(path, create=False)
    g = st.generations("run1")
    st.close()
    return g.sort_values(["variant", "recipe", "problem_id", "sample"]).reset_index(drop=True)


def test_export_parquet_round_trip(tmp_path):
    path = _multi_store(tmp_path / "s.sqlite")
    out = export_samples(path, tmp_path / "x" / "samples.parquet")
    df = pd.read_parquet(out)
    assert list(df.columns) == list(EXPORT_COLUMNS)
    store = _store_frame(path)
    assert len(df) == len(store) == 2 * 6 * 3
    # variants in run order, then recipe, problem (run order) and sample
    assert list(df["variant"].drop_duplicates()) == ["base", "q"]
    assert list(df.loc[df["recipe"] == SAMPLE_KEY, "problem_id"].iloc[:4]) == ["p0", "p0", "p1", "p1"]
    got = df.sort_values(["variant", "recipe", "problem_id", "sample"]).reset_index(drop=True)
    for col in EXPORT_COLUMNS:
        if col in store.columns:
            want = store[col].astype(bool) if col in ("correct", "think_unclosed") else store[col]
            pd.testing.assert_series_equal(got[col], want, check_names=False, check_dtype=False)
    assert (got["run_name"] == "multi").all()
    assert (got["question"] == got["problem_id"].map(lambda p: f"What is {p} | plus one?")).all()
    assert got["repetition"].tolist() == [repetition_score(t) for t in got["reasoning_text"]]
    assert got["repetition"].max() > 0.3  # the looping q samples
    assert got["correct"].dtype == bool and got["extracted"].isin(["0", "1"]).all()
    assert got["mean_logprob"].tolist() == [-1.0] * len(got)
    assert got["error"].isna().all() and got["verdict_detail"].eq("math-verify").all()


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_export_csv_and_jsonl(tmp_path, suffix):
    path = _greedy_store(tmp_path / "s.sqlite")
    out = export_samples(path, tmp_path / f"samples{suffix}", run_id="run1")
    if suffix == ".csv":
        df = pd.read_csv(out)
    else:
        df = pd.DataFrame([json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()])
    assert list(df.columns) == list(EXPORT_COLUMNS) and len(df) == 12
    assert set(df["variant"]) == {"base", "we|ird\\v"}
    store = _store_frame(path)
    assert sorted(df["reasoning_tokens"]) == sorted(store["reasoning_tokens"])
    if suffix == ".jsonl":  # exact floats and nulls, one object per line
        recs = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
        assert sorted(r["created_at"] for r in recs) == sorted(store["created_at"])
        assert all(r["self_certainty"] is None and r["correct"] in (True, False) for r in recs)


def test_export_errors(tmp_path):
    path = _greedy_store(tmp_path / "s.sqlite")
    with pytest.raises(UserError, match=r"expected a \.parquet, \.csv, \.jsonl file"):
        export_samples(path, tmp_path / "samples.xlsx")
    with pytest.raises(UserError, match="run 'nope' is not in"):
        export_samples(path, tmp_path / "samples.csv", run_id="nope")
    with pytest.raises(UserError, match="does not exist"):
        export_samples(tmp_path / "none.sqlite", tmp_path / "samples.csv")


def test_cli_report_md_and_html_output(tmp_path):
    path = _multi_store(tmp_path / "s.sqlite")
    html = tmp_path / "pages" / "mine.html"
    p = _cli("report", str(path), "--format", "md", "-o", str(html))
    assert p.returncode == 0, p.stderr
    st = Store(path, create=False)
    rows, _ = build_report(st, "run1", tmp_path / "out")
    assert parse_markdown_table(p.stdout) == rows_for_display(rows)
    assert f"report: {html}" in p.stderr
    assert "<html" in html.read_text().lower()
    _one_line_error(_cli("report", str(path), "-o", str(tmp_path / "r.txt")), ".html")
    _one_line_error(_cli("report", str(path), "--run", "nope"), "run 'nope' is not in")


def test_cli_export(tmp_path):
    path = _greedy_store(tmp_path / "s.sqlite")
    out = tmp_path / "samples.parquet"
    p = _cli("export", str(path), "-o", str(out))
    assert p.returncode == 0, p.stderr
    assert "samples:" in p.stdout and len(pd.read_parquet(out)) == 12
    _one_line_error(_cli("export", str(path), "-o", str(tmp_path / "s.xlsx")), ".parquet")
    _one_line_error(_cli("export", str(path), "-o", str(out), "--run", "nope"), "run 'nope' is not in")
    _one_line_error(_cli("export", str(tmp_path / "none.sqlite"), "-o", str(out)), "does not exist")
