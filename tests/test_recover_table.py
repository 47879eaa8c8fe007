"""The recovery table: its figures against a hand computation, and the report section built
from a store holding base, PTQ and a recovered checkpoint."""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest

from synthetic_store import Sample, build_store
from thinkcost.metrics.recovery import recovery_table
from thinkcost.report.recovery import recovered_from, recovery_cells, recovery_markdown

REC = "ckpt:/ck/rtn"


def outcome(variant, strategy, pid, correct, tokens, cost, truncated=0):
    return {
        "variant": variant,
        "strategy": strategy,
        "problem_id": pid,
        "correct": correct,
        "score": float(correct),
        "correct_answers": int(correct),
        "attempts": 1,
        "reasoning_tokens": tokens,
        "cost_s": cost,
        "truncated": truncated,
    }


# 4 problems. base: 3/4 right, 100 tokens each. PTQ: 1/4, 200 each (2 hit the cap).
# PTQ + wait-penalty: 1/4, 150 each. recovered: 2/4, 120 each.
ROWS = (
    [outcome("base", "greedy", f"p{i}", i < 3, 100, 1.0) for i in range(4)]
    + [outcome("rtn", "greedy", f"p{i}", i < 1, 200, 2.0, truncated=int(i >= 2)) for i in range(4)]
    + [outcome("rtn", "wait-penalty:2", f"p{i}", i < 1, 150, 1.5) for i in range(4)]
    + [outcome(REC, "greedy", f"p{i}", i < 2, 120, 1.2) for i in range(4)]
    + [outcome("rtn", "maj@4", f"p{i}", True, 100, 1.0) for i in range(4)]  # not a mitigation
    + [outcome("base", "greedy", "p9", True, 1, 0.1)]  # decided by base only: left out everywhere
)


def test_recovery_figures_match_a_hand_computation():
    rows = recovery_table(pd.DataFrame(ROWS), {REC: "rtn"}, n_boot=200)
    by = {r.kind: r for r in rows}
    assert list(by) == ["base", "PTQ", "PTQ + wait-penalty:2", "recovered"]
    assert all(r.n == 4 for r in rows)
    assert [by[k].accuracy for k in by] == [0.75, 0.25, 0.25, 0.5]
    # CTIR all = mean tokens / base mean tokens; joint = over problems both got right
    assert [by[k].ctir_all for k in by] == pytest.approx([1.0, 2.0, 1.5, 1.2])
    assert by["PTQ"].ctir == pytest.approx(2.0) and by["PTQ"].ctir_n == 1
    assert by["recovered"].ctir == pytest.approx(1.2) and by["recovered"].ctir_n == 2
    assert by["PTQ"].hit_cap == 0.5 and by["recovered"].hit_cap == 0.0
    # s/correct: base 4 s / 3; PTQ 8 s / 1; recovered 4.8 s / 2; speed-up = base's / row's
    assert by["base"].s_per_correct == pytest.approx(4 / 3)
    assert by["PTQ"].s_per_correct == pytest.approx(8.0)
    assert by["recovered"].effective_speedup == pytest.approx((4 / 3) / 2.4)
    # share of the gap: accuracy (0.5 - 0.25) / (0.75 - 0.25); tokens (2.0 - 1.2) / (2.0 - 1)
    assert by["recovered"].accuracy_gap_recovered == pytest.approx(0.5)
    assert by["recovered"].token_gap_recovered == pytest.approx(0.8)
    assert by["PTQ + wait-penalty:2"].accuracy_gap_recovered == pytest.approx(0.0)
    assert by["PTQ + wait-penalty:2"].token_gap_recovered == pytest.approx(0.5)
    assert by["PTQ"].accuracy_gap_recovered == 0.0 and math.isnan(by["base"].accuracy_gap_recovered)
    cells = recovery_cells(by["recovered"])
    assert cells[3] == "50.0%" and cells[-2:] == ["50%", "80%"]


def test_no_table_without_base_ptq_and_recovered_rows():
    df = pd.DataFrame([r for r in ROWS if r["variant"] != "rtn"])
    assert recovery_table(df, {REC: "rtn"}) == []
    assert recovery_table(pd.DataFrame(ROWS), {}) == []
    # no gap to recover: the share is undefined, not a division by zero
    flat = pd.DataFrame([outcome(v, "greedy", "p0", True, 100, 1.0) for v in ("base", "rtn", REC)])
    (row,) = [r for r in recovery_table(flat, {REC: "rtn"}) if r.kind == "recovered"]
    assert math.isnan(row.accuracy_gap_recovered) and math.isnan(row.token_gap_recovered)


def test_recovered_from_reads_the_checkpoint_metadata(tmp_path):
    (tmp_path / "thinkcost.json").write_text(json.dumps({"meta": {"recovered_from": "gptq-w3g32"}}))
    assert recovered_from(f"ckpt:{tmp_path}", {"checkpoint": str(tmp_path)}) == "gptq-w3g32"
    assert recovered_from(f"ckpt:{tmp_path / 'nope'}", {}) is None
    assert recovered_from("rtn-w3g32", {}) is None


def test_report_of_a_store_shows_the_recovery_table(tmp_path):
    from thinkcost.report.build import build_report
    from thinkcost.report.markdown import rows_to_markdown
    from thinkcost.store import Store

    samples = (
        [Sample("base", f"p{i}", i < 3, 100, 1.0) for i in range(4)]
        + [Sample("rtn-w3g32", f"p{i}", i < 1, 200, 2.0) for i in range(4)]
        + [Sample(REC, f"p{i}", i < 2, 120, 1.2) for i in range(4)]
    )
    path = build_store(
        tmp_path / "s.sqlite",
        samples,
        [f"p{i}" for i in range(4)],
        engine="hf",
        variant_info={REC: {"recovered_from": "rtn-w3g32"}},
    )
    st = Store(path, create=False)
    try:
        rows, out = build_report(st, "run1", tmp_path / "out", n_boot=200)
    finally:
        st.close()
    meta = json.loads(out["json"].read_text())["meta"]
    kinds = [r["kind"] for r in meta["recovery"]]
    assert kinds == ["base", "PTQ", "recovered"]
    assert meta["recovery"][2]["accuracy_gap_recovered"] == pytest.approx(0.5)
    assert 'id="sec-recovery"' in out["html"].read_text()
    md = rows_to_markdown(rows, meta)
    assert "**Recovery**" in md and "| recovered | ckpt:/ck/rtn | greedy | 50.0% |" in md
    assert recovery_markdown([]) == ""
