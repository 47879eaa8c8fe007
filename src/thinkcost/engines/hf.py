"""transformers engine with its own batched decode loop.

Why not `model.generate`: a static batch runs until its longest member stops, so one
looping low-bit sample makes every finished row pay for padding steps. This loop drops a row
from the KV cache the step it finishes, records when each row finished (latency) and what
share of every step's wall time it used (cost), and checks stop strings outside `<think>`.
Greedy output equals `model.generate` token for token (tested).
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from ..models import ModelSource
from ..reasoning import open_think_at, split_reasoning
from .base import Completion, Request

OnComplete = Callable[[int, int, Completion], None]


@dataclass
class _Row:
    req: Request
    prompt_len: int
    generator: torch.Generator | None
    ids: list[int]
    logprobs: list[float]
    cost_s: float = 0.0
    latency_s: float = 0.0
    finish: str | None = None
    stop_at: int | None = None  # char offset where a stop string cut the text


def load_hf(source: ModelSource, dtype: str = "float32", device: str = "cpu"):
    """Load model + tokenizer; a GGUF is dequantized by transformers to `dtype`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": source.gguf_file} if source.gguf_file else {}
    tok = AutoTokenizer.from_pretrained(source.path, **kw)
    model = AutoModelForCausalLM.from_pretrained(source.path, dtype=getattr(torch, dtype), **kw)
    model.to(device).eval()
    return model, tok


class HFEngine:
    """Batched generation with a transformers causal LM (CPU or CUDA)."""

    name = "hf"

    def __init__(self, model, tokenizer, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        self.model = model
        self.tok = tokenizer
        self.batch_size = batch_size
        self.device = next(model.parameters()).device
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        self.eos_ids = self._eos_ids()
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
        """The chat template applied as the model was trained to see it."""
        return self.tok.apply_chat_template(req.prompt_messages, add_generation_prompt=True, tokenize=False)

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        """All completions in request order (`n` > 1 yields n consecutive ones).

        `on_complete(request_index, sample_index, completion)` is called the moment each
        sequence finishes, so a caller can commit it before the rest of its batch is done."""
        flat = [(k, r, i) for k, r in enumerate(requests) for i in range(r.n)]
        out: list[Completion] = []
        for b in range(0, len(flat), self.batch_size):
            out.extend(self._batch(flat[b : b + self.batch_size], on_complete))
        return out

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
        rows = []
        for k, (_, r, i) in enumerate(chunk):
            gen = None
            if r.temperature > 0:
                gen = torch.Generator(device="cpu").manual_seed(r.seed * 1_000_003 + i)
            rows.append(_Row(r, int(mask[k].sum()), gen, [], []))
        active = list(range(len(rows)))  # row index of each line in the live batch
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        cache = None
        step_in, step_pos, step_mask = input_ids, pos, mask
        t0 = time.perf_counter()
        t_prev = t0
        ttft = 0.0
        done: dict[int, Completion] = {}
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
            nxt, lps = self._pick(logits, [rows[a] for a in active])
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
            keep = []
            for line, a in enumerate(active):
                row = rows[a]
                tid = int(nxt[line])
                row.ids.append(tid)
                row.logprobs.append(float(lps[line]))
                if tid in self.eos_ids or (row.req.stop and self._hit_stop(row)):
                    row.finish = "stop"
                elif len(row.ids) >= row.req.max_new_tokens:
                    row.finish = "length"
                if row.finish:
                    row.latency_s = now - t0
                    done[a] = self._complete(row, ttft)
                    if on_complete is not None:
                        req_index, _, sample = chunk[a]
                        on_complete(req_index, sample, done[a])
                else:
                    keep.append(line)
            if not keep:
                break
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

    def _pick(self, logits: torch.Tensor, rows: list[_Row]) -> tuple[torch.Tensor, torch.Tensor]:
        """Next token per row: argmax for temperature 0, else seeded top-p sampling per row."""
        logp = torch.log_softmax(logits, dim=-1)
        nxt = logits.argmax(dim=-1)
        for k, row in enumerate(rows):
            if row.generator is None:
                continue
            probs = torch.softmax(logits[k] / row.req.temperature, dim=-1)
            if row.req.top_p < 1.0:
                sp, si = probs.sort(descending=True)
                cut = sp.cumsum(0) - sp > row.req.top_p
                sp[cut] = 0
                probs = torch.zeros_like(probs).scatter_(0, si, sp)
            nxt[k] = torch.multinomial(probs.cpu(), 1, generator=row.generator).to(nxt.device)[0]
        return nxt, logp.gather(1, nxt[:, None])[:, 0]

    def _hit_stop(self, row: _Row) -> bool:
        """A stop string ends generation only outside an open `<think>` block."""
        text = self.tok.decode(row.ids, skip_special_tokens=True)
        for s in row.req.stop:
            start = max(0, len(text) - len(s) - 16)  # only the newest tail can hold a new match
            p = text.find(s, start)
            if p != -1 and not open_think_at(text, p):
                row.stop_at = p
                return True
        return False

    def _complete(self, row: _Row, ttft: float) -> Completion:
        ids = row.ids[:-1] if row.ids and row.ids[-1] in self.eos_ids else row.ids
        text = self.tok.decode(ids, skip_special_tokens=True)
        if row.stop_at is not None:
            text = text[: row.stop_at]
            ids = ids[: self._tokens_covering(ids, row.stop_at)]
        sp = split_reasoning(text, row.finish or "length")
        n_reason = (
            len(ids) if sp.think_unclosed else min(len(ids), self._tokens_covering(ids, sp.answer_start))
        )
        return Completion(
            text=text,
            reasoning_text=sp.reasoning,
            answer_text=sp.answer,
            prompt_tokens=row.prompt_len,
            completion_tokens=len(row.ids),
            reasoning_tokens=n_reason,
            answer_tokens=len(ids) - n_reason,
            finish_reason=row.finish or "length",
            latency_s=row.latency_s,
            ttft_s=ttft,
            cost_s=row.cost_s,
            think_unclosed=sp.think_unclosed,
            logprobs=row.logprobs,
        )

    def _tokens_covering(self, ids: list[int], n_chars: int) -> int:
        """Fewest leading tokens whose decoded text reaches `n_chars` characters (binary search:
        exact token counts from the model's own tokenizer, no whitespace heuristics)."""
        if n_chars <= 0:
            return 0
        lo, hi = 0, len(ids)
        while lo < hi:
            mid = (lo + hi) // 2
            if len(self.tok.decode(ids[:mid], skip_special_tokens=True)) >= n_chars:
                hi = mid
            else:
                lo = mid + 1
        return lo

    def close(self) -> None:
        self.model = None


def save_hf(model, tokenizer, out_dir) -> None:
    """Write a float model as a plain transformers dir. A GGUF-loaded model refuses
    `save_pretrained`, so build a fresh one from its config (minus the GGUF quantization
    flag) and copy the weights in."""
    import copy
    from pathlib import Path

    from transformers import AutoModelForCausalLM

    config = copy.deepcopy(model.config)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    fresh = AutoModelForCausalLM.from_config(config, dtype=next(model.parameters()).dtype)
    fresh.load_state_dict(model.state_dict())
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    fresh.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
