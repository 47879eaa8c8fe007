"""Weight quantizers by name (`rtn`, `gptq`, `babai`, any registered plugin) and their
application to a model.

`QUANTIZERS` is the one registry of quantization methods (quant/methods.py says what a method
declares); `parse_variant` turns a variant name into a `VariantSpec` by the forms they declare.
Importing this package imports nothing heavy: torch-free submodules such as `quant.bits` (read
by the CLI's help) stay cheap, and the built-in methods load when the registry is first read."""

from __future__ import annotations

from thinkcost.quant.methods import QUANTIZERS, QuantizerMeta, VariantSpec, parse_variant, quantizer_meta

__all__ = ["QUANTIZERS", "QuantizerMeta", "VariantSpec", "parse_variant", "quantizer_meta"]
