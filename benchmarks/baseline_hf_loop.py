"""The hf engine decode loop as of thinkcost 0.2 (commit c87aa8c): the "before" of benchmarks/decode.py.

Only what changed since is kept here, verbatim: the step loop on a transformers DynamicCache
(one token per row per step, rows dropped with `batch_select_indices`) and `_pick` with a full
log-softmax every step. Everything the two loops share (row control, prompt rendering, EOS ids,
wait-penalty, nucleus sampling) is imported from the current engine, so the benchmark measures
exactly the loop change side by side in one run.
"""

from __future__ import annotations

import math
import time

import torch

from thinkcost.engines import hf
from thinkcost.engines.control import ShortMK
from thinkcost.engines.hf import _penalise, _Row, _sample
from thinkcost.types import Completion, OnComplete, Request


class HFEngine(hf.HFEngine):
    """The current engine with the 0.2 decode loop (no drafts, no preallocated per-row cache,
    the weights as loaded)."""

    def __init__(self, model, tokenizer, batch_size: int = 16, thinking: str = "auto", fmt=None) -> None:
        super().__init__(model, tokenizer, batch_size, thinking, fmt, max_draft=0, layout="keep")

    @torch.inference_mode()
    def _batch(
        self, chunk: list[tuple[int, Request, int]], on_complete: OnComplete | None
    ) -> list[Completion]:
        input_ids, mask, rows = self._encode(chunk)
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
