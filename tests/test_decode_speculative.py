"""The hf engine's decode loop: per-row KV cache (kv_rows) and looked-up drafts (lookup_draft).

Drafts must never change an output: every test compares token ids with drafts on against the
one-token-at-a-time loop and against `model.generate`, across batch sizes, and with the
decode controls (budget forcing, waits, stop strings, sampling rows in the same batch)."""

from __future__ import annotations

import random

import pytest
import torch

from thinkcost.engines.hf import HFEngine
from thinkcost.engines.lookup_draft import LookupDraft
from thinkcost.tasks import get_task
from thinkcost.types import Request


def _brute_propose(ids: list[int], k: int, max_n: int, min_n: int) -> list[int]:
    """After the latest earlier occurrence of the longest suffix (max_n..min_n) that has a token
    after it, the tokens that followed it, the sequence assumed periodic from there."""
    n_ids = len(ids)
    for n in range(max_n, min_n - 1, -1):
        if n_ids < n:
            continue
        suffix = ids[n_ids - n :]
        for i in range(n_ids - n - 1, -1, -1):
            if ids[i : i + n] == suffix:
                # continuing as the text since then continues, around the loop past the end
                ext = list(ids)
                while len(ext) < n_ids + k:
                    ext.append(ext[len(ext) - (n_ids - (i + n))])
                return ext[n_ids : n_ids + k]
    return []


@pytest.mark.parametrize("seed", range(40))
def test_lookup_draft_equals_a_brute_force_search(seed):
    rng = random.Random(seed)
    alphabet = rng.randint(2, 6)  # small alphabets: many repeats, overlapping matches
    ids = [rng.randrange(alphabet) for _ in range(rng.randint(0, 60))]
    max_n, min_n = rng.choice([(3, 2), (3, 1), (4, 2), (2, 2)])
    d = LookupDraft(ids[:10], max_n=max_n, min_n=min_n)
    d.extend(ids[10:])  # built incrementally as the engine does
    for k in (0, 1, 3, 8):
        assert d.propose(k) == _brute_propose(ids, k, max_n, min_n), (ids, k)


def test_lookup_draft_follows_a_loop():
    loop = [5, 6, 7, 8]
    d = LookupDraft([1, 2, *loop, *loop, 5, 6])
    assert d.propose(6) == [7, 8, 5, 6, 7, 8]
    assert LookupDraft([1, 2, 3]).propose(4) == []


def _req(q, cap=40, **kw):
    return Request([{"role": "user", "content": q}], max_new_tokens=cap, **kw)


REPEATY = [
    "Repeat exactly, three times: the cat sat on the mat.",
    "Count from 1 to 12 separated by commas.",
    "Tom has 3 apples and buys 4 more apples. Then Tom gives 2 apples to Ann. How many apples does Tom have?",
    "Hi",
    "Write the word banana five times.",
]


def _ids(outs):
    return [o.token_ids if hasattr(o, "token_ids") and o.token_ids is not None else o.text for o in outs]


class CountingForward:
    """Counts forward calls and fed positions of the model (the cost drafts are meant to cut)."""

    def __init__(self, model):
        self.model, self.calls, self.positions = model, 0, 0
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        self.calls += 1
        self.positions += int(ids.numel())

    def close(self):
        self.handle.remove()


def test_drafted_greedy_equals_one_token_at_a_time_and_generate_across_batch_sizes(smollm):
    model, tok = smollm
    reqs = [_req(q, 40) for q in REPEATY]
    one = HFEngine(model, tok, batch_size=16, max_draft=0).generate(reqs)
    for bs in (1, 4, 16):
        counter = CountingForward(model)
        try:
            outs = HFEngine(model, tok, batch_size=bs, max_draft=6).generate(reqs)
        finally:
            counter.close()
        assert [o.text for o in outs] == [o.text for o in one], bs
        assert [o.completion_tokens for o in outs] == [o.completion_tokens for o in one]
        assert [o.finish_reason for o in outs] == [o.finish_reason for o in one]
        if bs == 1:  # one row at a time: every accepted draft saves a forward call
            generated = sum(o.completion_tokens for o in outs)
            assert counter.calls < generated, (counter.calls, generated)
    for r, o in zip(reqs, one, strict=True):
        enc = tok(HFEngine(model, tok).render(r), return_tensors="pt", add_special_tokens=False)
        ref = model.generate(**enc, max_new_tokens=40, do_sample=False)[0, enc.input_ids.shape[1] :]
        assert o.text == tok.decode(ref, skip_special_tokens=True)


def test_drafts_leave_logprobs_and_self_certainty_as_they_were(smollm):
    model, tok = smollm
    reqs = [_req(q, 32) for q in REPEATY[:3]]
    a = HFEngine(model, tok, batch_size=3, max_draft=0).generate(reqs)
    b = HFEngine(model, tok, batch_size=3, max_draft=6).generate(reqs)
    for x, y in zip(a, b, strict=True):
        assert x.text == y.text
        assert len(x.logprobs) == len(y.logprobs) > 0
        assert x.logprobs == pytest.approx(y.logprobs, abs=1e-4)
        assert x.self_certainty == pytest.approx(y.self_certainty, abs=1e-4)


def test_drafts_with_budget_forcing_waits_stops_and_sampled_rows(smollm):
    model, tok = smollm
    q = REPEATY[1]
    reqs = [
        _req(q, 48, think_budget=8, answer_budget=12),
        _req("Hi", 48, max_waits=2),
        _req(q, 48, stop=["7"]),
        _req(REPEATY[0], 24, temperature=1.0, seed=3, n=2),
        _req(REPEATY[2], 48),
    ]
    a = HFEngine(model, tok, batch_size=8, max_draft=0).generate(reqs)
    b = HFEngine(model, tok, batch_size=8, max_draft=6).generate(reqs)
    assert [(o.text, o.finish_reason, o.completion_tokens) for o in a] == [
        (o.text, o.finish_reason, o.completion_tokens) for o in b
    ]


def test_default_prompts_give_identical_greedy_ids_with_drafts(smollm):
    """The default task's prompts (arithmetic word problems), token ids compared."""
    model, tok = smollm
    problems = get_task("arithmetic").problems(6)
    reqs = [Request(p.messages, max_new_tokens=48) for p in problems]
    ids = {}
    for md in (0, 6):
        outs = HFEngine(model, tok, batch_size=6, max_draft=md).generate(reqs)
        ids[md] = [tok(o.text, add_special_tokens=False).input_ids for o in outs]
    assert ids[0] == ids[6]


def test_row_cache_attention_equals_a_fresh_forward_per_row(smollm):
    """Ragged rows in one RowCache: the logits of each row equal a plain forward of its tokens."""
    from thinkcost.engines.kv_rows import RowCache

    model, tok = smollm
    texts = ["Hello there, how are", "One two three four five six seven", "A"]
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False)
    mask = enc["attention_mask"]
    cache = RowCache(
        mask,
        capacity=enc["input_ids"].shape[1] + 8,
        n_layers=model.config.num_hidden_layers,
        dtype=model.dtype,
        device="cpu",
    )
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    with torch.inference_mode():
        model(
            input_ids=enc["input_ids"],
            attention_mask=cache.begin(enc["input_ids"].shape[1]),
            position_ids=pos,
            use_cache=True,
            cache=cache,
        )
        cache.advance(torch.full((3,), enc["input_ids"].shape[1]))
        # feed ragged continuations: 3, 1 and 2 real tokens (the rest padding), keep them all
        extra = [[11, 12, 13], [21, 0, 0], [31, 32, 0]]
        real = [3, 1, 2]
        step_pos = mask.sum(-1)[:, None] + torch.arange(3)[None, :]
        out = model(
            input_ids=torch.tensor(extra),
            attention_mask=cache.begin(3),
            position_ids=step_pos,
            use_cache=True,
            cache=cache,
            logits_to_keep=3,
        )
        for r in range(3):
            toks = enc["input_ids"][r][mask[r].bool()].tolist() + extra[r][: real[r]]
            ref = model(input_ids=torch.tensor([toks])).logits[0, -real[r] :]
            assert torch.allclose(out.logits[r, : real[r]], ref, atol=1e-4), r
