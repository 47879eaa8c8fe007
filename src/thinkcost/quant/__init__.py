"""Weight quantizers by name (`rtn`, later `gptq`, `babai`) and their application to a model."""

from thinkcost.quant import rtn
from thinkcost.quant.apply import VariantSpec, parse_variant
from thinkcost.registry import Registry

QUANTIZERS = Registry("quantizer")
QUANTIZERS.register("rtn")(rtn.quantize_rtn)

__all__ = ["QUANTIZERS", "VariantSpec", "parse_variant"]
