"""Which weight bit widths thinkcost accepts: stated once, checked by one function, before any work.

Two answers, because two different things hold the codes:
- fake quantization (variants `rtn-wB…`, `gptq-wB…`, `babai-wB…`): codes are dequantized back to
  float weights at once, so any grid of 2^B levels works, B = 2..8;
- a GPTQ checkpoint (`thinkcost quantize`, `export_gptq`, `ckpt:PATH`): codes are packed into
  int32 words in the layout AutoGPTQ, GPTQModel, transformers and vLLM read, which the ecosystem
  defines for 2, 3, 4 and 8 bits only. A 5-bit checkpoint would be a file nobody else can load.

Every call site (CLI flag, variant grammar, quantizers, checkpoint export and import) calls
`check_bits`, so the same bad value gets the same words everywhere; only the field differs.
This module imports nothing heavy: the CLI reads it to write its help text.
"""

from __future__ import annotations

from thinkcost.errors import UserError

FAKE_QUANT_BITS: tuple[int, ...] = (2, 3, 4, 5, 6, 7, 8)
CHECKPOINT_BITS: tuple[int, ...] = (2, 3, 4, 8)


class BitsError(UserError, ValueError):
    """A bit width outside the allowed set: one line for the CLI, a ValueError for library callers."""


def allowed_bits_text(*, checkpoint: bool = False) -> str:
    """The allowed widths in words, for help texts and errors ("2, 3, 4 or 8")."""
    allowed = CHECKPOINT_BITS if checkpoint else FAKE_QUANT_BITS
    return ", ".join(map(str, allowed[:-1])) + f" or {allowed[-1]}"


def bits_problem(bits: object, *, checkpoint: bool = False) -> str | None:
    """Why `bits` is not a valid width (None if it is); the wording every call site shares."""
    allowed = CHECKPOINT_BITS if checkpoint else FAKE_QUANT_BITS
    if isinstance(bits, int) and not isinstance(bits, bool) and bits in allowed:
        return None
    why = ""
    if checkpoint:
        why = " (the widths a GPTQ checkpoint can pack"
        if isinstance(bits, int) and bits in FAKE_QUANT_BITS:  # a width fake quantization can study
            why += f"; fake-quantized variants such as rtn-w{bits}g128 take {bits}"
        why += ")"
    return f"expected {allowed_bits_text(checkpoint=checkpoint)} bits{why}, got {bits!r}"


def check_bits(bits: object, *, field: str = "bits", checkpoint: bool = False) -> int:
    """Return `bits` if valid, else raise BitsError "FIELD: expected …, got …" (one line).

    `checkpoint=True` when the codes will be packed into a GPTQ checkpoint."""
    problem = bits_problem(bits, checkpoint=checkpoint)
    if problem is None and isinstance(bits, int):  # the isinstance only informs type checkers
        return bits
    raise BitsError(f"{field}: {problem}")
