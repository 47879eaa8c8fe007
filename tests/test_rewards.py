import functools
import importlib.util

import pytest

from thinkcost.rewards import completion_text, grade_parts, rlcr, rlcr_reward, rlcr_score
from thinkcost.types import Verdict

# ----------------------------------------------------------------------------- the formula


@pytest.mark.parametrize(
    "correct, confidence, expected",
    [
        (True, 1.0, 1.0),
        (True, 0.8, 1 - 0.04),
        (True, 0.0, 0.0),
        (False, 0.0, 0.0),
        (False, 0.3, -0.09),
        (False, 1.0, -1.0),
        (True, 0.5, 0.75),
        (False, 0.5, -0.25),
    ],
)
def test_rlcr_score_is_correctness_minus_brier(correct, confidence, expected):
    assert rlcr_score(correct, confidence) == pytest.approx(expected)


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_rlcr_score_rejects_confidence_outside_unit_interval(bad):
    with pytest.raises(ValueError):
        rlcr_score(True, bad)


def test_rlcr_reward_scalar_core():
    assert rlcr_reward("The answer is 42.", "42", 0.9) == pytest.approx(1 - 0.01)
    assert rlcr_reward("The answer is 41.", "42", 0.9) == pytest.approx(-0.81)
    assert rlcr_reward("The answer is 42.", "42", None) == 0.0  # missing counts as 0 by default
    assert rlcr_reward("The answer is 42.", "42", None, missing_confidence=0.5) == pytest.approx(0.75)
    # the confidence statement is never graded as the answer
    assert rlcr_reward("42\nConfidence: 90%", "42", 0.9) == pytest.approx(0.99)
    assert rlcr_reward("The answer is 42.", None, 0.2) == pytest.approx(-0.04)  # no gold: never right


# ----------------------------------------------------------------------------- TRL convention

GOLD = ["42", "7", "10", "3"]
TEXTS = [
    "6 * 7 = 42.\nThe answer is 42.\nConfidence: 80%",  # right, 0.8 -> 1 - 0.04
    "The answer is 8.\nConfidence: 0.9",  # wrong, 0.9 -> -0.81
    "\\boxed{10}",  # right, missing -> 1 - 1 = 0
    "<think>confidence: 10% so far... maybe 3</think>The answer is 3. I am 60% confident.",  # right, 0.6
]
EXPECTED = [0.96, -0.81, 0.0, 1 - 0.16]


def test_rlcr_on_string_completions():
    prompts = ["q"] * 4
    assert rlcr(prompts=prompts, completions=TEXTS, answer=GOLD) == pytest.approx(EXPECTED)


def test_rlcr_on_chat_message_completions():
    prompts = [[{"role": "user", "content": "q"}]] * 4
    completions = [[{"role": "assistant", "content": t}] for t in TEXTS]
    assert rlcr(prompts=prompts, completions=completions, answer=GOLD) == pytest.approx(EXPECTED)


def test_rlcr_accepts_gold_column_and_ignores_other_trl_keywords():
    logged = {}
    rewards = rlcr(
        prompts=["q"] * 4,
        completions=TEXTS,
        completion_ids=[[1, 2]] * 4,
        gold=GOLD,
        trainer_state=object(),
        log_extra=lambda column, values: None,
        log_metric=logged.__setitem__,
        some_other_column=[1, 2, 3, 4],
    )
    assert rewards == pytest.approx(EXPECTED)
    assert logged["rlcr/accuracy"] == 0.75
    assert logged["rlcr/confidence_missing"] == 0.25
    assert logged["rlcr/reward"] == pytest.approx(sum(EXPECTED) / 4)


def test_rlcr_missing_confidence_option():
    texts = ["The answer is 42.", "The answer is 41."]
    assert rlcr(prompts=["q"] * 2, completions=texts, answer=["42", "42"]) == [0.0, 0.0]
    half = functools.partial(rlcr, missing_confidence=0.5)
    assert half(prompts=["q"] * 2, completions=texts, answer=["42", "42"]) == pytest.approx([0.75, -0.25])
    # a worded confidence is missing too
    assert rlcr(prompts=["q"], completions=["The answer is 42. Confidence: high"], answer=["42"]) == [0.0]


def test_rlcr_custom_verifier():
    def exact(answer: str, gold: str) -> Verdict:
        return Verdict(answer.strip() == gold, answer, "exact")

    rewards = rlcr(prompts=["q"], completions=["yes\nConfidence: 70%"], answer=["yes"], verifier=exact)
    assert rewards == pytest.approx([1 - 0.09])


def test_rlcr_needs_a_gold_column_of_the_right_length():
    with pytest.raises(ValueError, match="answer"):
        rlcr(prompts=["q"], completions=["The answer is 1."])
    with pytest.raises(ValueError, match="entries"):
        rlcr(prompts=["q"], completions=["The answer is 1."], answer=["1", "2"])


def test_completion_text_forms():
    assert completion_text("plain") == "plain"
    assert completion_text([{"role": "assistant", "content": "a"}]) == "a"
    assert completion_text([{"role": "assistant", "content": [{"type": "text", "text": "b"}]}]) == "b"
    assert completion_text([{"role": "tool", "content": "x"}, {"role": "assistant", "content": "c"}]) == "c"
    assert completion_text(None) == ""


def test_grade_parts_reads_confidence_after_think_only():
    answer, conf = grade_parts("<think>Confidence: 90%</think>The answer is 5.")
    assert conf is None and "5" in answer
    answer, conf = grade_parts("<think>unfinished, confidence: 90%")
    assert conf is None and answer == ""


# ----------------------------------------------------------------------------- one real GRPO step


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("trl") is None, reason="trl is not installed")
def test_one_grpo_step_with_rlcr(tmp_path):
    pytest.importorskip("datasets")
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from thinkcost.engines.hf import load_hf, save_hf
    from thinkcost.models import resolve_model

    try:
        source = resolve_model("smollm2-135m")
    except Exception as e:  # the packaged weights are an optional install
        pytest.skip(f"smollm2-135m is not available: {e}")
    model, tok = load_hf(source)
    model_dir = tmp_path / "smollm2"
    save_hf(model, tok, model_dir)
    del model

    calls = []

    def reward(prompts, completions, **kwargs):
        rewards = rlcr(prompts=prompts, completions=completions, **kwargs)
        calls.append((completions, rewards))
        return rewards

    data = Dataset.from_list(
        [
            {
                "prompt": [{"role": "user", "content": "What is 2 + 2? End with 'Confidence: NN%'."}],
                "answer": "4",
            },
            {
                "prompt": [{"role": "user", "content": "What is 3 + 4? End with 'Confidence: NN%'."}],
                "answer": "7",
            },
        ]
    )
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"),
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=16,
        learning_rate=1e-6,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        use_cpu=True,
        bf16=False,
        seed=0,
    )
    trainer = GRPOTrainer(model=str(model_dir), reward_funcs=[reward], args=args, train_dataset=data)
    result = trainer.train()

    assert calls, "the reward function was never called"
    # TRL counts the batch in completions: 2 per step = 1 prompt x 2 generations
    assert all(len(c) == len(r) == 2 for c, r in calls)
    assert all(isinstance(c[0], list) and c[0][0]["role"] == "assistant" for c, _ in calls)  # chat form
    assert all(-1.0 <= x <= 1.0 for _, r in calls for x in r)
    assert trainer.state.global_step == 1
    assert any("rlcr/reward" in row for row in trainer.state.log_history)  # log_metric reached TRL
    assert result.global_step == 1
