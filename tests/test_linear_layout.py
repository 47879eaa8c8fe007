"""Column-major Linear weights and row padding (engines/linear_layout).

The claims the engine relies on, checked on this machine's MKL at the default model's layer
shapes (Qwen2.5-0.5B: hidden 896, MLP 4864, 2 KV heads of 64; vocabulary 151,936 for the head,
here a slice of it to keep the test light): the layout changes no result from 16 rows up, a
padded call returns exactly the rows of a full batch, and the engine's greedy output does not
change with it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from thinkcost.engines.hf import HFEngine
from thinkcost.engines.linear_layout import (
    PAD_ROWS,
    column_major_,
    is_column_major,
    pad_rows,
    row_major_,
)
from thinkcost.tasks import get_task
from thinkcost.types import Request

SHAPES = [(896, 896), (128, 896), (4864, 896), (896, 4864), (8192, 896)]  # (out, in)


class _Tiny(nn.Module):
    """Embedding, two Linear layers and a head tied to the embedding (like SmolLM2's)."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(50, 896)
        self.up = nn.Linear(896, 4864)
        self.down = nn.Linear(4864, 896, bias=False)
        self.head = nn.Linear(896, 50, bias=False)
        self.head.weight = self.emb.weight

    def get_input_embeddings(self) -> nn.Module:
        return self.emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.down(F.silu(self.up(x))))


def test_column_major_keeps_values_shapes_and_the_tied_head_and_undoes():
    torch.manual_seed(0)
    m = _Tiny()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    assert column_major_(m) == 2  # up, down; the tied head is left alone
    assert is_column_major(m) and column_major_(m) == 0  # idempotent
    for name in ("up", "down"):
        w = getattr(m, name).weight
        assert not w.is_contiguous() and w.t().is_contiguous()
    assert m.head.weight is m.emb.weight and m.emb.weight.is_contiguous()
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert row_major_(m) == 2 and not is_column_major(m)
    assert all(p.is_contiguous() for p in m.parameters())
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("out_f,in_f", SHAPES)
def test_from_16_rows_up_the_layout_changes_no_bit(out_f, in_f):
    torch.manual_seed(out_f + in_f)
    w, b = torch.randn(out_f, in_f), torch.randn(out_f)
    c = w.t().contiguous().t()
    for rows in (16, 17, 24, 48, 100, 700):
        x = torch.randn(rows, in_f)
        assert torch.equal(F.linear(x, w, b), F.linear(x, c, b)), rows


@pytest.mark.parametrize("out_f,in_f", SHAPES)
def test_padded_rows_equal_the_rows_of_a_full_batch(out_f, in_f):
    """Each of 2..15 rows computed under pad_rows equals the same row inside a 16..48-row
    product, whatever the other rows hold: the tail of a run computes like its full batches."""
    torch.manual_seed(out_f * 3 + in_f)
    lin = nn.Linear(in_f, out_f)
    column_major_(nn.Sequential(lin))
    x = torch.randn(48, in_f)
    full = lin(x)  # 48 rows: no padding needed
    with pad_rows(lin):
        for n in (2, 3, 5, 8, 15):
            got = lin(x[:n].reshape(n, 1, in_f))  # engine shape [rows, positions, features]
            assert got.shape == (n, 1, out_f)
            assert torch.equal(got[:, 0], full[:n]), n
        one = lin(x[:1])
    assert torch.equal(one, F.linear(x[:1], lin.weight, lin.bias))  # one row: left unpadded
    assert not lin._forward_pre_hooks and not lin._forward_hooks  # removed on exit


def test_quantizers_round_the_same_on_either_layout(smollm):
    """RTN reads the weight row-major whatever the engine stored: identical dequantized weights."""
    from thinkcost.quant import parse_variant
    from thinkcost.quant.apply import quantize_model_, restore_linear_weights_, snapshot_linear_weights

    model, _ = smollm
    snap = snapshot_linear_weights(model)
    was = is_column_major(model)
    try:
        out = {}
        for layout in ("row", "col"):
            (column_major_ if layout == "col" else row_major_)(model)
            restore_linear_weights_(model, snap)
            quantize_model_(model, parse_variant("rtn-w3g32"))
            out[layout] = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        for k in out["row"]:
            assert torch.equal(out["row"][k], out["col"][k]), k
    finally:
        restore_linear_weights_(model, snap)
        (column_major_ if was else row_major_)(model)


def test_engine_greedy_tokens_identical_with_and_without_the_layout(smollm):
    """The same greedy text and token count from the engine on the weights as loaded and column-major with
    padding, at batch 16 (full steps bit-identical) and 4 (padded tail), with drafts."""
    model, tok = smollm
    reqs = [Request(p.messages, max_new_tokens=24) for p in get_task("arithmetic").problems(8)]
    was = is_column_major(model)
    try:
        ids = {}
        for layout in ("keep", "auto"):
            if layout == "keep":
                row_major_(model)
            for b in (8, 4):
                eng = HFEngine(model, tok, batch_size=b, layout=layout)
                assert is_column_major(model) == (layout == "auto")
                ids[layout, b] = [(c.text, c.completion_tokens) for c in eng.generate(reqs)]
        assert ids["keep", 8] == ids["auto", 8] == ids["auto", 4] == ids["keep", 4]
    finally:
        (column_major_ if was else row_major_)(model)


def test_pad_rows_constant_is_what_the_engine_fills_with_drafts(smollm):
    model, tok = smollm
    was = is_column_major(model)
    try:
        assert HFEngine(model, tok).draft_budget == PAD_ROWS
        row_major_(model)
        assert HFEngine(model, tok, layout="keep").draft_budget == 10
    finally:
        (column_major_ if was else row_major_)(model)


def test_a_shape_whose_layouts_round_differently_stays_row_major_and_unpadded(monkeypatch):
    """Where the probe finds the layouts differ (SmolLM2's 1536 -> 576 down projection does on
    this MKL between 17 and 48 rows), the layer keeps its weights as loaded and no hook."""
    from thinkcost.engines import linear_layout

    torch.manual_seed(1)
    m = _Tiny()
    monkeypatch.setattr(linear_layout, "layout_is_exact", lambda o, i, b, *_: (o, i) != (896, 4864))
    assert column_major_(m) == 1
    assert not m.up.weight.is_contiguous() and m.down.weight.is_contiguous()
    with pad_rows(m):
        assert m.up._forward_pre_hooks and not m.down._forward_pre_hooks


def test_the_probe_agrees_with_a_direct_check_at_rows_it_did_not_probe():
    """layout_is_exact probes 16..64 rows; at 20, 40 and 100 rows (not probed) a converted shape
    still gives identical products, and a rejected shape differs at some probed count."""
    from thinkcost.engines.linear_layout import PROBE_ROWS, layout_is_exact

    for out_f, in_f in [(896, 896), (4864, 896), (576, 1536)]:
        w = torch.randn(out_f, in_f)
        c = w.t().contiguous().t()
        same = [
            torch.equal(F.linear(x, w), F.linear(x, c)) for x in (torch.randn(n, in_f) for n in PROBE_ROWS)
        ]
        if layout_is_exact(out_f, in_f, False):
            for n in (20, 40, 100):
                x = torch.randn(n, in_f)
                assert torch.equal(F.linear(x, w), F.linear(x, c)), (out_f, in_f, n)
        else:
            assert not all(same), (out_f, in_f)
