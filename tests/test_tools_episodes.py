"""Tool episodes through the runner with a scripted model: calls run in the environment,
errors are outcomes, tokens and seconds are summed over turns exactly, one row per episode,
and a rerun resumes. Also the openai engine's wire form of tools and streamed tool calls."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from scripted_engine import STEP_S, ScriptedEngine, WordTokenizer
from thinkcost.engines.openai.client import wire_messages
from thinkcost.engines.openai.stream import build_parts, parse_stream
from thinkcost.episodes import MALFORMED_REPLY
from thinkcost.errors import UserError
from thinkcost.pipeline import run
from thinkcost.spec import build_spec
from thinkcost.store import Store
from thinkcost.tasks import get_task
from thinkcost.tasks.tools.calls import render_call
from thinkcost.types import Completion

TWO = get_task("tools", min_calls=2, max_calls=2).problems(2, 0)


def _spec(tmp_path, limit=1, **opts):
    return build_spec(
        {},
        {
            "task": "tools",
            "task_options": {"min_calls": 2, "max_calls": 2, **opts},
            "limit": limit,
            "variants": "base",
            "store": tmp_path / "s.sqlite",
            "out": tmp_path / "out",
            "n_boot": 100,
            "max_new_tokens": 64,
        },
    )


def _rows(tmp_path):
    g = Store(tmp_path / "s.sqlite", create=False).generations()
    return [r for _, r in g.sort_values("problem_id").iterrows()]


def _turn(req) -> int:
    return sum(m["role"] == "assistant" for m in req.prompt_messages)


def _problem(req):
    return next(p for p in TWO if p.messages[1]["content"] == req.prompt_messages[1]["content"])


def _call(i, p):
    return render_call(**p.meta["chain"][i])


def _prompt_tokens(messages) -> int:  # the scripted engine's rule: all contents, word pieces
    return len(WordTokenizer().encode(" ".join(m["content"] for m in messages)))


def test_correct_episode_sums_tokens_and_seconds_over_turns(tmp_path):
    p = TWO[0]
    scripts = [
        ["I", " need", " the", " record.\n", _call(0, p)],
        [_call(1, p)],
        ["Adding", " up.\n", "The", " answer", " is", f" \\boxed{{{p.gold}}}."],
    ]
    prompts = []

    def script(req, sid):
        prompts.append(req.prompt_messages)
        return scripts[_turn(req)]

    eng = ScriptedEngine(script)
    run(_spec(tmp_path), Console(quiet=True), engine=eng)
    (row,) = _rows(tmp_path)
    d = json.loads(row.verdict_detail)
    # per turn: its entries + EOS; reasoning: the words before the call, none, "Adding up.\n"
    assert row.completion_tokens == 6 + 2 + 7
    assert row.reasoning_tokens == 4 + 0 + 2
    assert row.answer_tokens == 1 + 1 + 4  # the calls, and the answer line (EOS is neither)
    assert row.prompt_tokens == sum(_prompt_tokens(m) for m in prompts)
    assert row.latency_s == pytest.approx((6 + 2 + 7) * STEP_S) and row.cost_s == pytest.approx(0.15)
    assert row.correct == 1 and row.extracted == p.gold and row.finish_reason == "stop"
    assert d["outcome"] == "answer" and d["turns"] == 3 and d["n_calls"] == 2 and d["call_errors"] == {}
    assert [c["name"] for c in d["calls"]] == [c["name"] for c in p.meta["chain"]]
    assert d["tokens_per_turn"] == [6, 2, 7]
    # the model read each result as a tool message, and the transcript holds them in order
    tool_msgs = [m for m in prompts[2] if m["role"] == "tool"]
    assert [m["tool_call_id"] for m in tool_msgs] == ["call_0_0", "call_1_0"]
    assert json.loads(tool_msgs[0]["content"])["item"] == p.meta["chain"][0]["arguments"]["item"]
    assert row.text.index("<tool_response>") < row.text.index(_call(1, p)) < row.text.index("\\boxed")
    assert prompts[0][0]["tools"][0]["function"]["name"] == "calculator"  # schemas travel in the prompt


def test_turns_of_all_live_episodes_are_batched_and_rerun_resumes(tmp_path):
    def script(req, sid):
        p, t = _problem(req), _turn(req)
        return [_call(t, p)] if t < 2 else [f"\\boxed{{{p.gold}}}"]

    eng = ScriptedEngine(script)
    res = run(_spec(tmp_path, limit=2), Console(quiet=True), engine=eng)
    assert [len(b) for b in eng.calls] == [2, 2, 2]  # one generate per turn, both episodes in it
    assert res.rows[0].n_correct == 2 and len(_rows(tmp_path)) == 2
    again = ScriptedEngine(script)
    run(_spec(tmp_path, limit=2), Console(quiet=True), engine=again)
    assert again.calls == []


def test_malformed_json_is_reported_back_and_the_model_recovers(tmp_path):
    p = TWO[0]
    seen = []

    def script(req, sid):
        t = _turn(req)
        seen.append(req.prompt_messages[-1]["content"])
        return [['<tool_call>\n{"name": "lookup_product", "arguments": {"item": \n</tool_call>'],
                [_call(0, p)], [_call(1, p)], [f"\\boxed{{{p.gold}}}"]][t]  # fmt: skip

    run(_spec(tmp_path), Console(quiet=True), engine=ScriptedEngine(script))
    (row,) = _rows(tmp_path)
    d = json.loads(row.verdict_detail)
    assert seen[1] == MALFORMED_REPLY
    assert d["outcome"] == "answer" and d["call_errors"] == {"malformed-call": 1} and row.correct == 1
    assert d["turns"] == 4 and d["n_calls"] == 2


@pytest.mark.parametrize(
    "bad, kind",
    [
        (render_call("web_search", {"q": "price"}), "unknown-tool"),
        (render_call("calculator", {"expr": "1+1"}), "bad-arguments"),
        (render_call("calculator", {"expression": "1/0"}), "bad-arguments"),
        ("<tool_call>{nope}</tool_call>", "malformed-call"),
    ],
)
def test_call_errors_continue_or_stop(tmp_path, bad, kind):
    p = TWO[0]

    def script(req, sid):
        t = _turn(req)
        return [[bad], [_call(0, p)], [_call(1, p)], [f"\\boxed{{{p.gold}}}"]][t]

    run(_spec(tmp_path / "go"), Console(quiet=True), engine=ScriptedEngine(script))
    (row,) = _rows(tmp_path / "go")
    d = json.loads(row.verdict_detail)
    assert d["outcome"] == "answer" and d["call_errors"] == {kind: 1} and row.correct == 1
    run(_spec(tmp_path / "stop", on_error="stop"), Console(quiet=True), engine=ScriptedEngine(script))
    (row,) = _rows(tmp_path / "stop")
    d = json.loads(row.verdict_detail)
    assert d["outcome"] == kind and d["turns"] == 1 and row.correct == 0 and row.completion_tokens == 2


def test_a_model_that_keeps_calling_stops_at_the_turn_limit(tmp_path):
    eng = ScriptedEngine(lambda req, sid: ["Again.\n", render_call("calculator", {"expression": "1+1"})])
    run(_spec(tmp_path, max_turns=3), Console(quiet=True), engine=eng)
    (row,) = _rows(tmp_path)
    d = json.loads(row.verdict_detail)
    assert d["outcome"] == "turn-limit" and d["turns"] == 3 and d["n_calls"] == 3 and row.correct == 0
    assert row.completion_tokens == 3 * 3 and row.reasoning_tokens == 3 * 1 and len(eng.calls) == 3


def test_a_turn_cut_by_the_cap_ends_the_episode(tmp_path):
    eng = ScriptedEngine(lambda req, sid: ["word"] * 100)
    run(_spec(tmp_path), Console(quiet=True), engine=eng)
    (row,) = _rows(tmp_path)
    d = json.loads(row.verdict_detail)
    assert d["outcome"] == "length" and row.finish_reason == "length" and row.completion_tokens == 64


class FailingTurn(ScriptedEngine):
    """The scripted engine, but the second turn of every episode fails as a server would."""

    def generate(self, requests, on_complete=None):
        out = super().generate(requests, on_complete)
        if any(m["role"] == "tool" for m in requests[0].prompt_messages):
            return [Completion("", "", "", 0, 0, 0, 0, "error", 0.0, 0.0, 0.0, error="HTTP 503") for _ in out]
        return out


def test_an_engine_failure_is_stored_and_retried_on_rerun(tmp_path):
    p = TWO[0]

    def script(req, sid):
        t = _turn(req)
        return [[_call(0, p)], [_call(1, p)], [f"\\boxed{{{p.gold}}}"]][t]

    run(_spec(tmp_path), Console(quiet=True), engine=FailingTurn(script))
    (row,) = _rows(tmp_path)
    assert row.finish_reason == "error" and json.loads(row.verdict_detail)["outcome"] == "error"
    assert row.error == "HTTP 503" and row.correct == 0
    run(_spec(tmp_path), Console(quiet=True), engine=ScriptedEngine(script))
    (row,) = _rows(tmp_path)
    assert row.finish_reason == "stop" and row.correct == 1


def test_short_m_at_k_is_refused_on_episodes(tmp_path):
    spec = _spec(tmp_path).model_copy(update={"strategy": ["short-1@2"]})
    with pytest.raises(UserError, match="episodic"):
        run(spec, Console(quiet=True), engine=ScriptedEngine(lambda r, s: ["x"]))


def test_openai_wire_form_of_tools_calls_and_results():
    tools = [{"type": "function", "function": {"name": "calculator", "parameters": {}}}]
    call = render_call("calculator", {"expression": "1+1"})
    msgs = [
        {"role": "system", "content": "S", "tools": tools},
        {"role": "user", "content": "Q"},
        {
            "role": "assistant",
            "content": "Let me see.\n" + call,
            "tool_calls": [
                {"id": "call_0_0", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_0_0", "name": "calculator", "content": '{"result": "2"}'},
    ]
    wire, got = wire_messages(msgs)
    assert got == tools and "tools" not in wire[0]
    assert wire[2]["content"] == "Let me see." and wire[2]["tool_calls"][0]["id"] == "call_0_0"
    assert wire[3] == {"role": "tool", "tool_call_id": "call_0_0", "content": '{"result": "2"}'}
    wire, got = wire_messages([{"role": "user", "content": "Q"}])
    assert got is None and wire == [{"role": "user", "content": "Q"}]


def test_streamed_tool_calls_become_tagged_calls_in_the_text():
    def chunk(delta, finish=None):
        return "data: " + json.dumps({"choices": [{"delta": delta, "finish_reason": finish}]})

    lines = [
        chunk({"content": "Checking."}),
        chunk(
            {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "calculator", "arguments": ""}}]}
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"expression": '}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"2*3"}'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "c2", "function": {"name": "lookup_product", "arguments": "{bad"}}
                ]
            }
        ),
        chunk({}, "tool_calls"),
        "data: [DONE]",
    ]
    parts = build_parts(parse_stream(lines), "stop")
    from thinkcost.tasks.tools.calls import parse_calls

    parsed = parse_calls(parts.text)
    assert parts.text.startswith("Checking.\n<tool_call>")
    assert [(c.name, c.arguments) for c in parsed.calls] == [
        ("calculator", {"expression": "2*3"}),
        ("lookup_product", "{bad"),  # not JSON: kept as text, the environment calls it bad arguments
    ]
