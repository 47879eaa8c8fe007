"""End to end with the real default model (Qwen2.5-Coder-0.5B): run, then rebuild the report
from the store alone and get the same figures."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd

from thinkcost.report.table import JSON_KEYS


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "thinkcost.cli", *args], capture_output=True, text=True, timeout=1500
    )


def test_default_model_run_then_report_from_store(tmp_path):
    store, out = tmp_path / "e2e.sqlite", tmp_path / "out"
    spec = ["--limit", "3", "--variants", "base,rtn-w4g32", "--max-new-tokens", "256"]
    p = _cli(
        "run",
        *spec,
        "--batch-size",
        "3",
        "--store",
        str(store),
        "--out",
        str(out),
    )
    assert p.returncode == 0, p.stderr[-3000:]
    assert "qwen2.5-coder-0.5b" in p.stdout and "rtn-w4g32" in p.stdout
    summary = json.loads((out / "summary.json").read_text())
    rows = {r["name"]: r for r in summary["variants"]}
    assert set(rows) == {"base", "rtn-w4g32"}
    assert rows["base"]["n"] == rows["rtn-w4g32"]["n"] == 3
    assert rows["base"]["accuracy"] > 0  # the default model answers these easy problems
    assert rows["base"]["ctir"] == 1.0
    assert rows["rtn-w4g32"]["bits_per_weight"] == 5.0  # 4 bits + fp16 scale and zero per 32
    assert rows["base"]["bits_per_weight_layers"] == rows["base"]["bits_per_weight_model"] == 32.0  # float32
    assert rows["rtn-w4g32"]["bits_per_weight_layers"] == 5.0
    # the float32 embedding and (untied) head, 2 x 136M of 630M parameters, weigh in the model figure
    assert 16.6 < rows["rtn-w4g32"]["bits_per_weight_model"] < 16.7
    gens = pd.read_parquet(out / "generations.parquet")
    assert len(gens) == 6 and (gens["reasoning_tokens"] > 0).all()
    assert (gens["reasoning_tokens"] + gens["answer_tokens"] <= gens["completion_tokens"]).all()
    assert "<html" in (out / "report.html").read_text().lower()

    rep = _cli("report", str(store), "--format", "json")
    assert rep.returncode == 0, rep.stderr[-3000:]
    again = {r["name"]: r for r in json.loads(rep.stdout)}
    for name, row in rows.items():
        assert list(again[name])[: len(JSON_KEYS)] == list(JSON_KEYS)
        for k in JSON_KEYS:
            assert again[name][k] == row[k], k

    resumed = _cli(
        "run",
        *spec,
        "--store",
        str(store),
        "--out",
        str(out),
    )
    assert resumed.returncode == 0 and "everything is already in" in resumed.stdout
