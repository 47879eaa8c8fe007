"""RLCR reward for RL fine-tuning: be right, and say how sure you are.

RLCR (Reinforcement Learning with Calibration Rewards) scores a completion as

    reward = correct - (confidence - correct)^2        correct in {0, 1}, confidence in [0, 1]

the correctness reward plus a (negated) Brier score of the stated confidence. The Brier term is a
proper scoring rule, so the expected reward for a given answer is maximised by stating the true
probability that the answer is right; the correctness term keeps accuracy the first objective
(a right answer always scores >= 0, a wrong one <= 0).

`rlcr` follows TRL's GRPO reward-function convention, so it can be passed straight to
`trl.GRPOTrainer(reward_funcs=[rlcr])`. TRL calls it as
`rlcr(prompts=[...], completions=[...], completion_ids=[...], **dataset_columns, trainer_state=...)`,
one entry per completion. A completion is either a string (standard datasets) or a list of chat
messages `[{"role": "assistant", "content": "..."}]` (conversational datasets).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from thinkcost.reasoning import THINK_CLOSE, THINK_OPEN, split_reasoning
from thinkcost.strategies.confidence import parse_verbal_confidence, strip_confidence
from thinkcost.types import Verdict
from thinkcost.verify.math import verify_math

Verifier = Callable[[str, str], Verdict]


def rlcr_score(correct: bool, confidence: float) -> float:
    """The RLCR formula: 1[correct] - (confidence - 1[correct])^2."""
    if not 0.0 <= confidence <= 1.0:  # also rejects NaN
        raise ValueError(f"confidence must be in [0, 1], got {confidence!r}")
    y = 1.0 if correct else 0.0
    return y - (confidence - y) ** 2


def rlcr_reward(
    answer_text: str,
    gold: str,
    confidence: float | None,
    *,
    missing_confidence: float = 0.0,
    verifier: Verifier = verify_math,
) -> float:
    """RLCR reward of one answer: graded by `verifier` against `gold`, scored with `confidence`.

    Confidence statements are cut from `answer_text` before grading (see `grade_parts`).
    A missing confidence (None) is scored as `missing_confidence`, by default 0: a right answer
    then earns 1 - 1 = 0, the same as a wrong one stated at 0%, so the model is only rewarded for
    a right answer when it also states a confidence, and the calibration signal cannot be skipped.
    """
    correct = _is_correct(strip_confidence(answer_text or ""), gold, verifier)
    return rlcr_score(correct, missing_confidence if confidence is None else confidence)


def _is_correct(answer: str, gold: Any, verifier: Verifier) -> bool:
    """The verifier's verdict; a missing or empty gold is never matched (nothing to be right about)."""
    if gold is None or not str(gold).strip():
        return False
    return bool(verifier(answer, str(gold)).correct)


def completion_text(completion: str | Sequence[dict] | Any) -> str:
    """The text of a TRL completion: a plain string, or the content of its chat messages.

    Conversational completions are a list of messages; the assistant turns are joined. A message
    content may also be a list of parts (`{"type": "text", "text": ...}`), as multimodal
    templates write it.
    """
    if completion is None:
        return ""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        completion = [completion]
    texts = []
    for message in completion:
        if message.get("role", "assistant") != "assistant":
            continue
        content = message.get("content") or ""
        if not isinstance(content, str):
            content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
        texts.append(content)
    return "\n".join(texts)


def grade_parts(text: str) -> tuple[str, float | None]:
    """(answer to grade, stated confidence) of one completion.

    Confidence is read after `</think>` when the model thinks in tags (a "confidence: 30%" while
    reasoning is not the statement), else from the whole text; the last statement wins. The
    answer is the answer part of the text with every confidence statement cut out, so that the
    last-number fallback of answer extraction never reads the "90" of "Confidence: 90%".
    """
    tagged = THINK_OPEN in text or THINK_CLOSE in text
    confidence = parse_verbal_confidence(split_reasoning(text).answer if tagged else text)
    return split_reasoning(strip_confidence(text)).answer, confidence


def _gold_column(n: int, kwargs: dict) -> list:
    """The gold answers: dataset column `answer`, or `gold`; one per completion."""
    for name in ("answer", "gold"):
        if kwargs.get(name) is not None:
            gold = kwargs[name]
            gold = [gold] * n if isinstance(gold, str | int | float) else list(gold)
            if len(gold) != n:
                raise ValueError(f"rlcr: column {name!r} has {len(gold)} entries for {n} completions")
            return gold
    raise ValueError("rlcr needs the gold answers as a dataset column named 'answer' (or 'gold')")


def rlcr(
    prompts: Sequence | None = None,
    completions: Sequence | None = None,
    *,
    missing_confidence: float = 0.0,
    verifier: Verifier = verify_math,
    **kwargs: Any,
) -> list[float]:
    """RLCR rewards for a batch, in TRL's reward-function convention (see the module docstring).

    Gold answers come from the dataset column `answer` (or `gold`), which TRL passes as a keyword
    with one entry per completion. Correctness is `verifier(answer, gold).correct` (default
    `verify_math`: exact numbers, else math-verify); confidence is the verbal statement
    ("Confidence: 85%"), missing ones scored as `missing_confidence`. Bind other options with
    functools.partial. Other TRL keywords are ignored, except `log_metric`, which is given the
    batch accuracy, missing-confidence share and mean reward.
    """
    completions = list(completions or [])
    gold = _gold_column(len(completions), kwargs)
    rewards, n_correct, n_missing = [], 0, 0
    for completion, g in zip(completions, gold, strict=True):
        answer, confidence = grade_parts(completion_text(completion))
        correct = _is_correct(answer, g, verifier)
        n_correct += correct
        n_missing += confidence is None
        rewards.append(rlcr_score(correct, missing_confidence if confidence is None else confidence))
    log_metric = kwargs.get("log_metric")
    if callable(log_metric) and rewards:
        log_metric("rlcr/accuracy", n_correct / len(rewards))
        log_metric("rlcr/confidence_missing", n_missing / len(rewards))
        log_metric("rlcr/reward", sum(rewards) / len(rewards))
    return rewards
