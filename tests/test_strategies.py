"""Strategy strings -> recipes (what is generated, what is shared) and decisions from attempts."""

from __future__ import annotations

import pytest

from thinkcost.errors import UserError
from thinkcost.strategies import DEFAULT_WAIT_WORDS, SamplingOptions, parse_strategy
from thinkcost.strategies.base import problem_seed
from thinkcost.strategies.confidence import CONFIDENCE_INSTRUCTION
from thinkcost.strategies.vote import Attempt
from thinkcost.types import Problem


def A(sample, answer, correct, tokens):
    return Attempt(sample, answer, correct, (tokens, sample))


def test_sampling_strategies_share_one_recipe_and_others_do_not():
    keys = {
        s: parse_strategy(s).recipe.key
        for s in ("sample@8", "maj@4", "maj@8", "bon@8:logprob", "bon@8:oracle")
    }
    assert len(set(keys.values())) == 1 and keys["maj@4"].startswith("sample:t=0.7,p=0.95")
    assert parse_strategy("maj@4").recipe.n == 4 and parse_strategy("maj@8").recipe.n == 8
    # a stated confidence changes the prompt; short-m@k changes the decoding; so do modifiers
    others = ["bon@8:verbal", "short-1@8", "short-3@8", "maj@8+wait-penalty:2", "maj@8+bf-cap:64", "greedy"]
    all_keys = {keys["maj@8"], *(parse_strategy(s).recipe.key for s in others)}
    assert len(all_keys) == len(others) + 1
    hot = parse_strategy("maj@4", SamplingOptions(temperature=1.0, top_p=0.9)).recipe.key
    assert hot != keys["maj@4"] and "t=1,p=0.9" in hot


def test_modifiers_compose_and_a_lone_modifier_applies_to_greedy():
    s = parse_strategy("short-3@8+bf-wait:2+wait-penalty:1.5")
    r = s.recipe
    assert (r.n, r.stop_after, r.max_waits, r.penalty) == (8, 3, 2, 1.5)
    assert r.penalty_words == DEFAULT_WAIT_WORDS and r.temperature == 0.7
    cap = parse_strategy("bf-cap:128")
    assert cap.name == "greedy+bf-cap:128" and cap.recipe.temperature == 0 and cap.recipe.think_budget == 128
    custom = parse_strategy("wait-penalty:2", SamplingOptions(wait_words=("Hmm",)))
    assert (
        custom.recipe.penalty_words == ("Hmm",)
        and custom.recipe.key != parse_strategy("wait-penalty:2").recipe.key
    )


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", "expected a name"),
        ("maj@", "K in maj@K"),
        ("maj@0", "integer >= 1"),
        ("short-0@4", "1 <= M <= K"),
        ("short-5@4", "1 <= M <= K"),
        ("short@4", "short-M@K"),
        ("bon@4", "bon@K:SCORER"),
        ("bon@4:magic", "unknown scorer 'magic'"),
        ("bon@4:rm:", "rm:MODEL needs a model"),
        ("greedy@2", "greedy takes no argument"),
        ("maj@4+maj@8", "not a modifier"),
        ("maj@4+bf-cap:8+bf-cap:16", "given twice"),
        ("wait-penalty:abc", "number > 0"),
        ("bf-wait:", "integer >= 1"),
        ("tree@4", "unknown strategy"),
        ("beam@4", "expected wbon@K:SCORER, beam@N/M:SCORER"),
    ],
)
def test_bad_strategy_strings_name_the_part_and_the_form(text, needle):
    with pytest.raises(UserError) as e:
        parse_strategy(text)
    assert needle in str(e.value)


def test_request_seeds_per_problem_verbal_prompt_and_greedy_top_p():
    p = Problem("t", "p1", [{"role": "system", "content": "s"}, {"role": "user", "content": "q?"}], "1")
    r = parse_strategy("maj@4").recipe.request(p, max_new_tokens=50, seed=3)
    assert r.samples == (0, 1, 2, 3) and r.seed == problem_seed(3, "p1") != problem_seed(3, "p2")
    assert r.temperature == 0.7 and r.top_p == 0.95 and r.stop_after is None
    part = parse_strategy("maj@4").recipe.request(p, max_new_tokens=50, seed=3, sample_ids=(2, 3))
    assert part.samples == (2, 3) and part.seed == r.seed  # a resumed draw continues the same streams
    v = parse_strategy("bon@4:verbal").recipe.request(
        p, max_new_tokens=50, seed=3, confidence_instruction=CONFIDENCE_INSTRUCTION
    )
    assert v.prompt_messages[-1]["content"] == "q?\n\n" + CONFIDENCE_INSTRUCTION
    assert p.messages[-1]["content"] == "q?"  # the problem itself is not mutated
    g = parse_strategy("greedy").recipe.request(p, max_new_tokens=50, seed=3)
    assert (g.temperature, g.top_p, g.n) == (0.0, 1.0, 1)
    s = parse_strategy("short-2@4+bf-cap:16").recipe.request(p, max_new_tokens=50, seed=0)
    assert (s.stop_after, s.think_budget, s.n) == (2, 16, 4)


def test_greedy_and_sample_at_n_decisions():
    attempts = [A(0, "3", True, 10), A(1, "4", False, 5), A(2, "3", True, 7), A(3, None, False, 9)]
    g = parse_strategy("greedy").decide(attempts[:1], {})
    assert (g.answer, g.correct, g.score, g.used) == ("3", True, 1.0, (0,))
    s = parse_strategy("sample@4").decide(attempts, {})
    assert s.score == 0.5 and s.used == (0, 1, 2, 3) and s.correct is False  # 2/4 is not a majority
    s3 = parse_strategy("sample@3").decide(attempts, {})
    assert s3.score == pytest.approx(2 / 3) and s3.used == (0, 1, 2) and s3.correct


def test_maj_reads_only_its_first_k_samples_and_breaks_ties_by_finish():
    attempts = [A(0, "5", False, 30), A(1, "7", True, 20), A(2, "5", False, 40), A(3, "7", True, 50)]
    m2 = parse_strategy("maj@2").decide(attempts, {})
    assert (
        m2.answer == "7" and m2.correct and m2.chosen == 1 and m2.used == (0, 1)
    )  # 1-1 tie: 7 finished first
    m3 = parse_strategy("maj@3").decide(attempts, {})
    assert m3.answer == "5" and not m3.correct and m3.used == (0, 1, 2)
    m4 = parse_strategy("maj@4").decide(attempts, {})
    assert m4.answer == "7" and m4.chosen == 1  # 2-2 tie: 7's first sample (20 tokens) beat 5's (30)


def test_short_m_votes_among_the_first_m_finished_and_pays_for_all():
    attempts = [A(0, "1", False, 40), A(1, "2", True, 25), A(2, "2", True, 30), A(3, "9", False, 30)]
    finish = ["cancelled", "stop", "stop", "stop"]
    d1 = parse_strategy("short-1@4").decide(attempts, {"finish_reason": finish})
    assert d1.answer == "2" and d1.chosen == 1 and d1.used == (0, 1, 2, 3)
    # m=2: samples 1 (25 tok) and 2 (30 tok, beats 3 at 30 on sample id) -> both "2"
    d2 = parse_strategy("short-2@4").decide(attempts, {"finish_reason": finish})
    assert d2.answer == "2" and d2.correct
    # a cancelled sample never votes even if it holds an answer
    d = parse_strategy("short-1@2").decide(
        [A(0, "5", True, 3), A(1, "6", False, 8)], {"finish_reason": ["cancelled", "stop"]}
    )
    assert d.answer == "6" and not d.correct


def test_best_of_n_scorers():
    attempts = [A(0, "1", False, 10), A(1, "2", True, 20), A(2, "3", False, 30)]
    cols = {
        "mean_logprob": [-0.1, -0.5, None],
        "self_certainty": [1.0, 3.0, 2.0],
        "answer_text": ["1\nConfidence: 20%", "2\nConfidence: 90%", "3"],
        "rm": [0.3, None, 0.9],
        "finish_reason": ["stop"] * 3,
    }
    pick = {
        s: parse_strategy(f"bon@3:{s}").decide(attempts, cols).chosen
        for s in ("logprob", "self-certainty", "verbal", "oracle", "rm:x/y")
    }
    assert pick == {"logprob": 0, "self-certainty": 1, "verbal": 1, "oracle": 1, "rm:x/y": 2}
    # bon@2 sees only samples 0 and 1
    assert parse_strategy("bon@2:rm:x/y").decide(attempts, cols).chosen == 0
    # oracle == pass@k: correct iff any sample is
    assert parse_strategy("bon@3:oracle").decide(attempts, cols).correct
    none_right = [A(i, "0", False, 10) for i in range(3)]
    assert not parse_strategy("bon@3:oracle").decide(none_right, cols).correct
