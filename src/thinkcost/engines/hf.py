"""transformers engine with its own batched decode loop.

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
from rich.markup import escape

from ..device import pick_device
from ..errors import UserError
from ..models import ModelSource
from ..reasoning import ReasoningFormat, detect_format, render_prompt
from ..types import Completion, OnComplete, Request
from .control import RowControl, ShortMK, Vocab, complete, plan_batches
from .kv_rows import RowCache
from .linear_layout import (
    PAD_ROWS,
    column_major_,
    is_column_major,
    pad_rows,
    row_major_,
    wants_column_major,
)
from .lookup_draft import LookupDraft
from .penalty import PenaltyRules, penalty_rules


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


def load_hf(source: ModelSource, dtype: str = "float32", device: str = "cpu", console=None):
    """Load model + tokenizer. A GGUF is de-quantized by transformers to `dtype` once and kept
    in the float-weight cache (`thinkcost.weight_cache`); later loads map that file."""
    from ..weight_cache import load_cached

    model, tok = load_cached(source.label, source, dtype, console=console)
    model.to(device).eval()
    return model, tok


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
        max_draft: int = 6,
        draft_budget: int | None = None,
        layout: str = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        if layout not in ("auto", "keep"):
            raise ValueError(f"layout: expected 'auto' or 'keep', got {layout!r}")
        # CPU float32, batches of 2+: Linear weights column-major, and 2-15 rows computed as 16
        # (engines/linear_layout: 1.5x faster matmuls, and a row's numerics no longer depend on
        # how many rows are left). Batch 1 keeps them row-major: a one-row product is then a
        # matrix-vector product whose result does not depend on the thread count (column-major
        # it does, measured), so batch-1 rows match across executors with different threads,
        # and the layout gains nothing at one row (65 vs 68 ms). "keep": leave the model as is.
        if layout == "auto" and wants_column_major(model):
            (column_major_ if batch_size > 1 else row_major_)(model)
        if draft_budget is None:  # padded steps cost the same up to 16 rows: fill them with drafts
            draft_budget = PAD_ROWS if is_column_major(model) else 10
        if max_draft < 0 or draft_budget < 1:
            raise ValueError(
                f"max_draft >= 0 and draft_budget >= 1 expected, got {max_draft}, {draft_budget}"
            )
        # speculative greedy: up to `max_draft` looked-up tokens per row are checked in each
        # step, within `draft_budget` fed positions per step over the batch (0 = one at a time).
        # On a 2-core CPU a step reads all weights once (~2 GB in float32 for 0.5B) and its
        # matmuls stay bandwidth-bound up to ~8-10 rows; past that each fed position costs
        # compute, so drafts go to the small batches of a run's tail, where looping rows are.
        self.max_draft = max_draft
        self.draft_budget = draft_budget
        self._pads: list[int] = []
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

    def _encode(self, chunk: list[tuple[int, Request, int]]) -> tuple[torch.Tensor, torch.Tensor, list[_Row]]:
        """A chunk's rendered prompts, left-padded: token ids, attention mask, and one row each."""
        texts = [self.render(r) for _, r, _ in chunk]
        enc = self.tok(
            texts, return_tensors="pt", padding=True, padding_side="left", add_special_tokens=False
        )
        input_ids = enc["input_ids"].to(self.device)
        mask = enc["attention_mask"].to(self.device)
        rows = [self._new_row(r, i, int(mask[k].sum())) for k, (_, r, i) in enumerate(chunk)]
        return input_ids, mask, rows

    def _batch(
        self, chunk: list[tuple[int, Request, int]], on_complete: OnComplete | None
    ) -> list[Completion]:
        if is_column_major(self.model):
            with pad_rows(self.model):
                return self._decode(chunk, on_complete)
        return self._decode(chunk, on_complete)

    @torch.inference_mode()
    def _decode(
        self, chunk: list[tuple[int, Request, int]], on_complete: OnComplete | None
    ) -> list[Completion]:
        input_ids, mask, rows = self._encode(chunk)
        drafts = [self._drafter(row, input_ids[k][mask[k].bool()].tolist()) for k, row in enumerate(rows)]
        short_mk = ShortMK([(k, r) for k, r, _ in chunk])
        active = list(range(len(rows)))  # row index of each line in the live batch
        max_steps = max(r.req.max_new_tokens for r in rows)
        cache = RowCache(
            mask,
            capacity=input_ids.shape[1] + max_steps + self.max_draft + 1,
            n_layers=self.model.config.num_hidden_layers,
            dtype=self.model.dtype,
            device=self.device,
        )
        real_len = mask.sum(-1)  # real tokens per line so far: the next position id
        step_in = input_ids
        step_pos = (mask.cumsum(-1) - 1).clamp(min=0)
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

        step = 0
        while True:
            n_new = step_in.shape[1]
            out = self.model(
                input_ids=step_in,
                attention_mask=cache.begin(n_new),
                position_ids=step_pos,
                use_cache=True,
                logits_to_keep=n_new if step else 1,
                **{self._cache_kw: cache},
            )
            # [lines, positions, V]: at the prefill only the last position; then every fed one
            logits = out.logits.float()
            live = [rows[a] for a in active]
            picks, lps, certs = (t.tolist() for t in self._pick(logits, live))
            now = time.perf_counter()
            dt = now - t_prev
            t_prev = now
            if step == 0:
                ttft = now - t0
                total_prompt = sum(row.prompt_len for row in live)
                for row in live:  # prefill shared by prompt length, decode steps equally
                    row.cost_s += dt * row.prompt_len / total_prompt
            else:
                for row in live:
                    row.cost_s += dt / len(live)
            fed = step_in.tolist() if step else None
            emitted: list[list[int]] = []  # tokens each line emits this step (the last one is fed next)
            accepted: list[int] = []  # of the positions fed this step, how many stay in the cache
            keep = []
            for line, a in enumerate(active):
                row, out_ids = rows[a], []
                n_fed = n_new - self._pads[line] if step else 1  # real positions fed on this line
                for j in range(n_fed):
                    tid = row.step(picks[line][j], self.vocab, lps[line][j], certs[line][j])
                    out_ids.append(tid)
                    if row.finish or j + 1 >= n_fed or fed[line][j + 1] != tid:
                        break  # position j + 1 was fed a different token: its logits are void
                emitted.append(out_ids)
                accepted.append(len(out_ids) if step else n_new)
                if drafts[a] is not None:
                    drafts[a].extend(out_ids)
                if row.finish:
                    short_mk.finished(a)
                    finish(a, now)
                else:
                    keep.append(line)
            cache.advance(torch.tensor(accepted, device=self.device))
            if step:  # the accepted positions are real tokens now (the prefill's were counted already)
                real_len = real_len + torch.tensor(accepted, device=self.device)
            cancel = set(short_mk.to_cancel(active[line] for line in keep))
            for a in sorted(cancel):
                rows[a].finish = "cancelled"
                finish(a, now)
            keep = [line for line in keep if active[line] not in cancel]
            if not keep:
                break
            if len(keep) < len(active):
                idx = torch.tensor(keep, device=self.device)
                cache.select(idx)
                real_len = real_len[idx]
                emitted = [emitted[k] for k in keep]
                active = [active[k] for k in keep]
            step_in, step_pos = self._next_input(active, rows, drafts, emitted, real_len)
            step += 1
        return [done[a] for a in range(len(rows))]

    def _drafter(self, row: _Row, prompt_ids: list[int]) -> LookupDraft | None:
        """The row's n-gram index, or None for a row that never gets drafts (no index upkeep)."""
        return LookupDraft(prompt_ids) if self._drafts_for(row) else None

    def _drafts_for(self, row: _Row) -> bool:
        """Drafts are checked only for greedy rows without the wait-penalty: their emitted token
        at a position depends on nothing but the logits there (sampling draws and penalty tries
        depend on the tokens before, which a rejected draft would have changed)."""
        return self.max_draft > 0 and row.generator is None and row.rules is None

    def _next_input(self, active, rows, drafts, emitted, real_len):
        """The next step's input: per line its last emitted token, then its draft tokens, then
        padding (masked out by position; never accepted). The batch's token budget is shared:
        drafts are longest when few rows are left, where a step costs the most per token."""
        n = len(active)
        room = max(0, self.draft_budget // n - 1)
        seqs = []
        for line, a in enumerate(active):
            row = rows[a]
            k = min(self.max_draft, room, row.req.max_new_tokens - len(row.ids) - 1)
            guess = drafts[a].propose(k) if drafts[a] is not None and not row.queue else []
            seqs.append([emitted[line][-1], *guess])
        width = max(len(q) for q in seqs)
        self._pads = [width - len(q) for q in seqs]
        pad = self.tok.pad_token_id
        step_in = torch.tensor([q + [pad] * (width - len(q)) for q in seqs], device=self.device)
        step_pos = real_len[:, None] + torch.arange(width, device=self.device)[None, :]
        return step_in, step_pos

    def _pick(
        self, logits: torch.Tensor, rows: list[_Row]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The model's proposal per line and position ([lines, positions]): argmax for
        temperature 0, else seeded top-p sampling (position 0 only: sampled rows get no
        drafts), both after the wait-penalty (position 0). Also the proposal's logprob and the
        self-certainty KL(uniform || p) = log Z - mean_j z_j - log V, both under the raw
        (untempered, unpenalised) distribution, from two reductions over the vocabulary
        instead of a full log-softmax."""
        vocab = logits.shape[-1]
        lse = torch.logsumexp(logits, dim=-1)  # [L, P]
        certainty = lse - logits.mean(dim=-1) - math.log(vocab)
        head = logits[:, 0, :]
        first = _penalise(head, rows)
        nxt = logits.argmax(dim=-1)
        if first is not head:
            nxt[:, 0] = first.argmax(dim=-1)
        hot = [k for k, row in enumerate(rows) if row.generator is not None]
        if hot:
            temps = torch.tensor([rows[k].req.temperature for k in hot], device=logits.device)
            probs = torch.softmax(first[hot] / temps[:, None], dim=-1)  # [S, V]
            for line, k in enumerate(hot):
                nxt[k, 0] = _sample(probs[line], rows[k].req.top_p, rows[k].generator)
        chosen = logits.gather(-1, nxt[..., None])[..., 0]
        return nxt, chosen - lse, certainty

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


class HFBackend:
    """One transformers model across a run's variants: loaded once, each variant quantized in
    place from a snapshot of the base weights (so no variant inherits another's rounding)."""

    variants_help = "base, rtn-wBgG[-asym][-head], gptq-wBgG[...], babai-wBgG[...] or ckpt:PATH"

    @staticmethod
    def check_variant(name: str) -> None:
        from ..quant import parse_variant

        if name.startswith("gguf:"):
            raise UserError(f"variant {name!r} is a llama.cpp quantization: run it with --engine llamacpp")
        if name.startswith("served:"):
            raise UserError(f"variant {name!r} names a served model: run it with --engine openai")
        parse_variant(name)

    @staticmethod
    def fingerprint(spec, variant: str) -> dict:
        """What a variant's rows depend on besides the base model: a checkpoint's files, or the
        calibration data of GPTQ/Babai (checked against stored rows on every rerun)."""
        from ..hashing import path_hash
        from ..quant import parse_variant

        if variant.startswith("ckpt:"):
            return {"checkpoint_sha256": path_hash(variant[5:])}
        if not parse_variant(variant).needs_calibration:
            return {}
        return {
            "calib_samples": spec.calib_samples,
            "calib_seq_len": spec.calib_seq_len,
            "calib_file": path_hash(spec.calib_file) if spec.calib_file else "task prompts",
        }

    def __init__(self, spec, source: ModelSource | None, task, console) -> None:
        self.spec = spec
        self.source = source
        self.task = task
        self.console = console
        self.device = pick_device(spec.device)
        self.model = self.tok = self.snapshot = self.calib = None

    def _load(self) -> None:
        from ..quant.apply import snapshot_linear_weights

        with self.console.status(escape(f"loading {self.spec.model} ({self.spec.dtype}, {self.device})")):
            t = time.perf_counter()
            self.model, self.tok = load_hf(
                self.source, dtype=self.spec.dtype, device=self.device, console=self.console
            )
        self.console.print(f"loaded {self.spec.model} in {time.perf_counter() - t:.1f}s", markup=False)
        self.snapshot = snapshot_linear_weights(self.model)

    def prepare(self, variant: str, status) -> tuple[HFEngine, dict]:
        from ..quant import parse_variant
        from ..quant.apply import quantize_model_, restore_linear_weights_

        if self.model is None:
            self._load()
        vspec = parse_variant(variant)
        if vspec.needs_calibration and self.calib is None:
            from ..quant.calibration import build_calibration

            self.calib = build_calibration(
                self.task,
                self.tok,
                n_samples=self.spec.calib_samples,
                seq_len=self.spec.calib_seq_len,
                calib_file=self.spec.calib_file,
                seed=self.spec.seed,
            )
        restore_linear_weights_(self.model, self.snapshot)
        engine = HFEngine(
            self.model,
            self.tok,
            batch_size=self.spec.batch_size,
            thinking=self.spec.thinking,
            max_draft=self.spec.draft_tokens,
        )
        status("quantizing")
        qinfo = quantize_model_(self.model, vspec, self.calib, on_block=lambda i, k: status(f"block {i}/{k}"))
        info = {
            "method": vspec.method,
            "bits": vspec.bits,
            "group_size": vspec.group_size,
            "sym": vspec.sym,
            "order": vspec.order if vspec.needs_calibration else None,
            # two figures (quant.apply.bits_per_weight_figures); `bits_per_weight` = layers, as before
            "bits_per_weight": qinfo.get("bits_per_weight_layers"),
            "bits_per_weight_layers": qinfo.get("bits_per_weight_layers"),
            "bits_per_weight_model": qinfo.get("bits_per_weight_model"),
            "proxy_loss": qinfo.get("proxy_loss"),
            "checkpoint": qinfo.get("checkpoint"),
            "quantize_s": qinfo.get("seconds"),
            "engine": "hf",
            "device": self.device,
            "dtype": self.spec.dtype,
            "model": self.spec.model,
            "model_source": self.source.gguf_file or self.source.path,
            "reasoning_format": engine.fmt.kind,
            "reasoning_format_why": engine.fmt.why,
        }
        return engine, info

    def close(self) -> None:
        if self.model is not None:
            from ..quant.apply import restore_linear_weights_

            restore_linear_weights_(self.model, self.snapshot)


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
