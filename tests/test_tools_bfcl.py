"""`tools-bfcl`: BFCL-style files read (inline or split ground truth), calls graded by AST
match with BFCL's tolerances and nothing more, and a run through the episode runner."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.errors import UserError
from thinkcost.pipeline import run
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.tasks import get_task
from thinkcost.tasks.tools.bfcl import standardize, to_json_schema
from thinkcost.tasks.tools.calls import Call, render_call

DATA = "tests/data"
TASK = get_task("tools-bfcl", data=f"{DATA}/bfcl_inline.jsonl")
P = {p.id: p for p in TASK.problems()}


def grade(pid, *calls):
    return TASK.verify_calls(P[pid], [Call(n, a) for n, a in calls])


def test_rows_become_problems_with_json_schema_tools():
    assert list(P) == [
        "simple_0",
        "simple_1",
        "simple_2",
        "simple_3",
        "multiple_0",
        "parallel_0",
        "irrelevance_0",
    ]
    tools = P["simple_0"].messages[0]["tools"]
    params = tools[0]["function"]["parameters"]
    assert tools[0]["type"] == "function" and params["type"] == "object"
    assert params["properties"]["value"]["type"] == "number"  # BFCL float -> JSON number
    assert P["simple_0"].messages[0]["content"].startswith("How far is 5 miles")
    assert to_json_schema({"type": "tuple", "items": {"type": "dict"}}) == {
        "type": "array",
        "items": {"type": "object"},
    }


@pytest.mark.parametrize(
    "args, ok",
    [
        ({"value": 5.0, "from_unit": "miles", "to_unit": "km"}, True),
        ({"value": 5, "from_unit": "mi", "to_unit": "Kilometers"}, True),  # int is a valid float; case
        ({"value": 5, "from_unit": "mi", "to_unit": "km", "precision": 2}, True),  # optional given right
        ({"value": 5, "from_unit": "mi", "to_unit": "km", "precision": 3}, False),  # optional given wrong
        ({"value": "5", "from_unit": "mi", "to_unit": "km"}, False),  # a string is not a float
        ({"value": True, "from_unit": "mi", "to_unit": "km"}, False),  # nor a bool
        ({"value": 6, "from_unit": "mi", "to_unit": "km"}, False),
        ({"value": 5, "from_unit": "mi"}, False),  # required missing
        ({"value": 5, "from_unit": "mi", "to_unit": "km", "round": 1}, False),  # not in the function
        ({"value": 5, "from_unit": "meters", "to_unit": "km"}, False),
    ],
)
def test_simple_call_arguments(args, ok):
    assert grade("simple_0", ("convert_distance", args)).correct is ok


def test_strings_compare_as_bfcl_standardizes_them():
    assert standardize("San Francisco, CA") == standardize("san francisco,ca") == "sanfranciscoca"
    assert standardize("it's") == 'it"s'
    for city, ok in [
        ("San Francisco", True),
        ("san-francisco", True),
        ("SAN FRANCISCO, CA", True),
        ("SF", False),
    ]:
        assert grade("simple_1", ("get_weather", {"city": city})).correct is ok, city
    assert grade("simple_1", ("get_weather", {"city": "San Francisco", "unit": "Celsius"})).correct
    assert not grade("simple_1", ("get_weather", {"city": "San Francisco", "unit": "fahrenheit"})).correct


def test_names_counts_and_order():
    args = {"value": 5.0, "from_unit": "mi", "to_unit": "km"}
    assert not grade("simple_0", ("convert_length", args)).correct
    assert not grade("simple_0").correct  # no call
    assert not grade("simple_0", ("convert_distance", args), ("convert_distance", args)).correct
    assert not grade("simple_0", ("convert_distance", "value=5")).correct  # arguments not an object
    assert grade(
        "simple_3", ("calendar_create_event", {"details": {"title": "Standup", "date": "2024-05-01"}})
    ).correct


def test_lists_booleans_and_dicts():
    assert grade("simple_2", ("sort_numbers", {"numbers": [5, 3, 9], "descending": True})).correct
    assert not grade(
        "simple_2", ("sort_numbers", {"numbers": [9, 5, 3], "descending": True})
    ).correct  # order
    assert not grade("simple_2", ("sort_numbers", {"numbers": [5, 3, 9], "descending": "true"})).correct
    assert not grade("simple_2", ("sort_numbers", {"numbers": [5, 3, 9.5], "descending": True})).correct
    assert not grade("simple_2", ("sort_numbers", {"numbers": [5, 3, 9]})).correct  # no "" -> not optional
    ev = "calendar.create_event"
    assert grade("simple_3", (ev, {"details": {"title": "standup", "date": "May 1, 2024"}})).correct
    assert not grade("simple_3", (ev, {"details": {"title": "Standup"}})).correct  # date not optional
    assert not grade(
        "simple_3", (ev, {"details": {"title": "Standup", "date": "2024-05-01", "room": "A"}})
    ).correct
    assert not grade("simple_3", (ev, {"details": "Standup 2024-05-01"})).correct


def test_multiple_parallel_and_irrelevance():
    assert grade("multiple_0", ("book_hotel", {"city": "Rome", "nights": 3})).correct
    assert not grade("multiple_0", ("book_flight", {"origin": "Rome", "destination": "Rome"})).correct
    assert not grade(
        "multiple_0", ("book_hotel", {"city": "Rome", "nights": 3.0})
    ).correct  # float for integer
    paris, tokyo = ("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Tokyo"})
    assert grade("parallel_0", paris, tokyo).correct and grade("parallel_0", tokyo, paris).correct
    assert not grade("parallel_0", paris, paris).correct  # each expected call matched once
    assert not grade("parallel_0", paris).correct
    assert grade("irrelevance_0").correct and not grade("irrelevance_0", paris).correct
    assert not TASK.verify_calls(P["simple_1"], None).correct  # a call that could not be read


def test_split_ground_truth_file_and_text_verify():
    t = get_task("tools-bfcl", data=f"{DATA}/bfcl_questions.jsonl", answers=f"{DATA}/bfcl_answers.jsonl")
    p = t.problems()[1]
    assert json.loads(p.gold) == json.loads(P["simple_1"].gold)
    assert t.verify(p, "Sure.\n" + render_call("get_weather", {"city": "San Francisco"})).correct
    assert not t.verify(p, "<tool_call>{broken</tool_call>").correct


def test_bad_files_are_user_errors(tmp_path):
    with pytest.raises(UserError, match="needs --data"):
        get_task("tools-bfcl")
    with pytest.raises(UserError, match=r"--data .*missing\.jsonl' does not exist"):
        get_task("tools-bfcl", data=str(tmp_path / "missing.jsonl"))
    cases = {
        "{not json\n": ":1: malformed JSON line",
        '["a"]\n': ":1: expected a JSON object",
        '{"id": "simple_0", "question": "Q", "function": [{"name": "f"}]}\n': "no 'ground_truth'",
        '{"id": "x_1", "question": "Q", "function": "f", "ground_truth": []}\n': "'function' must be",
        '{"id": "x_1", "question": 3, "function": [{"name": "f"}], "ground_truth": []}\n': "'question'",
        '{"id": "x_1", "question": "Q", "function": [{"name": "f"}], "ground_truth": [{"f": {"a": 1}}]}\n': "list of acceptable",
        "\n": "no rows",
    }
    for i, (text, msg) in enumerate(cases.items()):
        f = tmp_path / f"bad{i}.jsonl"
        f.write_text(text)
        with pytest.raises(UserError, match=msg):
            get_task("tools-bfcl", data=str(f))


def test_bfcl_through_the_runner(tmp_path):
    answers = {
        "How far": render_call("convert_distance", {"value": 5, "from_unit": "miles", "to_unit": "km"}),
        "What is the weather in San": "<tool_call>\n```json\n"
        + json.dumps({"name": "get_weather", "arguments": {"city": "San Francisco"}})
        + "\n```\n</tool_call>",
        "Sort": "<tool_call>{oops</tool_call>",
        "Tell me a joke": "Why did the cat sit on the computer? To keep an eye on the mouse.",
    }

    def script(req, sid):
        assert req.prompt_messages[0]["tools"]  # the functions travel with the prompt
        q = req.prompt_messages[0]["content"]
        return [next((a for k, a in answers.items() if q.startswith(k)), "I cannot help.")]

    spec = build_spec(
        {},
        {"task": "tools-bfcl", "data": f"{DATA}/bfcl_inline.jsonl", "variants": "base",
         "store": tmp_path / "s.sqlite", "out": tmp_path / "out", "n_boot": 100},
    )  # fmt: skip
    eng = ScriptedEngine(script)
    res = run(spec, Console(quiet=True), engine=eng)
    assert len(eng.calls) == 1  # single turn: one generate for every row
    g = Store(tmp_path / "s.sqlite", create=False).generations()
    by = {r.problem_id: (r.correct, json.loads(r.verdict_detail)["outcome"]) for _, r in g.iterrows()}
    assert by == {
        "simple_0": (1, "called"),
        "simple_1": (1, "called"),
        "simple_2": (0, "malformed-call"),
        "simple_3": (0, "no-call"),
        "multiple_0": (0, "no-call"),
        "parallel_0": (0, "no-call"),
        "irrelevance_0": (1, "no-call"),
    }
    assert res.rows[0].n_correct == 3
