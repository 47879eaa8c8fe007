"""A real (randomly initialised) Qwen2 small enough for unit tests of weight transforms."""

from __future__ import annotations

import torch
import transformers


def tiny_qwen2(
    *, tie: bool = True, seed: int = 0, layers: int = 2, hidden: int = 64
) -> transformers.Qwen2ForCausalLM:
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        hidden_size=hidden,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=256,
        tie_word_embeddings=tie,
    )
    return transformers.Qwen2ForCausalLM(config).eval()
