"""The `openai` engine: the stream parser on literal lines, refusals before any HTTP, and the
real thing against llama-cpp-python's server (SmolLM2-135M Q4_1), directly and through a
fault-injecting proxy.

The server runs with n_batch 1: llama.cpp's logits depend on how many tokens are evaluated
together, and the server reuses the cached prompt prefix of the previous request, so with
batched prefill a greedy run could differ from the same run in another order. One token per
eval makes greedy output independent of the order requests arrive in, so texts through the
proxy (with retries) can be compared with the direct ones exactly.
"""

from __future__ import annotations

import asyncio
import email.utils
import socket
import time
from collections import Counter

import httpx
import pytest

from fault_proxy import FaultProxy
from llama_server import needs_llama_server, serve, smollm_gguf
from thinkcost.engines.openai import (
    OpenAIEngine,
    StreamError,
    build_parts,
    list_models,
    parse_stream,
)
from thinkcost.engines.openai.retry import retry_after
from thinkcost.errors import UserError
from thinkcost.reasoning import format_of, split_reasoning
from thinkcost.types import Completion, Request


def chunk(content=None, reasoning=None, key="reasoning_content", finish=None, logprobs=None) -> str:
    import json

    delta = {}
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta[key] = reasoning
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    if logprobs is not None:
        choice["logprobs"] = {"content": [{"token": "t", "logprob": x} for x in logprobs]}
    return "data: " + json.dumps({"choices": [choice]})


USAGE = 'data: {"choices": [], "usage": {"prompt_tokens": 11, "completion_tokens": 9, "completion_tokens_details": {"reasoning_tokens": 6}}}'


# --- parser --------------------------------------------------------------------------------------


def test_content_only_stream():
    lines = [
        chunk(""),
        "",
        chunk("The answer"),
        "",
        ": ping",
        chunk(" is 4."),
        "",
        chunk(finish="stop"),
        "data: [DONE]",
    ]
    p = parse_stream(lines)
    assert "".join(p.content) == "The answer is 4."
    assert p.finish_reason == "stop" and p.deltas == 2 and p.usage is None and not p.logprobs
    parts = build_parts(p, "stop")
    assert parts.text == "The answer is 4." and parts.answer_text == "The answer is 4."
    assert parts.completion_tokens == 2 and parts.source == "deltas"


@pytest.mark.parametrize("key", ["reasoning_content", "reasoning"])
def test_reasoning_field(key):
    lines = [
        chunk(reasoning="Two plus ", key=key),
        chunk(reasoning="two.", key=key),
        chunk(content=" 4 "),
        chunk(finish="stop"),
        "data: [DONE]",
    ]
    parts = build_parts(parse_stream(lines), "stop")
    assert parts.text == "<think>Two plus two.</think> 4 "
    assert (parts.reasoning_text, parts.answer_text, parts.think_unclosed) == ("Two plus two.", "4", False)
    again = split_reasoning(parts.text)
    assert (again.reasoning, again.answer) == (parts.reasoning_text, parts.answer_text)
    assert (parts.completion_tokens, parts.reasoning_tokens) == (3, 2)  # deltas


def test_reasoning_field_cut_before_answer_stays_open():
    lines = [chunk(reasoning="hmm"), chunk(finish="length"), "data: [DONE]"]
    parts = build_parts(parse_stream(lines), "length")
    assert parts.text == "<think>hmm" and parts.think_unclosed and parts.answer_text == ""


def test_think_tags_in_content_with_tokenizer():
    lines = [chunk("<think>a b c"), chunk("</think>"), chunk("42"), chunk(finish="eos"), "data: [DONE]"]
    p = parse_stream(lines)
    parts = build_parts(p, "stop", count_tokens=lambda s: len(s.split()))
    assert (parts.reasoning_text, parts.answer_text) == ("a b c", "42")
    assert parts.source == "tokenizer"
    assert parts.completion_tokens == len(["<think>a", "b", "c</think>42"])
    assert parts.reasoning_tokens == 3


def test_char_share_fallback_without_reasoning_field():
    lines = [chunk("<think>abcdefgh"), chunk("</think>"), chunk("xy"), chunk(finish="stop"), "data: [DONE]"]
    parts = build_parts(parse_stream(lines), "stop")
    text = "<think>abcdefgh</think>xy"
    assert parts.completion_tokens == 3
    assert parts.reasoning_tokens == round(3 * len("abcdefgh") / len(text))


def test_usage_chunk_and_logprobs():
    lines = [
        chunk(reasoning="r", logprobs=[-0.5]),
        chunk(content="ok", logprobs=[-0.25, -0.125]),
        chunk(finish="length"),
        USAGE,
        "data: [DONE]",
    ]
    p = parse_stream(lines)
    assert p.logprobs == [-0.5, -0.25, -0.125]
    parts = build_parts(p, "length")
    assert parts.source == "usage"
    assert (parts.prompt_tokens, parts.completion_tokens, parts.reasoning_tokens) == (11, 9, 6)


def test_model_tokenizer_counts_before_server_usage():
    """The README's rule: the model's own tokenizer first (the same counts on every engine), the
    server's usage only without it; the source is recorded per row."""
    lines = [chunk(reasoning="a b c"), chunk(content=" d e"), chunk(finish="stop"), USAGE, "data: [DONE]"]
    parts = build_parts(parse_stream(lines), "stop", count_tokens=lambda s: len(s.split()))
    assert parts.source == "tokenizer"
    assert (parts.completion_tokens, parts.reasoning_tokens) == (len(["a", "b", "c", "d", "e"]), 3)
    assert build_parts(parse_stream(lines), "stop").source == "usage"  # no tokenizer: the server's figures


def test_content_splits_by_the_models_own_format_without_a_reasoning_field():
    """A server without a reasoning parser returns an R1-style trace in the content: the
    template opened <think>, so everything up to </think> is reasoning, and a trace cut by the
    cap is all reasoning with an empty answer (the heuristic would grade the \\boxed{5})."""
    tip = format_of("think-in-prompt")
    closed = [chunk("Compute: 3*4=12"), chunk("</think>"), chunk("12"), chunk(finish="stop"), "data: [DONE]"]
    parts = build_parts(parse_stream(closed), "stop", fallback=tip)
    assert (parts.reasoning_text, parts.answer_text, parts.reasoning_format) == (
        "Compute: 3*4=12",
        "12",
        "think-in-prompt",
    )
    cut = [chunk("Maybe \\boxed{5}? Wait"), chunk(finish="length"), "data: [DONE]"]
    parts = build_parts(parse_stream(cut), "length", count_tokens=lambda s: len(s.split()), fallback=tip)
    assert parts.think_unclosed and parts.answer_text == ""
    assert parts.reasoning_tokens == parts.completion_tokens == 3
    assert build_parts(parse_stream(cut), "length").answer_text != ""  # the heuristic would grade it
    field = [chunk(reasoning="r"), chunk(content="ok"), chunk(finish="stop"), "data: [DONE]"]
    assert build_parts(parse_stream(field), "stop", fallback=tip).reasoning_format == "server-field"


def test_answer_logprobs_by_character_position():
    def lp_chunk(pieces, reasoning=False):
        import json

        text = "".join(t for t, _ in pieces)
        delta = {"reasoning_content" if reasoning else "content": text}
        lps = [{"token": t, "logprob": x} for t, x in pieces]
        return "data: " + json.dumps(
            {"choices": [{"index": 0, "delta": delta, "logprobs": {"content": lps}}]}
        )

    lines = [
        lp_chunk([("Work", -1.0), (" it", -2.0)]),
        lp_chunk([("\nThe", -0.5), (" answer", -0.25), (" is", -0.125), (" 4", -0.0625)]),
        chunk(finish="stop"),
        "data: [DONE]",
    ]
    parts = build_parts(parse_stream(lines), "stop")
    assert parts.answer_text == "The answer is 4"
    assert parts.answer_logprobs == [-0.5, -0.25, -0.125, -0.0625]  # not the reasoning's -1, -2
    with_field = [
        lp_chunk([("think", -3.0)], reasoning=True),
        lp_chunk([("4", -0.5)]),
        chunk(finish="stop"),
        "data: [DONE]",
    ]
    assert build_parts(parse_stream(with_field), "stop").answer_logprobs == [-0.5]


def test_thinking_switch_is_sent_as_chat_template_kwargs():
    from thinkcost.engines.openai.client import _Sample

    req = Request([{"role": "user", "content": "hi"}])
    on = OpenAIEngine("http://x/v1", "m", thinking="on")._body(_Sample(0, req, 0))
    assert on["chat_template_kwargs"] == {"enable_thinking": True}
    assert "chat_template_kwargs" not in OpenAIEngine("http://x/v1", "m")._body(_Sample(0, req, 0))


def test_cancelled_ignores_usage_and_splits_as_cut():
    p = parse_stream([chunk("some partial thought"), chunk(finish="stop"), USAGE, "data: [DONE]"])
    parts = build_parts(p, "cancelled")
    assert parts.completion_tokens == 1 and parts.answer_text == ""  # split as "length"


@pytest.mark.parametrize(
    "lines",
    [
        [chunk("a"), chunk(finish="stop")],  # no [DONE]
        [chunk("a"), "data: [DONE]"],  # no finish_reason
        [chunk("a")],
    ],
)
def test_truncated_stream_is_an_error(lines):
    with pytest.raises(StreamError, match="truncated stream"):
        parse_stream(lines)


def test_malformed_json_is_an_error():
    with pytest.raises(StreamError, match="malformed JSON"):
        parse_stream([chunk("a"), 'data: {"choices": [', "", chunk(finish="stop"), "data: [DONE]"])
    with pytest.raises(StreamError, match="malformed JSON"):
        parse_stream([chunk("a"), 'data: {"choices": ['])  # cut: never completed


def test_error_object_in_stream():
    with pytest.raises(StreamError, match="error in stream: overloaded"):
        parse_stream([chunk("a"), 'data: {"error": {"message": "overloaded"}}'])


# --- refusals and failures without a server ------------------------------------------------------


def closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


MSG = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"think_budget": 8}, "think_budget"), ({"max_waits": 1}, "max_waits"), ({"penalty": 1.0}, "penalty")],
)
def test_unsupported_fields_refused_before_any_http(kw, field):
    eng = OpenAIEngine(closed_port_url(), "m", max_retries=0)
    calls = []
    reqs = [Request(MSG), Request(MSG, **kw)]
    with pytest.raises(ValueError, match=f"Request.{field}"):
        eng.generate(reqs, lambda *a: calls.append(a))
    assert calls == [] and eng.retry_log == []


def test_short_mk_wider_than_concurrency_refused():
    eng = OpenAIEngine(closed_port_url(), "m", concurrency=2)
    with pytest.raises(ValueError, match="concurrency is 2"):
        eng.generate([Request(MSG, n=3, stop_after=1, temperature=0.5)])


def test_unreachable_server_gives_error_completions_inside_a_running_loop():
    eng = OpenAIEngine(closed_port_url(), "m", max_retries=1, backoff_s=0.0)
    calls = []

    async def main() -> list[Completion]:
        return eng.generate([Request(MSG, n=2)], lambda *a: calls.append(a))  # loop already running

    out = asyncio.run(main())
    assert [c.finish_reason for c in out] == ["error", "error"]
    assert all(c.error == "connection error (ConnectError) after 2 attempts" and c.attempts == 2 for c in out)
    assert sorted((k, i) for k, i, _ in calls) == [(0, 0), (0, 1)]
    assert [(r["request"], r["attempt"]) for r in eng.retry_log] == [(0, 1), (0, 1)]


def test_list_models_unreachable_is_a_user_error():
    url = closed_port_url()
    with pytest.raises(UserError, match=f"{url}/models"):
        list_models(url, timeout_s=2)


# --- against llama-cpp-python's server -----------------------------------------------------------

PROMPTS = [
    "What is 2+3?",
    "Name a color.",
    "Write a short poem about the sea.",
    "What is the capital of France?",
    "Count from 1 to 10.",
    "Explain gravity in one sentence.",
]
MAX_NEW = 24


def requests_() -> list[Request]:
    return [
        Request([{"role": "user", "content": p}], max_new_tokens=MAX_NEW, temperature=0.0) for p in PROMPTS
    ]


@pytest.fixture(scope="module")
def server():
    needs_llama_server()
    # one thread: on a busy 2-core machine two llama.cpp threads can stall for seconds per token
    with serve(smollm_gguf(), n_threads=1, extra_args=("--n_batch", "1", "--n_ubatch", "1")) as url:
        yield url


def run(engine: OpenAIEngine, reqs: list[Request]):
    calls: list[tuple[int, int, Completion]] = []
    t0 = time.perf_counter()
    out = engine.generate(reqs, lambda k, i, c: calls.append((k, i, c)))
    return out, calls, time.perf_counter() - t0


def once_each(reqs: list[Request], calls) -> None:
    want = Counter((k, i) for k, r in enumerate(reqs) for i in r.samples)
    assert Counter((k, i) for k, i, _ in calls) == want and set(want.values()) == {1}


@pytest.fixture(scope="module")
def direct(server):
    eng = OpenAIEngine(server, "smollm2", concurrency=2)
    reqs = requests_()
    out, calls, wall = run(eng, reqs)
    return eng, reqs, out, calls, wall


def test_direct_results(server, direct):
    eng, reqs, out, calls, wall = direct
    assert len(out) == len(reqs)
    once_each(reqs, calls)
    assert [c for _, _, c in sorted(calls, key=lambda x: x[0])] == out
    assert all(c.finish_reason in ("stop", "length") and c.text and c.error is None for c in out)
    assert all(c.attempts == 1 and c.latency_s >= c.ttft_s > 0 for c in out)
    assert eng.retry_log == []
    # llama-cpp-python sends no usage in streams: counts come from the deltas (one per token),
    # and equal the usage the same greedy request reports without streaming
    assert eng.token_count_source == "deltas"
    for r, c in zip(reqs, out, strict=True):
        body = {"model": "m", "messages": r.prompt_messages, "max_tokens": MAX_NEW, "temperature": 0.0}
        ref = httpx.post(f"{server}/chat/completions", json=body, timeout=120).json()
        assert ref["choices"][0]["message"]["content"] == c.text
        assert c.completion_tokens == ref["usage"]["completion_tokens"]
        assert c.reasoning_tokens + c.answer_tokens == c.completion_tokens
        assert (c.finish_reason == "length") == (c.completion_tokens == MAX_NEW)
    total = sum(c.cost_s for c in out)
    assert 0 < total <= wall


def test_list_models(server):
    assert list_models(server) == [str(smollm_gguf())]


def test_every_fault_is_retried(server, direct):
    """One request at a time, so the k-th POST is the k-th attempt of the first request: the
    retry log must list exactly the injected faults, in order."""
    plan = ["delay:8", "500", "429:1", "reset", "truncate", "malformed"]
    reqs = direct[1]
    with FaultProxy(server, plan) as proxy:
        eng = OpenAIEngine(
            proxy.base_url, "smollm2", concurrency=1, idle_timeout_s=3, max_retries=8, backoff_s=0.01
        )
        out, calls, _ = run(eng, reqs)
    once_each(reqs, calls)
    assert [c.text for c in out] == [c.text for c in direct[2]]
    assert [c.finish_reason for c in out] == [c.finish_reason for c in direct[2]]
    assert [c.attempts for c in out] == [7, 1, 1, 1, 1, 1]
    log = eng.retry_log
    assert [(r["request"], r["sample"], r["attempt"]) for r in log] == [(0, 0, a) for a in range(1, 7)]
    reasons = [r["reason"] for r in log]
    assert reasons[0] == "timeout (ReadTimeout)"
    assert reasons[1].startswith("HTTP 500: injected fault 500")
    assert reasons[2].startswith("HTTP 429: injected fault 429")
    assert reasons[3].startswith("connection error (")
    assert reasons[4] == "truncated stream"
    assert reasons[5].startswith("malformed JSON in stream")
    assert log[2]["wait_s"] == 1.0  # Retry-After honoured
    assert all(0 <= r["wait_s"] <= 0.01 * 2 ** (r["attempt"] - 1) for i, r in enumerate(log) if i != 2)
    assert [e["outcome"] for e in proxy.log[:6]] == [
        "client gone",
        "injected 500",
        "injected 429",
        "reset",
        "truncated after 2 events",
        "malformed",
    ]


def test_persistent_failure_comes_back_as_error(server, direct):
    retries = 3
    reqs = direct[1]
    with FaultProxy(server, lambda k: "500" if k <= retries else None) as proxy:
        eng = OpenAIEngine(proxy.base_url, "smollm2", concurrency=1, max_retries=retries, backoff_s=0.01)
        out, calls, _ = run(eng, reqs)
    once_each(reqs, calls)
    bad = out[0]
    assert bad.finish_reason == "error" and bad.attempts == retries + 1
    assert bad.error == f"HTTP 500: injected fault 500 after {retries + 1} attempts"
    assert (bad.text, bad.completion_tokens, bad.logprobs) == ("", 0, None)
    assert [c.text for c in out[1:]] == [c.text for c in direct[2][1:]]
    assert len(eng.retry_log) == retries and proxy.posts == retries + 1 + len(reqs) - 1


def test_attempt_deadline_bounds_a_hung_attempt(server, direct):
    """The idle timeout alone would wait 60 s here; the per-attempt deadline gives up first."""
    reqs = direct[1][:1]
    with FaultProxy(server, ["delay:30"]) as proxy:
        eng = OpenAIEngine(proxy.base_url, "smollm2", attempt_timeout_s=1, backoff_s=0.01)
        out, _, _ = run(eng, reqs)
    assert [r["reason"] for r in eng.retry_log] == ["attempt deadline of 1 s exceeded"]
    assert out[0].text == direct[2][0].text and out[0].attempts == 2
    assert proxy.log[0]["outcome"] == "client gone"


def test_retry_after_is_capped_and_4xx_is_not_retried(server, direct):
    reqs = direct[1][:2]
    with FaultProxy(server, ["429:100", None, "404"]) as proxy:  # one at a time: POST 1 is the retry
        eng = OpenAIEngine(proxy.base_url, "smollm2", concurrency=1, max_backoff_s=0.2)
        out, calls, _ = run(eng, reqs)
    once_each(reqs, calls)
    assert [(r["request"], r["reason"], r["wait_s"]) for r in eng.retry_log] == [
        (0, "HTTP 429: injected fault 429", 0.2)
    ]
    assert out[0].text == direct[2][0].text and out[0].attempts == 2
    assert out[1].finish_reason == "error" and out[1].attempts == 1
    assert out[1].error == "HTTP 404: injected fault 404 (not retryable)"
    assert len(proxy.log) == 3


def test_retry_after_http_date():
    assert retry_after("2.5") == 2.5
    assert retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert 50 < retry_after(email.utils.formatdate(time.time() + 60, usegmt=True)) <= 60
    assert retry_after("soon") is None and retry_after(None) is None


def test_concurrency_bound_at_the_proxy(server, direct):
    reqs = direct[1]
    with FaultProxy(server) as proxy:
        eng = OpenAIEngine(proxy.base_url, "smollm2", concurrency=3)
        out, calls, wall = run(eng, reqs)
    once_each(reqs, calls)
    assert [c.text for c in out] == [c.text for c in direct[2]]
    assert 2 <= proxy.max_inflight <= 3  # the server decodes one at a time: the others wait
    assert 0 < sum(c.cost_s for c in out) <= wall


def test_short_m_at_k_cancels_the_rest(server):
    req = Request(
        [{"role": "user", "content": "Tell me a story."}],
        max_new_tokens=MAX_NEW,
        temperature=0.8,
        n=3,
        stop_after=1,
    )
    with FaultProxy(server) as proxy:
        eng = OpenAIEngine(proxy.base_url, "smollm2", concurrency=3)
        out, calls, _ = run(eng, [req])
    once_each([req], calls)
    finished = [c for c in out if c.finish_reason in ("stop", "length")]
    assert len(finished) >= 1
    assert [c.finish_reason for c in out].count("cancelled") == 3 - len(finished)
    for c in out:
        if c.finish_reason == "cancelled":  # partial output so far, counted in streamed deltas
            assert c.error is None and 0 <= c.completion_tokens < MAX_NEW and c.attempts == 1
    assert len(finished) < 3  # the server serves one at a time: the others were still waiting
    assert proxy.max_inflight <= 3
