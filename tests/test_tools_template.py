"""Tools through a real chat template: the packaged Qwen2.5 GGUF's own template (read from
its metadata: loading the whole tokenizer takes ~20 s) renders the schemas given as `tools=`,
the calls in its own format read back with our parser, tool results as tool responses; a
template without a tools section gets the schemas as system text."""

from __future__ import annotations

import json
import struct

import pytest
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

from thinkcost.models import PACKAGED, is_installed, resolve_model
from thinkcost.reasoning import prompt_tools, render_prompt
from thinkcost.tasks import get_task
from thinkcost.tasks.tools import env
from thinkcost.tasks.tools.calls import parse_calls


def gguf_chat_template(path) -> str:
    """The `tokenizer.chat_template` string of a GGUF file, read from its key-value header
    (key: u64 length + bytes; value type u32 = 8 for a string; then u64 length + bytes)."""
    key = b"tokenizer.chat_template"
    with open(path, "rb") as f:
        head = f.read(64 << 20)
    i = head.find(struct.pack("<Q", len(key)) + key)
    assert i > 0, "no chat template in the GGUF header"
    j = i + 8 + len(key)
    (kind,) = struct.unpack_from("<I", head, j)
    (n,) = struct.unpack_from("<Q", head, j + 4)
    assert kind == 8
    return head[j + 12 : j + 12 + n].decode("utf-8")


def tokenizer_with(template: str | None) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"[UNK]": 0}, unk_token="[UNK]")))
    tok.chat_template = template
    return tok


@pytest.fixture(scope="module")
def qwen():
    if not is_installed(PACKAGED["qwen2.5-coder-0.5b"]):
        pytest.fail(f"packaged model missing: {PACKAGED['qwen2.5-coder-0.5b'].install_hint}")
    src = resolve_model("qwen2.5-coder-0.5b")
    return tokenizer_with(gguf_chat_template(f"{src.path}/{src.gguf_file}"))


def test_qwen_template_renders_the_tool_schemas(qwen):
    p = get_task("tools").problems(1, 0)[0]
    text = render_prompt(qwen, p.messages)
    assert "<tools>" in text and "</tools>" in text and "<tool_call>" in text
    for schema in env.SCHEMAS:
        assert json.dumps(schema) in text  # every schema, in full, inside the system turn
    assert text.index("<tools>") < text.index("<|im_start|>user") and text.endswith("<|im_start|>assistant\n")
    assert text.startswith("<|im_start|>system\n" + p.messages[0]["content"])
    # without tools the same template renders no tools section
    assert "<tools>" not in render_prompt(
        qwen, [{k: v for k, v in m.items() if k != "tools"} for m in p.messages]
    )


def test_a_call_in_the_templates_own_format_reads_back(qwen):
    msgs = [
        {"role": "user", "content": "What is 6 times 7?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {"type": "function", "function": {"name": "calculator", "arguments": {"expression": "6*7"}}}
            ],
        },
    ]
    text = qwen.apply_chat_template(msgs, tools=env.SCHEMAS, tokenize=False)
    turn = text[text.rindex("<|im_start|>assistant") :]
    parsed = parse_calls(turn)
    assert [(c.name, c.arguments) for c in parsed.calls] == [("calculator", {"expression": "6*7"})]


def test_the_conversation_renders_results_as_tool_responses_without_doubled_calls(qwen):
    call = '<tool_call>\n{"name": "calculator", "arguments": {"expression": "6*7"}}\n</tool_call>'
    msgs = [
        {"role": "system", "content": "S", "tools": env.SCHEMAS},
        {"role": "user", "content": "What is 6 times 7?"},
        {
            "role": "assistant",
            "content": call,
            "tool_calls": [
                {"id": "call_0_0", "type": "function", "function": {"name": "calculator", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_0_0", "name": "calculator", "content": '{"result": "42"}'},
    ]
    text = render_prompt(qwen, msgs)
    assert (
        text.count('"arguments": {"expression": "6*7"}') == 1
    )  # the model's own text, not a second rendering
    assert '<tool_response>\n{"result": "42"}\n</tool_response>' in text
    assert text.endswith("<|im_start|>assistant\n")


def test_a_template_without_tools_gets_them_as_system_text():
    tok = tokenizer_with(
        "{% for m in messages %}[{{ m.role }}] {{ m.content }}\n{% endfor %}{% if add_generation_prompt %}[assistant]{% endif %}"
    )
    text = render_prompt(tok, [{"role": "user", "content": "Q", "tools": env.SCHEMAS[:1]}])
    assert text.startswith("[system] You can call these tools")
    assert json.dumps(env.SCHEMAS[0]) in text and "<tool_call>" in text and "[user] Q" in text
    text = render_prompt(
        tok, [{"role": "system", "content": "S", "tools": env.SCHEMAS}, {"role": "user", "content": "Q"}]
    )
    assert text.startswith("[system] S\n\nYou can call these tools")


def test_prompt_tools_takes_the_schemas_out_of_the_messages():
    msgs = [{"role": "system", "content": "S", "tools": env.SCHEMAS}, {"role": "user", "content": "Q"}]
    clean, tools = prompt_tools(msgs)
    assert tools == env.SCHEMAS and clean == [
        {"role": "system", "content": "S"},
        {"role": "user", "content": "Q"},
    ]
    assert msgs[0]["tools"] is env.SCHEMAS  # the caller's messages are untouched
    assert prompt_tools([{"role": "user", "content": "Q"}]) == ([{"role": "user", "content": "Q"}], None)
