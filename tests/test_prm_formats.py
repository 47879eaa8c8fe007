"""Each PRM format's reader against a tiny random model of that format: the positions it reads
are exactly those an independent computation picks (tokens found by a separate walk over the
text, not the reader's layout), and the rewards equal that computation's values."""

from __future__ import annotations

import re

import pytest
import torch
import transformers
from tokenizers import Regex, Tokenizer, models, pre_tokenizers

from thinkcost.errors import UserError
from thinkcost.search.prm_formats import PRMReader, detect_format

Q = "What is 2 + 3 ?"
STEPS = ["First add 2 and 3 .", "So we get 5 .", "The answer is 5 ."]
PIECE = re.compile(r"<extra_0>|<\|[a-z_]+\|>|ки|\n|\w+|[^\w\s]")
SPECIAL = [
    "<unk>",
    "<bos>",
    "<eos>",
    "<pad>",
    "<extra_0>",
    "<|user|>",
    "<|assistant|>",
    "<|system|>",
    "<|end|>",
]
TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
CORPUS = " ".join(
    [
        Q,
        *STEPS,
        "Step 1 2 3 4 : + - ки",
        "Please reason step by step , and put your final answer within \\ boxed { } .",
    ]
)


def tokenizer():
    words = sorted({p for p in PIECE.findall(CORPUS)} | {"\n"} - set(SPECIAL))
    vocab = {t: i for i, t in enumerate(SPECIAL + words)}
    tk = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(" +"), behavior="removed"),
            pre_tokenizers.Split(Regex(PIECE.pattern), behavior="isolated"),
        ]
    )
    tok = transformers.PreTrainedTokenizerFast(
        tokenizer_object=tk, unk_token="<unk>", bos_token="<bos>", eos_token="<eos>", pad_token="<pad>"
    )
    tok.add_special_tokens({"additional_special_tokens": SPECIAL[4:]})
    tok.chat_template = TEMPLATE
    return tok


def config(tok, **kw):
    return transformers.Qwen2Config(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=1, vocab_size=len(tok), **kw,
    )  # fmt: skip


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def pieces(tok, text):
    """The text's token ids by an independent walk: one regex piece = one id."""
    return [tok.convert_tokens_to_ids(p) for p in PIECE.findall(text)]


def _forward(model, ids, **kw):
    with torch.inference_mode():
        return model(input_ids=torch.tensor([ids]), **kw)


def test_qwen_reads_p_positive_at_each_extra_0(tok):
    torch.manual_seed(0)
    model = transformers.Qwen2ForTokenClassification(config(tok, num_labels=2)).eval()
    reader = PRMReader("qwen", model, tok)
    text = (
        f"<|system|>{reader_system()}<|end|>\n<|user|>{Q}<|end|>\n<|assistant|>"
        + "".join(s + "<extra_0>" for s in STEPS)
        + "<|end|>\n"
    )
    ids = pieces(tok, text)
    want = [i for i, p in enumerate(PIECE.findall(text)) if p == "<extra_0>"]
    lay = reader.layout(Q, STEPS)
    assert lay.ids == ids and lay.positions == want
    probs = torch.softmax(_forward(model, ids).logits[0], -1)[:, 1]
    got, n = reader.score(Q, STEPS)
    assert got == pytest.approx([float(probs[i]) for i in want], abs=1e-6) and n == len(ids)


def reader_system():
    from thinkcost.search.prm_formats import QWEN_SYSTEM

    return QWEN_SYSTEM


def test_math_shepherd_reads_plus_against_minus_at_each_tag(tok):
    torch.manual_seed(1)
    model = transformers.Qwen2ForCausalLM(config(tok)).eval()
    reader = PRMReader("math-shepherd", model, tok)
    text = Q + " " + "".join(f"Step {i + 1}: {s} ки\n" for i, s in enumerate(STEPS))
    ps = PIECE.findall(text)
    want = [i for i, p in enumerate(ps) if p == "ки"]
    assert reader.layout(Q, STEPS).positions == want and len(want) == 3
    logits = _forward(model, pieces(tok, text)).logits[0]
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    expect = [float(torch.sigmoid(logits[i, plus] - logits[i, minus])) for i in want]  # 2-way softmax
    assert reader.score(Q, STEPS)[0] == pytest.approx(expect, abs=1e-5)


def test_rlhflow_reads_the_prediction_before_each_assistant_plus(tok):
    torch.manual_seed(2)
    model = transformers.Qwen2ForCausalLM(config(tok)).eval()
    reader = PRMReader("rlhflow", model, tok)
    plus, minus = tok.convert_tokens_to_ids("+"), tok.convert_tokens_to_ids("-")
    expect = []
    for i in range(len(STEPS)):  # one forward per step, as the model card scores a prefix
        turns = "".join(
            f"<|user|>{(Q + ' ' + s) if j == 0 else s}<|end|>\n<|assistant|>+<|end|>\n"
            for j, s in enumerate(STEPS[: i + 1])
        )
        ps = PIECE.findall(turns)
        at = len(ps) - 3  # "+", "<|end|>", "\n" close the prefix: "+" is third from the end
        assert ps[at] == "+"
        logits = _forward(model, pieces(tok, turns)).logits[0, at - 1]
        expect.append(float(torch.sigmoid(logits[plus] - logits[minus])))
    assert reader.score(Q, STEPS)[0] == pytest.approx(expect, abs=1e-5)
    # the question holds a "+" too: only the assistant's labels are read
    assert PIECE.findall(Q).count("+") == 1


def test_skywork_reads_the_value_head_at_each_step_token(tok):
    torch.manual_seed(3)
    model = transformers.Qwen2ForCausalLM(config(tok)).eval()
    head = torch.nn.Linear(16, 1)
    reader = PRMReader("skywork", model, tok, value_head=head)
    ids = [tok.bos_token_id, *pieces(tok, Q + "\n")]
    want = []
    for s in STEPS:
        ids += [*pieces(tok, s), tok.convert_tokens_to_ids("\n")]
        want.append(len(ids) - 1)
    lay = reader.layout(Q, STEPS)
    assert lay.ids == ids and lay.positions == want
    hidden = _forward(model, ids, output_hidden_states=True).hidden_states[-1][0]
    with torch.inference_mode():
        expect = [float(torch.sigmoid(head(hidden[i]))) for i in want]
    assert reader.score(Q, STEPS)[0] == pytest.approx(expect, abs=1e-5)


def test_trl_token_classifier_reads_each_steps_last_token(tok):
    torch.manual_seed(4)
    model = transformers.Qwen2ForTokenClassification(config(tok, num_labels=2)).eval()
    reader = PRMReader("trl", model, tok)
    ids = [tok.bos_token_id, *pieces(tok, Q)]
    want = []
    for s in STEPS:
        ids += pieces(tok, s + "\n")
        want.append(len(ids) - 1)
    lay = reader.layout(Q, STEPS)
    assert lay.ids == ids and lay.positions == want
    assert all(ids[i] == tok.convert_tokens_to_ids("\n") for i in want)
    probs = torch.softmax(_forward(model, ids).logits[0], -1)[:, 1]
    assert reader.score(Q, STEPS)[0] == pytest.approx([float(probs[i]) for i in want], abs=1e-6)


def test_format_detection_and_bad_formats(tok):
    tc = transformers.Qwen2Config(architectures=["Qwen2ForTokenClassification"])
    assert (
        detect_format(transformers.Qwen2Config(architectures=["Qwen2ForProcessRewardModel"]), tok) == "qwen"
    )
    assert detect_format(tc, tok) == "qwen"  # a token classifier whose vocab has <extra_0>
    plain = transformers.AutoTokenizer.from_pretrained  # noqa: F841 - (no hub: build another vocab)
    t2 = tokenizer()
    t2_vocab = {k: v for k, v in t2.get_vocab().items() if k not in ("<extra_0>", "ки")}

    class V:
        chat_template = TEMPLATE

        def get_vocab(self):
            return t2_vocab

    assert detect_format(tc, V()) == "trl"
    cl = transformers.Qwen2Config(architectures=["Qwen2ForCausalLM"])
    assert detect_format(cl, tok) == "math-shepherd"  # its vocab has the ки tag
    assert detect_format(cl, V()) == "rlhflow"
    assert detect_format(cl, V(), has_value_head=True) == "skywork"
    with pytest.raises(UserError, match="--prm-format"):
        detect_format(transformers.Qwen2Config(architectures=["Mystery"]), V())
    with pytest.raises(UserError, match="--prm-format"):
        PRMReader("nope", transformers.Qwen2ForCausalLM(config(tok)), tok)
    # a step holding the step tag would shift every later reward: refused
    model = transformers.Qwen2ForCausalLM(config(tok)).eval()
    with pytest.raises(UserError, match="step positions"):
        PRMReader("math-shepherd", model, tok).score(Q, ["a ки b"])
