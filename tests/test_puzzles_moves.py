"""The move-list reader on the ways models actually write lists, and on inputs meant to fool it."""

from __future__ import annotations

import json

import pytest

from thinkcost.tasks import get_task
from thinkcost.tasks.puzzles.blocks import BlocksWorld
from thinkcost.tasks.puzzles.checkers import CheckerJumping
from thinkcost.tasks.puzzles.hanoi import Hanoi
from thinkcost.tasks.puzzles.moves import read_moves
from thinkcost.tasks.puzzles.river import RiverCrossing

H = Hanoi()
HI = {"n": 2, "source": 0, "target": 2}


def hanoi_moves(text):
    got = read_moves(text, H.read_line)
    return got.shape, [None if t is None else H.read_move(HI, t) for t in got.moves]


OPT = [(1, 0, 1), (2, 0, 2), (1, 1, 2)]


@pytest.mark.parametrize(
    "text",
    [
        'moves = [[1, "A", "B"], [2, "A", "C"], [1, "B", "C"]]',
        "moves = [[1, A, B], [2, A, C], [1, B, C]]",  # quotes optional
        "moves=[(1,'A','B'),(2,'A','C'),(1,'B','C')]",  # tuples, single quotes, no spaces
        "Moves: [[1, 'a', 'b'], [2, 'a', 'c'], [1, 'b', 'c']]",  # lower-case pegs
        'So the answer is:\n```\nmoves = [\n  [1, "A", "B"],\n  [2, "A", "C"],\n  [1, "B", "C"]\n]\n```',
        "moves = [\u201c1 A B\u201d, \u201c2 A C\u201d, \u201c1 B C\u201d]",  # curly quotes, one string per move
        'moves = [["move disk 1 from A to B"], ["move disk 2 from A to C"], ["move disk 1 from B to C"]]',
    ],
)
def test_list_shapes(text):
    shape, moves = hanoi_moves(text)
    assert moves == OPT and shape == "assignment"


def test_last_assignment_wins_and_beats_later_examples():
    text = (
        "moves = [[1, A, C]]\nWait, that is wrong.\nmoves = [[1, A, B], [2, A, C], [1, B, C]]\n"
        "(for comparison, a 1-disk puzzle would be [[1, A, C]])"
    )
    assert hanoi_moves(text) == ("assignment", OPT)


def test_bare_list_of_lists_uses_the_last():
    text = "Example format [[9, X, Y]]. My solution: [[1, A, B], [2, A, C], [1, B, C]] done."
    shape, moves = hanoi_moves(text)
    assert shape == "list" and moves == OPT


@pytest.mark.parametrize(
    "text",
    [
        "1. Move disk 1 from A to B\n2. Move disk 2 from A to C\n3. Move disk 1 from B to C",
        "Step 1: disk 1 A -> B\nStep 2: disk 2 A -> C\nStep 3: disk 1 B -> C",
        "- Move disk 1 from peg A to peg B.\n- Move disk 2 from peg A to peg C.\n- Move disk 1 from peg B to peg C.",
        "Move disk 1 from A to B.\nMove disk 2 from A to C.\nMove disk 1 from B to C.",
        "1) 1 A B\n2) 2 A C\n3) 1 B C",
        "1. A \u2192 B\n2. A \u2192 C\n3. B \u2192 C",  # no disk number: the top disk moves
    ],
)
def test_line_shapes(text):
    shape, moves = hanoi_moves(text)
    assert shape == "lines"
    assert [(m[1], m[2]) for m in moves] == [(f, t) for _, f, t in OPT]


def test_unreadable_line_inside_the_block_is_kept_as_illegal():
    text = "1. Move disk 1 from A to B\n2. Now think about the next disk\n3. Move disk 1 from B to C"
    _, moves = hanoi_moves(text)
    assert moves == [(1, 0, 1), None, (1, 1, 2)]
    task = get_task("hanoi", n=2)
    p = task.problems(1)[0]
    d = json.loads(task.verify(p, text).detail)
    assert d["moves"] == 3 and d["first_illegal"] is not None and d["first_illegal"] <= 1


def test_plan_in_reasoning_then_final_numbered_list():
    text = (
        "1. First I should move the small disk.\n2. Then the big one.\n\n"
        "Some more thinking here.\nAnd more.\nAnd more prose.\n\n"
        "1. Move disk 1 from A to B\n2. Move disk 2 from A to C\n3. Move disk 1 from B to C"
    )
    assert hanoi_moves(text) == ("lines", OPT)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "I do not know.",
        "moves = [[1, A, B], [2, A",  # never closes: nothing trustworthy to read
        "The pegs are A, B and C; there are 2 disks.",
        "moves = []",
    ],
)
def test_nothing_to_read(text):
    task = get_task("hanoi", n=2)
    p = task.problems(1)[0]
    v = task.verify(p, text)
    assert not v.correct and v.rule == "none"
    assert json.loads(v.detail)["reason"] == "no move list found"


@pytest.mark.parametrize(
    "tokens",
    [
        ("1", "A"),
        ("1", "A", "D"),
        ("x", "A", "B"),
        ("1", "2", "3"),
        ("1", "A", "B", "C"),
        ("disk", "A", "B", "C"),
    ],
)
def test_hanoi_tokens_that_name_no_move(tokens):
    assert H.read_move(HI, tokens) is None


def test_ragged_list_item_is_an_illegal_move_at_its_index():
    _, moves = hanoi_moves('moves = [[1, "A", "B"], [2, "A"], [1, "B", "C"]]')
    assert moves == [(1, 0, 1), None, (1, 1, 2)]


def test_commas_inside_quotes_do_not_split_items():
    got = read_moves('moves = [["1, A, B"], [2, "A", "C"]]', H.read_line)
    assert [H.read_move(HI, t) for t in got.moves] == [(1, 0, 1), (2, 0, 2)]


def test_checker_formats():
    c = CheckerJumping()
    inst = {"n": 1, "red_left": True}
    for text in (
        'moves = [["R", 0, 1], ["B", 2, 0], ["R", 1, 2]]',
        "moves = [[red, 0, 1], [blue, 2, 0], [red, 1, 2]]",
        "1. Move R from 0 to 1\n2. Move B from 2 to 0\n3. Move R from 1 to 2",
        "1. red checker from square 0 to square 1\n2. blue 2 -> 0\n3. R 1 -> 2",
    ):
        got = read_moves(text, c.read_line)
        assert [c.read_move(inst, t) for t in got.moves] == [("R", 0, 1), ("B", 2, 0), ("R", 1, 2)], text


def test_river_formats():
    r = RiverCrossing()
    inst = r.instance(2, None)
    want = [frozenset({"A1", "a1"}), frozenset({"A1"})]
    for text in (
        'moves = [["A1", "a1"], ["A1"]]',
        'moves = [["A_1", "a_1"], "A_1"]',
        "moves = [[A1, a1], [A1]]",
        "1. A1 and a1 cross\n2. A1 returns",
    ):
        got = read_moves(text, r.read_line)
        assert [r.read_move(inst, t) for t in got.moves] == want, text
    assert r.read_move(inst, ("A1", "A1")) is None  # one person twice
    assert r.read_move(inst, ("A1", "captain")) is None


def test_blocks_formats():
    b = BlocksWorld()
    for text in (
        'moves = [["C", 1, 3], ["B", 2, 1]]',
        "moves = [[c, 1, 3], [b, 2, 1]]",
        "1. Move block C from stack 1 to stack 3\n2. Move block B from stack 2 to stack 1",
    ):
        got = read_moves(text, b.read_line)
        assert [b.read_move({}, t) for t in got.moves] == [("C", 1, 3), ("B", 2, 1)], text
    assert b.read_move({}, ("CD", "1", "3")) is None


def test_python_comments_inside_the_list_are_not_moves():
    """Models write the list as Python with a comment per move (seen on the default model): the
    comment's words and brackets must not merge into the next move or end the list early."""
    text = (
        "moves = [\n"
        '    [1, "A", "B"],  # Move disk 1 [smallest] from A to B\n'
        '    [2, "A", "C"],  // disk 2 goes to C]\n'
        '    [1, "B", "C"]  # done\n'
        "]"
    )
    assert hanoi_moves(text) == ("assignment", OPT)


def test_a_hash_inside_quotes_is_kept():
    got = read_moves('moves = [["1 # A", "B"], [2, "A", "C"]]', H.read_line)
    assert got.moves[0] == ("1", "#", "A", "B")  # read as written (then unreadable as a move)
    assert H.read_move(HI, got.moves[0]) is None and H.read_move(HI, got.moves[1]) == (2, 0, 2)


def test_numbered_lines_holding_list_items():
    text = 'So, the moves are:\n1. [1, "A", "B"]\n2. [2, "A", "C"],\n3. (1, B, C)  # last\n\nDone.'
    assert hanoi_moves(text) == ("lines", OPT)


def test_a_numbering_that_restarts_at_one_starts_the_final_list():
    """A numbered plan with bulleted moves, then "The complete sequence of moves is:" and a list
    numbered from 1 again (the w4 variant's answer): the final list is the answer, not the plan."""
    text = (
        "1. **Move the small disk:**\n   - Move disk 1 from peg A to peg C.\n"
        "2. **Then the big one:**\n   - Move disk 2 from peg A to peg B.\n\n"
        'The complete sequence of moves is:\n1. [1, "A", "B"]\n2. [2, "A", "C"]\n3. [1, "B", "C"]\n\nDone.'
    )
    assert hanoi_moves(text) == ("lines", OPT)
