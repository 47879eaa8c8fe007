"""A small GPTQ checkpoint of a real model in seconds (RTN codes in the GPTQ layout), for the
export-model and vllm engine tests."""

from __future__ import annotations

from pathlib import Path

from torch import nn


def rtn_checkpoint(model, tok, out: Path, bits: int = 4, group_size: int = 32) -> Path:
    """Quantize the decoder blocks' Linears of `model` (left untouched) and write a checkpoint."""
    from thinkcost.quant.checkpoint import export_gptq
    from thinkcost.quant.rtn import quantize_rtn
    from thinkcost.quant.sequential import decoder_blocks

    prefix, blocks = decoder_blocks(model)
    layers = {
        f"{prefix}.{i}.{name}": quantize_rtn(mod.weight.detach(), bits, group_size)
        for i, block in enumerate(blocks)
        for name, mod in block.named_modules()
        if isinstance(mod, nn.Linear)
    }
    return export_gptq(
        model, layers, out, bits=bits, group_size=group_size, sym=True, desc_act=False, tokenizer=tok
    )
