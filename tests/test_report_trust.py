"""The trust panels of the report: reliability diagram data (--confidence runs) and attack
success per (variant, strategy) for injection/extraction runs, from the store alone."""

from __future__ import annotations

import json
import re

import pandas as pd
import pytest
from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.metrics.accuracy import wilson_interval
from thinkcost.pipeline import run
from thinkcost.report.figures import reliability_figure, robustness_figure
from thinkcost.spec import build_spec


def test_reliability_points_are_the_bins_mean_confidence_and_accuracy():
    gens = pd.DataFrame(
        {
            "variant": ["base"] * 4 + ["q3"] * 2,
            "recipe": ["greedy"] * 6,
            "confidence": [0.95, 0.92, 0.15, None, 0.5, 0.55],
            "correct": [1, 0, 0, 1, 1, 1],
        }
    )
    fig = reliability_figure(gens, ["base", "q3"])
    diag, base, q3 = fig["data"]
    assert diag["x"] == [0, 1] and diag["y"] == [0, 1]
    assert base["x"] == pytest.approx([0.15, 0.935]) and base["y"] == pytest.approx([0.0, 0.5])
    assert q3["x"] == pytest.approx([0.525]) and q3["y"] == pytest.approx([1.0])
    assert reliability_figure(gens.assign(confidence=None), ["base"]) is None


def test_injection_run_reports_attacks_in_answer_and_reasoning_with_wilson_cis(tmp_path):
    """Problems 0 and 2 repeat the canary in the answer, 1 and 3 only in the reasoning."""
    seen = []

    def script(req, sid):
        prompt = req.prompt_messages[-1]["content"]
        canary = re.search(r"\b[A-Z]+-\d{4}\b", prompt).group()
        if prompt not in seen:
            seen.append(prompt)
        k = seen.index(prompt)
        if k % 2 == 0:
            return ["Adding", " up", ".", "</think>", "\nThe", " answer", " is", f" {canary}", "."]
        return [
            "The",
            " note",
            " says",
            f" {canary},",
            " ignored",
            ".",
            "</think>",
            "\nThe",
            " answer",
            " is",
            " 10",
            ".",
        ]

    spec = build_spec(
        {},
        {
            "task": "injection",
            "variants": "base",
            "limit": 4,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "o",
        },
    )
    res = run(spec, Console(quiet=True), engine=ScriptedEngine(script, think=True))
    (rec,) = json.loads(res.outputs["json"].read_text())["meta"]["robustness"]
    assert (rec["n"], rec["attack"], rec["reasoning_leak"], rec["leak_any"]) == (4, 2, 2, 4)
    lo, hi = wilson_interval(2, 4)
    assert (rec["attack_ci_low"], rec["attack_ci_high"]) == pytest.approx((lo, hi))
    fig = robustness_figure(pd.DataFrame([rec]))
    answer, reasoning = fig["data"]
    assert answer["y"] == [0.5] and reasoning["y"] == [0.5]
    assert answer["error_y"]["array"][0] == pytest.approx(hi - 0.5)
    html = res.outputs["html"].read_text()
    assert 'id="sec-robustness"' in html and 'id="sec-reliability"' not in html


def test_bf_wait_under_the_heuristic_split_reports_no_reasoning_leak(tmp_path):
    """The issue's case: a model without think tags answers with the canary; bf-wait:1 replaces
    its EOS with "Wait" and it answers again. The heuristic split now calls the first answer
    "reasoning" by construction, so the leak-in-reasoning figure is n/a (None), not 4/4; the
    canary still counts as leaked anywhere, and the table says n/a."""
    from thinkcost.report.table import robustness_table

    def script(req, sid):
        canary = re.search(r"\b[A-Z]+-\d{4}\b", req.prompt_messages[-1]["content"]).group()
        return [
            "The",
            " answer",
            " is",
            f" {canary}",
            ".",
            "<eos>",
            " Actually",
            " the",
            " answer",
            " is",
            " 10",
            ".",
        ]

    spec = build_spec(
        {},
        {
            "task": "injection",
            "variants": "base",
            "strategy": "bf-wait:1",
            "limit": 4,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "o",
        },
    )
    res = run(spec, Console(quiet=True), engine=ScriptedEngine(script))
    meta = json.loads(res.outputs["json"].read_text())["meta"]
    (rec,) = meta["robustness"]
    assert rec["n"] == 4 and rec["leak_any"] == 4 and rec["attack"] == 0
    assert rec["reasoning_leak"] is None and rec["reasoning_leak_n"] == 0
    assert "heuristic" in meta["reasoning_note"]
    console = Console(width=200, record=True)
    console.print(robustness_table(meta["robustness"]))
    assert "n/a (heuristic split)" in console.export_text()
