"""Process reward model formats: how each public PRM family wants (question, steps) laid out
and where in its output the step rewards are. One reader per format, all behind
`reader.score(question, steps) -> (one reward per step, tokens read)`:

- `qwen` (Qwen2.5-Math-PRM): chat template (system: reason step by step, user: the question,
  assistant: the steps each followed by `<extra_0>`); a 2-class head per token, the reward is
  P(class 1 = positive) at each `<extra_0>`.
- `skywork` (Skywork-o1-Open-PRM): BOS + question + "\\n", then each step's tokens followed by
  the step token ("\\n"); a scalar value head, the reward is sigmoid(value) at each step token.
- `math-shepherd`: question + " " + the steps, each ending in the tag " ки"; a causal LM, the
  reward is P("+") against P("-") from the logits at each tag position.
- `rlhflow` (RLHFlow Llama3.1-8B-PRM): the steps as chat turns (user: question + first step,
  assistant: "+", user: next step, ...); a causal LM, the reward is P("+") against P("-")
  predicted just before each assistant "+".
- `trl` (TRL `PRMTrainer` token classifiers): [BOS] + prompt tokens + each step tokenized with
  the separator ("\\n"); a 2-class token classifier, P(class 1) at each step's last token.

Why one forward pass per path: the rewards of all steps come from positions of one sequence,
so a path's full step reward list costs one prefill of its text (the tokens counted).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UserError

FORMATS = ("qwen", "skywork", "math-shepherd", "rlhflow", "trl")
QWEN_STEP = "<extra_0>"
QWEN_SYSTEM = "Please reason step by step, and put your final answer within \\boxed{}."
SHEPHERD_TAG = "ки"


@dataclass
class Layout:
    """A PRM input: its token ids and the positions whose output holds each step's reward."""

    ids: list[int]
    positions: list[int]


class PRMReader:
    """Lays out (question, steps) for one format and reads the rewards off the model output."""

    def __init__(
        self, fmt: str, model: Any, tok: Any, *, separator: str = "\n", value_head: Any = None
    ) -> None:
        if fmt not in FORMATS:
            raise UserError(f"--prm-format {fmt!r}: expected one of {', '.join(FORMATS)}")
        self.fmt, self.model, self.tok, self.separator, self.value_head = (
            fmt,
            model,
            tok,
            separator,
            value_head,
        )
        self.device = next(model.parameters()).device

    def _enc(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def _single(self, text: str, what: str) -> int:
        ids = self._enc(text)
        if not ids:
            raise UserError(f"PRM format {self.fmt}: the tokenizer has no token for {what} {text!r}")
        return ids[-1]

    def layout(self, question: str, steps: Sequence[str]) -> Layout:
        steps = [s.strip() for s in steps]
        if self.fmt == "qwen":
            conv = [
                {"role": "system", "content": QWEN_SYSTEM},
                {"role": "user", "content": question},
                {"role": "assistant", "content": QWEN_STEP.join(steps) + QWEN_STEP},
            ]
            text = self.tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=False)
            ids = self._enc(text)
            tag = self._single(QWEN_STEP, "the step token")
            return Layout(ids, [i for i, t in enumerate(ids) if t == tag])
        if self.fmt == "math-shepherd":
            tag = self._single(SHEPHERD_TAG, "the step tag")
            body = "".join(f"Step {i + 1}: {s} {SHEPHERD_TAG}\n" for i, s in enumerate(steps))
            ids = self._enc(f"{question} {body}")
            return Layout(ids, [i for i, t in enumerate(ids) if t == tag])
        if self.fmt == "rlhflow":
            plus = self._single("+", "the good label")
            conv: list[dict[str, str]] = []
            positions, ids = [], []
            for i, s in enumerate(steps):
                conv += [
                    {"role": "user", "content": f"{question} {s}" if i == 0 else s},
                    {"role": "assistant", "content": "+"},
                ]
                ids = self._enc(self.tok.apply_chat_template(conv, tokenize=False))
                # the assistant "+" is the last "+" of this prefix; its prediction sits one before
                positions.append(max(j for j, t in enumerate(ids) if t == plus) - 1)
            return Layout(ids, positions)
        # skywork and trl: prompt tokens, then each step's tokens closed by the separator
        bos = getattr(self.tok, "bos_token_id", None)
        if self.fmt == "skywork":
            ids = ([bos] if bos is not None else []) + self._enc(question + "\n")
            sep = self._single(self.separator, "the step token")
            positions = []
            for s in steps:
                ids += [*self._enc(s), sep]
                positions.append(len(ids) - 1)
            return Layout(ids, positions)
        ids = ([bos] if bos is not None else []) + self._enc(question)
        positions = []
        for s in steps:
            ids += self._enc(s + self.separator)
            positions.append(len(ids) - 1)
        return Layout(ids, positions)

    def rewards_from(self, out: Any, hidden: Any, layout: Layout) -> list[float]:
        """Step rewards from one forward's output (batch of 1)."""
        import torch

        pos = torch.tensor(layout.positions, dtype=torch.long)
        if self.fmt in ("qwen", "trl"):
            probs = torch.softmax(out.logits[0].float(), dim=-1)
            return [float(x) for x in probs[pos, 1]]
        if self.fmt == "skywork":
            values = self.value_head(hidden[0]).float().view(-1)
            return [float(x) for x in torch.sigmoid(values[pos])]
        plus = self._single("+", "the good label")
        minus = self._single("-", "the bad label")
        pair = out.logits[0][:, [plus, minus]].float()
        return [float(x) for x in torch.softmax(pair, dim=-1)[pos, 0]]

    def score(self, question: str, steps: Sequence[str]) -> tuple[list[float], int]:
        import torch

        if not steps:
            return [], 0
        lay = self.layout(question, steps)
        if len(lay.positions) != len(steps):
            raise UserError(
                f"PRM format {self.fmt}: found {len(lay.positions)} step positions for {len(steps)} steps "
                "(a step contains the format's step token?)"
            )
        with torch.inference_mode():
            ids = torch.tensor([lay.ids], device=self.device)
            out = self.model(input_ids=ids, output_hidden_states=self.fmt == "skywork")
            hidden = out.hidden_states[-1] if self.fmt == "skywork" else None
            return self.rewards_from(out, hidden, lay), len(lay.ids)


def detect_format(config: Any, tok: Any, has_value_head: bool = False) -> str:
    """The format of a PRM from its config and tokenizer; `--prm-format` overrides it."""
    arch = " ".join(getattr(config, "architectures", None) or [])
    vocab = tok.get_vocab() if hasattr(tok, "get_vocab") else {}
    if "ProcessRewardModel" in arch or ("TokenClassification" in arch and QWEN_STEP in vocab):
        return "qwen"
    if has_value_head or "Prm" in arch:
        return "skywork"
    if "TokenClassification" in arch:
        return "trl"
    if SHEPHERD_TAG in vocab:
        return "math-shepherd"
    if "CausalLM" in arch and getattr(tok, "chat_template", None):
        return "rlhflow"
    raise UserError(
        f"cannot tell the PRM format of architectures {arch or 'unknown'!r}; set --prm-format to one of {', '.join(FORMATS)}"
    )


def load_prm(name: str, *, fmt: str | None = None, device: str = "cpu") -> PRMReader:
    """A local PRM directory (or hub id) -> its reader. The Qwen PRM ships its own modelling
    code, so that format loads with trust_remote_code (the user named the model)."""
    import torch
    from transformers import (
        AutoConfig,
        AutoModel,
        AutoModelForCausalLM,
        AutoModelForTokenClassification,
        AutoTokenizer,
    )

    from ..models import load_pretrained

    path = os.path.expanduser(name)
    remote = {"trust_remote_code": True}
    tok = load_pretrained(AutoTokenizer.from_pretrained, path, "process reward model", **remote)
    config = load_pretrained(AutoConfig.from_pretrained, path, "process reward model", **remote)
    head_file = os.path.join(path, "value_head.pt")
    fmt = fmt or detect_format(config, tok, has_value_head=os.path.isfile(head_file))
    if fmt == "qwen":
        cls = (
            AutoModel
            if "ProcessRewardModel" in " ".join(config.architectures or [])
            else AutoModelForTokenClassification
        )
    elif fmt == "trl":
        cls = AutoModelForTokenClassification
    else:
        cls = AutoModelForCausalLM
    model = load_pretrained(cls.from_pretrained, path, "process reward model", **remote).to(device).eval()
    head = None
    if fmt == "skywork":
        if not os.path.isfile(head_file):
            raise UserError(f"PRM {name!r} (skywork format): expected its value head in {head_file}")
        state = torch.load(head_file, map_location=device)
        weight = (
            state["weight"]
            if "weight" in state
            else next(v for k, v in state.items() if k.endswith("weight"))
        )
        head = torch.nn.Linear(weight.shape[1], 1).to(device)
        head.load_state_dict({"weight": weight, "bias": state.get("bias", torch.zeros(1))})
    return PRMReader(fmt, model, tok, value_head=head)
