"""RewardModel against a tiny random Llama classifier with the real SmolLM2 tokenizer (offline)."""

import pytest
import torch
from transformers import AutoTokenizer, LlamaConfig, LlamaForSequenceClassification

from thinkcost.errors import UserError
from thinkcost.strategies.reward_model import RewardModel

PROMPT = [{"role": "user", "content": "What is 17 + 25? Put the answer in \\boxed{}."}]
# Different lengths, so a batch pads most of them.
ANSWERS = [
    "\\boxed{42}",
    "17 + 25 = 42, so the answer is \\boxed{42}.",
    "I think it is 41.",
    "Let me add: 17 + 20 = 37, and 37 + 5 = 42. The answer is \\boxed{42}. Double-check: 42 - 25 = 17.",
    "",
]


def save_tiny_rm(path, tok, num_labels: int = 1, seed: int = 0) -> LlamaForSequenceClassification:
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        num_labels=num_labels,
        pad_token_id=tok.pad_token_id,
        initializer_range=0.5,  # large enough that rewards differ by O(1) between texts
    )
    model = LlamaForSequenceClassification(config).eval()
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return model


def direct_logits(model, tok, text: str) -> torch.Tensor:
    """One conversation alone, no padding: the reference the batched scores must equal."""
    with torch.no_grad():
        return model(**tok(text, return_tensors="pt")).logits[0]


def render(tok, answer: str) -> str:
    conv = [*PROMPT, {"role": "assistant", "content": answer}]
    return tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)


@pytest.fixture(scope="module")
def tok(smollm):
    return smollm[1]


def test_scores_equal_unbatched_direct_computation(tmp_path, tok):
    model = save_tiny_rm(tmp_path, tok)
    rm = RewardModel(str(tmp_path), batch_size=3)
    scores = rm.score(PROMPT, ANSWERS)
    expected = [direct_logits(model, tok, render(tok, a))[0].item() for a in ANSWERS]
    assert scores == pytest.approx(expected, abs=1e-5)
    # The check has teeth: the texts really score differently, and a batch really pads.
    assert max(expected) - min(expected) > 1e-2
    lengths = {len(tok(render(tok, a)).input_ids) for a in ANSWERS}
    assert len(lengths) == len(ANSWERS)
    best = max(range(len(scores)), key=scores.__getitem__)
    assert best == max(range(len(expected)), key=expected.__getitem__)


def test_scores_do_not_depend_on_batch_size_order_or_saved_padding_side(tmp_path, tok):
    save_tiny_rm(tmp_path, tok)
    one = RewardModel(tmp_path, batch_size=1).score(PROMPT, ANSWERS)
    many = RewardModel(tmp_path, batch_size=8).score(PROMPT, ANSWERS)
    assert many == pytest.approx(one, abs=1e-5)
    assert RewardModel(tmp_path).score(PROMPT, ANSWERS[::-1]) == pytest.approx(one[::-1], abs=1e-5)
    left = AutoTokenizer.from_pretrained(tmp_path)
    left.padding_side = "left"
    left.save_pretrained(tmp_path)
    assert RewardModel(tmp_path, batch_size=8).score(PROMPT, ANSWERS) == pytest.approx(one, abs=1e-5)


def test_two_label_model_scores_logit1_minus_logit0(tmp_path, tok):
    model = save_tiny_rm(tmp_path, tok, num_labels=2, seed=1)
    scores = RewardModel(tmp_path, batch_size=2).score(PROMPT, ANSWERS)
    expected = []
    for a in ANSWERS:
        logits = direct_logits(model, tok, render(tok, a))
        expected.append((logits[1] - logits[0]).item())
    assert scores == pytest.approx(expected, abs=1e-5)


def test_without_chat_template_lines_are_role_colon_content(tmp_path, tok):
    model = save_tiny_rm(tmp_path, tok)
    plain = AutoTokenizer.from_pretrained(tmp_path)
    plain.chat_template = None
    plain.save_pretrained(tmp_path)
    (tmp_path / "chat_template.jinja").unlink(missing_ok=True)
    rm = RewardModel(tmp_path)
    assert rm.render(PROMPT, "42") == (f"user: {PROMPT[0]['content']}\nassistant: 42", False)
    expected = [
        direct_logits(model, tok, f"user: {PROMPT[0]['content']}\nassistant: {a}")[0].item() for a in ANSWERS
    ]
    assert rm.score(PROMPT, ANSWERS) == pytest.approx(expected, abs=1e-5)


def test_empty_answers(tmp_path, tok):
    save_tiny_rm(tmp_path, tok)
    assert RewardModel(tmp_path).score(PROMPT, []) == []


def test_missing_path_is_a_user_error_naming_it(tmp_path):
    missing = tmp_path / "no-such-rm"
    with pytest.raises(UserError) as info:
        RewardModel(str(missing))
    msg = str(info.value)
    assert str(missing) in msg
    assert "sequence-classification reward model" in msg
    assert "\n" not in msg


def test_directory_without_a_model_is_a_user_error(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(UserError, match=r"could not be loaded.*sequence-classification reward model") as info:
        RewardModel(tmp_path)
    assert str(tmp_path) in str(info.value)


def test_three_labels_is_a_user_error(tmp_path, tok):
    save_tiny_rm(tmp_path, tok, num_labels=3)
    with pytest.raises(UserError, match="3 labels"):
        RewardModel(tmp_path)


def test_bad_dtype_and_batch_size_are_user_errors(tmp_path, tok):
    save_tiny_rm(tmp_path, tok)
    with pytest.raises(UserError, match="dtype"):
        RewardModel(tmp_path, dtype="float33")
    with pytest.raises(UserError, match="batch_size"):
        RewardModel(tmp_path, batch_size=0)
