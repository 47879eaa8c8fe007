"""The wait-penalty's rule table (engines/control.py `PenaltyRules`) on the real SmolLM2 and Qwen2.5
tokenizers, the engines' use of it, and its prefix trie against brute force.

A word the tokenizer splits ("Hmm" = "H" + "mm" on SmolLM2) must cost its first sub-token
nothing: only its later tokens are pushed down, and only right after its earlier ones."""

from __future__ import annotations

import random

import pytest
import torch

from thinkcost.engines.penalty import PenaltyRules, penalty_rules
from thinkcost.models import PACKAGED, is_installed, resolve_model
from thinkcost.strategies import DEFAULT_WAIT_WORDS
from thinkcost.types import Request

# per tokenizer: the words to penalise and one of them that the tokenizer splits. Qwen2.5 keeps
# every default word whole, so a longer "Hmmm" (= "H" + "mmm") is added there.
CASES = {
    "smollm2-135m": (DEFAULT_WAIT_WORDS, "Hmm"),
    "qwen2.5-coder-0.5b": ((*DEFAULT_WAIT_WORDS, "Hmmm"), "Hmmm"),
}
SEPARATORS = ("", " ", "\n", "\n\n")
MSGS = [{"role": "user", "content": "question"}]


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    """(model name, its real tokenizer loaded from the packaged GGUF, words, split word)."""
    from transformers import AutoTokenizer

    name = request.param
    if not is_installed(PACKAGED[name]):
        pytest.fail(f"packaged model {name} missing: install it ({PACKAGED[name].install_hint})")
    src = resolve_model(name)
    tok = AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file)
    return (name, tok, *CASES[name])


def enc(tok, text: str) -> list[int]:
    return list(tok.encode(text, add_special_tokens=False))


def whole_tokens(tok, words) -> set[int]:
    """Ids to penalise everywhere, found without the rule builder: every token that is a word once
    stripped (a one-token surface form like " Wait" is one of them)."""
    words = {w.strip() for w in words}
    return {i for i in range(len(tok)) if tok.decode([i], skip_special_tokens=False).strip() in words}


def split_forms(tok, words) -> set[tuple[int, ...]]:
    """Token sequences of the words' multi-token surface forms, leading whitespace tokens dropped."""
    out = set()
    for w in words:
        for sep in SEPARATORS:
            ids = enc(tok, sep + w)
            while ids and not tok.decode(ids[:1]).strip():
                ids = ids[1:]
            if len(ids) > 1:
                out.add(tuple(ids))
    return out


def brute_targets(forms, single, ctx) -> set[int]:
    """Continuations due after `ctx`: form[k] for each form whose first k tokens end `ctx`."""
    return {
        f[k]
        for f in forms
        for k in range(1, len(f))
        if k <= len(ctx) and tuple(ctx[len(ctx) - k :]) == f[:k] and f[k] not in single
    }


def penalised(rules: PenaltyRules, ctx: list[int]) -> set[int]:
    return set(rules.single) | set(rules.targets(ctx))


# ---------------------------------------------------------------------------------------------
# the rule table on real tokenizers


def test_which_default_words_each_tokenizer_splits(case):
    name, tok, _, _ = case
    rules = penalty_rules(tok, DEFAULT_WAIT_WORDS)
    as_text = {tuple(tok.decode([i]) for i in f) for f in rules.forms}
    phrase = {("But", " wait"), (" But", " wait")}
    if name == "smollm2-135m":  # "Hmm" (and "\nHmm") = "H" + "mm"; " Hmm" is one token
        assert as_text == phrase | {("H", "mm")}
        assert rules.contextual
    else:  # Qwen2.5: every word is one token; the phrase's " wait" is the word " wait" already
        assert as_text == phrase
        assert not rules.contextual and rules.targets(enc(tok, "So But")) == []
    assert set(rules.forms) == split_forms(tok, DEFAULT_WAIT_WORDS)


def test_unrelated_context_penalises_exactly_the_one_token_forms(case):
    _, tok, words, split = case
    rules = penalty_rules(tok, words)
    ctx = enc(tok, "The answer is 42, so")
    assert penalised(rules, ctx) == whole_tokens(tok, words)
    firsts = {f[0] for f in split_forms(tok, words)}  # "H", " H", "But", " But"
    assert enc(tok, split)[0] in firsts
    assert not firsts & penalised(rules, ctx)
    assert not firsts & penalised(rules, [])


def test_after_the_first_sub_token_the_continuation_is_penalised(case):
    _, tok, words, split = case
    rules = penalty_rules(tok, words)
    h, mm = enc(tok, split)[:2]
    ctx = enc(tok, "Let me think.\n")
    assert rules.targets([*ctx, h]) == [mm]
    assert penalised(rules, [*ctx, h]) == whole_tokens(tok, words) | {mm}
    assert mm not in penalised(rules, [*ctx, h, enc(tok, "ow")[0]])  # the word went elsewhere
    phrase = penalty_rules(tok, ("But wait",))
    wait = enc(tok, " wait")
    assert len(wait) == 1
    for but in ("But", " But"):
        assert phrase.targets(ctx + enc(tok, but)) == wait
    assert phrase.targets(ctx) == [] and wait[0] not in phrase.single


def test_hf_penalise_moves_exactly_the_penalised_logits(case):
    from thinkcost.engines.hf import _penalise
    from thinkcost.engines.hf import _Row as HFRow

    _, tok, words, split = case
    rules = penalty_rules(tok, words)
    single, forms = whole_tokens(tok, words), split_forms(tok, words)
    h = enc(tok, split)[0]
    contexts = [[], enc(tok, "How much"), [*enc(tok, "So\n"), h], enc(tok, "So But"), [h, h]]
    rows = []
    for k, ctx in enumerate(contexts):
        req = Request(MSGS, penalty=2.0 if k % 2 else 0.5, penalty_words=words)
        rows.append(HFRow(req, 0, None, ids=list(ctx), rules=rules))
    rows.append(HFRow(Request(MSGS), 0, None, ids=[h]))  # no penalty on this row
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(len(rows), len(tok), generator=gen)
    before = logits.clone()
    out = _penalise(logits, rows)
    assert torch.equal(logits, before)  # the input is left as it was
    for k, row in enumerate(rows):
        moved = set() if row.rules is None else single | brute_targets(forms, single, row.ids)
        expect = logits[k].clone()
        expect[sorted(moved)] -= row.req.penalty
        assert torch.equal(out[k], expect)  # identical everywhere else
        assert set(torch.nonzero(out[k] != logits[k])[:, 0].tolist()) == moved
    assert brute_targets(forms, single, rows[2].ids) == {enc(tok, split)[1]}  # precondition


def test_llamacpp_pick_spares_the_first_sub_token_and_pushes_down_the_rest(case):
    import numpy as np

    from thinkcost.engines.llamacpp import LlamaCppEngine
    from thinkcost.engines.llamacpp import _Row as LCRow

    _, tok, words, split = case
    rules = penalty_rules(tok, words)
    h, mm = enc(tok, split)[:2]
    pick = object.__new__(LlamaCppEngine)._pick
    rng = np.random.default_rng(0)
    row = LCRow(Request(MSGS, penalty=1e4, penalty_words=words), 0, 0, 0, rules)
    row.ids = enc(tok, "So\n")
    logits = rng.random(len(tok), dtype=np.float32)
    logits[sorted(whole_tokens(tok, words))] = 100.0  # every word token would win unpenalised
    logits[h] = 50.0
    assert pick(logits, row)[0] == h
    row.ids.append(h)
    logits[h], logits[mm], logits[enc(tok, "ow")[0]] = 0.0, 100.0, 50.0
    assert pick(logits, row)[0] == enc(tok, "ow")[0]


def test_trie_targets_match_brute_force_on_the_real_tokenizer(case):
    _, tok, words, _ = case
    rules = penalty_rules(tok, (*words, "But wait, Hmm"))  # a three-word phrase: a deeper trie
    single = whole_tokens(tok, rules.words)
    forms = split_forms(tok, rules.words)
    assert set(rules.single) == single and set(rules.forms) == forms
    rnd = random.Random(1)
    pieces = [list(f[:k]) for f in forms for k in range(1, len(f) + 1)]
    hits = 0
    for _ in range(50):
        ctx: list[int] = []
        for _ in range(8):  # random tokens and beginnings of forms, as a generation might be
            ctx += rnd.choice(pieces) if rnd.random() < 0.6 else [rnd.randrange(len(tok))]
        for end in range(len(ctx) + 1):  # every step of that generation
            expect = brute_targets(forms, single, ctx[:end])
            assert rules.targets(ctx[:end]) == sorted(expect)
            hits += bool(expect)
    assert hits > 50  # the contexts did reach into the trie


# ---------------------------------------------------------------------------------------------
# the trie alone, over random forms on a small alphabet (many shared prefixes and suffixes)


def test_trie_targets_match_brute_force_on_random_forms():
    rnd = random.Random(0)
    hits = 0
    for _ in range(200):
        forms = {tuple(rnd.randrange(5) for _ in range(rnd.randint(1, 5))) for _ in range(rnd.randint(1, 8))}
        one = {f[0] for f in forms if len(f) == 1}
        rules = PenaltyRules((), tuple(sorted(one)), tuple(sorted(f for f in forms if len(f) > 1)))
        multi = [f for f in forms if len(f) > 1]
        for _ in range(10):
            ctx = [rnd.randrange(5) for _ in range(rnd.randint(0, 10))]
            expect = brute_targets(multi, one, ctx)
            assert rules.targets(ctx) == sorted(expect)
            assert rules.targets(tuple(ctx)) == sorted(expect)
            hits += bool(expect)
    assert hits > 200


# ---------------------------------------------------------------------------------------------
# decoding with the real model


def test_greedy_output_that_only_shares_a_first_sub_token_is_unchanged(smollm):
    from thinkcost.engines.hf import HFEngine

    model, tok = smollm
    eng = HFEngine(model, tok, batch_size=2)
    seen: list[list[int]] = []
    complete = eng._complete
    eng._complete = lambda row, ttft: seen.append(list(row.ids)) or complete(row, ttft)
    msgs = [{"role": "user", "content": "What does H2O mean?"}]
    plain, pen = eng.generate(
        [
            Request(msgs, max_new_tokens=12),
            Request(msgs, max_new_tokens=12, penalty=1e4, penalty_words=DEFAULT_WAIT_WORDS),
        ]
    )
    h = enc(tok, "Hmm")[0]
    assert any(h in ids for ids in seen), "precondition: the answer writes 'H' (of \"H2O\")"
    assert not whole_tokens(tok, DEFAULT_WAIT_WORDS) & {i for ids in seen for i in ids}, "precondition"
    assert pen.text == plain.text
