"""vLLM engine: the offline `LLM` on a GPU host (extra `thinkcost[vllm]`).

Why one vLLM request per sample, each with its own seed (request seed * 1_000_003 + sample
id, the formula of the other engines), instead of `SamplingParams(n=k)`: with `n` the draws
depend on k, so a resumed run that only needs samples 5..7 would get different ones. vLLM's
prefix caching still computes the shared prompt's KV once for all samples of a request.
Why the engine's step loop instead of `LLM.generate`: short-m@k must stop the siblings the
moment m samples finished (`abort_request`), and per-sample latency needs the step at which
each finished.

Budget forcing (bf-cap, bf-wait) and the wait-penalty need token-by-token control; they run
on the hf and llamacpp engines and are refused here before any work is done.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import UserError
from ..models import ModelSource
from ..reasoning import detect_format, render_prompt
from ..types import Completion, OnComplete, Request
from .control import Vocab, tokens_covering
from .text_only import unsupported


def _import_vllm():
    try:
        import vllm
    except ImportError:
        raise UserError("the vllm engine needs vLLM on a GPU host: pip install 'thinkcost[vllm]'") from None
    return vllm


class VLLMEngine:
    name = "vllm"

    def __init__(self, llm: Any, thinking: str = "auto", eos_ids: set[int] | None = None) -> None:
        self.llm = llm
        self.tok = llm.get_tokenizer()
        self.thinking = thinking
        self.fmt = detect_format(self.tok, thinking)  # from the rendered prompt, as the hf engine
        # vLLM stops at the tokenizer's eos and the generation config's eos_token_id list (an
        # exported dir lists the hf engine's end tokens there): all of them end a completion
        eos = {self.tok.eos_token_id} if isinstance(self.tok.eos_token_id, int) else set()
        eos |= set(eos_ids or ())
        self.vocab = Vocab.of(self.tok, eos, self.fmt)
        self._counter = 0

    def render(self, req: Request) -> list[int]:
        text = render_prompt(self.tok, req.prompt_messages, self.thinking)
        return list(self.tok.encode(text, add_special_tokens=False))

    def generate(
        self, requests: Sequence[Request], on_complete: OnComplete | None = None
    ) -> list[Completion]:
        vllm = _import_vllm()
        for k, r in enumerate(requests):
            why = unsupported(r, "vllm")
            if why:
                raise ValueError(f"request {k}: {why}")
            if r.stop and not self.fmt.heuristic:
                # vLLM matches stop strings on the whole output, reasoning included
                raise ValueError(
                    f"request {k}: Request.stop: vLLM would stop inside the {self.fmt.kind} reasoning; "
                    "stop strings need the hf or llamacpp engine for reasoning models"
                )
        engine = self.llm.llm_engine
        meta: dict[str, tuple[int, int, int]] = {}  # vLLM request id -> (request index, sample, prompt len)
        for k, r in enumerate(requests):
            ids = self.render(r)
            for i in r.samples:
                self._counter += 1
                rid = f"tc-{self._counter}"
                params = vllm.SamplingParams(
                    n=1,
                    temperature=r.temperature,
                    top_p=r.top_p,
                    max_tokens=r.max_new_tokens,
                    seed=r.seed * 1_000_003 + i,
                    stop=list(r.stop) or None,
                    logprobs=0,
                    skip_special_tokens=not self.fmt.keep_special,
                )
                engine.add_request(rid, {"prompt_token_ids": ids}, params)
                meta[rid] = (k, i, len(ids))
        done: dict[tuple[int, int], Completion] = {}
        finished_per_req: dict[int, int] = {}
        last: dict[str, Any] = {}
        first_token: dict[str, float] = {}
        t0 = time.perf_counter()
        t_prev = t0
        cost: dict[str, float] = dict.fromkeys(meta, 0.0)
        live = set(meta)

        def emit(rid: str, out: Any, finish: str) -> None:
            k, i, plen = meta[rid]
            now = time.perf_counter()
            done[(k, i)] = self._completion(
                out,
                finish,
                plen,
                now - t0,
                first_token.get(rid, now) - t0,
                cost[rid],
                requests[k].answer_marker,
            )
            live.discard(rid)
            if on_complete is not None:
                on_complete(k, i, done[(k, i)])

        while engine.has_unfinished_requests():
            outs = engine.step()
            now = time.perf_counter()
            for rid in live:  # a step's time is shared by the requests alive during it
                cost[rid] += (now - t_prev) / max(len(live), 1)
            t_prev = now
            for out in outs:
                rid = out.request_id
                if rid not in meta or rid not in live:
                    continue
                last[rid] = out
                if out.outputs and out.outputs[0].token_ids and rid not in first_token:
                    first_token[rid] = now
                if out.finished:
                    reason = out.outputs[0].finish_reason or "stop"
                    emit(rid, out, "length" if reason == "length" else "stop")
                    k = meta[rid][0]
                    finished_per_req[k] = finished_per_req.get(k, 0) + 1
                    stop_after = requests[k].stop_after
                    if stop_after is not None and finished_per_req[k] >= stop_after:
                        siblings = [x for x in list(live) if meta[x][0] == k]
                        if siblings:
                            engine.abort_request(siblings)
                            for x in siblings:
                                emit(x, last.get(x), "cancelled")
        return [done[(k, i)] for k, r in enumerate(requests) for i in r.samples]

    def _completion(
        self,
        out: Any,
        finish: str,
        prompt_len: int,
        latency: float,
        ttft: float,
        cost: float,
        answer_marker: str | None = None,
    ) -> Completion:
        seq = out.outputs[0] if out is not None and out.outputs else None
        all_ids = list(seq.token_ids) if seq is not None else []
        ids = all_ids[:-1] if all_ids and all_ids[-1] in self.vocab.eos_ids else all_ids
        text = self.vocab.decode(ids) if ids else ""
        sp = self.fmt.split(text, "length" if finish == "cancelled" else finish, answer_marker)
        n_reason = len(ids) if sp.think_unclosed else tokens_covering(self.vocab, ids, sp.answer_start)
        n_reason = min(n_reason, len(ids))
        lps = None
        if seq is not None and seq.logprobs:
            lps = [
                float(step[t].logprob) for step, t in zip(seq.logprobs, all_ids, strict=False) if t in step
            ]
        aligned = lps is not None and len(lps) == len(all_ids)
        return Completion(
            text=text,
            reasoning_text=sp.reasoning,
            answer_text=sp.answer,
            prompt_tokens=prompt_len,
            completion_tokens=len(all_ids),
            reasoning_tokens=n_reason,
            answer_tokens=len(ids) - n_reason,
            finish_reason=finish,
            latency_s=latency,
            ttft_s=ttft,
            cost_s=cost,
            think_unclosed=sp.think_unclosed,
            logprobs=lps,
            reasoning_format=self.fmt.kind,
            answer_logprobs=lps[n_reason : len(ids)] if aligned else None,
            token_ids=ids,
        )

    def close(self) -> None:
        self.llm = None


class VLLMBackend:
    """A model on vLLM; variants are `base` or `ckpt:PATH` (a GPTQ checkpoint thinkcost wrote,
    which vLLM serves with its own GPTQ kernels). vLLM is handed a Hugging Face model dir: a
    packaged GGUF and every checkpoint are exported once (`thinkcost export-model`, cached), so
    vLLM gets the same tokenizer, chat template and end tokens as the hf engine."""

    variants_help = "base or ckpt:PATH (a GPTQ checkpoint directory)"

    @staticmethod
    def check_variant(name: str) -> None:
        if name != "base" and not name.startswith("ckpt:"):
            raise UserError(
                f"variant {name!r} cannot run on the vllm engine: expected {VLLMBackend.variants_help}"
            )

    @staticmethod
    def fingerprint(spec, variant: str) -> dict:
        """A checkpoint variant's rows depend on its files (checked on every rerun)."""
        from ..hashing import path_hash

        return {"checkpoint_sha256": path_hash(variant[5:])} if variant.startswith("ckpt:") else {}

    def __init__(self, spec, source: ModelSource | None, task, console) -> None:
        self.spec = spec
        self.source = source
        self.console = console
        self.llm = None

    def _model_dir(self, variant: str, dtype: str, status: Callable[[str], None]) -> tuple[str, dict]:
        """The directory vLLM loads: a GGUF model or a `ckpt:` variant is exported to a Hugging Face
        dir once (quant/export_model.py, cached by its inputs); a model dir or hub id goes as is."""
        if variant == "base" and (self.source is None or not self.source.gguf_file):
            return (self.source.path if self.source is not None else self.spec.model), {}
        from ..quant.export_model import cached_export

        status("exporting")
        res = cached_export(self.spec.model, variant, dtype, status=status)
        return str(res.path), {"export_mode": res.mode, "export": res.info.get("what")}

    def prepare(self, variant: str, status: Callable[[str], None]) -> tuple[VLLMEngine, dict[str, Any]]:
        vllm = _import_vllm()
        if self.llm is not None:
            self.close()
        dtype = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}[self.spec.dtype]
        note = None
        if variant.startswith("ckpt:") and dtype == "float32":
            dtype = "float16"  # vLLM's GPTQ kernels run in float16 (gptq_marlin also bfloat16)
            note = "GPTQ kernels need float16: --dtype float32 ran as float16"
        model, exported = self._model_dir(variant, dtype, status)
        tokenizer = self.spec.tokenizer or model
        status("loading")
        self.llm = vllm.LLM(
            model=model, tokenizer=tokenizer, dtype=dtype, seed=self.spec.seed, enable_prefix_caching=True
        )
        info = {
            "engine": "vllm",
            "model": self.spec.model,
            "vllm_model": model,
            "dtype": dtype,
            "vllm": getattr(vllm, "__version__", None),
            "device": "cuda",
        } | exported
        if note:
            info["dtype_note"] = note
        engine = VLLMEngine(self.llm, thinking=self.spec.thinking, eos_ids=_generation_eos(model))
        info["reasoning_format"] = engine.fmt.kind
        info["reasoning_format_why"] = engine.fmt.why
        return engine, info

    def close(self) -> None:
        if self.llm is not None:
            import gc

            self.llm = None
            gc.collect()


def _generation_eos(model_dir: str) -> set[int]:
    """eos_token_id of a local model dir's generation_config.json (vLLM stops at these too)."""
    import json
    from pathlib import Path

    f = Path(model_dir) / "generation_config.json"
    if not f.is_file():
        return set()
    try:
        eos = json.loads(f.read_text()).get("eos_token_id")
    except (OSError, ValueError):
        return set()
    if isinstance(eos, int):
        return {eos}
    return {int(x) for x in eos} if isinstance(eos, list) else set()
