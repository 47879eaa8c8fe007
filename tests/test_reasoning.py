from thinkcost.reasoning import open_think_at, split_reasoning


def test_think_block_closed_splits_inside_and_after():
    s = split_reasoning("<think>add 2 and 3</think>The answer is \\boxed{5}.")
    assert s.reasoning == "add 2 and 3"
    assert s.answer == "The answer is \\boxed{5}."
    assert not s.think_unclosed


def test_unclosed_think_is_all_reasoning_and_answer_empty():
    # the trace mentions a boxed value, but an unfinished think block must never be graded
    s = split_reasoning("<think>maybe \\boxed{5}? wait", finish_reason="length")
    assert s.think_unclosed
    assert s.answer == ""
    assert "\\boxed{5}" in s.reasoning


def test_close_tag_only_when_template_opened_think_in_prompt():
    s = split_reasoning("step one\nstep two</think>\n\\boxed{7}")
    assert s.reasoning == "step one\nstep two"
    assert s.answer == "\\boxed{7}"


def test_no_tags_answer_starts_at_line_of_last_marker():
    text = "First, 2+3=5.\nThen \\boxed{4} was wrong.\nSo the final answer is \\boxed{5}."
    s = split_reasoning(text)
    assert s.answer == "So the final answer is \\boxed{5}."
    assert s.reasoning == "First, 2+3=5.\nThen \\boxed{4} was wrong.\n"
    assert text[s.answer_start :].strip() == s.answer


def test_no_marker_last_line_is_answer_unless_cut_by_length():
    text = "Let me see.\n2 + 3 = 5\n5"
    assert split_reasoning(text).answer == "5"
    cut = split_reasoning(text, finish_reason="length")
    assert cut.answer == "" and cut.reasoning == text


def test_answer_label_at_line_start_is_a_marker():
    s = split_reasoning("We add.\n**Answer:** 12")
    assert s.answer == "**Answer:** 12"


def test_open_think_at():
    t = "<think>a STOP b</think> c STOP"
    assert open_think_at(t, t.index("STOP"))
    assert not open_think_at(t, t.rindex("STOP"))
    assert not open_think_at("no tags STOP", 8)


def test_a_fenced_code_block_is_the_answer_when_no_marker_is_present():
    text = "I will loop over pairs.\n\n```python\ndef f(x):\n    return x\n```\n"
    sp = split_reasoning(text, "stop")
    assert sp.reasoning == "I will loop over pairs.\n\n" and sp.answer.startswith("```python\ndef f(x):")
    two = "```python\nold()\n```\nBetter:\n```python\nnew()\n```"
    assert split_reasoning(two, "stop").answer == "```python\nnew()\n```"
    # an unterminated block cut by the cap is not an answer; one ended by EOS is
    cut = "Plan.\n```python\ndef f(x):\n    retu"
    assert split_reasoning(cut, "length").answer == ""
    assert split_reasoning(cut, "stop").answer.startswith("```python")
    # a final-answer marker still wins over a code block before it
    marked = "```\n1+1\n```\nThe answer is 2"
    assert split_reasoning(marked, "stop").answer == "The answer is 2"


def test_a_task_answer_marker_starts_the_answer_at_its_line():
    """Without think tags the answer is the last line unless a marker says otherwise; a puzzle's
    `moves = [` line is one (its move list is not the last line when prose follows)."""
    text = "Let me think.\nmoves = [[1, 'A', 'C']]\n\nThis completes the puzzle."
    assert split_reasoning(text).answer == "This completes the puzzle."
    sp = split_reasoning(text, "stop", r"\bmoves\s*[:=]\s*\[")
    assert sp.answer.startswith("moves = [[1") and sp.reasoning == "Let me think.\n"
    # the later of a generic marker and the task's wins
    late = "moves = [[9]]\nThe answer is moves = [[1]]"
    assert split_reasoning(late, "stop", r"\bmoves\s*=\s*\[").answer == "The answer is moves = [[1]]"
    assert (
        split_reasoning("moves = [[1]]\nFinal answer: x", "stop", r"moves = \[").answer == "Final answer: x"
    )
