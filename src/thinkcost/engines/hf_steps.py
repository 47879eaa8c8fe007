"""Step-wise generation with a transformers causal LM, reusing each node's KV cache.

A node's state is its token ids and a DynamicCache holding every id but the last (the last one
was sampled, not yet fed). Expanding a node k ways feeds its pending ids once (the whole
prompt for a root: its prefill), repeats the cache k times and decodes the k children in one
batch of equal-length rows, so no padding or attention mask is needed. A child that reaches the
separator, EOS or a cap leaves the batch the same step, taking its own row of the cache cropped
to its length. Extending that child later feeds one pending token plus its new ones: the cost
of a step is linear in its new tokens, whatever the depth (tests count forward tokens).

Sampling: temperature + top-p from the untempered logits, one torch.Generator per expansion
seeded by the search (node id, problem seed), so a search is reproducible.
"""

from __future__ import annotations

import copy
import inspect
import time
from dataclasses import dataclass
from typing import Any

import torch

from ..reasoning import detect_format, render_prompt
from ..types import Completion
from .control import Vocab, tokens_covering
from .steps import DEFAULT_SEPARATOR, StepOut


@dataclass
class HFState:
    ids: list[int]  # prompt + generated ids
    prompt_len: int
    cache: Any = None  # covers ids[: len(ids) - 1] (None: nothing fed yet)

    @property
    def fed(self) -> int:
        return 0 if self.cache is None else len(self.ids) - 1


class HFStepper:
    """`Stepper` over a model + tokenizer (the HFEngine's, so the weights are shared)."""

    def __init__(
        self,
        model,
        tok,
        *,
        eos_ids: set[int],
        separator: str = DEFAULT_SEPARATOR,
        thinking: str = "auto",
        fmt=None,
        max_step_tokens: int = 256,
    ) -> None:
        self.model = model
        self.tok = tok
        self.eos_ids = set(eos_ids)
        self.separator = separator
        self.thinking = thinking
        self.fmt = fmt if fmt is not None else detect_format(tok, thinking)
        self.vocab = Vocab.of(tok, self.eos_ids, self.fmt)
        self.max_step_tokens = max_step_tokens
        self.device = next(model.parameters()).device
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"
        self.forward_tokens = 0  # every token fed to the model (a test and benchmark figure)

    @classmethod
    def of_engine(cls, engine, separator: str = DEFAULT_SEPARATOR) -> HFStepper:
        return cls(
            engine.model,
            engine.tok,
            eos_ids=set(engine.eos_ids),
            separator=separator,
            thinking=engine.thinking,
            fmt=engine.fmt,
        )

    # --- the protocol ------------------------------------------------------------------------
    def root(self, messages: list[dict[str, str]]) -> HFState:
        text = render_prompt(self.tok, messages, self.thinking)
        ids = list(self.tok(text, add_special_tokens=False)["input_ids"])
        return HFState(ids=ids, prompt_len=len(ids))

    def _forward(self, input_ids: torch.Tensor, cache: Any):
        self.forward_tokens += int(input_ids.numel())
        with torch.inference_mode():
            out = self.model(input_ids=input_ids, use_cache=True, **{self._cache_kw: cache})
        return out.logits[:, -1, :].float(), (getattr(out, "cache", None) or out.past_key_values)

    def expand(
        self, state: HFState, k: int, *, seed: int, temperature: float, top_p: float, max_new_tokens: int
    ) -> list[StepOut]:
        t0 = time.perf_counter()
        cache = copy.deepcopy(state.cache) if state.cache is not None else None
        pending = state.ids[state.fed :]
        fed0 = len(pending)
        logits, cache = self._forward(torch.tensor([pending], device=self.device), cache)
        if k > 1:
            logits = logits.repeat(k, 1)
            cache.batch_repeat_interleave(k)
        gen = torch.Generator(device="cpu").manual_seed(int(seed) % (2**63))
        rows = list(range(k))  # child index of each live batch row
        steps: list[list[int]] = [[] for _ in range(k)]
        outs: list[StepOut | None] = [None] * k
        done_tokens = len(state.ids) - state.prompt_len
        while rows:
            nxt = self._sample(logits, gen, temperature, top_p)
            keep = []
            for b, child in enumerate(rows):
                t = int(nxt[b])
                steps[child].append(t)
                finish = self._finish(steps[child], t, done_tokens, max_new_tokens)
                if finish is False:
                    keep.append(b)
                    continue
                ids = state.ids + steps[child]
                # the row's cache holds ids[:-1]: everything up to the token just sampled
                outs[child] = StepOut(
                    state=HFState(ids, state.prompt_len, _row_cache(cache, b, len(ids) - 1)),
                    text=self.vocab.decode([x for x in steps[child] if x not in self.eos_ids]),
                    tokens=len(steps[child]),
                    seconds=0.0,
                    finish=finish,
                    fed_tokens=len(steps[child]) - 1 + (fed0 if child == 0 else 0),
                )
            if not keep:
                break
            if len(keep) < len(rows):
                cache.batch_select_indices(torch.tensor(keep, device=self.device))
                nxt = nxt[keep]
                rows = [rows[b] for b in keep]
            logits, cache = self._forward(nxt.view(-1, 1).to(self.device), cache)
        secs = (time.perf_counter() - t0) / k
        for o in outs:
            assert o is not None
            o.seconds = secs
        return [o for o in outs if o is not None]

    def completion(self, state: HFState, finish: str, *, completion_tokens: int, cost_s: float) -> Completion:
        gen = state.ids[state.prompt_len :]
        ids = gen[:-1] if gen and gen[-1] in self.eos_ids else gen
        text = self.vocab.decode(ids)
        sp = self.fmt.split(text, finish)
        n_reason = (
            len(ids)
            if sp.think_unclosed
            else min(len(ids), tokens_covering(self.vocab, ids, sp.answer_start))
        )
        answer_tokens = len(ids) - n_reason
        return Completion(
            text=text,
            reasoning_text=sp.reasoning,
            answer_text=sp.answer,
            prompt_tokens=state.prompt_len,
            completion_tokens=completion_tokens,
            reasoning_tokens=max(0, completion_tokens - answer_tokens),
            answer_tokens=answer_tokens,
            finish_reason=finish,
            latency_s=cost_s,
            ttft_s=0.0,
            cost_s=cost_s,
            think_unclosed=sp.think_unclosed,
            reasoning_format=self.fmt.kind,
            token_ids=ids,
        )

    # --- the self scorer's question ----------------------------------------------------------
    def yes_probability(
        self, messages: list[dict[str, str]], yes: str = "Yes", no: str = "No"
    ) -> tuple[float, int]:
        """P(yes) / (P(yes) + P(no)) for the first token of the model's reply to `messages`,
        and the tokens it read (a fresh prefill: the judge's prompt shares no cache)."""
        text = render_prompt(self.tok, messages, self.thinking)
        ids = self.tok(text, add_special_tokens=False)["input_ids"]
        logits, _ = self._forward(torch.tensor([ids], device=self.device), None)
        y = self.tok.encode(yes, add_special_tokens=False)[0]
        n = self.tok.encode(no, add_special_tokens=False)[0]
        pair = torch.log_softmax(logits[0, [y, n]], dim=-1)
        return float(pair[0].exp()), len(ids)

    # --- helpers -----------------------------------------------------------------------------
    def _finish(self, step: list[int], t: int, done: int, max_new_tokens: int) -> str | bool | None:
        """False = go on; None = the step ended at the separator; "stop"/"length" = the answer ended."""
        if t in self.eos_ids:
            return "stop"
        if done + len(step) >= max_new_tokens:
            return "length"
        if self.separator and self.separator in self.vocab.decode(step):
            return None
        if len(step) >= self.max_step_tokens:
            return None  # an overlong step is cut here; the answer may go on
        return False

    @staticmethod
    def _sample(logits: torch.Tensor, gen: torch.Generator, temperature: float, top_p: float) -> torch.Tensor:
        if temperature <= 0:
            return logits.argmax(-1).cpu()
        probs = torch.softmax(logits / temperature, dim=-1).cpu()
        if top_p < 1:
            sp, si = probs.sort(-1, descending=True)
            cut = sp.cumsum(-1) - sp > top_p
            sp[cut] = 0
            probs = torch.zeros_like(probs).scatter(-1, si, sp)
        return torch.multinomial(probs, 1, generator=gen).view(-1)


def _row_cache(cache: Any, row: int, length: int):
    """A new DynamicCache holding row `row` of `cache`, its first `length` positions."""
    from transformers import DynamicCache

    new = DynamicCache()
    for i, layer in enumerate(cache.layers):
        new.update(
            layer.keys[row : row + 1, :, :length].clone(), layer.values[row : row + 1, :, :length].clone(), i
        )
    return new
