"""The tool-call reader against the formats models really write and the ways they get them wrong."""

from __future__ import annotations

import json

import pytest

from thinkcost.tasks.tools.calls import parse_calls, render_call

QWEN = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n</tool_call>'


def names_args(text):
    p = parse_calls(text)
    return [(c.name, c.arguments) for c in p.calls], p


def test_qwen_native_call_is_read_with_the_prose_around_it():
    calls, p = names_args("Let me compute.\n" + QWEN + "\n")
    assert calls == [("calculator", {"expression": "2 + 3"})]
    assert p.form == "tagged" and not p.malformed and p.prose == "Let me compute."


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>{"name":"calculator","arguments":{"expression":"2 + 3"}}</tool_call>',
        '  < tool_call >\n\n  {"name": "calculator",\n "arguments": {"expression": "2 + 3"}}  \n</ TOOL_CALL>',
        '<tool_call>\n```json\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}\n```\n</tool_call>',
        '<tool_call>\n{"name": "calculator", "parameters": {"expression": "2 + 3"}}\n</tool_call>',
        '<tool_call>\n{"name": "calculator", "arguments": "{\\"expression\\": \\"2 + 3\\"}"}\n</tool_call>',
        "<tool_call>\n{'name': 'calculator', 'arguments': {'expression': '2 + 3'}}\n</tool_call>",
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}}',  # cut before the close
        '<tool_call>\n{"type": "function", "function": {"name": "calculator", "arguments": {"expression": "2 + 3"}}}'
        "\n</tool_call>",
    ],
)
def test_tolerated_variants_of_one_call(text):
    calls, p = names_args(text)
    assert calls == [("calculator", {"expression": "2 + 3"})] and not p.malformed


def test_several_calls_in_blocks_in_one_block_and_as_a_list():
    a = {"name": "lookup_product", "arguments": {"item": "red lamp"}}
    b = {"name": "calculator", "arguments": {"expression": "1+1"}}
    want = [(a["name"], a["arguments"]), (b["name"], b["arguments"])]
    assert names_args(render_call(**a) + "\n" + render_call(**b))[0] == want
    assert names_args(f"<tool_call>\n{json.dumps(a)}\n{json.dumps(b)}\n</tool_call>")[0] == want
    assert names_args(f"<tool_call>{json.dumps([a, b])}</tool_call>")[0] == want
    # a second block opened before the first was closed: both read
    assert names_args(f"<tool_call>{json.dumps(a)}<tool_call>{json.dumps(b)}</tool_call>")[0] == want


@pytest.mark.parametrize(
    "text",
    [
        '<tool_call>\n{"name": "calculator", "arguments": {"expression": "2 + 3"}\n</tool_call>',  # brace missing
        "<tool_call>\ncalculator(expression='2+3')\n</tool_call>",
        "<tool_call></tool_call>",
        '<tool_call>{"arguments": {"x": 1}}</tool_call>',  # no name
        '<tool_call>"calculator"</tool_call>',
        '<tool_call>{"name": "calculator", "arguments": {"expression": "1"}} trailing junk</tool_call>',
    ],
)
def test_unreadable_tagged_blocks_are_malformed_not_errors(text):
    calls, p = names_args(text)
    assert calls == [] and len(p.malformed) == 1 and p.form == "tagged"


def test_a_good_block_next_to_a_bad_one_keeps_the_good_call():
    calls, p = names_args(QWEN + "\n<tool_call>{oops</tool_call>")
    assert calls == [("calculator", {"expression": "2 + 3"})] and len(p.malformed) == 1


def test_untagged_calls_bare_or_fenced():
    fenced = 'I will use a tool.\n```json\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n```'
    calls, p = names_args(fenced)
    assert calls == [("calculator", {"expression": "6*7"})] and p.form == "untagged"
    calls, _ = names_args('Calling {"name": "calculator", "arguments": {"expression": "6*7"}} now')
    assert calls == [("calculator", {"expression": "6*7"})]


def test_plain_answers_and_json_that_is_not_a_call_are_not_calls():
    for text in [
        "The answer is \\boxed{42}.",
        'The record is {"item": "red lamp", "price_usd": "12.5"} so \\boxed{12.5}',
        '{"name": "Bob"} has 3 apples',  # a name but no arguments
        "",
        "{",
        "} {{ ]",
    ]:
        calls, p = names_args(text)
        assert calls == [] and p.malformed == [] and p.form is None, text


def test_untagged_keys_that_do_not_parse_are_a_malformed_call():
    calls, p = names_args('```json\n{"name": "calculator", "arguments": {"expression": "6*7"\n```')
    assert calls == [] and len(p.malformed) == 1


def test_arguments_that_are_not_json_stay_a_string():
    calls, _ = names_args('<tool_call>{"name": "calculator", "arguments": "expression=2+3"}</tool_call>')
    assert calls == [("calculator", "expression=2+3")]


def test_non_string_input_is_no_call():
    assert parse_calls(None).calls == []  # type: ignore[arg-type]
