"""Files tests leave for people to look at (screenshots); listed at the end of the pytest
output by conftest's terminal summary, so a CI log names them even when every test passed."""

from __future__ import annotations

SAVED: list[str] = []


def record(path: object) -> None:
    SAVED.append(str(path))
