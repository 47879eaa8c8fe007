"""Outcome reward model for best-of-N: a Hugging Face sequence-classification model that
scores a whole conversation (prompt + one answer) with one scalar.

Why batch-invariance matters: bon@k compares scores of answers that were scored in different
batches with different padding, so a score must depend on the conversation alone. Sequence-
classification heads in transformers read the logits at the last token that is not the pad
id; with `config.pad_token_id` set that position is the same padded or not, on either side.
"""

from __future__ import annotations

import os

from ..errors import UserError
from ..models import load_pretrained

EXPECTED = "a Hugging Face sequence-classification reward model (local dir or hub id)"
_HUGE = 10**6  # tokenizers without a real limit report ~1e30 as model_max_length


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0]}" if text else type(e).__name__


class RewardModel:
    """Scores (prompt, answer) pairs with a 1-label (reward = logit) or 2-label
    (reward = logit[1] - logit[0], the log-odds of "good") classifier."""

    def __init__(
        self,
        name_or_path: str | os.PathLike[str],
        device: str = "cpu",
        dtype: str = "float32",
        batch_size: int = 8,
    ):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        name_or_path = str(name_or_path)
        if batch_size < 1:
            raise UserError(f"reward model {name_or_path!r}: batch_size must be >= 1, got {batch_size}")
        torch_dtype = getattr(torch, dtype, None)
        if not isinstance(torch_dtype, torch.dtype):
            raise UserError(
                f"reward model {name_or_path!r}: unknown dtype {dtype!r}; expected e.g. float32, bfloat16"
            )
        looks_local = os.path.isabs(name_or_path) or name_or_path.startswith((".", "~"))
        if looks_local and not os.path.isdir(os.path.expanduser(name_or_path)):
            raise UserError(f"reward model {name_or_path!r}: no such directory; expected {EXPECTED}")
        path = os.path.expanduser(name_or_path)
        try:
            tok = load_pretrained(AutoTokenizer.from_pretrained, path, "reward model")
            model = load_pretrained(
                AutoModelForSequenceClassification.from_pretrained, path, "reward model", dtype=torch_dtype
            )
        except UserError:  # the hub was unreachable, or the repo is missing or gated: already one line
            raise
        except Exception as e:  # transformers raises OSError, ValueError, KeyError, ... here
            raise UserError(
                f"reward model {name_or_path!r} could not be loaded ({_first_line(e)}); expected {EXPECTED}"
            ) from e
        num_labels = model.config.num_labels
        if num_labels not in (1, 2):
            raise UserError(
                f"reward model {name_or_path!r} has {num_labels} labels; expected {EXPECTED} "
                "with 1 label (reward = logit) or 2 labels (reward = logit1 - logit0)"
            )
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        if tok.pad_token_id is None:
            raise UserError(f"reward model {name_or_path!r}: tokenizer has neither a pad nor an eos token")
        if model.config.pad_token_id is None:
            model.config.pad_token_id = tok.pad_token_id
        tok.padding_side = "right"
        # Keep the end of long conversations: the reward is read at the final token.
        tok.truncation_side = "left"
        self.name = name_or_path
        self.tok = tok
        self.model = model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.num_labels = num_labels
        self.max_length = self._max_length()

    def _max_length(self) -> int:
        limits = [self.tok.model_max_length, getattr(self.model.config, "max_position_embeddings", None)]
        real = [int(x) for x in limits if isinstance(x, int) and 0 < x < _HUGE]
        return min(real) if real else 4096

    def render(self, prompt_messages: list[dict], answer: str) -> tuple[str, bool]:
        """The conversation as the model reads it, and whether it came from a chat template
        (templated text already holds its special tokens, so none are added again)."""
        conv = [*prompt_messages, {"role": "assistant", "content": answer}]
        if getattr(self.tok, "chat_template", None):
            return self.tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=False), True
        return "\n".join(f"{m['role']}: {m['content']}" for m in conv), False

    def score(self, prompt_messages: list[dict], answers: list[str]) -> list[float]:
        """One reward per answer to the same prompt; higher = better."""
        import torch

        if not answers:
            return []
        rendered = [self.render(prompt_messages, a) for a in answers]
        templated = rendered[0][1]
        texts = [r[0] for r in rendered]
        # Longest first, so a batch pads to similar lengths; scores do not depend on batching.
        order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))
        out: list[float] = [0.0] * len(texts)
        for start in range(0, len(order), self.batch_size):
            idx = order[start : start + self.batch_size]
            enc = self.tok(
                [texts[i] for i in idx],
                padding=True,
                truncation=True,
                max_length=self.max_length,
                add_special_tokens=not templated,
                return_tensors="pt",
            ).to(self.device)
            with torch.inference_mode():
                logits = self.model(**enc).logits.float()
            reward = logits[:, 0] if self.num_labels == 1 else logits[:, 1] - logits[:, 0]
            for i, r in zip(idx, reward.tolist(), strict=True):
                out[i] = float(r)
        return out
