"""The HTML report's data: a small store with known values goes through build_report, and the
figures and problem-browser payload embedded in report.html are checked against figures
computed here by hand (not against the code under test)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import pytest

from thinkcost.metrics.repetition import repetition
from thinkcost.report import figures as F
from thinkcost.report.browser import TRACE_CHAR_LIMIT, decode_payload, marked_parts
from thinkcost.report.build import build_report
from thinkcost.report.html import plotly_js, render_report
from thinkcost.report.table import summary_json
from thinkcost.store import Store
from thinkcost.strategies import SamplingOptions, describe, parse_strategy
from thinkcost.types import Completion, Problem, Verdict

RUN = "run-1"
VARIANTS = ("base", "q4", "q2")
SAMPLE_KEY = "sample:t=0.7,p=0.95"
INJECTION = "<script>alert(1)</script><img src=x onerror=alert(1)>"
# greedy: reasoning tokens and verdicts per problem p0..p5
GREEDY_TOKENS = {
    "base": [100, 120, 140, 160, 180, 200],
    "q4": [110, 150, 130, 200, 400, 220],
    "q2": [300, 260, 500, 900, 1000, 1000],
}
GREEDY_OK = {"base": [1, 1, 1, 1, 0, 0], "q4": [1, 1, 0, 1, 0, 1], "q2": [1, 0, 0, 1, 0, 0]}
# maj@3 samples: verdicts of samples 0..2 (wrong samples all answer "bad", so the vote is clear)
SAMPLE_OK = {
    "base": [[1, 1, 0], [1, 1, 1], [0, 1, 1], [1, 0, 0], [0, 0, 0], [1, 1, 1]],
    "q4": [[1, 0, 1], [1, 1, 0], [0, 0, 1], [1, 1, 1], [0, 0, 0], [0, 1, 0]],
    "q2": [[0, 0, 1], [1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 0]],
}
LOOP = "so 3 + 4 = 7. " * 40
LONG = " ".join(f"w{j}" for j in range(2000))  # no repeats, > TRACE_CHAR_LIMIT characters


def sample_tokens(v: str, i: int, s: int) -> int:
    return GREEDY_TOKENS[v][i] + 10 * s + 5


def greedy_text(v: str, i: int) -> str:
    if (v, i) == ("q2", 0):
        return LOOP
    if (v, i) == ("q4", 1):
        return LONG
    if (v, i) == ("q4", 2):
        return f"model says {INJECTION} then </script><b>bold</b> answer"
    return f"reasoning of {v} on problem {i}: add the numbers, check, done"


def _put(st: Store, v: str, i: int, recipe: str, sample: int, toks: int, ok: int, text: str) -> None:
    gold = str(2 * i)
    finish = "length" if toks >= 1000 else "stop"
    c = Completion(text, text, gold, 20, toks + 10, toks, 10, finish, 1.0, 0.1, toks / 100)
    st.put_generation(
        RUN, v, f"p{i}", recipe, sample, c, Verdict(bool(ok), gold if ok else "bad", "boxed"), 1
    )


def build_store(path: Path, *, sampling: bool = True) -> Store:
    """Three variants x six problems: greedy, plus maj@3 (three samples each) when `sampling`."""
    st = Store(path)
    names = ["greedy", "maj@3"] if sampling else ["greedy"]
    st.ensure_run(RUN, "report-test", {"model": "m", "engine": "hf", "strategies": names})
    problems = [
        Problem(
            "arithmetic",
            f"p{i}",
            [
                {"role": "system", "content": "Answer in \\boxed{}."},
                {"role": "user", "content": f"What is {i} + {i}?" + (f" {INJECTION}" if i == 2 else "")},
            ],
            str(2 * i),
        )
        for i in range(6)
    ]
    st.put_problems(RUN, problems)
    for pos, (v, bits) in enumerate(zip(VARIANTS, (None, 4.5, 2.5), strict=True)):
        st.put_variant(RUN, v, pos, {"bits_per_weight": bits} if bits else {})
    opts = SamplingOptions()
    for pos, name in enumerate(names):
        info = describe(parse_strategy(name, opts)) | {
            "options": {"temperature": opts.temperature, "top_p": opts.top_p, "wait_words": []}
        }
        st.put_strategy(RUN, name, pos, info)
    for v in VARIANTS:
        for i in range(6):
            _put(st, v, i, "greedy", 0, GREEDY_TOKENS[v][i], GREEDY_OK[v][i], greedy_text(v, i))
            if sampling:
                for s, ok in enumerate(SAMPLE_OK[v][i]):
                    text = LOOP if (v, i, s) == ("q2", 0, 0) else f"sample {s} of {v} on {i}"
                    _put(st, v, i, SAMPLE_KEY, s, sample_tokens(v, i, s), ok, text)
    return st


def report_dir(tmp: Path, *, sampling: bool = True) -> tuple[list, Path]:
    """(rows, report.html path) of a fresh synthetic store."""
    st = build_store(tmp / "s.sqlite", sampling=sampling)
    rows, outputs = build_report(st, RUN, tmp / "out", n_boot=300)
    st.close()
    return rows, outputs["html"]


def embedded_figures(page: str) -> dict[str, Any]:
    return {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r'<script type="application/json" id="fig-(\w+)">(.*?)</script>', page, re.S)
    }


def embedded_browser(page: str) -> dict[str, Any]:
    m = re.search(r'<script type="application/octet-stream" id="browser-data">(.*?)</script>', page, re.S)
    assert m, "no browser payload"
    return decode_payload(m.group(1).strip())


# --- independent expectations ------------------------------------------------------------------
def expected_points() -> dict[tuple[str, str], tuple[float, float]]:
    """(variant, strategy) -> (accuracy, tokens per problem), from the tables above."""
    out = {}
    for v in VARIANTS:
        out[(v, "greedy")] = (
            sum(GREEDY_OK[v]) / 6,
            sum(t + 10 for t in GREEDY_TOKENS[v]) / 6,
        )
        out[(v, "maj@3")] = (
            sum(sum(s) >= 2 for s in SAMPLE_OK[v]) / 6,
            sum(sample_tokens(v, i, s) + 10 for i in range(6) for s in range(3)) / 6,
        )
    return out


def expected_frontier(points: dict[tuple[str, str], tuple[float, float]]) -> list[tuple[float, float]]:
    front = [
        (a, t)
        for (a, t) in points.values()
        if not any(a2 >= a and t2 <= t and (a2 > a or t2 < t) for a2, t2 in points.values())
    ]
    return sorted(front, key=lambda p: p[1])


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[list, str]:
    rows, path = report_dir(tmp_path_factory.mktemp("report"))
    return rows, path.read_text(encoding="utf-8")


def test_accuracy_vs_tokens_points_and_frontier(report):
    rows, page = report
    fig = embedded_figures(page)["pareto"]
    points = expected_points()
    seen = {}
    for trace in fig["data"][:-1]:
        for name, x, y in zip(trace["text"], trace["x"], trace["y"], strict=True):
            seen[(name, trace["name"])] = (y, x)
    assert seen.keys() == points.keys()
    for key, (acc, toks) in points.items():
        assert seen[key] == (pytest.approx(acc), pytest.approx(toks)), key
    # accuracy error bars end exactly at the rows' CI bounds
    by = {(r.name, r.strategy): r for r in rows}
    for trace in fig["data"][:-1]:
        for name, y, plus, minus in zip(
            trace["text"], trace["y"], trace["error_y"]["array"], trace["error_y"]["arrayminus"], strict=True
        ):
            lo, hi = by[(name, trace["name"])].accuracy_ci
            assert (y - minus, y + plus) == (pytest.approx(lo), pytest.approx(hi))
    frontier = fig["data"][-1]
    assert frontier["name"] == "Pareto frontier" and frontier["mode"].startswith("lines")
    assert list(zip(frontier["y"], frontier["x"], strict=True)) == [
        (pytest.approx(a), pytest.approx(t)) for a, t in expected_frontier(points)
    ]
    assert "tokens per problem" in fig["layout"]["xaxis"]["title"]["text"]


def test_ctir_points_carry_the_rows_confidence_intervals(report):
    rows, page = report
    fig = embedded_figures(page)["ctir"]
    by = {(r.name, r.strategy): r for r in rows}
    checked = 0
    for trace in fig["data"]:
        kind, strat = trace["name"].split(":")[0], trace["name"].rsplit(" · ", 1)[1]
        for v, y, plus, minus in zip(
            trace["x"], trace["y"], trace["error_y"]["array"], trace["error_y"]["arrayminus"], strict=True
        ):
            r = by[(v, strat)]
            ratio, (lo, hi) = (r.ctir, r.ctir_ci) if kind == "joint" else (r.ctir_all, r.ctir_all_ci)
            if math.isnan(ratio):
                assert y is None
                continue
            assert y == pytest.approx(ratio)
            assert (y - minus, y + plus) == (pytest.approx(lo), pytest.approx(hi))
            checked += 1
    assert checked == 4 * len(VARIANTS)  # joint + all, two strategies
    # and the ratio itself, by hand: q4 greedy, joint = problems both answer correctly (p0, p1, p3)
    q4 = next(t for t in fig["data"] if t["name"].startswith("joint") and t["name"].endswith("greedy"))
    joint = [i for i in range(6) if GREEDY_OK["base"][i] and GREEDY_OK["q4"][i]]
    want = sum(GREEDY_TOKENS["q4"][i] for i in joint) / sum(GREEDY_TOKENS["base"][i] for i in joint)
    assert q4["y"][q4["x"].index("q4")] == pytest.approx(want)
    all_q2 = next(t for t in fig["data"] if t["name"].startswith("all") and t["name"].endswith("greedy"))
    assert all_q2["y"][all_q2["x"].index("q2")] == pytest.approx(
        sum(GREEDY_TOKENS["q2"]) / sum(GREEDY_TOKENS["base"])
    )


def test_token_distribution_split_by_verdict(report):
    _, page = report
    fig = embedded_figures(page)["tokens"]
    traces = {t["name"]: t for t in fig["data"]}
    assert set(traces) == {"correct", "incorrect"}
    got: dict[tuple[str, bool], list[int]] = {}
    for name, t in traces.items():
        for x, y in zip(t["x"], t["y"], strict=True):
            got.setdefault((x, name == "correct"), []).append(y)
    want: dict[tuple[str, bool], list[int]] = {}
    for v in VARIANTS:
        for i in range(6):
            want.setdefault((f"{v} · greedy", bool(GREEDY_OK[v][i])), []).append(GREEDY_TOKENS[v][i])
            for s, ok in enumerate(SAMPLE_OK[v][i]):
                want.setdefault((f"{v} · {SAMPLE_KEY}", bool(ok)), []).append(sample_tokens(v, i, s))
    assert {k: sorted(v) for k, v in got.items()} == {k: sorted(v) for k, v in want.items()}
    assert fig["layout"]["boxmode"] == "group"


def test_curves_match_hand_computed_pass_and_maj(report):
    _, page = report
    fig = embedded_figures(page)["curves"]
    assert [t["name"] for t in fig["data"] if t.get("xaxis") is None] == [
        f"{v} {m}@k" for v in VARIANTS for m in ("pass", "maj")
    ]  # the table's variant order, not the store's alphabetical one
    by_name = {t["name"]: t for t in fig["data"] if t.get("xaxis") is None}
    vs_tokens = {t["name"]: t for t in fig["data"] if t.get("xaxis") == "x2"}
    for v in VARIANTS:
        counts = [sum(s) for s in SAMPLE_OK[v]]
        passk = [sum(1 - math.comb(3 - c, k) / math.comb(3, k) for c in counts) / 6 for k in (1, 2, 3)]
        p = by_name[f"{v} pass@k"]
        assert p["x"] == [1, 2, 3] and p["y"] == pytest.approx(passk)
        maj = by_name[f"{v} maj@k"]
        assert maj["y"][2] == pytest.approx(sum(c >= 2 for c in counts) / 6)  # k = n: one exact vote
        assert maj["y"][0] == pytest.approx(sum(counts) / 18)  # k = 1: a single sample's accuracy
        mean_tok = sum(sample_tokens(v, i, s) + 10 for i in range(6) for s in range(3)) / 18
        assert vs_tokens[f"{v} pass@k"]["x"] == pytest.approx([k * mean_tok for k in (1, 2, 3)])
        assert vs_tokens[f"{v} pass@k"]["y"] == pytest.approx(passk)


def test_greedy_only_run_skips_the_curves_panel_with_a_note(tmp_path):
    rows, path = report_dir(tmp_path, sampling=False)
    page = path.read_text(encoding="utf-8")
    assert "curves" not in embedded_figures(page)
    assert "No curves: this run has no independent-sample recipe" in page
    assert {"pareto", "ctir", "tokens"} <= set(embedded_figures(page))
    assert page.count("<tr>") == 1 + len(rows) == 1 + len(VARIANTS)


def test_browser_payload_holds_sample_zero_with_verdicts_and_problems(report):
    _, page = report
    data = embedded_browser(page)
    assert data["reference"] == "base" and data["variants"] == list(VARIANTS)
    assert [r["key"] for r in data["recipes"]] == ["greedy", SAMPLE_KEY]
    assert "maj@3" in data["recipes"][1]["label"]
    assert [p["id"] for p in data["problems"]] == [f"p{i}" for i in range(6)]
    assert [p["gold"] for p in data["problems"]] == [str(2 * i) for i in range(6)]
    assert data["problems"][1]["question"] == "What is 1 + 1?"  # the user turn, not the system prompt
    for v in VARIANTS:
        for i in range(6):
            t = data["traces"]["greedy"][v][f"p{i}"]
            ok = bool(GREEDY_OK[v][i])
            assert (t["correct"], t["extracted"]) == (ok, str(2 * i) if ok else "bad")
            assert (t["reasoning_tokens"], t["answer_tokens"], t["completion_tokens"]) == (
                GREEDY_TOKENS[v][i],
                10,
                GREEDY_TOKENS[v][i] + 10,
            )
            assert t["finish_reason"] == ("length" if GREEDY_TOKENS[v][i] >= 1000 else "stop")
            s0 = data["traces"][SAMPLE_KEY][v][f"p{i}"]
            assert s0["reasoning_tokens"] == sample_tokens(v, i, 0)  # sample 0 only


def test_long_traces_are_truncated_and_marked(report):
    _, page = report
    t = embedded_browser(page)["traces"]["greedy"]["q4"]["p1"]
    assert t["truncated"] and t["chars"] == len(LONG) > TRACE_CHAR_LIMIT
    assert "".join(t["parts"]) == LONG[:TRACE_CHAR_LIMIT]
    assert t["repetition"] == 0 and t["ngrams"] == repetition(LONG[:TRACE_CHAR_LIMIT]).ngrams  # shown text
    short = embedded_browser(page)["traces"]["greedy"]["base"]["p1"]
    assert not short["truncated"] and "".join(short["parts"]) == greedy_text("base", 1)
    assert "truncated: full text in generations.parquet / `thinkcost export`" in page


def test_looping_trace_carries_repetition_highlights(report):
    _, page = report
    t = embedded_browser(page)["traces"]["greedy"]["q2"]["p0"]
    rep = repetition(LOOP)
    assert t["repetition"] == pytest.approx(rep.score, abs=1e-4) and t["repetition"] > 0.8
    marked = t["parts"][1::2]
    assert marked == [LOOP[s:e] for s, e in rep.spans] and marked
    assert "".join(t["parts"]) == LOOP
    calm = embedded_browser(page)["traces"]["greedy"]["base"]["p0"]
    assert calm["repetition"] == 0 and len(calm["parts"]) == 1


def test_marked_parts_clip_spans_at_the_limit():
    assert marked_parts("aaaa bbbb cccc", [(0, 4), (10, 14)], 12) == ["", "aaaa", " bbbb ", "cc", ""]
    assert marked_parts("abcdef", [(4, 6)], 3) == ["abc"]


def test_page_is_self_contained_and_escapes_store_text(report):
    rows, page = report
    assert "<script src" not in page.lower() and "<link" not in page.lower()
    js = plotly_js()
    assert js and page.count(js) == 1  # plotly.js inline, once
    rest = page.replace(js, "")
    assert "http://" not in rest and "https://" not in rest
    assert INJECTION not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(1)" in page  # the question snippet in the problem <select>
    table = re.search(r'<table class="summary sortable".*?</table>', page, re.S).group(0)
    assert table.count("<tr>") == 1 + len(rows) == 1 + 2 * len(VARIANTS)
    for r in rows:
        assert f'data-sort="{r.accuracy!r}"' in table


def test_figures_accept_rows_or_summary_json_dicts(report, tmp_path):
    rows, _ = report
    dicts = summary_json(rows, {})["variants"]
    assert F.pareto_figure(rows) == F.pareto_figure(dicts)
    assert F.ctir_figure(rows, "base") == F.ctir_figure(dicts, "base")
    assert F.curves_figure([]) is None


def test_report_without_problems_table_still_renders(tmp_path):
    st = build_store(tmp_path / "s.sqlite", sampling=False)
    rows, outputs = build_report(st, RUN, tmp_path / "out", n_boot=100)
    gens = st.generations(RUN)
    meta = json.loads(outputs["json"].read_text())["meta"]
    page = render_report(rows, meta, gens, [], None)
    data = embedded_browser(page)
    assert [p["gold"] for p in data["problems"]] == [str(2 * i) for i in range(6)]
    assert "question not available" in data["problems"][0]["question"]


def test_without_plotly_the_page_says_so_instead_of_plotting(report, tmp_path, monkeypatch):
    import thinkcost.report.html as H

    rows, _ = report
    st = build_store(tmp_path / "s.sqlite", sampling=False)
    gens, problems = st.generations(RUN), st.problems(RUN)
    monkeypatch.setattr(H, "plotly_js", lambda: "")
    page = H.render_report(rows, {"reference": "base", "run_name": "x"}, gens, [], problems)
    assert embedded_figures(page) == {} and 'class="plot"' not in page
    assert page.count("plotly is not installed") == 3  # pareto, ctir, tokens; curves has its own note
    assert 'id="browser-data"' in page
