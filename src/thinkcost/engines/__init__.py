"""Generation backends, by the name used in specs (`--engine`). Each module registers a
backend class: `check_variant(name)` (which variants it can run), `__init__(spec, source, task,
console)`, `prepare(variant, status) -> (engine, variant info)` and `close()`."""

from ..registry import Registry

ENGINES = Registry("engine")

# Registration happens on import; heavy dependencies (llama_cpp, vllm, httpx) load lazily inside.
from . import hf, llamacpp, openai_api, vllm_engine  # noqa: E402, F401
