"""Benchmark tasks through the runner (scripted engine, fixture files): problems from a local
file, answers checked by math-verify / the sandbox, verdict details and skipped rows stored."""

from __future__ import annotations

import json

from rich.console import Console

from scripted_engine import ScriptedEngine
from thinkcost.pipeline import run
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.tasks import get_task

DATA = "tests/data"


def _spec(tmp_path, **kw):
    return build_spec(
        {}, {"variants": "base", "store": tmp_path / "s.sqlite", "out": tmp_path / "out", "n_boot": 200, **kw}
    )


def test_humaneval_from_a_local_file_is_scored_in_the_sandbox(tmp_path):
    problems = get_task("humaneval", data=f"{DATA}/humaneval.jsonl").problems(None, 0)
    solutions = {p.messages[-1]["content"]: p for p in problems}

    def script(req, sid):  # right code for the first problem, a wrong one for the second
        p = solutions[req.prompt_messages[-1]["content"]]
        if p is problems[0]:
            body = (
                p.meta["prompt"]
                + "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n"
            )
        else:
            body = p.meta["prompt"] + "    return 0.0\n"
        return ["```python\n" + body + "```"]

    res = run(
        _spec(tmp_path, task="humaneval", data=f"{DATA}/humaneval.jsonl", limit=2),
        Console(quiet=True),
        engine=ScriptedEngine(script),
    )
    (row,) = res.rows
    assert (row.n, row.n_correct) == (2, 1)
    g = Store(tmp_path / "s.sqlite", create=False).generations()
    details = dict(zip(g["problem_id"], g["verdict_detail"], strict=True))
    assert details[problems[0].id].startswith("passed") and details[problems[1].id].startswith("failed")


def test_gsm8k_with_a_field_mapping_and_skipped_rows(tmp_path):
    bad = tmp_path / "mixed.jsonl"
    rows = [
        {"q": "Tom has 3 apples and buys 4 more. How many apples does he have?", "a": "3 + 4 = 7\n#### 7"},
        {"q": "No answer here", "a": ""},
        {"q": "A box holds 12 eggs. How many eggs are in 2 boxes?", "a": "#### 24"},
    ]
    bad.write_text("\n".join(json.dumps(r) for r in rows) + "\n")

    def script(req, sid):
        return ["The", " answer", " is", " \\boxed{7}."]

    spec = _spec(
        tmp_path, task="gsm8k", data=str(bad), fields="question=q,answer=a", skip_bad_rows=True, limit=5
    )
    res = run(spec, Console(quiet=True), engine=ScriptedEngine(script))
    (row,) = res.rows
    assert (row.n, row.n_correct) == (2, 1)
    meta = json.loads(res.outputs["json"].read_text())["meta"]
    assert len(meta["skipped_rows"]) == 1 and meta["skipped_rows"][0]["row"] == 2
    assert meta["skipped_rows"][0]["field"] == "a"  # named as the file spells it


def test_a_puzzle_answer_followed_by_prose_is_graded_on_its_move_list(tmp_path):
    """The default model writes `moves = [...]` and then a closing sentence; the heuristic split
    must start the answer at the move list (the task's answer marker), not at the last line."""
    task = get_task("hanoi", n="2")
    problems = task.problems(4, 0)
    by_prompt = {p.messages[-1]["content"]: i for i, p in enumerate(problems)}

    def script(req, sid):  # the optimal list for even problems, a wrong one for odd ones
        i = by_prompt[req.prompt_messages[-1]["content"]]
        moves = task.puzzle.solve(problems[i].meta["instance"])
        listed = json.dumps(moves if i % 2 == 0 else moves[::-1])
        return ["Thinking.\n", f"moves = {listed}", "\n\n", "This completes it."]

    run(
        _spec(tmp_path, task="hanoi", task_options={"n": "2"}, limit=4),
        Console(quiet=True),
        engine=ScriptedEngine(script),
    )
    g = Store(tmp_path / "s.sqlite", create=False).generations()
    index = {p.id: i for i, p in enumerate(problems)}
    assert len(g) == 4
    for pid, answer, correct in zip(g["problem_id"], g["answer_text"], g["correct"], strict=True):
        assert answer.startswith("moves = [[")
        assert bool(correct) == (index[pid] % 2 == 0)


def test_a_numbered_move_list_before_a_closing_sentence_is_graded_but_a_cut_one_is_not(tmp_path):
    """No `moves =` line: the model numbers its moves and ends with prose (seen on w4). The
    heuristic split's answer is the prose; the puzzle grades the whole text when the model ended
    on its own, and nothing when the cap cut it (an unfinished draft is not an answer)."""
    task = get_task("hanoi", n="2")
    (problem,) = task.problems(1, 0)
    moves = task.puzzle.solve(problem.meta["instance"])
    numbered = "".join(f"{k}. {json.dumps(m)}\n" for k, m in enumerate(moves, 1))

    def script(req, sid):
        return ["So the moves are:\n", numbered, "\n", "This completes the puzzle.", *[" More."] * 20]

    for cap, correct in ((200, True), (8, False)):
        store = tmp_path / f"s{cap}.sqlite"
        spec = _spec(
            tmp_path, task="hanoi", task_options={"n": "2"}, limit=1, max_new_tokens=cap, store=store
        )
        run(spec, Console(quiet=True), engine=ScriptedEngine(script))
        g = Store(store, create=False).generations()
        assert bool(g["correct"].iloc[0]) is correct, (
            cap,
            g["finish_reason"].iloc[0],
            g["verdict_detail"].iloc[0],
        )
