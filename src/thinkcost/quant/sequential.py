"""Block-by-block calibration for Hessian-based quantizers (GPTQ, Babai).

Why sequential: a layer's Hessian should describe the inputs it will see at inference, which
come from the *already quantized* layers before it. So block i is calibrated on the outputs of
quantized blocks 0..i-1, quantized, and its own quantized outputs feed block i+1. Only one
block's activations are held at a time.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .gptq import HessianAccumulator

Solver = Callable[[torch.Tensor, torch.Tensor, str], Any]  # (W, H, layer name) -> QuantizedLayer


class _Stop(Exception):
    """Raised from a hook to end a forward pass once block 0's inputs are captured."""


def decoder_blocks(model: nn.Module) -> tuple[str, nn.ModuleList]:
    """The stack of transformer blocks (Llama/Qwen/Mistral-style `model.layers`, GPT-2 `h`)."""
    for prefix in ("model.layers", "model.decoder.layers", "transformer.h", "gpt_neox.layers"):
        mod: Any = model
        for part in prefix.split("."):
            mod = getattr(mod, part, None)
            if mod is None:
                break
        if isinstance(mod, nn.ModuleList):
            return prefix, mod
    raise UserError(f"{type(model).__name__}: cannot find its transformer blocks for sequential quantization")


def _capture_block0(model: nn.Module, blocks: nn.ModuleList, calib: torch.Tensor, chunk: int):
    """[(hidden_states, kwargs)] per chunk of calibration rows, as block 0 receives them."""
    captured: list[tuple[torch.Tensor, dict[str, Any]]] = []

    def hook(_mod, args, kwargs):
        hs = args[0] if args else kwargs.pop("hidden_states")
        captured.append((hs.detach(), {k: v for k, v in kwargs.items() if k != "hidden_states"}))
        raise _Stop

    handle = blocks[0].register_forward_pre_hook(hook, with_kwargs=True)
    device = next(model.parameters()).device
    try:
        for s in range(0, len(calib), chunk):
            with contextlib.suppress(_Stop):
                model(input_ids=calib[s : s + chunk].to(device), use_cache=False)
    finally:
        handle.remove()
    return captured


def _shared_hessians(
    block: nn.Module, linears: dict[str, nn.Linear], inputs: list[tuple[torch.Tensor, dict[str, Any]]]
) -> dict[str, HessianAccumulator]:
    """Run the block on every input chunk, accumulating each Linear's H; name -> accumulator.

    Linears that read the very same tensor (q/k/v after one norm, gate/up) get ONE shared
    accumulator: their H is identical, so it is computed once, not three or two times. Which
    layers share is read off the first chunk (the same input object, `is`); a layer whose
    input is not shared on a later chunk raises rather than silently mixing Hessians.
    After the first chunk the pass stops at the input of the last Linear it ran (the down
    projection: 29% of a block's FLOPs, whose output no Hessian needs)."""
    accs: dict[str, HessianAccumulator] = {}
    seen: dict[int, tuple[torch.Tensor, HessianAccumulator]] = {}  # id(input) -> (input, acc), one chunk

    def hook(name: str, x: torch.Tensor) -> None:
        prior = seen.get(id(x))
        if prior is not None and prior[0] is x:  # a layer before it read this tensor: same H
            acc = accs.setdefault(name, prior[1])
            if acc is not prior[1]:
                raise RuntimeError(f"{name}: its input is shared with another layer on one chunk only")
            return
        acc = accs.get(name)
        if acc is None:
            acc = accs[name] = HessianAccumulator(linears[name].in_features)
        elif any(a is acc for _, a in seen.values()):
            raise RuntimeError(f"{name}: its input was shared with another layer, now it is not")
        seen[id(x)] = (x, acc)
        acc.add_batch(x.detach())

    order: list[str] = []  # the Linears in the order the first chunk runs them
    last: list[str | None] = [None]  # once known: the last one, whose input ends a chunk's pass

    def pre_hook(name: str, x: torch.Tensor) -> None:
        hook(name, x)
        if last[0] is None:
            order.append(name)
        elif name == last[0]:
            raise _Stop  # nothing after the last Linear's input feeds a Hessian

    hooks = [
        m.register_forward_pre_hook(lambda _m, inp, n=n: pre_hook(n, inp[0])) for n, m in linears.items()
    ]
    try:
        for hs, kw in inputs:
            seen.clear()
            with contextlib.suppress(_Stop):
                _run_block(block, hs, kw)
            if last[0] is None and order:
                last[0] = order[-1]
    finally:
        seen.clear()
        for h in hooks:
            h.remove()
    return accs


def _run_block(block: nn.Module, hs: torch.Tensor, kwargs: dict[str, Any]) -> torch.Tensor:
    out = block(hs, **kwargs)
    return out[0] if isinstance(out, tuple) else out


@torch.inference_mode()
def quantize_sequential_(
    model: nn.Module,
    calib: torch.Tensor,
    solve: Solver,
    *,
    chunk: int = 8,
    on_block: Callable[[int, int], None] | None = None,
) -> dict[str, Any]:
    """Quantize every Linear inside the transformer blocks, in place; returns name -> result.

    The LM head and embeddings are left alone (as with RTN's default)."""
    types = set(getattr(model.config, "layer_types", None) or [])
    if len(types) > 1:
        raise UserError(f"{type(model).__name__} mixes attention types {sorted(types)}: not supported yet")
    prefix, blocks = decoder_blocks(model)
    inputs = _capture_block0(model, blocks, calib, chunk)
    results: dict[str, Any] = {}
    for i, block in enumerate(blocks):
        linears = {n: m for n, m in block.named_modules() if isinstance(m, nn.Linear)}
        accs = _shared_hessians(block, linears, inputs)
        for n, m in linears.items():
            t = time.perf_counter()
            res = solve(m.weight.data.float().contiguous(), accs[n].H, f"{prefix}.{i}.{n}")
            m.weight.data.copy_(res.dequant.to(m.weight.dtype))
            if getattr(res, "seconds", None) is None:
                res.seconds = time.perf_counter() - t
            results[f"{prefix}.{i}.{n}"] = res
        if i + 1 < len(blocks):  # quantized outputs feed block i+1
            inputs = [(_run_block(block, hs, kw), kw) for hs, kw in inputs]
        if on_block:
            on_block(i + 1, len(blocks))
    return results
