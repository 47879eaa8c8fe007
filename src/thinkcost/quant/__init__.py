"""Weight quantizers by name (`rtn`, `gptq`, `babai`) and their application to a model.

The names below load on first use (PEP 562), so torch-free submodules such as `quant.bits`
(the valid bit widths, read by the CLI's help) import without pulling in torch."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from thinkcost.quant.apply import VariantSpec, parse_variant
    from thinkcost.registry import Registry

    QUANTIZERS: Registry

__all__ = ["QUANTIZERS", "VariantSpec", "parse_variant"]


def _quantizers() -> Any:
    from thinkcost.quant import babai, gptq, rtn
    from thinkcost.registry import Registry

    reg = Registry("quantizer")
    reg.register("rtn")(rtn.quantize_rtn)
    reg.register("gptq")(gptq.gptq_quantize)
    reg.register("babai")(babai.babai_quantize)
    return reg


def __getattr__(name: str) -> Any:
    if name == "QUANTIZERS":
        globals()[name] = value = _quantizers()
        return value
    if name in ("VariantSpec", "parse_variant"):
        from thinkcost.quant import apply

        return getattr(apply, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
