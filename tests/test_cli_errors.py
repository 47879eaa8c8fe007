"""Every user mistake: one line naming the problem and the fix, exit code 2, no traceback."""

from __future__ import annotations

import pytest

from cli_run import cli as _cli
from cli_run import one_line_error as _one_line_error
from thinkcost.engines import engine_meta
from thinkcost.errors import UserError
from thinkcost.spec import build_spec, load_spec_file


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--model", "gpt-17"], ["unknown model 'gpt-17'", "packaged name"]),
        (["--variants", "base,rtn-w9g32"], ["'variants'", "rtn-w9g32", "expected 2, 3, 4, 5, 6, 7 or 8"]),
        (["--variants", "base,awq"], ["unknown variant 'awq'"]),
        (["--task", "gsm9k"], ["unknown task 'gsm9k'", "arithmetic"]),
        (["--limit", "0"], ["'limit'", "greater than or equal to 1"]),
        (["--strategy", "maj@x"], ["maj@x", "integer >= 1"]),
        (["--strategy", "best@4"], ["unknown strategy 'best@4'", "maj@K"]),
        (["--strategy", "short-1@32"], ["batch_size must be >= 32"]),
        (["--model", "/nonexistent/model.gguf"], ["does not exist"]),
    ],
)
def test_run_flag_errors(args, needles):
    _one_line_error(_cli("run", *args), *needles)


def test_unwritable_store_path(tmp_path):
    blocker = tmp_path / "f"
    blocker.write_text("x")
    p = _cli("run", "--model", "smollm2-135m", "--limit", "1", "--store", str(blocker / "s.sqlite"))
    _one_line_error(p, "cannot open store", "--store")


def test_bad_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "spec.yaml"
    f.write_text("model: smollm2-135m\nvariants: [base, rtn-w4g32\nlimit: 3\n")
    _one_line_error(_cli("run", str(f)), "spec.yaml", "line 3", "invalid YAML")


def test_unknown_yaml_field_and_wrong_type(tmp_path):
    f = tmp_path / "spec.yaml"
    f.write_text("varients: [base]\n")
    _one_line_error(_cli("run", str(f)), "spec.yaml", "'varients'", "unknown field")
    f.write_text("limit: many\n")
    _one_line_error(_cli("run", str(f)), "'limit'", "integer")
    f.write_text("- base\n- rtn-w4g32\n")
    _one_line_error(_cli("run", str(f)), "expected a mapping")
    _one_line_error(_cli("run", str(tmp_path / "missing.yaml")), "does not exist")


def test_report_on_missing_store(tmp_path):
    _one_line_error(_cli("report", str(tmp_path / "none.sqlite")), "does not exist")
    _one_line_error(_cli("report", str(tmp_path / "none.sqlite"), "--format", "xml"), "--format")


def test_spec_file_values_and_flags_merge(tmp_path):
    f = tmp_path / "s.yaml"
    f.write_text("model: smollm2-135m\nvariants: base,rtn-w4g32\nlimit: 5\ntask_options: {max_ops: 2}\n")
    spec = build_spec(load_spec_file(f), {"limit": 7, "seed": None})
    assert spec.variants == ["base", "rtn-w4g32"] and spec.limit == 7 and spec.task_options == {"max_ops": 2}
    assert build_spec({}, {}).variants == list(engine_meta("hf").default_variants)


def test_run_identity_ignores_resumable_knobs_but_not_generation_knobs():
    a = build_spec({}, {})
    assert a.run_id() == build_spec({}, {"limit": 50, "batch_size": 2, "variants": "base"}).run_id()
    assert a.run_id() != build_spec({}, {"max_new_tokens": 99}).run_id()
    assert a.run_id() != build_spec({}, {"seed": 1}).run_id()
    assert a.run_id() != build_spec({}, {"task_options": {"max_ops": 5}}).run_id()


def test_bad_task_option_is_named():
    with pytest.raises(UserError, match="max_ops"):
        build_spec({"task_options": {"max_ops": 9}}, {})


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--method", "awq"], ["--method", "awq"]),
        (["--bits", "9"], ["--bits", "expected 2, 3, 4 or 8 bits", "got 9"]),
        (["--bits", "5"], ["--bits", "expected 2, 3, 4 or 8 bits", "got 5"]),
        (["--order", "random"], ["--order", "min-pivot"]),
    ],
)
def test_quantize_flag_errors(args, needles, tmp_path):
    _one_line_error(_cli("quantize", "-o", str(tmp_path / "ck"), "--model", "smollm2-135m", *args), *needles)


def test_quantize_refuses_a_non_empty_output_dir(tmp_path):
    (tmp_path / "ck").mkdir()
    (tmp_path / "ck" / "x").write_text("keep me")
    _one_line_error(_cli("quantize", "-o", str(tmp_path / "ck"), "--model", "smollm2-135m"), "not empty")


def test_quantize_writes_a_checkpoint_with_a_per_layer_log(tmp_path):
    import csv
    import json

    out = tmp_path / "ck"
    p = _cli(
        "quantize",
        "--model",
        "smollm2-135m",
        "--method",
        "gptq",
        "--bits",
        "3",
        "--group-size",
        "64",
        "--order",
        "act-order",
        "--calib",
        "2",
        "--seq-len",
        "16",
        "-o",
        str(out),
    )
    assert p.returncode == 0, p.stderr[-2000:]
    rows = list(csv.DictReader((out / "quant_log.csv").open()))
    assert len(rows) == 30 * 7 and all(float(r["proxy_loss"]) >= 0 for r in rows)
    cfg = json.loads((out / "quantize_config.json").read_text())
    assert (cfg["bits"], cfg["group_size"], cfg["desc_act"], cfg["sym"]) == (3, 64, True, True)
    assert "total" in p.stdout and f"ckpt:{out}" in p.stdout.replace("\n", "")
