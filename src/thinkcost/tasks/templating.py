"""What a user may say about a dataset-backed task's text: which columns hold our fields
(``question=problem,answer=solution``) and the prompt template (``{question}`` placeholders).

One parser for ``fields`` serves both the run spec (``--fields``, YAML) and the tasks, so a mapping
is refused by the same rules wherever it is written; templates are checked when a task is built, so
an unknown placeholder fails before any model is loaded.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

from thinkcost.errors import UserError


def parse_fields(spec: str | Mapping[str, str] | None) -> dict[str, str]:
    """``"question=problem,answer=solution"`` (or a dict) -> {ours: theirs}; malformed specs are refused.

    The one parser of ``fields``: the run spec and the tasks both call it, so ``a=b=c``, a field mapped
    twice or an empty mapping is refused the same way from a flag, a YAML file or Python.
    """
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        pairs = [(k, v) for k, v in spec.items()]
        for k, v in pairs:
            if not isinstance(k, str) or not isinstance(v, str) or not k.strip() or not v.strip():
                raise UserError(f"fields: expected our_field -> column name strings, got {k!r}: {v!r}")
        return {k.strip(): v.strip() for k, v in pairs}
    if not isinstance(spec, str):
        raise UserError(f"fields: expected 'ours=theirs,...' or a mapping, got {type(spec).__name__}")
    out: dict[str, str] = {}
    for part in spec.split(","):
        if not part.strip():
            continue
        ours, sep, theirs = part.partition("=")
        ours, theirs = ours.strip(), theirs.strip()
        if not sep or not ours or not theirs or "=" in theirs:
            raise UserError(
                f"fields: malformed pair {part.strip()!r}; expected ours=theirs pairs such as "
                "question=problem,answer=solution"
            )
        if ours in out:
            raise UserError(f"fields: {ours!r} is mapped twice in {spec!r}")
        out[ours] = theirs
    if not out:
        raise UserError(f"fields: no ours=theirs pairs in {spec!r}")
    return out


_PLACEHOLDER_RE = re.compile(r"\{\{|\}\}|\{([A-Za-z_]\w*)\}")


def check_template(template: str, allowed: Sequence[str], task: str) -> str:
    """Refuse a template that names a placeholder the task does not fill.

    Placeholders are ``{name}`` with a Python identifier inside; other braces (``\\boxed{}``) stay as
    they are, and ``{{``/``}}`` write a literal brace.
    """
    if not isinstance(template, str) or not template.strip():
        raise UserError(f"{task}: prompt template must be a non-empty string")
    unknown = sorted({m.group(1) for m in _PLACEHOLDER_RE.finditer(template) if m.group(1)} - set(allowed))
    if unknown:
        known = ", ".join("{" + a + "}" for a in allowed)
        raise UserError(
            f"{task}: prompt template uses unknown placeholder(s) "
            f"{', '.join('{' + u + '}' for u in unknown)}; known: {known} (write literal braces as {{{{ }}}})"
        )
    return template


def render(template: str, values: Mapping[str, str]) -> str:
    """Fill a template checked by check_template."""

    def sub(m: re.Match[str]) -> str:
        if m.group(1) is None:
            return m.group(0)[0]
        return str(values[m.group(1)])

    return _PLACEHOLDER_RE.sub(sub, template)
