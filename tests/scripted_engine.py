"""A deterministic engine without a model, for testing strategies and the runner.

`ScriptedEngine` speaks the engine protocol (`name`, `generate(requests, on_complete)`,
`close()`) and makes every decode decision through `thinkcost.engines.control`, exactly like
the hf engine: short-m@k, bf-cap, bf-wait, stop strings, token accounting and the reasoning
split. Only the "model" is fake: `script(request, sample_id)` lists the tokens it would emit,
one per step.

- Tokens are word pieces that keep their leading whitespace ("a b\\nc" -> "a", " b", "\\nc");
  a script entry is one token as written. "<eos>" is the EOS token, emitted whenever the
  script is exhausted; with `think=True`, "</think>" is a single think-close token and the
  reasoning format is `think-in-prompt` (the "template" opened the block, as R1-Distill's
  does); `fmt` sets another format.
- The script position is the step number: when a forced token overrides the model, the
  script still advances (the model "saw" that step); when a wait replaces an end attempt, the
  script goes on with its next entry.
- Lockstep: every row of a batch advances one token per step. A step costs 0.01 fake
  seconds shared equally by the rows active in it; `latency_s` = steps until the row
  finished * 0.01 and `ttft_s` = 0.01. No clock is read, nothing sleeps.
- `logprob(request, sample_id)` is the logprob of each model-chosen token (default
  -0.1 * (1 + sample_id)); a callable taking a third argument gets the step number (from 1),
  so logprobs can vary along the sequence. `certainty(request, sample_id)` its self-certainty (default
  1 + 0.1 * sample_id), so `Completion.self_certainty` is that value (None if the model chose
  no token). Forced tokens have neither, as in the hf engine.
- The wait-penalty is not simulated (there are no logits): a script that should react to it
  can read `request.penalty` itself.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence

from thinkcost.engines.control import RowControl, ShortMK, Vocab, complete, plan_batches
from thinkcost.reasoning import NONE, ReasoningFormat, format_of
from thinkcost.types import THINK_CLOSE, Completion, OnComplete, Request

STEP_S = 0.01
EOS = "<eos>"

Script = Callable[[Request, int], Sequence[str]]


class WordTokenizer:
    """Whitespace-preserving word pieces, ids assigned on first sight (0 is EOS). The piece
    table is shared by every instance, so one piece has one id across engines (repro compares
    the ids two engines stored)."""

    eos_token = EOS
    eos_token_id = 0
    unk_token_id = None
    pieces: list[str] = [EOS]  # noqa: RUF012 - shared on purpose (see the docstring)
    index: dict[str, int] = {EOS: 0}  # noqa: RUF012

    def __init__(self, think: bool = False) -> None:
        self.think = think
        self.think_close_id = self.id(THINK_CLOSE) if think else None
        split = r"\s*\S+|\s+"
        if think:  # the think-close tag is one token even when glued to other text
            split = r"</think>|\s*(?:(?!</think>)\S)+|\s+"
        self._split = re.compile(split)

    def id(self, piece: str) -> int:
        if piece not in self.index:
            self.index[piece] = len(self.pieces)
            self.pieces.append(piece)
        return self.index[piece]

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        return [self.id(p) for p in self._split.findall(text)]

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        return "".join(self.pieces[i] for i in ids if not (skip_special_tokens and i == self.eos_token_id))

    def convert_tokens_to_ids(self, token: str) -> int | None:
        if token == THINK_CLOSE and not self.think:
            return None  # plain text here, like in a tokenizer without think tags
        return self.index.get(token)

    def __len__(self) -> int:
        return len(self.pieces)


class ScriptedEngine:
    """The engine protocol over scripted token streams (see the module docstring)."""

    name = "scripted"

    def __init__(
        self,
        script: Script,
        batch_size: int = 64,
        think: bool = False,
        logprob: Callable[[Request, int], float] = lambda req, sid: -0.1 * (1 + sid),
        certainty: Callable[[Request, int], float] = lambda req, sid: 1.0 + 0.1 * sid,
        fmt: ReasoningFormat | None = None,
    ) -> None:
        self.script = script
        self.batch_size = batch_size
        self.tok = WordTokenizer(think=think)
        self.fmt = fmt if fmt is not None else (format_of("think-in-prompt") if think else NONE)
        self.vocab = Vocab.of(self.tok, {self.tok.eos_token_id}, self.fmt)
        self.logprob = logprob
        self.certainty = certainty
        self._per_step = len(inspect.signature(logprob).parameters) == 3
        self.calls: list[list[tuple[int, int]]] = []  # (request index, sample id) per batch run

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        out: list[Completion] = []
        for chunk in plan_batches(requests, self.batch_size):
            self.calls.append([(k, i) for k, _, i in chunk])
            out.extend(self._batch(chunk, on_complete))
        return out

    def _batch(
        self, chunk: list[tuple[int, Request, int]], on_complete: OnComplete | None
    ) -> list[Completion]:
        rows = [RowControl(r) for _, r, _ in chunk]
        scripts = [[self.tok.id(t) for t in self.script(r, i)] for _, r, i in chunk]
        prompt_tokens = [
            len(self.tok.encode(" ".join(m["content"] for m in r.prompt_messages))) for _, r, _ in chunk
        ]
        cost = [0.0] * len(rows)
        short_mk = ShortMK([(k, r) for k, r, _ in chunk])
        done: dict[int, Completion] = {}
        active = list(range(len(rows)))
        step = 0

        def finish(a: int) -> None:
            k, _, sid = chunk[a]
            latency = round(step * STEP_S, 10)
            done[a] = complete(rows[a], self.vocab, prompt_tokens[a], latency, STEP_S, cost[a])
            if on_complete is not None:
                on_complete(k, sid, done[a])

        while active:
            for a in active:
                cost[a] += STEP_S / len(active)
            step += 1
            keep = []
            for a in active:
                _, r, sid = chunk[a]
                s = scripts[a]
                sampled = s[step - 1] if step - 1 < len(s) else self.tok.eos_token_id
                lp = self.logprob(r, sid, step) if self._per_step else self.logprob(r, sid)
                rows[a].step(sampled, self.vocab, lp, self.certainty(r, sid))
                if rows[a].finish:
                    short_mk.finished(a)
                    finish(a)
                else:
                    keep.append(a)
            cancel = set(short_mk.to_cancel(keep))
            for a in sorted(cancel):
                rows[a].finish = "cancelled"
                finish(a)
            active = [a for a in keep if a not in cancel]
        return [done[a] for a in range(len(rows))]

    def close(self) -> None:
        pass
