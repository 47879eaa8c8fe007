"""Per-row decode decisions shared by every engine, in pure Python over token ids.

Which token a row emits this step (budget forcing overrides the model's choice), when it
finishes (EOS, stop string, length and answer caps), which sibling samples short-m@k cancels,
which tokens the wait-penalty pushes down, and how a finished row becomes a `Completion`.
Keeping this free of torch lets the hf engine and the scripted test engine make exactly the
same decisions, so a strategy tested on the scripted engine behaves the same on a real model.

The contract with an engine, per decode step and active row:

1. the model proposes `sampled` (after `PenaltyRules` were applied to its logits);
2. `row.step(sampled, vocab, logprob, certainty)` returns the token actually emitted (the
   one to feed back to the model) and sets `row.finish` when the row is done;
3. after all rows of the step, `ShortMK.to_cancel` names the rows to cancel.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..reasoning import NONE, ReasoningFormat, single_token_id
from ..types import Completion, Request

# ---------------------------------------------------------------------------------------------
# tokenizer facts


def think_close_id(tok: Any) -> int | None:
    """The id of a single `</think>` token, or None for tokenizers without think tags."""
    return single_token_id(tok, "</think>")


@dataclass(frozen=True, eq=False)
class Vocab:
    """What the decisions need to know about a tokenizer: its EOS ids, the model's reasoning
    format, the single token that ends reasoning in that format (`</think>`, harmony's
    `<|end|>`; None: the format has none, or it is not one token) and text <-> ids."""

    tok: Any
    eos_ids: frozenset[int]
    fmt: ReasoningFormat = NONE
    end_id: int | None = None
    message_id: int | None = None  # harmony's `<|message|>`: the final channel opens with it

    @classmethod
    def of(cls, tok: Any, eos_ids: Iterable[int], fmt: ReasoningFormat = NONE) -> Vocab:
        end = single_token_id(tok, fmt.end_text) if fmt.end_text else None
        message = single_token_id(tok, "<|message|>") if fmt.kind == "harmony" else None
        return cls(tok, frozenset(eos_ids), fmt, end, message)

    @property
    def think_close_id(self) -> int | None:
        """The `</think>` id for think formats (kept for callers that ask by that name)."""
        return self.end_id if self.fmt.end_text == "</think>" else None

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False)) if text else []

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=not self.fmt.keep_special)


# ---------------------------------------------------------------------------------------------
# batching


def plan_batches(requests: Sequence[Request], batch_size: int) -> list[list[tuple[int, Request, int]]]:
    """Split (request index, request, sample id) triples, in request order and samples in
    `req.samples` order, into chunks of at most `batch_size`. A short-m@k request is never
    split: its samples must race in one batch for "the first m to finish" to mean anything.
    Raises before any work is done when such a request cannot fit."""
    for k, r in enumerate(requests):
        if r.stop_after is not None and len(r.samples) > batch_size:
            raise ValueError(
                f"request {k}: stop_after needs all {len(r.samples)} samples in one batch, "
                f"but batch_size is {batch_size}"
            )
    chunks: list[list[tuple[int, Request, int]]] = []
    cur: list[tuple[int, Request, int]] = []
    for k, r in enumerate(requests):
        if r.stop_after is not None and len(cur) + len(r.samples) > batch_size:
            chunks.append(cur)
            cur = []
        for i in r.samples:
            if len(cur) == batch_size:
                chunks.append(cur)
                cur = []
            cur.append((k, r, i))
    if cur:
        chunks.append(cur)
    return chunks


class ShortMK:
    """short-m@k bookkeeping for one batch. Rows are indexed as in the batch; `finished`
    counts a row that ended by itself (EOS, stop string, length), and `to_cancel` names the
    still-active rows whose request has reached `stop_after` finished samples. Call it once
    per step after every row of the step was processed, so all rows finishing on the same
    step count as finished, even when that is more than m."""

    def __init__(self, keys: Sequence[tuple[int, Request]]) -> None:
        self._keys = list(keys)  # (request index, request) per row
        self._done: Counter[int] = Counter()

    def finished(self, row: int) -> None:
        self._done[self._keys[row][0]] += 1

    def to_cancel(self, active: Iterable[int]) -> list[int]:
        out = []
        for a in active:
            k, r = self._keys[a]
            if r.stop_after is not None and self._done[k] >= r.stop_after:
                out.append(a)
        return out


# ---------------------------------------------------------------------------------------------
# one row


def find_stop(text: str, stops: Sequence[str], fmt: ReasoningFormat = NONE) -> int | None:
    """Char offset of a stop string that just appeared at the end of `text`, outside the
    reasoning the format marks (a stop string inside the reasoning must not end it), else None."""
    for s in stops:
        start = max(0, len(text) - len(s) - 16)  # only the newest tail can hold a new match
        p = text.find(s, start)
        if p != -1 and not fmt.reasoning_open(text[:p]):
            return p
    return None


class RowControl:
    """State and decisions of one generated sequence.

    Budget forcing works through a forced-token queue (teacher forcing): while it is not
    empty, each step emits its next token instead of the model's choice. Forced tokens are
    part of the text and of `completion_tokens` (counted in `forced`), but they have no
    logprob or self-certainty: those describe the model's own choices only.

    Where reasoning ends is the vocab's `ReasoningFormat`:

    - bf-cap (`think_budget=B`): when the row has generated exactly B tokens and is still
      reasoning (checked once, at that moment), queue the format's close (`</think>`,
      harmony's switch to the final channel; nothing for `none`) plus `force_text`, and allow
      at most `answer_budget` model tokens once the queue is consumed.
    - bf-wait (`max_waits=N`): the first N times the model picks the token that would end its
      reasoning (the format's end token while reasoning is open; any EOS for `none`), that
      token is dropped and `wait_text` is queued instead; its first token is emitted in the
      same step. No waits after the cap forced the end.

    Stop strings are checked after every token, forced ones included, and never cut inside
    open reasoning. A row ends by "stop" (EOS or stop string) or "length" (max_new_tokens, or
    the answer budget after a forced end); "cancelled" is set by the engine (short-m@k).
    """

    def __init__(self, req: Request, ids: list[int] | None = None, logprobs: list[float] | None = None):
        self.req = req
        self.ids: list[int] = [] if ids is None else ids
        self.logprobs: list[float] = [] if logprobs is None else logprobs
        self.chosen: list[bool] = [True] * len(self.ids)  # per emitted token: the model's own choice?
        self.certainty: list[float] = []  # per model-chosen token, KL(uniform || p)
        self.queue: deque[int] = deque()
        self.forced = 0
        self.interventions = 0
        self.waits = 0
        self.capped = False
        self.answer_left: int | None = None  # model tokens still allowed after the cap
        self.finish: str | None = None  # "stop" | "length" | "cancelled"
        self.stop_at: int | None = None  # char offset where a stop string cut the text
        # the model's marked reasoning is over (its format's end was emitted): the wait-penalty,
        # which discourages hesitation while thinking, no longer applies. Never set for `none`,
        # whose reasoning has no marked end.
        self.reasoning_ended = False

    def step(self, sampled: int, vocab: Vocab, logprob: float = 0.0, certainty: float = 0.0) -> int:
        """Emit this step's token given the model's choice `sampled` (with its logprob and
        self-certainty); returns the emitted token and sets `finish` when the row is done."""
        tid, chosen = self._choose(sampled, vocab)
        self.ids.append(tid)
        self.chosen.append(chosen)
        if not self.reasoning_ended and self._closes_reasoning(tid, vocab):
            self.reasoning_ended = True
        if chosen:
            self.logprobs.append(logprob)
            self.certainty.append(certainty)
            if self.capped:
                self.answer_left -= 1
        else:
            self.forced += 1
        if tid in vocab.eos_ids or (self.req.stop and self.check_stop(vocab)):
            self.finish = "stop"
        elif len(self.ids) >= self.req.max_new_tokens or self.answer_left == 0:
            self.finish = "length"
        elif (
            self.req.think_budget is not None
            and not self.capped
            and len(self.ids) == self.req.think_budget
            and self.in_reasoning(vocab)
        ):
            self._cap(vocab)
        return tid

    def _choose(self, sampled: int, vocab: Vocab) -> tuple[int, bool]:
        if self.queue:
            return self.queue.popleft(), False
        if self.waits < self.req.max_waits and not self.capped and self._ends_reasoning(sampled, vocab):
            wait = vocab.encode(self.req.wait_text)
            if wait:  # an empty wait text cannot replace a token: the end is allowed
                self.waits += 1
                self.interventions += 1
                self.queue.extend(wait[1:])
                return wait[0], False
        return sampled, True

    def _ends_reasoning(self, tid: int, vocab: Vocab) -> bool:
        if vocab.fmt.end_text is None:  # `none`: the end of the generation ends the reasoning
            return tid in vocab.eos_ids
        if tid != vocab.end_id:
            return False
        return vocab.fmt.reasoning_open(vocab.decode(self.ids))

    def _closes_reasoning(self, tid: int, vocab: Vocab) -> bool:
        """Did emitting `tid` end the marked reasoning? Think formats: the `</think>` token;
        harmony: the `<|message|>` that opens the final channel."""
        kind = vocab.fmt.kind
        if kind in ("think-in-prompt", "think-in-output"):
            return tid == vocab.end_id
        if kind == "harmony" and tid == vocab.message_id:
            return not vocab.fmt.reasoning_open(vocab.decode(self.ids[-6:]))
        return False

    def _cap(self, vocab: Vocab) -> None:
        fmt = vocab.fmt
        one_token = vocab.end_id is not None and fmt.close_text == fmt.end_text
        close = [vocab.end_id] if one_token else vocab.encode(fmt.close_text)
        self.queue.clear()  # a half-inserted wait text gives way to the forced end
        self.queue.extend(close + vocab.encode(self.req.force_text))
        self.capped = True
        self.interventions += 1
        self.answer_left = self.req.answer_budget

    def in_reasoning(self, vocab: Vocab) -> bool:
        """Is the row still reasoning, by its format (for `none`: no final-answer marker and no
        textual `</think>` in the generated text yet)?"""
        if vocab.end_id is not None and vocab.end_id in self.ids and vocab.fmt.end_text == "</think>":
            return False
        return vocab.fmt.still_reasoning(vocab.decode(self.ids))

    def check_stop(self, vocab: Vocab) -> bool:
        p = find_stop(vocab.decode(self.ids), self.req.stop, vocab.fmt)
        if p is not None:
            self.stop_at = p
        return p is not None


def complete(
    row: RowControl, vocab: Vocab, prompt_tokens: int, latency_s: float, ttft_s: float, cost_s: float
) -> Completion:
    """The `Completion` of a finished or cancelled row. A cancelled row is split as if cut by
    the length cap (answer empty unless the reasoning ended), and counts every token it
    generated: they were paid for. Reasoning tokens are the tokens before the answer's first
    character; the answer's logprobs are those of its own model-chosen tokens."""
    finish = row.finish or "length"
    ids = row.ids[:-1] if row.ids and row.ids[-1] in vocab.eos_ids else row.ids
    text = vocab.decode(ids)
    if row.stop_at is not None:
        text = text[: row.stop_at]
        ids = ids[: tokens_covering(vocab, ids, row.stop_at)]
    sp = vocab.fmt.split(text, "length" if finish == "cancelled" else finish, row.req.answer_marker)
    n_reason = len(ids) if sp.think_unclosed else min(len(ids), tokens_covering(vocab, ids, sp.answer_start))
    answer_lps = _answer_logprobs(row, n_reason, len(ids))
    return Completion(
        text=text,
        reasoning_text=sp.reasoning,
        answer_text=sp.answer,
        prompt_tokens=prompt_tokens,
        completion_tokens=len(row.ids),
        reasoning_tokens=n_reason,
        answer_tokens=len(ids) - n_reason,
        finish_reason=finish,
        latency_s=latency_s,
        ttft_s=ttft_s,
        cost_s=cost_s,
        think_unclosed=sp.think_unclosed,
        logprobs=row.logprobs,
        forced_tokens=row.forced,
        interventions=row.interventions,
        self_certainty=sum(row.certainty) / len(row.certainty) if row.certainty else None,
        reasoning_format=vocab.fmt.kind,
        answer_logprobs=answer_lps,
        token_ids=list(ids),
    )


def _answer_logprobs(row: RowControl, start: int, end: int) -> list[float]:
    """Logprobs of the model-chosen tokens at positions [start, end) of the row's ids (forced
    tokens have none; the EOS and anything after a stop string lie past `end`)."""
    out: list[float] = []
    k = 0  # index into row.logprobs, which holds chosen tokens only
    for pos, chosen in enumerate(row.chosen):
        if chosen:
            if start <= pos < end:
                out.append(row.logprobs[k])
            k += 1
    return out


def tokens_covering(vocab: Vocab, ids: Sequence[int], n_chars: int) -> int:
    """Fewest leading tokens whose decoded text reaches `n_chars` characters (binary search:
    exact token counts from the model's own tokenizer, no whitespace heuristics)."""
    if n_chars <= 0:
        return 0
    lo, hi = 0, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if len(vocab.decode(ids[:mid])) >= n_chars:
            hi = mid
        else:
            lo = mid + 1
    return lo
