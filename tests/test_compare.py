"""`thinkcost compare`: paired bootstrap deltas between two stores, checked against a brute-force
computation of the same resamples on synthetic stores whose values are known."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from cli_run import cli as _cli
from cli_run import one_line_error as _one_line_error
from synthetic_store import Sample, build_store
from thinkcost.errors import UserError
from thinkcost.report.compare import (
    METRICS,
    compare_stores,
    comparison_cells,
    comparison_html,
    paired_bootstrap_delta,
    write_comparison_html,
)
from thinkcost.report.markdown import parse_markdown_table

SHARED = [f"p{i:02d}" for i in range(20)]
SAMPLE_KEY = "sample:t=0.7,p=0.95"  # recipe key of sample@2


def _samples(right: dict[str, int], toks: dict[str, tuple[int, int]], cost: float, ids=SHARED):
    """Greedy rows for base and q plus two sample@2 draws each: variant v is right on its first
    right[v] problems; reasoning tokens = a + b * i."""
    out = []
    for v in ("base", "q"):
        a, b = toks[v]
        for i, pid in enumerate(ids):
            ok = i < right[v]
            out.append(Sample(v, pid, ok, a + b * i, cost + 0.1 * i))
            for k in range(2):
                out.append(
                    Sample(v, pid, ok or k == 0, a + b * i + 7 * k, cost, strategy=SAMPLE_KEY, sample=k)
                )
    return out


def _store(path, right, toks, cost=1.0, extra=(), ids=SHARED):
    extra_samples = [Sample(v, pid, True, 10_000, 50.0) for v in ("base", "q") for pid in extra]
    return build_store(
        path,
        _samples(right, toks, cost, ids) + extra_samples,
        [*ids, *extra],
        strategies=("greedy", "sample@2"),
    )


def _brute(num_a, den_a, num_b, den_b, n_boot=2000, seed=0):
    """The documented resampling, one resample at a time in plain Python."""
    n = len(num_a)
    idx = np.random.default_rng(seed).integers(0, n, size=(n_boot, n))
    diffs = []
    for row in idx:
        a = sum(num_a[j] for j in row) / sum(den_a[j] for j in row)
        b = sum(num_b[j] for j in row) / sum(den_b[j] for j in row)
        diffs.append(b - a)
    lo, hi = np.quantile(diffs, [0.025, 0.975])
    return float(lo), float(hi)


def _by(cmp):
    return {(d.variant, d.strategy, d.metric): d for d in cmp.deltas}


@pytest.fixture()
def pair(tmp_path):
    a = _store(
        tmp_path / "a.sqlite",
        {"base": 5, "q": 2},
        {"base": (100, 10), "q": (150, 5)},
        extra=["a0", "a1", "a2"],
    )
    b = _store(
        tmp_path / "b.sqlite",
        {"base": 20, "q": 16},
        {"base": (100, 10), "q": (300, 7)},
        cost=0.5,
        extra=["b0", "b1", "b2", "b3", "b4"],
    )
    return a, b


def test_identical_stores_have_zero_deltas_and_nothing_significant(tmp_path):
    spec = ({"base": 8, "q": 5}, {"base": (100, 10), "q": (150, 5)})
    a = _store(tmp_path / "a.sqlite", *spec)
    b = _store(tmp_path / "b.sqlite", *spec)
    cmp = compare_stores(a, b, n_boot=300)
    assert cmp.shared_problems == 20 and cmp.only_a_problems == cmp.only_b_problems == 0
    assert cmp.rows_only_a == cmp.rows_only_b == []
    metrics = {(d.variant, d.strategy): set() for d in cmp.deltas}
    for d in cmp.deltas:
        metrics[(d.variant, d.strategy)].add(d.metric)
        assert d.n == 20 and d.a == d.b and d.delta == 0 and d.low == d.high == 0 and not d.significant
    # CTIR is against each store's own reference, so the reference row has none
    assert metrics[("q", "greedy")] == set(METRICS)
    assert metrics[("base", "greedy")] == set(METRICS) - {"ctir_all"}
    assert set(metrics) == {(v, s) for v in ("base", "q") for s in ("greedy", "sample@2")}


def test_many_more_right_in_b_is_the_exact_difference_and_flagged(pair):
    cmp = compare_stores(*pair, n_boot=2000, seed=0)
    d = _by(cmp)
    acc = d[("q", "greedy", "accuracy")]
    assert (acc.a, acc.b) == (2 / 20, 16 / 20)
    assert acc.delta == pytest.approx(14 / 20, abs=1e-12)
    assert acc.significant and acc.low > 0
    base = d[("base", "greedy", "accuracy")]
    assert base.delta == pytest.approx(15 / 20) and base.significant
    # same tokens on both sides for base: exactly zero, not significant
    tok = d[("base", "greedy", "reasoning_tokens")]
    assert tok.delta == 0 and not tok.significant


@pytest.mark.parametrize(
    ("variant", "strategy", "metric"),
    [
        ("q", "greedy", "accuracy"),
        ("q", "greedy", "reasoning_tokens"),
        ("q", "greedy", "tokens_per_problem"),
        ("q", "greedy", "s_per_problem"),
        ("q", "greedy", "ctir_all"),
        ("q", "sample@2", "accuracy"),
        ("q", "sample@2", "reasoning_tokens"),
        ("q", "sample@2", "ctir_all"),
    ],
)
def test_ci_matches_brute_force_over_shared_problems(pair, variant, strategy, metric):
    cmp = compare_stores(*pair, n_boot=400, seed=3)
    got = _by(cmp)[(variant, strategy, metric)]
    # the values the synthetic stores hold, per shared problem in id order
    right = {"a": {"base": 5, "q": 2}, "b": {"base": 20, "q": 16}}
    toks = {"a": {"base": (100, 10), "q": (150, 5)}, "b": {"base": (100, 10), "q": (300, 7)}}
    cost = {"a": 1.0, "b": 0.5}
    n = len(SHARED)

    def arrays(side, v):
        a, b = toks[side][v]
        if strategy == "greedy":
            score = [float(i < right[side][v]) for i in range(n)]
            rt = [a + b * i for i in range(n)]
            att = [1.0] * n
            tok = [a + b * i + 5 for i in range(n)]
            cs = [cost[side] + 0.1 * i for i in range(n)]
        else:
            score = [1.0 if i < right[side][v] else 0.5 for i in range(n)]
            rt = [2 * (a + b * i) + 7 for i in range(n)]
            att = [2.0] * n
            tok = [r + 10 for r in rt]
            cs = [2 * cost[side]] * n
        return {"score": score, "rt": rt, "att": att, "tok": tok, "cs": cs}

    xa, xb, ra, rb = arrays("a", variant), arrays("b", variant), arrays("a", "base"), arrays("b", "base")
    ones = [1.0] * n
    parts = {
        "accuracy": (xa["score"], ones, xb["score"], ones),
        "reasoning_tokens": (xa["rt"], xa["att"], xb["rt"], xb["att"]),
        "tokens_per_problem": (xa["tok"], ones, xb["tok"], ones),
        "s_per_problem": (xa["cs"], ones, xb["cs"], ones),
        "ctir_all": (xa["rt"], ra["rt"], xb["rt"], rb["rt"]),
    }[metric]
    want_a = sum(parts[0]) / sum(parts[1])
    want_b = sum(parts[2]) / sum(parts[3])
    assert got.n == n  # the unshared problems (huge values) are not used
    assert got.a == pytest.approx(want_a) and got.b == pytest.approx(want_b)
    assert got.delta == pytest.approx(want_b - want_a)
    lo, hi = _brute(*parts, n_boot=400, seed=3)
    assert got.low == pytest.approx(lo, rel=1e-9, abs=1e-12) and got.high == pytest.approx(
        hi, rel=1e-9, abs=1e-12
    )
    assert got.significant == (lo > 0 or hi < 0)


def test_unshared_problems_and_rows_are_counted_not_used(tmp_path, pair):
    cmp = compare_stores(*pair, n_boot=100)
    assert (cmp.shared_problems, cmp.only_a_problems, cmp.only_b_problems) == (20, 3, 5)
    assert all(d.n == 20 for d in cmp.deltas)
    notes = " ".join(cmp.notes)
    assert "only in A: 3" in notes and "only in B: 5" in notes
    # a variant only B holds is listed, not compared
    extra = build_store(
        tmp_path / "c.sqlite",
        [Sample(v, p, True, 100, 1.0) for v in ("base", "new") for p in SHARED],
        SHARED,
    )
    cmp = compare_stores(pair[0], extra, n_boot=100)
    assert cmp.rows_only_b == [("new", "greedy")]
    assert ("q", "greedy") in cmp.rows_only_a and ("base", "sample@2") in cmp.rows_only_a
    assert {(d.variant, d.strategy) for d in cmp.deltas} == {("base", "greedy")}
    assert "Rows only in B: new / greedy." in cmp.notes


def test_paired_bootstrap_edge_cases():
    nan = paired_bootstrap_delta([], [], [], [])
    assert all(math.isnan(x) for x in nan)
    a, b, _, lo, hi = paired_bootstrap_delta([1, 0], [0, 0], [1, 1], [1, 1], n_boot=50)
    assert math.isnan(a) and b == 1.0 and math.isnan(lo) and math.isnan(hi)
    with pytest.raises(ValueError, match="one value per problem"):
        paired_bootstrap_delta([1, 2], [1, 1], [1], [1])


def test_errors_are_user_errors(tmp_path, pair):
    with pytest.raises(UserError, match="does not exist"):
        compare_stores(tmp_path / "none.sqlite", pair[1])
    with pytest.raises(UserError, match="run 'nope' is not in"):
        compare_stores(pair[0], pair[1], run_b="nope")
    other = build_store(tmp_path / "o.sqlite", [Sample("base", "x1", True, 10, 1.0)], ["x1"])
    with pytest.raises(UserError, match="no shared problems"):
        compare_stores(pair[0], other)
    renamed = build_store(tmp_path / "r.sqlite", [Sample("other", p, True, 10, 1.0) for p in SHARED], SHARED)
    with pytest.raises(UserError, match="no \\(variant, strategy\\) rows in common"):
        compare_stores(pair[0], renamed)


def test_two_runs_of_one_store(tmp_path):
    path = tmp_path / "s.sqlite"
    build_store(path, [Sample("base", p, False, 100, 1.0) for p in SHARED], SHARED, run_id="old")
    build_store(path, [Sample("base", p, True, 100, 1.0) for p in SHARED], SHARED, run_id="new")
    cmp = compare_stores(path, path, run_a="old", run_b="new", n_boot=100)
    assert _by(cmp)[("base", "greedy", "accuracy")].delta == 1.0


def test_json_and_html_are_self_contained(tmp_path, pair):
    cmp = compare_stores(*pair, n_boot=100)
    blob = json.loads(json.dumps(cmp.to_json(), allow_nan=False))
    assert blob["shared_problems"] == 20 and blob["a"]["reference"] == "base"
    assert {"variant", "strategy", "metric", "a", "b", "delta", "low", "high", "significant"} <= set(
        blob["deltas"][0]
    )
    page = comparison_html(cmp)
    assert "<script src" not in page and "Plotly.newPlot" in page and "plotly.js" in page.lower()
    assert page.count("<tr") == len(cmp.deltas) + 1
    out = write_comparison_html(cmp, tmp_path / "sub" / "diff.html")
    assert out.read_text(encoding="utf-8") == page


def test_cli_compare_formats_and_html(tmp_path, pair):
    a, b = (str(x) for x in pair)
    want = compare_stores(*pair, n_boot=200, seed=1)
    p = _cli(
        "compare", a, b, "--format", "json", "--n-boot", "200", "--seed", "1", "-o", str(tmp_path / "d.html")
    )
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout)["deltas"] == want.to_json()["deltas"]
    assert "diff:" in p.stderr and (tmp_path / "d.html").is_file()
    p = _cli("compare", a, b, "--format", "md", "--n-boot", "200", "--seed", "1")
    assert p.returncode == 0, p.stderr
    assert parse_markdown_table(p.stdout) == comparison_cells(want)
    p = _cli("compare", a, b, "--n-boot", "50")
    assert p.returncode == 0, p.stderr
    assert "tok/problem" in p.stdout and "only in B: 5" in p.stdout


def test_cli_compare_errors(tmp_path, pair):
    a, b = (str(x) for x in pair)
    _one_line_error(_cli("compare", str(tmp_path / "none.sqlite"), b), "does not exist")
    _one_line_error(_cli("compare", a, b, "--run-a", "nope"), "run 'nope' is not in")
    _one_line_error(_cli("compare", a, b, "--format", "xml"), "--format")
    _one_line_error(_cli("compare", a, b, "-o", str(tmp_path / "d.png")), ".html")
