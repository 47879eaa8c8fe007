"""The hf engine decode loop as of thinkcost 0.2 (commit c87aa8c): the "before" of benchmarks/decode.py.

Kept verbatim (imports made absolute) so the speed-up is measured side by side in one run.
Original docstring:

transformers engine with its own batched decode loop.

Why not `model.generate`: a static batch runs until its longest member stops, so one
looping low-bit sample makes every finished row pay for padding steps. This loop drops a row
from the KV cache the step it finishes (or short-m@k cancels it), records when each row
finished (latency) and what share of every step's wall time it used (cost), and checks stop
strings outside `<think>`. Greedy output equals `model.generate` token for token (tested).

What a row emits and when it ends (budget forcing, short-m@k) is decided in `control`, shared
with the scripted test engine; this module only turns logits into the model's proposal:
wait-penalty on the logits, then argmax or seeded top-p sampling, plus the chosen token's
logprob and the step's self-certainty, both from the model's own untempered, unpenalised
distribution (they describe what the model believes, not what the decoding knobs did).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Sequence

import torch

from thinkcost.engines.control import RowControl, ShortMK, Vocab, complete, plan_batches
from thinkcost.engines.penalty import PenaltyRules, penalty_rules
from thinkcost.reasoning import ReasoningFormat, detect_format, render_prompt
from thinkcost.types import Completion, OnComplete, Request


class _Row(RowControl):
    """A `RowControl` plus what the torch loop needs: prompt length, the sample's own
    generator, its wait-penalty rules and its cost/latency so far."""

    def __init__(
        self,
        req: Request,
        prompt_len: int,
        generator: torch.Generator | None,
        ids: list[int] | None = None,
        logprobs: list[float] | None = None,
        rules: PenaltyRules | None = None,
    ) -> None:
        super().__init__(req, ids, logprobs)
        self.prompt_len = prompt_len
        self.generator = generator
        self.rules = rules
        self.cost_s = 0.0
        self.latency_s = 0.0


class HFEngine:
    """Batched generation with a transformers causal LM (CPU or CUDA)."""

    name = "hf"

    def __init__(
        self,
        model,
        tokenizer,
        batch_size: int = 16,
        thinking: str = "auto",
        fmt: ReasoningFormat | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        self.model = model
        self.tok = tokenizer
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.eos_ids = self._eos_ids()
        self.thinking = thinking
        # decided once from the rendered prompt and the tokenizer (thinkcost.reasoning)
        self.fmt = fmt if fmt is not None else detect_format(self.tok, thinking)
        self.vocab = Vocab.of(self.tok, self.eos_ids, self.fmt)
        # transformers 5 renamed the forward kwarg `past_key_values` to `cache`.
        params = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in params else "past_key_values"

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for src in (self.model.generation_config.eos_token_id, self.tok.eos_token_id):
            if isinstance(src, int):
                ids.add(src)
            elif src:
                ids.update(src)
        for t in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<end_of_turn>"):
            tid = self.tok.convert_tokens_to_ids(t)
            if isinstance(tid, int) and tid != self.tok.unk_token_id and tid is not None:
                ids.add(tid)
        return ids

    def render(self, req: Request) -> str:
        """The chat template applied as the model was trained to see it (with `--thinking`)."""
        return render_prompt(self.tok, req.prompt_messages, self.thinking)

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        """All completions in request order, each request's samples in `req.samples` order.

        `on_complete(request_index, sample_id, completion)` is called the moment each
        sequence finishes or is cancelled, so a caller can commit it before the rest of its
        batch is done. Raises ValueError (before generating anything) when a short-m@k request
        has more samples than `batch_size`: its samples must decode in one batch."""
        out: list[Completion] = []
        for chunk in plan_batches(requests, self.batch_size):
            out.extend(self._batch(chunk, on_complete))
        return out

    def _new_row(self, req: Request, sample_id: int, prompt_len: int) -> _Row:
        gen = None
        if req.temperature > 0:  # seeded by (seed, sample id) alone: resumable, batch-independent
            gen = torch.Generator(device="cpu").manual_seed(req.seed * 1_000_003 + sample_id)
        rules = None
        if req.penalty > 0 and req.penalty_words:
            rules = penalty_rules(self.tok, req.penalty_words)
        return _Row(req, prompt_len, gen, rules=rules)

    @torch.inference_mode()
    def _batch(
        self, chunk: list[tuple[int, Request, int]], on_complete: OnComplete | None
    ) -> list[Completion]:
        texts = [self.render(r) for _, r, _ in chunk]
        enc = self.tok(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        input_ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        rows = [self._new_row(r, i, int(mask[k].sum())) for k, (_, r, i) in enumerate(chunk)]
        short_mk = ShortMK([(k, r) for k, r, _ in chunk])
        active = list(range(len(rows)))  # row index of each line in the live batch
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = None
        step_in, step_pos, step_mask = input_ids, pos, mask
        t0 = time.perf_counter()
        t_prev = t0
        ttft = 0.0
        done: dict[int, Completion] = {}

        def finish(a: int, now: float) -> None:
            rows[a].latency_s = now - t0
            done[a] = self._complete(rows[a], ttft)
            if on_complete is not None:
                req_index, _, sample_id = chunk[a]
                on_complete(req_index, sample_id, done[a])

        max_steps = max(r.req.max_new_tokens for r in rows)
        for step in range(max_steps):
            out = self.model(
                input_ids=step_in,
                attention_mask=step_mask,
                position_ids=step_pos,
                use_cache=True,
                logits_to_keep=1,
                **{self._cache_kw: cache},
            )
            cache = getattr(out, "cache", None) or out.past_key_values
            logits = out.logits[:, -1, :].float()
            sampled, lps, certs = (t.tolist() for t in self._pick(logits, [rows[a] for a in active]))
            now = time.perf_counter()
            dt = now - t_prev
            t_prev = now
            if step == 0:
                ttft = now - t0
                total_prompt = sum(rows[a].prompt_len for a in active)
                for a in active:  # prefill shared by prompt length, decode steps equally
                    rows[a].cost_s += dt * rows[a].prompt_len / total_prompt
            else:
                for a in active:
                    rows[a].cost_s += dt / len(active)
            emitted = []
            keep = []
            for line, a in enumerate(active):
                emitted.append(rows[a].step(sampled[line], self.vocab, lps[line], certs[line]))
                if rows[a].finish:
                    short_mk.finished(a)
                    finish(a, now)
                else:
                    keep.append(line)
            cancel = set(short_mk.to_cancel(active[line] for line in keep))
            for a in sorted(cancel):
                rows[a].finish = "cancelled"
                finish(a, now)
            keep = [line for line in keep if active[line] not in cancel]
            if not keep:
                break
            nxt = torch.tensor(emitted, device=self.device)  # forced tokens are fed back too
            if len(keep) < len(active):
                idx = torch.tensor(keep, device=self.device)
                cache.batch_select_indices(idx)
                step_mask = step_mask[idx]
                step_pos = step_pos[idx]
                nxt = nxt[idx]
                active = [active[k] for k in keep]
            step_in = nxt[:, None]
            step_mask = torch.cat([step_mask, step_mask.new_ones(len(active), 1)], dim=1)
            step_pos = step_pos[:, -1:] + 1
        return [done[a] for a in range(len(rows))]

    def _pick(
        self, logits: torch.Tensor, rows: list[_Row]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model's proposal per row: argmax for temperature 0, else seeded top-p sampling,
        both after the wait-penalty. Also returns the proposal's logprob and the self-certainty
        KL(uniform || p) = -log V - mean_j log p_j, both under the raw (untempered,
        unpenalised) distribution."""
        logp = torch.log_softmax(logits, dim=-1)
        certainty = -math.log(logits.shape[-1]) - logp.mean(dim=-1)
        logits = _penalise(logits, rows)
        nxt = logits.argmax(dim=-1)
        hot = [k for k, row in enumerate(rows) if row.generator is not None]
        if hot:
            temps = torch.tensor([rows[k].req.temperature for k in hot], device=logits.device)
            probs = torch.softmax(logits[hot] / temps[:, None], dim=-1)  # [S, V]
            for line, k in enumerate(hot):
                nxt[k] = _sample(probs[line], rows[k].req.top_p, rows[k].generator)
        return nxt, logp.gather(1, nxt[:, None])[:, 0], certainty

    def _hit_stop(self, row: _Row) -> bool:
        """A stop string ends generation only outside open reasoning (the format decides)."""
        return row.check_stop(self.vocab)

    def _complete(self, row: _Row, ttft: float) -> Completion:
        return complete(row, self.vocab, row.prompt_len, row.latency_s, ttft, row.cost_s)

    def close(self) -> None:
        self.model = None


def _penalise(logits: torch.Tensor, rows: list[_Row]) -> torch.Tensor:
    """Logits minus each row's wait-penalty (a copy; the input is left as it was). The
    context-free ids of rows that share a rule table and penalty are pushed down in one indexed
    subtraction; the later tokens of multi-token words and phrases depend on each row's own
    last tokens (one short trie walk per row, skipped when the table has none)."""
    groups: dict[tuple[int, float], list[int]] = {}
    for k, row in enumerate(rows):
        if row.rules is not None and not row.reasoning_ended:  # the penalty is for the reasoning only
            groups.setdefault((id(row.rules), row.req.penalty), []).append(k)
    if not groups:
        return logits
    logits = logits.clone()
    for (_, alpha), ks in groups.items():
        rules = rows[ks[0]].rules
        vocab_size = logits.shape[-1]  # tokenizer ids past the model's vocabulary: never sampled
        single = [i for i in rules.single if i < vocab_size]
        if single:
            idx = torch.tensor(ks, device=logits.device)[:, None]
            logits[idx, torch.tensor(single, device=logits.device)[None, :]] -= alpha
        if rules.contextual:
            for k in ks:
                targets = [i for i in rules.targets(rows[k].ids) if i < vocab_size]
                if targets:
                    logits[k, targets] -= alpha
    return logits


# Candidates examined before falling back to a full sort: the nucleus of a sampling
# distribution almost always lies in its top few hundred tokens, and a top-k over the vocab is
# ~30x cheaper than sorting it (151k tokens for Qwen), which otherwise dominated a CPU step.
_TOP_CANDIDATES = 1024


def nucleus(probs: torch.Tensor, top_p: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(token ids, weights) of the top-p nucleus of `probs` [V]: the most likely tokens whose
    preceding mass stays <= top_p. Exact: the top-k shortcut is taken only when the k
    candidates already hold more than top_p of the mass, so the nucleus lies inside them."""
    k = min(_TOP_CANDIDATES, probs.shape[-1])
    top, idx = probs.topk(k)  # sorted, descending
    if k < probs.shape[-1] and float(top.sum()) <= top_p:
        top, idx = probs.sort(descending=True)
    keep = top.cumsum(0) - top <= top_p
    return idx[keep], top[keep]


def _sample(probs: torch.Tensor, top_p: float, generator: torch.Generator) -> int:
    """One draw from the nucleus with this sample's own generator (reproducible per sample)."""
    if top_p >= 1.0:
        return int(torch.multinomial(probs.cpu(), 1, generator=generator)[0])
    ids, weights = nucleus(probs, top_p)
    return int(ids[torch.multinomial(weights.cpu(), 1, generator=generator)[0]])
