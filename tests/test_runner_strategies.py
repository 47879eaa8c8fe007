"""The runner with strategies, end to end on the deterministic scripted engine: which samples
are drawn (and shared, and resumed), what every strategy decides and what it is charged."""

from __future__ import annotations

import json
from fractions import Fraction

import pytest
from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.pipeline import run
from thinkcost.report.build import build_report
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.tasks import get_task

LIMIT = 4


def _gold_by_prompt():
    return {p.messages[-1]["content"]: int(p.gold) for p in get_task("arithmetic").problems(LIMIT, 0)}


def _value(gold, req):
    content = req.prompt_messages[-1]["content"]  # may carry an appended instruction
    return next(v for k, v in gold.items() if content.startswith(k))


def script_for(gold):
    """Sample i thinks 3 + 2i tokens, then answers; even samples are right, odd ones off by one."""

    def script(req, sid):
        value = _value(gold, req)
        answer = value if sid % 2 == 0 else value + 1
        return ["Step", " one", "."] + [" more"] * (2 * sid) + ["\nThe", " answer", " is", f" {answer}", "."]

    return script


def _spec(tmp_path, strategies):
    return build_spec(
        {},
        {
            "variants": "base",
            "strategy": strategies,
            "limit": LIMIT,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 200,
        },
    )


def _length(sid):
    return 3 + 2 * sid + 5 + 1  # script tokens + EOS


def test_strategies_share_samples_resume_only_what_is_missing_and_are_charged_honestly(tmp_path):
    engine = ScriptedEngine(script_for(_gold_by_prompt()))
    quiet = Console(quiet=True)
    first = run(_spec(tmp_path, "greedy,maj@2"), quiet, engine=engine)
    assert first.generated == LIMIT * (1 + 2)
    drawn_first = sorted(sid for call in engine.calls for _, sid in call)
    assert drawn_first == sorted([0] * LIMIT + [0, 1] * LIMIT)

    engine.calls.clear()
    spec = _spec(tmp_path, "greedy,sample@4,maj@4,bon@4:logprob,bon@4:oracle,short-1@4")
    second = run(spec, quiet, engine=engine)
    # greedy and samples 0-1 are stored; the sample recipe draws 2-3 only; short-1@4 draws its own group
    assert second.generated == LIMIT * 2 + LIMIT * 4
    drawn = sorted(sid for call in engine.calls for _, sid in call)
    assert drawn == sorted([2, 3] * LIMIT + [0, 1, 2, 3] * LIMIT)

    rows = {r.strategy: r for r in second.rows}
    assert set(rows) == {"greedy", "sample@4", "maj@4", "bon@4:logprob", "bon@4:oracle", "short-1@4"}
    assert rows["greedy"].accuracy == 1.0 and rows["greedy"].tokens_per_problem == _length(0)
    assert rows["sample@4"].accuracy == 0.5
    sample_tokens = sum(_length(i) for i in range(4))
    assert rows["sample@4"].tokens_per_problem == sample_tokens
    assert rows["sample@4"].tokens_per_correct == pytest.approx(sample_tokens / 2)  # 2 correct answers each
    # 2-2 tie between right and off-by-one: the right answer's first sample (0) finished first
    assert rows["maj@4"].accuracy == 1.0 and rows["maj@4"].tokens_per_problem == sample_tokens
    assert rows["bon@4:logprob"].accuracy == 1.0  # sample 0 has the highest mean logprob
    assert rows["bon@4:oracle"].accuracy == 1.0
    # short-1@4: sample 0 finishes at step 9; the other three are cancelled at that step, 9 tokens each
    short = rows["short-1@4"]
    assert short.accuracy == 1.0 and short.tokens_per_problem == 4 * _length(0)
    assert short.cancelled_share == 0.75 and short.samples_per_problem == 4
    assert short.engine_calls_per_problem == 1
    # the frontier: greedy is as accurate as anything and cheapest
    assert [r.strategy for r in second.rows if r.pareto] == ["greedy"]

    summary = json.loads(second.outputs["json"].read_text())
    assert [(p["variant"], p["strategy"]) for p in summary["pareto"]] == [("base", "greedy")]
    curve = [p for p in summary["curves"] if p["recipe"] == spec.strategies()[1].recipe.key]
    assert [p["k"] for p in curve] == [1, 2, 3, 4]
    # 2 of 4 samples right on every problem: pass@2 = 1 - C(2,2)/C(4,2)
    assert curve[0]["pass_at_k"] == 0.5 and curve[1]["pass_at_k"] == pytest.approx(1 - Fraction(1, 6))
    assert curve[3]["maj_at_k"] == 1.0 and curve[3]["tokens_per_problem"] == pytest.approx(sample_tokens)
    assert {s["name"] for s in summary["meta"]["strategies"]} == set(rows)

    # the same rows come back from the store alone, plus maj@2 that the first run asked for
    st = Store(spec.store_path(), create=False)
    again, _ = build_report(st, spec.run_id(), tmp_path / "again", n_boot=200)
    st.close()
    key = lambda r: (r.name, r.strategy, r.accuracy, r.tokens_per_problem)  # noqa: E731
    assert sorted(map(key, again)) == sorted([*map(key, second.rows), ("base", "maj@2", 1.0, 20.0)])

    engine.calls.clear()
    third = run(spec, quiet, engine=engine)
    assert third.generated == 0 and engine.calls == []


def test_budget_cap_through_the_runner_forces_an_answer(tmp_path):
    gold = _gold_by_prompt()

    def ramble(req, sid):  # rambles 100 tokens before the right value
        value = _value(gold, req)
        return [" hmm"] * 100 + [f" {value}", "."]

    engine = ScriptedEngine(ramble)
    res = run(_spec(tmp_path, "greedy,bf-cap:4"), Console(quiet=True), engine=engine)
    rows = {r.strategy: r for r in res.rows}
    assert (
        rows["greedy"].accuracy == 1.0 and rows["greedy+bf-cap:4"].accuracy == 0.0
    )  # forced before the value
    st = Store(tmp_path / "s.sqlite", create=False)
    g = st.generations()
    capped = g[g["recipe"] == "greedy+bf-cap:4"]
    assert (capped["forced_tokens"] > 0).all() and (capped["interventions"] == 1).all()
    assert capped["text"].str.contains("Final answer:").all()
    # 4 reasoning tokens, +1 because this word tokenizer glues "\n\n" to "Final" and the answer
    # starts after the newline (reasoning tokens = fewest tokens that spell the reasoning)
    assert (capped["reasoning_tokens"] == 5).all()
    # the answer after the forced marker is bounded: cap + forced tokens + answer budget, exactly
    forced = int(capped["forced_tokens"].iloc[0])
    assert (capped["completion_tokens"] == 4 + forced + 64).all() and (
        capped["finish_reason"] == "length"
    ).all()


def test_real_small_model_run_stops_short_m_at_k_for_real_and_charges_every_token(tmp_path):
    spec = build_spec(
        {},
        {
            "model": "smollm2-135m",
            "variants": "base",
            "strategy": "maj@4,short-1@4,bf-cap:8",
            "temperature": 1.0,
            "limit": 2,
            "max_new_tokens": 40,
            "batch_size": 8,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 200,
        },
    )
    res = run(spec, Console(quiet=True))
    st = Store(spec.store_path(), create=False)
    g = st.generations(spec.run_id())
    st.close()
    short = g[g["recipe"].str.startswith("short-1@4")]
    assert len(short) == 8
    for _, grp in short.groupby("problem_id"):
        done = grp[grp["finish_reason"] != "cancelled"]
        first = int(done["completion_tokens"].min())
        assert len(done) >= 1
        # lockstep: the others were stopped at the step the first one finished, tokens kept
        cancelled = grp[grp["finish_reason"] == "cancelled"]
        assert (cancelled["completion_tokens"] == first).all() and (cancelled["answer_text"] == "").all()
        if len(done) == 1:
            assert len(cancelled) == 3
    rows = {r.strategy: r for r in res.rows}
    assert rows["short-1@4"].tokens_per_problem == pytest.approx(short["completion_tokens"].sum() / 2)
    maj = g[g["recipe"].str.startswith("sample:")]
    assert rows["maj@4"].tokens_per_problem == pytest.approx(maj["completion_tokens"].sum() / 2)
    capped = g[g["recipe"] == "greedy+bf-cap:8"]
    assert (capped["completion_tokens"] <= 8 + capped["forced_tokens"] + 64).all()
    assert (capped["reasoning_tokens"] <= 8 + capped["forced_tokens"]).all()  # the forced "\n\n" ends it
    assert capped["answer_text"].str.startswith("Final answer:").all()


def test_a_stated_confidence_is_not_graded_as_the_answer(tmp_path):
    """bon@k:verbal asks for a confidence after the answer; the last-number fallback must grade
    the answer, not the "90" of "Confidence: 90%"."""
    gold = _gold_by_prompt()

    def script(req, sid):
        return ["Working", ".", f"\n{_value(gold, req)}", "\nConfidence:", " 90%"]

    run(_spec(tmp_path, "bon@2:verbal"), Console(quiet=True), engine=ScriptedEngine(script))
    st = Store(tmp_path / "s.sqlite")
    g = st.generations(st.latest_run_id())
    assert len(g) == 2 * LIMIT and g["correct"].all()
    assert set(g["extracted"]) == {str(v) for v in gold.values()}


def _confidence_spec(tmp_path, mode):
    return build_spec(
        {},
        {
            "variants": "base",
            "strategy": "greedy",
            "limit": LIMIT,
            "confidence": mode,
            "store": tmp_path / f"{mode}.sqlite",
            "out": tmp_path / mode,
            "n_boot": 200,
        },
    )


def test_verbal_confidence_is_asked_stored_and_calibrated(tmp_path):
    """Even problems: right at 90%; odd ones: wrong at 60%. ECE (10 bins) = 0.5 * |0.9 - 1| +
    0.5 * |0.6 - 0| = 0.35; Brier = 0.5 * 0.01 + 0.5 * 0.36 = 0.185; AUROC = 1."""
    gold = _gold_by_prompt()
    order = list(gold)
    asked = []

    def script(req, sid):
        asked.append(req.prompt_messages[-1]["content"])
        value = _value(gold, req)
        k = next(i for i, q in enumerate(order) if req.prompt_messages[-1]["content"].startswith(q))
        right = k % 2 == 0
        return [
            "Work",
            ".",
            f"\nThe answer is {value if right else value + 1}.",
            f"\nConfidence: {90 if right else 60}%",
        ]

    res = run(_confidence_spec(tmp_path, "verbal"), Console(quiet=True), engine=ScriptedEngine(script))
    assert all("confidence" in q.lower() for q in asked)  # the instruction is in the same turn
    st = Store(tmp_path / "verbal.sqlite")
    g = st.generations(res.run_id).sort_values("problem_id")
    assert list(g["confidence"]) == [0.9, 0.6, 0.9, 0.6]
    assert list(g["correct"]) == [1, 0, 1, 0]
    (row,) = res.rows
    assert row.ece == pytest.approx(0.35)
    assert row.brier == pytest.approx(0.185)
    assert row.auroc == pytest.approx(1.0)
    assert row.confidence_missing == 0.0


def test_logprob_confidence_is_the_answer_tokens_mean_probability(tmp_path):
    import math

    gold = _gold_by_prompt()

    def script(req, sid):
        return ["Work", ".", "\nThe", " answer", " is", f" {_value(gold, req)}", "."]

    res = run(_confidence_spec(tmp_path, "logprob"), Console(quiet=True), engine=ScriptedEngine(script))
    st = Store(tmp_path / "logprob.sqlite")
    g = st.generations(res.run_id)
    # the scripted model gives every chosen token logprob -0.1 (sample 0)
    assert g["confidence"].tolist() == pytest.approx([math.exp(-0.1)] * LIMIT)
    assert res.rows[0].ece == pytest.approx(1 - math.exp(-0.1))  # all right, one bin


def test_logprob_confidence_reads_the_answers_own_tokens_under_bf_cap(tmp_path):
    """Logprobs differ per step (-step/10), the cap forces `</think>` and "Final answer:" (no
    logprobs), and the row ends with an EOS. The confidence is exp of the answer's own chosen
    tokens only: " 7" and "." here. Slicing the last `answer_tokens` logprobs (the old rule)
    would mix in reasoning tokens and the EOS."""
    import math

    def script(req, sid):  # the script advances under forced tokens too: steps 4-6 are overridden
        return ["a", " b", " c", " x", " x", " x", " 7", "."]

    spec = build_spec(
        {},
        {
            "variants": "base",
            "strategy": "bf-cap:3",
            "limit": 2,
            "confidence": "logprob",
            "store": tmp_path / "cap.sqlite",
            "out": tmp_path / "cap",
            "n_boot": 200,
        },
    )
    eng = ScriptedEngine(script, think=True, logprob=lambda req, sid, step: -step / 10)
    res = run(spec, Console(quiet=True), engine=eng)
    g = Store(tmp_path / "cap.sqlite").generations(res.run_id)
    # steps 1-3 model tokens, 4-6 forced ("</think>", "\n\nFinal", " answer:"), 7-8 " 7" ".", 9 EOS
    assert g["text"].tolist() == ["a b c</think>\n\nFinal answer: 7."] * 2
    assert g["answer_tokens"].tolist() == [4, 4]  # two forced, two chosen
    assert g["confidence"].tolist() == pytest.approx([math.exp((-0.7 - 0.8) / 2)] * 2)
