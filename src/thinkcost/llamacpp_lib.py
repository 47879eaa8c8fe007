"""The llama-cpp-python library, imported once with llama.cpp's logging silenced.

It sits below its two users, the llamacpp engine (engines/llamacpp.py) and the GGUF quantizer
(quant/gguf_files.py), so neither has to import the other to get it."""

from __future__ import annotations

import ctypes
from typing import Any

from .errors import UserError

_QUIET = None  # the log callback must outlive every llama.cpp call


def import_llama_cpp() -> Any:
    """The `llama_cpp` module, or one UserError line saying how to install it."""
    try:
        import llama_cpp
    except ImportError:
        raise UserError(
            "the llamacpp engine needs llama-cpp-python: pip install 'thinkcost[llamacpp]' with the "
            "CMAKE_ARGS given in the README"
        ) from None
    global _QUIET
    if _QUIET is None:  # llama.cpp logs every tensor to stderr; keep the terminal for progress bars

        @llama_cpp.llama_log_callback
        def _quiet(level, text, user_data):  # pragma: no cover - called from C
            return None

        _QUIET = _quiet
        llama_cpp.llama_log_set(_QUIET, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
    return llama_cpp
