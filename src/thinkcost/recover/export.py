"""The recovered student as a GPTQ checkpoint (the writer `thinkcost quantize` uses), so the
result loads as `ckpt:DIR` wherever GPTQ is read; its metadata names the variant it repairs
(`recovered_from`), which the report's recovery table reads."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from thinkcost.quant.methods import VariantSpec
from thinkcost.recover.fakequant import FakeQuantLinear
from thinkcost.recover.student import unmake_student_


def _group_size(grids) -> int:
    """The checkpoint's group_size: columns per group (-1: one group per row)."""
    g = next(iter(grids.values()))
    n_groups = int(g.g_idx.max()) + 1
    return -1 if n_groups == 1 else g.g_idx.numel() // n_groups


def finalize_(model: nn.Module) -> None:
    """Put every fake-quant layer on the grid the checkpoint stores (float16 scales, merged
    adapters), so the student's forward from here on is the exported model's exactly."""
    for m in model.modules():
        if isinstance(m, FakeQuantLinear):
            m.merge_()
            m.round_scales_fp16_()


def export_student(
    model: nn.Module, out: Path, spec: VariantSpec, *, tokenizer=None, meta: dict[str, Any] | None = None
) -> Path:
    """Write the student as a GPTQ checkpoint in `out`; the model's fake-quant layers become
    plain Linears holding the exported weights."""
    from thinkcost.quant.checkpoint import export_gptq

    finalize_(model)
    grids = unmake_student_(model)
    if not grids:
        raise ValueError("the model has no fake-quant layers to export")
    bits = next(iter(grids.values())).bits
    group = _group_size(grids)
    contiguous = all(
        torch.equal(
            g.g_idx.long(), torch.arange(g.g_idx.numel()) // (group if group > 0 else g.g_idx.numel())
        )
        for g in grids.values()
    )
    low_zero = any(int(g.zeros.min()) < 1 for g in grids.values())
    export_gptq(
        model,
        grids,
        out,
        bits=bits,
        group_size=group,
        sym=spec.sym,
        desc_act=not contiguous,
        checkpoint_format="gptq_v2" if low_zero else "gptq",
        tokenizer=tokenizer,
        meta=meta or {},
    )
    qfile = out / "quantize_config.json"
    qcfg = json.loads(qfile.read_text())
    qcfg.setdefault("meta", {})["recovered_from"] = (meta or {}).get("recovered_from")
    qfile.write_text(json.dumps(qcfg, indent=2) + "\n")
    return out
