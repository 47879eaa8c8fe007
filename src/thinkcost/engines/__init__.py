"""Generation backends, by the name used in specs (`--engine`).

A backend is one module with one registration. The class it registers provides
`check_variant(name)` (which variants it runs), `fingerprint(spec, variant)` (what a
variant's rows depend on), `__init__(spec, source, task, console)`, `prepare(variant, status)
-> (engine, variant info)` and `close()`; the registration's metadata says what the spec, the
runner, the CLI and the report need to know without importing the module (`EngineMeta`).
Built-in backends are registered lazily (their modules import torch, llama.cpp, httpx or vLLM)."""

from __future__ import annotations

from dataclasses import dataclass

from ..registry import Registry

ENGINES = Registry("engine")


@dataclass(frozen=True)
class EngineMeta:
    """What a backend declares at registration (all optional but `summary`)."""

    summary: str = ""
    default_variants: tuple[str, ...] = ("base",)
    steers_decoding: bool = False  # token-level control: bf-cap, bf-wait, wait-penalty
    needs_local_model: bool = True  # the runner resolves --model to local files for it
    honours_dtype: bool = False  # --dtype changes its arithmetic (repro's dtype axis)
    races_in: str = "batch_size"  # the spec field a short-m@k group must fit in
    requires_fields: tuple[str, ...] = ()  # spec fields it cannot run without
    package: str | None = None  # distribution it needs beyond thinkcost's own dependencies
    extra: str | None = None  # pip extra that installs it
    timing_note: str = ""  # how to read its timings (stored with each variant, shown by reports)


def engine_meta(name: str) -> EngineMeta:
    """The registration metadata of engine `name`, without importing its module."""
    return EngineMeta(**ENGINES.meta(name))


def steering_engines() -> list[str]:
    return [n for n in ENGINES.names() if engine_meta(n).steers_decoding]


ENGINES.lazy(
    "hf",
    "thinkcost.engines.hf:HFBackend",
    summary="transformers; rtn/gptq/babai/ckpt variants",
    default_variants=("base", "rtn-w8g32", "rtn-w4g32", "rtn-w3g32"),
    steers_decoding=True,
    honours_dtype=True,
    timing_note="RTN/GPTQ/Babai variants on the hf engine are fake-quantized (dequantized float weights): "
    "their tokens/s is the base model's, so the effective speed-up shows only the cost of extra tokens and "
    "lost accuracy. Use --engine llamacpp with gguf:TYPE variants for real low-bit kernels.",
)
ENGINES.lazy(
    "llamacpp",
    "thinkcost.engines.llamacpp:LlamaCppBackend",
    summary="GGUF on llama.cpp; gguf:TYPE variants",
    default_variants=("base", "gguf:Q8_0", "gguf:Q4_K_M"),
    steers_decoding=True,
    package="llama-cpp-python",
    extra="llamacpp",
    timing_note="gguf:TYPE variants run on llama.cpp's quantized kernels, all quantized from one F32 GGUF "
    "holding the base weights: tokens/s and the effective speed-up are real for this CPU.",
)
ENGINES.lazy(
    "openai",
    "thinkcost.engines.openai.backend:OpenAIBackend",
    summary="any OpenAI-compatible server; served:NAME variants",
    needs_local_model=False,
    races_in="concurrency",
    requires_fields=("base_url",),
    package="httpx",
    timing_note="Timings are the server's as seen by the client (network and queueing included).",
)
ENGINES.lazy(
    "vllm",
    "thinkcost.engines.vllm_engine:VLLMBackend",
    summary="vLLM on a GPU host; ckpt:PATH variants",
    honours_dtype=True,
    package="vllm",
    extra="vllm",
    timing_note="Timings are vLLM's on its GPU host.",
)
