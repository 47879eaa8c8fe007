"""The hf engine on a real model (SmolLM2-135M) and its real tokenizer."""

from __future__ import annotations

import torch

from thinkcost.engines.base import Request
from thinkcost.engines.hf import HFEngine, _Row
from thinkcost.tasks import get_task

PROMPTS = [
    "What is 12 + 7? Put the answer in \\boxed{}.",
    "Tom has 3 apples and buys 5 more. How many apples does he have?",
    "Hi",
    "Name three colours.",
    "Write the numbers from one to ten in words.",
]


def _req(q: str, tokens: int = 32, **kw) -> Request:
    return Request([{"role": "user", "content": q}], max_new_tokens=tokens, **kw)


def test_batched_greedy_equals_model_generate_token_for_token(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=4)  # 5 prompts: a batch of 4 (left padded) and 1
    outs = eng.generate([_req(q) for q in PROMPTS])
    for q, o in zip(PROMPTS, outs, strict=True):
        enc = tok(eng.render(_req(q)), return_tensors="pt", add_special_tokens=False)
        ref = model.generate(**enc, max_new_tokens=32, do_sample=False)[0, enc.input_ids.shape[1] :]
        ref_ids = [int(t) for t in ref]
        assert o.text == tok.decode(ref_ids, skip_special_tokens=True)
        assert o.completion_tokens == len(ref_ids)  # EOS counted: it cost a decode step
        assert o.finish_reason == ("stop" if ref_ids[-1] in eng.eos_ids else "length")


def test_token_accounting_adds_up_and_uses_the_models_tokenizer(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=3)
    outs = eng.generate([_req(q, 48) for q in PROMPTS[:3]])
    for o in outs:
        eos = 1 if o.finish_reason == "stop" else 0
        assert o.reasoning_tokens + o.answer_tokens == o.completion_tokens - eos
        assert o.prompt_tokens > 0
        # reasoning tokens are the fewest leading generated tokens that spell the reasoning
        ids = tok(o.text, add_special_tokens=False).input_ids
        assert abs(o.reasoning_tokens - len(tok(o.reasoning_text, add_special_tokens=False).input_ids)) <= 2
        assert abs(len(ids) - (o.reasoning_tokens + o.answer_tokens)) <= 2


def test_costs_add_up_to_batch_wall_time_and_latency_is_ordered(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=4)
    outs = eng.generate([_req("Hi", 40), _req(PROMPTS[4], 40), _req(PROMPTS[3], 40), _req(PROMPTS[0], 40)])
    longest = max(o.latency_s for o in outs)
    assert sum(o.cost_s for o in outs) <= longest * 1.0001 + 1e-6
    assert sum(o.cost_s for o in outs) >= longest * 0.9
    for o in outs:
        assert 0 < o.ttft_s <= o.latency_s
    by_len = sorted(outs, key=lambda o: o.completion_tokens)
    assert by_len[0].latency_s <= by_len[-1].latency_s


def test_on_complete_called_once_per_sequence_as_it_finishes(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=4)
    seen = []
    outs = eng.generate(
        [_req("Hi", 30), _req(PROMPTS[4], 30, n=2)], on_complete=lambda r, s, c: seen.append((r, s, c))
    )
    assert sorted((r, s) for r, s, _ in seen) == [(0, 0), (1, 0), (1, 1)]
    assert len(outs) == 3
    # the first sequence reported is one that finished earliest
    assert seen[0][2].latency_s == min(o.latency_s for o in outs)


def test_sampling_is_seeded(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=2)
    a = eng.generate([_req(PROMPTS[3], 20, temperature=1.0, seed=7, n=2)])
    b = eng.generate([_req(PROMPTS[3], 20, temperature=1.0, seed=7, n=2)])
    c = eng.generate([_req(PROMPTS[3], 20, temperature=1.0, seed=8, n=2)])
    assert [o.text for o in a] == [o.text for o in b]
    assert [o.text for o in a] != [o.text for o in c]
    assert a[0].text != a[1].text  # the n samples differ from each other


def _row_for(tok, text: str, stop: tuple[str, ...]) -> _Row:
    ids = tok(text, add_special_tokens=False).input_ids
    return _Row(_req("x", 64, stop=stop), prompt_len=1, generator=None, ids=ids, logprobs=[0.0] * len(ids))


def test_stop_string_never_cuts_inside_open_think(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok)
    inside = _row_for(tok, "<think>I think Question: is next", ("Question:",))
    assert not eng._hit_stop(inside)
    outside = _row_for(tok, "<think>ok</think> 5\nQuestion:", ("Question:",))
    assert eng._hit_stop(outside)
    outside.finish = "stop"
    c = eng._complete(outside, 0.0)
    assert c.text == "<think>ok</think> 5\n"
    assert c.answer_text == "5"


def test_generation_cut_inside_think_is_graded_with_empty_answer(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok)
    row = _row_for(tok, "<think>so it is \\boxed{22} maybe, wait", ())
    row.finish = "length"
    c = eng._complete(row, 0.0)
    assert c.think_unclosed and c.answer_text == ""
    assert c.reasoning_tokens == len(row.ids) and c.answer_tokens == 0
    task = get_task("arithmetic")
    p = task.problems(1, 0)[0]
    assert not task.verify(p, c.answer_text).correct
    assert task.verify(p, f"\\boxed{{{p.gold}}}").correct


def test_pick_top_p_keeps_only_the_nucleus():
    # top_p=0.5 over probabilities [0.6, 0.3, 0.1] must always pick token 0
    eng = object.__new__(HFEngine)
    logits = torch.log(torch.tensor([[0.6, 0.3, 0.1]]))
    row = _Row(_req("x", 4, temperature=1.0, top_p=0.5), 1, torch.Generator().manual_seed(0), [], [])
    picks = {int(eng._pick(logits, [row])[0][0]) for _ in range(50)}
    assert picks == {0}
