"""The hf engine on a real model (SmolLM2-135M) and its real tokenizer."""

from __future__ import annotations

import pytest
import torch

from thinkcost.engines.hf import HFEngine, _Row
from thinkcost.tasks import get_task
from thinkcost.types import Request

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
    logits = torch.log(torch.tensor([[[0.6, 0.3, 0.1]]]))  # [lines, positions, V]
    row = _Row(_req("x", 4, temperature=1.0, top_p=0.5), 1, torch.Generator().manual_seed(0), [], [])
    picks = {int(eng._pick(logits, [row])[0][0]) for _ in range(50)}
    assert picks == {0}


# ---------------------------------------------------------------------------------------------
# Request fields on the real model: sample ids, short-m@k, budget forcing, wait-penalty,
# self-certainty. `_capture` records each finished row's token ids (Completion has none).


def _capture(eng: HFEngine) -> list[list[int]]:
    seen: list[list[int]] = []
    complete = eng._complete

    def record(row, ttft):
        seen.append(list(row.ids))
        return complete(row, ttft)

    eng._complete = record
    return seen


def _raw_logp(model, tok, eng: HFEngine, req: Request, ids: list[int]) -> torch.Tensor:
    """log_softmax of the raw logits predicting each of `ids`, from one forward pass."""
    prompt = tok(eng.render(req), add_special_tokens=False).input_ids
    with torch.inference_mode():
        logits = model(torch.tensor([prompt + ids])).logits[0, len(prompt) - 1 : len(prompt) - 1 + len(ids)]
    return torch.log_softmax(logits.float(), dim=-1)


def test_sample_is_seeded_by_its_sample_id(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=4)
    base = _req(PROMPTS[3], 24, temperature=1.0, seed=11, n=3)
    full = eng.generate([base])
    seen = []
    (only2,) = eng.generate(
        [_req(PROMPTS[3], 24, temperature=1.0, seed=11, sample_ids=(2,))],
        on_complete=lambda r, s, c: seen.append((r, s)),
    )
    assert seen == [(0, 2)]  # the callback names the sample id, not the position
    assert full[0].text != full[2].text
    assert only2.text == full[2].text and only2.completion_tokens == full[2].completion_tokens
    assert only2.logprobs == pytest.approx(full[2].logprobs, rel=1e-4, abs=1e-4)


def test_short_m_at_k_on_the_real_model_cancels_all_but_the_first_to_finish(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=4)
    full = eng.generate([_req("Hi", 48, temperature=1.0, seed=0, n=4)])
    first = min(o.completion_tokens for o in full)
    assert first < 48, "precondition: some sample ends before the cap"
    seen = []
    short = eng.generate(
        [_req("Hi", 48, temperature=1.0, seed=0, n=4, stop_after=1)],
        on_complete=lambda r, s, c: seen.append(s),
    )
    assert sorted(seen) == [0, 1, 2, 3]
    for f, s in zip(full, short, strict=True):
        # rows run in lockstep: the step the first row finished is the step the rest are
        # cancelled, so every row has generated exactly `first` tokens (EOS included)
        assert s.completion_tokens == first
        if f.completion_tokens == first:  # finished on that step (ties all kept)
            assert s.finish_reason == f.finish_reason == "stop" and s.text == f.text
        else:
            assert s.finish_reason == "cancelled"
            assert f.text.startswith(s.text) and s.answer_text == ""
            assert s.reasoning_tokens == s.completion_tokens
            assert s.logprobs == pytest.approx(f.logprobs[:first], rel=1e-4, abs=1e-4)
        assert s.cost_s > 0
    assert sum(o.finish_reason == "cancelled" for o in short) >= 1
    assert sum(o.completion_tokens for o in short) == 4 * first


def test_bf_cap_forces_the_answer_after_b_tokens_on_the_real_model(smollm):
    from thinkcost.reasoning import _MARKER

    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=1)
    q = "What is 12 + 7?"
    (head,) = eng.generate([_req(q, 8)])
    assert head.finish_reason == "length" and _MARKER.search(head.text) is None  # still reasoning at 8
    (o,) = eng.generate([_req(q, 48, think_budget=8, answer_budget=12)])
    forced = len(tok.encode("\n\nFinal answer:", add_special_tokens=False))
    assert o.text.startswith(head.text + "\n\nFinal answer:")
    assert o.forced_tokens == forced and o.interventions == 1
    assert o.completion_tokens <= 8 + forced + 12
    assert len(o.logprobs) == o.completion_tokens - forced
    assert o.answer_text.startswith("Final answer:")


def test_bf_wait_replaces_eos_by_the_wait_text_on_the_real_model(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=1)
    (plain,) = eng.generate([_req("Hi", 64)])
    assert plain.finish_reason == "stop" and "Wait" not in plain.text  # precondition
    (o,) = eng.generate([_req("Hi", 64, max_waits=2)])
    assert o.text.startswith(plain.text + "\nWait")  # the EOS became the wait text, not text
    assert o.text.count("\nWait") == 2
    assert o.interventions == 2
    assert o.forced_tokens == 2 * len(tok.encode("\nWait", add_special_tokens=False))


def test_wait_penalty_rules_and_effect_on_the_real_model(smollm):
    from thinkcost.engines.penalty import penalty_rules

    model, tok = smollm
    words = ("Wait", "Hmm")
    rules = penalty_rules(tok, words)
    texts = [tok.decode([i]).strip() for i in rules.single]
    # each context-free id is a whole word: "Hmm" without a space is "H" + "mm", and "H" is
    # not pushed down on its own (only "mm" right after it is)
    assert all(t in words for t in texts)
    assert {tok.encode(f, add_special_tokens=False)[0] for f in ("Wait", " Wait", " Hmm")} <= set(
        rules.single
    )
    assert tok.encode("\n", add_special_tokens=False)[0] not in rules.single  # separators are spared
    phrase = penalty_rules(tok, ("But wait",))
    but, wait = (tok.encode(s, add_special_tokens=False) for s in ("But", " wait"))
    assert (tuple(but), wait[0]) in phrase.prefixed and wait[0] not in phrase.single

    eng = HFEngine(model, tok, batch_size=2)
    ids = _capture(eng)
    q = "Write the word Wait three times."
    plain, pen = eng.generate([_req(q, 16), _req(q, 16, penalty=1e4, penalty_words=words)])
    by_text = {tok.decode(i, skip_special_tokens=True): i for i in ids}
    assert set(by_text[plain.text]) & set(rules.single), "precondition: the model says it unpenalised"
    assert not set(by_text[pen.text]) & set(rules.single)
    # logprobs are the model's own belief, taken before the penalty
    pen_ids = by_text[pen.text]  # EOS included: it is a model-chosen token too
    assert len(pen_ids) == pen.completion_tokens
    raw = _raw_logp(model, tok, eng, _req(q, 16), pen_ids)
    expect = raw.gather(1, torch.tensor(pen_ids)[:, None])[:, 0].tolist()
    assert pen.logprobs == pytest.approx(expect, rel=1e-3, abs=1e-3)


def test_self_certainty_matches_a_full_forward_pass(smollm):
    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=1)
    ids = _capture(eng)
    (o,) = eng.generate([_req("Hi", 16)])
    (gen,) = ids
    assert len(gen) == o.completion_tokens and o.forced_tokens == 0
    logp = _raw_logp(model, tok, eng, _req("Hi", 16), gen)
    per_token = -torch.log(torch.tensor(float(logp.shape[-1]))) - logp.mean(dim=-1)
    assert o.self_certainty is not None and torch.isfinite(torch.tensor(o.self_certainty))
    assert o.self_certainty == pytest.approx(float(per_token.mean()), rel=1e-3)
    assert o.logprobs == pytest.approx(logp.gather(1, torch.tensor(gen)[:, None])[:, 0].tolist(), abs=1e-3)


@pytest.mark.parametrize("candidates", [4, 64, 10_000])
def test_nucleus_equals_the_full_sort_definition_on_both_paths(monkeypatch, candidates):
    """The top-k shortcut and the full-sort fallback give exactly the textbook nucleus."""
    import thinkcost.engines.hf as hf

    monkeypatch.setattr(hf, "_TOP_CANDIDATES", candidates)
    gen = torch.Generator().manual_seed(0)
    for trial in range(60):
        sharp = [0.3, 1.0, 4.0][trial % 3]
        probs = torch.softmax(torch.randn(500, generator=gen) * sharp, dim=-1)
        top_p = [0.5, 0.9, 0.95, 0.999][trial % 4]
        ids, w = hf.nucleus(probs, top_p)
        order = sorted(range(500), key=lambda i: -float(probs[i]))
        want, mass = [], 0.0
        for i in order:  # brute force: add tokens while the mass before them is <= top_p
            if mass <= top_p + 1e-12:
                want.append(i)
            mass += float(probs[i])
        assert set(ids.tolist()) == set(want[: len(ids)]) and abs(len(ids) - len(want)) <= 1
        assert torch.equal(w, probs[ids])
