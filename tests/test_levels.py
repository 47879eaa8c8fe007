"""Per-level accuracy, tokens, CTIR and collapse point, against hand computations on a synthetic store."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

import synthetic_store
from synthetic_store import Sample, build_store
from thinkcost.metrics.levels import collapse_points, level_of, level_table, levels_summary
from thinkcost.metrics.outcomes import outcomes
from thinkcost.report.build import build_report
from thinkcost.store import Store
from thinkcost.strategies import parse_strategy

LEVEL = {"p0": 1, "p1": 1, "p2": 2, "p3": 2, "p4": 3, "p5": 3}
BASE = ([True, True, True, False, False, False], [10, 20, 30, 40, 50, 60])
Q = ([True, True, False, False, False, False], [20, 20, 90, 80, 10, 10])


def _samples():
    out = []
    for v, (correct, toks) in (("base", BASE), ("q", Q)):
        out += [Sample(v, f"p{i}", c, t, 1.0) for i, (c, t) in enumerate(zip(correct, toks, strict=True))]
    return out


@pytest.fixture
def store_path(tmp_path, monkeypatch):
    real = synthetic_store.problem

    def leveled(pid):
        p = real(pid)
        return type(p)(p.task, p.id, p.messages, p.gold, {"level": LEVEL[pid]})

    monkeypatch.setattr(synthetic_store, "problem", leveled)
    return build_store(tmp_path / "s.sqlite", _samples(), list(LEVEL))


def _table(store_path):
    st = Store(store_path, create=False)
    outs = outcomes(st.generations("run1"), [parse_strategy("greedy")])
    return level_table(outs, LEVEL, "base", n_boot=200), st


def test_level_table_matches_hand_computation(store_path):
    table, _ = _table(store_path)
    got = {(r["variant"], r["level"]): r for r in table}
    assert len(table) == 6
    expect = {  # (accuracy, mean reasoning tokens)
        ("base", 1): (1.0, 15.0),
        ("q", 1): (1.0, 20.0),
        ("base", 2): (0.5, 35.0),
        ("q", 2): (0.0, 85.0),
        ("base", 3): (0.0, 55.0),
        ("q", 3): (0.0, 10.0),
    }
    for key, (acc, tok) in expect.items():
        assert got[key]["accuracy"] == pytest.approx(acc)
        assert got[key]["mean_reasoning_tokens"] == pytest.approx(tok)
        assert got[key]["n"] == 2
    # level 1: both correct on p0, p1 -> (20 + 20) / (10 + 20)
    assert got[("q", 1)]["ctir"] == pytest.approx(4 / 3) and got[("q", 1)]["ctir_n"] == 2
    assert got[("base", 1)]["ctir"] == pytest.approx(1.0)
    assert math.isnan(got[("q", 2)]["ctir"]) and got[("q", 2)]["ctir_n"] == 0  # no jointly-correct problem


def test_collapse_point(store_path):
    table, _ = _table(store_path)
    c = {r["variant"]: r for r in collapse_points(table)}
    assert (c["base"]["collapse_level"], c["base"]["last_ok"]) == (3, 2)  # 0.5 is not below 0.5
    assert (c["q"]["collapse_level"], c["q"]["last_ok"]) == (2, 1)
    c = {r["variant"]: r for r in collapse_points(table, threshold=0.01)}
    assert c["base"]["collapse_level"] == 3 and c["q"]["collapse_level"] == 2
    never = collapse_points([{"strategy": "g", "variant": "v", "level": 1, "accuracy": 0.9}])
    assert never[0]["collapse_level"] is None and never[0]["last_ok"] == 1


def test_summary_json_and_html_carry_the_levels(store_path, tmp_path):
    st = Store(store_path, create=False)
    _, paths = build_report(st, "run1", tmp_path / "out", n_boot=200)

    def no_nan(x):
        raise AssertionError(f"summary.json holds {x}")

    summary = json.loads(paths["json"].read_text(), parse_constant=no_nan)
    block = summary["meta"]["levels"]
    assert block["threshold"] == 0.5
    rows = {(r["variant"], r["level"]): r for r in block["table"]}
    assert rows[("q", 2)]["mean_reasoning_tokens"] == 85.0 and rows[("q", 2)]["ctir"] is None
    assert {c["variant"]: c["collapse_level"] for c in block["collapse"]} == {"base": 3, "q": 2}
    page = paths["html"].read_text()
    assert 'id="sec-levels"' in page and 'id="levels-table"' in page and "collapses at level 2" in page
    from rich.console import Console

    from thinkcost.report.levels import levels_rich

    console = Console(record=True, width=120)
    for part in levels_rich(summary["meta"]):
        console.print(part)
    text = console.export_text()
    assert "q · greedy: collapse at level 2" in text and "1.33 (n=2)" in text


def test_no_levels_no_block(tmp_path):
    path = build_store(tmp_path / "s.sqlite", [Sample("base", "x", True, 5, 1.0)], ["x"])  # every level is 1
    _, paths = build_report(Store(path, create=False), "run1", tmp_path / "out", n_boot=50)
    summary = json.loads(paths["json"].read_text())
    assert "levels" not in summary["meta"]
    assert 'id="sec-levels"' not in paths["html"].read_text()


@pytest.mark.parametrize(
    ("meta", "want"),
    [
        ({"level": 4, "difficulty": 2}, 4),
        ({"difficulty": 3}, 3),  # arithmetic ops, MATH-500 level
        ({"n_steps": 7}, 7),  # procbench
        ({"level": True, "difficulty": 2}, 2),  # a bool is not a level
        ({"level": "hard"}, None),
        ({"level": float("nan")}, None),
        ({"level": 2.0}, 2),
        ({}, None),
        (None, None),
    ],
)
def test_level_of(meta, want):
    assert level_of(meta) == want


def test_levels_summary_skips_a_single_level():
    outs = pd.DataFrame(
        [{"variant": "base", "strategy": "greedy", "problem_id": "a", "score": 1.0, "correct": True,
          "reasoning_tokens": 3, "attempts": 1}]
    )  # fmt: skip
    probs = pd.DataFrame({"problem_id": ["a"], "meta": [{"level": 1}]})
    assert levels_summary(outs, probs, "base") is None
