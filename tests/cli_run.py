"""Running the `thinkcost` command in a subprocess, as a user would, and checking that a user
error is one line on stderr with exit code 2 (shared by the CLI tests)."""

from __future__ import annotations

import subprocess
import sys


def cli(*args: str, cwd=None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """`thinkcost ARGS` in a subprocess; `env` replaces the environment (e.g. an unreachable hub)."""
    return subprocess.run(
        [sys.executable, "-m", "thinkcost.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def one_line_error(p: subprocess.CompletedProcess, *needles: str) -> None:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    err = p.stderr.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
