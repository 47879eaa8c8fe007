"""`thinkcost import lm-eval`: a real lm-evaluation-harness --log_samples run (tests/data/imports,
README there) becomes a store whose rows, verdicts and token counts match the files as read here
with json, and whose report builds."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from thinkcost.cli import app
from thinkcost.errors import UserError
from thinkcost.importers import import_run
from thinkcost.importers.common import load_tokenizer
from thinkcost.report.build import build_report
from thinkcost.store import Store

DATA = Path(__file__).parent / "data" / "imports" / "lm_eval"
MODEL_DIR = DATA / "SmolLM2-135M-Instruct"
TOKENIZER = "smollm2-135m"


def _lines(task: str) -> list[dict]:
    (path,) = MODEL_DIR.glob(f"samples_{task}_2*.jsonl")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def tok():
    return load_tokenizer(TOKENIZER)  # the SmolLM2 GGUF's tokenizer, through transformers


@pytest.fixture(scope="module")
def imported(tmp_path_factory, tok):
    store = tmp_path_factory.mktemp("lmeval") / "s.db"
    done = import_run("lm-eval", DATA, store, tokenizer=TOKENIZER)
    return store, {r.task: r for r in done}


def _gens(store: Path, run_id: str):
    st = Store(store, create=False)
    try:
        return st.generations(run_id, token_ids=True), st.problems(run_id), st.variants(run_id)
    finally:
        st.close()


def test_rows_problems_and_verdicts_match_the_files(imported):
    store, runs = imported
    assert set(runs) == {"tc_arith", "tc_arith_rep"}
    # tc_arith: two filters (strict, number), one line per (doc, filter); the first filter is used
    lines = [x for x in _lines("tc_arith") if x["filter"] == "strict"]
    gens, problems, _ = _gens(store, runs["tc_arith"].run_id)
    assert len(problems) == len({x["doc_id"] for x in lines}) == 5
    assert len(gens) == sum(len(x["resps"][0]) for x in lines)
    by_id = {str(x["doc_id"]): x for x in lines}
    for g in gens.itertuples():
        x = by_id[g.problem_id]
        assert g.text == x["resps"][0][0]
        assert bool(g.correct) == (x["exact_match"] >= 1)
        assert g.extracted == x["filtered_resps"][0]
        assert g.gold == x["target"]
        assert g.latency_s == 0 and g.cost_s == 0
    for p in problems.itertuples():
        assert p.messages == [
            {"role": "user", "content": by_id[p.problem_id]["arguments"]["gen_args_0"]["arg_0"]}
        ]
    # repeats: 2 -> two samples per document under one maj@2 recipe
    rep = _lines("tc_arith_rep")
    gens, problems, _ = _gens(store, runs["tc_arith_rep"].run_id)
    assert runs["tc_arith_rep"].strategy == "maj@2"
    assert len(gens) == sum(len(x["resps"][0]) for x in rep) == 10
    assert sorted(gens.groupby("problem_id")["sample"].apply(list).tolist()) == [[0, 1]] * 5
    texts = {(str(x["doc_id"]), i): t for x in rep for i, t in enumerate(x["resps"][0])}
    assert all(texts[(g.problem_id, g.sample)] == g.text for g in gens.itertuples())
    # lm-eval scored only the take-first response: every sample is graded by thinkcost, and says so
    assert all(r.startswith("thinkcost-numeric:") for r in gens["extract_rule"])


def test_another_filter_takes_its_scores(tmp_path):
    done = import_run("lm-eval", DATA, tmp_path / "s.db", filter_name="number", tasks=["tc_arith"])
    gens, _, _ = _gens(tmp_path / "s.db", done[0].run_id)
    want = {str(x["doc_id"]): x["exact_match"] >= 1 for x in _lines("tc_arith") if x["filter"] == "number"}
    assert {g.problem_id: bool(g.correct) for g in gens.itertuples()} == want
    assert sum(want.values()) == 1  # the fixture: "number" credits one answer, "strict" none
    with pytest.raises(UserError, match=r"--filter 'nope'.*strict, number"):
        import_run("lm-eval", DATA, tmp_path / "t.db", filter_name="nope", tasks=["tc_arith"])


def test_token_counts_are_the_tokenizers(imported, tok):
    store, runs = imported
    prompts = {str(x["doc_id"]): x["arguments"]["gen_args_0"]["arg_0"] for x in _lines("tc_arith_rep")}
    gens, _, _ = _gens(store, runs["tc_arith_rep"].run_id)
    for g in gens.itertuples():
        ids = tok(g.text, add_special_tokens=False)["input_ids"]
        assert g.completion_tokens == len(ids) and g.token_ids == list(ids)
        assert g.prompt_tokens == len(tok(prompts[g.problem_id], add_special_tokens=False)["input_ids"])
        assert g.reasoning_tokens + g.answer_tokens == g.completion_tokens
        assert g.token_source == "tokenizer"
        # the task's cap is 16 new tokens: a sample that used them all was cut off
        assert (g.finish_reason == "length") == (len(ids) >= 16)
    assert (gens["finish_reason"] == "length").any()


def _with_response(tmp_path: Path, text: str) -> Path:
    """A copy of the fixture run whose first tc_arith response (every filter) is `text`."""
    out = tmp_path / "run"
    shutil.copytree(DATA, out)
    (path,) = (out / MODEL_DIR.name).glob("samples_tc_arith_2*.jsonl")
    for p in (out / MODEL_DIR.name).glob("samples_tc_arith_rep_*.jsonl"):
        p.unlink()
    lines = [json.loads(x) for x in path.read_text().splitlines()]
    for x in lines:
        if x["doc_id"] == 0:
            x["resps"] = [[text]]
    path.write_text("".join(json.dumps(x) + "\n" for x in lines))
    return out


def test_think_blocks_are_split_and_counted(tmp_path, tok):
    text = "<think>2 plus 3 makes 5, surely.</think>\n5"
    src = _with_response(tmp_path, text)
    (r,) = import_run("lm-eval", src, tmp_path / "s.db", tokenizer=TOKENIZER)
    gens, _, variants = _gens(tmp_path / "s.db", r.run_id)
    g = gens[gens["problem_id"] == "0"].iloc[0]
    assert g.reasoning_format == "think-in-output" and variants[0]["reasoning_format"] == "think-in-output"
    assert g.reasoning_text == "2 plus 3 makes 5, surely." and g.answer_text == "5"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    # reasoning = the fewest leading tokens that cover the text up to the answer's start
    head = text.index("</think>") + len("</think>")
    n = next(k for k in range(len(ids) + 1) if len(tok.decode(ids[:k])) >= head)
    assert g.reasoning_tokens == n and g.answer_tokens == len(ids) - n
    # a template that opened <think> in the prompt: the model writes only the close
    text2 = "adding the two gives 5</think>5"
    src2 = _with_response(tmp_path / "b", text2)
    (r2,) = import_run(
        "lm-eval", src2, tmp_path / "t.db", tokenizer=TOKENIZER, reasoning_format="think-in-prompt"
    )
    g2 = _gens(tmp_path / "t.db", r2.run_id)[0].iloc[0]
    assert (g2.reasoning_format, g2.reasoning_text, g2.answer_text) == (
        "think-in-prompt",
        "adding the two gives 5",
        "5",
    )


def test_reimport_is_idempotent_and_variants_share_a_run(tmp_path):
    store = tmp_path / "s.db"
    first = import_run("lm-eval", DATA, store, tasks=["tc_arith"])
    again = import_run("lm-eval", DATA, store, tasks=["tc_arith"])
    assert first[0].run_id == again[0].run_id and again[0].added == 0 and again[0].stored == 5
    # other files under the same variant would mix two runs' rows: refused
    other = _with_response(tmp_path, "5")
    with pytest.raises(UserError, match=r"variant 'base'.*other files"):
        import_run("lm-eval", other, store, tasks=["tc_arith"])
    # ... and are a second variant of the same run (CTIR compares them)
    (w4,) = import_run("lm-eval", other, store, tasks=["tc_arith"], variant="w4")
    assert w4.run_id == first[0].run_id and w4.added == 5
    st = Store(store, create=False)
    assert [v["variant"] for v in st.variants(w4.run_id)] == ["base", "w4"]
    assert len(st.runs()) == 1
    st.close()


def test_report_builds_with_unmeasured_figures_as_nan(imported, tmp_path):
    store, runs = imported
    st = Store(store, create=False)
    rows, outputs = build_report(st, runs["tc_arith_rep"].run_id, tmp_path / "out", n_boot=50)
    st.close()
    (row,) = rows
    assert (
        math.isnan(row.s_per_correct) and math.isnan(row.tokens_per_s) and math.isnan(row.effective_speedup)
    )
    gens, _, _ = _gens(store, runs["tc_arith_rep"].run_id)
    assert row.tokens_per_correct == pytest.approx(gens["completion_tokens"].sum() / row.n_correct)
    assert row.accuracy == pytest.approx(row.n_correct / 5)
    assert outputs["html"].stat().st_size > 1000
    meta = json.loads(outputs["json"].read_text())["meta"]
    assert "no per-sample timings" in meta["note"]


def test_without_a_tokenizer_counts_are_unavailable(tmp_path):
    (r,) = import_run("lm-eval", DATA, tmp_path / "s.db", tasks=["tc_arith"])
    gens, _, variants = _gens(tmp_path / "s.db", r.run_id)
    assert set(gens["token_source"]) == {"unavailable"} and gens["completion_tokens"].sum() == 0
    assert variants[0]["token_counts"] is False
    st = Store(tmp_path / "s.db", create=False)
    (row,) = build_report(st, r.run_id, tmp_path / "out", n_boot=20)[0]
    st.close()
    assert math.isnan(row.mean_reasoning_tokens) and math.isnan(row.tokens_per_correct)


def test_cli_import_then_report(tmp_path):
    runner = CliRunner()
    store = tmp_path / "s.db"
    res = runner.invoke(app, ["import", "lm-eval", str(DATA), "-o", str(store), "--task", "tc_arith"])
    assert res.exit_code == 0, res.output
    assert "5 new generation(s)" in res.output
    res = runner.invoke(app, ["report", str(store), "-o", str(tmp_path / "r.html"), "--format", "json"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "r.html").is_file()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda lines: [*lines[:2], lines[2][:40], *lines[3:]],
            r"samples_tc_arith_.*\.jsonl:3: malformed JSON line",
        ),
        (
            lambda lines: [
                json.dumps({k: v for k, v in json.loads(x).items() if k != "resps"}) for x in lines
            ],
            r"\.jsonl:1: missing field 'resps'",
        ),
        (lambda lines: ["[1, 2]", *lines[1:]], r"\.jsonl:1: expected a JSON object"),
        (
            lambda lines: [json.dumps(json.loads(x) | {"exact_match": "yes"}) for x in lines],
            r"\.jsonl:1: metric 'exact_match' should be a number",
        ),
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, edit, message):
    out = tmp_path / "run"
    shutil.copytree(DATA, out)
    (path,) = (out / MODEL_DIR.name).glob("samples_tc_arith_2*.jsonl")
    path.write_text("\n".join(edit(path.read_text().splitlines())) + "\n")
    with pytest.raises(UserError, match=message):
        import_run("lm-eval", out, tmp_path / "s.db")


def test_bad_layouts_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="not a directory"):
        import_run("lm-eval", tmp_path / "missing", tmp_path / "s.db")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no lm-eval samples_"):
        import_run("lm-eval", tmp_path / "empty", tmp_path / "s.db")
    with pytest.raises(UserError, match="unknown tool 'helm'"):
        import_run("helm", DATA, tmp_path / "s.db")
    with pytest.raises(UserError, match="--task nope"):
        import_run("lm-eval", DATA, tmp_path / "s.db", tasks=["nope"])
    res = CliRunner().invoke(
        app, ["import", "lm-eval", str(tmp_path / "empty"), "-o", str(tmp_path / "s.db")]
    )
    assert res.exit_code != 0


def test_bad_tokenizers_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="--tokenizer '/nonexistent/dir': expected a packaged model name"):
        import_run("lm-eval", DATA, tmp_path / "s.db", tokenizer="/nonexistent/dir")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no tokenizer could be loaded"):
        import_run("lm-eval", DATA, tmp_path / "s.db", tokenizer=str(tmp_path / "empty"))
