"""One bits check: every place that takes a bit width asks quant.bits, says the same words for the
same bad value, and `thinkcost quantize` refuses a width it cannot export before doing any work."""

from __future__ import annotations

import json
import sys

import pytest
import torch
from tiny_models import tiny_qwen2

from cli_run import cli, one_line_error
from thinkcost.errors import UserError
from thinkcost.quant import parse_variant
from thinkcost.quant.bits import CHECKPOINT_BITS, FAKE_QUANT_BITS, BitsError, bits_problem, check_bits
from thinkcost.quant.checkpoint import (
    export_gptq,
    import_gptq,
    pack_qweight,
    pack_qzeros,
    unpack_qweight,
    unpack_qzeros,
)
from thinkcost.quant.gptq import GPTQConfig
from thinkcost.quant.rtn import check_rtn_args, quantize_rtn
from thinkcost.quantize import QuantizeJob


def _message(fn) -> str:
    with pytest.raises(ValueError) as exc:  # BitsError is a ValueError and a UserError
        fn()
    assert isinstance(exc.value, BitsError) and isinstance(exc.value, UserError)
    return str(exc.value)


def test_the_two_answers():
    assert FAKE_QUANT_BITS == (2, 3, 4, 5, 6, 7, 8)
    assert CHECKPOINT_BITS == (2, 3, 4, 8)
    for b in FAKE_QUANT_BITS:
        assert check_bits(b) == b
    assert check_bits(5, checkpoint=False) == 5
    for bad in (0, 1, 9, 16, 4.0, True, "4", None):
        assert bits_problem(bad) is not None, bad
    for b in (5, 6, 7):
        assert bits_problem(b, checkpoint=True) is not None
        assert bits_problem(b) is None


def test_fake_quantization_takes_5_bits():
    assert parse_variant("rtn-w5g32").bits == 5
    assert parse_variant("gptq-w6g32").bits == 6 and parse_variant("babai-w7g32").bits == 7
    w = torch.randn(4, 64)
    assert int(quantize_rtn(w, 5, 32).codes.max()) <= 31
    assert GPTQConfig(bits=5).bits == 5


def test_every_fake_quantization_site_words_a_bad_width_the_same():
    words = bits_problem(9)
    assert words == "expected 2, 3, 4, 5, 6, 7 or 8 bits, got 9"
    w = torch.randn(4, 64)
    got = {
        "rtn variant": _message(lambda: parse_variant("rtn-w9g32")),
        "gptq variant": _message(lambda: parse_variant("gptq-w9g32")),
        "babai variant": _message(lambda: parse_variant("babai-w9g32-act")),
        "quantize_rtn": _message(lambda: quantize_rtn(w, 9, 32)),
        "check_rtn_args": _message(lambda: check_rtn_args(9, 32, 64)),
        "GPTQConfig": _message(lambda: GPTQConfig(bits=9)),
    }
    assert got == {
        "rtn variant": f"variant 'rtn-w9g32': {words}",
        "gptq variant": f"variant 'gptq-w9g32': {words}",
        "babai variant": f"variant 'babai-w9g32-act': {words}",
        "quantize_rtn": f"bits: {words}",
        "check_rtn_args": f"bits: {words}",
        "GPTQConfig": f"bits: {words}",
    }


def test_every_checkpoint_site_words_a_bad_width_the_same(tmp_path):
    words = bits_problem(5, checkpoint=True)
    assert words.startswith("expected 2, 3, 4 or 8 bits (") and words.endswith(", got 5")
    codes, zeros = torch.zeros(32, 64, dtype=torch.int32), torch.ones(32, 2, dtype=torch.int32)
    model = tiny_qwen2()
    msgs = [
        _message(lambda: pack_qweight(codes, 5)),
        _message(lambda: unpack_qweight(torch.zeros(10, 32, dtype=torch.int32), 5, 64)),
        _message(lambda: pack_qzeros(zeros, 5)),
        _message(lambda: unpack_qzeros(torch.zeros(2, 5, dtype=torch.int32), 5)),
        _message(
            lambda: export_gptq(model, {}, tmp_path / "x", bits=5, group_size=32, sym=True, desc_act=False)
        ),
    ]
    assert msgs == [f"bits: {words}"] * 5
    assert not (tmp_path / "x").exists()  # refused before writing anything

    job = QuantizeJob(model="smollm2-135m", method="gptq", bits=5, group_size=32, out=tmp_path / "ck")
    assert _message(job.check) == f"--bits: {words}"

    ck = tmp_path / "ck5"
    ck.mkdir()
    (ck / "quantize_config.json").write_text(
        json.dumps({"bits": 5, "group_size": 32, "quant_method": "gptq"})
    )
    assert _message(lambda: import_gptq(ck)) == f"{ck / 'quantize_config.json'}: bits: {words}"


def test_quantize_cli_refuses_5_bits_in_one_line_without_loading(tmp_path, monkeypatch, capsys):
    """In process, with every step after the check made to fail the test if it is reached."""
    import thinkcost.cli
    import thinkcost.quantize

    def must_not_run(*_a, **_k):
        raise AssertionError("reached model resolution/loading/calibration before the bits check")

    monkeypatch.setattr(thinkcost.quantize, "resolve_model", must_not_run)
    monkeypatch.setitem(sys.modules, "thinkcost.engines.hf", None)  # importing it would fail too
    out = tmp_path / "ck"
    monkeypatch.setattr(sys, "argv", ["thinkcost", "quantize", "--bits", "5", "-o", str(out)])
    with pytest.raises(SystemExit) as exc:
        thinkcost.cli.main()
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err == f"error: --bits: {bits_problem(5, checkpoint=True)}"
    assert not out.exists()


def test_quantize_cli_refuses_5_bits_as_a_user_sees_it(tmp_path):
    """As a subprocess on the default model, whose load alone takes most of a minute: the error
    names the flag and the allowed widths, and no output directory appears."""
    out = tmp_path / "ck"
    p = cli("quantize", "--bits", "5", "-o", str(out))
    one_line_error(p, "--bits", "2, 3, 4 or 8", "got 5")
    assert "loading" not in p.stdout and not out.exists()


def test_quantize_help_lists_the_checkpoint_widths():
    from thinkcost.cli import _checkpoint_bits_help

    assert _checkpoint_bits_help().startswith("2, 3, 4 or 8")


def test_a_real_5_bit_export_is_refused_but_its_variant_runs(tmp_path):
    """What the CLI used to do: quantize everything, then fail at export. Now the variant runs,
    and the export (of the very same layers) fails at its first line, naming the widths."""
    from thinkcost.quant.apply import quantize_model_

    model = tiny_qwen2()
    info = quantize_model_(model, parse_variant("rtn-w5g32"))
    assert info["bits_per_weight_layers"] == pytest.approx(5 + 32 / 32)
    with pytest.raises(UserError, match=r"^bits: expected 2, 3, 4 or 8 bits"):
        export_gptq(model, {}, tmp_path / "ck", bits=5, group_size=32, sym=True, desc_act=False)
