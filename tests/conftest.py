"""Shared fixtures: the real packaged models, loaded once per test session."""

from __future__ import annotations

import pytest

from thinkcost.models import PACKAGED, is_installed


def _need(name: str) -> None:
    if not is_installed(PACKAGED[name]):
        pytest.fail(f"packaged model {name} missing: install it ({PACKAGED[name].install_hint})")


@pytest.fixture(scope="session")
def smollm():
    """SmolLM2-135M-Instruct (real weights, real tokenizer): fast enough for mechanics tests."""
    from thinkcost.engines.hf import load_hf
    from thinkcost.models import resolve_model

    _need("smollm2-135m")
    return load_hf(resolve_model("smollm2-135m"))


@pytest.fixture(scope="session")
def smollm_tok(smollm):
    return smollm[1]


def pytest_terminal_summary(terminalreporter) -> None:
    """Name the files tests saved for people to look at (e.g. the report screenshot)."""
    import artifacts

    for path in artifacts.SAVED:
        terminalreporter.write_line(f"artifact: {path}")
