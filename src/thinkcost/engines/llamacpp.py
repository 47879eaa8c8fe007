"""llama.cpp engine: real low-bit kernels on GGUF files, with the same per-row decisions as
the hf engine.

Why a decode loop of our own over llama.cpp's C API instead of `Llama.create_completion`:
budget forcing, bf-wait, short-m@k and the wait-penalty are token-level decisions
(`control.RowControl`), logprobs and self-certainty need the full distribution, and a batch of
sequences (one llama.cpp sequence id per row, the prompt decoded once and its KV copied to
every sample of the request) is what makes sampling strategies affordable on a CPU. The
model's own tokenizer is the transformers tokenizer read from the same GGUF, so prompts,
token ids and token counts are identical to the hf engine's.

Variants: `base` is the F32 GGUF holding exactly the hf engine's base weights, `gguf:TYPE` is
that file quantized by llama.cpp (quant/gguf_files.py).
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import UserError
from ..llamacpp_lib import import_llama_cpp
from ..models import ModelSource, cache_dir
from ..reasoning import detect_format, render_prompt
from ..types import Completion, OnComplete, Request
from .control import RowControl, ShortMK, Vocab, complete, plan_batches
from .penalty import PenaltyRules, penalty_rules


class _Row(RowControl):
    """A `RowControl` plus the llama.cpp sequence it decodes in and its own RNG."""

    def __init__(self, req: Request, sample_id: int, seq: int, prompt_len: int, rules) -> None:
        super().__init__(req)
        self.seq = seq
        self.pos = prompt_len  # position of the next token fed back
        self.prompt_len = prompt_len
        self.rules: PenaltyRules | None = rules
        self.rng = (
            np.random.Generator(np.random.PCG64(req.seed * 1_000_003 + sample_id))
            if req.temperature > 0
            else None
        )
        self.cost_s = 0.0
        self.latency_s = 0.0


class LlamaCppEngine:
    """Batched generation with llama.cpp on one GGUF file."""

    name = "llamacpp"

    def __init__(
        self,
        gguf_path: str | Path,
        tokenizer: Any,
        batch_size: int = 16,
        n_ctx: int | None = None,
        threads: int | None = None,
        max_tokens_per_row: int = 4096,
        thinking: str = "auto",
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size: expected >= 1, got {batch_size}")
        lc = import_llama_cpp()
        self.lc = lc
        self.path = Path(gguf_path)
        self.tok = tokenizer
        self.batch_size = batch_size
        self.threads = threads or os.cpu_count() or 1
        mp = lc.llama_model_default_params()
        self.model = lc.llama_model_load_from_file(str(self.path).encode(), mp)
        if not self.model:
            raise UserError(f"llama.cpp could not load {self.path}")
        self.vocab_ptr = lc.llama_model_get_vocab(self.model)
        self.n_vocab = int(lc.llama_vocab_n_tokens(self.vocab_ptr))
        self.n_batch = 2048
        cp = lc.llama_context_default_params()
        # one KV pool shared by all rows, sized for a full batch of long rows
        cp.n_ctx = n_ctx or batch_size * max_tokens_per_row
        cp.n_batch = self.n_batch
        cp.n_ubatch = min(512, self.n_batch)
        cp.n_seq_max = batch_size
        cp.n_threads = self.threads
        cp.n_threads_batch = self.threads
        cp.kv_unified = True
        # as llama-cpp-python's Llama (and so its server): no flash attention, so greedy output
        # matches those paths instead of flipping near-ties with a different summation order
        cp.flash_attn_type = 0
        cp.no_perf = True
        self.ctx = lc.llama_init_from_model(self.model, cp)
        if not self.ctx:
            raise UserError(f"llama.cpp could not create a context for {self.path} (n_ctx {cp.n_ctx})")
        self.n_ctx = int(cp.n_ctx)
        self.mem = lc.llama_get_memory(self.ctx)
        self.batch = lc.llama_batch_init(self.n_batch, 0, 1)
        if self.tok.pad_token_id is None:
            self.tok.pad_token = self.tok.eos_token
        eos = {i for i in range(self.n_vocab) if lc.llama_vocab_is_eog(self.vocab_ptr, i)}
        for src in (self.tok.eos_token_id,):
            if isinstance(src, int):
                eos.add(src)
        self.thinking = thinking
        self.fmt = detect_format(self.tok, thinking)  # from the rendered prompt, as the hf engine
        self.vocab = Vocab.of(self.tok, eos, self.fmt)

    # --- llama.cpp calls -----------------------------------------------------------------
    def _decode(self, tokens: Sequence[tuple[int, int, int, bool]]) -> np.ndarray:
        """Decode (token, position, sequence, wants logits) entries; returns the logits rows
        of the entries that asked for them, in order (float32 [n, vocab])."""
        b = self.batch
        b.n_tokens = len(tokens)
        for i, (tid, pos, seq, logits) in enumerate(tokens):
            b.token[i] = tid
            b.pos[i] = pos
            b.n_seq_id[i] = 1
            b.seq_id[i][0] = seq
            b.logits[i] = 1 if logits else 0
        rc = self.lc.llama_decode(self.ctx, b)
        if rc != 0:
            raise RuntimeError(
                f"llama_decode returned {rc} (KV cache full? n_ctx={self.n_ctx}; lower batch_size or "
                "max_new_tokens)"
            )
        n_out = sum(1 for t in tokens if t[3])
        ptr = self.lc.llama_get_logits(self.ctx)
        return np.ctypeslib.as_array(ptr, shape=(n_out, self.n_vocab)).copy()

    def render(self, req: Request) -> str:
        return render_prompt(self.tok, req.prompt_messages, self.thinking)

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        """Same contract as the hf engine: request order, each request's samples in order;
        `on_complete` the moment a sequence finishes or is cancelled."""
        out: list[Completion] = []
        for chunk in plan_batches(requests, self.batch_size):
            out.extend(self._batch(chunk, on_complete))
        return out

    def _prefill(self, chunk, rows: list[_Row], prompts: list[list[int]]) -> np.ndarray:
        """Decode each distinct prompt once (samples of one request share it: the prompt's KV
        is copied to their sequences); returns first-step logits per row."""
        first: dict[int, int] = {}  # request index -> row holding its prompt
        todo: list[int] = []
        for a, (k, _, _) in enumerate(chunk):
            if k not in first:
                first[k] = a
                todo.append(a)
        logits = np.empty((len(rows), self.n_vocab), dtype=np.float32)
        pending: list[tuple[int, int, int, bool]] = []
        owners: list[int] = []
        for a in todo:
            ids = prompts[a]
            if len(ids) > self.n_batch:  # long prompts go alone, in n_batch slices
                if pending:
                    self._flush(pending, owners, logits)
                    pending, owners = [], []
                for s in range(0, len(ids), self.n_batch):
                    part = [
                        (t, s + j, rows[a].seq, s + j == len(ids) - 1)
                        for j, t in enumerate(ids[s : s + self.n_batch])
                    ]
                    got = self._decode(part)
                    if len(got):
                        logits[a] = got[-1]
                continue
            if len(pending) + len(ids) > self.n_batch:
                self._flush(pending, owners, logits)
                pending, owners = [], []
            pending.extend((t, j, rows[a].seq, j == len(ids) - 1) for j, t in enumerate(ids))
            owners.append(a)
        if pending:
            self._flush(pending, owners, logits)
        for a, (k, _, _) in enumerate(chunk):
            src = first[k]
            if src != a:
                self.lc.llama_memory_seq_cp(self.mem, rows[src].seq, rows[a].seq, -1, -1)
                logits[a] = logits[src]
        return logits

    def _flush(self, pending, owners: list[int], logits: np.ndarray) -> None:
        got = self._decode(pending)
        for line, a in enumerate(owners):
            logits[a] = got[line]

    def _batch(self, chunk, on_complete: OnComplete | None) -> list[Completion]:
        self.lc.llama_memory_clear(self.mem, True)
        prompts = [list(self.tok.encode(self.render(r), add_special_tokens=False)) for _, r, _ in chunk]
        need = sum(len(p) + r.max_new_tokens + 8 for p, (_, r, _) in zip(prompts, chunk, strict=True))
        if need > self.n_ctx:
            raise ValueError(
                f"a batch needs up to {need} KV cells but the llama.cpp context holds {self.n_ctx}: "
                "lower batch_size or max_new_tokens"
            )
        rows = []
        for a, (_, r, i) in enumerate(chunk):
            rules = penalty_rules(self.tok, r.penalty_words) if r.penalty > 0 and r.penalty_words else None
            rows.append(_Row(r, i, a, len(prompts[a]), rules))
        short_mk = ShortMK([(k, r) for k, r, _ in chunk])
        done: dict[int, Completion] = {}
        t0 = time.perf_counter()
        logits = self._prefill(chunk, rows, prompts)
        now = time.perf_counter()
        ttft = now - t0
        total_prompt = sum(r.prompt_len for r in rows)
        for r in rows:
            r.cost_s += (now - t0) * r.prompt_len / total_prompt
        t_prev = now
        active = list(range(len(rows)))

        def finish(a: int, when: float) -> None:
            rows[a].latency_s = when - t0
            done[a] = complete(
                rows[a], self.vocab, rows[a].prompt_len, rows[a].latency_s, ttft, rows[a].cost_s
            )
            self.lc.llama_memory_seq_rm(self.mem, rows[a].seq, -1, -1)
            if on_complete is not None:
                k, _, sample_id = chunk[a]
                on_complete(k, sample_id, done[a])

        while True:
            feed = []
            keep = []
            for line, a in enumerate(active):
                row = rows[a]
                sampled, lp, cert = self._pick(logits[line], row)
                tid = row.step(sampled, self.vocab, lp, cert)
                if row.finish:
                    short_mk.finished(a)
                    finish(a, time.perf_counter())
                else:
                    keep.append(a)
                    feed.append((tid, row.pos, row.seq, True))
                    row.pos += 1
            cancel = set(short_mk.to_cancel(keep))
            for a in sorted(cancel):
                rows[a].finish = "cancelled"
                finish(a, time.perf_counter())
            if cancel:
                feed = [f for f, a in zip(feed, keep, strict=True) if a not in cancel]
                keep = [a for a in keep if a not in cancel]
            if not keep:
                break
            logits = self._decode(feed)
            now = time.perf_counter()
            for a in keep:  # a decode step's time is shared equally by the rows it advanced
                rows[a].cost_s += (now - t_prev) / len(keep)
            t_prev = now
            active = keep
        return [done[a] for a in range(len(rows))]

    def _pick(self, logits: np.ndarray, row: _Row) -> tuple[int, float, float]:
        """Argmax or seeded top-p draw after the wait-penalty (its context-free ids, then the
        ids this row's last tokens make penalised, as in the hf engine); logprob and
        self-certainty from the raw distribution."""
        m = float(logits.max())
        shifted = logits - m
        lse = float(np.log(np.exp(shifted).sum()))
        logp_mean = float(shifted.mean()) - lse
        certainty = -float(np.log(len(logits))) - logp_mean
        scored = logits
        if row.rules is not None and not row.reasoning_ended:  # the penalty is for the reasoning only
            scored = logits.copy()
            single = [i for i in row.rules.single if i < len(logits)]
            scored[single] -= row.req.penalty
            if row.rules.contextual:  # later tokens of multi-token words, after their start
                targets = [i for i in row.rules.targets(row.ids) if i < len(logits)]
                scored[targets] -= row.req.penalty
        if row.rng is None:
            tid = int(scored.argmax())
        else:
            tid = _sample(scored, row.req.temperature, row.req.top_p, row.rng)
        return tid, float(shifted[tid]) - lse, certainty

    def close(self) -> None:
        if getattr(self, "ctx", None):
            self.lc.llama_batch_free(self.batch)
            self.lc.llama_free(self.ctx)
            self.lc.llama_model_free(self.model)
            self.ctx = None
            self.model = None

    def __del__(self) -> None:  # pragma: no cover - best effort
        with contextlib.suppress(Exception):
            self.close()


_TOP_CANDIDATES = 1024


def _sample(logits: np.ndarray, temperature: float, top_p: float, rng: np.random.Generator) -> int:
    """One draw from the tempered top-p nucleus (exact: the top-k shortcut is used only when
    its candidates already hold more than top_p of the mass)."""
    z = logits.astype(np.float64) / temperature
    z -= z.max()
    p = np.exp(z)
    p /= p.sum()
    if top_p >= 1.0:
        return int(rng.choice(len(p), p=p))
    k = min(_TOP_CANDIDATES, len(p))
    idx = np.argpartition(-p, k - 1)[:k] if k < len(p) else np.arange(len(p))
    if k < len(p) and p[idx].sum() <= top_p:
        idx = np.arange(len(p))
    idx = idx[np.argsort(-p[idx], kind="stable")]
    top = p[idx]
    keep = np.cumsum(top) - top <= top_p
    w = top[keep] / top[keep].sum()
    return int(idx[keep][rng.choice(int(keep.sum()), p=w)])


# --- backend: variants -> engines ------------------------------------------------------------

_GGUF_VARIANT = re.compile(r"gguf:([A-Za-z0-9_]+)")


class LlamaCppBackend:
    """One GGUF model on llama.cpp across a run's variants: `base` (F32) and `gguf:TYPE`."""

    variants_help = "base (the model as F32 GGUF) or gguf:TYPE (llama.cpp quantization, e.g. gguf:Q4_K_M)"

    @staticmethod
    def check_variant(name: str) -> None:
        if name != "base" and not _GGUF_VARIANT.fullmatch(name):
            raise UserError(
                f"variant {name!r} cannot run on the llamacpp engine: expected "
                f"{LlamaCppBackend.variants_help}; rtn/gptq/babai variants run on --engine hf"
            )

    def __init__(self, spec, source: ModelSource | None, task, console) -> None:
        if source is None or not source.gguf_file:
            raise UserError(
                f"the llamacpp engine runs GGUF models: --model {spec.model!r} is not a packaged model or a "
                ".gguf file (convert a transformers model with llama.cpp's convert_hf_to_gguf.py)"
            )
        self.spec = spec
        self.source = source
        self.console = console
        self.tok = None
        self.engine: LlamaCppEngine | None = None
        self._f32: Path | None = None

    def _tokenizer(self):
        if self.tok is None:
            from transformers import AutoTokenizer

            self.tok = AutoTokenizer.from_pretrained(self.source.path, gguf_file=self.source.gguf_file)
        return self.tok

    def f32_path(self, status: Callable[[str], None] = lambda s: None) -> Path:
        from ..quant.gguf_files import float_gguf

        if self._f32 is None:
            src = Path(self.source.path) / self.source.gguf_file
            status("writing the F32 GGUF")
            self._f32 = float_gguf(src, gguf_cache_dir() / f"{src.stem}-F32.gguf")
        return self._f32

    def variant_path(self, variant: str, status: Callable[[str], None] = lambda s: None) -> Path:
        from ..quant.gguf_files import quantize_gguf

        f32 = self.f32_path(status)
        if variant == "base":
            return f32
        qtype = _GGUF_VARIANT.fullmatch(variant).group(1).upper()
        status(f"quantizing to {qtype}")
        stem = f32.stem.removesuffix("-F32")
        return quantize_gguf(f32, qtype, gguf_cache_dir() / f"{stem}-{qtype}.gguf", threads=self.spec.threads)

    def prepare(self, variant: str, status: Callable[[str], None]) -> tuple[LlamaCppEngine, dict[str, Any]]:
        from ..quant.gguf_files import gguf_stats, quantize_seconds

        path = self.variant_path(variant, status)
        status("loading")
        if self.engine is not None:
            self.engine.close()
        max_row = self.spec.max_new_tokens + 2048  # generous prompt allowance per row
        self.engine = LlamaCppEngine(
            path,
            self._tokenizer(),
            batch_size=self.spec.batch_size,
            threads=self.spec.threads,
            max_tokens_per_row=max_row,
            thinking=self.spec.thinking,
        )
        stats = gguf_stats(path)
        info = {
            "method": "gguf" if variant != "base" else "none",
            "gguf_type": variant.split(":", 1)[1].upper() if variant != "base" else "F32",
            # two figures (quant.gguf_files.gguf_stats); `bits_per_weight` = layers, as on the hf engine
            "bits_per_weight": stats.bits_per_weight_layers,
            "bits_per_weight_layers": stats.bits_per_weight_layers,
            "bits_per_weight_model": stats.bits_per_weight_model,
            "file_bytes": stats.file_bytes,
            "tensor_types": stats.types,
            "tensor_type_params": stats.type_params,
            "gguf_file": str(path),
            "quantize_s": quantize_seconds(path),
            "engine": "llamacpp",
            "threads": self.engine.threads,
            "model": self.spec.model,
            "model_source": self.source.gguf_file,
            "device": "cpu",
            "dtype": "gguf",
            "reasoning_format": self.engine.fmt.kind,
            "reasoning_format_why": self.engine.fmt.why,
        }
        return self.engine, info

    def close(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None


def gguf_cache_dir() -> Path:
    return cache_dir() / "gguf"
