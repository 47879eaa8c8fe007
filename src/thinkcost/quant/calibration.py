"""Calibration text for GPTQ-style quantizers: n windows of `seq_len` tokens, seeded.

By default it comes from the task's own prompts (rendered with the model's chat template), so
the Hessians describe the activations the model actually sees when it is evaluated. Prompts
are drawn with a different seed from the evaluated ones, so calibration never sees a test item.
A text file (paragraphs separated by blank lines) or JSONL file (`text` field) can replace them.
"""

from __future__ import annotations

import random
from pathlib import Path

import torch

from ..errors import UserError
from ..jsonl import read_jsonl

CALIB_SEED_OFFSET = 1_000_003


def texts_from_task(task, tokenizer, n_texts: int, seed: int) -> list[str]:
    """Task prompts, chat-templated, from a seed disjoint from the evaluation seed."""
    problems = task.problems(n_texts, seed + CALIB_SEED_OFFSET)
    return [
        tokenizer.apply_chat_template(p.messages, add_generation_prompt=True, tokenize=False)
        for p in problems
    ]


def texts_from_file(path: str | Path) -> list[str]:
    """Plain text (blank-line separated) or JSONL with a `text` field per line."""
    p = Path(path)
    if not p.is_file():
        raise UserError(f"calibration file {str(p)!r} does not exist")
    if p.suffix in (".jsonl", ".json"):
        texts = []
        for i, row in read_jsonl(p, "calibration file"):
            if not isinstance(row.get("text"), str):
                raise UserError(f"{p}:{i}: expected an object with a string field 'text'")
            texts.append(row["text"])
    else:
        texts = [t.strip() for t in p.read_text().split("\n\n") if t.strip()]
    if not texts:
        raise UserError(f"calibration file {str(p)!r} holds no text")
    return texts


def calibration_windows(texts: list[str], tokenizer, n_samples: int, seq_len: int, seed: int) -> torch.Tensor:
    """[n_samples, seq_len] token ids: random windows over the concatenated, shuffled texts."""
    if n_samples < 1 or seq_len < 8:
        raise UserError(f"calibration: expected n_samples >= 1 and seq_len >= 8, got {n_samples}, {seq_len}")
    rng = random.Random(seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    ids: list[int] = []
    for i in order:
        ids.extend(tokenizer(texts[i], add_special_tokens=False).input_ids)
    while len(ids) < seq_len + 1:  # short corpora repeat rather than fail
        ids = ids + ids
    starts = [rng.randrange(0, len(ids) - seq_len) for _ in range(n_samples)]
    return torch.tensor([ids[s : s + seq_len] for s in starts], dtype=torch.long)


def build_calibration(
    task, tokenizer, *, n_samples: int, seq_len: int, calib_file: str | Path | None = None, seed: int = 0
) -> torch.Tensor:
    """[n_samples, seq_len] token ids for GPTQ/Babai: the task's own prompts unless a file is given."""
    if calib_file is not None:
        texts = texts_from_file(calib_file)
    else:
        texts = texts_from_task(task, tokenizer, n_texts=max(64, n_samples * 2), seed=seed)
    return calibration_windows(texts, tokenizer, n_samples, seq_len, seed)
