"""What users read is what we wrote: rich must not take "[hub]" in an install hint for a style tag.

Rich drops anything that looks like markup, so `pip install 'thinkcost[hub]'` used to reach the
user as `pip install 'thinkcost'`. These tests read the real output of the real command.
"""

from __future__ import annotations

import importlib.util
import io
import subprocess
import sys

import pytest
from rich.console import Console

from cli_run import cli, one_line_error
from thinkcost.errors import UserError

# The CLI with `datasets` unimportable, so gsm8k's hub loader raises its install hint.
WITHOUT_DATASETS = (
    "import sys; sys.modules['datasets'] = None; "
    "sys.argv = ['thinkcost', 'run', '--model', 'smollm2-135m', '--task', 'gsm8k', '--limit', '1']; "
    "from thinkcost.cli import main; main()"
)


def test_hub_install_hint_keeps_its_brackets(tmp_path):
    p = subprocess.run(
        [sys.executable, "-c", WITHOUT_DATASETS], capture_output=True, text=True, cwd=tmp_path, timeout=300
    )
    one_line_error(p, "pip install 'thinkcost[hub]'", "--data PATH")


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed here")
def test_doctor_shows_the_vllm_extra():
    p = cli("doctor")
    assert p.returncode == 0, p.stderr
    assert "engine vllm: vllm not installed (pip install 'thinkcost[vllm]')" in p.stdout


def test_error_text_is_printed_verbatim(monkeypatch):
    # any UserError: brackets, a closing tag, a backslash, as cli.main prints them
    from thinkcost import cli as cli_module

    message = r"field [x] in C:\runs\[bold]x[/]: use 'thinkcost[hub]' [/red]"

    def fail(**_):
        raise UserError(message)

    buf = io.StringIO()
    monkeypatch.setattr(cli_module, "app", fail)
    monkeypatch.setattr(cli_module, "err_console", Console(file=buf, width=500, color_system=None))
    with pytest.raises(SystemExit) as info:
        cli_module.main()
    assert info.value.code == 2
    assert buf.getvalue() == f"error: {message}\n"


def test_tables_print_names_and_labels_verbatim():
    """Run names and variant labels are data: `[w4]` in a checkpoint path is not markup."""
    from rich.console import Console

    from thinkcost.metrics.summary import VariantSummary
    from thinkcost.report.table import rich_table, robustness_table

    nan2 = (float("nan"), float("nan"))
    row = VariantSummary(
        "ckpt:/q/[w3]", 1, 1, 1.0, (0.2, 1.0), 5.0, 6.0, 1.0, nan2, 1, 1.0, nan2, 1.0, 1.0, 6.0, 1.0, 0.0, 1.0
    )
    console = Console(width=250, record=True)
    console.print(rich_table([row], "run [bold]x[/bold]", "base", ["note with [hub]"]))
    rec = {"variant": "ckpt:/m/[w4]", "strategy": "greedy", "n": 1}
    for part in ("attack", "reasoning_leak", "leak_any"):
        rec |= {part: 0, f"{part}_n": 1, f"{part}_rate": 0.0, f"{part}_ci_low": 0.0, f"{part}_ci_high": 0.8}
    console.print(robustness_table([rec]))
    out = console.export_text()
    assert "run [bold]x[/bold]" in out and "note with [hub]" in out
    assert "ckpt:/m/[w4]" in out and "ckpt:/q/[w3]" in out
