"""Puzzle simulators against hand-made move lists and an independent brute-force optimum."""

from __future__ import annotations

import contextlib
import json
from itertools import product

import pytest

from thinkcost.errors import UserError
from thinkcost.tasks import TASKS, get_task
from thinkcost.tasks.puzzles.base import Illegal, bfs, replay
from thinkcost.tasks.puzzles.blocks import BlocksWorld
from thinkcost.tasks.puzzles.checkers import CheckerJumping
from thinkcost.tasks.puzzles.hanoi import Hanoi, distance_to_goal
from thinkcost.tasks.puzzles.river import RiverCrossing

PUZZLES = ["hanoi", "checker-jumping", "river-crossing", "blocks-world"]


def _detail(v):
    return json.loads(v.detail)


def _answer(moves) -> str:
    return "Let me think.\nmoves = " + json.dumps(moves)


@pytest.mark.parametrize("name", PUZZLES)
def test_registered_and_gold_replays(name):
    assert name in TASKS
    task = get_task(name, n="2..4")
    probs = task.problems(6, seed=3)
    assert [p.meta["level"] for p in probs] == [2, 3, 4, 2, 3, 4]
    assert len({p.id for p in probs}) == 6
    for p in probs:
        v = task.verify(p, _answer(json.loads(p.gold)))
        d = _detail(v)
        assert v.correct and d["solved"] and d["first_illegal"] is None and d["progress"] == 1.0
        assert d["moves"] == p.meta["optimal_length"]
        user = p.messages[-1]["content"]
        assert "moves = " in user and "Goal" in user
    # problem i depends on (seed, i) only, not on the limit
    assert task.problems(2, seed=3)[1] == probs[1]
    assert task.problems(2, seed=4)[1].messages != probs[1].messages or name in ("river-crossing",)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, [3]),
        ("4", [4]),
        ("2..5", [2, 3, 4, 5]),
        (" 2 .. 3 ", [2, 3]),
        ("2-3", [2, 3]),
        ([5, 2, 5], [2, 5]),
    ],
)
def test_level_option(value, expected):
    assert get_task("hanoi", n=value).levels == expected


@pytest.mark.parametrize("value", [0, "0..3", "5..2", "two", True, [], [1.5], "3..99", 13])
def test_level_option_errors_name_the_option(value):
    with pytest.raises(UserError, match=r"hanoi option n="):
        get_task("hanoi", n=value)


def test_unknown_option_is_a_user_error():
    with pytest.raises(UserError, match="no option 'disks'"):
        get_task("hanoi", disks=3)


# --- Hanoi ---------------------------------------------------------------------------------------
def _hanoi_inst(n):
    return {"n": n, "source": 0, "target": 2}


def _brute_neighbours(puzzle, inst, candidates):
    def neighbours(s):
        out = []
        for m in candidates:
            with contextlib.suppress(Illegal):
                out.append((m, puzzle.apply(inst, s, m)))
        return out

    return neighbours


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5])
def test_hanoi_bfs_optimum_is_2n_minus_1(n):
    h, inst = Hanoi(), _hanoi_inst(n)
    cands = [(None, f, t) for f in range(3) for t in range(3) if f != t]
    path = bfs(h.start(inst), lambda s: h.is_goal(inst, s), _brute_neighbours(h, inst, cands))
    assert len(path) == 2**n - 1 == len(h.solve(inst))


def test_hanoi_distance_matches_bfs_from_every_state():
    """The closed-form distance equals the BFS distance to the goal for every legal state, n = 3."""
    h, inst = Hanoi(), _hanoi_inst(3)
    cands = [(None, f, t) for f in range(3) for t in range(3) if f != t]
    for assign in product(range(3), repeat=3):  # peg of disks 3, 2, 1
        pegs = [[], [], []]
        for disk, peg in zip((3, 2, 1), assign, strict=True):
            pegs[peg].append(disk)
        state = tuple(tuple(p) for p in pegs)
        path = bfs(state, lambda s: h.is_goal(inst, s), _brute_neighbours(h, inst, cands))
        assert distance_to_goal(state, 2) == len(path)


def test_hanoi_hand_made_lists():
    h, inst = Hanoi(), _hanoi_inst(2)
    ok = [(1, 0, 1), (2, 0, 2), (1, 1, 2)]
    assert replay(h, inst, ok).solved
    r = replay(h, inst, ok[:2])  # legal but incomplete: 2 of 3 optimal moves
    assert (r.solved, r.first_illegal, r.reason) == (False, None, "goal not reached")
    assert r.progress == pytest.approx(2 / 3)
    bad = [(1, 0, 1), (2, 0, 1)]  # disk 2 onto disk 1: illegal at index 1
    r = replay(h, inst, bad)
    assert (r.first_illegal, r.legal) == (1, 1) and "smaller disk 1" in r.reason
    assert r.progress == pytest.approx(1 / 3)
    r = replay(h, inst, [(2, 0, 2)])  # disk 2 is under disk 1
    assert r.first_illegal == 0 and "not on top" in r.reason
    r = replay(h, inst, [*ok, (1, 2, 2)])  # solved, then an illegal move: not a solution
    assert not r.solved and r.first_illegal == 3 and r.progress == 1.0


def test_hanoi_verdict_detail_via_task():
    task = get_task("hanoi", n=3)
    p = task.problems(1)[0]
    src, dst = p.meta["instance"]["source"], p.meta["instance"]["target"]
    via = 3 - src - dst
    peg = "ABC"
    moves = [
        [1, peg[src], peg[dst]],
        [2, peg[src], peg[via]],
        [1, peg[dst], peg[via]],
        [3, peg[via], peg[dst]],
    ]
    v = task.verify(p, _answer(moves))
    d = _detail(v)
    assert not v.correct
    assert (d["first_illegal"], d["legal"], d["optimal"]) == (3, 3, 7)
    assert d["progress"] == pytest.approx(3 / 7, abs=1e-4)
    assert task.verify(p, "I cannot solve this.").rule == "none"


# --- checker jumping -------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_checker_bfs_optimum(n):
    c = CheckerJumping()
    inst = {"n": n, "red_left": True}
    size = 2 * n + 1
    cands = [(None, f, t) for f in range(size) for t in range(size) if 0 < abs(f - t) <= 2]
    path = bfs(c.start(inst), lambda s: c.is_goal(inst, s), _brute_neighbours(c, inst, cands))
    assert len(path) == (n + 1) ** 2 - 1 == len(c.solve(inst))


def test_checker_hand_made_lists():
    c = CheckerJumping()
    inst = {"n": 1, "red_left": True}  # R _ B
    assert replay(c, inst, [("R", 0, 1), ("B", 2, 0), ("R", 1, 2)]).solved
    r = replay(c, inst, [("R", 0, 1), ("R", 1, 0)])  # red moves backwards
    assert r.first_illegal == 1 and r.legal == 1
    assert r.progress == pytest.approx(1 / 4)  # 1 of 2n(n+1) = 4 squares of displacement
    r = replay(c, inst, [("B", 0, 1)])
    assert r.first_illegal == 0 and "holds R" in r.reason
    r = replay(c, inst, [("R", 0, 2)])  # jump into an occupied square
    assert r.first_illegal == 0


def test_checker_no_jump_over_own_colour():
    c = CheckerJumping()
    inst = {"n": 2, "red_left": True}  # R R _ B B
    r = replay(c, inst, [("R", 0, 2)])
    assert r.first_illegal == 0


# --- river crossing --------------------------------------------------------------------------------
@pytest.mark.parametrize(("n", "known"), [(2, 5), (3, 11), (4, 9), (5, 11)])
def test_river_optimum_matches_literature(n, known):
    """Jealous-husbands optima: 2 couples / boat 2 -> 5 crossings, 3 / 2 -> 11; 4 / 3 -> 9; 5 / 3 -> 11."""
    r = RiverCrossing()
    inst = r.instance(n, None)
    sol = r.solve(inst)
    assert len(sol) == known
    assert replay(r, inst, [r.read_move(inst, tuple(m)) for m in sol]).solved


def test_river_hand_made_lists():
    r = RiverCrossing()
    inst = r.instance(2, None)
    mv = lambda *names: frozenset(names)  # noqa: E731
    res = replay(r, inst, [mv("a1", "a2"), mv("a1"), mv("A1", "A2")])
    # after trip 3 the right bank holds A1, A2 with a2: a2's agent is there, legal; a1 alone left
    assert res.first_illegal is None and not res.solved
    res = replay(r, inst, [mv("A1", "a2")])  # a2 in the boat with A1, without A2
    assert res.first_illegal == 0 and "boat" in res.reason
    res = replay(r, inst, [mv("A1")])  # leaves a1 with A2 on the left bank
    assert res.first_illegal == 0 and "left bank" in res.reason
    res = replay(r, inst, [mv("A1", "a1"), mv("a2")])  # a2 is not on the right bank
    assert res.first_illegal == 1 and res.progress == pytest.approx(2 / 4)
    res = replay(r, inst, [mv("A1", "a1", "a2")])
    assert res.first_illegal == 0 and "at most 2" in res.reason


# --- blocks world ----------------------------------------------------------------------------------
def _iddfs_len(puzzle, inst, max_depth=12):
    """Independent optimum: iterative deepening depth-first search over all (block, from, to)."""
    blocks = [b for s in inst["start"] for b in s]
    cands = [(b, f, t) for b in blocks for f in (1, 2, 3) for t in (1, 2, 3) if f != t]
    nb = _brute_neighbours(puzzle, inst, cands)

    def dfs(s, depth):
        if puzzle.is_goal(inst, s):
            return True
        return depth > 0 and any(dfs(t, depth - 1) for _, t in nb(s))

    return next(d for d in range(max_depth + 1) if dfs(puzzle.start(inst), d))


@pytest.mark.parametrize("seed", range(4))
def test_blocks_bfs_matches_iddfs(seed):
    import random

    b = BlocksWorld()
    inst = b.instance(3, random.Random(seed))
    assert len(b.solve(inst)) == _iddfs_len(b, inst)


def test_blocks_hand_made_lists():
    b = BlocksWorld()
    inst = {"n": 3, "start": [["A", "B"], ["C"], []], "goal": [["A", "B", "C"], [], []]}
    assert replay(b, inst, [("C", 2, 1)]).solved
    r = replay(b, inst, [("A", 1, 3)])  # A is under B
    assert r.first_illegal == 0 and "not on top" in r.reason
    r = replay(b, inst, [("C", 2, 3), ("C", 3, 4)])
    assert r.first_illegal == 1 and "no stack 4" in r.reason
    r = replay(b, inst, [("C", 2, 3)])  # legal, incomplete: 2 of 3 blocks still placed
    assert r.first_illegal is None and not r.solved and r.progress == 0.0


@pytest.mark.parametrize("name", PUZZLES)
def test_verdict_after_store_round_trip(name):
    """The store keeps meta as JSON: a problem read back must verify the same."""
    from thinkcost.types import Problem

    task = get_task(name, n=3)
    p = task.problems(1, seed=1)[0]
    back = Problem(p.task, p.id, p.messages, p.gold, json.loads(json.dumps(p.meta)))
    answer = _answer(json.loads(p.gold)[:-1])
    assert task.verify(back, answer) == task.verify(p, answer)
    assert task.verify(back, _answer(json.loads(p.gold))).correct


def test_hanoi_run_end_to_end_with_per_level_report(tmp_path):
    """Through the runner: a scripted model that solves n <= 3 and stops short beyond; the store
    keeps the simulator's detail and summary.json the per-level table with the collapse point."""
    from rich.console import Console

    from scripted_engine import ScriptedEngine
    from thinkcost.pipeline import run
    from thinkcost.spec import build_spec
    from thinkcost.store import Store

    task = get_task("hanoi", n="2..4")
    by_prompt = {p.messages[-1]["content"]: p for p in task.problems(6)}

    def script(req, sid):
        p = by_prompt[req.prompt_messages[-1]["content"]]
        gold = json.loads(p.gold)
        moves = gold if p.meta["level"] <= 3 else gold[:5]
        return ["Thinking", " hard.", "\nmoves = " + json.dumps(moves)]

    spec = build_spec(
        {},
        {
            "variants": "base",
            "task": "hanoi",
            "task_options": {"n": "2..4"},
            "limit": 6,
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 100,
        },
    )
    res = run(spec, Console(quiet=True), engine=ScriptedEngine(script))
    (row,) = res.rows
    assert (row.n, row.n_correct) == (6, 4)
    g = Store(tmp_path / "s.sqlite", create=False).generations()
    details = {pid: json.loads(d) for pid, d in zip(g["problem_id"], g["verdict_detail"], strict=True)}
    n4 = [d for pid, d in details.items() if "-n4-" in pid]
    assert all(d["first_illegal"] is None and d["progress"] == pytest.approx(5 / 15, abs=1e-4) for d in n4)
    meta = json.loads((tmp_path / "out" / "summary.json").read_text())["meta"]
    acc = {r["level"]: r["accuracy"] for r in meta["levels"]["table"]}
    assert acc == {2: 1.0, 3: 1.0, 4: 0.0}
    assert meta["levels"]["collapse"][0]["collapse_level"] == 4
