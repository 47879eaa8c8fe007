"""`thinkcost run`'s options are generated from RunSpec: every field is a flag with the field's
description, values reach the spec, and nothing is hand-copied that could drift."""

from __future__ import annotations

import typer.main
from typer.testing import CliRunner

import thinkcost.pipeline
from thinkcost import cli
from thinkcost.cli_options import flag_of
from thinkcost.spec import RunSpec


def _command(name: str):
    group = typer.main.get_command(cli.app)
    return group.commands[name]


def test_every_spec_field_is_a_run_flag_with_its_description():
    params = {p.name: p for p in _command("run").params}
    for field, info in RunSpec.model_fields.items():
        assert info.description, f"RunSpec.{field} has no description (it is the flag's help)"
        assert field in params, f"RunSpec.{field} has no `thinkcost run` flag"
        p = params[field]
        assert flag_of(field) in p.opts and p.help == info.description
    assert set(params) == {*RunSpec.model_fields, "spec_file"}


def test_flags_reach_the_spec(monkeypatch, tmp_path):
    seen = {}

    def fake_run(spec, console):
        seen["spec"] = spec
        raise SystemExit(0)

    monkeypatch.setattr(thinkcost.pipeline, "run", fake_run)
    args = [
        "run",
        "--task-options",
        '{"min_ops": 2, "max_ops": 3}',
        "--wait-words",
        "Hmm,Wait",
        "--request-timeout",
        "7.5",
        "--limit",
        "3",
        "--thinking",
        "auto",
        "--store",
        str(tmp_path / "s.sqlite"),
    ]
    result = CliRunner().invoke(cli.app, args)
    assert result.exit_code == 0, result.output
    spec = seen["spec"]
    assert spec.task_options == {"min_ops": 2, "max_ops": 3} and spec.wait_words == ["Hmm", "Wait"]
    assert spec.request_timeout_s == 7.5 and spec.limit == 3 and spec.store == tmp_path / "s.sqlite"


def test_repro_takes_only_what_a_greedy_rerun_can_vary():
    params = {p.name for p in _command("repro").params}
    assert {"dtypes", "batch_sizes", "spec_file", "model", "task", "limit", "seed"} <= params
    assert not params & {"strategy", "variants", "temperature", "batch_size", "dtype"}
