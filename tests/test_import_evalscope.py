"""`thinkcost import evalscope`: a real EvalScope run (tests/data/imports, README there) becomes a
store whose rows, verdicts, token counts and timings match the review/prediction files as read
here with json, and whose report builds."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest

from thinkcost.errors import UserError
from thinkcost.importers import import_run
from thinkcost.importers.common import load_tokenizer
from thinkcost.report.build import build_report
from thinkcost.store import Store

DATA = Path(__file__).parent / "data" / "imports" / "evalscope"
REVIEWS = DATA / "reviews" / "smollm2-135m" / "gsm8k_main.jsonl"
PREDICTIONS = DATA / "predictions" / "smollm2-135m" / "gsm8k_main.jsonl"
TOKENIZER = "smollm2-135m"


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    store = tmp_path_factory.mktemp("evalscope") / "s.db"
    (r,) = import_run("evalscope", DATA, store, tokenizer=TOKENIZER)
    st = Store(store, create=False)
    gens, problems = st.generations(r.run_id), st.problems(r.run_id)
    st.close()
    return store, r, gens, problems


def test_rows_problems_and_verdicts_match_the_files(imported):
    _, r, gens, problems = imported
    reviews = _jsonl(REVIEWS)
    assert r.task == "gsm8k_main" and r.strategy == "maj@2"  # --repeats 2
    assert len(problems) == len({x["sample_score"]["group_id"] for x in reviews}) == 4
    assert len(gens) == len(reviews) == 8
    by_key = {(str(x["sample_score"]["group_id"]), x["sample_score"]["generation_index"]): x for x in reviews}
    for g in gens.itertuples():
        x = by_key[(g.problem_id, g.sample)]
        score = x["sample_score"]["score"]
        assert bool(g.correct) == (score["value"][score["main_score_name"]] >= 1)
        assert g.extracted == score["extracted_prediction"]
        assert g.text == x["messages"][-1]["content"] and g.gold == x["target"][0]
    assert gens["correct"].sum() == sum(x["sample_score"]["score"]["value"]["accuracy"] for x in reviews) == 2
    for p in problems.itertuples():
        x = by_key[(p.problem_id, 0)]
        assert p.messages == [{"role": m["role"], "content": m["content"]} for m in x["messages"][:-1]]


def test_token_counts_and_latency(imported):
    _, _, gens, problems = imported
    tok = load_tokenizer(TOKENIZER)
    preds = {x["index"]: x for x in _jsonl(PREDICTIONS)}
    index = {
        (str(x["sample_score"]["group_id"]), x["sample_score"]["generation_index"]): x["index"]
        for x in _jsonl(REVIEWS)
    }
    msgs = {p.problem_id: p.messages for p in problems.itertuples()}
    for g in gens.itertuples():
        pred = preds[index[(g.problem_id, g.sample)]]["model_output"]
        assert g.completion_tokens == len(tok(g.text, add_special_tokens=False)["input_ids"])
        prompt = tok.apply_chat_template(msgs[g.problem_id], add_generation_prompt=True, tokenize=False)
        assert g.prompt_tokens == len(tok(prompt, add_special_tokens=False)["input_ids"])
        # evalscope's own usage figures agree (its output count includes the EOS token of a stop)
        stopped = pred["choices"][0]["stop_reason"] == "stop"
        assert g.prompt_tokens == pred["usage"]["input_tokens"]
        assert g.completion_tokens == pred["usage"]["output_tokens"] - int(stopped)
        assert g.finish_reason == ("stop" if stopped else "length")
        assert g.latency_s == g.cost_s == pytest.approx(pred["perf_metrics"]["latency"])


def test_report_builds_with_the_tools_seconds(imported, tmp_path):
    store, r, gens, _ = imported
    st = Store(store, create=False)
    (row,), outputs = build_report(st, r.run_id, tmp_path / "out", n_boot=50)
    st.close()
    assert row.s_per_correct == pytest.approx(gens["cost_s"].sum() / row.n_correct)
    assert row.tokens_per_correct == pytest.approx(gens["completion_tokens"].sum() / row.n_correct)
    assert not math.isnan(row.tokens_per_s)
    assert outputs["html"].is_file()
    assert "evalscope's per-sample latencies" in json.loads(outputs["json"].read_text())["meta"]["note"]


def test_reimport_is_idempotent(imported):
    store, r, _, _ = imported
    (again,) = import_run("evalscope", DATA, store, tokenizer=TOKENIZER)
    assert (again.run_id, again.added, again.stored) == (r.run_id, 0, 8)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda lines: [lines[0], "{not json", *lines[2:]], r"gsm8k_main\.jsonl:2: malformed JSON line"),
        (
            lambda lines: [
                json.dumps({k: v for k, v in json.loads(x).items() if k != "sample_score"}) for x in lines
            ],
            r"gsm8k_main\.jsonl:1: missing field 'sample_score'",
        ),
        (lambda lines: lines[:-1], r"problem 3 has generation indices \[0\]|different numbers of samples"),
    ],
)
def test_malformed_reviews_name_file_and_line(tmp_path, edit, message):
    out = tmp_path / "run"
    shutil.copytree(DATA, out)
    path = out / REVIEWS.relative_to(DATA)
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(UserError, match=message):
        import_run("evalscope", out, tmp_path / "s.db")


def test_unknown_layout(tmp_path):
    (tmp_path / "predictions").mkdir()
    with pytest.raises(UserError, match="no evalscope reviews"):
        import_run("evalscope", tmp_path, tmp_path / "s.db")
    with pytest.raises(UserError, match="lm-eval options"):
        import_run("evalscope", DATA, tmp_path / "s.db", filter_name="strict")


def test_a_reasoning_content_part_is_split_as_a_server_field(tmp_path):
    out = tmp_path / "run"
    shutil.copytree(DATA, out)
    path = out / REVIEWS.relative_to(DATA)
    lines = _jsonl(path)
    reply = [{"type": "reasoning", "reasoning": "2 and 3 make 5."}, {"type": "text", "text": "\\boxed{5}"}]
    lines[0]["messages"][-1]["content"] = reply
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    (r,) = import_run("evalscope", out, tmp_path / "s.db")
    st = Store(tmp_path / "s.db", create=False)
    g = st.generations(r.run_id).iloc[0]
    st.close()
    assert g.text == "<think>2 and 3 make 5.</think>\\boxed{5}"
    assert (g.reasoning_format, g.reasoning_text, g.answer_text) == (
        "server-field",
        "2 and 3 make 5.",
        "\\boxed{5}",
    )
