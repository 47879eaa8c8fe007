"""Weight quantizers by name (`rtn`, `gptq`, `babai`) and their application to a model."""

from thinkcost.quant import babai, gptq, rtn
from thinkcost.quant.apply import VariantSpec, parse_variant
from thinkcost.registry import Registry

QUANTIZERS = Registry("quantizer")
QUANTIZERS.register("rtn")(rtn.quantize_rtn)
QUANTIZERS.register("gptq")(gptq.gptq_quantize)
QUANTIZERS.register("babai")(babai.babai_quantize)

__all__ = ["QUANTIZERS", "VariantSpec", "parse_variant"]
