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

import contextlib
import weakref
from collections import Counter, deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ..reasoning import _MARKER, THINK_CLOSE, open_think_at, split_reasoning
from .base import Completion, Request

# ---------------------------------------------------------------------------------------------
# tokenizer facts


def think_close_id(tok: Any) -> int | None:
    """The id of a single `</think>` token, or None for models without think tags (an unknown
    token maps to the unk id or None, and a real one must decode back to the tag)."""
    tid = tok.convert_tokens_to_ids(THINK_CLOSE)
    if not isinstance(tid, int) or tid == getattr(tok, "unk_token_id", None):
        return None
    if tok.decode([tid], skip_special_tokens=False).strip() != THINK_CLOSE:
        return None
    return tid


@dataclass(frozen=True, eq=False)
class Vocab:
    """What the decisions need to know about a tokenizer: its EOS ids, its think-close token
    (None: a model without think tags) and text <-> ids without special tokens."""

    tok: Any
    eos_ids: frozenset[int]
    think_close_id: int | None

    @classmethod
    def of(cls, tok: Any, eos_ids: Iterable[int]) -> Vocab:
        return cls(tok, frozenset(eos_ids), think_close_id(tok))

    def encode(self, text: str) -> list[int]:
        return list(self.tok.encode(text, add_special_tokens=False)) if text else []

    def decode(self, ids: Sequence[int]) -> str:
        return self.tok.decode(list(ids), skip_special_tokens=True)


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


def find_stop(text: str, stops: Sequence[str]) -> int | None:
    """Char offset of a stop string that just appeared at the end of `text`, outside any open
    `<think>` block (a stop string inside the reasoning must not end it), else None."""
    for s in stops:
        start = max(0, len(text) - len(s) - 16)  # only the newest tail can hold a new match
        p = text.find(s, start)
        if p != -1 and not open_think_at(text, p):
            return p
    return None


class RowControl:
    """State and decisions of one generated sequence.

    Budget forcing works through a forced-token queue (teacher forcing): while it is not
    empty, each step emits its next token instead of the model's choice. Forced tokens are
    part of the text and of `completion_tokens` (counted in `forced`), but they have no
    logprob or self-certainty: those describe the model's own choices only.

    - bf-cap (`think_budget=B`): when the row has generated exactly B tokens and is still
      reasoning (checked once, at that moment), queue `</think>` (think models) plus
      `force_text`, and allow at most `answer_budget` model tokens once the queue is consumed.
    - bf-wait (`max_waits=N`): the first N times the model picks the token that would end its
      reasoning (`</think>` for think models, any EOS otherwise), that token is dropped and
      `wait_text` is queued instead; its first token is emitted in the same step. No waits
      after the cap forced the end.

    Stop strings are checked after every token, forced ones included, and never cut inside an
    open `<think>` block. A row ends by "stop" (EOS or stop string) or "length" (max_new_tokens,
    or the answer budget after a forced end); "cancelled" is set by the engine (short-m@k).
    """

    def __init__(self, req: Request, ids: list[int] | None = None, logprobs: list[float] | None = None):
        self.req = req
        self.ids: list[int] = [] if ids is None else ids
        self.logprobs: list[float] = [] if logprobs is None else logprobs
        self.certainty: list[float] = []  # per model-chosen token, KL(uniform || p)
        self.queue: deque[int] = deque()
        self.forced = 0
        self.interventions = 0
        self.waits = 0
        self.capped = False
        self.answer_left: int | None = None  # model tokens still allowed after the cap
        self.finish: str | None = None  # "stop" | "length" | "cancelled"
        self.stop_at: int | None = None  # char offset where a stop string cut the text

    def step(self, sampled: int, vocab: Vocab, logprob: float = 0.0, certainty: float = 0.0) -> int:
        """Emit this step's token given the model's choice `sampled` (with its logprob and
        self-certainty); returns the emitted token and sets `finish` when the row is done."""
        tid, chosen = self._choose(sampled, vocab)
        self.ids.append(tid)
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
        if vocab.think_close_id is not None:
            return tid == vocab.think_close_id and vocab.think_close_id not in self.ids
        return tid in vocab.eos_ids

    def _cap(self, vocab: Vocab) -> None:
        close = [vocab.think_close_id] if vocab.think_close_id is not None else []
        self.queue.clear()  # a half-inserted wait text gives way to the forced end
        self.queue.extend(close + vocab.encode(self.req.force_text))
        self.capped = True
        self.interventions += 1
        self.answer_left = self.req.answer_budget

    def in_reasoning(self, vocab: Vocab) -> bool:
        """Think models: no `</think>` generated yet. Others: no final-answer marker (nor a
        textual `</think>`) in the generated text yet."""
        if vocab.think_close_id is not None and vocab.think_close_id in self.ids:
            return False
        text = vocab.decode(self.ids)
        if THINK_CLOSE in text:
            return False
        return vocab.think_close_id is not None or _MARKER.search(text) is None

    def check_stop(self, vocab: Vocab) -> bool:
        p = find_stop(vocab.decode(self.ids), self.req.stop)
        if p is not None:
            self.stop_at = p
        return p is not None


def complete(
    row: RowControl, vocab: Vocab, prompt_tokens: int, latency_s: float, ttft_s: float, cost_s: float
) -> Completion:
    """The `Completion` of a finished or cancelled row. A cancelled row is split as if cut by
    the length cap (answer empty unless a think block closed), and counts every token it
    generated: they were paid for."""
    finish = row.finish or "length"
    ids = row.ids[:-1] if row.ids and row.ids[-1] in vocab.eos_ids else row.ids
    text = vocab.decode(ids)
    if row.stop_at is not None:
        text = text[: row.stop_at]
        ids = ids[: tokens_covering(vocab, ids, row.stop_at)]
    sp = split_reasoning(text, "length" if finish == "cancelled" else finish)
    n_reason = len(ids) if sp.think_unclosed else min(len(ids), tokens_covering(vocab, ids, sp.answer_start))
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
    )


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


# ---------------------------------------------------------------------------------------------
# wait-penalty

_SEPARATORS = ("", " ", "\n", "\n\n")


@dataclass(frozen=True)
class PenaltyRules:
    """Which token ids the wait-penalty pushes down. `single` ids are penalised whatever came
    before (one-word entries: applied to all rows at once); a `prefixed` rule (prefix ids,
    target id) penalises the target only right after the prefix, so "But wait" pushes down
    " wait" after "But" and leaves every other " wait" alone."""

    words: tuple[str, ...]
    single: tuple[int, ...]
    prefixed: tuple[tuple[tuple[int, ...], int], ...]

    def targets(self, generated: Sequence[int]) -> list[int]:
        """Prefixed targets whose prefix ends `generated` (ids in `single` left out)."""
        out = []
        single = set(self.single)
        for prefix, target in self.prefixed:
            n = len(prefix)
            if (
                target not in single
                and len(generated) >= n
                and tuple(generated[len(generated) - n :]) == prefix
            ):
                out.append(target)
        return sorted(set(out))


_RULES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> {words: rules}
_VOCAB_TEXT: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # tokenizer -> [text per id]


def penalty_rules(tok: Any, words: Sequence[str]) -> PenaltyRules:
    """The rule table of `words` for `tok`, built once per (tokenizer, words) and cached.

    For each word w and each surface form in {w, " w", "\\nw", "\\n\\nw"}, the penalised token
    is the one that starts w (for a phrase: its last word) in the form's tokenization; tokens
    before it that are pure whitespace are the separator, not the word, so they are neither
    penalised (that would push down every newline) nor part of a phrase's prefix. Every
    vocabulary token whose text, stripped of whitespace, is exactly w is penalised too."""
    words = tuple(words)
    try:
        per_tok = _RULES.setdefault(tok, {})
    except TypeError:  # a tokenizer that cannot be weakly referenced: no cache
        per_tok = {}
    if words not in per_tok:
        per_tok[words] = _build_rules(tok, words)
    return per_tok[words]


def _build_rules(tok: Any, words: tuple[str, ...]) -> PenaltyRules:
    single: set[int] = set()
    prefixed: set[tuple[tuple[int, ...], int]] = set()

    def text(ids: Sequence[int]) -> str:
        return tok.decode(list(ids), skip_special_tokens=False)

    for w in (w.strip() for w in words):
        if not w:
            continue
        last = w.split()[-1]
        for sep in _SEPARATORS:
            form = sep + w
            ids = list(tok.encode(form, add_special_tokens=False))
            start = len(form) - len(last)  # char offset of the last word's first character
            k = next((i for i in range(len(ids)) if len(text(ids[: i + 1])) > start), None)
            if k is None:
                continue
            head = ids[:k]
            while head and not text(head[:1]).strip():  # leading separator tokens
                head = head[1:]
            if head and " " in w:
                prefixed.add((tuple(head), ids[k]))
            elif not head:
                single.add(ids[k])
    texts = _vocab_texts(tok)
    for w in (w.strip() for w in words):
        single.update(i for i, t in enumerate(texts) if w and t.strip() == w)
    return PenaltyRules(words, tuple(sorted(single)), tuple(sorted(prefixed)))


def _vocab_texts(tok: Any) -> list[str]:
    """Each vocabulary id decoded alone (cached per tokenizer: one pass over the vocab)."""
    try:
        cached = _VOCAB_TEXT.get(tok)
    except TypeError:
        cached = None
    if cached is not None:
        return cached
    ids = [[i] for i in range(len(tok))]
    batch = getattr(tok, "batch_decode", None)
    texts = list(batch(ids)) if batch is not None else [tok.decode(i) for i in ids]
    with contextlib.suppress(TypeError):  # not weakly referenceable: no cache
        _VOCAB_TEXT[tok] = texts
    return texts
