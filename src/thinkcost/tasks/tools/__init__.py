"""Agentic tool use: `tools` (multi-turn episodes in a simulated environment) and
`tools-bfcl` (BFCL-style single-turn function calling from a local file).

`thinkcost.tasks` imports this package like any task module; importing the task modules
here registers both tasks."""

from __future__ import annotations

from . import bfcl, task  # noqa: F401 - registration
