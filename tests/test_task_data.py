"""tasks/loading.py and tasks/templating.py: reading rows from files and the hub, field mapping, bad data,
prompt templates."""

from __future__ import annotations

import gzip
import json
import sys
import types
from pathlib import Path

import pytest

from thinkcost.errors import UserError
from thinkcost.spec import build_spec
from thinkcost.tasks.loading import BadRow, load_rows, resolve_source
from thinkcost.tasks.templating import check_template, parse_fields, render

DATA = Path(__file__).parent / "data"
QA = ("question", "answer")


def _write_jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


# --- formats ---------------------------------------------------------------------------------


def test_jsonl_rows_keep_their_columns_and_line_numbers():
    rows, bad = load_rows(str(DATA / "gsm8k.jsonl"), required=QA)
    assert bad == []
    assert [r["_row"] for r in rows] == [1, 2, 3]
    assert [r["_index"] for r in rows] == [0, 1, 2]
    assert rows[0]["question"].startswith("Janet’s ducks lay 16 eggs")
    assert rows[0]["_source"] == str(DATA / "gsm8k.jsonl")


def test_json_list_csv_and_parquet_are_read_by_extension():
    math, _ = load_rows(str(DATA / "math500.json"), required=["problem", "answer"])
    assert [r["answer"] for r in math] == ["24", "\\frac{3}{4}", "\\pm\\sqrt{2}"]
    assert math[0]["level"] == 1  # JSON keeps types
    aime, _ = load_rows(str(DATA / "aime24.csv"), required=["problem", "answer"])
    assert [r["answer"] for r in aime] == ["24", "012", "1"]  # CSV cells stay text: "012" is not 12.0
    assert 'in total"?' in aime[1]["problem"]  # quoted quotes
    assert "\nGive the result" in aime[2]["problem"]  # a quoted newline stays inside its cell
    gpqa, _ = load_rows(str(DATA / "gpqa_diamond.parquet"), split="train", required=["Question"])
    assert len(gpqa) == 4 and gpqa[0]["Correct Answer"] == "The photon"


@pytest.mark.parametrize("key", ["data", "rows", "examples"])
def test_json_object_with_a_list_of_rows(tmp_path, key):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"version": 1, key: [{"question": "q", "answer": "1"}]}))
    rows, _ = load_rows(str(path), required=QA)
    assert rows[0]["answer"] == "1"


def test_gzipped_jsonl(tmp_path):
    path = tmp_path / "x.jsonl.gz"
    with gzip.open(path, "wt") as f:
        f.write(json.dumps({"question": "q", "answer": "1"}) + "\n\n")
    rows, _ = load_rows(str(path), required=QA)
    assert len(rows) == 1 and rows[0]["_row"] == 1


def test_nested_fields_are_reached_with_dotted_names():
    rows, _ = load_rows(
        str(DATA / "procbench.jsonl"),
        fields={"final": "label.final", "steps": "label.intermediate"},
        required=["prompt", "final"],
    )
    assert rows[0]["final"] == "houmkd"
    assert rows[0]["steps"] == ["hhouumkd", "hhoumkd"]
    assert rows[2]["final"] == ["c", "a", "b"]


# --- field mapping ---------------------------------------------------------------------------


def test_parse_fields():
    assert parse_fields("question=problem, answer = solution") == {
        "question": "problem",
        "answer": "solution",
    }
    assert parse_fields({"question": "q"}) == {"question": "q"}
    assert parse_fields(None) == {}


@pytest.mark.parametrize("spec", ["question", "question=", "=problem", "a=b=c", ",", "question=q,question=p"])
def test_parse_fields_refuses_malformed_specs(spec):
    with pytest.raises(UserError, match="fields"):
        parse_fields(spec)


@pytest.mark.parametrize("spec", ["question", "question=", "=problem", "a=b=c", ",", "question=q,question=p"])
def test_the_run_spec_refuses_the_same_fields(spec):
    """One parser for --fields / YAML and for the tasks: a mapping the task would refuse fails in the spec."""
    refused = r"^spec: field 'fields': (malformed pair|no ours=theirs|'question' is mapped twice)"
    with pytest.raises(UserError, match=refused):
        build_spec({}, {"task": "gsm8k", "data": str(DATA / "gsm8k.jsonl"), "fields": spec})


def test_the_run_spec_keeps_a_valid_fields_mapping():
    spec = build_spec({}, {"task": "gsm8k", "data": str(DATA / "gsm8k.jsonl"), "fields": " question = q "})
    assert spec.fields == {"question": "q"}
    assert build_spec({}, {"task": "gsm8k", "fields": {"answer": "a"}}).fields == {"answer": "a"}
    assert build_spec({}, {"task": "gsm8k"}).fields is None


def test_fields_map_our_names_to_the_file_columns(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", [{"q": "What is 2+2?", "a": "4"}])
    rows, _ = load_rows(str(path), fields=parse_fields("question=q,answer=a"), required=QA)
    assert (rows[0]["question"], rows[0]["answer"]) == ("What is 2+2?", "4")


def test_a_missing_mapped_column_names_both_names(tmp_path):
    path = _write_jsonl(tmp_path / "x.jsonl", [{"q": "What is 2+2?", "a": "4"}])
    with pytest.raises(UserError) as e:
        load_rows(str(path), fields={"question": "q", "answer": "solution"}, required=QA)
    msg = str(e.value)
    assert "x.jsonl line 1" in msg and "'solution'" in msg and "'answer'" in msg and "columns: a, q" in msg


# --- bad data --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, where, what",
    [
        ("bad_line.jsonl", "line 3", "invalid JSON"),
        ("not_object.jsonl", "line 2", "is not an object"),
        ("missing_field.jsonl", "line 2", "field 'answer': missing"),
        ("empty_answer.csv", "row 2", "field 'answer': is empty"),
    ],
)
def test_bad_rows_raise_naming_file_row_and_field(name, where, what):
    with pytest.raises(UserError) as e:
        load_rows(str(DATA / name), required=QA)
    msg = str(e.value)
    assert f"{DATA / name} {where}" in msg
    assert what in msg
    assert "--skip-bad-rows" in msg


@pytest.mark.parametrize(
    "name, bad_row, field, unit",
    [
        ("bad_line.jsonl", 3, None, "line"),
        ("not_object.jsonl", 2, None, "line"),
        ("missing_field.jsonl", 2, "answer", "line"),
        ("empty_answer.csv", 2, "answer", "row"),
    ],
)
def test_skip_bad_rows_records_them_and_keeps_the_rest(name, bad_row, field, unit):
    rows, bad = load_rows(str(DATA / name), required=QA, skip_bad_rows=True)
    assert len(bad) == 1
    assert (bad[0].source, bad[0].row, bad[0].field, bad[0].unit) == (str(DATA / name), bad_row, field, unit)
    assert len(rows) == (3 if name == "bad_line.jsonl" else 2)
    assert bad_row not in [r["_row"] for r in rows]
    assert str(bad[0]).startswith(f"{DATA / name} {unit} {bad_row}")


def test_csv_row_of_the_wrong_width_is_a_bad_row(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("question,answer\nq1,1\nq2,2,extra\n")
    rows, bad = load_rows(str(path), required=QA, skip_bad_rows=True)
    assert len(rows) == 1
    assert bad == [BadRow(str(path), 2, None, "has 3 values but the header has 2 columns")]


def test_unparseable_files_raise_even_when_skipping(tmp_path):
    broken = tmp_path / "x.json"
    broken.write_text('[{"question": "q", "answer": 1},\n  {"question": ]')
    with pytest.raises(UserError, match=r"x\.json: invalid JSON at line 2"):
        load_rows(str(broken), required=QA, skip_bad_rows=True)
    not_parquet = tmp_path / "x.parquet"
    not_parquet.write_text("not parquet")
    with pytest.raises(UserError, match=r"x\.parquet: cannot read Parquet file"):
        load_rows(str(not_parquet), required=QA, skip_bad_rows=True)
    wrong_shape = tmp_path / "y.json"
    wrong_shape.write_text('{"items": []}')
    with pytest.raises(UserError, match="expected a JSON list of objects"):
        load_rows(str(wrong_shape), required=QA)
    latin1 = tmp_path / "z.csv"
    latin1.write_bytes("question,answer\ncaf\xe9,1\n".encode("latin-1"))
    with pytest.raises(UserError, match=r"z\.csv: not UTF-8"):
        load_rows(str(latin1), required=QA)


def test_no_usable_rows_is_an_error(tmp_path):
    empty = tmp_path / "x.jsonl"
    empty.write_text("\n")
    with pytest.raises(UserError, match="no rows"):
        load_rows(str(empty), required=QA)
    all_bad = _write_jsonl(tmp_path / "y.jsonl", [{"question": "q"}])
    with pytest.raises(UserError, match="no usable rows"):
        load_rows(str(all_bad), required=QA, skip_bad_rows=True)


def test_sources_are_checked_before_loading(tmp_path):
    assert resolve_source("openai/gsm8k") == ("hub", "openai/gsm8k")
    with pytest.raises(UserError, match="no such file"):
        resolve_source(str(tmp_path / "missing.jsonl"))
    with pytest.raises(UserError, match="is a directory"):
        resolve_source(str(tmp_path))
    odd = tmp_path / "x.txt"
    odd.write_text("")
    with pytest.raises(UserError, match="unknown data file type"):
        resolve_source(str(odd))
    with pytest.raises(UserError, match="neither an existing file nor a hub dataset id"):
        resolve_source("not a dataset")


# --- the hub ---------------------------------------------------------------------------------


def test_hub_without_datasets_tells_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `import datasets` raise ImportError
    with pytest.raises(UserError) as e:
        load_rows("openai/gsm8k", config="main", required=QA)
    assert "pip install 'thinkcost[hub]'" in str(e.value) and "--data PATH" in str(e.value)


def _fake_datasets(monkeypatch, load_dataset) -> None:
    """Replace `datasets.load_dataset` (in the real package, or in a stand-in when it is absent)."""
    try:
        import datasets
    except ImportError:
        datasets = types.ModuleType("datasets")
        monkeypatch.setitem(sys.modules, "datasets", datasets)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset, raising=False)


def test_hub_unreachable_names_the_dataset_and_suggests_a_local_copy(monkeypatch):
    def offline(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'openai/gsm8k' on the Hub (LocalEntryNotFoundError)")

    _fake_datasets(monkeypatch, offline)
    with pytest.raises(UserError) as e:
        load_rows("openai/gsm8k", config="main", required=QA)
    msg = str(e.value)
    assert "'openai/gsm8k'" in msg and "ConnectionError" in msg and "--data PATH" in msg


def test_hub_rows_go_through_the_same_checks(monkeypatch):
    calls = []

    def load_dataset(source, config, split):
        calls.append((source, config, split))
        return [{"question": "q1", "answer": "#### 1"}, {"question": "q2", "answer": ""}]

    _fake_datasets(monkeypatch, load_dataset)
    rows, bad = load_rows("openai/gsm8k", config="main", required=QA, skip_bad_rows=True)
    assert calls == [("openai/gsm8k", "main", "test")]
    assert [r["question"] for r in rows] == ["q1"]
    assert str(bad[0]) == "hub:openai/gsm8k[main]:test row 2: field 'answer': is empty"


# --- prompt templates ------------------------------------------------------------------------


def test_template_placeholders_are_checked_and_other_braces_kept():
    template = check_template("Q: {question}\nPut it in \\boxed{} or {{braces}}.", ["question"], "t")
    assert render(template, {"question": "2+2?"}) == "Q: 2+2?\nPut it in \\boxed{} or {braces}."
    with pytest.raises(UserError, match=r"unknown placeholder\(s\) \{problem\}; known: \{question\}"):
        check_template("{problem}", ["question"], "t")


def test_jsonl_lines_split_on_newlines_only(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps({"question": "a\u2028b", "answer": "1"}, ensure_ascii=False) + "\r\n")
    rows, _ = load_rows(str(path), required=QA)
    assert rows[0]["question"] == "a\u2028b" and rows[0]["_row"] == 1
