"""Tiny random Qwen2 models and traces for the recover tests (every Linear a multiple of 32
wide, as GPTQ packing needs)."""

from __future__ import annotations

import torch
import transformers

from thinkcost.recover.data import Trace


def tiny_qwen2(
    seed: int = 0, *, layers: int = 2, tie: bool = True, init: float = 0.02
) -> transformers.Qwen2ForCausalLM:
    """`init` = initializer_range: larger makes a peakier teacher, so 2-bit damage shows in the KL."""
    torch.manual_seed(seed)
    config = transformers.Qwen2Config(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=96,
        tie_word_embeddings=tie,
        initializer_range=init,
    )
    return transformers.Qwen2ForCausalLM(config).eval()


def random_traces(vocab: int, n: int = 4, seed: int = 1, prompt_len: int = 5, new: int = 8) -> list[Trace]:
    """Seeded random token traces: the KD loss matches distributions at every position, so the
    loop's mechanics do not need the teacher's own (slow to generate) continuations."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (n, prompt_len + new), generator=gen).tolist()
    return [Trace(f"p{i}", tuple(r[:prompt_len]), tuple(r[prompt_len:])) for i, r in enumerate(ids)]
