"""Reasoning formats of real reasoning-model families, decided from the rendered prompt and the
tokenizer, and used by the split, stop strings and budget forcing.

The chat templates are test data written from each family's published rendering
(tests/data/templates); the tokenizer is the real Qwen2.5 tokenizer of the packaged default
model, extended with each family's tags as its own tokenizer has them; the model is a tiny,
randomly initialised Qwen2 run through the real hf engine. Only the model's choices are
scripted: a forward hook adds a large logit to the scripted token, so every decision
downstream (EOS, caps, stop strings, the split, token counts) is the engine's own.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import transformers

from thinkcost.engines.hf import HFEngine
from thinkcost.errors import UserError
from thinkcost.models import resolve_model
from thinkcost.reasoning import NONE, detect_format, format_of, split_reasoning
from thinkcost.types import Request

TEMPLATES = Path(__file__).parent / "data" / "templates"
HARMONY = ["<|start|>", "<|end|>", "<|message|>", "<|channel|>", "<|return|>", "<|constrain|>", "<|call|>"]
R1_SPECIAL = ["<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>", "<｜User｜>", "<｜Assistant｜>"]
ISSUE_TRACE = "Let me compute. Maybe \\boxed{5}? Wait, recheck 3*4"


@pytest.fixture(scope="session")
def qwen_tok_dir(tmp_path_factory) -> Path:
    """The packaged Qwen2.5 tokenizer, saved once as a plain tokenizer dir (fast to reload)."""
    src = resolve_model("qwen2.5-coder-0.5b")
    tok = transformers.AutoTokenizer.from_pretrained(src.path, gguf_file=src.gguf_file)
    out = tmp_path_factory.mktemp("qwen-tok")
    tok.save_pretrained(out)
    return out


def family_tokenizer(base: Path, family: str):
    """The Qwen tokenizer as each family ships it: its tags as tokens, its template, its EOS."""
    tok = transformers.AutoTokenizer.from_pretrained(base)
    if family == "gpt_oss":
        tok.add_tokens(HARMONY, special_tokens=True)
        tok.eos_token = "<|return|>"
    elif family != "qwen2.5":
        tok.add_tokens(["<think>", "</think>"])  # plain added tokens, as in R1/QwQ/Qwen3
    if family == "r1_distill":
        tok.add_tokens(R1_SPECIAL, special_tokens=True)
        tok.bos_token, tok.eos_token = R1_SPECIAL[0], R1_SPECIAL[1]
    if family != "qwen2.5":
        tok.chat_template = (TEMPLATES / f"{family}.jinja").read_text()
    return tok


class Forced:
    """Forward hook that makes the model choose `ids` in order (then EOS): the model still runs,
    only its argmax is decided."""

    def __init__(self, model, ids: list[int], eos: int) -> None:
        self.ids, self.eos, self.step = ids, eos, 0
        self.handle = model.register_forward_hook(self, with_kwargs=True)

    def __call__(self, module, args, kwargs, output):
        tid = self.ids[self.step] if self.step < len(self.ids) else self.eos
        output.logits[:, -1, tid] += 1e4
        self.step += 1
        return output


def engine_for(tok, thinking: str = "auto") -> HFEngine:
    torch.manual_seed(0)
    config = transformers.Qwen2Config(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        vocab_size=len(tok),
        tie_word_embeddings=True,
    )
    model = transformers.Qwen2ForCausalLM(config).eval()
    # one token per forward call: the Forced hook scripts the choice by call count, so drafts
    # (several positions per call) are off here; tests/test_decode_speculative.py covers them
    return HFEngine(model, tok, batch_size=2, thinking=thinking, max_draft=0)


def generate(eng: HFEngine, text: str, **kw):
    ids = eng.tok.encode(text, add_special_tokens=False)
    hook = Forced(eng.model, ids, eng.tok.eos_token_id)
    try:
        req = Request([{"role": "user", "content": "What is 3*4?"}], **kw)
        (c,) = eng.generate([req])
    finally:
        hook.handle.remove()
    return c, ids


# --------------------------------------------------------------------------- detection


@pytest.mark.parametrize(
    ("family", "kind"),
    [
        ("r1_distill", "think-in-prompt"),
        ("qwq", "think-in-prompt"),
        ("qwen3", "think-in-output"),
        ("gpt_oss", "harmony"),
        ("qwen2.5", "none"),
    ],
)
def test_format_is_read_off_the_rendered_prompt(qwen_tok_dir, family, kind):
    fmt = detect_format(family_tokenizer(qwen_tok_dir, family))
    assert fmt.kind == kind
    assert fmt.heuristic == (kind == "none")


def test_thinking_switch_renders_and_decides(qwen_tok_dir):
    tok = family_tokenizer(qwen_tok_dir, "qwen3")
    on, off = engine_for(tok, "on"), engine_for(tok, "off")
    req = Request([{"role": "user", "content": "hi"}])
    assert on.render(req).endswith("<|im_start|>assistant\n")
    assert off.render(req).endswith("<think>\n\n</think>\n\n")
    assert on.fmt.kind == off.fmt.kind == "think-in-output"
    assert "thinking off" in off.fmt.why
    # thinking off: the model answers at once; nothing it writes is reasoning
    c, ids = generate(off, "It is 12.")
    assert (c.reasoning_text, c.answer_text, c.reasoning_tokens, c.answer_tokens) == (
        "",
        "It is 12.",
        0,
        len(ids),
    )


@pytest.mark.parametrize("family", ["r1_distill", "qwen2.5"])
def test_thinking_on_or_off_without_a_switch_is_one_line_error(qwen_tok_dir, family):
    with pytest.raises(
        UserError, match=r"--thinking off: the chat template of the model has no thinking switch"
    ):
        detect_format(family_tokenizer(qwen_tok_dir, family), "off")


# --------------------------------------------------------------------------- think-in-prompt


@pytest.mark.parametrize("family", ["r1_distill", "qwq"])
def test_capped_think_in_prompt_trace_is_unclosed_all_reasoning(qwen_tok_dir, family):
    """The issue's case: the template opened <think>, the model never closed it before the cap.
    The old rules graded `\\boxed{5}` as the answer with 0 reasoning tokens."""
    eng = engine_for(family_tokenizer(qwen_tok_dir, family))
    ids = eng.tok.encode(ISSUE_TRACE, add_special_tokens=False)
    c, _ = generate(eng, ISSUE_TRACE, max_new_tokens=len(ids))
    assert c.finish_reason == "length" and c.text == ISSUE_TRACE
    assert c.think_unclosed and c.answer_text == ""
    assert c.reasoning_text == ISSUE_TRACE
    assert c.reasoning_tokens == c.completion_tokens == len(ids) and c.answer_tokens == 0
    assert c.reasoning_format == "think-in-prompt"
    # what the old split did with the same text: an answer, graded
    assert split_reasoning(ISSUE_TRACE, "length").answer != ""


def test_closed_think_in_prompt_counts_tokens_up_to_the_close(qwen_tok_dir):
    eng = engine_for(family_tokenizer(qwen_tok_dir, "r1_distill"))
    c, ids = generate(eng, "3*4 is 12, so 12.</think>The answer is \\boxed{12}.")
    close = eng.tok.convert_tokens_to_ids("</think>")
    n_reason = ids.index(close) + 1  # independent count: the generated ids through </think>
    assert (c.reasoning_tokens, c.answer_tokens) == (n_reason, len(ids) - n_reason)
    assert c.completion_tokens == len(ids) + 1  # and the EOS
    assert c.reasoning_text == "3*4 is 12, so 12." and c.answer_text == "The answer is \\boxed{12}."
    assert c.token_ids == ids


def test_stop_string_inside_reasoning_never_fires(qwen_tok_dir):
    eng = engine_for(family_tokenizer(qwen_tok_dir, "qwq"))
    c, _ = generate(eng, "I will STOP to think</think> done STOP more words", stop=("STOP",))
    assert c.finish_reason == "stop"
    assert c.text == "I will STOP to think</think> done "
    assert (c.reasoning_text, c.answer_text) == ("I will STOP to think", "done")
    # the model that emits <think> itself: a stop string before it is outside, inside it is not
    eng = engine_for(family_tokenizer(qwen_tok_dir, "qwen3"))
    c, _ = generate(eng, "<think>no STOP here</think> yes STOP tail", stop=("STOP",))
    assert c.text == "<think>no STOP here</think> yes "


def test_bf_cap_forces_the_close_of_the_opened_block(qwen_tok_dir):
    eng = engine_for(family_tokenizer(qwen_tok_dir, "r1_distill"))
    c, _ = generate(eng, "one two three four five six seven eight nine ten", think_budget=3, answer_budget=4)
    assert c.interventions == 1 and "</think>\n\nFinal answer:" in c.text
    assert not c.think_unclosed
    assert c.reasoning_tokens == 4  # three model tokens and the forced </think>


# --------------------------------------------------------------------------- harmony


def test_harmony_channels_split(qwen_tok_dir):
    eng = engine_for(family_tokenizer(qwen_tok_dir, "gpt_oss"))
    trace = (
        "<|channel|>analysis<|message|>3*4 means three fours: 12.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>The answer is 12."
    )
    c, ids = generate(eng, trace + "<|return|>")
    assert c.finish_reason == "stop"
    assert c.reasoning_text == "3*4 means three fours: 12."
    assert c.answer_text == "The answer is 12."
    msg = eng.tok.convert_tokens_to_ids("<|message|>")
    n_reason = len(ids) - ids[::-1].index(msg)  # the ids through the final channel's <|message|>
    assert c.reasoning_tokens == n_reason and c.answer_tokens == len(ids) - 1 - n_reason
    assert c.reasoning_format == "harmony"


def test_harmony_without_final_channel_is_unclosed(qwen_tok_dir):
    eng = engine_for(family_tokenizer(qwen_tok_dir, "gpt_oss"))
    trace = "<|channel|>analysis<|message|>Let me think about \\boxed{5} for a while"
    n = len(eng.tok.encode(trace, add_special_tokens=False))
    c, _ = generate(eng, trace, max_new_tokens=n)
    assert c.think_unclosed and c.answer_text == "" and c.reasoning_tokens == n
    assert c.reasoning_text == "Let me think about \\boxed{5} for a while"


def test_harmony_bf_cap_switches_to_the_final_channel(qwen_tok_dir):
    eng = engine_for(family_tokenizer(qwen_tok_dir, "gpt_oss"))
    c, _ = generate(eng, "<|channel|>analysis<|message|>a b c d e f g h", think_budget=6, answer_budget=3)
    assert "<|end|><|start|>assistant<|channel|>final<|message|>" in c.text
    assert not c.think_unclosed and c.answer_text.startswith("Final answer:")


# --------------------------------------------------------------------------- pure splits


def test_split_rules_per_format():
    tip = format_of("think-in-prompt")
    assert tip.split("a</think>b").answer == "b"
    assert tip.split("<think>\na</think> b").reasoning == "\na"  # a repeated opening tag is dropped
    s = tip.split("no close, \\boxed{3}", "stop")
    assert s.think_unclosed and s.answer == ""  # EOS without </think>: the reasoning never ended
    tio = format_of("think-in-output")
    assert (
        tio.split("direct answer 4").reasoning == ""
        and tio.split("direct answer 4").answer == "direct answer 4"
    )
    assert tio.split("<think>r").think_unclosed
    assert NONE.split("Reasoning.\nThe answer is 4").answer == "The answer is 4"
    assert tip.reasoning_open("abc") and not tip.reasoning_open("a</think>b")
    h = format_of("harmony")
    assert h.reasoning_open("<|channel|>analysis<|message|>x") and not h.reasoning_open(
        "<|channel|>final<|message|>"
    )
    with pytest.raises(ValueError):
        format_of("think-sometimes")


# --------------------------------------------------------------------------- wait-penalty


@pytest.mark.parametrize(
    ("family", "reasoning", "close"),
    [
        ("r1_distill", "Let me see", "</think>"),
        (
            "gpt_oss",
            "<|channel|>analysis<|message|>Let me see",
            "<|end|><|start|>assistant<|channel|>final<|message|>",
        ),
    ],
)
def test_wait_penalty_applies_while_reasoning_only(qwen_tok_dir, family, reasoning, close):
    """The penalty discourages hesitation while the model thinks; once its format's end of
    reasoning is emitted, the answer's logits are left exactly as they are."""
    from thinkcost.engines.hf import _penalise

    eng = engine_for(family_tokenizer(qwen_tok_dir, family))
    req = Request([{"role": "user", "content": "q"}], penalty=5.0, penalty_words=("Wait",))
    row = eng._new_row(req, 0, 3)
    logits = torch.randn(1, len(eng.tok))
    for tid in eng.tok.encode(reasoning, add_special_tokens=False):
        row.step(tid, eng.vocab)
    assert not row.reasoning_ended
    moved = (_penalise(logits, [row]) != logits).nonzero()[:, 1].tolist()
    assert set(moved) == set(row.rules.single)
    for tid in eng.tok.encode(close, add_special_tokens=False):
        row.step(tid, eng.vocab)
    assert row.reasoning_ended
    assert torch.equal(_penalise(logits, [row]), logits)
