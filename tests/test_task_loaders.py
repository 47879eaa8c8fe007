"""Dataset-backed tasks: fixtures in each benchmark's hub layout -> problems, options, verification."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from thinkcost.errors import UserError
from thinkcost.tasks import TASKS, get_task
from thinkcost.tasks.procbench import extract_final, normalize_state, score_steps

DATA = Path(__file__).parent / "data"
DATASET_TASKS = ["aime24", "aime25", "gpqa-diamond", "gsm8k", "humaneval", "math500", "mbpp", "procbench"]


def _task(name: str, fixture: str, **options):
    return get_task(name, data=str(DATA / fixture), **options)


def _user(problem) -> str:
    return problem.messages[-1]["content"]


def _fake_hub(monkeypatch, rows_by_config: dict) -> list:
    """Stand in for `datasets.load_dataset` (real package or not); returns the calls it saw."""
    calls: list = []

    def load_dataset(source, config, split):
        calls.append((source, config, split))
        return rows_by_config[config]

    try:
        import datasets
    except ImportError:
        datasets = types.ModuleType("datasets")
        monkeypatch.setitem(sys.modules, "datasets", datasets)
    monkeypatch.setattr(datasets, "load_dataset", load_dataset, raising=False)
    return calls


def test_every_dataset_task_describes_itself():
    for name in DATASET_TASKS:
        cls = TASKS.get(name)
        assert cls.name == name
        assert "/" in cls.source and cls.size and cls.metric
        assert cls.answer_type in {"number", "latex", "choice", "code", "steps"}
        assert (cls.__doc__ or "").strip().splitlines()[0]


# --- fixtures -> problems --------------------------------------------------------------------


def test_gsm8k_gold_is_the_number_after_hashes():
    problems = _task("gsm8k", "gsm8k.jsonl").problems(None, 0)
    assert [p.id for p in problems] == ["gsm8k-0000", "gsm8k-0001", "gsm8k-0002"]
    assert [p.gold for p in problems] == ["18", "3", "1200"]  # "#### 1,200" loses its comma
    assert "Janet’s ducks lay 16 eggs per day" in _user(problems[0])
    assert "\\boxed{}" in _user(problems[0])
    assert problems[0].messages[0]["role"] == "system"
    assert problems[0].meta["row"] == 1 and problems[0].meta["source"].endswith("gsm8k.jsonl")


def test_math500_and_aime24_read_json_and_csv():
    math = _task("math500", "math500.json").problems(None, 0)
    assert [p.gold for p in math] == ["24", "\\frac{3}{4}", "\\pm\\sqrt{2}"]
    assert math[1].meta["difficulty"] == 2 and math[2].meta["subject"] == "Algebra"
    assert _user(math[1]).startswith("Simplify $\\frac{6}{8}$.")
    aime = _task("aime24", "aime24.csv").problems(None, 0)
    assert [p.gold for p in aime] == ["24", "12", "1"]  # "012" is graded as the integer 12
    assert [p.id for p in aime] == ["aime24-0000", "aime24-0001", "aime24-0002"]
    assert "Find the remainder when $2^{10}$" in _user(aime[0])


def test_humaneval_keeps_tests_and_entry_point():
    problems = _task("humaneval", "humaneval.jsonl").problems(None, 0)
    assert [p.meta["source_id"] for p in problems] == ["HumanEval/0", "HumanEval/2"]
    p = problems[0]
    assert p.meta["entry_point"] == "has_close_elements"
    assert p.gold == p.meta["test"] and "def check(candidate):" in p.gold
    assert "def has_close_elements(numbers: List[float], threshold: float) -> bool:" in _user(p)
    assert "```python" in _user(p)


def test_mbpp_shows_the_first_test_and_runs_all():
    problems = _task("mbpp", "mbpp.jsonl").problems(None, 0)
    p = problems[0]
    assert "Write a function to find the shared elements" in _user(p)
    assert "assert set(similar_elements((3, 4, 5, 6),(5, 7, 4, 10)))" in _user(p)
    assert "(1, 2, 3, 4)" not in _user(p)  # only the first test is shown
    assert p.gold.count("assert") == 3
    assert problems[2].gold.startswith("import math\nassert math.isclose(circle_area(1), math.pi)")


def test_procbench_reads_the_nested_label():
    problems = _task("procbench", "procbench.jsonl").problems(None, 0)
    assert [p.gold for p in problems] == ["houmkd", "12", "[c, a, b]"]
    assert problems[0].meta["steps"] == ["hhouumkd", "hhoumkd"]
    assert problems[2].meta["steps"] == ["[b, c, a]"]
    assert problems[0].meta["n_steps"] == 3 and problems[0].meta["task_name"] == "task01"
    assert "String: hchouumkd" in _user(problems[0]) and '"Step k: <state>"' in _user(problems[0])


def test_limit_takes_the_first_rows_in_file_order():
    task = _task("gsm8k", "gsm8k.jsonl")
    assert [p.gold for p in task.problems(2, 0)] == ["18", "3"]
    assert [p.gold for p in task.problems(10, 5)] == ["18", "3", "1200"]
    with pytest.raises(UserError, match="limit"):
        task.problems(0, 0)


# --- gpqa option order -----------------------------------------------------------------------


def test_gpqa_options_are_shuffled_stably_per_seed():
    problems = _task("gpqa-diamond", "gpqa_diamond.parquet").problems(None, 0)
    correct = ["The photon", "+7", "Mitochondrion", "3"]
    for p, answer in zip(problems, correct, strict=True):
        letter = p.meta["gold_letter"]
        assert p.gold == letter
        assert p.meta["options"]["ABCD".index(letter)] == answer
        assert sorted(p.meta["permutation"]) == [0, 1, 2, 3]
        assert f"{letter}) {answer}" in _user(p)
        assert "Answer: X" in _user(p)
    again = _task("gpqa-diamond", "gpqa_diamond.parquet")
    assert [p.meta["permutation"] for p in again.problems(None, 0)] == [
        p.meta["permutation"] for p in problems
    ]
    assert again.problems(1, 0)[0].meta["permutation"] == problems[0].meta["permutation"]  # limit-independent
    other = again.problems(None, 1)
    assert [p.meta["permutation"] for p in other] != [p.meta["permutation"] for p in problems]


# --- options ---------------------------------------------------------------------------------


def test_fields_option_maps_other_column_names(tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text(json.dumps({"q": "What is 6 * 7?", "a": "#### 42"}) + "\n")
    problems = get_task("gsm8k", data=str(path), fields="question=q,answer=a").problems(None, 0)
    assert problems[0].gold == "42" and "What is 6 * 7?" in _user(problems[0])
    with pytest.raises(UserError, match="unknown field"):
        get_task("gsm8k", data=str(path), fields="query=q")


def test_bad_rows_stop_the_task_or_are_skipped():
    with pytest.raises(UserError, match=r"missing_field\.jsonl line 2: field 'answer'"):
        _task("gsm8k", "missing_field.jsonl").problems(None, 0)
    task = _task("gsm8k", "missing_field.jsonl", skip_bad_rows=True)
    assert task.skipped == []  # nothing is read before problems() is called
    problems = task.problems(None, 0)
    assert [p.id for p in problems] == ["gsm8k-0000", "gsm8k-0002"]  # ids follow the file, gaps and all
    assert [(b.row, b.field) for b in task.skipped] == [(2, "answer")]


def test_an_unreadable_gold_is_a_bad_row(tmp_path):
    path = tmp_path / "x.jsonl"
    rows = [{"question": "q1", "answer": "#### 5"}, {"question": "q2", "answer": "so about #### five"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(UserError, match=r"x\.jsonl line 2: field 'answer': expected a number after '####'"):
        get_task("gsm8k", data=str(path)).problems(None, 0)
    task = get_task("gsm8k", data=str(path), skip_bad_rows=True)
    assert [p.gold for p in task.problems(None, 0)] == ["5"]
    assert task.skipped[0].row == 2


def test_prompt_override_and_unknown_placeholder():
    task = _task("gsm8k", "gsm8k.jsonl", prompt="Q: {question}\nA: \\boxed{}")
    text = _user(task.problems(1, 0)[0])
    assert text.startswith("Q: Janet’s ducks") and text.endswith("A: \\boxed{}")
    gpqa = _task("gpqa-diamond", "gpqa_diamond.parquet", prompt="{options}\n--\n{question}")
    assert _user(gpqa.problems(1, 0)[0]).endswith("--\nWhich particle mediates the electromagnetic force?")
    with pytest.raises(UserError, match=r"unknown placeholder\(s\) \{problem\}"):
        _task("gsm8k", "gsm8k.jsonl", prompt="Solve: {problem}")
    with pytest.raises(UserError, match=r"\{options\}"):
        _task("math500", "math500.json", prompt="{question} {options}")


def test_bad_option_values_are_user_errors():
    with pytest.raises(UserError, match="no such file"):
        get_task("gsm8k", data=str(DATA / "nope.jsonl"))
    with pytest.raises(UserError, match="skip_bad_rows"):
        get_task("gsm8k", skip_bad_rows="yes")
    with pytest.raises(UserError, match="has no option 'limit'"):
        get_task("gsm8k", limit=3)


# --- hub defaults (no network: load_dataset is replaced) -------------------------------------


def test_hub_ids_configs_and_splits(monkeypatch):
    calls = _fake_hub(monkeypatch, {"main": [{"question": "q", "answer": "#### 1"}]})
    task = get_task("gsm8k")
    assert calls == []  # building the task (spec validation does it) loads nothing
    assert task.problems(None, 0)[0].gold == "1"
    assert calls == [("openai/gsm8k", "main", "test")]


def test_aime25_reads_both_papers_with_continuous_ids(monkeypatch):
    calls = _fake_hub(
        monkeypatch,
        {
            "AIME2025-I": [{"question": "p1", "answer": "70"}, {"question": "p2", "answer": "588"}],
            "AIME2025-II": [{"question": "p3", "answer": "16"}],
        },
    )
    problems = get_task("aime25").problems(None, 0)
    assert calls == [("opencompass/AIME2025", c, "test") for c in ("AIME2025-I", "AIME2025-II")]
    assert [(p.id, p.gold) for p in problems] == [
        ("aime25-0000", "70"),
        ("aime25-0001", "588"),
        ("aime25-0002", "16"),
    ]
    assert problems[2].meta["source"] == "hub:opencompass/AIME2025[AIME2025-II]:test"
    get_task("aime25", config="AIME2025-II").problems(None, 0)
    assert calls[-1] == ("opencompass/AIME2025", "AIME2025-II", "test")


def test_gpqa_and_procbench_hub_defaults(monkeypatch):
    row = {"Question": "q", "Correct Answer": "a", **{f"Incorrect Answer {i}": f"w{i}" for i in (1, 2, 3)}}
    label_row = {"prompt": "p", "label": {"init": "ab", "intermediate": ["b"], "final": ""}}
    calls = _fake_hub(monkeypatch, {"gpqa_diamond": [row], "task05": [label_row]})
    get_task("gpqa-diamond").problems(None, 0)
    assert calls == [("Idavidrein/gpqa", "gpqa_diamond", "train")]
    # an empty final state is an empty answer: refused like any other
    with pytest.raises(
        UserError, match=r"hub:ifujisawa/procbench\[task05\]:train row 1: field 'label.final'"
    ):
        get_task("procbench", config="task05").problems(None, 0)


# --- procbench scoring -----------------------------------------------------------------------


def test_normalize_state_ignores_formatting_only():
    assert normalize_state("['a', 'b']") == normalize_state("[a,b]") == normalize_state("A, B.") == "a,b"
    assert normalize_state("**Houmkd**") == "houmkd"
    assert normalize_state("hou mkd") != normalize_state("houmkd")


def test_score_steps_counts_matching_step_states():
    gold = ["hhouumkd", "hhoumkd", "houmkd"]
    perfect = "Step 1: hhouumkd\nStep 2: hhoumkd\nStep 3: houmkd\nFinal: houmkd"
    assert score_steps(perfect, gold) == (3, 3)
    assert score_steps("Step 1: hhouumkd\nStep 2: hhoumkd\nFinal: houmkd", gold) == (3, 3)  # Final = step 3
    assert score_steps("Step 1: hhouumkd\nStep 2: ho][\nStep 3: houmkd", gold) == (2, 3)
    assert score_steps("- **Step 2:** HHOUMKD\nstep 1 : x\nStep 1: hhouumkd", gold) == (2, 3)  # last wins
    assert score_steps("I could not follow the procedure.", gold) == (0, 3)
    assert score_steps("Step 1: [b, c, a]\nFinal: ['c', 'a', 'b']", [["b", "c", "a"], ["c", "a", "b"]]) == (
        2,
        2,
    )


def test_extract_final_prefers_the_final_line():
    assert extract_final("Step 1: x\nFinal state: y") == ("y", "final")
    assert extract_final("Step 1: x\nStep 2: z") == ("z", "last-step")
    assert extract_final("no states here") == (None, "none")


# --- verification wiring (math-verify, the choice reader and the code sandbox) ----------------


def test_procbench_verify_final_state_and_step_detail():
    task = _task("procbench", "procbench.jsonl")
    p = task.problems(1, 0)[0]
    right = task.verify(p, "Step 1: hhouumkd\nStep 2: hhoxmkd\nStep 3: houmkd\nFinal: Houmkd")
    assert (right.correct, right.extracted, right.rule, right.detail) == (
        True,
        "Houmkd",
        "final",
        "steps 2/3",
    )
    wrong = task.verify(p, "Step 1: hhouumkd\nStep 2: hhoumkd\nFinal: hoimkd")
    assert (wrong.correct, wrong.detail) == (False, "steps 2/3")


def test_gsm8k_verify():
    task = _task("gsm8k", "gsm8k.jsonl")
    p = task.problems(1, 0)[0]
    assert task.verify(p, "16 - 3 - 4 = 9 eggs, 9 * 2 = 18 dollars. \\boxed{18}").correct
    wrong = task.verify(p, "She makes \\boxed{16} dollars.")
    assert not wrong.correct and wrong.extracted == "16"


def test_gpqa_verify_reads_the_letter():
    task = _task("gpqa-diamond", "gpqa_diamond.parquet")
    p = task.problems(1, 0)[0]
    gold = p.meta["gold_letter"]
    other = next(letter for letter in "ABCD" if letter != gold)
    assert task.verify(p, f"The photon carries it.\nAnswer: {gold}").correct
    assert not task.verify(p, f"Answer: {other}").correct


def test_humaneval_verify_runs_the_tests():
    task = _task("humaneval", "humaneval.jsonl")
    p = task.problems(None, 0)[1]
    full = "```python\ndef truncate_number(number: float) -> float:\n    return number % 1.0\n```"
    assert task.verify(p, full).correct
    body_only = "Here is the body:\n```python\n    return number % 1.0\n```"
    assert task.verify(p, body_only).correct  # completion rule: the prompt is prepended
    wrong = task.verify(p, "```python\ndef truncate_number(number: float) -> float:\n    return number\n```")
    assert not wrong.correct and wrong.detail.startswith("failed")


def test_mbpp_verify_runs_imports_and_asserts():
    task = _task("mbpp", "mbpp.jsonl")
    p = task.problems(None, 0)[2]
    right = "```python\nimport math\n\ndef circle_area(r):\n    return math.pi * r ** 2\n```"
    assert task.verify(p, right).correct
    assert not task.verify(p, "```python\ndef circle_area(r):\n    return 3.14 * r * r\n```").correct
