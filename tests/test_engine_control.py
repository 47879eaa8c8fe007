"""Decode decisions (engines/control.py) through the scripted engine: short-m@k, bf-cap,
bf-wait, stop strings and accounting, all deterministic and without a model."""

from __future__ import annotations

import re

import pytest

from scripted_engine import STEP_S, ScriptedEngine, WordTokenizer
from thinkcost.engines.control import Vocab, plan_batches
from thinkcost.engines.penalty import penalty_rules
from thinkcost.types import Request


def words(text: str) -> list[str]:
    """Script tokens as the word tokenizer splits them: "a b" -> ["a", " b"]."""
    return re.findall(r"\s*\S+", text)


def req(n: int = 1, tokens: int = 64, **kw) -> Request:
    return Request([{"role": "user", "content": "question"}], max_new_tokens=tokens, n=n, **kw)


def by_sample(lengths: dict[int, int]):
    """A script where sample i says `lengths[i]` words, then EOS."""
    return lambda r, i: [f" w{j}" for j in range(lengths[i])]


# ---------------------------------------------------------------------------------------------
# short-m@k

# samples say 5, 3, 8 and 3 words: they would finish (EOS included) after 6, 4, 9 and 4 steps
LENGTHS = {0: 5, 1: 3, 2: 8, 3: 3}


@pytest.mark.parametrize(
    ("m", "finished", "steps"),
    [
        (1, {1, 3}, 4),  # tie: samples 1 and 3 finish on step 4, both kept although m=1
        (2, {1, 3}, 4),
        (3, {0, 1, 3}, 6),
        (4, {0, 1, 2, 3}, 9),  # m == k: nothing is cancelled
    ],
)
def test_short_m_at_k_cancels_the_samples_not_among_the_first_m(m, finished, steps):
    eng = ScriptedEngine(by_sample(LENGTHS))
    seen = []
    outs = eng.generate([req(n=4, stop_after=m)], on_complete=lambda k, s, c: seen.append((k, s, c)))
    assert sorted((k, s) for k, s, _ in seen) == [(0, 0), (0, 1), (0, 2), (0, 3)]
    for i, o in enumerate(outs):
        if i in finished:
            assert o.finish_reason == "stop"
            assert o.completion_tokens == LENGTHS[i] + 1
        else:
            assert o.finish_reason == "cancelled"
            assert o.completion_tokens == steps  # every step it ran produced a token
            assert o.text == "".join(f" w{j}" for j in range(steps))
            assert o.answer_text == "" and o.reasoning_tokens == o.completion_tokens  # cut like "length"
            assert o.latency_s == pytest.approx(steps * STEP_S)
    assert sum(o.completion_tokens for o in outs) == sum(
        LENGTHS[i] + 1 if i in finished else steps for i in range(4)
    )
    # the fake step costs are shared out completely, cancelled rows included
    assert sum(o.cost_s for o in outs) == pytest.approx(steps * STEP_S)
    # the callback reports finished rows the step they finish, cancelled ones right after
    assert [s for _, s, c in seen if c.finish_reason == "cancelled"] == sorted(set(range(4)) - finished)


def test_cancelled_row_with_a_closed_think_block_keeps_its_answer():
    script = {0: ["x", "</think>", " 5", " more", " more"], 1: [" y", " y", " y"]}
    eng = ScriptedEngine(lambda r, i: script[i], think=True)
    a, b = eng.generate([req(n=2, stop_after=1)])
    assert b.finish_reason == "stop" and b.completion_tokens == 4
    assert a.finish_reason == "cancelled" and a.completion_tokens == 4
    assert a.text == "x</think> 5 more"
    assert a.reasoning_text == "x" and a.answer_text == "5 more"


def test_short_m_at_k_counts_per_request_and_reports_sample_ids():
    # request 0 (no stop_after) shares the batch with request 1 (stop_after=1, samples 7 and 5)
    lengths = {0: 1, 1: 9, 7: 2, 5: 6}
    eng = ScriptedEngine(by_sample(lengths))
    seen = []
    outs = eng.generate(
        [req(n=2), req(sample_ids=(7, 5), stop_after=1)], on_complete=lambda k, s, c: seen.append((k, s))
    )
    assert [o.finish_reason for o in outs] == ["stop", "stop", "stop", "cancelled"]
    assert [o.completion_tokens for o in outs] == [2, 10, 3, 3]  # request 0 is never cancelled
    assert sorted(seen) == [(0, 0), (0, 1), (1, 5), (1, 7)]


def test_plan_batches_never_splits_a_short_m_at_k_request():
    a, b, c = req(n=3), req(n=3, stop_after=1), req(n=2)
    chunks = plan_batches([a, b, c], 4)
    assert [[(k, i) for k, _, i in ch] for ch in chunks] == [
        [(0, 0), (0, 1), (0, 2)],
        [(1, 0), (1, 1), (1, 2), (2, 0)],
        [(2, 1)],
    ]
    # requests without stop_after are packed densely, in request order
    assert [len(ch) for ch in plan_batches([a, a, a], 4)] == [4, 4, 1]


def test_stop_after_request_larger_than_the_batch_is_refused_before_any_work():
    eng = ScriptedEngine(by_sample({i: 1 for i in range(5)}), batch_size=4)
    seen = []
    with pytest.raises(ValueError, match=r"batch_size is 4") as e:
        eng.generate([req(n=1), req(n=5, stop_after=2)], on_complete=lambda *a: seen.append(a))
    assert "5 samples" in str(e.value)
    assert seen == [] and eng.calls == []


def test_samples_come_back_in_sample_id_order():
    eng = ScriptedEngine(lambda r, i: [f" s{i}"])
    outs = eng.generate([req(sample_ids=(3, 1, 2))])
    assert [o.text for o in outs] == [" s3", " s1", " s2"]
    assert [o.logprobs for o in outs] == [
        [pytest.approx(-0.1 * (1 + i))] * 2 for i in (3, 1, 2)
    ]  # word + EOS


# ---------------------------------------------------------------------------------------------
# bf-cap


def test_bf_cap_forces_the_end_right_after_b_tokens_then_caps_the_answer():
    eng = ScriptedEngine(lambda r, i: words("one two three four five six seven eight nine"))
    (o,) = eng.generate([req(think_budget=3, answer_budget=2)])
    # steps 4-5 are forced (the script's " four" " five" are overridden), then 2 model tokens
    assert o.text == "one two three\n\nFinal answer: six seven"
    assert o.finish_reason == "length"
    assert o.forced_tokens == 2 and o.interventions == 1
    assert o.completion_tokens == 3 + 2 + 2
    assert o.answer_text == "Final answer: six seven"
    assert len(o.logprobs) == o.completion_tokens - o.forced_tokens  # forced tokens have no logprob


def test_bf_cap_answer_may_end_early_by_eos():
    eng = ScriptedEngine(lambda r, i: words("one two three four five six"))
    (o,) = eng.generate([req(think_budget=3, answer_budget=5, force_text=" So:")])
    assert o.text == "one two three So: five six"
    assert o.finish_reason == "stop" and o.completion_tokens == 3 + 1 + 3


def test_bf_cap_does_nothing_when_the_answer_marker_came_before_b():
    script = ["\\boxed{4}", *words(" and some more words")]
    eng = ScriptedEngine(lambda r, i: script)
    (o,) = eng.generate([req(think_budget=3, answer_budget=1)])
    assert o.text == "".join(script)
    assert o.forced_tokens == 0 and o.interventions == 0
    assert o.completion_tokens == len(script) + 1  # no answer cap either


def test_bf_cap_on_a_think_model_inserts_the_think_close_token_first():
    eng = ScriptedEngine(lambda r, i: words("a b c d e f"), think=True)
    (o,) = eng.generate([req(think_budget=2)])
    assert o.text == "a b</think>\n\nFinal answer: f"
    assert o.reasoning_text == "a b" and o.answer_text == "Final answer: f"
    assert o.forced_tokens == 3  # "</think>", "\n\nFinal", " answer:"
    assert o.finish_reason == "stop"


def test_bf_cap_on_a_think_model_that_closed_its_think_before_b():
    eng = ScriptedEngine(lambda r, i: ["a", "</think>", *words(" b c d")], think=True)
    (o,) = eng.generate([req(think_budget=3, answer_budget=1)])
    assert o.text == "a</think> b c d"
    assert o.forced_tokens == 0 and o.interventions == 0


def test_bf_cap_never_exceeds_budget_plus_forced_plus_answer_budget():
    for n_words in range(0, 12):
        for budget in range(1, 7):
            for answer_budget in range(1, 4):
                for think in (False, True):
                    eng = ScriptedEngine(lambda r, i, n=n_words: [f" w{j}" for j in range(n)], think=think)
                    (o,) = eng.generate([req(think_budget=budget, answer_budget=answer_budget, max_waits=2)])
                    assert o.completion_tokens <= budget + o.forced_tokens + answer_budget
                    capped = n_words >= budget  # still reasoning after B tokens: no marker, no </think>
                    assert o.interventions >= (1 if capped else 0)


# ---------------------------------------------------------------------------------------------
# bf-wait


def test_bf_wait_replaces_exactly_n_end_attempts_then_allows_the_end():
    eng = ScriptedEngine(lambda r, i: ["a", " b"])
    (o,) = eng.generate([req(max_waits=2)])
    assert o.text == "a b\nWait\nWait"
    assert o.finish_reason == "stop"
    assert o.interventions == 2 and o.forced_tokens == 2
    assert o.completion_tokens == 2 + 2 + 1  # the third EOS was allowed and counted
    assert len(o.logprobs) == 3


def test_bf_wait_continues_with_the_scripts_next_token():
    eng = ScriptedEngine(lambda r, i: ["a", "<eos>", " c"])
    (o,) = eng.generate([req(max_waits=1)])
    assert o.text == "a\nWait c"
    assert o.completion_tokens == 4


def test_bf_wait_with_a_multi_token_wait_text():
    eng = ScriptedEngine(lambda r, i: ["a"])
    (o,) = eng.generate([req(max_waits=1, wait_text="\nWait, let me check")])
    # the EOS attempts while the wait text is forced are overridden, not counted as waits
    assert o.text == "a\nWait, let me check"
    assert o.forced_tokens == 4 and o.interventions == 1
    assert o.completion_tokens == 1 + 4 + 1


def test_bf_wait_on_a_think_model_replaces_the_think_close_token():
    script = ["x", "</think>", " y", "</think>", " z"]
    (two,) = ScriptedEngine(lambda r, i: script, think=True).generate([req(max_waits=2)])
    assert two.text == "x\nWait y\nWait z" and two.interventions == 2
    (one,) = ScriptedEngine(lambda r, i: script, think=True).generate([req(max_waits=1)])
    assert one.text == "x\nWait y</think> z" and one.interventions == 1
    assert one.answer_text == "z"


def test_no_waits_once_the_cap_forced_the_end():
    eng = ScriptedEngine(lambda r, i: ["a", " b", " c"])
    (o,) = eng.generate([req(think_budget=2, max_waits=5)])
    assert o.text == "a b\n\nFinal answer:"
    assert o.interventions == 1 and o.finish_reason == "stop"


def test_cap_during_a_wait_text_replaces_the_rest_of_it():
    eng = ScriptedEngine(lambda r, i: ["a"])
    (o,) = eng.generate([req(think_budget=3, max_waits=1, wait_text="\nWait, let me check")])
    assert o.text == "a\nWait, let\n\nFinal answer:"
    assert o.interventions == 2 and o.forced_tokens == 4
    assert o.completion_tokens == 6 <= 3 + o.forced_tokens + 64


def test_self_certainty_is_none_without_model_chosen_tokens():
    eng = ScriptedEngine(lambda r, i: [])
    (o,) = eng.generate([req(tokens=1, max_waits=1)])
    assert o.text == "\nWait" and o.finish_reason == "length"
    assert o.self_certainty is None and o.logprobs == []
    (p,) = eng.generate([req(tokens=8, sample_ids=(2,))])
    assert p.self_certainty == pytest.approx(1.2)


# ---------------------------------------------------------------------------------------------
# stop strings, penalty rules


def test_stop_string_inside_an_open_think_block_does_not_stop():
    eng = ScriptedEngine(lambda r, i: words("<think> a Q: b</think> c Q: d e"))
    (o,) = eng.generate([req(stop=("Q:",))])
    assert o.text == "<think> a Q: b</think> c "
    assert o.finish_reason == "stop" and o.answer_text == "c"


def test_penalty_rules_single_words_and_phrases():
    tok = WordTokenizer()
    rules = penalty_rules(tok, ("Wait", "But wait"))
    assert rules is penalty_rules(tok, ("Wait", "But wait"))  # cached per (tokenizer, words)
    assert set(rules.single) == {tok.id(f) for f in ("Wait", " Wait", "\nWait", "\n\nWait")}
    wait = tok.id(" wait")
    assert set(rules.prefixed) == {((tok.id(p),), wait) for p in ("But", " But", "\nBut", "\n\nBut")}
    assert rules.targets([tok.id("a"), tok.id("\nBut")]) == [wait]
    assert rules.targets([tok.id("\nBut"), tok.id("a")]) == []
    assert Vocab.of(tok, {0}).think_close_id is None
