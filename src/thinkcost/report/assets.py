"""What the HTML report inlines, and how data goes inside it safely.

Why inline: a report gets mailed, attached to issues and opened years later; it must not depend
on a CDN or on the store next to it. So plotly.js comes from the plotly Python package, CSS and
JS from report/templates, and data travels as JSON in <script> elements, escaped so that no
string from the store can close the element.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any


@functools.lru_cache(maxsize=1)
def plotly_js() -> str:
    """The plotly.js bundle shipped inside the plotly Python package (no network), read once
    per process; "" when plotly is not installed (the page then says so instead of plotting)."""
    try:
        from plotly.offline import get_plotlyjs
    except ImportError:
        return ""
    return get_plotlyjs()


@functools.lru_cache(maxsize=2)
def asset(name: str) -> str:
    """A file of report/templates (report.css, report.js), read once per process."""
    return resources.files("thinkcost.report").joinpath("templates", name).read_text(encoding="utf-8")


def script_json(obj: Any) -> str:
    """JSON safe to place inside <script type="application/json">: no "</script>" can occur."""
    text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")
